//! scheduling-svc serves its audit trail over `vaxbook.audit.v1.AuditService` (the real `serve`
//! on PostgreSQL, trusting a stand-in auth-svc): an operator reads the admin calls' entries and
//! verifies the chain, a supervisor reads their organisation's, an agent and the dev key outside
//! the dev run are refused, and each reading is on the trail. booking-svc's trail in the same
//! database (they share `DATABASE_URL`) is none of it: not answered, not verified, not written.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use platform::audit::{AuditLog as _, AuditRecord, BOOKING_TRAIL, PgAuditLog, verify_log};
use platform::clock::Clock as _;
use platform::dev::DevHooks;
use platform::operator::OperatorCredential;
use platform::problem::{Problem, ProblemKind};
use platform::staff::StaffRole;
use platform::trust::AuthStandIn;
use proto::audit::v1 as pb;
use proto::audit::v1::audit_service_client::AuditServiceClient;
use proto::scheduling::v1::UpsertCampaignRequest;
use proto::scheduling::v1::scheduling_admin_service_client::SchedulingAdminServiceClient;
use scheduling_svc::{Config, StoreConfig};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn the_admin_calls_trail_is_read_and_verified_over_grpc() {
    platform::telemetry::init_for_tests();
    let url = platform::pg::create_test_database("sched_audit_service")
        .await
        .unwrap();
    // booking-svc's trail, already written by the same operator in the shared database.
    let booking = PgAuditLog::migrate(&url, platform::pg::pool(&url, 2).unwrap(), BOOKING_TRAIL)
        .await
        .unwrap();
    for action in ["admin.upsert-center", "admin.upsert-slot"] {
        booking
            .append(
                chrono::Utc::now(),
                AuditRecord {
                    actor: "operator-account".to_owned(),
                    organisation: "national-call-center".to_owned(),
                    role: "operator".to_owned(),
                    action: action.to_owned(),
                    person_key: None,
                    outcome: "ok".to_owned(),
                },
            )
            .await
            .unwrap();
    }
    let auth = AuthStandIn::start().await.unwrap();
    let hooks = DevHooks::new(at("2021-08-02T10:00:00+09:00"));
    let mut config = Config::local_dev(SocketAddr::from(([127, 0, 0, 1], 0)), &hooks);
    config.auth_url = auth.url.clone();
    config.store = StoreConfig::Postgres {
        url: platform::config::ConnectionUrl::new(url.clone()),
        max_connections: 4,
    };
    config.common.dev_operator_key = None;
    config.dev_mode = false;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(scheduling_svc::serve(config, listener, shutdown.clone()));
    let channel =
        platform::grpc::channel(&format!("http://{addr}"), Duration::from_secs(20)).unwrap();
    wait_serving(
        channel.clone(),
        "vaxbook.scheduling.v1.SchedulingAdminService",
    )
    .await;
    let token = |role: StaffRole, account: &str| {
        OperatorCredential::Token(staff_token(&auth.keys, role, account, hooks.clock.now()))
    };
    let operator = token(StaffRole::Operator, "operator-account");
    let agent = token(StaffRole::Agent, "agent-account");

    let mut admin = SchedulingAdminServiceClient::new(channel.clone());
    admin
        .upsert_campaign(
            operator
                .request(UpsertCampaignRequest {
                    campaign: Some(round_18_49_message()),
                })
                .unwrap(),
        )
        .await
        .unwrap();
    let refused = admin
        .upsert_campaign(
            agent
                .request(UpsertCampaignRequest {
                    campaign: Some(round_18_49_message()),
                })
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        Problem::from_status(&refused).kind,
        ProblemKind::RoleNotAllowed
    );

    let mut audit = AuditServiceClient::new(channel);
    let page = audit
        .query_audit(
            operator
                .request(pb::QueryAuditRequest {
                    actor: "operator-account".to_owned(),
                    ..Default::default()
                })
                .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.entries.len(), 1, "{page:?}");
    assert_eq!(
        (
            page.entries[0].action.as_str(),
            page.entries[0].outcome.as_str()
        ),
        ("admin.upsert-campaign", "ok")
    );
    assert_eq!(page.audit_seq, 3);
    // A supervisor of the same organisation reads both admin entries and the operator's query.
    let supervisor = token(StaffRole::Supervisor, "supervisor-account");
    let page = audit
        .query_audit(
            supervisor
                .request(pb::QueryAuditRequest::default())
                .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    let seen: Vec<_> = page
        .entries
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("operator-account", "admin.upsert-campaign", "ok"),
            ("agent-account", "admin.upsert-campaign", "role-not-allowed"),
            ("operator-account", "audit.query", "ok"),
        ]
    );
    for (credential, kind) in [
        (&agent, ProblemKind::RoleNotAllowed),
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
    let report = audit
        .verify_chain(operator.request(pb::VerifyChainRequest {}).unwrap())
        .await
        .unwrap()
        .into_inner();
    // 2 admin entries, 2 readings, 2 refused readings.
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checked, 6);
    assert_eq!(verify_log(&booking).await.unwrap(), Ok(2));

    shutdown.cancel();
    server.await.unwrap().unwrap();
}
