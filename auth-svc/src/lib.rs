//! auth-svc: identity verification (R1, R2) and access tokens. It validates the identity data a
//! person presents, runs the provider's challenge (a one-time code by SMS for the phone
//! provider, a nonce the Kakao, Naver or PASS app signs into an assertion for the simple
//! certificates), claims the person's device lock through session-svc and signs a short-lived
//! EdDSA access token that every other component verifies locally against its JWKS. The
//! resident registration number never leaves this service in clear and is never stored or
//! logged: other services know the person by a keyed hash (the person key) and the birth date.

pub mod error;
pub mod grpc;
pub mod identity;
pub mod model;
pub mod providers;
pub mod service;
pub mod session;
pub mod sms;
pub mod store;
pub mod tokens;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use platform::auth::Jwks;
use platform::clock::{SharedClock, SystemClock};
use platform::config;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::model::ProviderKind;
use crate::providers::{
    BoundDigester, PhoneProvider, PhoneProviderSettings, ProviderRegistry, SimpleCertProvider,
    SimpleCertSettings,
};
use crate::service::{StartRateLimit, Verifications};
use crate::session::GrpcSessionGateway;
use crate::sms::{DevSmsSender, RedisStreamSmsSender, SmsSender};
use crate::store::{ChallengeStore, MemoryChallengeStore, RedisChallengeStore};
use crate::tokens::{TokenIssuer, TokenSigner};

/// Short service name for logs and metrics.
pub const SERVICE_NAME: &str = "auth-svc";
/// The gRPC service name reported through `grpc.health.v1`.
pub const HEALTH_NAME: &str = "vaxbook.auth.v1.AuthService";
/// The person-key secret of local runs; production must set `AUTH_PERSON_KEY_SECRET`.
pub const DEV_PERSON_KEY_SECRET: &str = "vaxbook-local-person-key-secret";
/// How long start-up waits for Redis.
const REDIS_STARTUP_WAIT: Duration = Duration::from_secs(30);

/// Where challenges and rate counters live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    Redis {
        url: String,
        key_prefix: String,
    },
    /// In-process, for `vaxbook dev` only.
    Memory,
}

/// Where one-time codes are sent.
#[derive(Clone, Debug)]
pub enum SmsConfig {
    /// `{prefix}sms:outbox` in the Redis of [`StoreConfig::Redis`], for the SMS relay.
    RedisStream,
    /// The dev run's in-memory outbox shown on `/dev/sms`.
    Dev(Arc<platform::dev::SmsOutbox>),
}

