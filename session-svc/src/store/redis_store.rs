//! The Redis lock store. Each claim and each release is one Lua script, so two devices racing
//! for one person are decided inside Redis, one at a time; a validation is one `HMGET`, or,
//! when sessions end after idleness, one script that also pushes the idle deadline on.
//!
//! Keys (under the configured prefix):
//! - `{prefix}session:lock:{person_key}` — hash `device`, `session`, `expires_ms` (the
//!   effective end: the hard end, or sooner after idleness), `hard_ms` (the end of the
//!   session's lifetime) and `fence`;
//! - `{prefix}session:fence:{person_key}` — the person's fencing counter, incremented by every
//!   granted claim (the lock changes hands); it lives as long as the newest session could, so
//!   it outlives every token of an earlier session and the numbers only grow;
//! - `{prefix}session:block:{person_key}:{device_id}` — string, the block's end in ms;
//! - `{prefix}session:blocks:{person_key}` — set of the person's blocked devices (for operators),
//!   living as long as the newest block.
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
    ClaimOutcome, CorruptData, DeviceLockStore, DeviceStanding, StoreError, Validation,
    instant_from_millis, retry_after_from_millis, whole_millis,
};
use crate::domain::{DeviceId, PersonKey, SessionId};

/// KEYS: lock, block, fence, blocked-devices set. ARGV: device, new session, now_ms, session_ttl_ms, expires_ms
/// (hard), block_ms, block_until_ms, effective_expires_ms. Replies `{outcome, milliseconds}`.
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
  redis.call('SADD', KEYS[4], ARGV[1])
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
  return {'locked', tonumber(ARGV[6])}
end
local fence = redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'device', ARGV[1], 'session', ARGV[2], 'expires_ms', ARGV[8], 'hard_ms', ARGV[5], 'fence', fence)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {'granted', tonumber(ARGV[4])}
";

/// KEYS: lock. ARGV: session, device, now_ms, idle_ms. When the session holds the lock, moves
/// its effective end to min(hard end, now + idle). Replies `{device, session, expires_ms,
/// fence}` as stored (before the move; empty strings when absent) so the caller judges.
const TOUCH_SCRIPT: &str = r"
local held = redis.call('HMGET', KEYS[1], 'device', 'session', 'expires_ms', 'hard_ms', 'fence')
local until_ms = tonumber(held[3])
local now_ms = tonumber(ARGV[3])
if held[1] == ARGV[2] and held[2] == ARGV[1] and until_ms and until_ms > now_ms then
  local hard = tonumber(held[4]) or until_ms
  local next_ms = math.min(hard, now_ms + tonumber(ARGV[4]))
  if next_ms > until_ms then
    redis.call('HSET', KEYS[1], 'expires_ms', string.format('%d', next_ms))
  end
end
return {held[1] or '', held[2] or '', held[3] or '', held[5] or ''}
";

/// KEYS: lock, block. ARGV: device, now_ms. Reads only, in the claim script's order; replies
/// `{standing, milliseconds}`.
const STANDING_SCRIPT: &str = r"
local now_ms = tonumber(ARGV[2])
local block_until = tonumber(redis.call('GET', KEYS[2]))
if block_until and block_until > now_ms then
  return {'blocked', block_until - now_ms}
end
local held = redis.call('HMGET', KEYS[1], 'device', 'expires_ms')
local held_until = tonumber(held[2])
if held[1] and held_until and held_until > now_ms and held[1] ~= ARGV[1] then
  return {'held', 0}
