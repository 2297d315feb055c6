//! scheduling-svc owns the vaccination campaigns as data — age groups and bands by birth-date
//! range (R6), booking windows of three kinds with channels and supply release (R5), exclusion
//! lists (R7), vaccination dates, proxy (R1), change and cancellation (R8) policy — and answers
//! who may book when. It serves `vaxbook.scheduling.v1.SchedulingService` and the operators'
//! `SchedulingAdminService` (operator tokens, every call in its audit trail: `admin.rs`), keeps
//! campaigns in PostgreSQL (or in-process for `vaxbook dev`) and answers eligibility from memory.

pub mod admin;
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

use platform::audit::AuditLog;
use platform::audit_grpc::AuditGrpc;
use platform::grants::{GrantVerifier, GrpcKeysSource};
use platform::grpc::{GrpcService, ReadinessProbe};
use platform::operator::OperatorGuard;
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
    platform::audit_grpc::HEALTH_NAME,
];

/// How long start-up waits for PostgreSQL before giving up.
const DATABASE_WAIT: Duration = Duration::from_secs(30);

/// Serves scheduling-svc on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // `audit`: the admin calls' trail (admin.rs), also for a service that queries it.
    let (store, readiness, audit) = open_store(&config).await?;
    let scheduling = Arc::new(
        Scheduling::load(store, config.clock.clone())
            .await
            .map_err(|err| anyhow::anyhow!("loading campaigns: {}", error::chain(&err)))?,
    );
    let refresh_stop = shutdown.child_token();
    let refresh_task = scheduling.spawn_cache_refresh(config.cache_refresh, refresh_stop.clone());

    // auth-svc's keys, fetched lazily (it may start after this service): they verify citizens'
    // access tokens and operators' tokens alike.
    let auth_channel = platform::grpc::channel(&config.auth_url, config.request_timeout)
        .map_err(|err| anyhow::anyhow!("VAXBOOK_AUTH_URL: {err}"))?;
    let auth_keys = Arc::new(GrpcKeysSource::new(auth_channel).expecting(platform::auth::ISSUER));
    let callers = Arc::new(callers::Callers::new(
        auth_keys.clone(),
        config.service_key.clone(),
        config.clock.clone(),
    ));
    let grants = Arc::new(GrantVerifier::new(auth_keys, config.clock.clone()));
    let guard = || OperatorGuard::new(grants.clone(), config.common.dev_operator_key.clone());
    // The trail's readers: operators query and verify it, supervisors query their own.
    let audit_reader = AuditGrpc::new(Arc::clone(&audit), guard(), config.clock.clone());
    let operators = guard();
    let admin = admin::AdminGrpc::new(
        Arc::clone(&scheduling),
        operators,
        Arc::clone(&audit),
        config.clock.clone(),
    );
    let routes = tonic::service::Routes::new(SchedulingServiceServer::new(
        grpc::SchedulingGrpc::new(Arc::clone(&scheduling), callers),
    ))
    .add_service(admin.into_service())
    .add_service(audit_reader.into_service());
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

/// The campaign store, its readiness probe and the audit trail of the admin calls.
type Opened = (
    Arc<dyn CampaignStore>,
    Option<ReadinessProbe>,
    Arc<dyn AuditLog>,
);

/// Opens the configured store and the audit trail next to it: waits for PostgreSQL (bounded)
/// and migrates both first.
async fn open_store(config: &Config) -> anyhow::Result<Opened> {
    match &config.store {
        StoreConfig::Memory => {
            if !config.dev_mode {
                anyhow::bail!(
                    "the in-process store is only for `vaxbook dev`; set DATABASE_URL/REDIS_URL"
                );
            }
            let audit = admin::audit_log(None).await?;
            Ok((Arc::new(MemoryCampaignStore::new()), None, audit))
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
            let audit = admin::audit_log(Some((url.expose(), &store))).await?;
            let probe_store = Arc::clone(&store);
            let readiness: ReadinessProbe = Arc::new(move || {
                let store = Arc::clone(&probe_store);
                Box::pin(async move { store.ping().await.map_err(|err| error::chain(&err)) })
            });
            Ok((store, Some(readiness), audit))
        }
    }
}
