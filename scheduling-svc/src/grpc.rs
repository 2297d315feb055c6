//! The tonic adapter: turns wire messages into validated domain values (`TryFrom`, naming the
//! bad field), calls [`Scheduling`], and turns answers and errors back into messages and
//! statuses. No rule lives here.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use platform::clock::{from_timestamp, to_timestamp};
use platform::config::Secret;
use platform::ids::{PersonKey, format_iso_date, parse_iso_date};
use proto::scheduling::v1 as pb;
use proto::scheduling::v1::scheduling_admin_service_server::SchedulingAdminService;
use proto::scheduling::v1::scheduling_service_server::SchedulingService;
use tonic::{Request, Response, Status};

use crate::domain::{
    BookingWindow, Campaign, CampaignId, CampaignName, CancellationLead, DateRange,
    storable_instant,
};
use crate::eligibility::{Applicant, EligibilityDecision};
use crate::error::SchedulingError;
use crate::service::Scheduling;

#[derive(Clone)]
pub struct SchedulingGrpc {
    scheduling: Arc<Scheduling>,
    admin_key: Secret,
}

impl SchedulingGrpc {
    pub fn new(scheduling: Arc<Scheduling>, admin_key: Secret) -> Self {
        Self {
            scheduling,
            admin_key,
        }
    }
}

impl TryFrom<&pb::CheckEligibilityRequest> for Applicant {
    type Error = SchedulingError;

    fn try_from(request: &pb::CheckEligibilityRequest) -> Result<Self, SchedulingError> {
        Ok(Self {
            birth_date: parse_iso_date("birth_date", &request.birth_date)?,
            person_key: PersonKey::parse(&request.person_key)?,
        })
    }
}

impl TryFrom<pb::Campaign> for Campaign {
    type Error = SchedulingError;

    fn try_from(message: pb::Campaign) -> Result<Self, SchedulingError> {
        Self::try_from(&message)
    }
}

impl TryFrom<&pb::Campaign> for Campaign {
    type Error = SchedulingError;

    fn try_from(message: &pb::Campaign) -> Result<Self, SchedulingError> {
        let born = DateRange::new(
            "born",
            parse_iso_date("born_from", &message.born_from)?,
            parse_iso_date("born_to", &message.born_to)?,
        )?;
        let booking = BookingWindow::new(
            required_instant("booking_opens_at", message.booking_opens_at.as_ref())?,
            required_instant("booking_closes_at", message.booking_closes_at.as_ref())?,
        )?;
        let vaccination = DateRange::new(
            "vaccination",
            parse_iso_date("vaccination_from", &message.vaccination_from)?,
            parse_iso_date("vaccination_to", &message.vaccination_to)?,
        )?;
        Ok(Self {
            id: CampaignId::parse(&message.id).map_err(|err| err.for_field("id"))?,
            name: CampaignName::parse(&message.name)?,
            born,
            booking,
            vaccination,
            proxy_allowed: message.proxy_allowed,
            proxy_deadline: optional_instant("proxy_deadline", message.proxy_deadline.as_ref())?,
            modification_allowed_from: optional_instant(
                "modification_allowed_from",
                message.modification_allowed_from.as_ref(),
            )?,
            cancellation_closes_days_before: CancellationLead::days(i64::from(
                message.cancellation_closes_days_before,
            ))?,
        })
    }
}

impl From<&Campaign> for pb::Campaign {
    fn from(campaign: &Campaign) -> Self {
        Self {
            id: campaign.id.as_str().to_owned(),
            name: campaign.name.as_str().to_owned(),
            born_from: format_iso_date(campaign.born.first()),
            born_to: format_iso_date(campaign.born.last()),
            booking_opens_at: Some(to_timestamp(campaign.booking.opens_at())),
            booking_closes_at: Some(to_timestamp(campaign.booking.closes_at())),
            vaccination_from: format_iso_date(campaign.vaccination.first()),
            vaccination_to: format_iso_date(campaign.vaccination.last()),
            proxy_allowed: campaign.proxy_allowed,
            proxy_deadline: campaign.proxy_deadline.map(to_timestamp),
            modification_allowed_from: campaign.modification_allowed_from.map(to_timestamp),
            cancellation_closes_days_before: i32::from(
                campaign.cancellation_closes_days_before.as_days(),
            ),
            ..Default::default()
        }
    }
}

impl From<Campaign> for pb::Campaign {
    fn from(campaign: Campaign) -> Self {
        Self::from(&campaign)
    }
}

fn required_instant(
    field: &str,
    timestamp: Option<&prost_types::Timestamp>,
) -> Result<DateTime<Utc>, SchedulingError> {
    optional_instant(field, timestamp)?
        .ok_or_else(|| SchedulingError::invalid(format!("{field} is required")))
}

