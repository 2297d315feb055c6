//! scheduling-svc owns the vaccination campaigns as data — age groups and bands by birth-date
//! range (R6), booking windows of three kinds with channels and supply release (R5), exclusion
//! lists (R7), vaccination dates, proxy (R1), change and cancellation (R8) policy — and answers
//! who may book when. It serves `vaxbook.scheduling.v1.SchedulingService` and the operators'
//! `SchedulingAdminService`, keeps campaigns in PostgreSQL (or in-process for `vaxbook dev`)
//! and answers eligibility from memory.

pub mod cache;
pub mod callers;
pub mod campaign_file;
pub mod config;
pub mod domain;
pub mod eligibility;
pub mod error;
pub mod exclusions;
pub mod grpc;
pub mod service;
pub mod store;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use platform::grpc::{GrpcService, ReadinessProbe};
use proto::scheduling::v1::scheduling_admin_service_server::SchedulingAdminServiceServer;
use proto::scheduling::v1::scheduling_service_server::SchedulingServiceServer;
use tokio_util::sync::CancellationToken;

pub use config::{Config, StoreConfig};
pub use domain::Campaign;
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
            .map_err(|err| anyhow::anyhow!("loading campaigns: {}", error::chain(&err)))?,
    );
    let refresh_stop = shutdown.child_token();
    let refresh_task = scheduling.spawn_cache_refresh(config.cache_refresh, refresh_stop.clone());

    // auth-svc's keys, fetched lazily (it may start after this service).
    let auth_channel = platform::grpc::channel(&config.auth_url, config.request_timeout)
        .map_err(|err| anyhow::anyhow!("VAXBOOK_AUTH_URL: {err}"))?;
    let callers = Arc::new(callers::Callers::new(
        Arc::new(
            platform::grants::GrpcKeysSource::new(auth_channel).expecting(platform::auth::ISSUER),
        ),
        config.common.admin_key.clone(),
        config.clock.clone(),
    ));
    let adapter = grpc::SchedulingGrpc::new(
        Arc::clone(&scheduling),
        config.common.admin_key.clone(),
        callers,
    );
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
                url.expose(),
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
                Box::pin(async move { store.ping().await.map_err(|err| error::chain(&err)) })
            });
            Ok((store, Some(readiness)))
        }
    }
}
