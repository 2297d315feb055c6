//! Login rules: each refusal has its own reason and an audit entry; lockout after
//! [`super::MAX_FAILURES`]; disabled accounts; the agent token carries role and organisation.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use platform::audit::{MemoryAuditLog, verify_chain};
use platform::clock::{Clock as _, SettableClock, SharedClock};
use platform::grants::{GrantIssuer, GrantVerifier, SigningKeys, StaticKeysSource};
use platform::problem::ProblemKind;
use platform::staff::{AgentToken, StaffRole};

use super::store::{AccountStore, MemoryAccountStore};
use super::*;

const PASSWORD: &str = "a long staff password";

struct Fixture {
    login: StaffLogin,
    store: Arc<MemoryAccountStore>,
    audit: Arc<MemoryAuditLog>,
    verifier: GrantVerifier,
    clock: Arc<SettableClock>,
    totp_secret: String,
}

fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
}

async fn fixture() -> Fixture {
    let clock = Arc::new(SettableClock::starting_at(start()));
    let shared: SharedClock = clock.clone();
    let keys = Arc::new(SigningKeys::generate().expect("keys"));
    let verifier = GrantVerifier::new(Arc::new(StaticKeysSource(keys.jwks())), shared.clone());
    let store = Arc::new(MemoryAccountStore::new());
    let audit = Arc::new(MemoryAuditLog::new());
    let created = create_account(
        store.as_ref(),
        "agent.kim",
        "national-call-center",
        StaffRole::Agent,
        PASSWORD.to_owned(),
        start(),
    )
    .await
    .expect("create");
    Fixture {
        login: StaffLogin::new(store.clone(), audit.clone(), GrantIssuer::new(keys), shared),
        store,
        audit,
        verifier,
        clock,
        totp_secret: created.totp_secret,
    }
}

impl Fixture {
    fn code(&self) -> String {
        let unix = u64::try_from(self.clock.now().timestamp()).unwrap_or_default();
        credentials::totp_code(&self.totp_secret, "agent.kim", unix).expect("code")
    }

    fn outcomes(&self) -> Vec<String> {
        self.audit
            .entries()
            .into_iter()
            .map(|e| e.record.outcome)
            .collect()
    }
}

fn reason(problem: &Problem) -> &str {
    problem
        .extra
        .get("reason")
        .map(String::as_str)
        .unwrap_or("")
}

#[tokio::test]
async fn a_login_earns_an_agent_token_for_the_staff_audience() {
    let f = fixture().await;
    let code = f.code();
    let logged_in = f
        .login
        .login("agent.kim", PASSWORD.into(), &code)
        .await
        .expect("login");
    let verified = f
        .verifier
        .verify::<AgentToken>(&logged_in.token.token)
        .await
        .expect("verifies");
    assert_eq!(verified.claims.role, StaffRole::Agent);
    assert_eq!(verified.claims.org, "national-call-center");
    assert_eq!(verified.claims.sub, logged_in.account.id.to_string());
    // An agent token is never a citizen access token.
    let citizen = platform::auth::TokenVerifier::new(
        Arc::new(StaticKeysSource(f.login.issuer.keys().jwks())),
        f.clock.clone(),
    );
    assert!(citizen.verify(&logged_in.token.token).await.is_err());
    assert_eq!(f.outcomes(), vec!["ok"]);
}

#[tokio::test]
async fn each_refusal_has_its_reason_and_an_audit_entry() {
    let f = fixture().await;
    let code = f.code();
    let wrong_password = f
        .login
        .login("agent.kim", "not the password".into(), &code)
        .await;
    let wrong_code = f.login.login("agent.kim", PASSWORD.into(), "000000").await;
    let unknown = f.login.login("agent.lee", PASSWORD.into(), &code).await;
    let [Err(a), Err(b), Err(c)] = [wrong_password, wrong_code, unknown].map(|r| r.map(|_| ()))
    else {
        panic!("every attempt must be refused");
    };
    assert_eq!(
        (a.kind, reason(&a)),
        (ProblemKind::InvalidCredentials, "invalid-credentials")
    );
    assert_eq!(
        (b.kind, reason(&b)),
        (ProblemKind::InvalidSecondFactor, "invalid-second-factor")
    );
    assert_eq!(
        (c.kind, reason(&c)),
        (ProblemKind::InvalidCredentials, "invalid-credentials")
    );
    assert_eq!(
        f.outcomes(),
        vec![
            "invalid-credentials",
            "invalid-second-factor",
            "invalid-credentials"
        ]
    );
    assert_eq!(verify_chain(&f.audit.entries()), Ok(3));
}

