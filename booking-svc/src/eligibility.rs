//! Eligibility as booking-svc needs it: may this person book in the slot's campaign now, on
//! this channel, as themselves or through a proxy, and the campaign terms that shape the
//! booking (cancellation deadline, proxy policy, the supply released so far). The production
//! answer comes from scheduling-svc over gRPC; booking-svc asks on every booking (and on every
//! change, for the change policy) because call-center apps do not pass through the gateway
//! (R1, R5–R8). Why a call and not a signed eligibility grant: docs/decisions.md (measured).
//! Slot listings need only the terms (the released share): [`EligibilityChecker::terms`]
//! reads them from `GetCampaign`, cached for [`TERMS_CACHE_TTL`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use platform::clock::from_timestamp;
use platform::grpc::TracedChannel;
use platform::ids::{PersonKey, format_iso_date};
use platform::problem::{Problem, ProblemKind};
use proto::scheduling::v1 as pb;
use proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use tonic::Code;

use crate::domain::{ReleaseStep, ReleasedShare, SupplyRelease};
use crate::error::BookingError;

/// How long slot listings reuse a campaign's terms: scheduling-svc's campaign changes reach
/// every replica within seconds, and a listing is only a view (bookings get fresh terms).
pub const TERMS_CACHE_TTL: Duration = Duration::from_secs(2);

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
    /// At most this many confirmed proxy bookings per booker; `None`: no limit.
    pub proxy_max_per_booker: Option<u32>,
    /// The share of every slot's capacity released as the campaign's windows open (R5).
    pub supply_release: SupplyRelease,
}

impl CampaignTerms {
    /// The share of slot capacity bookable at `now`.
    pub fn released_share(&self, now: DateTime<Utc>) -> ReleasedShare {
        self.supply_release.share_at(now)
    }
}

impl Default for CampaignTerms {
    fn default() -> Self {
        Self {
            proxy_allowed: false,
            proxy_deadline: None,
            cancellation_closes_days_before: DEFAULT_CANCELLATION_CLOSES_DAYS_BEFORE,
            modification_allowed_from: None,
            proxy_max_per_booker: None,
            supply_release: SupplyRelease::default(),
        }
    }
}

/// How a booking reaches booking-svc (scheduling-svc allows channels per window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// The person's own browser or app, through the gateway or straight over gRPC.
    Web,
    /// A call-center agent (R9).
    CallCenter,
}

impl From<Channel> for pb::Channel {
    fn from(channel: Channel) -> Self {
        match channel {
            Channel::Web => Self::Web,
            Channel::CallCenter => Self::CallCenter,
        }
    }
}

/// What booking-svc asks scheduling-svc about one booking.
#[derive(Clone, Copy, Debug)]
pub struct EligibilityQuery<'a> {
    pub campaign_id: &'a str,
    /// Of the person booked for (the beneficiary of a proxy booking).
    pub birth_date: NaiveDate,
    pub person_key: &'a PersonKey,
    pub channel: Channel,
    /// Someone other than the person books for them.
    pub proxy: bool,
}

/// Campaign terms from scheduling-svc that do not validate. Booking fails closed on them: a
/// malformed deadline is not "no deadline", a negative cutoff is not 0.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
    #[error("{field} is not a valid timestamp")]
    MalformedTimestamp { field: &'static str },
    #[error("cancellation_closes_days_before is negative ({0})")]
    NegativeCancellationCutoff(i32),
    #[error("the supply release schedule does not validate: {0}")]
    MalformedSupplyRelease(crate::domain::supply::ReleaseError),
}

/// The cumulative release steps of the wire (`SupplyStep`s) as a schedule.
fn supply_release_from(steps: &[pb::SupplyStep]) -> Result<SupplyRelease, TermsError> {
    let steps = steps
        .iter()
        .map(|step| {
            let at = step.at.as_ref().and_then(from_timestamp).ok_or(
                TermsError::MalformedTimestamp {
                    field: "supply_release.at",
                },
            )?;
            let share = ReleasedShare::from_basis_points(step.released_bp).ok_or(
                TermsError::MalformedSupplyRelease(
                    crate::domain::supply::ReleaseError::ShareAboveFull,
                ),
            )?;
            Ok(ReleaseStep { at, share })
        })
        .collect::<Result<Vec<_>, TermsError>>()?;
    SupplyRelease::new(steps).map_err(TermsError::MalformedSupplyRelease)
}

