//! The in-process lock store for `vaxbook dev` and unit tests: one mutex over two maps, so every
//! operation is atomic like the Redis scripts. Expired entries are purged opportunistically
//! (whenever the maps have doubled since the last sweep), so memory stays bounded by the live
//! locks and blocks rather than by everyone who ever signed in.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    ClaimOutcome, DeviceLockStore, DeviceStanding, StoreError, Validation, instant_from_millis,
    retry_after_from_millis, whole_millis,
};
use crate::domain::{DeviceId, PersonKey, SessionId};

/// Below this many entries a sweep is not worth it.
const MIN_PURGE_THRESHOLD: usize = 1024;

#[derive(Debug)]
pub(super) struct HeldLock {
    pub(super) device_id: String,
    pub(super) session_id: String,
    /// The effective end: the hard end, or sooner after idleness.
    pub(super) expires_ms: i64,
    pub(super) hard_ms: i64,
    pub(super) fence: u64,
}

#[derive(Debug)]
pub(super) struct LockTables {
    /// person key → the device holding the person's lock.
    pub(super) locks: HashMap<String, HeldLock>,
    /// (person key, device id) → block end in ms since the epoch.
    pub(super) blocks: HashMap<(String, String), i64>,
    /// person key → (fencing counter, when it may be forgotten in ms).
    pub(super) fences: HashMap<String, (u64, i64)>,
    /// Sweep expired entries once the maps hold this many entries.
    purge_threshold: usize,
}

impl LockTables {
    fn purge_if_large(&mut self, now_ms: i64) {
        if self.locks.len() + self.blocks.len() < self.purge_threshold {
            return;
        }
        self.locks.retain(|_, held| held.expires_ms > now_ms);
        self.blocks.retain(|_, until_ms| *until_ms > now_ms);
        self.fences.retain(|_, (_, until_ms)| *until_ms > now_ms);
        // Amortised: the next sweep waits until the live set has doubled.
        self.purge_threshold =
            (2 * (self.locks.len() + self.blocks.len())).max(MIN_PURGE_THRESHOLD);
    }
}

/// Device locks in process memory.
#[derive(Debug)]
pub struct MemoryDeviceLockStore {
    tables: Mutex<LockTables>,
    /// Sessions end after this long without a validation; `None`: only their lifetime ends them.
    idle_timeout: Option<Duration>,
}

impl Default for MemoryDeviceLockStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryDeviceLockStore {
    pub fn new() -> Self {
        Self {
            tables: Mutex::new(LockTables {
                locks: HashMap::new(),
                blocks: HashMap::new(),
                fences: HashMap::new(),
                purge_threshold: MIN_PURGE_THRESHOLD,
            }),
            idle_timeout: None,
        }
    }

