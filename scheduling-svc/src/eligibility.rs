//! Who may book when: the pure eligibility rules, evaluated against an instant the caller reads
//! from the injected clock. Being ineligible is an answer, not an error.
//!
//! The rules run in a fixed order — age group (R6), then the applicant's own booking window —
//! and the window comes from [`personal_booking_window`], the one place that decides when a
//! given person may book. The 10-part rotation (R5) will compute a per-birth-day window there,
//! and exclusions (R7) will become another step of [`evaluate`] with its own reason; the
//! campaign choice already compares personal windows, so neither needs a change elsewhere.

use chrono::{DateTime, NaiveDate, Utc};
use platform::ids::PersonKey;

use crate::domain::{BookingWindow, Campaign};

/// The person asking, as far as eligibility rules may look at them (no RRN, no name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applicant {
    pub birth_date: NaiveDate,
    /// The pseudonymous person key; later rules (exclusions) look it up.
    pub person_key: PersonKey,
}

/// Why a person may not book now; the names are part of the public contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IneligibleReason {
    /// The birth date is outside the campaign's age group.
    NotInAgeGroup,
    /// The person's booking window has not opened yet.
    NotOpenYet,
    /// The person's booking window has closed.
    Closed,
    /// There is no campaign at all.
    NoCampaign,
}

impl IneligibleReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotInAgeGroup => "not-in-age-group",
            Self::NotOpenYet => "not-open-yet",
            Self::Closed => "closed",
            Self::NoCampaign => "no-campaign",
        }
    }
}

/// The answer to "may this person book now?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EligibilityDecision {
    /// The campaign the answer is about, when one was picked.
    pub campaign: Option<Campaign>,
    /// The applicant's own booking window in that campaign.
    pub window: Option<BookingWindow>,
    /// `None` when the person may book now.
    pub ineligible: Option<IneligibleReason>,
}

impl EligibilityDecision {
    pub fn is_eligible(&self) -> bool {
        self.ineligible.is_none()
    }

    fn without_campaign(reason: IneligibleReason) -> Self {
        Self {
            campaign: None,
            window: None,
            ineligible: Some(reason),
        }
    }
}

/// When `applicant` may book in `campaign`. Today that is the campaign's window; the rotation
/// rule (R5) will narrow it by the last digit of the birth day.
pub fn personal_booking_window(campaign: &Campaign, _applicant: &Applicant) -> BookingWindow {
    campaign.booking
}

/// Evaluates one campaign for `applicant` at `now`.
pub fn evaluate(
    campaign: &Campaign,
    applicant: &Applicant,
    now: DateTime<Utc>,
) -> EligibilityDecision {
    let window = personal_booking_window(campaign, applicant);
    let ineligible = if !campaign.covers_birth_date(applicant.birth_date) {
        Some(IneligibleReason::NotInAgeGroup)
    } else if !window.has_opened(now) {
        Some(IneligibleReason::NotOpenYet)
    } else if window.has_closed(now) {
        Some(IneligibleReason::Closed)
    } else {
        None
    };
    EligibilityDecision {
        campaign: Some(campaign.clone()),
        window: Some(window),
        ineligible,
    }
}

/// Picks the campaign that matters to `applicant` at `now` among `campaigns` and evaluates it.
///
/// Among the campaigns whose age group holds the birth date: one open now (the one closing
/// soonest, so the answer points at the most urgent window); else the one opening soonest;
/// else the one that closed most recently. Ties go to the smaller id, so every replica answers
/// the same.
pub fn choose_and_evaluate<'a>(
    campaigns: impl IntoIterator<Item = &'a Campaign>,
    applicant: &Applicant,
    now: DateTime<Utc>,
) -> EligibilityDecision {
    let mut any_campaign = false;
    let mut open: Option<(&Campaign, BookingWindow)> = None;
    let mut upcoming: Option<(&Campaign, BookingWindow)> = None;
    let mut closed: Option<(&Campaign, BookingWindow)> = None;

    for campaign in campaigns {
        any_campaign = true;
        if !campaign.covers_birth_date(applicant.birth_date) {
            continue;
        }
        let window = personal_booking_window(campaign, applicant);
        let candidate = (campaign, window);
        if window.is_open(now) {
            keep_best(
                &mut open,
                candidate,
                |window| window.closes_at(),
                Prefer::Earliest,
            );
        } else if !window.has_opened(now) {
            keep_best(
                &mut upcoming,
                candidate,
                |window| window.opens_at(),
                Prefer::Earliest,
            );
        } else {
            keep_best(
                &mut closed,
                candidate,
                |window| window.closes_at(),
                Prefer::Latest,
            );
        }
    }

    match open.or(upcoming).or(closed) {
        Some((campaign, _)) => evaluate(campaign, applicant, now),
        None if any_campaign => {
            EligibilityDecision::without_campaign(IneligibleReason::NotInAgeGroup)
        }
        None => EligibilityDecision::without_campaign(IneligibleReason::NoCampaign),
    }
}

#[derive(Clone, Copy)]
enum Prefer {
    Earliest,
    Latest,
}

fn keep_best<'a>(
    best: &mut Option<(&'a Campaign, BookingWindow)>,
    candidate: (&'a Campaign, BookingWindow),
    instant: impl Fn(&BookingWindow) -> DateTime<Utc>,
    prefer: Prefer,
) {
    let replace = match best {
        None => true,
        Some((kept_campaign, kept_window)) => {
            let (candidate_at, kept_at) = (instant(&candidate.1), instant(kept_window));
            let better = match prefer {
                Prefer::Earliest => candidate_at < kept_at,
                Prefer::Latest => candidate_at > kept_at,
            };
            better || (candidate_at == kept_at && candidate.0.id < kept_campaign.id)
        }
    };
    if replace {
        *best = Some(candidate);
    }
}
