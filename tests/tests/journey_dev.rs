//! The same journey against `vaxbook dev` (in-process stores, demo data, dev clock), and the
//! dev-only endpoints that let a person walk every rule without a phone or a calendar.

use serde_json::json;
use vaxbook_tests::journey::{self, Expect, OtpSource};
use vaxbook_tests::{Api, DevStack};

const DEMO_CAMPAIGN: &str = "covid19-2021-18-49";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journey_walks_through_vaxbook_dev() -> anyhow::Result<()> {
    let dev = DevStack::start("dev-journey").await?;
    let otp = OtpSource::DevSms {
        gateway: dev.gateway_url.clone(),
    };
    journey::walk(
        &dev.gateway_url,
        &otp,
        &Expect {
            campaign_id: DEMO_CAMPAIGN.to_owned(),
        },
    )
    .await?;
    journey::assert_no_personal_data("vaxbook dev", &dev.proc.logs());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_clock_moves_every_service() -> anyhow::Result<()> {
    let dev = DevStack::start("dev-clock").await?;
    let otp = OtpSource::DevSms {
        gateway: dev.gateway_url.clone(),
    };
    let anonymous = Api::new(&dev.gateway_url, "clock-setter");

    // Before the person's rotation window opens: not eligible yet, with the opening time.
    let set = anonymous
        .send(
            reqwest::Method::PUT,
            "/dev/clock",
            Some(&json!({"now": "2021-08-09T19:59:00+09:00"})),
            &[],
        )
        .await?;
    assert_eq!(set.status, 200, "{set:?}");
    let me = journey::login(
        &Api::new(&dev.gateway_url, "laptop-1"),
        &otp,
        &journey::HONG,
    )
    .await?;
    let early = me.get("/v1/me/eligibility").await?;
    assert_eq!(early.body["eligible"], false, "{early:?}");
    assert_eq!(early.body["reason"], "window-not-open", "{early:?}");
    // Born on the 13th: the rotation window of 13 Aug.
    assert_eq!(
        early.body["opens_at"], "2021-08-13T20:00:00+09:00",
        "{early:?}"
    );

    // The day before a 26 Aug slot: the booking is taken but cannot be cancelled any more.
    anonymous
        .send(
            reqwest::Method::PUT,
            "/dev/clock",
            Some(&json!({"now": "2021-08-25T10:00:00+09:00"})),
            &[],
        )
        .await?;
    // Sixteen days later the token and the session have long expired: verify again.
    me.get("/v1/me/eligibility")
        .await?
        .assert_problem(401, "unauthenticated");
    let me = journey::login(
        &Api::new(&dev.gateway_url, "laptop-1"),
        &otp,
        &journey::HONG,
    )
    .await?;
    let eligible = me.get("/v1/me/eligibility").await?;
    assert_eq!(eligible.body["eligible"], true, "{eligible:?}");
    let slots = me
        .get("/v1/slots?center_id=00000000-0000-4000-8000-000000000001&from=2021-08-26&to=2021-08-26")
        .await?;
    let slot = slots.body[0]["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(slots.body[0]["date"], "2021-08-26", "{slots:?}");
    let booked = me.post("/v1/bookings", &json!({"slot_id": slot})).await?;
    assert_eq!(booked.status, 201, "{booked:?}");
    assert_eq!(booked.body["cancellable_until"], "2021-08-24", "{booked:?}");
    let id = booked.body["id"].as_str().unwrap_or_default().to_owned();
    me.delete(&format!("/v1/bookings/{id}"))
        .await?
        .assert_problem(409, "cancellation-closed");

    // After the round: closed.
    anonymous
        .send(
            reqwest::Method::PUT,
            "/dev/clock",
            Some(&json!({"now": "2021-09-18T18:00:00+09:00"})),
            &[],
        )
        .await?;
    let me = journey::login(
        &Api::new(&dev.gateway_url, "laptop-1"),
        &otp,
        &journey::HONG,
    )
    .await?;
    let late = me.get("/v1/me/eligibility").await?;
    assert_eq!(late.body["reason"], "campaign-closed", "{late:?}");

    // Malformed clock input is refused.
    let bad = anonymous
        .send(
            reqwest::Method::PUT,
            "/dev/clock",
            Some(&json!({"now": "yesterday"})),
            &[],
        )
        .await?;
    bad.assert_problem(400, "invalid-request");
    let reset = anonymous
        .send(reqwest::Method::DELETE, "/dev/clock", None, &[])
        .await?;
    assert_eq!(reset.status, 200, "{reset:?}");
    assert!(
        reset.body["now"].as_str().unwrap_or_default() > "2026",
        "{reset:?}"
    );
    Ok(())
}

/// The walk-through `vaxbook dev` prints is run as printed, in bash with curl and sed, and
/// does what it says: verify, book, list, cancel, and a second device gets 423.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_walkthrough_runs_as_printed() -> anyhow::Result<()> {
    let dev = DevStack::start("dev-walkthrough").await?;
    let printed = dev.proc.output();
    let script: String = printed
        .split("---8<--- walk-through\n")
        .nth(1)
        .and_then(|rest| rest.split("---8<---").next())
        .ok_or_else(|| anyhow::anyhow!("no walk-through in the output: {printed}"))?
        .to_owned();
    assert!(
        script.contains(&format!("G={}", dev.gateway_url)),
        "{script}"
    );
    let run = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .await
        .map_err(|err| anyhow::anyhow!("the walk-through needs bash, curl and sed: {err}"))?;
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "walk-through failed: {stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("\"eligible\":true"), "{stdout}");
    assert!(stdout.contains("\"status\":\"confirmed\""), "{stdout}");
    assert!(stdout.contains("\"status\":\"cancelled\""), "{stdout}");
    assert!(stdout.contains("HTTP/1.1 423"), "{stdout}");
    // Booking for a 60+ parent after the round's proxy deadline is refused, saying until when.
    assert!(
        stdout.contains("HTTP/1.1 403")
            && stdout.contains("/problems/proxy-not-allowed")
            && stdout.contains("\"proxy_deadline\":\"2021-08-09T18:00:00+09:00\""),
        "{stdout}"
    );
    // The optional step: a financial certificate under the dev CA verifies its person.
    assert!(
        stdout.contains("verified by certificate: 박*수"),
        "{stdout}"
    );
    // The second person is not yet in their window, and sees when it opens.
    assert!(
        stdout.contains("\"reason\":\"window-not-open\"")
            && stdout.contains("\"opens_at\":\"2021-08-15T20:00:00+09:00\""),
        "{stdout}"
    );
    assert!(
        stdout.to_lowercase().contains("retry-after: 600"),
        "{stdout}"
    );
    // The waiting room: without an admission the booking is refused, the polled ticket is
    // admitted, and the booking with its grant is confirmed.
    assert!(stdout.contains("/problems/admission-required"), "{stdout}");
    assert!(stdout.contains("\"admitted\":true"), "{stdout}");
    assert!(
        stdout.matches("\"status\":\"confirmed\"").count() >= 2,
        "{stdout}"
    );
    Ok(())
}

