//! Measured health of each identity provider: every start and completion a provider handles
//! is timed and classified (`ok`, `refused` when the person's answer or data was wrong,
//! `error` when the provider's adapter failed), exported as Prometheus metrics
//! (`auth_provider_outcomes_total{provider,outcome}`, `auth_provider_latency_seconds{provider}`)
//! and kept for a sliding window, from which `ListProviders` reports a success rate, the 95th
//! percentile latency and a traffic light: `ok`, `slow` or `down`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::AuthError;

/// When a provider counts as slow or down.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthThresholds {
    /// How far back the figures reach.
    pub window: Duration,
    /// A 95th percentile latency above this is `slow`.
    pub slow_p95: Duration,
    /// A success rate below this is `down`.
    pub down_below: f64,
    /// A success rate below this (and not down) is `slow`.
    pub degraded_below: f64,
    /// Fewer calls than this in the window say nothing: the provider is `ok`.
    pub min_samples: usize,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(300),
            slow_p95: Duration::from_secs(2),
            down_below: 0.5,
            degraded_below: 0.9,
            min_samples: 5,
        }
    }
}

/// The traffic light.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthState {
    Ok,
    Slow,
    Down,
}

/// How one call ended, as far as the provider's health is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The person's data or answer was refused: the provider worked.
    Refused,
    /// The provider's adapter (SMS gateway, agency, store) failed.
    Error,
}

impl Outcome {
    pub fn of<T>(result: &Result<T, AuthError>) -> Self {
        match result {
            Ok(_) => Self::Ok,
            Err(error) if is_adapter_failure(error) => Self::Error,
            Err(_) => Self::Refused,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Refused => "refused",
            Self::Error => "error",
        }
    }
}

/// The failures that are the provider's, not the person's.
fn is_adapter_failure(error: &AuthError) -> bool {
    matches!(
        error,
        AuthError::Store(_) | AuthError::Sms(_) | AuthError::ProviderUnavailable(_)
    )
}

/// What `ListProviders` reports for one provider.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthReport {
    pub state: HealthState,
    /// Share of calls that did not fail in the adapter, 0..1 (1 without samples).
    pub success_rate: f64,
    pub p95_latency: Duration,
    pub samples: usize,
}

/// At most this many calls are kept per provider; older ones fall out first.
const MAX_SAMPLES: usize = 4096;

struct Sample {
    at: Instant,
    failed: bool,
    latency: Duration,
}

/// The sliding window of one provider's calls.
pub struct HealthTracker {
    provider: String,
    thresholds: HealthThresholds,
    samples: Mutex<VecDeque<Sample>>,
}

impl HealthTracker {
    pub fn new(provider: &str, thresholds: HealthThresholds) -> Self {
        Self {
            provider: provider.to_owned(),
            thresholds,
            samples: Mutex::new(VecDeque::new()),
        }
    }

    /// Records one call: metrics and the window.
    pub fn record(&self, outcome: Outcome, latency: Duration) {
        self.record_at(Instant::now(), outcome, latency);
    }

    fn record_at(&self, at: Instant, outcome: Outcome, latency: Duration) {
        metrics::counter!(
            "auth_provider_outcomes_total",
            "provider" => self.provider.clone(),
            "outcome" => outcome.label()
        )
        .increment(1);
        metrics::histogram!("auth_provider_latency_seconds", "provider" => self.provider.clone())
            .record(latency.as_secs_f64());
        if let Ok(mut samples) = self.samples.lock() {
            if samples.len() >= MAX_SAMPLES {
                samples.pop_front();
            }
            samples.push_back(Sample {
                at,
                failed: outcome == Outcome::Error,
                latency,
            });
        }
    }

    pub fn report(&self) -> HealthReport {
        self.report_at(Instant::now())
    }

    fn report_at(&self, now: Instant) -> HealthReport {
        let thresholds = self.thresholds;
        let (failed, mut latencies) = match self.samples.lock() {
            Ok(mut samples) => {
                while samples.front().is_some_and(|sample| {
                    now.saturating_duration_since(sample.at) > thresholds.window
                }) {
                    samples.pop_front();
                }
                let failed = samples.iter().filter(|sample| sample.failed).count();
                let latencies: Vec<Duration> =
                    samples.iter().map(|sample| sample.latency).collect();
                (failed, latencies)
            }
            Err(_) => (0, Vec::new()),
        };
        let samples = latencies.len();
        if samples == 0 {
            return HealthReport {
                state: HealthState::Ok,
                success_rate: 1.0,
                p95_latency: Duration::ZERO,
                samples,
            };
        }
        latencies.sort_unstable();
        // Nearest-rank percentile.
        let rank = (samples * 95).div_ceil(100).max(1);
        let p95_latency = latencies[rank - 1];
        let success_rate = (samples - failed) as f64 / samples as f64;
        let state = if samples < thresholds.min_samples {
            HealthState::Ok
        } else if success_rate < thresholds.down_below {
            HealthState::Down
        } else if success_rate < thresholds.degraded_below || p95_latency > thresholds.slow_p95 {
            HealthState::Slow
        } else {
            HealthState::Ok
        };
        HealthReport {
            state,
            success_rate,
            p95_latency,
            samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> HealthTracker {
        HealthTracker::new("test", HealthThresholds::default())
    }

    const FAST: Duration = Duration::from_millis(20);

    #[test]
    fn without_measurements_a_provider_is_ok() {
        let report = tracker().report();
        assert_eq!(report.state, HealthState::Ok);
        assert_eq!(report.samples, 0);
        assert_eq!(report.success_rate, 1.0);
    }

    #[test]
    fn refusals_are_the_persons_and_keep_the_provider_ok() {
        let health = tracker();
        for _ in 0..10 {
            health.record(Outcome::Refused, FAST);
        }
        let report = health.report();
        assert_eq!(report.state, HealthState::Ok);
        assert_eq!(report.success_rate, 1.0);
        assert_eq!(report.p95_latency, FAST);
    }

    #[test]
    fn repeated_adapter_failures_make_it_down_and_some_make_it_slow() {
        let health = tracker();
        for _ in 0..10 {
            health.record(Outcome::Error, FAST);
        }
        assert_eq!(health.report().state, HealthState::Down);
        let degraded = tracker();
        for index in 0..10 {
            let outcome = if index < 8 {
                Outcome::Ok
            } else {
                Outcome::Error
            };
            degraded.record(outcome, FAST);
        }
        let report = degraded.report();
        assert_eq!(report.state, HealthState::Slow);
        assert!((report.success_rate - 0.8).abs() < 1e-9);
    }

    #[test]
    fn a_slow_p95_is_slow_and_too_few_calls_say_nothing() {
        let health = tracker();
        for index in 0..20 {
            let latency = if index < 18 {
                FAST
            } else {
                Duration::from_secs(3)
            };
            health.record(Outcome::Ok, latency);
        }
        // 2 slow calls of 20 are the top 10 %: the 95th percentile is slow.
        assert_eq!(health.report().state, HealthState::Slow);
        let few = tracker();
        for _ in 0..4 {
            few.record(Outcome::Error, FAST);
        }
        assert_eq!(few.report().state, HealthState::Ok);
    }

    #[test]
    fn calls_older_than_the_window_are_forgotten() {
        let health = tracker();
        let start = Instant::now();
        for _ in 0..10 {
            health.record_at(start, Outcome::Error, FAST);
        }
        assert_eq!(health.report_at(start).state, HealthState::Down);
        let later = start + Duration::from_secs(301);
        let report = health.report_at(later);
        assert_eq!(report.samples, 0);
        assert_eq!(report.state, HealthState::Ok);
    }
}
