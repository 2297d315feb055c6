//! The configuration of what guards the phone provider and the verification starts: the
//! carriers' identity-verification agency (`AUTH_CARRIER_*`) and the abuse limits
//! (`AUTH_PHONE_START_LIMIT`, `AUTH_CLIENT_START_LIMIT`, `AUTH_WRONG_CODE_LIMIT`,
//! `AUTH_LOCKOUT_SECS`). Production must name the agency: without `AUTH_CARRIER_CHECK_URL`
//! auth-svc refuses to start rather than send codes unchecked; the dev run answers from the
//! subscriber directory of its `DevHooks`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use platform::carrier::CarrierDirectory;
use platform::config;

use super::ConfigError;
use crate::carrier::{
    BreakerSettings, CarrierCheck, CircuitBreaker, DirectoryCarrierCheck, HttpCarrierCheck,
};
use crate::limits::{AbuseLimits, LimitSettings};
use crate::store::ChallengeStore;

const DEFAULT_CARRIER_TIMEOUT: Duration = Duration::from_secs(3);
const DEFAULT_BREAKER_FAILURES: u32 = 5;
const DEFAULT_BREAKER_OPEN: Duration = Duration::from_secs(30);
const DEFAULT_PHONE_START_LIMIT: u64 = 5;
const DEFAULT_CLIENT_START_LIMIT: u64 = 100;
/// Proxy resolutions per booker in the start window: a family books for a few people.
const DEFAULT_PROXY_BOOKER_LIMIT: u64 = 10;
const DEFAULT_PROXY_CLIENT_LIMIT: u64 = 100;
const DEFAULT_WRONG_CODE_LIMIT: u64 = 10;
const DEFAULT_LOCKOUT: Duration = Duration::from_secs(1800);

/// Where the agency is.
#[derive(Clone)]
pub enum CarrierConfig {
    /// The agency's HTTP endpoint, with the adapter's deadline and circuit breaker.
    Http {
        url: String,
        timeout: Duration,
        breaker: BreakerSettings,
    },
    /// The dev run's subscriber directory: only for `vaxbook dev`.
    Dev(Arc<CarrierDirectory>),
}

impl fmt::Debug for CarrierConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http {
                url,
                timeout,
                breaker,
            } => f
                .debug_struct("Http")
                .field("url", &config::redact_url(url))
                .field("timeout", timeout)
                .field("breaker", breaker)
                .finish(),
            Self::Dev(_) => f.write_str("Dev(..)"),
        }
    }
}

/// The agency and the limits.
#[derive(Clone, Debug)]
pub struct GuardConfig {
    pub carrier: CarrierConfig,
    pub limits: LimitSettings,
}

impl GuardConfig {
    /// Reads the environment; `AUTH_CARRIER_CHECK_URL` is required.
    pub fn from_env(start_window: Duration) -> anyhow::Result<Self> {
        let url = config::var("AUTH_CARRIER_CHECK_URL")
            .map(|url| url.trim().to_owned())
            .filter(|url| !url.is_empty())
            .ok_or(ConfigError::CarrierCheckUrlRequired)?;
        let timeout_ms = config::parse(
            "AUTH_CARRIER_TIMEOUT_MS",
            u64::try_from(DEFAULT_CARRIER_TIMEOUT.as_millis()).unwrap_or(3000),
        )?;
        Ok(Self {
            carrier: CarrierConfig::Http {
                url,
                timeout: Duration::from_millis(timeout_ms),
                breaker: BreakerSettings {
                    failure_threshold: config::parse(
                        "AUTH_CARRIER_BREAKER_FAILURES",
                        DEFAULT_BREAKER_FAILURES,
                    )?,
                    open_for: config::seconds(
                        "AUTH_CARRIER_BREAKER_OPEN_SECS",
                        DEFAULT_BREAKER_OPEN.as_secs(),
                    )?,
                },
            },
            limits: LimitSettings {
                phone_starts: config::parse("AUTH_PHONE_START_LIMIT", DEFAULT_PHONE_START_LIMIT)?,
                client_starts: config::parse(
                    "AUTH_CLIENT_START_LIMIT",
                    DEFAULT_CLIENT_START_LIMIT,
                )?,
                proxy_per_booker: config::parse(
                    "AUTH_PROXY_BOOKER_LIMIT",
                    DEFAULT_PROXY_BOOKER_LIMIT,
                )?,
                proxy_per_client: config::parse(
                    "AUTH_PROXY_CLIENT_LIMIT",
                    DEFAULT_PROXY_CLIENT_LIMIT,
                )?,
                start_window,
                wrong_codes: config::parse("AUTH_WRONG_CODE_LIMIT", DEFAULT_WRONG_CODE_LIMIT)?,
                lockout: config::seconds("AUTH_LOCKOUT_SECS", DEFAULT_LOCKOUT.as_secs())?,
            },
        })
    }

