//! The campaign domain: one vaccination round with its age group (R6), booking window,
//! vaccination dates, proxy policy (R1), change policy and cancellation rule (R8), as validated
//! types. Each type is built only through its checking constructor, so the rest of the crate
//! never sees a half-filled or contradictory campaign; wire messages are turned into these at
//! the gRPC edge (`grpc.rs`) and database rows in the store, both through the same checks.

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};

use crate::error::SchedulingError;

pub use platform::ids::CampaignId;

/// Longest campaign name, in characters.
const CAMPAIGN_NAME_MAX_CHARS: usize = 200;
/// The largest cancellation lead an operator may configure, in days.
pub const CANCELLATION_LEAD_MAX_DAYS: u8 = 30;

/// A campaign's display name: 1 to 200 characters, not blank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignName(String);

impl CampaignName {
    pub fn parse(raw: &str) -> Result<Self, SchedulingError> {
        if raw.trim().is_empty() {
            return Err(SchedulingError::invalid("name is required"));
        }
        if raw.chars().count() > CAMPAIGN_NAME_MAX_CHARS {
            return Err(SchedulingError::invalid(format!(
                "name is longer than {CAMPAIGN_NAME_MAX_CHARS} characters"
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An inclusive range of calendar dates (birth dates of an age group, vaccination days).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateRange {
    first: NaiveDate,
    last: NaiveDate,
}

impl DateRange {
    /// `field` names the range in the error (`born` gives "born_from is after born_to").
    pub fn new(field: &str, first: NaiveDate, last: NaiveDate) -> Result<Self, SchedulingError> {
        if first > last {
            return Err(SchedulingError::invalid(format!(
                "{field}_from is after {field}_to"
            )));
        }
        Ok(Self { first, last })
    }

    pub fn first(&self) -> NaiveDate {
        self.first
    }

    pub fn last(&self) -> NaiveDate {
        self.last
    }

    pub fn contains(&self, date: NaiveDate) -> bool {
        self.first <= date && date <= self.last
    }
}

/// A half-open booking window: open from `opens_at` (inclusive) until `closes_at` (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookingWindow {
    opens_at: DateTime<Utc>,
    closes_at: DateTime<Utc>,
}

impl BookingWindow {
    pub fn new(opens_at: DateTime<Utc>, closes_at: DateTime<Utc>) -> Result<Self, SchedulingError> {
        let opens_at = storable_instant(opens_at);
        let closes_at = storable_instant(closes_at);
        if opens_at >= closes_at {
            return Err(SchedulingError::invalid(
                "booking_opens_at must be before booking_closes_at",
            ));
        }
        Ok(Self {
            opens_at,
            closes_at,
        })
    }

    pub fn opens_at(&self) -> DateTime<Utc> {
        self.opens_at
    }

    pub fn closes_at(&self) -> DateTime<Utc> {
        self.closes_at
    }

    pub fn has_opened(&self, now: DateTime<Utc>) -> bool {
        now >= self.opens_at
    }

    pub fn has_closed(&self, now: DateTime<Utc>) -> bool {
        now >= self.closes_at
    }

    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.has_opened(now) && !self.has_closed(now)
    }
}

/// How many days before the vaccination date cancellation closes (0..=30; 2 = open through D-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CancellationLead(u8);

impl CancellationLead {
    pub fn days(days: i64) -> Result<Self, SchedulingError> {
        u8::try_from(days)
            .ok()
            .filter(|days| *days <= CANCELLATION_LEAD_MAX_DAYS)
            .map(Self)
            .ok_or_else(|| {
                SchedulingError::invalid(format!(
                    "cancellation_closes_days_before must be between 0 and {CANCELLATION_LEAD_MAX_DAYS}"
                ))
            })
    }

    pub fn as_days(&self) -> u8 {
        self.0
    }
}

/// One vaccination round. Every field is already validated; build it from the wire with
/// `Campaign::try_from(proto)` or from parts with the validated field types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Campaign {
    pub id: CampaignId,
    pub name: CampaignName,
    /// The age group (R6) as an inclusive birth-date range.
    pub born: DateRange,
    /// When booking is open for the whole campaign.
    pub booking: BookingWindow,
    /// The days on which people are vaccinated, inclusive.
    pub vaccination: DateRange,
    /// Whether someone may book for another person (R1).
    pub proxy_allowed: bool,
    /// Until when proxy booking is accepted, when proxies are allowed.
    pub proxy_deadline: Option<DateTime<Utc>>,
    /// From when a booking may be moved; `None` means never (R8).
    pub modification_allowed_from: Option<DateTime<Utc>>,
    pub cancellation_closes_days_before: CancellationLead,
}

impl Campaign {
    /// Whether a person born on `birth_date` is in this campaign's age group.
    pub fn covers_birth_date(&self, birth_date: NaiveDate) -> bool {
        self.born.contains(birth_date)
    }
}

/// PostgreSQL keeps microseconds; rounding here keeps the in-process store and the database
/// answering the same campaign back.
pub fn storable_instant(instant: DateTime<Utc>) -> DateTime<Utc> {
    instant.trunc_subsecs(6)
}
