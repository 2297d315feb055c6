//! Eligibility through the service logic, with a settable clock, around campaigns modelled on
//! the 2021 rounds: the 18–49 round and the 60+ round that was open at the same time.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use platform::clock::{SettableClock, SharedClock};
use scheduling_svc::domain::Campaign;
use scheduling_svc::eligibility::{Applicant, Approach, IneligibleReason};
use scheduling_svc::{MemoryCampaignStore, Scheduling, SchedulingError};

struct Fixture {
    clock: Arc<SettableClock>,
    scheduling: Scheduling,
}

async fn fixture(now: &str, campaigns: &[Campaign]) -> Fixture {
    let clock = Arc::new(SettableClock::starting_at(at(now)));
    let shared: SharedClock = clock.clone();
    let scheduling = Scheduling::load(Arc::new(MemoryCampaignStore::new()), shared)
        .await
        .unwrap();
    for campaign in campaigns {
        scheduling.upsert_campaign(campaign.clone()).await.unwrap();
    }
    Fixture { clock, scheduling }
}

fn born(birth_date: &str) -> Applicant {
    Applicant {
        birth_date: date(birth_date),
        person_key: platform::ids::PersonKey::parse("pk-test").unwrap(),
    }
}

/// (eligible, campaign id or "", reason or "")
fn answer(
    fixture: &Fixture,
    campaign_id: Option<&str>,
    birth_date: &str,
) -> (bool, String, &'static str) {
    let decision = fixture
        .scheduling
        .check_eligibility(campaign_id, &born(birth_date), Approach::default())
        .unwrap();
    (
        decision.is_eligible(),
        decision
            .campaign
            .as_ref()
            .map(|campaign| campaign.id.as_str().to_owned())
            .unwrap_or_default(),
        decision.ineligible.map_or("", IneligibleReason::as_str),
    )
}

const ROUND: &str = "covid19-18-49";
const SENIORS: &str = "covid19-60-plus";

#[tokio::test]
async fn inside_the_window_a_person_in_the_age_group_may_book() {
    let fixture = fixture("2021-08-13T20:30:00+09:00", &[round_18_49()]).await;
    let decision = fixture
        .scheduling
        .check_eligibility(None, &born("1990-05-05"), Approach::default())
        .unwrap();
    assert!(decision.is_eligible());
    let campaign = decision.campaign.unwrap();
    assert_eq!(*campaign, round_18_49().with_version(1));
    let window = decision.window.unwrap();
    assert_eq!(window.opens_at(), at("2021-08-09T20:00:00+09:00"));
    assert_eq!(window.closes_at(), at("2021-09-18T18:00:00+09:00"));
    assert_eq!(
        answer(&fixture, Some(ROUND), "1990-05-05"),
        (true, ROUND.to_owned(), "")
    );
}

#[tokio::test]
async fn before_the_window_opens_it_is_not_open_yet_and_then_it_opens() {
    let fixture = fixture("2021-08-09T19:59:00+09:00", &[round_18_49()]).await;
    assert_eq!(
        answer(&fixture, None, "1990-05-05"),
        (false, ROUND.to_owned(), "window-not-open")
    );
    fixture.clock.set(at("2021-08-09T20:00:00+09:00"));
    assert_eq!(
        answer(&fixture, None, "1990-05-05"),
        (true, ROUND.to_owned(), "")
    );
}

#[tokio::test]
async fn from_the_closing_instant_on_it_is_closed() {
    let fixture = fixture("2021-09-18T17:59:00+09:00", &[round_18_49()]).await;
    assert_eq!(
        answer(&fixture, None, "1990-05-05"),
        (true, ROUND.to_owned(), "")
    );
    fixture.clock.set(at("2021-09-18T18:00:00+09:00"));
    assert_eq!(
        answer(&fixture, None, "1990-05-05"),
        (false, ROUND.to_owned(), "campaign-closed")
    );
    fixture.clock.set(at("2022-01-01T00:00:00+09:00"));
    assert_eq!(
        answer(&fixture, Some(ROUND), "1990-05-05"),
        (false, ROUND.to_owned(), "campaign-closed")
    );
}

#[tokio::test]
async fn outside_the_age_group_is_not_in_age_group() {
    let fixture = fixture("2021-08-13T20:30:00+09:00", &[round_18_49()]).await;
    for birth_date in ["1960-06-15", "2004-01-01", "1971-12-31"] {
        assert_eq!(
            answer(&fixture, None, birth_date),
            (false, String::new(), "not-in-age-group"),
            "{birth_date}"
        );
        assert_eq!(
            answer(&fixture, Some(ROUND), birth_date),
            (false, ROUND.to_owned(), "not-in-age-group"),
            "{birth_date} asking for the round"
        );
    }
}

