//! The booking rules, independent of gRPC: who may book which slot (eligibility, proxy
//! policy, idempotent retries), cancellation through D-N in KST and changes once the campaign
//! allows them (R8), and the operator upserts. Every "now" and "today" comes from the injected
//! clock. Refusals are [`BookingError`]s; the tonic adapters in `grpc.rs` authenticate the
//! caller, call in here, and turn the error into a status.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use platform::clock::SharedClock;
use uuid::Uuid;

use crate::domain::{
    Booking, BookingChange, BookingRequest, BookingStatus, Center, NewBooking, Person, Slot,
    SlotDraft, SlotQuery, storage_precision,
};
use crate::eligibility::{CampaignTerms, EligibilityChecker};
use crate::error::BookingError;
use crate::store::{BookingStore, BookingStoreError};

/// How a CreateBooking ended, for the metrics.
enum Created {
    New(Booking),
    Replayed(Booking),
}

/// How a ChangeBooking ended, for the metrics.
enum Changed {
    Moved(Booking),
    /// The booking already holds the slot asked for (a retried change, say).
    Unchanged(Booking),
}

/// The booking service's logic over a store and an eligibility source.
pub struct BookingLogic {
    store: Arc<dyn BookingStore>,
    eligibility: Arc<dyn EligibilityChecker>,
    clock: SharedClock,
}

