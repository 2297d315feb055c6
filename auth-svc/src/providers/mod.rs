//! Identity providers (R2). Each provider issues a challenge when a verification starts and
//! checks the answer when it completes; the rest of auth-svc (rate limits, device lock, tokens)
//! is the same for all of them. Adding a provider means one more implementation of
//! [`IdentityProvider`] registered in [`ProviderRegistry`]; no other service changes, because
//! they only ever see the person key and birth date in the access token.

mod digest;
mod phone;
mod simple_cert;
mod trusted_keys;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

pub use crate::domain::ChallengeAnswer;
use crate::domain::{DeviceId, Name, PersonKey, Phone, ProviderKind, VerificationId};
use crate::error::AuthError;
use crate::store::{Challenge, ChallengeStore};

pub use self::digest::BoundDigester;
pub use self::phone::{PhoneProvider, PhoneProviderSettings};
pub use self::simple_cert::{SimpleCertProvider, SimpleCertSettings};
pub use self::trusted_keys::{TrustedKeys, read_jwks_file};

/// A validated request to start a verification; the RRN is already reduced to the person key
/// and the birth date.
pub struct StartRequest {
    pub verification_id: VerificationId,
    pub person_key: PersonKey,
    pub birth_date: NaiveDate,
    pub name: Name,
    pub phone: Option<Phone>,
    pub device_id: DeviceId,
}

/// What the person is told about the challenge they must answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartedChallenge {
    pub expires_at: DateTime<Utc>,
    /// Where the code went, masked (phone provider); empty for other providers.
    pub masked_phone: String,
    /// What the provider's assertion must carry (simple certificates); empty for phone.
    pub nonce: String,
}

/// One identity provider.
#[async_trait::async_trait]
pub trait IdentityProvider: Send + Sync {
    fn kind(&self) -> ProviderKind;

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

/// The enabled providers, by kind.
#[derive(Clone, Default)]
pub struct ProviderRegistry {
    providers: HashMap<ProviderKind, Arc<dyn IdentityProvider>>,
}

impl ProviderRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, provider: Arc<dyn IdentityProvider>) {
        self.providers.insert(provider.kind(), provider);
    }

    /// The provider, or `UnsupportedProvider` when it is not enabled.
    pub fn get(&self, kind: ProviderKind) -> Result<&Arc<dyn IdentityProvider>, AuthError> {
        self.providers
            .get(&kind)
            .ok_or(AuthError::ProviderNotEnabled(kind.name()))
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