/// With `DATABASE_URL` and `REDIS_URL` set, the dev run keeps its data in those servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journey_walks_through_vaxbook_dev_on_postgres_and_redis() -> anyhow::Result<()> {
    let database_url = platform::pg::create_test_database("dev_pg").await?;
    platform::redis_conn::connect_for_tests().await?;
    let prefix = platform::redis_conn::test_prefix("dev");
    let redis_url = platform::config::string(
        "VAXBOOK_TEST_REDIS_URL",
        platform::redis_conn::DEFAULT_REDIS_URL,
    );
    let dev = DevStack::start_with(
        "dev-pg-redis",
        &[
            ("DATABASE_URL", &database_url),
            ("REDIS_URL", &redis_url),
            ("REDIS_KEY_PREFIX", &prefix),
        ],
    )
    .await?;
    let printed = dev.proc.output();
    assert!(
        printed.contains("PostgreSQL (DATABASE_URL) + Redis (REDIS_URL)"),
        "{printed}"
    );
    let otp = OtpSource::DevSms {
        gateway: dev.gateway_url.clone(),
    };
    journey::walk(
        &dev.gateway_url,
        &otp,
        &Expect {
            campaign_id: DEMO_CAMPAIGN.to_owned(),
        },
    )
    .await?;

    // The demo and the journey's cancelled booking are in PostgreSQL, the lock keys in Redis.
    let (client, connection) =
        tokio_postgres::connect(&database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let slots: i64 = client
        .query_one("SELECT count(*) FROM slots", &[])
        .await?
        .get(0);
    // Six centers: the 18–49 round's two time bands on each of its 38 vaccination days (26 Aug
    // to 2 Oct) and the 60+ round's one band on each of its 46 (16 Aug to 30 Sep).
    assert_eq!(slots, 6 * (38 * 2 + 46));
    let cancelled: i64 = client
        .query_one(
            "SELECT count(*) FROM bookings WHERE status = 'cancelled'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(cancelled, 1);
    let mut connection =
        platform::redis_conn::connect(&redis_url, std::time::Duration::from_secs(5)).await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}session:*"))
        .query_async(&mut connection)
        .await?;
    assert!(!keys.is_empty(), "no session keys under {prefix}");
    Ok(())
}

