//! Identity verification (start, complete) and logout. The identity data passes through to
//! auth-svc untouched and unlogged; the gateway only checks that the fields are present.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::CACHE_CONTROL;
use proto::auth::v1 as auth;
use proto::session::v1 as session;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::client_address::ClientAddress;
use crate::extract::{Authenticated, DeviceId, JsonBody, PathId};
use crate::problem::HttpProblem;
use crate::routes::views::{non_empty, required_time};

// No `Debug`: these fields are personal data.
#[derive(Deserialize, ToSchema)]
#[schema(as = StartVerificationRequest)]
pub struct StartVerificationBody {
    /// The provider's id, as listed by `GET /v1/auth/providers` (`phone`, `financial_cert`,
    /// `kakao`, `naver`, `pass`, …).
    #[schema(pattern = "^[a-z][a-z0-9_]{0,31}$", example = "phone")]
    pub provider: String,
    /// Name as registered: 1 to 50 Hangul or Latin letters, with spaces, `·` or `-` between
    /// (surrounding white space is ignored).
    #[schema(
        pattern = r"^\s*[A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\uAC00-\uD7A3](?:[A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\uAC00-\uD7A3 ·-]{0,48}[A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\uAC00-\uD7A3])?\s*$"
    )]
    pub name: String,
    /// Resident registration number, YYMMDD-GNNNNNN (the hyphen may be left out).
    #[schema(
        pattern = r"^\s*[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])-?[0-9]{7}\s*$",
        example = "900101-1234567"
    )]
    pub rrn: String,
    /// Mobile number, 01X-XXXX-XXXX (hyphens and spaces optional); required for the phone
    /// provider, checked when given to the others.
    #[serde(default)]
    #[schema(
        pattern = r"^\s*0[- ]?1[- ]?[016789](?:[- ]?[0-9]){7,8}\s*$",
        example = "010-1234-5678"
    )]
    pub phone: Option<String>,
    /// The phone's carrier; required for the phone provider. The carriers'
    /// identity-verification agency confirms the phone is registered to this name, birth date
    /// and sex digit before any code is sent.
    #[serde(default)]
    #[schema(value_type = Option<Carrier>, example = "skt")]
    pub carrier: Option<String>,
}

/// The mobile carriers (`lgu` is LG U+, `mvno` a budget operator on one of their networks).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum Carrier {
    Skt,
    Kt,
    Lgu,
    Mvno,
}

/// The providers on offer are listed by `GET /v1/auth/providers` (auth-svc decides; the gateway
/// keeps no list). A provider id: lowercase letters, digits and `_`, starting with a letter.
pub const PROVIDER_ID_PATTERN: &str = "^[a-z][a-z0-9_]{0,31}$";

fn well_formed_provider_id(raw: &str) -> bool {
    let mut bytes = raw.bytes();
    raw.len() <= 32
        && bytes.next().is_some_and(|first| first.is_ascii_lowercase())
        && bytes.all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
}

fn require_text(field: &str, value: &str, max_chars: usize) -> Result<(), HttpProblem> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(HttpProblem::invalid(format!("`{field}` must not be empty")));
    }
    if trimmed.chars().count() > max_chars {
        return Err(HttpProblem::invalid(format!(
            "`{field}` is longer than {max_chars} characters"
        )));
    }
    Ok(())
}

