//! What stands in front of booking-svc: malformed requests, missing or bad device ids and
//! tokens, ended sessions. Each is a problem+json answer and booking-svc never hears of it.

use ed25519_dalek::SigningKey;
use platform::auth::Role;
use reqwest::Method;
use serde_json::json;

use crate::common::{DEVICE, Harness, problem, problem_name};

/// Sends `request`, expects a problem with `status` and `name`, and no booking-svc call.
async fn refused(harness: &Harness, request: reqwest::RequestBuilder, status: u16, name: &str) {
    let response = request.send().await.unwrap();
    let (answered, _, body) = problem(response).await;
    assert_eq!(answered, status, "{body}");
    assert_eq!(problem_name(&body), name, "{body}");
    assert_eq!(harness.fakes.booking_calls(), 0, "booking-svc was called");
}

#[tokio::test]
async fn malformed_bodies_are_400_problems() {
    let harness = Harness::start().await;
    let post = || harness.authed(Method::POST, "/v1/bookings");
    refused(
        &harness,
        post()
            .header("content-type", "application/json")
            .body("{not json"),
        400,
        "invalid-request",
    )
    .await;
    refused(
        &harness,
        post()
            .header("content-type", "text/plain")
            .body(r#"{"slot_id":"slot-1"}"#),
        400,
        "invalid-request",
    )
    .await;
    refused(
        &harness,
        post().body(r#"{"slot_id":"slot-1"}"#),
        400,
        "invalid-request",
    )
    .await;
    refused(
        &harness,
        post().json(&json!([1, 2])),
        400,
        "invalid-request",
    )
    .await;
    refused(
        &harness,
        post().json(&json!({"slot_id": 7})),
        400,
        "invalid-request",
    )
    .await;
    refused(
        &harness,
        post().json(&json!({"slot_id": "slot-1", "for": {"name": "x"}})),
        400,
        "invalid-request",
    )
    .await;
    refused(
        &harness,
        post()
            .header("idempotency-key", "has spaces")
            .json(&json!({"slot_id": "slot-1"})),
        400,
        "invalid-request",
    )
    .await;
    refused(
        &harness,
        post()
            .header("content-type", "application/json")
            .body(vec![b' '; gateway::MAX_BODY_BYTES + 1]),
        413,
        "invalid-request",
    )
    .await;

    let response = post().json(&json!({"for": null})).send().await.unwrap();
    let (_, _, body) = problem(response).await;
    assert_eq!(body["detail"], "the field `slot_id` is required");
}

#[tokio::test]
async fn a_wrong_value_is_not_echoed_back() {
    let harness = Harness::start().await;
    let response = harness
        .authed(Method::POST, "/v1/bookings")
        .json(&json!({"slot_id": ["900119-1234567"]}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(response).await;
    assert_eq!(status, 400);
    assert!(!body.to_string().contains("900119"));
}

#[tokio::test]
async fn the_device_id_header_is_required_and_checked() {
    let harness = Harness::start().await;
    let token = harness.token();
    let booking = || {
        harness
            .bare(Method::POST, "/v1/bookings")
            .bearer_auth(&token)
            .json(&json!({"slot_id": "slot-1"}))
    };
    refused(&harness, booking(), 400, "invalid-request").await;
    refused(
        &harness,
        booking().header("x-device-id", "bad id!"),
        400,
        "invalid-request",
    )
    .await;
    refused(
        &harness,
        booking().header("x-device-id", "d".repeat(129)),
        400,
        "invalid-request",
    )
    .await;
    // Unauthenticated routes need it too.
    let response = harness
        .bare(Method::POST, "/v1/auth/verifications")
        .json(&json!({"provider": "phone", "name": "a", "rrn": "b", "phone": "c"}))
        .send()
        .await
        .unwrap();
    let (status, _, _) = problem(response).await;
    assert_eq!(status, 400);
    assert!(harness.fakes.calls_to("auth.StartVerification").is_empty());
}

#[tokio::test]
async fn missing_or_bad_tokens_are_401() {
    let harness = Harness::start().await;
    let booking = || {
        harness
            .bare(Method::POST, "/v1/bookings")
            .header("x-device-id", DEVICE)
            .json(&json!({"slot_id": "slot-1"}))
    };
    refused(&harness, booking(), 401, "unauthenticated").await;
    refused(
        &harness,
        booking().header("authorization", "Basic dXNlcjpwdw=="),
        401,
        "unauthenticated",
    )
    .await;
    refused(
        &harness,
        booking().bearer_auth("garbage"),
        401,
        "unauthenticated",
    )
    .await;
    refused(
        &harness,
        booking().bearer_auth(harness.token_with(|claims| claims.dev = "device-2".into())),
        401,
        "unauthenticated",
    )
    .await;
    refused(
        &harness,
        booking().bearer_auth(harness.token_with(|claims| claims.exp = claims.iat - 1)),
        401,
        "unauthenticated",
    )
    .await;
    refused(
        &harness,
        booking().bearer_auth(harness.token_with(|claims| claims.aud = "someone-else".into())),
        401,
        "unauthenticated",
    )
    .await;
    refused(
        &harness,
        booking().bearer_auth(harness.token_with(|claims| claims.role = Role::Agent)),
        403,
        "citizen-token-required",
    )
    .await;
    let stranger = SigningKey::generate(&mut rand::rngs::OsRng);
    refused(
        &harness,
        booking().bearer_auth(Harness::sign(&stranger, &harness.claims())),
        401,
        "unauthenticated",
    )
    .await;
    assert!(harness.fakes.calls_to("session.ValidateSession").is_empty());
}

#[tokio::test]
async fn an_ended_session_is_401_session_expired() {
    let harness = Harness::start().await;
    harness
        .fakes
        .session_valid
        .store(false, std::sync::atomic::Ordering::SeqCst);
    refused(
        &harness,
        harness
            .authed(Method::POST, "/v1/bookings")
            .json(&json!({"slot_id": "slot-1"})),
        401,
        "session-expired",
    )
    .await;
    let call = &harness.fakes.calls_to("session.ValidateSession")[0];
    assert!(call.message.contains(crate::common::PERSON_KEY));
    assert!(call.message.contains(crate::common::SESSION_ID));
    assert!(call.message.contains(DEVICE));
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_are_problems() {
    let harness = Harness::start().await;
    let response = harness
        .bare(Method::GET, "/v1/nothing-here")
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(response).await;
    assert_eq!(status, 404);
    assert_eq!(problem_name(&body), "not-found");

    let response = harness
        .bare(Method::PUT, "/v1/bookings")
        .send()
        .await
        .unwrap();
    let (status, headers, body) = problem(response).await;
    assert_eq!(status, 405);
    assert_eq!(problem_name(&body), "invalid-request");
    let allow = headers["allow"].to_str().unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
}

#[tokio::test]
async fn a_service_that_does_not_answer_is_503_with_retry_after() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let harness = Harness::start_with(|config| config.booking_url = closed_url).await;
    let response = harness
        .authed(Method::GET, "/v1/centers")
        .send()
        .await
        .unwrap();
    let (status, headers, body) = problem(response).await;
    assert_eq!(status, 503);
    assert_eq!(problem_name(&body), "unavailable");
    assert_eq!(headers["retry-after"], "1");

    harness.fakes.fail(
        "scheduling.CheckEligibility",
        tonic::Status::deadline_exceeded("took too long in db01"),
    );
    let response = harness
        .authed(Method::GET, "/v1/me/eligibility")
        .send()
        .await
        .unwrap();
    let (status, headers, body) = problem(response).await;
    assert_eq!(status, 503);
    assert!(headers.contains_key("retry-after"));
    assert!(!body.to_string().contains("db01"));
}

#[tokio::test]
async fn an_internal_error_is_opaque() {
    let harness = Harness::start().await;
    harness.fakes.fail(
        "booking.ListMyBookings",
        tonic::Status::internal("relation bookings does not exist"),
    );
    let response = harness
        .authed(Method::GET, "/v1/bookings")
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(response).await;
    assert_eq!(status, 500);
    assert_eq!(problem_name(&body), "internal");
    assert!(!body.to_string().contains("relation"));
}
