//! The tonic adapter: turns wire requests into validated inputs, calls [`Scheduling`], and turns
//! answers and errors back into messages and statuses. No rule lives here.

use std::sync::Arc;

use platform::clock::to_timestamp;
use platform::problem::Problem;
use proto::scheduling::v1 as pb;
use proto::scheduling::v1::scheduling_admin_service_server::SchedulingAdminService;
use proto::scheduling::v1::scheduling_service_server::SchedulingService;
use tonic::{Request, Response, Status};

use crate::campaign::{Campaign, format_iso_date, parse_iso_date};
use crate::eligibility::{Applicant, EligibilityDecision};
use crate::service::Scheduling;

/// A person key is an opaque keyed hash; anything this long is not one.
const PERSON_KEY_MAX_LEN: usize = 512;

#[derive(Clone)]
pub struct SchedulingGrpc {
    scheduling: Arc<Scheduling>,
    admin_key: String,
}

impl SchedulingGrpc {
    pub fn new(scheduling: Arc<Scheduling>, admin_key: impl Into<String>) -> Self {
        Self {
            scheduling,
            admin_key: admin_key.into(),
        }
    }
}

fn applicant_from(request: &pb::CheckEligibilityRequest) -> Result<Applicant, Problem> {
    let birth_date = parse_iso_date("birth_date", &request.birth_date)?;
    if request.person_key.trim().is_empty() {
        return Err(Problem::invalid("person_key is required"));
    }
    if request.person_key.len() > PERSON_KEY_MAX_LEN {
        return Err(Problem::invalid("person_key is too long"));
    }
    Ok(Applicant {
        birth_date,
        person_key: request.person_key.clone(),
    })
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
        let applicant = applicant_from(&request)?;
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
}

#[tonic::async_trait]
impl SchedulingAdminService for SchedulingGrpc {
    async fn upsert_campaign(
        &self,
        request: Request<pb::UpsertCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        platform::grpc::require_admin(request.metadata(), &self.admin_key)?;
        let message = request
            .into_inner()
            .campaign
            .ok_or_else(|| Problem::invalid("campaign is required"))?;
        let campaign = Campaign::try_from(message)?;
        let stored = self.scheduling.upsert_campaign(campaign).await?;
        Ok(Response::new(pb::Campaign::from(&stored)))
    }
}
