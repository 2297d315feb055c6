//! Redis trouble (R4): session-svc on a Redis of its own (a dedicated `redis-server` on a free
//! loopback port — never the shared one) under a steady load of ticket takes and claims. When
//! that Redis stops, every call is answered within a bounded time with `overloaded` and a
//! `RetryInfo` — never a hang; when it comes back, new sessions and tickets work again. What
//! happens to live sessions is the documented choice (session-svc/README.md): this Redis keeps
//! nothing on disk, so the sessions it held are gone and their people verify again.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use platform::auth::Role;
use platform::clock::{Clock as _, SettableClock};
use platform::problem::{Problem, ProblemKind};
use platform::trust::{AuthStandIn, with_bearer};
use proto::session::v1 as pb;
use proto::session::v1::queue_service_client::QueueServiceClient;
use proto::session::v1::session_service_client::SessionServiceClient;
use session_svc::{Config, StoreConfig};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// The longest any call may take while Redis is down.
const BOUND: Duration = Duration::from_secs(2);

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn start_redis(port: u16) -> Child {
    let mut child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed for this test");
    // Wait until it answers.
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the dedicated redis-server did not start");
}

struct Stack {
    channel: Channel,
    auth: AuthStandIn,
    clock: Arc<SettableClock>,
    shutdown: CancellationToken,
}

async fn start_session_svc(port: u16) -> Stack {
    platform::telemetry::init_for_tests();
    let auth = AuthStandIn::start().await.unwrap();
    let clock = Arc::new(SettableClock::new());
    let hooks = platform::dev::DevHooks::new(Utc::now());
    let mut config = Config::local_dev(SocketAddr::from(([127, 0, 0, 1], 0)), &hooks);
    config.clock = clock.clone();
    config.auth_url = auth.url.clone();
    config.store = StoreConfig::Redis {
        url: platform::config::ConnectionUrl::new(format!("redis://127.0.0.1:{port}")),
        key_prefix: "vaxbook:trouble:".to_owned(),
    };
    config.store_timeout = Duration::from_millis(250);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(session_svc::serve(config, listener, shutdown.clone()));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Stack {
        channel,
        auth,
        clock,
        shutdown,
    }
}

impl Stack {
    async fn claim(&self, person: &str, device: &str) -> Result<String, tonic::Status> {
        let now = self.clock.now();
        let proof = self.auth.proof(person, device, now).unwrap();
        let granted = SessionServiceClient::new(self.channel.clone())
            .claim_device(pb::ClaimDeviceRequest {
                person_key: person.to_owned(),
                device_id: device.to_owned(),
                device_proof: proof,
            })
            .await?
            .into_inner();
        Ok(self
            .auth
            .token(
                Role::Citizen,
                person,
                "1990-01-13",
                &granted.session_id,
                device,
                now,
            )
            .unwrap())
    }

    async fn take(&self, token: &str) -> Result<pb::TicketStatus, tonic::Status> {
        QueueServiceClient::new(self.channel.clone())
            .take_ticket(with_bearer(pb::TakeTicketRequest::default(), token).unwrap())
            .await
            .map(tonic::Response::into_inner)
    }
}

fn assert_overloaded(status: &tonic::Status, took: Duration) {
    assert!(took < BOUND, "answered after {took:?}");
    let problem = Problem::from_status(status);
    assert!(
        matches!(
            problem.kind,
            ProblemKind::Overloaded | ProblemKind::Unavailable
        ),
        "{status:?}"
    );
    assert!(problem.retry_after.is_some(), "a retry hint: {status:?}");
}

#[tokio::test]
async fn redis_stopping_under_load_is_a_bounded_overloaded_and_its_return_heals() {
    let port = free_port();
    let mut redis = start_redis(port);
    let stack = start_session_svc(port).await;

    // Load: people claiming sessions and taking tickets, as fast as they can.
    let mut tokens = Vec::new();
    for n in 0..10 {
        let person = format!("pk-trouble-{n}");
        tokens.push((person.clone(), stack.claim(&person, "pc-1").await.unwrap()));
    }
    for (_, token) in &tokens {
        stack.take(token).await.unwrap();
    }

    // Redis stops under the load.
    redis.kill().unwrap();
    redis.wait().unwrap();
    for (n, (_, token)) in tokens.iter().enumerate() {
        let started = Instant::now();
        let refused = stack.take(token).await.unwrap_err();
        assert_overloaded(&refused, started.elapsed());
        let started = Instant::now();
        let refused = stack
            .claim(&format!("pk-newcomer-{n}"), "phone-1")
            .await
            .unwrap_err();
        assert_overloaded(&refused, started.elapsed());
    }

    // Redis comes back (empty: it kept nothing on disk).
    let mut redis = start_redis(port);
    let mut healed = false;
    for _ in 0..50 {
        if let Ok(token) = stack.claim("pk-after", "pc-1").await {
            let ticket = stack.take(&token).await.unwrap();
            assert!(!ticket.ticket.is_empty());
            healed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healed, "session-svc works again once Redis is back");
    // The sessions Redis held before are gone: their holders verify again.
    let (_, old_token) = &tokens[0];
    let status = stack.take(old_token).await.unwrap_err();
    assert_eq!(
        Problem::from_status(&status).kind,
        ProblemKind::SessionExpired
    );

    stack.shutdown.cancel();
    redis.kill().unwrap();
    redis.wait().unwrap();
}
