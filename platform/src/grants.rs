//! Signed grants: the one mechanism by which a service proves something to another without a
//! call on the hot path — auth-svc's proof that a person just verified on a device, the person a
//! proxy books for, a call-center agent's verified caller, session-svc's admission from the
//! waiting room, scheduling-svc's eligibility.
//!
//! A grant is a short-lived EdDSA-signed JWT with a typed claim set per kind ([`GrantKind`]),
//! an issuer (the owning service), an audience (the service meant to accept it), an expiry and a
//! unique id (`jti`, for single use where the rule needs it). The issuer signs with its
//! [`SigningKeys`] and publishes their public halves over `vaxbook.keys.v1.KeysService`
//! ([`KeysServer`]); the verifier caches them ([`KeyCache`]) and checks every grant locally.
//! A grant is never accepted as an access token and one kind is never accepted as another:
//! the audience of grants is never the access tokens' audience, and `kind` is checked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};

use crate::auth::{Jwk, Jwks, JwksSource};
use crate::clock::SharedClock;
use crate::problem::{Problem, ProblemKind};

/// The JWT `typ` of every grant, so nothing mistakes one for an access token.
pub const GRANT_TYP: &str = "vaxbook-grant+jwt";

/// One kind of grant: its name, who issues it, who accepts it, and its claims.
pub trait GrantKind: Serialize + DeserializeOwned + Send + Sync {
    /// Stable name, e.g. `device-proof`, `admission`.
    const KIND: &'static str;
    /// The issuing service, e.g. `vaxbook-auth`.
    const ISSUER: &'static str;
    /// The accepting service, e.g. `vaxbook-session`. Never the access tokens' audience.
    const AUDIENCE: &'static str;
}

/// The signed envelope: the registered claims around a kind's own claims.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Envelope<C> {
    iss: String,
    aud: String,
    kind: String,
    iat: i64,
    exp: i64,
    jti: String,
    #[serde(flatten)]
    claims: C,
}

/// A grant as issued: the compact token to hand over, its id and expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedGrant {
    pub token: String,
    pub id: String,
    pub expires_at: DateTime<Utc>,
}

/// A grant that passed every check: its claims, id and expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedGrant<C> {
    pub claims: C,
    pub id: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Why a grant could not be issued (a signing failure: never the caller's fault).
#[derive(Debug, thiserror::Error)]
#[error("signing a {kind} grant")]
pub struct GrantSigningError {
    kind: &'static str,
    #[source]
    source: jsonwebtoken::errors::Error,
}

/// A service's signing key, its id and public half, and the public halves of retired keys that
/// are still published until what they signed has expired.
pub struct SigningKeys {
    encoding_key: EncodingKey,
    jwk: Jwk,
    retired: Vec<Jwk>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("kid", &self.jwk.kid)
            .field("retired", &self.retired.len())
            .finish_non_exhaustive()
    }
}

/// A new Ed25519 signing key as a PKCS#8 PEM document.
pub fn generate_pem() -> anyhow::Result<String> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let pem = key
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|err| anyhow::anyhow!("encoding the signing key: {err}"))?;
    Ok(pem.to_string())
}

