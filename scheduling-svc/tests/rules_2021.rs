//! The August 2021 rules, answered from the shipped campaign file with the clock set: the
//! rotation boundaries to the millisecond, every birth day that maps to a window day, each of
//! the ten rotation days, both catch-up windows with the first and last birth year of each
//! band, the open window and the end, the 60+ round's proxy deadline and call-center channel,
//! exclusions, the supply release schedule and the person's upcoming windows.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use platform::ids::PersonKey;
use scheduling_svc::domain::Channel;
use scheduling_svc::eligibility::{Applicant, Approach};

/// (eligible, campaign id, reason, opens_at, closes_at) with instants in RFC 3339 KST.
type Answer = (bool, String, &'static str, String, String);

fn kst(instant: chrono::DateTime<chrono::Utc>) -> String {
    instant
        .with_timezone(&chrono_tz::Asia::Seoul)
        .format("%Y-%m-%dT%H:%M:%S%.3f")
        .to_string()
}

fn ask(
    scheduling: &scheduling_svc::Scheduling,
    birth_date: &str,
    person_key: &str,
    approach: Approach,
) -> Answer {
    let applicant = Applicant {
        birth_date: date(birth_date),
        person_key: PersonKey::parse(person_key).unwrap(),
    };
    let answer = scheduling
        .check_eligibility(None, &applicant, approach)
        .unwrap();
    (
        answer.is_eligible(),
        answer
            .campaign
            .as_ref()
            .map(|campaign| campaign.id.as_str().to_owned())
            .unwrap_or_default(),
        answer.ineligible.map_or("", |reason| reason.as_str()),
        answer
            .window
            .as_ref()
            .map(|window| kst(window.opens_at()))
            .unwrap_or_default(),
        answer
            .window
            .as_ref()
            .map(|window| kst(window.closes_at()))
            .unwrap_or_default(),
    )
}

fn web(scheduling: &scheduling_svc::Scheduling, birth_date: &str) -> Answer {
    ask(scheduling, birth_date, "pk-someone", Approach::default())
}

fn eligible(opens: &str, closes: &str) -> Answer {
    (
        true,
        ROUND_2021.to_owned(),
        "",
        opens.to_owned(),
        closes.to_owned(),
    )
}

fn not_open(opens: &str, closes: &str) -> Answer {
    (
        false,
        ROUND_2021.to_owned(),
        "window-not-open",
        opens.to_owned(),
        closes.to_owned(),
    )
}

/// The rotation window day (in August) of a birth day ending in `digit`.
fn rotation_day(digit: u32) -> u32 {
    if digit == 9 { 9 } else { 10 + digit }
}

#[tokio::test]
async fn a_rotation_window_opens_at_20_00_and_closes_at_18_00_the_next_day() {
    let (clock, scheduling) = scheduling_2021("2021-08-13T19:59:59.999+09:00").await;
    // Born on the 13th: the window of 13 Aug.
    assert_eq!(
        web(&scheduling, "1990-05-13"),
        not_open("2021-08-13T20:00:00.000", "2021-08-14T18:00:00.000")
    );
    clock.set(at("2021-08-13T20:00:00+09:00"));
    assert_eq!(
        web(&scheduling, "1990-05-13"),
        eligible("2021-08-13T20:00:00.000", "2021-08-14T18:00:00.000")
    );
    clock.set(at("2021-08-14T17:59:59.999+09:00"));
    assert_eq!(
        web(&scheduling, "1990-05-13"),
        eligible("2021-08-13T20:00:00.000", "2021-08-14T18:00:00.000")
    );
    // Closed: the next window is the band's catch-up day (born 1990: ages 18-35).
    clock.set(at("2021-08-14T18:00:00+09:00"));
    assert_eq!(
        web(&scheduling, "1990-05-13"),
        not_open("2021-08-20T20:00:00.000", "2021-08-21T18:00:00.000")
    );
}

#[tokio::test]
async fn birth_days_ending_alike_share_a_window_day() {
    let cases = [
        ("1990-03-09", 9),
        ("1990-03-10", 10),
        ("1990-03-19", 9),
        ("1990-03-20", 10),
        ("1990-03-29", 9),
        ("1990-03-30", 10),
        ("1990-03-31", 11),
        ("1988-02-29", 9),
    ];
    let (clock, scheduling) = scheduling_2021("2021-08-01T00:00:00+09:00").await;
    for (birth_date, day) in cases {
        let opens = format!("2021-08-{day:02}T20:00:00.000");
        let closes = format!("2021-08-{:02}T18:00:00.000", day + 1);
        clock.set(at(&format!("2021-08-{day:02}T19:59:59.999+09:00")));
        assert_eq!(
            web(&scheduling, birth_date),
            not_open(&opens, &closes),
            "{birth_date}"
        );
        clock.set(at(&format!("2021-08-{day:02}T20:00:00+09:00")));
        assert_eq!(
            web(&scheduling, birth_date),
            eligible(&opens, &closes),
            "{birth_date}"
        );
    }
}

#[tokio::test]
async fn each_of_the_ten_rotation_days_opens_for_its_digit_only() {
    let (clock, scheduling) = scheduling_2021("2021-08-01T00:00:00+09:00").await;
    for digit in 0..10 {
        let day = rotation_day(digit);
        clock.set(at(&format!("2021-08-{day:02}T20:30:00+09:00")));
        for other in 0..10 {
            // Born on the 1st..9th or the 10th/20th for digit 0.
            let birth_date = if other == 0 {
                "1995-06-20".to_owned()
            } else {
                format!("1995-06-{other:02}")
            };
            let answer = web(&scheduling, &birth_date);
            if other == digit {
                assert_eq!(
                    answer,
                    eligible(
                        &format!("2021-08-{day:02}T20:00:00.000"),
                        &format!("2021-08-{:02}T18:00:00.000", day + 1)
                    ),
                    "day {day}, born {birth_date}"
                );
            } else {
                assert_eq!(answer.2, "window-not-open", "day {day}, born {birth_date}");
            }
        }
    }
}

#[tokio::test]
async fn the_catch_up_windows_are_by_band_with_both_ends_of_each_band() {
    let (clock, scheduling) = scheduling_2021("2021-08-19T19:59:59.999+09:00").await;
    let older = ["1972-01-01", "1985-12-31"];
    let younger = ["1986-01-01", "2003-12-31"];
    let older_window = ("2021-08-19T20:00:00.000", "2021-08-20T18:00:00.000");
    let younger_window = ("2021-08-20T20:00:00.000", "2021-08-21T18:00:00.000");
    let open_window = ("2021-08-21T20:00:00.000", "2021-09-18T18:00:00.000");
    for birth_date in older {
        assert_eq!(
            web(&scheduling, birth_date),
            not_open(older_window.0, older_window.1)
        );
    }
    clock.set(at("2021-08-19T20:00:00+09:00"));
    for birth_date in older {
        assert_eq!(
            web(&scheduling, birth_date),
            eligible(older_window.0, older_window.1),
            "{birth_date}"
        );
    }
    for birth_date in younger {
        assert_eq!(
            web(&scheduling, birth_date),
            not_open(younger_window.0, younger_window.1),
            "{birth_date}"
        );
    }
    clock.set(at("2021-08-20T17:59:59.999+09:00"));
    assert!(web(&scheduling, older[1]).0);
    clock.set(at("2021-08-20T18:00:00+09:00"));
    assert_eq!(
        web(&scheduling, older[0]),
        not_open(open_window.0, open_window.1)
    );
    clock.set(at("2021-08-20T20:00:00+09:00"));
    for birth_date in younger {
        assert_eq!(
            web(&scheduling, birth_date),
            eligible(younger_window.0, younger_window.1),
            "{birth_date}"
        );
    }
    for birth_date in older {
        assert_eq!(web(&scheduling, birth_date).2, "window-not-open");
    }
    clock.set(at("2021-08-21T18:00:00+09:00"));
    for birth_date in older.iter().chain(&younger) {
        assert_eq!(
            web(&scheduling, birth_date),
            not_open(open_window.0, open_window.1)
        );
    }
}

#[tokio::test]
async fn the_open_window_takes_everyone_until_18_september_18_00() {
    let (clock, scheduling) = scheduling_2021("2021-08-21T20:00:00+09:00").await;
    let open = ("2021-08-21T20:00:00.000", "2021-09-18T18:00:00.000");
    for birth_date in ["1972-01-01", "1980-07-19", "1999-11-30", "2003-12-31"] {
        assert_eq!(
            web(&scheduling, birth_date),
            eligible(open.0, open.1),
            "{birth_date}"
        );
    }
    clock.set(at("2021-09-18T17:59:59.999+09:00"));
    assert!(web(&scheduling, "1990-05-13").0);
    clock.set(at("2021-09-18T18:00:00+09:00"));
    assert_eq!(
        web(&scheduling, "1990-05-13"),
        (
            false,
            ROUND_2021.to_owned(),
            "campaign-closed",
            open.0.to_owned(),
            open.1.to_owned()
        )
    );
}

#[tokio::test]
async fn outside_both_age_groups_is_not_in_age_group() {
    let (_, scheduling) = scheduling_2021("2021-08-13T20:30:00+09:00").await;
    for birth_date in ["1962-01-01", "1971-12-31", "2004-01-01", "1899-12-31"] {
        assert_eq!(
            web(&scheduling, birth_date),
            (
                false,
                String::new(),
                "not-in-age-group",
                String::new(),
                String::new()
            ),
            "{birth_date}"
        );
    }
}

#[tokio::test]
async fn proxies_for_the_60_plus_round_end_at_9_august_18_00() {
    let (clock, scheduling) = scheduling_2021("2021-08-09T17:59:59+09:00").await;
    let proxy = Approach {
        channel: Channel::Web,
        proxy: true,
    };
    let senior = "1950-03-03";
    let open = ("2021-07-19T20:00:00.000", "2021-09-18T18:00:00.000");
    assert_eq!(
        ask(&scheduling, senior, "pk-senior", proxy),
        (
            true,
            SENIORS_2021.to_owned(),
            "",
            open.0.to_owned(),
            open.1.to_owned()
        )
    );
    clock.set(at("2021-08-09T18:00:00+09:00"));
    assert_eq!(
        ask(&scheduling, senior, "pk-senior", proxy).2,
        "proxy-not-allowed"
    );
    // The person themselves still may, on the web or through a call center.
    assert!(web(&scheduling, senior).0);
    let call_center = Approach {
        channel: Channel::CallCenter,
        proxy: false,
    };
    assert!(ask(&scheduling, senior, "pk-senior", call_center).0);
    // The answer carries the deadline for the caller to show.
    let applicant = Applicant {
        birth_date: date(senior),
        person_key: PersonKey::parse("pk-senior").unwrap(),
    };
    let answer = scheduling
        .check_eligibility(None, &applicant, proxy)
        .unwrap();
    assert_eq!(
        answer.campaign.unwrap().proxy_deadline,
        Some(at("2021-08-09T18:00:00+09:00"))
    );
    // The 18-49 round never takes proxies.
    clock.set(at("2021-08-13T20:30:00+09:00"));
    assert_eq!(
        ask(&scheduling, "1990-05-13", "pk-young", proxy).2,
        "proxy-not-allowed"
    );
}

#[tokio::test]
async fn the_18_49_round_is_web_only() {
    let (_, scheduling) = scheduling_2021("2021-08-13T20:30:00+09:00").await;
    let call_center = Approach {
        channel: Channel::CallCenter,
        proxy: false,
    };
    let answer = ask(&scheduling, "1990-05-13", "pk-young", call_center);
    assert_eq!(answer.2, "channel-not-allowed");
    assert_eq!(answer.3, "2021-08-13T20:00:00.000");
}

#[tokio::test]
async fn an_excluded_person_is_refused_while_others_born_the_same_day_may_book() {
    let (_, scheduling) = scheduling_2021("2021-08-13T20:30:00+09:00").await;
    let round = scheduling_svc::domain::CampaignId::parse(ROUND_2021).unwrap();
    let (version, entries) = scheduling
        .replace_exclusions(
            &round,
            vec!["pk-priority".to_owned(), "pk-priority".to_owned()],
        )
        .await
        .unwrap();
    assert_eq!((version, entries), (1, 1));
    let excluded = ask(
        &scheduling,
        "1990-05-13",
        "pk-priority",
        Approach::default(),
    );
    assert_eq!(
        (excluded.0, excluded.2),
        (false, "excluded-priority-target")
    );
    assert!(
        ask(
            &scheduling,
            "1990-05-13",
            "pk-neighbour",
            Approach::default()
        )
        .0
    );
    // A new list replaces the old one whole.
    scheduling
        .replace_exclusions(&round, vec!["pk-neighbour".to_owned()])
        .await
        .unwrap();
    assert!(
        ask(
            &scheduling,
            "1990-05-13",
            "pk-priority",
            Approach::default()
        )
        .0
    );
    assert_eq!(
        ask(
            &scheduling,
            "1990-05-13",
            "pk-neighbour",
            Approach::default()
        )
        .2,
        "excluded-priority-target"
    );
    // Lists are per campaign.
    assert!(scheduling.is_excluded(ROUND_2021, "pk-neighbour"));
    assert!(!scheduling.is_excluded(SENIORS_2021, "pk-neighbour"));
}

#[tokio::test]
async fn supply_is_released_a_tenth_per_rotation_day() {
    let (_, scheduling) = scheduling_2021("2021-08-13T20:30:00+09:00").await;
    let round = scheduling.get_campaign(ROUND_2021).unwrap();
    let steps: Vec<(String, u32)> = round
        .supply
        .iter()
        .map(|step| (kst(step.at), step.released_bp))
        .collect();
    let expected: Vec<(String, u32)> = (0..10)
        .map(|index| {
            (
                format!("2021-08-{:02}T20:00:00.000", 9 + index),
                1_000 * (index + 1),
            )
        })
        .collect();
    assert_eq!(steps, expected);
    let seniors = scheduling.get_campaign(SENIORS_2021).unwrap();
    assert_eq!(seniors.supply.len(), 1);
    assert_eq!(seniors.supply[0].released_bp, 10_000);
}

#[tokio::test]
async fn upcoming_windows_are_listed_in_every_campaign() {
    let (_, scheduling) = scheduling_2021("2021-08-13T20:30:00+09:00").await;
    let key = PersonKey::parse("pk-someone").unwrap();
    let listed = |birth_date: &str| -> Vec<(String, String, bool)> {
        scheduling
            .list_windows(date(birth_date), &key, None)
            .iter()
            .map(|entry| {
                (
                    entry.window.id.as_str().to_owned(),
                    kst(entry.window.opens_at()),
                    entry.open_now,
                )
            })
            .collect()
    };
    let entry = |id: &str, opens: &str, open_now| (id.to_owned(), opens.to_owned(), open_now);
    assert_eq!(
        listed("1990-05-15"),
        vec![
            entry("rotation-15", "2021-08-15T20:00:00.000", false),
            entry("catch-up-18-35", "2021-08-20T20:00:00.000", false),
            entry("open", "2021-08-21T20:00:00.000", false),
        ]
    );
    assert_eq!(
        listed("1980-05-13"),
        vec![
            entry("rotation-13", "2021-08-13T20:00:00.000", true),
            entry("catch-up-36-49", "2021-08-19T20:00:00.000", false),
            entry("open", "2021-08-21T20:00:00.000", false),
        ]
    );
    // Past windows are gone; another campaign's window shows up for its own people.
    assert_eq!(
        listed("1990-05-11"),
        vec![
            entry("catch-up-18-35", "2021-08-20T20:00:00.000", false),
            entry("open", "2021-08-21T20:00:00.000", false),
        ]
    );
    assert_eq!(
        listed("1950-01-01"),
        vec![entry("open", "2021-07-19T20:00:00.000", true)]
    );
    assert!(listed("1965-01-01").is_empty());
    // Call-center windows only, when asked.
    assert!(
        scheduling
            .list_windows(date("1990-05-15"), &key, Some(Channel::CallCenter))
            .is_empty()
    );
}