#[tokio::test]
async fn repeated_failures_lock_the_account_until_the_lockout_ends() {
    let f = fixture().await;
    for _ in 0..MAX_FAILURES {
        let _ = f
            .login
            .login("agent.kim", "not the password".into(), "000000")
            .await;
    }
    let code = f.code();
    let locked = f
        .login
        .login("agent.kim", PASSWORD.into(), &code)
        .await
        .map(|_| ());
    let Err(locked) = locked else {
        panic!("a locked account must be refused");
    };
    assert_eq!(
        (locked.kind, reason(&locked)),
        (ProblemKind::AccountLocked, "account-locked")
    );
    assert!(locked.retry_after.is_some());
    f.clock.set(
        start()
            + chrono::Duration::from_std(LOCKOUT).unwrap_or_default()
            + chrono::Duration::minutes(1),
    );
    let code = f.code();
    let after = f.login.login("agent.kim", PASSWORD.into(), &code).await;
    assert!(after.is_ok(), "{:?}", after.err());
    assert_eq!(f.outcomes().last().map(String::as_str), Some("ok"));
}

#[tokio::test]
async fn a_disabled_account_is_refused() {
    let f = fixture().await;
    assert!(
        f.store
            .set_disabled("agent.kim", true)
            .await
            .expect("disable")
    );
    let code = f.code();
    let Err(problem) = f
        .login
        .login("agent.kim", PASSWORD.into(), &code)
        .await
        .map(|_| ())
    else {
        panic!("a disabled account must be refused");
    };
    assert_eq!(
        (problem.kind, reason(&problem)),
        (ProblemKind::AccountDisabled, "account-disabled")
    );
    assert_eq!(f.outcomes(), vec!["account-disabled"]);
}

#[tokio::test]
async fn creation_checks_names_and_password_length() {
    let store = MemoryAccountStore::new();
    assert!(
        create_account(
            &store,
            "A B",
            "org-1",
            StaffRole::Agent,
            PASSWORD.into(),
            start()
        )
        .await
        .is_err()
    );
    assert!(
        create_account(
            &store,
            "agent.a",
            "org-1",
            StaffRole::Agent,
            "short".into(),
            start()
        )
        .await
        .is_err()
    );
    let created = create_account(
        &store,
        "agent.a",
        "org-1",
        StaffRole::Operator,
        PASSWORD.into(),
        start(),
    )
    .await
    .expect("create");
    assert!(created.otpauth_uri.starts_with("otpauth://totp/"));
    assert!(created.account.password_hash.starts_with("$argon2id$"));
}

#[tokio::test]
async fn a_citizen_token_signed_by_the_same_key_is_never_an_agent_token() {
    let f = fixture().await;
    let now = f.clock.now();
    let claims = platform::auth::AccessClaims {
        iss: platform::auth::ISSUER.to_owned(),
        aud: platform::auth::AUDIENCE.to_owned(),
        sub: "person-key".to_owned(),
        sid: "session-1".to_owned(),
        dev: "device-1".to_owned(),
        bd: "1990-01-01".to_owned(),
        role: platform::auth::Role::Citizen,
        iat: now.timestamp(),
        exp: now.timestamp() + 600,
        jti: "jti-1".to_owned(),
        fence: None,
    };
    let citizen = platform::trust::sign_access_token(f.login.issuer.keys(), &claims).expect("sign");
    // The same key verifies it as a citizen token (what the gateway checks)…
    let gateway = platform::auth::TokenVerifier::new(
        Arc::new(StaticKeysSource(f.login.issuer.keys().jwks())),
        f.clock.clone(),
    );
    assert!(gateway.verify(&citizen).await.is_ok());
    // …but no staff RPC takes it as an agent token, nor a caller grant.
    assert!(f.verifier.verify::<AgentToken>(&citizen).await.is_err());
    assert!(
        f.verifier
            .verify::<platform::staff::CallerGrant>(&citizen)
            .await
            .is_err()
    );
}
