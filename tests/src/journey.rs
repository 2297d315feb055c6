//! The citizen's journey through the gateway, shared by the end-to-end tests of the
//! multi-process stack and of `vaxbook dev`: verify identity with the phone provider, hold the
//! device lock, check eligibility, book, list, cancel, log out — with bad input at every step
//! answered by a 4xx problem that changes nothing.

use serde_json::{Value, json};

use crate::api::{Api, Reply};

/// A test person (fictional data).
#[derive(Debug, Clone)]
pub struct Person {
    pub name: &'static str,
    pub rrn: &'static str,
    pub phone: &'static str,
    /// The phone's carrier, as the carriers' agency knows it.
    pub carrier: &'static str,
}

/// Born 1990-01-13: inside the 18–49 group, whose rotation window (13 Aug 2021 20:00 → 14 Aug
/// 18:00 KST) is open when the dev clock starts.
pub const HONG: Person = Person {
    name: "홍길동",
    rrn: "900113-1234567",
    phone: "010-1234-5678",
    carrier: "skt",
};

/// The forms the test person's personal data can take; none may appear in any log.
pub const PERSONAL_DATA: &[&str] = &[
    "900113-1234567",
    "9001131234567",
    "010-1234-5678",
    "01012345678",
    "홍길동",
];

/// Asserts that no personal data of the test person is in `log`.
#[track_caller]
pub fn assert_no_personal_data(name: &str, log: &str) {
    assert!(
        !log.is_empty(),
        "the log of {name} is empty: nothing was checked"
    );
    for data in PERSONAL_DATA {
        assert!(
            !log.contains(data),
            "the log of {name} contains personal data ({} characters)",
            data.len()
        );
    }
}

/// Where the one-time codes the SMS port sent can be read.
pub enum OtpSource {
    /// `GET /dev/sms` of a dev run.
    DevSms { gateway: String },
    /// The Redis stream auth-svc writes for the SMS relay.
    RedisOutbox { url: String, prefix: String },
}

