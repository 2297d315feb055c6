//! The dev run's stand-in financial-certificate authority: a P-256 root CA made at start and a
//! P-256 key per person, with which it "signs in the person's certificate app" whatever nonce
//! it is asked to (that is the dev part). Its certificates follow the profile auth-svc's
//! `financial_cert` provider checks: key usage `digitalSignature`, the person's name as the
//! subject's common name and auth-svc's subject identifier (derived from the RRN with
//! auth-svc's key; auth-svc registers the derivation with [`DevFinancialCa::set_subject_identifier`])
//! as its `serialNumber`. Production wiring never constructs this.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{DerSignature, SigningKey};
use x509_cert::Certificate;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::{Builder as _, CertificateBuilder, Profile};
use x509_cert::der::asn1::{
    Any, GeneralizedTime, ObjectIdentifier, PrintableStringRef, SetOfVec, Utf8StringRef,
};
use x509_cert::der::{Encode as _, EncodePem as _, pem::LineEnding};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

/// Derives a person's certificate identifier from an RRN (`None` for a malformed RRN).
pub type SubjectIdentifier = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Why the dev CA could not issue.
#[derive(Debug, thiserror::Error)]
pub enum DevCaError {
    #[error("no subject identifier registered: auth-svc is not part of this dev run")]
    NoSubjectIdentifier,
    #[error("the rrn is malformed")]
    InvalidRrn,
    #[error("building the certificate failed")]
    Build,
}

/// A certificate chain and the signature over a nonce, as the person's client hands them over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevCertificateSignature {
    /// The person's certificate, PEM.
    pub certificate: String,
    /// ECDSA P-256 / SHA-256 over the nonce's UTF-8 bytes, DER, base64.
    pub signature: String,
}

struct Root {
    key: SigningKey,
    certificate: Certificate,
}

/// The stand-in CA.
#[derive(Default)]
pub struct DevFinancialCa {
    root: OnceLock<Option<Root>>,
    people: Mutex<HashMap<String, SigningKey>>,
    subject_identifier: RwLock<Option<SubjectIdentifier>>,
}

impl std::fmt::Debug for DevFinancialCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevFinancialCa").finish_non_exhaustive()
    }
}

/// Keys kept per person at most; the oldest are not tracked, so the map is just cleared.
const MAX_PEOPLE: usize = 10_000;

impl DevFinancialCa {
    pub fn new() -> Self {
        Self::default()
    }

    /// How a person's certificate identifier is derived from their RRN (auth-svc's rule).
    pub fn set_subject_identifier(&self, derive: SubjectIdentifier) {
        if let Ok(mut slot) = self.subject_identifier.write() {
            *slot = Some(derive);
        }
    }

    fn root(&self) -> Result<&Root, DevCaError> {
        self.root
            .get_or_init(|| build_root().ok())
            .as_ref()
            .ok_or(DevCaError::Build)
    }

    /// The root certificate, DER (what auth-svc trusts in the dev run).
    pub fn root_der(&self) -> Result<Vec<u8>, DevCaError> {
        self.root()?
            .certificate
            .to_der()
            .map_err(|_| DevCaError::Build)
    }

    /// The root certificate, PEM.
    pub fn root_pem(&self) -> Result<String, DevCaError> {
        self.root()?
            .certificate
            .to_pem(LineEnding::LF)
            .map_err(|_| DevCaError::Build)
    }

    /// A certificate for the person, valid from a day before `now` for two years, and their
    /// key's signature over `nonce`.
    pub fn issue(
        &self,
        name: &str,
        rrn: &str,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<DevCertificateSignature, DevCaError> {
        let derive = self
            .subject_identifier
            .read()
            .ok()
            .and_then(|slot| slot.clone())
            .ok_or(DevCaError::NoSubjectIdentifier)?;
        let identifier = derive(rrn).ok_or(DevCaError::InvalidRrn)?;
        let key = {
            let mut people = self.people.lock().map_err(|_| DevCaError::Build)?;
            if people.len() >= MAX_PEOPLE {
                people.clear();
            }
            people
                .entry(identifier.clone())
                .or_insert_with(|| SigningKey::random(&mut rand::rngs::OsRng))
                .clone()
        };
        let root = self.root()?;
        let start = u64::try_from(now.timestamp()).map_err(|_| DevCaError::Build)? - 86_400;
        let validity = validity(start, start + 2 * 365 * 86_400)?;
        let subject = person_name(name, &identifier)?;
        let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key())
            .map_err(|_| DevCaError::Build)?;
        let builder = CertificateBuilder::new(
            Profile::Leaf {
                issuer: root.certificate.tbs_certificate.subject.clone(),
                enable_key_agreement: false,
                enable_key_encipherment: false,
            },
            random_serial()?,
            validity,
            subject,
            spki,
            &root.key,
        )
        .map_err(|_| DevCaError::Build)?;
        let certificate = builder
            .build::<DerSignature>()
            .map_err(|_| DevCaError::Build)?
            .to_pem(LineEnding::LF)
            .map_err(|_| DevCaError::Build)?;
        let signature: DerSignature = key.sign(nonce.as_bytes());
        Ok(DevCertificateSignature {
            certificate,
            signature: STANDARD.encode(signature.as_bytes()),
        })
    }
}

