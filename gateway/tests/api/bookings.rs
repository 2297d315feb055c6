//! Centers, slots and bookings: shapes, forwarding of the caller's token, problem mapping.

use platform::problem::{Problem, ProblemKind};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{DEVICE, Harness, problem, problem_name};

#[tokio::test]
async fn centers_and_slots_are_listed() {
    let harness = Harness::start().await;
    let centers: Value = harness
        .authed(Method::GET, "/v1/centers?region=seoul")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        centers,
        json!([{"id": "center-1", "name": "Jongno Health Center", "region": "seoul", "address": "1 Jong-ro"}])
    );
    assert!(
        harness.fakes.calls_to("booking.ListCenters")[0]
            .message
            .contains("region: \"seoul\"")
    );

    let response = harness
        .authed(
            Method::GET,
            "/v1/slots?center_id=center-1&from=2021-08-26&to=2021-08-31",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let slots: Value = response.json().await.unwrap();
    assert_eq!(slots[0]["id"], "slot-1");
    assert_eq!(slots[0]["starts_at"], "2021-08-26T09:00:00+09:00");
    assert_eq!(slots[0]["ends_at"], "2021-08-26T10:00:00+09:00");
    assert_eq!(slots[0]["remaining"], 42);
    assert_eq!(slots[0]["capacity"], 100);
    let call = &harness.fakes.calls_to("booking.ListSlots")[0];
    assert!(
        call.message.contains("from: \"2021-08-26\""),
        "{}",
        call.message
    );
    assert!(call.message.contains("to: \"2021-08-31\""));
}

#[tokio::test]
async fn slots_need_a_valid_center_id_and_dates() {
    let harness = Harness::start().await;
    for query in [
        "/v1/slots",
        "/v1/slots?center_id=",
        "/v1/slots?center_id=c1&from=26-08-2021",
        "/v1/slots?center_id=c1&from=2021-09-01&to=2021-08-01",
    ] {
        let response = harness.authed(Method::GET, query).send().await.unwrap();
        let (status, _, body) = problem(response).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(problem_name(&body), "invalid-request");
    }
    assert_eq!(harness.fakes.booking_calls(), 0);
}

