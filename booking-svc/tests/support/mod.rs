//! Test harness: booking-svc served by its real `serve` on a loopback port, next to a fake
//! auth-svc (serves the JWKS of a key the test signs tokens with, and the grant keys of agent
//! and operator tokens, caller and proxy grants) and a fake scheduling-svc (answers eligibility
//! as the test configures it, to the internal service key only), plus helpers to call it.

#![allow(clippy::unwrap_used, dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use booking_svc::Config;
use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Asia::Seoul;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use platform::auth::{AUDIENCE, AccessClaims, ISSUER, Role};
use platform::clock::{Clock, SettableClock, to_timestamp};
use platform::grants::{GrantIssuer, KeysServer, SigningKeys};
use platform::operator::OperatorCredential;
use platform::problem::{Problem, ProblemKind};
use platform::proxy_grant::{PROXY_GRANT_TTL, ProxyGrant};
use platform::staff::{AGENT_TOKEN_TTL, AgentToken, StaffRole};
use proto::auth::v1 as auth_pb;
use proto::auth::v1::auth_service_server::{AuthService, AuthServiceServer};
use proto::booking::v1 as pb;
use proto::booking::v1::booking_admin_service_client::BookingAdminServiceClient;
use proto::booking::v1::booking_service_client::BookingServiceClient;
use proto::scheduling::v1 as sched_pb;
use proto::scheduling::v1::scheduling_service_server::{
    SchedulingService, SchedulingServiceServer,
};
use proto::session::v1 as session_pb;
use proto::session::v1::queue_service_server::{QueueService, QueueServiceServer};
use proto::session::v1::session_service_server::{SessionService, SessionServiceServer};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

pub const KEY_ID: &str = "test-key-1";
/// The operator account the harness seeds centers and slots as.
pub const OPERATOR: &str = "operator-park";

/// A signing key whose public half the fake auth-svc publishes.
pub struct TestKeys {
    encoding: EncodingKey,
    public_x: String,
}

impl TestKeys {
    pub fn new(seed: u8) -> Self {
        let signing = SigningKey::from_bytes(&[seed; 32]);
        let der = signing.to_pkcs8_der().unwrap();
        Self {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            public_x: base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(signing.verifying_key().as_bytes()),
        }
    }

    /// The public key as auth-svc's `GetJwks` answers it.
    pub fn public_keys(&self) -> Vec<proto::keys::v1::PublicKey> {
        vec![proto::keys::v1::PublicKey {
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            x: self.public_x.clone(),
            kid: KEY_ID.to_owned(),
            alg: "EdDSA".to_owned(),
            key_use: "sig".to_owned(),
        }]
    }

