//! Identity providers (R2) as plug-ins. Each provider issues a challenge when a verification
//! starts and checks the answer when it completes; the rest of auth-svc (rate limits, device
//! lock, tokens) is the same for all of them. A provider is one implementation of
//! [`IdentityProvider`], named by its [`ProviderId`] and describing itself
//! ([`ProviderDescriptor`]: the fields it needs), registered in [`ProviderRegistry`] from
//! auth-svc's configuration. Nothing outside auth-svc lists providers: the gateway asks
//! `ListProviders`, and the other services only ever see the person key and birth date in the
//! access token. The registry times and classifies every call of every provider
//! ([`health`]), so the list carries each provider's measured health.

mod digest;
pub mod financial_cert;
pub mod health;
mod phone;
mod simple_cert;
mod trusted_keys;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};

use crate::carrier::Carrier;
pub use crate::domain::ChallengeAnswer;
use crate::domain::{DeviceId, Name, PersonKey, Phone, ProviderId, ProviderKind, VerificationId};
use crate::error::AuthError;
use crate::store::{Challenge, ChallengeStore};

pub use self::digest::BoundDigester;
pub use self::financial_cert::{FinancialCertProvider, FinancialCertSettings, TrustedRoots};
pub use self::health::{HealthReport, HealthState, HealthThresholds, Outcome};
pub use self::phone::{PhoneGuards, PhoneProvider, PhoneProviderSettings};
pub use self::simple_cert::{SimpleCertProvider, SimpleCertSettings};
pub use self::trusted_keys::{TrustedKeys, read_jwks_file};

/// A validated request to start a verification; the RRN is already reduced to the person key
/// and the birth date.
pub struct StartRequest {
    pub verification_id: VerificationId,
    pub person_key: PersonKey,
    pub birth_date: NaiveDate,
    /// The 7th digit of the RRN (sex and century), which the carriers' agency compares.
    pub sex_digit: char,
    pub name: Name,
    pub phone: Option<Phone>,
    /// The phone's carrier (phone provider).
    pub carrier: Option<Carrier>,
    pub device_id: DeviceId,
}

/// What the person is told about the challenge they must answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartedChallenge {
    pub expires_at: DateTime<Utc>,
    /// Where the code went, masked (phone provider); empty for other providers.
    pub masked_phone: String,
    /// What the provider's assertion must carry (simple certificates) or the certificate's key
    /// must sign (financial certificates); empty for phone.
    pub nonce: String,
}

/// What a provider tells frontends about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderDescriptor {
    pub id: ProviderId,
    /// A name to show.
    pub display_name: String,
    /// The fields a start needs besides the device (`name`, `rrn`, `phone`, …).
    pub start_fields: Vec<String>,
    /// The fields a completion answers with (`otp`, `assertion`, `signature` + `certificate`).
    pub answer_fields: Vec<String>,
}

impl ProviderDescriptor {
    pub fn new(id: ProviderId, display_name: &str, start: &[&str], answer: &[&str]) -> Self {
        let owned = |fields: &[&str]| fields.iter().map(|field| (*field).to_owned()).collect();
        Self {
            id,
            display_name: display_name.to_owned(),
            start_fields: owned(start),
            answer_fields: owned(answer),
        }
    }

    /// How a built-in provider describes itself.
    pub fn builtin(kind: ProviderKind) -> Self {
        let (display_name, start, answer): (&str, &[&str], &[&str]) = match kind {
            ProviderKind::Phone => (
                "휴대폰 본인확인",
                &["name", "rrn", "phone", "carrier"],
                &["otp"],
            ),
            ProviderKind::FinancialCert => (
                "금융인증서",
                &["name", "rrn"],
                &["signature", "certificate"],
            ),
            ProviderKind::Kakao => ("카카오 인증", &["name", "rrn"], &["assertion"]),
            ProviderKind::Naver => ("네이버 인증", &["name", "rrn"], &["assertion"]),
            ProviderKind::Pass => ("PASS 인증", &["name", "rrn"], &["assertion"]),
        };
        Self::new(kind.id(), display_name, start, answer)
    }
}

/// One identity provider.
#[async_trait::async_trait]
pub trait IdentityProvider: Send + Sync {
    /// The id clients name the provider by, stored with each challenge it issues.
    fn id(&self) -> ProviderId;

    /// What frontends are told about it; a built-in provider's by default.
    fn descriptor(&self) -> ProviderDescriptor {
        let id = self.id();
        match id.builtin() {
            Some(kind) => ProviderDescriptor::builtin(kind),
            None => ProviderDescriptor::new(id.clone(), id.as_str(), &["name", "rrn"], &[]),
        }
    }

    /// Issues the challenge and stores it under `request.verification_id`.
    async fn start(&self, request: StartRequest) -> Result<StartedChallenge, AuthError>;

    /// Checks `answer` against the stored `challenge` (already known to be this provider's,
    /// unexpired and started on the answering device). On success the challenge is used up;
    /// on a wrong answer the failure is counted; an answer of the wrong kind is a malformed
    /// request and changes nothing.
    async fn complete(
        &self,
        verification_id: &VerificationId,
        challenge: &Challenge,
        answer: &ChallengeAnswer,
    ) -> Result<(), AuthError>;
}

/// A provider with its health measured: every call is timed and classified.
struct Measured {
    inner: Arc<dyn IdentityProvider>,
    descriptor: ProviderDescriptor,
    health: health::HealthTracker,
}

