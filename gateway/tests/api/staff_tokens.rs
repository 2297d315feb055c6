//! An agent's or operator's token on the citizens' API: 403 `citizen-token-required`, the
//! attempt reported to auth-svc's audit trail (`StaffAuthService.RecordCitizenApiRefusal`, with
//! that token and the route template), and nothing asked of session-svc or booking-svc.

use platform::staff::StaffRole;
use reqwest::Method;
use serde_json::json;

use crate::common::{DEVICE, Harness, PUBLIC_URL, problem, problem_name};

/// Sends `request` with `token`, expects 403 citizen-token-required.
async fn refused_as_staff(request: reqwest::RequestBuilder, token: &str) {
    let response = request
        .header("x-device-id", DEVICE)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(response).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["type"],
        format!("{PUBLIC_URL}/problems/citizen-token-required")
    );
    assert_eq!(problem_name(&body), "citizen-token-required");
}

fn reports(harness: &Harness) -> Vec<crate::common::Call> {
    harness.fakes.calls_to("auth.RecordCitizenApiRefusal")
}

#[tokio::test]
async fn an_agent_token_is_refused_and_reported_with_the_route_template() {
    let harness = Harness::start().await;
    let agent = harness.staff_token(StaffRole::Agent);
    refused_as_staff(harness.bare(Method::GET, "/v1/bookings"), &agent).await;

    let reported = reports(&harness);
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!(
        reported[0].metadata.get("authorization").unwrap(),
        format!("Bearer {agent}").as_str()
    );
    assert!(
        reported[0]
            .message
            .contains(r#"surface: "GET /v1/bookings""#),
        "{}",
        reported[0].message
    );
    // The template, never the path with its ids.
    refused_as_staff(
        harness.bare(Method::DELETE, "/v1/bookings/booking-123"),
        &agent,
    )
    .await;
    let reported = reports(&harness);
    assert!(
        reported[1]
            .message
            .contains(r#"surface: "DELETE /v1/bookings/{id}""#),
        "{}",
        reported[1].message
    );
    assert!(!reported[1].message.contains("booking-123"));
    assert!(harness.fakes.calls_to("session.ValidateSession").is_empty());
    assert_eq!(harness.fakes.booking_calls(), 0);
}

#[tokio::test]
async fn an_operator_token_is_refused_on_a_write_too() {
    let harness = Harness::start().await;
    let operator = harness.staff_token(StaffRole::Operator);
    refused_as_staff(
        harness
            .bare(Method::POST, "/v1/bookings")
            .json(&json!({"slot_id": "slot-1"})),
        &operator,
    )
    .await;
    let reported = reports(&harness);
    assert_eq!(reported.len(), 1);
    assert!(
        reported[0]
            .message
            .contains(r#"surface: "POST /v1/bookings""#)
    );
    assert_eq!(harness.fakes.booking_calls(), 0);
}

#[tokio::test]
async fn the_refusal_stands_when_the_report_fails() {
    let harness = Harness::start().await;
    harness.fakes.fail(
        "auth.RecordCitizenApiRefusal",
        tonic::Status::unavailable("the audit trail is unavailable"),
    );
    let agent = harness.staff_token(StaffRole::Agent);
    refused_as_staff(harness.bare(Method::GET, "/v1/me/eligibility"), &agent).await;
    assert_eq!(reports(&harness).len(), 1);
}

#[tokio::test]
async fn tokens_that_are_neither_stay_unauthenticated_and_are_not_reported() {
    let harness = Harness::start().await;
    // A staff token signed by someone else's key.
    let stranger = platform::grants::GrantIssuer::new(std::sync::Arc::new(
        platform::grants::SigningKeys::generate().unwrap(),
    ));
    let forged = stranger
        .issue(
            &platform::staff::AgentToken {
                sub: crate::common::STAFF_ACCOUNT.into(),
                username: "agent.test".into(),
                org: "test-call-center".into(),
                role: StaffRole::Agent,
            },
            chrono::Utc::now(),
            std::time::Duration::from_secs(600),
        )
        .unwrap()
        .token;
    for token in [forged.as_str(), "garbage"] {
        let response = harness
            .bare(Method::GET, "/v1/bookings")
            .header("x-device-id", DEVICE)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let (status, _, body) = problem(response).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(problem_name(&body), "unauthenticated");
    }
    assert!(reports(&harness).is_empty());
    // A citizen's token still passes.
    let response = harness
        .authed(Method::GET, "/v1/bookings")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(reports(&harness).is_empty());
}

#[tokio::test]
async fn refusals_are_counted_as_security_events() {
    let harness = Harness::start().await;
    let agent = harness.staff_token(StaffRole::Supervisor);
    refused_as_staff(harness.bare(Method::GET, "/v1/centers"), &agent).await;
    let text = harness
        .bare(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = text
        .lines()
        .find(|line| {
            line.starts_with("refused_internal_calls_total")
                && line.contains(r#"service="gateway""#)
                && line.contains(r#"reason="staff-token""#)
        })
        .unwrap_or_else(|| panic!("no security-event counter in\n{text}"));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 1.0, "{line}");
}
