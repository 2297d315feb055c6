//! The in-process challenge store, for the dev run and unit tests. Expiry follows the injected
//! clock, so moving the dev clock forward expires challenges and rate windows as Redis would.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::clock::SharedClock;

use super::{Challenge, ChallengeStore, CounterWindow, StoreError};
use crate::domain::VerificationId;

#[derive(Default)]
struct State {
    challenges: HashMap<VerificationId, (Challenge, DateTime<Utc>)>,
    rate_windows: HashMap<String, (u64, DateTime<Utc>)>,
}

/// Challenges and counters in a mutex-guarded map.
pub struct MemoryChallengeStore {
    clock: SharedClock,
    state: Mutex<State>,
}

impl MemoryChallengeStore {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            state: Mutex::new(State::default()),
        }
    }

    fn with_state<T>(&self, action: impl FnOnce(&mut State, DateTime<Utc>) -> T) -> T {
        let now = self.clock.now();
        // A poisoned lock only means another thread panicked mid-update of plain maps;
        // the maps themselves are still usable.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state
            .challenges
            .retain(|_, (_, expires_at)| *expires_at > now);
        state.rate_windows.retain(|_, (_, ends_at)| *ends_at > now);
        action(&mut state, now)
    }
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

fn counter_window((count, ends_at): (u64, DateTime<Utc>), now: DateTime<Utc>) -> CounterWindow {
    CounterWindow {
        count,
        resets_in: (ends_at - now).to_std().unwrap_or_default(),
    }
}

#[async_trait::async_trait]
impl ChallengeStore for MemoryChallengeStore {
    async fn put(
        &self,
        id: &VerificationId,
        challenge: &Challenge,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.with_state(|state, now| {
            let expires_at = now + chrono_duration(ttl);
            state
                .challenges
                .insert(*id, (challenge.clone(), expires_at));
        });
        Ok(())
    }

    async fn get(&self, id: &VerificationId) -> Result<Option<Challenge>, StoreError> {
        Ok(self.with_state(|state, _| {
            state
                .challenges
                .get(id)
                .map(|(challenge, _)| challenge.clone())
        }))
    }

    async fn record_failed_attempt(&self, id: &VerificationId) -> Result<Option<u32>, StoreError> {
        Ok(self.with_state(|state, _| {
            state.challenges.get_mut(id).map(|(challenge, _)| {
                challenge.attempts += 1;
                challenge.attempts
            })
        }))
    }

    async fn delete(&self, id: &VerificationId) -> Result<bool, StoreError> {
        Ok(self.with_state(|state, _| state.challenges.remove(id).is_some()))
    }

    async fn hit_rate_limit(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        Ok(self.with_state(|state, now| {
            let entry = state
                .rate_windows
                .entry(key.to_owned())
                .or_insert((0, now + chrono_duration(window)));
            entry.0 += 1;
            entry.0
        }))
    }

    async fn hit_counter(&self, key: &str, window: Duration) -> Result<CounterWindow, StoreError> {
        Ok(self.with_state(|state, now| {
            let entry = state
                .rate_windows
                .entry(format!("limit:{key}"))
                .or_insert((0, now + chrono_duration(window)));
            entry.0 += 1;
            counter_window(*entry, now)
        }))
    }

    async fn read_counter(&self, key: &str) -> Result<Option<CounterWindow>, StoreError> {
        Ok(self.with_state(|state, now| {
            state
                .rate_windows
                .get(&format!("limit:{key}"))
                .map(|entry| counter_window(*entry, now))
        }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
