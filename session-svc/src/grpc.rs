//! The tonic adapter of session-svc: turns each wire message into a validated request
//! ([`crate::domain`], `TryFrom`), asks [`SessionRules`], and turns the answer back into a wire
//! message, or the error into a status through the one `Problem` mapping of [`crate::error`].
//! The credential of `ReleaseSession` is read from the `authorization` metadata here and
//! checked by the rules ([`crate::callers`]).

use std::sync::Arc;
use std::time::Duration;

use platform::clock::SharedClock;
use platform::problem::Problem;
use proto::session::v1 as pb;
use proto::session::v1::device_check_service_server::{
    DeviceCheckService, DeviceCheckServiceServer,
};
use proto::session::v1::session_service_server::{SessionService, SessionServiceServer};
use tonic::{Request, Response, Status};

use crate::callers::{Callers, presented_token};
use crate::domain::{CheckDevice, ClaimDevice, ReleaseSession, ValidateSession};
use crate::error::SessionError;
use crate::service::SessionRules;
use crate::store::DeviceLockStore;

impl From<SessionError> for Status {
    fn from(error: SessionError) -> Self {
        Problem::from(error).to_status()
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
            fence: granted.fence,
        }))
    }

    async fn validate_session(
        &self,
        request: Request<pb::ValidateSessionRequest>,
    ) -> Result<Response<pb::ValidateSessionResponse>, Status> {
        let validate = ValidateSession::try_from(request.into_inner())?;
        let validity = self.rules.validate_fenced(&validate).await?;
        Ok(Response::new(pb::ValidateSessionResponse {
            valid: validity.valid,
            fence: validity.fence,
            superseded: validity.superseded,
        }))
    }

    async fn release_session(
        &self,
        request: Request<pb::ReleaseSessionRequest>,
    ) -> Result<Response<pb::ReleaseSessionResponse>, Status> {
        let token = presented_token(request.metadata()).map(str::to_owned);
        let release = ReleaseSession::try_from(request.into_inner())?;
        let released = self.rules.release(&release, token.as_deref()).await?;
        Ok(Response::new(pb::ReleaseSessionResponse { released }))
    }
}

#[tonic::async_trait]
impl DeviceCheckService for SessionGrpc {
    async fn check_device(
        &self,
        request: Request<pb::CheckDeviceRequest>,
    ) -> Result<Response<pb::CheckDeviceResponse>, Status> {
        let check = CheckDevice::try_from(request.into_inner())?;
        let refusal = self.rules.check(&check).await?;
        Ok(Response::new(pb::CheckDeviceResponse {
            refused: refusal.is_some(),
            retry_after_seconds: refusal.map_or(0, |wait| wait.as_secs()),
        }))
    }
}

/// The gRPC services over `store` (`SessionService` and the read-only `DeviceCheckService`,
/// one set of rules), accepting the credentials `callers` checks, for `serve` and in-process
/// tests.
pub fn service(
    store: Arc<dyn DeviceLockStore>,
    callers: Arc<Callers>,
    clock: SharedClock,
    session_ttl: Duration,
    block_duration: Duration,
    store_timeout: Duration,
) -> tonic::service::Routes {
    let grpc = SessionGrpc::new(SessionRules::new(
        store,
        callers,
        clock,
        session_ttl,
        block_duration,
        store_timeout,
    ));
    tonic::service::Routes::new(SessionServiceServer::new(grpc.clone()))
        .add_service(DeviceCheckServiceServer::new(grpc))
}
