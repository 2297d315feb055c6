//! booking-svc's capacity signal (R4, R11): how many booking writes (create, change) this
//! replica serves at once, how many it finishes a second and how long they take, against the
//! targets it is sized for (`BOOKING_TARGET_IN_FLIGHT`, `BOOKING_TARGET_LATENCY_MS`). Published
//! over `vaxbook.booking.v1.CapacityService` for session-svc's automatic admission and as
//! Prometheus gauges for the SREs.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proto::booking::v1 as pb;
use proto::booking::v1::capacity_service_server::{CapacityService, CapacityServiceServer};
use tonic::{Request, Response, Status};

/// The window over which throughput and latency are measured.
const WINDOW: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct Window {
    started: Instant,
    finished: u64,
    total_latency: Duration,
    /// The last full window's throughput (per second) and mean latency (ms).
    last_rate: f64,
    last_mean_ms: f64,
}

/// Counts booking writes in flight and measures those that finished.
#[derive(Debug)]
pub struct CapacityMeter {
    in_flight: AtomicU32,
    window: Mutex<Window>,
    target_in_flight: u32,
    target_latency: Duration,
}

/// One write in flight; counted until dropped.
pub struct InFlight {
    meter: Arc<CapacityMeter>,
    started: Instant,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.meter.finish(self.started.elapsed());
    }
}

impl CapacityMeter {
    pub fn new(target_in_flight: u32, target_latency: Duration) -> Self {
        Self {
            in_flight: AtomicU32::new(0),
            window: Mutex::new(Window {
                started: Instant::now(),
                finished: 0,
                total_latency: Duration::ZERO,
                last_rate: 0.0,
                last_mean_ms: 0.0,
            }),
            target_in_flight: target_in_flight.max(1),
            target_latency,
        }
    }

    /// Counts one write from now until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!("booking_writes_in_flight").set(f64::from(now));
        InFlight {
            meter: self.clone(),
            started: Instant::now(),
        }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn roll(window: &mut Window) {
        let elapsed = window.started.elapsed();
        if elapsed < WINDOW {
            return;
        }
        let seconds = elapsed.as_secs_f64();
        window.last_rate = window.finished as f64 / seconds;
        window.last_mean_ms = if window.finished > 0 {
            window.total_latency.as_secs_f64() * 1000.0 / window.finished as f64
        } else {
            0.0
        };
        window.started = Instant::now();
        window.finished = 0;
        window.total_latency = Duration::ZERO;
    }

    fn finish(&self, latency: Duration) {
        let now = self
            .in_flight
            .fetch_sub(1, Ordering::Relaxed)
            .saturating_sub(1);
        metrics::gauge!("booking_writes_in_flight").set(f64::from(now));
        let mut window = self.window();
        Self::roll(&mut window);
        window.finished += 1;
        window.total_latency += latency;
    }

    /// The signal as published.
    pub fn capacity(&self) -> pb::Capacity {
        let mut window = self.window();
        Self::roll(&mut window);
        // Until a window is complete, what the current one has seen so far.
        let (rate, mean) = if window.last_rate > 0.0 || window.finished == 0 {
            (window.last_rate, window.last_mean_ms)
        } else {
            let seconds = window.started.elapsed().as_secs_f64().max(0.001);
            (
                window.finished as f64 / seconds,
                window.total_latency.as_secs_f64() * 1000.0 / window.finished as f64,
            )
        };
        let capacity = pb::Capacity {
            in_flight: self.in_flight.load(Ordering::Relaxed),
            target_in_flight: self.target_in_flight,
            completed_per_second: rate,
            mean_latency_ms: mean,
            target_latency_ms: self.target_latency.as_secs_f64() * 1000.0,
        };
        metrics::gauge!("booking_writes_per_second").set(rate);
        metrics::gauge!("booking_write_mean_latency_ms").set(mean);
        capacity
    }
}

/// `CapacityService` over a meter.
#[derive(Clone)]
pub struct CapacityGrpc {
    meter: Arc<CapacityMeter>,
}

impl CapacityGrpc {
    pub fn service(meter: Arc<CapacityMeter>) -> CapacityServiceServer<Self> {
        CapacityServiceServer::new(Self { meter })
    }
}

#[tonic::async_trait]
impl CapacityService for CapacityGrpc {
    async fn get_capacity(
        &self,
        _request: Request<pb::GetCapacityRequest>,
    ) -> Result<Response<pb::Capacity>, Status> {
        Ok(Response::new(self.meter.capacity()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_writes_are_counted_until_they_finish() {
        let meter = Arc::new(CapacityMeter::new(2, Duration::from_millis(100)));
        let first = meter.begin();
        let second = meter.begin();
        assert_eq!(meter.capacity().in_flight, 2);
        drop(first);
        assert_eq!(meter.capacity().in_flight, 1);
        drop(second);
        let capacity = meter.capacity();
        assert_eq!(capacity.in_flight, 0);
        assert_eq!(capacity.target_in_flight, 2);
        assert!(capacity.completed_per_second > 0.0);
        assert!((capacity.target_latency_ms - 100.0).abs() < 1e-9);
    }
}
