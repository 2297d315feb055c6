//! The port to session-svc: after a successful verification the device claims the person's
//! lock (R3). session-svc's answer, grant or refusal, is passed on as it is, so a
//! device-locked refusal keeps its `retry_after`.

use chrono::{DateTime, Utc};
use platform::problem::Problem;
use proto::session::v1::ClaimDeviceRequest;
use proto::session::v1::session_service_client::SessionServiceClient;

use crate::domain::{DeviceId, PersonKey, SessionId};
use crate::error::AuthError;

/// A device lock session-svc granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedSession {
    pub session_id: SessionId,
    pub expires_at: DateTime<Utc>,
}

/// Claims the person's device lock.
#[async_trait::async_trait]
pub trait SessionGateway: Send + Sync {
    async fn claim_device(
        &self,
        person_key: &PersonKey,
        device_id: &DeviceId,
    ) -> Result<ClaimedSession, AuthError>;
}

/// session-svc over gRPC, with trace context propagation.
pub struct GrpcSessionGateway {
    client: SessionServiceClient<platform::grpc::TracedChannel>,
}

impl GrpcSessionGateway {
    pub fn new(channel: tonic::transport::Channel) -> Self {
        Self {
            client: SessionServiceClient::with_interceptor(
                channel,
                platform::telemetry::TracePropagation,
            ),
        }
    }
}

#[async_trait::async_trait]
impl SessionGateway for GrpcSessionGateway {
    async fn claim_device(
        &self,
        person_key: &PersonKey,
        device_id: &DeviceId,
    ) -> Result<ClaimedSession, AuthError> {
        let mut client = self.client.clone();
        let response = client
            .claim_device(ClaimDeviceRequest {
                person_key: person_key.as_str().to_owned(),
                device_id: device_id.as_str().to_owned(),
            })
            .await
            .map_err(|status| AuthError::Session(Problem::from_status(&status)))?
            .into_inner();
        let expires_at = response
            .expires_at
            .as_ref()
            .and_then(platform::clock::from_timestamp);
        let session_id = SessionId::parse(&response.session_id).ok();
        match (session_id, expires_at) {
            (Some(session_id), Some(expires_at)) => Ok(ClaimedSession {
                session_id,
                expires_at,
            }),
            _ => {
                tracing::error!(
                    "session-svc granted a device without a valid session id or expiry"
                );
                Err(AuthError::Session(Problem::internal()))
            }
        }
    }
}
