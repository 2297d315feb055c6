//! The call-center channel's booking API (R9), `vaxbook.booking.v1.StaffBookingService`: an
//! agent, logged in at auth-svc, books for a caller they verified there. The agent token and
//! the caller grant are both auth-svc grants, verified here locally against auth-svc's
//! KeysService; the caller grant must have been issued to the calling agent. The rules are
//! [`BookingLogic`]'s, on the call-center channel (scheduling-svc says whether the campaign
//! allows it). Every call, accepted or refused, is appended to booking-svc's audit trail
//! (platform::audit) under the agent and the caller's person key, never a name or an RRN.

use std::sync::Arc;

use platform::grants::{GrantVerifier, VerifiedGrant};
use platform::ids::{PersonKey, parse_iso_date};
use platform::problem::{Problem, ProblemKind};
use platform::staff::{
    AgentToken, CALLER_GRANT_HEADER, CallerGrant, STAFF_TOKEN_HEADER, bearer, require_own_caller,
};
use proto::booking::v1 as pb;
use proto::booking::v1::staff_booking_service_server::{
    StaffBookingService, StaffBookingServiceServer,
};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::audit::Trail;
use crate::domain::wire::{parse_uuid, region_filter};
use crate::domain::{BookingChange, BookingRequest, Person, SlotQuery};
use crate::service::{BookingLogic, CHANNEL_NOT_ALLOWED_REASON};

/// Who acts: the verified agent, and for calls about a person the caller they verified.
struct Acting {
    agent: AgentToken,
    caller: Option<Person>,
}

/// A refusal before any rule ran, with whatever is known of the actor for the audit entry.
struct Refused {
    agent: Option<AgentToken>,
    problem: Problem,
}

/// `StaffBookingService` over gRPC.
pub struct StaffBookingGrpc {
    logic: Arc<BookingLogic>,
    grants: Arc<GrantVerifier>,
    trail: Trail,
}

/// A refusal of `kind`, except that auth-svc's keys out of reach stay `unavailable` (a
/// retry may pass; the credential was not found wanting).
fn refusal(cause: Option<Problem>, kind: ProblemKind, detail: &str) -> Problem {
    match cause {
        Some(cause) if cause.kind == ProblemKind::Unavailable => cause,
        _ => Problem::new(kind, detail),
    }
}

/// The call-center channel's own problem for a campaign that does not allow it: eligibility
/// answers `not-eligible` with reason `channel-not-allowed` on every channel; here it is the
/// problem type `channel-not-allowed`, the reason kept.
fn on_call_center(problem: Problem) -> Problem {
    let channel_refused = problem.kind == ProblemKind::NotEligible
        && problem.extra.get("reason").map(String::as_str) == Some(CHANNEL_NOT_ALLOWED_REASON);
    if channel_refused {
        Problem {
            kind: ProblemKind::ChannelNotAllowed,
            detail: "this campaign does not allow booking through the call center now".to_owned(),
            ..problem
        }
    } else {
        problem
    }
}

impl StaffBookingGrpc {
    pub fn new(logic: Arc<BookingLogic>, grants: Arc<GrantVerifier>, trail: Trail) -> Self {
        Self {
            logic,
            grants,
            trail,
        }
    }

    pub fn into_service(self) -> StaffBookingServiceServer<Self> {
        StaffBookingServiceServer::new(self)
    }