end
return {'free', 0}
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
    pub(super) connection: RedisConnection,
    pub(super) key_prefix: String,
    claim_script: Script,
    release_script: Script,
    touch_script: Script,
    /// Sessions end after this long without a validation; `None`: only their lifetime ends them.
    idle_timeout: Option<Duration>,
    standing_script: Script,
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
            touch_script: Script::new(TOUCH_SCRIPT),
            idle_timeout: None,
            standing_script: Script::new(STANDING_SCRIPT),
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

    /// Sessions end after `idle` without a validation, not only after their lifetime.
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = Some(idle);
        self
    }

    /// The key of the person's fencing counter (same hash tag as the lock).
    pub fn fence_key(&self, person_key: &PersonKey) -> String {
        format!(
            "{}session:fence:{{{}}}",
            self.key_prefix,
            person_key.as_str()
        )
    }

    /// The set of the person's blocked devices (same hash tag), so operators find the blocks
    /// without scanning the keyspace; it lives as long as the newest block.
    pub fn blocked_devices_key(&self, person_key: &PersonKey) -> String {
        format!(
            "{}session:blocks:{{{}}}",
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
        let effective_ms = self.idle_timeout.map_or(expires_ms, |idle| {
            expires_ms.min(now_ms.saturating_add(whole_millis(idle)))
        });
        let block_until_ms = now_ms.saturating_add(block_ms);
        let session_id = SessionId::generate();

        let mut connection = self.connection.clone();
        let (outcome, millis): (String, i64) = self
            .claim_script
            .key(self.lock_key(person_key))
            .key(self.block_key(person_key, device_id))
            .key(self.fence_key(person_key))
            .key(self.blocked_devices_key(person_key))
            .arg(device_id.as_str())
            .arg(session_id.as_str())
            .arg(now_ms)
            .arg(ttl_ms)
            .arg(expires_ms)
            .arg(block_ms)
            .arg(block_until_ms)
            .arg(effective_ms)
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

    async fn standing(
        &self,
        person_key: &PersonKey,
        device_id: &DeviceId,
        now: DateTime<Utc>,
    ) -> Result<DeviceStanding, StoreError> {
        let mut connection = self.connection.clone();
        let (standing, millis): (String, i64) = self
            .standing_script
            .key(self.lock_key(person_key))
            .key(self.block_key(person_key, device_id))
            .arg(device_id.as_str())
            .arg(now.timestamp_millis())
            .invoke_async(&mut connection)
            .await?;
        match standing.as_str() {
            "free" => Ok(DeviceStanding::Free),
            "held" => Ok(DeviceStanding::HeldByAnother),
            "blocked" => Ok(DeviceStanding::Blocked {
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
        Ok(self
            .validate_fenced(person_key, session_id, device_id, now)
            .await?
            .valid)
    }

    async fn validate_fenced(
        &self,
        person_key: &PersonKey,
        session_id: &SessionId,
        device_id: &DeviceId,
        now: DateTime<Utc>,
    ) -> Result<Validation, StoreError> {
        let mut connection = self.connection.clone();
        let (held_device, held_session, held_until, fence): (String, String, String, String) =
            match self.idle_timeout {
                Some(idle) => {
                    self.touch_script
                        .key(self.lock_key(person_key))
                        .arg(session_id.as_str())
                        .arg(device_id.as_str())
                        .arg(now.timestamp_millis())
                        .arg(whole_millis(idle))
                        .invoke_async(&mut connection)
                        .await?
                }
                None => {
                    let (device, session, until, fence): (
                        Option<String>,
                        Option<String>,
                        Option<String>,
                        Option<String>,
                    ) = redis::cmd("HMGET")
                        .arg(self.lock_key(person_key))
                        .arg("device")
                        .arg("session")
                        .arg("expires_ms")
                        .arg("fence")
                        .query_async(&mut connection)
                        .await?;
                    (
                        device.unwrap_or_default(),
                        session.unwrap_or_default(),
                        until.unwrap_or_default(),
                        fence.unwrap_or_default(),
                    )
                }
            };
        if held_device.is_empty() || held_session.is_empty() || held_until.is_empty() {
            return Ok(Validation::default());
        }
        let held_until_ms: i64 = held_until
            .parse()
            .map_err(|err| StoreError::Corrupt(CorruptData::ExpiryNotANumber(err)))?;
        let live = held_until_ms > now.timestamp_millis();
        Ok(Validation {
            valid: live && held_session == session_id.as_str() && held_device == device_id.as_str(),
            fence: if live { fence.parse().unwrap_or(0) } else { 0 },
        })
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
