//! The in-process booking store for the dev run and unit tests. One mutex guards the whole
//! state, so every operation is atomic and the R10 invariants hold exactly as in PostgreSQL.
//! Nothing survives a restart.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{BookingStore, BookingStoreError};
use crate::domain::{
    Booking, BookingStatus, Center, IdempotencyKey, NewBooking, ReleasedShare, Slot, SlotDraft,
    cancellable_until, storage_precision,
};

/// A booking as kept here: it names its slot, which is joined in when read, like in SQL.
#[derive(Clone, Debug)]
struct StoredBooking {
    id: Uuid,
    person_key: String,
    campaign_id: String,
    slot_id: Uuid,
    status: BookingStatus,
    idempotency_key: Option<String>,
    created_at: DateTime<Utc>,
    cancelled_at: Option<DateTime<Utc>>,
    cancellable_until: NaiveDate,
    booked_by: Option<String>,
    beneficiary_masked_name: Option<String>,
    agent: Option<String>,
}

#[derive(Default)]
struct State {
    centers: HashMap<Uuid, Center>,
    slots: HashMap<Uuid, Slot>,
    bookings: HashMap<Uuid, StoredBooking>,
}

impl State {
    fn materialize(&self, stored: &StoredBooking) -> Result<Booking, BookingStoreError> {
        let slot = self.slots.get(&stored.slot_id).ok_or_else(|| {
            BookingStoreError::Inconsistent("a booking names a slot that does not exist")
        })?;
        Ok(Booking {
            id: stored.id,
            person_key: stored.person_key.clone(),
            campaign_id: stored.campaign_id.clone(),
            slot: slot.clone(),
            status: stored.status,
            idempotency_key: stored.idempotency_key.clone(),
            created_at: stored.created_at,
            cancelled_at: stored.cancelled_at,
            cancellable_until: stored.cancellable_until,
            booked_by: stored.booked_by.clone(),
            beneficiary_masked_name: stored.beneficiary_masked_name.clone(),
            agent: stored.agent.clone(),
        })
    }

    /// Newest first, like the SQL store's `ORDER BY created_at DESC, id DESC`.
    fn newest_first<'a>(
        &self,
        bookings: impl Iterator<Item = &'a StoredBooking>,
    ) -> Result<Vec<Booking>, BookingStoreError> {
        let mut chosen: Vec<&StoredBooking> = bookings.collect();
        chosen.sort_by_key(|booking| std::cmp::Reverse((booking.created_at, booking.id)));
        chosen
            .into_iter()
            .map(|stored| self.materialize(stored))
            .collect()
    }
}

/// A place below `floor(capacity × share)` is free: the memory twin of the guarded update.
fn has_released_place(slot: &Slot, share: ReleasedShare) -> bool {
    slot.booked < slot.capacity && slot.booked < share.of(slot.capacity)
}

/// In-process [`BookingStore`].
#[derive(Default)]
pub struct MemoryBookingStore {
    state: Mutex<State>,
}

impl MemoryBookingStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, BookingStoreError> {
        // A poisoned lock means an update panicked half-way: refuse rather than serve a state
        // whose invariants may be broken.
        self.state
            .lock()
            .map_err(|_| BookingStoreError::Inconsistent("the lock is poisoned"))
    }
}

#[async_trait]
impl BookingStore for MemoryBookingStore {
    async fn upsert_center(&self, center: Center) -> Result<Center, BookingStoreError> {
        let mut state = self.state()?;
        state.centers.insert(center.id, center.clone());
        Ok(center)
    }

    async fn list_centers(&self, region: Option<&str>) -> Result<Vec<Center>, BookingStoreError> {
        let state = self.state()?;
        let mut centers: Vec<Center> = state
            .centers
            .values()
            .filter(|center| region.is_none_or(|wanted| center.region == wanted))
            .cloned()
            .collect();
        centers.sort_by(|a, b| (&a.region, &a.name, a.id).cmp(&(&b.region, &b.name, b.id)));
        Ok(centers)
    }

    async fn get_center(&self, id: Uuid) -> Result<Option<Center>, BookingStoreError> {
        Ok(self.state()?.centers.get(&id).cloned())
    }

