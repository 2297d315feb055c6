//! Centers, slots and the caller's bookings. Every booking-svc call carries the caller's
//! access token: booking-svc checks it (and eligibility) itself, the gateway is not the only
//! guard.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use http::header::LOCATION;
use http::{HeaderMap, HeaderValue, StatusCode};
use proto::booking::v1 as booking;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::{Authenticated, JsonBody, PathId, QueryParams};
use crate::problem::HttpProblem;
use crate::routes::auth::{AUTHENTICATED_PROBLEMS, DeviceIdHeader};
use crate::routes::views::{BookingView, CenterView, SlotView};

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
const MAX_IDEMPOTENCY_KEY_LEN: usize = platform::ids::IdempotencyKey::MAX_LEN;
const MAX_ID_LEN: usize = 128;

fn booking_error(status: tonic::Status) -> HttpProblem {
    HttpProblem::from_grpc("booking-svc", &status)
}

fn require_id(field: &str, value: &str) -> Result<String, HttpProblem> {
    let trimmed = value.trim();
    let well_formed = !trimmed.is_empty()
        && trimmed.len() <= MAX_ID_LEN
        && trimmed.chars().all(|c| c.is_ascii_graphic());
    if !well_formed {
        return Err(HttpProblem::invalid(format!(
            "`{field}` must be 1 to {MAX_ID_LEN} printable ASCII characters"
        )));
    }
    Ok(trimmed.to_owned())
}

fn optional_date(params: &QueryParams, name: &str) -> Result<Option<NaiveDate>, HttpProblem> {
    params
        .get(name)
        .map(|raw| {
            platform::ids::parse_iso_date("date", raw).map_err(|_| {
                HttpProblem::invalid(format!("`{name}` must be a date written YYYY-MM-DD"))
            })
        })
        .transpose()
}

/// `GET /v1/centers?region=`
#[utoipa::path(
    get,
    path = "/v1/centers",
    operation_id = "listCenters",
    summary = "Vaccination centers, optionally of one region",
    tag = "booking",
    params(DeviceIdHeader, ("region" = Option<String>, Query, description = "Only centers of this region.")),
    security(("bearer" = [])),
    responses((status = 200, description = "The centers.", body = Vec<CenterView>)),
    extensions(("x-problem-types" = json!(AUTHENTICATED_PROBLEMS)))
)]
pub async fn list_centers(
    State(state): State<AppState>,
    caller: Authenticated,
    params: QueryParams,
) -> Result<Json<Vec<CenterView>>, HttpProblem> {
    let region = params.get("region").unwrap_or("").to_owned();
    let request = caller.grpc_request(booking::ListCentersRequest { region })?;
    let centers = state
        .clients
        .booking
        .clone()
        .list_centers(request)
        .await
        .map_err(booking_error)?
        .into_inner()
        .centers;
    Ok(Json(centers.into_iter().map(CenterView::from).collect()))
}

/// `GET /v1/slots?center_id=&from=&to=`
#[utoipa::path(
    get,
    path = "/v1/slots",
    operation_id = "listSlots",
    summary = "Slots of a center with their remaining capacity",
    tag = "booking",
    params(DeviceIdHeader,
        ("center_id" = String, Query, format = Uuid, description = "The center."),
        ("from" = Option<String>, Query, format = Date, description = "First date, inclusive; not after `to`."),
        ("to" = Option<String>, Query, format = Date, description = "Last date, inclusive.")),
    security(("bearer" = [])),
    responses((status = 200, description = "The slots.", body = Vec<SlotView>)),
    extensions(("x-problem-types" = json!(AUTHENTICATED_PROBLEMS)))
)]
pub async fn list_slots(
    State(state): State<AppState>,
    caller: Authenticated,
    params: QueryParams,
) -> Result<Json<Vec<SlotView>>, HttpProblem> {
    let center_id = require_id("center_id", params.get("center_id").unwrap_or(""))?;
    let from = optional_date(&params, "from")?;
    let to = optional_date(&params, "to")?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(HttpProblem::invalid("`from` must not be after `to`"));
    }
    let format = |date: Option<NaiveDate>| date.map(|d| d.to_string()).unwrap_or_default();
    let request = caller.grpc_request(booking::ListSlotsRequest {
        center_id,
        from: format(from),
        to: format(to),
    })?;
    let slots = state
        .clients
        .booking
        .clone()
        .list_slots(request)
        .await
        .map_err(booking_error)?
        .into_inner()
        .slots;
    let views = slots
        .into_iter()
        .map(SlotView::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(views))
}

