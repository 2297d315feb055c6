//! The session service's configuration: read from the environment for production
//! ([`Config::from_env`]), or built for the dev run and tests ([`Config::local_dev`]), and
//! checked by [`Config::validate`] before `serve` uses it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use platform::clock::{SharedClock, SystemClock};
use platform::config::{self, CommonConfig, ConnectionUrl};
use platform::dev::DevHooks;

use crate::waiting_room::room::RoomSettings;

/// The waiting room's settings (R11).
#[derive(Clone, Debug, PartialEq)]
pub struct QueueConfig {
    /// Every room's settings until an operator sets its own (`SESSION_ADMISSION_ENABLED`,
    /// `SESSION_ADMISSION_RATE`, `SESSION_ADMISSION_BURST`, `SESSION_ADMISSION_AUTO`).
    pub defaults: RoomSettings,
    /// How long an admission (and its grant) lasts (`SESSION_ADMISSION_GRANT_SECS`).
    pub admission_ttl: Duration,
    /// Booking writes one grant allows at most (`SESSION_ADMISSION_GRANT_USES`).
    pub grant_uses: u32,
    /// How long after a lapsed admission a returning person still gets the front
    /// (`SESSION_QUEUE_RETURN_SECS`).
    pub return_window: Duration,
    /// How often each replica runs the admission step (`SESSION_ADMISSION_STEP_MS`).
    pub step_interval: Duration,
    /// The poll rate the first places may use together, per second
    /// (`SESSION_QUEUE_POLL_BUDGET`): `poll_after` grows with the position beyond it.
    pub poll_budget: u32,
    /// booking-svc, whose capacity signal drives the automatic mode (`VAXBOOK_BOOKING_URL`).
    pub booking_url: String,
    /// The automatic mode opens a room when booking-svc's load reaches this share of its
    /// target (`SESSION_AUTO_OPEN_AT`) and closes it below `SESSION_AUTO_CLOSE_AT` with nobody
    /// waiting.
    pub auto_open_at: f64,
    pub auto_close_at: f64,
}

impl QueueConfig {
    fn local() -> Self {
        Self {
            defaults: RoomSettings {
                enabled: false,
                rate_per_second: DEFAULT_ADMISSION_RATE,
                burst: DEFAULT_ADMISSION_BURST,
                automatic: false,
            },
            admission_ttl: Duration::from_secs(DEFAULT_ADMISSION_GRANT_SECS),
            grant_uses: DEFAULT_ADMISSION_GRANT_USES,
            return_window: Duration::from_secs(DEFAULT_QUEUE_RETURN_SECS),
            step_interval: Duration::from_millis(DEFAULT_ADMISSION_STEP_MS),
            poll_budget: DEFAULT_QUEUE_POLL_BUDGET,
            booking_url: DEFAULT_BOOKING_URL.to_owned(),
            auto_open_at: 1.0,
            auto_close_at: 0.5,
        }
    }

