//! Operators instead of one shared key (R9), on PostgreSQL: `SchedulingAdminService` takes an
//! operator token (auth-svc's agent token of an `operator` account, verified against the keys a
//! stand-in auth-svc publishes) and refuses everything else — no token, a citizen's token, a
//! forged one, the dev run's key outside the dev run (`staff-token-required`), an agent's token
//! (`role-not-allowed`). Every call, accepted or refused, leaves an entry in scheduling-svc's
//! hash-chained audit trail, with no person key; an accepted call whose entry cannot be written
//! is `unavailable` and changes nothing.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use platform::audit::{
    AuditEntry, AuditLog as _, AuditQuery, MAX_PAGE, PgAuditLog, SCHEDULING_TRAIL,
};
use platform::auth::Role;
use platform::clock::Clock as _;
use platform::dev::DevHooks;
use platform::grants::SigningKeys;
use platform::grpc::GrpcChannel;
use platform::operator::OperatorCredential;
use platform::problem::{Problem, ProblemKind};
use platform::staff::StaffRole;
use platform::trust::AuthStandIn;
use proto::scheduling::v1 as pb;
use proto::scheduling::v1::scheduling_admin_service_client::SchedulingAdminServiceClient;
use scheduling_svc::admin::{REPLACE_EXCLUSIONS, UPSERT_CAMPAIGN};
use scheduling_svc::{CampaignStore, Config, PgCampaignStore, StoreConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const OPERATOR: &str = "6f1c0b9e-0000-4000-8000-00000000000a";
const AGENT: &str = "6f1c0b9e-0000-4000-8000-00000000000b";

/// scheduling-svc on its own database, trusting a stand-in auth-svc.
struct Served {
    admin: SchedulingAdminServiceClient<GrpcChannel>,
    auth: AuthStandIn,
    hooks: DevHooks,
    url: String,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Run {
    /// What `Config::from_env` gives: no dev operator key, not a dev run.
    Production,
    /// `Config::local_dev`, on PostgreSQL.
    Dev,
}

impl Served {
    async fn start(label: &str, run: Run) -> Self {
        platform::telemetry::init_for_tests();
        let url = platform::pg::create_test_database(label).await.unwrap();
        let auth = AuthStandIn::start().await.unwrap();
        let hooks = DevHooks::new(at("2021-08-02T10:00:00+09:00"));
        let mut config = Config::local_dev(SocketAddr::from(([127, 0, 0, 1], 0)), &hooks);
        config.auth_url = auth.url.clone();
        config.store = StoreConfig::Postgres {
            url: platform::config::ConnectionUrl::new(url.clone()),
            max_connections: 4,
        };
        if run == Run::Production {
            config.common.dev_operator_key = None;
            config.dev_mode = false;
        }
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
        Self {
            admin: SchedulingAdminServiceClient::new(channel),
            auth,
            hooks,
            url,
            shutdown,
            server,
        }
    }

    fn token(&self, role: StaffRole, account: &str) -> OperatorCredential {
        OperatorCredential::Token(staff_token(
            &self.auth.keys,
            role,
            account,
            self.hooks.clock.now(),
        ))
    }

    fn store(&self) -> PgCampaignStore {
        PgCampaignStore::new(platform::pg::pool(&self.url, 2).unwrap())
    }

    fn trail(&self) -> PgAuditLog {
        PgAuditLog::new(platform::pg::pool(&self.url, 2).unwrap(), SCHEDULING_TRAIL)
    }

    async fn upsert(
        &mut self,
        credential: Option<&OperatorCredential>,
        campaign: pb::Campaign,
    ) -> Result<pb::Campaign, Problem> {
        let message = pb::UpsertCampaignRequest {
            campaign: Some(campaign),
        };
        let request = match credential {
            Some(credential) => credential.request(message).unwrap(),
            None => tonic::Request::new(message),
        };
        self.admin
            .upsert_campaign(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| Problem::from_status(&status))
    }

    async fn replace(
        &mut self,
        credential: Option<&OperatorCredential>,
        campaign_id: &str,
        keys: &[&str],
    ) -> Result<pb::ReplaceExclusionsResponse, Problem> {
        let messages = vec![pb::ReplaceExclusionsRequest {
            campaign_id: campaign_id.to_owned(),
            person_keys: keys.iter().map(|key| (*key).to_owned()).collect(),
        }];
        let stream = tokio_stream::iter(messages);
        let request = match credential {
            Some(credential) => credential.request(stream).unwrap(),
            None => tonic::Request::new(stream),
        };
        self.admin
            .replace_exclusions(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| Problem::from_status(&status))
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.server)
            .await
            .expect("serve did not stop")
            .unwrap()
            .unwrap();
    }
}

async fn entries(trail: &PgAuditLog) -> Vec<AuditEntry> {
    trail
        .query(&AuditQuery {
            limit: MAX_PAGE,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

/// (actor, role, action, outcome) of every entry, in order.
fn summary(entries: &[AuditEntry]) -> Vec<(String, String, String, String)> {
    entries
        .iter()
        .map(|entry| {
            (
                entry.record.actor.clone(),
                entry.record.role.clone(),
                entry.record.action.clone(),
                entry.record.outcome.clone(),
            )
        })
        .collect()
}

fn row(actor: &str, role: &str, action: &str, outcome: &str) -> (String, String, String, String) {
    (
        actor.to_owned(),
        role.to_owned(),
        action.to_owned(),
        outcome.to_owned(),
    )
}

#[tokio::test]
async fn admin_calls_take_operator_tokens_and_every_call_is_audited() {
    let mut served = Served::start("sched_operators", Run::Production).await;
    let now = served.hooks.clock.now();
    let operator = served.token(StaffRole::Operator, OPERATOR);
    let agent = served.token(StaffRole::Agent, AGENT);
    let forged = OperatorCredential::Token(staff_token(
        &Arc::new(SigningKeys::generate().unwrap()),
        StaffRole::Operator,
        OPERATOR,
        now,
    ));
    let citizen = OperatorCredential::Token(
        served
            .auth
            .token(Role::Citizen, "pk-alice", "1990-05-05", "s-1", "pc-1", now)
            .unwrap(),
    );
    let dev_key = OperatorCredential::dev();

    // Everything but an operator's token is refused, on both RPCs, before anything is stored.
    let refused = [
        (None, ProblemKind::StaffTokenRequired, "unknown", ""),
        (
            Some(&citizen),
            ProblemKind::StaffTokenRequired,
            "unknown",
            "",
        ),
        (
            Some(&forged),
            ProblemKind::StaffTokenRequired,
            "unknown",
            "",
        ),
        (
            Some(&dev_key),
            ProblemKind::StaffTokenRequired,
            "unknown",
            "",
        ),
        (Some(&agent), ProblemKind::RoleNotAllowed, AGENT, "agent"),
    ];
    let mut expected = Vec::new();
    for (credential, kind, actor, role) in refused {
        let problem = served
            .upsert(credential, round_18_49_message())
            .await
            .unwrap_err();
        assert_eq!(problem.kind, kind, "{problem:?}");
        let problem = served
            .replace(credential, "covid19-18-49", &["pk-priority-1"])
            .await
            .unwrap_err();
        assert_eq!(problem.kind, kind, "{problem:?}");
        expected.push(row(actor, role, UPSERT_CAMPAIGN, kind.name()));
        expected.push(row(actor, role, REPLACE_EXCLUSIONS, kind.name()));
    }
    let store = served.store();
    assert!(store.list().await.unwrap().is_empty(), "nothing was stored");
    assert!(store.exclusion_versions().await.unwrap().is_empty());

    // The operator's token is accepted.
    let stored = served
        .upsert(Some(&operator), round_18_49_message())
        .await
        .unwrap();
    assert_eq!(stored.version, 1);
    expected.push(row(OPERATOR, "operator", UPSERT_CAMPAIGN, "ok"));
    let replaced = served
        .replace(
            Some(&operator),
            "covid19-18-49",
            &["pk-priority-1", "pk-priority-2", "pk-priority-3"],
        )
        .await
        .unwrap();
    assert_eq!((replaced.list_version, replaced.entries), (1, 3));
    expected.push(row(OPERATOR, "operator", REPLACE_EXCLUSIONS, "ok"));
    assert_eq!(store.exclusion_versions().await.unwrap().len(), 1);

    // An operator's refused requests are audited under the operator, with the problem's name.
    let problem = served
        .replace(Some(&operator), "covid19-unknown", &["pk-priority-1"])
        .await
        .unwrap_err();
    assert_eq!(problem.kind, ProblemKind::NotFound);
    expected.push(row(OPERATOR, "operator", REPLACE_EXCLUSIONS, "not-found"));
    let problem = served
        .replace(Some(&operator), "covid19-18-49", &["pk ok"])
        .await
        .unwrap_err();
    assert_eq!(problem.kind, ProblemKind::InvalidRequest);
    expected.push(row(
        OPERATOR,
        "operator",
        REPLACE_EXCLUSIONS,
        "invalid-request",
    ));
    let mut reversed = round_18_49_message();
    reversed.born_from = "2004-01-01".to_owned();
    let problem = served.upsert(Some(&operator), reversed).await.unwrap_err();
    assert_eq!(problem.kind, ProblemKind::InvalidRequest);
    expected.push(row(
        OPERATOR,
        "operator",
        UPSERT_CAMPAIGN,
        "invalid-request",
    ));
    assert_eq!(
        store
            .exclusion_versions()
            .await
            .unwrap()
            .first()
            .map(|(_, version)| *version),
        Some(1),
        "the list in force is untouched"
    );

    let trail = served.trail();
    let written = entries(&trail).await;
    assert_eq!(summary(&written), expected);
    for entry in &written {
        assert_eq!(entry.record.person_key, None, "{entry:?}");
        let expected_org = if entry.record.role.is_empty() {
            ""
        } else {
            "national-call-center"
        };
        assert_eq!(entry.record.organisation, expected_org, "{entry:?}");
    }
    assert_eq!(
        platform::audit::verify_log(&trail).await.unwrap().unwrap(),
        expected.len() as u64
    );
    served.stop().await;
}

#[tokio::test]
async fn an_accepted_call_whose_entry_cannot_be_written_changes_nothing() {
    let mut served = Served::start("sched_operators_trail_down", Run::Production).await;
    let operator = served.token(StaffRole::Operator, OPERATOR);
    served
        .upsert(Some(&operator), round_18_49_message())
        .await
        .unwrap();

    // The trail's table is out of reach; the campaigns' tables are not.
    let pool = platform::pg::pool(&served.url, 1).unwrap();
    let client = pool.get().await.unwrap();
    client
        .batch_execute("ALTER TABLE audit_log RENAME TO audit_log_away")
        .await
        .unwrap();
    let mut renamed = round_18_49_message();
    renamed.name = "COVID-19 18-49 renamed".to_owned();
    let problem = served
        .upsert(Some(&operator), renamed.clone())
        .await
        .unwrap_err();
    assert_eq!(problem.kind, ProblemKind::Unavailable);
    let problem = served
        .replace(Some(&operator), "covid19-18-49", &["pk-priority-1"])
        .await
        .unwrap_err();
    assert_eq!(problem.kind, ProblemKind::Unavailable);
    let store = served.store();
    let held = store
        .get(&platform::ids::CampaignId::parse("covid19-18-49").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((held.version, held.name.as_str()), (1, "COVID-19 18-49"));
    assert!(store.exclusion_versions().await.unwrap().is_empty());
    // A refusal stays a refusal.
    let problem = served
        .upsert(None, round_18_49_message())
        .await
        .unwrap_err();
    assert_eq!(problem.kind, ProblemKind::StaffTokenRequired);

    client
        .batch_execute("ALTER TABLE audit_log_away RENAME TO audit_log")
        .await
        .unwrap();
    let stored = served.upsert(Some(&operator), renamed).await.unwrap();
    assert_eq!(stored.version, 2);
    let trail = served.trail();
    assert_eq!(
        summary(&entries(&trail).await),
        vec![
            row(OPERATOR, "operator", UPSERT_CAMPAIGN, "ok"),
            row(OPERATOR, "operator", UPSERT_CAMPAIGN, "ok"),
        ]
    );
    assert_eq!(
        platform::audit::verify_log(&trail).await.unwrap().unwrap(),
        2
    );
    served.stop().await;
}

#[tokio::test]
async fn the_dev_key_acts_as_the_dev_operator_in_a_dev_run_only() {
    let mut served = Served::start("sched_operators_dev", Run::Dev).await;
    let stored = served
        .upsert(Some(&OperatorCredential::dev()), round_18_49_message())
        .await
        .unwrap();
    assert_eq!(stored.version, 1);
    let guessed = OperatorCredential::DevKey("vaxbook-guessed-admin".to_owned());
    let problem = served
        .replace(Some(&guessed), "covid19-18-49", &["pk-priority-1"])
        .await
        .unwrap_err();
    assert_eq!(problem.kind, ProblemKind::StaffTokenRequired);
    // Operator tokens work in the dev run too.
    let operator = served.token(StaffRole::Operator, OPERATOR);
    served
        .replace(Some(&operator), "covid19-18-49", &["pk-priority-1"])
        .await
        .unwrap();

    let written = entries(&served.trail()).await;
    assert_eq!(
        summary(&written),
        vec![
            row(
                platform::operator::DEV_OPERATOR,
                "operator",
                UPSERT_CAMPAIGN,
                "ok"
            ),
            row("unknown", "", REPLACE_EXCLUSIONS, "staff-token-required"),
            row(OPERATOR, "operator", REPLACE_EXCLUSIONS, "ok"),
        ]
    );
    assert_eq!(
        written[0].record.organisation,
        platform::operator::DEV_ORGANISATION
    );
    served.stop().await;
}
