//! The small validated values of a verification that are not personal data: which provider,
//! which verification, and the answer a person gives back (a one-time code or a provider's
//! signed assertion). The device is a [`platform::ids::DeviceId`].

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AuthError;

/// A provider's id on the wire and in stored challenges: `phone`, `financial_cert`, `kakao`, …
/// and whatever id a provider added later chooses (1 to 32 of `a-z`, `0-9`, `_`, starting
/// with a letter). Which ids are on offer is the provider registry's to say.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProviderId(String);

impl ProviderId {
    const MAX_CHARS: usize = 32;

    /// Checks the spelling only; an unknown id is the registry's `unsupported-provider`.
    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        let raw = raw.trim();
        let well_formed = !raw.is_empty()
            && raw.len() <= Self::MAX_CHARS
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
        if !well_formed {
            return Err(AuthError::InvalidRequest(
                "provider must be a provider id such as phone, financial_cert or kakao".to_owned(),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The built-in provider of this id, if it is one.
    pub fn builtin(&self) -> Option<ProviderKind> {
        ProviderKind::ALL
            .into_iter()
            .find(|kind| kind.name() == self.0)
    }
}

impl TryFrom<String> for ProviderId {
    type Error = AuthError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<ProviderId> for String {
    fn from(id: ProviderId) -> Self {
        id.0
    }
}

impl From<ProviderKind> for ProviderId {
    fn from(kind: ProviderKind) -> Self {
        Self(kind.name().to_owned())
    }
}

impl PartialEq<ProviderKind> for ProviderId {
    fn eq(&self, kind: &ProviderKind) -> bool {
        self.0 == kind.name()
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ProviderId {
    type Err = AuthError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

/// The built-in identity providers of R2 (the wire enum's values). Which of them are enabled
/// is decided by the provider registry, not here; providers added later have only a
/// [`ProviderId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Phone,
    FinancialCert,
    Kakao,
    Naver,
    Pass,
}

impl ProviderKind {
    /// The "simple certificate" providers: the person confirms in the provider's app and
    /// auth-svc receives a signed assertion.
    pub const SIMPLE_CERT: [ProviderKind; 3] = [Self::Kakao, Self::Naver, Self::Pass];

    /// Every built-in provider.
    pub const ALL: [ProviderKind; 5] = [
        Self::Phone,
        Self::FinancialCert,
        Self::Kakao,
        Self::Naver,
        Self::Pass,
    ];

    /// The provider's [`ProviderId`].
    pub fn id(self) -> ProviderId {
        ProviderId::from(self)
    }

    /// The wire name, also the `iss` of a simple-certificate assertion.
    pub fn name(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::FinancialCert => "financial_cert",
            Self::Kakao => "kakao",
            Self::Naver => "naver",
            Self::Pass => "pass",
        }
    }

    /// Reads the wire enum; unspecified or unknown values are a malformed request.
    pub fn from_wire(value: i32) -> Result<Self, AuthError> {
        use proto::auth::v1::Provider;
        match Provider::try_from(value) {
            Ok(Provider::Phone) => Ok(Self::Phone),
            Ok(Provider::FinancialCert) => Ok(Self::FinancialCert),
            Ok(Provider::Kakao) => Ok(Self::Kakao),
            Ok(Provider::Naver) => Ok(Self::Naver),
            Ok(Provider::Pass) => Ok(Self::Pass),
            Ok(Provider::Unspecified) | Err(_) => Err(AuthError::InvalidRequest(
                "provider is required (phone, financial_cert, kakao, naver or pass)".to_owned(),
            )),
        }
    }

    pub fn to_wire(self) -> proto::auth::v1::Provider {
        use proto::auth::v1::Provider;
        match self {
            Self::Phone => Provider::Phone,
            Self::FinancialCert => Provider::FinancialCert,
            Self::Kakao => Provider::Kakao,
            Self::Naver => Provider::Naver,
            Self::Pass => Provider::Pass,
        }
    }
}

/// The id of one verification attempt (a random UUID, hard to guess).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VerificationId(Uuid);

impl VerificationId {
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        Uuid::parse_str(raw.trim())
            .map(Self)
            .map_err(|_| AuthError::InvalidRequest("verification_id must be a UUID".to_owned()))
    }
}

impl fmt::Display for VerificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A six-digit one-time code as typed by the person.
#[derive(Clone, PartialEq, Eq)]
pub struct Otp(String);

impl Otp {
    pub const LENGTH: usize = 6;

    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        let trimmed = raw.trim();
        if trimmed.len() != Self::LENGTH || !trimmed.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(AuthError::InvalidRequest("otp must be 6 digits".to_owned()));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Otp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Otp(***)")
    }
}

/// A provider's signed assertion (a compact JWS) as the person's app handed it over. It
/// carries identity data, so `Debug` never prints it; its size is bounded before anything
/// parses it.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedAssertion(String);

impl SignedAssertion {
    pub const MAX_BYTES: usize = 8 * 1024;

    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(AuthError::InvalidRequest(
                "assertion is required (kakao, naver, pass)".to_owned(),
            ));
        }
        if trimmed.len() > Self::MAX_BYTES {
            return Err(AuthError::InvalidRequest(
                "assertion must be at most 8 KiB".to_owned(),
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SignedAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignedAssertion(***)")
    }
}

/// A financial certificate's answer as the person's client handed it over: the certificate
/// chain (PEM, or base64 DER) and the signature over the nonce (base64). Both are bounded
/// before anything parses them; `Debug` never prints the certificate (it names the person).
#[derive(Clone, PartialEq, Eq)]
pub struct CertificateSignature {
    pub certificate: String,
    pub signature: String,
}

impl CertificateSignature {
    pub const MAX_BYTES: usize = 16 * 1024;

    pub fn parse(certificate: &str, signature: &str) -> Result<Self, AuthError> {
        let (certificate, signature) = (certificate.trim(), signature.trim());
        if certificate.is_empty() || signature.is_empty() {
            return Err(AuthError::InvalidRequest(
                "signature and certificate are both required (financial_cert)".to_owned(),
            ));
        }
        if certificate.len() > Self::MAX_BYTES || signature.len() > Self::MAX_BYTES {
            return Err(AuthError::InvalidRequest(
                "signature and certificate must each be at most 16 KiB".to_owned(),
            ));
        }
        Ok(Self {
            certificate: certificate.to_owned(),
            signature: signature.to_owned(),
        })
    }
}

impl fmt::Debug for CertificateSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CertificateSignature(***)")
    }
}

/// The person's answer to a challenge. Which kind a provider expects is the provider's to
/// check: the request does not name the provider, the stored challenge does.
#[derive(Clone, Debug)]
pub enum ChallengeAnswer {
    /// The one-time code (phone).
    Otp(Otp),
    /// The provider's signed assertion (kakao, naver, pass).
    Assertion(SignedAssertion),
    /// A certificate chain and the signature over the nonce (financial_cert).
    CertificateSignature(CertificateSignature),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn otps_are_exactly_six_digits() {
        assert_eq!(Otp::parse("012345").unwrap().as_str(), "012345");
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６"] {
            assert!(Otp::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format!("{:?}", Otp::parse("123456").unwrap()), "Otp(***)");
    }

    #[test]
    fn providers_round_trip_through_the_wire_enum_and_unspecified_is_refused() {
        for kind in [
            ProviderKind::Phone,
            ProviderKind::FinancialCert,
            ProviderKind::Kakao,
            ProviderKind::Naver,
            ProviderKind::Pass,
        ] {
            assert_eq!(
                ProviderKind::from_wire(kind.to_wire() as i32).unwrap(),
                kind
            );
        }
        assert!(ProviderKind::from_wire(0).is_err());
        assert!(ProviderKind::from_wire(42).is_err());
    }

    #[test]
    fn provider_ids_are_short_lower_case_words_and_name_the_built_ins() {
        for kind in ProviderKind::ALL {
            let id = ProviderId::parse(kind.name()).unwrap();
            assert_eq!(id.builtin(), Some(kind));
            assert_eq!(id, kind);
        }
        let added = ProviderId::parse(" toss_cert2 ").unwrap();
        assert_eq!(added.as_str(), "toss_cert2");
        assert_eq!(added.builtin(), None);
        for bad in ["", "Phone", "2fa", "a-b", "a b", "폰", &"a".repeat(33)] {
            assert!(ProviderId::parse(bad).is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&ProviderKind::FinancialCert.id()).unwrap();
        assert_eq!(
            json,
            serde_json::to_string(&ProviderKind::FinancialCert).unwrap()
        );
        assert!(serde_json::from_str::<ProviderId>("\"Bad\"").is_err());
    }

    #[test]
    fn certificate_answers_need_both_parts_are_bounded_and_never_printed() {
        let answer =
            CertificateSignature::parse(" -----BEGIN CERTIFICATE----- ", " c2ln ").unwrap();
        assert_eq!(answer.signature, "c2ln");
        assert_eq!(format!("{answer:?}"), "CertificateSignature(***)");
        assert!(CertificateSignature::parse("", "c2ln").is_err());
        assert!(CertificateSignature::parse("cert", " ").is_err());
        let long = "a".repeat(CertificateSignature::MAX_BYTES + 1);
        assert!(CertificateSignature::parse(&long, "c2ln").is_err());
    }

    #[test]
    fn simple_cert_providers_match_the_shared_list() {
        let names: Vec<&str> = ProviderKind::SIMPLE_CERT
            .iter()
            .map(|kind| kind.name())
            .collect();
        assert_eq!(names, platform::idp::SIMPLE_CERT_PROVIDERS);
    }

    #[test]
    fn assertions_must_be_present_and_bounded_and_are_never_printed() {
        let token = "eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJrYWthbyJ9.c2ln";
        assert_eq!(
            SignedAssertion::parse(&format!(" {token}\n"))
                .unwrap()
                .as_str(),
            token
        );
        assert_eq!(
            format!("{:?}", SignedAssertion::parse(token).unwrap()),
            "SignedAssertion(***)"
        );
        for bad in ["", "   ", "\n"] {
            assert!(SignedAssertion::parse(bad).is_err(), "{bad:?}");
        }
        assert!(SignedAssertion::parse(&"a".repeat(SignedAssertion::MAX_BYTES)).is_ok());
        let too_long = SignedAssertion::parse(&"a".repeat(SignedAssertion::MAX_BYTES + 1));
        assert!(matches!(too_long, Err(AuthError::InvalidRequest(_))));
    }

    #[test]
    fn verification_ids_must_be_uuids() {
        let id = VerificationId::new_random();
        assert_eq!(VerificationId::parse(&id.to_string()).unwrap(), id);
        assert!(VerificationId::parse("not-a-uuid").is_err());
        assert!(VerificationId::parse("").is_err());
    }
}
