//! The whole service over real gRPC: `serve` on 127.0.0.1:0 with the Redis store (own key
//! prefix) or, in dev mode, the in-process store and a settable clock; a tonic client calls it
//! with the credentials auth-svc would hand out (a stand-in publishing a real key).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::auth::Role;
use platform::clock::{Clock, SettableClock};
use platform::problem::{Problem, ProblemKind};
use proto::session::v1 as pb;
use proto::session::v1::session_service_client::SessionServiceClient;
use session_svc::{Config, StoreConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use platform::trust::{AuthStandIn, with_bearer};

struct Running {
    client: SessionServiceClient<Channel>,
    channel: Channel,
    auth: AuthStandIn,
    clock: platform::clock::SharedClock,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        self.server.await.unwrap().unwrap();
    }
}

async fn start(mut config: Config) -> Running {
    platform::telemetry::init_for_tests();
    let auth = AuthStandIn::start().await.unwrap();
    config.auth_url = auth.url.clone();
    // Install the process's metrics recorder before any counter is touched.
    let _ = platform::metrics::handle();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let clock = config.clock.clone();
    let server = tokio::spawn(session_svc::serve(config, listener, shutdown.clone()));
    // The listener is already bound, so the connection waits in the backlog until serving.
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Running {
        client: SessionServiceClient::new(channel.clone()),
        channel,
        auth,
        clock,
        shutdown,
        server,
    }
}

/// The dev run's configuration (`Config::local_dev`) with the test's own clock.
fn local_dev_with(clock: Arc<SettableClock>) -> Config {
    let hooks = platform::dev::DevHooks::new(Utc::now());
    let mut config = Config::local_dev(SocketAddr::from(([127, 0, 0, 1], 0)), &hooks);
    config.clock = clock;
    config
}

fn redis_config(clock: Arc<SettableClock>) -> Config {
    let mut config = local_dev_with(clock);
    config.store = StoreConfig::Redis {
        url: platform::config::ConnectionUrl::new(platform::config::string(
            "VAXBOOK_TEST_REDIS_URL",
            platform::redis_conn::DEFAULT_REDIS_URL,
        )),
        key_prefix: platform::redis_conn::test_prefix("session-grpc"),
    };
    config.dev_mode = false;
    config.signing_key_file = Some(signing_key_file());
    config
}

/// A signing key for admission grants in a file of its own: production configurations need one.
fn signing_key_file() -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "session-signing-{}.pem",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, platform::grants::generate_pem().unwrap()).unwrap();
    path
}

fn start_instant() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2021-08-09T20:00:00+09:00")
        .unwrap()
        .with_timezone(&Utc)
}

fn person_key() -> String {
    format!("pk-{}", uuid::Uuid::new_v4().simple())
}

