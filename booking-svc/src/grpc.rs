//! The tonic adapters of `vaxbook.booking.v1`: person-facing calls authenticate the bearer
//! token locally (the person is the token's subject, never a field of the request; a staff
//! token is refused `citizen-token-required` and audited), admin calls need an operator token
//! ([`OperatorGuard`]) and are audited, accepted or refused; then the request is validated into
//! domain types (the `TryFrom` impls of `domain::wire`) and handed to [`BookingLogic`]. No rule
//! lives here.

use std::sync::Arc;

use platform::auth::{Role, TokenVerifier};
use platform::grants::GrantVerifier;
use platform::ids::PersonKey;
use platform::operator::{Operator, OperatorGuard};
use platform::problem::{Problem, ProblemKind};
use platform::staff::AgentToken;
use proto::booking::v1 as pb;
use proto::booking::v1::booking_admin_service_server::BookingAdminService;
use proto::booking::v1::booking_service_server::BookingService;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::admission::capacity::CapacityMeter;
use crate::admission::{AdmissionGate, AdmittedUse};
use crate::audit::{CITIZEN_API_REFUSED, Trail, UPSERT_CENTER, UPSERT_SLOT};
use crate::domain::wire::{parse_uuid, region_filter};
use crate::domain::{BookingChange, BookingRequest, Center, Person, SlotDraft, SlotQuery};
use crate::service::BookingLogic;

/// Asks session-svc whether a token's session still holds the person's device lock.
#[derive(Clone)]
pub struct SessionCheck {
    client: proto::session::v1::session_service_client::SessionServiceClient<
        platform::grpc::TracedChannel,
    >,
}

impl SessionCheck {
    pub fn new(channel: platform::grpc::GrpcChannel) -> Self {
        Self {
            client:
                proto::session::v1::session_service_client::SessionServiceClient::with_interceptor(
                    channel,
                    platform::telemetry::TracePropagation,
                ),
        }
    }

    async fn require_valid(&self, claims: &platform::auth::AccessClaims) -> Result<(), Problem> {
        let answer = self
            .client
            .clone()
            .validate_session(proto::session::v1::ValidateSessionRequest {
                person_key: claims.sub.clone(),
                session_id: claims.sid.clone(),
                device_id: claims.dev.clone(),
                fence: claims.fence.unwrap_or(0),
            })
            .await
            .map_err(|status| Problem::from_status(&status))?
            .into_inner();
        if answer.superseded {
            // A paused old session never writes after losing the lock (fencing, R3).
            return Err(Problem::new(
                ProblemKind::SessionSuperseded,
                "the person's device lock has changed hands since this token was issued; verify again",
            ));
        }
        if answer.valid {
            Ok(())
        } else {
            Err(Problem::new(
                ProblemKind::SessionExpired,
                "the session no longer holds this person's device lock; verify again",
            ))
        }
    }
}

/// `BookingService` over gRPC.
pub struct BookingGrpc {
    logic: Arc<BookingLogic>,
    verifier: Arc<TokenVerifier>,
    sessions: SessionCheck,
    /// The waiting room's check on every create and change (R11); `None` only in unit tests.
    admission: Option<Arc<AdmissionGate>>,
    /// Counts the booking writes in flight for the capacity signal.
    capacity: Arc<CapacityMeter>,
    /// Recognises staff tokens (auth-svc's agent tokens) to refuse and audit them; `None` only
    /// in unit tests, where a staff token is just not an access token.
    staff_tokens: Option<(Arc<GrantVerifier>, Trail)>,
}

impl BookingGrpc {
    /// Every person-facing call is checked against session-svc through `sessions`.
    pub fn new(
        logic: Arc<BookingLogic>,
        verifier: Arc<TokenVerifier>,
        sessions: SessionCheck,
    ) -> Self {
        Self {
            logic,
            verifier,
            sessions,
            admission: None,
            capacity: Arc::new(CapacityMeter::new(
                crate::config::DEFAULT_TARGET_IN_FLIGHT,
                std::time::Duration::from_millis(crate::config::DEFAULT_TARGET_LATENCY_MS),
            )),
            staff_tokens: None,
        }
    }

    /// Refuses a staff token that verifies against `grants` (auth-svc's) with
    /// `citizen-token-required`, and writes the attempt to `trail`.
    pub fn refusing_staff_tokens(mut self, grants: Arc<GrantVerifier>, trail: Trail) -> Self {
        self.staff_tokens = Some((grants, trail));
        self
    }

    /// Requires the waiting room's admission grant on creates and changes while it is on.
    pub fn with_admission(mut self, gate: Arc<AdmissionGate>) -> Self {
        self.admission = Some(gate);
        self
    }

    /// Counts writes in `meter` (published over `CapacityService`).
    pub fn with_capacity(mut self, meter: Arc<CapacityMeter>) -> Self {
        self.capacity = meter;
        self
    }

