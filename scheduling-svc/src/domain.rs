//! The campaign domain: one vaccination round with its age group (R6) and bands, its booking
//! windows (rotation, band, open — R5) with their channels and supply release, vaccination
//! dates, proxy policy (R1), change policy and cancellation rule (R8), as validated types. Each
//! type is built only through its checking constructor ([`Campaign::assemble`] for the whole),
//! so the rest of the crate never sees a half-filled or contradictory campaign; wire messages
//! are turned into these at the edge (`wire.rs`), YAML files in `campaign_file.rs` and database
//! rows in the store, all through the same checks.

mod rules;

pub use rules::{
    AgeBand, Channel, ChannelSet, FULL_SUPPLY_BP, RuleId, SupplyStep, Window, WindowKind,
    birth_day_digit, released_at, rotation_digit, supply_schedule,
};

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
        Self::named("booking_opens_at", "booking_closes_at", opens_at, closes_at)
    }

    /// Like [`BookingWindow::new`], naming the two fields in the error.
    pub fn named(
        opens_field: &str,
        closes_field: &str,
        opens_at: DateTime<Utc>,
        closes_at: DateTime<Utc>,
    ) -> Result<Self, SchedulingError> {
        let opens_at = storable_instant(opens_at);
        let closes_at = storable_instant(closes_at);
        if opens_at >= closes_at {
            return Err(SchedulingError::invalid(format!(
                "{opens_field} must be before {closes_field}"
            )));
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

/// Who a window is for, before band references are resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowKindSpec {
    Rotation,
    Band(RuleId),
    Open,
}

/// A window as given (wire, file, database row), checked field by field but not yet against
/// the rest of its campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    pub id: RuleId,
    pub kind: WindowKindSpec,
    pub period: BookingWindow,
    pub channels: ChannelSet,
    pub supply_share_bp: u32,
}

/// The parts of a campaign, each already valid on its own; [`Campaign::assemble`] checks how
/// they fit together.
#[derive(Clone, Debug)]
pub struct CampaignParts {
    pub id: CampaignId,
    pub name: CampaignName,
    pub born: DateRange,
    pub vaccination: DateRange,
    pub proxy_allowed: bool,
    pub proxy_deadline: Option<DateTime<Utc>>,
    pub proxy_max_per_booker: u32,
    pub modification_allowed_from: Option<DateTime<Utc>>,
    pub cancellation_closes_days_before: CancellationLead,
    pub bands: Vec<AgeBand>,
    pub windows: Vec<WindowSpec>,
    /// The booking period of a campaign without windows (older callers and rows): it becomes
    /// one open window on every channel releasing all supply. Ignored when there are windows.
    pub booking: Option<BookingWindow>,
    pub version: i64,
}

/// The id of the window a campaign without windows gets.
pub const IMPLICIT_WINDOW_ID: &str = "booking";
/// Most windows one campaign may have.
pub const MAX_WINDOWS: usize = 400;
/// Most bands one campaign may have.
pub const MAX_BANDS: usize = 50;

/// One vaccination round. Every field is already validated; build it with
/// [`Campaign::assemble`] (the wire, files and rows all go through it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Campaign {
    pub id: CampaignId,
    pub name: CampaignName,
    /// The age group (R6) as an inclusive birth-date range.
    pub born: DateRange,
    /// The whole booking period: the earliest opening and latest closing of the windows.
    pub booking: BookingWindow,
    /// The days on which people are vaccinated, inclusive.
    pub vaccination: DateRange,
    /// Whether someone may book for another person (R1).
    pub proxy_allowed: bool,
    /// Until when (exclusive) proxy booking is accepted, when proxies are allowed.
    pub proxy_deadline: Option<DateTime<Utc>>,
    /// How many proxy bookings one booker may make; 0 = no limit.
    pub proxy_max_per_booker: u32,
    /// From when a booking may be moved; `None` means never (R8).
    pub modification_allowed_from: Option<DateTime<Utc>>,
    pub cancellation_closes_days_before: CancellationLead,
    pub bands: Vec<AgeBand>,
    /// At least one; in the order given.
    pub windows: Vec<Window>,
    /// The cumulative supply release derived from the windows.
    pub supply: Vec<SupplyStep>,
    /// Bumped by the store on every change; 0 before the campaign was stored.
    pub version: i64,
}

