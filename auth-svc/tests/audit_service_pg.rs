//! auth-svc serves its staff audit trail (PostgreSQL) over `vaxbook.audit.v1.AuditService` next
//! to `StaffAuthService`, configured as production is (no dev-run operator key): the operator
//! reads the logins by actor and verifies the chain, a supervisor sees their own
//! organisation's entries, an agent and the dev key are refused, and each reading is audited.

#![allow(clippy::unwrap_used)]

mod common;

use auth_svc::accounts::store::PgAccountStore;
use auth_svc::accounts::{create_account, credentials};
use platform::operator::OperatorCredential;
use platform::problem::{Problem, ProblemKind};
use platform::staff::StaffRole;
use proto::audit::v1 as pb;
use proto::audit::v1::audit_service_client::AuditServiceClient;
use proto::auth::v1 as auth_pb;
use proto::auth::v1::staff_auth_service_client::StaffAuthServiceClient;

const PASSWORD: &str = "a long staff password";

#[tokio::test]
async fn the_staff_trail_is_read_and_verified_over_the_audit_service() {
    let url = platform::pg::create_test_database("auth_audit_service")
        .await
        .unwrap();
    let pool = platform::pg::pool(&url, 2).unwrap();
    let store = PgAccountStore::migrate(&url, pool).await.unwrap();
    let mut accounts = Vec::new();
    for (username, organisation, role) in [
        ("operator.lee", "national-operations", StaffRole::Operator),
        ("supervisor.han", "seoul-gangnam", StaffRole::Supervisor),
        ("agent.kim", "seoul-gangnam", StaffRole::Agent),
    ] {
        let created = create_account(
            &store,
            username,
            organisation,
            role,
            PASSWORD.to_owned(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        accounts.push((
            username,
            created.totp_secret,
            created.account.id.to_string(),
        ));
    }
    let running = common::start_with("auth_audit_service", |config| {
        config.staff_database = Some(platform::config::ConnectionUrl::new(url.clone()));
        config.common.dev_operator_key = None;
    })
    .await;
    let mut staff = StaffAuthServiceClient::new(running.channel.clone());
    let mut tokens = Vec::new();
    for (username, secret, _) in &accounts {
        let unix = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
        let token = staff
            .login(auth_pb::LoginRequest {
                username: (*username).to_owned(),
                password: PASSWORD.to_owned(),
                totp_code: credentials::totp_code(secret, username, unix).unwrap(),
            })
            .await
            .unwrap()
            .into_inner()
            .token;
        tokens.push(OperatorCredential::Token(token));
    }
    let (operator, supervisor, agent) = (&tokens[0], &tokens[1], &tokens[2]);
    let agent_id = accounts[2].2.clone();

    let mut audit = AuditServiceClient::new(running.channel.clone());
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
    running.stop().await;
}
