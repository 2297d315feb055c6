//! The shipped 2021 rounds (deploy/campaigns/2021.yaml, loaded by `vaxbook dev`) replayed with
//! the dev clock through the gateway: the 60+ round takes proxy bookings until 9 Aug 2021
//! 17:59:59 KST and refuses them from 18:00:00, and the 18–49 round's slots are released a tenth
//! at each rotation window's opening (none at 19:59:59 on 9 Aug, a tenth at 20:00:00).

use serde_json::{Value, json};
use vaxbook_tests::journey::{self, OtpSource, Person};
use vaxbook_tests::people::{MOTHER, UNCLE};
use vaxbook_tests::{Api, DevStack};

/// The first demo center.
const CENTER: &str = "00000000-0000-4000-8000-000000000001";

async fn set_clock(dev: &DevStack, now: &str) -> anyhow::Result<()> {
    let reply = Api::new(&dev.gateway_url, "clock-setter")
        .send(
            reqwest::Method::PUT,
            "/dev/clock",
            Some(&json!({"now": now})),
            &[],
        )
        .await?;
    anyhow::ensure!(
        reply.status / 100 == 2,
        "setting the clock to {now}: {reply:?}"
    );
    Ok(())
}

async fn login(dev: &DevStack) -> anyhow::Result<Api> {
    let otp = OtpSource::DevSms {
        gateway: dev.gateway_url.clone(),
    };
    journey::login(
        &Api::new(&dev.gateway_url, "laptop-1"),
        &otp,
        &journey::HONG,
    )
    .await
}

/// The first slot of the first center on `date`.
async fn first_slot(me: &Api, date: &str) -> anyhow::Result<Value> {
    let slots = me
        .get(&format!(
            "/v1/slots?center_id={CENTER}&from={date}&to={date}"
        ))
        .await?;
    anyhow::ensure!(slots.status == 200, "slots: {slots:?}");
    Ok(slots.body[0].clone())
}

fn for_person(slot_id: &Value, person: &Person) -> Value {
    json!({"slot_id": slot_id, "for": {"name": person.name, "rrn": person.rrn}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_60_plus_round_takes_proxy_bookings_until_9_aug_18_00() -> anyhow::Result<()> {
    let dev = DevStack::start("dev-proxy").await?;
    // The dev clock runs on from where it is set: everything but the booking happens before.
    set_clock(&dev, "2021-08-09T17:50:00+09:00").await?;
    let me = login(&dev).await?;
    // The 60+ round's own slots start on 16 Aug.
    let slot = first_slot(&me, "2021-08-16").await?;
    assert_eq!(slot["campaign_id"], "covid19-2021-60-plus", "{slot}");
    set_clock(&dev, "2021-08-09T17:59:59+09:00").await?;

    let booked = me
        .post("/v1/bookings", &for_person(&slot["id"], &MOTHER))
        .await?;
    assert_eq!(booked.status, 201, "at 17:59:59: {booked:?}");
    assert_eq!(booked.body["made_by_proxy"], true, "{booked:?}");
    assert_eq!(booked.body["booked_for"], "김*자", "{booked:?}");

    set_clock(&dev, "2021-08-09T18:00:00+09:00").await?;
    let late = me
        .post("/v1/bookings", &for_person(&slot["id"], &UNCLE))
        .await?;
    late.assert_problem(403, "proxy-not-allowed");
    assert_eq!(
        late.body["proxy_deadline"], "2021-08-09T18:00:00+09:00",
        "{late:?}"
    );
    let made = me.get("/v1/bookings?made_for_others=true").await?;
    assert_eq!(made.body.as_array().map(Vec::len), Some(1), "{made:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_18_49_supply_is_released_a_tenth_per_rotation_window() -> anyhow::Result<()> {
    let dev = DevStack::start("dev-supply").await?;
    // The dev clock runs on from where it is set: the person verifies a few minutes before, and
    // the slot is listed right after the clock is set.
    let released_at = |login_at: &'static str, now: &'static str| {
        let dev = &dev;
        async move {
            set_clock(dev, login_at).await?;
            let me = login(dev).await?;
            set_clock(dev, now).await?;
            let slot = first_slot(&me, "2021-08-26").await?;
            anyhow::ensure!(
                slot["campaign_id"] == "covid19-2021-18-49",
                "not an 18-49 slot: {slot}"
            );
            anyhow::ensure!(slot["capacity"] == 40, "demo slots hold 40: {slot}");
            anyhow::Ok((slot["released"].as_i64(), slot["remaining"].as_i64()))
        }
    };
    assert_eq!(
        released_at("2021-08-09T19:55:00+09:00", "2021-08-09T19:59:59+09:00").await?,
        (Some(0), Some(0)),
        "nothing before the first rotation window"
    );
    assert_eq!(
        released_at("2021-08-09T19:55:00+09:00", "2021-08-09T20:00:00+09:00").await?,
        (Some(4), Some(4))
    );
    assert_eq!(
        released_at("2021-08-10T19:55:00+09:00", "2021-08-10T20:00:00+09:00").await?,
        (Some(8), Some(8))
    );
    assert_eq!(
        released_at("2021-08-18T19:55:00+09:00", "2021-08-18T20:00:00+09:00").await?,
        (Some(40), Some(40)),
        "all of it with the tenth rotation window"
    );
    Ok(())
}
