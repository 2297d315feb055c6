//! Staff accounts of the call-center channel (R9): agents, supervisors and operators of an
//! organisation (the national call center, each local government's), their login with an
//! argon2id-hashed password and a TOTP second factor, the lockout after repeated failures, and
//! the agent token a successful login earns, and their administration by operators and
//! supervisors ([`admin`]: disable, enable, unlock, list). Every login attempt and every
//! administration call is written to the audit trail (platform::audit) under the account id,
//! never with the password or code.

pub mod admin;
pub mod callers;
pub mod credentials;
pub mod dev;
pub mod grpc;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::audit::{AuditLog, AuditRecord};
use platform::audit_grpc::AuditGrpc;
use platform::clock::SharedClock;
use platform::grants::{GrantIssuer, GrantVerifier, IssuedGrant};
use platform::operator::OperatorGuard;
use platform::problem::{Problem, ProblemKind};
use platform::staff::{AGENT_TOKEN_TTL, AgentToken, StaffRole};
use uuid::Uuid;

use self::store::AccountStore;

/// Failed logins in a row before an account is locked.
pub const MAX_FAILURES: i32 = 5;
/// How long a locked account stays locked.
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);

/// A stored staff account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: Uuid,
    pub username: String,
    pub organisation: String,
    pub role: StaffRole,
    pub password_hash: String,
    pub totp_secret: String,
    pub failed_attempts: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

/// An account about to be created (password already hashed).
#[derive(Clone, Debug)]
pub struct NewAccount {
    pub username: String,
    pub organisation: String,
    pub role: StaffRole,
    pub password_hash: String,
    pub totp_secret: String,
}

impl Account {
    fn from_new(account: NewAccount, at: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::new_v4(),
            username: account.username,
            organisation: account.organisation,
            role: account.role,
            password_hash: account.password_hash,
            totp_secret: account.totp_secret,
            failed_attempts: 0,
            locked_until: None,
            disabled: false,
            created_at: platform::audit::to_micros(at),
        }
    }
}

/// Checks a login name or organisation: 3 to 64 of a-z, 0-9, `.`, `-`, `_`.
pub fn valid_name(field: &str, raw: &str) -> Result<String, Problem> {
    let ok = (3..=64).contains(&raw.len())
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(Problem::invalid(format!(
            "{field} must be 3 to 64 of a-z, 0-9, '.', '-', '_'"
        )))
    }
}

/// What `vaxbook accounts create` prints once: the TOTP secret as text and URI.
#[derive(Clone, Debug)]
pub struct CreatedAccount {
    pub account: Account,
    pub totp_secret: String,
    pub otpauth_uri: String,
}

/// Creates an account: validates, hashes the password, draws the TOTP secret.
pub async fn create_account(
    store: &dyn AccountStore,
    username: &str,
    organisation: &str,
    role: StaffRole,
    password: String,
    at: DateTime<Utc>,
) -> anyhow::Result<CreatedAccount> {
    let username = valid_name("username", username).map_err(|p| anyhow::anyhow!(p.detail))?;
    let organisation =
        valid_name("organisation", organisation).map_err(|p| anyhow::anyhow!(p.detail))?;
    if password.chars().count() < credentials::MIN_PASSWORD_CHARS {
        anyhow::bail!(
            "the password needs at least {} characters",
            credentials::MIN_PASSWORD_CHARS
        );
    }
    let totp_secret = credentials::new_totp_secret();
    let otpauth_uri = credentials::otpauth_uri(&totp_secret, &username)?;
    let password_hash = credentials::hash_password(password).await?;
    let account = store
        .create(
            NewAccount {
                username,
                organisation,
                role,
                password_hash,
                totp_secret: totp_secret.clone(),
            },
            at,
        )
        .await?;
    Ok(CreatedAccount {
        account,
        totp_secret,
        otpauth_uri,
    })
}

/// A successful login.
#[derive(Clone, Debug)]
pub struct LoggedIn {
    pub token: IssuedGrant,
    pub account: Account,
}

/// The login rules.
pub struct StaffLogin {
    store: Arc<dyn AccountStore>,
    audit: Arc<dyn AuditLog>,
    issuer: GrantIssuer,
    clock: SharedClock,
}