    /// The dev run: the directory of `hooks`, default limits.
    pub fn local_dev(hooks: &platform::dev::DevHooks, start_window: Duration) -> Self {
        Self {
            carrier: CarrierConfig::Dev(hooks.carriers.clone()),
            limits: Self::default_limits(start_window),
        }
    }

    /// The agency over HTTP at `url` with the default deadline and breaker (tests, harnesses).
    pub fn http(url: impl Into<String>, start_window: Duration) -> Self {
        Self {
            carrier: CarrierConfig::Http {
                url: url.into(),
                timeout: DEFAULT_CARRIER_TIMEOUT,
                breaker: BreakerSettings {
                    failure_threshold: DEFAULT_BREAKER_FAILURES,
                    open_for: DEFAULT_BREAKER_OPEN,
                },
            },
            limits: Self::default_limits(start_window),
        }
    }

    fn default_limits(start_window: Duration) -> LimitSettings {
        LimitSettings {
            phone_starts: DEFAULT_PHONE_START_LIMIT,
            client_starts: DEFAULT_CLIENT_START_LIMIT,
            proxy_per_booker: DEFAULT_PROXY_BOOKER_LIMIT,
            proxy_per_client: DEFAULT_PROXY_CLIENT_LIMIT,
            start_window,
            wrong_codes: DEFAULT_WRONG_CODE_LIMIT,
            lockout: DEFAULT_LOCKOUT,
        }
    }

    /// Refuses the dev directory outside the dev run and nonsensical limits.
    pub fn check(&self, dev_mode: bool) -> Result<(), ConfigError> {
        match &self.carrier {
            CarrierConfig::Dev(_) if !dev_mode => return Err(ConfigError::CarrierCheckUrlRequired),
            CarrierConfig::Dev(_) => {}
            CarrierConfig::Http {
                url,
                timeout,
                breaker,
            } => {
                if reqwest::Url::parse(url).is_err() {
                    return Err(ConfigError::CarrierCheckUrl);
                }
                if timeout.is_zero() || breaker.open_for.is_zero() || breaker.failure_threshold == 0
                {
                    return Err(ConfigError::CarrierLimits);
                }
            }
        }
        let limits = &self.limits;
        if limits.phone_starts == 0
            || limits.client_starts == 0
            || limits.proxy_per_booker == 0
            || limits.proxy_per_client == 0
            || limits.wrong_codes == 0
            || limits.lockout.is_zero()
        {
            return Err(ConfigError::ZeroAbuseLimit);
        }
        Ok(())
    }

    /// The agency adapter this configuration names.
    pub fn carrier_check(&self) -> anyhow::Result<Arc<dyn CarrierCheck>> {
        Ok(match &self.carrier {
            CarrierConfig::Http {
                url,
                timeout,
                breaker,
            } => Arc::new(HttpCarrierCheck::new(
                url,
                *timeout,
                CircuitBreaker::new(*breaker),
            )?),
            CarrierConfig::Dev(directory) => {
                Arc::new(DirectoryCarrierCheck::new(directory.clone()))
            }
        })
    }
}

impl super::Config {
    /// The abuse limits over `store`, counting starts in the configuration's start window; the
    /// subjects are keyed with the person-key secret.
    pub fn abuse_limits(&self, store: Arc<dyn ChallengeStore>) -> AbuseLimits {
        let settings = LimitSettings {
            start_window: self.start_window,
            ..self.guards.limits
        };
        AbuseLimits::new(store, settings, self.person_key_secret.expose().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_dev_directory_is_refused_outside_the_dev_run() {
        let hooks = platform::dev::DevHooks::new(chrono::Utc::now());
        let dev = GuardConfig::local_dev(&hooks, Duration::from_secs(600));
        assert!(dev.check(true).is_ok());
        let error = dev.check(false).unwrap_err();
        assert!(
            error.to_string().contains("AUTH_CARRIER_CHECK_URL"),
            "{error}"
        );
        let http = GuardConfig::http("http://127.0.0.1:9/check", Duration::from_secs(600));
        assert!(http.check(false).is_ok());
        assert!(
            GuardConfig::http("no url", Duration::from_secs(1))
                .check(false)
                .is_err()
        );
        let mut zero = http.clone();
        zero.limits.wrong_codes = 0;
        assert!(zero.check(false).is_err());
    }

    #[test]
    fn debug_hides_the_agency_credentials() {
        let config = GuardConfig::http(
            "https://svc:agency-secret@agency.example/check",
            Duration::from_secs(600),
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("agency-secret"), "{shown}");
    }
}
