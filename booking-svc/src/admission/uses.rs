//! How many booking writes each admission grant has been used for, shared by every replica:
//! a PostgreSQL table in production (its own migrations and history table, next to the booking
//! schema), a map in the dev run. A grant allows `uses` attempts; the first that succeeds spends
//! it, recording its idempotency key so a retry of that very write still passes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use platform::problem::{Problem, ProblemKind};

/// What spending one use of a grant came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spend {
    /// The attempt may go ahead; it is use number `n`.
    Allowed(u32),
    /// Every use is gone, or a write succeeded on it (with that write's idempotency key).
    Spent { by: Option<String> },
}

/// The use counts of admission grants.
#[async_trait]
pub trait AdmissionUses: Send + Sync {
    /// Takes one use of grant `id` if fewer than `allowed` were taken.
    async fn spend(
        &self,
        id: &str,
        allowed: u32,
        expires_at: DateTime<Utc>,
    ) -> Result<Spend, Problem>;
    /// Marks grant `id` spent by a successful write (`by`: its idempotency key).
    async fn finish(&self, id: &str, by: Option<&str>) -> Result<(), Problem>;
}

fn unavailable(error: &dyn std::fmt::Display) -> Problem {
    tracing::error!(error = %error, "the admission-use store failed");
    Problem::new(
        ProblemKind::Unavailable,
        "the admission check cannot be made now",
    )
    .with_retry_after(std::time::Duration::from_secs(1))
}

/// Use counts in process memory (dev run, tests), purged of expired grants as they grow.
#[derive(Debug, Default)]
pub struct MemoryAdmissionUses {
    grants: Mutex<HashMap<String, GrantUses>>,
}

#[derive(Debug)]
struct GrantUses {
    used: u32,
    spent_by: Option<String>,
    expires_at: DateTime<Utc>,
}

#[async_trait]
impl AdmissionUses for MemoryAdmissionUses {
    async fn spend(
        &self,
        id: &str,
        allowed: u32,
        expires_at: DateTime<Utc>,
    ) -> Result<Spend, Problem> {
        let mut grants = self
            .grants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if grants.len() > 100_000 {
            let now = Utc::now();
            grants.retain(|_, grant| grant.expires_at + chrono::Duration::hours(1) > now);
        }
        let entry = grants.entry(id.to_owned()).or_insert(GrantUses {
            used: 0,
            spent_by: None,
            expires_at,
        });
        if entry.spent_by.is_some() || entry.used >= allowed {
            return Ok(Spend::Spent {
                by: entry.spent_by.clone(),
            });
        }
        entry.used += 1;
        Ok(Spend::Allowed(entry.used))
    }

    async fn finish(&self, id: &str, by: Option<&str>) -> Result<(), Problem> {
        let mut grants = self
            .grants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = grants.get_mut(id) {
            entry.spent_by = Some(by.unwrap_or_default().to_owned());
        }
        Ok(())
    }
}

mod embedded {
    refinery::embed_migrations!("admission_migrations");
}

/// Name of the admission-use table's migration history (the booking schema has its own).
pub const ADMISSION_HISTORY_TABLE: &str = "admission_schema_history";

/// Use counts in PostgreSQL.
#[derive(Clone)]
pub struct PgAdmissionUses {
    pool: Pool,
    spends: std::sync::Arc<AtomicU64>,
}

impl PgAdmissionUses {
    /// Applies the table's migrations to `url` and counts over `pool`.
    pub async fn migrate(url: &str, pool: Pool) -> anyhow::Result<Self> {
        platform::pg::migrate(url, embedded::migrations::runner(), ADMISSION_HISTORY_TABLE).await?;
        Ok(Self {
            pool,
            spends: std::sync::Arc::new(AtomicU64::new(0)),
        })
    }
}

#[async_trait]
impl AdmissionUses for PgAdmissionUses {
    async fn spend(
        &self,
        id: &str,
        allowed: u32,
        expires_at: DateTime<Utc>,
    ) -> Result<Spend, Problem> {
        let client = self.pool.get().await.map_err(|err| unavailable(&err))?;
        let allowed = i32::try_from(allowed).unwrap_or(i32::MAX);
        // One statement: concurrent writes on one grant are counted by the row lock.
        let taken = client
            .query_opt(
                "INSERT INTO admission_uses (grant_id, used, expires_at) VALUES ($1, 1, $3)
                 ON CONFLICT (grant_id) DO UPDATE SET used = admission_uses.used + 1
                 WHERE admission_uses.used < $2 AND admission_uses.spent_by IS NULL
                 RETURNING used",
                &[&id, &allowed, &expires_at],
            )
            .await
            .map_err(|err| unavailable(&err))?;
        // Now and then, forget grants that expired over an hour ago.
        if self.spends.fetch_add(1, Ordering::Relaxed) % 1000 == 999 {
            let _ = client
                .execute(
                    "DELETE FROM admission_uses WHERE expires_at < now() - interval '1 hour'",
                    &[],
                )
                .await;
        }
        if let Some(row) = taken {
            let used: i32 = row.get(0);
            return Ok(Spend::Allowed(u32::try_from(used).unwrap_or(0)));
        }
        let spent_by = client
            .query_opt(
                "SELECT spent_by FROM admission_uses WHERE grant_id = $1",
                &[&id],
            )
            .await
            .map_err(|err| unavailable(&err))?
            .and_then(|row| row.get::<_, Option<String>>(0));
        Ok(Spend::Spent { by: spent_by })
    }

    async fn finish(&self, id: &str, by: Option<&str>) -> Result<(), Problem> {
        let client = self.pool.get().await.map_err(|err| unavailable(&err))?;
        client
            .execute(
                "UPDATE admission_uses SET spent_by = $2 WHERE grant_id = $1",
                &[&id, &by.unwrap_or_default()],
            )
            .await
            .map_err(|err| unavailable(&err))?;
        Ok(())
    }
}
