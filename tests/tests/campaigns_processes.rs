//! Campaigns as data through the multi-process stack on the real PostgreSQL and Redis, with the
//! real clock: a proxy booking in a 60+ campaign before its proxy deadline and `403
//! proxy-not-allowed` after it (the booker lists it with names masked, the person booked for sees
//! it once verified), and a slot's supply released in steps as the campaign's windows open, never
//! booked past the released share by concurrent bookers (`409 slot-full`).
//!
//! The production binaries have no settable clock, so the campaigns are seeded with their
//! deadlines and windows a few seconds ahead of now, and the tests wait for them.

use chrono::{DateTime, Duration, Utc};
use platform::clock::to_timestamp;
use proto::booking::v1::booking_admin_service_client::BookingAdminServiceClient;
use proto::booking::v1::{Slot, UpsertSlotRequest};
use proto::scheduling::v1::scheduling_admin_service_client::SchedulingAdminServiceClient;
use proto::scheduling::v1::{Campaign, Channel, UpsertCampaignRequest, Window, WindowKind};
use serde_json::{Value, json};
use vaxbook_tests::journey::{self, Person};
use vaxbook_tests::people::{MOTHER, UNCLE};
use vaxbook_tests::{ProcessStack, people, seed};

/// An open window from `opens` to `closes` on the web, releasing `share_bp` of the supply.
fn open_window(id: &str, opens: DateTime<Utc>, closes: DateTime<Utc>, share_bp: u32) -> Window {
    Window {
        id: id.to_owned(),
        kind: WindowKind::Open.into(),
        opens_at: Some(to_timestamp(opens)),
        closes_at: Some(to_timestamp(closes)),
        channels: vec![Channel::Web.into()],
        supply_share_bp: share_bp,
        ..Default::default()
    }
}

fn kst_date(at: DateTime<Utc>) -> String {
    platform::ids::format_iso_date(at.with_timezone(&chrono_tz::Asia::Seoul).date_naive())
}

/// Upserts `campaign`, one center and one slot of `capacity` on D+5 in it; returns the slots'
/// listing path and the slot id.
async fn seed(
    stack: &ProcessStack,
    campaign: Campaign,
    capacity: i32,
) -> anyhow::Result<(String, String)> {
    let timeout = std::time::Duration::from_secs(10);
    let mut scheduling =
        SchedulingAdminServiceClient::new(platform::grpc::channel(&stack.scheduling_url, timeout)?);
    let mut booking =
        BookingAdminServiceClient::new(platform::grpc::channel(&stack.booking_url, timeout)?);
    let campaign_id = campaign.id.clone();
    scheduling
        .upsert_campaign(stack.operator.request(UpsertCampaignRequest {
            campaign: Some(campaign),
        })?)
        .await?;
    let center = seed::center(&mut booking, &stack.operator).await?;
    let starts_at = Utc::now() + Duration::days(5);
    let slot = booking
        .upsert_slot(stack.operator.request(UpsertSlotRequest {
            slot: Some(Slot {
                campaign_id,
                center_id: center.id.clone(),
                date: kst_date(starts_at),
                starts_at: Some(to_timestamp(starts_at)),
                ends_at: Some(to_timestamp(starts_at + Duration::hours(4))),
                vaccine: "Pfizer".to_owned(),
                capacity,
                ..Default::default()
            }),
        })?)
        .await?
        .into_inner();
    Ok((format!("/v1/slots?center_id={}", center.id), slot.id))
}

/// A campaign for `born_from..=born_to`, vaccinating D+1 … D+10.
fn campaign(id: &str, born_from: &str, born_to: &str, windows: Vec<Window>) -> Campaign {
    let now = Utc::now();
    Campaign {
        id: id.to_owned(),
        name: format!("End-to-end {id}"),
        born_from: born_from.to_owned(),
        born_to: born_to.to_owned(),
        vaccination_from: kst_date(now + Duration::days(1)),
        vaccination_to: kst_date(now + Duration::days(10)),
        cancellation_closes_days_before: 2,
        windows,
        ..Default::default()
    }
}

