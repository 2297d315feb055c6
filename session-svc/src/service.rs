//! The session rules (R3: one device per person) on top of a [`DeviceLockStore`]. They take
//! validated requests ([`crate::domain`]) and answer domain values or a [`SessionError`]; the
//! tonic adapter around them lives in [`crate::grpc`]. A lock is claimed only with auth-svc's
//! device proof and released only by its session's token ([`crate::callers`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::clock::SharedClock;

use crate::callers::Callers;
use crate::domain::{ClaimDevice, ReleaseSession, SessionId, ValidateSession};
use crate::error::SessionError;
use crate::store::{ClaimOutcome, DeviceLockStore};

/// A session granted to a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantedSession {
    pub session_id: SessionId,
    pub expires_at: DateTime<Utc>,
}

/// The session rules: who may hold a person's lock, for how long, and how long refused
/// devices wait. Time always comes from the injected clock.
#[derive(Clone)]
pub struct SessionRules {
    store: Arc<dyn DeviceLockStore>,
    callers: Arc<Callers>,
    clock: SharedClock,
    session_ttl: Duration,
    block_duration: Duration,
}

impl SessionRules {
    pub fn new(
        store: Arc<dyn DeviceLockStore>,
        callers: Arc<Callers>,
        clock: SharedClock,
        session_ttl: Duration,
        block_duration: Duration,
    ) -> Self {
        Self {
            store,
            callers,
            clock,
            session_ttl,
            block_duration,
        }
    }

    /// Gives the device the person's lock, or refuses it with how long to wait. Only with a
    /// valid, unused device proof for this person and device.
    pub async fn claim(&self, request: &ClaimDevice) -> Result<GrantedSession, SessionError> {
        self.callers.authorize_claim(request).await?;
        let outcome = self
            .store
            .claim(
                &request.person_key,
                &request.device_id,
                self.clock.now(),
                self.session_ttl,
                self.block_duration,
            )
            .await?;
        let label = match &outcome {
            ClaimOutcome::Granted { .. } => "granted",
            ClaimOutcome::Locked { .. } => "locked",
            ClaimOutcome::Blocked { .. } => "blocked",
        };
        metrics::counter!("session_claims_total", "outcome" => label).increment(1);
        match outcome {
            ClaimOutcome::Granted {
                session_id,
                expires_at,
            } => {
                tracing::debug!("device lock granted");
                Ok(GrantedSession {
                    session_id,
                    expires_at,
                })
            }
            ClaimOutcome::Locked { retry_after } | ClaimOutcome::Blocked { retry_after } => {
                tracing::debug!(
                    outcome = label,
                    retry_after_secs = retry_after.as_secs(),
                    "device lock refused"
                );
                Err(SessionError::DeviceLocked { retry_after })
            }
        }
    }

    /// Whether the session still holds the person's lock on that device.
    pub async fn validate(&self, request: &ValidateSession) -> Result<bool, SessionError> {
        let valid = self
            .store
            .validate(
                &request.person_key,
                &request.session_id,
                &request.device_id,
                self.clock.now(),
            )
            .await?;
        metrics::counter!("session_validations_total", "valid" => if valid { "true" } else { "false" })
            .increment(1);
        Ok(valid)
    }

    /// Ends the session; `true` when it still held the person's lock. Only with the access
    /// token of that session (`token`, from the `authorization` metadata).
    pub async fn release(
        &self,
        request: &ReleaseSession,
        token: Option<&str>,
    ) -> Result<bool, SessionError> {
        self.callers.authorize_release(token, request).await?;
        let released = self
            .store
            .release(&request.person_key, &request.session_id, self.clock.now())
            .await?;
        Ok(released)
    }
}