    /// The admission check for a write into slot `slot_id`'s campaign.
    async fn admit(
        &self,
        person: &Person,
        slot_id: uuid::Uuid,
        metadata: &MetadataMap,
        idempotency_key: Option<&str>,
    ) -> Result<Option<AdmittedUse>, Status> {
        let Some(gate) = &self.admission else {
            return Ok(None);
        };
        let campaign = self.logic.slot_campaign(slot_id).await?;
        Ok(gate
            .check(
                &person.person_key,
                &campaign,
                platform::admission::presented_admission(metadata),
                idempotency_key,
            )
            .await?)
    }

    async fn spend(&self, admitted: Option<AdmittedUse>, idempotency_key: Option<&str>) {
        if let (Some(gate), Some(admitted)) = (&self.admission, admitted) {
            gate.succeeded(admitted, idempotency_key).await;
        }
    }

    /// The person the request's access token speaks for.
    async fn authenticate(&self, metadata: &MetadataMap) -> Result<Person, Problem> {
        let token = platform::auth::bearer(metadata)?;
        let claims = match self.verifier.verify(token).await {
            Ok(claims) => claims,
            Err(problem) => return Err(self.not_an_access_token(token, problem).await),
        };
        if claims.role != Role::Citizen {
            // Agents act for others, which is the call-center channel's job (R9), not this one.
            // (auth-svc issues staff agent tokens, not access tokens of this role; such a token
            // names no staff account to audit.)
            return Err(citizen_token_required());
        }
        // The gateway checks the session too, but calls may come straight over gRPC.
        self.sessions.require_valid(&claims).await?;
        let birth_date = claims.birth_date()?;
        let person_key = PersonKey::parse(&claims.sub).map_err(|_| {
            Problem::new(
                ProblemKind::Unauthenticated,
                "the access token's subject is not a person key",
            )
        })?;
        Ok(Person {
            person_key,
            birth_date,
        })
    }

    /// Why a token that is no access token is refused: a staff token (an agent token that
    /// verifies against auth-svc's keys) is `citizen-token-required`, written to the audit
    /// trail under the staff account; anything else keeps the access token's problem.
    async fn not_an_access_token(&self, token: &str, problem: Problem) -> Problem {
        let Some((grants, trail)) = &self.staff_tokens else {
            return problem;
        };
        if problem.kind == ProblemKind::Unavailable {
            return problem;
        }
        let Ok(staff) = grants.verify::<AgentToken>(token).await else {
            return problem;
        };
        tracing::warn!(account = %staff.claims.sub, "a staff token was presented to the citizens' API");
        let refused = citizen_token_required();
        let record = platform::audit::AuditRecord::by_staff(
            Some(&staff.claims),
            CITIZEN_API_REFUSED,
            None,
            refused.kind.name(),
        );
        match trail.append(record).await {
            Ok(_) => refused,
            Err(unavailable) => unavailable,
        }
    }
}

fn citizen_token_required() -> Problem {
    Problem::new(
        ProblemKind::CitizenTokenRequired,
        "these calls act for the verified person; agents book for callers through StaffBookingService",
    )
}

#[tonic::async_trait]
impl BookingService for BookingGrpc {
    async fn list_centers(
        &self,
        request: Request<pb::ListCentersRequest>,
    ) -> Result<Response<pb::ListCentersResponse>, Status> {
        let region = region_filter(request.get_ref());
        let centers = self.logic.list_centers(region.as_deref()).await?;
        Ok(Response::new(pb::ListCentersResponse {
            centers: centers.into_iter().map(Into::into).collect(),
        }))
    }

    async fn list_slots(
        &self,
        request: Request<pb::ListSlotsRequest>,
    ) -> Result<Response<pb::ListSlotsResponse>, Status> {
        let query = SlotQuery::try_from(request.into_inner())?;
        let slots = self.logic.list_slots(&query).await?;
        Ok(Response::new(pb::ListSlotsResponse {
            slots: slots.into_iter().map(Into::into).collect(),
        }))
    }

    async fn create_booking(
        &self,
        request: Request<pb::CreateBookingRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let _in_flight = self.capacity.begin();
        let person = self.authenticate(request.metadata()).await?;
        let (metadata, _, message) = request.into_parts();
        let booking_request = BookingRequest::try_from(message)?;
        let key = booking_request
            .idempotency_key
            .as_ref()
            .map(|key| key.as_str().to_owned());
        let admitted = self
            .admit(&person, booking_request.slot_id, &metadata, key.as_deref())
            .await?;
        let booking = self.logic.create_booking(&person, booking_request).await?;
        self.spend(admitted, key.as_deref()).await;
        Ok(Response::new(booking.into()))
    }

