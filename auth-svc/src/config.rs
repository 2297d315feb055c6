//! The configuration of auth-svc: what it reads from the environment in production
//! ([`Config::from_env`]), the dev run's settings ([`Config::local_dev`]), and the checks both
//! pass before anything starts. Production refuses the development stand-ins: the in-process
//! store, the in-memory SMS outbox, the development person-key secret and a signing key
//! generated at start. `Debug` of a configuration shows no secret and no Redis password.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use platform::auth::Jwks;
use platform::clock::{SharedClock, SystemClock};
use platform::config::{self, ConnectionUrl, Secret};

use crate::domain::ProviderKind;
use crate::providers;

mod guards;

pub use self::guards::{CarrierConfig, GuardConfig};

/// The person-key secret of the dev run; production must set `AUTH_PERSON_KEY_SECRET` to a
/// secret of its own and refuses this one.
pub const DEV_PERSON_KEY_SECRET: &str = "vaxbook-local-person-key-secret";
/// Where auth-svc listens unless `AUTH_LISTEN_ADDR` says otherwise.
pub const DEFAULT_LISTEN_ADDR: &str = "0.0.0.0:50051";
/// Where auth-svc serves `/metrics` unless `AUTH_METRICS_ADDR` says otherwise.
pub const DEFAULT_METRICS_ADDR: &str = "0.0.0.0:9101";
/// Where session-svc listens unless `VAXBOOK_SESSION_URL` says otherwise.
pub const DEFAULT_SESSION_URL: &str = "http://127.0.0.1:50052";

const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(1200);
const DEFAULT_OTP_TTL: Duration = Duration::from_secs(180);
const DEFAULT_OTP_MAX_ATTEMPTS: u32 = 5;
const DEFAULT_ASSERTION_TTL: Duration = Duration::from_secs(300);
const DEFAULT_START_LIMIT: u64 = 5;
const DEFAULT_START_WINDOW: Duration = Duration::from_secs(600);
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Where challenges and rate counters live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    Redis {
        /// Shown with its password redacted.
        url: ConnectionUrl,
        key_prefix: String,
    },
    /// In-process, for `vaxbook dev` only.
    Memory,
}

/// Where one-time codes are sent.
#[derive(Clone)]
pub enum SmsConfig {
    /// `{prefix}sms:outbox` in the Redis of [`StoreConfig::Redis`], for the SMS relay.
    RedisStream,
    /// The dev run's in-memory outbox shown on `/dev/sms`.
    Dev(Arc<platform::dev::SmsOutbox>),
}

impl fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The outbox holds phone numbers and codes: never printed.
        match self {
            Self::RedisStream => f.write_str("RedisStream"),
            Self::Dev(_) => f.write_str("Dev(..)"),
        }
    }
}

/// A configuration auth-svc refuses to start with; each message names what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the in-process store is only for `vaxbook dev`; set REDIS_URL")]
    MemoryStoreOutsideDev,
    #[error(
        "the in-memory SMS outbox is only for `vaxbook dev`; production sends through the Redis SMS outbox"
    )]
    DevSmsOutsideDev,
    #[error(
        "AUTH_PERSON_KEY_SECRET is the development default, which production refuses: set a secret of your own"
    )]
    DevPersonKeySecret,
    #[error("AUTH_PERSON_KEY_SECRET must not be empty")]
    EmptyPersonKeySecret,
    #[error(
        "AUTH_SIGNING_KEY_FILE is required outside the dev run (`vaxbook dev`): point it at an Ed25519 PKCS#8 PEM file (`vaxbook keygen`) that every replica shares"
    )]
    SigningKeyFileRequired,
    #[error("AUTH_OTP_MAX_ATTEMPTS and AUTH_START_LIMIT must be at least 1")]
    ZeroLimit,
    #[error(
        "AUTH_OTP_TTL_SECS, AUTH_TOKEN_TTL_SECS, AUTH_START_WINDOW_SECS and AUTH_ASSERTION_TTL_SECS must be positive"
    )]
    ZeroDuration,
    #[error("simple_cert_issuers names {0:?}, which is not kakao, naver or pass")]
    UnknownIssuer(String),
    #[error(
        "AUTH_CARRIER_CHECK_URL is required outside the dev run (`vaxbook dev`): the phone provider sends no code before the carriers' identity-verification agency has confirmed the phone"
    )]
    CarrierCheckUrlRequired,
    #[error("AUTH_CARRIER_CHECK_URL must be an http(s) URL")]
    CarrierCheckUrl,
    #[error(
        "AUTH_CARRIER_TIMEOUT_MS, AUTH_CARRIER_BREAKER_FAILURES and AUTH_CARRIER_BREAKER_OPEN_SECS must be positive"
    )]
    CarrierLimits,
    #[error(
        "AUTH_PHONE_START_LIMIT, AUTH_CLIENT_START_LIMIT, AUTH_PROXY_BOOKER_LIMIT, AUTH_PROXY_CLIENT_LIMIT, AUTH_WRONG_CODE_LIMIT and AUTH_LOCKOUT_SECS must be positive"
    )]
    ZeroAbuseLimit,
}

