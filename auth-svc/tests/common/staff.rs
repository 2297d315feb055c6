//! auth-svc with staff accounts, for the call-center tests: `serve` on a fresh PostgreSQL
//! database of its own (staff accounts and audit trail), configured as production is (no
//! dev-run operator key, so admin calls take operator tokens only), with the test's accounts
//! created first as `vaxbook accounts create` does, and their logins with password and the
//! current TOTP code.

use std::sync::Arc;

use auth_svc::accounts::store::PgAccountStore;
use auth_svc::accounts::{create_account, credentials};
use platform::audit::{AUTH_TRAIL, PgAuditLog};
use platform::grants::{GrantIssuer, SigningKeys};
use platform::operator::OperatorCredential;
use platform::staff::{AGENT_TOKEN_TTL, AgentToken, StaffRole};
use proto::audit::v1::audit_service_client::AuditServiceClient;
use proto::auth::v1 as pb;
use proto::auth::v1::staff_auth_service_client::StaffAuthServiceClient;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// The password of every test account.
pub const PASSWORD: &str = "a long staff password";

/// An account created for a test: its login name, TOTP secret and id.
pub struct Created {
    pub username: &'static str,
    pub totp_secret: String,
    pub id: String,
}

/// auth-svc on its own PostgreSQL database, with the accounts created first.
pub struct Staff {
    pub running: super::Running,
    /// The account store of that database, for changes behind auth-svc's back.
    pub accounts: PgAccountStore,
    /// auth-svc's audit trail in that database, to read it without the service.
    pub trail: PgAuditLog,
    pub created: Vec<Created>,
}

/// Creates `accounts` (username, organisation, role) in a fresh database named after `label`,
/// then starts auth-svc on it.
pub async fn start(label: &str, accounts: &[(&'static str, &str, StaffRole)]) -> Staff {
    let url = platform::pg::create_test_database(label).await.unwrap();
    let pool = platform::pg::pool(&url, 2).unwrap();
    let store = PgAccountStore::migrate(&url, pool.clone()).await.unwrap();
    let mut created = Vec::new();
    for (username, organisation, role) in accounts {
        let account = create_account(
            &store,
            username,
            organisation,
            *role,
            PASSWORD.to_owned(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        created.push(Created {
            username,
            totp_secret: account.totp_secret,
            id: account.account.id.to_string(),
        });
    }
    let running = super::start_with(label, |config| {
        config.staff_database = Some(platform::config::ConnectionUrl::new(url.clone()));
        // As in production: admin calls take operator tokens only.
        config.common.dev_operator_key = None;
    })
    .await;
    Staff {
        running,
        accounts: store,
        trail: PgAuditLog::new(pool, AUTH_TRAIL),
        created,
    }
}

impl Staff {
    pub fn staff(&self) -> StaffAuthServiceClient<Channel> {
        StaffAuthServiceClient::new(self.running.channel.clone())
    }

    /// auth-svc's `vaxbook.audit.v1.AuditService`.
    pub fn audit(&self) -> AuditServiceClient<Channel> {
        AuditServiceClient::new(self.running.channel.clone())
    }

    pub fn account(&self, username: &str) -> &Created {
        self.created
            .iter()
            .find(|created| created.username == username)
            .unwrap()
    }

    /// The account id of `username`.
    pub fn id(&self, username: &str) -> String {
        self.account(username).id.clone()
    }

    /// The current TOTP code of `username`.
    pub fn code(&self, username: &str) -> String {
        let unix = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
        credentials::totp_code(&self.account(username).totp_secret, username, unix).unwrap()
    }

    /// A login with `password` and `code`.
    pub async fn login_with(
        &self,
        username: &str,
        password: &str,
        code: &str,
    ) -> Result<pb::LoginResponse, Status> {
        self.staff()
            .login(pb::LoginRequest {
                username: username.to_owned(),
                password: password.to_owned(),
                totp_code: code.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// A login with `password` and the current code.
    pub async fn login(&self, username: &str, password: &str) -> Result<pb::LoginResponse, Status> {
        self.login_with(username, password, &self.code(username))
            .await
    }

    /// The agent (or operator) token of a successful login.
    pub async fn token(&self, username: &str) -> String {
        self.login(username, PASSWORD).await.unwrap().token
    }

    /// A citizen's access token, signed by this auth-svc after a real phone verification.
    pub async fn citizen_token(&self) -> String {
        let started = self
            .running
            .start(super::start_request("phone-a"))
            .await
            .unwrap();
        let otp = self.running.latest_otp().await;
        self.running
            .complete(&started.verification_id, &otp, "phone-a")
            .await
            .unwrap()
            .access_token
    }
}

/// `message` with `token` as `authorization: Bearer`.
pub fn with_token<T>(message: T, token: &str) -> Request<T> {
    OperatorCredential::Token(token.to_owned())
        .request(message)
        .unwrap()
}

/// An operator token signed with a key auth-svc never had.
pub fn forged_operator_token() -> String {
    let claims = AgentToken {
        sub: uuid::Uuid::new_v4().to_string(),
        username: "operator.forged".to_owned(),
        org: "national-operations".to_owned(),
        role: StaffRole::Operator,
    };
    GrantIssuer::new(Arc::new(SigningKeys::generate().unwrap()))
        .issue(&claims, chrono::Utc::now(), AGENT_TOKEN_TTL)
        .unwrap()
        .token
}
