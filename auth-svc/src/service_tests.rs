//! The verification flow over the in-process store, the dev SMS outbox, a scripted session
//! gateway and a settable clock: the rules that depend on time and on counting.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use chrono::TimeZone;
use platform::auth::{JwksSource, TokenVerifier};
use platform::clock::{Clock as _, SettableClock};
use platform::dev::{DevIdentityProviders, SmsOutbox};
use platform::problem::{Problem, ProblemKind};

use super::*;
use crate::carrier::{Carrier, DirectoryCarrierCheck};
use crate::domain::{
    ChallengeAnswer, Name, Otp, PersonKey, Phone, ProviderKind, Rrn, SessionId, derive_person_key,
};
use crate::limits::{AbuseLimits, LimitSettings};
use crate::providers::{
    BoundDigester, PhoneGuards, PhoneProvider, PhoneProviderSettings, SimpleCertProvider,
    SimpleCertSettings,
};
use crate::sms::DevSmsSender;
use crate::store::MemoryChallengeStore;
use crate::tokens::TokenSigner;
use platform::carrier::{CarrierDirectory, Subscriber};

pub(super) const PHONE: &str = "010-1234-5678";
/// The harness person's RRN (registered with the stand-in agency at [`PHONE`], carrier skt).
pub(super) const HARNESS_RRN: &str = "850919-1234567";
/// The harness's abuse limits: the production defaults.
pub(super) const HARNESS_LIMITS: LimitSettings = LimitSettings {
    phone_starts: 5,
    client_starts: 100,
    proxy_per_booker: 10,
    proxy_per_client: 100,
    start_window: Duration::from_secs(600),
    wrong_codes: 10,
    lockout: Duration::from_secs(1800),
};
/// The kid under which the harness's kakao also trusts [`Harness::rotated_kakao_key`].
pub(super) const ROTATED_KAKAO_KID: &str = "kakao-rotated";
/// How long a simple-certificate nonce lives in the harness: longer than an assertion's five
/// minutes, so an expired assertion can be told apart from an expired challenge.
pub(super) const HARNESS_ASSERTION_TTL: Duration = Duration::from_secs(600);

/// Grants every claim for 30 minutes, or answers with a scripted problem; records the claims.
/// Device checks pass unless `check_refuses_with` is set; they are counted.
#[derive(Default)]
pub(super) struct ScriptedSessions {
    pub(super) refuse_with: Mutex<Option<Problem>>,
    pub(super) check_refuses_with: Mutex<Option<Problem>>,
    pub(super) claims: Mutex<Vec<(String, String)>>,
    pub(super) checks: Mutex<Vec<(String, String)>>,
    clock: Mutex<Option<SharedClock>>,
}

#[async_trait::async_trait]
impl SessionGateway for ScriptedSessions {
    async fn check_device(
        &self,
        person_key: &PersonKey,
        device_id: &DeviceId,
    ) -> Result<(), AuthError> {
        self.checks
            .lock()
            .unwrap()
            .push((person_key.to_string(), device_id.as_str().to_owned()));
        match self.check_refuses_with.lock().unwrap().clone() {
            Some(problem) => Err(AuthError::Session(problem)),
            None => Ok(()),
        }
    }

    async fn claim_device(
        &self,
        person_key: &PersonKey,
        device_id: &DeviceId,
    ) -> Result<ClaimedSession, AuthError> {
        self.claims
            .lock()
            .unwrap()
            .push((person_key.to_string(), device_id.as_str().to_owned()));
        if let Some(problem) = self.refuse_with.lock().unwrap().clone() {
            return Err(AuthError::Session(problem));
        }
        let now = self.clock.lock().unwrap().as_ref().unwrap().now();
        Ok(ClaimedSession {
            session_id: SessionId::parse(&format!("session-{}", self.claims.lock().unwrap().len()))
                .unwrap(),
            expires_at: now + chrono::Duration::minutes(30),
            fence: Some(7),
        })
    }
}

pub(super) struct StaticJwks(pub(super) Jwks);