    /// Claims of a citizen token valid for 30 minutes from `now`.
    pub fn claims(person_key: &str, birth_date: &str, now: DateTime<Utc>) -> AccessClaims {
        AccessClaims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: person_key.to_owned(),
            sid: "session-1".to_owned(),
            dev: "device-1".to_owned(),
            bd: birth_date.to_owned(),
            role: Role::Citizen,
            iat: now.timestamp(),
            exp: (now + Duration::minutes(30)).timestamp(),
            jti: uuid::Uuid::new_v4().to_string(),
            fence: None,
        }
    }

    pub fn sign(&self, claims: &AccessClaims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(KEY_ID.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

struct FakeAuth {
    keys: Vec<proto::keys::v1::PublicKey>,
}

#[tonic::async_trait]
impl AuthService for FakeAuth {
    async fn start_verification(
        &self,
        _: Request<auth_pb::StartVerificationRequest>,
    ) -> Result<Response<auth_pb::StartVerificationResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn complete_verification(
        &self,
        _: Request<auth_pb::CompleteVerificationRequest>,
    ) -> Result<Response<auth_pb::CompleteVerificationResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn get_jwks(
        &self,
        _: Request<auth_pb::GetJwksRequest>,
    ) -> Result<Response<auth_pb::GetJwksResponse>, Status> {
        Ok(Response::new(auth_pb::GetJwksResponse {
            keys: self.keys.clone(),
        }))
    }

    async fn list_providers(
        &self,
        _: Request<auth_pb::ListProvidersRequest>,
    ) -> Result<Response<auth_pb::ListProvidersResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

/// What the fake scheduling-svc answers.
#[derive(Clone, Debug)]
pub struct SchedulingAnswer {
    pub eligible: bool,
    pub reason: String,
    pub cancellation_closes_days_before: i32,
    pub proxy_allowed: bool,
    /// The campaign's change policy (R8); `None` means changes are never allowed.
    pub modification_allowed_from: Option<DateTime<Utc>>,
    pub proxy_deadline: Option<DateTime<Utc>>,
    /// 0: no limit.
    pub proxy_max_per_booker: u32,
    /// Cumulative release steps `(from, basis points)`; empty: everything released.
    pub supply_release: Vec<(DateTime<Utc>, u32)>,
}

impl SchedulingAnswer {
    fn campaign(&self, id: String) -> sched_pb::Campaign {
        sched_pb::Campaign {
            id,
            proxy_allowed: self.proxy_allowed,
            proxy_deadline: self.proxy_deadline.map(to_timestamp),
            proxy_max_per_booker: self.proxy_max_per_booker,
            cancellation_closes_days_before: self.cancellation_closes_days_before,
            modification_allowed_from: self.modification_allowed_from.map(to_timestamp),
            supply_release: self
                .supply_release
                .iter()
                .map(|(at, released_bp)| sched_pb::SupplyStep {
                    at: Some(to_timestamp(*at)),
                    released_bp: *released_bp,
                })
                .collect(),
            ..Default::default()
        }
    }
}

impl Default for SchedulingAnswer {
    fn default() -> Self {
        Self {
            eligible: true,
            reason: String::new(),
            cancellation_closes_days_before: 2,
            proxy_allowed: false,
            modification_allowed_from: None,
            proxy_deadline: None,
            proxy_max_per_booker: 0,
            supply_release: Vec::new(),
        }
    }
}

/// The fake scheduling-svc: a configurable answer and a record of the questions. Like the real
/// one, it answers `CheckEligibility` only to the internal service key (`x-service-key`, the
/// dev value a `local_dev` booking-svc presents).
#[derive(Default)]
pub struct FakeScheduling {
    pub answer: Mutex<SchedulingAnswer>,
    pub questions: Mutex<Vec<sched_pb::CheckEligibilityRequest>>,
}

#[derive(Clone)]
struct SchedulingHandle(Arc<FakeScheduling>);

#[tonic::async_trait]
impl SchedulingService for SchedulingHandle {
    async fn check_eligibility(
        &self,
        request: Request<sched_pb::CheckEligibilityRequest>,
    ) -> Result<Response<sched_pb::CheckEligibilityResponse>, Status> {
        let presented = request
            .metadata()
            .get(platform::config::SERVICE_KEY_HEADER)
            .and_then(|value| value.to_str().ok());
        if presented != Some(platform::config::DEV_SERVICE_KEY) {
            return Err(Problem::new(
                ProblemKind::Unauthenticated,
                "CheckEligibility needs the internal service key",
            )
            .into());
        }
        let question = request.into_inner();
        self.0.questions.lock().unwrap().push(question.clone());
        let answer = self.0.answer.lock().unwrap().clone();
        Ok(Response::new(sched_pb::CheckEligibilityResponse {
            eligible: answer.eligible,
            campaign_id: question.campaign_id.clone(),
            reason: answer.reason.clone(),
            campaign: Some(answer.campaign(question.campaign_id)),
            ..Default::default()
        }))
    }

    async fn get_campaign(
        &self,
        request: Request<sched_pb::GetCampaignRequest>,
    ) -> Result<Response<sched_pb::Campaign>, Status> {
        let answer = self.0.answer.lock().unwrap().clone();
        Ok(Response::new(answer.campaign(request.into_inner().id)))
    }

    async fn list_windows(
        &self,
        _: Request<sched_pb::ListWindowsRequest>,
    ) -> Result<Response<sched_pb::ListWindowsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn list_campaigns(
        &self,
        _: Request<sched_pb::ListCampaignsRequest>,
    ) -> Result<Response<sched_pb::ListCampaignsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

/// The fake session-svc: every session is valid until a test says otherwise; the waiting room
/// is off until a test turns it on; a test may say the presented fencing number is outdated.
pub struct FakeSessions {
    pub valid: AtomicBool,
    pub waiting_room_on: AtomicBool,
    pub superseded: AtomicBool,
}

#[tonic::async_trait]
impl QueueService for SessionsHandle {
    async fn take_ticket(
        &self,
        _: Request<session_pb::TakeTicketRequest>,
    ) -> Result<Response<session_pb::TicketStatus>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn poll_ticket(
        &self,
        _: Request<session_pb::PollTicketRequest>,
    ) -> Result<Response<session_pb::TicketStatus>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn get_admission(
        &self,
        _: Request<session_pb::GetAdmissionRequest>,
    ) -> Result<Response<session_pb::AdmissionState>, Status> {
        Ok(Response::new(session_pb::AdmissionState {
            room: "*".to_owned(),
            enabled: self.0.waiting_room_on.load(Ordering::SeqCst),
            rate_per_second: 5.0,
            ..Default::default()
        }))
    }
}

#[derive(Clone)]
struct SessionsHandle(Arc<FakeSessions>);

#[tonic::async_trait]
impl SessionService for SessionsHandle {
    async fn claim_device(
        &self,
        _: Request<session_pb::ClaimDeviceRequest>,
    ) -> Result<Response<session_pb::ClaimDeviceResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn validate_session(
        &self,
        _: Request<session_pb::ValidateSessionRequest>,
    ) -> Result<Response<session_pb::ValidateSessionResponse>, Status> {
        let superseded = self.0.superseded.load(Ordering::SeqCst);
        Ok(Response::new(session_pb::ValidateSessionResponse {
            valid: self.0.valid.load(Ordering::SeqCst) && !superseded,
            superseded,
            ..Default::default()
        }))
    }

    async fn release_session(
        &self,
        _: Request<session_pb::ReleaseSessionRequest>,
    ) -> Result<Response<session_pb::ReleaseSessionResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

async fn loopback() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// A URL nothing listens on.
pub async fn dead_url() -> String {
    let (listener, url) = loopback().await;
    drop(listener);
    url
}

/// 2021-09-`day` `hour`:`minute` KST.
pub fn kst(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Seoul
        .with_ymd_and_hms(2021, 9, day, hour, minute, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

pub struct Harness {
    pub booking: BookingServiceClient<Channel>,
    pub admin: BookingAdminServiceClient<Channel>,
    pub clock: Arc<SettableClock>,
    pub scheduling: Arc<FakeScheduling>,
    /// The fake scheduling-svc's URL.
    pub scheduling_url: String,
    pub sessions: Arc<FakeSessions>,
    pub keys: TestKeys,
    /// Signs auth-svc's grants (proxy grants, agent and operator tokens, caller grants) with
    /// the keys the fake auth-svc publishes over vaxbook.keys.v1.
    pub proxy_grants: GrantIssuer,
    /// Signs admission grants with the keys the fake session-svc publishes.
    pub admission_grants: GrantIssuer,
    pub shutdown: CancellationToken,
    pub server: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub addr: SocketAddr,
}

impl Harness {
    /// booking-svc on the in-process store, with fakes around it.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`Harness::start`], with a chance to change the configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        platform::telemetry::init_for_tests();
        let shutdown = CancellationToken::new();
        let keys = TestKeys::new(7);

        let (auth_listener, auth_url) = loopback().await;
        let auth = AuthServiceServer::new(FakeAuth {
            keys: keys.public_keys(),
        });
        // auth-svc's grant keys, for proxy grants.
        let grant_keys = Arc::new(SigningKeys::generate().unwrap());
        let proxy_grants = GrantIssuer::new(grant_keys.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(auth)
                .add_service(KeysServer::new(platform::auth::ISSUER, grant_keys).into_service())
                .serve_with_incoming_shutdown(
                    TcpListenerStream::new(auth_listener),
                    shutdown.clone().cancelled_owned(),
                ),
        );

        let scheduling = Arc::new(FakeScheduling::default());
        let (scheduling_listener, scheduling_url) = loopback().await;
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(SchedulingServiceServer::new(SchedulingHandle(
                    scheduling.clone(),
                )))
                .serve_with_incoming_shutdown(
                    TcpListenerStream::new(scheduling_listener),
                    shutdown.clone().cancelled_owned(),
                ),
        );

        let sessions = Arc::new(FakeSessions {
            valid: AtomicBool::new(true),
            waiting_room_on: AtomicBool::new(false),
            superseded: AtomicBool::new(false),
        });
        // session-svc's grant keys, for admission grants.
        let session_keys = Arc::new(SigningKeys::generate().unwrap());
        let admission_grants = GrantIssuer::new(session_keys.clone());
        let (session_listener, session_url) = loopback().await;
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(SessionServiceServer::new(SessionsHandle(sessions.clone())))
                .add_service(QueueServiceServer::new(SessionsHandle(sessions.clone())))
                .add_service(
                    KeysServer::new(platform::admission::SESSION_ISSUER, session_keys)
                        .into_service(),
                )
                .serve_with_incoming_shutdown(
                    TcpListenerStream::new(session_listener),
                    shutdown.clone().cancelled_owned(),
                ),
        );

        let hooks = platform::dev::DevHooks::new(kst(1, 10, 0));
        let clock: Arc<SettableClock> = hooks.clock.clone();
        let (listener, url) = loopback().await;
        let addr = listener.local_addr().unwrap();
        let mut config = Config::local_dev(addr, &hooks);
        config.auth_url = auth_url;
        config.scheduling_url = scheduling_url.clone();
        config.session_url = session_url;
        adjust(&mut config);
        let server = tokio::spawn(booking_svc::serve(config, listener, shutdown.clone()));
        let channel = Channel::from_shared(url).unwrap().connect_lazy();
        Self {
            booking: BookingServiceClient::new(channel.clone()),
            admin: BookingAdminServiceClient::new(channel),
            clock,
            scheduling,
            scheduling_url,
            sessions,
            keys,
            proxy_grants,
            admission_grants,
            shutdown,
            server,
            addr,
        }
    }

    /// An admission grant as session-svc would issue it: `person_key` admitted from `room`,
    /// for `uses` writes, valid `ttl_secs` from now.
    pub fn admission_grant(
        &self,
        person_key: &str,
        room: &str,
        uses: u32,
        ttl_secs: u64,
    ) -> String {
        let claims = platform::admission::AdmissionGrant {
            sub: person_key.to_owned(),
            room: room.to_owned(),
            uses,
        };
        self.admission_grants
            .issue(
                &claims,
                self.clock.now(),
                std::time::Duration::from_secs(ttl_secs),
            )
            .unwrap()
            .token
    }

    /// A proxy grant as auth-svc would issue it: `booker` books for `person_key`, born on
    /// `birth_date`.
    pub fn proxy_grant(&self, booker: &str, person_key: &str, birth_date: &str) -> String {
        let claims = ProxyGrant {
            sub: booker.to_owned(),
            for_key: person_key.to_owned(),
            for_bd: birth_date.to_owned(),
            for_name: "홍*동".to_owned(),
        };
        self.proxy_grants
            .issue(&claims, self.clock.now(), PROXY_GRANT_TTL)
            .unwrap()
            .token
    }

    pub fn answer(&self, change: impl FnOnce(&mut SchedulingAnswer)) {
        change(&mut self.scheduling.answer.lock().unwrap());
    }

    /// A valid citizen token for `person_key`, issued now (by the harness clock).
    pub fn token(&self, person_key: &str) -> String {
        self.keys.sign(&TestKeys::claims(
            person_key,
            "1985-03-09",
            self.clock.now(),
        ))
    }

    /// A staff token of `role` for the account `sub` (organisation `national-call-center`), as
    /// auth-svc's `StaffAuthService.Login` issues it, valid from now.
    pub fn staff_token(&self, role: StaffRole, sub: &str) -> String {
        let claims = AgentToken {
            sub: sub.to_owned(),
            username: format!("{}.{sub}", role.as_str()),
            org: "national-call-center".to_owned(),
            role,
        };
        self.proxy_grants
            .issue(&claims, self.clock.now(), AGENT_TOKEN_TTL)
            .unwrap()
            .token
    }

    /// `message` as an admin request of the operator account [`OPERATOR`].
    pub fn as_operator<T>(&self, message: T) -> Request<T> {
        OperatorCredential::Token(self.staff_token(StaffRole::Operator, OPERATOR))
            .request(message)
            .unwrap()
    }

    pub async fn seed_center(&self, region: &str, name: &str) -> pb::Center {
        let center = pb::Center {
            id: String::new(),
            name: name.to_owned(),
            region: region.to_owned(),
            address: "세종대로 110".to_owned(),
        };
        self.admin
            .clone()
            .upsert_center(self.as_operator(pb::UpsertCenterRequest {
                center: Some(center),
            }))
            .await
            .unwrap()
            .into_inner()
    }

    /// A slot on 2021-09-`day` 09:00–10:00 KST at a new center.
    pub async fn seed_slot(&self, campaign: &str, day: u32, capacity: i32) -> pb::Slot {
        let center = self.seed_center("서울", "중구 예방접종센터").await;
        self.admin
            .clone()
            .upsert_slot(self.as_operator(slot_request(&center.id, campaign, day, capacity)))
            .await
            .unwrap()
            .into_inner()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn slot_request(
    center_id: &str,
    campaign: &str,
    day: u32,
    capacity: i32,
) -> pb::UpsertSlotRequest {
    pb::UpsertSlotRequest {
        slot: Some(pb::Slot {
            id: String::new(),
            campaign_id: campaign.to_owned(),
            center_id: center_id.to_owned(),
            date: format!("2021-09-{day:02}"),
            starts_at: Some(to_timestamp(kst(day, 9, 0))),
            ends_at: Some(to_timestamp(kst(day, 10, 0))),
            vaccine: "mRNA".to_owned(),
            capacity,
            remaining: 0,
            released: 0,
        }),
    }
}

/// A request carrying the dev run's operator key (accepted only by a `local_dev`
/// configuration).
pub fn admin<T>(message: T) -> Request<T> {
    OperatorCredential::dev().request(message).unwrap()
}

/// A request carrying `Authorization: Bearer <token>`.
pub fn authed<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

pub fn change(booking_id: &str, slot_id: &str) -> pb::ChangeBookingRequest {
    pb::ChangeBookingRequest {
        id: booking_id.to_owned(),
        slot_id: slot_id.to_owned(),
    }
}

pub fn book(slot_id: &str, key: &str) -> pb::CreateBookingRequest {
    pb::CreateBookingRequest {
        slot_id: slot_id.to_owned(),
        idempotency_key: key.to_owned(),
        proxy: false,
        proxy_grant: String::new(),
    }
}

/// The vaxbook problem a failed call carried.
pub fn problem<T: std::fmt::Debug>(outcome: Result<Response<T>, Status>) -> (tonic::Code, Problem) {
    let status = outcome.expect_err("the call should have failed");
    (status.code(), Problem::from_status(&status))
}

/// Places still free in `slot`, as ListSlots shows them.
pub async fn remaining(harness: &Harness, slot: &pb::Slot) -> i32 {
    let slots = harness
        .booking
        .clone()
        .list_slots(pb::ListSlotsRequest {
            center_id: slot.center_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .slots;
    slots
        .into_iter()
        .find(|listed| listed.id == slot.id)
        .unwrap()
        .remaining
}

/// The fake scheduling-svc's URL, for measurements that call it directly.
pub fn scheduling_url(harness: &Harness) -> String {
    harness.scheduling_url.clone()
}
