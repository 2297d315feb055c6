//! The session rules (R3: one device per person) on top of a [`DeviceLockStore`]. They take
//! validated requests ([`crate::domain`]) and answer domain values or a [`SessionError`]; the
//! tonic adapter around them lives in [`crate::grpc`]. A lock is claimed only with auth-svc's
//! device proof and released only by its session's token ([`crate::callers`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::clock::SharedClock;

use crate::callers::Callers;
use crate::domain::{CheckDevice, ClaimDevice, ReleaseSession, SessionId, ValidateSession};
use crate::error::SessionError;
use crate::store::{ClaimOutcome, DeviceLockStore, DeviceStanding};

/// A session granted to a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantedSession {
    pub session_id: SessionId,
    pub expires_at: DateTime<Utc>,
    /// The session's fencing number: it grows each time the person's lock changes hands.
    pub fence: u64,
}

/// What a validation answers: whether the session holds the lock, the fencing number of the
/// lock in force, and whether the presented number is older than it (the lock changed hands).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionValidity {
    pub valid: bool,
    pub fence: u64,
    pub superseded: bool,
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
    /// Deadline of one store call; a claim as a whole gets a few of them (R4: never a hang).
    store_timeout: Duration,
}

/// How many store deadlines a whole claim (used-proof check, claim, fencing read) may take.
const CLAIM_DEADLINES: u32 = 4;

impl SessionRules {
    pub fn new(
        store: Arc<dyn DeviceLockStore>,
        callers: Arc<Callers>,
        clock: SharedClock,
        session_ttl: Duration,
        block_duration: Duration,
        store_timeout: Duration,
    ) -> Self {
        Self {
            store,
            callers,
            clock,
            session_ttl,
            block_duration,
            store_timeout,
        }
    }

    /// Gives the device the person's lock, or refuses it with how long to wait. Only with a
    /// valid, unused device proof for this person and device.
    pub async fn claim(&self, request: &ClaimDevice) -> Result<GrantedSession, SessionError> {
        let limit = self.store_timeout * CLAIM_DEADLINES;
        match tokio::time::timeout(limit, self.claim_unbounded(request)).await {
            Ok(answer) => answer,
            Err(_) => {
                metrics::counter!("session_claims_total", "outcome" => "overloaded").increment(1);
                Err(SessionError::Store(crate::store::StoreError::Timeout(
                    limit,
                )))
            }
        }
    }

    async fn claim_unbounded(&self, request: &ClaimDevice) -> Result<GrantedSession, SessionError> {
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
                // The fencing number the claim script gave this session (read back: the lock
                // is this session's until it is released or another claim wins it).
                let fence = self
                    .store
                    .validate_fenced(
                        &request.person_key,
                        &session_id,
                        &request.device_id,
                        self.clock.now(),
                    )
                    .await?
                    .fence;
                Ok(GrantedSession {
                    session_id,
                    expires_at,
                    fence,
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

    /// How long a claim by this device now would tell it to wait, `None` when the claim would
    /// be granted. Changes nothing: the device is not blocked by asking. Only with auth-svc's
    /// device-check grant for this person and device.
    pub async fn check(&self, request: &CheckDevice) -> Result<Option<Duration>, SessionError> {
        self.callers.authorize_check(request).await?;
        let standing = self
            .store
            .standing(&request.person_key, &request.device_id, self.clock.now())
            .await?;
        let (label, refusal) = match standing {
            DeviceStanding::Free => ("free", None),
            // The claim would block the device for the whole block duration.
            DeviceStanding::HeldByAnother => ("locked", Some(self.block_duration)),
            DeviceStanding::Blocked { retry_after } => ("blocked", Some(retry_after)),
        };
        metrics::counter!("session_checks_total", "outcome" => label).increment(1);
        Ok(refusal)
    }

    /// Whether the session still holds the person's lock on that device (a validation counts as
    /// activity against the idle timeout), and whether the caller's fencing number is outdated.
    pub async fn validate(&self, request: &ValidateSession) -> Result<bool, SessionError> {
        Ok(self.validate_fenced(request).await?.valid)
    }

    /// [`Self::validate`] with the fencing numbers.
    pub async fn validate_fenced(
        &self,
        request: &ValidateSession,
    ) -> Result<SessionValidity, SessionError> {
        let found = crate::store::bounded(
            self.store_timeout,
            self.store.validate_fenced(
                &request.person_key,
                &request.session_id,
                &request.device_id,
                self.clock.now(),
            ),
        )
        .await?;
        let superseded = request
            .fence
            .is_some_and(|presented| found.fence > presented);
        // A session whose number is outdated never writes, even if it looked valid.
        let valid = found.valid && !superseded;
        if superseded {
            metrics::counter!("session_superseded_total").increment(1);
        }
        metrics::counter!("session_validations_total", "valid" => if valid { "true" } else { "false" })
            .increment(1);
        Ok(SessionValidity {
            valid,
            fence: found.fence,
            superseded,
        })
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