// The person booked for, when booking as a proxy. No `Debug`: personal data.
#[derive(Deserialize, ToSchema)]
pub struct ProxyPerson {
    /// Name as registered.
    #[schema(pattern = r"\S")]
    pub name: String,
    /// Resident registration number, YYMMDD-GNNNNNN.
    #[schema(pattern = r"\S", example = "900101-1234567")]
    pub rrn: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = CreateBookingRequest)]
pub struct CreateBookingBody {
    #[schema(format = Uuid)]
    pub slot_id: String,
    /// The person booked for, when booking as a proxy (only in campaigns that allow it).
    #[serde(rename = "for", default)]
    pub for_person: Option<ProxyPerson>,
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, HttpProblem> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY_HEADER) else {
        return Ok(String::new());
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| platform::ids::IdempotencyKey::parse(key).is_ok())
        .ok_or_else(|| {
            HttpProblem::invalid(format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} printable ASCII characters"
            ))
        })?;
    Ok(key.to_owned())
}

fn booking_response(status: StatusCode, answer: booking::Booking) -> Result<Response, HttpProblem> {
    let view = BookingView::try_from(answer)?;
    let mut response = (status, Json(&view)).into_response();
    if status == StatusCode::CREATED
        && let Ok(location) = HeaderValue::from_str(&format!("/v1/bookings/{}", view.id))
    {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}

/// `POST /v1/bookings`
#[utoipa::path(
    post,
    path = "/v1/bookings",
    operation_id = "createBooking",
    summary = "Book a slot for myself, or for another person where the campaign allows proxies",
    tag = "booking",
    params(DeviceIdHeader, ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$",
        description = "Repeating a request with the same key returns the same booking."),
        crate::routes::queue::AdmissionHeader),
    request_body = CreateBookingBody,
    security(("bearer" = [])),
    responses((status = 201, description = "Booked.", body = BookingView,
        headers(("Location" = String, description = "`/v1/bookings/{id}`")))),
    extensions(("x-problem-types" = json!(["invalid-request", "invalid-identity", "unauthenticated",
        "session-expired", "forbidden", "citizen-token-required", "not-eligible", "proxy-not-allowed",
        "not-found", "slot-full", "already-booked", "idempotency-key-reused", "rate-limited",
        "admission-required", "session-superseded", "internal", "overloaded", "unavailable"])))
)]
pub async fn create_booking(
    State(state): State<AppState>,
    caller: Authenticated,
    client: crate::client_address::ClientAddress,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateBookingBody>,
) -> Result<Response, HttpProblem> {
    let slot_id = require_id("slot_id", &body.slot_id)?;
    let idempotency_key = idempotency_key(&headers)?;
    if let Some(person) = &body.for_person
        && (person.name.trim().is_empty() || person.rrn.trim().is_empty())
    {
        return Err(HttpProblem::invalid(
            "`for` needs the `name` and `rrn` of the person booked for",
        ));
    }
    // A proxy booking: auth-svc resolves the person booked for into a signed grant, so the
    // RRN goes no further than auth-svc; booking-svc checks the grant and the campaign.
    let proxy_grant = match body.for_person {
        Some(person) => {
            // The client address: auth-svc limits proxy resolutions per booker and address.
            let request = caller.grpc_request(proto::auth::v1::ResolveProxyRequest {
                name: person.name,
                rrn: person.rrn,
                client_address: client
                    .0
                    .map(|address| address.to_string())
                    .unwrap_or_default(),
            })?;
            state
                .clients
                .proxy
                .clone()
                .resolve_proxy(request)
                .await
                .map_err(|status| HttpProblem::from_grpc("auth-svc", &status))?
                .into_inner()
                .grant
        }
        None => String::new(),
    };
    let mut request = caller.grpc_request(booking::CreateBookingRequest {
        slot_id,
        idempotency_key,
        proxy: !proxy_grant.is_empty(),
        proxy_grant,
    })?;
    crate::routes::queue::forward_admission(&headers, &mut request)?;
    let created = state
        .clients
        .booking
        .clone()
        .create_booking(request)
        .await
        .map_err(booking_error)?
        .into_inner();
    booking_response(StatusCode::CREATED, created)
}

