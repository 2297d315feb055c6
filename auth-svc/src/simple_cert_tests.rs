//! The simple-certificate flow (kakao, naver) over the same harness as the phone flow: the dev
//! stand-in providers sign assertions, the settable clock drives their lifetime, and every
//! refused assertion differs from an accepted one in exactly one respect.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use platform::auth::TokenVerifier;
use platform::clock::Clock as _;
use platform::idp::{ASSERTION_AUDIENCE, SimpleCertAssertion};
use platform::problem::{Problem, ProblemKind};

use super::tests::{
    HARNESS_ASSERTION_TTL, Harness, PHONE, ROTATED_KAKAO_KID, StaticJwks, harness, kind,
    start_input,
};
use super::*;
use crate::domain::{ChallengeAnswer, Otp, ProviderKind, Rrn, SignedAssertion, derive_person_key};
use crate::store::ChallengeSecret;

const NAME: &str = "홍길동";
const RRN: &str = "850919-1234567";

fn kakao_start(device: &str) -> StartInput {
    StartInput {
        phone: None,
        ..start_input(ProviderKind::Kakao, device)
    }
}

fn answer(id: VerificationId, assertion: &str, device: &str) -> CompleteInput {
    CompleteInput {
        verification_id: id,
        answer: ChallengeAnswer::Assertion(SignedAssertion::parse(assertion).unwrap()),
        device_id: DeviceId::parse(device).unwrap(),
    }
}

/// Signs `claims` with `key` under `kid`, as a provider (or a forger) would.
fn sign(key: &SigningKey, kid: &str, claims: &SimpleCertAssertion) -> String {
    let der = key.to_pkcs8_der().unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
}

impl Harness {
    async fn start_kakao(&self) -> StartOutput {
        self.verifications
            .start(kakao_start("phone-a"))
            .await
            .unwrap()
    }

    /// What the dev kakao app signs for the person who started, now.
    fn kakao_assertion(&self, nonce: &str) -> String {
        self.idp
            .issue("kakao", NAME, RRN, PHONE, nonce, self.clock.now())
            .unwrap()
    }

    /// The claims of a right kakao assertion, for signing with the rotated key.
    fn kakao_claims(&self, nonce: &str) -> SimpleCertAssertion {
        let now = self.clock.now().timestamp();
        SimpleCertAssertion {
            iss: "kakao".to_owned(),
            aud: ASSERTION_AUDIENCE.to_owned(),
            nonce: nonce.to_owned(),
            name: NAME.to_owned(),
            rrn: RRN.to_owned(),
            phone: PHONE.to_owned(),
            iat: now,
            exp: now + 300,
        }
    }

    async fn complete(
        &self,
        id: VerificationId,
        assertion: &str,
    ) -> Result<CompleteOutput, AuthError> {
        self.verifications
            .complete(answer(id, assertion, "phone-a"))
            .await
    }

    async fn stored_attempts(&self, id: &VerificationId) -> Option<u32> {
        self.verifications
            .store
            .get(id)
            .await
            .unwrap()
            .map(|challenge| challenge.attempts)
    }
}

#[tokio::test]
async fn a_kakao_start_issues_a_nonce_and_sends_nothing() {
    let h = harness();
    let started = h.start_kakao().await;
    assert_eq!(started.provider, ProviderKind::Kakao);
    assert_eq!(started.masked_phone, "");
    assert_eq!(URL_SAFE_NO_PAD.decode(&started.nonce).unwrap().len(), 32);
    // The settable clock keeps ticking between the start and this read.
    let lifetime = started.expires_at - h.clock.now();
    let ttl = chrono::Duration::from_std(HARNESS_ASSERTION_TTL).unwrap();
    assert!(
        lifetime > ttl - chrono::Duration::seconds(5) && lifetime <= ttl,
        "{lifetime}"
    );
    // A phone given to a simple-certificate provider is checked but not texted.
    let with_phone = h
        .verifications
        .start(start_input(ProviderKind::Kakao, "phone-a"))
        .await
        .unwrap();
    assert_ne!(with_phone.nonce, started.nonce);
    assert!(h.outbox.sent_to(PHONE).is_empty());

    let stored = h
        .verifications
        .store
        .get(&started.verification_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.provider, ProviderKind::Kakao);
    assert_eq!(stored.masked_name, "홍*동");
    let ChallengeSecret::AssertionBinding { nonce, name_digest } = &stored.secret else {
        panic!("a kakao challenge holds its nonce");
    };
    assert_eq!(nonce, &started.nonce);
    assert!(!name_digest.contains(NAME) && !name_digest.contains('길'));
}

