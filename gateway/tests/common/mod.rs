//! Test harness: the gateway on an ephemeral port in front of four small in-test tonic servers
//! (auth, session, scheduling, booking) with canned answers, that record every call they get.
//! Access tokens are signed here with a throw-away Ed25519 key whose JWKS the fake auth-svc
//! serves; staff (agent, operator) tokens with another throw-away key the fake auth-svc publishes
//! over its KeysService, like auth-svc's grants.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use platform::auth::{AccessClaims, Role};
use platform::clock::{Clock, SettableClock, to_timestamp};
use proto::auth::v1 as auth;
use proto::booking::v1 as booking;
use proto::scheduling::v1 as scheduling;
use proto::session::v1 as session;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

pub const DEVICE: &str = "device-1";
pub const PERSON_KEY: &str = "pk-test-person";
pub const SESSION_ID: &str = "session-1";
pub const PUBLIC_URL: &str = "https://vaxbook.test";
/// The account id in the staff tokens of [`Harness::staff_token`].
pub const STAFF_ACCOUNT: &str = "6f1c0b9e-0000-4000-8000-0000000000aa";
const KID: &str = "test-key-1";

/// One call a fake service received.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: &'static str,
    pub metadata: MetadataMap,
    /// The request message, `Debug`-formatted.
    pub message: String,
}

/// Lets a test hold a call inside the fake booking-svc until it says so.
#[derive(Clone, Default)]
pub struct Gate {
    pub entered: Arc<Notify>,
    pub release: Arc<Notify>,
}

/// The shared state of the four fake services.
pub struct Fakes {
    pub calls: Mutex<Vec<Call>>,
    /// Method name → the status that method answers instead of its canned answer.
    pub failures: Mutex<HashMap<&'static str, Status>>,
    pub session_valid: AtomicBool,
    pub modification_allowed_from: Mutex<Option<DateTime<Utc>>>,
    pub eligibility: Mutex<scheduling::CheckEligibilityResponse>,
    /// What ListWindows answers (none unless a test sets them).
    pub windows: Mutex<scheduling::ListWindowsResponse>,
    /// Held on entry to ListCenters when set.
    pub gate: Mutex<Option<Gate>>,
    jwks_json: String,
    /// The fake auth-svc's grant keys (agent and operator tokens).
    grant_keys: Arc<platform::grants::SigningKeys>,
    clock: Arc<SettableClock>,
}