#[async_trait::async_trait]
impl JwksSource for StaticJwks {
    async fn fetch(&self) -> Result<Jwks, String> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn a_device_that_could_not_claim_the_lock_is_refused_before_any_challenge() {
    let h = harness();
    let locked = Problem::new(ProblemKind::DeviceLocked, "held by another device")
        .with_retry_after(Duration::from_secs(420));
    *h.sessions.check_refuses_with.lock().unwrap() = Some(locked.clone());
    for provider in [ProviderKind::Phone, ProviderKind::Kakao] {
        let error = h
            .verifications
            .start(start_input(provider, "pc-b"))
            .await
            .unwrap_err();
        assert_eq!(Problem::from(error), locked, "{provider:?}");
    }
    assert!(h.outbox.sent_to(PHONE).is_empty());
    assert!(h.sessions.claims.lock().unwrap().is_empty());
    let person = derive_person_key(b"test-secret", &Rrn::parse(HARNESS_RRN).unwrap());
    assert_eq!(
        h.sessions.checks.lock().unwrap().as_slice(),
        [
            (person.to_string(), "pc-b".to_owned()),
            (person.to_string(), "pc-b".to_owned())
        ]
    );
    // Once session-svc would grant the claim, the same device starts.
    *h.sessions.check_refuses_with.lock().unwrap() = None;
    h.start("pc-b").await;
    assert_eq!(h.outbox.sent_to(PHONE).len(), 1);
}

/// The flow with phone, kakao and naver enabled (pass and financial_cert are not). Kakao
/// trusts its dev key and a second, rotated key the tests sign with directly.
pub(super) struct Harness {
    pub(super) clock: Arc<SettableClock>,
    /// The stand-in agency's subscribers: the harness person is registered at [`PHONE`].
    pub(super) carriers: Arc<CarrierDirectory>,
    pub(super) outbox: Arc<SmsOutbox>,
    pub(super) sessions: Arc<ScriptedSessions>,
    pub(super) idp: DevIdentityProviders,
    pub(super) rotated_kakao_key: ed25519_dalek::SigningKey,
    pub(super) verifications: Verifications,
}

pub(super) fn harness() -> Harness {
    let clock = Arc::new(SettableClock::starting_at(
        Utc.with_ymd_and_hms(2021, 8, 9, 11, 0, 0).unwrap(),
    ));
    let outbox = Arc::new(SmsOutbox::default());
    let store: Arc<dyn ChallengeStore> = Arc::new(MemoryChallengeStore::new(clock.clone()));
    let sessions = Arc::new(ScriptedSessions::default());
    *sessions.clock.lock().unwrap() = Some(clock.clone());
    let carriers = Arc::new(CarrierDirectory::new());
    carriers
        .register(&Subscriber {
            name: "홍길동".to_owned(),
            rrn: HARNESS_RRN.to_owned(),
            phone: PHONE.to_owned(),
            carrier: "skt".to_owned(),
        })
        .unwrap();
    let limits = Arc::new(AbuseLimits::new(
        store.clone(),
        HARNESS_LIMITS,
        b"test-secret",
    ));
    let mut providers = ProviderRegistry::new();
    providers.register(Arc::new(PhoneProvider::new(
        store.clone(),
        Arc::new(DevSmsSender::new(outbox.clone(), clock.clone())),
        clock.clone(),
        BoundDigester::for_codes(b"test-secret"),
        PhoneProviderSettings {
            otp_ttl: Duration::from_secs(180),
            max_attempts: 5,
        },
        PhoneGuards {
            carrier: Arc::new(DirectoryCarrierCheck::new(carriers.clone())),
            limits: limits.clone(),
        },
    )));
    let idp = DevIdentityProviders::generate();
    let rotated_kakao_key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let mut kakao_keys = idp.jwks("kakao").unwrap();
    kakao_keys.keys.push(platform::auth::Jwk {
        kid: ROTATED_KAKAO_KID.to_owned(),
        x: base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            rotated_kakao_key.verifying_key().as_bytes(),
        ),
        ..kakao_keys.keys[0].clone()
    });
    let settings = SimpleCertSettings {
        assertion_ttl: HARNESS_ASSERTION_TTL,
        max_attempts: 5,
    };
    for (kind, jwks) in [
        (ProviderKind::Kakao, kakao_keys),
        (ProviderKind::Naver, idp.jwks("naver").unwrap()),
    ] {
        providers.register(Arc::new(
            SimpleCertProvider::new(
                kind,
                &jwks,
                store.clone(),
                clock.clone(),
                b"test-secret",
                settings,
            )
            .unwrap(),
        ));
    }
    let verifications = Verifications {
        providers,
        store,
        sessions: sessions.clone(),
        tokens: TokenIssuer::new(
            TokenSigner::generate().unwrap(),
            clock.clone(),
            Duration::from_secs(1200),
        ),
        clock: clock.clone(),
        person_key_secret: b"test-secret".to_vec(),
        start_rate: StartRateLimit {
            limit: 5,
            window: Duration::from_secs(600),
        },
        limits,
    };
    Harness {
        clock,
        carriers,
        outbox,
        sessions,
        idp,
        rotated_kakao_key,
        verifications,
    }
}

