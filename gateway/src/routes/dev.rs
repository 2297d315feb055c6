//! The dev run's helpers: the SMS sink, the settable clock, the stand-in Kakao/Naver/PASS
//! apps that sign assertions and the stand-in carriers' agency's subscriber directory. Registered only when the
//! configuration carries [`platform::dev::DevHooks`]; without them these paths are unknown.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::StatusCode;
use platform::clock::{Clock, rfc3339_kst};
use platform::dev::{DevHooks, SentSms};
use platform::operator::OperatorCredential;
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

/// `GET /dev/clock` — what the dev run's clock reads now (staff TOTP codes are checked on it:
/// `vaxbook accounts totp --at`).
#[utoipa::path(
    get,
    path = "/dev/clock",
    operation_id = "devGetClock",
    summary = "The clock every service of the dev run reads",
    tag = "dev",
    responses((status = 200, description = "The clock now.", body = ClockView)),
    extensions(("x-dev-only" = json!(true)), ("x-problem-types" = json!(["not-found", "overloaded", "unavailable"])))
)]
pub async fn get_clock(State(state): State<AppState>) -> Result<Json<ClockView>, HttpProblem> {
    let dev = hooks(&state)?;
    Ok(Json(ClockView {
        now: rfc3339_kst(dev.clock.now()),
    }))
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

#[derive(Deserialize, ToSchema)]
#[schema(as = DevCertificateSignatureRequest)]
pub struct CertificateSignatureBody {
    #[schema(
        max_length = 64,
        pattern = r"^\s*[A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\uAC00-\uD7A3](?:[A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\uAC00-\uD7A3 ·-]{0,48}[A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\uAC00-\uD7A3])?\s*$"
    )]
    pub name: String,
    #[schema(
        max_length = 32,
        pattern = r"^\s*[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])-?[0-9]{7}\s*$",
        example = "900101-1234567"
    )]
    pub rrn: String,
    /// The `nonce` of the verification being answered.
    #[schema(max_length = 256, pattern = r"\S")]
    pub nonce: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DevCertificateSignature)]
pub struct CertificateSignatureView {
    /// The person's certificate under the dev CA, PEM: `certificate` of `…/complete`.
    pub certificate: String,
    /// ECDSA P-256 / SHA-256 over the nonce, DER, base64: `signature` of `…/complete`.
    pub signature: String,
}

/// `POST /dev/idp/financial_cert/signatures {name, rrn, nonce}` — what the person's
/// certificate app hands back: their certificate under the dev CA and its key's signature over
/// the nonce, for `…/complete`.
#[utoipa::path(
    post,
    path = "/dev/idp/financial_cert/signatures",
    operation_id = "devSignWithFinancialCertificate",
    summary = "Stand-in financial-certificate app: a certificate under the dev CA and a signature over a verification's nonce",
    tag = "dev",
    request_body = CertificateSignatureBody,
    responses((status = 201, description = "The certificate and signature, for `…/complete`.", body = CertificateSignatureView)),
    extensions(("x-dev-only" = json!(true)), ("x-problem-types" = json!(["invalid-request", "not-found", "internal", "overloaded", "unavailable"])))
)]
pub async fn issue_certificate_signature(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CertificateSignatureBody>,
) -> Result<Response, HttpProblem> {
    let dev = hooks(&state)?;
    bounded("name", &body.name, 64)?;
    bounded("rrn", &body.rrn, 32)?;
    for (field, value) in [
        ("name", &body.name),
        ("rrn", &body.rrn),
        ("nonce", &body.nonce),
    ] {
        if value.trim().is_empty() || value.chars().count() > 256 {
            return Err(HttpProblem::invalid(format!("`{field}` is required")));
        }
    }
    let issued = dev
        .financial_ca
        .issue(
            body.name.trim(),
            body.rrn.trim(),
            body.nonce.trim(),
            dev.clock.now(),
        )
        .map_err(|error| match error {
            platform::dev_ca::DevCaError::InvalidRrn => {
                HttpProblem::invalid("`rrn` must be YYMMDD-GNNNNNN with a valid birth date")
            }
            _ => HttpProblem::new(ProblemKind::Internal, "internal error"),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(CertificateSignatureView {
            certificate: issued.certificate,
            signature: issued.signature,
        }),
    )
        .into_response())
}

#[derive(Deserialize, ToSchema)]
#[schema(as = DevCarrierSubscriber)]
pub struct SubscriberBody {
    /// The name as registered with the carrier.
    #[schema(
        max_length = 64,
        pattern = r"^\s*[A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\uAC00-\uD7A3](?:[A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\uAC00-\uD7A3 ·-]{0,48}[A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\uAC00-\uD7A3])?\s*$"
    )]
    pub name: String,
    /// YYMMDD-GNNNNNN.
    #[schema(
        max_length = 32,
        pattern = r"^\s*[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])-?[0-9]{7}\s*$",
        example = "900101-1234567"
    )]
    pub rrn: String,
    #[schema(
        max_length = 32,
        pattern = r"^\s*0[- ]?1[- ]?[016789](?:[- ]?[0-9]){7,8}\s*$",
        example = "010-1234-5678"
    )]
    pub phone: String,
    #[schema(value_type = crate::routes::auth::Carrier, example = "skt")]
    pub carrier: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DevCarrierSubscriberAdded)]
