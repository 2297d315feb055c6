//! `BookingAdminService` against the real `serve` on PostgreSQL: only an operator token from
//! auth-svc upserts centers and slots — no token, a citizen's token, an agent's token and the
//! dev run's key on a production configuration are refused, each with its problem type — and
//! every call, accepted or refused, is in booking-svc's audit trail. An accepted call is
//! written before the change: with the trail down the call answers `unavailable` and changes
//! nothing.

#![allow(clippy::unwrap_used)]

mod support;

use booking_svc::StoreConfig;
use platform::audit::{
    AuditEntry, AuditLog as _, AuditQuery, BOOKING_TRAIL, PgAuditLog, verify_trail,
};
use platform::operator::{DEV_OPERATOR, OperatorCredential};
use platform::problem::ProblemKind;
use platform::staff::StaffRole;
use proto::booking::v1 as pb;
use support::{Harness, OPERATOR, admin, authed, problem, slot_request};
use tonic::{Code, Request};

const CAMPAIGN: &str = "r18-49";

struct Admin {
    harness: Harness,
    audit: PgAuditLog,
    url: String,
}

/// booking-svc configured as in production (no dev-run operator key), on its own database.
async fn production(name: &str) -> Admin {
    started(name, |config| config.common.dev_operator_key = None).await
}

async fn started(name: &str, adjust: impl FnOnce(&mut booking_svc::Config)) -> Admin {
    let url = platform::pg::create_test_database(name).await.unwrap();
    let harness = Harness::start_with(|config| {
        config.dev_mode = false;
        config.store = StoreConfig::Postgres {
            url: platform::config::ConnectionUrl::new(url.clone()),
            max_connections: 4,
        };
        adjust(config);
    })
    .await;
    let audit = PgAuditLog::new(platform::pg::pool(&url, 2).unwrap(), BOOKING_TRAIL);
    Admin {
        harness,
        audit,
        url,
    }
}

impl Admin {
    async fn entries(&self) -> Vec<AuditEntry> {
        self.audit
            .query(&AuditQuery {
                limit: 500,
                ..AuditQuery::default()
            })
            .await
            .unwrap()
    }

    /// (action, actor, role, outcome) of every entry.
    async fn trail(&self) -> Vec<(String, String, String, String)> {
        self.entries()
            .await
            .into_iter()
            .map(|e| {
                (
                    e.record.action,
                    e.record.actor,
                    e.record.role,
                    e.record.outcome,
                )
            })
            .collect()
    }

    async fn centers(&self) -> Vec<pb::Center> {
        self.harness
            .booking
            .clone()
            .list_centers(pb::ListCentersRequest::default())
            .await
            .unwrap()
            .into_inner()
            .centers
    }

