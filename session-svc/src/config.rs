//! The session service's configuration: read from the environment for production
//! ([`Config::from_env`]), or built for the dev run and tests ([`Config::local_dev`]), and
//! checked by [`Config::validate`] before `serve` uses it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use platform::clock::{SharedClock, SystemClock};
use platform::config::{self, CommonConfig, ConnectionUrl};
use platform::dev::DevHooks;

/// Where device locks are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    /// Redis at `url` (its password never printed), every key starting with `key_prefix`.
    Redis {
        url: ConnectionUrl,
        key_prefix: String,
    },
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
    /// Where auth-svc serves its public keys (`VAXBOOK_AUTH_URL`): device proofs and access
    /// tokens are verified against them.
    pub auth_url: String,
    /// Deadline of a call to auth-svc for its keys (`VAXBOOK_GRPC_TIMEOUT_MS`).
    pub request_timeout: Duration,
    /// Set only by the dev run: allows the in-process store.
    pub dev_mode: bool,
    pub clock: SharedClock,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The store's URL is a `ConnectionUrl`, whose Debug hides the password; the clock has
        // no useful Debug of its own.
        f.debug_struct("Config")
            .field("common", &self.common)
            .field("listen_addr", &self.listen_addr)
            .field("store", &self.store)
            .field("session_ttl", &self.session_ttl)
            .field("block_duration", &self.block_duration)
            .field("auth_url", &self.auth_url)
            .field("request_timeout", &self.request_timeout)
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
/// Default address of auth-svc.
pub const DEFAULT_AUTH_URL: &str = "http://127.0.0.1:50051";
/// Default deadline of a call to auth-svc, in milliseconds.
pub const DEFAULT_GRPC_TIMEOUT_MS: u64 = 5000;

impl Config {
    /// Reads the configuration from the environment. Always the Redis store, the real clock
    /// and `dev_mode: false`; the dev run builds its `Config` by hand.
    pub fn from_env() -> anyhow::Result<Config> {
        let config = Config {
            common: CommonConfig::from_env("SESSION", DEFAULT_METRICS_ADDR)?,
            listen_addr: config::addr("SESSION_LISTEN_ADDR", DEFAULT_LISTEN_ADDR)?,
            store: StoreConfig::Redis {
                url: ConnectionUrl::new(config::string(
                    "REDIS_URL",
                    platform::redis_conn::DEFAULT_REDIS_URL,
                )),
                key_prefix: config::string("REDIS_KEY_PREFIX", DEFAULT_KEY_PREFIX),
            },
            session_ttl: config::seconds("SESSION_TTL_SECS", DEFAULT_SESSION_TTL_SECS)?,
            block_duration: config::seconds("SESSION_BLOCK_SECS", DEFAULT_BLOCK_SECS)?,
            auth_url: config::string("VAXBOOK_AUTH_URL", DEFAULT_AUTH_URL),
            request_timeout: Duration::from_millis(config::parse(
                "VAXBOOK_GRPC_TIMEOUT_MS",
                DEFAULT_GRPC_TIMEOUT_MS,
            )?),
            dev_mode: false,
            clock: Arc::new(SystemClock),
        };
        config.validate()?;
        Ok(config)
    }

    /// The dev run's configuration: listens on `listen_addr`, keeps locks in process memory,
    /// reads time from the dev run's settable clock, default durations, `dev_mode: true`.
    /// The dev run then says where auth-svc listens (`auth_url`) and may point `store` at Redis.
    pub fn local_dev(listen_addr: SocketAddr, hooks: &DevHooks) -> Config {
        Config {
            common: CommonConfig::local(),
            listen_addr,
            store: StoreConfig::Memory,
            session_ttl: Duration::from_secs(DEFAULT_SESSION_TTL_SECS),
            block_duration: Duration::from_secs(DEFAULT_BLOCK_SECS),
            auth_url: DEFAULT_AUTH_URL.to_owned(),
            request_timeout: Duration::from_millis(DEFAULT_GRPC_TIMEOUT_MS),
            dev_mode: true,
            clock: hooks.clock.clone(),
        }
    }

    /// Refuses settings `serve` cannot work with; each message names the variable.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.session_ttl.is_zero() {
            anyhow::bail!("SESSION_TTL_SECS must be at least 1");
        }
        if self.block_duration.is_zero() {
            anyhow::bail!("SESSION_BLOCK_SECS must be at least 1");
        }
        if self.store == StoreConfig::Memory && !self.dev_mode {
            anyhow::bail!(
                "the in-process store is only for `vaxbook dev`; set DATABASE_URL/REDIS_URL"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_redis_password() {
        let hooks = DevHooks::new(chrono::Utc::now());
        let mut config = Config::local_dev(SocketAddr::from(([127, 0, 0, 1], 0)), &hooks);
        config.store = StoreConfig::Redis {
            url: ConnectionUrl::new("redis://:s3cret-pass@cache:6379/0"),
            key_prefix: "vaxbook:".to_owned(),
        };
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret-pass"), "{printed}");
        assert!(printed.contains("cache:6379"), "{printed}");
    }

    #[test]
    fn zero_durations_and_the_memory_store_outside_dev_are_refused() {
        let hooks = DevHooks::new(chrono::Utc::now());
        let base = Config::local_dev(SocketAddr::from(([127, 0, 0, 1], 0)), &hooks);
        assert!(base.validate().is_ok());
        let mut zero_ttl = base.clone();
        zero_ttl.session_ttl = Duration::ZERO;
        let error = zero_ttl.validate().expect_err("refused").to_string();
        assert!(error.contains("SESSION_TTL_SECS"), "{error}");
        let mut zero_block = base.clone();
        zero_block.block_duration = Duration::ZERO;
        let error = zero_block.validate().expect_err("refused").to_string();
        assert!(error.contains("SESSION_BLOCK_SECS"), "{error}");
        let mut production = base;
        production.dev_mode = false;
        assert!(production.validate().is_err());
    }
}
