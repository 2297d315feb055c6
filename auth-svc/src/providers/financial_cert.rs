//! Financial certificates (`financial_cert`, 금융인증서/공동인증서): starting a verification issues
//! a random nonce; the person's client signs it with the certificate's private key and
//! completes with the certificate chain and that signature. Completing checks, in order:
//!
//! 1. the chain parses (PEM blocks or base64 DER, leaf first, at most [`MAX_CHAIN`]
//!    certificates) with the maintained `x509-cert` crate — no hand-written ASN.1;
//! 2. every certificate is valid at the injected clock's now (`notBefore` ≤ now ≤ `notAfter`);
//! 3. the leaf's key usage includes `digitalSignature` and the leaf is not a CA;
//! 4. each certificate is signed by the next one, which must be a CA, and the last one by a
//!    configured root (`AUTH_FINANCIAL_CERT_ROOTS`) — or is that root itself;
//! 5. the signature over the nonce's UTF-8 bytes verifies with the leaf's key: RSA (2048 bits
//!    or more) with PKCS#1 v1.5 or PSS over SHA-256, or ECDSA P-256 over SHA-256 (DER or the
//!    64-byte `r‖s` form);
//! 6. the certificate belongs to the claimed person: the subject's `serialNumber` attribute
//!    (X.520, OID 2.5.4.5) is the person key derived from the claimed RRN, as 64 lower-case
//!    hex digits (the 32 bytes of the HMAC; PrintableString allows no `_`, so not its base64url
//!    form). The identifier is keyed: without auth-svc's person-key secret it reveals nothing
//!    about the RRN and cannot be computed from one. The CA learns it when the person enrols;
//! 7. the subject's common name is the name the verification started with.
//!
//! The challenge is single use like every other: the first right answer removes it, so a
//! replayed certificate and signature find nothing to answer. A refusal logs only the rule
//! that failed (never the certificate, which names the person) and is counted against the
//! challenge's attempts like a wrong code.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use platform::clock::SharedClock;
use rand::RngCore as _;
use rsa::signature::Verifier as _;
use sha2::Sha256;
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode as _, Encode as _, Tag, Tagged as _};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::name::Name as X509Name;
use x509_cert::spki::{DecodePublicKey as _, SubjectPublicKeyInfoOwned};

use super::digest::BoundDigester;
use super::{
    ChallengeAnswer, IdentityProvider, StartRequest, StartedChallenge, count_wrong_answer,
    refuse_if_exhausted, use_up,
};
use crate::domain::{
    CertificateSignature, Name, PersonKey, ProviderId, ProviderKind, VerificationId,
};
use crate::error::AuthError;
use crate::store::{Challenge, ChallengeSecret, ChallengeStore};

/// The longest chain accepted (leaf and intermediates, without the root).
pub const MAX_CHAIN: usize = 4;

/// Random bytes in a nonce (256 bits; base64url, 43 characters).
const NONCE_BYTES: usize = 32;

/// The smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

const OID_SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");
const OID_COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// The identifier a financial certificate carries in its subject `serialNumber` for the
/// person with `person_key`: the key's 32 bytes as 64 lower-case hex digits.
pub fn subject_identifier(person_key: &PersonKey) -> Option<String> {
    URL_SAFE_NO_PAD
        .decode(person_key.as_str())
        .ok()
        .map(hex::encode)
}

/// The root CAs financial certificates must chain to.
#[derive(Clone)]
pub struct TrustedRoots {
    roots: Vec<Certificate>,
}

impl TrustedRoots {
    /// Every certificate of the PEM `text`; none at all is refused (the provider is then
    /// simply not configured).
    pub fn from_pem(text: &[u8]) -> anyhow::Result<Self> {
        let text = std::str::from_utf8(text).context("not PEM text")?;
        let roots = pem_certificates(text)
            .map_err(|rejection| anyhow::anyhow!("not PEM certificates ({})", rejection.label()))?;
        Self::from_certificates(roots)
    }

    /// DER certificates.
    pub fn from_der(certificates: &[Vec<u8>]) -> anyhow::Result<Self> {
        let roots = certificates
            .iter()
            .map(|der| Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| anyhow::anyhow!("not a DER certificate: {error}"))?;
        Self::from_certificates(roots)
    }

