//! Where staff accounts live: the trait, the in-memory store (dev run, unit tests) and the
//! PostgreSQL store (table `staff_accounts`, auth-svc's migrations). Both pass one conformance
//! suite ([`conformance`]).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Account, NewAccount};

/// Outcome of creating an account.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("an account named {0} exists already")]
    Taken(String),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn create(&self, account: NewAccount, at: DateTime<Utc>) -> Result<Account, CreateError>;
    async fn find(&self, username: &str) -> anyhow::Result<Option<Account>>;
    /// Counts a failed login; at `max_failures` the account is locked until `lock_until`.
    /// Returns the account as it is now.
    async fn record_failure(
        &self,
        id: Uuid,
        max_failures: i32,
        lock_until: DateTime<Utc>,
    ) -> anyhow::Result<Option<Account>>;
    /// Clears the failure count and any expired lock after a successful login.
    async fn record_success(&self, id: Uuid) -> anyhow::Result<()>;
    /// Disables or enables the account named `username`; false when there is none.
    async fn set_disabled(&self, username: &str, disabled: bool) -> anyhow::Result<bool>;
    /// Lifts the lockout of the account named `username` before it runs out: no lock, no
    /// failures counted. False when there is no such account.
    async fn unlock(&self, username: &str) -> anyhow::Result<bool>;
    /// Every account, or those of `organisation`, by organisation then login name.
    async fn list(&self, organisation: Option<&str>) -> anyhow::Result<Vec<Account>>;
}

#[derive(Debug, Default)]
pub struct MemoryAccountStore {
    accounts: Mutex<HashMap<String, Account>>,
}

impl MemoryAccountStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> anyhow::Result<std::sync::MutexGuard<'_, HashMap<String, Account>>> {
        self.accounts
            .lock()
            .map_err(|_| anyhow::anyhow!("account store lock poisoned"))
    }
}

#[async_trait]
impl AccountStore for MemoryAccountStore {
    async fn create(&self, account: NewAccount, at: DateTime<Utc>) -> Result<Account, CreateError> {
        let mut accounts = self.lock()?;
        if accounts.contains_key(&account.username) {
            return Err(CreateError::Taken(account.username));
        }
        let created = Account::from_new(account, at);
        accounts.insert(created.username.clone(), created.clone());
        Ok(created)
    }

    async fn find(&self, username: &str) -> anyhow::Result<Option<Account>> {
        Ok(self.lock()?.get(username).cloned())
    }

    async fn record_failure(
        &self,
        id: Uuid,
        max_failures: i32,
        lock_until: DateTime<Utc>,
    ) -> anyhow::Result<Option<Account>> {
        let mut accounts = self.lock()?;
        let Some(account) = accounts.values_mut().find(|account| account.id == id) else {
            return Ok(None);
        };
        account.failed_attempts += 1;
        if account.failed_attempts >= max_failures {
            account.locked_until = Some(lock_until);
            account.failed_attempts = 0;
        }
        Ok(Some(account.clone()))
    }

    async fn record_success(&self, id: Uuid) -> anyhow::Result<()> {
        let mut accounts = self.lock()?;
        if let Some(account) = accounts.values_mut().find(|account| account.id == id) {
            account.failed_attempts = 0;
            account.locked_until = None;
        }
        Ok(())
    }

    async fn set_disabled(&self, username: &str, disabled: bool) -> anyhow::Result<bool> {
        let mut accounts = self.lock()?;
        Ok(accounts
            .get_mut(username)
            .map(|account| account.disabled = disabled)
            .is_some())
    }

    async fn unlock(&self, username: &str) -> anyhow::Result<bool> {
        let mut accounts = self.lock()?;
        Ok(accounts
            .get_mut(username)
            .map(|account| {
                account.failed_attempts = 0;
                account.locked_until = None;
            })
            .is_some())
    }

    async fn list(&self, organisation: Option<&str>) -> anyhow::Result<Vec<Account>> {
        let mut listed: Vec<Account> = self
            .lock()?
            .values()
            .filter(|account| organisation.is_none_or(|org| account.organisation == org))
            .cloned()
            .collect();
        listed.sort_by(|a, b| (&a.organisation, &a.username).cmp(&(&b.organisation, &b.username)));
        Ok(listed)
    }
}

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// auth-svc's refinery history table (services may share a database).
pub const HISTORY_TABLE: &str = "auth_schema_history";

