//! Access tokens: EdDSA (Ed25519) JWTs carrying [`AccessClaims`], and the JWKS every other
//! component verifies them with. auth-svc holds its signing key once, as the platform's
//! [`SigningKeys`]: the same key signs access tokens (here) and auth-svc's grants
//! (`platform::grants`, e.g. the device proof session-svc asks for), and its public halves are
//! published both as the JWKS and over `vaxbook.keys.v1.KeysService`. The key comes from a
//! PKCS#8 PEM file in production (so every replica signs with the same key) or is generated at
//! start for a single-process run. Rotation: the new key signs, the retired keys' public halves
//! stay published until what they signed has expired (`AUTH_RETIRED_SIGNING_KEY_FILES`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use platform::auth::{AUDIENCE, AccessClaims, ISSUER, Jwks, Role};
use platform::clock::SharedClock;
pub use platform::grants::generate_pem;
use platform::grants::{GrantIssuer, SigningKeys};

use crate::domain::{DeviceId, PersonKey, SessionId};
use crate::error::AuthError;

/// Signs access tokens with auth-svc's one signing key.
#[derive(Clone, Debug)]
pub struct TokenSigner {
    keys: Arc<SigningKeys>,
}

impl TokenSigner {
    pub fn new(keys: Arc<SigningKeys>) -> Self {
        Self { keys }
    }

    /// A fresh random key.
    pub fn generate() -> anyhow::Result<Self> {
        Ok(Self::new(Arc::new(SigningKeys::generate()?)))
    }

    /// A key from a PKCS#8 PEM document (`openssl genpkey -algorithm ed25519`).
    pub fn from_pkcs8_pem(pem: &str) -> anyhow::Result<Self> {
        Ok(Self::new(Arc::new(SigningKeys::from_pkcs8_pem(pem)?)))
    }

    /// The key from `path` when given, else a generated one (the dev run only; the
    /// configuration check refuses a missing `AUTH_SIGNING_KEY_FILE` in production), also
    /// publishing the public halves of the keys in `retired_paths` (PKCS#8 PEM files).
    pub async fn load(path: Option<&Path>, retired_paths: &[PathBuf]) -> anyhow::Result<Self> {
        let keys = match path {
            Some(path) => SigningKeys::from_file("AUTH_SIGNING_KEY_FILE", path).await?,
            None => {
                // Only the dev run gets here: production refuses to start without the file.
                tracing::info!("signing with a key generated at start (dev run)");
                SigningKeys::generate()?
            }
        };
        let keys = keys
            .with_retired(retired_paths)
            .await
            .map_err(|err| anyhow::anyhow!("AUTH_RETIRED_SIGNING_KEY_FILES: {err}"))?;
        Ok(Self::new(Arc::new(keys)))
    }

    /// The signing keys, shared with the grant issuer and the key server.
    pub fn keys(&self) -> &Arc<SigningKeys> {
        &self.keys
    }

    /// Issues auth-svc's grants with the same key.
    pub fn grant_issuer(&self) -> GrantIssuer {
        GrantIssuer::new(self.keys.clone())
    }

    pub fn kid(&self) -> &str {
        self.keys.kid()
    }

    /// The current key first, then the retired ones.
    pub fn jwks(&self) -> Jwks {
        self.keys.jwks()
    }

    pub fn sign(&self, claims: &AccessClaims) -> Result<String, AuthError> {
        platform::trust::sign_access_token(&self.keys, claims).map_err(AuthError::Signing)
    }
}

/// A signed token and when it stops being valid.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// Seconds from now until `expires_at`.
    pub expires_in: i64,
}

/// Whom a citizen token is for.
pub struct TokenSubject<'a> {
    pub person_key: &'a PersonKey,
    pub birth_date: NaiveDate,
    pub session_id: &'a SessionId,
    pub device_id: &'a DeviceId,
    pub session_expires_at: DateTime<Utc>,
    /// The session's fencing number from session-svc, when it gave one.
    pub fence: Option<u64>,
}

/// Issues citizen access tokens that never outlive their session.
pub struct TokenIssuer {
    signer: TokenSigner,
    clock: SharedClock,
    ttl: Duration,
}

impl TokenIssuer {
    pub fn new(signer: TokenSigner, clock: SharedClock, ttl: Duration) -> Self {
        Self { signer, clock, ttl }
    }

    pub fn jwks(&self) -> Jwks {
        self.signer.jwks()
    }

