//! The session service's configuration, read from the environment with defaults that work on a
//! developer machine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use platform::clock::{SharedClock, SystemClock};
use platform::config::{self, CommonConfig};

/// Where device locks are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    /// Redis at `url`, every key starting with `key_prefix`.
    Redis { url: String, key_prefix: String },
    /// Process memory: only for `vaxbook dev` (`serve` refuses it otherwise).
    Memory,
}

/// Everything `serve` needs.
#[derive(Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// gRPC listen address (`SESSION_LISTEN_ADDR`).
    pub listen_addr: SocketAddr,
    pub store: StoreConfig,
    /// How long a granted session holds the person's lock (`SESSION_TTL_SECS`).
    pub session_ttl: Duration,
    /// How long a refused device is blocked (`SESSION_BLOCK_SECS`, R3: 10 minutes).
    pub block_duration: Duration,
    /// Set only by the dev run: allows the in-process store.
    pub dev_mode: bool,
    pub clock: SharedClock,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The Redis URL may carry a password: show only which store is used.
        let store = match &self.store {
            StoreConfig::Redis { key_prefix, .. } => format!("redis (prefix {key_prefix:?})"),
            StoreConfig::Memory => "memory".to_owned(),
        };
        f.debug_struct("Config")
            .field("listen_addr", &self.listen_addr)
            .field("metrics_addr", &self.common.metrics_addr)
            .field("store", &store)
            .field("session_ttl", &self.session_ttl)
            .field("block_duration", &self.block_duration)
            .field("dev_mode", &self.dev_mode)
            .finish_non_exhaustive()
    }
}

/// Default gRPC address of session-svc.
pub const DEFAULT_LISTEN_ADDR: &str = "0.0.0.0:50052";
/// Default metrics address of session-svc.
pub const DEFAULT_METRICS_ADDR: &str = "0.0.0.0:9102";
/// Default key prefix in Redis.
pub const DEFAULT_KEY_PREFIX: &str = "vaxbook:";
/// Default session lifetime (20 minutes).
pub const DEFAULT_SESSION_TTL_SECS: u64 = 1200;
/// Default block of a refused device (R3: 10 minutes).
pub const DEFAULT_BLOCK_SECS: u64 = 600;

impl Config {
    /// Reads the configuration from the environment. Always the Redis store, the real clock
    /// and `dev_mode: false`; the dev run builds its `Config` by hand.
    pub fn from_env() -> anyhow::Result<Config> {
        let session_ttl = config::seconds("SESSION_TTL_SECS", DEFAULT_SESSION_TTL_SECS)?;
        let block_duration = config::seconds("SESSION_BLOCK_SECS", DEFAULT_BLOCK_SECS)?;
        if session_ttl.is_zero() {
            anyhow::bail!("SESSION_TTL_SECS must be at least 1");
        }
        if block_duration.is_zero() {
            anyhow::bail!("SESSION_BLOCK_SECS must be at least 1");
        }
        Ok(Config {
            common: CommonConfig::from_env("SESSION", DEFAULT_METRICS_ADDR)?,
            listen_addr: config::addr("SESSION_LISTEN_ADDR", DEFAULT_LISTEN_ADDR)?,
            store: StoreConfig::Redis {
                url: config::string("REDIS_URL", platform::redis_conn::DEFAULT_REDIS_URL),
                key_prefix: config::string("REDIS_KEY_PREFIX", DEFAULT_KEY_PREFIX),
            },
            session_ttl,
            block_duration,
            dev_mode: false,
            clock: Arc::new(SystemClock),
        })
    }

    /// A configuration for the dev run and tests: in-process store, loopback ports chosen by
    /// the OS, default durations, `dev_mode: true`, and the given clock.
    pub fn local_dev(clock: SharedClock) -> Config {
        Config {
            common: CommonConfig::local(),
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            store: StoreConfig::Memory,
            session_ttl: Duration::from_secs(DEFAULT_SESSION_TTL_SECS),
            block_duration: Duration::from_secs(DEFAULT_BLOCK_SECS),
            dev_mode: true,
            clock,
        }
    }
}
