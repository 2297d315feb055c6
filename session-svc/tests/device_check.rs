//! `CheckDevice` over gRPC against real Redis: auth-svc asks, before it sends any challenge,
//! whether a claim by this device would be refused (R3) and for how long. The answer follows
//! the claim exactly, asking never blocks a device or touches a lock, and only auth-svc's
//! device-check grant for that person and device is accepted (not a device proof, not an
//! access token, not another person's grant). Refusals are counted in
//! `refused_internal_calls_total`.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use platform::auth::Role;
use platform::clock::{Clock, SettableClock};
use platform::device_check::{DEVICE_CHECK_TTL, DeviceCheck};
use platform::grants::GrantIssuer;
use platform::problem::{Problem, ProblemKind};
use platform::trust::AuthStandIn;
use proto::session::v1 as pb;
use proto::session::v1::device_check_service_client::DeviceCheckServiceClient;
use proto::session::v1::session_service_client::SessionServiceClient;
use session_svc::{Config, StoreConfig};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;

struct Running {
    sessions: SessionServiceClient<Channel>,
    checks: DeviceCheckServiceClient<Channel>,
    auth: AuthStandIn,
    clock: Arc<SettableClock>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start() -> Running {
    platform::telemetry::init_for_tests();
    let _ = platform::metrics::handle();
    let auth = AuthStandIn::start().await.unwrap();
    let clock = Arc::new(SettableClock::starting_at(
        DateTime::parse_from_rfc3339("2021-08-09T20:00:00+09:00")
            .unwrap()
            .with_timezone(&Utc),
    ));
    let hooks = platform::dev::DevHooks::new(Utc::now());
    let mut config = Config::local_dev(SocketAddr::from(([127, 0, 0, 1], 0)), &hooks);
    config.clock = clock.clone();
    config.auth_url = auth.url.clone();
    config.store = StoreConfig::Redis {
        url: platform::config::ConnectionUrl::new(platform::config::string(
            "VAXBOOK_TEST_REDIS_URL",
            platform::redis_conn::DEFAULT_REDIS_URL,
        )),
        key_prefix: platform::redis_conn::test_prefix("session-check"),
    };
    config.dev_mode = false;
    // Production shape: session-svc signs its admission grants with a key of its own.
    let key_file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "session-check-key-{}.pem",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&key_file, platform::grants::generate_pem().unwrap()).unwrap();
    config.signing_key_file = Some(key_file);
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
    Running {
        sessions: SessionServiceClient::new(channel.clone()),
        checks: DeviceCheckServiceClient::new(channel),
        auth,
        clock,
        shutdown,
        server,
    }
}

impl Running {
    fn grant(&self, person: &str, device: &str) -> String {
        GrantIssuer::new(self.auth.keys.clone())
            .issue(
                &DeviceCheck {
                    sub: person.to_owned(),
                    dev: device.to_owned(),
                },
                self.clock.now(),
                DEVICE_CHECK_TTL,
            )
            .unwrap()
            .token
    }

