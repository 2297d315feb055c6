//! Eligibility as booking-svc needs it: may this person book in the slot's campaign now, and
//! the campaign terms that shape the booking (cancellation deadline, proxy policy). The
//! production answer comes from scheduling-svc over gRPC; booking-svc asks on every booking
//! (and on every change, for the change policy) because call-center apps do not pass through
//! the gateway (R1, R6, R7, R8).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use platform::clock::from_timestamp;
use platform::grpc::TracedChannel;
use platform::problem::{Problem, ProblemKind};
use proto::scheduling::v1 as pb;
use proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use tonic::Code;

/// R8's default when scheduling-svc names no campaign terms: cancellable through D-2.
pub const DEFAULT_CANCELLATION_CLOSES_DAYS_BEFORE: u32 = 2;

/// The campaign rules a booking depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignTerms {
    pub proxy_allowed: bool,
    pub proxy_deadline: Option<DateTime<Utc>>,
    pub cancellation_closes_days_before: u32,
    /// From when a booking may be moved to another slot (R8); `None` means never.
    pub modification_allowed_from: Option<DateTime<Utc>>,
}

impl Default for CampaignTerms {
    fn default() -> Self {
        Self {
            proxy_allowed: false,
            proxy_deadline: None,
            cancellation_closes_days_before: DEFAULT_CANCELLATION_CLOSES_DAYS_BEFORE,
            modification_allowed_from: None,
        }
    }
}

impl From<&pb::Campaign> for CampaignTerms {
    fn from(campaign: &pb::Campaign) -> Self {
        Self {
            proxy_allowed: campaign.proxy_allowed,
            proxy_deadline: campaign.proxy_deadline.as_ref().and_then(from_timestamp),
            cancellation_closes_days_before: u32::try_from(
                campaign.cancellation_closes_days_before,
            )
            .unwrap_or(0),
            modification_allowed_from: campaign
                .modification_allowed_from
                .as_ref()
                .and_then(from_timestamp),
        }
    }
}

/// Scheduling's answer for one person and campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EligibilityAnswer {
    pub eligible: bool,
    /// Why not (not-in-age-group, not-open-yet, closed, no-campaign, excluded); empty when
    /// eligible.
    pub reason: String,
    pub terms: CampaignTerms,
}

/// Answers whether a person may book in a campaign now.
#[async_trait]
pub trait EligibilityChecker: Send + Sync {
    async fn check(
        &self,
        campaign_id: &str,
        birth_date: NaiveDate,
        person_key: &str,
    ) -> Result<EligibilityAnswer, Problem>;
}

/// Asks scheduling-svc.
pub struct GrpcEligibility {
    client: SchedulingServiceClient<TracedChannel>,
}

impl GrpcEligibility {
    pub fn new(channel: tonic::transport::Channel) -> Self {
        Self {
            client: SchedulingServiceClient::with_interceptor(
                channel,
                platform::telemetry::TracePropagation,
            ),
        }
    }
}

#[async_trait]
impl EligibilityChecker for GrpcEligibility {
    async fn check(
        &self,
        campaign_id: &str,
        birth_date: NaiveDate,
        person_key: &str,
    ) -> Result<EligibilityAnswer, Problem> {
        let request = pb::CheckEligibilityRequest {
            campaign_id: campaign_id.to_owned(),
            birth_date: birth_date.format("%Y-%m-%d").to_string(),
            person_key: person_key.to_owned(),
        };
        let mut client = self.client.clone();
        match client.check_eligibility(request).await {
            Ok(response) => Ok(answer_from(response.into_inner())),
            Err(status) => Err(problem_from(&status)),
        }
    }
}

fn answer_from(response: pb::CheckEligibilityResponse) -> EligibilityAnswer {
    let terms = match &response.campaign {
        Some(campaign) => CampaignTerms::from(campaign),
        None => {
            if response.eligible {
                tracing::warn!(
                    campaign_id = %response.campaign_id,
                    "scheduling-svc named no campaign terms, using the R8 defaults"
                );
            }
            CampaignTerms::default()
        }
    };
    EligibilityAnswer {
        eligible: response.eligible,
        reason: response.reason,
        terms,
    }
}

/// A scheduling-svc failure as the booking caller should see it.
fn problem_from(status: &tonic::Status) -> Problem {
    match status.code() {
        // An unknown campaign is scheduling's way of saying nobody may book in it.
        Code::NotFound => Problem::new(
            ProblemKind::NotEligible,
            "the slot's campaign is not open for booking",
        )
        .with("reason", "no-campaign"),
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Cancelled
        | Code::ResourceExhausted
        | Code::Unknown => {
            tracing::warn!(code = ?status.code(), "scheduling-svc did not answer");
            Problem::new(
                ProblemKind::Unavailable,
                "eligibility cannot be checked right now",
            )
            .with_retry_after(Duration::from_secs(1))
        }
        code => {
            tracing::error!(
                ?code,
                message = status.message(),
                "scheduling-svc refused the eligibility check"
            );
            Problem::internal()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_terms_follow_the_campaign() {
        let campaign = pb::Campaign {
            proxy_allowed: true,
            proxy_deadline: Some(prost_types::Timestamp {
                seconds: 1_628_499_600,
                nanos: 0,
            }),
            cancellation_closes_days_before: 3,
            modification_allowed_from: Some(prost_types::Timestamp {
                seconds: 1_631_977_200,
                nanos: 0,
            }),
            ..Default::default()
        };
        let terms = CampaignTerms::from(&campaign);
        assert!(terms.proxy_allowed);
        assert_eq!(terms.cancellation_closes_days_before, 3);
        assert_eq!(
            terms.proxy_deadline.map(|deadline| deadline.timestamp()),
            Some(1_628_499_600)
        );
        assert_eq!(
            terms.modification_allowed_from.map(|from| from.timestamp()),
            Some(1_631_977_200)
        );
        let never = CampaignTerms::from(&pb::Campaign::default());
        assert_eq!(never.modification_allowed_from, None);
        let without_campaign = answer_from(pb::CheckEligibilityResponse {
            eligible: true,
            ..Default::default()
        });
        assert_eq!(without_campaign.terms, CampaignTerms::default());
    }

    #[test]
    fn scheduling_failures_become_retryable_or_not_eligible() {
        let down = problem_from(&tonic::Status::unavailable("connection refused"));
        assert_eq!(down.kind, ProblemKind::Unavailable);
        assert!(down.retry_after.is_some());
        let unknown = problem_from(&tonic::Status::not_found("no such campaign"));
        assert_eq!(unknown.kind, ProblemKind::NotEligible);
        assert_eq!(
            unknown.extra.get("reason").map(String::as_str),
            Some("no-campaign")
        );
        let bug = problem_from(&tonic::Status::invalid_argument("birth_date"));
        assert_eq!(bug.kind, ProblemKind::Internal);
    }
}
