//! Configuration from environment variables, with defaults that work on a developer machine.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// A configuration value that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("configuration variable {name} has an invalid value: {reason}")]
pub struct ConfigError {
    pub name: String,
    pub reason: String,
}

/// The raw value of `name`, or `None` when unset or empty.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// The value of `name` as a string, or `default`.
pub fn string(name: &str, default: &str) -> String {
    var(name).unwrap_or_else(|| default.to_owned())
}

/// The value of `name` parsed as `T`, or `default` when unset.
pub fn parse<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|err: T::Err| ConfigError {
            name: name.to_owned(),
            reason: err.to_string(),
        }),
    }
}

/// A socket address from `name`, or `default`.
pub fn addr(name: &str, default: &str) -> Result<SocketAddr, ConfigError> {
    let raw = string(name, default);
    raw.parse()
        .map_err(|err: std::net::AddrParseError| ConfigError {
            name: name.to_owned(),
            reason: err.to_string(),
        })
}

/// A duration in whole seconds from `name`, or `default_secs`.
pub fn seconds(name: &str, default_secs: u64) -> Result<Duration, ConfigError> {
    parse(name, default_secs).map(Duration::from_secs)
}

/// Settings every service shares.
#[derive(Clone, Debug)]
pub struct CommonConfig {
    /// Where Prometheus scrapes `/metrics` (and `/healthz`).
    pub metrics_addr: SocketAddr,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Key operators put in `x-admin-key` metadata for admin RPCs.
    pub admin_key: String,
    /// Requests one replica works on at once; beyond it a request is refused at once with
    /// RESOURCE_EXHAUSTED `overloaded` and a retry delay, never queued without bound.
    pub max_inflight: usize,
}

/// Default of `<SVC>_MAX_INFLIGHT`.
pub const DEFAULT_MAX_INFLIGHT: usize = 512;

/// Default operator key for local runs; production sets `VAXBOOK_ADMIN_KEY`.
pub const DEV_ADMIN_KEY: &str = "vaxbook-local-admin";

impl CommonConfig {
    /// Reads the shared settings; `metrics_default` is the service's own default metrics address.
    pub fn from_env(prefix: &str, metrics_default: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            metrics_addr: addr(&format!("{prefix}_METRICS_ADDR"), metrics_default)?,
            shutdown_grace: seconds("VAXBOOK_SHUTDOWN_GRACE_SECS", 10)?,
            admin_key: string("VAXBOOK_ADMIN_KEY", DEV_ADMIN_KEY),
            max_inflight: match parse(&format!("{prefix}_MAX_INFLIGHT"), DEFAULT_MAX_INFLIGHT)? {
                0 => {
                    return Err(ConfigError {
                        name: format!("{prefix}_MAX_INFLIGHT"),
                        reason: "must be at least 1".to_owned(),
                    });
                }
                limit => limit,
            },
        })
    }

    /// Settings for tests and the dev run: metrics on an ephemeral loopback port.
    pub fn local() -> Self {
        Self {
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            shutdown_grace: Duration::from_secs(5),
            admin_key: DEV_ADMIN_KEY.to_owned(),
            max_inflight: DEFAULT_MAX_INFLIGHT,
        }
    }
}
