//! `vaxbook.audit.v1.AuditService` over gRPC, on a trail in real PostgreSQL: an operator pages
//! through it, a supervisor sees their organisation's entries, each query lands on the trail,
//! and VerifyChain names the entry rewritten behind the append-only trigger's back. Another
//! service's trail in the same database (booking-svc's and scheduling-svc's share one) is
//! neither answered nor verified by it.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use proto::audit::v1 as pb;
use proto::audit::v1::audit_service_client::AuditServiceClient;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use vaxbook_platform::audit::{
    AuditLog as _, AuditRecord, BOOKING_TRAIL, PgAuditLog, SCHEDULING_TRAIL, verify_log,
};
use vaxbook_platform::audit_grpc::{AuditGrpc, QUERY_ACTION};
use vaxbook_platform::clock::{Clock as _, SettableClock};
use vaxbook_platform::grants::{GrantIssuer, GrantVerifier, SigningKeys, StaticKeysSource};
use vaxbook_platform::operator::{OperatorCredential, OperatorGuard};
use vaxbook_platform::problem::{Problem, ProblemKind};
use vaxbook_platform::staff::{AgentToken, StaffRole};

fn record(org: &str, person: &str) -> AuditRecord {
    AuditRecord {
        actor: format!("agent-of-{org}"),
        organisation: org.to_owned(),
        role: "agent".to_owned(),
        action: "staff.book".to_owned(),
        person_key: Some(person.to_owned()),
        outcome: "ok".to_owned(),
    }
}

#[tokio::test]
async fn operators_and_supervisors_read_a_pg_trail_over_grpc_and_a_rewrite_is_pinpointed()
-> anyhow::Result<()> {
    let url = vaxbook_platform::pg::create_test_database("audit_grpc").await?;
    let pool = vaxbook_platform::pg::pool(&url, 2)?;
    let log = Arc::new(PgAuditLog::migrate(&url, pool.clone(), BOOKING_TRAIL).await?);
    // scheduling-svc's trail in the same database, written in between: entries a supervisor of
    // seoul-gangnam asking for pk-1 would see, were the trails mixed.
    let other = PgAuditLog::migrate(&url, pool.clone(), SCHEDULING_TRAIL).await?;
    for n in 0..6 {
        let org = if n % 2 == 0 {
            "national-call-center"
        } else {
            "seoul-gangnam"
        };
        log.append(Utc::now(), record(org, &format!("pk-{}", n % 2)))
            .await?;
        other
            .append(Utc::now(), record("seoul-gangnam", "pk-1"))
            .await?;
    }

    let keys = Arc::new(SigningKeys::generate()?);
    let clock = Arc::new(SettableClock::new());
    let verifier = GrantVerifier::new(Arc::new(StaticKeysSource(keys.jwks())), clock.clone());
    let service = AuditGrpc::new(
        log.clone(),
        OperatorGuard::new(Arc::new(verifier), None),
        clock.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let server = tokio::spawn({
        let stop = stop.clone();
        tonic::transport::Server::builder()
            .add_service(service.into_service())
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop.cancelled_owned())
    });
    let channel =
        vaxbook_platform::grpc::channel(&format!("http://{addr}"), Duration::from_secs(5))?;
    let mut client = AuditServiceClient::new(channel);
    let issuer = GrantIssuer::new(keys);
    let token = |role: StaffRole, org: &str| -> anyhow::Result<OperatorCredential> {
        let claims = AgentToken {
            sub: format!("{}-account", role.as_str()),
            username: format!("{}.lee", role.as_str()),
            org: org.to_owned(),
            role,
        };
        Ok(OperatorCredential::Token(
            issuer
                .issue(&claims, clock.now(), Duration::from_secs(60))?
                .token,
        ))
    };

    // An operator pages through everything, two at a time.
    let operator = token(StaffRole::Operator, "national-call-center")?;
    let mut seqs = Vec::new();
    let mut after_seq = 0;
    loop {
        let page = client
            .query_audit(operator.request(pb::QueryAuditRequest {
                after_seq,
                page_size: 2,
                ..Default::default()
            })?)
            .await?
            .into_inner();
        seqs.extend(page.entries.iter().map(|entry| entry.seq));
        if page.next_after_seq == 0 {
            break;
        }
        after_seq = page.next_after_seq;
    }
    // Entries 1..=6, then the audit entries of the operator's own queries as they were written.
    assert_eq!(seqs[..6], [1, 2, 3, 4, 5, 6]);
    assert!(seqs.windows(2).all(|pair| pair[0] + 1 == pair[1]));
    assert!(seqs.len() < 12, "the other trail was answered: {seqs:?}");

    // A supervisor reads their organisation's entries for one person.
    let supervisor = token(StaffRole::Supervisor, "seoul-gangnam")?;
    let page = client
        .query_audit(supervisor.request(pb::QueryAuditRequest {
            person_key: "pk-1".to_owned(),
            ..Default::default()
        })?)
        .await?
        .into_inner();
    assert_eq!(
        page.entries
            .iter()
            .map(|entry| entry.seq)
            .collect::<Vec<_>>(),
        vec![2, 4, 6]
    );
    assert!(
        page.entries
            .iter()
            .all(|entry| entry.organisation == "seoul-gangnam")
    );
    assert_eq!(page.next_after_seq, 0);

    // An agent is refused, with the problem type on the wire and on the trail.
    let agent = token(StaffRole::Agent, "seoul-gangnam")?;
    let status = client
        .query_audit(agent.request(pb::QueryAuditRequest::default())?)
        .await
        .expect_err("an agent may not read the trail");
    assert_eq!(
        Problem::from_status(&status).kind,
        ProblemKind::RoleNotAllowed
    );
    let trail = vaxbook_platform::audit::MAX_PAGE;
    let everything = log
        .query(&vaxbook_platform::audit::AuditQuery {
            limit: trail,
            ..Default::default()
        })
        .await?;
    let last = everything.last().expect("entries");
    assert_eq!(last.record.action, QUERY_ACTION);
    assert_eq!(last.record.outcome, "role-not-allowed");
    let supervisor_entry = &everything[everything.len() - 2];
    assert_eq!(supervisor_entry.record.role, "supervisor");
    assert_eq!(supervisor_entry.record.person_key.as_deref(), Some("pk-1"));

    let intact = client
        .verify_chain(operator.request(pb::VerifyChainRequest {})?)
        .await?
        .into_inner();
    assert!(intact.ok, "{intact:?}");
    assert_eq!(intact.checked, u64::try_from(everything.len())?);
    assert!(
        everything
            .iter()
            .all(|entry| entry.record.action != "staff.book" || entry.seq <= 6),
        "{everything:?}"
    );

    // Someone who can drop the trigger rewrites entry 4 of this trail.
    pool.get()
        .await?
        .batch_execute(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update; \
             UPDATE audit_log SET outcome = 'slot-full' WHERE trail = 'booking' AND seq = 4;",
        )
        .await?;
    let broken = client
        .verify_chain(operator.request(pb::VerifyChainRequest {})?)
        .await?
        .into_inner();
    assert!(!broken.ok);
    assert_eq!(broken.checked, 3);
    assert_eq!(broken.first_broken_seq, 4);
    assert_eq!(broken.break_kind, "altered");
    // The other trail's entry 4 is untouched and its chain still holds.
    assert_eq!(verify_log(&other).await?, Ok(6));

    stop.cancel();
    server.await??;
    Ok(())
}
