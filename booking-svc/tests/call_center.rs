//! The call-center channel (R9) against the real `serve` on PostgreSQL: an agent books, lists
//! and cancels for a caller they verified (the booking records channel and agent, the campaign
//! is asked on the call-center channel), and each refusal — no token, a citizen's or a forged
//! one on a staff RPC, an operator's, no caller grant or an expired one, a caller grant of
//! another agent, a campaign without the call-center channel — has its own problem type and an
//! audit entry in booking-svc's hash-chained trail, which pinpoints an entry altered directly
//! in the database. A staff token on the citizens' API is refused and audited too.

#![allow(clippy::unwrap_used)]

mod support;

use booking_svc::StoreConfig;
use platform::audit::{
    AuditEntry, AuditLog as _, AuditQuery, BOOKING_TRAIL, ChainBreak, PgAuditLog, verify_trail,
};
use platform::clock::Clock as _;
use platform::grants::{GrantIssuer, SigningKeys};
use platform::problem::ProblemKind;
use platform::staff::{AGENT_TOKEN_TTL, AgentToken, CALLER_GRANT_TTL, CallerGrant, StaffRole};
use proto::booking::v1 as pb;
use proto::booking::v1::staff_booking_service_client::StaffBookingServiceClient;
use support::{Harness, authed, book, problem};
use tonic::transport::Channel;
use tonic::{Code, Request};

const CAMPAIGN: &str = "r60-plus";
const CALLER: &str = "caller-person-key-0000000000000000000000000";
const CALLER_BIRTH_DATE: &str = "1950-05-01";

struct CallCenter {
    harness: Harness,
    staff: StaffBookingServiceClient<Channel>,
    audit: PgAuditLog,
    url: String,
}

async fn call_center(name: &str) -> CallCenter {
    let url = platform::pg::create_test_database(name).await.unwrap();
    let harness = Harness::start_with(|config| {
        config.dev_mode = false;
        config.store = StoreConfig::Postgres {
            url: platform::config::ConnectionUrl::new(url.clone()),
            max_connections: 4,
        };
    })
    .await;
    let channel = Channel::from_shared(format!("http://{}", harness.addr))
        .unwrap()
        .connect_lazy();
    // The first call (an admin seed) waits for the server (and its migrations).
    let staff = StaffBookingServiceClient::new(channel);
    let audit = PgAuditLog::new(platform::pg::pool(&url, 2).unwrap(), BOOKING_TRAIL);
    CallCenter {
        harness,
        staff,
        audit,
        url,
    }
}

impl CallCenter {
    fn agent_token(&self, sub: &str) -> String {
        self.harness.staff_token(StaffRole::Agent, sub)
    }

    fn caller_grant(&self, agent: &str) -> String {
        self.caller_grant_issued(agent, self.harness.clock.now())
    }

    /// A caller grant for `agent` issued at `at` (valid [`CALLER_GRANT_TTL`] from then).
    fn caller_grant_issued(&self, agent: &str, at: chrono::DateTime<chrono::Utc>) -> String {
        let claims = CallerGrant {
            agent: agent.to_owned(),
            for_key: CALLER.to_owned(),
            for_bd: CALLER_BIRTH_DATE.to_owned(),
        };
        self.harness
            .proxy_grants
            .issue(&claims, at, CALLER_GRANT_TTL)
            .unwrap()
            .token
    }

    async fn entries(&self) -> Vec<AuditEntry> {
        self.audit
            .query(&AuditQuery {
                limit: 500,
                ..AuditQuery::default()
            })
            .await
            .unwrap()
    }
}

fn staff<T>(message: T, agent_token: &str, caller_grant: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert(
        "authorization",
        format!("Bearer {agent_token}").parse().unwrap(),
    );
    if let Some(grant) = caller_grant {
        metadata.insert("x-caller-grant", grant.parse().unwrap());
    }
    request
}

fn reason(problem: &platform::problem::Problem) -> &str {
    problem
        .extra
        .get("reason")
        .map(String::as_str)
        .unwrap_or("")
}