    fn from_certificates(roots: Vec<Certificate>) -> anyhow::Result<Self> {
        if roots.is_empty() {
            anyhow::bail!("no root certificate given");
        }
        for (index, root) in roots.iter().enumerate() {
            public_key(&root.tbs_certificate.subject_public_key_info)
                .map_err(|_| anyhow::anyhow!("root {index}: unsupported public key"))?;
        }
        Ok(Self { roots })
    }

    /// Reads the PEM files named by the environment variable `variable`; every failure names
    /// the variable and the file.
    pub fn read_files(variable: &str, paths: &[PathBuf]) -> anyhow::Result<Self> {
        let mut roots = Vec::new();
        for path in paths {
            let text = std::fs::read(path)
                .with_context(|| format!("{variable}: cannot read {}", path.display()))?;
            let found =
                Self::from_pem(&text).with_context(|| format!("{variable}: {}", path.display()))?;
            roots.extend(found.roots);
        }
        Self::from_certificates(roots).with_context(|| format!("{variable}: no root certificate"))
    }

    pub fn len(&self) -> usize {
        self.roots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }
}

impl std::fmt::Debug for TrustedRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedRoots")
            .field("roots", &self.roots.len())
            .finish()
    }
}

/// How long a nonce lives and how many refused answers a challenge tolerates.
#[derive(Clone, Copy, Debug)]
pub struct FinancialCertSettings {
    pub nonce_ttl: Duration,
    pub max_attempts: u32,
}

/// Why a certificate answer was refused: logged by name, never with the certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    ChainTooLong,
    Expired,
    NotYetValid,
    KeyUsage,
    NotACa,
    UnknownCa,
    ChainSignature,
    UnsupportedKey,
    WeakKey,
    Signature,
    OtherPerson,
    OtherName,
}

impl Rejection {
    pub fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::ChainTooLong => "chain-too-long",
            Self::Expired => "expired",
            Self::NotYetValid => "not-yet-valid",
            Self::KeyUsage => "key-usage",
            Self::NotACa => "issuer-not-a-ca",
            Self::UnknownCa => "unknown-ca",
            Self::ChainSignature => "chain-signature",
            Self::UnsupportedKey => "unsupported-key",
            Self::WeakKey => "weak-key",
            Self::Signature => "signature",
            Self::OtherPerson => "other-person",
            Self::OtherName => "other-name",
        }
    }
}

/// The financial-certificate provider.
pub struct FinancialCertProvider {
    roots: TrustedRoots,
    store: Arc<dyn ChallengeStore>,
    clock: SharedClock,
    names: BoundDigester,
    settings: FinancialCertSettings,
}

impl FinancialCertProvider {
    pub fn new(
        roots: TrustedRoots,
        store: Arc<dyn ChallengeStore>,
        clock: SharedClock,
        person_key_secret: &[u8],
        settings: FinancialCertSettings,
    ) -> Self {
        Self {
            roots,
            store,
            clock,
            names: BoundDigester::for_names(person_key_secret),
            settings,
        }
    }

    /// The provider as `config` enables it: only with trusted roots.
    pub fn from_config(config: &crate::Config, store: Arc<dyn ChallengeStore>) -> Option<Self> {
        let roots = config.financial_cert_roots.clone()?;
        tracing::info!(
            roots = roots.len(),
            "financial-certificate provider enabled"
        );
        Some(Self::new(
            roots,
            store,
            config.clock.clone(),
            config.person_key_secret.expose().as_bytes(),
            FinancialCertSettings {
                nonce_ttl: config.assertion_ttl,
                max_attempts: config.otp_max_attempts,
            },
        ))
    }