/// The root CA files of `AUTH_FINANCIAL_CERT_ROOTS` (comma-separated PEM files); unset leaves
/// `financial_cert` off.
fn financial_cert_roots_from_env() -> anyhow::Result<Option<providers::TrustedRoots>> {
    let Some(list) = config::var("AUTH_FINANCIAL_CERT_ROOTS") else {
        return Ok(None);
    };
    let paths: Vec<PathBuf> = list
        .split(',')
        .map(str::trim)
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .collect();
    providers::TrustedRoots::read_files("AUTH_FINANCIAL_CERT_ROOTS", &paths).map(Some)
}

/// The health thresholds of `AUTH_PROVIDER_HEALTH_*`.
fn provider_health_from_env() -> Result<providers::HealthThresholds, config::ConfigError> {
    let defaults = providers::HealthThresholds::default();
    let percent = |name: &str, default: f64| -> Result<f64, config::ConfigError> {
        let value: u32 = config::parse(name, (default * 100.0).round() as u32)?;
        Ok(f64::from(value.min(100)) / 100.0)
    };
    Ok(providers::HealthThresholds {
        window: config::seconds(
            "AUTH_PROVIDER_HEALTH_WINDOW_SECS",
            defaults.window.as_secs(),
        )?,
        slow_p95: Duration::from_millis(config::parse(
            "AUTH_PROVIDER_SLOW_P95_MS",
            u64::try_from(defaults.slow_p95.as_millis()).unwrap_or(u64::MAX),
        )?),
        down_below: percent("AUTH_PROVIDER_DOWN_BELOW_PERCENT", defaults.down_below)?,
        degraded_below: percent("AUTH_PROVIDER_SLOW_BELOW_PERCENT", defaults.degraded_below)?,
        min_samples: config::parse("AUTH_PROVIDER_HEALTH_MIN_SAMPLES", defaults.min_samples)?,
    })
}

