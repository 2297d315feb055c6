//! The two requests of a verification as validated domain inputs, read from their prost
//! messages at the edge: every field is checked here, before anything happens, and a malformed
//! field is an [`AuthError`] naming it.

use proto::auth::v1::{CompleteVerificationRequest, StartVerificationRequest};

use super::{
    ChallengeAnswer, DeviceId, Name, Otp, Phone, ProviderKind, Rrn, SignedAssertion, VerificationId,
};
use crate::error::AuthError;

/// A validated request to start a verification.
#[derive(Debug)]
pub struct StartInput {
    pub provider: ProviderKind,
    pub name: Name,
    pub rrn: Rrn,
    pub phone: Option<Phone>,
    pub device_id: DeviceId,
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
        let provider = ProviderKind::from_wire(request.provider)?;
        let name = Name::parse(&request.name)?;
        let rrn = Rrn::parse(&request.rrn)?;
        // The phone provider needs the number; others take it only when given.
        let phone = if provider == ProviderKind::Phone || !request.phone.trim().is_empty() {
            Some(Phone::parse(&request.phone)?)
        } else {
            None
        };
        let device_id = DeviceId::parse(&request.device_id)?;
        Ok(Self {
            provider,
            name,
            rrn,
            phone,
            device_id,
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
        let answer = match (has_otp, has_assertion) {
            (true, false) => ChallengeAnswer::Otp(Otp::parse(&request.otp)?),
            (false, true) => {
                ChallengeAnswer::Assertion(SignedAssertion::parse(&request.assertion)?)
            }
            (true, true) => {
                return Err(AuthError::InvalidRequest(
                    "give either otp or assertion, not both".to_owned(),
                ));
            }
            (false, false) => {
                return Err(AuthError::InvalidRequest(
                    "otp (phone) or assertion (kakao, naver, pass) is required".to_owned(),
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
