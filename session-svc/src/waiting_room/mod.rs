//! The waiting room (R11): people past the identity check take a ticket that belongs to their
//! person key, wait with a visible position and estimated wait, and are admitted at the rate
//! the booking services can take. An admitted poll answers a short-lived admission grant
//! (`platform::admission::AdmissionGrant`, signed with session-svc's key) that booking-svc
//! checks itself on every create and change while the room is on.
//!
//! [`WaitingRoom`] holds the rules over a [`QueueStore`]; [`grpc`] is the tonic adapter of
//! `QueueService` and `QueueAdminService`; [`auto`] runs the admission step and the automatic
//! mode; [`audit`] records the operators' calls on a person.

pub mod audit;
pub mod auto;
pub mod grpc;
pub mod room;
pub mod wiring;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::admission::AdmissionGrant;
use platform::clock::SharedClock;
use platform::grants::GrantIssuer;

use self::room::{Room, RoomSettings, RoomState, TicketId, TicketView};
use crate::config::QueueConfig;
use crate::domain::PersonKey;
use crate::error::SessionError;
use crate::store::bounded;
use crate::store::queue::{PersonPlace, QueueStore, QueueTimes, StepOutcome, Visit};

/// What a take or a poll answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketStatus {
    pub ticket: String,
    pub room: Room,
    /// 0 once admitted.
    pub position: u64,
    pub eta_seconds: u64,
    pub poll_after_seconds: u64,
    /// The admission grant and its expiry, once admitted.
    pub admission: Option<(String, DateTime<Utc>)>,
}

/// The longest `poll_after_seconds` ever answered.
const MAX_POLL_AFTER_SECS: u64 = 3600;
/// The rate below which a measured admission rate is treated as "nothing measured yet".
const MEASURED_FLOOR: f64 = 0.05;

/// The waiting room's rules.
pub struct WaitingRoom {
    store: Arc<dyn QueueStore>,
    issuer: GrantIssuer,
    clock: SharedClock,
    config: QueueConfig,
    pub(crate) store_timeout: Duration,
}

impl WaitingRoom {
    pub fn new(
        store: Arc<dyn QueueStore>,
        issuer: GrantIssuer,
        clock: SharedClock,
        config: QueueConfig,
        store_timeout: Duration,
    ) -> Self {
        Self {
            store,
            issuer,
            clock,
            config,
            store_timeout,
        }
    }

    fn times(&self) -> QueueTimes {
        QueueTimes {
            admission: self.config.admission_ttl,
            return_window: self.config.return_window,
        }
    }

    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// The person's ticket in `room`: their existing one (same place), or a new one at the back.
    pub async fn take(
        &self,
        person_key: &PersonKey,
        room: &Room,
    ) -> Result<TicketStatus, SessionError> {
        let ticket = TicketId::generate(room);
        let status = self.visit(Visit::Take, room, person_key, &ticket).await;
        let outcome = match &status {
            Ok(_) => "answered",
            Err(SessionError::Store(_)) => "overloaded",
            Err(_) => "refused",
        };
        metrics::counter!("queue_tickets_total", "outcome" => outcome).increment(1);
        status
    }

    /// The person's ticket `ticket`; `TicketNotFound` when it is not theirs.
    pub async fn poll(
        &self,
        person_key: &PersonKey,
        ticket: &str,
    ) -> Result<TicketStatus, SessionError> {
        metrics::counter!("queue_polls_total").increment(1);
        let ticket = TicketId::parse(ticket).ok_or(SessionError::TicketNotFound)?;
        let room = ticket.room().clone();
        self.visit(Visit::Poll, &room, person_key, &ticket).await
    }

    async fn visit(
        &self,
        visit: Visit,
        room: &Room,
        person_key: &PersonKey,
        ticket: &TicketId,
    ) -> Result<TicketStatus, SessionError> {
        let now = self.clock.now();
        let defaults = self.defaults_for(room).await?;
        let view = bounded(
            self.store_timeout,
            self.store
                .visit(visit, person_key, ticket, now, &defaults, self.times()),
        )
        .await?
        .ok_or(SessionError::TicketNotFound)?;
        match view {
            TicketView::Waiting { ticket, position } => {
                let state = bounded(self.store_timeout, self.store.state(room, &defaults)).await?;
                let (eta_seconds, poll_after_seconds) =
                    self.estimates(position, &state.settings, state.measured_rate);
                Ok(TicketStatus {
                    ticket,
                    room: room.clone(),
                    position,
                    eta_seconds,
                    poll_after_seconds,
                    admission: None,
                })
            }
            TicketView::Admitted {
                ticket,
                until,
                grant,
            } => {
                let grant = match grant {
                    Some(grant) => grant,
                    None => self.issue_grant(room, person_key, now, until).await?,
                };
                Ok(TicketStatus {
                    ticket,
                    room: room.clone(),
                    position: 0,
                    eta_seconds: 0,
                    poll_after_seconds: 0,
                    admission: Some((grant, until)),
                })
            }
        }
    }

