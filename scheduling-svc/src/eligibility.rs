//! Who may book when: the pure eligibility rules, evaluated against an instant the caller reads
//! from the injected clock. Being ineligible is an answer, not an error.
//!
//! For one campaign the rules run in a fixed order: the age group (R6), the exclusion list
//! (R7), whether the campaign is over, the proxy policy (R1), the person's own windows (R5:
//! rotation by birth day, band, open), and last the channel. [`personal_window`] is the one
//! place that decides which of a person's windows an answer is about: an open one (the one
//! closing last), else the next to open, else the last to have closed.

use chrono::{DateTime, NaiveDate, Utc};
use platform::ids::PersonKey;

use crate::domain::{Campaign, Channel, Window};

/// The person asking, as far as eligibility rules may look at them (no RRN, no name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applicant {
    pub birth_date: NaiveDate,
    /// The pseudonymous person key; the exclusion lists hold these.
    pub person_key: PersonKey,
}

/// How the booking would be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Approach {
    pub channel: Channel,
    /// Someone else books for the person (R1).
    pub proxy: bool,
}

impl Default for Approach {
    fn default() -> Self {
        Self {
            channel: Channel::Web,
            proxy: false,
        }
    }
}

/// Why a person may not book now; the names are part of the public contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IneligibleReason {
    /// The birth date is outside the campaign's age group (or no window is for them).
    NotInAgeGroup,
    /// The person's next window has not opened yet.
    WindowNotOpen,
    /// Every window of the person has closed, while the campaign goes on for others.
    WindowClosed,
    /// The person is on the campaign's priority-target list (R7).
    ExcludedPriorityTarget,
    /// A window is open for the person, but not on this channel.
    ChannelNotAllowed,
    /// The campaign does not accept proxy bookings, or no longer (R1).
    ProxyNotAllowed,
    /// Every window of the campaign has closed.
    CampaignClosed,
    /// There is no campaign at all.
    NoCampaign,
}

impl IneligibleReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotInAgeGroup => "not-in-age-group",
            Self::WindowNotOpen => "window-not-open",
            Self::WindowClosed => "window-closed",
            Self::ExcludedPriorityTarget => "excluded-priority-target",
            Self::ChannelNotAllowed => "channel-not-allowed",
            Self::ProxyNotAllowed => "proxy-not-allowed",
            Self::CampaignClosed => "campaign-closed",
            Self::NoCampaign => "no-campaign",
        }
    }
}

/// The answer to "may this person book now?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EligibilityDecision<'a> {
    /// The campaign the answer is about, when one was picked.
    pub campaign: Option<&'a Campaign>,
    /// The applicant's window the answer is about.
    pub window: Option<&'a Window>,
    /// `None` when the person may book now.
    pub ineligible: Option<IneligibleReason>,
}

impl EligibilityDecision<'_> {
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

/// Where `now` stands against a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    Open,
    Upcoming,
    Closed,
}

/// The windows of `campaign` that are for a person born on `birth_date` (in the age group).
pub fn windows_for<'a>(
    campaign: &'a Campaign,
    birth_date: NaiveDate,
) -> impl Iterator<Item = &'a Window> + 'a {
    campaign
        .windows
        .iter()
        .filter(move |window| window.applies_to(birth_date))
}

/// Which of the person's windows an answer is about: among the open ones the one closing last
/// (on `channel` when given and one allows it); else the next to open; else the last closed.
/// Ties go to the earlier window in the campaign's list.
pub fn personal_window(
    campaign: &Campaign,
    birth_date: NaiveDate,
    now: DateTime<Utc>,
    channel: Option<Channel>,
) -> Option<(&Window, Timing)> {
    let mut open: Option<&Window> = None;
    let mut open_on_channel: Option<&Window> = None;
    let mut upcoming: Option<&Window> = None;
    let mut closed: Option<&Window> = None;
    for window in windows_for(campaign, birth_date) {
        if window.period.is_open(now) {
            if open.is_none_or(|kept| window.closes_at() > kept.closes_at()) {
                open = Some(window);
            }
            let on_channel = channel.is_none_or(|channel| window.channels.allows(channel));
            if on_channel
                && open_on_channel.is_none_or(|kept| window.closes_at() > kept.closes_at())
            {
                open_on_channel = Some(window);
            }
        } else if !window.period.has_opened(now) {
            if upcoming.is_none_or(|kept| window.opens_at() < kept.opens_at()) {
                upcoming = Some(window);
            }
        } else if closed.is_none_or(|kept| window.closes_at() > kept.closes_at()) {
            closed = Some(window);
        }
    }
    open_on_channel
        .or(open)
        .map(|window| (window, Timing::Open))
        .or(upcoming.map(|window| (window, Timing::Upcoming)))
        .or(closed.map(|window| (window, Timing::Closed)))
}