impl SigningKeys {
    /// A fresh random key (the dev run and tests only).
    pub fn generate() -> anyhow::Result<Self> {
        Self::from_signing_key(&SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// A key from a PKCS#8 PEM document (`vaxbook keygen`, `openssl genpkey -algorithm ed25519`).
    pub fn from_pkcs8_pem(pem: &str) -> anyhow::Result<Self> {
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|err| {
            anyhow::anyhow!("the signing key is not an Ed25519 PKCS#8 PEM: {err}")
        })?;
        Self::from_signing_key(&key)
    }

    /// The key in the PKCS#8 PEM file at `path`; the error names `variable` and the path.
    pub async fn from_file(variable: &str, path: &Path) -> anyhow::Result<Self> {
        let pem = tokio::fs::read_to_string(path)
            .await
            .map_err(|err| anyhow::anyhow!("{variable}: cannot read {}: {err}", path.display()))?;
        Self::from_pkcs8_pem(&pem)
            .map_err(|err| anyhow::anyhow!("{variable} ({}): {err}", path.display()))
    }

    /// Also publishes the public halves of the keys in `retired_paths` (PKCS#8 PEM files).
    pub async fn with_retired(mut self, retired_paths: &[PathBuf]) -> anyhow::Result<Self> {
        for path in retired_paths {
            let retired = Self::from_file("retired signing key", path).await?;
            if retired.jwk.kid != self.jwk.kid {
                self.retired.push(retired.jwk);
            }
        }
        Ok(self)
    }

    fn from_signing_key(key: &SigningKey) -> anyhow::Result<Self> {
        let pem = key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|err| anyhow::anyhow!("encoding the signing key: {err}"))?;
        let encoding_key = EncodingKey::from_ed_pem(pem.as_bytes())
            .map_err(|err| anyhow::anyhow!("loading the signing key: {err}"))?;
        let public = key.verifying_key().to_bytes();
        let x = URL_SAFE_NO_PAD.encode(public);
        // The key id is a digest of the public key: stable across restarts and replicas.
        let kid = {
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(public);
            URL_SAFE_NO_PAD.encode(&digest[..12])
        };
        Ok(Self {
            encoding_key,
            jwk: Jwk {
                kty: "OKP".to_owned(),
                crv: "Ed25519".to_owned(),
                x,
                kid,
                alg: "EdDSA".to_owned(),
                use_: "sig".to_owned(),
            },
            retired: Vec::new(),
        })
    }

    /// The id of the key that signs now.
    pub fn kid(&self) -> &str {
        &self.jwk.kid
    }

    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding_key
    }

    /// Every published public key: the signing one first, then the retired ones.
    pub fn jwks(&self) -> Jwks {
        let mut keys = vec![self.jwk.clone()];
        keys.extend(self.retired.iter().cloned());
        Jwks { keys }
    }
}

/// Issues grants of any kind whose issuer is this service.
#[derive(Clone, Debug)]
pub struct GrantIssuer {
    keys: Arc<SigningKeys>,
}

impl GrantIssuer {
    pub fn new(keys: Arc<SigningKeys>) -> Self {
        Self { keys }
    }

    pub fn keys(&self) -> &Arc<SigningKeys> {
        &self.keys
    }

    /// Signs `claims` as a grant of kind `C`, valid from `now` for `ttl`.
    pub fn issue<C: GrantKind>(
        &self,
        claims: &C,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<IssuedGrant, GrantSigningError> {
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(60));
        let expires_at = now + ttl;
        let id = uuid::Uuid::new_v4().to_string();
        let envelope = Envelope {
            iss: C::ISSUER.to_owned(),
            aud: C::AUDIENCE.to_owned(),
            kind: C::KIND.to_owned(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            jti: id.clone(),
            claims,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.keys.kid().to_owned());
        header.typ = Some(GRANT_TYP.to_owned());
        let token = jsonwebtoken::encode(&header, &envelope, self.keys.encoding_key()).map_err(
            |source| GrantSigningError {
                kind: C::KIND,
                source,
            },
        )?;
        Ok(IssuedGrant {
            token,
            id,
            expires_at: DateTime::from_timestamp(expires_at.timestamp(), 0).unwrap_or(expires_at),
        })
    }
}

/// Public keys fetched from their publisher, cached, fetched again when a token names an
/// unknown key id (at most once per `min_refresh_interval`, so garbage cannot hammer the
/// publisher).
pub struct KeyCache {
    source: Arc<dyn JwksSource>,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_refresh: Mutex<Option<Instant>>,
    min_refresh_interval: Duration,
}

impl KeyCache {
    pub fn new(source: Arc<dyn JwksSource>) -> Self {
        Self {
            source,
            keys: RwLock::new(HashMap::new()),
            last_refresh: Mutex::new(None),
            min_refresh_interval: Duration::from_secs(1),
        }
    }

    /// The key named `kid`, refreshing once if it is not known yet. `None`: unknown key.
    pub async fn key(&self, kid: &str) -> Result<Option<DecodingKey>, Problem> {
        if let Some(key) = self.keys.read().await.get(kid).cloned() {
            return Ok(Some(key));
        }
        self.refresh().await?;
        Ok(self.keys.read().await.get(kid).cloned())
    }

