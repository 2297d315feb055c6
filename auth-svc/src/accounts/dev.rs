//! The dev run's staff accounts: `vaxbook dev` keeps staff accounts in memory, so without seeded
//! accounts nobody could log in to try the call-center channel or the operators' admin calls.
//! Only `serve` in dev mode seeds them: an agent (`agent.dev`) and an operator
//! (`operator.dev`). Their passwords and TOTP secrets are public development values
//! (`vaxbook accounts totp --secret DEV_AGENT_TOTP_SECRET` prints the agent's current code,
//! `--secret DEV_OPERATOR_TOTP_SECRET` the operator's).

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

/// Login name of the dev run's operator.
pub const DEV_OPERATOR_USERNAME: &str = "operator.dev";
/// Its organisation.
pub const DEV_OPERATOR_ORGANISATION: &str = "dev-operations";
/// Its password (development only).
pub const DEV_OPERATOR_PASSWORD: &str = "vaxbook-dev-operator-password";
/// Its TOTP secret, base32 (development only).
pub const DEV_OPERATOR_TOTP_SECRET: &str = "OZQXQYTPN5VWIZLWN5YGK4TBORXXEMBR";

/// The dev run's accounts: login name, organisation, role, password, TOTP secret.
const DEV_ACCOUNTS: [(&str, &str, StaffRole, &str, &str); 2] = [
    (
        DEV_AGENT_USERNAME,
        DEV_AGENT_ORGANISATION,
        StaffRole::Agent,
        DEV_AGENT_PASSWORD,
        DEV_AGENT_TOTP_SECRET,
    ),
    (
        DEV_OPERATOR_USERNAME,
        DEV_OPERATOR_ORGANISATION,
        StaffRole::Operator,
        DEV_OPERATOR_PASSWORD,
        DEV_OPERATOR_TOTP_SECRET,
    ),
];

/// Creates the dev agent and the dev operator in `store`.
pub async fn seed(store: &dyn AccountStore, at: DateTime<Utc>) -> anyhow::Result<()> {
    for (username, organisation, role, password, totp_secret) in DEV_ACCOUNTS {
        let password_hash = credentials::hash_password(password.to_owned()).await?;
        store
            .create(
                NewAccount {
                    username: username.to_owned(),
                    organisation: organisation.to_owned(),
                    role,
                    password_hash,
                    totp_secret: totp_secret.to_owned(),
                },
                at,
            )
            .await
            .map_err(|err| anyhow::anyhow!("seeding the dev account {username}: {err}"))?;
    }
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
    async fn the_dev_agent_and_operator_log_in_with_the_published_secrets() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let clock: SharedClock = Arc::new(SettableClock::starting_at(at));
        let store = Arc::new(MemoryAccountStore::new());
        seed(store.as_ref(), at).await.expect("seed");
        let keys = Arc::new(SigningKeys::generate().expect("keys"));
        let login = StaffLogin::new(
            store.clone(),
            Arc::new(MemoryAuditLog::new()),
            GrantIssuer::new(keys),
            clock,
        );
        let unix = u64::try_from(at.timestamp()).unwrap_or_default();
        for (username, organisation, role, password, totp_secret) in DEV_ACCOUNTS {
            let code = credentials::totp_code(totp_secret, username, unix).expect("code");
            let logged_in = login
                .login(username, password.to_owned(), &code)
                .await
                .expect("login");
            assert_eq!(logged_in.account.organisation, organisation);
            assert_eq!(logged_in.account.role, role);
        }
        let operator = store
            .find(DEV_OPERATOR_USERNAME)
            .await
            .expect("find")
            .expect("seeded");
        assert_eq!(operator.role, StaffRole::Operator);
        assert_eq!(operator.organisation, "dev-operations");
    }
}
