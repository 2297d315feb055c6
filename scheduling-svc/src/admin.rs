//! The operators' `SchedulingAdminService` (R9): operators instead of one shared key, and every
//! operator action audited. Each call is authorized by [`OperatorGuard`]: an operator token —
//! the agent token auth-svc's `StaffAuthService.Login` issues to an account of role `operator` —
//! in `authorization: Bearer`, verified here against auth-svc's KeysService. Only the dev run
//! (`Config::local_dev`) also takes the development key in `x-admin-key`; a production
//! configuration has no key to compare with.
//!
//! Every call, accepted or refused, is appended to scheduling-svc's own hash-chained audit trail
//! (`platform::audit`: PostgreSQL when the campaigns are there, else in memory) as
//! `admin.upsert-campaign` or `admin.replace-exclusions`, without a person key (the keys of an
//! exclusion list are never listed), outcome `ok` or the problem type name. The order is chosen
//! so that no change is made without its entry:
//!
//! 1. Authorize. A refusal (`staff-token-required`, `role-not-allowed`, `unavailable` when
//!    auth-svc's keys are out of reach) is appended under `unknown` or the staff account of a
//!    token of another role. It stays the answer even if that entry cannot be written, since
//!    nothing changes; the failure is logged.
//! 2. Check the whole request before anything is written: the campaign decoded and validated;
//!    the exclusion stream read to its end, every key checked, and the list's campaign looked up
//!    in the store (campaigns are never deleted, so it is still there when the list is written).
//!    A refused request is appended with its problem type name.
//! 3. Append the entry (`ok` for a request that passed). If that append fails, the call is
//!    `unavailable` and nothing has changed: no entry, no change.
//! 4. Make the change. The store itself is all that can still fail here (the database the entry
//!    was just written to): the failure is appended as a second entry of the same action with
//!    its problem type name, so the trail reads "accepted, then failed" and the operator, told
//!    `unavailable`, retries (both changes replace what they name whole, so a retry is safe).
//!
//! [`audit_log`] opens the trail; `serve` keeps the [`AuditLog`] for queries over it.

use std::sync::Arc;

use platform::audit::{AuditLog, AuditRecord, MemoryAuditLog, PgAuditLog, SCHEDULING_TRAIL};
use platform::clock::SharedClock;
use platform::ids::{CampaignId, PersonKey};
use platform::operator::{Operator, OperatorGuard};
use platform::problem::Problem;
use proto::scheduling::v1 as pb;
use proto::scheduling::v1::scheduling_admin_service_server::{
    SchedulingAdminService, SchedulingAdminServiceServer,
};
use tokio_stream::StreamExt;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use crate::domain::Campaign;
use crate::error::SchedulingError;
use crate::service::Scheduling;
use crate::store::PgCampaignStore;

/// The audit action of `UpsertCampaign`.
pub const UPSERT_CAMPAIGN: &str = "admin.upsert-campaign";
/// The audit action of `ReplaceExclusions`.
pub const REPLACE_EXCLUSIONS: &str = "admin.replace-exclusions";
/// Most person keys one exclusion list may hold.
pub const MAX_EXCLUSIONS: usize = 5_000_000;

/// scheduling-svc's audit trail: the trail `scheduling` in the campaigns' PostgreSQL database
/// (migrated, append-only; its own chain even where booking-svc's trail shares the database) when
/// `database` (its URL and the campaign store) is given, else in memory (the dev run on the
/// in-process store).
pub async fn audit_log(
    database: Option<(&str, &PgCampaignStore)>,
) -> anyhow::Result<Arc<dyn AuditLog>> {
    match database {
        Some((url, store)) => Ok(Arc::new(
            PgAuditLog::migrate(url, store.pool().clone(), SCHEDULING_TRAIL).await?,
        )),
        None => Ok(Arc::new(MemoryAuditLog::new())),
    }
}

/// `SchedulingAdminService` over gRPC, for operators only.
pub struct AdminGrpc {
    scheduling: Arc<Scheduling>,
    guard: OperatorGuard,
    audit: Arc<dyn AuditLog>,
    clock: SharedClock,
}

impl AdminGrpc {
    pub fn new(
        scheduling: Arc<Scheduling>,
        guard: OperatorGuard,
        audit: Arc<dyn AuditLog>,
        clock: SharedClock,
    ) -> Self {
        Self {
            scheduling,
            guard,
            audit,
            clock,
        }
    }

    pub fn into_service(self) -> SchedulingAdminServiceServer<Self> {
        SchedulingAdminServiceServer::new(self)
    }

    async fn append(&self, record: AuditRecord) -> Result<(), Problem> {
        platform::audit::append_or_unavailable(&*self.audit, self.clock.now(), record)
            .await
            .map(|_| ())
    }

