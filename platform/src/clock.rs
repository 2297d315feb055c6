//! The injectable clock every time-dependent rule reads, in Asia/Seoul time.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Asia::Seoul;
use chrono_tz::Tz;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;

    /// The current time in Korea Standard Time.
    fn now_kst(&self) -> DateTime<Tz> {
        self.now().with_timezone(&Seoul)
    }

    /// Today's date in Korea.
    fn today_kst(&self) -> NaiveDate {
        self.now_kst().date_naive()
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that can be set to any instant and runs on from there at real speed
/// (the dev run's `/dev/clock`, and tests).
#[derive(Debug, Default)]
pub struct SettableClock {
    offset: RwLock<Duration>,
}

impl SettableClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock that reads `now` at this instant.
    pub fn starting_at(now: DateTime<Utc>) -> Self {
        let clock = Self::new();
        clock.set(now);
        clock
    }

    /// From now on the clock reads `now`, and runs on from there.
    pub fn set(&self, now: DateTime<Utc>) {
        let offset = now - Utc::now();
        if let Ok(mut guard) = self.offset.write() {
            *guard = offset;
        }
    }

    /// Back to the real time.
    pub fn reset(&self) {
        if let Ok(mut guard) = self.offset.write() {
            *guard = Duration::zero();
        }
    }
}

impl Clock for SettableClock {
    fn now(&self) -> DateTime<Utc> {
        let offset = self.offset.read().map(|guard| *guard).unwrap_or_default();
        Utc::now() + offset
    }
}

/// Formats an instant as RFC 3339 in KST (`2021-08-09T20:00:00+09:00`).
pub fn rfc3339_kst(instant: DateTime<Utc>) -> String {
    instant
        .with_timezone(&Seoul)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// Converts a protobuf timestamp to a UTC instant.
pub fn from_timestamp(ts: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(ts.nanos).ok()?;
    DateTime::from_timestamp(ts.seconds, nanos)
}

/// Converts a UTC instant to a protobuf timestamp.
pub fn to_timestamp(instant: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: instant.timestamp(),
        nanos: i32::try_from(instant.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settable_clock_reads_the_instant_it_was_set_to() {
        let start = DateTime::parse_from_rfc3339("2021-08-13T20:30:00+09:00")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let clock = SettableClock::starting_at(start);
        let read = clock.now();
        assert!(read >= start && read - start < Duration::seconds(5));
        assert_eq!(
            clock.today_kst(),
            NaiveDate::from_ymd_opt(2021, 8, 13).unwrap_or_default()
        );
        clock.reset();
        assert!(clock.now() > start + Duration::days(365));
    }

    #[test]
    fn kst_formatting_carries_the_offset() {
        let instant = DateTime::from_timestamp(1_628_506_800, 0).unwrap_or_default();
        assert_eq!(rfc3339_kst(instant), "2021-08-09T20:00:00+09:00");
    }
}