/// Everything auth-svc needs to run.
#[derive(Clone)]
pub struct Config {
    pub common: config::CommonConfig,
    pub listen_addr: SocketAddr,
    pub store: StoreConfig,
    pub sms: SmsConfig,
    pub session_url: String,
    /// The key of the person-key hash (and of the challenge digests).
    pub person_key_secret: Secret,
    /// The PKCS#8 PEM file of the signing key. `None` signs with a key generated at start,
    /// which only the dev run may do (replicas would not accept each other's tokens).
    pub signing_key_file: Option<PathBuf>,
    /// Keys no longer used to sign, still published until the tokens they signed expire.
    pub retired_signing_key_files: Vec<PathBuf>,
    pub token_ttl: Duration,
    pub otp_ttl: Duration,
    /// Wrong codes or refused assertions before a challenge is dropped.
    pub otp_max_attempts: u32,
    /// Trusted assertion keys of the simple-certificate providers, by wire name (`kakao`,
    /// `naver`, `pass`). A provider is enabled only when it has keys here.
    pub simple_cert_issuers: HashMap<String, Jwks>,
    /// How long a simple-certificate nonce can be answered.
    pub assertion_ttl: Duration,
    pub start_limit: u64,
    pub start_window: Duration,
    pub request_timeout: Duration,
    /// The carriers' agency and the abuse limits.
    pub guards: GuardConfig,
    /// The root CAs financial certificates must chain to (`AUTH_FINANCIAL_CERT_ROOTS`); the
    /// `financial_cert` provider is enabled only with roots.
    pub financial_cert_roots: Option<providers::TrustedRoots>,
    /// When a provider's measured health is `slow` or `down`.
    pub provider_health: providers::HealthThresholds,
    pub dev_mode: bool,
    pub clock: SharedClock,
    /// PostgreSQL of the staff accounts and the audit trail (`AUTH_DATABASE_URL`); `None` keeps
    /// both in memory (the dev run).
    pub staff_database: Option<ConnectionUrl>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("common", &self.common)
            .field("listen_addr", &self.listen_addr)
            .field("store", &self.store)
            .field("sms", &self.sms)
            .field("session_url", &config::redact_url(&self.session_url))
            .field("person_key_secret", &self.person_key_secret)
            .field("signing_key_file", &self.signing_key_file)
            .field("retired_signing_key_files", &self.retired_signing_key_files)
            .field("token_ttl", &self.token_ttl)
            .field("otp_ttl", &self.otp_ttl)
            .field("otp_max_attempts", &self.otp_max_attempts)
            .field("simple_cert_issuers", &self.issuer_kids())
            .field("assertion_ttl", &self.assertion_ttl)
            .field("start_limit", &self.start_limit)
            .field("start_window", &self.start_window)
            .field("request_timeout", &self.request_timeout)
            .field("guards", &self.guards)
            .field("financial_cert_roots", &self.financial_cert_roots)
            .field("provider_health", &self.provider_health)
            .field("dev_mode", &self.dev_mode)
            .field("staff_database", &self.staff_database)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the environment. Limits and addresses take their defaults when unset; the
    /// secrets do not: `AUTH_PERSON_KEY_SECRET` must be set to a value other than the
    /// development default, and `AUTH_SIGNING_KEY_FILE` must name the key.
    pub fn from_env() -> anyhow::Result<Self> {
        let signing_key_file = config::var("AUTH_SIGNING_KEY_FILE")
            .map(|path| PathBuf::from(path.trim()))
            .ok_or(ConfigError::SigningKeyFileRequired)?;
        let start_window =
            config::seconds("AUTH_START_WINDOW_SECS", DEFAULT_START_WINDOW.as_secs())?;
        Ok(Self {
            common: config::CommonConfig::from_env("AUTH", DEFAULT_METRICS_ADDR)?,
            listen_addr: config::addr("AUTH_LISTEN_ADDR", DEFAULT_LISTEN_ADDR)?,
            store: StoreConfig::Redis {
                url: ConnectionUrl::new(config::string(
                    "REDIS_URL",
                    platform::redis_conn::DEFAULT_REDIS_URL,
                )),
                key_prefix: config::string("REDIS_KEY_PREFIX", "vaxbook:"),
            },
            sms: SmsConfig::RedisStream,
            session_url: config::string("VAXBOOK_SESSION_URL", DEFAULT_SESSION_URL),
            person_key_secret: config::production_secret(
                "AUTH_PERSON_KEY_SECRET",
                DEV_PERSON_KEY_SECRET,
            )?,
            signing_key_file: Some(signing_key_file),
            retired_signing_key_files: config::var("AUTH_RETIRED_SIGNING_KEY_FILES")
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|path| !path.is_empty())
                        .map(PathBuf::from)
                        .collect()
                })
                .unwrap_or_default(),
            token_ttl: config::seconds("AUTH_TOKEN_TTL_SECS", DEFAULT_TOKEN_TTL.as_secs())?,
            otp_ttl: config::seconds("AUTH_OTP_TTL_SECS", DEFAULT_OTP_TTL.as_secs())?,
            otp_max_attempts: config::parse("AUTH_OTP_MAX_ATTEMPTS", DEFAULT_OTP_MAX_ATTEMPTS)?,
            simple_cert_issuers: simple_cert_issuers_from(config::var)?,
            assertion_ttl: config::seconds(
                "AUTH_ASSERTION_TTL_SECS",
                DEFAULT_ASSERTION_TTL.as_secs(),
            )?,
            start_limit: config::parse("AUTH_START_LIMIT", DEFAULT_START_LIMIT)?,
            start_window,
            request_timeout: Duration::from_millis(config::parse("VAXBOOK_GRPC_TIMEOUT_MS", 5000)?),
            guards: GuardConfig::from_env(start_window)?,
            financial_cert_roots: financial_cert_roots_from_env()?,
            provider_health: provider_health_from_env()?,
            dev_mode: false,
            clock: Arc::new(SystemClock),
            staff_database: config::var("AUTH_DATABASE_URL").map(ConnectionUrl::new),
        })
    }

    /// The dev run's settings, listening on `listen_addr`: in-process store, the dev SMS
    /// outbox, clock and stand-in Kakao/Naver/PASS apps of `hooks`, the development secret, a
    /// signing key generated at start, session-svc at its loopback default, default limits.
    /// Callers override what differs (`store` for a Redis-backed run, `session_url`).
    pub fn local_dev(listen_addr: SocketAddr, hooks: &platform::dev::DevHooks) -> Self {
        Self {
            common: config::CommonConfig::local(),
            listen_addr,
            store: StoreConfig::Memory,
            sms: SmsConfig::Dev(hooks.sms.clone()),
            session_url: DEFAULT_SESSION_URL.to_owned(),
            person_key_secret: Secret::new(DEV_PERSON_KEY_SECRET),
            signing_key_file: None,
            retired_signing_key_files: Vec::new(),
            token_ttl: DEFAULT_TOKEN_TTL,
            otp_ttl: DEFAULT_OTP_TTL,
            otp_max_attempts: DEFAULT_OTP_MAX_ATTEMPTS,
            simple_cert_issuers: Self::dev_simple_cert_issuers(&hooks.idp),
            assertion_ttl: DEFAULT_ASSERTION_TTL,
            start_limit: DEFAULT_START_LIMIT,
            start_window: DEFAULT_START_WINDOW,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            guards: GuardConfig::local_dev(hooks, DEFAULT_START_WINDOW),
            financial_cert_roots: Self::dev_financial_cert_roots(&hooks.financial_ca),
            provider_health: providers::HealthThresholds::default(),
            dev_mode: true,
            clock: hooks.clock.clone(),
            staff_database: None,
        }
    }

    /// The dev run's stand-in CA as the one trusted root; it learns here how auth-svc names
    /// people in certificates (the development person-key secret).
    pub fn dev_financial_cert_roots(
        ca: &platform::dev_ca::DevFinancialCa,
    ) -> Option<providers::TrustedRoots> {
        ca.set_subject_identifier(Arc::new(|rrn: &str| {
            let rrn = crate::domain::Rrn::parse(rrn).ok()?;
            let key = crate::domain::derive_person_key(DEV_PERSON_KEY_SECRET.as_bytes(), &rrn);
            providers::financial_cert::subject_identifier(&key)
        }));
        let root = ca
            .root_der()
            .inspect_err(|error| tracing::warn!(%error, "the dev financial CA is unavailable"))
            .ok()?;
        providers::TrustedRoots::from_der(&[root]).ok()
    }

    /// The keys of the dev run's stand-in providers, for [`Config::simple_cert_issuers`].
    pub fn dev_simple_cert_issuers(
        identity_providers: &platform::dev::DevIdentityProviders,
    ) -> HashMap<String, Jwks> {
        platform::idp::SIMPLE_CERT_PROVIDERS
            .iter()
            .filter_map(|provider| {
                identity_providers
                    .jwks(provider)
                    .map(|jwks| ((*provider).to_owned(), jwks))
            })
            .collect()
    }

    /// Provider → key ids, for `Debug` (public keys are no secret, but they are noise).
    fn issuer_kids(&self) -> BTreeMap<&str, Vec<&str>> {
        self.simple_cert_issuers
            .iter()
            .map(|(provider, jwks)| {
                let kids = jwks.keys.iter().map(|key| key.kid.as_str()).collect();
                (provider.as_str(), kids)
            })
            .collect()
    }

    /// Refuses what production must not run with, and nonsensical limits.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.guards.check(self.dev_mode)?;
        if !self.dev_mode {
            if self.store == StoreConfig::Memory {
                return Err(ConfigError::MemoryStoreOutsideDev);
            }
            if matches!(self.sms, SmsConfig::Dev(_)) {
                return Err(ConfigError::DevSmsOutsideDev);
            }
            if self.person_key_secret.expose() == DEV_PERSON_KEY_SECRET {
                return Err(ConfigError::DevPersonKeySecret);
            }
            if self.signing_key_file.is_none() {
                return Err(ConfigError::SigningKeyFileRequired);
            }
        }
        if self.person_key_secret.expose().is_empty() {
            return Err(ConfigError::EmptyPersonKeySecret);
        }
        if self.otp_max_attempts == 0 || self.start_limit == 0 {
            return Err(ConfigError::ZeroLimit);
        }
        if self.otp_ttl.is_zero()
            || self.token_ttl.is_zero()
            || self.start_window.is_zero()
            || self.assertion_ttl.is_zero()
        {
            return Err(ConfigError::ZeroDuration);
        }
        if let Some(provider) = self
            .simple_cert_issuers
            .keys()
            .find(|provider| !platform::idp::SIMPLE_CERT_PROVIDERS.contains(&provider.as_str()))
        {
            return Err(ConfigError::UnknownIssuer(provider.clone()));
        }
        Ok(())
    }

    /// The simple-certificate providers to enable: those with at least one trusted key.
    pub(crate) fn enabled_simple_cert_providers(
        &self,
    ) -> impl Iterator<Item = (ProviderKind, &Jwks)> {
        ProviderKind::SIMPLE_CERT.into_iter().filter_map(|kind| {
            self.simple_cert_issuers
                .get(kind.name())
                .filter(|jwks| !jwks.keys.is_empty())
                .map(|jwks| (kind, jwks))
        })
    }
}

