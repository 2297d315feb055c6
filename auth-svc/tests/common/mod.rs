//! What the end-to-end tests share: `serve` on a loopback port with the Redis store and the
//! Redis SMS outbox (each test under its own key prefix), an in-test session-svc on another
//! loopback port, the dev stand-in identity providers (kakao trusted, naver and pass not
//! configured) and a real tonic client; [`staff`]: the same on a PostgreSQL database of staff
//! accounts, and their logins.

#![allow(clippy::unwrap_used, dead_code)]

pub mod staff;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_svc::{Config, SmsConfig, StoreConfig};
use platform::carrier::{CarrierDirectory, StandInAgency, Subscriber};
use platform::clock::{SharedClock, SystemClock};
use platform::dev::DevIdentityProviders;
use platform::problem::{Problem, ProblemKind};
use platform::redis_conn::RedisConnection;
use proto::auth::v1::auth_service_client::AuthServiceClient;
use proto::auth::v1::{
    CompleteVerificationRequest, CompleteVerificationResponse, Provider, StartVerificationRequest,
    StartVerificationResponse,
};
use proto::session::v1::device_check_service_server::{
    DeviceCheckService, DeviceCheckServiceServer,
};
use proto::session::v1::session_service_server::{SessionService, SessionServiceServer};
use proto::session::v1::{
    CheckDeviceRequest, CheckDeviceResponse, ClaimDeviceRequest, ClaimDeviceResponse,
    ReleaseSessionRequest, ReleaseSessionResponse, ValidateSessionRequest, ValidateSessionResponse,
};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

pub const RRN: &str = "850919-1234567";
pub const PHONE: &str = "010-1234-5678";
pub const CARRIER: &str = "skt";

/// A stand-in session-svc: grants every claim, or refuses with device-locked when told to.
/// Its device check answers "would be granted" unless `check_refuses` is set; checks are
/// recorded.
#[derive(Clone, Default)]
pub struct FakeSessions {
    pub locked: Arc<Mutex<bool>>,
    pub check_refuses: Arc<Mutex<Option<u64>>>,
    pub claims: Arc<Mutex<Vec<ClaimDeviceRequest>>>,
    pub checks: Arc<Mutex<Vec<CheckDeviceRequest>>>,
}

#[tonic::async_trait]
impl DeviceCheckService for FakeSessions {
    async fn check_device(
        &self,
        request: Request<CheckDeviceRequest>,
    ) -> Result<Response<CheckDeviceResponse>, Status> {
        self.checks.lock().unwrap().push(request.into_inner());
        let wait = *self.check_refuses.lock().unwrap();
        Ok(Response::new(CheckDeviceResponse {
            refused: wait.is_some(),
            retry_after_seconds: wait.unwrap_or(0),
        }))
    }
}

/// The fake's two services, as session-svc serves them.
pub fn fake_session_routes(sessions: &FakeSessions) -> tonic::service::Routes {
    tonic::service::Routes::new(SessionServiceServer::new(sessions.clone()))
        .add_service(DeviceCheckServiceServer::new(sessions.clone()))
}

#[tonic::async_trait]
impl SessionService for FakeSessions {
    async fn claim_device(
        &self,
        request: Request<ClaimDeviceRequest>,
    ) -> Result<Response<ClaimDeviceResponse>, Status> {
        let claim = request.into_inner();
        self.claims.lock().unwrap().push(claim);
        if *self.locked.lock().unwrap() {
            return Err(Problem::new(
                ProblemKind::DeviceLocked,
                "this person is verified on another device",
            )
            .with_retry_after(Duration::from_secs(600))
            .to_status());
        }
        let expires_at = chrono::Utc::now() + chrono::Duration::minutes(30);
        Ok(Response::new(ClaimDeviceResponse {
            session_id: uuid::Uuid::new_v4().to_string(),
            expires_at: Some(platform::clock::to_timestamp(expires_at)),
            ..Default::default()
        }))
    }

    async fn validate_session(
        &self,
        _request: Request<ValidateSessionRequest>,
    ) -> Result<Response<ValidateSessionResponse>, Status> {
        Ok(Response::new(ValidateSessionResponse {
            valid: true,
            ..Default::default()
        }))
    }

    async fn release_session(
        &self,
        _request: Request<ReleaseSessionRequest>,
    ) -> Result<Response<ReleaseSessionResponse>, Status> {
        Ok(Response::new(ReleaseSessionResponse { released: true }))
    }
}

