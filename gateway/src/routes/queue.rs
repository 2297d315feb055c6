//! The waiting room (R11): `POST /v1/queue/tickets` enters it (or answers the caller's ticket:
//! the place belongs to the verified person, not the tab), `GET /v1/queue/tickets/{ticket}`
//! polls it. Both answer the position, the estimated wait and when to poll again (also as
//! `Retry-After`); once admitted, the admission grant the frontend sends as `X-Admission` with
//! booking calls. session-svc keeps the queue; booking-svc checks the grant itself.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderValue, StatusCode};
use proto::session::v1 as session;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::Authenticated;
use crate::problem::HttpProblem;
use crate::routes::auth::DeviceIdHeader;

/// The header that carries the admission grant on booking calls.
pub const ADMISSION_HEADER: &str = "x-admission";
/// The longest admission grant the gateway forwards.
const MAX_GRANT_LEN: usize = 4096;
const MAX_TICKET_LEN: usize = 128;

/// Problems of the queue routes.
const QUEUE_PROBLEMS: [&str; 9] = [
    "invalid-request",
    "unauthenticated",
    "session-expired",
    "citizen-token-required",
    "session-superseded",
    "not-found",
    "internal",
    "overloaded",
    "unavailable",
];

/// The `X-Admission` header, for the OpenAPI document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct AdmissionHeader {
    /// The admission grant from the waiting room (`admission` of an admitted ticket). Required
    /// while the waiting room is on: without it 403 admission-required.
    #[param(rename = "X-Admission", pattern = "^[A-Za-z0-9._-]{1,4096}$")]
    x_admission: Option<String>,
}

/// Copies a presented `X-Admission` header into the gRPC request's `x-admission` metadata.
pub fn forward_admission<T>(
    headers: &HeaderMap,
    request: &mut tonic::Request<T>,
) -> Result<(), HttpProblem> {
    let Some(value) = headers.get(ADMISSION_HEADER) else {
        return Ok(());
    };
    let grant = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|grant| {
            !grant.is_empty()
                && grant.len() <= MAX_GRANT_LEN
                && grant
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
        })
        .ok_or_else(|| HttpProblem::invalid("X-Admission must be an admission grant"))?;
    let metadata = grant
        .parse()
        .map_err(|_| HttpProblem::invalid("X-Admission must be an admission grant"))?;
    request.metadata_mut().insert(ADMISSION_HEADER, metadata);
    Ok(())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = TakeTicketRequest)]
pub struct TakeTicketBody {
    /// The campaign whose waiting room to enter; absent: the general waiting room.
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,63}$")]
    pub campaign_id: Option<String>,
}

/// A place in the waiting room.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = QueueTicket)]
pub struct TicketView {
    /// The ticket; it belongs to the verified person (another person polling it gets 404).
    pub ticket: String,
    /// 1 for the next person to be admitted; 0 once admitted.
    pub position: u64,
    /// Estimated wait in seconds, from the measured admission rate.
    pub eta_seconds: u64,
    /// Poll again after this many seconds (also sent as `Retry-After`); grows with the
    /// position so the waiting room's total poll rate stays bounded. 0 once admitted.
    pub poll_after_seconds: u64,
    pub admitted: bool,
    /// The admission grant, once admitted: send it as `X-Admission` with booking calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission: Option<String>,
    /// When the admission lapses (RFC 3339, KST). Lapsed without a booking, the person goes
    /// back to the front of the queue by taking a ticket again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub admission_expires_at: Option<String>,
}

impl From<session::TicketStatus> for TicketView {
    fn from(status: session::TicketStatus) -> Self {
        let expires = status
            .admission_expires_at
            .as_ref()
            .and_then(platform::clock::from_timestamp)
            .map(platform::clock::rfc3339_kst);
        let admitted = status.admitted && !status.admission.is_empty();
        Self {
            ticket: status.ticket,
            position: status.position,
            eta_seconds: status.eta_seconds,
            poll_after_seconds: status.poll_after_seconds,
            admitted,
            admission: admitted.then_some(status.admission),
            admission_expires_at: if admitted { expires } else { None },
        }
    }
}

fn ticket_response(status: StatusCode, answer: session::TicketStatus) -> Response {
    let view = TicketView::from(answer);
    let poll_after = view.poll_after_seconds;
    let mut response = (status, Json(view)).into_response();
    if poll_after > 0 {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(poll_after));
    }
    response
}

