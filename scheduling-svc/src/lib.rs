//! scheduling-svc owns the vaccination campaigns — age groups by birth-date range (R6), booking
//! windows, vaccination dates, proxy (R1), change and cancellation (R8) policy — and answers
//! who may book when. It serves `vaxbook.scheduling.v1.SchedulingService` and the operators'
//! `SchedulingAdminService`, keeps campaigns in PostgreSQL (or in-process for `vaxbook dev`)
//! and answers eligibility from an in-memory cache.

pub mod cache;
pub mod campaign;
pub mod eligibility;
pub mod error;
pub mod grpc;
pub mod service;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use platform::clock::{SharedClock, SystemClock};
use platform::config::CommonConfig;
use platform::grpc::{GrpcService, ReadinessProbe};
use proto::scheduling::v1::scheduling_admin_service_server::SchedulingAdminServiceServer;
use proto::scheduling::v1::scheduling_service_server::SchedulingServiceServer;
use tokio_util::sync::CancellationToken;

pub use campaign::Campaign;
pub use error::SchedulingError;
pub use service::Scheduling;
pub use store::{CampaignStore, MemoryCampaignStore, PgCampaignStore, migrate};

/// The service name in metrics and logs.
pub const SERVICE_NAME: &str = "scheduling-svc";
/// The gRPC services reported through `grpc.health.v1`.
pub const HEALTH_NAMES: &[&str] = &[
    "vaxbook.scheduling.v1.SchedulingService",
    "vaxbook.scheduling.v1.SchedulingAdminService",
];

/// How long start-up waits for PostgreSQL before giving up.
const DATABASE_WAIT: Duration = Duration::from_secs(30);

/// Where campaigns are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    Postgres {
        url: String,
        max_connections: usize,
    },
    /// In-process, lost on exit: only for `vaxbook dev` and tests.
    Memory,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub common: CommonConfig,
    pub listen_addr: SocketAddr,
    pub store: StoreConfig,
    /// How often the eligibility cache is reloaded from the store.
    pub cache_refresh: Duration,
    /// Set only by `vaxbook dev`: allows the in-process store.
    pub dev_mode: bool,
    pub clock: SharedClock,
}

impl Config {
    /// Reads `SCHEDULING_*`, `DATABASE_URL` and the shared variables; production settings
    /// (PostgreSQL store, real clock, not a dev run).
    pub fn from_env() -> anyhow::Result<Self> {
        let url = platform::config::var("SCHEDULING_DATABASE_URL")
            .or_else(|| platform::config::var("DATABASE_URL"))
            .unwrap_or_else(|| platform::pg::DEFAULT_DATABASE_URL.to_owned());
        let max_connections: usize = platform::config::parse("SCHEDULING_DB_POOL_SIZE", 8)?;
        let cache_refresh = platform::config::seconds("SCHEDULING_CACHE_REFRESH_SECS", 5)?;
        if max_connections == 0 {
            anyhow::bail!("SCHEDULING_DB_POOL_SIZE must be at least 1");
        }
        if cache_refresh.is_zero() {
            anyhow::bail!("SCHEDULING_CACHE_REFRESH_SECS must be at least 1");
        }
        Ok(Self {
            common: CommonConfig::from_env("SCHEDULING", "0.0.0.0:9103")?,
            listen_addr: platform::config::addr("SCHEDULING_LISTEN_ADDR", "0.0.0.0:50053")?,
            store: StoreConfig::Postgres {
                url,
                max_connections,
            },
            cache_refresh,
            dev_mode: false,
            clock: Arc::new(SystemClock),
        })
    }

    /// The dev run's settings: in-process store, loopback ports picked by the OS, `clock`.
    pub fn local_dev(clock: SharedClock) -> Self {
        Self {
            common: CommonConfig::local(),
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            store: StoreConfig::Memory,
            cache_refresh: Duration::from_secs(5),
            dev_mode: true,
            clock,
        }
    }
}

/// Serves scheduling-svc on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (store, readiness) = open_store(&config).await?;
    let scheduling = Arc::new(
        Scheduling::load(store, config.clock.clone())
            .await
            .map_err(|err| anyhow::anyhow!("loading campaigns: {err}"))?,
    );
    let refresh_stop = shutdown.child_token();
    let refresh_task = scheduling.spawn_cache_refresh(config.cache_refresh, refresh_stop.clone());

    let adapter =
        grpc::SchedulingGrpc::new(Arc::clone(&scheduling), config.common.admin_key.expose().to_owned());
    let routes = tonic::service::Routes::new(SchedulingServiceServer::new(adapter.clone()))
        .add_service(SchedulingAdminServiceServer::new(adapter));
    let outcome = platform::grpc::run(
        GrpcService {
            name: SERVICE_NAME,
            routes,
            health_names: HEALTH_NAMES.to_vec(),
            readiness,
        },
        listener,
        &config.common,
        shutdown,
    )
    .await;
    // The server may also stop on its own error; the refresh task must not outlive it.
    refresh_stop.cancel();
    let _ = refresh_task.await;
    outcome
}

/// Opens the configured store: waits for PostgreSQL (bounded) and migrates it first.
async fn open_store(
    config: &Config,
) -> anyhow::Result<(Arc<dyn CampaignStore>, Option<ReadinessProbe>)> {
    match &config.store {
        StoreConfig::Memory => {
            if !config.dev_mode {
                anyhow::bail!(
                    "the in-process store is only for `vaxbook dev`; set DATABASE_URL/REDIS_URL"
                );
            }
            Ok((Arc::new(MemoryCampaignStore::new()), None))
        }
        StoreConfig::Postgres {
            url,
            max_connections,
        } => {
            let pool = platform::pg::open_migrated(
                url,
                *max_connections,
                DATABASE_WAIT,
                store::migrations_runner(),
                store::MIGRATION_TABLE,
            )
            .await?;
            let store = Arc::new(PgCampaignStore::new(pool));
            let probe_store = Arc::clone(&store);
            let readiness: ReadinessProbe = Arc::new(move || {
                let store = Arc::clone(&probe_store);
                Box::pin(async move { store.ping().await.map_err(|err| err.to_string()) })
            });
            Ok((store, Some(readiness)))
        }
    }
}
