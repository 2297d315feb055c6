//! The dev run's call-center agent: `vaxbook dev` keeps staff accounts in memory, so without a
//! seeded account nobody could log in to try the call-center channel. Only `serve` in dev mode
//! seeds it; the password and TOTP secret are public development values
//! (`vaxbook accounts totp --secret DEV_AGENT_TOTP_SECRET` prints the current code).

use chrono::{DateTime, Utc};
use platform::staff::StaffRole;

use super::store::AccountStore;
use super::{NewAccount, credentials};

/// Login name of the dev run's agent.
pub const DEV_AGENT_USERNAME: &str = "agent.dev";
/// Its organisation.
pub const DEV_AGENT_ORGANISATION: &str = "dev-call-center";
/// Its password (development only).
pub const DEV_AGENT_PASSWORD: &str = "vaxbook-dev-agent-password";
/// Its TOTP secret, base32 (development only).
pub const DEV_AGENT_TOTP_SECRET: &str = "KRSXG5CUN5ZHIU3FMNZGK5BUGEZDGNBV";

/// Creates the dev agent in `store`.
pub async fn seed(store: &dyn AccountStore, at: DateTime<Utc>) -> anyhow::Result<()> {
    let password_hash = credentials::hash_password(DEV_AGENT_PASSWORD.to_owned()).await?;
    store
        .create(
            NewAccount {
                username: DEV_AGENT_USERNAME.to_owned(),
                organisation: DEV_AGENT_ORGANISATION.to_owned(),
                role: StaffRole::Agent,
                password_hash,
                totp_secret: DEV_AGENT_TOTP_SECRET.to_owned(),
            },
            at,
        )
        .await
        .map_err(|err| anyhow::anyhow!("seeding the dev agent: {err}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use platform::audit::MemoryAuditLog;
    use platform::clock::{SettableClock, SharedClock};
    use platform::grants::{GrantIssuer, SigningKeys};

    use super::*;
    use crate::accounts::StaffLogin;
    use crate::accounts::store::MemoryAccountStore;

    #[tokio::test]
    async fn the_dev_agent_logs_in_with_the_published_secrets() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let clock: SharedClock = Arc::new(SettableClock::starting_at(at));
        let store = Arc::new(MemoryAccountStore::new());
        seed(store.as_ref(), at).await.expect("seed");
        let keys = Arc::new(SigningKeys::generate().expect("keys"));
        let login = StaffLogin::new(
            store,
            Arc::new(MemoryAuditLog::new()),
            GrantIssuer::new(keys),
            clock,
        );
        let unix = u64::try_from(at.timestamp()).unwrap_or_default();
        let code =
            credentials::totp_code(DEV_AGENT_TOTP_SECRET, DEV_AGENT_USERNAME, unix).expect("code");
        let logged_in = login
            .login(DEV_AGENT_USERNAME, DEV_AGENT_PASSWORD.to_owned(), &code)
            .await
            .expect("login");
        assert_eq!(logged_in.account.organisation, DEV_AGENT_ORGANISATION);
    }
}