async fn wait_until(at: DateTime<Utc>) {
    let left = at - Utc::now();
    if let Ok(left) = left.to_std() {
        tokio::time::sleep(left).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_books_for_a_60_plus_person_until_the_proxy_deadline() -> anyhow::Result<()> {
    let stack = ProcessStack::start("proxy").await?;
    // The booker (born 1990, not in the 60+ campaign) books for their mother.
    let booker = people::verified(&stack, &journey::HONG, "laptop-1").await?;
    let now = Utc::now();
    let deadline = now + Duration::seconds(10);
    let mut sixty_plus = campaign(
        "e2e-60-plus",
        "1900-01-01",
        "1961-12-31",
        vec![open_window(
            "open",
            now - Duration::hours(1),
            now + Duration::days(2),
            10_000,
        )],
    );
    sixty_plus.proxy_allowed = true;
    sixty_plus.proxy_deadline = Some(to_timestamp(deadline));
    let (slots_path, slot_id) = seed(&stack, sixty_plus, 5).await?;
    let booked = booker
        .post(
            "/v1/bookings",
            &json!({"slot_id": slot_id, "for": {"name": MOTHER.name, "rrn": MOTHER.rrn}}),
        )
        .await?;
    assert_eq!(booked.status, 201, "{booked:?}");
    assert_eq!(booked.body["made_by_proxy"], true, "{booked:?}");
    assert_eq!(booked.body["booked_for"], "김*자", "{booked:?}");
    anyhow::ensure!(
        Utc::now() < deadline,
        "the proxy booking came after the deadline: the machine is too slow for this test"
    );
    let booking_id = booked.body["id"].as_str().unwrap_or_default().to_owned();
    assert!(
        !booked.body.to_string().contains(MOTHER.rrn)
            && !booked.body.to_string().contains("김순자"),
        "the answer carries no personal data of the person booked for: {booked:?}"
    );

    // The booker's own list has no booking of theirs; the bookings made for others have it,
    // the name masked.
    let own = booker.get("/v1/bookings").await?;
    assert_eq!(own.status, 200, "{own:?}");
    assert_eq!(own.body, json!([]), "{own:?}");
    let for_others = booker.get("/v1/bookings?made_for_others=true").await?;
    assert_eq!(for_others.status, 200, "{for_others:?}");
    let listed = for_others.body.as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "{for_others:?}");
    assert_eq!(listed[0]["id"], booking_id.as_str());
    assert_eq!(listed[0]["booked_for"], "김*자");
    assert_eq!(listed[0]["made_by_proxy"], true);
    assert!(
        !for_others.body.to_string().contains("김순자"),
        "{for_others:?}"
    );

    // The mother, once verified herself, sees the booking made for her.
    let mother = people::verified(&stack, &MOTHER, "tablet-2").await?;
    let hers = mother.get("/v1/bookings").await?;
    assert_eq!(hers.status, 200, "{hers:?}");
    let hers = hers.body.as_array().cloned().unwrap_or_default();
    assert_eq!(hers.len(), 1, "{hers:?}");
    assert_eq!(hers[0]["id"], booking_id.as_str());
    assert_eq!(hers[0]["status"], "confirmed");
    assert_eq!(hers[0]["made_by_proxy"], true);
    // The one-booking rule holds for the person booked for: she cannot book again herself.
    mother
        .post("/v1/bookings", &json!({"slot_id": slot_id}))
        .await?
        .assert_problem(409, "already-booked");

    // After the deadline, the same booker may not book for another 60+ person.
    wait_until(deadline + Duration::milliseconds(500)).await;
    let late = booker
        .post(
            "/v1/bookings",
            &json!({"slot_id": slot_id, "for": {"name": UNCLE.name, "rrn": UNCLE.rrn}}),
        )
        .await?;
    late.assert_problem(403, "proxy-not-allowed");
    let listed = booker.get("/v1/bookings?made_for_others=true").await?;
    assert_eq!(
        listed.body.as_array().map(Vec::len),
        Some(1),
        "refused means nothing booked: {listed:?}"
    );
    let slots = booker.get(&slots_path).await?;
    let remaining = slots
        .body
        .as_array()
        .and_then(|slots| slots.iter().find(|slot| slot["id"] == slot_id.as_str()))
        .and_then(|slot| slot["remaining"].as_i64());
    assert_eq!(remaining, Some(4), "{slots:?}");

    for proc in &stack.procs {
        for data in [MOTHER.rrn, MOTHER.name, UNCLE.rrn, UNCLE.name] {
            assert!(
                !proc.logs().contains(data),
                "the log of {} holds personal data of a person booked for",
                proc.name
            );
        }
    }
    Ok(())
}

/// Five people born the same day, all in the 18–49 group.
fn people() -> [Person; 5] {
    [
        Person {
            name: "이민호",
            rrn: "900113-1111111",
            phone: "010-1111-0001",
            carrier: "skt",
        },
        Person {
            name: "최지우",
            rrn: "900113-2222222",
            phone: "010-1111-0002",
            carrier: "kt",
        },
        Person {
            name: "정우성",
            rrn: "900113-1333333",
            phone: "010-1111-0003",
            carrier: "skt",
        },
        Person {
            name: "한가인",
            rrn: "900113-2444444",
            phone: "010-1111-0004",
            carrier: "lgu",
        },
        Person {
            name: "강동원",
            rrn: "900113-1555555",
            phone: "010-1111-0005",
            carrier: "kt",
        },
    ]
}

fn slot_of<'a>(slots: &'a Value, slot_id: &str) -> Option<&'a Value> {
    slots
        .as_array()
        .and_then(|slots| slots.iter().find(|slot| slot["id"] == slot_id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slots_supply_is_released_in_steps_by_the_clock() -> anyhow::Result<()> {
    let stack = ProcessStack::start("supply").await?;
    let mut people_in = Vec::new();
    for (index, person) in people().iter().enumerate() {
        people_in.push(people::verified(&stack, person, &format!("device-{index}")).await?);
    }
    let now = Utc::now();
    // The first window releases half of every slot now, the second the rest when it opens.
    let second_opens = now + Duration::seconds(10);
    let (slots_path, slot_id) = seed(
        &stack,
        campaign(
            "e2e-supply",
            "1972-01-01",
            "2003-12-31",
            vec![
                open_window(
                    "first",
                    now - Duration::hours(1),
                    now + Duration::days(1),
                    5_000,
                ),
                open_window("second", second_opens, now + Duration::days(2), 5_000),
            ],
        ),
        4,
    )
    .await?;
    // Half of the capacity of 4 is released: listed, and that is what the first four bookers
    // racing each other get.
    let slots = people_in[0].get(&slots_path).await?;
    let slot = slot_of(&slots.body, &slot_id).cloned().unwrap_or_default();
    assert_eq!(slot["capacity"], 4, "{slots:?}");
    assert_eq!(slot["released"], 2, "{slots:?}");
    assert_eq!(slot["remaining"], 2, "{slots:?}");
    let body = json!({"slot_id": slot_id});
    let race = people_in[..4].iter().map(|api| {
        let body = body.clone();
        async move { api.post("/v1/bookings", &body).await }
    });
    let answers = futures::future::join_all(race).await;
    let mut refused = Vec::new();
    let mut booked = 0;
    for (index, answer) in answers.into_iter().enumerate() {
        let answer = answer?;
        match answer.status {
            201 => booked += 1,
            _ => {
                answer.assert_problem(409, "slot-full");
                refused.push(index);
            }
        }
    }
    anyhow::ensure!(
        Utc::now() < second_opens,
        "the race ended after the second window opened: the machine is too slow for this test"
    );
    assert_eq!(booked, 2, "never past the released share");
    let slots = people_in[0].get(&slots_path).await?;
    let slot = slot_of(&slots.body, &slot_id).cloned().unwrap_or_default();
    assert_eq!(slot["remaining"], 0, "{slots:?}");

    // The second window opens by the clock: the rest is released with no operator action.
    wait_until(second_opens + Duration::milliseconds(500)).await;
    let slots = people_in[0].get(&slots_path).await?;
    let slot = slot_of(&slots.body, &slot_id).cloned().unwrap_or_default();
    assert_eq!(slot["released"], 4, "{slots:?}");
    assert_eq!(slot["remaining"], 2, "{slots:?}");
    for index in refused {
        let answer = people_in[index].post("/v1/bookings", &body).await?;
        assert_eq!(answer.status, 201, "{answer:?}");
    }
    // The whole capacity is taken now.
    people_in[4]
        .post("/v1/bookings", &body)
        .await?
        .assert_problem(409, "slot-full");
    Ok(())
}
