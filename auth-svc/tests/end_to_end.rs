//! auth-svc as deployed (see `common`): the phone flow end to end. The one-time code is read
//! from the SMS outbox stream, as the SMS relay would.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use auth_svc::{Config, SmsConfig, StoreConfig};
use common::*;
use futures::StreamExt as _;
use platform::auth::{GrpcJwksSource, Role, TokenVerifier};
use platform::clock::SystemClock;
use platform::dev::DevIdentityProviders;
use platform::problem::ProblemKind;
use proto::auth::v1::auth_service_client::AuthServiceClient;
use proto::auth::v1::{
    CompleteVerificationRequest, GetJwksRequest, Provider, StartVerificationRequest,
};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::Code;

#[tokio::test]
async fn a_person_verifies_by_phone_and_gets_a_token_other_services_accept() {
    let running = start_everything("auth-e2e-ok").await;
    let started = running.start(start_request("phone-a")).await.unwrap();
    assert_eq!(started.masked_phone, "010-****-5678");
    assert_eq!(started.otp_length, 6);
    assert_eq!(started.provider, i32::from(Provider::Phone));
    assert!(uuid::Uuid::parse_str(&started.verification_id).is_ok());

    let sms = running.outbox().await;
    assert_eq!(sms.len(), 1);
    let otp = sms[0]["otp"].clone();
    assert_eq!(
        sms[0]["body"],
        format!("[vaxbook] 인증번호 {otp} (3분 이내 입력)")
    );
    assert!(sms[0]["sent_at"].ends_with("+09:00"));
    // The challenge is stored without the code, the RRN, the phone or the name in clear.
    let keys = running.challenge_keys().await;
    assert_eq!(keys.len(), 1);
    let stored: String = redis::cmd("GET")
        .arg(&keys[0])
        .query_async(&mut running.redis.clone())
        .await
        .unwrap();
    for secret in [otp.as_str(), "1234567", "850919", "5678", "길"] {
        assert!(
            !stored.contains(secret),
            "challenge contains {secret}: {stored}"
        );
    }

    let done = running
        .complete(&started.verification_id, &otp, "phone-a")
        .await
        .unwrap();
    assert_eq!(done.token_type, "Bearer");
    assert_eq!(done.masked_name, "홍*동");
    assert!(
        (1190..=1200).contains(&done.expires_in),
        "{}",
        done.expires_in
    );
    let session = done.session.unwrap();
    assert_eq!(session.device_id, "phone-a");
    assert!(running.challenge_keys().await.is_empty());

    let verifier = TokenVerifier::new(
        Arc::new(GrpcJwksSource::new(running.channel.clone())),
        Arc::new(SystemClock),
    );
    let claims = verifier.verify(&done.access_token).await.unwrap();
    let claimed = running.sessions.claims.lock().unwrap().clone();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claims.sub, claimed[0].person_key);
    assert_eq!(claimed[0].device_id, "phone-a");
    assert!(!claims.sub.contains("1234567"));
    assert_eq!(claims.sid, session.id);
    assert_eq!(claims.dev, "phone-a");
    assert_eq!(claims.bd, "1985-09-19");
    assert_eq!(claims.role, Role::Citizen);

    let jwks = platform::auth::jwks_from_wire(
        running
            .client
            .clone()
            .get_jwks(GetJwksRequest {})
            .await
            .unwrap()
            .into_inner()
            .keys,
    );
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(jwks.keys[0].kty, "OKP");
    assert_eq!(jwks.keys[0].crv, "Ed25519");
    running.stop().await;
}

