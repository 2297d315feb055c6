//! Supply released per window (R5): a campaign makes a share of every slot's capacity bookable
//! when each of its windows opens, so the people of the last window still find places. The
//! share in force at an instant comes from the campaign's release schedule (scheduling-svc's
//! campaign terms) and the clock; the store's guarded update compares the booked count against
//! `floor(capacity × share)`, so no booking ever takes a place that is not released yet.

use chrono::{DateTime, Utc};

/// A share of a slot's capacity in basis points (1/100 of a percent), `0..=10_000`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReleasedShare(u32);

impl ReleasedShare {
    /// Everything: a campaign without a release schedule releases the whole capacity at once.
    pub const FULL: ReleasedShare = ReleasedShare(10_000);
    /// Nothing yet (before the first window opens).
    pub const NONE: ReleasedShare = ReleasedShare(0);

    /// The share of `basis_points` / 10 000; `None` above 100 %.
    pub fn from_basis_points(basis_points: u32) -> Option<Self> {
        (basis_points <= Self::FULL.0).then_some(Self(basis_points))
    }

    pub fn basis_points(self) -> u32 {
        self.0
    }

    /// The places of `capacity` this share releases: `floor(capacity × share)`.
    pub fn of(self, capacity: i32) -> i32 {
        let released = i64::from(capacity.max(0)) * i64::from(self.0) / i64::from(Self::FULL.0);
        i32::try_from(released).unwrap_or(capacity)
    }
}

/// One step of a release schedule: from `at` on, `share` of the capacity is bookable
/// (cumulative, so a later step never releases less than an earlier one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReleaseStep {
    pub at: DateTime<Utc>,
    pub share: ReleasedShare,
}

/// Why a release schedule does not validate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error("a release step's share is above 100 %")]
    ShareAboveFull,
    #[error("the release schedule takes back places a previous window released")]
    Decreasing,
}

/// A campaign's release schedule: the steps in time order. Empty means the whole capacity is
/// bookable from the start (campaigns that do not split their supply).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SupplyRelease {
    steps: Vec<ReleaseStep>,
}

impl SupplyRelease {
    /// A schedule from cumulative steps in any order; refuses one that releases less later.
    pub fn new(mut steps: Vec<ReleaseStep>) -> Result<Self, ReleaseError> {
        steps.sort_by_key(|step| (step.at, step.share));
        if steps.windows(2).any(|pair| pair[1].share < pair[0].share) {
            return Err(ReleaseError::Decreasing);
        }
        Ok(Self { steps })
    }

    /// A schedule from the share each window adds when it opens (`(opens_at, basis points)`),
    /// summed into cumulative steps; more than 100 % in total is refused.
    pub fn from_increments(
        increments: impl IntoIterator<Item = (DateTime<Utc>, u32)>,
    ) -> Result<Self, ReleaseError> {
        let mut increments: Vec<(DateTime<Utc>, u32)> = increments.into_iter().collect();
        increments.sort_by_key(|(at, _)| *at);
        let mut total: u32 = 0;
        let mut steps = Vec::with_capacity(increments.len());
        for (at, added) in increments {
            total = total.saturating_add(added);
            let share =
                ReleasedShare::from_basis_points(total).ok_or(ReleaseError::ShareAboveFull)?;
            steps.push(ReleaseStep { at, share });
        }
        Self::new(steps)
    }

    pub fn steps(&self) -> &[ReleaseStep] {
        &self.steps
    }

    /// The share bookable at `now`: that of the last step that has begun, nothing before the
    /// first, everything when there is no schedule.
    pub fn share_at(&self, now: DateTime<Utc>) -> ReleasedShare {
        if self.steps.is_empty() {
            return ReleasedShare::FULL;
        }
        self.steps
            .iter()
            .rev()
            .find(|step| step.at <= now)
            .map_or(ReleasedShare::NONE, |step| step.share)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chrono::TimeZone;
    use chrono_tz::Asia::Seoul;

    use super::*;

    fn kst(day: u32, hour: u32, minute: u32, second: u32) -> DateTime<Utc> {
        Seoul
            .with_ymd_and_hms(2021, 8, day, hour, minute, second)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_share_is_floored_and_never_above_the_capacity() {
        let tenth = ReleasedShare::from_basis_points(1_000).unwrap();
        assert_eq!(tenth.of(10), 1);
        assert_eq!(tenth.of(19), 1);
        assert_eq!(tenth.of(0), 0);
        assert_eq!(ReleasedShare::FULL.of(7), 7);
        assert_eq!(ReleasedShare::NONE.of(7), 0);
        assert_eq!(ReleasedShare::FULL.of(-3), 0);
        assert!(ReleasedShare::from_basis_points(10_001).is_none());
    }

    #[test]
    fn each_window_releases_its_step_at_its_opening() {
        // Ten rotation windows, each releasing a tenth at 20:00 KST.
        let release =
            SupplyRelease::from_increments((9..=18).map(|day| (kst(day, 20, 0, 0), 1_000)))
                .unwrap();
        assert_eq!(release.share_at(kst(9, 19, 59, 59)), ReleasedShare::NONE);
        assert_eq!(release.share_at(kst(9, 20, 0, 0)).basis_points(), 1_000);
        assert_eq!(release.share_at(kst(13, 19, 59, 59)).basis_points(), 4_000);
        assert_eq!(release.share_at(kst(13, 20, 0, 0)).basis_points(), 5_000);
        assert_eq!(release.share_at(kst(31, 0, 0, 0)), ReleasedShare::FULL);
        assert_eq!(
            SupplyRelease::default().share_at(kst(1, 0, 0, 0)),
            ReleasedShare::FULL
        );
    }

    #[test]
    fn malformed_schedules_are_refused() {
        assert_eq!(
            SupplyRelease::from_increments([(kst(9, 20, 0, 0), 6_000), (kst(10, 20, 0, 0), 5_000)]),
            Err(ReleaseError::ShareAboveFull)
        );
        let half = ReleasedShare::from_basis_points(5_000).unwrap();
        let quarter = ReleasedShare::from_basis_points(2_500).unwrap();
        assert_eq!(
            SupplyRelease::new(vec![
                ReleaseStep {
                    at: kst(9, 20, 0, 0),
                    share: half
                },
                ReleaseStep {
                    at: kst(10, 20, 0, 0),
                    share: quarter
                },
            ]),
            Err(ReleaseError::Decreasing)
        );
    }
}