    async fn refresh(&self) -> Result<(), Problem> {
        let mut last = self.last_refresh.lock().await;
        if let Some(at) = *last
            && at.elapsed() < self.min_refresh_interval
        {
            return Ok(());
        }
        let jwks = self.source.fetch().await.map_err(|reason| {
            tracing::warn!(%reason, "cannot refresh the verification keys");
            Problem::new(
                ProblemKind::Unavailable,
                "the verification keys cannot be fetched",
            )
            .with_retry_after(Duration::from_secs(1))
        })?;
        let mut keys = HashMap::new();
        for jwk in jwks.keys {
            if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
                continue;
            }
            match DecodingKey::from_ed_components(&jwk.x) {
                Ok(key) => {
                    keys.insert(jwk.kid, key);
                }
                Err(err) => {
                    tracing::warn!(kid = %jwk.kid, error = %err, "skipping a malformed key")
                }
            }
        }
        *self.keys.write().await = keys;
        *last = Some(Instant::now());
        Ok(())
    }
}

/// Verifies grants issued by one service, locally, against its cached public keys and the
/// injected clock.
pub struct GrantVerifier {
    keys: KeyCache,
    clock: SharedClock,
}

impl GrantVerifier {
    pub fn new(source: Arc<dyn JwksSource>, clock: SharedClock) -> Self {
        Self {
            keys: KeyCache::new(source),
            clock,
        }
    }

    /// Checks signature, `typ`, issuer, audience, kind and expiry of a grant of kind `C`. Every
    /// refusal is `PermissionDenied`-free `Unauthenticated` with a detail that names the grant
    /// kind and never echoes the token.
    pub async fn verify<C: GrantKind>(&self, token: &str) -> Result<VerifiedGrant<C>, Problem> {
        let refuse = |what: &str| {
            Problem::new(
                ProblemKind::Unauthenticated,
                format!("the {} grant {what}", C::KIND),
            )
        };
        let header = jsonwebtoken::decode_header(token).map_err(|_| refuse("is malformed"))?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(GRANT_TYP) {
            return Err(refuse("is not a vaxbook grant"));
        }
        let kid = header.kid.ok_or_else(|| refuse("names no key"))?;
        let key = self
            .keys
            .key(&kid)
            .await?
            .ok_or_else(|| refuse("was signed by an unknown key"))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[C::ISSUER]);
        validation.set_audience(&[C::AUDIENCE]);
        // Expiry is judged against the injected clock below, so the dev clock works too.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Envelope<C>>(token, &key, &validation)
            .map_err(|_| refuse("is not valid"))?;
        let envelope = data.claims;
        if envelope.kind != C::KIND {
            return Err(refuse("is of another kind"));
        }
        let now = self.clock.now().timestamp();
        if envelope.exp <= now {
            return Err(refuse("has expired"));
        }
        let instant = |seconds: i64| DateTime::from_timestamp(seconds, 0).unwrap_or_default();
        Ok(VerifiedGrant {
            claims: envelope.claims,
            id: envelope.jti,
            issued_at: instant(envelope.iat),
            expires_at: instant(envelope.exp),
        })
    }
}

/// The public keys of [`SigningKeys`] as the `vaxbook.keys.v1` message.
pub fn keys_response(issuer: &str, keys: &SigningKeys) -> proto::keys::v1::GetKeysResponse {
    proto::keys::v1::GetKeysResponse {
        issuer: issuer.to_owned(),
        keys: keys
            .jwks()
            .keys
            .into_iter()
            .map(|jwk| proto::keys::v1::PublicKey {
                kid: jwk.kid,
                kty: jwk.kty,
                crv: jwk.crv,
                x: jwk.x,
                alg: jwk.alg,
                key_use: jwk.use_,
            })
            .collect(),
    }
}

/// Serves `vaxbook.keys.v1.KeysService` for a service's signing keys.
#[derive(Clone, Debug)]
pub struct KeysServer {
    issuer: &'static str,
    keys: Arc<SigningKeys>,
}

impl KeysServer {
    pub fn new(issuer: &'static str, keys: Arc<SigningKeys>) -> Self {
        Self { issuer, keys }
    }

