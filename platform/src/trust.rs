//! Services trust no caller: the grant kinds one vaxbook service hands another
//! ([`crate::grants`] carries them), and the one way a service counts and logs a call it
//! refused for want of a credential, so an SRE sees an attack on the internal network as it
//! happens. docs/security.md says who may call what.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::auth::{AccessClaims, Role};
use crate::grants::{GrantIssuer, GrantKind, KeysServer, SigningKeys};

/// auth-svc's proof that the person `sub` has just completed an identity verification on the
/// device `dev`: the only thing session-svc accepts as the reason to give a device the
/// person's lock (`ClaimDevice`). Short-lived and single use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceProof {
    /// The person key.
    pub sub: String,
    /// The device id.
    pub dev: String,
}

impl GrantKind for DeviceProof {
    const KIND: &'static str = "device-proof";
    const ISSUER: &'static str = crate::auth::ISSUER;
    const AUDIENCE: &'static str = "vaxbook-session";
}

/// How long a device proof is valid: the claim follows the verification at once, so this only
/// covers the call to session-svc and some clock skew between replicas.
pub const DEVICE_PROOF_TTL: Duration = Duration::from_secs(30);

/// Counts a refused internal call (`refused_internal_calls_total{service, rpc, reason}`) and
/// logs it once as a security event. `reason` is a short fixed label (`no-credential`,
/// `invalid-proof`, `replayed-proof`, `wrong-person`, …), never a value from the request: no
/// person key, device id or token reaches the log.
pub fn refused_call(service: &'static str, rpc: &'static str, reason: &'static str) {
    metrics::counter!(
        "refused_internal_calls_total",
        "service" => service,
        "rpc" => rpc,
        "reason" => reason,
    )
    .increment(1);
    tracing::warn!(
        security_event = "refused-internal-call",
        service,
        rpc,
        reason,
        "refused a call without a valid credential"
    );
}

/// Signs access-token claims with `keys` (auth-svc's `TokenSigner`, and test stand-ins).
pub fn sign_access_token(
    keys: &SigningKeys,
    claims: &AccessClaims,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(keys.kid().to_owned());
    jsonwebtoken::encode(&header, claims, keys.encoding_key())
}

/// auth-svc as the services that trust it see it, for their tests: a key published over
/// `vaxbook.keys.v1.KeysService` on 127.0.0.1 (the real [`KeysServer`]), and the device
/// proofs, citizen access tokens and staff tokens auth-svc would sign with it. Stops when
/// dropped.
pub struct AuthStandIn {
    /// Where the keys are published (`VAXBOOK_AUTH_URL`).
    pub url: String,
    pub keys: Arc<SigningKeys>,
    stop: CancellationToken,
}

impl Drop for AuthStandIn {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl AuthStandIn {
    /// Publishes a fresh key on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_publishing_as(crate::auth::ISSUER).await
    }

    /// The same, but the key server names itself `issuer` (another service's KeysService).
    pub async fn start_publishing_as(issuer: &'static str) -> anyhow::Result<Self> {
        let keys = Arc::new(SigningKeys::generate()?);
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let stop = CancellationToken::new();
        let server = tonic::transport::Server::builder()
            .add_service(KeysServer::new(issuer, keys.clone()).into_service())
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                stop.clone().cancelled_owned(),
            );
        tokio::spawn(server);
        Ok(Self { url, keys, stop })
    }

    /// A device proof for `person` on `device`, issued at `now`.
    pub fn proof(&self, person: &str, device: &str, now: DateTime<Utc>) -> anyhow::Result<String> {
        let proof = DeviceProof {
            sub: person.to_owned(),
            dev: device.to_owned(),
        };
        Ok(GrantIssuer::new(self.keys.clone())
            .issue(&proof, now, DEVICE_PROOF_TTL)?
            .token)
    }

    /// A staff token (agent, supervisor or operator, as `StaffAuthService.Login` issues it)
    /// carrying `claims`, valid for [`crate::staff::AGENT_TOKEN_TTL`] from `now`.
    pub fn staff_token(
        &self,
        claims: &crate::staff::AgentToken,
        now: DateTime<Utc>,
    ) -> anyhow::Result<String> {
        Ok(GrantIssuer::new(self.keys.clone())
            .issue(claims, now, crate::staff::AGENT_TOKEN_TTL)?
            .token)
    }

    /// An access token of `role` for `person` (born `birth_date`), session `session` on
    /// `device`, valid for 20 minutes from `now`.
    pub fn token(
        &self,
        role: Role,
        person: &str,
        birth_date: &str,
        session: &str,
        device: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<String> {
        let claims = AccessClaims {
            iss: crate::auth::ISSUER.to_owned(),
            aud: crate::auth::AUDIENCE.to_owned(),
            sub: person.to_owned(),
            sid: session.to_owned(),
            dev: device.to_owned(),
            bd: birth_date.to_owned(),
            role,
            iat: now.timestamp(),
            exp: now.timestamp() + 1200,
            jti: uuid::Uuid::new_v4().to_string(),
            fence: None,
        };
        Ok(sign_access_token(&self.keys, &claims)?)
    }
}

/// `message` as a request carrying `authorization: Bearer <token>`.
pub fn with_bearer<T>(
    message: T,
    token: &str,
) -> Result<tonic::Request<T>, crate::problem::Problem> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}").parse().map_err(|_| {
        crate::problem::Problem::new(
            crate::problem::ProblemKind::Unauthenticated,
            "the token is malformed",
        )
    })?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::clock::{Clock, SettableClock};
    use crate::grants::{GrantVerifier, StaticKeysSource};

    #[tokio::test]
    async fn a_device_proof_is_never_an_access_token() {
        let keys = Arc::new(SigningKeys::generate().unwrap());
        let clock = Arc::new(SettableClock::new());
        let proof = GrantIssuer::new(keys.clone())
            .issue(
                &DeviceProof {
                    sub: "pk-1".to_owned(),
                    dev: "pc-1".to_owned(),
                },
                clock.now(),
                DEVICE_PROOF_TTL,
            )
            .unwrap();
        let source = Arc::new(StaticKeysSource(keys.jwks()));
        let grants = GrantVerifier::new(source.clone(), clock.clone());
        let verified = grants.verify::<DeviceProof>(&proof.token).await.unwrap();
        assert_eq!(verified.claims.sub, "pk-1");
        let tokens = crate::auth::TokenVerifier::new(source, clock);
        assert!(tokens.verify(&proof.token).await.is_err());
    }
}
