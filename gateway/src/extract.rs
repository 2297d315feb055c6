//! Request extractors that answer malformed input with an `invalid-request` problem instead of
//! axum's plain-text rejections, and the [`Authenticated`] caller: token verified locally,
//! bound to the presenting device, and its session still holding the person's device lock. An
//! agent's or operator's token is refused `citizen-token-required` and the attempt goes to
//! auth-svc's audit trail.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Query, Request};
use http::StatusCode;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::request::Parts;
use platform::auth::{AccessClaims, Role};
use platform::problem::ProblemKind;
use platform::staff::{AgentToken, STAFF_TOKEN_HEADER};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::problem::HttpProblem;

pub const DEVICE_ID_HEADER: &str = "x-device-id";
pub const MAX_DEVICE_ID_LEN: usize = platform::ids::DeviceId::MAX_LEN;

/// The `X-Device-Id` header, validated by the one rule every service shares
/// ([`platform::ids::DeviceId`]: 1..=128 characters of `[A-Za-z0-9._:-]`). A local type only
/// because the header extractor must be one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceId(pub String);

impl DeviceId {
    pub fn parse(raw: &str) -> Result<Self, HttpProblem> {
        let device = platform::ids::DeviceId::parse(raw).map_err(|_| {
            HttpProblem::invalid(
                "X-Device-Id must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'",
            )
        })?;
        Ok(Self(device.into_string()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for DeviceId {
    type Rejection = HttpProblem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(DEVICE_ID_HEADER)
            .ok_or_else(|| HttpProblem::invalid("the X-Device-Id header is required"))?;
        let raw = value
            .to_str()
            .map_err(|_| HttpProblem::invalid("X-Device-Id must be ASCII"))?;
        Self::parse(raw)
    }
}

/// A JSON request body. The content type must be `application/json` (or `…+json`).
#[derive(Clone, Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = HttpProblem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(request.headers()) {
            return Err(HttpProblem::invalid(
                "the body must be JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    HttpProblem::invalid("the request body is too large")
                        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
                } else {
                    HttpProblem::invalid("the request body could not be read")
                }
            })?;
        parse_json(&bytes).map(JsonBody)
    }
}

fn has_json_content_type(headers: &http::HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON body. serde's messages may quote the offending value (a resident registration
/// number in the wrong place, say), so only the field name of a missing field is passed on.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpProblem> {
    serde_json::from_slice(bytes).map_err(|err| {
        use serde_json::error::Category;
        match err.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                HttpProblem::invalid("the body is not well-formed JSON")
            }
            Category::Data => match missing_field_name(&err.to_string()) {
                Some(field) => HttpProblem::invalid(format!("the field `{field}` is required")),
                None => HttpProblem::invalid(
                    "the body has a field of the wrong type, or is not a JSON object",
                ),
            },
        }
    })
}

fn missing_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    let (field, _) = rest.split_once('`')?;
    Some(field)
}

/// The query string as name → value (the last value wins when a name repeats).
#[derive(Clone, Debug, Default)]
pub struct QueryParams(pub HashMap<String, String>);

impl QueryParams {
    /// A parameter, with empty values treated as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = HttpProblem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|Query(params)| Self(params))
            .map_err(|_| HttpProblem::invalid("the query string is malformed"))
    }
}

/// A single path parameter (`{id}`): percent-decoded, non-empty, at most 128 printable
/// characters.
#[derive(Clone, Debug)]
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = HttpProblem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| HttpProblem::invalid("the path is malformed"))?;
        let well_formed =
            !raw.is_empty() && raw.len() <= 128 && raw.chars().all(|c| c.is_ascii_graphic());
        if !well_formed {
            return Err(HttpProblem::invalid(
                "the id in the path must be 1 to 128 printable ASCII characters",
            ));
        }
        Ok(Self(raw))
    }
}

/// A caller whose access token verified, whose token names the presenting device, and whose
/// session still holds the person's device lock.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub claims: AccessClaims,
    pub device_id: DeviceId,
    /// The raw token, forwarded to services that check it themselves (booking-svc).
    pub token: String,
}