    async fn issue_grant(
        &self,
        room: &Room,
        person_key: &PersonKey,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<String, SessionError> {
        let ttl = (until - now)
            .to_std()
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_secs(1));
        let issued = self
            .issuer
            .issue(
                &AdmissionGrant {
                    sub: person_key.as_str().to_owned(),
                    room: room.as_str().to_owned(),
                    uses: self.config.grant_uses,
                },
                now,
                ttl,
            )
            .map_err(|err| {
                tracing::error!(error = %err, "cannot sign an admission grant");
                SessionError::Upstream(platform::problem::Problem::internal())
            })?;
        metrics::counter!("queue_grants_issued_total").increment(1);
        Ok(bounded(
            self.store_timeout,
            self.store.keep_grant(room, person_key, &issued.token),
        )
        .await?)
    }

    /// ETA from the measured admission rate (the set rate until something was measured), and
    /// the poll interval: `position / max(poll_budget, 2 × rate)` seconds, at least 1, so the
    /// waiting clients together poll at most about `max(budget, 2 × rate) × (1 + ln N)` times
    /// a second, and each polls again before half its remaining wait has passed.
    pub fn estimates(&self, position: u64, settings: &RoomSettings, measured: f64) -> (u64, u64) {
        let rate = if measured > MEASURED_FLOOR {
            measured
        } else {
            settings.rate_per_second
        };
        let eta = if rate > 0.0 {
            (position as f64 / rate).ceil()
        } else {
            MAX_POLL_AFTER_SECS as f64
        };
        let spread = f64::from(self.config.poll_budget).max(2.0 * rate);
        let poll_after = (position as f64 / spread).ceil();
        (
            eta.clamp(0.0, u64::MAX as f64) as u64,
            (poll_after as u64).clamp(1, MAX_POLL_AFTER_SECS),
        )
    }

    /// The defaults a room follows until it is set: the general room's settings (which are
    /// the configured ones until an operator sets the general room).
    async fn defaults_for(&self, _room: &Room) -> Result<RoomSettings, SessionError> {
        let general = bounded(
            self.store_timeout,
            self.store.state(&Room::General, &self.config.defaults),
        )
        .await?;
        Ok(general.settings)
    }

    /// The state of the room that governs `room`: its own once set, else the general room.
    pub async fn governing(&self, room: &Room) -> Result<RoomState, SessionError> {
        let governing = match room {
            Room::General => Room::General,
            Room::Campaign(_) => {
                if bounded(self.store_timeout, self.store.has_settings(room)).await? {
                    room.clone()
                } else {
                    Room::General
                }
            }
        };
        let defaults = self.defaults_for(&governing).await?;
        Ok(bounded(self.store_timeout, self.store.state(&governing, &defaults)).await?)
    }

    /// Sets a room's settings (operators, the dev run, the automatic mode).
    pub async fn set(
        &self,
        room: &Room,
        settings: RoomSettings,
    ) -> Result<RoomState, SessionError> {
        settings.validate()?;
        bounded(self.store_timeout, self.store.set_settings(room, &settings)).await?;
        tracing::info!(
            room = %room,
            enabled = settings.enabled,
            rate_per_second = settings.rate_per_second,
            automatic = settings.automatic,
            "admission set"
        );
        let defaults = self.defaults_for(room).await?;
        Ok(bounded(self.store_timeout, self.store.state(room, &defaults)).await?)
    }

    /// Every room this replica steps: the general one and every room seen.
    pub async fn rooms(&self) -> Result<Vec<Room>, SessionError> {
        let mut rooms = bounded(self.store_timeout, self.store.rooms()).await?;
        if !rooms.contains(&Room::General) {
            rooms.insert(0, Room::General);
        }
        Ok(rooms)
    }

    /// One admission step of `room`, with its metrics.
    pub async fn step(&self, room: &Room) -> Result<StepOutcome, SessionError> {
        let defaults = self.defaults_for(room).await?;
        let outcome = bounded(
            self.store_timeout,
            self.store
                .admit(room, self.clock.now(), &defaults, self.times()),
        )
        .await?;
        let state = bounded(self.store_timeout, self.store.state(room, &defaults)).await?;
        let label = room.as_str().to_owned();
        metrics::counter!("queue_admitted_total", "room" => label.clone())
            .increment(outcome.admitted);
        metrics::gauge!("queue_waiting", "room" => label.clone()).set(state.waiting as f64);
        metrics::gauge!("queue_admission_enabled", "room" => label.clone())
            .set(if state.settings.enabled { 1.0 } else { 0.0 });
        metrics::gauge!("queue_admission_rate", "room" => label.clone())
            .set(state.settings.rate_per_second);
        metrics::gauge!("queue_measured_admission_rate", "room" => label.clone())
            .set(outcome.measured_rate);
        let (wait, _) = self.estimates(state.waiting, &state.settings, outcome.measured_rate);
        metrics::gauge!("queue_estimated_wait_seconds", "room" => label).set(wait as f64);
        Ok(outcome)
    }

    /// The person's places in every room (operators).
    pub async fn places(&self, person_key: &PersonKey) -> Result<Vec<PersonPlace>, SessionError> {
        let rooms = self.rooms().await?;
        Ok(bounded(
            self.store_timeout,
            self.store.places(person_key, &rooms, self.clock.now()),
        )
        .await?)
    }
}
