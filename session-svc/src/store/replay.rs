//! Used device proofs, so each is accepted once (`platform::grants::ReplayGuard`). In Redis
//! every replica of session-svc sees the same set: `SET {prefix}session:proof:{jti} 1 NX PX`,
//! kept until the proof expires (by the injected clock, at least 1 ms). The in-process
//! guard for the dev run is `platform::grants::MemoryReplayGuard`; both pass the same suite
//! (`tests/replay_conformance.rs`).

use chrono::{DateTime, Utc};
use platform::clock::SharedClock;
use platform::grants::ReplayGuard;
use platform::problem::{Problem, ProblemKind};
use platform::redis_conn::RedisConnection;

/// Used proof ids in Redis.
#[derive(Clone)]
pub struct RedisReplayGuard {
    connection: RedisConnection,
    key_prefix: String,
    clock: SharedClock,
}

impl std::fmt::Debug for RedisReplayGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReplayGuard")
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RedisReplayGuard {
    pub fn new(
        connection: RedisConnection,
        key_prefix: impl Into<String>,
        clock: SharedClock,
    ) -> Self {
        Self {
            connection,
            key_prefix: key_prefix.into(),
            clock,
        }
    }

    /// The key that marks proof `id` as used.
    pub fn proof_key(&self, id: &str) -> String {
        format!("{}session:proof:{id}", self.key_prefix)
    }
}

#[async_trait::async_trait]
impl ReplayGuard for RedisReplayGuard {
    async fn first_use(&self, id: &str, expires_at: DateTime<Utc>) -> Result<bool, Problem> {
        let remaining_ms = (expires_at - self.clock.now()).num_milliseconds().max(1);
        let mut connection = self.connection.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.proof_key(id))
            .arg("1")
            .arg("NX")
            .arg("PX")
            .arg(remaining_ms)
            .query_async(&mut connection)
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "the used-proof store failed");
                // Redis slow or down: the same clear "come back" as the lock store's.
                Problem::new(
                    ProblemKind::Overloaded,
                    "the session store is not answering",
                )
                .with_retry_after(std::time::Duration::from_secs(1))
            })?;
        Ok(set.is_some())
    }
}
