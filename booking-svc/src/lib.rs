//! booking-svc: vaccination centers, their slots, and the bookings that hold places in them.
//! It enforces R8 (cancellation through D-2, freeing the place at once) and R10 (never beyond
//! capacity, one active booking per person and campaign) itself, verifies access tokens
//! locally against auth-svc's keys, and asks scheduling-svc whether the person may book.
//!
//! `serve` runs the gRPC services `vaxbook.booking.v1.BookingService`,
//! `vaxbook.booking.v1.StaffBookingService`, `vaxbook.booking.v1.BookingAdminService` and
//! `vaxbook.booking.v1.CapacityService`; the binary and `vaxbook dev` both call it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use platform::auth::{GrpcJwksSource, TokenVerifier};
use platform::grants::{GrantVerifier, GrpcKeysSource};
use platform::grpc::{GrpcService, ReadinessProbe};
use platform::operator::OperatorGuard;
use proto::booking::v1::booking_admin_service_server::BookingAdminServiceServer;
use proto::booking::v1::booking_service_server::BookingServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod admission;
pub mod audit;
pub mod config;
pub mod domain;
pub mod eligibility;
pub mod error;
pub mod grpc;
pub mod service;
pub mod staff;
pub mod store;

pub use config::{Config, StoreConfig};
pub use error::BookingError;
pub use store::{BookingStore, BookingStoreError, MemoryBookingStore, PgBookingStore, migrate};

/// Service name for metrics, logs and traces.
pub const SERVICE_NAME: &str = "booking-svc";
/// Health names reported through `grpc.health.v1`.
pub const HEALTH_NAMES: [&str; 4] = [
    "vaxbook.booking.v1.BookingService",
    "vaxbook.booking.v1.BookingAdminService",
    "vaxbook.booking.v1.CapacityService",
    platform::audit_grpc::HEALTH_NAME,
];
/// How long start-up waits for PostgreSQL.
pub const DATABASE_WAIT: Duration = Duration::from_secs(30);

/// Opens the configured store: waits for PostgreSQL (bounded) and migrates it, or refuses the
/// in-process store outside the dev run.
async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn BookingStore>> {
    match &config.store {
        StoreConfig::Memory if !config.dev_mode => Err(anyhow::anyhow!(
            "the in-process store is only for `vaxbook dev`; set DATABASE_URL/REDIS_URL"
        )),
        StoreConfig::Memory => Ok(Arc::new(MemoryBookingStore::new())),
        StoreConfig::Postgres {
            url,
            max_connections,
        } => {
            let store = PgBookingStore::connect(url.expose(), *max_connections, DATABASE_WAIT)
                .await
                .context("opening the booking database")?;
            Ok(Arc::new(store))
        }
    }
}

/// Serves booking-svc on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let auth_channel = platform::grpc::channel(&config.auth_url, config.request_timeout)
        .context("VAXBOOK_AUTH_URL")?;
    let scheduling_channel =
        platform::grpc::channel(&config.scheduling_url, config.request_timeout)
            .context("VAXBOOK_SCHEDULING_URL")?;
    let verifier = Arc::new(TokenVerifier::new(
        Arc::new(GrpcJwksSource::new(auth_channel.clone())),
        config.clock.clone(),
    ));
    // auth-svc's grants (proxy grants, agent and operator tokens, caller grants), verified
    // against the keys it publishes (vaxbook.keys.v1), taken only from a publisher that names
    // itself auth-svc.
    let grants = Arc::new(GrantVerifier::new(
        Arc::new(GrpcKeysSource::new(auth_channel).expecting(platform::auth::ISSUER)),
        config.clock.clone(),
    ));
    // scheduling-svc answers booking-svc as a service: the internal service key, not an
    // operator's credential.
    let eligibility = Arc::new(
        eligibility::GrpcEligibility::new(scheduling_channel)
            .with_service_credential(config.service_key.clone()),
    );
    let logic = Arc::new(
        service::BookingLogic::new(store.clone(), eligibility, config.clock.clone())
            .with_proxy_grants(grants.clone()),
    );
    // The one audit trail: the call-center channel (R9), the admin calls, staff tokens refused
    // by the citizens' API. A service reading it (an audit query) is given `audit_log` too.
    let audit_log = audit::open(&config).await?;
    let trail = audit::Trail::new(audit_log.clone(), config.clock.clone());
    let staff = staff::StaffBookingGrpc::new(logic.clone(), grants.clone(), trail.clone());
    let operators = OperatorGuard::new(grants.clone(), config.common.dev_operator_key.clone());
    let audit_reader = audit::reader(&config, audit_log, grants.clone());

    let sessions = grpc::SessionCheck::new(
        platform::grpc::channel(&config.session_url, config.request_timeout)
            .context("VAXBOOK_SESSION_URL")?,
    );
    let (admission, capacity) = admission::open(&config).await?;
    let routes = tonic::service::Routes::new(BookingServiceServer::new(
        grpc::BookingGrpc::new(logic.clone(), verifier, sessions)
            .with_admission(admission)
            .with_capacity(capacity.clone())
            .refusing_staff_tokens(grants, trail.clone()),
    ))
    .add_service(admission::capacity::CapacityGrpc::service(capacity))
    .add_service(staff.into_service())
    .add_service(audit_reader)
    .add_service(BookingAdminServiceServer::new(grpc::BookingAdminGrpc::new(
        logic, operators, trail,
    )));
    let readiness: ReadinessProbe = Arc::new(move || {
        let store = store.clone();
        Box::pin(async move { store.ping().await.map_err(|err| error::chain(&err)) })
    });
    platform::grpc::run(
        GrpcService {
            name: SERVICE_NAME,
            routes,
            health_names: HEALTH_NAMES.to_vec(),
            readiness: Some(readiness),
        },
        listener,
        &config.common,
        shutdown,
    )
    .await
}