impl Campaign {
    /// Checks that the parts fit together — band ids unique and inside the age group, window
    /// ids unique, band references known, supply shares adding up to the whole — and derives
    /// the booking period and the supply release schedule.
    pub fn assemble(parts: CampaignParts) -> Result<Self, SchedulingError> {
        if parts.bands.len() > MAX_BANDS {
            return Err(SchedulingError::invalid(format!(
                "bands has more than {MAX_BANDS} entries"
            )));
        }
        for (index, band) in parts.bands.iter().enumerate() {
            if !parts.born.contains(band.born.first()) || !parts.born.contains(band.born.last()) {
                return Err(SchedulingError::invalid(format!(
                    "bands[{index}].born_from..born_to is outside the campaign's age group"
                )));
            }
            if parts.bands[..index].iter().any(|other| other.id == band.id) {
                return Err(SchedulingError::invalid(format!(
                    "bands[{index}].id is used twice"
                )));
            }
        }
        let specs = if parts.windows.is_empty() {
            let period = parts.booking.ok_or_else(|| {
                SchedulingError::invalid("booking_opens_at is required when there are no windows")
            })?;
            vec![WindowSpec {
                id: RuleId::parse("windows[0].id", IMPLICIT_WINDOW_ID)?,
                kind: WindowKindSpec::Open,
                period,
                channels: ChannelSet::all(),
                supply_share_bp: FULL_SUPPLY_BP,
            }]
        } else {
            parts.windows
        };
        if specs.len() > MAX_WINDOWS {
            return Err(SchedulingError::invalid(format!(
                "windows has more than {MAX_WINDOWS} entries"
            )));
        }
        let mut windows: Vec<Window> = Vec::with_capacity(specs.len());
        let mut supply_total: u32 = 0;
        for (index, spec) in specs.into_iter().enumerate() {
            if windows.iter().any(|other| other.id == spec.id) {
                return Err(SchedulingError::invalid(format!(
                    "windows[{index}].id is used twice"
                )));
            }
            if spec.supply_share_bp > FULL_SUPPLY_BP {
                return Err(SchedulingError::invalid(format!(
                    "windows[{index}].supply_share_bp is more than {FULL_SUPPLY_BP}"
                )));
            }
            supply_total += spec.supply_share_bp;
            let kind = match spec.kind {
                WindowKindSpec::Rotation => WindowKind::Rotation {
                    digit: rotation_digit(spec.period.opens_at()),
                },
                WindowKindSpec::Open => WindowKind::Open,
                WindowKindSpec::Band(band_id) => {
                    let band = parts
                        .bands
                        .iter()
                        .find(|band| band.id == band_id)
                        .ok_or_else(|| {
                            SchedulingError::invalid(format!(
                                "windows[{index}].band_id names no band of the campaign"
                            ))
                        })?;
                    WindowKind::Band {
                        band: band_id,
                        born: band.born,
                    }
                }
            };
            windows.push(Window {
                id: spec.id,
                kind,
                period: spec.period,
                channels: spec.channels,
                supply_share_bp: spec.supply_share_bp,
            });
        }
        if supply_total != FULL_SUPPLY_BP {
            return Err(SchedulingError::invalid(format!(
                "windows[].supply_share_bp must add up to {FULL_SUPPLY_BP}"
            )));
        }
        let opens_at = windows.iter().map(Window::opens_at).min();
        let closes_at = windows.iter().map(Window::closes_at).max();
        let booking = match (opens_at, closes_at) {
            (Some(opens_at), Some(closes_at)) => BookingWindow::new(opens_at, closes_at)?,
            _ => return Err(SchedulingError::invalid("windows must not be empty")),
        };
        let supply = supply_schedule(&windows);
        Ok(Self {
            id: parts.id,
            name: parts.name,
            born: parts.born,
            booking,
            vaccination: parts.vaccination,
            proxy_allowed: parts.proxy_allowed,
            proxy_deadline: parts.proxy_deadline,
            proxy_max_per_booker: parts.proxy_max_per_booker,
            modification_allowed_from: parts.modification_allowed_from,
            cancellation_closes_days_before: parts.cancellation_closes_days_before,
            bands: parts.bands,
            windows,
            supply,
            version: parts.version,
        })
    }

    /// The parts this campaign was assembled from (to change one and assemble again).
    pub fn to_parts(&self) -> CampaignParts {
        CampaignParts {
            id: self.id.clone(),
            name: self.name.clone(),
            born: self.born,
            vaccination: self.vaccination,
            proxy_allowed: self.proxy_allowed,
            proxy_deadline: self.proxy_deadline,
            proxy_max_per_booker: self.proxy_max_per_booker,
            modification_allowed_from: self.modification_allowed_from,
            cancellation_closes_days_before: self.cancellation_closes_days_before,
            bands: self.bands.clone(),
            windows: self.windows.iter().map(Window::to_spec).collect(),
            booking: Some(self.booking),
            version: self.version,
        }
    }

    /// The same campaign as stored under `version`.
    pub fn with_version(mut self, version: i64) -> Self {
        self.version = version;
        self
    }

    /// Whether a person born on `birth_date` is in this campaign's age group.
    pub fn covers_birth_date(&self, birth_date: NaiveDate) -> bool {
        self.born.contains(birth_date)
    }

    /// Whether proxy booking is accepted at `now` (R1): allowed, and before the deadline.
    pub fn accepts_proxy_at(&self, now: DateTime<Utc>) -> bool {
        self.proxy_allowed && self.proxy_deadline.is_none_or(|deadline| now < deadline)
    }
}

impl Window {
    /// The spec this window was built from.
    pub fn to_spec(&self) -> WindowSpec {
        WindowSpec {
            id: self.id.clone(),
            kind: match &self.kind {
                WindowKind::Rotation { .. } => WindowKindSpec::Rotation,
                WindowKind::Band { band, .. } => WindowKindSpec::Band(band.clone()),
                WindowKind::Open => WindowKindSpec::Open,
            },
            period: self.period,
            channels: self.channels,
            supply_share_bp: self.supply_share_bp,
        }
    }
}

/// PostgreSQL keeps microseconds; rounding here keeps the in-process store and the database
/// answering the same campaign back.
pub fn storable_instant(instant: DateTime<Utc>) -> DateTime<Utc> {
    instant.trunc_subsecs(6)
}
