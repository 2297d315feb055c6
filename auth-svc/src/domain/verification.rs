//! The small validated values of a verification that are not personal data: which provider,
//! which verification, and the answer a person gives back (a one-time code or a provider's
//! signed assertion). The device is a [`platform::ids::DeviceId`].

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AuthError;

/// The identity providers of R2. Which of them are enabled is decided by the provider
/// registry, not here.
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

/// The person's answer to a challenge. Which kind a provider expects is the provider's to
/// check: the request does not name the provider, the stored challenge does.
#[derive(Clone, Debug)]
pub enum ChallengeAnswer {
    /// The one-time code (phone).
    Otp(Otp),
    /// The provider's signed assertion (kakao, naver, pass).
    Assertion(SignedAssertion),
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