    pub fn issue(&self, subject: &TokenSubject<'_>) -> Result<IssuedToken, AuthError> {
        let now = self.clock.now();
        let by_ttl = now + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        let expires_at = by_ttl.min(subject.session_expires_at);
        let claims = AccessClaims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: subject.person_key.as_str().to_owned(),
            sid: subject.session_id.as_str().to_owned(),
            dev: subject.device_id.as_str().to_owned(),
            bd: platform::ids::format_iso_date(subject.birth_date),
            role: Role::Citizen,
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            jti: uuid::Uuid::new_v4().to_string(),
            fence: subject.fence,
        };
        Ok(IssuedToken {
            token: self.signer.sign(&claims)?,
            expires_at,
            expires_in: (expires_at.timestamp() - now.timestamp()).max(0),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chrono::TimeZone;
    use ed25519_dalek::SigningKey;
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    use jsonwebtoken::{Algorithm, Header};
    use platform::auth::{JwksSource, TokenVerifier};
    use platform::clock::SettableClock;
    use platform::problem::ProblemKind;

    use super::*;
    use crate::domain::{Rrn, derive_person_key};

    struct StaticJwks(Jwks);

    #[async_trait::async_trait]
    impl JwksSource for StaticJwks {
        async fn fetch(&self) -> Result<Jwks, String> {
            Ok(self.0.clone())
        }
    }

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2021, 8, 9, 11, 0, 0).unwrap()
    }

    struct Fixture {
        clock: Arc<SettableClock>,
        issuer: TokenIssuer,
        person_key: PersonKey,
        device_id: DeviceId,
        session_id: SessionId,
    }

    fn fixture() -> Fixture {
        let clock = Arc::new(SettableClock::starting_at(start()));
        let issuer = TokenIssuer::new(
            TokenSigner::generate().unwrap(),
            clock.clone(),
            Duration::from_secs(1200),
        );
        Fixture {
            clock,
            issuer,
            person_key: derive_person_key(b"k", &Rrn::parse("900101-1234567").unwrap()),
            device_id: DeviceId::parse("device-1").unwrap(),
            session_id: SessionId::parse("session-1").unwrap(),
        }
    }

