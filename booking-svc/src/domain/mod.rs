//! The booking domain: centers, slots and bookings as booking-svc stores and reasons about
//! them, plus the validated inputs the wire messages are turned into (the `TryFrom` impls of
//! [`wire`]). Business code only ever sees these types, never prost messages with their
//! optional fields.

use chrono::{DateTime, Days, NaiveDate, SubsecRound, Utc};
use uuid::Uuid;

pub use platform::ids::{CampaignId, IdempotencyKey, PersonKey};

pub mod supply;
pub mod wire;

pub use supply::{ReleaseStep, ReleasedShare, SupplyRelease};

/// Field length limits for operator input.
pub const MAX_CENTER_NAME_LEN: usize = 200;
pub const MAX_REGION_LEN: usize = 100;
pub const MAX_ADDRESS_LEN: usize = 300;
pub const MAX_VACCINE_LEN: usize = 100;
pub const MAX_SLOT_CAPACITY: i32 = 100_000;

/// A vaccination center.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Center {
    pub id: Uuid,
    pub name: String,
    pub region: String,
    pub address: String,
}

/// A slot as an operator defines it: everything but the booked count, which only bookings and
/// cancellations move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotDraft {
    pub id: Uuid,
    pub campaign_id: String,
    pub center_id: Uuid,
    /// Vaccination date (KST).
    pub date: NaiveDate,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub vaccine: String,
    pub capacity: i32,
}

/// A stored slot with its booked count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub id: Uuid,
    pub campaign_id: String,
    pub center_id: Uuid,
    pub date: NaiveDate,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub vaccine: String,
    pub capacity: i32,
    pub booked: i32,
    /// Places bookable now: `floor(capacity × the campaign's released share)`. Stores return
    /// the whole capacity; the service narrows it with [`Slot::released_at`].
    pub released: i32,
}

impl Slot {
    /// Released places still free.
    pub fn remaining(&self) -> i32 {
        (self.released.min(self.capacity) - self.booked).max(0)
    }

    /// The slot as bookable under `share` of its capacity.
    pub fn released_at(self, share: ReleasedShare) -> Self {
        Self {
            released: share.of(self.capacity),
            ..self
        }
    }

    /// The stored slot for a draft that has no bookings yet.
    pub fn from_draft(draft: SlotDraft, booked: i32) -> Self {
        Self {
            id: draft.id,
            campaign_id: draft.campaign_id,
            center_id: draft.center_id,
            date: draft.date,
            starts_at: draft.starts_at,
            ends_at: draft.ends_at,
            vaccine: draft.vaccine,
            capacity: draft.capacity,
            booked,
            released: draft.capacity,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BookingStatus {
    Confirmed,
    Cancelled,
}

impl BookingStatus {
    /// The value stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "confirmed" => Some(Self::Confirmed),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// A booking with the slot it holds (the slot as it is now, so `remaining` is current).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Booking {
    pub id: Uuid,
    /// Pseudonymous person key of the person the booking is for.
    pub person_key: String,
    pub campaign_id: String,
    pub slot: Slot,
    pub status: BookingStatus,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Last day (KST) the booking may be cancelled.
    pub cancellable_until: NaiveDate,
    /// Person key of whoever booked for the person (a proxy, R1); `None` when they booked
    /// themselves.
    pub booked_by: Option<String>,
    /// The masked name (홍*동) of the person booked for, kept for the booker's list.
    pub beneficiary_masked_name: Option<String>,
    /// The account id of the call-center agent who made the booking (R9); `None` for the web
    /// channel. The channel is `call_center` exactly when this is set.
    pub agent: Option<String>,
}

impl Booking {
    /// Whether someone else made this booking for the person.
    pub fn made_by_proxy(&self) -> bool {
        self.booked_by.is_some()
    }
}

/// What a proxy booking records and obeys, from auth-svc's proxy grant and the campaign terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyBooking {
    /// Person key of the booker.
    pub booked_by: String,
    /// Masked name of the person booked for.
    pub beneficiary_masked_name: String,
    /// The campaign's limit of confirmed proxy bookings per booker.
    pub max_per_booker: u32,
}

/// What the store needs to create a booking. The store takes the vaccination date from the
/// slot row it reserves, so `cancellable_until` always matches the slot actually booked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBooking {
    pub id: Uuid,
    pub person_key: String,
    /// The campaign the eligibility check was made for; the slot must belong to it.
    pub campaign_id: String,
    pub slot_id: Uuid,
    pub idempotency_key: Option<IdempotencyKey>,
    pub created_at: DateTime<Utc>,
    pub cancellation_closes_days_before: u32,
    /// The share of the slot's capacity released now: the guarded update books only below it.
    pub released_share: ReleasedShare,
    /// Set when a proxy books for the person.
    pub proxy: Option<ProxyBooking>,
    /// Set when a call-center agent books for the caller: the agent's account id.
    pub agent: Option<String>,
}

/// The last day a booking for a slot on `vaccination_date` may be cancelled
/// (R8: through D-`days_before`, KST).
pub fn cancellable_until(vaccination_date: NaiveDate, days_before: u32) -> NaiveDate {
    vaccination_date
        .checked_sub_days(Days::new(u64::from(days_before)))
        .unwrap_or(NaiveDate::MIN)
}

/// PostgreSQL keeps microseconds; both stores cut instants to that precision so they agree.
pub fn storage_precision(instant: DateTime<Utc>) -> DateTime<Utc> {
    instant.trunc_subsecs(6)
}

/// The person a request acts for, from a verified access token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    /// Pseudonymous person key (the token's `sub`).
    pub person_key: PersonKey,
    pub birth_date: NaiveDate,
}

