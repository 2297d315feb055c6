//! The tonic adapters of `vaxbook.booking.v1`: person-facing calls authenticate the bearer
//! token locally (the person is the token's subject, never a field of the request), operator
//! calls check the admin key; then the request is validated into domain types (the `TryFrom`
//! impls of `domain::wire`) and handed to [`BookingLogic`]. No rule lives here.

use std::sync::Arc;

use platform::auth::{Role, TokenVerifier};
use platform::config::Secret;
use platform::ids::PersonKey;
use platform::problem::{Problem, ProblemKind};
use proto::booking::v1 as pb;
use proto::booking::v1::booking_admin_service_server::BookingAdminService;
use proto::booking::v1::booking_service_server::BookingService;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::admission::capacity::CapacityMeter;
use crate::admission::{AdmissionGate, AdmittedUse};
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
        }
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
        let claims = self.verifier.verify(token).await?;
        if claims.role != Role::Citizen {
            // Agents act for others, which is the call-center channel's job (R9), not this one.
            return Err(Problem::new(
                ProblemKind::Forbidden,
                "these calls act for the verified person; agent tokens are not accepted",
            ));
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

/// `BookingAdminService` over gRPC.
pub struct BookingAdminGrpc {
    logic: Arc<BookingLogic>,
    admin_key: Secret,
}

impl BookingAdminGrpc {
    pub fn new(logic: Arc<BookingLogic>, admin_key: Secret) -> Self {
        Self { logic, admin_key }
    }
}

#[tonic::async_trait]
impl BookingAdminService for BookingAdminGrpc {
    async fn upsert_center(
        &self,
        request: Request<pb::UpsertCenterRequest>,
    ) -> Result<Response<pb::Center>, Status> {
        platform::grpc::require_admin(request.metadata(), self.admin_key.expose())?;
        let center = Center::try_from(request.into_inner())?;
        let stored = self.logic.upsert_center(center).await?;
        tracing::info!(center_id = %stored.id, "center upserted");
        Ok(Response::new(stored.into()))
    }

    async fn upsert_slot(
        &self,
        request: Request<pb::UpsertSlotRequest>,
    ) -> Result<Response<pb::Slot>, Status> {
        platform::grpc::require_admin(request.metadata(), self.admin_key.expose())?;
        let draft = SlotDraft::try_from(request.into_inner())?;
        let stored = self.logic.upsert_slot(draft).await?;
        tracing::debug!(slot_id = %stored.id, capacity = stored.capacity, "slot upserted");
        Ok(Response::new(stored.into()))
    }
}
