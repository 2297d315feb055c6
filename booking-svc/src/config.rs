//! The settings of booking-svc: [`Config::from_env`] for production (PostgreSQL, the real clock,
//! every secret required), [`Config::local_dev`] for `vaxbook dev` and tests (in-process store,
//! the dev run's clock, the other services on their loopback defaults). `Debug` of a config
//! shows no secret and no database password.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use platform::clock::{SharedClock, SystemClock};
use platform::config::{CommonConfig, ConnectionUrl, Secret};
use platform::dev::DevHooks;

/// auth-svc's gRPC address when nothing else is configured.
pub const DEFAULT_AUTH_URL: &str = "http://127.0.0.1:50051";
/// session-svc's gRPC address when nothing else is configured.
pub const DEFAULT_SESSION_URL: &str = "http://127.0.0.1:50052";
/// scheduling-svc's gRPC address when nothing else is configured.
pub const DEFAULT_SCHEDULING_URL: &str = "http://127.0.0.1:50053";

/// Default reuse of a waiting room's status, in milliseconds.
pub const DEFAULT_ADMISSION_CACHE_MS: u64 = 2000;
/// Default booking writes in flight a replica is sized for.
pub const DEFAULT_TARGET_IN_FLIGHT: u32 = 64;
/// Default target latency of a booking write, in milliseconds.
pub const DEFAULT_TARGET_LATENCY_MS: u64 = 500;

/// Where bookings live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    Postgres {
        url: ConnectionUrl,
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
    /// The internal service key booking-svc presents to scheduling-svc's `CheckEligibility`
    /// for the people it authenticated itself (`VAXBOOK_SERVICE_KEY`; production refuses it
    /// unset or the development value).
    pub service_key: Secret,
    /// session-svc: a person-facing call must ride on a session that still holds the person's
    /// device lock (R3), whoever calls. Always checked; there is no setting that turns it off.
    pub session_url: String,
    /// Deadline of calls to other services.
    pub request_timeout: Duration,
    /// How long session-svc's answer "is this campaign's waiting room on" is reused
    /// (`BOOKING_ADMISSION_CACHE_MS`).
    pub admission_cache: Duration,
    /// The booking writes in flight this replica is sized for (`BOOKING_TARGET_IN_FLIGHT`) and
    /// their target latency (`BOOKING_TARGET_LATENCY_MS`): the capacity signal's yardsticks.
    pub target_in_flight: u32,
    pub target_latency: Duration,
    /// Allows the in-process store.
    pub dev_mode: bool,
    pub clock: SharedClock,
}

impl Config {
    /// Reads the settings from the environment, with local defaults for addresses; refuses a
    /// missing or development service key.
    pub fn from_env() -> anyhow::Result<Config> {
        use platform::config::{addr, parse, string, var};
        let url = var("BOOKING_DATABASE_URL")
            .or_else(|| var("DATABASE_URL"))
            .unwrap_or_else(|| platform::pg::DEFAULT_DATABASE_URL.to_owned());
        let max_connections: usize = parse("BOOKING_DB_POOL_SIZE", 16)?;
        if max_connections == 0 {
            anyhow::bail!("BOOKING_DB_POOL_SIZE must be at least 1");
        }
        Ok(Config {
            common: CommonConfig::from_env("BOOKING", "0.0.0.0:9104")?,
            listen_addr: addr("BOOKING_LISTEN_ADDR", "0.0.0.0:50054")?,
            store: StoreConfig::Postgres {
                url: ConnectionUrl::new(url),
                max_connections,
            },
            auth_url: string("VAXBOOK_AUTH_URL", DEFAULT_AUTH_URL),
            scheduling_url: string("VAXBOOK_SCHEDULING_URL", DEFAULT_SCHEDULING_URL),
            service_key: platform::config::service_key()?,
            session_url: string("VAXBOOK_SESSION_URL", DEFAULT_SESSION_URL),
            request_timeout: Duration::from_millis(parse("VAXBOOK_GRPC_TIMEOUT_MS", 5000)?),
            admission_cache: Duration::from_millis(parse(
                "BOOKING_ADMISSION_CACHE_MS",
                DEFAULT_ADMISSION_CACHE_MS,
            )?),
            target_in_flight: parse("BOOKING_TARGET_IN_FLIGHT", DEFAULT_TARGET_IN_FLIGHT)?,
            target_latency: Duration::from_millis(parse(
                "BOOKING_TARGET_LATENCY_MS",
                DEFAULT_TARGET_LATENCY_MS,
            )?),
            dev_mode: false,
            clock: Arc::new(SystemClock),
        })
    }

    /// Settings for the dev run and tests: in-process store, `listen_addr`, the dev run's
    /// clock, the other services at their loopback defaults. Callers override what they need
    /// (the store, the other services' URLs).
    pub fn local_dev(listen_addr: SocketAddr, hooks: &DevHooks) -> Config {
        Config {
            common: CommonConfig::local(),
            listen_addr,
            store: StoreConfig::Memory,
            auth_url: DEFAULT_AUTH_URL.to_owned(),
            scheduling_url: DEFAULT_SCHEDULING_URL.to_owned(),
            service_key: Secret::new(platform::config::DEV_SERVICE_KEY),
            session_url: DEFAULT_SESSION_URL.to_owned(),
            request_timeout: Duration::from_secs(5),
            admission_cache: Duration::from_millis(DEFAULT_ADMISSION_CACHE_MS),
            target_in_flight: DEFAULT_TARGET_IN_FLIGHT,
            target_latency: Duration::from_millis(DEFAULT_TARGET_LATENCY_MS),
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
