//! Where the waiting rooms live. One trait, two implementations — Redis for production
//! ([`RedisQueueStore`], one Lua script per visit and per admission step, every key of a room
//! under the hash tag `{q:<room>}` so each script touches one Redis Cluster slot) and a
//! mutex-guarded map for `vaxbook dev` and unit tests ([`MemoryQueueStore`]) — held to the same
//! behaviour by one conformance suite (`tests/queue_conformance.rs`).
//!
//! The rules both follow:
//! - a person has at most one ticket per room; a visit (take or poll) of a person who already
//!   has one answers it, so a reload, another tab or coming back keeps the place;
//! - places are first come, first served: a ticket's order is a counter incremented inside the
//!   store's one atomic step;
//! - the admission step is a token bucket kept in the store itself (`rate` tokens a second,
//!   at most `burst`), so any number of replicas running it admit at the room's rate together;
//! - an admitted person whose admission lapsed and who comes back (within `return_window`) goes
//!   back to the front: ahead of everyone who was never admitted, in their original order;
//! - while a room is off everyone is admitted at once.
//!
//! Time is always the caller's `now` (the injected clock), never the store's own.

mod memory;
mod redis;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::PersonKey;
use crate::store::StoreError;
use crate::waiting_room::room::{Room, RoomSettings, RoomState, TicketId, TicketView};

pub use self::memory::MemoryQueueStore;
pub use self::redis::RedisQueueStore;

/// How many people one admission step admits at most, so one script stays short.
pub const MAX_ADMITTED_PER_STEP: u64 = 1000;

/// The front of the queue: a returning person's order is their first order minus this, so
/// they wait ahead of everyone never admitted (exact in an f64 score up to 2^53).
pub const FRONT_OFFSET: i64 = 1 << 50;

/// The durations a visit and a step need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueTimes {
    /// How long an admission lasts (the grant's lifetime).
    pub admission: Duration,
    /// How long after a lapsed admission a returning person still gets the front.
    pub return_window: Duration,
}

/// Whether a visit may create a ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visit {
    /// `POST /v1/queue/tickets`: answer the person's ticket, or give them a new one.
    Take,
    /// `GET /v1/queue/tickets/{ticket}`: answer only the person's own ticket.
    Poll,
}

/// What one admission step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepOutcome {
    pub admitted: u64,
    pub still_waiting: u64,
    pub measured_rate: f64,
}

/// A person's place in one room, for operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonPlace {
    pub room: Room,
    pub view: TicketView,
}

/// The waiting rooms.
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Takes or polls a ticket in the ticket's room. On `Take`, `ticket` is the new ticket used
    /// only when the person has none. `Ok(None)`: `Poll` of a ticket that is not (or no longer)
    /// the person's.
    async fn visit(
        &self,
        visit: Visit,
        person_key: &PersonKey,
        ticket: &TicketId,
        now: DateTime<Utc>,
        defaults: &RoomSettings,
        times: QueueTimes,
    ) -> Result<Option<TicketView>, StoreError>;

    /// Keeps `grant` as the person's admission grant unless one is kept already; answers the
    /// one kept (so concurrent polls hand out a single grant).
    async fn keep_grant(
        &self,
        room: &Room,
        person_key: &PersonKey,
        grant: &str,
    ) -> Result<String, StoreError>;

    /// One admission step of the token bucket; `defaults` when the room was never set.
    async fn admit(
        &self,
        room: &Room,
        now: DateTime<Utc>,
        defaults: &RoomSettings,
        times: QueueTimes,
    ) -> Result<StepOutcome, StoreError>;

    /// The room's settings (`defaults` when never set) and measurements.
    async fn state(&self, room: &Room, defaults: &RoomSettings) -> Result<RoomState, StoreError>;

    /// Sets the room's settings; every replica follows from its next step.
    async fn set_settings(&self, room: &Room, settings: &RoomSettings) -> Result<(), StoreError>;

    /// Whether `room` was ever set (a campaign without settings follows the general room).
    async fn has_settings(&self, room: &Room) -> Result<bool, StoreError>;

    /// Every room that has had a ticket or settings (the admission step runs over these).
    async fn rooms(&self) -> Result<Vec<Room>, StoreError>;

    /// The person's places in `rooms`.
    async fn places(
        &self,
        person_key: &PersonKey,
        rooms: &[Room],
        now: DateTime<Utc>,
    ) -> Result<Vec<PersonPlace>, StoreError>;
}

/// A person's ticket record: `ticket order state until_ms`, as both stores keep it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TicketRecord {
    pub ticket: String,
    pub order: i64,
    pub admitted_until_ms: Option<i64>,
}
