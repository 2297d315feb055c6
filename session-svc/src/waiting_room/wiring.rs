//! How `serve` puts session-svc together: the stores for the configured backend (locks, used
//! proofs, waiting rooms, the audit trail), and the waiting room's services next to the session
//! services — `QueueService`, `QueueAdminService`, the `AuditService` reading the audit trail,
//! the `KeysService` publishing the key that signs admission grants — with the admission step and the automatic mode running until
//! shutdown.

use std::sync::Arc;
use std::time::Duration;

use platform::admission::SESSION_ISSUER;
use platform::auth::JwksSource;
use platform::grants::{
    GrantIssuer, GrantVerifier, KeysServer, MemoryReplayGuard, ReplayGuard, SigningKeys,
};
use platform::operator::OperatorGuard;
use tokio_util::sync::CancellationToken;

use super::WaitingRoom;
use platform::audit::{AuditLog, MemoryAuditLog};
use platform::audit_grpc::AuditGrpc;

use super::audit::RedisAuditLog;
use super::auto::{GrpcCapacitySource, run_automatic, run_steps};
use super::grpc::{QueueAdminGrpc, QueueGrpc, services};
use crate::config::{Config, StoreConfig};
use crate::store::queue::{MemoryQueueStore, QueueStore, RedisQueueStore};
use crate::store::{
    DeviceLockStore, LockOperations, MemoryDeviceLockStore, RedisDeviceLockStore, RedisReplayGuard,
};

/// Every store session-svc keeps.
pub struct Stores {
    pub locks: Arc<dyn DeviceLockStore>,
    pub lock_operations: Arc<dyn LockOperations>,
    pub replay: Arc<dyn ReplayGuard>,
    pub queue: Arc<dyn QueueStore>,
    pub audit: Arc<dyn AuditLog>,
}

/// Opens the configured stores; `None` when `shutdown` came first.
pub async fn open_stores(
    config: &Config,
    redis_wait: Duration,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Stores>> {
    Ok(Some(match &config.store {
        StoreConfig::Memory => {
            let locks =
                Arc::new(MemoryDeviceLockStore::new().with_idle_timeout(config.idle_timeout));
            Stores {
                locks: locks.clone(),
                lock_operations: locks,
                replay: Arc::new(MemoryReplayGuard::new(config.clock.clone())),
                queue: Arc::new(MemoryQueueStore::new()),
                audit: Arc::new(MemoryAuditLog::new()),
            }
        }
        StoreConfig::Redis { url, key_prefix } => {
            let connection = tokio::select! {
                connection = platform::redis_conn::connect(url.expose(), redis_wait) => connection?,
                _ = shutdown.cancelled() => return Ok(None),
            };
            let locks = Arc::new(
                RedisDeviceLockStore::new(connection.clone(), key_prefix.clone())
                    .with_idle_timeout(config.idle_timeout),
            );
            Stores {
                locks: locks.clone(),
                lock_operations: locks,
                replay: Arc::new(RedisReplayGuard::new(
                    connection.clone(),
                    key_prefix.clone(),
                    config.clock.clone(),
                )),
                queue: Arc::new(RedisQueueStore::new(connection.clone(), key_prefix.clone())),
                audit: Arc::new(RedisAuditLog::new(connection, key_prefix)),
            }
        }
    }))
}

/// The key that signs admission grants: `SESSION_SIGNING_KEY_FILE`, or a fresh one in the dev
/// run (the configuration check refuses a missing file in production).
async fn signing_keys(config: &Config) -> anyhow::Result<SigningKeys> {
    match &config.signing_key_file {
        Some(path) => SigningKeys::from_file("SESSION_SIGNING_KEY_FILE", path).await,
        None if config.dev_mode => SigningKeys::generate(),
        None => anyhow::bail!("SESSION_SIGNING_KEY_FILE is required outside the dev run"),
    }
}

/// Adds the waiting room's services to `routes` and starts its background work.
pub async fn add_waiting_room(
    routes: tonic::service::Routes,
    config: &Config,
    stores: &Stores,
    auth_keys: Arc<dyn JwksSource>,
    shutdown: &CancellationToken,
) -> anyhow::Result<tonic::service::Routes> {
    let keys = Arc::new(signing_keys(config).await?);
    let room = Arc::new(WaitingRoom::new(
        stores.queue.clone(),
        GrantIssuer::new(keys.clone()),
        config.clock.clone(),
        config.queue.clone(),
        config.store_timeout,
    ));
    let booking = platform::grpc::channel(&config.queue.booking_url, config.request_timeout)
        .map_err(|err| anyhow::anyhow!("VAXBOOK_BOOKING_URL: {err}"))?;
    tokio::spawn(run_steps(room.clone(), shutdown.clone()));
    tokio::spawn(run_automatic(
        room.clone(),
        Arc::new(GrpcCapacitySource::new(booking)),
        shutdown.clone(),
    ));
    // Operator tokens are auth-svc grants, verified against the keys it publishes; the dev
    // run's key is set only by `Config::local_dev`.
    let grants = Arc::new(GrantVerifier::new(auth_keys.clone(), config.clock.clone()));
    let guard = || OperatorGuard::new(grants.clone(), config.common.dev_operator_key.clone());
    let operators = guard();
    // The trail's readers (AuditService): operators query and verify it, supervisors query
    // their organisation's entries.
    let audit_reader = AuditGrpc::new(stores.audit.clone(), guard(), config.clock.clone());
    let (queue, admin) = services(
        QueueGrpc::new(
            room.clone(),
            auth_keys,
            stores.locks.clone(),
            config.clock.clone(),
        ),
        QueueAdminGrpc::new(
            room,
            stores.lock_operations.clone(),
            stores.audit.clone(),
            operators,
            config.clock.clone(),
        ),
    );
    Ok(routes
        .add_service(queue)
        .add_service(admin)
        .add_service(audit_reader.into_service())
        .add_service(KeysServer::new(SESSION_ISSUER, keys).into_service()))
}