fn build_root() -> Result<Root, DevCaError> {
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let subject = Name::from_str("CN=vaxbook dev financial CA,O=vaxbook dev")
        .map_err(|_| DevCaError::Build)?;
    let spki =
        SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).map_err(|_| DevCaError::Build)?;
    // 2000-01-01 to 2099-12-31: the dev clock may be set anywhere in between.
    let validity = validity(946_684_800, 4_102_358_400)?;
    let certificate = CertificateBuilder::new(
        Profile::Root,
        random_serial()?,
        validity,
        subject,
        spki,
        &key,
    )
    .map_err(|_| DevCaError::Build)?
    .build::<DerSignature>()
    .map_err(|_| DevCaError::Build)?;
    Ok(Root { key, certificate })
}

fn validity(not_before: u64, not_after: u64) -> Result<Validity, DevCaError> {
    let time = |secs: u64| {
        GeneralizedTime::from_unix_duration(Duration::from_secs(secs))
            .map(Time::GeneralTime)
            .map_err(|_| DevCaError::Build)
    };
    Ok(Validity {
        not_before: time(not_before)?,
        not_after: time(not_after)?,
    })
}

fn random_serial() -> Result<SerialNumber, DevCaError> {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    // Positive and without a leading zero byte.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::new(&bytes).map_err(|_| DevCaError::Build)
}

/// `CN=<name>, serialNumber=<identifier>`, built attribute by attribute (a name is not
/// RFC 4514 text to be escaped).
pub fn person_name(name: &str, identifier: &str) -> Result<Name, DevCaError> {
    const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
    const SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");
    let common_name = Any::from(Utf8StringRef::new(name.trim()).map_err(|_| DevCaError::Build)?);
    let serial = Any::from(PrintableStringRef::new(identifier).map_err(|_| DevCaError::Build)?);
    let rdn = |oid, value| {
        SetOfVec::try_from(vec![AttributeTypeAndValue { oid, value }])
            .map(RelativeDistinguishedName)
            .map_err(|_| DevCaError::Build)
    };
    Ok(RdnSequence(vec![
        rdn(COMMON_NAME, common_name)?,
        rdn(SERIAL_NUMBER, serial)?,
    ]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use x509_cert::der::Decode as _;

    use super::*;

    #[test]
    fn without_a_subject_identifier_nothing_is_issued() {
        let ca = DevFinancialCa::new();
        let error = ca
            .issue("홍길동", "900101-1234567", "n", Utc::now())
            .unwrap_err();
        assert!(matches!(error, DevCaError::NoSubjectIdentifier));
    }

    #[test]
    fn certificates_name_the_person_by_the_identifier_and_chain_to_the_root() {
        let ca = DevFinancialCa::new();
        ca.set_subject_identifier(Arc::new(|rrn: &str| {
            (!rrn.is_empty()).then(|| "ab".repeat(32))
        }));
        let issued = ca
            .issue("홍길동", "900101-1234567", "nonce", Utc::now())
            .unwrap();
        let chain = Certificate::load_pem_chain(issued.certificate.as_bytes()).unwrap();
        let root = Certificate::from_der(&ca.root_der().unwrap()).unwrap();
        assert_eq!(
            chain[0].tbs_certificate.issuer,
            root.tbs_certificate.subject
        );
        let subject = chain[0].tbs_certificate.subject.to_string();
        assert!(subject.contains(&"ab".repeat(32)), "{subject}");
        assert!(!subject.contains("900101"));
        assert!(
            ca.root_pem()
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert!(matches!(
            ca.issue("홍길동", "", "n", Utc::now()),
            Err(DevCaError::InvalidRrn)
        ));
    }
}