#[tokio::test]
async fn booking_answers_201_with_location_and_forwards_the_token() {
    let harness = Harness::start().await;
    let token = harness.token();
    let response = harness
        .bare(Method::POST, "/v1/bookings")
        .header("x-device-id", crate::common::DEVICE)
        .bearer_auth(&token)
        .header("idempotency-key", "key-123")
        .json(&json!({"slot_id": "slot-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["location"], "/v1/bookings/booking-1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], "booking-1");
    assert_eq!(body["status"], "confirmed");
    assert_eq!(body["slot"]["id"], "slot-1");
    assert!(
        body["created_at"]
            .as_str()
            .unwrap()
            .starts_with("2021-08-20T12:00")
    );
    assert!(body.get("cancelled_at").is_none());
    assert_eq!(body["cancellable_until"], "2021-08-24");

    let call = &harness.fakes.calls_to("booking.CreateBooking")[0];
    assert_eq!(
        call.metadata.get("authorization").unwrap(),
        format!("Bearer {token}").as_str()
    );
    assert!(call.message.contains("slot_id: \"slot-1\""));
    assert!(call.message.contains("idempotency_key: \"key-123\""));
    assert!(call.message.contains("proxy: false"));
}

#[tokio::test]
async fn booking_for_someone_else_sets_the_proxy_flag_without_sending_their_data() {
    let harness = Harness::start().await;
    let response = harness
        .authed(Method::POST, "/v1/bookings")
        .json(&json!({"slot_id": "slot-1", "for": {"name": "홍어머니", "rrn": "500101-2345678"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let call = &harness.fakes.calls_to("booking.CreateBooking")[0];
    assert!(call.message.contains("proxy: true"));
    assert!(!call.message.contains("500101"));
    // The person booked for reaches booking-svc only as auth-svc's signed grant.
    assert!(call.message.contains("proxy_grant: \"proxy-grant-1\""));
    assert_eq!(harness.fakes.calls_to("auth.ResolveProxy").len(), 1);
}

#[tokio::test]
async fn booking_problems_keep_their_types() {
    let cases = [
        (
            Problem::new(ProblemKind::SlotFull, "the slot is full"),
            409,
            "slot-full",
        ),
        (
            Problem::new(ProblemKind::AlreadyBooked, "already booked"),
            409,
            "already-booked",
        ),
        (
            Problem::new(ProblemKind::ProxyNotAllowed, "no proxies"),
            403,
            "proxy-not-allowed",
        ),
        (
            Problem::new(ProblemKind::IdempotencyKeyReused, "key reused"),
            422,
            "idempotency-key-reused",
        ),
    ];
    let harness = Harness::start().await;
    for (failure, expected_status, expected_name) in cases {
        harness
            .fakes
            .fail("booking.CreateBooking", failure.to_status());
        let response = harness
            .authed(Method::POST, "/v1/bookings")
            .json(&json!({"slot_id": "slot-1"}))
            .send()
            .await
            .unwrap();
        let (status, _, body) = problem(response).await;
        assert_eq!(status, expected_status);
        assert_eq!(problem_name(&body), expected_name);
    }

    harness.fakes.fail(
        "booking.CreateBooking",
        Problem::new(ProblemKind::NotEligible, "not your day yet")
            .with("reason", "not-open-yet")
            .to_status(),
    );
    let response = harness
        .authed(Method::POST, "/v1/bookings")
        .json(&json!({"slot_id": "slot-1"}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(response).await;
    assert_eq!(status, 403);
    assert_eq!(problem_name(&body), "not-eligible");
    assert_eq!(body["reason"], "not-open-yet");
}

#[tokio::test]
async fn bookings_are_listed_fetched_and_cancelled() {
    let harness = Harness::start().await;
    let list: Value = harness
        .authed(Method::GET, "/v1/bookings")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], "booking-1");

    let found: Value = harness
        .authed(Method::GET, "/v1/bookings/booking-7")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["id"], "booking-7");

    let response = harness
        .authed(Method::DELETE, "/v1/bookings/booking-7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cancelled: Value = response.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert!(
        cancelled["cancelled_at"]
            .as_str()
            .unwrap()
            .ends_with("+09:00")
    );
    for method in [
        "booking.ListMyBookings",
        "booking.GetBooking",
        "booking.CancelBooking",
    ] {
        let call = &harness.fakes.calls_to(method)[0];
        assert!(call.metadata.get("authorization").is_some(), "{method}");
    }
}

#[tokio::test]
async fn a_missing_booking_is_404_and_a_late_cancellation_409() {
    let harness = Harness::start().await;
    harness.fakes.fail(
        "booking.GetBooking",
        Problem::new(ProblemKind::NotFound, "no such booking").to_status(),
    );
    let response = harness
        .authed(Method::GET, "/v1/bookings/nope")
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(response).await;
    assert_eq!(status, 404);
    assert_eq!(problem_name(&body), "not-found");

    harness.fakes.fail(
        "booking.CancelBooking",
        Problem::new(
            ProblemKind::CancellationClosed,
            "cancellation closed on 2021-08-24",
        )
        .with("cancellable_until", "2021-08-24")
        .to_status(),
    );
    let response = harness
        .authed(Method::DELETE, "/v1/bookings/booking-1")
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(response).await;
    assert_eq!(status, 409);
    assert_eq!(problem_name(&body), "cancellation-closed");
    assert_eq!(body["cancellable_until"], "2021-08-24");
}

async fn patch(harness: &Harness) -> (u16, Value) {
    let response = harness
        .authed(Method::PATCH, "/v1/bookings/booking-1")
        .json(&json!({"slot_id": "slot-2"}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(response).await;
    (status, body)
}

#[tokio::test]
async fn changing_a_booking_is_forwarded_with_the_callers_token() {
    let harness = Harness::start().await;
    let token = harness.token();
    let response = harness
        .bare(Method::PATCH, "/v1/bookings/booking-1")
        .header("x-device-id", DEVICE)
        .bearer_auth(&token)
        .json(&json!({"slot_id": "slot-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], "booking-1");
    let calls = harness.fakes.calls_to("booking.ChangeBooking");
    assert_eq!(calls.len(), 1);
    assert!(calls[0].message.contains("slot-2"), "{}", calls[0].message);
    let forwarded = calls[0]
        .metadata
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(forwarded, format!("Bearer {token}"));
}

#[tokio::test]
async fn a_change_before_the_campaign_allows_it_is_409_with_the_date() {
    let harness = Harness::start().await;
    harness.fakes.fail(
        "booking.ChangeBooking",
        Problem::new(ProblemKind::ModificationNotAllowed, "not yet")
            .with("allowed_from", "2021-10-01T00:00:00+09:00")
            .to_status(),
    );
    let (status, body) = patch(&harness).await;
    assert_eq!(status, 409);
    assert_eq!(problem_name(&body), "modification-not-allowed");
    assert_eq!(body["allowed_from"], "2021-10-01T00:00:00+09:00");

    // A missing slot id never reaches booking-svc.
    let response = harness
        .authed(Method::PATCH, "/v1/bookings/booking-1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (status, _, _) = problem(response).await;
    assert_eq!(status, 400);
    assert_eq!(harness.fakes.calls_to("booking.ChangeBooking").len(), 1);
}
