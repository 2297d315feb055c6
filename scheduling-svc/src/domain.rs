//! The validated campaign: one vaccination round with its age group (R6), booking window,
//! vaccination dates, proxy policy (R1), change policy and cancellation rule (R8). Wire messages
//! become a [`Campaign`] only through `TryFrom`, so the rest of the crate never sees a
//! half-filled or contradictory campaign.

use std::fmt;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use platform::clock::{from_timestamp, to_timestamp};
use platform::problem::Problem;
use proto::scheduling::v1 as pb;

/// Longest campaign id (after the first character, the pattern allows 63 more).
const CAMPAIGN_ID_MAX_LEN: usize = 64;
/// Longest campaign name, in characters.
const CAMPAIGN_NAME_MAX_CHARS: usize = 200;
/// The largest cancellation lead an operator may configure, in days.
pub const CANCELLATION_LEAD_MAX_DAYS: u8 = 30;

/// A campaign id: `^[a-z0-9][a-z0-9-]{0,63}$`, so it is safe in URLs, logs and metric labels.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CampaignId(String);

impl CampaignId {
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        let mut chars = raw.chars();
        let Some(first) = chars.next() else {
            return Err(Problem::invalid("id is required"));
        };
        if raw.len() > CAMPAIGN_ID_MAX_LEN {
            return Err(Problem::invalid(format!(
                "id is longer than {CAMPAIGN_ID_MAX_LEN} characters"
            )));
        }
        let lower_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        if !lower_alnum(first) || !chars.all(|c| lower_alnum(c) || c == '-') {
            return Err(Problem::invalid(
                "id must match ^[a-z0-9][a-z0-9-]{0,63}$ (lowercase letters, digits and dashes)",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CampaignId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A campaign's display name: 1 to 200 characters, not blank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignName(String);

impl CampaignName {
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        if raw.trim().is_empty() {
            return Err(Problem::invalid("name is required"));
        }
        if raw.chars().count() > CAMPAIGN_NAME_MAX_CHARS {
            return Err(Problem::invalid(format!(
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
    pub fn new(field: &str, first: NaiveDate, last: NaiveDate) -> Result<Self, Problem> {
        if first > last {
            return Err(Problem::invalid(format!(
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
    pub fn new(opens_at: DateTime<Utc>, closes_at: DateTime<Utc>) -> Result<Self, Problem> {
        let opens_at = storable_instant(opens_at);
        let closes_at = storable_instant(closes_at);
        if opens_at >= closes_at {
            return Err(Problem::invalid(
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
    pub fn days(days: i64) -> Result<Self, Problem> {
        u8::try_from(days)
            .ok()
            .filter(|days| *days <= CANCELLATION_LEAD_MAX_DAYS)
            .map(Self)
            .ok_or_else(|| {
                Problem::invalid(format!(
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

impl TryFrom<pb::Campaign> for Campaign {
    type Error = Problem;

    fn try_from(message: pb::Campaign) -> Result<Self, Problem> {
        Self::try_from(&message)
    }
}

impl TryFrom<&pb::Campaign> for Campaign {
    type Error = Problem;

    fn try_from(message: &pb::Campaign) -> Result<Self, Problem> {
        let born = DateRange::new(
            "born",
            parse_iso_date("born_from", &message.born_from)?,
            parse_iso_date("born_to", &message.born_to)?,
        )?;
        let booking = BookingWindow::new(
            required_instant("booking_opens_at", message.booking_opens_at.as_ref())?,
            required_instant("booking_closes_at", message.booking_closes_at.as_ref())?,
        )?;
        let vaccination = DateRange::new(
            "vaccination",
            parse_iso_date("vaccination_from", &message.vaccination_from)?,
            parse_iso_date("vaccination_to", &message.vaccination_to)?,
        )?;
        Ok(Self {
            id: CampaignId::parse(&message.id)?,
            name: CampaignName::parse(&message.name)?,
            born,
            booking,
            vaccination,
            proxy_allowed: message.proxy_allowed,
            proxy_deadline: optional_instant("proxy_deadline", message.proxy_deadline.as_ref())?,
            modification_allowed_from: optional_instant(
                "modification_allowed_from",
                message.modification_allowed_from.as_ref(),
            )?,
            cancellation_closes_days_before: CancellationLead::days(i64::from(
                message.cancellation_closes_days_before,
            ))?,
        })
    }
}

impl From<&Campaign> for pb::Campaign {
    fn from(campaign: &Campaign) -> Self {
        Self {
            id: campaign.id.as_str().to_owned(),
            name: campaign.name.as_str().to_owned(),
            born_from: format_iso_date(campaign.born.first()),
            born_to: format_iso_date(campaign.born.last()),
            booking_opens_at: Some(to_timestamp(campaign.booking.opens_at())),
            booking_closes_at: Some(to_timestamp(campaign.booking.closes_at())),
            vaccination_from: format_iso_date(campaign.vaccination.first()),
            vaccination_to: format_iso_date(campaign.vaccination.last()),
            proxy_allowed: campaign.proxy_allowed,
            proxy_deadline: campaign.proxy_deadline.map(to_timestamp),
            modification_allowed_from: campaign.modification_allowed_from.map(to_timestamp),
            cancellation_closes_days_before: i32::from(
                campaign.cancellation_closes_days_before.as_days(),
            ),
        }
    }
}

impl From<Campaign> for pb::Campaign {
    fn from(campaign: Campaign) -> Self {
        Self::from(&campaign)
    }
}

/// Parses a calendar date written exactly as `YYYY-MM-DD` (chrono alone would also take
/// `2021-8-9`, which a caller most likely did not mean).
pub fn parse_iso_date(field: &str, raw: &str) -> Result<NaiveDate, Problem> {
    let bytes = raw.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            4 | 7 => *byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    if !shaped {
        return Err(Problem::invalid(format!(
            "{field} must be a date as YYYY-MM-DD"
        )));
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| Problem::invalid(format!("{field} is not a calendar date")))
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_iso_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// PostgreSQL keeps microseconds; rounding here keeps the in-process store and the database
/// answering the same campaign back.
fn storable_instant(instant: DateTime<Utc>) -> DateTime<Utc> {
    instant.trunc_subsecs(6)
}

fn required_instant(
    field: &str,
    timestamp: Option<&prost_types::Timestamp>,
) -> Result<DateTime<Utc>, Problem> {
    optional_instant(field, timestamp)?
        .ok_or_else(|| Problem::invalid(format!("{field} is required")))
}

fn optional_instant(
    field: &str,
    timestamp: Option<&prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, Problem> {
    timestamp
        .map(|timestamp| {
            from_timestamp(timestamp)
                .map(storable_instant)
                .ok_or_else(|| Problem::invalid(format!("{field} is not a valid timestamp")))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use platform::problem::ProblemKind;

    fn valid_message() -> pb::Campaign {
        pb::Campaign {
            id: "covid19-18-49".to_owned(),
            name: "18-49".to_owned(),
            born_from: "1972-01-01".to_owned(),
            born_to: "2003-12-31".to_owned(),
            booking_opens_at: Some(prost_types::Timestamp {
                seconds: 1_628_506_800,
                nanos: 0,
            }),
            booking_closes_at: Some(prost_types::Timestamp {
                seconds: 1_631_955_600,
                nanos: 0,
            }),
            vaccination_from: "2021-08-26".to_owned(),
            vaccination_to: "2021-10-02".to_owned(),
            proxy_allowed: false,
            proxy_deadline: None,
            modification_allowed_from: None,
            cancellation_closes_days_before: 2,
        }
    }

    fn rejected_field(message: pb::Campaign) -> String {
        let problem = Campaign::try_from(message).unwrap_err();
        assert_eq!(problem.kind, ProblemKind::InvalidRequest);
        problem.detail
    }

    #[test]
    fn a_valid_message_round_trips() {
        let message = valid_message();
        let campaign = Campaign::try_from(&message).unwrap();
        assert_eq!(campaign.cancellation_closes_days_before.as_days(), 2);
        assert_eq!(pb::Campaign::from(&campaign), message);
    }

    #[test]
    fn zero_cancellation_lead_means_zero() {
        let mut message = valid_message();
        message.cancellation_closes_days_before = 0;
        let campaign = Campaign::try_from(message).unwrap();
        assert_eq!(campaign.cancellation_closes_days_before.as_days(), 0);
    }

    #[test]
    fn malformed_fields_are_named() {
        type Spoil = Box<dyn Fn(&mut pb::Campaign)>;
        let cases: Vec<(&str, Spoil)> = vec![
            ("id", Box::new(|m| m.id = "Bad_Id".to_owned())),
            ("id", Box::new(|m| m.id = "-leading-dash".to_owned())),
            ("id", Box::new(|m| m.id = "a".repeat(65))),
            ("id", Box::new(|m| m.id.clear())),
            ("name", Box::new(|m| m.name = "  ".to_owned())),
            ("name", Box::new(|m| m.name = "가".repeat(201))),
            (
                "born_from",
                Box::new(|m| m.born_from = "1972-1-1".to_owned()),
            ),
            ("born_to", Box::new(|m| m.born_to = "2003-02-30".to_owned())),
            (
                "born_from",
                Box::new(|m| m.born_from = "2004-01-01".to_owned()),
            ),
            ("booking_opens_at", Box::new(|m| m.booking_opens_at = None)),
            (
                "booking_closes_at",
                Box::new(|m| m.booking_closes_at = None),
            ),
            (
                "booking_opens_at",
                Box::new(|m| m.booking_closes_at = m.booking_opens_at),
            ),
            (
                "vaccination_from",
                Box::new(|m| m.vaccination_from = "2021-10-03".to_owned()),
            ),
            (
                "proxy_deadline",
                Box::new(|m| {
                    m.proxy_deadline = Some(prost_types::Timestamp {
                        seconds: 0,
                        nanos: -1,
                    })
                }),
            ),
            (
                "cancellation_closes_days_before",
                Box::new(|m| m.cancellation_closes_days_before = 31),
            ),
            (
                "cancellation_closes_days_before",
                Box::new(|m| m.cancellation_closes_days_before = -1),
            ),
        ];
        for (field, spoil) in cases {
            let mut message = valid_message();
            spoil(&mut message);
            let detail = rejected_field(message);
            assert!(detail.starts_with(field), "{field}: {detail}");
        }
    }

    #[test]
    fn longest_allowed_id_and_name_are_accepted() {
        let mut message = valid_message();
        message.id = format!("9{}", "-".repeat(63));
        message.name = "가".repeat(200);
        assert!(Campaign::try_from(message).is_ok());
    }

    #[test]
    fn instants_keep_microseconds_only() {
        let mut message = valid_message();
        message.booking_opens_at = Some(prost_types::Timestamp {
            seconds: 1_628_506_800,
            nanos: 123_456_789,
        });
        let campaign = Campaign::try_from(message).unwrap();
        assert_eq!(
            campaign.booking.opens_at().timestamp_subsec_nanos(),
            123_456_000
        );
    }
}
