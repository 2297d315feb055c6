//! Where pending verifications (challenges), start-rate counters and the abuse-limit counters
//! (`crate::limits`) live between the calls of a verification. A challenge is short-lived (minutes) and single use, so Redis with
//! key expiry is the production home; the in-process store serves the dev run and unit tests.
//! One conformance suite (`conformance`) runs against both so they cannot drift.

mod memory;
mod redis;

#[cfg(test)]
mod conformance;

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::PersonKey;
use crate::domain::{DeviceId, ProviderId, VerificationId};

pub use self::memory::MemoryChallengeStore;
pub use self::redis::RedisChallengeStore;

/// A verification that was started and not yet completed. It holds what the completion needs
/// to issue a token, and never the RRN, the phone number, the name or the one-time code in clear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub provider: ProviderId,
    pub person_key: PersonKey,
    pub birth_date: NaiveDate,
    pub masked_name: String,
    pub device_id: DeviceId,
    pub secret: ChallengeSecret,
    pub expires_at: DateTime<Utc>,
    pub attempts: u32,
}

/// The provider-specific proof material of a challenge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChallengeSecret {
    /// Keyed hash (base64url) of the one-time code, bound to the verification id.
    /// `phone_subject` is the phone's abuse-limit subject (a keyed hash, see `crate::limits`),
    /// so wrong codes count against the phone too; absent in challenges stored before it.
    OtpDigest {
        digest: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phone_subject: Option<String>,
    },
    /// Simple-certificate providers: the nonce the assertion must carry (it was handed to the
    /// person anyway) and a keyed hash (base64url) of the started name, bound to the
    /// verification id, so the name is never stored in clear.
    AssertionBinding { nonce: String, name_digest: String },
}

/// A failure of the store itself (not a missing challenge, which is `None`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("a stored challenge is malformed: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Pending challenges and start-rate counters.
#[async_trait::async_trait]
pub trait ChallengeStore: Send + Sync {
    /// Stores `challenge` under `id`; it disappears after `ttl`.
    async fn put(
        &self,
        id: &VerificationId,
        challenge: &Challenge,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// The challenge, or `None` when unknown or expired.
    async fn get(&self, id: &VerificationId) -> Result<Option<Challenge>, StoreError>;

    /// Counts one wrong answer; the new attempt count, or `None` when the challenge is gone.
    async fn record_failed_attempt(&self, id: &VerificationId) -> Result<Option<u32>, StoreError>;

    /// Removes the challenge; `true` when this call removed it (so exactly one caller wins a
    /// race to use it).
    async fn delete(&self, id: &VerificationId) -> Result<bool, StoreError>;

    /// Counts one hit on `key` in a fixed window that starts at the first hit; returns the
    /// count within the current window.
    async fn hit_rate_limit(&self, key: &str, window: Duration) -> Result<u64, StoreError>;

    /// Counts one hit on the abuse-limit counter `key` in a fixed window that starts at its
    /// first hit; the count within the window and how long until it ends. Atomic: concurrent
    /// hits on any replica are all counted. `key` names its subject in braces
    /// (`{phone:…}:starts`), which Redis Cluster uses as the hash tag.
    async fn hit_counter(&self, key: &str, window: Duration) -> Result<CounterWindow, StoreError>;

    /// The abuse-limit counter `key` without counting: `None` when no window runs.
    async fn read_counter(&self, key: &str) -> Result<Option<CounterWindow>, StoreError>;

    /// One round trip, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// An abuse-limit counter's running window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterWindow {
    pub count: u64,
    /// How long until the window ends (and the count starts again from zero).
    pub resets_in: Duration,
}