/// Evaluates one campaign for `applicant` at `now`; `excluded` says whether the applicant is
/// on the campaign's exclusion list.
pub fn evaluate<'a>(
    campaign: &'a Campaign,
    applicant: &Applicant,
    approach: Approach,
    excluded: bool,
    now: DateTime<Utc>,
) -> EligibilityDecision<'a> {
    let decision = |window, reason| EligibilityDecision {
        campaign: Some(campaign),
        window,
        ineligible: reason,
    };
    if !campaign.covers_birth_date(applicant.birth_date) {
        return decision(None, Some(IneligibleReason::NotInAgeGroup));
    }
    let Some((window, timing)) =
        personal_window(campaign, applicant.birth_date, now, Some(approach.channel))
    else {
        return decision(None, Some(IneligibleReason::NotInAgeGroup));
    };
    let reason = if excluded {
        Some(IneligibleReason::ExcludedPriorityTarget)
    } else if campaign.booking.has_closed(now) {
        Some(IneligibleReason::CampaignClosed)
    } else if approach.proxy && !campaign.accepts_proxy_at(now) {
        Some(IneligibleReason::ProxyNotAllowed)
    } else {
        match timing {
            Timing::Upcoming => Some(IneligibleReason::WindowNotOpen),
            Timing::Closed => Some(IneligibleReason::WindowClosed),
            Timing::Open if !window.channels.allows(approach.channel) => {
                Some(IneligibleReason::ChannelNotAllowed)
            }
            Timing::Open => None,
        }
    };
    decision(Some(window), reason)
}

/// Picks the campaign that matters to `applicant` at `now` among `campaigns` and evaluates it.
///
/// Every campaign whose age group holds the birth date is evaluated; the answer is the first
/// of: an eligible one (the window closing soonest, the most urgent); one whose window opens
/// next (the soonest); any other answer about a window (the latest closing). Ties go to the
/// smaller id, so every replica answers the same.
pub fn choose_and_evaluate<'a>(
    campaigns: impl IntoIterator<Item = &'a Campaign>,
    applicant: &Applicant,
    approach: Approach,
    is_excluded: impl Fn(&Campaign) -> bool,
    now: DateTime<Utc>,
) -> EligibilityDecision<'a> {
    let mut any_campaign = false;
    let mut best: Option<(Rank<'a>, EligibilityDecision<'a>)> = None;
    for campaign in campaigns {
        any_campaign = true;
        if !campaign.covers_birth_date(applicant.birth_date) {
            continue;
        }
        let decision = evaluate(campaign, applicant, approach, is_excluded(campaign), now);
        let Some(window) = decision.window else {
            continue;
        };
        let rank = Rank::of(&decision, window, campaign);
        if best.as_ref().is_none_or(|(kept, _)| rank < *kept) {
            best = Some((rank, decision));
        }
    }
    match best {
        Some((_, decision)) => decision,
        None if any_campaign => {
            EligibilityDecision::without_campaign(IneligibleReason::NotInAgeGroup)
        }
        None => EligibilityDecision::without_campaign(IneligibleReason::NoCampaign),
    }
}

/// Orders candidate answers: smaller is better.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rank<'a> {
    group: u8,
    /// Microseconds of the instant compared within the group, signed so smaller is better.
    instant: i64,
    campaign_id: &'a str,
}

impl<'a> Rank<'a> {
    fn of(decision: &EligibilityDecision<'_>, window: &Window, campaign: &'a Campaign) -> Self {
        let (group, instant) = match decision.ineligible {
            None => (0, window.closes_at().timestamp_micros()),
            Some(IneligibleReason::WindowNotOpen) => (1, window.opens_at().timestamp_micros()),
            Some(_) => (2, -window.closes_at().timestamp_micros()),
        };
        Self {
            group,
            instant,
            campaign_id: campaign.id.as_str(),
        }
    }
}

/// An answer that owns what it points at, for callers outside the cache's snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eligibility {
    pub campaign: Option<std::sync::Arc<Campaign>>,
    pub window: Option<Window>,
    pub ineligible: Option<IneligibleReason>,
}

impl Eligibility {
    pub fn is_eligible(&self) -> bool {
        self.ineligible.is_none()
    }

    /// The borrowed form, to render with the same code as a fresh decision.
    pub fn as_decision(&self) -> EligibilityDecision<'_> {
        EligibilityDecision {
            campaign: self.campaign.as_deref(),
            window: self.window.as_ref(),
            ineligible: self.ineligible,
        }
    }
}