/// `GET /v1/bookings?made_for_others=`
#[utoipa::path(
    get,
    path = "/v1/bookings",
    operation_id = "listBookings",
    summary = "My bookings, or the bookings I made for others",
    tag = "booking",
    params(DeviceIdHeader, ("made_for_others" = Option<bool>, Query,
        description = "`true`: the bookings the caller made for other people (names masked) instead of their own.")),
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's bookings (those a proxy made for them included), or those they made for others.", body = Vec<BookingView>)),
    extensions(("x-problem-types" = json!(AUTHENTICATED_PROBLEMS)))
)]
pub async fn list_bookings(
    State(state): State<AppState>,
    caller: Authenticated,
    params: QueryParams,
) -> Result<Json<Vec<BookingView>>, HttpProblem> {
    let made_for_others = match params.get("made_for_others") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(HttpProblem::invalid(
                "`made_for_others` must be `true` or `false`",
            ));
        }
    };
    let request = caller.grpc_request(booking::ListMyBookingsRequest { made_for_others })?;
    let bookings = state
        .clients
        .booking
        .clone()
        .list_my_bookings(request)
        .await
        .map_err(booking_error)?
        .into_inner()
        .bookings;
    let views = bookings
        .into_iter()
        .map(BookingView::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(views))
}

async fn fetch_booking(
    state: &AppState,
    caller: &Authenticated,
    id: String,
) -> Result<booking::Booking, HttpProblem> {
    let request = caller.grpc_request(booking::GetBookingRequest { id })?;
    Ok(state
        .clients
        .booking
        .clone()
        .get_booking(request)
        .await
        .map_err(booking_error)?
        .into_inner())
}

/// `GET /v1/bookings/{id}`
#[utoipa::path(
    get,
    path = "/v1/bookings/{id}",
    operation_id = "getBooking",
    summary = "One of my bookings",
    tag = "booking",
    params(("id" = String, Path, format = Uuid, description = "The booking."), DeviceIdHeader),
    security(("bearer" = [])),
    responses((status = 200, description = "The booking.", body = BookingView)),
    extensions(("x-problem-types" = json!(["invalid-request", "unauthenticated", "session-expired",
        "forbidden", "citizen-token-required", "not-found", "internal", "overloaded", "unavailable"])))
)]
pub async fn get_booking(
    State(state): State<AppState>,
    caller: Authenticated,
    PathId(id): PathId,
) -> Result<Response, HttpProblem> {
    let found = fetch_booking(&state, &caller, id).await?;
    booking_response(StatusCode::OK, found)
}