#[tokio::test]
async fn a_wrong_code_fails_and_a_used_verification_is_expired() {
    let running = start_everything("auth-e2e-wrong").await;
    let started = running.start(start_request("phone-a")).await.unwrap();
    let otp = running.latest_otp().await;
    let wrong = format!("{:06}", (otp.parse::<u32>().unwrap() + 1) % 1_000_000);

    let status = running
        .complete(&started.verification_id, &wrong, "phone-a")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(problem_of(&status).kind, ProblemKind::VerificationFailed);

    // Still answerable with the right code, once.
    running
        .complete(&started.verification_id, &otp, "phone-a")
        .await
        .unwrap();
    let status = running
        .complete(&started.verification_id, &otp, "phone-a")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let problem = problem_of(&status);
    assert_eq!(problem.kind, ProblemKind::VerificationExpired);
    assert_eq!(problem.detail, "the verification is unknown or has expired");

    // An id nobody issued is treated the same way.
    let unknown = running
        .complete(&uuid::Uuid::new_v4().to_string(), &otp, "phone-a")
        .await
        .unwrap_err();
    assert_eq!(problem_of(&unknown).kind, ProblemKind::VerificationExpired);
    // A malformed id or code is a malformed request.
    for (id, code) in [
        ("nope", otp.as_str()),
        (started.verification_id.as_str(), "12ab56"),
    ] {
        let status = running.complete(id, code, "phone-a").await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(problem_of(&status).kind, ProblemKind::InvalidRequest);
    }
    running.stop().await;
}

