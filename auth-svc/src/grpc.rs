//! The tonic adapter of `vaxbook.auth.v1.AuthService`: wire messages become validated inputs
//! through their `TryFrom` in `domain` (every field checked before anything happens), results
//! become wire messages, errors become statuses through the one `AuthError` → `Problem` mapping.

use std::sync::Arc;

use platform::clock::to_timestamp;
use proto::auth::v1::auth_service_server::AuthService;
use proto::auth::v1::{
    CompleteVerificationRequest, CompleteVerificationResponse, GetJwksRequest, GetJwksResponse,
    ListProvidersRequest, ListProvidersResponse, SessionInfo, StartVerificationRequest,
    StartVerificationResponse,
};
use tonic::{Request, Response, Status};

use crate::domain::{CompleteInput, Otp, ProviderKind, StartInput};
use crate::service::Verifications;

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
            provider: started
                .provider
                .builtin()
                .map_or(
                    proto::auth::v1::Provider::Unspecified,
                    ProviderKind::to_wire,
                )
                .into(),
            expires_at: Some(to_timestamp(started.expires_at)),
            masked_phone: started.masked_phone,
            // Only the phone provider sends a code; 0 tells clients there is none to type.
            otp_length: if started.provider == ProviderKind::Phone {
                Otp::LENGTH as i32
            } else {
                0
            },
            nonce: started.nonce,
            provider_id: started.provider.to_string(),
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
                id: completed.session.session_id.into_string(),
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
        Ok(Response::new(GetJwksResponse {
            keys: platform::auth::jwks_to_wire(&self.verifications.jwks()),
        }))
    }

    async fn list_providers(
        &self,
        _request: Request<ListProvidersRequest>,
    ) -> Result<Response<ListProvidersResponse>, Status> {
        let registry = &self.verifications.providers;
        Ok(Response::new(ListProvidersResponse {
            providers: registry
                .offered()
                .into_iter()
                .map(crate::providers::OfferedProvider::into_wire)
                .collect(),
            window_seconds: u32::try_from(registry.thresholds().window.as_secs())
                .unwrap_or(u32::MAX),
        }))
    }
}
