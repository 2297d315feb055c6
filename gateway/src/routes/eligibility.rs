//! `GET /v1/me/eligibility`: may the verified person book now, in which campaign, until when.
//! The birth date comes from the access token; the decision is scheduling-svc's.

use axum::Json;
use axum::extract::State;
use proto::scheduling::v1 as scheduling;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::Authenticated;
use crate::problem::HttpProblem;
use crate::routes::views::{non_empty, optional_time};

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Eligibility)]
pub struct EligibilityView {
    pub eligible: bool,
    /// `null` when no campaign concerns the person.
    #[schema(required, pattern = "^[a-z0-9][a-z0-9-]{0,63}$")]
    pub campaign_id: Option<String>,
    /// Why not: not-in-age-group, not-open-yet, closed, no-campaign, excluded. Absent when
    /// eligible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339 with the KST offset, e.g. 2021-08-09T20:00:00+09:00.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, example = "2021-08-09T20:00:00+09:00")]
    pub opens_at: Option<String>,
    /// RFC 3339 with the KST offset, e.g. 2021-08-09T20:00:00+09:00.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, example = "2021-08-09T20:00:00+09:00")]
    pub closes_at: Option<String>,
    /// First vaccination day, YYYY-MM-DD (KST).
    #[schema(required, format = Date)]
    pub vaccination_from: Option<String>,
    /// Last vaccination day, YYYY-MM-DD (KST).
    #[schema(required, format = Date)]
    pub vaccination_to: Option<String>,
}

impl From<scheduling::CheckEligibilityResponse> for EligibilityView {
    fn from(answer: scheduling::CheckEligibilityResponse) -> Self {
        Self {
            eligible: answer.eligible,
            campaign_id: non_empty(answer.campaign_id),
            reason: if answer.eligible {
                None
            } else {
                non_empty(answer.reason)
            },
            opens_at: optional_time(answer.opens_at.as_ref()),
            closes_at: optional_time(answer.closes_at.as_ref()),
            vaccination_from: non_empty(answer.vaccination_from),
            vaccination_to: non_empty(answer.vaccination_to),
        }
    }
}

/// `GET /v1/me/eligibility`
#[utoipa::path(
    get,
    path = "/v1/me/eligibility",
    operation_id = "myEligibility",
    summary = "May I book now, in which campaign, until when",
    tag = "eligibility",
    params(crate::routes::auth::DeviceIdHeader),
    security(("bearer" = [])),
    responses((status = 200, description = "The decision.", body = EligibilityView)),
    extensions(("x-problem-types" = json!(crate::routes::auth::AUTHENTICATED_PROBLEMS)))
)]
pub async fn my_eligibility(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<EligibilityView>, HttpProblem> {
    let answer = state
        .clients
        .scheduling
        .clone()
        // scheduling-svc answers for the token's person: forward the token.
        .check_eligibility(caller.grpc_request(scheduling::CheckEligibilityRequest {
            campaign_id: String::new(),
            birth_date: caller.claims.bd.clone(),
            person_key: caller.claims.sub.clone(),
            ..Default::default()
        })?)
        .await
        .map_err(|status| HttpProblem::from_grpc("scheduling-svc", &status))?
        .into_inner();
    Ok(Json(answer.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_eligible_answer_has_no_reason() {
        let view = EligibilityView::from(scheduling::CheckEligibilityResponse {
            eligible: true,
            campaign_id: "c18-49".into(),
            reason: "stale".into(),
            ..Default::default()
        });
        let json = serde_json::to_value(&view).unwrap_or_default();
        assert!(json.get("reason").is_none());
        assert_eq!(json["campaign_id"], "c18-49");
    }

    #[test]
    fn an_ineligible_answer_says_why() {
        let view = EligibilityView::from(scheduling::CheckEligibilityResponse {
            eligible: false,
            reason: "not-open-yet".into(),
            ..Default::default()
        });
        let json = serde_json::to_value(&view).unwrap_or_default();
        assert_eq!(json["reason"], "not-open-yet");
        assert!(json["campaign_id"].is_null());
    }
}
