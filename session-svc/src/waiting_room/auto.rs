//! What runs on its own in every replica: the admission step of every room (the bucket lives
//! in the store, so replicas together admit at the room's rate), and the automatic mode, which
//! reads booking-svc's capacity signal (`vaxbook.booking.v1.CapacityService`) and opens a room
//! set to `automatic` when booking-svc's load reaches `SESSION_AUTO_OPEN_AT` of its target —
//! admitting at booking-svc's measured throughput scaled to its target — and closes it again
//! once the load is below `SESSION_AUTO_CLOSE_AT` and nobody waits.

use std::sync::Arc;
use std::time::Duration;

use proto::booking::v1::capacity_service_client::CapacityServiceClient;
use proto::booking::v1::{Capacity, GetCapacityRequest};
use tokio_util::sync::CancellationToken;

use super::WaitingRoom;
use super::room::{Room, RoomSettings};
use crate::error::SessionError;

/// How often the automatic mode reads booking-svc's capacity.
const CAPACITY_INTERVAL: Duration = Duration::from_millis(500);

/// Where the capacity signal comes from.
#[async_trait::async_trait]
pub trait CapacitySource: Send + Sync {
    async fn capacity(&self) -> Result<Capacity, String>;
}

/// booking-svc's `GetCapacity` over gRPC.
pub struct GrpcCapacitySource {
    client: CapacityServiceClient<platform::grpc::TracedChannel>,
}

impl GrpcCapacitySource {
    pub fn new(channel: platform::grpc::GrpcChannel) -> Self {
        Self {
            client: CapacityServiceClient::with_interceptor(
                channel,
                platform::telemetry::TracePropagation,
            ),
        }
    }
}

#[async_trait::async_trait]
impl CapacitySource for GrpcCapacitySource {
    async fn capacity(&self) -> Result<Capacity, String> {
        self.client
            .clone()
            .get_capacity(GetCapacityRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| status.code().to_string())
    }
}

/// booking-svc's load as a share of its target: the larger of in-flight writes against the
/// in-flight target and mean latency against the latency target.
pub fn load_share(capacity: &Capacity) -> f64 {
    let in_flight = if capacity.target_in_flight > 0 {
        f64::from(capacity.in_flight) / f64::from(capacity.target_in_flight)
    } else {
        0.0
    };
    let latency = if capacity.target_latency_ms > 0.0 {
        capacity.mean_latency_ms / capacity.target_latency_ms
    } else {
        0.0
    };
    in_flight.max(latency)
}

/// What the automatic mode sets a room to, given booking-svc's capacity: `None` to leave it.
pub fn automatic_settings(
    current: &RoomSettings,
    waiting: u64,
    capacity: &Capacity,
    open_at: f64,
    close_at: f64,
) -> Option<RoomSettings> {
    let load = load_share(capacity);
    // Admit at what booking-svc finishes now, scaled to what it is sized for.
    let sustainable = if load > 0.0 {
        capacity.completed_per_second / load
    } else {
        capacity.completed_per_second
    };
    let rate = sustainable.clamp(1.0, super::room::MAX_RATE_PER_SECOND);
    let opened = RoomSettings {
        enabled: true,
        rate_per_second: rate,
        burst: (rate.ceil() as u32).max(1),
        automatic: true,
    };
    if !current.enabled {
        return (load >= open_at).then_some(opened);
    }
    if load < close_at && waiting == 0 {
        return Some(RoomSettings {
            enabled: false,
            ..*current
        });
    }
    // Follow the measured capacity while open, without chasing noise (more than 10 % off).
    let drift = (current.rate_per_second - rate).abs() / current.rate_per_second.max(1.0);
    (drift > 0.1).then_some(opened)
}

/// Runs the admission step every `step_interval` until `shutdown`.
pub async fn run_steps(room: Arc<WaitingRoom>, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(room.config().step_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Err(error) = step_all(&room).await {
            // The store is down or slow: the next tick tries again; visits answer overloaded.
            tracing::warn!(error = %error, "admission step failed");
        }
    }
}

async fn step_all(room: &WaitingRoom) -> Result<(), SessionError> {
    for each in room.rooms().await? {
        room.step(&each).await?;
    }
    Ok(())
}

/// Runs the automatic mode until `shutdown`.
pub async fn run_automatic(
    room: Arc<WaitingRoom>,
    source: Arc<dyn CapacitySource>,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(CAPACITY_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Err(error) = adjust(&room, source.as_ref()).await {
            tracing::warn!(error = %error, "automatic admission skipped a round");
        }
    }
}

/// One round of the automatic mode over every room set to `automatic`.
pub async fn adjust(room: &WaitingRoom, source: &dyn CapacitySource) -> Result<(), SessionError> {
    let mut automatic: Vec<(Room, RoomSettings, u64)> = Vec::new();
    for each in room.rooms().await? {
        let state = room.governing(&each).await?;
        if state.room == each && state.settings.automatic {
            automatic.push((each, state.settings, state.waiting));
        }
    }
    if automatic.is_empty() {
        return Ok(());
    }
    let capacity = match source.capacity().await {
        Ok(capacity) => capacity,
        Err(reason) => {
            tracing::warn!(%reason, "booking-svc's capacity is unknown; rooms left as they are");
            return Ok(());
        }
    };
    metrics::gauge!("queue_booking_load_share").set(load_share(&capacity));
    for (each, current, waiting) in automatic {
        let config = room.config();
        if let Some(next) = automatic_settings(
            &current,
            waiting,
            &capacity,
            config.auto_open_at,
            config.auto_close_at,
        ) {
            room.set(&each, next).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity(in_flight: u32, completed: f64) -> Capacity {
        Capacity {
            in_flight,
            target_in_flight: 10,
            completed_per_second: completed,
            mean_latency_ms: 10.0,
            target_latency_ms: 200.0,
        }
    }

    const CLOSED: RoomSettings = RoomSettings {
        enabled: false,
        rate_per_second: 50.0,
        burst: 50,
        automatic: true,
    };

    #[test]
    fn the_room_opens_when_booking_saturates_and_closes_when_it_recovers() {
        assert_eq!(
            automatic_settings(&CLOSED, 0, &capacity(3, 30.0), 1.0, 0.5),
            None
        );
        let opened = automatic_settings(&CLOSED, 0, &capacity(20, 40.0), 1.0, 0.5)
            .expect("saturated: the room opens");
        assert!(opened.enabled && opened.automatic);
        assert!((opened.rate_per_second - 20.0).abs() < 1e-9, "{opened:?}");
        // Recovered but people still wait: stays open (it drains first).
        let still = automatic_settings(&opened, 5, &capacity(2, 20.0), 1.0, 0.5);
        assert!(still.is_none_or(|settings| settings.enabled));
        let closed = automatic_settings(&opened, 0, &capacity(2, 20.0), 1.0, 0.5)
            .expect("recovered and drained: the room closes");
        assert!(!closed.enabled && closed.automatic);
    }
}