/// `DELETE /v1/bookings/{id}`
#[utoipa::path(
    delete,
    path = "/v1/bookings/{id}",
    operation_id = "cancelBooking",
    summary = "Cancel a booking (until the end of D-2, KST); the slot is freed at once",
    tag = "booking",
    params(("id" = String, Path, format = Uuid, description = "The booking."), DeviceIdHeader),
    security(("bearer" = [])),
    responses((status = 200, description = "The booking, now with `status: cancelled`.", body = BookingView)),
    extensions(("x-problem-types" = json!(["invalid-request", "unauthenticated", "session-expired",
        "forbidden", "citizen-token-required", "not-found", "cancellation-closed", "already-cancelled",
        "internal", "overloaded", "unavailable"])))
)]
pub async fn cancel_booking(
    State(state): State<AppState>,
    caller: Authenticated,
    PathId(id): PathId,
) -> Result<Response, HttpProblem> {
    let request = caller.grpc_request(booking::CancelBookingRequest { id })?;
    let cancelled = state
        .clients
        .booking
        .clone()
        .cancel_booking(request)
        .await
        .map_err(booking_error)?
        .into_inner();
    booking_response(StatusCode::OK, cancelled)
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ChangeBookingRequest)]
pub struct ChangeBookingBody {
    #[schema(format = Uuid)]
    pub slot_id: String,
}

/// `PATCH /v1/bookings/{id} {slot_id}` — booking-svc checks the campaign's change policy
/// (409 `modification-not-allowed` with `allowed_from` before it opens) and moves the booking.
#[utoipa::path(
    patch,
    path = "/v1/bookings/{id}",
    operation_id = "changeBooking",
    summary = "Move a booking to another slot",
    description = "Moves a confirmed booking to another slot of the same campaign, once the campaign allows changes: the old place is freed and the new one taken in one step. Before the campaign's date: 409 modification-not-allowed with `allowed_from` (absent when the campaign never allows changes). The old place must still be cancellable (through D-2 of its date, KST).",
    tag = "booking",
    params(("id" = String, Path, format = Uuid, description = "The booking."), DeviceIdHeader,
        crate::routes::queue::AdmissionHeader),
    request_body = ChangeBookingBody,
    security(("bearer" = [])),
    responses((status = 200, description = "The changed booking.", body = BookingView)),
    extensions(("x-problem-types" = json!(["invalid-request", "unauthenticated", "session-expired",
        "forbidden", "citizen-token-required", "not-found", "modification-not-allowed", "slot-full",
        "already-cancelled", "cancellation-closed", "admission-required", "session-superseded",
        "internal", "overloaded", "unavailable"])))
)]
pub async fn change_booking(
    State(state): State<AppState>,
    caller: Authenticated,
    PathId(id): PathId,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ChangeBookingBody>,
) -> Result<Response, HttpProblem> {
    let slot_id = require_id("slot_id", &body.slot_id)?;
    let mut request = caller.grpc_request(booking::ChangeBookingRequest { id, slot_id })?;
    crate::routes::queue::forward_admission(&headers, &mut request)?;
    let changed = state
        .clients
        .booking
        .clone()
        .change_booking(request)
        .await
        .map_err(booking_error)?
        .into_inner();
    booking_response(StatusCode::OK, changed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn idempotency_keys_are_optional_but_checked() {
        let mut headers = HeaderMap::new();
        assert_eq!(idempotency_key(&headers).unwrap(), "");
        headers.insert(IDEMPOTENCY_KEY_HEADER, "k-1".parse().unwrap());
        assert_eq!(idempotency_key(&headers).unwrap(), "k-1");
        headers.insert(IDEMPOTENCY_KEY_HEADER, "a b".parse().unwrap());
        assert!(idempotency_key(&headers).is_err());
        headers.insert(IDEMPOTENCY_KEY_HEADER, "k".repeat(256).parse().unwrap());
        assert!(idempotency_key(&headers).is_err());
    }

    #[test]
    fn dates_in_the_slot_query_are_checked() {
        let mut params = QueryParams::default();
        params.0.insert("from".into(), "2021-08-26".into());
        params.0.insert("to".into(), "26/08/2021".into());
        assert_eq!(
            optional_date(&params, "from").unwrap(),
            NaiveDate::from_ymd_opt(2021, 8, 26)
        );
        assert!(optional_date(&params, "to").is_err());
        assert_eq!(optional_date(&params, "other").unwrap(), None);
    }
}
