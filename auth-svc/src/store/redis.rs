//! The Redis challenge store. A challenge is one JSON string under
//! `{prefix}auth:challenge:{id}` with the challenge's TTL; a start-rate counter is
//! `{prefix}auth:rate:{key}`, counted with INCR and given its window once with EXPIRE NX; an
//! abuse-limit counter is `{prefix}auth:limit:{subject}:what`, hash-tagged by its subject and
//! counted by one script.

use std::time::Duration;

use platform::redis_conn::RedisConnection;

use super::{Challenge, ChallengeStore, CounterWindow, StoreError};
use crate::domain::VerificationId;

/// Increments `attempts` inside the stored JSON without a read-modify-write race, keeping the
/// key's remaining TTL. Returns -1 when the challenge is gone.
const RECORD_FAILED_ATTEMPT: &str = r#"
local raw = redis.call('GET', KEYS[1])
if not raw then return -1 end
local challenge = cjson.decode(raw)
challenge.attempts = (tonumber(challenge.attempts) or 0) + 1
redis.call('SET', KEYS[1], cjson.encode(challenge), 'KEEPTTL')
return challenge.attempts
"#;

/// Counts one hit in a window that starts at the first hit, in one step: INCR, the window's
/// expiry set only when none runs, and the time left. Returns {count, pttl}.
const HIT_COUNTER: &str = r#"
local count = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1], 'NX')
return {count, redis.call('PTTL', KEYS[1])}
"#;

/// Challenges and counters in Redis, shared by every replica.
#[derive(Clone)]
pub struct RedisChallengeStore {
    connection: RedisConnection,
    prefix: String,
    record_failed_attempt: redis::Script,
    hit_counter: redis::Script,
}

impl RedisChallengeStore {
    pub fn new(connection: RedisConnection, prefix: impl Into<String>) -> Self {
        Self {
            connection,
            prefix: prefix.into(),
            record_failed_attempt: redis::Script::new(RECORD_FAILED_ATTEMPT),
            hit_counter: redis::Script::new(HIT_COUNTER),
        }
    }

    fn challenge_key(&self, id: &VerificationId) -> String {
        format!("{}auth:challenge:{id}", self.prefix)
    }

    fn rate_key(&self, key: &str) -> String {
        format!("{}auth:rate:{key}", self.prefix)
    }

    /// `{prefix}auth:limit:{subject}:…`: the braces in `key` are the Redis Cluster hash tag.
    fn limit_key(&self, key: &str) -> String {
        format!("{}auth:limit:{key}", self.prefix)
    }
}

/// Redis TTLs in milliseconds, at least 1 (a zero TTL is an error in Redis).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// A PTTL reply as a duration (negative replies, no key or no expiry, count as none left).
fn remaining(pttl: i64) -> Duration {
    Duration::from_millis(u64::try_from(pttl).unwrap_or(0))
}

#[async_trait::async_trait]
impl ChallengeStore for RedisChallengeStore {
    async fn put(
        &self,
        id: &VerificationId,
        challenge: &Challenge,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(challenge)?;
        let mut connection = self.connection.clone();
        redis::cmd("SET")
            .arg(self.challenge_key(id))
            .arg(json)
            .arg("PX")
            .arg(millis(ttl))
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }

    async fn get(&self, id: &VerificationId) -> Result<Option<Challenge>, StoreError> {
        let mut connection = self.connection.clone();
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.challenge_key(id))
            .query_async(&mut connection)
            .await?;
        match raw {
            None => Ok(None),
            Some(json) => Ok(Some(serde_json::from_str(&json)?)),
        }
    }

    async fn record_failed_attempt(&self, id: &VerificationId) -> Result<Option<u32>, StoreError> {
        let mut connection = self.connection.clone();
        let attempts: i64 = self
            .record_failed_attempt
            .key(self.challenge_key(id))
            .invoke_async(&mut connection)
            .await?;
        Ok(u32::try_from(attempts).ok())
    }

    async fn delete(&self, id: &VerificationId) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let removed: u64 = redis::cmd("DEL")
            .arg(self.challenge_key(id))
            .query_async(&mut connection)
            .await?;
        Ok(removed > 0)
    }

    async fn hit_rate_limit(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        let key = self.rate_key(key);
        let mut connection = self.connection.clone();
        // The window starts at the first hit: EXPIRE NX leaves a running window alone.
        let (count,): (u64,) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(&key)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(millis(window))
            .arg("NX")
            .ignore()
            .query_async(&mut connection)
            .await?;
        Ok(count)
    }

    async fn hit_counter(&self, key: &str, window: Duration) -> Result<CounterWindow, StoreError> {
        let mut connection = self.connection.clone();
        let (count, pttl): (u64, i64) = self
            .hit_counter
            .key(self.limit_key(key))
            .arg(millis(window))
            .invoke_async(&mut connection)
            .await?;
        Ok(CounterWindow {
            count,
            resets_in: remaining(pttl),
        })
    }

    async fn read_counter(&self, key: &str) -> Result<Option<CounterWindow>, StoreError> {
        let key = self.limit_key(key);
        let mut connection = self.connection.clone();
        let (count, pttl): (Option<u64>, i64) = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(&key)
            .cmd("PTTL")
            .arg(&key)
            .query_async(&mut connection)
            .await?;
        Ok(count.map(|count| CounterWindow {
            count,
            resets_in: remaining(pttl),
        }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await?;
        Ok(())
    }
}