pub struct SubscriberAdded {
    /// The number, masked.
    #[schema(example = "010-****-5678")]
    pub phone: String,
    pub carrier: String,
}

/// `POST /dev/carrier/subscribers {name, rrn, phone, carrier}` — registers a phone with the
/// dev run's stand-in carriers' agency, so the phone provider can verify that person.
#[utoipa::path(
    post,
    path = "/dev/carrier/subscribers",
    operation_id = "devAddCarrierSubscriber",
    summary = "Stand-in carriers' agency: register a phone to a person",
    tag = "dev",
    request_body = SubscriberBody,
    responses((status = 201, description = "The phone is registered to the person at the carrier.", body = SubscriberAdded)),
    extensions(("x-dev-only" = json!(true)), ("x-problem-types" = json!(["invalid-request", "not-found", "overloaded", "unavailable"])))
)]
pub async fn add_carrier_subscriber(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SubscriberBody>,
) -> Result<Response, HttpProblem> {
    let dev = hooks(&state)?;
    bounded("name", &body.name, 64)?;
    bounded("rrn", &body.rrn, 32)?;
    bounded("phone", &body.phone, 32)?;
    let subscriber = platform::carrier::Subscriber {
        name: body.name,
        rrn: body.rrn,
        phone: body.phone,
        carrier: body.carrier,
    };
    dev.carriers
        .register(&subscriber)
        .map_err(|error| HttpProblem::invalid(error.to_string()))?;
    let digits: String = subscriber
        .phone
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let masked = match digits.len() {
        10 | 11 => format!(
            "{}-{}-{}",
            &digits[..3],
            "*".repeat(digits.len() - 7),
            &digits[digits.len() - 4..]
        ),
        _ => "***".to_owned(),
    };
    Ok((
        StatusCode::CREATED,
        Json(SubscriberAdded {
            phone: masked,
            carrier: subscriber.carrier.trim().to_ascii_lowercase(),
        }),
    )
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = DevSetAdmission)]
pub struct SetAdmissionBody {
    /// Whether the waiting room limits admission.
    pub enabled: bool,
    /// People admitted per second while on.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100000)]
    pub rate_per_second: f64,
    /// A campaign's own waiting room; absent: the general one.
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,63}$")]
    pub campaign_id: Option<String>,
    /// Hand the room to the automatic mode (booking-svc's capacity signal decides).
    #[serde(default)]
    pub automatic: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DevAdmission)]
pub struct AdmissionView {
    /// `*` (the general room) or the campaign id.
    pub room: String,
    pub enabled: bool,
    pub rate_per_second: f64,
    /// People waiting now.
    pub waiting: u64,
    /// `manual` or `automatic`.
    pub mode: String,
}

/// `PUT /dev/admission {"enabled": true, "rate_per_second": 5}`
#[utoipa::path(
    put,
    path = "/dev/admission",
    operation_id = "devSetAdmission",
    summary = "Turn the waiting room on or off and set its admission rate",
    tag = "dev",
    request_body = SetAdmissionBody,
    responses((status = 200, description = "The waiting room now.", body = AdmissionView)),
    extensions(("x-dev-only" = json!(true)), ("x-problem-types" = json!(["invalid-request", "not-found", "overloaded", "unavailable"])))
)]
pub async fn set_admission(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SetAdmissionBody>,
) -> Result<Json<AdmissionView>, HttpProblem> {
    hooks(&state)?;
    let rate_ok =
        body.rate_per_second.is_finite() && (0.0..=100_000.0).contains(&body.rate_per_second);
    if !rate_ok {
        return Err(HttpProblem::invalid(
            "`rate_per_second` must be a number from 0 to 100000",
        ));
    }
    // Absent: the general room; present, it must be a campaign id.
    let room = body.campaign_id.unwrap_or_else(|| "*".to_owned());
    if room != "*" && platform::ids::CampaignId::parse(&room).is_err() {
        return Err(HttpProblem::invalid(format!(
            "`campaign_id` {}",
            platform::ids::CampaignId::EXPECTED
        )));
    }
    // The dev run's services all accept the dev-run operator credential (and only theirs do).
    let request = OperatorCredential::dev()
        .request(proto::session::v1::SetAdmissionRequest {
            room,
            enabled: body.enabled,
            rate_per_second: body.rate_per_second,
            automatic: body.automatic,
        })
        .map_err(|_| HttpProblem::new(ProblemKind::Internal, "internal error"))?;
    let state_now = state
        .clients
        .queue_admin
        .clone()
        .set_admission(request)
        .await
        .map_err(|status| HttpProblem::from_grpc("session-svc", &status))?
        .into_inner();
    tracing::info!(
        room = %state_now.room,
        enabled = state_now.enabled,
        rate_per_second = state_now.rate_per_second,
        "dev admission set"
    );
    Ok(Json(AdmissionView {
        room: state_now.room,
        enabled: state_now.enabled,
        rate_per_second: state_now.rate_per_second,
        waiting: state_now.waiting,
        mode: state_now.mode,
    }))
}

/// Refuses a member longer than the document's `maxLength`, before it is read further.
fn bounded(field: &str, value: &str, max_chars: usize) -> Result<(), HttpProblem> {
    if value.chars().count() > max_chars {
        return Err(HttpProblem::invalid(format!(
            "`{field}` is longer than {max_chars} characters"
        )));
    }
    Ok(())
}
