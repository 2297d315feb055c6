//! The gRPC clients of the four services, all on lazily-connecting channels with the request
//! deadline and trace-context propagation, plus the local access-token verifier (JWKS from
//! auth-svc), the staff-token verifier that recognises an agent or operator token presented to
//! the citizens' API (auth-svc's KeysService), and the `grpc.health.v1` clients `/readyz` asks.

use std::sync::Arc;
use std::time::Duration;

use platform::auth::{GrpcJwksSource, TokenVerifier};
use platform::grants::{GrantVerifier, GrpcKeysSource};
use platform::grpc::GrpcChannel;
use platform::grpc::TracedChannel;
use platform::telemetry::TracePropagation;
use proto::auth::v1::auth_service_client::AuthServiceClient;
use proto::auth::v1::proxy_service_client::ProxyServiceClient;
use proto::auth::v1::staff_auth_service_client::StaffAuthServiceClient;
use proto::booking::v1::booking_service_client::BookingServiceClient;
use proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use proto::session::v1::queue_admin_service_client::QueueAdminServiceClient;
use proto::session::v1::queue_service_client::QueueServiceClient;
use proto::session::v1::session_service_client::SessionServiceClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::Config;

/// How long `/readyz` waits for each service's health answer.
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(1);

pub struct Clients {
    pub auth: AuthServiceClient<TracedChannel>,
    /// auth-svc's ProxyService: the proxy grant for a booking made for someone else.
    pub proxy: ProxyServiceClient<TracedChannel>,
    /// auth-svc's StaffAuthService: where a staff token refused by the citizens' API is
    /// reported for the audit trail.
    pub staff_auth: StaffAuthServiceClient<TracedChannel>,
    pub session: SessionServiceClient<TracedChannel>,
    /// session-svc's waiting room.
    pub queue: QueueServiceClient<TracedChannel>,
    /// session-svc's waiting-room operations (the dev run's `PUT /dev/admission` only).
    pub queue_admin: QueueAdminServiceClient<TracedChannel>,
    pub scheduling: SchedulingServiceClient<TracedChannel>,
    pub booking: BookingServiceClient<TracedChannel>,
    pub verifier: Arc<TokenVerifier>,
    /// Verifies agent and operator tokens (auth-svc's grants), asked only after a bearer token
    /// failed as an access token.
    pub staff_tokens: Arc<GrantVerifier>,
    /// `(service name, health client)` for every service, in a fixed order.
    health: Vec<(&'static str, HealthClient<GrpcChannel>)>,
}

impl Clients {
    /// Builds every client; nothing connects until the first call.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let timeout = config.request_timeout;
        let auth_channel = platform::grpc::channel(&config.auth_url, timeout)?;
        let session_channel = platform::grpc::channel(&config.session_url, timeout)?;
        let scheduling_channel = platform::grpc::channel(&config.scheduling_url, timeout)?;
        let booking_channel = platform::grpc::channel(&config.booking_url, timeout)?;
        let verifier = Arc::new(TokenVerifier::new(
            Arc::new(GrpcJwksSource::new(auth_channel.clone())),
            config.clock.clone(),
        ));
        // Taken only from a publisher that names itself auth-svc.
        let staff_tokens = Arc::new(GrantVerifier::new(
            Arc::new(GrpcKeysSource::new(auth_channel.clone()).expecting(platform::auth::ISSUER)),
            config.clock.clone(),
        ));
        Ok(Self {
            health: vec![
                ("auth-svc", HealthClient::new(auth_channel.clone())),
                ("session-svc", HealthClient::new(session_channel.clone())),
                (
                    "scheduling-svc",
                    HealthClient::new(scheduling_channel.clone()),
                ),
                ("booking-svc", HealthClient::new(booking_channel.clone())),
            ],
            proxy: ProxyServiceClient::with_interceptor(auth_channel.clone(), TracePropagation),
            staff_auth: StaffAuthServiceClient::with_interceptor(
                auth_channel.clone(),
                TracePropagation,
            ),
            auth: AuthServiceClient::with_interceptor(auth_channel, TracePropagation),
            queue: QueueServiceClient::with_interceptor(session_channel.clone(), TracePropagation),
            queue_admin: QueueAdminServiceClient::with_interceptor(
                session_channel.clone(),
                TracePropagation,
            ),
            session: SessionServiceClient::with_interceptor(session_channel, TracePropagation),
            scheduling: SchedulingServiceClient::with_interceptor(
                scheduling_channel,
                TracePropagation,
            ),
            booking: BookingServiceClient::with_interceptor(booking_channel, TracePropagation),
            verifier,
            staff_tokens,
        })
    }

    /// The services that did not answer SERVING within [`READINESS_TIMEOUT`]; all are asked
    /// at once.
    pub async fn not_ready(&self) -> Vec<&'static str> {
        let checks = self.health.iter().map(|(name, client)| {
            let mut client = client.clone();
            let name = *name;
            tokio::spawn(async move {
                let request = HealthCheckRequest {
                    service: String::new(),
                };
                let answer = tokio::time::timeout(READINESS_TIMEOUT, client.check(request)).await;
                let serving = matches!(
                    answer,
                    Ok(Ok(ref response)) if response.get_ref().status == ServingStatus::Serving as i32
                );
                (name, serving)
            })
        });
        let handles: Vec<_> = checks.collect();
        let mut not_ready = Vec::new();
        for (index, handle) in handles.into_iter().enumerate() {
            match handle.await {
                Ok((_, true)) => {}
                Ok((name, false)) => not_ready.push(name),
                Err(_) => not_ready.push(self.health[index].0),
            }
        }
        not_ready
    }
}
