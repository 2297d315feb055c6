//! The dev run's helpers: the SMS sink, the settable clock and the stand-in Kakao/Naver/PASS
//! apps that sign assertions. Registered only when the
//! configuration carries [`platform::dev::DevHooks`]; without them these paths are unknown.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::StatusCode;
use platform::clock::{Clock, rfc3339_kst};
use platform::dev::{DevHooks, SentSms};
use platform::problem::ProblemKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::{JsonBody, QueryParams};
use crate::problem::HttpProblem;

/// The providers the dev run stands in for.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum DevProvider {
    Kakao,
    Naver,
    Pass,
}

fn hooks(state: &AppState) -> Result<&DevHooks, HttpProblem> {
    state
        .dev
        .as_ref()
        .ok_or_else(|| HttpProblem::new(ProblemKind::NotFound, "no resource at this path"))
}

/// `GET /dev/sms?to=` — newest first.
#[utoipa::path(
    get,
    path = "/dev/sms",
    operation_id = "devSentSms",
    summary = "SMS the dev run \"sent\" to a number, newest first",
    tag = "dev",
    params(("to" = String, Query, pattern = r"\S", description = "The number, as given to the verification.")),
    responses((status = 200, description = "The messages.", body = Vec<SentSmsSchema>)),
    extensions(("x-dev-only" = json!(true)), ("x-problem-types" = json!(["invalid-request", "not-found", "overloaded", "unavailable"])))
)]
pub async fn sent_sms(
    State(state): State<AppState>,
    params: QueryParams,
) -> Result<Json<Vec<SentSms>>, HttpProblem> {
    let dev = hooks(&state)?;
    let to = params
        .get("to")
        .ok_or_else(|| HttpProblem::invalid("the `to` query parameter is required"))?;
    Ok(Json(dev.sms.sent_to(to)))
}

/// The schema of [`SentSms`] (defined in `platform`).
#[derive(ToSchema)]
#[schema(as = SentSms)]
#[allow(dead_code)]
pub struct SentSmsSchema {
    to: String,
    body: String,
    otp: String,
    /// RFC 3339 with the KST offset, e.g. 2021-08-09T20:00:00+09:00.
    #[schema(format = DateTime, example = "2021-08-09T20:00:00+09:00")]
    sent_at: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = DevClock)]
pub struct SetClockBody {
    /// RFC 3339 with an offset, e.g. 2021-08-09T20:00:00+09:00.
    #[schema(format = DateTime, example = "2021-08-09T20:00:00+09:00")]
    pub now: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DevClockNow)]
pub struct ClockView {
    /// RFC 3339 with the KST offset, e.g. 2021-08-09T20:00:00+09:00.
    #[schema(format = DateTime, example = "2021-08-09T20:00:00+09:00")]
    pub now: String,
}

/// `PUT /dev/clock {"now": "2021-08-09T20:00:00+09:00"}`
#[utoipa::path(
    put,
    path = "/dev/clock",
    operation_id = "devSetClock",
    summary = "Set the clock every service of the dev run reads",
    tag = "dev",
    request_body = SetClockBody,
    responses((status = 200, description = "The clock now.", body = ClockView)),
    extensions(("x-dev-only" = json!(true)), ("x-problem-types" = json!(["invalid-request", "not-found", "overloaded", "unavailable"])))
)]
pub async fn set_clock(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SetClockBody>,
) -> Result<Json<ClockView>, HttpProblem> {
    let dev = hooks(&state)?;
    let now = DateTime::parse_from_rfc3339(body.now.trim())
        .map_err(|_| HttpProblem::invalid("`now` must be an RFC 3339 time with an offset"))?
        .with_timezone(&Utc);
    dev.clock.set(now);
    tracing::info!(now = %rfc3339_kst(now), "dev clock set");
    Ok(Json(ClockView {
        now: rfc3339_kst(dev.clock.now()),
    }))
}

/// `DELETE /dev/clock` — back to the real time.
#[utoipa::path(
    delete,
    path = "/dev/clock",
    operation_id = "devResetClock",
    summary = "Back to the real time",
    tag = "dev",
    responses((status = 200, description = "The clock now.", body = ClockView)),
    extensions(("x-dev-only" = json!(true)), ("x-problem-types" = json!(["not-found", "overloaded", "unavailable"])))
)]
pub async fn reset_clock(State(state): State<AppState>) -> Result<Json<ClockView>, HttpProblem> {
    let dev = hooks(&state)?;
    dev.clock.reset();
    tracing::info!("dev clock reset");
    Ok(Json(ClockView {
        now: rfc3339_kst(dev.clock.now()),
    }))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = DevAssertionRequest)]
pub struct AssertionBody {
    #[schema(max_length = 256, pattern = r"\S")]
    pub name: String,
    #[schema(max_length = 256, pattern = r"\S")]
    pub rrn: String,
    #[serde(default)]
    pub phone: String,
    /// The `nonce` of the verification being answered.
    #[schema(max_length = 256, pattern = r"\S")]
    pub nonce: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DevAssertion)]
pub struct AssertionView {
    pub provider: String,
    pub assertion: String,
}

/// `POST /dev/idp/{provider}/assertions {name, rrn, phone, nonce}` — what the provider's app
/// hands back after the person confirms: a signed assertion for `…/complete`.
#[utoipa::path(
    post,
    path = "/dev/idp/{provider}/assertions",
    operation_id = "devIssueAssertion",
    summary = "Stand-in Kakao/Naver/PASS app: sign an assertion for a verification's nonce",
    tag = "dev",
    params(("provider" = DevProvider, Path, description = "kakao, naver or pass.")),
    request_body = AssertionBody,
    responses((status = 201, description = "The signed assertion, for `…/complete`.", body = AssertionView)),
    extensions(("x-dev-only" = json!(true)), ("x-problem-types" = json!(["invalid-request", "not-found", "internal", "overloaded", "unavailable"])))
)]
pub async fn issue_assertion(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    JsonBody(body): JsonBody<AssertionBody>,
) -> Result<Response, HttpProblem> {
    let dev = hooks(&state)?;
    if !platform::idp::SIMPLE_CERT_PROVIDERS.contains(&provider.as_str()) {
        return Err(HttpProblem::new(
            ProblemKind::NotFound,
            "the dev identity providers are kakao, naver and pass",
        ));
    }
    for (field, value) in [
        ("name", &body.name),
        ("rrn", &body.rrn),
        ("nonce", &body.nonce),
    ] {
        if value.trim().is_empty() || value.chars().count() > 256 {
            return Err(HttpProblem::invalid(format!("`{field}` is required")));
        }
    }
    let assertion = dev
        .idp
        .issue(
            &provider,
            body.name.trim(),
            body.rrn.trim(),
            body.phone.trim(),
            body.nonce.trim(),
            dev.clock.now(),
        )
        .map_err(|_| HttpProblem::new(ProblemKind::Internal, "internal error"))?;
    Ok((
        StatusCode::CREATED,
        Json(AssertionView {
            provider,
            assertion,
        }),
    )
        .into_response())
}
