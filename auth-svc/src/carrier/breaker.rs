//! A circuit breaker for the agency adapter: after `failure_threshold` failures in a row it
//! opens for `open_for`, during which calls are refused at once (the person gets
//! `provider-unavailable` with the remaining time as `Retry-After` instead of waiting for a
//! timeout). When the time is up one trial call goes through (half open): its success closes
//! the breaker, its failure opens it again. Real (monotonic) time, not the dev clock: this is
//! about a remote server's health, not about a rule.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When the breaker opens and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerSettings {
    pub failure_threshold: u32,
    pub open_for: Duration,
}

#[derive(Debug)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial call is under way; if it never reports (its caller went away), another may
    /// try after `retry`.
    HalfOpen {
        retry: Instant,
    },
}

/// The breaker; shared by every call of one adapter.
#[derive(Debug)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    state: Mutex<State>,
}

impl CircuitBreaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value: a panic elsewhere cannot leave it half updated.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Ok` when a call may go ahead now; `Err(retry_after)` while the breaker is open.
    pub fn admit(&self) -> Result<(), Duration> {
        let now = Instant::now();
        let mut state = self.state();
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { until } | State::HalfOpen { retry: until } if now >= until => {
                *state = State::HalfOpen {
                    retry: now + self.settings.open_for,
                };
                Ok(())
            }
            State::Open { until } => Err(until.saturating_duration_since(now)),
            // Others wait for the trial call's outcome.
            State::HalfOpen { .. } => Err(Duration::from_secs(1)),
        }
    }

    /// A call went through.
    pub fn succeeded(&self) {
        let mut state = self.state();
        if !matches!(*state, State::Closed { failures: 0 }) {
            if matches!(*state, State::HalfOpen { .. }) {
                tracing::info!("the identity-verification agency answers again: breaker closed");
                metrics::gauge!("auth_carrier_breaker_open").set(0.0);
            }
            *state = State::Closed { failures: 0 };
        }
    }

    /// A call failed; opens the breaker at the threshold (or after a failed trial call).
    pub fn failed(&self) {
        let mut state = self.state();
        let open = match *state {
            State::Closed { failures } => {
                let failures = failures.saturating_add(1);
                *state = State::Closed { failures };
                failures >= self.settings.failure_threshold
            }
            State::HalfOpen { .. } => true,
            State::Open { .. } => false,
        };
        if open {
            *state = State::Open {
                until: Instant::now() + self.settings.open_for,
            };
            tracing::warn!(
                open_secs = self.settings.open_for.as_secs(),
                "the identity-verification agency keeps failing: breaker open"
            );
            metrics::gauge!("auth_carrier_breaker_open").set(1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn breaker(open_for: Duration) -> CircuitBreaker {
        CircuitBreaker::new(BreakerSettings {
            failure_threshold: 3,
            open_for,
        })
    }

    #[test]
    fn opens_after_the_threshold_in_a_row_and_a_success_resets_the_count() {
        let breaker = breaker(Duration::from_secs(60));
        breaker.failed();
        breaker.failed();
        breaker.succeeded();
        breaker.failed();
        breaker.failed();
        assert!(breaker.admit().is_ok());
        breaker.failed();
        let retry_after = breaker.admit().unwrap_err();
        assert!(retry_after > Duration::from_secs(58), "{retry_after:?}");
    }

    #[test]
    fn one_trial_call_after_the_open_time_decides() {
        let breaker = breaker(Duration::from_millis(20));
        for _ in 0..3 {
            breaker.failed();
        }
        assert!(breaker.admit().is_err());
        std::thread::sleep(Duration::from_millis(30));
        assert!(breaker.admit().is_ok());
        // Only one trial at a time.
        assert!(breaker.admit().is_err());
        breaker.failed();
        assert!(breaker.admit().is_err());
        std::thread::sleep(Duration::from_millis(30));
        assert!(breaker.admit().is_ok());
        breaker.succeeded();
        assert!(breaker.admit().is_ok());
        assert!(breaker.admit().is_ok());
    }
}