impl OtpSource {
    /// Every code sent to `phone`, newest first.
    pub async fn codes(&self, phone: &str) -> anyhow::Result<Vec<String>> {
        match self {
            Self::DevSms { gateway } => {
                let reply = Api::new(gateway, "")
                    .get(&format!("/dev/sms?to={phone}"))
                    .await?;
                anyhow::ensure!(reply.status == 200, "/dev/sms answered {reply:?}");
                Ok(reply
                    .body
                    .as_array()
                    .map(|messages| {
                        messages
                            .iter()
                            .filter_map(|message| message["otp"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default())
            }
            Self::RedisOutbox { url, prefix } => {
                // A single server or a Redis Cluster, as the services are given.
                let mut connection =
                    platform::redis_conn::connect(url, std::time::Duration::from_secs(5)).await?;
                let entries: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
                    .arg(format!("{prefix}sms:outbox"))
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut connection)
                    .await?;
                let wanted: String = phone.chars().filter(char::is_ascii_digit).collect();
                Ok(entries
                    .ids
                    .iter()
                    .filter(|entry| {
                        entry
                            .get::<String>("to")
                            .map(|to| {
                                to.chars().filter(char::is_ascii_digit).collect::<String>()
                                    == wanted
                            })
                            .unwrap_or(false)
                    })
                    .filter_map(|entry| entry.get::<String>("otp"))
                    .collect())
            }
        }
    }

    /// The newest code sent to each number (digits only), read once from the Redis outbox.
    pub async fn all_codes(&self) -> anyhow::Result<std::collections::HashMap<String, String>> {
        let Self::RedisOutbox { url, prefix } = self else {
            anyhow::bail!("all_codes reads the Redis outbox");
        };
        let mut connection =
            platform::redis_conn::connect(url, std::time::Duration::from_secs(5)).await?;
        let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(format!("{prefix}sms:outbox"))
            .arg("-")
            .arg("+")
            .query_async(&mut connection)
            .await?;
        let mut codes = std::collections::HashMap::new();
        for entry in &entries.ids {
            if let (Some(to), Some(otp)) = (entry.get::<String>("to"), entry.get::<String>("otp")) {
                codes.insert(to.chars().filter(char::is_ascii_digit).collect(), otp);
            }
        }
        Ok(codes)
    }

    pub async fn latest(&self, phone: &str) -> anyhow::Result<String> {
        self.codes(phone)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no code was sent"))
    }
}

fn start_body(person: &Person) -> Value {
    json!({"provider": "phone", "name": person.name, "rrn": person.rrn, "phone": person.phone, "carrier": person.carrier})
}

/// Starts and completes a phone verification on `api`'s device; returns the raw answer of
/// `…/complete`.
pub async fn verify(api: &Api, otp: &OtpSource, person: &Person) -> anyhow::Result<Reply> {
    let started = api
        .post("/v1/auth/verifications", &start_body(person))
        .await?;
    anyhow::ensure!(started.status == 201, "start verification: {started:?}");
    let id = started.body["verification_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let code = otp.latest(person.phone).await?;
    api.post(
        &format!("/v1/auth/verifications/{id}/complete"),
        &json!({"otp": code}),
    )
    .await
}

/// Verifies and returns an API client holding the access token.
pub async fn login(api: &Api, otp: &OtpSource, person: &Person) -> anyhow::Result<Api> {
    let completed = verify(api, otp, person).await?;
    anyhow::ensure!(
        completed.status == 200,
        "complete verification: {completed:?}"
    );
    let token = completed.body["access_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no access token in {completed:?}"))?;
    Ok(api.with_token(token))
}

async fn remaining(api: &Api, center_id: &str, slot_id: &str) -> anyhow::Result<i64> {
    let slots = api.get(&format!("/v1/slots?center_id={center_id}")).await?;
    anyhow::ensure!(slots.status == 200, "list slots: {slots:?}");
    slots
        .body
        .as_array()
        .and_then(|slots| slots.iter().find(|slot| slot["id"] == slot_id))
        .and_then(|slot| slot["remaining"].as_i64())
        .ok_or_else(|| anyhow::anyhow!("slot {slot_id} not listed"))
}

fn other_code(code: &str) -> String {
    let value: u32 = code.parse().unwrap_or(0);
    format!("{:06}", (value + 1) % 1_000_000)
}

fn me_without_device(gateway: &str, token: &str) -> Api {
    Api::new(gateway, "").with_token(token)
}

/// What the walk expects of the system it walks.
pub struct Expect {
    /// The campaign the person is eligible for.
    pub campaign_id: String,
}

/// The whole journey with its bad-input checks. Panics (test failure) on any deviation.
pub async fn walk(gateway: &str, otp: &OtpSource, expect: &Expect) -> anyhow::Result<()> {
    let person = HONG;
    let laptop = Api::new(gateway, "laptop-1");

    // Bad verification starts: 400 problems, and no code is sent.
    let missing_rrn = laptop
        .post(
            "/v1/auth/verifications",
            &json!({"provider": "phone", "name": person.name, "phone": person.phone}),
        )
        .await?;
    missing_rrn.assert_problem(400, "invalid-request");
    let malformed_rrn = laptop
        .post(
            "/v1/auth/verifications",
            &json!({"provider": "phone", "name": person.name, "rrn": "901301-1234567", "phone": person.phone, "carrier": person.carrier}),
        )
        .await?;
    malformed_rrn.assert_problem(400, "invalid-identity");
    assert!(
        !malformed_rrn.body.to_string().contains("901301"),
        "the problem must not echo the RRN: {malformed_rrn:?}"
    );
    let malformed_phone = laptop
        .post(
            "/v1/auth/verifications",
            &json!({"provider": "phone", "name": person.name, "rrn": person.rrn, "phone": "12345", "carrier": person.carrier}),
        )
        .await?;
    malformed_phone.assert_problem(400, "invalid-identity");
    let unknown_provider = laptop
        .post(
            "/v1/auth/verifications",
            &json!({"provider": "fax", "name": person.name, "rrn": person.rrn, "phone": person.phone}),
        )
        .await?;
    // auth-svc decides which providers are on offer (the gateway keeps no list).
    unknown_provider.assert_problem(400, "unsupported-provider");
    let not_json = laptop
        .send_bytes(
            reqwest::Method::POST,
            "/v1/auth/verifications",
            Some((b"{not json".to_vec(), "application/json")),
            &[],
        )
        .await?;
    not_json.assert_problem(400, "invalid-request");
    let no_device = Api::new(gateway, "")
        .post("/v1/auth/verifications", &start_body(&person))
        .await?;
    no_device.assert_problem(400, "invalid-request");
    assert!(
        otp.codes(person.phone).await?.is_empty(),
        "bad starts must send no code"
    );

    // Start, then answer wrongly, then rightly.
    let started = laptop
        .post("/v1/auth/verifications", &start_body(&person))
        .await?;
    assert_eq!(started.status, 201, "start: {started:?}");
    assert_eq!(started.body["provider"], "phone");
    let verification_id = started.body["verification_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!verification_id.is_empty(), "verification id: {started:?}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(
            started.body["expires_at"].as_str().unwrap_or_default()
        )
        .is_ok(),
        "expires_at must be RFC 3339: {started:?}"
    );
    let codes = otp.codes(person.phone).await?;
    assert_eq!(codes.len(), 1, "exactly one code sent");
    let code = codes[0].clone();
    assert!(
        code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()),
        "six-digit code, got {code}"
    );

    let complete_path = format!("/v1/auth/verifications/{verification_id}/complete");
    laptop
        .post(&complete_path, &json!({"otp": other_code(&code)}))
        .await?
        .assert_problem(401, "verification-failed");
    laptop
        .post(&complete_path, &json!({}))
        .await?
        .assert_problem(400, "invalid-request");
    laptop
        .post(
            &format!("/v1/auth/verifications/{}/complete", uuid::Uuid::new_v4()),
            &json!({"otp": code}),
        )
        .await?
        .assert_problem(410, "verification-expired");

    let completed = laptop.post(&complete_path, &json!({"otp": code})).await?;
    assert_eq!(completed.status, 200, "complete: {completed:?}");
    assert_eq!(completed.body["token_type"], "Bearer");
    assert!(
        completed.body["expires_in"].as_i64().unwrap_or(0) > 0,
        "{completed:?}"
    );
    assert_eq!(completed.body["session"]["device_id"], "laptop-1");
    let token = completed.body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {completed:?}");
    // A verification is single use.
    laptop
        .post(&complete_path, &json!({"otp": code}))
        .await?
        .assert_problem(410, "verification-expired");

    // A second device of the same person is blocked, with Retry-After, before any code is
    // sent to it (auth-svc asks session-svc first).
    let phone_device = Api::new(gateway, "phone-2");
    let codes_before = otp.codes(person.phone).await?.len();
    let locked = phone_device
        .post("/v1/auth/verifications", &start_body(&person))
        .await?;
    locked.assert_problem(423, "device-locked");
    assert_eq!(
        otp.codes(person.phone).await?.len(),
        codes_before,
        "no code is sent to a blocked device"
    );
    let retry_after: u64 = locked
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((1..=600).contains(&retry_after), "Retry-After: {locked:?}");
    assert_eq!(
        locked.body["retry_after"].as_u64(),
        Some(retry_after),
        "{locked:?}"
    );

    let me = laptop.with_token(&token);

    // Bad tokens.
    laptop
        .with_token("not-a-token")
        .get("/v1/bookings")
        .await?
        .assert_problem(401, "unauthenticated");
    laptop
        .get("/v1/bookings")
        .await?
        .assert_problem(401, "unauthenticated");
    // The token is bound to its device.
    phone_device
        .with_token(&token)
        .get("/v1/bookings")
        .await?
        .assert_problem(401, "unauthenticated");

    // Bad input on the other authenticated endpoints: refused, and the session survives it.
    let garbage = laptop.with_token("not-a-token");
    garbage
        .get("/v1/me/eligibility")
        .await?
        .assert_problem(401, "unauthenticated");
    laptop
        .get("/v1/centers")
        .await?
        .assert_problem(401, "unauthenticated");
    garbage
        .send(reqwest::Method::POST, "/v1/session/logout", None, &[])
        .await?
        .assert_problem(401, "unauthenticated");
    me_without_device(gateway, &token)
        .get("/v1/me/eligibility")
        .await?
        .assert_problem(400, "invalid-request");

    // Eligibility.
    let eligibility = me.get("/v1/me/eligibility").await?;
    assert_eq!(eligibility.status, 200, "{eligibility:?}");
    assert_eq!(eligibility.body["eligible"], true, "{eligibility:?}");
    assert_eq!(eligibility.body["campaign_id"], expect.campaign_id.as_str());

    // Centers and slots.
    let centers = me.get("/v1/centers").await?;
    assert_eq!(centers.status, 200, "{centers:?}");
    let center_id = centers.body[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!center_id.is_empty(), "a center: {centers:?}");
    let slots = me.get(&format!("/v1/slots?center_id={center_id}")).await?;
    assert_eq!(slots.status, 200, "{slots:?}");
    let open_slots: Vec<String> = slots
        .body
        .as_array()
        .map(|slots| {
            slots
                .iter()
                .filter(|slot| {
                    slot["campaign_id"] == expect.campaign_id.as_str()
                        && slot["remaining"].as_i64().unwrap_or(0) > 0
                })
                .filter_map(|slot| slot["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert!(open_slots.len() >= 2, "two open slots: {slots:?}");
    // The last two in time order: far enough from today for cancellation to be open.
    let slot_a = open_slots[open_slots.len() - 2].clone();
    let slot_b = open_slots[open_slots.len() - 1].clone();
    let remaining_a = remaining(&me, &center_id, &slot_a).await?;
    let remaining_b = remaining(&me, &center_id, &slot_b).await?;
    me.get("/v1/slots")
        .await?
        .assert_problem(400, "invalid-request");
    me.get("/v1/slots?center_id=not-a-uuid")
        .await?
        .assert_problem(400, "invalid-request");
    me.get(&format!("/v1/slots?center_id={center_id}&from=26-08-2021"))
        .await?
        .assert_problem(400, "invalid-request");

    // Bad bookings change nothing.
    me.post("/v1/bookings", &json!({}))
        .await?
        .assert_problem(400, "invalid-request");
    me.post("/v1/bookings", &json!({"slot_id": "not-a-uuid"}))
        .await?
        .assert_problem(400, "invalid-request");
    me.post(
        "/v1/bookings",
        &json!({"slot_id": uuid::Uuid::new_v4().to_string()}),
    )
    .await?
    .assert_problem(404, "not-found");
    laptop
        .with_token("garbage.token.here")
        .post("/v1/bookings", &json!({"slot_id": slot_a}))
        .await?
        .assert_problem(401, "unauthenticated");
    me.post(
        "/v1/bookings",
        &json!({"slot_id": slot_a, "for": {"name": "홍어멈", "rrn": "600101-2234567"}}),
    )
    .await?
    .assert_problem(403, "proxy-not-allowed");
    let listed = me.get("/v1/bookings").await?;
    assert_eq!(listed.status, 200, "{listed:?}");
    assert_eq!(
        listed.body.as_array().map(Vec::len),
        Some(0),
        "nothing booked by bad input: {listed:?}"
    );
    assert_eq!(
        remaining(&me, &center_id, &slot_a).await?,
        remaining_a,
        "bad input changed capacity"
    );

    // Book.
    let booked = me
        .send(
            reqwest::Method::POST,
            "/v1/bookings",
            Some(&json!({"slot_id": slot_a})),
            &[("Idempotency-Key", "journey-1")],
        )
        .await?;
    assert_eq!(booked.status, 201, "book: {booked:?}");
    assert_eq!(booked.body["status"], "confirmed");
    assert_eq!(booked.body["slot"]["id"], slot_a.as_str());
    let booking_id = booked.body["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        booked.header("location"),
        Some(format!("/v1/bookings/{booking_id}"))
    );
    assert_eq!(remaining(&me, &center_id, &slot_a).await?, remaining_a - 1);

    // The same request again is the same booking.
    let replay = me
        .send(
            reqwest::Method::POST,
            "/v1/bookings",
            Some(&json!({"slot_id": slot_a})),
            &[("Idempotency-Key", "journey-1")],
        )
        .await?;
    assert!(
        replay.status == 201 || replay.status == 200,
        "replay: {replay:?}"
    );
    assert_eq!(replay.body["id"], booking_id.as_str());
    assert_eq!(remaining(&me, &center_id, &slot_a).await?, remaining_a - 1);
    me.send(
        reqwest::Method::POST,
        "/v1/bookings",
        Some(&json!({"slot_id": slot_b})),
        &[("Idempotency-Key", "journey-1")],
    )
    .await?
    .assert_problem(422, "idempotency-key-reused");
    // One active booking per person and campaign.
    me.post("/v1/bookings", &json!({"slot_id": slot_b}))
        .await?
        .assert_problem(409, "already-booked");
    assert_eq!(remaining(&me, &center_id, &slot_b).await?, remaining_b);

    // List and read.
    let listed = me.get("/v1/bookings").await?;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(1), "{listed:?}");
    assert_eq!(listed.body[0]["id"], booking_id.as_str());
    let read = me.get(&format!("/v1/bookings/{booking_id}")).await?;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.body["campaign_id"], expect.campaign_id.as_str());
    me.get(&format!("/v1/bookings/{}", uuid::Uuid::new_v4()))
        .await?
        .assert_problem(404, "not-found");
    me.get("/v1/bookings/not-a-uuid")
        .await?
        .assert_problem(400, "invalid-request");
    me.delete("/v1/bookings/not-a-uuid")
        .await?
        .assert_problem(400, "invalid-request");
    me.delete(&format!("/v1/bookings/{}", uuid::Uuid::new_v4()))
        .await?
        .assert_problem(404, "not-found");
    garbage
        .delete(&format!("/v1/bookings/{booking_id}"))
        .await?
        .assert_problem(401, "unauthenticated");
    let still = me.get(&format!("/v1/bookings/{booking_id}")).await?;
    assert_eq!(
        still.body["status"], "confirmed",
        "refused cancels change nothing: {still:?}"
    );

    // Cancel: the slot is freed at once.
    let cancelled = me.delete(&format!("/v1/bookings/{booking_id}")).await?;
    assert_eq!(cancelled.status, 200, "cancel: {cancelled:?}");
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(remaining(&me, &center_id, &slot_a).await?, remaining_a);
    me.delete(&format!("/v1/bookings/{booking_id}"))
        .await?
        .assert_problem(409, "already-cancelled");

    // Log out: the lock is freed and the token stops working.
    let logout = me
        .send(reqwest::Method::POST, "/v1/session/logout", None, &[])
        .await?;
    assert_eq!(logout.status, 204, "logout: {logout:?}");
    me.get("/v1/bookings")
        .await?
        .assert_problem(401, "session-expired");
    Ok(())
}
