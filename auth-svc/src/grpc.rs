//! The tonic adapter of `vaxbook.auth.v1.AuthService`: wire messages become validated inputs
//! (every field checked before anything happens), results become wire messages, errors become
//! statuses through the one `AuthError` → `Problem` mapping.

use std::sync::Arc;

use platform::clock::to_timestamp;
use proto::auth::v1::auth_service_server::AuthService;
use proto::auth::v1::{
    CompleteVerificationRequest, CompleteVerificationResponse, GetJwksRequest, GetJwksResponse,
    SessionInfo, StartVerificationRequest, StartVerificationResponse,
};
use tonic::{Request, Response, Status};

use crate::error::AuthError;
use crate::identity::{Name, Phone, Rrn};
use crate::model::{DeviceId, Otp, ProviderKind, SignedAssertion, VerificationId};
use crate::providers::ChallengeAnswer;
use crate::service::{CompleteInput, StartInput, Verifications};

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

/// Serves `AuthService` over the shared verification flow.
#[derive(Clone)]
pub struct AuthGrpc {
    verifications: Arc<Verifications>,
}

impl AuthGrpc {
    pub fn new(verifications: Arc<Verifications>) -> Self {
        Self { verifications }
    }
}

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    async fn start_verification(
        &self,
        request: Request<StartVerificationRequest>,
    ) -> Result<Response<StartVerificationResponse>, Status> {
        let input = StartInput::try_from(request.into_inner())?;
        let started = self.verifications.start(input).await?;
        Ok(Response::new(StartVerificationResponse {
            verification_id: started.verification_id.to_string(),
            provider: started.provider.to_wire().into(),
            expires_at: Some(to_timestamp(started.expires_at)),
            masked_phone: started.masked_phone,
            // Only the phone provider sends a code; 0 tells clients there is none to type.
            otp_length: if started.provider == ProviderKind::Phone {
                Otp::LENGTH as i32
            } else {
                0
            },
            nonce: started.nonce,
        }))
    }

    async fn complete_verification(
        &self,
        request: Request<CompleteVerificationRequest>,
    ) -> Result<Response<CompleteVerificationResponse>, Status> {
        let input = CompleteInput::try_from(request.into_inner())?;
        let completed = self.verifications.complete(input).await?;
        Ok(Response::new(CompleteVerificationResponse {
            access_token: completed.token.token,
            token_type: "Bearer".to_owned(),
            expires_in: completed.token.expires_in,
            session: Some(SessionInfo {
                id: completed.session.session_id,
                device_id: completed.device_id.as_str().to_owned(),
                expires_at: Some(to_timestamp(completed.session.expires_at)),
            }),
            masked_name: completed.masked_name,
        }))
    }

    async fn get_jwks(
        &self,
        _request: Request<GetJwksRequest>,
    ) -> Result<Response<GetJwksResponse>, Status> {
        let jwks_json = serde_json::to_string(&self.verifications.jwks()).map_err(|err| {
            tracing::error!(error = %err, "cannot encode the JWKS");
            platform::problem::Problem::internal().to_status()
        })?;
        Ok(Response::new(GetJwksResponse { jwks_json }))
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