fn queue_error(status: tonic::Status) -> HttpProblem {
    HttpProblem::from_grpc("session-svc", &status)
}

/// `POST /v1/queue/tickets {campaign_id?}`
#[utoipa::path(
    post,
    path = "/v1/queue/tickets",
    operation_id = "takeQueueTicket",
    summary = "Enter the waiting room, or get my place back",
    description = "The ticket belongs to the verified person: a reload, another tab or coming back answers the same ticket and place. When the waiting room is off the ticket is admitted at once. A person whose admission lapsed without booking is put back at the front.",
    tag = "queue",
    params(DeviceIdHeader),
    request_body(content = Option<TakeTicketBody>, description = "Optional: the campaign whose waiting room to enter."),
    security(("bearer" = [])),
    responses((status = 202, description = "The place in the waiting room (or the admission).", body = TicketView,
        headers(("Retry-After" = u64, description = "Seconds until the next poll, while waiting.")))),
    extensions(("x-problem-types" = json!(QUEUE_PROBLEMS)))
)]
pub async fn take_ticket(
    State(state): State<AppState>,
    caller: Authenticated,
    body: axum::body::Bytes,
) -> Result<Response, HttpProblem> {
    // The body is optional: none (or whitespace) enters the general waiting room.
    let body: TakeTicketBody = if body.iter().all(u8::is_ascii_whitespace) {
        TakeTicketBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|_| {
            HttpProblem::invalid("the body must be a JSON object like {\"campaign_id\": \"…\"}")
        })?
    };
    // Absent: the general room; present, it must be a campaign id.
    let room = body.campaign_id.unwrap_or_else(|| "*".to_owned());
    if room != "*" && platform::ids::CampaignId::parse(&room).is_err() {
        return Err(HttpProblem::invalid(format!(
            "`campaign_id` {}",
            platform::ids::CampaignId::EXPECTED
        )));
    }
    let request = caller.grpc_request(session::TakeTicketRequest { room })?;
    let answer = state
        .clients
        .queue
        .clone()
        .take_ticket(request)
        .await
        .map_err(queue_error)?
        .into_inner();
    Ok(ticket_response(StatusCode::ACCEPTED, answer))
}

/// `GET /v1/queue/tickets/{ticket}`
#[utoipa::path(
    get,
    path = "/v1/queue/tickets/{ticket}",
    operation_id = "pollQueueTicket",
    summary = "My place in the waiting room; once admitted, the admission grant",
    tag = "queue",
    params(("ticket" = String, Path, description = "The ticket from POST /v1/queue/tickets."), DeviceIdHeader),
    security(("bearer" = [])),
    responses((status = 200, description = "The place in the waiting room (or the admission).", body = TicketView,
        headers(("Retry-After" = u64, description = "Seconds until the next poll, while waiting.")))),
    extensions(("x-problem-types" = json!(QUEUE_PROBLEMS)))
)]
pub async fn poll_ticket(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(ticket): Path<String>,
) -> Result<Response, HttpProblem> {
    let ticket = ticket.trim().to_owned();
    if ticket.is_empty() || ticket.len() > MAX_TICKET_LEN {
        return Err(HttpProblem::new(
            platform::problem::ProblemKind::NotFound,
            "no such ticket for this person",
        ));
    }
    let request = caller.grpc_request(session::PollTicketRequest { ticket })?;
    let answer = state
        .clients
        .queue
        .clone()
        .poll_ticket(request)
        .await
        .map_err(queue_error)?
        .into_inner();
    Ok(ticket_response(StatusCode::OK, answer))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_a_grant_shaped_header_is_forwarded() {
        let mut headers = HeaderMap::new();
        let mut request = tonic::Request::new(());
        forward_admission(&headers, &mut request).unwrap();
        assert!(request.metadata().get(ADMISSION_HEADER).is_none());
        headers.insert(ADMISSION_HEADER, "eyJ.abc-_.x".parse().unwrap());
        forward_admission(&headers, &mut request).unwrap();
        assert_eq!(
            request.metadata().get(ADMISSION_HEADER).unwrap(),
            "eyJ.abc-_.x"
        );
        headers.insert(ADMISSION_HEADER, "not a grant".parse().unwrap());
        assert!(forward_admission(&headers, &mut request).is_err());
    }
}