/// An absent timestamp is `None`; a present but malformed one is an error, never `None`.
fn optional_instant(
    field: &str,
    timestamp: Option<&prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, SchedulingError> {
    timestamp
        .map(|timestamp| {
            from_timestamp(timestamp)
                .map(storable_instant)
                .ok_or_else(|| {
                    SchedulingError::invalid(format!("{field} is not a valid timestamp"))
                })
        })
        .transpose()
}

fn eligibility_response(decision: &EligibilityDecision) -> pb::CheckEligibilityResponse {
    let mut response = pb::CheckEligibilityResponse {
        eligible: decision.is_eligible(),
        reason: decision
            .ineligible
            .map(|reason| reason.as_str().to_owned())
            .unwrap_or_default(),
        ..Default::default()
    };
    if let Some(campaign) = &decision.campaign {
        response.campaign_id = campaign.id.as_str().to_owned();
        response.vaccination_from = format_iso_date(campaign.vaccination.first());
        response.vaccination_to = format_iso_date(campaign.vaccination.last());
        response.campaign = Some(pb::Campaign::from(campaign));
    }
    if let Some(window) = &decision.window {
        response.opens_at = Some(to_timestamp(window.opens_at()));
        response.closes_at = Some(to_timestamp(window.closes_at()));
    }
    response
}

#[tonic::async_trait]
impl SchedulingService for SchedulingGrpc {
    async fn check_eligibility(
        &self,
        request: Request<pb::CheckEligibilityRequest>,
    ) -> Result<Response<pb::CheckEligibilityResponse>, Status> {
        let request = request.into_inner();
        let applicant = Applicant::try_from(&request)?;
        let campaign_id = Some(request.campaign_id.as_str()).filter(|id| !id.is_empty());
        let decision = self.scheduling.check_eligibility(campaign_id, &applicant)?;
        Ok(Response::new(eligibility_response(&decision)))
    }

    async fn get_campaign(
        &self,
        request: Request<pb::GetCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let campaign = self.scheduling.get_campaign(&request.get_ref().id)?;
        Ok(Response::new(pb::Campaign::from(&campaign)))
    }

    async fn list_campaigns(
        &self,
        _request: Request<pb::ListCampaignsRequest>,
    ) -> Result<Response<pb::ListCampaignsResponse>, Status> {
        let campaigns = self
            .scheduling
            .list_campaigns()
            .iter()
            .map(pb::Campaign::from)
            .collect();
        Ok(Response::new(pb::ListCampaignsResponse { campaigns }))
    }

    async fn list_windows(
        &self,
        _request: Request<pb::ListWindowsRequest>,
    ) -> Result<Response<pb::ListWindowsResponse>, Status> {
        Err(Status::unimplemented("ListWindows is not available yet"))
    }
}

#[tonic::async_trait]
impl SchedulingAdminService for SchedulingGrpc {
    async fn upsert_campaign(
        &self,
        request: Request<pb::UpsertCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        platform::grpc::require_admin(request.metadata(), self.admin_key.expose())?;
        let message = request
            .into_inner()
            .campaign
            .ok_or_else(|| SchedulingError::invalid("campaign is required"))?;
        let campaign = Campaign::try_from(message)?;
        let stored = self.scheduling.upsert_campaign(campaign).await?;
        Ok(Response::new(pb::Campaign::from(&stored)))
    }

    async fn replace_exclusions(
        &self,
        _request: Request<tonic::Streaming<pb::ReplaceExclusionsRequest>>,
    ) -> Result<Response<pb::ReplaceExclusionsResponse>, Status> {
        Err(Status::unimplemented(
            "ReplaceExclusions is not available yet",
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use platform::problem::{Problem, ProblemKind};

    fn valid_message() -> pb::Campaign {
        pb::Campaign {
            id: "covid19-18-49".to_owned(),
            name: "18-49".to_owned(),
            born_from: "1972-01-01".to_owned(),
            born_to: "2003-12-31".to_owned(),
            booking_opens_at: Some(prost_types::Timestamp {
                seconds: 1_628_506_800,
                nanos: 0,
            }),
            booking_closes_at: Some(prost_types::Timestamp {
                seconds: 1_631_955_600,
                nanos: 0,
            }),
            vaccination_from: "2021-08-26".to_owned(),
            vaccination_to: "2021-10-02".to_owned(),
            proxy_allowed: false,
            proxy_deadline: None,
            modification_allowed_from: None,
            cancellation_closes_days_before: 2,
            ..Default::default()
        }
    }

    fn rejected_field(message: pb::Campaign) -> String {
        let problem = Problem::from(Campaign::try_from(message).unwrap_err());
        assert_eq!(problem.kind, ProblemKind::InvalidRequest);
        problem.detail
    }

    #[test]
    fn a_valid_message_round_trips() {
        let message = valid_message();
        let campaign = Campaign::try_from(&message).unwrap();
        assert_eq!(campaign.cancellation_closes_days_before.as_days(), 2);
        assert_eq!(pb::Campaign::from(&campaign), message);
    }

    #[test]
    fn zero_cancellation_lead_means_zero() {
        let mut message = valid_message();
        message.cancellation_closes_days_before = 0;
        let campaign = Campaign::try_from(message).unwrap();
        assert_eq!(campaign.cancellation_closes_days_before.as_days(), 0);
    }

    #[test]
    fn malformed_fields_are_named() {
        type Spoil = Box<dyn Fn(&mut pb::Campaign)>;
        let cases: Vec<(&str, Spoil)> = vec![
            ("id", Box::new(|m| m.id = "Bad_Id".to_owned())),
            ("id", Box::new(|m| m.id = "-leading-dash".to_owned())),
            ("id", Box::new(|m| m.id = "a".repeat(65))),
            ("id", Box::new(|m| m.id.clear())),
            ("name", Box::new(|m| m.name = "  ".to_owned())),
            ("name", Box::new(|m| m.name = "가".repeat(201))),
            (
                "born_from",
                Box::new(|m| m.born_from = "1972-1-1".to_owned()),
            ),
            ("born_to", Box::new(|m| m.born_to = "2003-02-30".to_owned())),
            (
                "born_from",
                Box::new(|m| m.born_from = "2004-01-01".to_owned()),
            ),
            ("booking_opens_at", Box::new(|m| m.booking_opens_at = None)),
            (
                "booking_closes_at",
                Box::new(|m| m.booking_closes_at = None),
            ),
            (
                "booking_opens_at",
                Box::new(|m| m.booking_closes_at = m.booking_opens_at),
            ),
            (
                "vaccination_from",
                Box::new(|m| m.vaccination_from = "2021-10-03".to_owned()),
            ),
            (
                "proxy_deadline",
                Box::new(|m| {
                    m.proxy_deadline = Some(prost_types::Timestamp {
                        seconds: 0,
                        nanos: -1,
                    })
                }),
            ),
            (
                "cancellation_closes_days_before",
                Box::new(|m| m.cancellation_closes_days_before = 31),
            ),
            (
                "cancellation_closes_days_before",
                Box::new(|m| m.cancellation_closes_days_before = -1),
            ),
        ];
        for (field, spoil) in cases {
            let mut message = valid_message();
            spoil(&mut message);
            let detail = rejected_field(message);
            assert!(detail.starts_with(field), "{field}: {detail}");
        }
    }

    #[test]
    fn person_keys_follow_the_shared_limits() {
        let request = |person_key: String| pb::CheckEligibilityRequest {
            campaign_id: String::new(),
            birth_date: "1990-05-05".to_owned(),
            person_key,
            ..Default::default()
        };
        assert!(Applicant::try_from(&request("pk-4f1c_Z".to_owned())).is_ok());
        assert!(Applicant::try_from(&request("k".repeat(128))).is_ok());
        for bad in [String::new(), "k".repeat(129), "a b".to_owned()] {
            let problem = Problem::from(Applicant::try_from(&request(bad)).unwrap_err());
            assert_eq!(problem.kind, ProblemKind::InvalidRequest);
            assert!(
                problem.detail.starts_with("person_key"),
                "{}",
                problem.detail
            );
        }
        let mut bad_date = request("pk".to_owned());
        bad_date.birth_date = "1990-5-5".to_owned();
        let problem = Problem::from(Applicant::try_from(&bad_date).unwrap_err());
        assert!(
            problem.detail.starts_with("birth_date"),
            "{}",
            problem.detail
        );
    }

    #[test]
    fn longest_allowed_id_and_name_are_accepted() {
        let mut message = valid_message();
        message.id = format!("9{}", "-".repeat(63));
        message.name = "가".repeat(200);
        assert!(Campaign::try_from(message).is_ok());
    }

    #[test]
    fn instants_keep_microseconds_only() {
        let mut message = valid_message();
        message.booking_opens_at = Some(prost_types::Timestamp {
            seconds: 1_628_506_800,
            nanos: 123_456_789,
        });
        let campaign = Campaign::try_from(message).unwrap();
        assert_eq!(
            campaign.booking.opens_at().timestamp_subsec_nanos(),
            123_456_000
        );
    }
}
