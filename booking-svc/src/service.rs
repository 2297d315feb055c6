//! The booking rules, independent of gRPC: who may book which slot (eligibility, window,
//! channel, proxy policy, idempotent retries), the supply released so far (R5), proxy bookings
//! on auth-svc's proxy grant (R1), cancellation through D-N in KST and changes once the
//! campaign allows them (R8), and the operator upserts. Every "now" and "today" comes from the
//! injected clock. Refusals are [`BookingError`]s; the tonic adapters in `grpc.rs`
//! authenticate the caller, call in here, and turn the error into a status.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use platform::clock::SharedClock;
use platform::grants::GrantVerifier;
use platform::ids::{PersonKey, parse_iso_date};
use platform::problem::{Problem, ProblemKind};
use platform::proxy_grant::ProxyGrant;
use uuid::Uuid;

use crate::domain::{
    Booking, BookingChange, BookingRequest, BookingStatus, Center, NewBooking, Person,
    ProxyBooking, ReleasedShare, Slot, SlotDraft, SlotQuery, storage_precision,
};
use crate::eligibility::{
    CampaignTerms, Channel, EligibilityAnswer, EligibilityChecker, EligibilityQuery,
};
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

/// Who a booking is for: the caller, or the person a proxy grant names.
struct Subject {
    person: Person,
    /// Set for a proxy booking: the booker and the masked name from the grant.
    proxy: Option<(PersonKey, String)>,
}

/// scheduling-svc's reason when the proxy policy refuses.
const PROXY_NOT_ALLOWED_REASON: &str = "proxy-not-allowed";
/// scheduling-svc's reason when the campaign does not allow the channel (R9).
pub const CHANNEL_NOT_ALLOWED_REASON: &str = "channel-not-allowed";