#[tokio::test]
async fn malformed_identity_data_is_refused_before_anything_happens() {
    let running = start_everything("auth-e2e-invalid").await;
    let with = |change: &dyn Fn(&mut StartVerificationRequest)| {
        let mut request = start_request("phone-a");
        change(&mut request);
        request
    };
    let cases: Vec<(StartVerificationRequest, ProblemKind)> = vec![
        (
            with(&|r| r.rrn = "851319-1234567".to_owned()),
            ProblemKind::InvalidIdentity,
        ),
        (
            with(&|r| r.rrn = "8509191234".to_owned()),
            ProblemKind::InvalidIdentity,
        ),
        (
            with(&|r| r.phone = "02-1234-5678".to_owned()),
            ProblemKind::InvalidIdentity,
        ),
        (
            with(&|r| r.phone = String::new()),
            ProblemKind::InvalidIdentity,
        ),
        (
            with(&|r| r.name = "홍길동7".to_owned()),
            ProblemKind::InvalidIdentity,
        ),
        (
            with(&|r| r.name = "  ".to_owned()),
            ProblemKind::InvalidIdentity,
        ),
        (
            with(&|r| r.provider = Provider::Unspecified.into()),
            ProblemKind::InvalidRequest,
        ),
        (
            with(&|r| r.device_id = "a b".to_owned()),
            ProblemKind::InvalidRequest,
        ),
        (
            with(&|r| r.provider = Provider::Naver.into()),
            ProblemKind::UnsupportedProvider,
        ),
        (
            with(&|r| r.provider = Provider::FinancialCert.into()),
            ProblemKind::UnsupportedProvider,
        ),
    ];
    for (request, expected) in cases {
        let status = running.start(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{expected:?}");
        assert_eq!(problem_of(&status).kind, expected);
        assert!(
            !status.message().contains("1234567"),
            "{}",
            status.message()
        );
        assert!(!status.message().contains("5678"), "{}", status.message());
    }
    assert!(running.outbox().await.is_empty());
    assert!(running.challenge_keys().await.is_empty());
    // Refusals did not count against the person's starts.
    for _ in 0..5 {
        running.start(start_request("phone-a")).await.unwrap();
    }
    running.stop().await;
}

#[tokio::test]
async fn the_sixth_start_in_the_window_is_rate_limited() {
    let running = start_everything("auth-e2e-rate").await;
    for _ in 0..5 {
        running.start(start_request("phone-a")).await.unwrap();
    }
    let status = running.start(start_request("phone-b")).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let problem = problem_of(&status);
    assert_eq!(problem.kind, ProblemKind::RateLimited);
    assert_eq!(problem.retry_after, Some(Duration::from_secs(600)));
    assert_eq!(running.outbox().await.len(), 5);
    // Another person may still start (with a phone of their own: this phone's starts are used
    // up too).
    let mut other = start_request("phone-c");
    other.rrn = "900101-2234567".to_owned();
    other.phone = "010-2222-3333".to_owned();
    running
        .agency
        .directory
        .register(&platform::carrier::Subscriber {
            name: "홍길동".to_owned(),
            rrn: other.rrn.clone(),
            phone: other.phone.clone(),
            carrier: CARRIER.to_owned(),
        })
        .unwrap();
    running.start(other).await.unwrap();
    running.stop().await;
}

#[tokio::test]
async fn a_device_lock_refusal_passes_through_with_its_retry_after() {
    let running = start_everything("auth-e2e-locked").await;
    *running.sessions.locked.lock().unwrap() = true;
    let started = running.start(start_request("pc-b")).await.unwrap();
    let otp = running.latest_otp().await;
    let status = running
        .complete(&started.verification_id, &otp, "pc-b")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let problem = problem_of(&status);
    assert_eq!(problem.kind, ProblemKind::DeviceLocked);
    assert_eq!(problem.retry_after, Some(Duration::from_secs(600)));
    assert_eq!(
        problem.extra.get("retry_after").map(String::as_str),
        Some("600")
    );
    assert_eq!(problem.detail, "this person is verified on another device");
    // The verification was used up by the right code.
    assert!(running.challenge_keys().await.is_empty());
    running.stop().await;
}

#[tokio::test]
async fn health_reports_serving_once_redis_answers() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

    let running = start_everything("auth-e2e-health").await;
    let mut health = HealthClient::new(running.channel.clone());
    let mut updates = health
        .watch(HealthCheckRequest {
            service: "vaxbook.auth.v1.AuthService".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let serving = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(update) = updates.next().await {
            if update.unwrap().status == ServingStatus::Serving as i32 {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(serving);
    // An open watch stream would hold the graceful drain until its deadline.
    drop(updates);
    running.stop().await;
}

#[tokio::test]
async fn production_refuses_the_in_process_store_and_sms_sink() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idp = DevIdentityProviders::generate();
    let mut memory = config("unused:", "http://127.0.0.1:1".to_owned(), &idp);
    memory.store = StoreConfig::Memory;
    let error = auth_svc::serve(memory, listener, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("only for `vaxbook dev`"),
        "{error}"
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut dev_sms = config("unused:", "http://127.0.0.1:1".to_owned(), &idp);
    dev_sms.sms = SmsConfig::Dev(Arc::new(platform::dev::SmsOutbox::default()));
    let error = auth_svc::serve(dev_sms, listener, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("only for `vaxbook dev`"),
        "{error}"
    );
}

#[tokio::test]
async fn the_dev_run_verifies_through_the_in_memory_outbox() {
    platform::telemetry::init_for_tests();
    let sessions = FakeSessions::default();
    let session_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let session_addr = session_listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(fake_session_routes(&sessions))
            .serve_with_incoming(TcpListenerStream::new(session_listener)),
    );
    let hooks = platform::dev::DevHooks::new(chrono::Utc::now());
    hooks.carriers.register(&registered_person()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config::local_dev(addr, &hooks);
    config.session_url = format!("http://{session_addr}");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(auth_svc::serve(config, listener, shutdown.clone()));
    let mut client = AuthServiceClient::new(lazy_channel(addr));

    let started = client
        .start_verification(start_request("phone-a"))
        .await
        .unwrap()
        .into_inner();
    let otp = hooks.sms.sent_to(PHONE)[0].otp.clone();
    let done = client
        .complete_verification(CompleteVerificationRequest {
            verification_id: started.verification_id,
            otp,
            device_id: "phone-a".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.masked_name, "홍*동");
    shutdown.cancel();
    server.await.unwrap().unwrap();
}