    /// The tonic service, ready for `Routes::add_service`.
    pub fn into_service(self) -> proto::keys::v1::keys_service_server::KeysServiceServer<Self> {
        proto::keys::v1::keys_service_server::KeysServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl proto::keys::v1::keys_service_server::KeysService for KeysServer {
    async fn get_keys(
        &self,
        _request: tonic::Request<proto::keys::v1::GetKeysRequest>,
    ) -> Result<tonic::Response<proto::keys::v1::GetKeysResponse>, tonic::Status> {
        Ok(tonic::Response::new(keys_response(self.issuer, &self.keys)))
    }
}

/// Fetches a service's public keys over `vaxbook.keys.v1.KeysService`.
pub struct GrpcKeysSource {
    client: proto::keys::v1::keys_service_client::KeysServiceClient<crate::grpc::TracedChannel>,
    expected_issuer: Option<&'static str>,
}

impl GrpcKeysSource {
    pub fn new(channel: impl Into<crate::grpc::GrpcChannel>) -> Self {
        Self {
            client: proto::keys::v1::keys_service_client::KeysServiceClient::with_interceptor(
                channel.into(),
                crate::telemetry::TracePropagation,
            ),
            expected_issuer: None,
        }
    }

    /// Takes the keys only from a publisher that names itself `issuer`: a URL pointed at
    /// another service's KeysService (a misconfiguration, or a service that signs grants of
    /// its own) must not make that service's keys verify `issuer`'s grants and tokens.
    pub fn expecting(mut self, issuer: &'static str) -> Self {
        self.expected_issuer = Some(issuer);
        self
    }
}

#[async_trait::async_trait]
impl JwksSource for GrpcKeysSource {
    async fn fetch(&self) -> Result<Jwks, String> {
        let mut client = self.client.clone();
        let response = client
            .get_keys(proto::keys::v1::GetKeysRequest {})
            .await
            .map_err(|status| format!("fetching the public keys: {}", status.message()))?
            .into_inner();
        if let Some(expected) = self.expected_issuer
            && response.issuer != expected
        {
            return Err(format!(
                "the keys come from {:?}, not from {expected}",
                response.issuer
            ));
        }
        Ok(Jwks {
            keys: response
                .keys
                .into_iter()
                .map(|key| Jwk {
                    kty: key.kty,
                    crv: key.crv,
                    x: key.x,
                    kid: key.kid,
                    alg: key.alg,
                    use_: key.key_use,
                })
                .collect(),
        })
    }
}

/// A fixed set of public keys, for tests and for verifying with keys the process holds itself.
pub struct StaticKeysSource(pub Jwks);

#[async_trait::async_trait]
impl JwksSource for StaticKeysSource {
    async fn fetch(&self) -> Result<Jwks, String> {
        Ok(self.0.clone())
    }
}

/// Remembers the ids of single-use grants until they expire, so a grant is accepted once.
#[async_trait::async_trait]
pub trait ReplayGuard: Send + Sync {
    /// `true` the first time `id` is presented; `false` ever after (until `expires_at`).
    async fn first_use(&self, id: &str, expires_at: DateTime<Utc>) -> Result<bool, Problem>;
}

/// [`ReplayGuard`] in process memory: for one replica (the dev run, tests). Replicated services
/// keep the ids in their shared store instead.
pub struct MemoryReplayGuard {
    clock: SharedClock,
    seen: std::sync::Mutex<HashMap<String, DateTime<Utc>>>,
}

impl MemoryReplayGuard {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            seen: std::sync::Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait::async_trait]
impl ReplayGuard for MemoryReplayGuard {
    async fn first_use(&self, id: &str, expires_at: DateTime<Utc>) -> Result<bool, Problem> {
        let now = self.clock.now();
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| Problem::new(ProblemKind::Internal, "the replay guard is unusable"))?;
        seen.retain(|_, until| *until > now);
        Ok(seen.insert(id.to_owned(), expires_at).is_none())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::clock::{Clock, SettableClock};

    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    struct DeviceProof {
        sub: String,
        dev: String,
    }

    impl GrantKind for DeviceProof {
        const KIND: &'static str = "device-proof";
        const ISSUER: &'static str = "vaxbook-auth";
        const AUDIENCE: &'static str = "vaxbook-session";
    }

    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    struct Admission {
        sub: String,
        dev: String,
    }

    impl GrantKind for Admission {
        const KIND: &'static str = "admission";
        const ISSUER: &'static str = "vaxbook-auth";
        const AUDIENCE: &'static str = "vaxbook-session";
    }

    fn setup() -> (GrantIssuer, GrantVerifier, Arc<SettableClock>) {
        let keys = Arc::new(SigningKeys::generate().unwrap());
        let clock = Arc::new(SettableClock::starting_at(
            DateTime::parse_from_rfc3339("2021-08-09T20:00:00+09:00")
                .unwrap()
                .with_timezone(&Utc),
        ));
        let verifier = GrantVerifier::new(Arc::new(StaticKeysSource(keys.jwks())), clock.clone());
        (GrantIssuer::new(keys), verifier, clock)
    }

    fn proof() -> DeviceProof {
        DeviceProof {
            sub: "person".to_owned(),
            dev: "device-1".to_owned(),
        }
    }

    #[tokio::test]
    async fn an_issued_grant_verifies_until_it_expires() {
        let (issuer, verifier, clock) = setup();
        let grant = issuer
            .issue(&proof(), clock.now(), Duration::from_secs(60))
            .unwrap();
        let verified = verifier.verify::<DeviceProof>(&grant.token).await.unwrap();
        assert_eq!(verified.claims, proof());
        assert_eq!(verified.id, grant.id);
        clock.set(grant.expires_at);
        let expired = verifier.verify::<DeviceProof>(&grant.token).await;
        assert!(expired.unwrap_err().detail.contains("expired"));
    }

    #[tokio::test]
    async fn one_kind_is_never_accepted_as_another() {
        let (issuer, verifier, clock) = setup();
        let grant = issuer
            .issue(&proof(), clock.now(), Duration::from_secs(60))
            .unwrap();
        let refused = verifier
            .verify::<Admission>(&grant.token)
            .await
            .unwrap_err();
        assert_eq!(refused.kind, ProblemKind::Unauthenticated);
    }

    #[tokio::test]
    async fn another_issuers_key_and_a_tampered_grant_are_refused() {
        let (_, verifier, clock) = setup();
        let stranger = GrantIssuer::new(Arc::new(SigningKeys::generate().unwrap()));
        let foreign = stranger
            .issue(&proof(), clock.now(), Duration::from_secs(60))
            .unwrap();
        assert!(
            verifier
                .verify::<DeviceProof>(&foreign.token)
                .await
                .is_err()
        );
        assert!(verifier.verify::<DeviceProof>("not.a.token").await.is_err());
        let (issuer, verifier, clock) = setup();
        let grant = issuer
            .issue(&proof(), clock.now(), Duration::from_secs(60))
            .unwrap();
        let mut parts: Vec<String> = grant.token.split('.').map(str::to_owned).collect();
        let forged = DeviceProof {
            sub: "someone-else".to_owned(),
            dev: "device-1".to_owned(),
        };
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert!(
            verifier
                .verify::<DeviceProof>(&parts.join("."))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_single_use_grant_is_accepted_once() {
        let (issuer, verifier, clock) = setup();
        let guard = MemoryReplayGuard::new(clock.clone());
        let grant = issuer
            .issue(&proof(), clock.now(), Duration::from_secs(60))
            .unwrap();
        let verified = verifier.verify::<DeviceProof>(&grant.token).await.unwrap();
        assert!(
            guard
                .first_use(&verified.id, verified.expires_at)
                .await
                .unwrap()
        );
        assert!(
            !guard
                .first_use(&verified.id, verified.expires_at)
                .await
                .unwrap()
        );
    }

    #[test]
    fn the_published_keys_carry_the_signing_key_first() {
        let keys = SigningKeys::generate().unwrap();
        let response = keys_response("vaxbook-auth", &keys);
        assert_eq!(response.keys.len(), 1);
        assert_eq!(response.keys[0].kid, keys.kid());
        assert_eq!(response.keys[0].key_use, "sig");
    }
}