/// The booking service's logic over a store and an eligibility source.
pub struct BookingLogic {
    store: Arc<dyn BookingStore>,
    eligibility: Arc<dyn EligibilityChecker>,
    clock: SharedClock,
    /// Verifies auth-svc's proxy grants; without one every proxy booking is refused.
    proxy_grants: Option<Arc<GrantVerifier>>,
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
            proxy_grants: None,
        }
    }

    /// Accepts proxy bookings on grants that `verifier` (auth-svc's published keys) accepts.
    pub fn with_proxy_grants(mut self, verifier: Arc<GrantVerifier>) -> Self {
        self.proxy_grants = Some(verifier);
        self
    }

    /// Narrows every slot to the share of its campaign's supply released now. A listing is a
    /// view: when the campaign's terms cannot be read (scheduling-svc down, malformed terms)
    /// the slot shows its whole capacity and the failure is logged; every booking gets fresh
    /// terms and is refused then, so nothing is ever booked on the strength of a listing.
    async fn released(&self, slots: Vec<Slot>) -> Vec<Slot> {
        let now = self.clock.now();
        let mut shares: HashMap<String, ReleasedShare> = HashMap::new();
        let mut narrowed = Vec::with_capacity(slots.len());
        for slot in slots {
            let share = match shares.get(&slot.campaign_id) {
                Some(share) => *share,
                None => {
                    let share = match self.eligibility.terms(&slot.campaign_id).await {
                        Ok(Some(terms)) => terms.released_share(now),
                        Ok(None) => ReleasedShare::NONE,
                        Err(error) => {
                            tracing::warn!(
                                campaign_id = %slot.campaign_id,
                                reason = error.kind().name(),
                                "campaign terms unavailable, listing whole capacities"
                            );
                            ReleasedShare::FULL
                        }
                    };
                    shares.insert(slot.campaign_id.clone(), share);
                    share
                }
            };
            narrowed.push(slot.released_at(share));
        }
        narrowed
    }

    async fn released_bookings(&self, bookings: Vec<Booking>) -> Vec<Booking> {
        let slots = bookings
            .iter()
            .map(|booking| booking.slot.clone())
            .collect();
        let slots = self.released(slots).await;
        bookings
            .into_iter()
            .zip(slots)
            .map(|(booking, slot)| Booking { slot, ..booking })
            .collect()
    }

    pub async fn list_centers(&self, region: Option<&str>) -> Result<Vec<Center>, BookingError> {
        Ok(self.store.list_centers(region).await?)
    }

    /// Slots of a center, each with the places its campaign has released so far.
    pub async fn list_slots(&self, query: &SlotQuery) -> Result<Vec<Slot>, BookingError> {
        let slots = self
            .store
            .list_slots(query.center_id, query.from, query.to)
            .await?;
        Ok(self.released(slots).await)
    }

    /// The campaign of slot `slot_id` (the admission check needs it before the write).
    pub async fn slot_campaign(&self, slot_id: Uuid) -> Result<String, BookingError> {
        Ok(self
            .store
            .get_slot(slot_id)
            .await?
            .ok_or(BookingStoreError::NotFound("slot"))?
            .campaign_id)
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
        self.book(person, request, None).await
    }

    /// Books a slot for a caller a call-center agent verified (R9): the same rules on the
    /// call-center channel, the booking recording the agent's account id.
    pub async fn create_booking_by_agent(
        &self,
        caller: &Person,
        request: BookingRequest,
        agent: &str,
    ) -> Result<Booking, BookingError> {
        if request.proxy || request.proxy_grant.is_some() {
            return Err(BookingError::invalid(
                "an agent books for the verified caller only, never through a proxy grant",
            ));
        }
        self.book(caller, request, Some(agent)).await
    }

    async fn book(
        &self,
        person: &Person,
        request: BookingRequest,
        agent: Option<&str>,
    ) -> Result<Booking, BookingError> {
        match self.try_create_booking(person, request, agent).await {
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
        agent: Option<&str>,
    ) -> Result<Created, BookingError> {
        let subject = self.subject(person, &request).await?;
        let booker = subject.proxy.as_ref().map(|(booker, _)| booker.clone());
        if let Some(existing) = self
            .replay(&subject.person, booker.as_ref(), &request)
            .await?
        {
            return Ok(Created::Replayed(existing));
        }
        let slot = self.bookable_slot(request.slot_id).await?;
        let query = EligibilityQuery {
            campaign_id: &slot.campaign_id,
            birth_date: subject.person.birth_date,
            person_key: &subject.person.person_key,
            channel: channel_of(agent),
            proxy: request.proxy || subject.proxy.is_some(),
        };
        let answer = self.eligibility.check(&query).await?;
        let now = self.clock.now();
        if query.proxy {
            self.require_proxy_allowed(&answer.terms, subject.proxy.is_some(), now)?;
        }
        if !answer.eligible {
            if answer.reason == PROXY_NOT_ALLOWED_REASON {
                return Err(BookingError::ProxyNotAllowed {
                    detail: "this campaign does not allow booking for another person now",
                    proxy_deadline: answer.terms.proxy_deadline,
                });
            }
            return Err(BookingError::NotEligible {
                reason: answer.reason,
            });
        }
        let share = answer.terms.released_share(now);
        let proxy = subject.proxy.map(|(booker, masked_name)| ProxyBooking {
            booked_by: booker.to_string(),
            beneficiary_masked_name: masked_name,
            max_per_booker: answer.terms.proxy_max_per_booker.unwrap_or(u32::MAX),
        });
        let new_booking = NewBooking {
            id: Uuid::new_v4(),
            person_key: subject.person.person_key.to_string(),
            campaign_id: slot.campaign_id.clone(),
            slot_id: slot.id,
            idempotency_key: request.idempotency_key.clone(),
            created_at: storage_precision(now),
            cancellation_closes_days_before: answer.terms.cancellation_closes_days_before,
            released_share: share,
            proxy,
            agent: agent.map(str::to_owned),
        };
        match self.store.create_booking(new_booking).await {
            Ok(booking) => Ok(Created::New(Booking {
                slot: booking.slot.clone().released_at(share),
                ..booking
            })),
            // A concurrent request with the same key may have won the race: whichever unique
            // index it tripped, answer as a replay would.
            Err(BookingStoreError::AlreadyBooked | BookingStoreError::IdempotencyConflict)
                if request.idempotency_key.is_some() =>
            {
                match self
                    .replay(&subject.person, booker.as_ref(), &request)
                    .await?
                {
                    Some(existing) => Ok(Created::Replayed(existing)),
                    None => Err(BookingStoreError::AlreadyBooked.into()),
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The booking this request's idempotency key already made for `subject`, if the key was
    /// used: same slot (and, for a proxy, same booker) → that booking; otherwise the key is
    /// being reused for a different request.
    async fn replay(
        &self,
        subject: &Person,
        booker: Option<&PersonKey>,
        request: &BookingRequest,
    ) -> Result<Option<Booking>, BookingError> {
        let Some(key) = &request.idempotency_key else {
            return Ok(None);
        };
        match self
            .store
            .find_by_idempotency_key(subject.person_key.as_str(), key)
            .await?
        {
            None => Ok(None),
            Some(existing)
                if existing.slot.id == request.slot_id
                    && existing.booked_by.as_deref() == booker.map(PersonKey::as_str) =>
            {
                Ok(Some(existing))
            }
            Some(_) => Err(BookingStoreError::IdempotencyConflict.into()),
        }
    }

    /// The person the booking is for: the caller, or the person of a verified proxy grant
    /// issued to the caller.
    async fn subject(
        &self,
        person: &Person,
        request: &BookingRequest,
    ) -> Result<Subject, BookingError> {
        let Some(token) = &request.proxy_grant else {
            return Ok(Subject {
                person: person.clone(),
                proxy: None,
            });
        };
        let verifier = self.proxy_grants.as_ref().ok_or_else(|| {
            BookingError::proxy_not_allowed("proxy bookings cannot be verified by this service")
        })?;
        let grant = verifier.verify::<ProxyGrant>(token).await?.claims;
        if grant.sub != person.person_key.as_str() {
            return Err(Problem::new(
                ProblemKind::Forbidden,
                "the proxy grant was issued to another person",
            )
            .into());
        }
        let malformed = || {
            Problem::new(
                ProblemKind::Unauthenticated,
                "the proxy grant does not name a person",
            )
        };
        let for_key = PersonKey::parse(&grant.for_key).map_err(|_| malformed())?;
        let birth_date = parse_iso_date("for_bd", &grant.for_bd).map_err(|_| malformed())?;
        if for_key == person.person_key {
            return Err(BookingError::invalid(
                "a booking for yourself needs no proxy grant",
            ));
        }
        Ok(Subject {
            person: Person {
                person_key: for_key,
                birth_date,
            },
            proxy: Some((person.person_key.clone(), grant.for_name)),
        })
    }

    /// R1: a proxy books only where the campaign allows it, before its deadline, and on
    /// auth-svc's grant naming the person booked for.
    fn require_proxy_allowed(
        &self,
        terms: &CampaignTerms,
        has_grant: bool,
        now: DateTime<Utc>,
    ) -> Result<(), BookingError> {
        if !terms.proxy_allowed {
            return Err(BookingError::proxy_not_allowed(
                "this campaign does not allow booking for another person",
            ));
        }
        if let Some(deadline) = terms.proxy_deadline
            && now >= deadline
        {
            return Err(BookingError::ProxyNotAllowed {
                detail: "the proxy booking deadline of this campaign has passed",
                proxy_deadline: Some(deadline),
            });
        }
        if !has_grant {
            return Err(BookingError::proxy_not_allowed(
                "a proxy booking needs auth-svc's proxy grant naming the person booked for",
            ));
        }
        Ok(())
    }

    /// The person's own bookings (those a proxy made for them included), or with
    /// `made_for_others` the bookings they made for other people.
    pub async fn list_my_bookings(
        &self,
        person: &Person,
        made_for_others: bool,
    ) -> Result<Vec<Booking>, BookingError> {
        let key = person.person_key.as_str();
        let bookings = if made_for_others {
            self.store.list_bookings_made_for_others(key).await?
        } else {
            self.store.list_bookings(key).await?
        };
        Ok(self.released_bookings(bookings).await)
    }

    /// The caller's booking, or one the caller made for someone else; any other booking is
    /// "not found", not "forbidden", so ids of other people's bookings reveal nothing.
    pub async fn get_booking(&self, person: &Person, id: Uuid) -> Result<Booking, BookingError> {
        let key = person.person_key.as_str();
        let booking = self
            .store
            .get_booking(id)
            .await?
            .filter(|booking| {
                booking.person_key == key || booking.booked_by.as_deref() == Some(key)
            })
            .ok_or(BookingStoreError::NotFound("booking"))?;
        self.released_bookings(vec![booking])
            .await
            .into_iter()
            .next()
            .ok_or_else(|| BookingStoreError::NotFound("booking").into())
    }

    /// The caller's own booking (cancel and change act only for the person booked for).
    async fn own_booking(&self, person: &Person, id: Uuid) -> Result<Booking, BookingError> {
        self.store
            .get_booking(id)
            .await?
            .filter(|booking| booking.person_key == person.person_key.as_str())
            .ok_or_else(|| BookingStoreError::NotFound("booking").into())
    }

    /// Cancels the caller's booking through D-N (KST) and frees its place at once.
    pub async fn cancel_booking(&self, person: &Person, id: Uuid) -> Result<Booking, BookingError> {
        let booking = self.own_booking(person, id).await?;
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

    /// Cancels a caller's booking for a call-center agent (R9): the same deadline, where the
    /// booking's campaign allows the call-center channel.
    pub async fn cancel_booking_by_agent(
        &self,
        caller: &Person,
        id: Uuid,
    ) -> Result<Booking, BookingError> {
        let booking = self.own_booking(caller, id).await?;
        let query = EligibilityQuery {
            campaign_id: &booking.campaign_id,
            birth_date: caller.birth_date,
            person_key: &caller.person_key,
            channel: Channel::CallCenter,
            proxy: false,
        };
        require_channel_allowed(&self.eligibility.check(&query).await?)?;
        self.cancel_booking(caller, id).await
    }

    /// Moves the caller's confirmed booking to another slot of its campaign, once the campaign
    /// allows changes and while the booking could still be cancelled (R8): the old place is
    /// given up and the new one taken in one store transaction.
    pub async fn change_booking(
        &self,
        person: &Person,
        change: BookingChange,
    ) -> Result<Booking, BookingError> {
        self.change(person, change, Channel::Web).await
    }

    /// Moves a caller's booking for a call-center agent (R9): the same rules, the campaign
    /// asked on the call-center channel.
    pub async fn change_booking_by_agent(
        &self,
        caller: &Person,
        change: BookingChange,
    ) -> Result<Booking, BookingError> {
        self.change(caller, change, Channel::CallCenter).await
    }

    async fn change(
        &self,
        person: &Person,
        change: BookingChange,
        channel: Channel,
    ) -> Result<Booking, BookingError> {
        match self.try_change_booking(person, change, channel).await {
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
        channel: Channel,
    ) -> Result<Changed, BookingError> {
        let booking = self.own_booking(person, change.id).await?;
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
        let query = EligibilityQuery {
            campaign_id: &booking.campaign_id,
            birth_date: person.birth_date,
            person_key: &person.person_key,
            channel,
            proxy: false,
        };
        let answer = self.eligibility.check(&query).await?;
        require_channel_allowed(&answer)?;
        let terms = answer.terms;
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
                terms.released_share(now),
            )
            .await?;
        Ok(Changed::Moved(Booking {
            slot: moved.slot.clone().released_at(terms.released_share(now)),
            ..moved
        }))
    }

    pub async fn upsert_center(&self, center: Center) -> Result<Center, BookingError> {
        Ok(self.store.upsert_center(center).await?)
    }

    pub async fn upsert_slot(&self, slot: SlotDraft) -> Result<Slot, BookingError> {
        Ok(self.store.upsert_slot(slot).await?)
    }
}

/// The call-center channel for an agent's booking, the web otherwise.
fn channel_of(agent: Option<&str>) -> Channel {
    if agent.is_some() {
        Channel::CallCenter
    } else {
        Channel::Web
    }
}

/// R9: a campaign that does not allow the channel refuses changes on it too (other
/// ineligibility, a closed window say, does not stop a change).
fn require_channel_allowed(answer: &EligibilityAnswer) -> Result<(), BookingError> {
    if answer.reason == CHANNEL_NOT_ALLOWED_REASON {
        return Err(BookingError::NotEligible {
            reason: answer.reason.clone(),
        });
    }
    Ok(())
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
            _query: &EligibilityQuery<'_>,
        ) -> Result<EligibilityAnswer, BookingError> {
            Ok(EligibilityAnswer {
                eligible: true,
                reason: String::new(),
                terms: self.0.clone(),
            })
        }

        async fn terms(&self, _campaign_id: &str) -> Result<Option<CampaignTerms>, BookingError> {
            Ok(Some(self.0.clone()))
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
        async fn list_bookings_made_for_others(
            &self,
            booked_by: &str,
        ) -> Result<Vec<Booking>, BookingStoreError> {
            self.inner.list_bookings_made_for_others(booked_by).await
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
            released_share: ReleasedShare,
        ) -> Result<Booking, BookingStoreError> {
            self.inner
                .change_booking(
                    id,
                    person_key,
                    new_slot_id,
                    cancellation_closes_days_before,
                    released_share,
                )
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
                released_share: ReleasedShare::FULL,
                proxy: None,
                agent: None,
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
            proxy_grant: None,
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
                    proxy_grant: None,
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
        // Open for proxies, but the caller brought no proxy grant from auth-svc.
        let open = refusal(open_terms.clone()).await;
        assert!(open.detail.contains("proxy grant"), "{}", open.detail);
        clock.set(kst(2, 18));
        let late = refusal(open_terms).await;
        assert!(late.detail.contains("deadline"), "{}", late.detail);
        assert!(late.extra.contains_key("proxy_deadline"), "{late:?}");
        assert_eq!(store.get_slot(slot.id).await.unwrap().unwrap().booked, 0);
    }
}