    /// Step 1: the operator of the call, or its refusal, audited.
    async fn operator(&self, metadata: &MetadataMap, action: &str) -> Result<Operator, Status> {
        match self.guard.authorize(metadata).await {
            Ok(operator) => Ok(operator),
            Err(refusal) => {
                // Nothing changes on a refusal, so it is the answer even without its entry
                // (`append` has logged why the entry is missing).
                self.append(refusal.record(action)).await.ok();
                Err(refusal.problem.to_status())
            }
        }
    }

    /// Steps 2 and 3: the checked request's entry, written before any change.
    async fn admitted<T>(
        &self,
        operator: &Operator,
        action: &str,
        checked: Result<T, Problem>,
    ) -> Result<T, Status> {
        let outcome = match &checked {
            Ok(_) => "ok",
            Err(problem) => problem.kind.name(),
        };
        self.append(operator.record(action, None, outcome))
            .await
            .map_err(|problem| problem.to_status())?;
        checked.map_err(|problem| problem.to_status())
    }

    /// Step 4: a change that failed after its `ok` entry gets an entry of its own.
    async fn applied<T>(
        &self,
        operator: &Operator,
        action: &str,
        result: Result<T, SchedulingError>,
    ) -> Result<T, Status> {
        match result {
            Ok(value) => Ok(value),
            Err(err) => {
                let problem = Problem::from(err);
                self.append(operator.record(action, None, problem.kind.name()))
                    .await
                    .ok();
                Err(problem.to_status())
            }
        }
    }

    /// Reads a whole exclusion stream: the campaign (named by the first message, and stored)
    /// and every key, checked for its limits.
    async fn exclusion_list(
        &self,
        stream: &mut Streaming<pb::ReplaceExclusionsRequest>,
    ) -> Result<(CampaignId, Vec<String>), Problem> {
        let mut campaign_id: Option<CampaignId> = None;
        let mut person_keys: Vec<String> = Vec::new();
        while let Some(message) = stream.next().await {
            let message = message.map_err(|status| Problem::from_status(&status))?;
            if campaign_id.is_none() {
                campaign_id = Some(
                    CampaignId::parse(&message.campaign_id)
                        .map_err(|err| SchedulingError::from(err.for_field("campaign_id")))?,
                );
            }
            for key in message.person_keys {
                // Parsed for its limits only; the index keeps the text.
                PersonKey::parse(&key)
                    .map_err(|err| SchedulingError::from(err.for_field("person_keys")))?;
                person_keys.push(key);
            }
            if person_keys.len() > MAX_EXCLUSIONS {
                return Err(SchedulingError::invalid(format!(
                    "person_keys holds more than {MAX_EXCLUSIONS} entries"
                ))
                .into());
            }
        }
        let campaign_id =
            campaign_id.ok_or_else(|| SchedulingError::invalid("campaign_id is required"))?;
        // The store, not this replica's cache: the campaign may have come through another one.
        self.scheduling
            .store()
            .get(&campaign_id)
            .await?
            .ok_or(SchedulingError::CampaignNotFound)?;
        Ok((campaign_id, person_keys))
    }
}

#[tonic::async_trait]
impl SchedulingAdminService for AdminGrpc {
    async fn upsert_campaign(
        &self,
        request: Request<pb::UpsertCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let operator = self.operator(request.metadata(), UPSERT_CAMPAIGN).await?;
        let checked = request
            .into_inner()
            .campaign
            .ok_or_else(|| SchedulingError::invalid("campaign is required"))
            .and_then(Campaign::try_from)
            .map_err(Problem::from);
        let campaign = self.admitted(&operator, UPSERT_CAMPAIGN, checked).await?;
        let stored = self
            .applied(
                &operator,
                UPSERT_CAMPAIGN,
                self.scheduling.upsert_campaign(campaign).await,
            )
            .await?;
        Ok(Response::new(pb::Campaign::from(&stored)))
    }

    async fn replace_exclusions(
        &self,
        request: Request<Streaming<pb::ReplaceExclusionsRequest>>,
    ) -> Result<Response<pb::ReplaceExclusionsResponse>, Status> {
        // Authorized before a single key is read.
        let operator = self
            .operator(request.metadata(), REPLACE_EXCLUSIONS)
            .await?;
        let mut stream = request.into_inner();
        let checked = self.exclusion_list(&mut stream).await;
        let (campaign_id, person_keys) = self
            .admitted(&operator, REPLACE_EXCLUSIONS, checked)
            .await?;
        let (list_version, entries) = self
            .applied(
                &operator,
                REPLACE_EXCLUSIONS,
                self.scheduling
                    .replace_exclusions(&campaign_id, person_keys)
                    .await,
            )
            .await?;
        Ok(Response::new(pb::ReplaceExclusionsResponse {
            campaign_id: campaign_id.into_string(),
            list_version,
            entries: entries as u64,
        }))
    }
}
