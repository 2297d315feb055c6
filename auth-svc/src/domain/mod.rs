//! The domain of auth-svc: validated values and the inputs of a verification, built only
//! through checks, so the rules in `service` never see a malformed one. `identity` holds the
//! personal data a person presents (and the person-key derivation), `verification` the values
//! of a verification that are not personal data, `requests` the two validated requests read from
//! their prost messages. The shared identifiers come from [`platform::ids`].

pub mod identity;
pub mod requests;
pub mod verification;

pub use platform::ids::{DeviceId, PersonKey, SessionId};

pub use self::identity::{Name, Phone, Rrn, derive_person_key};
pub use self::requests::{CompleteInput, StartInput};
pub use self::verification::{
    CertificateSignature, ChallengeAnswer, Otp, ProviderId, ProviderKind, SignedAssertion,
    VerificationId,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_are_bounded_and_limited_to_a_safe_alphabet() {
        assert!(DeviceId::parse("web-1.a_b:c").is_ok());
        assert!(DeviceId::parse(&"a".repeat(128)).is_ok());
        for bad in ["", " ", "a b", "기기", "a/b", "a\nb"] {
            assert!(DeviceId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(DeviceId::parse(&"a".repeat(129)).is_err());
    }
}
