//! The rules of a campaign as data (R1, R5, R6): channels, age bands, booking windows of three
//! kinds (rotation, band, open) and the supply release each window brings. These are validated
//! values; [`super::Campaign`] checks how they fit together (band references, supply shares
//! adding up to the whole).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Asia::Seoul;

use super::{BookingWindow, DateRange};
use crate::error::SchedulingError;

/// The whole capacity of a slot, in basis points.
pub const FULL_SUPPLY_BP: u32 = 10_000;
/// Longest band or window id, in bytes.
const RULE_ID_MAX_LEN: usize = 64;
/// Longest band name, in characters.
const BAND_NAME_MAX_CHARS: usize = 100;

/// How a booking reaches the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The person's own browser or app, through the gateway.
    Web,
    /// A call-center agent on the person's behalf (R9).
    CallCenter,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Web, Channel::CallCenter];

    fn bit(self) -> u8 {
        match self {
            Self::Web => 1,
            Self::CallCenter => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::CallCenter => "call_center",
        }
    }
}

/// A non-empty set of channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelSet(u8);

impl ChannelSet {
    pub fn new(channels: impl IntoIterator<Item = Channel>) -> Result<Self, SchedulingError> {
        let bits = channels
            .into_iter()
            .fold(0, |bits, channel| bits | channel.bit());
        if bits == 0 {
            return Err(SchedulingError::invalid(
                "channels must name at least one channel",
            ));
        }
        Ok(Self(bits))
    }

    /// Every channel.
    pub fn all() -> Self {
        Self(Channel::Web.bit() | Channel::CallCenter.bit())
    }

    pub fn allows(self, channel: Channel) -> bool {
        self.0 & channel.bit() != 0
    }

    /// The channels in a fixed order (web first).
    pub fn iter(self) -> impl Iterator<Item = Channel> {
        Channel::ALL
            .into_iter()
            .filter(move |channel| self.allows(*channel))
    }
}

/// An id of a band or window inside one campaign: 1 to 64 of `a-z`, `0-9`, `-`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleId(String);

impl RuleId {
    /// `field` names the id in the error ("windows[3].id").
    pub fn parse(field: &str, raw: &str) -> Result<Self, SchedulingError> {
        let well_formed = !raw.is_empty()
            && raw.len() <= RULE_ID_MAX_LEN
            && raw
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
        if !well_formed {
            return Err(SchedulingError::invalid(format!(
                "{field} must be 1 to {RULE_ID_MAX_LEN} of a-z, 0-9 and -"
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An age band: a birth-date range inside the campaign's age group (36-49 = born 1972-1985).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgeBand {
    pub id: RuleId,
    pub name: String,
    pub born: DateRange,
}

impl AgeBand {
    pub fn new(
        field: &str,
        id: RuleId,
        name: &str,
        born: DateRange,
    ) -> Result<Self, SchedulingError> {
        if name.chars().count() > BAND_NAME_MAX_CHARS {
            return Err(SchedulingError::invalid(format!(
                "{field}.name is longer than {BAND_NAME_MAX_CHARS} characters"
            )));
        }
        let name = if name.trim().is_empty() {
            id.as_str().to_owned()
        } else {
            name.to_owned()
        };
        Ok(Self { id, name, born })
    }
}

/// Who a window is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowKind {
    /// R5: people whose birth day ends in `digit`, the last digit of the opening day in Korea.
    Rotation { digit: u8 },
    /// Everyone of one band; the index into the campaign's bands.
    Band { band: RuleId, born: DateRange },
    /// Everyone in the campaign's age group.
    Open,
}

impl WindowKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Rotation { .. } => "rotation",
            Self::Band { .. } => "band",
            Self::Open => "open",
        }
    }
}

/// The last digit of the day of the month (R5): born on the 9th, 19th or 29th gives 9.
pub fn birth_day_digit(birth_date: NaiveDate) -> u8 {
    // day() is 1..=31, so the remainder fits.
    (birth_date.day() % 10) as u8
}

/// The last digit of the date, in Korea, on which `opens_at` falls.
pub fn rotation_digit(opens_at: DateTime<Utc>) -> u8 {
    (opens_at.with_timezone(&Seoul).day() % 10) as u8
}

/// One booking rule: who, when (half-open), on which channels, and what share of supply it
/// releases when it opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub id: RuleId,
    pub kind: WindowKind,
    pub period: BookingWindow,
    pub channels: ChannelSet,
    /// Basis points of every slot's capacity released at `period.opens_at()`.
    pub supply_share_bp: u32,
}

