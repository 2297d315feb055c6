//! The session rules (R3: one device per person) on top of a [`DeviceLockStore`], and the tonic
//! adapter that turns wire messages into validated requests and errors into statuses.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::clock::SharedClock;
use proto::session::v1 as pb;
use proto::session::v1::session_service_server::{SessionService, SessionServiceServer};
use tonic::{Request, Response, Status};

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
    clock: SharedClock,
    session_ttl: Duration,
    block_duration: Duration,
}

impl SessionRules {
    pub fn new(
        store: Arc<dyn DeviceLockStore>,
        clock: SharedClock,
        session_ttl: Duration,
        block_duration: Duration,
    ) -> Self {
        Self {
            store,
            clock,
            session_ttl,
            block_duration,
        }
    }

    /// Gives the device the person's lock, or refuses it with how long to wait.
    pub async fn claim(&self, request: &ClaimDevice) -> Result<GrantedSession, SessionError> {
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

    /// Ends the session; `true` when it still held the person's lock.
    pub async fn release(&self, request: &ReleaseSession) -> Result<bool, SessionError> {
        let released = self
            .store
            .release(&request.person_key, &request.session_id, self.clock.now())
            .await?;
        Ok(released)
    }
}

/// The tonic adapter for [`SessionRules`].
#[derive(Clone)]
pub struct SessionGrpc {
    rules: SessionRules,
}

impl SessionGrpc {
    pub fn new(rules: SessionRules) -> Self {
        Self { rules }
    }
}

#[tonic::async_trait]
impl SessionService for SessionGrpc {
    async fn claim_device(
        &self,
        request: Request<pb::ClaimDeviceRequest>,
    ) -> Result<Response<pb::ClaimDeviceResponse>, Status> {
        let claim = ClaimDevice::try_from(request.into_inner())?;
        let granted = self.rules.claim(&claim).await?;
        Ok(Response::new(pb::ClaimDeviceResponse {
            session_id: granted.session_id.as_str().to_owned(),
            expires_at: Some(platform::clock::to_timestamp(granted.expires_at)),
        }))
    }

    async fn validate_session(
        &self,
        request: Request<pb::ValidateSessionRequest>,
    ) -> Result<Response<pb::ValidateSessionResponse>, Status> {
        let validate = ValidateSession::try_from(request.into_inner())?;
        let valid = self.rules.validate(&validate).await?;
        Ok(Response::new(pb::ValidateSessionResponse { valid }))
    }

    async fn release_session(
        &self,
        request: Request<pb::ReleaseSessionRequest>,
    ) -> Result<Response<pb::ReleaseSessionResponse>, Status> {
        let release = ReleaseSession::try_from(request.into_inner())?;
        let released = self.rules.release(&release).await?;
        Ok(Response::new(pb::ReleaseSessionResponse { released }))
    }
}

/// The gRPC service over `store`, for `serve`, the dev run and in-process tests.
pub fn service(
    store: Arc<dyn DeviceLockStore>,
    clock: SharedClock,
    session_ttl: Duration,
    block_duration: Duration,
) -> SessionServiceServer<SessionGrpc> {
    SessionServiceServer::new(SessionGrpc::new(SessionRules::new(
        store,
        clock,
        session_ttl,
        block_duration,
    )))
}
