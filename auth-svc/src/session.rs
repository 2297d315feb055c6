//! The port to session-svc: after a successful verification the device claims the person's
//! lock (R3). session-svc gives a lock only with auth-svc's proof that this person has just
//! verified on this device, so every claim carries a fresh single-use device-proof grant
//! (`platform::trust::DeviceProof`, signed with auth-svc's key). session-svc's answer, grant
//! or refusal, is passed on as it is, so a device-locked refusal keeps its `retry_after`.
//!
//! Before any challenge is sent, auth-svc asks session-svc's read-only `CheckDevice` whether
//! the claim would be refused (a blocked second device, R3), with a device-check grant
//! (`platform::device_check::DeviceCheck`) that can only ask, never claim: a blocked device
//! gets its `423` before an SMS goes out.

use chrono::{DateTime, Utc};
use platform::clock::SharedClock;
use platform::device_check::{DEVICE_CHECK_TTL, DeviceCheck};
use platform::grants::{GrantIssuer, GrantKind};
use platform::problem::{Problem, ProblemKind};
use platform::trust::{DEVICE_PROOF_TTL, DeviceProof};
use proto::session::v1::device_check_service_client::DeviceCheckServiceClient;
use proto::session::v1::session_service_client::SessionServiceClient;
use proto::session::v1::{CheckDeviceRequest, ClaimDeviceRequest};

use crate::domain::{DeviceId, PersonKey, SessionId};
use crate::error::AuthError;

/// A device lock session-svc granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedSession {
    pub session_id: SessionId,
    pub expires_at: DateTime<Utc>,
    /// session-svc's fencing number of the session (grows each time the person's lock changes
    /// hands); the access token carries it so booking-svc refuses an older session's writes.
    pub fence: Option<u64>,
}

/// The detail of a device-locked refusal, as session-svc words it.
pub const DEVICE_LOCKED_DETAIL: &str = "this identity is in use on another device";

/// Claims the person's device lock. Called only once the person has completed a verification
/// on the device: implementations may prove exactly that to session-svc.
#[async_trait::async_trait]
pub trait SessionGateway: Send + Sync {
    /// Refuses with device-locked (and how long to wait) when a claim by this device would be
    /// refused now; changes nothing. Asked before any challenge is sent.
    async fn check_device(
        &self,
        person_key: &PersonKey,
        device_id: &DeviceId,
    ) -> Result<(), AuthError>;

    async fn claim_device(
        &self,
        person_key: &PersonKey,
        device_id: &DeviceId,
    ) -> Result<ClaimedSession, AuthError>;
}

/// session-svc over gRPC, with trace context propagation; each claim carries a device proof.
pub struct GrpcSessionGateway {
    client: SessionServiceClient<platform::grpc::TracedChannel>,
    checks: DeviceCheckServiceClient<platform::grpc::TracedChannel>,
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
                channel.clone(),
                platform::telemetry::TracePropagation,
            ),
            checks: DeviceCheckServiceClient::with_interceptor(
                channel,
                platform::telemetry::TracePropagation,
            ),
            proofs,
            clock,
        }
    }

    /// Signs a grant of kind `K` for session-svc, dated now; a signing failure is logged once
    /// and answered as an internal error.
    fn sign<K: GrantKind>(&self, grant: &K, ttl: std::time::Duration) -> Result<String, AuthError> {
        self.proofs
            .issue(grant, self.clock.now(), ttl)
            .map(|issued| issued.token)
            .map_err(|err| {
                tracing::error!(error = %err, kind = K::KIND, "cannot sign a grant for session-svc");
                AuthError::Session(Problem::internal())
            })
    }
}

#[async_trait::async_trait]
impl SessionGateway for GrpcSessionGateway {
    async fn check_device(
        &self,
        person_key: &PersonKey,
        device_id: &DeviceId,
    ) -> Result<(), AuthError> {
        let device_check = self.sign(
            &DeviceCheck {
                sub: person_key.as_str().to_owned(),
                dev: device_id.as_str().to_owned(),
            },
            DEVICE_CHECK_TTL,
        )?;
        let mut checks = self.checks.clone();
        let answer = checks
            .check_device(CheckDeviceRequest {
                person_key: person_key.as_str().to_owned(),
                device_id: device_id.as_str().to_owned(),
                device_check,
            })
            .await
            .map_err(|status| AuthError::Session(Problem::from_status(&status)))?
            .into_inner();
        if !answer.refused {
            return Ok(());
        }
        let wait = std::time::Duration::from_secs(answer.retry_after_seconds.max(1));
        Err(AuthError::Session(
            Problem::new(ProblemKind::DeviceLocked, DEVICE_LOCKED_DETAIL).with_retry_after(wait),
        ))
    }

    async fn claim_device(
        &self,
        person_key: &PersonKey,
        device_id: &DeviceId,
    ) -> Result<ClaimedSession, AuthError> {
        let device_proof = self.sign(
            &DeviceProof {
                sub: person_key.as_str().to_owned(),
                dev: device_id.as_str().to_owned(),
            },
            DEVICE_PROOF_TTL,
        )?;
        let mut client = self.client.clone();
        let response = client
            .claim_device(ClaimDeviceRequest {
                person_key: person_key.as_str().to_owned(),
                device_id: device_id.as_str().to_owned(),
                device_proof,
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
                fence: (response.fence > 0).then_some(response.fence),
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
                ..Default::default()
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

    /// Records the device checks it is sent; refuses with 300 s when the device is `pc-b`.
    #[derive(Clone, Default)]
    struct CheckRecorder(Arc<Mutex<Vec<pb::CheckDeviceRequest>>>);

    #[tonic::async_trait]
    impl pb::device_check_service_server::DeviceCheckService for CheckRecorder {
        async fn check_device(
            &self,
            request: Request<pb::CheckDeviceRequest>,
        ) -> Result<Response<pb::CheckDeviceResponse>, Status> {
            let request = request.into_inner();
            let refused = request.device_id == "pc-b";
            self.0.lock().unwrap().push(request);
            Ok(Response::new(pb::CheckDeviceResponse {
                refused,
                retry_after_seconds: if refused { 300 } else { 0 },
            }))
        }
    }

    #[tokio::test]
    async fn a_device_check_carries_a_check_grant_that_cannot_claim_and_passes_on_the_wait() {
        let recorder = CheckRecorder::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(
                    pb::device_check_service_server::DeviceCheckServiceServer::new(
                        recorder.clone(),
                    ),
                )
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
        gateway
            .check_device(&person, &DeviceId::parse("pc-a").unwrap())
            .await
            .unwrap();
        let refused = gateway
            .check_device(&person, &DeviceId::parse("pc-b").unwrap())
            .await
            .unwrap_err();
        let AuthError::Session(problem) = refused else {
            panic!("expected session-svc's refusal, got {refused:?}");
        };
        assert_eq!(problem.kind, ProblemKind::DeviceLocked);
        assert_eq!(
            problem.retry_after,
            Some(std::time::Duration::from_secs(300))
        );

        let checks = recorder.0.lock().unwrap().clone();
        assert_eq!(checks.len(), 2);
        let verifier = GrantVerifier::new(Arc::new(StaticKeysSource(keys.jwks())), clock.clone());
        let grant = verifier
            .verify::<DeviceCheck>(&checks[0].device_check)
            .await
            .unwrap();
        assert_eq!(grant.claims.sub, "pk-alice");
        assert_eq!(grant.claims.dev, "pc-a");
        // A check grant is not a device proof: it cannot claim a lock.
        assert!(
            verifier
                .verify::<DeviceProof>(&checks[0].device_check)
                .await
                .is_err()
        );
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
