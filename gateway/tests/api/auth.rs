//! Verification, logout and eligibility.

use platform::problem::{Problem, ProblemKind};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{DEVICE, Harness, PERSON_KEY, SESSION_ID, problem, problem_name};

#[tokio::test]
async fn starting_a_verification_answers_201_with_the_challenge() {
    let harness = Harness::start().await;
    let response = harness
        .bare(Method::POST, "/v1/auth/verifications")
        .header("x-device-id", DEVICE)
        .json(&json!({"provider": "phone", "name": "홍길동", "rrn": "900119-1234567", "phone": "010-1234-5678"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["verification_id"], "ver-1");
    assert_eq!(body["provider"], "phone");
    assert_eq!(body["masked_phone"], "010-****-5678");
    assert_eq!(body["otp_length"], 6);
    // The injected clock runs on from 12:00:00 KST.
    assert!(
        body["expires_at"]
            .as_str()
            .unwrap()
            .starts_with("2021-08-20T12:03:0")
    );

    let calls = harness.fakes.calls_to("auth.StartVerification");
    assert_eq!(calls.len(), 1);
    assert!(
        calls[0].message.contains("provider_id: \"phone\""),
        "{}",
        calls[0].message
    );
    assert!(
        calls[0]
            .message
            .contains(&format!("device_id: \"{DEVICE}\""))
    );
}

#[tokio::test]
async fn a_malformed_provider_is_refused_before_auth_svc() {
    let harness = Harness::start().await;
    let response = harness
        .bare(Method::POST, "/v1/auth/verifications")
        .header("x-device-id", DEVICE)
        .json(&json!({"provider": "My Space", "name": "홍길동", "rrn": "900119-1234567"}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(response).await;
    assert_eq!(status, 400);
    assert_eq!(problem_name(&body), "invalid-request");
    assert!(harness.fakes.calls_to("auth.StartVerification").is_empty());
}

/// The gateway keeps no list of providers: an unknown one is auth-svc's to refuse, and its
/// problem reaches the client as it is.
#[tokio::test]
async fn an_unknown_provider_is_auth_svc_s_to_refuse() {
    let harness = Harness::start().await;
    harness.fakes.fail(
        "auth.StartVerification",
        Problem::new(ProblemKind::UnsupportedProvider, "myspace is not offered").to_status(),
    );
    let response = harness
        .bare(Method::POST, "/v1/auth/verifications")
        .header("x-device-id", DEVICE)
        .json(&json!({"provider": "myspace", "name": "홍길동", "rrn": "900119-1234567"}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(response).await;
    assert_eq!(status, 400);
    assert_eq!(problem_name(&body), "unsupported-provider");
    let calls = harness.fakes.calls_to("auth.StartVerification");
    assert!(calls[0].message.contains("provider_id: \"myspace\""));
}

#[tokio::test]
async fn invalid_identity_and_rate_limits_keep_their_problem_types() {
    let harness = Harness::start().await;
    harness.fakes.fail(
        "auth.StartVerification",
        Problem::new(ProblemKind::RateLimited, "too many attempts")
            .with_retry_after(std::time::Duration::from_secs(30))
            .to_status(),
    );
    let response = harness
        .bare(Method::POST, "/v1/auth/verifications")
        .header("x-device-id", DEVICE)
        .json(&json!({"provider": "kakao", "name": "홍길동", "rrn": "900119-1234567"}))
        .send()
        .await
        .unwrap();
    let (status, headers, body) = problem(response).await;
    assert_eq!(status, 429);
    assert_eq!(problem_name(&body), "rate-limited");
    assert_eq!(headers["retry-after"], "30");

    harness.fakes.fail(
        "auth.StartVerification",
        Problem::new(
            ProblemKind::InvalidIdentity,
            "the resident registration number is not valid",
        )
        .to_status(),
    );
    let response = harness
        .bare(Method::POST, "/v1/auth/verifications")
        .header("x-device-id", DEVICE)
        .json(&json!({"provider": "kakao", "name": "홍길동", "rrn": "900119-1234568"}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(response).await;
    assert_eq!(status, 400);
    assert_eq!(problem_name(&body), "invalid-identity");
}

#[tokio::test]
async fn completing_a_verification_returns_the_token_and_session() {
    let harness = Harness::start().await;
    let response = harness
        .bare(Method::POST, "/v1/auth/verifications/ver-1/complete")
        .header("x-device-id", DEVICE)
        .json(&json!({"otp": "123456"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["access_token"], "issued-token");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 1800);
    assert_eq!(body["session"]["id"], SESSION_ID);
    assert_eq!(body["session"]["device_id"], DEVICE);
    assert!(
        body["session"]["expires_at"]
            .as_str()
            .unwrap()
            .starts_with("2021-08-20T12:30:0")
    );
    assert_eq!(body["masked_name"], "홍*동");
    let call = &harness.fakes.calls_to("auth.CompleteVerification")[0];
    assert!(call.message.contains("verification_id: \"ver-1\""));
    assert!(call.message.contains("otp: \"123456\""));
}

#[tokio::test]
async fn a_locked_device_gets_423_with_retry_after() {
    let harness = Harness::start().await;
    harness.fakes.fail(
        "auth.CompleteVerification",
        Problem::new(
            ProblemKind::DeviceLocked,
            "this person is verified on another device",
        )
        .with_retry_after(std::time::Duration::from_secs(600))
        .to_status(),
    );
    let response = harness
        .bare(Method::POST, "/v1/auth/verifications/ver-1/complete")
        .header("x-device-id", "device-2")
        .json(&json!({"otp": "123456"}))
        .send()
        .await
        .unwrap();
    let (status, headers, body) = problem(response).await;
    assert_eq!(status, 423);
    assert_eq!(headers["retry-after"], "600");
    assert_eq!(body["retry_after"], 600);
    assert_eq!(body["type"], "https://vaxbook.test/problems/device-locked");
    assert_eq!(body["title"], ProblemKind::DeviceLocked.title());
    assert_eq!(body["detail"], "this person is verified on another device");
}

#[tokio::test]
async fn logout_releases_the_session() {
    let harness = Harness::start().await;
    let response = harness
        .authed(Method::POST, "/v1/session/logout")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let calls = harness.fakes.calls_to("session.ReleaseSession");
    assert_eq!(calls.len(), 1);
    assert!(calls[0].message.contains(PERSON_KEY));
    assert!(calls[0].message.contains(SESSION_ID));
}

#[tokio::test]
async fn eligibility_asks_with_the_token_birth_date() {
    let harness = Harness::start().await;
    let response = harness
        .authed(Method::GET, "/v1/me/eligibility")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["eligible"], true);
    assert_eq!(body["campaign_id"], "c18-49");
    assert!(body.get("reason").is_none(), "{body}");
    assert_eq!(body["opens_at"], "2021-08-19T20:00:00+09:00");
    assert_eq!(body["closes_at"], "2021-08-20T18:00:00+09:00");
    assert_eq!(body["vaccination_from"], "2021-08-26");
    let call = &harness.fakes.calls_to("scheduling.CheckEligibility")[0];
    assert!(call.message.contains("birth_date: \"1990-01-19\""));
    assert!(call.message.contains(PERSON_KEY));

    *harness.fakes.eligibility.lock().unwrap() = proto::scheduling::v1::CheckEligibilityResponse {
        eligible: false,
        campaign_id: "c18-49".into(),
        reason: "not-open-yet".into(),
        ..Default::default()
    };
    let body: Value = harness
        .authed(Method::GET, "/v1/me/eligibility")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["eligible"], false);
    assert_eq!(body["reason"], "not-open-yet");
}