    /// Sessions end after `idle` without a validation, not only after their lifetime.
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = Some(idle);
        self
    }

    /// Number of lock and block entries currently kept (live or not yet purged).
    pub fn entry_count(&self) -> usize {
        let tables = self.tables();
        tables.locks.len() + tables.blocks.len()
    }

    pub(super) fn tables(&self) -> MutexGuard<'_, LockTables> {
        // The maps stay consistent even if a holder panicked: every update is a single insert
        // or remove, so a poisoned lock is safe to keep using.
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl DeviceLockStore for MemoryDeviceLockStore {
    async fn claim(
        &self,
        person_key: &PersonKey,
        device_id: &DeviceId,
        now: DateTime<Utc>,
        session_ttl: Duration,
        block_duration: Duration,
    ) -> Result<ClaimOutcome, StoreError> {
        let now_ms = now.timestamp_millis();
        let mut tables = self.tables();
        tables.purge_if_large(now_ms);

        let block_key = (
            person_key.as_str().to_owned(),
            device_id.as_str().to_owned(),
        );
        if let Some(until_ms) = tables.blocks.get(&block_key).copied() {
            if until_ms > now_ms {
                return Ok(ClaimOutcome::Blocked {
                    retry_after: retry_after_from_millis(until_ms - now_ms),
                });
            }
            tables.blocks.remove(&block_key);
        }

        let held_by_another_device = tables
            .locks
            .get(person_key.as_str())
            .is_some_and(|held| held.expires_ms > now_ms && held.device_id != device_id.as_str());
        if held_by_another_device {
            let block_ms = whole_millis(block_duration);
            tables
                .blocks
                .insert(block_key, now_ms.saturating_add(block_ms));
            return Ok(ClaimOutcome::Locked {
                retry_after: retry_after_from_millis(block_ms),
            });
        }

        let session_id = SessionId::generate();
        let expires_ms = now_ms.saturating_add(whole_millis(session_ttl));
        let expires_at = instant_from_millis(expires_ms)?;
        let effective_ms = self.idle_timeout.map_or(expires_ms, |idle| {
            expires_ms.min(now_ms.saturating_add(whole_millis(idle)))
        });
        // The fencing counter outlives every token of an earlier session (as in Redis).
        let fence = {
            let counter = tables
                .fences
                .entry(person_key.as_str().to_owned())
                .or_insert((0, expires_ms));
            counter.0 += 1;
            counter.1 = expires_ms;
            counter.0
        };
        tables.locks.insert(
            person_key.as_str().to_owned(),
            HeldLock {
                device_id: device_id.as_str().to_owned(),
                session_id: session_id.as_str().to_owned(),
                expires_ms: effective_ms,
                hard_ms: expires_ms,
                fence,
            },
        );
        Ok(ClaimOutcome::Granted {
            session_id,
            expires_at,
        })
    }

    async fn standing(
        &self,
        person_key: &PersonKey,
        device_id: &DeviceId,
        now: DateTime<Utc>,
    ) -> Result<DeviceStanding, StoreError> {
        let now_ms = now.timestamp_millis();
        let tables = self.tables();
        let block_key = (
            person_key.as_str().to_owned(),
            device_id.as_str().to_owned(),
        );
        if let Some(until_ms) = tables.blocks.get(&block_key).copied()
            && until_ms > now_ms
        {
            return Ok(DeviceStanding::Blocked {
                retry_after: retry_after_from_millis(until_ms - now_ms),
            });
        }
        let held_by_another_device = tables
            .locks
            .get(person_key.as_str())
            .is_some_and(|held| held.expires_ms > now_ms && held.device_id != device_id.as_str());
        Ok(if held_by_another_device {
            DeviceStanding::HeldByAnother
        } else {
            DeviceStanding::Free
        })
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
        let now_ms = now.timestamp_millis();
        let idle = self.idle_timeout;
        let mut tables = self.tables();
        let Some(held) = tables.locks.get_mut(person_key.as_str()) else {
            return Ok(Validation::default());
        };
        if held.expires_ms <= now_ms {
            return Ok(Validation::default());
        }
        let valid = held.session_id == session_id.as_str() && held.device_id == device_id.as_str();
        if valid && let Some(idle) = idle {
            held.expires_ms = held
                .expires_ms
                .max(held.hard_ms.min(now_ms.saturating_add(whole_millis(idle))));
        }
        Ok(Validation {
            valid,
            fence: held.fence,
        })
    }

    async fn release(
        &self,
        person_key: &PersonKey,
        session_id: &SessionId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let now_ms = now.timestamp_millis();
        let mut tables = self.tables();
        let held_by_session = tables
            .locks
            .get(person_key.as_str())
            .is_some_and(|held| held.session_id == session_id.as_str());
        if !held_by_session {
            return Ok(false);
        }
        // An expired lock of this session is removed too, but it was no longer held.
        let released = tables
            .locks
            .remove(person_key.as_str())
            .is_some_and(|held| held.expires_ms > now_ms);
        Ok(released)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expired_entries_are_purged_once_the_maps_grow() {
        let store = MemoryDeviceLockStore::new();
        let start = DateTime::from_timestamp(1_628_506_800, 0).unwrap_or_default();
        let ttl = Duration::from_secs(60);
        let block = Duration::from_secs(30);
        let device = DeviceId::parse("pc").expect("valid device id");
        for index in 0..MIN_PURGE_THRESHOLD {
            let person = PersonKey::parse(&format!("p{index}")).expect("valid person key");
            let outcome = store
                .claim(&person, &device, start, ttl, block)
                .await
                .expect("memory store claims");
            assert!(matches!(outcome, ClaimOutcome::Granted { .. }));
        }
        assert_eq!(store.entry_count(), MIN_PURGE_THRESHOLD);

        // Every lock above has expired by now: the next claim sweeps them away.
        let later = start + chrono::Duration::seconds(61);
        let person = PersonKey::parse("late").expect("valid person key");
        store
            .claim(&person, &device, later, ttl, block)
            .await
            .expect("memory store claims");
        assert_eq!(store.entry_count(), 1);
    }
}