    /// The agent token (agents and supervisors only) and, when `with_caller`, the caller grant
    /// issued to that agent. No token, a citizen's token or one that does not verify is
    /// `staff-token-required`; an operator's is `role-not-allowed`; a caller grant missing,
    /// malformed or expired is `caller-not-verified`, one issued to another agent
    /// `caller-of-another-agent`.
    async fn authorize(
        &self,
        metadata: &MetadataMap,
        with_caller: bool,
    ) -> Result<Acting, Refused> {
        let header = metadata
            .get(STAFF_TOKEN_HEADER)
            .and_then(|value| value.to_str().ok());
        let refused = |agent: Option<&VerifiedGrant<AgentToken>>, problem: Problem| Refused {
            agent: agent.map(|a| a.claims.clone()),
            problem,
        };
        const NO_STAFF_TOKEN: &str = "staff RPCs need a valid agent token from StaffAuthService.Login in `authorization: Bearer`";
        let token = bearer(header).map_err(|_| {
            refused(
                None,
                Problem::new(ProblemKind::StaffTokenRequired, NO_STAFF_TOKEN),
            )
        })?;
        let agent = self.grants.verify::<AgentToken>(token).await.map_err(|p| {
            refused(
                None,
                refusal(Some(p), ProblemKind::StaffTokenRequired, NO_STAFF_TOKEN),
            )
        })?;
        if !agent.claims.role.books_for_callers() {
            return Err(refused(
                Some(&agent),
                Problem::new(
                    ProblemKind::RoleNotAllowed,
                    "only agents and supervisors book for callers",
                ),
            ));
        }
        if !with_caller {
            return Ok(Acting {
                agent: agent.claims,
                caller: None,
            });
        }
        const NOT_VERIFIED: &str = "this call needs a valid caller grant (StaffAuthService.ConfirmCaller) in x-caller-grant";
        let not_verified = |cause: Option<Problem>| {
            refused(
                Some(&agent),
                refusal(cause, ProblemKind::CallerNotVerified, NOT_VERIFIED),
            )
        };
        let grant = metadata
            .get(CALLER_GRANT_HEADER)
            .and_then(|value| value.to_str().ok())
            .filter(|raw| !raw.trim().is_empty())
            .ok_or_else(|| not_verified(None))?;
        let caller = self
            .grants
            .verify::<CallerGrant>(grant.trim())
            .await
            .map_err(|p| not_verified(Some(p)))?;
        require_own_caller(&agent, &caller).map_err(|p| {
            refused(
                Some(&agent),
                Problem::new(ProblemKind::CallerOfAnotherAgent, p.detail),
            )
        })?;
        let person_key =
            PersonKey::parse(&caller.claims.for_key).map_err(|_| not_verified(None))?;
        let birth_date =
            parse_iso_date("for_bd", &caller.claims.for_bd).map_err(|_| not_verified(None))?;
        Ok(Acting {
            agent: agent.claims,
            caller: Some(Person {
                person_key,
                birth_date,
            }),
        })
    }

    /// Writes the audit entry of a call (outcome `ok` or the problem type name) and answers
    /// it; no entry, no answer.
    async fn finish<T>(
        &self,
        action: &str,
        agent: Option<&AgentToken>,
        caller: Option<&Person>,
        result: Result<T, Problem>,
    ) -> Result<Response<T>, Status> {
        let result = result.map_err(on_call_center);
        let outcome = match &result {
            Ok(_) => "ok",
            Err(problem) => problem.kind.name(),
        };
        let person_key = caller.map(|person| person.person_key.to_string());
        self.trail
            .append(platform::audit::AuditRecord::by_staff(
                agent, action, person_key, outcome,
            ))
            .await?;
        result.map(Response::new).map_err(Status::from)
    }

    async fn refused<T>(&self, action: &str, refused: Refused) -> Result<Response<T>, Status> {
        self.finish(action, refused.agent.as_ref(), None, Err(refused.problem))
            .await
    }
}

/// The caller of an [`Acting`] that was authorized with the caller grant.
fn caller_of(acting: &Acting) -> Result<&Person, Problem> {
    acting.caller.as_ref().ok_or_else(Problem::internal)
}

#[tonic::async_trait]
impl StaffBookingService for StaffBookingGrpc {
    async fn list_centers(
        &self,
        request: Request<pb::ListCentersRequest>,
    ) -> Result<Response<pb::ListCentersResponse>, Status> {
        const ACTION: &str = "staff.list-centers";
        let acting = match self.authorize(request.metadata(), false).await {
            Ok(acting) => acting,
            Err(refused) => return self.refused(ACTION, refused).await,
        };
        let region = region_filter(request.get_ref());
        let result = self
            .logic
            .list_centers(region.as_deref())
            .await
            .map(|centers| pb::ListCentersResponse {
                centers: centers.into_iter().map(Into::into).collect(),
            })
            .map_err(Problem::from);
        self.finish(ACTION, Some(&acting.agent), None, result).await
    }