    async fn list_my_bookings(
        &self,
        request: Request<pb::ListMyBookingsRequest>,
    ) -> Result<Response<pb::ListMyBookingsResponse>, Status> {
        let person = self.authenticate(request.metadata()).await?;
        let made_for_others = request.get_ref().made_for_others;
        let bookings = self
            .logic
            .list_my_bookings(&person, made_for_others)
            .await?;
        Ok(Response::new(pb::ListMyBookingsResponse {
            bookings: bookings.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get_booking(
        &self,
        request: Request<pb::GetBookingRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let person = self.authenticate(request.metadata()).await?;
        let id = parse_uuid("id", &request.get_ref().id)?;
        let booking = self.logic.get_booking(&person, id).await?;
        Ok(Response::new(booking.into()))
    }

    async fn cancel_booking(
        &self,
        request: Request<pb::CancelBookingRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let person = self.authenticate(request.metadata()).await?;
        let id = parse_uuid("id", &request.get_ref().id)?;
        let booking = self.logic.cancel_booking(&person, id).await?;
        Ok(Response::new(booking.into()))
    }

    async fn change_booking(
        &self,
        request: Request<pb::ChangeBookingRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let _in_flight = self.capacity.begin();
        let person = self.authenticate(request.metadata()).await?;
        let (metadata, _, message) = request.into_parts();
        let change = BookingChange::try_from(message)?;
        let admitted = self.admit(&person, change.slot_id, &metadata, None).await?;
        let booking = self.logic.change_booking(&person, change).await?;
        self.spend(admitted, None).await;
        Ok(Response::new(booking.into()))
    }
}

/// `BookingAdminService` over gRPC: operators only ([`OperatorGuard`]: an operator token from
/// auth-svc, or the dev run's key where a dev-run configuration set one).
///
/// Every call is audited under its action (`admin.upsert-center`, `admin.upsert-slot`). A
/// refused call (no operator, a malformed request) gets one entry with the problem type name.
/// An accepted call is written **before** the change, outcome `ok`: a trail that cannot be
/// written answers `unavailable` and changes nothing, so no change is ever made that the trail
/// does not show, and a retry after `unavailable` is safe. Should the change then fail (no such
/// center, capacity below the bookings, the store down), a second entry of the same action
/// records its problem type name: the trail reads "accepted, then failed with …".
pub struct BookingAdminGrpc {
    logic: Arc<BookingLogic>,
    guard: OperatorGuard,
    trail: Trail,
}

impl BookingAdminGrpc {
    pub fn new(logic: Arc<BookingLogic>, guard: OperatorGuard, trail: Trail) -> Self {
        Self {
            logic,
            guard,
            trail,
        }
    }

    /// The operator of an admin call, the refusal audited otherwise.
    async fn operator(&self, action: &str, metadata: &MetadataMap) -> Result<Operator, Status> {
        match self.guard.authorize(metadata).await {
            Ok(operator) => Ok(operator),
            Err(refusal) => {
                self.trail.append(refusal.record(action)).await?;
                Err(refusal.problem.into())
            }
        }
    }

    /// Audits and makes an accepted, well-formed change (see the type's documentation).
    async fn change<T, F>(&self, action: &str, operator: &Operator, change: F) -> Result<T, Status>
    where
        F: std::future::Future<Output = Result<T, crate::BookingError>>,
    {
        // `change` has not run yet: a future does nothing until awaited.
        self.trail
            .append(operator.record(action, None, "ok"))
            .await?;
        let error = match change.await {
            Ok(changed) => return Ok(changed),
            Err(error) => Problem::from(error),
        };
        let failed = operator.record(action, None, error.kind.name());
        if self.trail.append(failed).await.is_err() {
            // Nothing changed, so the answer stays the change's own problem; only the entry
            // saying that the accepted call then failed is missing (logged by the trail).
            tracing::error!(
                action,
                "an accepted admin call failed and the trail does not say so"
            );
        }
        Err(error.into())
    }

    /// Audits a request that does not validate.
    async fn malformed(&self, action: &str, operator: &Operator, problem: Problem) -> Status {
        match self
            .trail
            .append(operator.record(action, None, problem.kind.name()))
            .await
        {
            Ok(_) => problem.into(),
            Err(unavailable) => unavailable.into(),
        }
    }
}

#[tonic::async_trait]
impl BookingAdminService for BookingAdminGrpc {
    async fn upsert_center(
        &self,
        request: Request<pb::UpsertCenterRequest>,
    ) -> Result<Response<pb::Center>, Status> {
        let operator = self.operator(UPSERT_CENTER, request.metadata()).await?;
        let center = match Center::try_from(request.into_inner()) {
            Ok(center) => center,
            Err(error) => {
                return Err(self.malformed(UPSERT_CENTER, &operator, error.into()).await);
            }
        };
        let stored = self
            .change(UPSERT_CENTER, &operator, self.logic.upsert_center(center))
            .await?;
        tracing::info!(center_id = %stored.id, operator = %operator.account, "center upserted");
        Ok(Response::new(stored.into()))
    }

    async fn upsert_slot(
        &self,
        request: Request<pb::UpsertSlotRequest>,
    ) -> Result<Response<pb::Slot>, Status> {
        let operator = self.operator(UPSERT_SLOT, request.metadata()).await?;
        let draft = match SlotDraft::try_from(request.into_inner()) {
            Ok(draft) => draft,
            Err(error) => {
                return Err(self.malformed(UPSERT_SLOT, &operator, error.into()).await);
            }
        };
        let stored = self
            .change(UPSERT_SLOT, &operator, self.logic.upsert_slot(draft))
            .await?;
        tracing::debug!(slot_id = %stored.id, capacity = stored.capacity, operator = %operator.account, "slot upserted");
        Ok(Response::new(stored.into()))
    }
}
