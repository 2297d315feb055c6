//! A stand-in for auth-svc in session-svc's tests: its signing key published over
//! `vaxbook.keys.v1.KeysService` on 127.0.0.1:0 (the real `platform::grants::KeysServer`), and
//! the device proofs and access tokens auth-svc would issue with it.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header};
use platform::auth::{AUDIENCE, AccessClaims, ISSUER, Role};
use platform::grants::{GrantIssuer, KeysServer, SigningKeys};
use platform::trust::{DEVICE_PROOF_TTL, DeviceProof};
use tokio_util::sync::CancellationToken;

pub struct AuthStandIn {
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
    pub async fn start() -> Self {
        Self::start_with(Arc::new(SigningKeys::generate().unwrap())).await
    }

    pub async fn start_with(keys: Arc<SigningKeys>) -> Self {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let server = tonic::transport::Server::builder()
            .add_service(KeysServer::new(ISSUER, keys.clone()).into_service())
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                stop.clone().cancelled_owned(),
            );
        tokio::spawn(server);
        Self { url, keys, stop }
    }

    /// A device proof for `person` on `device`, issued at `now`.
    pub fn proof(&self, person: &str, device: &str, now: DateTime<Utc>) -> String {
        GrantIssuer::new(self.keys.clone())
            .issue(
                &DeviceProof {
                    sub: person.to_owned(),
                    dev: device.to_owned(),
                },
                now,
                DEVICE_PROOF_TTL,
            )
            .unwrap()
            .token
    }

    /// A citizen access token for `person`'s session `session` on `device`.
    pub fn token(&self, person: &str, session: &str, device: &str, now: DateTime<Utc>) -> String {
        self.token_with_role(person, session, device, now, Role::Citizen)
    }

    pub fn token_with_role(
        &self,
        person: &str,
        session: &str,
        device: &str,
        now: DateTime<Utc>,
        role: Role,
    ) -> String {
        let claims = AccessClaims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: person.to_owned(),
            sid: session.to_owned(),
            dev: device.to_owned(),
            bd: "1990-01-01".to_owned(),
            role,
            iat: now.timestamp(),
            exp: (now + chrono::Duration::from_std(Duration::from_secs(1200)).unwrap()).timestamp(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.keys.kid().to_owned());
        jsonwebtoken::encode(&header, &claims, self.keys.encoding_key()).unwrap()
    }
}

/// A request carrying `token` as `authorization: Bearer <token>`.
pub fn with_bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}
