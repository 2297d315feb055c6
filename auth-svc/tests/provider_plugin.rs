//! A provider added from outside auth-svc's sources: defined here, implementing only the
//! provider trait, it is offered by the registry with its own fields and works; and a provider
//! whose adapter keeps failing is reported `down` while its metrics record the failures.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use auth_svc::domain::{
    ChallengeAnswer, DeviceId, Name, Otp, ProviderId, Rrn, VerificationId, derive_person_key,
};
use auth_svc::error::AuthError;
use auth_svc::providers::{
    HealthState, HealthThresholds, IdentityProvider, ProviderDescriptor, ProviderRegistry,
    StartRequest, StartedChallenge,
};
use auth_svc::store::{Challenge, StoreError};

/// A toy provider: the answer is always the code 000000; `failing` makes its adapter fail.
struct MagicWord {
    failing: AtomicBool,
}

#[async_trait::async_trait]
impl IdentityProvider for MagicWord {
    fn id(&self) -> ProviderId {
        ProviderId::parse("magic_word").unwrap()
    }

    fn descriptor(&self) -> ProviderDescriptor {
        ProviderDescriptor::new(self.id(), "Magic word", &["name", "rrn"], &["otp"])
    }

    async fn start(&self, _request: StartRequest) -> Result<StartedChallenge, AuthError> {
        if self.failing.load(Ordering::SeqCst) {
            let broken = serde_json::from_str::<u8>("not json").unwrap_err();
            return Err(AuthError::Store(StoreError::Malformed(broken)));
        }
        Ok(StartedChallenge {
            expires_at: chrono::Utc::now() + chrono::Duration::minutes(3),
            masked_phone: String::new(),
            nonce: String::new(),
        })
    }

    async fn complete(
        &self,
        _verification_id: &VerificationId,
        _challenge: &Challenge,
        answer: &ChallengeAnswer,
    ) -> Result<(), AuthError> {
        match answer {
            ChallengeAnswer::Otp(otp) if otp.as_str() == "000000" => Ok(()),
            _ => Err(AuthError::WrongAnswer { attempts_left: 1 }),
        }
    }
}

fn request() -> StartRequest {
    let rrn = Rrn::parse("900101-1234567").unwrap();
    StartRequest {
        verification_id: VerificationId::new_random(),
        person_key: derive_person_key(b"secret", &rrn),
        birth_date: rrn.birth_date(),
        sex_digit: '1',
        name: Name::parse("홍길동").unwrap(),
        phone: None,
        carrier: None,
        device_id: DeviceId::parse("phone-a").unwrap(),
    }
}

fn registry() -> (ProviderRegistry, Arc<MagicWord>) {
    let provider = Arc::new(MagicWord {
        failing: AtomicBool::new(false),
    });
    let mut registry = ProviderRegistry::with_thresholds(HealthThresholds {
        window: Duration::from_secs(300),
        slow_p95: Duration::from_secs(2),
        down_below: 0.5,
        degraded_below: 0.9,
        min_samples: 5,
    });
    registry.register(provider.clone());
    (registry, provider)
}

#[tokio::test]
async fn a_provider_defined_outside_auth_svc_is_offered_and_works() {
    let (registry, _) = registry();
    let offered = registry.offered();
    assert_eq!(offered.len(), 1);
    assert_eq!(offered[0].descriptor.id.as_str(), "magic_word");
    assert_eq!(offered[0].descriptor.start_fields, ["name", "rrn"]);
    assert_eq!(offered[0].descriptor.answer_fields, ["otp"]);
    let provider = registry
        .get(&ProviderId::parse("magic_word").unwrap())
        .unwrap();
    provider.start(request()).await.unwrap();
    let rrn = Rrn::parse("900101-1234567").unwrap();
    let challenge = Challenge {
        provider: provider.id(),
        person_key: derive_person_key(b"secret", &rrn),
        birth_date: rrn.birth_date(),
        masked_name: "홍*동".to_owned(),
        device_id: DeviceId::parse("phone-a").unwrap(),
        secret: auth_svc::store::ChallengeSecret::AssertionBinding {
            nonce: String::new(),
            name_digest: String::new(),
        },
        expires_at: chrono::Utc::now() + chrono::Duration::minutes(3),
        attempts: 0,
    };
    let id = VerificationId::new_random();
    let right = ChallengeAnswer::Otp(Otp::parse("000000").unwrap());
    provider.complete(&id, &challenge, &right).await.unwrap();
    let wrong = ChallengeAnswer::Otp(Otp::parse("123456").unwrap());
    assert!(provider.complete(&id, &challenge, &wrong).await.is_err());
    // Wrong answers are the person's: the provider stays healthy.
    let health = registry.offered()[0].health;
    assert_eq!(health.state, HealthState::Ok);
    assert_eq!(health.samples, 3);
    assert!(
        registry
            .get(&ProviderId::parse("unknown").unwrap())
            .is_err()
    );
}

#[tokio::test]
async fn a_provider_whose_adapter_fails_repeatedly_is_reported_down() {
    let (registry, provider) = registry();
    let id = ProviderId::parse("magic_word").unwrap();
    for _ in 0..3 {
        registry.get(&id).unwrap().start(request()).await.unwrap();
    }
    provider.failing.store(true, Ordering::SeqCst);
    for _ in 0..5 {
        assert!(registry.get(&id).unwrap().start(request()).await.is_err());
    }
    let health = registry.offered()[0].health;
    assert_eq!(health.state, HealthState::Down, "{health:?}");
    assert!((health.success_rate - 3.0 / 8.0).abs() < 1e-9);
    let wire = registry.offered().remove(0).into_wire();
    assert_eq!(wire.health, proto::auth::v1::ProviderHealth::Down as i32);
    assert_eq!(wire.id, "magic_word");
}