pub struct Running {
    pub client: AuthServiceClient<Channel>,
    pub channel: Channel,
    pub redis: RedisConnection,
    pub prefix: String,
    pub sessions: FakeSessions,
    /// The stand-in provider apps; auth-svc trusts their kakao key only.
    pub idp: Arc<DevIdentityProviders>,
    /// The stand-in carriers' agency behind the HTTP adapter; the test person is registered.
    pub agency: StandInAgency,
    pub shutdown: CancellationToken,
    pub server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub fn lazy_channel(addr: std::net::SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .timeout(Duration::from_secs(10))
        .connect_lazy()
}

/// A signing key file for production-shaped configurations (production refuses to start
/// without one), written once into the target's temp directory and shared by every test.
pub fn signing_key_file() -> std::path::PathBuf {
    let path =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("auth-svc-test-signing-key.pem");
    if !path.exists() {
        // Written under a unique name and renamed, so parallel test processes never read half
        // a file.
        let partial = path.with_extension(format!("{}.partial", uuid::Uuid::new_v4().simple()));
        std::fs::write(&partial, auth_svc::tokens::generate_pem().unwrap()).unwrap();
        std::fs::rename(&partial, &path).unwrap();
    }
    path
}

pub fn config(prefix: &str, session_url: String, idp: &DevIdentityProviders) -> Config {
    config_with_agency(prefix, session_url, idp, "http://127.0.0.1:9/unused")
}

/// [`config`] with the carriers' agency at `agency_url` (the production HTTP adapter).
pub fn config_with_agency(
    prefix: &str,
    session_url: String,
    idp: &DevIdentityProviders,
    agency_url: &str,
) -> Config {
    let redis_url = platform::config::string(
        "VAXBOOK_TEST_REDIS_URL",
        platform::redis_conn::DEFAULT_REDIS_URL,
    );
    Config {
        common: platform::config::CommonConfig::local(),
        listen_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        store: StoreConfig::Redis {
            url: platform::config::ConnectionUrl::new(redis_url),
            key_prefix: prefix.to_owned(),
        },
        sms: SmsConfig::RedisStream,
        session_url,
        person_key_secret: platform::config::Secret::new("end-to-end-secret"),
        signing_key_file: Some(signing_key_file()),
        retired_signing_key_files: Vec::new(),
        token_ttl: Duration::from_secs(1200),
        otp_ttl: Duration::from_secs(180),
        otp_max_attempts: 5,
        simple_cert_issuers: HashMap::from([("kakao".to_owned(), idp.jwks("kakao").unwrap())]),
        assertion_ttl: Duration::from_secs(300),
        start_limit: 5,
        start_window: Duration::from_secs(600),
        request_timeout: Duration::from_secs(5),
        guards: auth_svc::config::GuardConfig::http(agency_url, Duration::from_secs(600)),
        financial_cert_roots: None,
        provider_health: Default::default(),
        dev_mode: false,
        clock: Arc::new(SystemClock) as SharedClock,
        staff_database: None,
    }
}

pub async fn start_everything(label: &str) -> Running {
    start_with(label, |_| {}).await
}

/// The test person as the stand-in agency knows them.
pub fn registered_person() -> Subscriber {
    Subscriber {
        name: "홍길동".to_owned(),
        rrn: RRN.to_owned(),
        phone: PHONE.to_owned(),
        carrier: CARRIER.to_owned(),
    }
}

/// [`start_everything`] with the configuration changed by `adjust` first.
pub async fn start_with(label: &str, adjust: impl FnOnce(&mut Config)) -> Running {
    platform::telemetry::init_for_tests();
    let sessions = FakeSessions::default();
    let session_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let session_addr = session_listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(fake_session_routes(&sessions))
            .serve_with_incoming(TcpListenerStream::new(session_listener)),
    );

    let prefix = platform::redis_conn::test_prefix(label);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let idp = Arc::new(DevIdentityProviders::generate());
    let agency = StandInAgency::start(Arc::new(CarrierDirectory::new()))
        .await
        .unwrap();
    agency.directory.register(&registered_person()).unwrap();
    let mut config = config_with_agency(
        &prefix,
        format!("http://{session_addr}"),
        &idp,
        agency.url(),
    );
    adjust(&mut config);
    let server = tokio::spawn(auth_svc::serve(config, listener, shutdown.clone()));
    let channel = lazy_channel(addr);
    Running {
        client: AuthServiceClient::new(channel.clone()),
        channel,
        redis: platform::redis_conn::connect_for_tests().await.unwrap(),
        prefix,
        sessions,
        idp,
        agency,
        shutdown,
        server,
    }
}

pub fn start_request(device: &str) -> StartVerificationRequest {
    StartVerificationRequest {
        provider: Provider::Phone.into(),
        name: "홍길동".to_owned(),
        rrn: RRN.to_owned(),
        phone: PHONE.to_owned(),
        device_id: device.to_owned(),
        carrier: CARRIER.to_owned(),
        ..Default::default()
    }
}

impl Running {
    pub async fn start(
        &self,
        request: StartVerificationRequest,
    ) -> Result<StartVerificationResponse, Status> {
        self.client
            .clone()
            .start_verification(request)
            .await
            .map(Response::into_inner)
    }

    pub async fn complete(
        &self,
        verification_id: &str,
        otp: &str,
        device: &str,
    ) -> Result<CompleteVerificationResponse, Status> {
        self.complete_with(CompleteVerificationRequest {
            verification_id: verification_id.to_owned(),
            otp: otp.to_owned(),
            device_id: device.to_owned(),
            ..Default::default()
        })
        .await
    }

    pub async fn complete_with(
        &self,
        request: CompleteVerificationRequest,
    ) -> Result<CompleteVerificationResponse, Status> {
        self.client
            .clone()
            .complete_verification(request)
            .await
            .map(Response::into_inner)
    }

    /// The SMS outbox entries, newest first.
    pub async fn outbox(&self) -> Vec<HashMap<String, String>> {
        let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XREVRANGE")
            .arg(format!("{}sms:outbox", self.prefix))
            .arg("+")
            .arg("-")
            .query_async(&mut self.redis.clone())
            .await
            .unwrap();
        entries.into_iter().map(|(_, fields)| fields).collect()
    }

    pub async fn latest_otp(&self) -> String {
        let outbox = self.outbox().await;
        let newest = outbox.first().expect("an SMS was written to the outbox");
        assert_eq!(newest["to"], PHONE);
        newest["otp"].clone()
    }

    pub async fn challenge_keys(&self) -> Vec<String> {
        redis::cmd("KEYS")
            .arg(format!("{}auth:challenge:*", self.prefix))
            .query_async(&mut self.redis.clone())
            .await
            .unwrap()
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.server.await.unwrap().unwrap();
    }
}

pub fn problem_of(status: &Status) -> Problem {
    Problem::from_status(status)
}