    async fn sql(&self, statements: &str) {
        let (db, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        db.batch_execute(statements).await.unwrap();
    }
}

fn center_request() -> pb::UpsertCenterRequest {
    pb::UpsertCenterRequest {
        center: Some(pb::Center {
            name: "강남 센터".into(),
            region: "서울".into(),
            address: "테헤란로 1".into(),
            ..Default::default()
        }),
    }
}

/// `message` with the metadata (the credential) of `credential`.
fn like<T>(credential: &Request<()>, message: T) -> Request<T> {
    let mut request = Request::new(message);
    *request.metadata_mut() = credential.metadata().clone();
    request
}

fn entry(action: &str, actor: &str, role: &str, outcome: &str) -> (String, String, String, String) {
    (
        action.to_owned(),
        actor.to_owned(),
        role.to_owned(),
        outcome.to_owned(),
    )
}

#[tokio::test]
async fn only_an_operator_token_upserts_and_every_call_is_audited() {
    let admin_svc = production("booking_admin_operators").await;
    let harness = &admin_svc.harness;
    let mut client = harness.admin.clone();
    let citizen = harness.token("citizen-person-key-00000000000000000000000");
    let agent = harness.staff_token(StaffRole::Agent, "agent-kim");
    let supervisor = harness.staff_token(StaffRole::Supervisor, "supervisor-choi");

    // Every credential but an operator's, on both RPCs (the slot names a center that does not
    // exist: refused before anything is looked up).
    let orphan_slot = slot_request(&uuid::Uuid::new_v4().to_string(), CAMPAIGN, 10, 5);
    let refusals = [
        (Request::new(()), ProblemKind::StaffTokenRequired),
        (authed((), &citizen), ProblemKind::StaffTokenRequired),
        (authed((), "not.a.token"), ProblemKind::StaffTokenRequired),
        (admin(()), ProblemKind::StaffTokenRequired),
        (authed((), &agent), ProblemKind::RoleNotAllowed),
        (authed((), &supervisor), ProblemKind::RoleNotAllowed),
    ];
    for (credential, expected) in &refusals {
        let (code, refused) = problem(
            client
                .upsert_center(like(credential, center_request()))
                .await,
        );
        assert_eq!(refused.kind, *expected, "{:?}", credential.metadata());
        assert_eq!(code, expected.grpc_code());
        let (_, refused) = problem(
            client
                .upsert_slot(like(credential, orphan_slot.clone()))
                .await,
        );
        assert_eq!(refused.kind, *expected);
    }
    assert!(
        admin_svc.centers().await.is_empty(),
        "a refused call changed nothing"
    );

    // The operator's token works.
    let center = client
        .upsert_center(harness.as_operator(center_request()))
        .await
        .unwrap()
        .into_inner();
    let slot = client
        .upsert_slot(harness.as_operator(slot_request(&center.id, CAMPAIGN, 10, 5)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (slot.center_id.as_str(), slot.capacity),
        (center.id.as_str(), 5)
    );
    assert_eq!(admin_svc.centers().await, vec![center]);

    let mut expected = Vec::new();
    for (credential, kind) in &refusals {
        let (actor, role) = match credential
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
        {
            Some(value) if value.ends_with(&agent) => ("agent-kim", "agent"),
            Some(value) if value.ends_with(&supervisor) => ("supervisor-choi", "supervisor"),
            _ => ("unknown", ""),
        };
        for action in ["admin.upsert-center", "admin.upsert-slot"] {
            expected.push(entry(action, actor, role, kind.name()));
        }
    }
    expected.push(entry("admin.upsert-center", OPERATOR, "operator", "ok"));
    expected.push(entry("admin.upsert-slot", OPERATOR, "operator", "ok"));
    assert_eq!(admin_svc.trail().await, expected);
    let entries = admin_svc.entries().await;
    assert_eq!(
        verify_trail(admin_svc.audit.trail(), &entries).unwrap(),
        entries.len() as u64
    );
    let operator_entry = &entries.last().unwrap().record;
    assert_eq!(operator_entry.organisation, "national-call-center");
    assert_eq!(operator_entry.person_key, None);
}

#[tokio::test]
async fn malformed_and_failed_changes_are_audited_with_their_problem() {
    let admin_svc = production("booking_admin_failures").await;
    let harness = &admin_svc.harness;
    let mut client = harness.admin.clone();

    // Does not validate: one entry, nothing asked of the store.
    let (code, _) = problem(
        client
            .upsert_center(harness.as_operator(pb::UpsertCenterRequest { center: None }))
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    // Accepted, then refused by the store: the entry before the change, then its failure.
    let unknown_center = uuid::Uuid::new_v4().to_string();
    let (code, _) = problem(
        client
            .upsert_slot(harness.as_operator(slot_request(&unknown_center, CAMPAIGN, 10, 5)))
            .await,
    );
    assert_eq!(code, Code::NotFound);
    assert_eq!(
        admin_svc.trail().await,
        vec![
            entry(
                "admin.upsert-center",
                OPERATOR,
                "operator",
                "invalid-request"
            ),
            entry("admin.upsert-slot", OPERATOR, "operator", "ok"),
            entry("admin.upsert-slot", OPERATOR, "operator", "not-found"),
        ]
    );
}

#[tokio::test]
async fn with_the_trail_down_an_accepted_call_is_unavailable_and_changes_nothing() {
    let admin_svc = production("booking_admin_trail_down").await;
    let harness = &admin_svc.harness;
    let mut client = harness.admin.clone();
    let first = client
        .upsert_center(harness.as_operator(center_request()))
        .await
        .unwrap()
        .into_inner();

    admin_svc
        .sql(
            "CREATE FUNCTION audit_down() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'the audit trail is down'; END $$; \
             CREATE TRIGGER audit_down BEFORE INSERT ON audit_log \
             FOR EACH ROW EXECUTE FUNCTION audit_down();",
        )
        .await;
    let (code, refused) = problem(
        client
            .upsert_center(harness.as_operator(center_request()))
            .await,
    );
    assert_eq!(code, Code::Unavailable);
    assert_eq!(refused.kind, ProblemKind::Unavailable);
    let mut renamed = pb::UpsertCenterRequest {
        center: Some(pb::Center {
            name: "강남 제2센터".into(),
            ..first.clone()
        }),
    };
    let (code, _) = problem(
        client
            .upsert_center(harness.as_operator(renamed.clone()))
            .await,
    );
    assert_eq!(code, Code::Unavailable);
    assert_eq!(admin_svc.centers().await, vec![first.clone()]);

    // Once the trail is back, the same call goes through.
    admin_svc
        .sql("DROP TRIGGER audit_down ON audit_log; DROP FUNCTION audit_down();")
        .await;
    let stored = client
        .upsert_center(harness.as_operator(renamed.clone()))
        .await
        .unwrap()
        .into_inner();
    renamed.center.as_mut().unwrap().id = first.id.clone();
    assert_eq!(Some(stored.clone()), renamed.center);
    assert_eq!(admin_svc.centers().await, vec![stored]);
    assert_eq!(
        admin_svc.trail().await,
        vec![
            entry("admin.upsert-center", OPERATOR, "operator", "ok"),
            entry("admin.upsert-center", OPERATOR, "operator", "ok"),
        ]
    );
}

#[tokio::test]
async fn the_dev_run_key_works_only_in_a_dev_run_configuration_and_is_audited() {
    // A dev-run configuration (its dev operator key left in place), on PostgreSQL to read the
    // trail.
    let dev = started("booking_admin_dev_key", |_| {}).await;
    let center = dev
        .harness
        .admin
        .clone()
        .upsert_center(OperatorCredential::dev().request(center_request()).unwrap())
        .await
        .unwrap()
        .into_inner();
    assert!(!center.id.is_empty());
    let (_, refused) = problem(
        dev.harness
            .admin
            .clone()
            .upsert_center(
                OperatorCredential::DevKey("a-guess-at-the-key".into())
                    .request(center_request())
                    .unwrap(),
            )
            .await,
    );
    assert_eq!(refused.kind, ProblemKind::StaffTokenRequired);
    assert_eq!(
        dev.trail().await,
        vec![
            entry("admin.upsert-center", DEV_OPERATOR, "operator", "ok"),
            entry("admin.upsert-center", "unknown", "", "staff-token-required"),
        ]
    );
}