    async fn list_slots(
        &self,
        request: Request<pb::ListSlotsRequest>,
    ) -> Result<Response<pb::ListSlotsResponse>, Status> {
        const ACTION: &str = "staff.list-slots";
        let acting = match self.authorize(request.metadata(), false).await {
            Ok(acting) => acting,
            Err(refused) => return self.refused(ACTION, refused).await,
        };
        let result = async {
            let query = SlotQuery::try_from(request.into_inner())?;
            let slots = self.logic.list_slots(&query).await?;
            Ok::<_, crate::BookingError>(pb::ListSlotsResponse {
                slots: slots.into_iter().map(Into::into).collect(),
            })
        }
        .await
        .map_err(Problem::from);
        self.finish(ACTION, Some(&acting.agent), None, result).await
    }

    async fn create_booking(
        &self,
        request: Request<pb::CreateBookingRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        const ACTION: &str = "staff.book";
        let acting = match self.authorize(request.metadata(), true).await {
            Ok(acting) => acting,
            Err(refused) => return self.refused(ACTION, refused).await,
        };
        let result = async {
            let caller = caller_of(&acting)?;
            let booking_request = BookingRequest::try_from(request.into_inner())?;
            let booking = self
                .logic
                .create_booking_by_agent(caller, booking_request, &acting.agent.sub)
                .await?;
            Ok::<_, Problem>(booking.into())
        }
        .await;
        self.finish(ACTION, Some(&acting.agent), acting.caller.as_ref(), result)
            .await
    }

    async fn list_caller_bookings(
        &self,
        request: Request<pb::ListCallerBookingsRequest>,
    ) -> Result<Response<pb::ListMyBookingsResponse>, Status> {
        const ACTION: &str = "staff.list-bookings";
        let acting = match self.authorize(request.metadata(), true).await {
            Ok(acting) => acting,
            Err(refused) => return self.refused(ACTION, refused).await,
        };
        let result = async {
            let caller = caller_of(&acting)?;
            let bookings = self.logic.list_my_bookings(caller, false).await?;
            Ok::<_, Problem>(pb::ListMyBookingsResponse {
                bookings: bookings.into_iter().map(Into::into).collect(),
            })
        }
        .await;
        self.finish(ACTION, Some(&acting.agent), acting.caller.as_ref(), result)
            .await
    }

    async fn cancel_booking(
        &self,
        request: Request<pb::CancelBookingRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        const ACTION: &str = "staff.cancel";
        let acting = match self.authorize(request.metadata(), true).await {
            Ok(acting) => acting,
            Err(refused) => return self.refused(ACTION, refused).await,
        };
        let result = async {
            let caller = caller_of(&acting)?;
            let id = parse_uuid("id", &request.get_ref().id)?;
            let booking = self.logic.cancel_booking_by_agent(caller, id).await?;
            Ok::<_, Problem>(booking.into())
        }
        .await;
        self.finish(ACTION, Some(&acting.agent), acting.caller.as_ref(), result)
            .await
    }

    async fn change_booking(
        &self,
        request: Request<pb::ChangeBookingRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        const ACTION: &str = "staff.change";
        let acting = match self.authorize(request.metadata(), true).await {
            Ok(acting) => acting,
            Err(refused) => return self.refused(ACTION, refused).await,
        };
        let result = async {
            let caller = caller_of(&acting)?;
            let change = BookingChange::try_from(request.into_inner())?;
            let booking = self.logic.change_booking_by_agent(caller, change).await?;
            Ok::<_, Problem>(booking.into())
        }
        .await;
        self.finish(ACTION, Some(&acting.agent), acting.caller.as_ref(), result)
            .await
    }
}
