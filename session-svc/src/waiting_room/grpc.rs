//! The tonic adapters of the waiting room: `QueueService` (the person's own ticket, on their
//! access token and a session that still holds their lock; `GetAdmission` for booking-svc) and
//! `QueueAdminService` (operators: an operator token from auth-svc's `StaffAuthService.Login`
//! in `authorization: Bearer`, checked by `platform::operator::OperatorGuard`; the dev run also
//! takes its development key). Every admin call, accepted or refused, is written to the audit
//! trail under the operator the token names (`unknown` when no staff token verified). Wire
//! messages become validated values here; the rules live in [`super::WaitingRoom`].

use std::sync::Arc;

use platform::audit::{AuditLog, AuditRecord};
use platform::auth::{JwksSource, Role, TokenVerifier};
use platform::clock::SharedClock;
use platform::ids::PersonKey;
use platform::operator::{Operator, OperatorGuard};
use platform::problem::{Problem, ProblemKind};
use proto::session::v1 as pb;
use proto::session::v1::queue_admin_service_server::{QueueAdminService, QueueAdminServiceServer};
use proto::session::v1::queue_service_server::{QueueService, QueueServiceServer};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::room::{Room, RoomSettings, RoomState, TicketView};
use super::{TicketStatus, WaitingRoom};
use crate::domain::{DeviceId, SessionId};
use crate::error::SessionError;
use crate::store::{DeviceLockStore, LockOperations, bounded};

/// Audit action of `SetAdmission`.
pub const SET_ADMISSION: &str = "session.set-admission";
/// Audit action of `LookupPerson`.
pub const LOOKUP_PERSON: &str = "session.lookup-person";
/// Audit action of `ReleaseLock`.
pub const RELEASE_LOCK: &str = "session.release-lock";

/// `QueueService` over gRPC.
pub struct QueueGrpc {
    room: Arc<WaitingRoom>,
    tokens: TokenVerifier,
    locks: Arc<dyn DeviceLockStore>,
    clock: SharedClock,
}

impl QueueGrpc {
    pub fn new(
        room: Arc<WaitingRoom>,
        auth_keys: Arc<dyn JwksSource>,
        locks: Arc<dyn DeviceLockStore>,
        clock: SharedClock,
    ) -> Self {
        Self {
            room,
            tokens: TokenVerifier::new(auth_keys, clock.clone()),
            locks,
            clock,
        }
    }

    /// The verified person whose session still holds their lock.
    async fn person(&self, metadata: &MetadataMap) -> Result<PersonKey, Status> {
        let token = platform::auth::bearer(metadata)?;
        let claims = self.tokens.verify(token).await?;
        if claims.role != Role::Citizen {
            return Err(Problem::new(
                ProblemKind::Forbidden,
                "the waiting room is for the verified person; agent tokens are not accepted",
            )
            .to_status());
        }
        let unauthenticated = || {
            Problem::new(
                ProblemKind::Unauthenticated,
                "the access token does not name a session",
            )
            .to_status()
        };
        let person_key = PersonKey::parse(&claims.sub).map_err(|_| unauthenticated())?;
        let session_id = SessionId::parse(&claims.sid).map_err(|_| unauthenticated())?;
        let device_id = DeviceId::parse(&claims.dev).map_err(|_| unauthenticated())?;
        let valid = bounded(
            self.room.store_timeout,
            self.locks
                .validate(&person_key, &session_id, &device_id, self.clock.now()),
        )
        .await
        .map_err(SessionError::from)?;
        if !valid {
            return Err(Problem::new(
                ProblemKind::SessionExpired,
                "the session no longer holds this person's device lock; verify again",
            )
            .to_status());
        }
        Ok(person_key)
    }
}

fn ticket_message(status: TicketStatus) -> pb::TicketStatus {
    let (admission, admission_expires_at) = match status.admission {
        Some((grant, until)) => (grant, Some(platform::clock::to_timestamp(until))),
        None => (String::new(), None),
    };
    pb::TicketStatus {
        ticket: status.ticket,
        room: status.room.as_str().to_owned(),
        position: status.position,
        eta_seconds: status.eta_seconds,
        poll_after_seconds: status.poll_after_seconds,
        admitted: !admission.is_empty(),
        admission,
        admission_expires_at,
    }
}

