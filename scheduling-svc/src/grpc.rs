//! The tonic adapter of `SchedulingService`: turns wire messages into validated domain values
//! (through `wire.rs`), calls [`Scheduling`], and turns answers and errors back into messages and
//! statuses. No rule lives here. The operators' `SchedulingAdminService` is in `admin.rs`.

use std::sync::Arc;

use platform::ids::{PersonKey, format_iso_date, parse_iso_date};
use proto::scheduling::v1 as pb;
use proto::scheduling::v1::scheduling_service_server::SchedulingService;
use tonic::{Request, Response, Status};

use crate::callers::Callers;
use crate::eligibility::{Applicant, Approach};
use crate::error::SchedulingError;
use crate::service::Scheduling;
use crate::wire::{eligibility_response, optional_channel};

#[derive(Clone)]
pub struct SchedulingGrpc {
    scheduling: Arc<Scheduling>,
    /// Who may ask about a person (a citizen's token, or the service credential).
    callers: Arc<Callers>,
}

impl SchedulingGrpc {
    pub fn new(scheduling: Arc<Scheduling>, callers: Arc<Callers>) -> Self {
        Self {
            scheduling,
            callers,
        }
    }
}

impl SchedulingGrpc {
    /// Authenticates the asker and makes `question` about the asker's own person when a
    /// citizen asks (`callers.rs`).
    async fn scope(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        question: &mut pb::CheckEligibilityRequest,
    ) -> Result<(), Status> {
        let asker = self
            .callers
            .authenticate(metadata)
            .await
            .map_err(|problem| problem.to_status())?;
        asker.scope(question).map_err(|problem| problem.to_status())
    }
}

#[tonic::async_trait]
impl SchedulingService for SchedulingGrpc {
    async fn check_eligibility(
        &self,
        request: Request<pb::CheckEligibilityRequest>,
    ) -> Result<Response<pb::CheckEligibilityResponse>, Status> {
        let (metadata, _, mut request) = request.into_parts();
        self.scope(&metadata, &mut request).await?;
        let applicant = Applicant::try_from(&request)?;
        let approach = Approach::try_from(&request)?;
        let campaign_id = Some(request.campaign_id.as_str()).filter(|id| !id.is_empty());
        let response = self.scheduling.check_eligibility_with(
            campaign_id,
            &applicant,
            approach,
            eligibility_response,
        )?;
        Ok(Response::new(response))
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
        request: Request<pb::ListWindowsRequest>,
    ) -> Result<Response<pb::ListWindowsResponse>, Status> {
        let (metadata, _, mut request) = request.into_parts();
        // The same scoping as CheckEligibility: a citizen asks only about themselves.
        let mut question = pb::CheckEligibilityRequest {
            birth_date: std::mem::take(&mut request.birth_date),
            person_key: std::mem::take(&mut request.person_key),
            ..Default::default()
        };
        self.scope(&metadata, &mut question).await?;
        request.birth_date = question.birth_date;
        request.person_key = question.person_key;
        let birth_date =
            parse_iso_date("birth_date", &request.birth_date).map_err(SchedulingError::from)?;
        let person_key = PersonKey::parse(&request.person_key).map_err(SchedulingError::from)?;
        let channel = optional_channel("channel", request.channel)?;
        let windows = self
            .scheduling
            .list_windows(birth_date, &person_key, channel)
            .iter()
            .map(|entry| pb::PersonWindow {
                campaign_id: entry.campaign.id.as_str().to_owned(),
                campaign_name: entry.campaign.name.as_str().to_owned(),
                window: Some(pb::Window::from(&entry.window)),
                open_now: entry.open_now,
                vaccination_from: format_iso_date(entry.campaign.vaccination.first()),
                vaccination_to: format_iso_date(entry.campaign.vaccination.last()),
            })
            .collect();
        Ok(Response::new(pb::ListWindowsResponse { windows }))
    }
}
