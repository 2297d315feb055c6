//! auth-svc: identity verification (R1, R2) and access tokens. It validates the identity data a
//! person presents, runs the provider's challenge (a one-time code by SMS for the phone
//! provider, a nonce the Kakao, Naver or PASS app signs into an assertion for the simple
//! certificates), claims the person's device lock through session-svc and signs a short-lived
//! EdDSA access token that every other component verifies locally against its JWKS. The
//! resident registration number never leaves this service in clear and is never stored or
//! logged: other services know the person by a keyed hash (the person key) and the birth date.

pub mod accounts;
pub mod carrier;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod limits;
pub mod person_keys;
pub mod providers;
pub mod proxy;
pub mod service;
pub mod session;
pub mod sms;
pub mod store;
pub mod tokens;

use std::{sync::Arc, time::Duration};

use proto::auth::v1::auth_service_server::AuthServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crate::config::{Config, ConfigError, DEV_PERSON_KEY_SECRET, SmsConfig, StoreConfig};
use crate::providers::{
    FinancialCertProvider, PhoneProvider, ProviderRegistry, SimpleCertProvider, SimpleCertSettings,
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
/// How long start-up waits for Redis.
const REDIS_STARTUP_WAIT: Duration = Duration::from_secs(30);

/// Serves `AuthService` on `listener` (and `/metrics` on `config.common.metrics_addr`) until
/// `shutdown` is cancelled.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.check()?;
    // The key first: a missing or malformed key file stops the start before Redis is waited for.
    let signer = TokenSigner::load(
        config.signing_key_file.as_deref(),
        &config.retired_signing_key_files,
    )
    .await?;
    tracing::info!(
        kid = signer.kid(),
        "access tokens and grants signed with key"
    );
    // The one key, published over vaxbook.keys.v1 for the services that verify auth's grants.
    let keys_server =
        platform::grants::KeysServer::new(platform::auth::ISSUER, signer.keys().clone());
    let (store, redis): (Arc<dyn ChallengeStore>, _) = match &config.store {
        StoreConfig::Redis { url, key_prefix } => {
            let connection =
                platform::redis_conn::connect(url.expose(), REDIS_STARTUP_WAIT).await?;
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

    let limits = Arc::new(config.abuse_limits(store.clone()));
    // Proxy grants (R1): same key and limits; the booker's token is verified against auth's own
    // keys.
    let proxy_service = proxy::ProxyGrpc::new(
        Arc::new(proxy::ProxyResolver::new(
            signer.grant_issuer(),
            config.clock.clone(),
            config.person_key_secret.expose().as_bytes().to_vec(),
            limits.clone(),
        )),
        Arc::new(platform::auth::TokenVerifier::new(
            Arc::new(platform::grants::StaticKeysSource(signer.jwks())),
            config.clock.clone(),
        )),
    );
    let mut providers = ProviderRegistry::with_thresholds(config.provider_health);
    let phone: Arc<PhoneProvider> = Arc::new(PhoneProvider::from_config(
        &config,
        store.clone(),
        sms,
        limits.clone(),
    )?);
    providers.register(phone.clone());
    // The call-center channel (R9): staff logins, caller verification (the same phone provider)
    // and the audit trail, signed with the same key.
    let staff_stores = accounts::open_stores(&config).await?;
    let staff = accounts::staff_routes(&config, &signer, &staff_stores, phone, store.clone());
    // The operators' RRN-to-person-key derivation: operator tokens verified against the same
    // key, every call in the same audit trail.
    let person_keys = person_keys::server(
        &config,
        accounts::own_grants(&signer, config.clock.clone()),
        staff_stores.audit.clone(),
    );
    for (kind, jwks) in config.enabled_simple_cert_providers() {
        providers.register(Arc::new(SimpleCertProvider::new(
            kind,
            jwks,
            store.clone(),
            config.clock.clone(),
            config.person_key_secret.expose().as_bytes(),
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

    if let Some(provider) = FinancialCertProvider::from_config(&config, store.clone()) {
        providers.register(Arc::new(provider));
    }

    let session_channel = platform::grpc::channel(&config.session_url, config.request_timeout)?;
    let verifications = Arc::new(Verifications {
        providers,
        store: store.clone(),
        sessions: Arc::new(GrpcSessionGateway::new(
            session_channel,
            signer.grant_issuer(),
            config.clock.clone(),
        )),
        tokens: TokenIssuer::new(signer, config.clock.clone(), config.token_ttl),
        clock: config.clock.clone(),
        person_key_secret: config.person_key_secret.expose().as_bytes().to_vec(),
        start_rate: StartRateLimit {
            limit: config.start_limit,
            window: config.start_window,
        },
        limits,
    });

    let routes = staff
        .add_service(AuthServiceServer::new(grpc::AuthGrpc::new(verifications)))
        .add_service(keys_server.into_service())
        .add_service(person_keys)
        .add_service(proxy_service.into_service());
    let readiness: platform::grpc::ReadinessProbe = Arc::new(move || {
        let store = store.clone();
        Box::pin(async move { store.ping().await.map_err(|err| err.to_string()) })
    });
    platform::grpc::run(
        platform::grpc::GrpcService {
            name: SERVICE_NAME,
            routes,
            health_names: vec![HEALTH_NAME, platform::audit_grpc::HEALTH_NAME],
            readiness: Some(readiness),
        },
        listener,
        &config.common,
        shutdown,
    )
    .await
}