#[tokio::test]
async fn the_first_and_last_birth_dates_of_the_group_are_eligible() {
    let fixture = fixture("2021-08-13T20:30:00+09:00", &[round_18_49()]).await;
    for birth_date in ["1972-01-01", "2003-12-31"] {
        assert_eq!(
            answer(&fixture, None, birth_date),
            (true, ROUND.to_owned(), ""),
            "{birth_date}"
        );
    }
}

#[tokio::test]
async fn with_two_rounds_running_each_person_gets_their_own() {
    let fixture = fixture(
        "2021-08-13T20:30:00+09:00",
        &[round_18_49(), round_60_plus()],
    )
    .await;
    assert_eq!(
        answer(&fixture, None, "1955-03-01"),
        (true, SENIORS.to_owned(), "")
    );
    assert_eq!(
        answer(&fixture, None, "1961-12-31"),
        (true, SENIORS.to_owned(), "")
    );
    assert_eq!(
        answer(&fixture, None, "1990-05-05"),
        (true, ROUND.to_owned(), "")
    );
    // Born in 1965: neither group.
    assert_eq!(
        answer(&fixture, None, "1965-07-07"),
        (false, String::new(), "not-in-age-group")
    );
    // Asking about the other group's campaign answers for that campaign.
    assert_eq!(
        answer(&fixture, Some(SENIORS), "1990-05-05"),
        (false, SENIORS.to_owned(), "not-in-age-group")
    );
}

#[tokio::test]
async fn among_rounds_for_the_same_group_open_beats_upcoming_beats_closed() {
    let catch_up = catch_up_18_49();
    let catch_up_id = catch_up.id.as_str().to_owned();
    let fixture = fixture("2021-08-01T12:00:00+09:00", &[round_18_49(), catch_up]).await;
    // Both in the future: the one opening soonest.
    assert_eq!(
        answer(&fixture, None, "1990-05-05"),
        (false, ROUND.to_owned(), "window-not-open")
    );
    // The main round open, the catch-up upcoming: the open one.
    fixture.clock.set(at("2021-09-01T12:00:00+09:00"));
    assert_eq!(
        answer(&fixture, None, "1990-05-05"),
        (true, ROUND.to_owned(), "")
    );
    // The main round closed, the catch-up upcoming: the upcoming one.
    fixture.clock.set(at("2021-09-25T12:00:00+09:00"));
    assert_eq!(
        answer(&fixture, None, "1990-05-05"),
        (false, catch_up_id.clone(), "window-not-open")
    );
    fixture.clock.set(at("2021-10-05T12:00:00+09:00"));
    assert_eq!(
        answer(&fixture, None, "1990-05-05"),
        (true, catch_up_id.clone(), "")
    );
    // Both closed: the one that closed most recently.
    fixture.clock.set(at("2021-11-01T12:00:00+09:00"));
    assert_eq!(
        answer(&fixture, None, "1990-05-05"),
        (false, catch_up_id, "campaign-closed")
    );
}

#[tokio::test]
async fn without_campaigns_the_reason_is_no_campaign() {
    let fixture = fixture("2021-08-13T20:30:00+09:00", &[]).await;
    assert_eq!(
        answer(&fixture, None, "1990-05-05"),
        (false, String::new(), "no-campaign")
    );
}

#[tokio::test]
async fn an_unknown_campaign_is_not_found() {
    let fixture = fixture("2021-08-13T20:30:00+09:00", &[round_18_49()]).await;
    let outcome = fixture.scheduling.check_eligibility(
        Some("covid19-unknown"),
        &born("1990-05-05"),
        Approach::default(),
    );
    assert!(matches!(outcome, Err(SchedulingError::CampaignNotFound)));
    assert!(matches!(
        fixture.scheduling.get_campaign("covid19-unknown"),
        Err(SchedulingError::CampaignNotFound)
    ));
}

#[tokio::test]
async fn checks_are_counted_by_outcome_and_reason() {
    let handle = platform::metrics::handle();
    let fixture = fixture("2021-08-09T19:00:00+09:00", &[round_18_49()]).await;
    answer(&fixture, None, "1990-05-05");
    fixture.clock.set(at("2021-08-13T20:30:00+09:00"));
    answer(&fixture, None, "1990-05-05");
    let rendered = handle.render();
    let counted = |eligible: &str, reason: &str| {
        rendered.lines().any(|line| {
            line.starts_with("scheduling_eligibility_checks_total{")
                && line.contains(&format!("eligible=\"{eligible}\""))
                && line.contains(&format!("reason=\"{reason}\""))
        })
    };
    assert!(counted("false", "window-not-open"), "{rendered}");
    assert!(counted("true", "none"), "{rendered}");
}