impl Authenticated {
    /// A gRPC request carrying the caller's token in `authorization` metadata.
    pub fn grpc_request<T>(&self, message: T) -> Result<tonic::Request<T>, HttpProblem> {
        let mut request = tonic::Request::new(message);
        let value = format!("Bearer {}", self.token).parse().map_err(|_| {
            HttpProblem::new(ProblemKind::Unauthenticated, "the token is malformed")
        })?;
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = HttpProblem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let device_id = DeviceId::from_request_parts(parts, state).await?;
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            HttpProblem::new(
                ProblemKind::Unauthenticated,
                "the Authorization: Bearer header is required",
            )
        })?;
        let header = header.to_str().map_err(|_| {
            HttpProblem::new(ProblemKind::Unauthenticated, "authorization is malformed")
        })?;
        let token = platform::auth::bearer_from_str(header)?.to_owned();
        let claims = match state.clients.verifier.verify(&token).await {
            Ok(claims) => claims,
            // Only a token that failed as an access token is looked at again, so the citizens'
            // path costs what it did.
            Err(problem) if problem.kind == ProblemKind::Unauthenticated => {
                return Err(refuse_staff_token(parts, state, &token)
                    .await
                    .unwrap_or_else(|| problem.into()));
            }
            Err(problem) => return Err(problem.into()),
        };
        if claims.role != Role::Citizen {
            platform::trust::refused_call(SERVICE, CITIZEN_API, "agent-access-token");
            return Err(citizen_token_required());
        }
        if claims.dev != device_id.0 {
            return Err(HttpProblem::new(
                ProblemKind::Unauthenticated,
                "the access token belongs to another device",
            ));
        }
        let validation = state
            .clients
            .session
            .clone()
            .validate_session(proto::session::v1::ValidateSessionRequest {
                person_key: claims.sub.clone(),
                session_id: claims.sid.clone(),
                device_id: device_id.0.clone(),
                fence: claims.fence.unwrap_or(0),
            })
            .await
            .map_err(|status| HttpProblem::from_grpc("session-svc", &status))?
            .into_inner();
        if validation.superseded {
            return Err(HttpProblem::new(
                ProblemKind::SessionSuperseded,
                "the person's device lock has changed hands since this token was issued; verify again",
            ));
        }
        if !validation.valid {
            return Err(HttpProblem::new(
                ProblemKind::SessionExpired,
                "this device's session has ended; verify your identity again",
            ));
        }
        Ok(Self {
            claims,
            device_id,
            token,
        })
    }
}

/// The service and surface names of the security-event metric
/// ([`platform::trust::refused_call`]).
const SERVICE: &str = "gateway";
const CITIZEN_API: &str = "citizen-api";

fn citizen_token_required() -> HttpProblem {
    HttpProblem::new(
        ProblemKind::CitizenTokenRequired,
        "this API is for citizens; agents and operators use the call-center application",
    )
}

/// `METHOD /route-template` of a request (`POST /v1/bookings`, `GET /v1/bookings/{id}`): what
/// the audit trail records, never a path with its ids.
fn surface(parts: &Parts) -> String {
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "(unrouted)".to_owned());
    format!("{} {route}", parts.method)
}

/// When `token`, refused as an access token, is a valid agent or operator token: reports it to
/// auth-svc's audit trail (`StaffAuthService.RecordCitizenApiRefusal`, authenticated by that
/// very token) and answers `citizen-token-required`, whether or not the report got through.
/// `None` when it is no staff token either: the access token's own refusal stands.
async fn refuse_staff_token(parts: &Parts, state: &AppState, token: &str) -> Option<HttpProblem> {
    let staff = state
        .clients
        .staff_tokens
        .verify::<AgentToken>(token)
        .await
        .ok()?;
    platform::trust::refused_call(SERVICE, CITIZEN_API, "staff-token");
    let surface = surface(parts);
    let mut request = tonic::Request::new(proto::auth::v1::RecordCitizenApiRefusalRequest {
        surface: surface.clone(),
    });
    match format!("Bearer {token}").parse() {
        Ok(value) => {
            request.metadata_mut().insert(STAFF_TOKEN_HEADER, value);
            if let Err(status) = state
                .clients
                .staff_auth
                .clone()
                .record_citizen_api_refusal(request)
                .await
            {
                // The account id and the route only: no token, no person's data.
                tracing::warn!(
                    account = %staff.claims.sub,
                    %surface,
                    code = ?status.code(),
                    "reporting a staff token refused by the citizens' API to auth-svc failed"
                );
            }
        }
        Err(_) => tracing::warn!(
            account = %staff.claims.sub,
            %surface,
            "a staff token refused by the citizens' API could not be reported: not a metadata value"
        ),
    }
    Some(citizen_token_required())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        rrn: String,
    }

    #[test]
    fn device_ids_are_checked() {
        assert!(DeviceId::parse("web-1a2b:3c.d_e").is_ok());
        assert!(DeviceId::parse("").is_err());
        assert!(DeviceId::parse("has space").is_err());
        assert!(DeviceId::parse("슬래시").is_err());
        assert!(DeviceId::parse(&"a".repeat(128)).is_ok());
        assert!(DeviceId::parse(&"a".repeat(129)).is_err());
    }

    #[test]
    fn a_missing_field_is_named() {
        let err = parse_json::<Body>(br#"{"name":"x"}"#).unwrap_err();
        assert_eq!(err.problem.detail, "the field `rrn` is required");
        assert_eq!(err.problem.kind, ProblemKind::InvalidRequest);
    }

    #[test]
    fn a_wrong_value_is_not_echoed() {
        let err = parse_json::<Body>(br#"{"name":"x","rrn":9001011234567}"#).unwrap_err();
        assert!(!err.problem.detail.contains("9001011234567"));
        let err = parse_json::<Body>(br#"{"name":"x","#).unwrap_err();
        assert_eq!(err.problem.detail, "the body is not well-formed JSON");
    }

    #[test]
    fn json_content_types_are_recognised() {
        let mut headers = http::HeaderMap::new();
        assert!(!has_json_content_type(&headers));
        headers.insert(
            CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(has_json_content_type(&headers));
        headers.insert(
            CONTENT_TYPE,
            "application/merge-patch+json".parse().unwrap(),
        );
        assert!(has_json_content_type(&headers));
        headers.insert(CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!has_json_content_type(&headers));
    }
}