pub(super) fn start_input(provider: ProviderKind, device: &str) -> StartInput {
    StartInput {
        provider: provider.id(),
        name: Name::parse("홍길동").unwrap(),
        rrn: Rrn::parse(HARNESS_RRN).unwrap(),
        phone: Some(Phone::parse(PHONE).unwrap()),
        carrier: Some(Carrier::Skt),
        device_id: DeviceId::parse(device).unwrap(),
        client: None,
    }
}

fn complete_input(id: VerificationId, otp: &str, device: &str) -> CompleteInput {
    CompleteInput {
        verification_id: id,
        answer: ChallengeAnswer::Otp(Otp::parse(otp).unwrap()),
        device_id: DeviceId::parse(device).unwrap(),
    }
}

impl Harness {
    fn last_otp(&self) -> String {
        self.outbox.sent_to(PHONE)[0].otp.clone()
    }

    fn wrong_otp(&self) -> String {
        let right: u32 = self.last_otp().parse().unwrap();
        format!("{:06}", (right + 1) % 1_000_000)
    }

    async fn start(&self, device: &str) -> StartOutput {
        self.verifications
            .start(start_input(ProviderKind::Phone, device))
            .await
            .unwrap()
    }
}

pub(super) fn kind(error: AuthError) -> ProblemKind {
    Problem::from(error).kind
}

#[tokio::test]
async fn a_right_code_yields_a_token_for_the_person_and_device() {
    let h = harness();
    let started = h.start("phone-a").await;
    assert_eq!(started.masked_phone, "010-****-5678");
    let lifetime = started.expires_at - h.clock.now();
    assert!(
        lifetime > chrono::Duration::seconds(175) && lifetime <= chrono::Duration::seconds(180),
        "{lifetime}"
    );
    let sms = &h.outbox.sent_to(PHONE)[0];
    assert_eq!(
        sms.body,
        format!("[vaxbook] 인증번호 {} (3분 이내 입력)", sms.otp)
    );

    let done = h
        .verifications
        .complete(complete_input(
            started.verification_id,
            &h.last_otp(),
            "phone-a",
        ))
        .await
        .unwrap();
    assert_eq!(done.masked_name, "홍*동");
    assert_eq!(done.session.session_id.as_str(), "session-1");
    let verifier = TokenVerifier::new(
        Arc::new(StaticJwks(h.verifications.jwks())),
        h.clock.clone(),
    );
    let claims = verifier.verify(&done.token.token).await.unwrap();
    assert_eq!(claims.bd, "1985-09-19");
    assert_eq!(claims.dev, "phone-a");
    assert_eq!(claims.sid, "session-1");
    // session-svc's fencing number of the claimed session rides in the token.
    assert_eq!(claims.fence, Some(7));
    let expected_key = derive_person_key(b"test-secret", &Rrn::parse("8509191234567").unwrap());
    assert_eq!(claims.sub, expected_key.as_str());
    assert_eq!(
        h.sessions.claims.lock().unwrap().as_slice(),
        [(expected_key.to_string(), "phone-a".to_owned())]
    );

    // Single use.
    let again = h
        .verifications
        .complete(complete_input(
            started.verification_id,
            &h.last_otp(),
            "phone-a",
        ))
        .await
        .unwrap_err();
    assert_eq!(kind(again), ProblemKind::VerificationExpired);
}

#[tokio::test]
async fn a_code_expires_with_the_injected_clock() {
    let h = harness();
    let started = h.start("phone-a").await;
    let otp = h.last_otp();
    h.clock.set(h.clock.now() + chrono::Duration::seconds(181));
    let error = h
        .verifications
        .complete(complete_input(started.verification_id, &otp, "phone-a"))
        .await
        .unwrap_err();
    let problem = Problem::from(error);
    assert_eq!(problem.kind, ProblemKind::VerificationExpired);
    assert_eq!(problem.detail, "the verification is unknown or has expired");
    assert!(h.sessions.claims.lock().unwrap().is_empty());
}