    /// Every rule of the module documentation, in order.
    pub fn check(
        &self,
        verification_id: &VerificationId,
        challenge: &Challenge,
        nonce: &str,
        name_digest: &str,
        answer: &CertificateSignature,
    ) -> Result<(), Rejection> {
        let chain = parse_chain(&answer.certificate)?;
        let now = u64::try_from(self.clock.now().timestamp()).map_err(|_| Rejection::Expired)?;
        for certificate in &chain {
            check_validity(certificate, now)?;
        }
        let leaf = &chain[0];
        let usage = extension::<KeyUsage>(leaf)?.ok_or(Rejection::KeyUsage)?;
        if !usage.digital_signature() {
            return Err(Rejection::KeyUsage);
        }
        if extension::<BasicConstraints>(leaf)?.is_some_and(|constraints| constraints.ca) {
            return Err(Rejection::KeyUsage);
        }
        self.check_chain(&chain, now)?;
        let key = public_key(&leaf.tbs_certificate.subject_public_key_info)?;
        let signature = decode_base64(&answer.signature).ok_or(Rejection::Malformed)?;
        if !key.verify_message(nonce.as_bytes(), &signature) {
            return Err(Rejection::Signature);
        }
        let subject = &leaf.tbs_certificate.subject;
        let identifier = attribute(subject, OID_SERIAL_NUMBER).ok_or(Rejection::OtherPerson)?;
        let expected = subject_identifier(&challenge.person_key).ok_or(Rejection::OtherPerson)?;
        if !platform::auth::constant_time_eq(identifier.as_bytes(), expected.as_bytes()) {
            return Err(Rejection::OtherPerson);
        }
        let common_name = attribute(subject, OID_COMMON_NAME).ok_or(Rejection::OtherName)?;
        let name = Name::parse(&common_name).map_err(|_| Rejection::OtherName)?;
        if !self
            .names
            .matches(verification_id, &name.normalized(), name_digest)
        {
            return Err(Rejection::OtherName);
        }
        Ok(())
    }

    /// Each certificate signed by the next (a CA), the last by a trusted root.
    fn check_chain(&self, chain: &[Certificate], now: u64) -> Result<(), Rejection> {
        for pair in chain.windows(2) {
            let (child, issuer) = (&pair[0], &pair[1]);
            if child.tbs_certificate.issuer != issuer.tbs_certificate.subject {
                return Err(Rejection::UnknownCa);
            }
            require_ca(issuer)?;
            verify_issued_by(child, issuer)?;
        }
        let Some(last) = chain.last() else {
            return Err(Rejection::Malformed);
        };
        if self.roots.roots.iter().any(|root| root == last) && chain.len() > 1 {
            // The chain ends with the root itself.
            return Ok(());
        }
        let mut candidates = self
            .roots
            .roots
            .iter()
            .filter(|root| root.tbs_certificate.subject == last.tbs_certificate.issuer)
            .peekable();
        if candidates.peek().is_none() {
            return Err(Rejection::UnknownCa);
        }
        let mut outcome = Err(Rejection::UnknownCa);
        for root in candidates {
            if let Err(rejection) = check_validity(root, now) {
                outcome = Err(rejection);
                continue;
            }
            if require_ca(root).is_ok() && verify_issued_by(last, root).is_ok() {
                return Ok(());
            }
        }
        outcome
    }
}

