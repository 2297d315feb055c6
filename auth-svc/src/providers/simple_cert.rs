//! The "simple certificate" providers of R2: Kakao, Naver and the PASS app. Starting a
//! verification sends nothing; it issues a random nonce. The person confirms in the
//! provider's app, which signs an assertion (a compact JWS, EdDSA) naming the person and
//! carrying that nonce. Completing checks the assertion against the provider's trusted keys
//! and binds it to this verification: this provider, addressed to vaxbook, not expired and not
//! issued in the future on the injected clock, this challenge's nonce, and the same person
//! (RRN → person key, and name) who started. Verifying costs one Ed25519 signature check, so
//! these providers stay fast.
//!
//! The assertion carries identity data: it is never logged or echoed. A refusal logs only the
//! name of the rule that failed and answers with the same `verification-failed` as a wrong
//! code, counted against the same attempt limit.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use platform::auth::Jwks;
use platform::clock::SharedClock;
use platform::idp::{ASSERTION_AUDIENCE, SimpleCertAssertion};
use rand::RngCore as _;

use super::digest::BoundDigester;
use super::{
    ChallengeAnswer, IdentityProvider, StartRequest, StartedChallenge, TrustedKeys,
    count_wrong_answer, refuse_if_exhausted, use_up,
};
use crate::domain::{
    Name, ProviderId, ProviderKind, Rrn, SignedAssertion, VerificationId, derive_person_key,
};
use crate::error::AuthError;
use crate::store::{Challenge, ChallengeSecret, ChallengeStore};

/// How far in the future an assertion's `iat` may lie: the provider's clock may run ahead.
const ISSUED_AT_LEEWAY_SECS: i64 = 60;

/// Random bytes in a nonce (256 bits; base64url, 43 characters).
const NONCE_BYTES: usize = 32;

/// How long a nonce lives and how many refused assertions a challenge tolerates.
#[derive(Clone, Copy, Debug)]
pub struct SimpleCertSettings {
    pub assertion_ttl: Duration,
    pub max_attempts: u32,
}

/// One simple-certificate provider (one instance per enabled provider).
pub struct SimpleCertProvider {
    kind: ProviderKind,
    keys: TrustedKeys,
    store: Arc<dyn ChallengeStore>,
    clock: SharedClock,
    person_key_secret: Vec<u8>,
    names: BoundDigester,
    settings: SimpleCertSettings,
}

/// Why an assertion was refused: logged by name, never shown with the assertion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rejection {
    Malformed,
    Algorithm,
    UnknownKey,
    Signature,
    Issuer,
    Audience,
    Expired,
    IssuedInFuture,
    Nonce,
    OtherPerson,
    OtherName,
}

impl Rejection {
    fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm",
            Self::UnknownKey => "unknown-key",
            Self::Signature => "signature",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::Expired => "expired",
            Self::IssuedInFuture => "issued-in-future",
            Self::Nonce => "nonce",
            Self::OtherPerson => "other-person",
            Self::OtherName => "other-name",
        }
    }
}

impl SimpleCertProvider {
    /// `kind` must be kakao, naver or pass; `jwks` are the keys its assertions are signed with.
    pub fn new(
        kind: ProviderKind,
        jwks: &Jwks,
        store: Arc<dyn ChallengeStore>,
        clock: SharedClock,
        person_key_secret: &[u8],
        settings: SimpleCertSettings,
    ) -> anyhow::Result<Self> {
        if !ProviderKind::SIMPLE_CERT.contains(&kind) {
            anyhow::bail!("{} is not a simple-certificate provider", kind.name());
        }
        let keys = TrustedKeys::from_jwks(jwks)
            .with_context(|| format!("the trusted keys of {}", kind.name()))?;
        Ok(Self {
            kind,
            keys,
            store,
            clock,
            person_key_secret: person_key_secret.to_vec(),
            names: BoundDigester::for_names(person_key_secret),
            settings,
        })
    }

    /// Every rule an assertion must pass, in order of cost: header, signature and the
    /// registered claims first, then the binding to this challenge.
    fn check(
        &self,
        verification_id: &VerificationId,
        challenge: &Challenge,
        expected_nonce: &str,
        name_digest: &str,
        assertion: &SignedAssertion,
    ) -> Result<(), Rejection> {
        let token = assertion.as_str();
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(Rejection::Algorithm);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(Rejection::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[self.kind.name()]);
        validation.set_audience(&[ASSERTION_AUDIENCE]);
        validation.set_required_spec_claims(&["iss", "aud", "exp"]);
        // Time is checked below against the injected clock, so the dev clock works too.
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<SimpleCertAssertion>(token, key, &validation)
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidSignature => Rejection::Signature,
                ErrorKind::InvalidAlgorithm => Rejection::Algorithm,
                ErrorKind::InvalidIssuer => Rejection::Issuer,
                ErrorKind::InvalidAudience => Rejection::Audience,
                _ => Rejection::Malformed,
            })?
            .claims;
        // The library checked these already; the rule is too important to rest on one check.
        if claims.iss != self.kind.name() {
            return Err(Rejection::Issuer);
        }
        if claims.aud != ASSERTION_AUDIENCE {
            return Err(Rejection::Audience);
        }
        let now = self.clock.now().timestamp();
        if claims.exp <= now {
            return Err(Rejection::Expired);
        }
        if claims.iat > now + ISSUED_AT_LEEWAY_SECS {
            return Err(Rejection::IssuedInFuture);
        }
        if !platform::auth::constant_time_eq(claims.nonce.as_bytes(), expected_nonce.as_bytes()) {
            return Err(Rejection::Nonce);
        }
        let rrn = Rrn::parse(&claims.rrn).map_err(|_| Rejection::OtherPerson)?;
        let person_key = derive_person_key(&self.person_key_secret, &rrn);
        if !platform::auth::constant_time_eq(
            person_key.as_str().as_bytes(),
            challenge.person_key.as_str().as_bytes(),
        ) {
            return Err(Rejection::OtherPerson);
        }
        let name = Name::parse(&claims.name).map_err(|_| Rejection::OtherName)?;
        if !self
            .names
            .matches(verification_id, &name.normalized(), name_digest)
        {
            return Err(Rejection::OtherName);
        }
        Ok(())
    }
}

