//! session-svc trusts no caller (docs/security.md), against real Redis over gRPC: a device
//! claims a person's lock only with auth-svc's fresh, single-use device proof for that person
//! and device, and a session is released only with its own access token. Every refusal is
//! counted in `refused_internal_calls_total`.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use platform::auth::Role;
use platform::clock::{Clock, SettableClock};
use platform::problem::{Problem, ProblemKind};
use proto::session::v1 as pb;
use proto::session::v1::session_service_client::SessionServiceClient;
use session_svc::{Config, StoreConfig};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;

use platform::trust::{AuthStandIn, with_bearer};

struct Running {
    client: SessionServiceClient<Channel>,
    auth: AuthStandIn,
    clock: Arc<SettableClock>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn start_instant() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2021-08-09T20:00:00+09:00")
        .unwrap()
        .with_timezone(&Utc)
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

async fn start() -> Running {
    start_with(AuthStandIn::start().await.unwrap()).await
}

async fn start_with(auth: AuthStandIn) -> Running {
    platform::telemetry::init_for_tests();
    let _ = platform::metrics::handle();
    let clock = Arc::new(SettableClock::starting_at(start_instant()));
    let hooks = platform::dev::DevHooks::new(Utc::now());
    let mut config = Config::local_dev(SocketAddr::from(([127, 0, 0, 1], 0)), &hooks);
    config.clock = clock.clone();
    config.auth_url = auth.url.clone();
    config.store = StoreConfig::Redis {
        url: platform::config::ConnectionUrl::new(platform::config::string(
            "VAXBOOK_TEST_REDIS_URL",
            platform::redis_conn::DEFAULT_REDIS_URL,
        )),
        key_prefix: platform::redis_conn::test_prefix("session-trust"),
    };
    config.dev_mode = false;
    config.signing_key_file = Some(signing_key_file());
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
        client: SessionServiceClient::new(channel),
        auth,
        clock,
        shutdown,
        server,
    }
}