fn state_message(state: RoomState) -> pb::AdmissionState {
    pb::AdmissionState {
        room: state.room.as_str().to_owned(),
        enabled: state.settings.enabled,
        rate_per_second: state.settings.rate_per_second,
        waiting: state.waiting,
        measured_rate: state.measured_rate,
        mode: if state.settings.automatic {
            "automatic"
        } else {
            "manual"
        }
        .to_owned(),
    }
}

#[tonic::async_trait]
impl QueueService for QueueGrpc {
    async fn take_ticket(
        &self,
        request: Request<pb::TakeTicketRequest>,
    ) -> Result<Response<pb::TicketStatus>, Status> {
        let person = self.person(request.metadata()).await?;
        let room = Room::parse(&request.get_ref().room)?;
        let status = self.room.take(&person, &room).await?;
        Ok(Response::new(ticket_message(status)))
    }

    async fn poll_ticket(
        &self,
        request: Request<pb::PollTicketRequest>,
    ) -> Result<Response<pb::TicketStatus>, Status> {
        let person = self.person(request.metadata()).await?;
        let status = self.room.poll(&person, &request.get_ref().ticket).await?;
        Ok(Response::new(ticket_message(status)))
    }

    async fn get_admission(
        &self,
        request: Request<pb::GetAdmissionRequest>,
    ) -> Result<Response<pb::AdmissionState>, Status> {
        let room = Room::parse(&request.get_ref().room)?;
        let state = self.room.governing(&room).await?;
        Ok(Response::new(state_message(state)))
    }
}

/// `QueueAdminService` over gRPC.
pub struct QueueAdminGrpc {
    room: Arc<WaitingRoom>,
    locks: Arc<dyn LockOperations>,
    audit: Arc<dyn AuditLog>,
    operators: OperatorGuard,
    clock: SharedClock,
}

impl QueueAdminGrpc {
    pub fn new(
        room: Arc<WaitingRoom>,
        locks: Arc<dyn LockOperations>,
        audit: Arc<dyn AuditLog>,
        operators: OperatorGuard,
        clock: SharedClock,
    ) -> Self {
        Self {
            room,
            locks,
            audit,
            operators,
            clock,
        }
    }

    /// The operator of an admin call; a refusal is audited before it is answered.
    async fn operator(
        &self,
        metadata: &MetadataMap,
        action: &'static str,
    ) -> Result<Operator, Status> {
        match self.operators.authorize(metadata).await {
            Ok(operator) => Ok(operator),
            Err(refused) => {
                self.audit(action, refused.record(action)).await?;
                metrics::counter!("session_operator_refusals_total", "action" => action)
                    .increment(1);
                Err(refused.problem.to_status())
            }
        }
    }

    /// The person key of an admin call; a malformed one is refused, and audited without it.
    async fn person_key(
        &self,
        operator: &Operator,
        action: &'static str,
        raw: &str,
    ) -> Result<PersonKey, Status> {
        match PersonKey::parse(raw) {
            Ok(person) => Ok(person),
            Err(err) => Err(self
                .refused_request(operator, action, SessionError::from(err).into())
                .await),
        }
    }

    /// Audits an operator's request refused as malformed and answers `status`.
    async fn refused_request(
        &self,
        operator: &Operator,
        action: &'static str,
        status: Status,
    ) -> Status {
        let outcome = Problem::from_status(&status).kind.name();
        match self
            .audit(action, operator.record(action, None, outcome))
            .await
        {
            Ok(()) => status,
            Err(unwritten) => unwritten,
        }
    }

    /// Appends to the audit trail; an entry that cannot be written fails the call.
    async fn audit(&self, action: &'static str, record: AuditRecord) -> Result<(), Status> {
        let outcome = record.outcome.clone();
        let actor = record.actor.clone();
        let appended = tokio::time::timeout(
            self.room.store_timeout * 4,
            self.audit.append(self.clock.now(), record),
        )
        .await;
        if !matches!(appended, Ok(Ok(_))) {
            tracing::error!(action, "the audit trail did not take an entry");
            return Err(Problem::new(
                ProblemKind::Overloaded,
                "the audit trail is not answering; nothing was done",
            )
            .with_retry_after(std::time::Duration::from_secs(1))
            .to_status());
        }
        metrics::counter!("session_operator_calls_total", "action" => action).increment(1);
        tracing::info!(operator = %actor, action, outcome = %outcome, "operator call audited");
        Ok(())
    }
}