impl Window {
    /// Whether this window is for a person born on `birth_date` (already inside the campaign's
    /// age group).
    pub fn applies_to(&self, birth_date: NaiveDate) -> bool {
        match &self.kind {
            WindowKind::Rotation { digit } => birth_day_digit(birth_date) == *digit,
            WindowKind::Band { born, .. } => born.contains(birth_date),
            WindowKind::Open => true,
        }
    }

    pub fn opens_at(&self) -> DateTime<Utc> {
        self.period.opens_at()
    }

    pub fn closes_at(&self) -> DateTime<Utc> {
        self.period.closes_at()
    }
}

/// From `at` on, `released_bp` (cumulative) of every slot's capacity may be booked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SupplyStep {
    pub at: DateTime<Utc>,
    pub released_bp: u32,
}

/// The cumulative release schedule of `windows`: one step per distinct opening instant that
/// releases something, in time order.
pub fn supply_schedule(windows: &[Window]) -> Vec<SupplyStep> {
    let mut openings: Vec<(DateTime<Utc>, u32)> = windows
        .iter()
        .filter(|window| window.supply_share_bp > 0)
        .map(|window| (window.opens_at(), window.supply_share_bp))
        .collect();
    openings.sort_by_key(|(at, _)| *at);
    let mut steps: Vec<SupplyStep> = Vec::with_capacity(openings.len());
    let mut released = 0;
    for (at, share) in openings {
        released += share;
        match steps.last_mut() {
            Some(last) if last.at == at => last.released_bp = released,
            _ => steps.push(SupplyStep {
                at,
                released_bp: released,
            }),
        }
    }
    steps
}

/// The share released at `now` according to `steps` (0 before the first step).
pub fn released_at(steps: &[SupplyStep], now: DateTime<Utc>) -> u32 {
    steps
        .iter()
        .take_while(|step| step.at <= now)
        .last()
        .map_or(0, |step| step.released_bp)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::TimeZone;

    fn kst(day: u32, hour: u32) -> DateTime<Utc> {
        Seoul
            .with_ymd_and_hms(2021, 8, day, hour, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_rotation_day_is_the_korean_date() {
        // 9 Aug 20:00 KST is 9 Aug 11:00 UTC; 10 Aug 02:00 KST is still 9 Aug in UTC.
        assert_eq!(rotation_digit(kst(9, 20)), 9);
        assert_eq!(rotation_digit(kst(10, 2)), 0);
        assert_eq!(rotation_digit(kst(18, 20)), 8);
    }

    #[test]
    fn birth_days_map_to_their_last_digit() {
        let digit = |y, m, d| birth_day_digit(NaiveDate::from_ymd_opt(y, m, d).unwrap());
        assert_eq!(digit(1990, 5, 9), 9);
        assert_eq!(digit(1990, 5, 19), 9);
        assert_eq!(digit(1990, 5, 29), 9);
        assert_eq!(digit(1988, 2, 29), 9);
        assert_eq!(digit(1990, 5, 10), 0);
        assert_eq!(digit(1990, 5, 30), 0);
        assert_eq!(digit(1990, 5, 31), 1);
    }

    #[test]
    fn channel_sets_are_never_empty() {
        assert!(ChannelSet::new([]).is_err());
        let web = ChannelSet::new([Channel::Web]).unwrap();
        assert!(web.allows(Channel::Web) && !web.allows(Channel::CallCenter));
        assert_eq!(ChannelSet::all().iter().count(), 2);
    }

    #[test]
    fn supply_steps_accumulate_and_merge_equal_instants() {
        let window = |id: &str, opens: DateTime<Utc>, share| Window {
            id: RuleId::parse("id", id).unwrap(),
            kind: WindowKind::Open,
            period: BookingWindow::new(opens, opens + chrono::Duration::hours(22)).unwrap(),
            channels: ChannelSet::all(),
            supply_share_bp: share,
        };
        let windows = [
            window("b", kst(10, 20), 3_000),
            window("a", kst(9, 20), 5_000),
            window("c", kst(10, 20), 2_000),
            window("d", kst(11, 20), 0),
        ];
        let steps = supply_schedule(&windows);
        assert_eq!(
            steps,
            vec![
                SupplyStep {
                    at: kst(9, 20),
                    released_bp: 5_000
                },
                SupplyStep {
                    at: kst(10, 20),
                    released_bp: 10_000
                },
            ]
        );
        assert_eq!(released_at(&steps, kst(9, 19)), 0);
        assert_eq!(released_at(&steps, kst(9, 20)), 5_000);
        assert_eq!(released_at(&steps, kst(12, 0)), 10_000);
    }
}