impl Measured {
    fn observe<T>(&self, started: Instant, result: &Result<T, AuthError>) {
        self.health.record(Outcome::of(result), started.elapsed());
    }
}

#[async_trait::async_trait]
impl IdentityProvider for Measured {
    fn id(&self) -> ProviderId {
        self.descriptor.id.clone()
    }

    fn descriptor(&self) -> ProviderDescriptor {
        self.descriptor.clone()
    }

    async fn start(&self, request: StartRequest) -> Result<StartedChallenge, AuthError> {
        let started = Instant::now();
        let result = self.inner.start(request).await;
        self.observe(started, &result);
        result
    }

    async fn complete(
        &self,
        verification_id: &VerificationId,
        challenge: &Challenge,
        answer: &ChallengeAnswer,
    ) -> Result<(), AuthError> {
        let started = Instant::now();
        let result = self
            .inner
            .complete(verification_id, challenge, answer)
            .await;
        self.observe(started, &result);
        result
    }
}

/// One provider on offer, as `ListProviders` reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct OfferedProvider {
    pub descriptor: ProviderDescriptor,
    pub health: HealthReport,
}

impl OfferedProvider {
    /// The `vaxbook.auth.v1.ProviderInfo` of this provider.
    pub fn into_wire(self) -> proto::auth::v1::ProviderInfo {
        use proto::auth::v1::ProviderHealth;
        let health = match self.health.state {
            HealthState::Ok => ProviderHealth::Ok,
            HealthState::Slow => ProviderHealth::Slow,
            HealthState::Down => ProviderHealth::Down,
        };
        proto::auth::v1::ProviderInfo {
            id: self.descriptor.id.to_string(),
            display_name: self.descriptor.display_name,
            start_fields: self.descriptor.start_fields,
            answer_fields: self.descriptor.answer_fields,
            health: health.into(),
            success_rate: self.health.success_rate,
            p95_latency_ms: u32::try_from(self.health.p95_latency.as_millis()).unwrap_or(u32::MAX),
            samples: u32::try_from(self.health.samples).unwrap_or(u32::MAX),
        }
    }
}

/// The enabled providers, in the order they were registered, each measured.
#[derive(Clone, Default)]
pub struct ProviderRegistry {
    providers: Vec<Arc<Measured>>,
    thresholds: HealthThresholds,
}

impl ProviderRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// With other health thresholds than the defaults (set before registering).
    pub fn with_thresholds(thresholds: HealthThresholds) -> Self {
        Self {
            providers: Vec::new(),
            thresholds,
        }
    }

    pub fn thresholds(&self) -> HealthThresholds {
        self.thresholds
    }

    /// Adds `provider`; one registered under the same id before is replaced.
    pub fn register(&mut self, provider: Arc<dyn IdentityProvider>) {
        let descriptor = provider.descriptor();
        let measured = Arc::new(Measured {
            health: health::HealthTracker::new(descriptor.id.as_str(), self.thresholds),
            inner: provider,
            descriptor,
        });
        match self
            .providers
            .iter_mut()
            .find(|known| known.descriptor.id == measured.descriptor.id)
        {
            Some(known) => *known = measured,
            None => self.providers.push(measured),
        }
    }

    /// The provider (measured), or `ProviderNotEnabled` when it is not on offer.
    pub fn get(&self, id: &ProviderId) -> Result<Arc<dyn IdentityProvider>, AuthError> {
        self.providers
            .iter()
            .find(|provider| provider.descriptor.id == *id)
            .map(|provider| provider.clone() as Arc<dyn IdentityProvider>)
            .ok_or_else(|| AuthError::ProviderNotEnabled(id.to_string()))
    }

    /// Every provider on offer with its measured health.
    pub fn offered(&self) -> Vec<OfferedProvider> {
        self.providers
            .iter()
            .map(|provider| OfferedProvider {
                descriptor: provider.descriptor.clone(),
                health: provider.health.report(),
            })
            .collect()
    }
}

/// Refuses a challenge that has no attempts left (and throws it away).
async fn refuse_if_exhausted(
    store: &dyn ChallengeStore,
    verification_id: &VerificationId,
    challenge: &Challenge,
    max_attempts: u32,
) -> Result<(), AuthError> {
    if challenge.attempts >= max_attempts {
        store.delete(verification_id).await?;
        return Err(AuthError::AttemptsExhausted);
    }
    Ok(())
}

/// Counts one wrong answer and returns how many are left; the last allowed one throws the
/// challenge away (`AttemptsExhausted`).
async fn count_wrong_answer(
    store: &dyn ChallengeStore,
    verification_id: &VerificationId,
    max_attempts: u32,
) -> Result<u32, AuthError> {
    let Some(attempts) = store.record_failed_attempt(verification_id).await? else {
        return Err(AuthError::VerificationExpired);
    };
    if attempts >= max_attempts {
        store.delete(verification_id).await?;
        return Err(AuthError::AttemptsExhausted);
    }
    Ok(max_attempts - attempts)
}

/// Uses the challenge up after a right answer. Of two concurrent right answers only the one
/// that removes it wins.
async fn use_up(
    store: &dyn ChallengeStore,
    verification_id: &VerificationId,
) -> Result<(), AuthError> {
    if store.delete(verification_id).await? {
        Ok(())
    } else {
        Err(AuthError::VerificationExpired)
    }
}