/// A refused login or staff call: the problem type of `kind`, its name repeated as `reason`
/// (what clients of before the problem types of their own read).
pub(crate) fn refusal(kind: ProblemKind, detail: impl Into<String>) -> Problem {
    Problem::new(kind, detail).with("reason", kind.name())
}

impl StaffLogin {
    pub fn new(
        store: Arc<dyn AccountStore>,
        audit: Arc<dyn AuditLog>,
        issuer: GrantIssuer,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            audit,
            issuer,
            clock,
        }
    }

    pub fn audit(&self) -> &Arc<dyn AuditLog> {
        &self.audit
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Checks password and TOTP code; an agent token on success. Every outcome is audited.
    pub async fn login(
        &self,
        username: &str,
        password: String,
        totp_code: &str,
    ) -> Result<LoggedIn, Problem> {
        let now = self.clock.now();
        let account = self.store.find(username).await.map_err(internal)?;
        let outcome = self.check(account.as_ref(), password, totp_code, now).await;
        let (actor, organisation, role) = account
            .as_ref()
            .map(|a| (a.id.to_string(), a.organisation.clone(), a.role.as_str()))
            .unwrap_or_else(|| ("unknown".to_owned(), String::new(), ""));
        let result = match (&outcome, account) {
            (Ok(()), Some(account)) => {
                self.store
                    .record_success(account.id)
                    .await
                    .map_err(internal)?;
                let claims = AgentToken {
                    sub: account.id.to_string(),
                    username: account.username.clone(),
                    org: account.organisation.clone(),
                    role: account.role,
                };
                let token = self
                    .issuer
                    .issue(&claims, now, AGENT_TOKEN_TTL)
                    .map_err(|err| {
                        tracing::error!(error = %err, "signing an agent token");
                        Problem::internal()
                    })?;
                Ok(LoggedIn { token, account })
            }
            (Ok(()), None) => Err(Problem::internal()),
            (Err(problem), _) => Err(problem.clone()),
        };
        let outcome_name = match &result {
            Ok(_) => "ok".to_owned(),
            Err(problem) => problem
                .extra
                .get("reason")
                .cloned()
                .unwrap_or_else(|| problem.kind.name().to_owned()),
        };
        let record = AuditRecord {
            actor,
            organisation,
            role: role.to_owned(),
            action: "staff.login".to_owned(),
            person_key: None,
            outcome: outcome_name,
        };
        // No audit entry, no token: the trail must be complete.
        platform::audit::append_or_unavailable(&*self.audit, now, record).await?;
        result
    }

    async fn check(
        &self,
        account: Option<&Account>,
        password: String,
        totp_code: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Problem> {
        let invalid = || {
            refusal(
                ProblemKind::InvalidCredentials,
                "unknown account or wrong password",
            )
        };
        let Some(account) = account else {
            // Same work as for a real account, so timing does not tell names apart.
            let _ = credentials::verify_password(password, DUMMY_HASH.to_owned()).await;
            return Err(invalid());
        };
        if account.disabled {
            return Err(refusal(
                ProblemKind::AccountDisabled,
                "the account is disabled",
            ));
        }
        if let Some(until) = account.locked_until
            && until > now
        {
            let wait = (until - now).to_std().unwrap_or_default();
            return Err(refusal(
                ProblemKind::AccountLocked,
                "the account is locked after repeated failed logins",
            )
            .with_retry_after(wait));
        }
        let password_ok = credentials::verify_password(password, account.password_hash.clone())
            .await
            .map_err(internal)?;
        let unix = u64::try_from(now.timestamp()).unwrap_or_default();
        let failure = if !password_ok {
            Some(invalid())
        } else if !credentials::check_totp(&account.totp_secret, &account.username, totp_code, unix)
        {
            Some(refusal(
                ProblemKind::InvalidSecondFactor,
                "the TOTP code is wrong",
            ))
        } else {
            None
        };
        let Some(problem) = failure else {
            return Ok(());
        };
        let lock_until = now + chrono::Duration::from_std(LOCKOUT).unwrap_or_default();
        self.store
            .record_failure(account.id, MAX_FAILURES, lock_until)
            .await
            .map_err(internal)?;
        Err(problem)
    }
}

/// An argon2id hash of a random string, verified against for unknown names.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0jYEv0lQq0Ck9kG7dJmHn1tfVZCrE6JcYxgBCBx0mWc";

fn internal(err: anyhow::Error) -> Problem {
    tracing::error!(error = %err, "staff account store");
    Problem::new(ProblemKind::Unavailable, "the account store is unavailable")
}

#[cfg(test)]
mod tests;

/// auth-svc's staff stores: the accounts and the audit trail that logins, caller verifications,
/// staff refusals and the operators' person-key derivations are written to.
#[derive(Clone)]
pub struct StaffStores {
    pub accounts: Arc<dyn AccountStore>,
    pub audit: Arc<dyn AuditLog>,
}

/// Opens the staff stores: PostgreSQL (migrated; the audit trail is the trail `auth`) when
/// `AUTH_DATABASE_URL` is set, memory otherwise (the dev run, whose agent and operator are
/// seeded in dev mode only).
pub async fn open_stores(config: &crate::Config) -> anyhow::Result<StaffStores> {
    Ok(match &config.staff_database {
        Some(url) => {
            let pool = platform::pg::pool(url.expose(), 4)?;
            let accounts = store::PgAccountStore::migrate(url.expose(), pool.clone()).await?;
            let audit = platform::audit::PgAuditLog::migrate(
                url.expose(),
                pool,
                platform::audit::AUTH_TRAIL,
            )
            .await?;
            StaffStores {
                accounts: Arc::new(accounts),
                audit: Arc::new(audit),
            }
        }
        None => {
            let accounts = store::MemoryAccountStore::new();
            if config.dev_mode {
                dev::seed(&accounts, config.clock.now()).await?;
            }
            StaffStores {
                accounts: Arc::new(accounts),
                audit: Arc::new(platform::audit::MemoryAuditLog::new()),
            }
        }
    })
}

/// Verifies auth-svc's own grants (agent and operator tokens, caller grants) against its own
/// keys, without a network call.
pub fn own_grants(signer: &crate::tokens::TokenSigner, clock: SharedClock) -> Arc<GrantVerifier> {
    Arc::new(GrantVerifier::new(
        Arc::new(platform::grants::StaticKeysSource(signer.jwks())),
        clock,
    ))
}

/// The staff routes as `serve` registers them, over `stores`: `StaffAuthService`, and the
/// `vaxbook.audit.v1.AuditService` reading the same trail (operators query and verify it,
/// supervisors query their organisation's entries; the dev key only in a dev run). Caller
/// verification borrows the citizens' phone provider and the challenge store it files codes in.
pub fn staff_routes(
    config: &crate::Config,
    signer: &crate::tokens::TokenSigner,
    stores: &StaffStores,
    phone: Arc<dyn crate::providers::IdentityProvider>,
    challenges: Arc<dyn crate::store::ChallengeStore>,
) -> tonic::service::Routes {
    let issuer = signer.grant_issuer();
    let verifications = Arc::new(callers::CallerVerifications {
        phone,
        store: challenges,
        audit: stores.audit.clone(),
        issuer: issuer.clone(),
        clock: config.clock.clone(),
        person_key_secret: config.person_key_secret.expose().as_bytes().to_vec(),
    });
    let login = Arc::new(StaffLogin::new(
        stores.accounts.clone(),
        stores.audit.clone(),
        issuer,
        config.clock.clone(),
    ));
    let admin = Arc::new(admin::AccountAdmin::new(
        stores.accounts.clone(),
        stores.audit.clone(),
        config.clock.clone(),
    ));
    let verifier = own_grants(signer, config.clock.clone());
    let guard = OperatorGuard::new(verifier.clone(), config.common.dev_operator_key.clone());
    let reader = AuditGrpc::new(stores.audit.clone(), guard, config.clock.clone());
    tonic::service::Routes::new(
        grpc::StaffAuthGrpc::new(login, verifier, verifications, admin).into_service(),
    )
    .add_service(reader.into_service())
}
