//! What operators may do with a person's lock (SRE and call-center tools, over
//! `QueueAdminService`): read who holds it, until when, under which fencing number and which
//! devices are blocked; and free it whatever session holds it. A separate trait from
//! [`super::DeviceLockStore`], so the citizen-facing rules cannot reach it; both stores
//! implement it here.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryDeviceLockStore, RedisDeviceLockStore, StoreError, instant_from_millis};
use crate::domain::PersonKey;

/// The session holding a person's lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockHolder {
    pub session_id: String,
    pub device_id: String,
    pub expires_at: DateTime<Utc>,
}

/// A person's lock and blocks as an operator sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeldState {
    pub lock: Option<LockHolder>,
    /// The fencing number of the lock in force (0 when none).
    pub fence: u64,
    /// Blocked devices and until when.
    pub blocks: Vec<(String, DateTime<Utc>)>,
}

/// Operators' access to the locks.
#[async_trait]
pub trait LockOperations: Send + Sync {
    async fn inspect(
        &self,
        person_key: &PersonKey,
        now: DateTime<Utc>,
    ) -> Result<HeldState, StoreError>;
    /// Frees the person's lock; `true` when an unexpired lock was freed. Blocks stay.
    async fn force_release(
        &self,
        person_key: &PersonKey,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

#[async_trait]
impl LockOperations for MemoryDeviceLockStore {
    async fn inspect(
        &self,
        person_key: &PersonKey,
        now: DateTime<Utc>,
    ) -> Result<HeldState, StoreError> {
        let now_ms = now.timestamp_millis();
        let tables = self.tables();
        let mut state = HeldState::default();
        if let Some(held) = tables.locks.get(person_key.as_str())
            && held.expires_ms > now_ms
        {
            state.lock = Some(LockHolder {
                session_id: held.session_id.clone(),
                device_id: held.device_id.clone(),
                expires_at: instant_from_millis(held.expires_ms)?,
            });
            state.fence = held.fence;
        }
        let mut blocks: Vec<(String, DateTime<Utc>)> = Vec::new();
        for ((person, device), until_ms) in &tables.blocks {
            if person == person_key.as_str() && *until_ms > now_ms {
                blocks.push((device.clone(), instant_from_millis(*until_ms)?));
            }
        }
        blocks.sort();
        state.blocks = blocks;
        Ok(state)
    }

    async fn force_release(
        &self,
        person_key: &PersonKey,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let now_ms = now.timestamp_millis();
        Ok(self
            .tables()
            .locks
            .remove(person_key.as_str())
            .is_some_and(|held| held.expires_ms > now_ms))
    }
}

#[async_trait]
impl LockOperations for RedisDeviceLockStore {
    async fn inspect(
        &self,
        person_key: &PersonKey,
        now: DateTime<Utc>,
    ) -> Result<HeldState, StoreError> {
        let now_ms = now.timestamp_millis();
        let mut connection = self.connection.clone();
        let (device, session, expires, fence): (
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<u64>,
        ) = redis::cmd("HMGET")
            .arg(self.lock_key(person_key))
            .arg("device")
            .arg("session")
            .arg("expires_ms")
            .arg("fence")
            .query_async(&mut connection)
            .await?;
        let mut state = HeldState::default();
        if let (Some(device_id), Some(session_id), Some(expires_ms)) = (device, session, expires)
            && expires_ms > now_ms
        {
            state.lock = Some(LockHolder {
                session_id,
                device_id,
                expires_at: instant_from_millis(expires_ms)?,
            });
            state.fence = fence.unwrap_or(0);
        }
        // The person's blocked devices are listed in a set of their own (no keyspace scan).
        let devices: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.blocked_devices_key(person_key))
            .query_async(&mut connection)
            .await?;
        for device in devices {
            let Ok(device_id) = crate::domain::DeviceId::parse(&device) else {
                continue;
            };
            let until: Option<i64> = redis::cmd("GET")
                .arg(self.block_key(person_key, &device_id))
                .query_async(&mut connection)
                .await?;
            if let Some(until_ms) = until
                && until_ms > now_ms
            {
                state.blocks.push((device, instant_from_millis(until_ms)?));
            }
        }
        state.blocks.sort();
        Ok(state)
    }

    async fn force_release(
        &self,
        person_key: &PersonKey,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let (expires, _deleted): (Option<i64>, i64) = redis::pipe()
            .atomic()
            .cmd("HGET")
            .arg(self.lock_key(person_key))
            .arg("expires_ms")
            .cmd("DEL")
            .arg(self.lock_key(person_key))
            .query_async(&mut connection)
            .await?;
        Ok(expires.is_some_and(|until| until > now.timestamp_millis()))
    }
}