/// Everything auth-svc needs to run.
#[derive(Clone)]
pub struct Config {
    pub common: config::CommonConfig,
    pub listen_addr: SocketAddr,
    pub store: StoreConfig,
    pub sms: SmsConfig,
    pub session_url: String,
    pub person_key_secret: String,
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
    pub dev_mode: bool,
    pub clock: SharedClock,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("common", &self.common)
            .field("listen_addr", &self.listen_addr)
            .field("store", &self.store)
            .field("sms", &self.sms)
            .field("session_url", &self.session_url)
            .field("person_key_secret", &"***")
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
            .field("dev_mode", &self.dev_mode)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the environment; unset variables take local defaults.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            common: config::CommonConfig::from_env("AUTH", "0.0.0.0:9101")?,
            listen_addr: config::addr("AUTH_LISTEN_ADDR", "0.0.0.0:50051")?,
            store: StoreConfig::Redis {
                url: config::string("REDIS_URL", platform::redis_conn::DEFAULT_REDIS_URL),
                key_prefix: config::string("REDIS_KEY_PREFIX", "vaxbook:"),
            },
            sms: SmsConfig::RedisStream,
            session_url: config::string("VAXBOOK_SESSION_URL", "http://127.0.0.1:50052"),
            person_key_secret: config::string("AUTH_PERSON_KEY_SECRET", DEV_PERSON_KEY_SECRET),
            signing_key_file: config::var("AUTH_SIGNING_KEY_FILE").map(PathBuf::from),
            retired_signing_key_files: config::var("AUTH_RETIRED_SIGNING_KEY_FILES")
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|path| !path.is_empty())
                        .map(PathBuf::from)
                        .collect()
                })
                .unwrap_or_default(),
            token_ttl: config::seconds("AUTH_TOKEN_TTL_SECS", 1200)?,
            otp_ttl: config::seconds("AUTH_OTP_TTL_SECS", 180)?,
            otp_max_attempts: config::parse("AUTH_OTP_MAX_ATTEMPTS", 5)?,
            simple_cert_issuers: simple_cert_issuers_from(config::var)?,
            assertion_ttl: config::seconds("AUTH_ASSERTION_TTL_SECS", 300)?,
            start_limit: config::parse("AUTH_START_LIMIT", 5)?,
            start_window: config::seconds("AUTH_START_WINDOW_SECS", 600)?,
            request_timeout: Duration::from_millis(config::parse("VAXBOOK_GRPC_TIMEOUT_MS", 5000)?),
            dev_mode: false,
            clock: Arc::new(SystemClock),
        })
    }

    /// The dev run's settings: in-process store, in-memory SMS outbox, the shared clock, the
    /// dev stand-ins of Kakao, Naver and PASS trusted, loopback listeners on ephemeral ports,
    /// default limits.
    pub fn local_dev(
        clock: SharedClock,
        sms_outbox: Arc<platform::dev::SmsOutbox>,
        identity_providers: &platform::dev::DevIdentityProviders,
        session_url: impl Into<String>,
    ) -> Self {
        Self {
            common: config::CommonConfig::local(),
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            store: StoreConfig::Memory,
            sms: SmsConfig::Dev(sms_outbox),
            session_url: session_url.into(),
            person_key_secret: DEV_PERSON_KEY_SECRET.to_owned(),
            signing_key_file: None,
            retired_signing_key_files: Vec::new(),
            token_ttl: Duration::from_secs(1200),
            otp_ttl: Duration::from_secs(180),
            otp_max_attempts: 5,
            simple_cert_issuers: Self::dev_simple_cert_issuers(identity_providers),
            assertion_ttl: Duration::from_secs(300),
            start_limit: 5,
            start_window: Duration::from_secs(600),
            request_timeout: Duration::from_secs(5),
            dev_mode: true,
            clock,
        }
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

    fn check(&self) -> anyhow::Result<()> {
        if !self.dev_mode {
            if self.store == StoreConfig::Memory {
                anyhow::bail!(
                    "the in-process store is only for `vaxbook dev`; set DATABASE_URL/REDIS_URL"
                );
            }
            if matches!(self.sms, SmsConfig::Dev(_)) {
                anyhow::bail!(
                    "the in-memory SMS outbox is only for `vaxbook dev`; production sends through the Redis SMS outbox"
                );
            }
            if self.person_key_secret == DEV_PERSON_KEY_SECRET {
                tracing::warn!(
                    "AUTH_PERSON_KEY_SECRET is the local default: person keys are guessable, set a secret"
                );
            }
        }
        if self.person_key_secret.is_empty() {
            anyhow::bail!("AUTH_PERSON_KEY_SECRET must not be empty");
        }
        if self.otp_max_attempts == 0 || self.start_limit == 0 {
            anyhow::bail!("AUTH_OTP_MAX_ATTEMPTS and AUTH_START_LIMIT must be at least 1");
        }
        if self.otp_ttl.is_zero()
            || self.token_ttl.is_zero()
            || self.start_window.is_zero()
            || self.assertion_ttl.is_zero()
        {
            anyhow::bail!(
                "AUTH_OTP_TTL_SECS, AUTH_TOKEN_TTL_SECS, AUTH_START_WINDOW_SECS and AUTH_ASSERTION_TTL_SECS must be positive"
            );
        }
        for provider in self.simple_cert_issuers.keys() {
            if !platform::idp::SIMPLE_CERT_PROVIDERS.contains(&provider.as_str()) {
                anyhow::bail!(
                    "simple_cert_issuers names {provider:?}, which is not kakao, naver or pass"
                );
            }
        }
        Ok(())
    }

    /// The simple-certificate providers to enable: those with at least one trusted key.
    fn enabled_simple_cert_providers(&self) -> impl Iterator<Item = (ProviderKind, &Jwks)> {
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

/// Serves `AuthService` on `listener` (and `/metrics` on `config.common.metrics_addr`) until
/// `shutdown` is cancelled.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.check()?;
    let (store, redis): (Arc<dyn ChallengeStore>, _) = match &config.store {
        StoreConfig::Redis { url, key_prefix } => {
            let connection = platform::redis_conn::connect(url, REDIS_STARTUP_WAIT).await?;
            let store = RedisChallengeStore::new(connection.clone(), key_prefix.clone());
            (Arc::new(store), Some((connection, key_prefix.clone())))
        }
        StoreConfig::Memory => (
            Arc::new(MemoryChallengeStore::new(config.clock.clone())),
            None,
        ),
    };
    let sms: Arc<dyn SmsSender> = match (&config.sms, &redis) {
        (SmsConfig::Dev(outbox), _) => {
            Arc::new(DevSmsSender::new(outbox.clone(), config.clock.clone()))
        }
        (SmsConfig::RedisStream, Some((connection, key_prefix))) => Arc::new(
            RedisStreamSmsSender::new(connection.clone(), key_prefix, config.clock.clone()),
        ),
        (SmsConfig::RedisStream, None) => {
            anyhow::bail!("the Redis SMS outbox needs the Redis store (REDIS_URL)")
        }
    };

    let mut providers = ProviderRegistry::new();
    providers.register(Arc::new(PhoneProvider::new(
        store.clone(),
        sms,
        config.clock.clone(),
        BoundDigester::for_codes(config.person_key_secret.as_bytes()),
        PhoneProviderSettings {
            otp_ttl: config.otp_ttl,
            max_attempts: config.otp_max_attempts,
        },
    )));
    for (kind, jwks) in config.enabled_simple_cert_providers() {
        providers.register(Arc::new(SimpleCertProvider::new(
            kind,
            jwks,
            store.clone(),
            config.clock.clone(),
            config.person_key_secret.as_bytes(),
            SimpleCertSettings {
                assertion_ttl: config.assertion_ttl,
                max_attempts: config.otp_max_attempts,
            },
        )?));
        tracing::info!(
            provider = kind.name(),
            "simple-certificate provider enabled"
        );
    }

    let signer = TokenSigner::load(config.signing_key_file.as_deref())
        .await?
        .with_retired(&config.retired_signing_key_files)
        .await?;
    tracing::info!(kid = signer.kid(), "access tokens signed with key");
    let session_channel = platform::grpc::channel(&config.session_url, config.request_timeout)?;
    let verifications = Arc::new(Verifications {
        providers,
        store: store.clone(),
        sessions: Arc::new(GrpcSessionGateway::new(session_channel)),
        tokens: TokenIssuer::new(signer, config.clock.clone(), config.token_ttl),
        clock: config.clock.clone(),
        person_key_secret: config.person_key_secret.clone().into_bytes(),
        start_rate: StartRateLimit {
            limit: config.start_limit,
            window: config.start_window,
        },
    });

    let routes = tonic::service::Routes::new(
        proto::auth::v1::auth_service_server::AuthServiceServer::new(grpc::AuthGrpc::new(
            verifications,
        )),
    );
    let readiness: platform::grpc::ReadinessProbe = Arc::new(move || {
        let store = store.clone();
        Box::pin(async move { store.ping().await.map_err(|err| err.to_string()) })
    });
    platform::grpc::run(
        platform::grpc::GrpcService {
            name: SERVICE_NAME,
            routes,
            health_names: vec![HEALTH_NAME],
            readiness: Some(readiness),
        },
        listener,
        &config.common,
        shutdown,
    )
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_environment_defaults_are_production_shaped() {
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
        assert!(!format!("{config:?}").contains(&config.person_key_secret));
    }

    #[test]
    fn nonsensical_limits_are_refused() {
        let mut config = Config::local_dev(
            Arc::new(SystemClock),
            Arc::new(platform::dev::SmsOutbox::default()),
            &platform::dev::DevIdentityProviders::generate(),
            "http://127.0.0.1:1",
        );
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
        let idp = platform::dev::DevIdentityProviders::generate();
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

        let mut config = Config::local_dev(
            Arc::new(SystemClock),
            Arc::new(platform::dev::SmsOutbox::default()),
            &idp,
            "http://127.0.0.1:1",
        );
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
        let idp = platform::dev::DevIdentityProviders::generate();
        let config = Config::local_dev(
            Arc::new(SystemClock),
            Arc::new(platform::dev::SmsOutbox::default()),
            &idp,
            "http://127.0.0.1:1",
        );
        for provider in platform::idp::SIMPLE_CERT_PROVIDERS {
            assert_eq!(
                config.simple_cert_issuers.get(*provider),
                idp.jwks(provider).as_ref()
            );
        }
        assert_eq!(config.enabled_simple_cert_providers().count(), 3);
    }
}