#[tokio::test]
async fn a_right_assertion_yields_a_token_and_claims_the_device_once() {
    let h = harness();
    let started = h.start_kakao().await;
    let assertion = h.kakao_assertion(&started.nonce);
    let done = h
        .complete(started.verification_id, &assertion)
        .await
        .unwrap();
    assert_eq!(done.masked_name, "홍*동");
    let expected_key = derive_person_key(b"test-secret", &Rrn::parse(RRN).unwrap());
    assert_eq!(
        h.sessions.claims.lock().unwrap().as_slice(),
        [(expected_key.to_string(), "phone-a".to_owned())]
    );
    let verifier = TokenVerifier::new(
        Arc::new(StaticJwks(h.verifications.jwks())),
        h.clock.clone(),
    );
    let claims = verifier.verify(&done.token.token).await.unwrap();
    assert_eq!(claims.sub, expected_key.as_str());
    assert_eq!(claims.bd, "1985-09-19");
    assert_eq!(claims.dev, "phone-a");

    // Single use: the same assertion again finds no challenge.
    let again = h
        .complete(started.verification_id, &assertion)
        .await
        .unwrap_err();
    assert_eq!(kind(again), ProblemKind::VerificationExpired);
    assert_eq!(h.sessions.claims.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn naver_and_a_rotated_kakao_key_are_accepted_too() {
    let h = harness();
    let naver = h
        .verifications
        .start(StartInput {
            phone: None,
            ..start_input(ProviderKind::Naver, "phone-a")
        })
        .await
        .unwrap();
    let naver_assertion = h
        .idp
        .issue("naver", NAME, RRN, "", &naver.nonce, h.clock.now())
        .unwrap();
    h.complete(naver.verification_id, &naver_assertion)
        .await
        .unwrap();

    let kakao = h.start_kakao().await;
    let rotated = sign(
        &h.rotated_kakao_key,
        ROTATED_KAKAO_KID,
        &h.kakao_claims(&kakao.nonce),
    );
    h.complete(kakao.verification_id, &rotated).await.unwrap();
    assert_eq!(h.sessions.claims.lock().unwrap().len(), 2);
}

/// Replaces the payload of `token` with `claims`, keeping header and signature.
fn with_payload(token: &str, claims: &SimpleCertAssertion) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

type Forgery = Box<dyn Fn(&Harness, &str) -> String>;

#[tokio::test]
async fn assertions_that_differ_in_one_rule_are_refused_and_counted() {
    let mut h = harness();
    // Each case is its own verification; the start limit is not what is tested here.
    h.verifications.start_rate.limit = 1000;
    let kakao_key_elsewhere = SigningKey::generate(&mut rand::rngs::OsRng);
    let rotated = move |h: &Harness, claims: SimpleCertAssertion| {
        sign(&h.rotated_kakao_key, ROTATED_KAKAO_KID, &claims)
    };
    let cases: Vec<(&str, Forgery)> = vec![
        (
            "another nonce",
            Box::new(|h, _| h.kakao_assertion("bm90LXRoZS1ub25jZS1vZi10aGlzLWNoYWxsZW5nZQ")),
        ),
        ("an empty nonce", Box::new(|h, _| h.kakao_assertion(""))),
        (
            "another person",
            Box::new(|h, nonce| {
                h.idp
                    .issue("kakao", NAME, "900101-2234567", PHONE, nonce, h.clock.now())
                    .unwrap()
            }),
        ),
        (
            "an unparsable rrn",
            Box::new(|h, nonce| {
                h.idp
                    .issue("kakao", NAME, "85091-91234567", PHONE, nonce, h.clock.now())
                    .unwrap()
            }),
        ),
        (
            "another name",
            Box::new(|h, nonce| {
                h.idp
                    .issue("kakao", "김철수", RRN, PHONE, nonce, h.clock.now())
                    .unwrap()
            }),
        ),
        (
            "the naver key",
            Box::new(|h, nonce| {
                h.idp
                    .issue("naver", NAME, RRN, PHONE, nonce, h.clock.now())
                    .unwrap()
            }),
        ),
        (
            "an untrusted key under the kakao kid",
            Box::new(move |h, nonce| {
                sign(&kakao_key_elsewhere, "dev-kakao", &h.kakao_claims(nonce))
            }),
        ),
        (
            "iss naver under a kakao key",
            Box::new(move |h, nonce| {
                rotated(
                    h,
                    SimpleCertAssertion {
                        iss: "naver".to_owned(),
                        ..h.kakao_claims(nonce)
                    },
                )
            }),
        ),
        (
            "another audience",
            Box::new(move |h, nonce| {
                rotated(
                    h,
                    SimpleCertAssertion {
                        aud: "another-relying-party".to_owned(),
                        ..h.kakao_claims(nonce)
                    },
                )
            }),
        ),
        (
            "issued two minutes ahead",
            Box::new(move |h, nonce| {
                let claims = h.kakao_claims(nonce);
                rotated(
                    h,
                    SimpleCertAssertion {
                        iat: claims.iat + 120,
                        exp: claims.exp + 120,
                        ..claims
                    },
                )
            }),
        ),
        (
            "expired a second ago",
            Box::new(move |h, nonce| {
                let claims = h.kakao_claims(nonce);
                rotated(
                    h,
                    SimpleCertAssertion {
                        iat: claims.iat - 301,
                        exp: claims.iat,
                        ..claims
                    },
                )
            }),
        ),
        (
            "a tampered payload",
            Box::new(|h, nonce| {
                let phone_changed = SimpleCertAssertion {
                    phone: "010-9999-9999".to_owned(),
                    ..h.kakao_claims(nonce)
                };
                with_payload(&h.kakao_assertion(nonce), &phone_changed)
            }),
        ),
        (
            "an HMAC token keyed with the public key",
            Box::new(|h, nonce| {
                let public = &h.idp.jwks("kakao").unwrap().keys[0].x;
                let mut header = Header::new(Algorithm::HS256);
                header.kid = Some("dev-kakao".to_owned());
                let key = EncodingKey::from_secret(public.as_bytes());
                jsonwebtoken::encode(&header, &h.kakao_claims(nonce), &key).unwrap()
            }),
        ),
        ("not a JWS", Box::new(|_, _| "not-a-jws".to_owned())),
    ];
    for (case, forge) in &cases {
        let started = h.start_kakao().await;
        let error = h
            .complete(started.verification_id, &forge(&h, &started.nonce))
            .await
            .unwrap_err();
        let problem = Problem::from(error);
        assert_eq!(problem.kind, ProblemKind::VerificationFailed, "{case}");
        assert_eq!(
            problem.detail, "the provider's assertion was not accepted; 4 attempt(s) left",
            "{case}"
        );
        assert_eq!(
            h.stored_attempts(&started.verification_id).await,
            Some(1),
            "{case}"
        );
        assert!(h.sessions.claims.lock().unwrap().is_empty(), "{case}");
        // The same challenge still accepts the right assertion: the one difference was the cause.
        let right = h.kakao_assertion(&started.nonce);
        h.complete(started.verification_id, &right).await.unwrap();
        h.sessions.claims.lock().unwrap().clear();
    }
}

#[tokio::test]
async fn an_assertion_expires_with_the_injected_clock() {
    let h = harness();
    let started = h.start_kakao().await;
    let assertion = h.kakao_assertion(&started.nonce);
    // Past the assertion's five minutes, inside the challenge's ten.
    h.clock.set(h.clock.now() + chrono::Duration::seconds(301));
    let error = h
        .complete(started.verification_id, &assertion)
        .await
        .unwrap_err();
    assert!(
        matches!(error, AuthError::AssertionRejected { attempts_left: 4 }),
        "{error:?}"
    );
    let fresh = h.kakao_assertion(&started.nonce);
    h.complete(started.verification_id, &fresh).await.unwrap();

    // And the challenge itself expires with the clock.
    let late = h.start_kakao().await;
    let assertion = h.kakao_assertion(&late.nonce);
    h.clock
        .set(h.clock.now() + chrono::Duration::from_std(HARNESS_ASSERTION_TTL).unwrap());
    let error = h
        .complete(late.verification_id, &assertion)
        .await
        .unwrap_err();
    assert_eq!(kind(error), ProblemKind::VerificationExpired);
}

#[tokio::test]
async fn five_refused_assertions_use_the_challenge_up() {
    let h = harness();
    let started = h.start_kakao().await;
    let wrong = h.kakao_assertion("d3Jvbmctbm9uY2U");
    for attempt in 1..=5u32 {
        let error = h
            .complete(started.verification_id, &wrong)
            .await
            .unwrap_err();
        match error {
            AuthError::AssertionRejected { attempts_left } => {
                assert!(attempt < 5);
                assert_eq!(attempts_left, 5 - attempt);
            }
            AuthError::AttemptsExhausted => assert_eq!(attempt, 5),
            other => panic!("unexpected {other:?}"),
        }
    }
    let right = h.kakao_assertion(&started.nonce);
    let after = h
        .complete(started.verification_id, &right)
        .await
        .unwrap_err();
    assert_eq!(kind(after), ProblemKind::VerificationExpired);
    assert!(h.sessions.claims.lock().unwrap().is_empty());
}

#[tokio::test]
async fn answers_of_the_wrong_kind_are_malformed_and_change_nothing() {
    let h = harness();
    let empty = SignedAssertion::parse("").unwrap_err();
    assert_eq!(kind(empty), ProblemKind::InvalidRequest);

    let kakao = h.start_kakao().await;
    let code = h
        .verifications
        .complete(CompleteInput {
            verification_id: kakao.verification_id,
            answer: ChallengeAnswer::Otp(Otp::parse("123456").unwrap()),
            device_id: DeviceId::parse("phone-a").unwrap(),
        })
        .await
        .unwrap_err();
    assert_eq!(kind(code), ProblemKind::InvalidRequest);
    assert_eq!(h.stored_attempts(&kakao.verification_id).await, Some(0));

    let phone = h
        .verifications
        .start(start_input(ProviderKind::Phone, "phone-a"))
        .await
        .unwrap();
    let assertion = h.kakao_assertion(&kakao.nonce);
    let error = h
        .complete(phone.verification_id, &assertion)
        .await
        .unwrap_err();
    assert_eq!(kind(error), ProblemKind::InvalidRequest);
    assert_eq!(h.stored_attempts(&phone.verification_id).await, Some(0));

    // Another device cannot hand in the right assertion; the starting device still can.
    let error = h
        .verifications
        .complete(answer(kakao.verification_id, &assertion, "pc-b"))
        .await
        .unwrap_err();
    assert_eq!(kind(error), ProblemKind::VerificationFailed);
    h.complete(kakao.verification_id, &assertion).await.unwrap();
}

#[tokio::test]
async fn an_unconfigured_simple_certificate_provider_is_unsupported() {
    let h = harness();
    let error = h
        .verifications
        .start(StartInput {
            phone: None,
            ..start_input(ProviderKind::Pass, "phone-a")
        })
        .await
        .unwrap_err();
    let problem = Problem::from(error);
    assert_eq!(problem.kind, ProblemKind::UnsupportedProvider);
    assert_eq!(problem.detail, "provider pass is not enabled yet");
}