    fn from_env() -> anyhow::Result<Self> {
        let local = Self::local();
        Ok(Self {
            defaults: RoomSettings {
                enabled: config::parse("SESSION_ADMISSION_ENABLED", false)?,
                rate_per_second: config::parse("SESSION_ADMISSION_RATE", DEFAULT_ADMISSION_RATE)?,
                burst: config::parse("SESSION_ADMISSION_BURST", DEFAULT_ADMISSION_BURST)?,
                automatic: config::parse("SESSION_ADMISSION_AUTO", false)?,
            },
            admission_ttl: config::seconds(
                "SESSION_ADMISSION_GRANT_SECS",
                DEFAULT_ADMISSION_GRANT_SECS,
            )?,
            grant_uses: config::parse("SESSION_ADMISSION_GRANT_USES", local.grant_uses)?,
            return_window: config::seconds("SESSION_QUEUE_RETURN_SECS", DEFAULT_QUEUE_RETURN_SECS)?,
            step_interval: Duration::from_millis(config::parse(
                "SESSION_ADMISSION_STEP_MS",
                DEFAULT_ADMISSION_STEP_MS,
            )?),
            poll_budget: config::parse("SESSION_QUEUE_POLL_BUDGET", local.poll_budget)?,
            booking_url: config::string("VAXBOOK_BOOKING_URL", DEFAULT_BOOKING_URL),
            auto_open_at: config::parse("SESSION_AUTO_OPEN_AT", local.auto_open_at)?,
            auto_close_at: config::parse("SESSION_AUTO_CLOSE_AT", local.auto_close_at)?,
        })
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.defaults
            .validate()
            .map_err(|err| anyhow::anyhow!("SESSION_ADMISSION_RATE: {err}"))?;
        if self.admission_ttl.is_zero() {
            anyhow::bail!("SESSION_ADMISSION_GRANT_SECS must be at least 1");
        }
        if self.grant_uses == 0 || self.grant_uses > 10 {
            anyhow::bail!("SESSION_ADMISSION_GRANT_USES must be 1 to 10");
        }
        if self.step_interval < Duration::from_millis(10) {
            anyhow::bail!("SESSION_ADMISSION_STEP_MS must be at least 10");
        }
        if self.poll_budget == 0 {
            anyhow::bail!("SESSION_QUEUE_POLL_BUDGET must be at least 1");
        }
        let shares = self.auto_close_at.is_finite()
            && self.auto_open_at.is_finite()
            && self.auto_close_at > 0.0
            && self.auto_close_at < self.auto_open_at;
        if !shares {
            anyhow::bail!("SESSION_AUTO_CLOSE_AT must be above 0 and below SESSION_AUTO_OPEN_AT");
        }
        Ok(())
    }
}

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
    /// A session ends after this long without a validated request (`SESSION_IDLE_SECS`),
    /// even before `session_ttl`.
    pub idle_timeout: Duration,
    /// Deadline of one Redis command (`SESSION_REDIS_TIMEOUT_MS`): past it the caller gets
    /// `overloaded` with `Retry-After`, never a hang.
    pub store_timeout: Duration,
    /// The Ed25519 key that signs admission grants (`SESSION_SIGNING_KEY_FILE`, PKCS#8 PEM,
    /// shared by every replica). Required outside the dev run; the dev run generates one.
    pub signing_key_file: Option<PathBuf>,
    pub queue: QueueConfig,
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
            .field("idle_timeout", &self.idle_timeout)
            .field("store_timeout", &self.store_timeout)
            .field("signing_key_file", &self.signing_key_file)
            .field("queue", &self.queue)
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
/// Default idleness that ends a session (10 minutes).
pub const DEFAULT_IDLE_SECS: u64 = 600;
/// Default deadline of one Redis command, in milliseconds.
pub const DEFAULT_REDIS_TIMEOUT_MS: u64 = 250;
/// Default admissions per second of a room.
pub const DEFAULT_ADMISSION_RATE: f64 = 50.0;
/// Default depth of a room's token bucket.
pub const DEFAULT_ADMISSION_BURST: u32 = 50;
/// Default lifetime of an admission grant.
pub const DEFAULT_ADMISSION_GRANT_SECS: u64 = 120;
/// Default booking writes one grant allows.
pub const DEFAULT_ADMISSION_GRANT_USES: u32 = 3;
/// Default return window of a lapsed admission (30 minutes).
pub const DEFAULT_QUEUE_RETURN_SECS: u64 = 1800;
/// Default period of the admission step.
pub const DEFAULT_ADMISSION_STEP_MS: u64 = 200;
/// Default poll budget of the first places, per second.
pub const DEFAULT_QUEUE_POLL_BUDGET: u32 = 200;
/// Default address of booking-svc.
pub const DEFAULT_BOOKING_URL: &str = "http://127.0.0.1:50054";
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
            idle_timeout: config::seconds("SESSION_IDLE_SECS", DEFAULT_IDLE_SECS)?,
            store_timeout: Duration::from_millis(config::parse(
                "SESSION_REDIS_TIMEOUT_MS",
                DEFAULT_REDIS_TIMEOUT_MS,
            )?),
            signing_key_file: config::var("SESSION_SIGNING_KEY_FILE").map(PathBuf::from),
            queue: QueueConfig::from_env()?,
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
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_SECS),
            store_timeout: Duration::from_millis(DEFAULT_REDIS_TIMEOUT_MS),
            signing_key_file: None,
            queue: QueueConfig::local(),
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
        if self.idle_timeout.is_zero() {
            anyhow::bail!("SESSION_IDLE_SECS must be at least 1");
        }
        if self.store_timeout.is_zero() {
            anyhow::bail!("SESSION_REDIS_TIMEOUT_MS must be at least 1");
        }
        self.queue.validate()?;
        if self.store == StoreConfig::Memory && !self.dev_mode {
            anyhow::bail!(
                "the in-process store is only for `vaxbook dev`; set DATABASE_URL/REDIS_URL"
            );
        }
        if self.signing_key_file.is_none() && !self.dev_mode {
            anyhow::bail!(
                "SESSION_SIGNING_KEY_FILE is required outside the dev run (`vaxbook dev`): point it at an Ed25519 PKCS#8 PEM file (`vaxbook keygen`) that every session-svc replica shares; it signs admission grants"
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
        let mut production = base.clone();
        production.dev_mode = false;
        assert!(production.validate().is_err());
        let mut zero_idle = base;
        zero_idle.idle_timeout = Duration::ZERO;
        let error = zero_idle.validate().expect_err("refused").to_string();
        assert!(error.contains("SESSION_IDLE_SECS"), "{error}");
    }

    #[test]
    fn production_refuses_to_run_without_the_admission_signing_key() {
        let hooks = DevHooks::new(chrono::Utc::now());
        let mut production = Config::local_dev(SocketAddr::from(([127, 0, 0, 1], 0)), &hooks);
        production.dev_mode = false;
        production.store = StoreConfig::Redis {
            url: ConnectionUrl::new("redis://127.0.0.1:6379"),
            key_prefix: "vaxbook:".to_owned(),
        };
        let error = production.validate().expect_err("refused").to_string();
        assert!(error.contains("SESSION_SIGNING_KEY_FILE"), "{error}");
        production.signing_key_file = Some(PathBuf::from("/run/secrets/session-signing-key.pem"));
        assert!(production.validate().is_ok());
    }
}
