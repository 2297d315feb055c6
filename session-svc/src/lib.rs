//! session-svc: the one-device-per-person rule (R3). The first device that completes identity
//! verification gets the person's lock and a session; any other device that tries while the
//! lock is held is blocked for the configured time, and the holder is not disturbed. Other
//! services ask here whether a session still holds the lock (one Redis round trip). A lock is
//! claimed only with auth-svc's device proof and released only with its session's token
//! ([`callers`]).
//!
//! `serve` runs the gRPC service `vaxbook.session.v1.SessionService` with health, reflection
//! and `/metrics`; [`grpc::service`] builds the same service in-process for tests and the dev
//! run. The crate follows the services' template: [`config`], [`error`], [`domain`],
//! [`service`] (the rules), [`grpc`] (the tonic adapter only) and [`store`].

pub mod callers;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod service;
pub mod store;
pub mod waiting_room;

use std::sync::Arc;
use std::time::Duration;

use platform::grants::GrpcKeysSource;
use platform::grpc::{GrpcService, ReadinessProbe};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crate::callers::{Callers, Releaser};
pub use crate::config::{Config, StoreConfig};
pub use crate::error::SessionError;
pub use crate::grpc::{SessionGrpc, service};
pub use crate::service::{GrantedSession, SessionRules};
pub use crate::store::{
    ClaimOutcome, CorruptData, DeviceLockStore, DeviceStanding, MemoryDeviceLockStore,
    RedisDeviceLockStore, RedisReplayGuard, StoreError,
};

/// Name of the service in metrics and logs.
pub const SERVICE_NAME: &str = "session-svc";
/// Fully-qualified gRPC service name reported through `grpc.health.v1`.
pub const HEALTH_NAME: &str = "vaxbook.session.v1.SessionService";
/// Health names of the waiting room's services.
pub const QUEUE_HEALTH_NAME: &str = "vaxbook.session.v1.QueueService";
pub const QUEUE_ADMIN_HEALTH_NAME: &str = "vaxbook.session.v1.QueueAdminService";
/// How long start-up waits for Redis before giving up.
const REDIS_WAIT: Duration = Duration::from_secs(30);

/// Serves session-svc on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.validate()?;
    let Some(stores) = waiting_room::wiring::open_stores(&config, REDIS_WAIT, &shutdown).await?
    else {
        return Ok(());
    };
    let (store, replay) = (stores.locks.clone(), stores.replay.clone());
    // auth-svc's public keys, fetched lazily: it may start after this service.
    let auth_channel = platform::grpc::channel(&config.auth_url, config.request_timeout)
        .map_err(|err| anyhow::anyhow!("VAXBOOK_AUTH_URL: {err}"))?;
    let auth_keys: Arc<dyn platform::auth::JwksSource> =
        Arc::new(GrpcKeysSource::new(auth_channel).expecting(platform::auth::ISSUER));
    let callers = Arc::new(Callers::new(
        auth_keys.clone(),
        replay,
        config.clock.clone(),
    ));

    let readiness: ReadinessProbe = {
        let store = store.clone();
        Arc::new(move || {
            let store = store.clone();
            Box::pin(async move { store.ping().await.map_err(|err| err.to_string()) })
        })
    };

    let routes = service(
        store,
        callers,
        config.clock.clone(),
        config.session_ttl,
        config.block_duration,
        config.store_timeout,
    );
    let routes =
        waiting_room::wiring::add_waiting_room(routes, &config, &stores, auth_keys, &shutdown)
            .await?;
    tracing::info!(
        session_ttl_secs = config.session_ttl.as_secs(),
        idle_secs = config.idle_timeout.as_secs(),
        block_secs = config.block_duration.as_secs(),
        dev_mode = config.dev_mode,
        "starting session service"
    );
    platform::grpc::run(
        GrpcService {
            name: SERVICE_NAME,
            routes,
            health_names: vec![
                HEALTH_NAME,
                QUEUE_HEALTH_NAME,
                QUEUE_ADMIN_HEALTH_NAME,
                platform::audit_grpc::HEALTH_NAME,
            ],
            readiness: Some(readiness),
        },
        listener,
        &config.common,
        shutdown,
    )
    .await
}