impl BookingLogic {
    pub fn new(
        store: Arc<dyn BookingStore>,
        eligibility: Arc<dyn EligibilityChecker>,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            eligibility,
            clock,
        }
    }

    pub async fn list_centers(&self, region: Option<&str>) -> Result<Vec<Center>, BookingError> {
        Ok(self.store.list_centers(region).await?)
    }

    pub async fn list_slots(&self, query: &SlotQuery) -> Result<Vec<Slot>, BookingError> {
        Ok(self
            .store
            .list_slots(query.center_id, query.from, query.to)
            .await?)
    }

    /// The slot to book or move to: it must exist and its day (KST) must not have passed.
    async fn bookable_slot(&self, slot_id: Uuid) -> Result<Slot, BookingError> {
        let slot = self
            .store
            .get_slot(slot_id)
            .await?
            .ok_or(BookingStoreError::NotFound("slot"))?;
        if slot.date < self.clock.today_kst() {
            return Err(BookingError::invalid("the slot's day has passed"));
        }
        Ok(slot)
    }

    /// Books a slot for `person`; a retry with the same idempotency key returns the first
    /// booking instead of making a second one.
    pub async fn create_booking(
        &self,
        person: &Person,
        request: BookingRequest,
    ) -> Result<Booking, BookingError> {
        match self.try_create_booking(person, request).await {
            Ok(Created::New(booking)) => {
                metrics::counter!("booking_created_total").increment(1);
                tracing::info!(booking_id = %booking.id, slot_id = %booking.slot.id, "booking created");
                Ok(booking)
            }
            Ok(Created::Replayed(booking)) => Ok(booking),
            Err(error) => {
                metrics::counter!("booking_rejected_total", "reason" => error.kind().name())
                    .increment(1);
                Err(error)
            }
        }
    }

    async fn try_create_booking(
        &self,
        person: &Person,
        request: BookingRequest,
    ) -> Result<Created, BookingError> {
        if let Some(existing) = self.replay(person, &request).await? {
            return Ok(Created::Replayed(existing));
        }
        let slot = self.bookable_slot(request.slot_id).await?;
        let answer = self
            .eligibility
            .check(&slot.campaign_id, person.birth_date, &person.person_key)
            .await?;
        if request.proxy {
            return Err(self.proxy_refusal(&answer.terms));
        }
        if !answer.eligible {
            return Err(BookingError::NotEligible {
                reason: answer.reason,
            });
        }
        let new_booking = NewBooking {
            id: Uuid::new_v4(),
            person_key: person.person_key.to_string(),
            campaign_id: slot.campaign_id.clone(),
            slot_id: slot.id,
            idempotency_key: request.idempotency_key.clone(),
            created_at: storage_precision(self.clock.now()),
            cancellation_closes_days_before: answer.terms.cancellation_closes_days_before,
        };
        match self.store.create_booking(new_booking).await {
            Ok(booking) => Ok(Created::New(booking)),
            // A concurrent request with the same key may have won the race: whichever unique
            // index it tripped, answer as a replay would.
            Err(BookingStoreError::AlreadyBooked | BookingStoreError::IdempotencyConflict)
                if request.idempotency_key.is_some() =>
            {
                match self.replay(person, &request).await? {
                    Some(existing) => Ok(Created::Replayed(existing)),
                    None => Err(BookingStoreError::AlreadyBooked.into()),
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The booking this request's idempotency key already made, if the key was used: same
    /// slot → that booking; another slot → the key is being reused for a different request.
    async fn replay(
        &self,
        person: &Person,
        request: &BookingRequest,
    ) -> Result<Option<Booking>, BookingError> {
        let Some(key) = &request.idempotency_key else {
            return Ok(None);
        };
        match self
            .store
            .find_by_idempotency_key(person.person_key.as_str(), key)
            .await?
        {
            None => Ok(None),
            Some(existing) if existing.slot.id == request.slot_id => Ok(Some(existing)),
            Some(_) => Err(BookingStoreError::IdempotencyConflict.into()),
        }
    }

    /// Proxy bookings are refused here in every case: where a campaign allows them they go
    /// through the call-center channel, which is not part of this service yet.
    fn proxy_refusal(&self, terms: &CampaignTerms) -> BookingError {
        let open = terms.proxy_allowed
            && terms
                .proxy_deadline
                .is_none_or(|deadline| self.clock.now() < deadline);
        let detail = if !terms.proxy_allowed {
            "this campaign does not allow booking for another person"
        } else if !open {
            "the proxy booking deadline of this campaign has passed"
        } else {
            "proxy booking goes through the call center"
        };
        BookingError::ProxyNotAllowed(detail)
    }

    pub async fn list_my_bookings(&self, person: &Person) -> Result<Vec<Booking>, BookingError> {
        Ok(self.store.list_bookings(person.person_key.as_str()).await?)
    }

    /// The caller's booking; someone else's booking is "not found", not "forbidden", so ids
    /// of other people's bookings reveal nothing.
    pub async fn get_booking(&self, person: &Person, id: Uuid) -> Result<Booking, BookingError> {
        self.store
            .get_booking(id)
            .await?
            .filter(|booking| booking.person_key == person.person_key.as_str())
            .ok_or_else(|| BookingStoreError::NotFound("booking").into())
    }

    /// Cancels the caller's booking through D-N (KST) and frees its place at once.
    pub async fn cancel_booking(&self, person: &Person, id: Uuid) -> Result<Booking, BookingError> {
        let booking = self.get_booking(person, id).await?;
        if booking.status == BookingStatus::Cancelled {
            return Err(BookingStoreError::AlreadyCancelled.into());
        }
        let now = self.clock.now();
        require_cancellable(&booking, now)?;
        let cancelled = self
            .store
            .cancel_booking(id, person.person_key.as_str(), now)
            .await?;
        metrics::counter!("booking_cancelled_total").increment(1);
        tracing::info!(booking_id = %cancelled.id, slot_id = %cancelled.slot.id, "booking cancelled");
        Ok(cancelled)
    }

    /// Moves the caller's confirmed booking to another slot of its campaign, once the campaign
    /// allows changes and while the booking could still be cancelled (R8): the old place is
    /// given up and the new one taken in one store transaction.
    pub async fn change_booking(
        &self,
        person: &Person,
        change: BookingChange,
    ) -> Result<Booking, BookingError> {
        match self.try_change_booking(person, change).await {
            Ok(Changed::Moved(booking)) => {
                metrics::counter!("booking_changed_total").increment(1);
                tracing::info!(booking_id = %booking.id, slot_id = %booking.slot.id, "booking changed");
                Ok(booking)
            }
            Ok(Changed::Unchanged(booking)) => Ok(booking),
            Err(error) => {
                metrics::counter!("booking_rejected_total", "reason" => error.kind().name())
                    .increment(1);
                Err(error)
            }
        }
    }

    async fn try_change_booking(
        &self,
        person: &Person,
        change: BookingChange,
    ) -> Result<Changed, BookingError> {
        let booking = self.get_booking(person, change.id).await?;
        if booking.status == BookingStatus::Cancelled {
            return Err(BookingStoreError::AlreadyCancelled.into());
        }
        // A retry of a change that went through answers like the first call did.
        if booking.slot.id == change.slot_id {
            return Ok(Changed::Unchanged(booking));
        }
        let new_slot = self.bookable_slot(change.slot_id).await?;
        if new_slot.campaign_id != booking.campaign_id {
            return Err(BookingError::invalid(
                "the new slot belongs to another campaign",
            ));
        }
        // Only the campaign's terms matter here: the person booked already, and the booking
        // window may well be closed by the time changes open.
        let terms = self
            .eligibility
            .check(&booking.campaign_id, person.birth_date, &person.person_key)
            .await?
            .terms;
        let now = self.clock.now();
        require_modification_allowed(&terms, now)?;
        // The old place is given up, so the cancellation deadline applies to a change too.
        require_cancellable(&booking, now)?;
        let moved = self
            .store
            .change_booking(
                booking.id,
                person.person_key.as_str(),
                new_slot.id,
                terms.cancellation_closes_days_before,
            )
            .await?;
        Ok(Changed::Moved(moved))
    }

    pub async fn upsert_center(&self, center: Center) -> Result<Center, BookingError> {
        Ok(self.store.upsert_center(center).await?)
    }

    pub async fn upsert_slot(&self, slot: SlotDraft) -> Result<Slot, BookingError> {
        Ok(self.store.upsert_slot(slot).await?)
    }
}

/// R8's deadline: a booking's place may be given up while today (KST) is on or before its
/// `cancellable_until`.
fn require_cancellable(booking: &Booking, now: DateTime<Utc>) -> Result<(), BookingError> {
    let today = now.with_timezone(&chrono_tz::Asia::Seoul).date_naive();
    if today > booking.cancellable_until {
        return Err(BookingError::CancellationClosed {
            cancellable_until: booking.cancellable_until,
        });
    }
    Ok(())
}

/// R8's change policy: never when the campaign names no date, else from that instant on.
fn require_modification_allowed(
    terms: &CampaignTerms,
    now: DateTime<Utc>,
) -> Result<(), BookingError> {
    match terms.modification_allowed_from {
        None => Err(BookingError::ModificationNotAllowed { allowed_from: None }),
        Some(allowed_from) if now < allowed_from => Err(BookingError::ModificationNotAllowed {
            allowed_from: Some(allowed_from),
        }),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;
    use chrono::{DateTime, NaiveDate, TimeZone, Utc};
    use chrono_tz::Asia::Seoul;
    use platform::clock::SettableClock;
    use platform::ids::PersonKey;
    use platform::problem::{Problem, ProblemKind};

    use super::*;
    use crate::domain::IdempotencyKey;
    use crate::eligibility::EligibilityAnswer;
    use crate::store::MemoryBookingStore;

    struct Eligible(CampaignTerms);

    #[async_trait]
    impl EligibilityChecker for Eligible {
        async fn check(
            &self,
            _campaign_id: &str,
            _birth_date: NaiveDate,
            _person_key: &PersonKey,
        ) -> Result<EligibilityAnswer, BookingError> {
            Ok(EligibilityAnswer {
                eligible: true,
                reason: String::new(),
                terms: self.0.clone(),
            })
        }
    }

    /// Hides the first idempotency lookup, as if a concurrent request with the same key
    /// committed between our lookup and our insert.
    struct RacingStore {
        inner: MemoryBookingStore,
        hid_once: AtomicBool,
    }

    #[async_trait]
    impl BookingStore for RacingStore {
        async fn upsert_center(&self, center: Center) -> Result<Center, BookingStoreError> {
            self.inner.upsert_center(center).await
        }
        async fn list_centers(
            &self,
            region: Option<&str>,
        ) -> Result<Vec<Center>, BookingStoreError> {
            self.inner.list_centers(region).await
        }
        async fn get_center(&self, id: Uuid) -> Result<Option<Center>, BookingStoreError> {
            self.inner.get_center(id).await
        }
        async fn upsert_slot(&self, slot: SlotDraft) -> Result<Slot, BookingStoreError> {
            self.inner.upsert_slot(slot).await
        }
        async fn get_slot(&self, id: Uuid) -> Result<Option<Slot>, BookingStoreError> {
            self.inner.get_slot(id).await
        }
        async fn list_slots(
            &self,
            center_id: Uuid,
            from: Option<NaiveDate>,
            to: Option<NaiveDate>,
        ) -> Result<Vec<Slot>, BookingStoreError> {
            self.inner.list_slots(center_id, from, to).await
        }
        async fn find_by_idempotency_key(
            &self,
            person_key: &str,
            key: &IdempotencyKey,
        ) -> Result<Option<Booking>, BookingStoreError> {
            if !self.hid_once.swap(true, Ordering::SeqCst) {
                return Ok(None);
            }
            self.inner.find_by_idempotency_key(person_key, key).await
        }
        async fn create_booking(&self, booking: NewBooking) -> Result<Booking, BookingStoreError> {
            self.inner.create_booking(booking).await
        }
        async fn list_bookings(&self, person_key: &str) -> Result<Vec<Booking>, BookingStoreError> {
            self.inner.list_bookings(person_key).await
        }
        async fn get_booking(&self, id: Uuid) -> Result<Option<Booking>, BookingStoreError> {
            self.inner.get_booking(id).await
        }
        async fn cancel_booking(
            &self,
            id: Uuid,
            person_key: &str,
            now: DateTime<Utc>,
        ) -> Result<Booking, BookingStoreError> {
            self.inner.cancel_booking(id, person_key, now).await
        }
        async fn change_booking(
            &self,
            id: Uuid,
            person_key: &str,
            new_slot_id: Uuid,
            cancellation_closes_days_before: u32,
        ) -> Result<Booking, BookingStoreError> {
            self.inner
                .change_booking(id, person_key, new_slot_id, cancellation_closes_days_before)
                .await
        }
        async fn ping(&self) -> Result<(), BookingStoreError> {
            self.inner.ping().await
        }
    }

    fn kst(day: u32, hour: u32) -> DateTime<Utc> {
        Seoul
            .with_ymd_and_hms(2021, 9, day, hour, 0, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    async fn seeded_slot(store: &dyn BookingStore) -> Slot {
        let center = store
            .upsert_center(Center {
                id: Uuid::new_v4(),
                name: "센터".into(),
                region: "서울".into(),
                address: String::new(),
            })
            .await
            .unwrap();
        store
            .upsert_slot(SlotDraft {
                id: Uuid::new_v4(),
                campaign_id: "r18-49".into(),
                center_id: center.id,
                date: NaiveDate::from_ymd_opt(2021, 9, 10).unwrap(),
                starts_at: kst(10, 9),
                ends_at: kst(10, 10),
                vaccine: "mRNA".into(),
                capacity: 5,
            })
            .await
            .unwrap()
    }

    fn person() -> Person {
        Person {
            person_key: PersonKey::parse("alice").unwrap(),
            birth_date: NaiveDate::from_ymd_opt(1985, 3, 9).unwrap(),
        }
    }

    #[tokio::test]
    async fn a_same_key_request_losing_the_race_answers_with_the_winner() {
        let store = Arc::new(RacingStore {
            inner: MemoryBookingStore::new(),
            hid_once: AtomicBool::new(false),
        });
        let slot = seeded_slot(&store.inner).await;
        let key = IdempotencyKey::parse_optional("race").unwrap();
        let winner = store
            .inner
            .create_booking(NewBooking {
                id: Uuid::new_v4(),
                person_key: "alice".into(),
                campaign_id: slot.campaign_id.clone(),
                slot_id: slot.id,
                idempotency_key: key.clone(),
                created_at: Utc::now(),
                cancellation_closes_days_before: 2,
            })
            .await
            .unwrap();
        let clock: SharedClock = Arc::new(SettableClock::starting_at(kst(1, 10)));
        let logic = BookingLogic::new(
            store.clone(),
            Arc::new(Eligible(CampaignTerms::default())),
            clock,
        );
        let request = BookingRequest {
            slot_id: slot.id,
            idempotency_key: key,
            proxy: false,
        };
        let answer = logic.create_booking(&person(), request).await.unwrap();
        assert_eq!(answer.id, winner.id);
        assert_eq!(store.get_slot(slot.id).await.unwrap().unwrap().booked, 1);
    }

    #[tokio::test]
    async fn proxy_bookings_are_refused_with_the_reason() {
        let store = Arc::new(MemoryBookingStore::new());
        let slot = seeded_slot(store.as_ref()).await;
        let clock = Arc::new(SettableClock::starting_at(kst(1, 10)));
        let refusal = |terms: CampaignTerms| {
            let logic = BookingLogic::new(store.clone(), Arc::new(Eligible(terms)), clock.clone());
            async move {
                let request = BookingRequest {
                    slot_id: slot.id,
                    idempotency_key: None,
                    proxy: true,
                };
                Problem::from(logic.create_booking(&person(), request).await.unwrap_err())
            }
        };
        let closed = refusal(CampaignTerms::default()).await;
        assert_eq!(closed.kind, ProblemKind::ProxyNotAllowed);
        assert!(
            closed.detail.contains("does not allow"),
            "{}",
            closed.detail
        );
        let open_terms = CampaignTerms {
            proxy_allowed: true,
            proxy_deadline: Some(kst(2, 18)),
            ..CampaignTerms::default()
        };
        let open = refusal(open_terms.clone()).await;
        assert!(open.detail.contains("call center"), "{}", open.detail);
        clock.set(kst(2, 18));
        let late = refusal(open_terms).await;
        assert!(late.detail.contains("deadline"), "{}", late.detail);
        assert_eq!(store.get_slot(slot.id).await.unwrap().unwrap().booked, 0);
    }
}