/// The certificates of the answer: PEM blocks, or base64 DER separated by white space or
/// commas; leaf first.
fn parse_chain(text: &str) -> Result<Vec<Certificate>, Rejection> {
    let chain = if text.contains("-----BEGIN") {
        pem_certificates(text)?
    } else {
        text.split(|c: char| c.is_whitespace() || c == ',')
            .filter(|part| !part.is_empty())
            .map(|part| {
                let der = decode_base64(part).ok_or(Rejection::Malformed)?;
                Certificate::from_der(&der).map_err(|_| Rejection::Malformed)
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    if chain.is_empty() {
        return Err(Rejection::Malformed);
    }
    if chain.len() > MAX_CHAIN {
        return Err(Rejection::ChainTooLong);
    }
    Ok(chain)
}

/// Every `CERTIFICATE` PEM block of `text`, in order. (x509-cert's `load_pem_chain` is not
/// used: it can panic on malformed input.)
fn pem_certificates(text: &str) -> Result<Vec<Certificate>, Rejection> {
    use x509_cert::der::DecodePem as _;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut certificates = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let block = &rest[start..];
        let end = block.find(END).ok_or(Rejection::Malformed)? + END.len();
        certificates.push(Certificate::from_pem(&block[..end]).map_err(|_| Rejection::Malformed)?);
        if certificates.len() > MAX_CHAIN * 4 {
            return Err(Rejection::ChainTooLong);
        }
        rest = &block[end..];
    }
    Ok(certificates)
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    STANDARD
        .decode(text)
        .ok()
        .or_else(|| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok())
}

fn check_validity(certificate: &Certificate, now: u64) -> Result<(), Rejection> {
    let validity = &certificate.tbs_certificate.validity;
    if now < validity.not_before.to_unix_duration().as_secs() {
        return Err(Rejection::NotYetValid);
    }
    if now > validity.not_after.to_unix_duration().as_secs() {
        return Err(Rejection::Expired);
    }
    Ok(())
}

/// The decoded extension `E`, `None` when absent; a malformed one is refused.
fn extension<E>(certificate: &Certificate) -> Result<Option<E>, Rejection>
where
    E: x509_cert::der::oid::AssociatedOid + for<'a> x509_cert::der::Decode<'a>,
{
    let Some(extensions) = &certificate.tbs_certificate.extensions else {
        return Ok(None);
    };
    match extensions
        .iter()
        .find(|extension| extension.extn_id == E::OID)
    {
        None => Ok(None),
        Some(extension) => E::from_der(extension.extn_value.as_bytes())
            .map(Some)
            .map_err(|_| Rejection::Malformed),
    }
}

/// An issuer must be a CA allowed to sign certificates.
fn require_ca(issuer: &Certificate) -> Result<(), Rejection> {
    let is_ca = extension::<BasicConstraints>(issuer)?.is_some_and(|constraints| constraints.ca);
    if !is_ca {
        return Err(Rejection::NotACa);
    }
    if extension::<KeyUsage>(issuer)?.is_some_and(|usage| !usage.key_cert_sign()) {
        return Err(Rejection::NotACa);
    }
    Ok(())
}

fn verify_issued_by(child: &Certificate, issuer: &Certificate) -> Result<(), Rejection> {
    let key = public_key(&issuer.tbs_certificate.subject_public_key_info)?;
    let tbs = child
        .tbs_certificate
        .to_der()
        .map_err(|_| Rejection::Malformed)?;
    let signature = child
        .signature
        .as_bytes()
        .ok_or(Rejection::ChainSignature)?;
    let algorithm = child.signature_algorithm.oid;
    if algorithm != child.tbs_certificate.signature.oid {
        return Err(Rejection::ChainSignature);
    }
    let verified = match (&key, algorithm) {
        (PublicKey::Rsa(key), OID_SHA256_WITH_RSA) => verify_rsa_pkcs1(key, &tbs, signature),
        (PublicKey::Rsa(key), OID_RSASSA_PSS) => verify_rsa_pss(key, &tbs, signature),
        (PublicKey::P256(key), OID_ECDSA_SHA256) => verify_p256(key, &tbs, signature),
        _ => false,
    };
    if verified {
        Ok(())
    } else {
        Err(Rejection::ChainSignature)
    }
}

/// The value of the first `oid` attribute of `name`, as text (PrintableString or UTF8String).
fn attribute(name: &X509Name, oid: ObjectIdentifier) -> Option<String> {
    let value = name
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|attribute| attribute.oid == oid)?
        .value
        .clone();
    match value.tag() {
        Tag::PrintableString | Tag::Utf8String => String::from_utf8(value.value().to_vec()).ok(),
        _ => None,
    }
}

/// A public key the provider can verify with.
enum PublicKey {
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
}

fn public_key(spki: &SubjectPublicKeyInfoOwned) -> Result<PublicKey, Rejection> {
    let der = spki.to_der().map_err(|_| Rejection::Malformed)?;
    match spki.algorithm.oid {
        OID_RSA_ENCRYPTION => {
            let key =
                rsa::RsaPublicKey::from_public_key_der(&der).map_err(|_| Rejection::Malformed)?;
            if rsa::traits::PublicKeyParts::size(&key) * 8 < MIN_RSA_BITS {
                return Err(Rejection::WeakKey);
            }
            Ok(PublicKey::Rsa(key))
        }
        OID_EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|parameters| parameters.decode_as::<ObjectIdentifier>().ok());
            if curve != Some(OID_P256) {
                return Err(Rejection::UnsupportedKey);
            }
            p256::ecdsa::VerifyingKey::from_public_key_der(&der)
                .map(PublicKey::P256)
                .map_err(|_| Rejection::Malformed)
        }
        _ => Err(Rejection::UnsupportedKey),
    }
}

