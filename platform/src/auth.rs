//! Access tokens: the claims auth-svc signs (EdDSA JWT) and the verifier every other component
//! uses locally against auth-svc's JWKS (cached, refreshed when an unknown `kid` shows up).

use std::sync::Arc;

use chrono::NaiveDate;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::problem::{Problem, ProblemKind};

pub const ISSUER: &str = "vaxbook-auth";
pub const AUDIENCE: &str = "vaxbook";

/// Who the token speaks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Citizen,
    Agent,
}

/// The claims of a vaxbook access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// Pseudonymous person key.
    pub sub: String,
    /// Session id (the device lock this token rides on).
    pub sid: String,
    /// Device id the session belongs to.
    pub dev: String,
    /// Birth date, YYYY-MM-DD.
    pub bd: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// The session's fencing number (session-svc's claim answer): it grows each time the
    /// person's lock changes hands, and booking-svc refuses writes under an older one. Absent in
    /// tokens issued before fencing (and in agent tokens); such tokens still parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<u64>,
}

impl AccessClaims {
    pub fn birth_date(&self) -> Result<NaiveDate, Problem> {
        crate::ids::parse_iso_date("bd", &self.bd).map_err(|_| {
            Problem::new(
                ProblemKind::Unauthenticated,
                "the token's birth date is malformed",
            )
        })
    }
}

/// One public key in a JWKS (OKP / Ed25519).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// Where the verifier gets the JWKS from.
#[async_trait::async_trait]
pub trait JwksSource: Send + Sync {
    async fn fetch(&self) -> Result<Jwks, String>;
}

/// The keys of a `vaxbook.keys.v1.PublicKey` list as a [`Jwks`].
pub fn jwks_from_wire(keys: Vec<proto::keys::v1::PublicKey>) -> Jwks {
    Jwks {
        keys: keys
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
    }
}

/// A [`Jwks`] as the `vaxbook.keys.v1.PublicKey` list `GetJwks` answers with.
pub fn jwks_to_wire(jwks: &Jwks) -> Vec<proto::keys::v1::PublicKey> {
    jwks.keys
        .iter()
        .map(|key| proto::keys::v1::PublicKey {
            kid: key.kid.clone(),
            kty: key.kty.clone(),
            crv: key.crv.clone(),
            x: key.x.clone(),
            alg: key.alg.clone(),
            key_use: key.use_.clone(),
        })
        .collect()
}

/// Fetches the access-token keys from auth-svc over gRPC (`GetJwks`, structured keys).
pub struct GrpcJwksSource {
    client: proto::auth::v1::auth_service_client::AuthServiceClient<crate::grpc::TracedChannel>,
}

impl GrpcJwksSource {
    pub fn new(channel: impl Into<crate::grpc::GrpcChannel>) -> Self {
        Self {
            client: proto::auth::v1::auth_service_client::AuthServiceClient::with_interceptor(
                channel.into(),
                crate::telemetry::TracePropagation,
            ),
        }
    }
}

#[async_trait::async_trait]
impl JwksSource for GrpcJwksSource {
    async fn fetch(&self) -> Result<Jwks, String> {
        let mut client = self.client.clone();
        let response = client
            .get_jwks(proto::auth::v1::GetJwksRequest {})
            .await
            .map_err(|status| format!("fetching the JWKS from auth-svc: {}", status.message()))?;
        Ok(jwks_from_wire(response.into_inner().keys))
    }
}

/// Verifies access tokens locally. Keys are cached; an unknown `kid` triggers a refresh,
/// at most once a second ([`crate::grants::KeyCache`]).
pub struct TokenVerifier {
    keys: crate::grants::KeyCache,
    clock: SharedClock,
}

impl TokenVerifier {
    pub fn new(source: Arc<dyn JwksSource>, clock: SharedClock) -> Self {
        Self {
            keys: crate::grants::KeyCache::new(source),
            clock,
        }
    }

    /// Verifies signature, issuer, audience and expiry (against the injected clock).
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, Problem> {
        let unauthenticated = |detail: &str| Problem::new(ProblemKind::Unauthenticated, detail);
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthenticated("the access token is malformed"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(unauthenticated(
                "the access token uses an unsupported algorithm",
            ));
        }
        if header.typ.as_deref() == Some(crate::grants::GRANT_TYP) {
            return Err(unauthenticated("a grant is not an access token"));
        }
        let kid = header
            .kid
            .ok_or_else(|| unauthenticated("the access token names no key"))?;
        let key = self
            .keys
            .key(&kid)
            .await?
            .ok_or_else(|| unauthenticated("the access token was signed by an unknown key"))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        // Expiry is checked against the injected clock below, so the dev clock works too.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
            .map_err(|_| unauthenticated("the access token is not valid"))?;
        let now = self.clock.now().timestamp();
        if data.claims.exp <= now {
            return Err(unauthenticated("the access token has expired"));
        }
        Ok(data.claims)
    }
}

/// The bearer token of a request's `authorization` metadata.
pub fn bearer(metadata: &tonic::metadata::MetadataMap) -> Result<&str, Problem> {
    let value = metadata
        .get("authorization")
        .ok_or_else(|| Problem::new(ProblemKind::Unauthenticated, "authorization is required"))?
        .to_str()
        .map_err(|_| Problem::new(ProblemKind::Unauthenticated, "authorization is malformed"))?;
    bearer_from_str(value)
}

/// The token of an `Authorization: Bearer <token>` value.
pub fn bearer_from_str(value: &str) -> Result<&str, Problem> {
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        Problem::new(
            ProblemKind::Unauthenticated,
            "authorization must be 'Bearer <token>'",
        )
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Problem::new(
            ProblemKind::Unauthenticated,
            "authorization must be 'Bearer <token>'",
        ));
    }
    Ok(token.trim())
}

/// Equality whose running time does not depend on where the inputs differ (lengths are not
/// secret where it is used: keys, nonces and digests of fixed length).
pub fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    left.ct_eq(right).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"xbc", b"abc"));
    }
}