/// The environment variable naming the JWKS file of a simple-certificate provider, e.g.
/// `AUTH_IDP_KAKAO_JWKS_FILE`.
pub fn jwks_file_variable(provider: ProviderKind) -> String {
    format!(
        "AUTH_IDP_{}_JWKS_FILE",
        provider.name().to_ascii_uppercase()
    )
}

/// Reads the trusted keys of every simple-certificate provider whose `AUTH_IDP_*_JWKS_FILE`
/// `lookup` returns a path; an unreadable or malformed file is an error naming the variable.
/// `lookup` is the environment in production (`platform::config::var`) and a map in tests.
pub fn simple_cert_issuers_from(
    lookup: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<HashMap<String, Jwks>> {
    let mut issuers = HashMap::new();
    for kind in ProviderKind::SIMPLE_CERT {
        let variable = jwks_file_variable(kind);
        if let Some(path) = lookup(&variable) {
            let jwks = providers::read_jwks_file(&variable, Path::new(path.trim()))?;
            issuers.insert(kind.name().to_owned(), jwks);
        }
    }
    Ok(issuers)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::process::Command;

    use super::*;

    fn dev_hooks() -> platform::dev::DevHooks {
        platform::dev::DevHooks::new(chrono::Utc::now())
    }

    fn loopback() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    /// Set in the child process [`production_environment_defaults`] starts.
    const CHILD_MARKER: &str = "AUTH_SVC_CONFIG_TEST_CHILD";

    /// `from_env` reads the process environment, which a test may not change (no `unsafe`
    /// here): the test runs itself again as a child process with a valid production
    /// environment, and the child makes the assertions.
    #[test]
    fn the_environment_defaults_are_production_shaped() {
        if config::var(CHILD_MARKER).is_none() {
            let key_file = std::env::temp_dir().join(format!(
                "auth-svc-config-test-{}.pem",
                uuid::Uuid::new_v4().simple()
            ));
            let output = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "config::tests::the_environment_defaults_are_production_shaped",
                    "--nocapture",
                ])
                .env(CHILD_MARKER, "1")
                .env("AUTH_PERSON_KEY_SECRET", "person-key-secret-for-the-test")
                .env("AUTH_SIGNING_KEY_FILE", &key_file)
                .env("AUTH_CARRIER_CHECK_URL", "http://127.0.0.1:9/check")
                .output()
                .unwrap();
            let shown = format!(
                "{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(output.status.success(), "{shown}");
            assert!(shown.contains("1 passed"), "{shown}");
            return;
        }
        let config = Config::from_env().unwrap();
        assert!(!config.dev_mode);
        assert!(matches!(config.store, StoreConfig::Redis { .. }));
        assert!(matches!(config.sms, SmsConfig::RedisStream));
        let unset = |name: &str| config::var(name).is_none();
        if unset("AUTH_TOKEN_TTL_SECS") {
            assert_eq!(config.token_ttl, Duration::from_secs(1200));
        }
        if unset("AUTH_OTP_TTL_SECS") {
            assert_eq!(config.otp_ttl, Duration::from_secs(180));
        }
        if unset("AUTH_START_LIMIT") && unset("AUTH_START_WINDOW_SECS") {
            assert_eq!(config.start_limit, 5);
            assert_eq!(config.start_window, Duration::from_secs(600));
        }
        if unset("AUTH_LISTEN_ADDR") {
            assert_eq!(config.listen_addr.port(), 50051);
        }
        if unset("AUTH_ASSERTION_TTL_SECS") {
            assert_eq!(config.assertion_ttl, Duration::from_secs(300));
        }
        if ProviderKind::SIMPLE_CERT
            .iter()
            .all(|kind| unset(&jwks_file_variable(*kind)))
        {
            assert!(config.simple_cert_issuers.is_empty());
        }
        assert!(!format!("{config:?}").contains(config.person_key_secret.expose()));
        assert!(config.check().is_ok());
    }

    #[test]
    fn debug_shows_no_secret_and_no_redis_password() {
        let mut config = Config::local_dev(loopback(), &dev_hooks());
        config.dev_mode = false;
        config.person_key_secret = Secret::new("a-person-key-secret-nobody-sees");
        config.common.dev_operator_key = Some(Secret::new("an-operator-key-nobody-sees"));
        config.store = StoreConfig::Redis {
            url: ConnectionUrl::new("redis://app:redis-password-nobody-sees@cache:6379/0"),
            key_prefix: "vaxbook:".to_owned(),
        };
        config.session_url = "http://svc:session-password-nobody-sees@session:50052".to_owned();
        let shown = format!("{config:?}");
        for secret in [
            "a-person-key-secret-nobody-sees",
            "an-operator-key-nobody-sees",
            "redis-password-nobody-sees",
            "session-password-nobody-sees",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("redis://app:***@cache:6379/0"), "{shown}");
        let pretty = format!("{config:#?}");
        assert!(!pretty.contains("nobody-sees"), "{pretty}");
    }

    #[test]
    fn the_dev_sms_outbox_is_not_printed() {
        let hooks = dev_hooks();
        hooks.sms.push(platform::dev::SentSms {
            to: "010-1234-5678".to_owned(),
            body: "code 123456".to_owned(),
            otp: "123456".to_owned(),
            sent_at: String::new(),
        });
        let shown = format!("{:?}", Config::local_dev(loopback(), &hooks));
        assert!(!shown.contains("5678"), "{shown}");
        assert!(!shown.contains("123456"), "{shown}");
    }

    #[test]
    fn production_refuses_the_development_stand_ins() {
        let production = || {
            let mut config = Config::local_dev(loopback(), &dev_hooks());
            config.dev_mode = false;
            config.store = StoreConfig::Redis {
                url: ConnectionUrl::new(platform::redis_conn::DEFAULT_REDIS_URL),
                key_prefix: "vaxbook:".to_owned(),
            };
            config.sms = SmsConfig::RedisStream;
            config.person_key_secret = Secret::new("a-production-person-key-secret");
            config.signing_key_file = Some(PathBuf::from("/run/secrets/auth-signing-key.pem"));
            config.guards = GuardConfig::http("http://agency:8080/check", config.start_window);
            config
        };
        assert!(production().check().is_ok());
        let mut config = production();
        config.person_key_secret = Secret::new(DEV_PERSON_KEY_SECRET);
        let error = config.check().unwrap_err();
        assert!(
            error.to_string().contains("AUTH_PERSON_KEY_SECRET"),
            "{error}"
        );
        let mut config = production();
        config.signing_key_file = None;
        let error = config.check().unwrap_err();
        assert!(
            error.to_string().contains("AUTH_SIGNING_KEY_FILE"),
            "{error}"
        );
        // No silent skip of the carrier check: the dev directory is the dev run's only.
        let mut config = production();
        config.guards = GuardConfig::local_dev(&dev_hooks(), config.start_window);
        let error = config.check().unwrap_err();
        assert!(
            error.to_string().contains("AUTH_CARRIER_CHECK_URL"),
            "{error}"
        );
        // The dev run keeps both development defaults.
        assert!(Config::local_dev(loopback(), &dev_hooks()).check().is_ok());
    }

    #[test]
    fn nonsensical_limits_are_refused() {
        let mut config = Config::local_dev(loopback(), &dev_hooks());
        assert!(config.check().is_ok());
        config.otp_max_attempts = 0;
        assert!(config.check().is_err());
        config.otp_max_attempts = 5;
        config.otp_ttl = Duration::ZERO;
        assert!(config.check().is_err());
        config.otp_ttl = Duration::from_secs(180);
        config.assertion_ttl = Duration::ZERO;
        assert!(config.check().is_err());
        config.assertion_ttl = Duration::from_secs(300);
        config
            .simple_cert_issuers
            .insert("financial_cert".to_owned(), Jwks::default());
        assert!(config.check().is_err());
    }

    /// A unique file in the temp directory, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn with(contents: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("auth-svc-jwks-{}.json", uuid::Uuid::new_v4()));
            std::fs::write(&path, contents).unwrap();
            Self(path)
        }

        fn path(&self) -> String {
            self.0.display().to_string()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn provider_keys_are_read_from_the_files_the_variables_name() {
        let hooks = dev_hooks();
        let idp = &hooks.idp;
        let kakao = idp.jwks("kakao").unwrap();
        let pass = idp.jwks("pass").unwrap();
        let kakao_file = TempFile::with(&serde_json::to_string(&kakao).unwrap());
        let pass_file = TempFile::with(&serde_json::to_string(&pass).unwrap());
        let env = HashMap::from([
            ("AUTH_IDP_KAKAO_JWKS_FILE", kakao_file.path()),
            ("AUTH_IDP_PASS_JWKS_FILE", pass_file.path()),
        ]);
        let issuers = simple_cert_issuers_from(|name| env.get(name).cloned()).unwrap();
        assert_eq!(issuers.len(), 2);
        assert_eq!(issuers["kakao"], kakao);
        assert_eq!(issuers["pass"], pass);
        assert!(!issuers.contains_key("naver"));

        let mut config = Config::local_dev(loopback(), &hooks);
        config.simple_cert_issuers = issuers;
        let enabled: Vec<ProviderKind> = config
            .enabled_simple_cert_providers()
            .map(|(kind, _)| kind)
            .collect();
        assert_eq!(enabled, [ProviderKind::Kakao, ProviderKind::Pass]);
        let shown = format!("{config:?}");
        assert!(shown.contains("dev-kakao"), "{shown}");
        assert!(!shown.contains(&kakao.keys[0].x), "{shown}");
    }

    #[test]
    fn an_unreadable_or_malformed_key_file_stops_the_start_naming_the_variable() {
        let garbage = TempFile::with("{\"keys\": [{\"kty\": \"RSA\"}]}");
        let missing = std::env::temp_dir()
            .join(format!("auth-svc-missing-{}.json", uuid::Uuid::new_v4()))
            .display()
            .to_string();
        for (variable, path) in [
            ("AUTH_IDP_NAVER_JWKS_FILE", garbage.path()),
            ("AUTH_IDP_KAKAO_JWKS_FILE", missing),
        ] {
            let error = simple_cert_issuers_from(|name| (name == variable).then(|| path.clone()))
                .unwrap_err();
            assert!(format!("{error:#}").contains(variable), "{error:#}");
        }
    }

    #[test]
    fn the_dev_settings_trust_every_stand_in_provider() {
        let hooks = dev_hooks();
        let config = Config::local_dev(loopback(), &hooks);
        for provider in platform::idp::SIMPLE_CERT_PROVIDERS {
            assert_eq!(
                config.simple_cert_issuers.get(*provider),
                hooks.idp.jwks(provider).as_ref()
            );
        }
        assert_eq!(config.enabled_simple_cert_providers().count(), 3);
        assert!(config.dev_mode);
        assert_eq!(config.store, StoreConfig::Memory);
        assert!(config.signing_key_file.is_none());
        assert_eq!(config.person_key_secret.expose(), DEV_PERSON_KEY_SECRET);
    }
}