impl StartVerificationBody {
    fn into_request(
        self,
        device_id: DeviceId,
        client: ClientAddress,
    ) -> Result<auth::StartVerificationRequest, HttpProblem> {
        if !well_formed_provider_id(&self.provider) {
            return Err(HttpProblem::invalid(
                "`provider` must be a provider id (see GET /v1/auth/providers)",
            ));
        }
        require_text("name", &self.name, 64)?;
        require_text("rrn", &self.rrn, 32)?;
        // Which fields a provider needs is auth-svc's to say (GET /v1/auth/providers lists
        // them); the gateway only bounds their size.
        let phone = self.phone.unwrap_or_default();
        let carrier = self.carrier.unwrap_or_default();
        if phone.chars().count() > 32 || carrier.chars().count() > 8 {
            return Err(HttpProblem::invalid("`phone` or `carrier` is too long"));
        }
        Ok(auth::StartVerificationRequest {
            provider_id: self.provider,
            name: self.name.trim().to_owned(),
            rrn: self.rrn.trim().to_owned(),
            phone: phone.trim().to_owned(),
            device_id: device_id.0,
            carrier: carrier.trim().chars().take(8).collect(),
            client_address: client
                .0
                .map(|address| address.to_string())
                .unwrap_or_default(),
            ..Default::default()
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationStarted {
    #[schema(format = Uuid)]
    pub verification_id: String,
    /// The provider's id.
    #[schema(example = "phone")]
    pub provider: String,
    /// RFC 3339 with the KST offset, e.g. 2021-08-09T20:00:00+09:00.
    #[schema(format = DateTime, example = "2021-08-09T20:00:00+09:00")]
    pub expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "010-****-5678")]
    pub masked_phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otp_length: Option<i32>,
    /// What the provider's assertion must carry (kakao, naver, pass).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// `POST /v1/auth/verifications`
#[utoipa::path(
    post,
    path = "/v1/auth/verifications",
    operation_id = "startVerification",
    summary = "Start identity verification",
    tag = "auth",
    params(DeviceIdHeader),
    request_body = StartVerificationBody,
    responses((status = 201, description = "The challenge was issued (for the phone provider, a one-time code was sent by SMS).", body = VerificationStarted)),
    extensions(("x-problem-types" = json!(["invalid-request", "invalid-identity", "unsupported-provider",
        "identity-mismatch", "rate-limited", "device-locked", "internal", "overloaded", "unavailable",
        "provider-unavailable"])))
)]
pub async fn start_verification(
    State(state): State<AppState>,
    device_id: DeviceId,
    client: ClientAddress,
    JsonBody(body): JsonBody<StartVerificationBody>,
) -> Result<Response, HttpProblem> {
    let request = body.into_request(device_id, client)?;
    let started = state
        .clients
        .auth
        .clone()
        .start_verification(request)
        .await
        .map_err(|status| HttpProblem::from_grpc("auth-svc", &status))?
        .into_inner();
    let provider = Some(started.provider_id)
        .filter(|id| well_formed_provider_id(id))
        .ok_or_else(|| crate::routes::views::incomplete("auth-svc", "provider_id"))?;
    let view = VerificationStarted {
        expires_at: required_time("auth-svc", "expires_at", started.expires_at.as_ref())?,
        verification_id: started.verification_id,
        provider,
        masked_phone: non_empty(started.masked_phone),
        otp_length: (started.otp_length > 0).then_some(started.otp_length),
        nonce: non_empty(started.nonce),
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// The answer to the challenge: `otp` (phone), `assertion` (kakao, naver, pass) or
/// `signature` + `certificate` (financial_cert). auth-svc checks that the answer fits the
/// provider the verification started with.
#[derive(Deserialize, ToSchema)]
#[schema(as = CompleteVerificationRequest)]
pub struct CompleteVerificationBody {
    /// The six-digit one-time code sent by SMS (phone).
    #[serde(default)]
    #[schema(max_length = 16, pattern = r"^\s*[0-9]{6}\s*$")]
    pub otp: Option<String>,
    /// The signed assertion the provider's app returned (kakao, naver, pass).
    #[serde(default)]
    #[schema(max_length = 8192, pattern = r"^\s*[A-Za-z0-9_=.-]+\s*$")]
    pub assertion: Option<String>,
    /// Signature over the nonce by the certificate's key, base64 (financial_cert).
    #[serde(default)]
    #[schema(max_length = 16384, pattern = r"^\s*[!-~][!-~\s]*$")]
    pub signature: Option<String>,
    /// The X.509 certificate, PEM (financial_cert).
    #[serde(default)]
    #[schema(max_length = 16384, pattern = r"^\s*[!-~][!-~\s]*$")]
    pub certificate: Option<String>,
}

/// Upper bound of an assertion or certificate; larger bodies are refused by the body limit.
const MAX_ANSWER_CHARS: usize = 16 * 1024;
/// Upper bound of a simple-certificate assertion (auth-svc refuses longer ones).
const MAX_ASSERTION_CHARS: usize = 8 * 1024;

impl CompleteVerificationBody {
    fn into_request(
        self,
        verification_id: String,
        device_id: DeviceId,
    ) -> Result<auth::CompleteVerificationRequest, HttpProblem> {
        let answered = [&self.otp, &self.assertion, &self.signature]
            .iter()
            .any(|field| {
                field
                    .as_deref()
                    .is_some_and(|value| !value.trim().is_empty())
            });
        if !answered {
            return Err(HttpProblem::invalid(
                "one of `otp`, `assertion` or `signature` + `certificate` is required",
            ));
        }
        let field =
            |name: &str, value: Option<String>, max: usize| -> Result<String, HttpProblem> {
                match value {
                    None => Ok(String::new()),
                    Some(value) => {
                        require_text(name, &value, max)?;
                        Ok(value.trim().to_owned())
                    }
                }
            };
        // An assertion is a compact JWS (base64url and dots); a certificate (PEM or base64 DER)
        // and a signature (base64) are printable ASCII. Anything else is refused here, as the
        // document says.
        let ascii = |name: &str, value: &str, allowed: fn(u8) -> bool| {
            if value
                .bytes()
                .all(|byte| allowed(byte) || byte.is_ascii_whitespace())
            {
                Ok(())
            } else {
                Err(HttpProblem::invalid(format!(
                    "`{name}` holds characters it cannot contain"
                )))
            }
        };
        let jws = |byte: u8| byte.is_ascii_alphanumeric() || b"_=.-".contains(&byte);
        let assertion = field("assertion", self.assertion, MAX_ASSERTION_CHARS)?;
        ascii("assertion", &assertion, jws)?;
        let signature = field("signature", self.signature, MAX_ANSWER_CHARS)?;
        ascii("signature", &signature, |byte| byte.is_ascii_graphic())?;
        let certificate = field("certificate", self.certificate, MAX_ANSWER_CHARS)?;
        ascii("certificate", &certificate, |byte| byte.is_ascii_graphic())?;
        Ok(auth::CompleteVerificationRequest {
            verification_id,
            otp: field("otp", self.otp, 16)?,
            device_id: device_id.0,
            assertion,
            signature,
            certificate,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Session)]
pub struct SessionView {
    pub id: String,
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    pub device_id: String,
    /// RFC 3339 with the KST offset, e.g. 2021-08-09T20:00:00+09:00.
    #[schema(format = DateTime, example = "2021-08-09T20:00:00+09:00")]
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationCompleted {
    /// EdDSA JWT; send as `Authorization: Bearer` with the same X-Device-Id.
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds.
    pub expires_in: i64,
    pub session: SessionView,
    #[schema(example = "홍*동")]
    pub masked_name: String,
}

/// `POST /v1/auth/verifications/{id}/complete`
#[utoipa::path(
    post,
    path = "/v1/auth/verifications/{id}/complete",
    operation_id = "completeVerification",
    summary = "Answer the challenge; on success the device holds the person's session",
    tag = "auth",
    params(("id" = String, Path, format = Uuid, description = "The `verification_id` of the verification."), DeviceIdHeader),
    request_body = CompleteVerificationBody,
    responses((status = 200, description = "Verified: an access token and the session, which holds the person's device lock.",
        body = VerificationCompleted, headers(("Cache-Control" = String, description = "`no-store`")))),
    extensions(("x-problem-types" = json!(["invalid-request", "verification-failed", "verification-not-found",
        "verification-expired", "device-locked", "rate-limited", "internal", "overloaded", "unavailable"])))
)]
pub async fn complete_verification(
    State(state): State<AppState>,
    PathId(verification_id): PathId,
    device_id: DeviceId,
    JsonBody(body): JsonBody<CompleteVerificationBody>,
) -> Result<Response, HttpProblem> {
    let request = body.into_request(verification_id, device_id)?;
    let completed = state
        .clients
        .auth
        .clone()
        .complete_verification(request)
        .await
        .map_err(|status| HttpProblem::from_grpc("auth-svc", &status))?
        .into_inner();
    let session = completed
        .session
        .ok_or_else(|| crate::routes::views::incomplete("auth-svc", "session"))?;
    let view = VerificationCompleted {
        access_token: completed.access_token,
        token_type: completed.token_type,
        expires_in: completed.expires_in,
        session: SessionView {
            expires_at: required_time(
                "auth-svc",
                "session.expires_at",
                session.expires_at.as_ref(),
            )?,
            id: session.id,
            device_id: session.device_id,
        },
        masked_name: completed.masked_name,
    };
    // A token must not be kept by caches between the browser and the gateway.
    Ok(([(CACHE_CONTROL, "no-store")], Json(view)).into_response())
}

/// `POST /v1/session/logout`
#[utoipa::path(
    post,
    path = "/v1/session/logout",
    operation_id = "logout",
    summary = "End this device's session and release the person's device lock",
    tag = "auth",
    params(DeviceIdHeader),
    security(("bearer" = [])),
    responses((status = 204, description = "The session has ended.")),
    extensions(("x-problem-types" = json!(AUTHENTICATED_PROBLEMS)))
)]
pub async fn logout(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<StatusCode, HttpProblem> {
    state
        .clients
        .session
        .clone()
        // session-svc releases only with the session's own token: forward it.
        .release_session(caller.grpc_request(session::ReleaseSessionRequest {
            person_key: caller.claims.sub.clone(),
            session_id: caller.claims.sid.clone(),
        })?)
        .await
        .map_err(|status| HttpProblem::from_grpc("session-svc", &status))?;
    Ok(StatusCode::NO_CONTENT)
}

/// The problems every authenticated operation may answer.
pub const AUTHENTICATED_PROBLEMS: [&str; 8] = [
    "invalid-request",
    "unauthenticated",
    "session-expired",
    "forbidden",
    "citizen-token-required",
    "internal",
    "overloaded",
    "unavailable",
];

/// The `X-Device-Id` header, for the OpenAPI document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct DeviceIdHeader {
    /// Opaque id the frontend keeps per browser or app install.
    #[param(rename = "X-Device-Id", pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    x_device_id: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn body(provider: &str, phone: Option<&str>) -> StartVerificationBody {
        StartVerificationBody {
            provider: provider.into(),
            name: " 홍길동 ".into(),
            rrn: "900101-1234567".into(),
            phone: phone.map(Into::into),
            carrier: Some("skt".into()),
        }
    }

    #[test]
    fn provider_ids_are_checked_for_shape_only() {
        for id in ["phone", "financial_cert", "kakao", "a_new_provider2"] {
            assert!(well_formed_provider_id(id), "{id}");
        }
        for id in ["", "PHONE", "1phone", "pho ne", &"p".repeat(33)] {
            assert!(!well_formed_provider_id(id), "{id}");
        }
    }

    #[test]
    fn the_request_names_the_provider_by_id() {
        let request = body("kakao", None)
            .into_request(DeviceId("d1".into()), ClientAddress(None))
            .unwrap();
        assert_eq!(request.provider_id, "kakao");
        assert_eq!(request.name, "홍길동");
        assert_eq!(request.device_id, "d1");
    }

    #[test]
    fn a_malformed_provider_is_refused_without_echoing_it() {
        let err = body("My Space", None)
            .into_request(DeviceId("d".into()), ClientAddress(None))
            .err()
            .unwrap();
        assert!(!err.problem.detail.contains("My Space"));
    }
}
