//! auth-svc serves its staff audit trail (PostgreSQL) over `vaxbook.audit.v1.AuditService` next
//! to `StaffAuthService`, configured as production is (no dev-run operator key): the operator
//! reads the logins by actor and verifies the chain, a supervisor sees their own
//! organisation's entries, an agent and the dev key are refused, and each reading is audited.

#![allow(clippy::unwrap_used)]

mod common;

use platform::operator::OperatorCredential;
use platform::problem::{Problem, ProblemKind};
use platform::staff::StaffRole;
use proto::audit::v1 as pb;

#[tokio::test]
async fn the_staff_trail_is_read_and_verified_over_the_audit_service() {
    let staff = common::staff::start(
        "auth_audit_service",
        &[
            ("operator.lee", "national-operations", StaffRole::Operator),
            ("supervisor.han", "seoul-gangnam", StaffRole::Supervisor),
            ("agent.kim", "seoul-gangnam", StaffRole::Agent),
        ],
    )
    .await;
    let mut tokens = Vec::new();
    for username in ["operator.lee", "supervisor.han", "agent.kim"] {
        tokens.push(OperatorCredential::Token(staff.token(username).await));
    }
    let (operator, supervisor, agent) = (&tokens[0], &tokens[1], &tokens[2]);
    let agent_id = staff.id("agent.kim");

    let mut audit = staff.audit();
    let page = audit
        .query_audit(
            operator
                .request(pb::QueryAuditRequest {
                    actor: agent_id.clone(),
                    ..Default::default()
                })
                .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    let seen: Vec<_> = page
        .entries
        .iter()
        .map(|e| {
            (
                e.seq,
                e.action.as_str(),
                e.outcome.as_str(),
                e.role.as_str(),
            )
        })
        .collect();
    assert_eq!(seen, [(3, "staff.login", "ok", "agent")], "{page:?}");
    assert_eq!(page.audit_seq, 4);

    // The supervisor's own organisation: the supervisor's and the agent's logins, not the
    // operator's login or query.
    let page = audit
        .query_audit(
            supervisor
                .request(pb::QueryAuditRequest::default())
                .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    let seqs: Vec<_> = page.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [2, 3]);
    assert!(
        page.entries
            .iter()
            .all(|e| e.organisation == "seoul-gangnam")
    );

    for (credential, kind) in [
        (agent, ProblemKind::RoleNotAllowed),
        (&OperatorCredential::dev(), ProblemKind::StaffTokenRequired),
    ] {
        let refused = audit
            .query_audit(
                credential
                    .request(pb::QueryAuditRequest::default())
                    .unwrap(),
            )
            .await
            .unwrap_err();
        assert_eq!(Problem::from_status(&refused).kind, kind);
    }
    // The supervisor may query but not verify.
    let refused = audit
        .verify_chain(supervisor.request(pb::VerifyChainRequest {}).unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        Problem::from_status(&refused).kind,
        ProblemKind::RoleNotAllowed
    );

    // The whole trail: the logins, then every reading and refusal above.
    let page = audit
        .query_audit(
            operator
                .request(pb::QueryAuditRequest {
                    page_size: 100,
                    ..Default::default()
                })
                .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    let actions: Vec<_> = page.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "staff.login",
            "staff.login",
            "staff.login",
            "audit.query",
            "audit.query",
            "audit.query",
            "audit.query",
            "audit.verify-chain",
        ]
    );
    // This reading is the ninth entry, written after its page was read.
    assert_eq!(page.audit_seq, 9);
    let report = audit
        .verify_chain(operator.request(pb::VerifyChainRequest {}).unwrap())
        .await
        .unwrap()
        .into_inner();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checked, 9);
    staff.running.stop().await;
}