/// A nonce from the operating system's generator.
fn generate_nonce() -> String {
    let mut bytes = [0u8; NONCE_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[async_trait::async_trait]
impl IdentityProvider for SimpleCertProvider {
    fn id(&self) -> ProviderId {
        self.kind.id()
    }

    async fn start(&self, request: StartRequest) -> Result<StartedChallenge, AuthError> {
        let nonce = generate_nonce();
        let expires_at = self.clock.now()
            + chrono::Duration::from_std(self.settings.assertion_ttl)
                .unwrap_or(chrono::Duration::minutes(5));
        let challenge = Challenge {
            provider: self.kind.id(),
            person_key: request.person_key,
            birth_date: request.birth_date,
            masked_name: request.name.masked(),
            device_id: request.device_id,
            secret: ChallengeSecret::AssertionBinding {
                nonce: nonce.clone(),
                name_digest: self
                    .names
                    .digest(&request.verification_id, &request.name.normalized()),
            },
            expires_at,
            attempts: 0,
        };
        self.store
            .put(
                &request.verification_id,
                &challenge,
                self.settings.assertion_ttl,
            )
            .await?;
        Ok(StartedChallenge {
            expires_at,
            masked_phone: String::new(),
            nonce,
        })
    }

    async fn complete(
        &self,
        verification_id: &VerificationId,
        challenge: &Challenge,
        answer: &ChallengeAnswer,
    ) -> Result<(), AuthError> {
        let ChallengeAnswer::Assertion(assertion) = answer else {
            return Err(AuthError::InvalidRequest(format!(
                "assertion is required for the {} provider",
                self.kind.name()
            )));
        };
        let ChallengeSecret::AssertionBinding { nonce, name_digest } = &challenge.secret else {
            tracing::warn!(
                %verification_id,
                provider = self.kind.name(),
                "a simple-certificate challenge holds no nonce"
            );
            return Err(AuthError::VerificationExpired);
        };
        refuse_if_exhausted(
            self.store.as_ref(),
            verification_id,
            challenge,
            self.settings.max_attempts,
        )
        .await?;
        match self.check(verification_id, challenge, nonce, name_digest, assertion) {
            Ok(()) => use_up(self.store.as_ref(), verification_id).await,
            Err(rejection) => {
                tracing::info!(
                    %verification_id,
                    provider = self.kind.name(),
                    reason = rejection.label(),
                    "assertion refused"
                );
                let attempts_left = count_wrong_answer(
                    self.store.as_ref(),
                    verification_id,
                    self.settings.max_attempts,
                )
                .await?;
                Err(AuthError::AssertionRejected { attempts_left })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn nonces_are_long_random_and_url_safe() {
        let nonces: std::collections::HashSet<String> =
            (0..100).map(|_| generate_nonce()).collect();
        assert_eq!(nonces.len(), 100);
        for nonce in &nonces {
            assert_eq!(URL_SAFE_NO_PAD.decode(nonce).unwrap().len(), NONCE_BYTES);
        }
    }

    #[test]
    fn the_name_digest_is_keyed_normalized_and_bound_to_the_verification() {
        let digester = BoundDigester::for_names(b"secret");
        let id = VerificationId::new_random();
        let name = Name::parse("John Smith").unwrap().normalized();
        let digest = digester.digest(&id, &name);
        assert!(!digest.to_lowercase().contains("john"));
        let shouted = Name::parse(" JOHN  SMITH ").unwrap().normalized();
        assert!(digester.matches(&id, &shouted, &digest));
        let other = Name::parse("John Smyth").unwrap().normalized();
        assert!(!digester.matches(&id, &other, &digest));
        assert!(!digester.matches(&VerificationId::new_random(), &name, &digest));
        assert!(!BoundDigester::for_names(b"other").matches(&id, &name, &digest));
        assert!(!digester.matches(&id, &name, "not base64!"));
    }

    #[test]
    fn only_simple_certificate_kinds_with_keys_are_built() {
        let idp = platform::dev::DevIdentityProviders::generate();
        let clock: SharedClock = Arc::new(platform::clock::SystemClock);
        let store: Arc<dyn ChallengeStore> =
            Arc::new(crate::store::MemoryChallengeStore::new(clock.clone()));
        let settings = SimpleCertSettings {
            assertion_ttl: Duration::from_secs(300),
            max_attempts: 5,
        };
        let build = |kind, jwks: &Jwks| {
            SimpleCertProvider::new(kind, jwks, store.clone(), clock.clone(), b"s", settings)
        };
        let kakao_keys = idp.jwks("kakao").unwrap();
        assert!(build(ProviderKind::Kakao, &kakao_keys).is_ok());
        assert!(build(ProviderKind::Phone, &kakao_keys).is_err());
        assert!(build(ProviderKind::FinancialCert, &kakao_keys).is_err());
        assert!(build(ProviderKind::Pass, &Jwks::default()).is_err());
    }
}