#[tokio::test]
async fn another_device_cannot_answer_the_challenge() {
    let h = harness();
    let started = h.start("phone-a").await;
    let error = h
        .verifications
        .complete(complete_input(
            started.verification_id,
            &h.last_otp(),
            "pc-b",
        ))
        .await
        .unwrap_err();
    assert_eq!(kind(error), ProblemKind::VerificationFailed);
    // The rightful device still can.
    assert!(
        h.verifications
            .complete(complete_input(
                started.verification_id,
                &h.last_otp(),
                "phone-a"
            ))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn five_wrong_codes_use_the_challenge_up() {
    let h = harness();
    let started = h.start("phone-a").await;
    let wrong = h.wrong_otp();
    for attempt in 1..=5u32 {
        let error = h
            .verifications
            .complete(complete_input(started.verification_id, &wrong, "phone-a"))
            .await
            .unwrap_err();
        match error {
            AuthError::WrongAnswer { attempts_left } => {
                assert!(attempt < 5);
                assert_eq!(attempts_left, 5 - attempt);
            }
            AuthError::AttemptsExhausted => assert_eq!(attempt, 5),
            other => panic!("unexpected {other:?}"),
        }
    }
    let after = h
        .verifications
        .complete(complete_input(
            started.verification_id,
            &h.last_otp(),
            "phone-a",
        ))
        .await
        .unwrap_err();
    assert_eq!(kind(after), ProblemKind::VerificationExpired);
}

#[tokio::test]
async fn starts_are_limited_per_person_and_the_window_reopens() {
    let h = harness();
    for _ in 0..5 {
        h.start("phone-a").await;
    }
    let error = h
        .verifications
        .start(start_input(ProviderKind::Phone, "phone-b"))
        .await
        .unwrap_err();
    let problem = Problem::from(error);
    assert_eq!(problem.kind, ProblemKind::RateLimited);
    assert_eq!(problem.retry_after, Some(Duration::from_secs(600)));
    assert_eq!(h.outbox.sent_to(PHONE).len(), 5);

    // Another person is not affected.
    // (with a phone of their own: the phone's start limit is used up too).
    let mut other = start_input(ProviderKind::Phone, "phone-c");
    other.rrn = Rrn::parse("850919-2234567").unwrap();
    other.phone = Some(Phone::parse("010-2222-3333").unwrap());
    h.carriers
        .register(&Subscriber {
            name: "홍길동".to_owned(),
            rrn: "850919-2234567".to_owned(),
            phone: "010-2222-3333".to_owned(),
            carrier: "skt".to_owned(),
        })
        .unwrap();
    assert!(h.verifications.start(other).await.is_ok());

    h.clock.set(h.clock.now() + chrono::Duration::seconds(601));
    h.start("phone-a").await;
}

#[tokio::test]
async fn disabled_providers_are_refused_before_counting_or_sending() {
    let h = harness();
    for provider in [ProviderKind::FinancialCert, ProviderKind::Pass] {
        for _ in 0..6 {
            let problem = Problem::from(
                h.verifications
                    .start(start_input(provider, "phone-a"))
                    .await
                    .unwrap_err(),
            );
            assert_eq!(problem.kind, ProblemKind::UnsupportedProvider);
            assert_eq!(
                problem.detail,
                format!("provider {} is not enabled yet", provider.name())
            );
        }
    }
    assert!(h.outbox.sent_to(PHONE).is_empty());
    // Twelve refusals did not use up the person's five starts.
    for _ in 0..5 {
        h.start("phone-a").await;
    }
}

#[tokio::test]
async fn a_refused_device_lock_is_passed_on_and_the_challenge_is_used_up() {
    let h = harness();
    let locked = Problem::new(ProblemKind::DeviceLocked, "held by another device")
        .with_retry_after(Duration::from_secs(600));
    *h.sessions.refuse_with.lock().unwrap() = Some(locked.clone());
    let started = h.start("pc-b").await;
    let error = h
        .verifications
        .complete(complete_input(
            started.verification_id,
            &h.last_otp(),
            "pc-b",
        ))
        .await
        .unwrap_err();
    assert_eq!(Problem::from(error), locked);
    let again = h
        .verifications
        .complete(complete_input(
            started.verification_id,
            &h.last_otp(),
            "pc-b",
        ))
        .await
        .unwrap_err();
    assert_eq!(kind(again), ProblemKind::VerificationExpired);
}