#[tonic::async_trait]
impl QueueAdminService for QueueAdminGrpc {
    async fn set_admission(
        &self,
        request: Request<pb::SetAdmissionRequest>,
    ) -> Result<Response<pb::AdmissionState>, Status> {
        let operator = self.operator(request.metadata(), SET_ADMISSION).await?;
        let message = request.into_inner();
        let room = match Room::parse(&message.room) {
            Ok(room) => room,
            Err(err) => {
                return Err(self
                    .refused_request(&operator, SET_ADMISSION, err.into())
                    .await);
            }
        };
        let current = self.room.governing(&room).await?;
        let settings = RoomSettings {
            enabled: message.enabled,
            rate_per_second: message.rate_per_second,
            burst: (message.rate_per_second.ceil() as u32).max(1),
            automatic: message.automatic,
        };
        // Audited before it takes effect: an entry that cannot be written changes nothing.
        self.audit(SET_ADMISSION, operator.record(SET_ADMISSION, None, "ok"))
            .await?;
        if message.automatic && current.settings.automatic {
            // Already automatic: keep what the automatic mode decided.
            return Ok(Response::new(state_message(current)));
        }
        let state = self.room.set(&room, settings).await?;
        tracing::info!(operator = %operator.account, room = %room, "admission set by an operator");
        Ok(Response::new(state_message(state)))
    }

    async fn lookup_person(
        &self,
        request: Request<pb::LookupPersonRequest>,
    ) -> Result<Response<pb::PersonState>, Status> {
        let operator = self.operator(request.metadata(), LOOKUP_PERSON).await?;
        let person = self
            .person_key(&operator, LOOKUP_PERSON, &request.get_ref().person_key)
            .await?;
        let now = self.clock.now();
        let held = bounded(self.room.store_timeout, self.locks.inspect(&person, now))
            .await
            .map_err(SessionError::from)?;
        let places = self.room.places(&person).await?;
        self.audit(
            LOOKUP_PERSON,
            operator.record(LOOKUP_PERSON, Some(person.as_str().to_owned()), "ok"),
        )
        .await?;
        let mut state = pb::PersonState {
            blocks: held
                .blocks
                .iter()
                .map(|(device, until)| pb::DeviceBlock {
                    device_id: device.clone(),
                    until: Some(platform::clock::to_timestamp(*until)),
                })
                .collect(),
            places: places
                .into_iter()
                .map(|place| pb::QueuePlace {
                    room: place.room.as_str().to_owned(),
                    ticket: place.view.ticket().to_owned(),
                    position: match place.view {
                        TicketView::Waiting { position, .. } => position,
                        TicketView::Admitted { .. } => 0,
                    },
                    admitted: matches!(place.view, TicketView::Admitted { .. }),
                })
                .collect(),
            fence: held.fence,
            ..Default::default()
        };
        if let Some(lock) = held.lock {
            state.session_id = lock.session_id;
            state.device_id = lock.device_id;
            state.session_expires_at = Some(platform::clock::to_timestamp(lock.expires_at));
        }
        Ok(Response::new(state))
    }

    async fn release_lock(
        &self,
        request: Request<pb::ReleaseLockRequest>,
    ) -> Result<Response<pb::ReleaseLockResponse>, Status> {
        let operator = self.operator(request.metadata(), RELEASE_LOCK).await?;
        let message = request.into_inner();
        let person = self
            .person_key(&operator, RELEASE_LOCK, &message.person_key)
            .await?;
        // Audited before it happens: an entry that cannot be written stops the release.
        self.audit(
            RELEASE_LOCK,
            operator.record(RELEASE_LOCK, Some(person.as_str().to_owned()), "ok"),
        )
        .await?;
        let released = bounded(
            self.room.store_timeout,
            self.locks.force_release(&person, self.clock.now()),
        )
        .await
        .map_err(SessionError::from)?;
        metrics::counter!("session_forced_releases_total").increment(1);
        Ok(Response::new(pb::ReleaseLockResponse { released }))
    }
}

/// The waiting room's two gRPC services.
pub fn services(
    queue: QueueGrpc,
    admin: QueueAdminGrpc,
) -> (
    QueueServiceServer<QueueGrpc>,
    QueueAdminServiceServer<QueueAdminGrpc>,
) {
    (
        QueueServiceServer::new(queue),
        QueueAdminServiceServer::new(admin),
    )
}
