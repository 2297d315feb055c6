//! The port to session-svc: after a successful verification the device claims the person's
//! lock (R3). session-svc gives a lock only with auth-svc's proof that this person has just
//! verified on this device, so every claim carries a fresh single-use device-proof grant
//! (`platform::trust::DeviceProof`, signed with auth-svc's key). session-svc's answer, grant
//! or refusal, is passed on as it is, so a device-locked refusal keeps its `retry_after`.

use chrono::{DateTime, Utc};
use platform::clock::SharedClock;
use platform::grants::GrantIssuer;
use platform::problem::Problem;
use platform::trust::{DEVICE_PROOF_TTL, DeviceProof};
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

/// Claims the person's device lock. Called only once the person has completed a verification
/// on the device: implementations may prove exactly that to session-svc.
#[async_trait::async_trait]
pub trait SessionGateway: Send + Sync {
    async fn claim_device(
        &self,
        person_key: &PersonKey,
        device_id: &DeviceId,
    ) -> Result<ClaimedSession, AuthError>;
}

/// session-svc over gRPC, with trace context propagation; each claim carries a device proof.
pub struct GrpcSessionGateway {
    client: SessionServiceClient<platform::grpc::TracedChannel>,
    proofs: GrantIssuer,
    clock: SharedClock,
}

impl GrpcSessionGateway {
    /// `proofs` signs with auth-svc's key; `clock` dates the proofs.
    pub fn new(
        channel: platform::grpc::GrpcChannel,
        proofs: GrantIssuer,
        clock: SharedClock,
    ) -> Self {
        Self {
            client: SessionServiceClient::with_interceptor(
                channel,
                platform::telemetry::TracePropagation,
            ),
            proofs,
            clock,
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
        let proof = self
            .proofs
            .issue(
                &DeviceProof {
                    sub: person_key.as_str().to_owned(),
                    dev: device_id.as_str().to_owned(),
                },
                self.clock.now(),
                DEVICE_PROOF_TTL,
            )
            .map_err(|err| {
                tracing::error!(error = %err, "cannot sign the device proof");
                AuthError::Session(Problem::internal())
            })?;
        let mut client = self.client.clone();
        let response = client
            .claim_device(ClaimDeviceRequest {
                person_key: person_key.as_str().to_owned(),
                device_id: device_id.as_str().to_owned(),
                device_proof: proof.token,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use platform::clock::{Clock, SettableClock};
    use platform::grants::{GrantVerifier, SigningKeys, StaticKeysSource};
    use proto::session::v1 as pb;
    use proto::session::v1::session_service_server::{SessionService, SessionServiceServer};
    use tonic::{Request, Response, Status};

    use super::*;

    /// Records the claims it is sent and grants them.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<pb::ClaimDeviceRequest>>>);

    #[tonic::async_trait]
    impl SessionService for Recorder {
        async fn claim_device(
            &self,
            request: Request<pb::ClaimDeviceRequest>,
        ) -> Result<Response<pb::ClaimDeviceResponse>, Status> {
            self.0.lock().unwrap().push(request.into_inner());
            Ok(Response::new(pb::ClaimDeviceResponse {
                session_id: "session-1".to_owned(),
                expires_at: Some(platform::clock::to_timestamp(Utc::now())),
            }))
        }

        async fn validate_session(
            &self,
            _request: Request<pb::ValidateSessionRequest>,
        ) -> Result<Response<pb::ValidateSessionResponse>, Status> {
            Err(Status::unimplemented("not used"))
        }

        async fn release_session(
            &self,
            _request: Request<pb::ReleaseSessionRequest>,
        ) -> Result<Response<pb::ReleaseSessionResponse>, Status> {
            Err(Status::unimplemented("not used"))
        }
    }

    #[tokio::test]
    async fn every_claim_carries_a_fresh_device_proof_for_its_person_and_device() {
        let recorder = Recorder::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(SessionServiceServer::new(recorder.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let keys = Arc::new(SigningKeys::generate().unwrap());
        let clock = Arc::new(SettableClock::new());
        let gateway = GrpcSessionGateway::new(
            platform::grpc::channel(&format!("http://{addr}"), std::time::Duration::from_secs(5))
                .unwrap(),
            GrantIssuer::new(keys.clone()),
            clock.clone(),
        );
        let person = PersonKey::parse("pk-alice").unwrap();
        let device = DeviceId::parse("pc-1").unwrap();
        gateway.claim_device(&person, &device).await.unwrap();
        gateway.claim_device(&person, &device).await.unwrap();

        let claims = recorder.0.lock().unwrap().clone();
        assert_eq!(claims.len(), 2);
        let verifier = GrantVerifier::new(Arc::new(StaticKeysSource(keys.jwks())), clock.clone());
        let first = verifier
            .verify::<DeviceProof>(&claims[0].device_proof)
            .await
            .unwrap();
        assert_eq!(first.claims.sub, "pk-alice");
        assert_eq!(first.claims.dev, "pc-1");
        assert_eq!(
            (first.expires_at - first.issued_at).num_seconds(),
            i64::try_from(DEVICE_PROOF_TTL.as_secs()).unwrap()
        );
        let second = verifier
            .verify::<DeviceProof>(&claims[1].device_proof)
            .await
            .unwrap();
        assert_ne!(
            first.id, second.id,
            "each claim has its own single-use proof"
        );
        // Past its lifetime the proof is refused.
        clock.set(clock.now() + chrono::Duration::seconds(31));
        assert!(
            verifier
                .verify::<DeviceProof>(&claims[0].device_proof)
                .await
                .is_err()
        );
    }
}