/// Staff accounts in PostgreSQL.
#[derive(Clone)]
pub struct PgAccountStore {
    pool: deadpool_postgres::Pool,
}

impl PgAccountStore {
    /// Applies auth-svc's migrations to `url` and returns the store over `pool`.
    pub async fn migrate(url: &str, pool: deadpool_postgres::Pool) -> anyhow::Result<Self> {
        platform::pg::migrate(url, embedded::migrations::runner(), HISTORY_TABLE).await?;
        Ok(Self { pool })
    }
}

const COLUMNS: &str = "id, username, organisation, role, password_hash, totp_secret, failed_attempts, locked_until, disabled, created_at";

fn from_row(row: &tokio_postgres::Row) -> anyhow::Result<Account> {
    let role: String = row.get("role");
    Ok(Account {
        id: row.get("id"),
        username: row.get("username"),
        organisation: row.get("organisation"),
        role: platform::staff::StaffRole::parse(&role)
            .ok_or_else(|| anyhow::anyhow!("unknown role in staff_accounts"))?,
        password_hash: row.get("password_hash"),
        totp_secret: row.get("totp_secret"),
        failed_attempts: row.get("failed_attempts"),
        locked_until: row.get("locked_until"),
        disabled: row.get("disabled"),
        created_at: row.get("created_at"),
    })
}

#[async_trait]
impl AccountStore for PgAccountStore {
    async fn create(&self, account: NewAccount, at: DateTime<Utc>) -> Result<Account, CreateError> {
        let created = Account::from_new(account, at);
        let client = self.pool.get().await.map_err(anyhow::Error::from)?;
        let inserted = client
            .execute(
                "INSERT INTO staff_accounts (id, username, organisation, role, password_hash, totp_secret, failed_attempts, locked_until, disabled, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 0, NULL, FALSE, $7) ON CONFLICT (username) DO NOTHING",
                &[
                    &created.id,
                    &created.username,
                    &created.organisation,
                    &created.role.as_str(),
                    &created.password_hash,
                    &created.totp_secret,
                    &created.created_at,
                ],
            )
            .await
            .map_err(anyhow::Error::from)?;
        if inserted == 0 {
            return Err(CreateError::Taken(created.username));
        }
        Ok(created)
    }

    async fn find(&self, username: &str) -> anyhow::Result<Option<Account>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM staff_accounts WHERE username = $1"),
                &[&username],
            )
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn record_failure(
        &self,
        id: Uuid,
        max_failures: i32,
        lock_until: DateTime<Utc>,
    ) -> anyhow::Result<Option<Account>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE staff_accounts SET \
                       locked_until = CASE WHEN failed_attempts + 1 >= $2 THEN $3 ELSE locked_until END, \
                       failed_attempts = CASE WHEN failed_attempts + 1 >= $2 THEN 0 ELSE failed_attempts + 1 END \
                     WHERE id = $1 RETURNING {COLUMNS}"
                ),
                &[&id, &max_failures, &lock_until],
            )
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn record_success(&self, id: Uuid) -> anyhow::Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE staff_accounts SET failed_attempts = 0, locked_until = NULL WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(())
    }

    async fn set_disabled(&self, username: &str, disabled: bool) -> anyhow::Result<bool> {
        let client = self.pool.get().await?;
        Ok(client
            .execute(
                "UPDATE staff_accounts SET disabled = $2 WHERE username = $1",
                &[&username, &disabled],
            )
            .await?
            > 0)
    }

    async fn unlock(&self, username: &str) -> anyhow::Result<bool> {
        let client = self.pool.get().await?;
        Ok(client
            .execute(
                "UPDATE staff_accounts SET failed_attempts = 0, locked_until = NULL WHERE username = $1",
                &[&username],
            )
            .await?
            > 0)
    }

    async fn list(&self, organisation: Option<&str>) -> anyhow::Result<Vec<Account>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM staff_accounts \
                     WHERE $1::TEXT IS NULL OR organisation = $1 ORDER BY organisation, username"
                ),
                &[&organisation],
            )
            .await?;
        rows.iter().map(from_row).collect()
    }
}

