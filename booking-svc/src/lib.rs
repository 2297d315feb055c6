//! booking-svc: vaccination centers, their slots, and the bookings that hold places in them.
//! It enforces R8 (cancellation through D-2, freeing the place at once) and R10 (never beyond
//! capacity, one active booking per person and campaign) itself, verifies access tokens
//! locally against auth-svc's keys, and asks scheduling-svc whether the person may book.
//!
//! `serve` runs the gRPC services `vaxbook.booking.v1.BookingService` and
//! `vaxbook.booking.v1.BookingAdminService`; the binary and `vaxbook dev` both call it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use platform::auth::{GrpcJwksSource, TokenVerifier};
use platform::clock::{SharedClock, SystemClock};
use platform::config::CommonConfig;
use platform::grpc::{GrpcService, ReadinessProbe};
use proto::booking::v1::booking_admin_service_server::BookingAdminServiceServer;
use proto::booking::v1::booking_service_server::BookingServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod domain;
pub mod eligibility;
pub mod grpc;
pub mod service;
pub mod store;
pub mod wire;

pub use store::{BookingStore, MemoryBookingStore, PgBookingStore, migrate};

/// Service name for metrics, logs and traces.
pub const SERVICE_NAME: &str = "booking-svc";
/// Health names reported through `grpc.health.v1`.
pub const HEALTH_NAMES: [&str; 2] = [
    "vaxbook.booking.v1.BookingService",
    "vaxbook.booking.v1.BookingAdminService",
];
/// How long start-up waits for PostgreSQL.
pub const DATABASE_WAIT: Duration = Duration::from_secs(30);

/// Where bookings live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    Postgres {
        url: String,
        max_connections: usize,
    },
    /// In-process, for `vaxbook dev` only.
    Memory,
}

/// booking-svc settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub common: CommonConfig,
    pub listen_addr: SocketAddr,
    pub store: StoreConfig,
    /// auth-svc, for the token keys (JWKS).
    pub auth_url: String,
    /// scheduling-svc, for eligibility.
    pub scheduling_url: String,
    /// session-svc: a person-facing call must ride on a session that still holds the person's
    /// device lock (R3), whoever calls. `None` only in unit tests of this crate.
    pub session_url: Option<String>,
    /// Deadline of calls to other services.
    pub request_timeout: Duration,
    /// Allows the in-process store.
    pub dev_mode: bool,
    pub clock: SharedClock,
}

impl Config {
    /// Reads the settings from the environment, with local defaults.
    pub fn from_env() -> anyhow::Result<Config> {
        use platform::config::{addr, parse, string, var};
        let url = var("BOOKING_DATABASE_URL")
            .or_else(|| var("DATABASE_URL"))
            .unwrap_or_else(|| platform::pg::DEFAULT_DATABASE_URL.to_owned());
        Ok(Config {
            common: CommonConfig::from_env("BOOKING", "0.0.0.0:9104")?,
            listen_addr: addr("BOOKING_LISTEN_ADDR", "0.0.0.0:50054")?,
            store: StoreConfig::Postgres {
                url,
                max_connections: parse("BOOKING_DB_POOL_SIZE", 16)?,
            },
            auth_url: string("VAXBOOK_AUTH_URL", "http://127.0.0.1:50051"),
            scheduling_url: string("VAXBOOK_SCHEDULING_URL", "http://127.0.0.1:50053"),
            session_url: Some(string("VAXBOOK_SESSION_URL", "http://127.0.0.1:50052")),
            request_timeout: Duration::from_millis(parse("VAXBOOK_GRPC_TIMEOUT_MS", 5000)?),
            dev_mode: false,
            clock: Arc::new(SystemClock),
        })
    }

    /// Settings for the dev run and tests: in-process store, loopback ports, dev mode.
    pub fn local_dev(auth_url: &str, scheduling_url: &str, clock: SharedClock) -> Config {
        Config {
            common: CommonConfig::local(),
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            store: StoreConfig::Memory,
            auth_url: auth_url.to_owned(),
            scheduling_url: scheduling_url.to_owned(),
            session_url: None,
            request_timeout: Duration::from_secs(5),
            dev_mode: true,
            clock,
        }
    }
}

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
            let store = PgBookingStore::connect(url, *max_connections, DATABASE_WAIT)
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
        Arc::new(GrpcJwksSource::new(auth_channel)),
        config.clock.clone(),
    ));
    let eligibility = Arc::new(eligibility::GrpcEligibility::new(scheduling_channel));
    let logic = Arc::new(service::BookingLogic::new(
        store.clone(),
        eligibility,
        config.clock.clone(),
    ));

    let sessions = match &config.session_url {
        Some(url) => Some(grpc::SessionCheck::new(
            platform::grpc::channel(url, config.request_timeout).context("VAXBOOK_SESSION_URL")?,
        )),
        None => None,
    };
    let routes = tonic::service::Routes::new(BookingServiceServer::new(grpc::BookingGrpc::new(
        logic.clone(),
        verifier,
        sessions,
    )))
    .add_service(BookingAdminServiceServer::new(grpc::BookingAdminGrpc::new(
        logic,
        config.common.admin_key.expose().to_owned(),
    )));
    let readiness: ReadinessProbe = Arc::new(move || {
        let store = store.clone();
        Box::pin(async move { store.ping().await })
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