impl PublicKey {
    /// RSA: PKCS#1 v1.5 or PSS over SHA-256; ECDSA P-256 over SHA-256.
    fn verify_message(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Rsa(key) => {
                verify_rsa_pkcs1(key, message, signature) || verify_rsa_pss(key, message, signature)
            }
            Self::P256(key) => verify_p256(key, message, signature),
        }
    }
}

fn verify_rsa_pkcs1(key: &rsa::RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = rsa::pkcs1v15::Signature::try_from(signature) else {
        return false;
    };
    rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key.clone())
        .verify(message, &signature)
        .is_ok()
}

fn verify_rsa_pss(key: &rsa::RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = rsa::pss::Signature::try_from(signature) else {
        return false;
    };
    rsa::pss::VerifyingKey::<Sha256>::new(key.clone())
        .verify(message, &signature)
        .is_ok()
}

fn verify_p256(key: &p256::ecdsa::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    let signature = p256::ecdsa::Signature::from_der(signature)
        .or_else(|_| p256::ecdsa::Signature::from_slice(signature));
    signature.is_ok_and(|signature| key.verify(message, &signature).is_ok())
}

fn generate_nonce() -> String {
    let mut bytes = [0u8; NONCE_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[async_trait::async_trait]
impl IdentityProvider for FinancialCertProvider {
    fn id(&self) -> ProviderId {
        ProviderKind::FinancialCert.id()
    }

    async fn start(&self, request: StartRequest) -> Result<StartedChallenge, AuthError> {
        let nonce = generate_nonce();
        let expires_at = self.clock.now()
            + chrono::Duration::from_std(self.settings.nonce_ttl)
                .unwrap_or(chrono::Duration::minutes(5));
        let challenge = Challenge {
            provider: self.id(),
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
                self.settings.nonce_ttl,
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
        let ChallengeAnswer::CertificateSignature(answer) = answer else {
            return Err(AuthError::InvalidRequest(
                "signature and certificate are required for the financial_cert provider".to_owned(),
            ));
        };
        let ChallengeSecret::AssertionBinding { nonce, name_digest } = &challenge.secret else {
            tracing::warn!(%verification_id, "a financial-certificate challenge holds no nonce");
            return Err(AuthError::VerificationExpired);
        };
        refuse_if_exhausted(
            self.store.as_ref(),
            verification_id,
            challenge,
            self.settings.max_attempts,
        )
        .await?;
        match self.check(verification_id, challenge, nonce, name_digest, answer) {
            Ok(()) => use_up(self.store.as_ref(), verification_id).await,
            Err(rejection) => {
                tracing::info!(
                    %verification_id,
                    provider = "financial_cert",
                    reason = rejection.label(),
                    "certificate refused"
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
    fn the_subject_identifier_is_the_person_keys_bytes_in_hex() {
        let rrn = crate::domain::Rrn::parse("900101-1234567").unwrap();
        let key = crate::domain::derive_person_key(b"secret", &rrn);
        let identifier = subject_identifier(&key).unwrap();
        assert_eq!(identifier.len(), 64);
        assert!(identifier.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!identifier.contains("900101"));
    }

    #[test]
    fn garbage_is_malformed_and_empty_roots_are_refused() {
        for text in [
            "",
            "not base64!",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----",
            "-----BEGIN CERTIFICATE----------END CERTIFICATE-----",
            "-----END CERTIFICATE----------BEGIN CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
            "AAAA",
        ] {
            assert!(parse_chain(text).is_err(), "{text:?}");
        }
        assert!(TrustedRoots::from_pem(b"").is_err());
        assert!(TrustedRoots::from_der(&[]).is_err());
    }
}