/// The one behaviour both stores must have.
pub mod conformance {
    use super::*;
    use platform::staff::StaffRole;

    fn new_account(username: &str) -> NewAccount {
        NewAccount {
            username: username.to_owned(),
            organisation: "national-call-center".to_owned(),
            role: StaffRole::Agent,
            password_hash: "$argon2id$placeholder".to_owned(),
            totp_secret: "JBSWY3DPEHPK3PXP".to_owned(),
        }
    }

    pub async fn run(store: &dyn AccountStore) {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let created = store
            .create(new_account("agent.kim"), now)
            .await
            .expect("create");
        assert!(matches!(
            store.create(new_account("agent.kim"), now).await,
            Err(CreateError::Taken(_))
        ));
        let found = store
            .find("agent.kim")
            .await
            .expect("find")
            .expect("exists");
        assert_eq!(found.id, created.id);
        assert_eq!(found.role, StaffRole::Agent);
        assert!(store.find("nobody").await.expect("find").is_none());

        let until = now + chrono::Duration::minutes(15);
        for expected in 1..3 {
            let account = store
                .record_failure(created.id, 3, until)
                .await
                .expect("fail")
                .expect("exists");
            assert_eq!(account.failed_attempts, expected);
            assert_eq!(account.locked_until, None);
        }
        let locked = store
            .record_failure(created.id, 3, until)
            .await
            .expect("fail")
            .expect("exists");
        assert_eq!(locked.locked_until, Some(until));
        store.record_success(created.id).await.expect("success");
        let cleared = store
            .find("agent.kim")
            .await
            .expect("find")
            .expect("exists");
        assert_eq!((cleared.failed_attempts, cleared.locked_until), (0, None));

        assert!(
            store
                .set_disabled("agent.kim", true)
                .await
                .expect("disable")
        );
        assert!(
            store
                .find("agent.kim")
                .await
                .expect("find")
                .expect("exists")
                .disabled
        );
        assert!(!store.set_disabled("nobody", true).await.expect("disable"));
        assert!(
            store
                .set_disabled("agent.kim", false)
                .await
                .expect("enable")
        );

        // Unlocking lifts the lock and forgets the failures before the lock runs out.
        // Three failures lock the account, a fourth is counted towards the next lock.
        for _ in 0..4 {
            store
                .record_failure(created.id, 3, until)
                .await
                .expect("fail");
        }
        let locked = store
            .find("agent.kim")
            .await
            .expect("find")
            .expect("exists");
        assert_eq!(
            (locked.failed_attempts, locked.locked_until),
            (1, Some(until))
        );
        assert!(store.unlock("agent.kim").await.expect("unlock"));
        let unlocked = store
            .find("agent.kim")
            .await
            .expect("find")
            .expect("exists");
        assert_eq!((unlocked.failed_attempts, unlocked.locked_until), (0, None));
        assert!(!unlocked.disabled);
        assert!(!store.unlock("nobody").await.expect("unlock"));

        // Listing: by organisation, then login name; filtered by organisation.
        let mut other = new_account("agent.ahn");
        other.organisation = "seoul-gangnam".to_owned();
        store.create(other, now).await.expect("create");
        store
            .create(new_account("agent.choi"), now)
            .await
            .expect("create");
        let names = |accounts: Vec<Account>| {
            accounts
                .into_iter()
                .map(|a| (a.organisation, a.username))
                .collect::<Vec<_>>()
        };
        let pair = |org: &str, name: &str| (org.to_owned(), name.to_owned());
        assert_eq!(
            names(store.list(None).await.expect("list")),
            vec![
                pair("national-call-center", "agent.choi"),
                pair("national-call-center", "agent.kim"),
                pair("seoul-gangnam", "agent.ahn"),
            ]
        );
        assert_eq!(
            names(store.list(Some("seoul-gangnam")).await.expect("list")),
            vec![pair("seoul-gangnam", "agent.ahn")]
        );
        assert!(store.list(Some("nowhere")).await.expect("list").is_empty());
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_memory_store_conforms() {
        super::conformance::run(&super::MemoryAccountStore::new()).await;
    }
}
