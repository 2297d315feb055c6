//! Where the person's device lock and the per-device blocks live. One trait, two
//! implementations — Redis for production ([`RedisDeviceLockStore`]) and a mutex-guarded map for
//! `vaxbook dev` and unit tests ([`MemoryDeviceLockStore`]) — held to the same behaviour by one
//! conformance suite (`tests/store_conformance.rs`).
//!
//! Expiry is always decided against the `now` the caller passes (read from the injected clock),
//! never against the store's own time, so both stores behave identically when tests or the dev
//! run move the clock. Instants are compared in whole milliseconds in both stores.

mod lock_ops;
mod memory_store;
pub mod queue;
mod redis_store;
mod replay;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{DeviceId, PersonKey, SessionId};

pub use self::lock_ops::{HeldState, LockHolder, LockOperations};
pub use self::memory_store::MemoryDeviceLockStore;
pub use self::redis_store::RedisDeviceLockStore;
pub use self::replay::RedisReplayGuard;

/// What a claim of the person's lock came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The device now holds the person's lock with a new session.
    Granted {
        session_id: SessionId,
        expires_at: DateTime<Utc>,
    },
    /// Another device holds the lock: this device has just been blocked for the block duration.
    Locked { retry_after: Duration },
    /// This device was blocked by an earlier attempt and the block has not ended yet.
    Blocked { retry_after: Duration },
}

impl ClaimOutcome {
    /// How long the device must wait, when it was refused.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Granted { .. } => None,
            Self::Locked { retry_after } | Self::Blocked { retry_after } => Some(*retry_after),
        }
    }
}

/// Where a device stands with the person's lock, as [`DeviceLockStore::standing`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceStanding {
    /// A claim by this device would be granted (no lock, an expired one, or its own).
    Free,
    /// Another device holds an unexpired lock: a claim would block this device.
    HeldByAnother,
    /// This device is blocked by an earlier attempt for `retry_after` more.
    Blocked { retry_after: Duration },
}

/// What a validation found: whether the session holds the lock, and the fencing number of
/// the lock in force (0 when none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Validation {
    pub valid: bool,
    pub fence: u64,
}

/// A lock store that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Stored data that this code did not write (or a script reply it does not understand).
    #[error("unexpected data in the lock store: {0}")]
    Corrupt(#[from] CorruptData),
    /// The store did not answer within the command timeout (`SESSION_REDIS_TIMEOUT_MS`).
    #[error("the store did not answer within {0:?}")]
    Timeout(Duration),
}

/// Runs one store call, giving up after `limit`: a slow or unreachable Redis becomes
/// [`StoreError::Timeout`] in bounded time instead of a hang.
pub async fn bounded<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, call).await {
        Ok(answer) => answer,
        Err(_) => Err(StoreError::Timeout(limit)),
    }
}

/// What was wrong with data found in the lock store. Never carries a person key or device id.
#[derive(Debug, thiserror::Error)]
pub enum CorruptData {
    /// The claim or standing script answered an outcome this code does not know.
    #[error("the claim script replied {0:?}")]
    UnknownClaimOutcome(String),
    /// A lock's `expires_ms` field is not an integer.
    #[error("a lock's expires_ms is not a number")]
    ExpiryNotANumber(#[source] std::num::ParseIntError),
    /// An instant outside chrono's range.
    #[error("instant {0} ms is out of range")]
    InstantOutOfRange(i64),
}

/// The one-device-per-person lock (R3) and the blocks of refused devices.
#[async_trait]
pub trait DeviceLockStore: Send + Sync {
    /// Atomically: refuse a blocked device; block a device when another device holds an
    /// unexpired lock; otherwise give the device the lock with a fresh session that ends
    /// `session_ttl` after `now`, replacing any earlier lock.
    async fn claim(
        &self,
        person_key: &PersonKey,
        device_id: &DeviceId,
        now: DateTime<Utc>,
        session_ttl: Duration,
        block_duration: Duration,
    ) -> Result<ClaimOutcome, StoreError>;

    /// What a claim by `device_id` at `now` would come to, without claiming: read-only, it
    /// neither blocks the device nor touches the lock (the answer follows [`Self::claim`]'s
    /// order: a block first, then another device's lock).
    async fn standing(
        &self,
        person_key: &PersonKey,
        device_id: &DeviceId,
        now: DateTime<Utc>,
    ) -> Result<DeviceStanding, StoreError>;

    /// Whether `session_id` on `device_id` holds the person's unexpired lock.
    async fn validate(
        &self,
        person_key: &PersonKey,
        session_id: &SessionId,
        device_id: &DeviceId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Like [`Self::validate`], also answering the fencing number of the lock in force. A
    /// store that keeps no fencing numbers answers 0.
    async fn validate_fenced(
        &self,
        person_key: &PersonKey,
        session_id: &SessionId,
        device_id: &DeviceId,
        now: DateTime<Utc>,
    ) -> Result<Validation, StoreError> {
        let valid = self
            .validate(person_key, session_id, device_id, now)
            .await?;
        Ok(Validation { valid, fence: 0 })
    }

    /// Frees the person's lock if `session_id` holds it; `true` when it held an unexpired lock.
    /// Blocks of other devices stay in force.
    async fn release(
        &self,
        person_key: &PersonKey,
        session_id: &SessionId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// One round trip to the backing store (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// A duration in whole milliseconds, at least 1 (so a TTL is never zero or negative).
pub(crate) fn whole_millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis())
        .unwrap_or(i64::MAX)
        .max(1)
}

/// The wait a refused device is told: rounded up to whole seconds, at least one second, so a
/// client that waits exactly `retry_after` is never refused again for the same block.
pub(crate) fn retry_after_from_millis(remaining_ms: i64) -> Duration {
    let remaining_ms = u64::try_from(remaining_ms).unwrap_or(0);
    Duration::from_secs(remaining_ms.div_ceil(1000).max(1))
}

/// An instant from milliseconds since the epoch, for values this crate computed itself.
pub(crate) fn instant_from_millis(millis: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(millis)
        .ok_or(StoreError::Corrupt(CorruptData::InstantOutOfRange(millis)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_from_millis(600_000), Duration::from_secs(600));
        assert_eq!(retry_after_from_millis(599_001), Duration::from_secs(600));
        assert_eq!(retry_after_from_millis(1), Duration::from_secs(1));
        assert_eq!(retry_after_from_millis(0), Duration::from_secs(1));
        assert_eq!(retry_after_from_millis(-5), Duration::from_secs(1));
        assert_eq!(retry_after_from_millis(1_001), Duration::from_secs(2));
    }

    #[test]
    fn whole_millis_is_never_zero() {
        assert_eq!(whole_millis(Duration::ZERO), 1);
        assert_eq!(whole_millis(Duration::from_micros(10)), 1);
        assert_eq!(whole_millis(Duration::from_secs(600)), 600_000);
    }
}