impl TryFrom<&pb::Campaign> for CampaignTerms {
    type Error = TermsError;

    fn try_from(campaign: &pb::Campaign) -> Result<Self, TermsError> {
        let instant = |field: &'static str, timestamp: Option<&prost_types::Timestamp>| {
            timestamp
                .map(|timestamp| {
                    from_timestamp(timestamp).ok_or(TermsError::MalformedTimestamp { field })
                })
                .transpose()
        };
        Ok(Self {
            proxy_allowed: campaign.proxy_allowed,
            proxy_deadline: instant("proxy_deadline", campaign.proxy_deadline.as_ref())?,
            cancellation_closes_days_before: u32::try_from(
                campaign.cancellation_closes_days_before,
            )
            .map_err(|_| {
                TermsError::NegativeCancellationCutoff(campaign.cancellation_closes_days_before)
            })?,
            modification_allowed_from: instant(
                "modification_allowed_from",
                campaign.modification_allowed_from.as_ref(),
            )?,
            proxy_max_per_booker: (campaign.proxy_max_per_booker > 0)
                .then_some(campaign.proxy_max_per_booker),
            supply_release: supply_release_from(&campaign.supply_release)?,
        })
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
    async fn check(&self, query: &EligibilityQuery<'_>) -> Result<EligibilityAnswer, BookingError>;

    /// The campaign's terms for slot listings; `None` for a campaign scheduling-svc does not
    /// know (nothing of it is bookable).
    async fn terms(&self, campaign_id: &str) -> Result<Option<CampaignTerms>, BookingError>;
}

/// Asks scheduling-svc, as a service: booking-svc has authenticated the person itself (token,
/// proxy grant, agent), so it presents the internal service credential (docs/security.md).
pub struct GrpcEligibility {
    client: SchedulingServiceClient<TracedChannel>,
    terms: Mutex<HashMap<String, (Instant, Option<CampaignTerms>)>>,
    service_credential: Option<platform::config::Secret>,
}

impl GrpcEligibility {
    pub fn new(channel: platform::grpc::GrpcChannel) -> Self {
        Self {
            client: SchedulingServiceClient::with_interceptor(
                channel,
                platform::telemetry::TracePropagation,
            ),
            terms: Mutex::new(HashMap::new()),
            service_credential: None,
        }
    }

    /// Presents `credential` (the internal service key, `x-service-key`) on every eligibility
    /// question.
    pub fn with_service_credential(mut self, credential: platform::config::Secret) -> Self {
        self.service_credential = Some(credential);
        self
    }

    /// `message` with the service credential attached.
    fn as_service<T>(&self, message: T) -> Result<tonic::Request<T>, BookingError> {
        let mut request = tonic::Request::new(message);
        if let Some(credential) = &self.service_credential {
            let value = credential.expose().parse().map_err(|_| {
                tracing::error!("the service credential is not a valid metadata value");
                BookingError::Upstream(Problem::internal())
            })?;
            request
                .metadata_mut()
                .insert(platform::config::SERVICE_KEY_HEADER, value);
        }
        Ok(request)
    }

