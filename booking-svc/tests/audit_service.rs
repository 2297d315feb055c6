//! booking-svc serves its audit trail over `vaxbook.audit.v1.AuditService` (the real `serve` on
//! PostgreSQL): an operator reads every entry and by person key, a supervisor only their
//! organisation's, an agent is refused, and VerifyChain names an entry rewritten in the
//! database. scheduling-svc's trail in the same database (they share `DATABASE_URL`) is neither
//! answered nor verified by booking-svc's service.

#![allow(clippy::unwrap_used)]

mod support;

use booking_svc::StoreConfig;
use platform::audit::{AuditLog as _, AuditRecord, PgAuditLog, SCHEDULING_TRAIL, verify_log};
use platform::clock::Clock as _;
use platform::operator::OperatorCredential;
use platform::problem::{Problem, ProblemKind};
use platform::staff::{AGENT_TOKEN_TTL, AgentToken, CALLER_GRANT_TTL, CallerGrant, StaffRole};
use proto::audit::v1 as pb;
use proto::audit::v1::audit_service_client::AuditServiceClient;
use proto::booking::v1::staff_booking_service_client::StaffBookingServiceClient;
use support::{Harness, book};
use tonic::transport::Channel;

const CALLER: &str = "caller-person-key-0000000000000000000000000";

/// scheduling-svc's entry of an operator's call, as it writes them into the shared database:
/// the same operator, organisation and person key booking-svc's readers ask for.
fn scheduling_entry(outcome: &str) -> AuditRecord {
    AuditRecord {
        actor: "operator-lee".to_owned(),
        organisation: "national-call-center".to_owned(),
        role: "operator".to_owned(),
        action: "admin.upsert-campaign".to_owned(),
        person_key: Some(CALLER.to_owned()),
        outcome: outcome.to_owned(),
    }
}

#[tokio::test]
async fn operators_and_supervisors_read_booking_svcs_trail_and_verify_it() {
    let url = platform::pg::create_test_database("booking_audit_service")
        .await
        .unwrap();
    let pool = platform::pg::pool(&url, 2).unwrap();
    let scheduling = PgAuditLog::migrate(&url, pool.clone(), SCHEDULING_TRAIL)
        .await
        .unwrap();
    scheduling
        .append(chrono::Utc::now(), scheduling_entry("ok"))
        .await
        .unwrap();
    let harness = Harness::start_with(|config| {
        config.dev_mode = false;
        // As from the environment: no dev-run operator key.
        config.common.dev_operator_key = None;
        config.store = StoreConfig::Postgres {
            url: platform::config::ConnectionUrl::new(url.clone()),
            max_connections: 4,
        };
    })
    .await;
    let channel = Channel::from_shared(format!("http://{}", harness.addr))
        .unwrap()
        .connect_lazy();
    // Two admin entries (center, slot), then an agent's booking for a caller.
    let slot = harness.seed_slot("r60-plus", 10, 3).await;
    let token = |role: StaffRole, sub: &str, org: &str| {
        let claims = AgentToken {
            sub: sub.to_owned(),
            username: format!("{}.{sub}", role.as_str()),
            org: org.to_owned(),
            role,
        };
        let token = harness
            .proxy_grants
            .issue(&claims, harness.clock.now(), AGENT_TOKEN_TTL)
            .unwrap()
            .token;
        OperatorCredential::Token(token)
    };
    let grant = harness
        .proxy_grants
        .issue(
            &CallerGrant {
                agent: "agent-kim".to_owned(),
                for_key: CALLER.to_owned(),
                for_bd: "1950-05-01".to_owned(),
            },
            harness.clock.now(),
            CALLER_GRANT_TTL,
        )
        .unwrap()
        .token;
    let agent = token(StaffRole::Agent, "agent-kim", "national-call-center");
    let mut request = agent.request(book(&slot.id, "audit-1")).unwrap();
    request
        .metadata_mut()
        .insert("x-caller-grant", grant.parse().unwrap());
    StaffBookingServiceClient::new(channel.clone())
        .create_booking(request)
        .await
        .unwrap();
    scheduling
        .append(chrono::Utc::now(), scheduling_entry("invalid-argument"))
        .await
        .unwrap();

    let mut audit = AuditServiceClient::new(channel);
    let operator = token(StaffRole::Operator, "operator-lee", "national-call-center");
    let all = audit
        .query_audit(operator.request(pb::QueryAuditRequest::default()).unwrap())
        .await
        .unwrap()
        .into_inner();
    let actions: Vec<_> = all.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["admin.upsert-center", "admin.upsert-slot", "staff.book"]
    );
    assert_eq!(all.next_after_seq, 0);
    assert_eq!(all.audit_seq, 4);
    let for_caller = audit
        .query_audit(
            operator
                .request(pb::QueryAuditRequest {
                    person_key: CALLER.to_owned(),
                    ..Default::default()
                })
                .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(for_caller.entries.len(), 1);
    assert_eq!(for_caller.entries[0].actor, "agent-kim");
    assert_eq!(for_caller.entries[0].outcome, "ok");

    // Supervisors: their organisation's entries only.
    let elsewhere = token(StaffRole::Supervisor, "supervisor-choi", "seoul-gangnam");
    let page = audit
        .query_audit(elsewhere.request(pb::QueryAuditRequest::default()).unwrap())
        .await
        .unwrap()
        .into_inner();
    assert!(page.entries.is_empty(), "{page:?}");
    let own = token(
        StaffRole::Supervisor,
        "supervisor-han",
        "national-call-center",
    );
    let page = audit
        .query_audit(
            own.request(pb::QueryAuditRequest {
                actor: "agent-kim".to_owned(),
                ..Default::default()
            })
            .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.entries.len(), 1);

    let refused = audit
        .query_audit(agent.request(pb::QueryAuditRequest::default()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        Problem::from_status(&refused).kind,
        ProblemKind::RoleNotAllowed
    );
    // A production booking-svc has no dev key.
    let refused = audit
        .verify_chain(
            OperatorCredential::dev()
                .request(pb::VerifyChainRequest {})
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        Problem::from_status(&refused).kind,
        ProblemKind::StaffTokenRequired
    );

    // 3 entries, 4 successful reads, 2 refusals (each audited).
    let intact = audit
        .verify_chain(operator.request(pb::VerifyChainRequest {}).unwrap())
        .await
        .unwrap()
        .into_inner();
    assert!(intact.ok, "{intact:?}");
    assert_eq!(intact.checked, 9);
    // scheduling-svc's trail: its own two entries, untouched by booking-svc's readings.
    assert_eq!(verify_log(&scheduling).await.unwrap(), Ok(2));
    pool.get()
        .await
        .unwrap()
        .batch_execute(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update; \
             UPDATE audit_log SET outcome = 'slot-full' WHERE trail = 'booking' AND seq = 3;",
        )
        .await
        .unwrap();
    let broken = audit
        .verify_chain(operator.request(pb::VerifyChainRequest {}).unwrap())
        .await
        .unwrap()
        .into_inner();
    assert!(!broken.ok);
    assert_eq!(
        (
            broken.first_broken_seq,
            broken.break_kind.as_str(),
            broken.checked
        ),
        (3, "altered", 2)
    );
    assert_eq!(verify_log(&scheduling).await.unwrap(), Ok(2));
}
