//! The two requests of a verification as validated domain inputs, read from their prost
//! messages at the edge: every field is checked here, before anything happens, and a malformed
//! field is an [`AuthError`] naming it.

use proto::auth::v1::{CompleteVerificationRequest, StartVerificationRequest};

use super::{
    CertificateSignature, ChallengeAnswer, DeviceId, Name, Otp, Phone, ProviderId, ProviderKind,
    Rrn, SignedAssertion, VerificationId,
};
use crate::carrier::Carrier;
use crate::error::AuthError;
use crate::limits::ClientAddress;

/// A validated request to start a verification.
#[derive(Debug)]
pub struct StartInput {
    pub provider: ProviderId,
    pub name: Name,
    pub rrn: Rrn,
    pub phone: Option<Phone>,
    /// The phone's carrier: required by the phone provider, ignored by the others.
    pub carrier: Option<Carrier>,
    pub device_id: DeviceId,
    /// Where the request came from, for the per-address start limit; `None` when unknown.
    pub client: Option<ClientAddress>,
}

/// A validated answer to a challenge.
#[derive(Debug)]
pub struct CompleteInput {
    pub verification_id: VerificationId,
    pub answer: ChallengeAnswer,
    pub device_id: DeviceId,
}

impl TryFrom<StartVerificationRequest> for StartInput {
    type Error = AuthError;

    fn try_from(request: StartVerificationRequest) -> Result<Self, Self::Error> {
        // The id wins; the enum stays for clients that predate it.
        let provider = if request.provider_id.trim().is_empty() {
            ProviderKind::from_wire(request.provider)?.id()
        } else {
            ProviderId::parse(&request.provider_id)?
        };
        let name = Name::parse(&request.name)?;
        let rrn = Rrn::parse(&request.rrn)?;
        // The phone provider needs the number; others take it only when given.
        let phone = if provider == ProviderKind::Phone || !request.phone.trim().is_empty() {
            Some(Phone::parse(&request.phone)?)
        } else {
            None
        };
        let carrier = if provider == ProviderKind::Phone || !request.carrier.trim().is_empty() {
            Some(Carrier::parse(&request.carrier)?)
        } else {
            None
        };
        let device_id = DeviceId::parse(&request.device_id)?;
        let client = ClientAddress::parse_optional(&request.client_address)?;
        Ok(Self {
            provider,
            name,
            rrn,
            phone,
            carrier,
            device_id,
            client,
        })
    }
}

impl TryFrom<CompleteVerificationRequest> for CompleteInput {
    type Error = AuthError;

    fn try_from(request: CompleteVerificationRequest) -> Result<Self, Self::Error> {
        let verification_id = VerificationId::parse(&request.verification_id)?;
        // The request does not name the provider: it answers with the one field its provider
        // uses, and the provider refuses an answer of the other kind.
        let has_otp = !request.otp.trim().is_empty();
        let has_assertion = !request.assertion.trim().is_empty();
        let has_certificate =
            !request.signature.trim().is_empty() || !request.certificate.trim().is_empty();
        let answer = match (has_otp, has_assertion, has_certificate) {
            (true, false, false) => ChallengeAnswer::Otp(Otp::parse(&request.otp)?),
            (false, true, false) => {
                ChallengeAnswer::Assertion(SignedAssertion::parse(&request.assertion)?)
            }
            (false, false, true) => ChallengeAnswer::CertificateSignature(
                CertificateSignature::parse(&request.certificate, &request.signature)?,
            ),
            (false, false, false) => {
                return Err(AuthError::InvalidRequest(
                    "otp (phone), assertion (kakao, naver, pass) or signature and certificate \
                     (financial_cert) is required"
                        .to_owned(),
                ));
            }
            _ => {
                return Err(AuthError::InvalidRequest(
                    "give one answer: otp, assertion, or signature and certificate".to_owned(),
                ));
            }
        };
        Ok(Self {
            verification_id,
            answer,
            device_id: DeviceId::parse(&request.device_id)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use platform::problem::{Problem, ProblemKind};

    use super::*;

    #[test]
    fn the_provider_id_wins_over_the_enum_and_either_names_the_provider() {
        let start = |provider: i32, provider_id: &str| StartVerificationRequest {
            provider,
            provider_id: provider_id.to_owned(),
            name: "홍길동".to_owned(),
            rrn: "900101-1234567".to_owned(),
            device_id: "phone-a".to_owned(),
            ..Default::default()
        };
        let kakao = proto::auth::v1::Provider::Kakao as i32;
        let by_enum = StartInput::try_from(start(kakao, "")).unwrap();
        assert_eq!(by_enum.provider, ProviderKind::Kakao);
        let by_id = StartInput::try_from(start(kakao, "toss_cert")).unwrap();
        assert_eq!(by_id.provider.as_str(), "toss_cert");
        assert!(StartInput::try_from(start(0, "")).is_err());
        assert!(StartInput::try_from(start(0, "Not An Id")).is_err());
    }

    #[test]
    fn a_certificate_answer_needs_both_parts_and_nothing_else() {
        let mut both = request("", "");
        both.certificate = "-----BEGIN CERTIFICATE-----".to_owned();
        both.signature = "c2ln".to_owned();
        let answer = CompleteInput::try_from(both.clone()).unwrap().answer;
        assert!(matches!(answer, ChallengeAnswer::CertificateSignature(_)));
        let mut half = both.clone();
        half.signature = String::new();
        assert!(CompleteInput::try_from(half).is_err());
        let mut mixed = both;
        mixed.otp = "123456".to_owned();
        assert!(CompleteInput::try_from(mixed).is_err());
    }

    fn request(otp: &str, assertion: &str) -> CompleteVerificationRequest {
        CompleteVerificationRequest {
            verification_id: VerificationId::new_random().to_string(),
            otp: otp.to_owned(),
            device_id: "phone-a".to_owned(),
            assertion: assertion.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn the_answer_is_the_one_field_given() {
        let otp = CompleteInput::try_from(request("123456", "")).unwrap();
        assert!(matches!(otp.answer, ChallengeAnswer::Otp(ref code) if code.as_str() == "123456"));
        let assertion = CompleteInput::try_from(request("", "a.b.c")).unwrap();
        assert!(
            matches!(assertion.answer, ChallengeAnswer::Assertion(ref jws) if jws.as_str() == "a.b.c")
        );
    }

    #[test]
    fn missing_doubled_or_oversized_answers_are_malformed_requests() {
        let oversized = "a".repeat(SignedAssertion::MAX_BYTES + 1);
        for (otp, assertion) in [
            ("", ""),
            (" ", "\n"),
            ("123456", "a.b.c"),
            ("", oversized.as_str()),
            ("12345", ""),
        ] {
            let error = CompleteInput::try_from(request(otp, assertion)).unwrap_err();
            assert_eq!(
                Problem::from(error).kind,
                ProblemKind::InvalidRequest,
                "{otp:?} {}",
                assertion.len()
            );
        }
    }
}