/// A validated CreateBooking request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookingRequest {
    pub slot_id: Uuid,
    pub idempotency_key: Option<IdempotencyKey>,
    /// The caller says they book for someone else.
    pub proxy: bool,
    /// auth-svc's proxy grant naming the person booked for (required with `proxy`).
    pub proxy_grant: Option<String>,
}

/// A validated ChangeBooking request: move booking `id` to slot `slot_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookingChange {
    pub id: Uuid,
    pub slot_id: Uuid,
}

/// A validated ListSlots request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotQuery {
    pub center_id: Uuid,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cancellation_closes_the_configured_days_before_the_vaccination() {
        let date = NaiveDate::from_ymd_opt(2021, 9, 1).unwrap();
        assert_eq!(
            cancellable_until(date, 2),
            NaiveDate::from_ymd_opt(2021, 8, 30).unwrap()
        );
        assert_eq!(cancellable_until(date, 0), date);
    }

    #[test]
    fn idempotency_keys_are_bounded_printable_ascii() {
        // The shared key of platform::ids: the gateway and booking-svc accept the same keys.
        assert_eq!(IdempotencyKey::parse_optional("").unwrap(), None);
        assert_eq!(
            IdempotencyKey::parse_optional("abc-123_x")
                .unwrap()
                .unwrap()
                .as_str(),
            "abc-123_x"
        );
        assert!(IdempotencyKey::parse_optional(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse_optional(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse_optional("tab\there").is_err());
        assert!(IdempotencyKey::parse_optional("예약").is_err());
    }

    #[test]
    fn remaining_never_goes_negative() {
        let slot = Slot {
            id: Uuid::new_v4(),
            campaign_id: "c".into(),
            center_id: Uuid::new_v4(),
            date: NaiveDate::from_ymd_opt(2021, 9, 1).unwrap(),
            starts_at: Utc::now(),
            ends_at: Utc::now(),
            vaccine: "v".into(),
            capacity: 3,
            booked: 1,
            released: 3,
        };
        assert_eq!(slot.remaining(), 2);
        assert_eq!(
            Slot {
                booked: 5,
                ..slot.clone()
            }
            .remaining(),
            0
        );
        // Only released places count: a tenth of 10 released, one booked, none left.
        let ten = Slot {
            capacity: 10,
            released: 10,
            ..slot
        };
        let tenth = ReleasedShare::from_basis_points(1_000).unwrap();
        assert_eq!(ten.clone().released_at(tenth).remaining(), 0);
        assert_eq!(ten.released_at(ReleasedShare::FULL).remaining(), 9);
    }
}