impl Fakes {
    pub fn fail(&self, method: &'static str, status: Status) {
        self.failures.lock().unwrap().insert(method, status);
    }

    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|call| call.method == method)
            .cloned()
            .collect()
    }

    /// Calls to any booking-svc method.
    pub fn booking_calls(&self) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|call| call.method.starts_with("booking."))
            .count()
    }

    fn record<T: std::fmt::Debug>(
        &self,
        method: &'static str,
        request: &Request<T>,
    ) -> Result<(), Status> {
        self.calls.lock().unwrap().push(Call {
            method,
            metadata: request.metadata().clone(),
            message: format!("{:?}", request.get_ref()),
        });
        match self.failures.lock().unwrap().get(method) {
            Some(status) => Err(status.clone()),
            None => Ok(()),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn slot(&self) -> booking::Slot {
        let starts = DateTime::parse_from_rfc3339("2021-08-26T09:00:00+09:00")
            .unwrap()
            .with_timezone(&Utc);
        booking::Slot {
            id: "slot-1".into(),
            campaign_id: "c18-49".into(),
            center_id: "center-1".into(),
            date: "2021-08-26".into(),
            starts_at: Some(to_timestamp(starts)),
            ends_at: Some(to_timestamp(starts + chrono::Duration::hours(1))),
            vaccine: "mRNA".into(),
            capacity: 100,
            remaining: 42,
            released: 100,
        }
    }

    pub fn booking(&self, id: &str, status: booking::BookingStatus) -> booking::Booking {
        booking::Booking {
            id: id.into(),
            campaign_id: "c18-49".into(),
            slot: Some(self.slot()),
            status: status as i32,
            created_at: Some(to_timestamp(self.now())),
            cancelled_at: (status == booking::BookingStatus::Cancelled)
                .then(|| to_timestamp(self.now())),
            cancellable_until: "2021-08-24".into(),
            ..Default::default()
        }
    }
}

#[derive(Clone)]
struct Fake(Arc<Fakes>);

#[tonic::async_trait]
impl auth::proxy_service_server::ProxyService for Fake {
    async fn resolve_proxy(
        &self,
        request: Request<auth::ResolveProxyRequest>,
    ) -> Result<Response<auth::ResolveProxyResponse>, Status> {
        // Recorded without the message: it holds the person's name and RRN.
        let empty = Request::from_parts(request.metadata().clone(), Default::default(), ());
        self.0.record("auth.ResolveProxy", &empty)?;
        Ok(Response::new(auth::ResolveProxyResponse {
            grant: "proxy-grant-1".into(),
            expires_at: Some(to_timestamp(self.0.now() + chrono::Duration::minutes(2))),
            masked_name: "홍*니".into(),
        }))
    }
}

#[tonic::async_trait]
impl auth::auth_service_server::AuthService for Fake {
    async fn start_verification(
        &self,
        request: Request<auth::StartVerificationRequest>,
    ) -> Result<Response<auth::StartVerificationResponse>, Status> {
        self.0.record("auth.StartVerification", &request)?;
        Ok(Response::new(auth::StartVerificationResponse {
            verification_id: "ver-1".into(),
            provider: request.get_ref().provider,
            provider_id: request.get_ref().provider_id.clone(),
            expires_at: Some(to_timestamp(self.0.now() + chrono::Duration::minutes(3))),
            masked_phone: "010-****-5678".into(),
            otp_length: 6,
            nonce: String::new(),
        }))
    }

    async fn complete_verification(
        &self,
        request: Request<auth::CompleteVerificationRequest>,
    ) -> Result<Response<auth::CompleteVerificationResponse>, Status> {
        self.0.record("auth.CompleteVerification", &request)?;
        Ok(Response::new(auth::CompleteVerificationResponse {
            access_token: "issued-token".into(),
            token_type: "Bearer".into(),
            expires_in: 1800,
            session: Some(auth::SessionInfo {
                id: SESSION_ID.into(),
                device_id: request.get_ref().device_id.clone(),
                expires_at: Some(to_timestamp(self.0.now() + chrono::Duration::minutes(30))),
            }),
            masked_name: "홍*동".into(),
        }))
    }

    async fn get_jwks(
        &self,
        request: Request<auth::GetJwksRequest>,
    ) -> Result<Response<auth::GetJwksResponse>, Status> {
        self.0.record("auth.GetJwks", &request)?;
        let jwks: platform::auth::Jwks = serde_json::from_str(&self.0.jwks_json)
            .map_err(|_| Status::internal("the fake's JWKS is malformed"))?;
        Ok(Response::new(auth::GetJwksResponse {
            keys: platform::auth::jwks_to_wire(&jwks),
        }))
    }

    async fn list_providers(
        &self,
        request: Request<auth::ListProvidersRequest>,
    ) -> Result<Response<auth::ListProvidersResponse>, Status> {
        self.0.record("auth.ListProviders", &request)?;
        let provider = |id: &str, start: &[&str], answer: &[&str], health: auth::ProviderHealth| {
            auth::ProviderInfo {
                id: id.into(),
                display_name: id.into(),
                start_fields: start.iter().map(|field| (*field).into()).collect(),
                answer_fields: answer.iter().map(|field| (*field).into()).collect(),
                health: health.into(),
                success_rate: if health == auth::ProviderHealth::Down {
                    0.0
                } else {
                    1.0
                },
                p95_latency_ms: 40,
                samples: 12,
            }
        };
        Ok(Response::new(auth::ListProvidersResponse {
            providers: vec![
                provider(
                    "phone",
                    &["name", "rrn", "phone"],
                    &["otp"],
                    auth::ProviderHealth::Ok,
                ),
                provider(
                    "kakao",
                    &["name", "rrn"],
                    &["assertion"],
                    auth::ProviderHealth::Down,
                ),
            ],
            window_seconds: 300,
        }))
    }
}

#[tonic::async_trait]
impl auth::staff_auth_service_server::StaffAuthService for Fake {
    async fn login(
        &self,
        request: Request<auth::LoginRequest>,
    ) -> Result<Response<auth::LoginResponse>, Status> {
        let empty = Request::from_parts(request.metadata().clone(), Default::default(), ());
        self.0.record("auth.Login", &empty)?;
        Err(Status::unimplemented("the gateway never logs staff in"))
    }

    async fn verify_caller(
        &self,
        request: Request<auth::VerifyCallerRequest>,
    ) -> Result<Response<auth::VerifyCallerResponse>, Status> {
        let empty = Request::from_parts(request.metadata().clone(), Default::default(), ());
        self.0.record("auth.VerifyCaller", &empty)?;
        Err(Status::unimplemented("the gateway never verifies callers"))
    }

    async fn confirm_caller(
        &self,
        request: Request<auth::ConfirmCallerRequest>,
    ) -> Result<Response<auth::ConfirmCallerResponse>, Status> {
        self.0.record("auth.ConfirmCaller", &request)?;
        Err(Status::unimplemented("the gateway never verifies callers"))
    }

    async fn record_citizen_api_refusal(
        &self,
        request: Request<auth::RecordCitizenApiRefusalRequest>,
    ) -> Result<Response<auth::RecordCitizenApiRefusalResponse>, Status> {
        self.0.record("auth.RecordCitizenApiRefusal", &request)?;
        let seq = self.0.calls_to("auth.RecordCitizenApiRefusal").len();
        Ok(Response::new(auth::RecordCitizenApiRefusalResponse {
            seq: i64::try_from(seq).unwrap(),
        }))
    }

    async fn list_accounts(
        &self,
        request: Request<auth::ListAccountsRequest>,
    ) -> Result<Response<auth::ListAccountsResponse>, Status> {
        self.0.record("auth.ListAccounts", &request)?;
        Err(Status::unimplemented(
            "the gateway never administers staff accounts",
        ))
    }

    async fn disable_account(
        &self,
        request: Request<auth::DisableAccountRequest>,
    ) -> Result<Response<auth::DisableAccountResponse>, Status> {
        self.0.record("auth.DisableAccount", &request)?;
        Err(Status::unimplemented(
            "the gateway never administers staff accounts",
        ))
    }

    async fn enable_account(
        &self,
        request: Request<auth::EnableAccountRequest>,
    ) -> Result<Response<auth::EnableAccountResponse>, Status> {
        self.0.record("auth.EnableAccount", &request)?;
        Err(Status::unimplemented(
            "the gateway never administers staff accounts",
        ))
    }

    async fn unlock_account(
        &self,
        request: Request<auth::UnlockAccountRequest>,
    ) -> Result<Response<auth::UnlockAccountResponse>, Status> {
        self.0.record("auth.UnlockAccount", &request)?;
        Err(Status::unimplemented(
            "the gateway never administers staff accounts",
        ))
    }
}

#[tonic::async_trait]
impl session::session_service_server::SessionService for Fake {
    async fn claim_device(
        &self,
        request: Request<session::ClaimDeviceRequest>,
    ) -> Result<Response<session::ClaimDeviceResponse>, Status> {
        self.0.record("session.ClaimDevice", &request)?;
        Err(Status::unimplemented("the gateway never claims devices"))
    }

    async fn validate_session(
        &self,
        request: Request<session::ValidateSessionRequest>,
    ) -> Result<Response<session::ValidateSessionResponse>, Status> {
        self.0.record("session.ValidateSession", &request)?;
        Ok(Response::new(session::ValidateSessionResponse {
            valid: self.0.session_valid.load(Ordering::SeqCst),
            ..Default::default()
        }))
    }

    async fn release_session(
        &self,
        request: Request<session::ReleaseSessionRequest>,
    ) -> Result<Response<session::ReleaseSessionResponse>, Status> {
        self.0.record("session.ReleaseSession", &request)?;
        Ok(Response::new(session::ReleaseSessionResponse {
            released: true,
        }))
    }
}

#[tonic::async_trait]
impl scheduling::scheduling_service_server::SchedulingService for Fake {
    async fn check_eligibility(
        &self,
        request: Request<scheduling::CheckEligibilityRequest>,
    ) -> Result<Response<scheduling::CheckEligibilityResponse>, Status> {
        self.0.record("scheduling.CheckEligibility", &request)?;
        Ok(Response::new(self.0.eligibility.lock().unwrap().clone()))
    }

    async fn get_campaign(
        &self,
        request: Request<scheduling::GetCampaignRequest>,
    ) -> Result<Response<scheduling::Campaign>, Status> {
        self.0.record("scheduling.GetCampaign", &request)?;
        Ok(Response::new(scheduling::Campaign {
            id: request.get_ref().id.clone(),
            name: "18-49".into(),
            modification_allowed_from: self
                .0
                .modification_allowed_from
                .lock()
                .unwrap()
                .map(to_timestamp),
            cancellation_closes_days_before: 2,
            ..Default::default()
        }))
    }

    async fn list_campaigns(
        &self,
        request: Request<scheduling::ListCampaignsRequest>,
    ) -> Result<Response<scheduling::ListCampaignsResponse>, Status> {
        self.0.record("scheduling.ListCampaigns", &request)?;
        Ok(Response::new(scheduling::ListCampaignsResponse::default()))
    }

    async fn list_windows(
        &self,
        request: Request<scheduling::ListWindowsRequest>,
    ) -> Result<Response<scheduling::ListWindowsResponse>, Status> {
        self.0.record("scheduling.ListWindows", &request)?;
        Ok(Response::new(self.0.windows.lock().unwrap().clone()))
    }
}

#[tonic::async_trait]
impl booking::booking_service_server::BookingService for Fake {
    async fn list_centers(
        &self,
        request: Request<booking::ListCentersRequest>,
    ) -> Result<Response<booking::ListCentersResponse>, Status> {
        self.0.record("booking.ListCenters", &request)?;
        let gate = self.0.gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.entered.notify_one();
            gate.release.notified().await;
        }
        Ok(Response::new(booking::ListCentersResponse {
            centers: vec![booking::Center {
                id: "center-1".into(),
                name: "Jongno Health Center".into(),
                region: "seoul".into(),
                address: "1 Jong-ro".into(),
            }],
        }))
    }

    async fn list_slots(
        &self,
        request: Request<booking::ListSlotsRequest>,
    ) -> Result<Response<booking::ListSlotsResponse>, Status> {
        self.0.record("booking.ListSlots", &request)?;
        Ok(Response::new(booking::ListSlotsResponse {
            slots: vec![self.0.slot()],
        }))
    }

    async fn create_booking(
        &self,
        request: Request<booking::CreateBookingRequest>,
    ) -> Result<Response<booking::Booking>, Status> {
        self.0.record("booking.CreateBooking", &request)?;
        Ok(Response::new(
            self.0
                .booking("booking-1", booking::BookingStatus::Confirmed),
        ))
    }

    async fn list_my_bookings(
        &self,
        request: Request<booking::ListMyBookingsRequest>,
    ) -> Result<Response<booking::ListMyBookingsResponse>, Status> {
        self.0.record("booking.ListMyBookings", &request)?;
        Ok(Response::new(booking::ListMyBookingsResponse {
            bookings: vec![
                self.0
                    .booking("booking-1", booking::BookingStatus::Confirmed),
            ],
        }))
    }

    async fn get_booking(
        &self,
        request: Request<booking::GetBookingRequest>,
    ) -> Result<Response<booking::Booking>, Status> {
        self.0.record("booking.GetBooking", &request)?;
        let id = request.get_ref().id.clone();
        Ok(Response::new(
            self.0.booking(&id, booking::BookingStatus::Confirmed),
        ))
    }

    async fn cancel_booking(
        &self,
        request: Request<booking::CancelBookingRequest>,
    ) -> Result<Response<booking::Booking>, Status> {
        self.0.record("booking.CancelBooking", &request)?;
        let id = request.get_ref().id.clone();
        Ok(Response::new(
            self.0.booking(&id, booking::BookingStatus::Cancelled),
        ))
    }

    async fn change_booking(
        &self,
        request: Request<booking::ChangeBookingRequest>,
    ) -> Result<Response<booking::Booking>, Status> {
        self.0.record("booking.ChangeBooking", &request)?;
        let id = request.get_ref().id.clone();
        Ok(Response::new(
            self.0.booking(&id, booking::BookingStatus::Confirmed),
        ))
    }
}

