//! The kakao "simple certificate" flow over the wire (see `common`): auth-svc trusts the dev
//! stand-in kakao app's key, the test signs the assertion the app would hand over, and a real
//! tonic client starts and completes the verification.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use platform::auth::{GrpcJwksSource, TokenVerifier};
use platform::clock::SystemClock;
use platform::problem::ProblemKind;
use proto::auth::v1::{CompleteVerificationRequest, Provider, StartVerificationRequest};
use tonic::Code;

const NAME: &str = "홍길동";

fn kakao_start(device: &str) -> StartVerificationRequest {
    StartVerificationRequest {
        provider: Provider::Kakao.into(),
        phone: String::new(),
        ..start_request(device)
    }
}

fn with_assertion(verification_id: &str, assertion: &str) -> CompleteVerificationRequest {
    CompleteVerificationRequest {
        verification_id: verification_id.to_owned(),
        assertion: assertion.to_owned(),
        device_id: "phone-a".to_owned(),
        ..Default::default()
    }
}

impl Running {
    fn kakao_assertion(&self, rrn: &str, nonce: &str) -> String {
        self.idp
            .issue("kakao", NAME, rrn, PHONE, nonce, chrono::Utc::now())
            .unwrap()
    }

    async fn stored_challenge(&self) -> String {
        let keys = self.challenge_keys().await;
        assert_eq!(keys.len(), 1);
        redis::cmd("GET")
            .arg(&keys[0])
            .query_async(&mut self.redis.clone())
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_person_verifies_with_kakao_and_gets_a_token_other_services_accept() {
    let running = start_everything("auth-e2e-kakao-ok").await;
    let started = running.start(kakao_start("phone-a")).await.unwrap();
    assert_eq!(started.provider, i32::from(Provider::Kakao));
    assert_eq!(started.otp_length, 0);
    assert_eq!(started.masked_phone, "");
    assert_eq!(URL_SAFE_NO_PAD.decode(&started.nonce).unwrap().len(), 32);
    assert!(running.outbox().await.is_empty(), "no SMS for kakao");

    // The challenge keeps the nonce, never the name or the RRN.
    let stored = running.stored_challenge().await;
    assert!(stored.contains(&started.nonce), "{stored}");
    for secret in ["1234567", "850919", "길", "5678"] {
        assert!(
            !stored.contains(secret),
            "challenge contains {secret}: {stored}"
        );
    }

    let assertion = running.kakao_assertion(RRN, &started.nonce);
    let done = running
        .complete_with(with_assertion(&started.verification_id, &assertion))
        .await
        .unwrap();
    assert_eq!(done.masked_name, "홍*동");
    assert_eq!(done.session.as_ref().unwrap().device_id, "phone-a");
    assert!(running.challenge_keys().await.is_empty());

    let verifier = TokenVerifier::new(
        Arc::new(GrpcJwksSource::new(running.channel.clone())),
        Arc::new(SystemClock),
    );
    let claims = verifier.verify(&done.access_token).await.unwrap();
    let claimed = running.sessions.claims.lock().unwrap().clone();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claims.sub, claimed[0].person_key);
    assert_eq!(claims.bd, "1985-09-19");
    assert_eq!(claims.dev, "phone-a");

    // Single use.
    let again = running
        .complete_with(with_assertion(&started.verification_id, &assertion))
        .await
        .unwrap_err();
    assert_eq!(problem_of(&again).kind, ProblemKind::VerificationExpired);
    running.stop().await;
}

#[tokio::test]
async fn a_kakao_assertion_for_another_person_is_refused() {
    let running = start_everything("auth-e2e-kakao-refused").await;
    let started = running.start(kakao_start("phone-a")).await.unwrap();

    let other_person = running.kakao_assertion("900101-2234567", &started.nonce);
    let status = running
        .complete_with(with_assertion(&started.verification_id, &other_person))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(problem_of(&status).kind, ProblemKind::VerificationFailed);
    for secret in ["2234567", "900101", "길", NAME] {
        assert!(!status.message().contains(secret), "{}", status.message());
    }
    assert!(running.sessions.claims.lock().unwrap().is_empty());
    assert!(
        running.stored_challenge().await.contains("\"attempts\":1"),
        "the refusal is counted"
    );

    // Malformed answers are refused before anything is counted.
    let oversized = "a".repeat(8 * 1024 + 1);
    let malformed = [
        with_assertion(&started.verification_id, ""),
        with_assertion(&started.verification_id, &oversized),
        CompleteVerificationRequest {
            otp: "123456".to_owned(),
            ..with_assertion(&started.verification_id, "")
        },
    ];
    for request in malformed {
        let status = running.complete_with(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(problem_of(&status).kind, ProblemKind::InvalidRequest);
    }
    assert!(running.stored_challenge().await.contains("\"attempts\":1"));

    // Naver has no configured keys here.
    let naver = running
        .start(StartVerificationRequest {
            provider: Provider::Naver.into(),
            ..kakao_start("phone-a")
        })
        .await
        .unwrap_err();
    assert_eq!(problem_of(&naver).kind, ProblemKind::UnsupportedProvider);

    // The rightful person still completes the same verification.
    let right = running.kakao_assertion(RRN, &started.nonce);
    running
        .complete_with(with_assertion(&started.verification_id, &right))
        .await
        .unwrap();
    running.stop().await;
}