    async fn upsert_slot(&self, draft: SlotDraft) -> Result<Slot, BookingStoreError> {
        let mut state = self.state()?;
        if !state.centers.contains_key(&draft.center_id) {
            return Err(BookingStoreError::NotFound("center"));
        }
        let draft = SlotDraft {
            starts_at: storage_precision(draft.starts_at),
            ends_at: storage_precision(draft.ends_at),
            ..draft
        };
        let booked = match state.slots.get(&draft.id) {
            None => 0,
            Some(existing) => {
                if existing.booked > 0
                    && (existing.campaign_id != draft.campaign_id || existing.date != draft.date)
                {
                    return Err(BookingStoreError::SlotHasBookings);
                }
                if draft.capacity < existing.booked {
                    return Err(BookingStoreError::CapacityBelowBooked {
                        capacity: draft.capacity,
                        booked: existing.booked,
                    });
                }
                existing.booked
            }
        };
        let slot = Slot::from_draft(draft, booked);
        state.slots.insert(slot.id, slot.clone());
        Ok(slot)
    }

    async fn get_slot(&self, id: Uuid) -> Result<Option<Slot>, BookingStoreError> {
        Ok(self.state()?.slots.get(&id).cloned())
    }

    async fn list_slots(
        &self,
        center_id: Uuid,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Vec<Slot>, BookingStoreError> {
        let state = self.state()?;
        let mut slots: Vec<Slot> = state
            .slots
            .values()
            .filter(|slot| slot.center_id == center_id)
            .filter(|slot| from.is_none_or(|from| slot.date >= from))
            .filter(|slot| to.is_none_or(|to| slot.date <= to))
            .cloned()
            .collect();
        slots.sort_by_key(|slot| (slot.starts_at, slot.id));
        Ok(slots)
    }

    async fn find_by_idempotency_key(
        &self,
        person_key: &str,
        key: &IdempotencyKey,
    ) -> Result<Option<Booking>, BookingStoreError> {
        let state = self.state()?;
        state
            .bookings
            .values()
            .find(|booking| {
                booking.person_key == person_key
                    && booking.idempotency_key.as_deref() == Some(key.as_str())
            })
            .map(|stored| state.materialize(stored))
            .transpose()
    }

    async fn create_booking(&self, booking: NewBooking) -> Result<Booking, BookingStoreError> {
        let mut state = self.state()?;
        // Same order of checks as the SQL store: the proxy quota, the place, then the
        // uniqueness rules of the bookings table.
        if let Some(proxy) = &booking.proxy {
            let made = state
                .bookings
                .values()
                .filter(|existing| {
                    existing.booked_by.as_deref() == Some(proxy.booked_by.as_str())
                        && existing.campaign_id == booking.campaign_id
                        && existing.status == BookingStatus::Confirmed
                })
                .count();
            if made >= usize::try_from(proxy.max_per_booker).unwrap_or(usize::MAX) {
                return Err(BookingStoreError::ProxyLimitReached {
                    max: proxy.max_per_booker,
                });
            }
        }
        let slot = state
            .slots
            .get(&booking.slot_id)
            .filter(|slot| slot.campaign_id == booking.campaign_id)
            .ok_or(BookingStoreError::NotFound("slot"))?;
        if !has_released_place(slot, booking.released_share) {
            return Err(BookingStoreError::SlotFull);
        }
        let vaccination_date = slot.date;
        let holds_one = state.bookings.values().any(|existing| {
            existing.person_key == booking.person_key
                && existing.campaign_id == booking.campaign_id
                && existing.status == BookingStatus::Confirmed
        });
        if holds_one {
            return Err(BookingStoreError::AlreadyBooked);
        }
        if let Some(key) = &booking.idempotency_key {
            let key_used = state.bookings.values().any(|existing| {
                existing.person_key == booking.person_key
                    && existing.idempotency_key.as_deref() == Some(key.as_str())
            });
            if key_used {
                return Err(BookingStoreError::IdempotencyConflict);
            }
        }
        if state.bookings.contains_key(&booking.id) {
            return Err(BookingStoreError::Inconsistent(
                "a booking with this id exists",
            ));
        }
        let stored = StoredBooking {
            id: booking.id,
            person_key: booking.person_key,
            campaign_id: booking.campaign_id,
            slot_id: booking.slot_id,
            status: BookingStatus::Confirmed,
            idempotency_key: booking.idempotency_key.map(|key| key.as_str().to_owned()),
            created_at: storage_precision(booking.created_at),
            cancelled_at: None,
            cancellable_until: cancellable_until(
                vaccination_date,
                booking.cancellation_closes_days_before,
            ),
            booked_by: booking.proxy.as_ref().map(|proxy| proxy.booked_by.clone()),
            beneficiary_masked_name: booking.proxy.map(|proxy| proxy.beneficiary_masked_name),
            agent: booking.agent,
        };
        if let Some(slot) = state.slots.get_mut(&booking.slot_id) {
            slot.booked += 1;
            debug_assert!(slot.booked <= slot.capacity);
        }
        state.bookings.insert(stored.id, stored.clone());
        state.materialize(&stored)
    }

    async fn list_bookings(&self, person_key: &str) -> Result<Vec<Booking>, BookingStoreError> {
        let state = self.state()?;
        state.newest_first(
            state
                .bookings
                .values()
                .filter(|booking| booking.person_key == person_key),
        )
    }

    async fn list_bookings_made_for_others(
        &self,
        booked_by: &str,
    ) -> Result<Vec<Booking>, BookingStoreError> {
        let state = self.state()?;
        state.newest_first(
            state
                .bookings
                .values()
                .filter(|booking| booking.booked_by.as_deref() == Some(booked_by)),
        )
    }

    async fn get_booking(&self, id: Uuid) -> Result<Option<Booking>, BookingStoreError> {
        let state = self.state()?;
        state
            .bookings
            .get(&id)
            .map(|stored| state.materialize(stored))
            .transpose()
    }

    async fn cancel_booking(
        &self,
        id: Uuid,
        person_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Booking, BookingStoreError> {
        let mut state = self.state()?;
        let stored = state
            .bookings
            .get_mut(&id)
            .filter(|booking| booking.person_key == person_key)
            .ok_or(BookingStoreError::NotFound("booking"))?;
        if stored.status == BookingStatus::Cancelled {
            return Err(BookingStoreError::AlreadyCancelled);
        }
        stored.status = BookingStatus::Cancelled;
        stored.cancelled_at = Some(storage_precision(now));
        let cancelled = stored.clone();
        if let Some(slot) = state.slots.get_mut(&cancelled.slot_id) {
            slot.booked -= 1;
            debug_assert!(slot.booked >= 0);
        }
        state.materialize(&cancelled)
    }

    async fn change_booking(
        &self,
        id: Uuid,
        person_key: &str,
        new_slot_id: Uuid,
        cancellation_closes_days_before: u32,
        released_share: ReleasedShare,
    ) -> Result<Booking, BookingStoreError> {
        let mut state = self.state()?;
        // Same order of checks as the SQL store; nothing is written until all have passed.
        let stored = state
            .bookings
            .get(&id)
            .filter(|booking| booking.person_key == person_key)
            .ok_or(BookingStoreError::NotFound("booking"))?;
        if stored.status == BookingStatus::Cancelled {
            return Err(BookingStoreError::AlreadyCancelled);
        }
        let old_slot_id = stored.slot_id;
        if old_slot_id == new_slot_id {
            let unchanged = stored.clone();
            return state.materialize(&unchanged);
        }
        let new_slot = state
            .slots
            .get(&new_slot_id)
            .filter(|slot| slot.campaign_id == stored.campaign_id)
            .ok_or(BookingStoreError::NotFound("slot"))?;
        if !has_released_place(new_slot, released_share) {
            return Err(BookingStoreError::SlotFull);
        }
        let new_until = cancellable_until(new_slot.date, cancellation_closes_days_before);
        if let Some(slot) = state.slots.get_mut(&new_slot_id) {
            slot.booked += 1;
            debug_assert!(slot.booked <= slot.capacity);
        }
        if let Some(slot) = state.slots.get_mut(&old_slot_id) {
            slot.booked -= 1;
            debug_assert!(slot.booked >= 0);
        }
        let stored = state
            .bookings
            .get_mut(&id)
            .ok_or(BookingStoreError::NotFound("booking"))?;
        stored.slot_id = new_slot_id;
        stored.cancellable_until = new_until;
        let moved = stored.clone();
        state.materialize(&moved)
    }

    async fn ping(&self) -> Result<(), BookingStoreError> {
        self.state().map(|_| ())
    }
}