/// Starts one tonic server with `routes` and a health service; returns its URL and reporter.
async fn spawn_server(
    routes: tonic::service::Routes,
    stop: CancellationToken,
) -> (String, HealthReporter) {
    let (reporter, health) = tonic_health::server::health_reporter();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_routes(routes.add_service(health))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop.cancelled_owned())
            .await
            .unwrap();
    });
    (url, reporter)
}

/// The gateway and its fakes. Dropping it stops every server.
pub struct Harness {
    pub fakes: Arc<Fakes>,
    pub base_url: String,
    pub http: reqwest::Client,
    pub clock: Arc<SettableClock>,
    pub dev: Option<platform::dev::DevHooks>,
    pub health: HashMap<&'static str, HealthReporter>,
    signing_key: SigningKey,
    stop: CancellationToken,
    gateway_stop: CancellationToken,
    gateway_task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// 2021-08-20 12:00 KST, during the 18–49 round.
pub fn default_now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2021-08-20T12:00:00+09:00")
        .unwrap()
        .with_timezone(&Utc)
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts the fakes and the gateway; `configure` may change the gateway's config.
    pub async fn start_with(configure: impl FnOnce(&mut gateway::Config)) -> Self {
        let signing_key = SigningKey::generate(&mut rand::rngs::OsRng);
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(signing_key.verifying_key().as_bytes());
        let jwks_json = serde_json::json!({
            "keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": KID, "alg": "EdDSA", "use": "sig"}]
        })
        .to_string();
        let clock = Arc::new(SettableClock::starting_at(default_now()));
        let grant_keys = Arc::new(platform::grants::SigningKeys::generate().unwrap());
        let fakes = Arc::new(Fakes {
            calls: Mutex::new(Vec::new()),
            failures: Mutex::new(HashMap::new()),
            session_valid: AtomicBool::new(true),
            modification_allowed_from: Mutex::new(None),
            eligibility: Mutex::new(scheduling::CheckEligibilityResponse {
                eligible: true,
                campaign_id: "c18-49".into(),
                reason: String::new(),
                opens_at: Some(to_timestamp(default_now() - chrono::Duration::hours(16))),
                closes_at: Some(to_timestamp(default_now() + chrono::Duration::hours(6))),
                vaccination_from: "2021-08-26".into(),
                vaccination_to: "2021-09-30".into(),
                campaign: None,
                ..Default::default()
            }),
            windows: Mutex::new(scheduling::ListWindowsResponse::default()),
            gate: Mutex::new(None),
            jwks_json,
            grant_keys: grant_keys.clone(),
            clock: clock.clone(),
        });
        let stop = CancellationToken::new();
        let fake = Fake(fakes.clone());
        let (auth_url, auth_health) = spawn_server(
            tonic::service::Routes::new(auth::auth_service_server::AuthServiceServer::new(
                fake.clone(),
            ))
            .add_service(auth::proxy_service_server::ProxyServiceServer::new(
                fake.clone(),
            ))
            .add_service(auth::staff_auth_service_server::StaffAuthServiceServer::new(fake.clone()))
            .add_service(
                platform::grants::KeysServer::new(platform::auth::ISSUER, grant_keys.clone())
                    .into_service(),
            ),
            stop.clone(),
        )
        .await;
        let (session_url, session_health) = spawn_server(
            tonic::service::Routes::new(
                session::session_service_server::SessionServiceServer::new(fake.clone()),
            ),
            stop.clone(),
        )
        .await;
        let (scheduling_url, scheduling_health) = spawn_server(
            tonic::service::Routes::new(
                scheduling::scheduling_service_server::SchedulingServiceServer::new(fake.clone()),
            ),
            stop.clone(),
        )
        .await;
        let (booking_url, booking_health) = spawn_server(
            tonic::service::Routes::new(
                booking::booking_service_server::BookingServiceServer::new(fake),
            ),
            stop.clone(),
        )
        .await;

        let mut config = gateway::Config::local(auth_url, session_url, scheduling_url, booking_url);
        config.public_base_url = PUBLIC_URL.to_owned();
        config.clock = clock.clone();
        configure(&mut config);
        let dev = config.dev.clone();
        let listener = TcpListener::bind(config.listen_addr).await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let gateway_stop = stop.child_token();
        let gateway_task = tokio::spawn(gateway::serve(config, listener, gateway_stop.clone()));
        Self {
            fakes,
            base_url,
            http: reqwest::Client::new(),
            clock,
            dev,
            health: HashMap::from([
                ("auth-svc", auth_health),
                ("session-svc", session_health),
                ("scheduling-svc", scheduling_health),
                ("booking-svc", booking_health),
            ]),
            signing_key,
            stop,
            gateway_stop,
            gateway_task: Some(gateway_task),
        }
    }

    /// The token that stops the gateway (not the fakes).
    pub fn gateway_stop(&self) -> CancellationToken {
        self.gateway_stop.clone()
    }

    /// Cancels the gateway's shutdown token and waits (at most 10 s) for `serve` to return.
    pub async fn stop_gateway(&mut self) -> anyhow::Result<()> {
        self.gateway_stop.cancel();
        let task = self.gateway_task.take().expect("the gateway is running");
        tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .expect("serve returns within its grace period")
            .unwrap()
    }

    pub fn claims(&self) -> AccessClaims {
        let now = self.clock.now().timestamp();
        AccessClaims {
            iss: platform::auth::ISSUER.into(),
            aud: platform::auth::AUDIENCE.into(),
            sub: PERSON_KEY.into(),
            sid: SESSION_ID.into(),
            dev: DEVICE.into(),
            bd: "1990-01-19".into(),
            role: Role::Citizen,
            iat: now,
            exp: now + 1800,
            jti: uuid::Uuid::new_v4().to_string(),
            fence: None,
        }
    }

    /// A token signed with `key` for `claims`.
    pub fn sign(key: &SigningKey, claims: &AccessClaims) -> String {
        let der = key.to_pkcs8_der().unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(KID.into());
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
        )
        .unwrap()
    }

    /// A valid token for [`DEVICE`].
    pub fn token(&self) -> String {
        Self::sign(&self.signing_key, &self.claims())
    }

    pub fn token_with(&self, change: impl FnOnce(&mut AccessClaims)) -> String {
        let mut claims = self.claims();
        change(&mut claims);
        Self::sign(&self.signing_key, &claims)
    }

    /// An agent or operator token (auth-svc's `StaffAuthService.Login` answer) for `role`,
    /// signed with the fake auth-svc's grant keys.
    pub fn staff_token(&self, role: platform::staff::StaffRole) -> String {
        let issuer = platform::grants::GrantIssuer::new(self.fakes.grant_keys.clone());
        let claims = platform::staff::AgentToken {
            sub: STAFF_ACCOUNT.into(),
            username: format!("{}.test", role.as_str()),
            org: "test-call-center".into(),
            role,
        };
        issuer
            .issue(&claims, self.clock.now(), platform::staff::AGENT_TOKEN_TTL)
            .unwrap()
            .token
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A request with no headers at all.
    pub fn bare(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// A request as the verified person on [`DEVICE`].
    pub fn authed(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.bare(method, path)
            .header("x-device-id", DEVICE)
            .bearer_auth(self.token())
    }

    pub async fn set_health(&self, service: &str, status: ServingStatus) {
        self.health[service].set_service_status("", status).await;
    }
}

/// Reads a problem answer, checking its content type.
pub async fn problem(response: reqwest::Response) -> (u16, http::HeaderMap, serde_json::Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let content_type = headers
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        content_type, "application/problem+json",
        "status {status} body {body}"
    );
    assert_eq!(body["status"], status, "{body}");
    (status, headers, body)
}

/// The problem name at the end of a problem document's `type`.
pub fn problem_name(body: &serde_json::Value) -> String {
    let kind = body["type"].as_str().unwrap();
    assert!(
        kind.starts_with(&format!("{PUBLIC_URL}/problems/")),
        "type {kind}"
    );
    kind.rsplit('/').next().unwrap().to_owned()
}
