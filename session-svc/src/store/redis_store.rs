//! The Redis lock store. Each claim and each release is one Lua script, so two devices racing
//! for one person are decided inside Redis, one at a time; a validation is one `HMGET`.
//!
//! Keys (under the configured prefix):
//! - `{prefix}session:lock:{person_key}` — hash `device`, `session`, `expires_ms`;
//! - `{prefix}session:block:{person_key}:{device_id}` — string, the block's end in ms.
//!
//! Whether a lock or block is still in force is decided against the caller's clock (`now_ms`
//! passed as an argument), never Redis's own time, so this store and the in-process one agree
//! under a settable clock. Redis `PX` TTLs (end − now, at least 1 ms) only garbage-collect.
//! All instants are computed in Rust and passed as decimal strings, so Lua never has to print
//! a large number.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::redis_conn::RedisConnection;
use redis::Script;

use super::{
    ClaimOutcome, CorruptData, DeviceLockStore, StoreError, instant_from_millis,
    retry_after_from_millis, whole_millis,
};
use crate::domain::{DeviceId, PersonKey, SessionId};

/// KEYS: lock, block. ARGV: device, new session, now_ms, session_ttl_ms, expires_ms,
/// block_ms, block_until_ms. Replies `{outcome, milliseconds}`.
const CLAIM_SCRIPT: &str = r"
local now_ms = tonumber(ARGV[3])
local block_until = tonumber(redis.call('GET', KEYS[2]))
if block_until and block_until > now_ms then
  return {'blocked', block_until - now_ms}
end
local held = redis.call('HMGET', KEYS[1], 'device', 'expires_ms')
local held_until = tonumber(held[2])
if held[1] and held_until and held_until > now_ms and held[1] ~= ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[7], 'PX', ARGV[6])
  return {'locked', tonumber(ARGV[6])}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'device', ARGV[1], 'session', ARGV[2], 'expires_ms', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {'granted', tonumber(ARGV[4])}
";

/// KEYS: lock. ARGV: session, now_ms. Deletes the lock only if the session holds it; replies 1
/// when it held an unexpired lock.
const RELEASE_SCRIPT: &str = r"
local held = redis.call('HMGET', KEYS[1], 'session', 'expires_ms')
if held[1] ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
local held_until = tonumber(held[2])
if held_until and held_until > tonumber(ARGV[2]) then
  return 1
end
return 0
";

/// Device locks in Redis.
#[derive(Clone)]
pub struct RedisDeviceLockStore {
    connection: RedisConnection,
    key_prefix: String,
    claim_script: Script,
    release_script: Script,
}

impl std::fmt::Debug for RedisDeviceLockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDeviceLockStore")
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RedisDeviceLockStore {
    /// A store whose keys all start with `key_prefix` (`vaxbook:` in production).
    pub fn new(connection: RedisConnection, key_prefix: impl Into<String>) -> Self {
        Self {
            connection,
            key_prefix: key_prefix.into(),
            claim_script: Script::new(CLAIM_SCRIPT),
            release_script: Script::new(RELEASE_SCRIPT),
        }
    }

    /// The key of the person's lock hash. The person key is a Redis Cluster hash tag (`{…}`),
    /// so a person's lock and blocks live in one slot and the claim script may touch them all.
    pub fn lock_key(&self, person_key: &PersonKey) -> String {
        format!(
            "{}session:lock:{{{}}}",
            self.key_prefix,
            person_key.as_str()
        )
    }

    /// The key of a device's block for a person. Person keys cannot contain ':', so the key is
    /// unambiguous.
    pub fn block_key(&self, person_key: &PersonKey, device_id: &DeviceId) -> String {
        format!(
            "{}session:block:{{{}}}:{}",
            self.key_prefix,
            person_key.as_str(),
            device_id.as_str()
        )
    }
}

#[async_trait]
impl DeviceLockStore for RedisDeviceLockStore {
    async fn claim(
        &self,
        person_key: &PersonKey,
        device_id: &DeviceId,
        now: DateTime<Utc>,
        session_ttl: Duration,
        block_duration: Duration,
    ) -> Result<ClaimOutcome, StoreError> {
        let now_ms = now.timestamp_millis();
        let ttl_ms = whole_millis(session_ttl);
        let block_ms = whole_millis(block_duration);
        let expires_ms = now_ms.saturating_add(ttl_ms);
        let block_until_ms = now_ms.saturating_add(block_ms);
        let session_id = SessionId::generate();

        let mut connection = self.connection.clone();
        let (outcome, millis): (String, i64) = self
            .claim_script
            .key(self.lock_key(person_key))
            .key(self.block_key(person_key, device_id))
            .arg(device_id.as_str())
            .arg(session_id.as_str())
            .arg(now_ms)
            .arg(ttl_ms)
            .arg(expires_ms)
            .arg(block_ms)
            .arg(block_until_ms)
            .invoke_async(&mut connection)
            .await?;
        match outcome.as_str() {
            "granted" => Ok(ClaimOutcome::Granted {
                session_id,
                expires_at: instant_from_millis(expires_ms)?,
            }),
            "locked" => Ok(ClaimOutcome::Locked {
                retry_after: retry_after_from_millis(millis),
            }),
            "blocked" => Ok(ClaimOutcome::Blocked {
                retry_after: retry_after_from_millis(millis),
            }),
            other => Err(StoreError::Corrupt(CorruptData::UnknownClaimOutcome(
                other.to_owned(),
            ))),
        }
    }

    async fn validate(
        &self,
        person_key: &PersonKey,
        session_id: &SessionId,
        device_id: &DeviceId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let (held_device, held_session, held_until): (
            Option<String>,
            Option<String>,
            Option<String>,
        ) = redis::cmd("HMGET")
            .arg(self.lock_key(person_key))
            .arg("device")
            .arg("session")
            .arg("expires_ms")
            .query_async(&mut connection)
            .await?;
        let (Some(held_device), Some(held_session), Some(held_until)) =
            (held_device, held_session, held_until)
        else {
            return Ok(false);
        };
        let held_until_ms: i64 = held_until
            .parse()
            .map_err(|err| StoreError::Corrupt(CorruptData::ExpiryNotANumber(err)))?;
        Ok(held_until_ms > now.timestamp_millis()
            && held_session == session_id.as_str()
            && held_device == device_id.as_str())
    }

    async fn release(
        &self,
        person_key: &PersonKey,
        session_id: &SessionId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let released: i64 = self
            .release_script
            .key(self.lock_key(person_key))
            .arg(session_id.as_str())
            .arg(now.timestamp_millis())
            .invoke_async(&mut connection)
            .await?;
        Ok(released == 1)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await?;
        Ok(())
    }
}