    fn cached_terms(&self, campaign_id: &str) -> Option<Option<CampaignTerms>> {
        let cache = self.terms.lock().ok()?;
        cache
            .get(campaign_id)
            .filter(|(at, _)| at.elapsed() < TERMS_CACHE_TTL)
            .map(|(_, terms)| terms.clone())
    }
}

#[async_trait]
impl EligibilityChecker for GrpcEligibility {
    async fn check(&self, query: &EligibilityQuery<'_>) -> Result<EligibilityAnswer, BookingError> {
        let request = pb::CheckEligibilityRequest {
            campaign_id: query.campaign_id.to_owned(),
            birth_date: format_iso_date(query.birth_date),
            person_key: query.person_key.to_string(),
            channel: pb::Channel::from(query.channel).into(),
            proxy: query.proxy,
        };
        let request = self.as_service(request)?;
        let mut client = self.client.clone();
        match client.check_eligibility(request).await {
            Ok(response) => {
                answer_from(response.into_inner()).map_err(BookingError::MalformedTerms)
            }
            Err(status) => Err(BookingError::Upstream(problem_from(&status))),
        }
    }

    async fn terms(&self, campaign_id: &str) -> Result<Option<CampaignTerms>, BookingError> {
        if let Some(terms) = self.cached_terms(campaign_id) {
            return Ok(terms);
        }
        let request = pb::GetCampaignRequest {
            id: campaign_id.to_owned(),
        };
        let mut client = self.client.clone();
        let terms = match client.get_campaign(request).await {
            Ok(campaign) => Some(
                CampaignTerms::try_from(&campaign.into_inner())
                    .map_err(BookingError::MalformedTerms)?,
            ),
            Err(status) if status.code() == Code::NotFound => None,
            Err(status) => return Err(BookingError::Upstream(problem_from(&status))),
        };
        if let Ok(mut cache) = self.terms.lock() {
            cache.insert(campaign_id.to_owned(), (Instant::now(), terms.clone()));
        }
        Ok(terms)
    }
}

fn answer_from(response: pb::CheckEligibilityResponse) -> Result<EligibilityAnswer, TermsError> {
    let mut terms = match &response.campaign {
        Some(campaign) => CampaignTerms::try_from(campaign)?,
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
    if !response.supply_release.is_empty() {
        terms.supply_release = supply_release_from(&response.supply_release)?;
    }
    Ok(EligibilityAnswer {
        eligible: response.eligible,
        reason: response.reason,
        terms,
    })
}

/// A scheduling-svc failure as the booking caller should see it. The status is read back with
/// [`Problem::from_status`], so scheduling's own problem (its kind, retry delay and metadata in
/// the ErrorInfo) is what the decision starts from, not the bare gRPC code.
fn problem_from(status: &tonic::Status) -> Problem {
    let problem = Problem::from_status(status);
    match problem.kind {
        // An unknown campaign is scheduling's way of saying nobody may book in it.
        ProblemKind::NotFound => Problem::new(
            ProblemKind::NotEligible,
            "the slot's campaign is not open for booking",
        )
        .with("reason", "no-campaign"),
        ProblemKind::Unavailable | ProblemKind::Overloaded => {
            tracing::warn!(code = ?status.code(), reason = problem.kind.name(), "scheduling-svc did not answer");
            unavailable(problem.retry_after)
        }
        // A connection broken mid-call surfaces as UNKNOWN without vaxbook details.
        ProblemKind::Internal if status.code() == Code::Unknown => {
            tracing::warn!(code = ?status.code(), "scheduling-svc did not answer");
            unavailable(None)
        }
        kind => {
            tracing::error!(
                code = ?status.code(),
                reason = kind.name(),
                detail = %problem.detail,
                "scheduling-svc refused the eligibility check"
            );
            Problem::internal()
        }
    }
}

/// "Try again shortly", keeping scheduling-svc's retry delay when it named one.
fn unavailable(retry_after: Option<Duration>) -> Problem {
    Problem::new(
        ProblemKind::Unavailable,
        "eligibility cannot be checked right now",
    )
    .with_retry_after(retry_after.unwrap_or(Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn questions_carry_the_service_credential() {
        let channel =
            platform::grpc::channel("http://127.0.0.1:1", Duration::from_secs(1)).unwrap();
        let asking = GrpcEligibility::new(channel)
            .with_service_credential(platform::config::Secret::new("service-key"));
        let request = asking.as_service(()).unwrap();
        assert!(request.metadata().get("x-admin-key").is_none());
        assert_eq!(
            request
                .metadata()
                .get(platform::config::SERVICE_KEY_HEADER)
                .and_then(|value| value.to_str().ok()),
            Some("service-key")
        );
    }

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
        let terms = CampaignTerms::try_from(&campaign).unwrap();
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
        let never = CampaignTerms::try_from(&pb::Campaign::default()).unwrap();
        assert_eq!(never.modification_allowed_from, None);
        let without_campaign = answer_from(pb::CheckEligibilityResponse {
            eligible: true,
            ..Default::default()
        })
        .unwrap();
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

    #[test]
    fn a_malformed_proxy_deadline_is_an_error_not_no_deadline() {
        for nanos in [-1, 1_000_000_000] {
            let campaign = pb::Campaign {
                proxy_allowed: true,
                proxy_deadline: Some(prost_types::Timestamp {
                    seconds: 1_628_499_600,
                    nanos,
                }),
                cancellation_closes_days_before: 2,
                ..Default::default()
            };
            assert_eq!(
                CampaignTerms::try_from(&campaign),
                Err(TermsError::MalformedTimestamp {
                    field: "proxy_deadline"
                })
            );
        }
        let campaign = pb::Campaign {
            modification_allowed_from: Some(prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: 0,
            }),
            ..Default::default()
        };
        assert_eq!(
            CampaignTerms::try_from(&campaign),
            Err(TermsError::MalformedTimestamp {
                field: "modification_allowed_from"
            })
        );
    }

    #[test]
    fn a_negative_cancellation_cutoff_is_an_error_not_zero() {
        let campaign = pb::Campaign {
            cancellation_closes_days_before: -1,
            ..Default::default()
        };
        assert_eq!(
            CampaignTerms::try_from(&campaign),
            Err(TermsError::NegativeCancellationCutoff(-1))
        );
        let zero = pb::Campaign::default();
        assert_eq!(
            CampaignTerms::try_from(&zero)
                .unwrap()
                .cancellation_closes_days_before,
            0
        );
    }

    #[test]
    fn malformed_terms_in_an_answer_fail_the_booking_closed() {
        let response = pb::CheckEligibilityResponse {
            eligible: true,
            campaign: Some(pb::Campaign {
                cancellation_closes_days_before: -3,
                ..Default::default()
            }),
            ..Default::default()
        };
        let error = BookingError::MalformedTerms(answer_from(response).unwrap_err());
        assert_eq!(Problem::from(error).kind, ProblemKind::Internal);
    }

    #[test]
    fn scheduling_problems_keep_their_error_info() {
        let overloaded = Problem::new(ProblemKind::Overloaded, "busy")
            .with_retry_after(Duration::from_secs(7))
            .to_status();
        let problem = problem_from(&overloaded);
        assert_eq!(problem.kind, ProblemKind::Unavailable);
        assert_eq!(problem.retry_after, Some(Duration::from_secs(7)));
        let unavailable = Problem::new(ProblemKind::Unavailable, "store down")
            .with_retry_after(Duration::from_secs(3))
            .to_status();
        assert_eq!(
            problem_from(&unavailable).retry_after,
            Some(Duration::from_secs(3))
        );
        // scheduling's not-found problem (its ErrorInfo) means the campaign is unknown.
        let unknown = Problem::new(ProblemKind::NotFound, "no such campaign").to_status();
        let problem = problem_from(&unknown);
        assert_eq!(problem.kind, ProblemKind::NotEligible);
        assert_eq!(
            problem.extra.get("reason").map(String::as_str),
            Some("no-campaign")
        );
        // A refusal of our own request is our bug: internal, without scheduling's words.
        let refused = Problem::invalid("person_key must be 1 to 128 characters").to_status();
        let problem = problem_from(&refused);
        assert_eq!(problem.kind, ProblemKind::Internal);
        assert!(!problem.detail.contains("person_key"));
        let broken = problem_from(&tonic::Status::unknown("transport error"));
        assert_eq!(broken.kind, ProblemKind::Unavailable);
    }
}
