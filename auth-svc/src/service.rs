//! The verification flow, independent of gRPC: start (validate → rate-limit per person →
//! would the device lock be refused → provider challenge) and complete (challenge lookup → provider check → device lock through
//! session-svc → access token). The tonic adapter in `grpc.rs` converts wire messages into the
//! validated inputs here and the results back.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::auth::Jwks;
use platform::clock::SharedClock;

use crate::domain::{
    CompleteInput, DeviceId, ProviderId, StartInput, VerificationId, derive_person_key,
};
use crate::error::AuthError;
use crate::limits::AbuseLimits;
use crate::providers::{ProviderRegistry, StartRequest};
use crate::session::{ClaimedSession, SessionGateway};
use crate::store::ChallengeStore;
use crate::tokens::{IssuedToken, TokenIssuer, TokenSubject};

/// A started verification, as told to the person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartOutput {
    pub verification_id: VerificationId,
    pub provider: ProviderId,
    pub expires_at: DateTime<Utc>,
    pub masked_phone: String,
    /// What the provider's assertion must carry (simple certificates); empty for phone.
    pub nonce: String,
}

/// A completed verification: the token and the device lock it rides on.
#[derive(Clone, Debug)]
pub struct CompleteOutput {
    pub token: IssuedToken,
    pub session: ClaimedSession,
    pub device_id: DeviceId,
    pub masked_name: String,
}

/// How many verifications one person may start in a window.
#[derive(Clone, Copy, Debug)]
pub struct StartRateLimit {
    pub limit: u64,
    pub window: Duration,
}

/// The verification flow and its collaborators.
pub struct Verifications {
    pub providers: ProviderRegistry,
    pub store: Arc<dyn ChallengeStore>,
    pub sessions: Arc<dyn SessionGateway>,
    pub tokens: TokenIssuer,
    pub clock: SharedClock,
    pub person_key_secret: Vec<u8>,
    pub start_rate: StartRateLimit,
    /// The per-phone, per-address and wrong-code limits (`crate::limits`).
    pub limits: Arc<AbuseLimits>,
}

impl Verifications {
    pub async fn start(&self, input: StartInput) -> Result<StartOutput, AuthError> {
        let provider = input.provider.to_string();
        let outcome = self.start_inner(input).await;
        record_outcome("start", &provider, &outcome);
        outcome
    }

    async fn start_inner(&self, input: StartInput) -> Result<StartOutput, AuthError> {
        // Refused providers cost nothing: checked before any counter moves.
        let provider = self.providers.get(&input.provider)?;
        let person_key = derive_person_key(&self.person_key_secret, &input.rrn);
        let rate_key = format!("start:{person_key}");
        let starts = self
            .store
            .hit_rate_limit(&rate_key, self.start_rate.window)
            .await?;
        if starts > self.start_rate.limit {
            return Err(AuthError::RateLimited {
                retry_after: self.start_rate.window,
            });
        }
        if let Some(client) = &input.client {
            self.limits.count_start(&self.limits.client(client)).await?;
        }
        // Wrong codes lock the person out of every provider, not only the one they came from.
        self.limits
            .refuse_if_locked_out(&[&AbuseLimits::person(&person_key)])
            .await?;
        // A device that could not claim the person's lock (R3) is told so before any SMS or
        // challenge goes out; session-svc's answer changes nothing.
        self.sessions
            .check_device(&person_key, &input.device_id)
            .await?;
        let verification_id = VerificationId::new_random();
        let started = provider
            .start(StartRequest {
                verification_id,
                person_key,
                birth_date: input.rrn.birth_date(),
                sex_digit: input.rrn.sex_digit(),
                name: input.name,
                phone: input.phone,
                carrier: input.carrier,
                device_id: input.device_id,
            })
            .await?;
        tracing::info!(%verification_id, provider = %input.provider, "verification started");
        Ok(StartOutput {
            verification_id,
            provider: input.provider,
            expires_at: started.expires_at,
            masked_phone: started.masked_phone,
            nonce: started.nonce,
        })
    }

    pub async fn complete(&self, input: CompleteInput) -> Result<CompleteOutput, AuthError> {
        let outcome = self.complete_inner(input).await;
        record_outcome("complete", "", &outcome);
        outcome
    }