#[tokio::test]
async fn an_agent_books_lists_and_cancels_for_a_verified_caller() {
    let cc = call_center("booking_call_center").await;
    let slot = cc.harness.seed_slot(CAMPAIGN, 10, 3).await;
    let token = cc.agent_token("agent-kim");
    let grant = cc.caller_grant("agent-kim");
    let mut client = cc.staff.clone();

    let centers = client
        .list_centers(staff(pb::ListCentersRequest::default(), &token, None))
        .await
        .unwrap()
        .into_inner();
    assert!(!centers.centers.is_empty());
    let booked = client
        .create_booking(staff(book(&slot.id, "cc-1"), &token, Some(&grant)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(booked.channel, "call_center");
    assert_eq!(booked.agent, "agent-kim");
    let asked = cc.harness.scheduling.questions.lock().unwrap().clone();
    let last = asked.last().unwrap();
    assert_eq!(
        last.channel,
        proto::scheduling::v1::Channel::CallCenter as i32
    );
    assert_eq!(last.person_key, CALLER);

    // One booking per campaign, as for a citizen's own booking.
    let second = cc.harness.seed_slot(CAMPAIGN, 11, 3).await;
    let (code, _) = problem(
        client
            .create_booking(staff(book(&second.id, ""), &token, Some(&grant)))
            .await,
    );
    assert_eq!(code, Code::AlreadyExists);

    let listed = client
        .list_caller_bookings(staff(
            pb::ListCallerBookingsRequest::default(),
            &token,
            Some(&grant),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.bookings.len(), 1);
    assert_eq!(listed.bookings[0].id, booked.id);
    let cancelled = client
        .cancel_booking(staff(
            pb::CancelBookingRequest {
                id: booked.id.clone(),
            },
            &token,
            Some(&grant),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.status, pb::BookingStatus::Cancelled as i32);

    // The row records channel and agent.
    let (db, connection) = tokio_postgres::connect(&cc.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let row = db
        .query_one(
            "SELECT channel, agent FROM bookings WHERE id = $1::text::uuid",
            &[&booked.id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "call_center");
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("agent-kim")
    );

    let all = cc.entries().await;
    assert_eq!(
        verify_trail(cc.audit.trail(), &all).unwrap(),
        all.len() as u64
    );
    // The seeding operator's entries come in between; the agent's are these.
    let entries: Vec<&AuditEntry> = all
        .iter()
        .filter(|e| e.record.action.starts_with("staff."))
        .collect();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.record.action.as_str(), e.record.outcome.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("staff.list-centers", "ok"),
            ("staff.book", "ok"),
            ("staff.book", "already-booked"),
            ("staff.list-bookings", "ok"),
            ("staff.cancel", "ok"),
        ]
    );
    assert!(
        entries[1..]
            .iter()
            .all(|e| e.record.person_key.as_deref() == Some(CALLER)
                && e.record.actor == "agent-kim"
                && e.record.organisation == "national-call-center")
    );
}

#[tokio::test]
async fn each_refusal_has_its_problem_type_and_an_audit_entry() {
    let cc = call_center("booking_call_center_refusals").await;
    let slot = cc.harness.seed_slot(CAMPAIGN, 10, 3).await;
    let token = cc.agent_token("agent-kim");
    let mut client = cc.staff.clone();
    let seeded = cc.entries().await.len();

    // No token at all.
    let (code, refused) = problem(
        client
            .create_booking(Request::new(book(&slot.id, "")))
            .await,
    );
    assert_eq!(code, Code::Unauthenticated);
    assert_eq!(refused.kind, ProblemKind::StaffTokenRequired);

    // A citizen token on a staff RPC.
    let citizen = cc.harness.token(CALLER);
    let (code, refused) = problem(
        client
            .create_booking(staff(
                book(&slot.id, ""),
                &citizen,
                Some(&cc.caller_grant("agent-kim")),
            ))
            .await,
    );
    assert_eq!(code, Code::Unauthenticated);
    assert_eq!(refused.kind, ProblemKind::StaffTokenRequired);

    // An agent token signed by a key auth-svc never published.
    let forger = GrantIssuer::new(std::sync::Arc::new(SigningKeys::generate().unwrap()));
    let forged = forger
        .issue(
            &AgentToken {
                sub: "agent-kim".to_owned(),
                username: "agent.kim".to_owned(),
                org: "national-call-center".to_owned(),
                role: StaffRole::Agent,
            },
            cc.harness.clock.now(),
            AGENT_TOKEN_TTL,
        )
        .unwrap()
        .token;
    let (code, refused) = problem(
        client
            .create_booking(staff(
                book(&slot.id, ""),
                &forged,
                Some(&cc.caller_grant("agent-kim")),
            ))
            .await,
    );
    assert_eq!(code, Code::Unauthenticated);
    assert_eq!(refused.kind, ProblemKind::StaffTokenRequired);

    // An operator runs the system but does not book for callers.
    let operator = cc.harness.staff_token(StaffRole::Operator, "operator-park");
    let (code, refused) = problem(
        client
            .create_booking(staff(
                book(&slot.id, ""),
                &operator,
                Some(&cc.caller_grant("operator-park")),
            ))
            .await,
    );
    assert_eq!(code, Code::PermissionDenied);
    assert_eq!(refused.kind, ProblemKind::RoleNotAllowed);

    // No caller grant, an expired one, a malformed one: the caller was not verified.
    let expired = cc.caller_grant_issued(
        "agent-kim",
        cc.harness.clock.now() - chrono::Duration::minutes(16),
    );
    for grant in [None, Some(expired.as_str()), Some("not.a.grant")] {
        let (code, refused) = problem(
            client
                .create_booking(staff(book(&slot.id, ""), &token, grant))
                .await,
        );
        assert_eq!(code, Code::PermissionDenied);
        assert_eq!(refused.kind, ProblemKind::CallerNotVerified, "{grant:?}");
    }

    // A caller grant issued to another agent.
    let (code, refused) = problem(
        client
            .create_booking(staff(
                book(&slot.id, ""),
                &token,
                Some(&cc.caller_grant("agent-lee")),
            ))
            .await,
    );
    assert_eq!(code, Code::PermissionDenied);
    assert_eq!(refused.kind, ProblemKind::CallerOfAnotherAgent);

    // A campaign without the call-center channel.
    cc.harness.answer(|answer| {
        answer.eligible = false;
        answer.reason = "channel-not-allowed".to_owned();
    });
    let (code, refused) = problem(
        client
            .create_booking(staff(
                book(&slot.id, ""),
                &token,
                Some(&cc.caller_grant("agent-kim")),
            ))
            .await,
    );
    assert_eq!(code, Code::PermissionDenied);
    assert_eq!(refused.kind, ProblemKind::ChannelNotAllowed);
    assert_eq!(reason(&refused), "channel-not-allowed");
    assert_eq!(support::remaining(&cc.harness, &slot).await, 3);

    let entries = cc.entries().await;
    let outcomes: Vec<(&str, &str, &str, Option<&str>)> = entries[seeded..]
        .iter()
        .map(|e| {
            (
                e.record.action.as_str(),
                e.record.actor.as_str(),
                e.record.outcome.as_str(),
                e.record.person_key.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("staff.book", "unknown", "staff-token-required", None),
            ("staff.book", "unknown", "staff-token-required", None),
            ("staff.book", "unknown", "staff-token-required", None),
            ("staff.book", "operator-park", "role-not-allowed", None),
            ("staff.book", "agent-kim", "caller-not-verified", None),
            ("staff.book", "agent-kim", "caller-not-verified", None),
            ("staff.book", "agent-kim", "caller-not-verified", None),
            ("staff.book", "agent-kim", "caller-of-another-agent", None),
            (
                "staff.book",
                "agent-kim",
                "channel-not-allowed",
                Some(CALLER)
            ),
        ]
    );
    assert_eq!(entries[seeded + 3].record.role, "operator");
    let total = entries.len();
    assert_eq!(
        verify_trail(cc.audit.trail(), &entries).unwrap(),
        total as u64
    );

    // An entry altered directly in the database is pinpointed.
    let altered = entries.last().unwrap().seq;
    let (db, connection) = tokio_postgres::connect(&cc.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    db.batch_execute(&format!(
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update; \
         UPDATE audit_log SET outcome = 'ok' WHERE trail = 'booking' AND seq = {altered}; \
         ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;"
    ))
    .await
    .unwrap();
    let broken = verify_trail(cc.audit.trail(), &cc.entries().await).unwrap_err();
    assert_eq!(broken, ChainBreak::Altered { seq: altered });
}

#[tokio::test]
async fn the_citizens_api_refuses_staff_tokens_and_audits_them() {
    let cc = call_center("booking_call_center_citizen_api").await;
    let slot = cc.harness.seed_slot(CAMPAIGN, 10, 3).await;
    let seeded = cc.entries().await.len();
    let mut citizens = cc.harness.booking.clone();

    let agent = cc.agent_token("agent-kim");
    let (code, refused) = problem(
        citizens
            .create_booking(authed(book(&slot.id, "k-1"), &agent))
            .await,
    );
    assert_eq!(code, Code::PermissionDenied);
    assert_eq!(refused.kind, ProblemKind::CitizenTokenRequired);
    let operator = cc.harness.staff_token(StaffRole::Operator, "operator-park");
    let (_, refused) = problem(
        citizens
            .list_my_bookings(authed(pb::ListMyBookingsRequest::default(), &operator))
            .await,
    );
    assert_eq!(refused.kind, ProblemKind::CitizenTokenRequired);
    // A token that is neither stays unauthenticated, and is nobody's to audit.
    let (code, refused) = problem(
        citizens
            .list_my_bookings(authed(pb::ListMyBookingsRequest::default(), "not.a.token"))
            .await,
    );
    assert_eq!(code, Code::Unauthenticated);
    assert_eq!(refused.kind, ProblemKind::Unauthenticated);
    // The citizen's own token still books.
    citizens
        .create_booking(authed(book(&slot.id, "k-2"), &cc.harness.token(CALLER)))
        .await
        .unwrap();
    assert_eq!(cc.harness.scheduling.questions.lock().unwrap().len(), 1);

    let entries = cc.entries().await;
    let refusals: Vec<(&str, &str, &str, &str, Option<&str>)> = entries[seeded..]
        .iter()
        .map(|e| {
            (
                e.record.action.as_str(),
                e.record.actor.as_str(),
                e.record.role.as_str(),
                e.record.outcome.as_str(),
                e.record.person_key.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        refusals,
        vec![
            (
                "citizen-api.refused",
                "agent-kim",
                "agent",
                "citizen-token-required",
                None
            ),
            (
                "citizen-api.refused",
                "operator-park",
                "operator",
                "citizen-token-required",
                None
            ),
        ]
    );
    assert!(
        entries[seeded..]
            .iter()
            .all(|e| e.record.organisation == "national-call-center")
    );
}

#[tokio::test]
async fn an_agent_moves_a_callers_booking_only_where_the_channel_is_allowed() {
    let cc = call_center("booking_call_center_change").await;
    cc.harness
        .answer(|answer| answer.modification_allowed_from = Some(support::kst(1, 0, 0)));
    let first = cc.harness.seed_slot(CAMPAIGN, 10, 3).await;
    let second = cc.harness.seed_slot(CAMPAIGN, 11, 3).await;
    let token = cc.agent_token("agent-kim");
    let grant = cc.caller_grant("agent-kim");
    let mut client = cc.staff.clone();
    let booked = client
        .create_booking(staff(book(&first.id, ""), &token, Some(&grant)))
        .await
        .unwrap()
        .into_inner();
    let moved = client
        .change_booking(staff(
            support::change(&booked.id, &second.id),
            &token,
            Some(&grant),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.slot.unwrap().id, second.id);
    assert_eq!(moved.agent, "agent-kim");

    // Once the campaign no longer allows the call-center channel, neither change nor cancel.
    cc.harness.answer(|answer| {
        answer.eligible = false;
        answer.reason = "channel-not-allowed".to_owned();
    });
    let (_, refused) = problem(
        client
            .change_booking(staff(
                support::change(&booked.id, &first.id),
                &token,
                Some(&grant),
            ))
            .await,
    );
    assert_eq!(refused.kind, ProblemKind::ChannelNotAllowed);
    assert_eq!(reason(&refused), "channel-not-allowed");
    let (_, refused) = problem(
        client
            .cancel_booking(staff(
                pb::CancelBookingRequest {
                    id: booked.id.clone(),
                },
                &token,
                Some(&grant),
            ))
            .await,
    );
    assert_eq!(refused.kind, ProblemKind::ChannelNotAllowed);
    assert_eq!(reason(&refused), "channel-not-allowed");
    let outcomes: Vec<String> = cc
        .entries()
        .await
        .into_iter()
        .filter(|e| e.record.action.starts_with("staff."))
        .map(|e| format!("{} {}", e.record.action, e.record.outcome))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            "staff.book ok",
            "staff.change ok",
            "staff.change channel-not-allowed",
            "staff.cancel channel-not-allowed",
        ]
    );
}