    fn subject<'a>(fixture: &'a Fixture, session_expires_at: DateTime<Utc>) -> TokenSubject<'a> {
        TokenSubject {
            person_key: &fixture.person_key,
            birth_date: NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
            session_id: &fixture.session_id,
            device_id: &fixture.device_id,
            session_expires_at,
            fence: Some(3),
        }
    }

    fn verifier(jwks: Jwks, clock: Arc<SettableClock>) -> TokenVerifier {
        TokenVerifier::new(Arc::new(StaticJwks(jwks)), clock)
    }

    #[tokio::test]
    async fn a_signed_token_verifies_with_the_published_jwks() {
        let fixture = fixture();
        let issued = fixture
            .issuer
            .issue(&subject(&fixture, start() + chrono::Duration::hours(1)))
            .unwrap();
        assert_eq!(issued.expires_in, 1200);
        let claims = verifier(fixture.issuer.jwks(), fixture.clock.clone())
            .verify(&issued.token)
            .await
            .unwrap();
        assert_eq!(claims.sub, fixture.person_key.as_str());
        assert_eq!(claims.sid, "session-1");
        assert_eq!(claims.dev, "device-1");
        assert_eq!(claims.bd, "1990-01-01");
        assert_eq!(claims.fence, Some(3));
        assert_eq!(claims.role, Role::Citizen);
        assert_eq!(claims.iss, ISSUER);
        assert_eq!(claims.aud, AUDIENCE);
        assert_eq!(claims.exp - claims.iat, 1200);
        assert_eq!(claims.exp, issued.expires_at.timestamp());

        let header = jsonwebtoken::decode_header(&issued.token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        let jwk = &fixture.issuer.jwks().keys[0];
        assert_eq!(header.kid.as_deref(), Some(jwk.kid.as_str()));
        assert_eq!(jwk.kid.len(), 16);
        assert_eq!(URL_SAFE_NO_PAD.decode(&jwk.x).unwrap().len(), 32);
    }

    #[tokio::test]
    async fn a_token_never_outlives_its_session() {
        let fixture = fixture();
        let session_end = start() + chrono::Duration::seconds(300);
        let issued = fixture
            .issuer
            .issue(&subject(&fixture, session_end))
            .unwrap();
        assert_eq!(issued.expires_at.timestamp(), session_end.timestamp());
        assert!(
            (299..=300).contains(&issued.expires_in),
            "{}",
            issued.expires_in
        );
    }

    #[tokio::test]
    async fn tokens_of_another_key_tampered_or_expired_fail() {
        let fixture = fixture();
        let good = fixture
            .issuer
            .issue(&subject(&fixture, start() + chrono::Duration::hours(1)))
            .unwrap()
            .token;
        let verifier = verifier(fixture.issuer.jwks(), fixture.clock.clone());

        // Another key that claims the published kid.
        let other = TokenSigner::generate().unwrap();
        let mut claims = verifier.verify(&good).await.unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(fixture.issuer.jwks().keys[0].kid.clone());
        let forged = jsonwebtoken::encode(&header, &claims, other.keys().encoding_key()).unwrap();
        assert_eq!(
            verifier.verify(&forged).await.unwrap_err().kind,
            ProblemKind::Unauthenticated
        );
        // Another key under its own kid is unknown to the JWKS.
        let foreign = other.sign(&claims).unwrap();
        assert!(verifier.verify(&foreign).await.is_err());

        // The payload changed after signing.
        claims.bd = "2003-12-31".to_owned();
        let tampered_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let parts: Vec<&str> = good.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], tampered_payload, parts[2]);
        assert!(verifier.verify(&tampered).await.is_err());

        // Still valid just before expiry, not after.
        fixture.clock.set(start() + chrono::Duration::seconds(1190));
        assert!(verifier.verify(&good).await.is_ok());
        fixture.clock.set(start() + chrono::Duration::seconds(1201));
        let expired = verifier.verify(&good).await.unwrap_err();
        assert_eq!(expired.kind, ProblemKind::Unauthenticated);
        assert!(expired.detail.contains("expired"), "{}", expired.detail);
    }

    #[tokio::test]
    async fn a_rotated_out_key_still_verifies_the_tokens_it_signed() {
        let dir = std::env::temp_dir();
        let old_path = dir.join(format!("auth-svc-old-{}.pem", uuid::Uuid::new_v4()));
        let new_path = dir.join(format!("auth-svc-new-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&old_path, generate_pem().unwrap()).unwrap();
        std::fs::write(&new_path, generate_pem().unwrap()).unwrap();

        // Before the rotation: the old key signs.
        let fixture = fixture();
        let before = TokenIssuer::new(
            TokenSigner::load(Some(&old_path), &[]).await.unwrap(),
            fixture.clock.clone(),
            Duration::from_secs(1200),
        );
        let old_token = before
            .issue(&subject(&fixture, start() + chrono::Duration::hours(1)))
            .unwrap()
            .token;

        // After: the new key signs, the old one is only published.
        let after = TokenSigner::load(Some(&new_path), &[old_path.clone(), new_path.clone()])
            .await
            .unwrap();
        std::fs::remove_file(&old_path).unwrap();
        std::fs::remove_file(&new_path).unwrap();
        let kids: Vec<String> = after
            .jwks()
            .keys
            .iter()
            .map(|key| key.kid.clone())
            .collect();
        assert_eq!(
            kids.len(),
            2,
            "the current key once, the retired one: {kids:?}"
        );
        assert_eq!(kids[0], after.kid());
        let issuer = TokenIssuer::new(after, fixture.clock.clone(), Duration::from_secs(1200));
        let new_token = issuer
            .issue(&subject(&fixture, start() + chrono::Duration::hours(1)))
            .unwrap()
            .token;
        let published = verifier(issuer.jwks(), fixture.clock.clone());
        assert!(published.verify(&old_token).await.is_ok());
        assert!(published.verify(&new_token).await.is_ok());
        // Without the retired key the old tokens are refused.
        let current_only = Jwks {
            keys: vec![issuer.jwks().keys[0].clone()],
        };
        let strict = verifier(current_only, fixture.clock.clone());
        assert!(strict.verify(&old_token).await.is_err());
    }

    #[tokio::test]
    async fn the_key_file_is_read_when_configured() {
        use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let path = std::env::temp_dir().join(format!("auth-svc-key-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&path, pem.as_bytes()).unwrap();
        let from_file = TokenSigner::load(Some(&path), &[]).await.unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            from_file.kid(),
            TokenSigner::from_pkcs8_pem(&pem).unwrap().kid()
        );
        let missing = TokenSigner::load(Some(&path), &[]).await.err().unwrap();
        assert!(
            missing.to_string().contains("AUTH_SIGNING_KEY_FILE"),
            "{missing}"
        );
        // Without a file every start makes a new key.
        let first = TokenSigner::load(None, &[]).await.unwrap();
        let second = TokenSigner::load(None, &[]).await.unwrap();
        assert_ne!(first.kid(), second.kid());
    }

    #[test]
    fn a_pem_key_keeps_its_identity() {
        use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let first = TokenSigner::from_pkcs8_pem(&pem).unwrap();
        let second = TokenSigner::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(first.kid(), second.kid());
        assert_eq!(first.jwks(), second.jwks());
        assert_ne!(first.kid(), TokenSigner::generate().unwrap().kid());
        assert!(
            TokenSigner::from_pkcs8_pem(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
            )
            .is_err()
        );
    }
}
