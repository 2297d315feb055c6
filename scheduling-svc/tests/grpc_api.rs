//! scheduling-svc over the wire: `serve` on 127.0.0.1:0 with PostgreSQL (a database of its own),
//! an operator credential on UpsertCampaign (here the dev run's key; operator tokens and the
//! audit trail are tests/operators.rs), validation before anything is stored, and eligibility
//! answered over gRPC; plus the dev-run wiring (in-process store, settable clock).

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use platform::clock::SettableClock;
use platform::dev::DevHooks;
use platform::grpc::GrpcChannel as Channel;
use platform::operator::OperatorCredential;
use platform::problem::{Problem, ProblemKind};
use proto::scheduling::v1 as pb;
use proto::scheduling::v1::scheduling_admin_service_client::SchedulingAdminServiceClient;
use proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use scheduling_svc::{CampaignStore, Config, PgCampaignStore, StoreConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

struct Running {
    channel: Channel,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn start(config: Config) -> Self {
        platform::telemetry::init_for_tests();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(scheduling_svc::serve(config, listener, shutdown.clone()));
        let channel =
            platform::grpc::channel(&format!("http://{addr}"), Duration::from_secs(20)).unwrap();
        Self {
            channel,
            shutdown,
            server,
        }
    }

    /// A client asking as booking-svc does: with the internal service credential.
    fn scheduling(&self) -> SchedulingServiceClient<InterceptedService<Channel, AsService>> {
        SchedulingServiceClient::with_interceptor(self.channel.clone(), with_service_key)
    }

    fn admin(&self) -> SchedulingAdminServiceClient<Channel> {
        SchedulingAdminServiceClient::new(self.channel.clone())
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

fn upsert(
    campaign: Option<pb::Campaign>,
    operator: Option<&OperatorCredential>,
) -> tonic::Request<pb::UpsertCampaignRequest> {
    let message = pb::UpsertCampaignRequest { campaign };
    match operator {
        Some(credential) => credential.request(message).unwrap(),
        None => tonic::Request::new(message),
    }
}

fn check(campaign_id: &str, birth_date: &str) -> pb::CheckEligibilityRequest {
    pb::CheckEligibilityRequest {
        campaign_id: campaign_id.to_owned(),
        birth_date: birth_date.to_owned(),
        person_key: "pk-4f1c".to_owned(),
        ..Default::default()
    }
}

type AsService = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

/// Adds the internal service credential (docs/security.md) to every call.
fn with_service_key(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    request.metadata_mut().insert(
        platform::config::SERVICE_KEY_HEADER,
        platform::config::DEV_SERVICE_KEY.parse().unwrap(),
    );
    Ok(request)
}

#[tokio::test]
async fn operators_upsert_over_grpc_and_eligibility_is_answered_from_postgres_backed_state() {
    let url = platform::pg::create_test_database("sched_grpc")
        .await
        .unwrap();
    let clock = Arc::new(SettableClock::starting_at(at("2021-08-13T20:30:00+09:00")));
    let running = Running::start(Config {
        common: platform::config::CommonConfig::local(),
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        store: StoreConfig::Postgres {
            url: platform::config::ConnectionUrl::new(url.clone()),
            max_connections: 4,
        },
        cache_refresh: Duration::from_secs(5),
        auth_url: scheduling_svc::config::DEFAULT_AUTH_URL.to_owned(),
        service_key: platform::config::Secret::new(platform::config::DEV_SERVICE_KEY),
        request_timeout: Duration::from_secs(5),
        dev_mode: false,
        clock: clock.clone(),
    })
    .await;
    let mut admin = running.admin();
    let mut scheduling = running.scheduling();
    // The dev run's operator key: this configuration is `CommonConfig::local()`'s.
    let dev = OperatorCredential::dev();
    for name in scheduling_svc::HEALTH_NAMES {
        wait_serving(running.channel.clone(), name).await;
    }

    // An operator credential guards the admin service.
    let status = admin
        .upsert_campaign(upsert(Some(round_18_49_message()), None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let guessed = OperatorCredential::DevKey("not-the-key".to_owned());
    let status = admin
        .upsert_campaign(upsert(Some(round_18_49_message()), Some(&guessed)))
        .await
        .unwrap_err();
    assert_eq!(
        Problem::from_status(&status).kind,
        ProblemKind::StaffTokenRequired
    );

    // Malformed campaigns are refused, naming the field.
    let mut reversed = round_18_49_message();
    reversed.born_from = "2004-01-01".to_owned();
    let mut bad_id = round_18_49_message();
    bad_id.id = "COVID 18-49".to_owned();
    for (message, field) in [
        (Some(reversed), "born_from"),
        (Some(bad_id), "id"),
        (None, "campaign"),
    ] {
        let status = admin
            .upsert_campaign(upsert(message, Some(&dev)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        let problem = Problem::from_status(&status);
        assert_eq!(problem.kind, ProblemKind::InvalidRequest);
        assert!(problem.detail.starts_with(field), "{}", problem.detail);
    }
    let pool = platform::pg::pool(&url, 2).unwrap();
    let store = PgCampaignStore::new(pool);
    assert!(
        store.list().await.unwrap().is_empty(),
        "nothing refused was stored"
    );
    let listed = scheduling
        .list_campaigns(pb::ListCampaignsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(listed.campaigns.is_empty());

    // A valid campaign is stored and served.
    let stored = admin
        .upsert_campaign(upsert(Some(round_18_49_message()), Some(&dev)))
        .await
        .unwrap()
        .into_inner();
    // Stored as sent, at version 1, with the one open window a campaign without windows gets.
    let as_stored = pb::Campaign::from(&round_18_49().with_version(1));
    assert_eq!(stored, as_stored);
    assert_eq!(
        store.list().await.unwrap(),
        vec![round_18_49().with_version(1)]
    );
    let fetched = scheduling
        .get_campaign(pb::GetCampaignRequest {
            id: "covid19-18-49".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, as_stored);

    let answer = scheduling
        .check_eligibility(check("", "1990-05-05"))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.eligible);
    assert_eq!(answer.campaign_id, "covid19-18-49");
    assert_eq!(answer.reason, "");
    assert_eq!(answer.opens_at, timestamp("2021-08-09T20:00:00+09:00"));
    assert_eq!(answer.closes_at, timestamp("2021-09-18T18:00:00+09:00"));
    assert_eq!(answer.vaccination_from, "2021-08-26");
    assert_eq!(answer.vaccination_to, "2021-10-02");
    assert_eq!(answer.campaign, Some(as_stored.clone()));

    let answer = scheduling
        .check_eligibility(check("covid19-18-49", "1960-02-02"))
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.eligible);
    assert_eq!(answer.reason, "not-in-age-group");
    assert_eq!(answer.campaign_id, "covid19-18-49");

    clock.set(at("2021-09-18T18:00:00+09:00"));
    let answer = scheduling
        .check_eligibility(check("", "1990-05-05"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (answer.eligible, answer.reason.as_str()),
        (false, "campaign-closed")
    );

    // Malformed questions and unknown campaigns.
    for (request, code) in [
        (check("", "1990-5-5"), Code::InvalidArgument),
        (check("", "1990-02-30"), Code::InvalidArgument),
        (
            pb::CheckEligibilityRequest {
                person_key: String::new(),
                ..check("", "1990-05-05")
            },
            Code::InvalidArgument,
        ),
        (check("covid19-unknown", "1990-05-05"), Code::NotFound),
    ] {
        let status = scheduling.check_eligibility(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{}", status.message());
    }
    let status = scheduling
        .get_campaign(pb::GetCampaignRequest {
            id: "covid19-unknown".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(Problem::from_status(&status).kind, ProblemKind::NotFound);
    assert_eq!(status.message(), "no such campaign");

    running.stop().await;
}

#[tokio::test]
async fn the_dev_wiring_serves_from_memory_and_follows_the_settable_clock() {
    let hooks = DevHooks::new(at("2021-08-09T19:00:00+09:00"));
    let clock = hooks.clock.clone();
    let running = Running::start(Config::local_dev(loopback(), &hooks)).await;
    let mut admin = running.admin();
    let mut scheduling = running.scheduling();
    let dev = OperatorCredential::dev();
    for message in [round_18_49_message(), round_60_plus_message()] {
        admin
            .upsert_campaign(upsert(Some(message), Some(&dev)))
            .await
            .unwrap();
    }
    let answer = scheduling
        .check_eligibility(check("", "1990-05-05"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (answer.eligible, answer.reason.as_str()),
        (false, "window-not-open")
    );
    clock.set(at("2021-08-09T20:00:00+09:00"));
    let answer = scheduling
        .check_eligibility(check("", "1990-05-05"))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.eligible);
    let answer = scheduling
        .check_eligibility(check("", "1950-05-05"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (answer.eligible, answer.campaign_id.as_str()),
        (true, "covid19-60-plus")
    );
    let listed = scheduling
        .list_campaigns(pb::ListCampaignsRequest {})
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = listed.campaigns.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["covid19-18-49", "covid19-60-plus"]);
    running.stop().await;
}

#[tokio::test]
async fn production_refuses_the_in_process_store() {
    let mut config = Config::local_dev(loopback(), &DevHooks::new(chrono::Utc::now()));
    config.dev_mode = false;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = scheduling_svc::serve(config, listener, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("only for `vaxbook dev`"), "{err}");
}