impl Running {
    async fn claim_with(
        &self,
        person: &str,
        device: &str,
        proof: &str,
    ) -> Result<pb::ClaimDeviceResponse, tonic::Status> {
        self.client
            .clone()
            .claim_device(pb::ClaimDeviceRequest {
                person_key: person.to_owned(),
                device_id: device.to_owned(),
                device_proof: proof.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    async fn release_with(
        &self,
        person: &str,
        session: &str,
        token: Option<&str>,
    ) -> Result<bool, tonic::Status> {
        let message = pb::ReleaseSessionRequest {
            person_key: person.to_owned(),
            session_id: session.to_owned(),
        };
        let request = match token {
            Some(token) => with_bearer(message, token).unwrap(),
            None => tonic::Request::new(message),
        };
        self.client
            .clone()
            .release_session(request)
            .await
            .map(|response| response.into_inner().released)
    }

    async fn holds(&self, person: &str, session: &str, device: &str) -> bool {
        self.client
            .clone()
            .validate_session(pb::ValidateSessionRequest {
                person_key: person.to_owned(),
                session_id: session.to_owned(),
                device_id: device.to_owned(),
                fence: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .valid
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.server.await.unwrap().unwrap();
    }
}

fn person() -> String {
    format!("pk-{}", uuid::Uuid::new_v4().simple())
}

fn assert_unauthenticated(status: &tonic::Status, detail: &str) {
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let problem = Problem::from_status(status);
    assert_eq!(problem.kind, ProblemKind::Unauthenticated);
    assert!(problem.detail.contains(detail), "{}", problem.detail);
}

#[tokio::test]
async fn claim_device_needs_a_fresh_proof_for_this_person_and_device() {
    let running = start().await;
    let now = running.clock.now();
    let alice = person();
    let mallory = person();

    // No proof at all.
    let refused = running.claim_with(&alice, "pc-1", "").await.unwrap_err();
    assert_unauthenticated(&refused, "device proof");
    // Not a grant.
    let refused = running
        .claim_with(&alice, "pc-1", "not.a.grant")
        .await
        .unwrap_err();
    assert_unauthenticated(&refused, "device-proof");
    // Another person's proof, and a proof for another device.
    let mallorys = running.auth.proof(&mallory, "pc-1", now).unwrap();
    let refused = running
        .claim_with(&alice, "pc-1", &mallorys)
        .await
        .unwrap_err();
    assert_unauthenticated(&refused, "another person or device");
    let other_device = running.auth.proof(&alice, "phone-9", now).unwrap();
    let refused = running
        .claim_with(&alice, "pc-1", &other_device)
        .await
        .unwrap_err();
    assert_unauthenticated(&refused, "another person or device");
    // A proof signed by a key auth-svc does not publish.
    let stranger = AuthStandIn::start().await.unwrap();
    let forged = stranger.proof(&alice, "pc-1", now).unwrap();
    let refused = running
        .claim_with(&alice, "pc-1", &forged)
        .await
        .unwrap_err();
    assert_unauthenticated(&refused, "unknown key");
    // An access token is not a device proof.
    let token = running
        .auth
        .token(Role::Citizen, &alice, "1990-01-01", "s-1", "pc-1", now)
        .unwrap();
    let refused = running
        .claim_with(&alice, "pc-1", &token)
        .await
        .unwrap_err();
    assert_unauthenticated(&refused, "not a vaxbook grant");
    // An expired proof.
    let old = running.auth.proof(&alice, "pc-1", now).unwrap();
    running.clock.set(now + chrono::Duration::seconds(31));
    let refused = running.claim_with(&alice, "pc-1", &old).await.unwrap_err();
    assert_unauthenticated(&refused, "expired");
    // None of the refusals touched the lock: a valid proof is granted, once.
    let now = running.clock.now();
    let fresh = running.auth.proof(&alice, "pc-1", now).unwrap();
    let granted = running.claim_with(&alice, "pc-1", &fresh).await.unwrap();
    assert!(running.holds(&alice, &granted.session_id, "pc-1").await);
    let replayed = running
        .claim_with(&alice, "pc-1", &fresh)
        .await
        .unwrap_err();
    assert_unauthenticated(&replayed, "already used");
    // The replay did not replace the session.
    assert!(running.holds(&alice, &granted.session_id, "pc-1").await);

    let rendered = platform::metrics::handle().render();
    for reason in [
        "no-credential",
        "invalid-proof",
        "wrong-subject",
        "replayed-proof",
    ] {
        let series = format!(
            "refused_internal_calls_total{{service=\"session-svc\",rpc=\"ClaimDevice\",reason=\"{reason}\"}}"
        );
        assert!(rendered.contains(&series), "{series} missing:\n{rendered}");
    }
    running.stop().await;
}

#[tokio::test]
async fn release_session_needs_that_sessions_token() {
    let running = start().await;
    let now = running.clock.now();
    let alice = person();
    let bob = person();
    let proof = running.auth.proof(&alice, "pc-1", now).unwrap();
    let session = running
        .claim_with(&alice, "pc-1", &proof)
        .await
        .unwrap()
        .session_id;
    let bobs_proof = running.auth.proof(&bob, "pc-2", now).unwrap();
    let bobs_session = running
        .claim_with(&bob, "pc-2", &bobs_proof)
        .await
        .unwrap()
        .session_id;

    // Knowing the person key and the session id is not enough.
    let refused = running
        .release_with(&alice, &session, None)
        .await
        .unwrap_err();
    assert_unauthenticated(&refused, "access token is required");
    let refused = running
        .release_with(&alice, &session, Some("garbage"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    // Another session's token (bob's), and alice's token of an earlier session.
    let bobs_token = running
        .auth
        .token(
            Role::Citizen,
            &bob,
            "1990-01-01",
            &bobs_session,
            "pc-2",
            now,
        )
        .unwrap();
    let refused = running
        .release_with(&alice, &session, Some(&bobs_token))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(Problem::from_status(&refused).kind, ProblemKind::Forbidden);
    let earlier = running
        .auth
        .token(
            Role::Citizen,
            &alice,
            "1990-01-01",
            "an-earlier-session",
            "pc-1",
            now,
        )
        .unwrap();
    let refused = running
        .release_with(&alice, &session, Some(&earlier))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    // Agents cannot release citizens' sessions (yet).
    let agent = running
        .auth
        .token(Role::Agent, &alice, "1990-01-01", &session, "pc-1", now)
        .unwrap();
    let refused = running
        .release_with(&alice, &session, Some(&agent))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    // A grant is not an access token.
    let refused = running
        .release_with(&alice, &session, Some(&proof))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    // Nothing was released by the refusals.
    assert!(running.holds(&alice, &session, "pc-1").await);
    assert!(running.holds(&bob, &bobs_session, "pc-2").await);

    // The session's own token releases it.
    let token = running
        .auth
        .token(Role::Citizen, &alice, "1990-01-01", &session, "pc-1", now)
        .unwrap();
    assert!(
        running
            .release_with(&alice, &session, Some(&token))
            .await
            .unwrap()
    );
    assert!(!running.holds(&alice, &session, "pc-1").await);
    assert!(running.holds(&bob, &bobs_session, "pc-2").await);

    let rendered = platform::metrics::handle().render();
    for reason in ["no-credential", "invalid-token", "wrong-session"] {
        let series = format!(
            "refused_internal_calls_total{{service=\"session-svc\",rpc=\"ReleaseSession\",reason=\"{reason}\"}}"
        );
        assert!(rendered.contains(&series), "{series} missing:\n{rendered}");
    }
    running.stop().await;
}

#[tokio::test]
async fn keys_from_a_publisher_that_is_not_auth_svc_verify_nothing() {
    // VAXBOOK_AUTH_URL pointed at another service's KeysService: its key must not make its
    // grants pass as auth-svc's. The claim fails as "keys unavailable", and the lock is free.
    let impostor = AuthStandIn::start_publishing_as("vaxbook-booking")
        .await
        .unwrap();
    let running = start_with(impostor).await;
    let alice = person();
    let proof = running
        .auth
        .proof(&alice, "pc-1", running.clock.now())
        .unwrap();
    let refused = running
        .claim_with(&alice, "pc-1", &proof)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    running.stop().await;
}