/// Claims with the device proof auth-svc would issue after a verification on that device.
async fn claim(
    running: &Running,
    person_key: &str,
    device_id: &str,
) -> Result<pb::ClaimDeviceResponse, tonic::Status> {
    running
        .client
        .clone()
        .claim_device(pb::ClaimDeviceRequest {
            person_key: person_key.to_owned(),
            device_id: device_id.to_owned(),
            device_proof: running
                .auth
                .proof(person_key, device_id, running.clock.now())
                .unwrap(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn validate(
    running: &Running,
    person_key: &str,
    session_id: &str,
    device_id: &str,
) -> Result<bool, tonic::Status> {
    running
        .client
        .clone()
        .validate_session(pb::ValidateSessionRequest {
            person_key: person_key.to_owned(),
            session_id: session_id.to_owned(),
            device_id: device_id.to_owned(),
            fence: 0,
        })
        .await
        .map(|response| response.into_inner().valid)
}

/// Releases with the access token of that session.
async fn release(
    running: &Running,
    person_key: &str,
    session_id: &str,
) -> Result<bool, tonic::Status> {
    let token = running
        .auth
        .token(
            Role::Citizen,
            person_key,
            "1990-01-01",
            session_id,
            "pc-1",
            running.clock.now(),
        )
        .unwrap();
    running
        .client
        .clone()
        .release_session(
            with_bearer(
                pb::ReleaseSessionRequest {
                    person_key: person_key.to_owned(),
                    session_id: session_id.to_owned(),
                },
                &token,
            )
            .unwrap(),
        )
        .await
        .map(|response| response.into_inner().released)
}

#[tokio::test]
async fn one_device_per_person_over_grpc_with_redis() {
    let clock = Arc::new(SettableClock::starting_at(start_instant()));
    let running = start(redis_config(clock.clone())).await;

    // Readiness pings Redis: the service's health name turns SERVING once Redis answered.
    // The name is registered by the first probe, so ask until it is (each ask is a round trip).
    let mut health = HealthClient::new(running.channel.clone());
    let serving = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let answer = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: session_svc::HEALTH_NAME.to_owned(),
                })
                .await;
            match answer {
                Ok(response) if response.get_ref().status == ServingStatus::Serving as i32 => {
                    break;
                }
                Ok(_) => {}
                Err(status) => assert_eq!(status.code(), Code::NotFound, "{status:?}"),
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(serving.is_ok(), "session-svc never reported SERVING");

    let person = person_key();
    let granted = claim(&running, &person, "pc-1").await.unwrap();
    let expires_at = platform::clock::from_timestamp(&granted.expires_at.unwrap()).unwrap();
    let expected_expiry = clock.now() + chrono::Duration::seconds(1200);
    assert!((expires_at - expected_expiry).num_seconds().abs() <= 5);
    assert!(
        validate(&running, &person, &granted.session_id, "pc-1")
            .await
            .unwrap()
    );
    assert!(
        !validate(&running, &person, &granted.session_id, "phone-1")
            .await
            .unwrap()
    );

    let refused = claim(&running, &person, "phone-1").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let problem = Problem::from_status(&refused);
    assert_eq!(problem.kind, ProblemKind::DeviceLocked);
    assert_eq!(problem.retry_after, Some(Duration::from_secs(600)));
    assert_eq!(
        problem.extra.get("retry_after").map(String::as_str),
        Some("600")
    );
    assert_eq!(
        refused.message(),
        "this identity is in use on another device"
    );
    // The holder is not disturbed by the refused device.
    assert!(
        validate(&running, &person, &granted.session_id, "pc-1")
            .await
            .unwrap()
    );

    // Malformed input: InvalidArgument naming the field, and nothing changes.
    let other_person = person_key();
    let bad_device = claim(&running, &other_person, "phone 1").await.unwrap_err();
    assert_eq!(bad_device.code(), Code::InvalidArgument);
    assert!(bad_device.message().contains("device_id"));
    let bad_person = claim(&running, "", "pc-1").await.unwrap_err();
    assert_eq!(bad_person.code(), Code::InvalidArgument);
    assert!(bad_person.message().contains("person_key"));
    let long_session = "s".repeat(65);
    let bad_session = validate(&running, &person, &long_session, "pc-1")
        .await
        .unwrap_err();
    assert_eq!(bad_session.code(), Code::InvalidArgument);
    let bad_release = release(&running, &person, "").await.unwrap_err();
    assert_eq!(bad_release.code(), Code::InvalidArgument);
    assert!(
        validate(&running, &person, &granted.session_id, "pc-1")
            .await
            .unwrap()
    );
    claim(&running, &other_person, "phone-1").await.unwrap();

    // Only the holding session frees the lock.
    assert!(!release(&running, &person, "not-the-session").await.unwrap());
    assert!(
        release(&running, &person, &granted.session_id)
            .await
            .unwrap()
    );
    assert!(
        !validate(&running, &person, &granted.session_id, "pc-1")
            .await
            .unwrap()
    );
    assert!(
        !release(&running, &person, &granted.session_id)
            .await
            .unwrap()
    );

    let rendered = platform::metrics::handle().render();
    assert!(
        rendered.contains("session_claims_total{outcome=\"granted\"}"),
        "{rendered}"
    );
    assert!(
        rendered.contains("session_claims_total{outcome=\"locked\"}"),
        "{rendered}"
    );
    assert!(
        rendered.contains("session_validations_total{valid=\"true\"}"),
        "{rendered}"
    );
    assert!(
        rendered.contains("session_validations_total{valid=\"false\"}"),
        "{rendered}"
    );

    running.stop().await;
}

#[tokio::test]
async fn the_dev_run_follows_the_settable_clock() {
    let clock = Arc::new(SettableClock::starting_at(start_instant()));
    let mut config = local_dev_with(clock.clone());
    config.block_duration = Duration::from_secs(60);
    config.session_ttl = Duration::from_secs(120);
    let running = start(config).await;

    let person = person_key();
    let pc = claim(&running, &person, "pc-1").await.unwrap();
    let refused = claim(&running, &person, "phone-1").await.unwrap_err();
    assert_eq!(
        Problem::from_status(&refused).retry_after,
        Some(Duration::from_secs(60))
    );

    clock.set(start_instant() + chrono::Duration::seconds(30));
    let still_blocked = claim(&running, &person, "phone-1").await.unwrap_err();
    let wait = Problem::from_status(&still_blocked).retry_after.unwrap();
    // 30 s of the 60 s block are left (plus the instant the first claim took, rounded up).
    assert!(
        wait <= Duration::from_secs(31) && wait >= Duration::from_secs(25),
        "{wait:?}"
    );

    // Past the block and the holder's session: the phone gets the lock, the PC's session ends.
    clock.set(start_instant() + chrono::Duration::seconds(121));
    let phone = claim(&running, &person, "phone-1").await.unwrap();
    assert!(
        validate(&running, &person, &phone.session_id, "phone-1")
            .await
            .unwrap()
    );
    assert!(
        !validate(&running, &person, &pc.session_id, "pc-1")
            .await
            .unwrap()
    );

    running.stop().await;
}

#[tokio::test]
async fn serve_refuses_the_in_process_store_outside_the_dev_run() {
    let mut config = local_dev_with(Arc::new(SettableClock::new()));
    config.dev_mode = false;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let error = session_svc::serve(config, listener, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("only for `vaxbook dev`"),
        "{error}"
    );
}
