//! session-svc serves its audit trail (the Redis list) over `vaxbook.audit.v1.AuditService`, as
//! production runs it (`dev_mode: false`, no dev operator key): an operator reads the entries of
//! a person it looked up and verifies the chain, a supervisor of another organisation sees
//! none, an agent is refused, and an entry rewritten in Redis is named by VerifyChain.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use chrono::Utc;
use platform::auth::Role;
use platform::operator::OperatorCredential;
use platform::problem::{Problem, ProblemKind};
use platform::staff::{AgentToken, StaffRole};
use platform::trust::AuthStandIn;
use proto::audit::v1 as pb;
use proto::audit::v1::audit_service_client::AuditServiceClient;
use proto::session::v1::LookupPersonRequest;
use proto::session::v1::queue_admin_service_client::QueueAdminServiceClient;
use session_svc::{Config, StoreConfig};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const ORGANISATION: &str = "national-operations";

#[tokio::test]
async fn the_redis_trail_is_read_and_verified_over_grpc() {
    platform::telemetry::init_for_tests();
    let auth = AuthStandIn::start().await.unwrap();
    let hooks = platform::dev::DevHooks::new(Utc::now());
    let mut config = Config::local_dev(SocketAddr::from(([127, 0, 0, 1], 0)), &hooks);
    let prefix = platform::redis_conn::test_prefix("audit-service");
    config.auth_url = auth.url.clone();
    config.store = StoreConfig::Redis {
        url: platform::config::ConnectionUrl::new(platform::config::string(
            "VAXBOOK_TEST_REDIS_URL",
            platform::redis_conn::DEFAULT_REDIS_URL,
        )),
        key_prefix: prefix.clone(),
    };
    config.dev_mode = false;
    config.common.dev_operator_key = None;
    let key_file = std::env::temp_dir().join(format!(
        "session-audit-signing-{}.pem",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&key_file, platform::grants::generate_pem().unwrap()).unwrap();
    config.signing_key_file = Some(key_file);
    let clock = config.clock.clone();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(session_svc::serve(config, listener, shutdown.clone()));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let staff = |role: StaffRole, account: &str, org: &str| {
        let claims = AgentToken {
            sub: account.to_owned(),
            username: format!("{}.kim", role.as_str()),
            org: org.to_owned(),
            role,
        };
        OperatorCredential::Token(auth.staff_token(&claims, clock.now()).unwrap())
    };
    let operator = staff(StaffRole::Operator, "operator-account", ORGANISATION);
    let person = format!("pk-{}", uuid::Uuid::new_v4().simple());

    // Two lookups of the person: the operator's (ok) and a citizen's token (refused).
    let mut admin = QueueAdminServiceClient::new(channel.clone());
    let lookup = || LookupPersonRequest {
        person_key: person.clone(),
    };
    admin
        .lookup_person(operator.request(lookup()).unwrap())
        .await
        .unwrap();
    let citizen = auth
        .token(
            Role::Citizen,
            &person,
            "1990-01-13",
            "s-1",
            "pc-1",
            clock.now(),
        )
        .unwrap();
    admin
        .lookup_person(
            OperatorCredential::Token(citizen)
                .request(lookup())
                .unwrap(),
        )
        .await
        .unwrap_err();

    let mut audit = AuditServiceClient::new(channel);
    let page = audit
        .query_audit(
            operator
                .request(pb::QueryAuditRequest {
                    person_key: person.clone(),
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
        .map(|e| (e.seq, e.actor.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(seen, [(1, "operator-account", "ok")], "{page:?}");
    assert_eq!(page.entries[0].action, "session.lookup-person");
    let page = audit
        .query_audit(operator.request(pb::QueryAuditRequest::default()).unwrap())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.entries.len(), 3, "two lookups and the first query");
    assert_eq!(page.entries[1].outcome, "staff-token-required");

    let elsewhere = staff(StaffRole::Supervisor, "supervisor-account", "seoul-gangnam");
    let page = audit
        .query_audit(elsewhere.request(pb::QueryAuditRequest::default()).unwrap())
        .await
        .unwrap()
        .into_inner();
    assert!(page.entries.is_empty(), "{page:?}");
    let agent = staff(StaffRole::Agent, "agent-account", ORGANISATION);
    let refused = audit
        .query_audit(agent.request(pb::QueryAuditRequest::default()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        Problem::from_status(&refused).kind,
        ProblemKind::RoleNotAllowed
    );

    let report = audit
        .verify_chain(operator.request(pb::VerifyChainRequest {}).unwrap())
        .await
        .unwrap()
        .into_inner();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checked, 6);
    // Someone rewrites the first entry's outcome in the Redis list.
    let mut connection = platform::redis_conn::connect_for_tests().await.unwrap();
    let key = format!("{prefix}session:audit");
    let first: String = redis::cmd("LINDEX")
        .arg(&key)
        .arg(0)
        .query_async(&mut connection)
        .await
        .unwrap();
    let rewritten = first.replace("\"outcome\":\"ok\"", "\"outcome\":\"not-found\"");
    assert_ne!(rewritten, first);
    let _: () = redis::cmd("LSET")
        .arg(&key)
        .arg(0)
        .arg(rewritten)
        .query_async(&mut connection)
        .await
        .unwrap();
    let report = audit
        .verify_chain(operator.request(pb::VerifyChainRequest {}).unwrap())
        .await
        .unwrap()
        .into_inner();
    assert!(!report.ok);
    assert_eq!(
        (
            report.first_broken_seq,
            report.break_kind.as_str(),
            report.checked
        ),
        (1, "altered", 0)
    );

    shutdown.cancel();
    server.await.unwrap().unwrap();
}
