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

/// A secret setting (a key, a password): its `Debug` and `Display` never show the value, so a
/// configuration can be logged or printed whole.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A connection URL that may carry a password (`postgres://user:password@host/db`): `Debug`
/// and `Display` show it with the password replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionUrl(String);

impl ConnectionUrl {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The URL itself, password included, for the connection pool.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl std::fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConnectionUrl({})", self.redacted())
    }
}

impl std::fmt::Display for ConnectionUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// `url` with the password of its user-info part (`scheme://user:password@host`) replaced by
/// `***`; a URL without one is returned as it is.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let user_info = &authority[..at];
    let Some(colon) = user_info.find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:***{}",
        &url[..authority_start],
        &user_info[..colon],
        &url[authority_start + at..]
    )
}

/// Reads a secret that production must set: refused when unset, empty, shorter than
/// [`MIN_SECRET_LEN`] bytes, or equal to the development default `dev_default`, with a message
/// naming the variable.
pub fn production_secret(name: &str, dev_default: &str) -> Result<Secret, ConfigError> {
    let refuse = |reason: &str| ConfigError {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let Some(value) = var(name) else {
        return Err(refuse(
            "is required outside the dev run (`vaxbook dev`): set it to a secret of at least 16 characters",
        ));
    };
    if value == dev_default {
        return Err(refuse(
            "is the development default, which production refuses: set a secret of your own",
        ));
    }
    if value.len() < MIN_SECRET_LEN {
        return Err(refuse("must be at least 16 characters long"));
    }
    Ok(Secret(value))
}

/// The shortest secret production accepts, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// Settings every service shares.
#[derive(Clone, Debug)]
pub struct CommonConfig {
    /// Where Prometheus scrapes `/metrics` (and `/healthz`).
    pub metrics_addr: SocketAddr,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// The dev run's operator shortcut ([`crate::operator`]): set only by [`Self::local`], never
    /// from a production environment, where admin RPCs take operator tokens only.
    pub dev_operator_key: Option<Secret>,
    /// Requests one replica works on at once; beyond it a request is refused at once with
    /// RESOURCE_EXHAUSTED `overloaded` and a retry delay, never queued without bound.
    pub max_inflight: usize,
}

/// Default of `<SVC>_MAX_INFLIGHT`.
pub const DEFAULT_MAX_INFLIGHT: usize = 512;

/// The dev run's operator key (`x-admin-key`, [`crate::operator`]); production has no static
/// operator key at all, only operator tokens.
pub const DEV_ADMIN_KEY: &str = "vaxbook-local-admin";

/// The internal service credential's variable: booking-svc presents it to scheduling-svc when
/// it asks about a person it has authenticated itself (proxy and call-center bookings).
pub const SERVICE_KEY_VAR: &str = "VAXBOOK_SERVICE_KEY";
/// Development value of [`SERVICE_KEY_VAR`]; production refuses it.
pub const DEV_SERVICE_KEY: &str = "vaxbook-local-service";
/// The metadata key that carries the internal service credential.
pub const SERVICE_KEY_HEADER: &str = "x-service-key";

/// The internal service credential from the environment ([`SERVICE_KEY_VAR`]): required, never
/// the development value.
pub fn service_key() -> Result<Secret, ConfigError> {
    production_secret(SERVICE_KEY_VAR, DEV_SERVICE_KEY)
}

impl CommonConfig {
    /// Reads the shared settings; `metrics_default` is the service's own default metrics address.
    pub fn from_env(prefix: &str, metrics_default: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            metrics_addr: addr(&format!("{prefix}_METRICS_ADDR"), metrics_default)?,
            shutdown_grace: seconds("VAXBOOK_SHUTDOWN_GRACE_SECS", 10)?,
            dev_operator_key: None,
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
            dev_operator_key: Some(Secret::new(DEV_ADMIN_KEY)),
            max_inflight: DEFAULT_MAX_INFLIGHT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("hunter2-hunter2-hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(secret.expose(), "hunter2-hunter2-hunter2");
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db.internal:5432/vaxbook"),
            "postgres://app:***@db.internal:5432/vaxbook"
        );
        assert_eq!(
            redact_url("redis://:s3cret@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/vaxbook"),
            "postgres://postgres@127.0.0.1:5432/vaxbook"
        );
        assert_eq!(redact_url("not a url"), "not a url");
        let url = ConnectionUrl::new("postgres://app:s3cret@db/x");
        assert!(!format!("{url:?}").contains("s3cret"));
        assert!(!format!("{url}").contains("s3cret"));
    }
}