    async fn complete_inner(&self, input: CompleteInput) -> Result<CompleteOutput, AuthError> {
        let id = input.verification_id;
        let challenge = self
            .store
            .get(&id)
            .await?
            .ok_or(AuthError::VerificationExpired)?;
        // The store's own expiry runs on real time; the rule runs on the injected clock.
        if challenge.expires_at <= self.clock.now() {
            self.store.delete(&id).await?;
            return Err(AuthError::VerificationExpired);
        }
        if challenge.device_id != input.device_id {
            return Err(AuthError::WrongDevice);
        }
        let provider = self.providers.get(&challenge.provider)?;
        provider.complete(&id, &challenge, &input.answer).await?;
        // The challenge is used up from here on: a refused device lock means verifying again
        // later, which is R3's "one identity check per 10 minutes".
        let session = self
            .sessions
            .claim_device(&challenge.person_key, &input.device_id)
            .await?;
        let token = self.tokens.issue(&TokenSubject {
            person_key: &challenge.person_key,
            birth_date: challenge.birth_date,
            session_id: &session.session_id,
            device_id: &input.device_id,
            session_expires_at: session.expires_at,
            fence: session.fence,
        })?;
        tracing::info!(verification_id = %id, session_id = %session.session_id, "verification completed");
        Ok(CompleteOutput {
            token,
            session,
            device_id: input.device_id,
            masked_name: challenge.masked_name,
        })
    }

    pub fn jwks(&self) -> Jwks {
        self.tokens.jwks()
    }
}

/// Counts the outcome in `auth_verifications_total{step, result}` and, for a refusal, the
/// security event (`auth_security_events_total{kind}`, logged once).
fn record_outcome<T>(step: &'static str, provider: &str, outcome: &Result<T, AuthError>) {
    if let Err(error) = outcome
        && let Some(kind) = security_kind(error)
    {
        crate::limits::security_event(kind, step, provider);
    }
    let result = match outcome {
        Ok(_) => "ok",
        Err(AuthError::Session(problem)) => problem.kind.name(),
        Err(AuthError::InvalidRequest(_)) => "invalid-request",
        Err(AuthError::InvalidRrn | AuthError::InvalidName | AuthError::InvalidPhone) => {
            "invalid-identity"
        }
        Err(AuthError::ProviderNotEnabled(_)) => "unsupported-provider",
        Err(
            AuthError::RateLimited { .. }
            | AuthError::TooManyStarts { .. }
            | AuthError::TooManyProxies { .. }
            | AuthError::LockedOut { .. },
        ) => "rate-limited",
        Err(AuthError::IdentityMismatch) => "identity-mismatch",
        Err(AuthError::ProviderUnavailable(_)) => "provider-unavailable",
        Err(AuthError::VerificationExpired) => "verification-expired",
        Err(
            AuthError::WrongDevice
            | AuthError::WrongAnswer { .. }
            | AuthError::AssertionRejected { .. }
            | AuthError::AttemptsExhausted,
        ) => "verification-failed",
        Err(AuthError::Store(_) | AuthError::Sms(_)) => "unavailable",
        Err(AuthError::Signing(_)) => "internal",
    };
    metrics::counter!("auth_verifications_total", "step" => step, "result" => result).increment(1);
}

/// The security event a refusal is, if it is one.
fn security_kind(error: &AuthError) -> Option<&'static str> {
    use platform::problem::ProblemKind;
    Some(match error {
        AuthError::WrongAnswer { .. } | AuthError::AttemptsExhausted => "wrong-code",
        AuthError::AssertionRejected { .. } => "rejected-assertion",
        AuthError::WrongDevice => "wrong-device",
        AuthError::IdentityMismatch => "identity-mismatch",
        AuthError::RateLimited { .. }
        | AuthError::TooManyStarts { .. }
        | AuthError::TooManyProxies { .. } => "rate-limited",
        AuthError::LockedOut { .. } => "locked-out",
        AuthError::Session(problem) => match problem.kind {
            ProblemKind::DeviceLocked => "device-locked",
            ProblemKind::Unauthenticated | ProblemKind::Forbidden => "refused-internal-call",
            _ => return None,
        },
        _ => return None,
    })
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "simple_cert_tests.rs"]
mod simple_cert_tests;
