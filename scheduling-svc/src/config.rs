//! The settings of scheduling-svc: [`Config::from_env`] for production (PostgreSQL, the real
//! clock, every secret required), [`Config::local_dev`] for `vaxbook dev` and tests (in-process
//! store, the dev run's clock). `Debug` of a config shows no secret and no database password.
//! Admin RPCs take operator tokens (`platform::operator`); the dev run alone also accepts the
//! development operator key (`common.dev_operator_key`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use platform::clock::{SharedClock, SystemClock};
use platform::config::{CommonConfig, ConnectionUrl, Secret};
use platform::dev::DevHooks;

/// Where campaigns are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    Postgres {
        url: ConnectionUrl,
        max_connections: usize,
    },
    /// In-process, lost on exit: only for `vaxbook dev` and tests.
    Memory,
}

/// Default address of auth-svc.
pub const DEFAULT_AUTH_URL: &str = "http://127.0.0.1:50051";

#[derive(Clone, Debug)]
pub struct Config {
    pub common: CommonConfig,
    pub listen_addr: SocketAddr,
    pub store: StoreConfig,
    /// How often the eligibility cache is reloaded from the store.
    pub cache_refresh: Duration,
    /// Where auth-svc publishes its keys (`VAXBOOK_AUTH_URL`): citizens' access tokens and
    /// operators' tokens are verified against them.
    pub auth_url: String,
    /// The internal service credential (`VAXBOOK_SERVICE_KEY`) booking-svc presents in
    /// `x-service-key` when it asks `CheckEligibility` about a person it authenticated itself.
    pub service_key: Secret,
    /// Deadline of a call to auth-svc for its keys (`VAXBOOK_GRPC_TIMEOUT_MS`).
    pub request_timeout: Duration,
    /// Set only by `vaxbook dev`: allows the in-process store.
    pub dev_mode: bool,
    pub clock: SharedClock,
}

impl Config {
    /// Reads `SCHEDULING_*`, `DATABASE_URL` and the shared variables; production settings
    /// (PostgreSQL store, real clock, not a dev run). Refuses a missing or development service
    /// key; no development operator key is accepted (admin RPCs take operator tokens only).
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
                url: ConnectionUrl::new(url),
                max_connections,
            },
            cache_refresh,
            auth_url: platform::config::string("VAXBOOK_AUTH_URL", DEFAULT_AUTH_URL),
            service_key: platform::config::service_key()?,
            request_timeout: Duration::from_millis(platform::config::parse(
                "VAXBOOK_GRPC_TIMEOUT_MS",
                5000,
            )?),
            dev_mode: false,
            clock: Arc::new(SystemClock),
        })
    }

    /// The dev run's settings: in-process store, `listen_addr`, the dev run's clock. Callers
    /// override what they need (the store, for a dev run on PostgreSQL).
    pub fn local_dev(listen_addr: SocketAddr, hooks: &DevHooks) -> Self {
        Self {
            common: CommonConfig::local(),
            listen_addr,
            store: StoreConfig::Memory,
            cache_refresh: Duration::from_secs(5),
            auth_url: DEFAULT_AUTH_URL.to_owned(),
            service_key: Secret::new(platform::config::DEV_SERVICE_KEY),
            request_timeout: Duration::from_secs(5),
            dev_mode: true,
            clock: hooks.clock.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_key_and_no_database_password() {
        let hooks = DevHooks::new(chrono::Utc::now());
        let mut config = Config::local_dev(SocketAddr::from(([127, 0, 0, 1], 0)), &hooks);
        config.store = StoreConfig::Postgres {
            url: ConnectionUrl::new("postgres://app:pg-s3cret-pw@db:5432/vaxbook"),
            max_connections: 4,
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("pg-s3cret-pw"), "{shown}");
        assert!(!shown.contains(platform::config::DEV_ADMIN_KEY), "{shown}");
        assert!(
            !shown.contains(platform::config::DEV_SERVICE_KEY),
            "{shown}"
        );
        assert!(
            shown.contains("postgres://app:***@db:5432/vaxbook"),
            "{shown}"
        );
    }
}