    async fn check_with(
        &self,
        person: &str,
        device: &str,
        grant: &str,
    ) -> Result<pb::CheckDeviceResponse, tonic::Status> {
        self.checks
            .clone()
            .check_device(pb::CheckDeviceRequest {
                person_key: person.to_owned(),
                device_id: device.to_owned(),
                device_check: grant.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// `Some(seconds)` when a claim would be refused, `None` when it would be granted.
    async fn check(&self, person: &str, device: &str) -> Option<u64> {
        let answer = self
            .check_with(person, device, &self.grant(person, device))
            .await
            .unwrap();
        answer.refused.then_some(answer.retry_after_seconds)
    }

    async fn claim(&self, person: &str, device: &str) -> Result<String, tonic::Status> {
        let proof = self.auth.proof(person, device, self.clock.now()).unwrap();
        self.sessions
            .clone()
            .claim_device(pb::ClaimDeviceRequest {
                person_key: person.to_owned(),
                device_id: device.to_owned(),
                device_proof: proof,
            })
            .await
            .map(|response| response.into_inner().session_id)
    }

    fn advance(&self, seconds: i64) {
        self.clock
            .set(self.clock.now() + chrono::Duration::seconds(seconds));
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.server.await.unwrap().unwrap();
    }
}

fn person() -> String {
    format!("pk-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn the_check_answers_what_a_claim_would_without_blocking_anyone() {
    let running = start().await;
    let alice = person();
    assert_eq!(running.check(&alice, "pc-1").await, None);
    running.claim(&alice, "pc-1").await.unwrap();
    assert_eq!(running.check(&alice, "pc-1").await, None);

    // Another device would be blocked for the whole block duration (600 s in the dev config).
    for _ in 0..3 {
        assert_eq!(running.check(&alice, "phone-1").await, Some(600));
    }
    // Asking blocked nothing: the claim itself is the first to block the phone (a fresh
    // `locked`, not an earlier `blocked` with less time left).
    running.advance(100);
    let refused = running.claim(&alice, "phone-1").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let problem = Problem::from_status(&refused);
    assert_eq!(problem.kind, ProblemKind::DeviceLocked);
    assert_eq!(
        problem.retry_after,
        Some(std::time::Duration::from_secs(600))
    );
    // Now the phone is blocked, and the check tells the block's rest.
    running.advance(250);
    assert_eq!(running.check(&alice, "phone-1").await, Some(350));
    // The holder is not disturbed by any of it.
    assert_eq!(running.check(&alice, "pc-1").await, None);
    running.stop().await;
}

#[tokio::test]
async fn only_auth_svcs_check_grant_for_this_person_and_device_is_answered() {
    let running = start().await;
    let now = running.clock.now();
    let alice = person();
    let mallory = person();
    let refuse = |status: tonic::Status, detail: &str| {
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        let problem = Problem::from_status(&status);
        assert_eq!(problem.kind, ProblemKind::Unauthenticated);
        assert!(problem.detail.contains(detail), "{}", problem.detail);
    };

    refuse(
        running.check_with(&alice, "pc-1", "").await.unwrap_err(),
        "device-check grant",
    );
    let mallorys = running.grant(&mallory, "pc-1");
    refuse(
        running
            .check_with(&alice, "pc-1", &mallorys)
            .await
            .unwrap_err(),
        "another person or device",
    );
    let other_device = running.grant(&alice, "phone-9");
    refuse(
        running
            .check_with(&alice, "pc-1", &other_device)
            .await
            .unwrap_err(),
        "another person or device",
    );
    // A device proof is another kind of grant, and an access token is no grant at all.
    let proof = running.auth.proof(&alice, "pc-1", now).unwrap();
    refuse(
        running
            .check_with(&alice, "pc-1", &proof)
            .await
            .unwrap_err(),
        "device-check",
    );
    let token = running
        .auth
        .token(Role::Citizen, &alice, "1990-01-01", "s-1", "pc-1", now)
        .unwrap();
    refuse(
        running
            .check_with(&alice, "pc-1", &token)
            .await
            .unwrap_err(),
        "not a vaxbook grant",
    );
    // A grant signed by a key auth-svc does not publish, and an expired one.
    let stranger = AuthStandIn::start().await.unwrap();
    let forged = GrantIssuer::new(stranger.keys.clone())
        .issue(
            &DeviceCheck {
                sub: alice.clone(),
                dev: "pc-1".to_owned(),
            },
            now,
            DEVICE_CHECK_TTL,
        )
        .unwrap()
        .token;
    refuse(
        running
            .check_with(&alice, "pc-1", &forged)
            .await
            .unwrap_err(),
        "unknown key",
    );
    let old = running.grant(&alice, "pc-1");
    running.advance(31);
    refuse(
        running.check_with(&alice, "pc-1", &old).await.unwrap_err(),
        "expired",
    );
    // A valid grant is answered, and may be presented again (the check changes nothing).
    let fresh = running.grant(&alice, "pc-1");
    for _ in 0..2 {
        let answer = running.check_with(&alice, "pc-1", &fresh).await.unwrap();
        assert!(!answer.refused);
    }

    let rendered = platform::metrics::handle().render();
    for reason in ["no-credential", "invalid-grant", "wrong-subject"] {
        let series = format!(
            "refused_internal_calls_total{{service=\"session-svc\",rpc=\"CheckDevice\",reason=\"{reason}\"}}"
        );
        assert!(rendered.contains(&series), "{series} missing:\n{rendered}");
    }
    running.stop().await;
}