/// A simple certificate (Kakao, Naver, PASS): start → the provider's app signs an assertion
/// bound to the nonce (the dev stand-in at /dev/idp) → complete with it. A forged or foreign
/// assertion is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_certificates_verify_through_the_dev_identity_providers() -> anyhow::Result<()> {
    let dev = DevStack::start("dev-idp").await?;
    // One person per provider: a person verified on one device is blocked on the others (R3),
    // and since the start asks session-svc first, the second device would not get a nonce.
    let people = [
        journey::HONG,
        journey::Person {
            name: "김영희",
            rrn: "950115-2234567",
            ..journey::HONG
        },
        journey::Person {
            name: "이순신",
            rrn: "880303-1234567",
            ..journey::HONG
        },
    ];
    for (index, provider) in ["kakao", "naver", "pass"].iter().enumerate() {
        let person = people[index].clone();
        let device = Api::new(&dev.gateway_url, &format!("tablet-{index}"));
        let started = device
            .post(
                "/v1/auth/verifications",
                &json!({"provider": provider, "name": person.name, "rrn": person.rrn}),
            )
            .await?;
        assert_eq!(started.status, 201, "{started:?}");
        let nonce = started.body["nonce"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(nonce.len() >= 16, "a nonce: {started:?}");
        let id = started.body["verification_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let complete = format!("/v1/auth/verifications/{id}/complete");
        let sign = |name: &str, rrn: &str, nonce: &str, by: &str| {
            let body = json!({"name": name, "rrn": rrn, "phone": person.phone, "nonce": nonce});
            let anonymous = Api::new(&dev.gateway_url, "idp-app");
            let path = format!("/dev/idp/{by}/assertions");
            async move { anonymous.post(&path, &body).await }
        };

        // Refused: another person's assertion, the wrong nonce, another provider's signature.
        let other = sign("김철수", "850505-1234567", &nonce, provider).await?;
        assert_eq!(other.status, 201, "{other:?}");
        device
            .post(&complete, &json!({"assertion": other.body["assertion"]}))
            .await?
            .assert_problem(401, "verification-failed");
        let stale = sign(person.name, person.rrn, "not-the-nonce", provider).await?;
        device
            .post(&complete, &json!({"assertion": stale.body["assertion"]}))
            .await?
            .assert_problem(401, "verification-failed");
        let foreign_provider = if *provider == "kakao" {
            "naver"
        } else {
            "kakao"
        };
        let foreign = sign(person.name, person.rrn, &nonce, foreign_provider).await?;
        device
            .post(&complete, &json!({"assertion": foreign.body["assertion"]}))
            .await?
            .assert_problem(401, "verification-failed");
        device
            .post(&complete, &json!({"assertion": "abc.def.ghi"}))
            .await?
            .assert_problem(401, "verification-failed");

        // Accepted: the person's own assertion, bound to this verification.
        let signed = sign(person.name, person.rrn, &nonce, provider).await?;
        let completed = device
            .post(&complete, &json!({"assertion": signed.body["assertion"]}))
            .await?;
        assert_eq!(completed.status, 200, "{completed:?}");
        if index == 0 {
            let me = device.with_token(completed.body["access_token"].as_str().unwrap_or_default());
            let eligibility = me.get("/v1/me/eligibility").await?;
            assert_eq!(eligibility.body["eligible"], true, "{eligibility:?}");
        }
    }
    // The first device holds the first person's lock: another device is blocked (R3) at the
    // start, before the provider is asked for anything.
    let person = journey::HONG;
    Api::new(&dev.gateway_url, "tablet-9")
        .post(
            "/v1/auth/verifications",
            &json!({"provider": "naver", "name": person.name, "rrn": person.rrn}),
        )
        .await?
        .assert_problem(423, "device-locked");
    Api::new(&dev.gateway_url, "idp-app")
        .post(
            "/dev/idp/myspace/assertions",
            &json!({"name": "a", "rrn": "b", "nonce": "c"}),
        )
        .await?
        .assert_problem(404, "not-found");
    // Financial certificates are offered in the dev run (its stand-in CA is trusted); a
    // provider nobody registered is not.
    let cert = Api::new(&dev.gateway_url, "desktop")
        .post(
            "/v1/auth/verifications",
            &json!({"provider": "financial_cert", "name": "박민수", "rrn": "800220-1234567"}),
        )
        .await?;
    assert_eq!(cert.status, 201, "{cert:?}");
    assert!(
        cert.body["nonce"]
            .as_str()
            .is_some_and(|nonce| nonce.len() >= 16)
    );
    Api::new(&dev.gateway_url, "desktop")
        .post(
            "/v1/auth/verifications",
            &json!({"provider": "myspace", "name": "박민수", "rrn": "800220-1234567"}),
        )
        .await?
        .assert_problem(400, "unsupported-provider");
    Ok(())
}

/// Changing a booking: refused with the campaign's date before it, done in one step after it
/// (the old place freed, the new one taken).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_can_be_changed_once_the_campaign_allows_it() -> anyhow::Result<()> {
    let dev = DevStack::start("dev-change").await?;
    let otp = OtpSource::DevSms {
        gateway: dev.gateway_url.clone(),
    };
    let clock = Api::new(&dev.gateway_url, "clock-setter");
    let set_clock = |now: &'static str| {
        let clock = clock.clone();
        async move {
            clock
                .send(
                    reqwest::Method::PUT,
                    "/dev/clock",
                    Some(&json!({"now": now})),
                    &[],
                )
                .await
        }
    };
    let center = "00000000-0000-4000-8000-000000000002";
    let slots_on = |me: Api, date: &'static str| async move {
        let slots = me
            .get(&format!(
                "/v1/slots?center_id={center}&from={date}&to={date}"
            ))
            .await?;
        anyhow::Ok(slots.body[0].clone())
    };

    // In the 18-49 round's open window (every birth day may book).
    set_clock("2021-08-22T10:00:00+09:00").await?;
    let me = journey::login(
        &Api::new(&dev.gateway_url, "laptop-1"),
        &otp,
        &journey::HONG,
    )
    .await?;
    let first = slots_on(me.clone(), "2021-10-01").await?;
    let second = slots_on(me.clone(), "2021-10-02").await?;
    let booked = me
        .post("/v1/bookings", &json!({"slot_id": first["id"]}))
        .await?;
    assert_eq!(booked.status, 201, "{booked:?}");
    let id = booked.body["id"].as_str().unwrap_or_default().to_owned();
    let refused = me
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/bookings/{id}"),
            Some(&json!({"slot_id": second["id"]})),
            &[],
        )
        .await?;
    refused.assert_problem(409, "modification-not-allowed");
    assert_eq!(
        refused.body["allowed_from"], "2021-09-19T00:00:00+09:00",
        "{refused:?}"
    );

    set_clock("2021-09-20T10:00:00+09:00").await?;
    let me = journey::login(
        &Api::new(&dev.gateway_url, "laptop-1"),
        &otp,
        &journey::HONG,
    )
    .await?;
    let changed = me
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/bookings/{id}"),
            Some(&json!({"slot_id": second["id"]})),
            &[],
        )
        .await?;
    assert_eq!(changed.status, 200, "{changed:?}");
    assert_eq!(changed.body["slot"]["id"], second["id"], "{changed:?}");
    assert_eq!(
        changed.body["cancellable_until"], "2021-09-30",
        "{changed:?}"
    );
    let first_after = slots_on(me.clone(), "2021-10-01").await?;
    let second_after = slots_on(me.clone(), "2021-10-02").await?;
    assert_eq!(
        first_after["remaining"], first["remaining"],
        "the old place is free again"
    );
    assert_eq!(
        second_after["remaining"].as_i64(),
        second["remaining"].as_i64().map(|remaining| remaining - 1),
        "the new place is taken"
    );
    let listed = me.get("/v1/bookings").await?;
    assert_eq!(
        listed.body.as_array().map(Vec::len),
        Some(1),
        "still one booking: {listed:?}"
    );

    // A slot whose day has passed can be neither booked nor moved to.
    let past = slots_on(me.clone(), "2021-08-26").await?;
    me.send(
        reqwest::Method::PATCH,
        &format!("/v1/bookings/{id}"),
        Some(&json!({"slot_id": past["id"]})),
        &[],
    )
    .await?
    .assert_problem(400, "invalid-request");
    me.post("/v1/bookings", &json!({"slot_id": past["id"]}))
        .await?
        .assert_problem(400, "invalid-request");
    let unchanged = me.get(&format!("/v1/bookings/{id}")).await?;
    assert_eq!(unchanged.body["slot"]["id"], second["id"], "{unchanged:?}");
    Ok(())
}
