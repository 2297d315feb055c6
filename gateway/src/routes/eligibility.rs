//! `GET /v1/me/eligibility`: may the verified person book now, in which campaign, until when;
//! `GET /v1/me/windows`: the person's upcoming booking windows in every campaign of their age
//! ("your turn: 13 Aug 20:00"). The birth date comes from the access token; the decisions are
//! scheduling-svc's.

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
    /// Why not: not-in-age-group, window-not-open (`opens_at` is the person's next window),
    /// window-closed, excluded-priority-target, channel-not-allowed, proxy-not-allowed
    /// (`proxy_deadline`), campaign-closed; no-campaign when there is none. Absent when
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
    /// The window the answer is about (the open one, or the person's next one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowView>,
    /// Until when (exclusive) someone else may book for a person in this campaign, when the
    /// campaign allows proxies with a deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, example = "2021-08-09T18:00:00+09:00")]
    pub proxy_deadline: Option<String>,
}

/// One booking window of a campaign.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Window)]
pub struct WindowView {
    #[schema(pattern = "^[a-z0-9-]{1,64}$")]
    pub id: String,
    /// rotation (by the birth day's last digit), band (one age band) or open (everyone).
    #[schema(pattern = "^(rotation|band|open)$")]
    pub kind: String,
    /// RFC 3339 with the KST offset; open from here (inclusive).
    #[schema(format = DateTime, example = "2021-08-13T20:00:00+09:00")]
    pub opens_at: String,
    /// RFC 3339 with the KST offset; closed from here on.
    #[schema(format = DateTime, example = "2021-08-14T18:00:00+09:00")]
    pub closes_at: String,
    /// Channels booking is accepted on: web, call_center.
    pub channels: Vec<String>,
}

impl WindowView {
    fn from_wire(window: &scheduling::Window) -> Option<Self> {
        let kind = match scheduling::WindowKind::try_from(window.kind).ok()? {
            scheduling::WindowKind::Rotation => "rotation",
            scheduling::WindowKind::Band => "band",
            scheduling::WindowKind::Open => "open",
            scheduling::WindowKind::Unspecified => return None,
        };
        Some(Self {
            id: window.id.clone(),
            kind: kind.to_owned(),
            opens_at: optional_time(window.opens_at.as_ref())?,
            closes_at: optional_time(window.closes_at.as_ref())?,
            channels: window
                .channels
                .iter()
                .filter_map(|raw| match scheduling::Channel::try_from(*raw).ok()? {
                    scheduling::Channel::Web => Some("web".to_owned()),
                    scheduling::Channel::CallCenter => Some("call_center".to_owned()),
                    scheduling::Channel::Unspecified => None,
                })
                .collect(),
        })
    }
}

/// One of the person's upcoming windows.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PersonWindow)]
pub struct PersonWindowView {
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,63}$")]
    pub campaign_id: String,
    pub campaign_name: String,
    pub window: WindowView,
    /// Whether the window is open now.
    pub open_now: bool,
    /// First vaccination day of the campaign, YYYY-MM-DD (KST).
    #[schema(format = Date)]
    pub vaccination_from: String,
    /// Last vaccination day of the campaign, YYYY-MM-DD (KST).
    #[schema(format = Date)]
    pub vaccination_to: String,
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
            window: answer.window.as_ref().and_then(WindowView::from_wire),
            proxy_deadline: optional_time(answer.proxy_deadline.as_ref()),
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

/// `GET /v1/me/windows`
#[utoipa::path(
    get,
    path = "/v1/me/windows",
    operation_id = "myWindows",
    summary = "My upcoming booking windows in every campaign of my age",
    tag = "eligibility",
    params(crate::routes::auth::DeviceIdHeader),
    security(("bearer" = [])),
    responses((status = 200, description = "Windows not closed yet, earliest opening first.", body = Vec<PersonWindowView>)),
    extensions(("x-problem-types" = json!(crate::routes::auth::AUTHENTICATED_PROBLEMS)))
)]
pub async fn my_windows(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<Vec<PersonWindowView>>, HttpProblem> {
    let answer = state
        .clients
        .scheduling
        .clone()
        .list_windows(caller.grpc_request(scheduling::ListWindowsRequest {
            birth_date: caller.claims.bd.clone(),
            person_key: caller.claims.sub.clone(),
            channel: scheduling::Channel::Web.into(),
        })?)
        .await
        .map_err(|status| HttpProblem::from_grpc("scheduling-svc", &status))?
        .into_inner();
    Ok(Json(
        answer
            .windows
            .into_iter()
            .filter_map(|entry| {
                Some(PersonWindowView {
                    window: WindowView::from_wire(entry.window.as_ref()?)?,
                    campaign_id: entry.campaign_id,
                    campaign_name: entry.campaign_name,
                    open_now: entry.open_now,
                    vaccination_from: entry.vaccination_from,
                    vaccination_to: entry.vaccination_to,
                })
            })
            .collect(),
    ))
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

    #[test]
    fn the_window_and_proxy_deadline_are_shown_in_kst() {
        let ts = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
        let view = EligibilityView::from(scheduling::CheckEligibilityResponse {
            eligible: false,
            reason: "window-not-open".into(),
            proxy_deadline: ts(1_628_499_600),
            window: Some(scheduling::Window {
                id: "rotation-13".into(),
                kind: scheduling::WindowKind::Rotation.into(),
                opens_at: ts(1_628_852_400),
                closes_at: ts(1_628_931_600),
                channels: vec![scheduling::Channel::Web.into()],
                ..Default::default()
            }),
            ..Default::default()
        });
        let json = serde_json::to_value(&view).unwrap_or_default();
        assert_eq!(json["window"]["id"], "rotation-13");
        assert_eq!(json["window"]["kind"], "rotation");
        assert_eq!(json["window"]["opens_at"], "2021-08-13T20:00:00+09:00");
        assert_eq!(json["window"]["channels"][0], "web");
        assert_eq!(json["proxy_deadline"], "2021-08-09T18:00:00+09:00");
    }
}
