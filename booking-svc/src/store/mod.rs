//! Storage of centers, slots and bookings. The store, not the service, is where R10 holds:
//! a slot is never booked beyond its capacity and a person never holds two confirmed bookings
//! in one campaign, whatever the concurrency. [`PgBookingStore`] gets this from PostgreSQL
//! (guarded updates, a CHECK and unique indexes); [`MemoryBookingStore`] from one mutex over
//! its whole state. One conformance suite (`conformance.rs`) runs against both.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::domain::{Booking, Center, IdempotencyKey, NewBooking, ReleasedShare, Slot, SlotDraft};

#[cfg(test)]
mod conformance;
pub mod memory;
pub mod pg;

pub use memory::MemoryBookingStore;
pub use pg::{PgBookingStore, migrate};

/// Why a store operation failed. The business outcomes (full, already booked, …) are their
/// own variants; infrastructure failures keep their cause as the error's source.
#[derive(Debug, thiserror::Error)]
pub enum BookingStoreError {
    /// Every released place of the slot is taken (the whole capacity, or the share released
    /// so far).
    #[error("the slot is fully booked")]
    SlotFull,
    /// The booker already holds the campaign's limit of confirmed proxy bookings.
    #[error("the booker already made {max} proxy bookings in this campaign")]
    ProxyLimitReached { max: u32 },
    #[error("the person already holds a booking in this campaign")]
    AlreadyBooked,
    #[error("this person already used the idempotency key")]
    IdempotencyConflict,
    /// What was not found: "slot", "center", "booking".
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("the booking is already cancelled")]
    AlreadyCancelled,
    #[error("capacity {capacity} is below the {booked} places already booked")]
    CapacityBelowBooked { capacity: i32, booked: i32 },
    #[error("a slot with bookings cannot move to another campaign or date")]
    SlotHasBookings,
    /// No database connection was free in time: retry shortly.
    #[error("no database connection is free")]
    PoolBusy(#[source] deadpool_postgres::PoolError),
    /// The transaction was rolled back as a whole (deadlock, serialization): retry shortly.
    #[error("the transaction was rolled back by a conflicting one")]
    Conflict(#[source] tokio_postgres::Error),
    /// A cancel or change found the booking moved by a concurrent change too often.
    #[error("the booking kept moving to other slots during the update")]
    MovedTooOften,
    /// Any other database failure.
    #[error("the database failed")]
    Database(#[source] tokio_postgres::Error),
    /// A stored booking has a status this version does not know.
    #[error("a stored booking has the unknown status {0:?}")]
    UnknownStatus(String),
    /// The in-process store found its own state inconsistent (a poisoned lock, a dangling
    /// reference, a duplicate id).
    #[error("the in-process store is inconsistent: {0}")]
    Inconsistent(&'static str),
}

impl BookingStoreError {
    /// Whether the failure is passing: the same request may succeed when retried shortly.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            Self::PoolBusy(_) | Self::Conflict(_) | Self::MovedTooOften
        )
    }
}

/// Centers, slots and bookings.
#[async_trait]
pub trait BookingStore: Send + Sync {
    /// Creates or replaces a center.
    async fn upsert_center(&self, center: Center) -> Result<Center, BookingStoreError>;
    /// Centers of `region` (all when `None`), ordered by region then name.
    async fn list_centers(&self, region: Option<&str>) -> Result<Vec<Center>, BookingStoreError>;
    async fn get_center(&self, id: Uuid) -> Result<Option<Center>, BookingStoreError>;
    /// Creates or updates a slot, keeping its booked count. The center must exist
    /// (`NotFound("center")`); capacity may not drop below the booked count; a slot with
    /// bookings keeps its campaign and date.
    async fn upsert_slot(&self, slot: SlotDraft) -> Result<Slot, BookingStoreError>;
    async fn get_slot(&self, id: Uuid) -> Result<Option<Slot>, BookingStoreError>;
    /// Slots of a center with a date in `from..=to` (open ends when `None`), by start time.
    async fn list_slots(
        &self,
        center_id: Uuid,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Vec<Slot>, BookingStoreError>;
    /// The person's booking made with this idempotency key, if any.
    async fn find_by_idempotency_key(
        &self,
        person_key: &str,
        key: &IdempotencyKey,
    ) -> Result<Option<Booking>, BookingStoreError>;
    /// Reserves a place in the slot and records a confirmed booking, atomically:
    /// `NotFound("slot")` when the slot does not exist or is in another campaign, `SlotFull`
    /// (no place below `floor(capacity × released_share)` is free), `AlreadyBooked` (a
    /// confirmed booking in the campaign exists), `IdempotencyConflict` (the person used the
    /// key before), `ProxyLimitReached` (a proxy booking when the booker already holds
    /// `max_per_booker` confirmed proxy bookings in the campaign, counted atomically with the
    /// insert). On any failure nothing changes.
    async fn create_booking(&self, booking: NewBooking) -> Result<Booking, BookingStoreError>;
    /// The person's bookings (those made for them by a proxy included), newest first.
    async fn list_bookings(&self, person_key: &str) -> Result<Vec<Booking>, BookingStoreError>;
    /// The bookings `booked_by` made for other people, newest first.
    async fn list_bookings_made_for_others(
        &self,
        booked_by: &str,
    ) -> Result<Vec<Booking>, BookingStoreError>;
    async fn get_booking(&self, id: Uuid) -> Result<Option<Booking>, BookingStoreError>;
    /// Cancels the person's confirmed booking and frees its place, atomically; a booking of
    /// someone else is `NotFound("booking")`. Of two concurrent cancels one wins, the other
    /// gets `AlreadyCancelled`, and the place is freed once.
    async fn cancel_booking(
        &self,
        id: Uuid,
        person_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Booking, BookingStoreError>;
    /// Moves the person's confirmed booking to `new_slot_id`, atomically: takes a place in the
    /// new slot, gives the old one back, and recomputes `cancellable_until` from the new slot's
    /// date and `cancellation_closes_days_before`. `NotFound("booking")` for a booking of
    /// someone else, `AlreadyCancelled`, `NotFound("slot")` when the new slot does not exist or
    /// is in another campaign, `SlotFull` (no released place free in the new slot); on any
    /// failure nothing changes. Moving to the slot the booking already holds returns it
    /// unchanged.
    async fn change_booking(
        &self,
        id: Uuid,
        person_key: &str,
        new_slot_id: Uuid,
        cancellation_closes_days_before: u32,
        released_share: ReleasedShare,
    ) -> Result<Booking, BookingStoreError>;
    /// One round trip to the backing store (readiness).
    async fn ping(&self) -> Result<(), BookingStoreError>;
}
