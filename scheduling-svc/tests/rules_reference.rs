//! A property: for any birth date, instant, channel and proxy flag, the service's answer from
//! the shipped 2021 campaign file equals a plain reference implementation of the August 2021
//! rules (docs/domain.md R1, R5, R6) written here from the rules' text, not from the code.

#![allow(clippy::unwrap_used)]

mod common;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Seoul;
use common::*;
use platform::ids::PersonKey;
use proptest::prelude::*;
use scheduling_svc::domain::Channel;
use scheduling_svc::eligibility::{Applicant, Approach};

fn kst(month: u32, day: u32, hour: u32) -> DateTime<Utc> {
    Seoul
        .with_ymd_and_hms(2021, month, day, hour, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// (campaign, reason or "", window opens, window closes).
type Expected = (
    &'static str,
    &'static str,
    Option<(DateTime<Utc>, DateTime<Utc>)>,
);

/// The rules of August 2021, as the domain text states them.
fn reference(birth: NaiveDate, now: DateTime<Utc>, channel: Channel, proxy: bool) -> Expected {
    let born = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let end = kst(9, 18, 18);
    if birth >= born(1972, 1, 1) && birth <= born(2003, 12, 31) {
        // The window day ends in the birth day's last digit: 9 Aug ... 18 Aug.
        let digit = birth.day() % 10;
        let day = if digit == 9 { 9 } else { 10 + digit };
        let rotation = (kst(8, day, 20), kst(8, day + 1, 18));
        let catch_up = if birth.year() <= 1985 {
            (kst(8, 19, 20), kst(8, 20, 18))
        } else {
            (kst(8, 20, 20), kst(8, 21, 18))
        };
        let open = (kst(8, 21, 20), end);
        let windows = [rotation, catch_up, open];
        if now >= end {
            return ("covid19-2021-18-49", "campaign-closed", Some(open));
        }
        let current = windows.iter().find(|(from, to)| *from <= now && now < *to);
        let next = windows.iter().find(|(from, _)| now < *from);
        let window = current.or(next).copied();
        let reason = if proxy {
            "proxy-not-allowed"
        } else if current.is_none() {
            "window-not-open"
        } else if channel != Channel::Web {
            "channel-not-allowed"
        } else {
            ""
        };
        return ("covid19-2021-18-49", reason, window);
    }
    if birth >= born(1900, 1, 1) && birth <= born(1961, 12, 31) {
        let open = (kst(7, 19, 20), end);
        let reason = if now >= end {
            "campaign-closed"
        } else if proxy && now >= kst(8, 9, 18) {
            "proxy-not-allowed"
        } else if now < open.0 {
            "window-not-open"
        } else {
            ""
        };
        return ("covid19-2021-60-plus", reason, Some(open));
    }
    ("", "not-in-age-group", None)
}

fn birth_dates() -> impl Strategy<Value = NaiveDate> {
    let first = NaiveDate::from_ymd_opt(1890, 1, 1).unwrap();
    (0i64..(120 * 366)).prop_map(move |days| first + chrono::Duration::days(days))
}

fn instants() -> impl Strategy<Value = DateTime<Utc>> {
    let first = kst(7, 1, 0);
    // July to the end of September, to the millisecond; a quarter of the draws land within a
    // second of 18:00 or 20:00 KST on some day, where the rules turn.
    let anywhere =
        (0i64..(92 * 86_400_000)).prop_map(move |ms| first + chrono::Duration::milliseconds(ms));
    let near_edges = (
        0i64..92,
        prop_oneof![Just(18u32), Just(20u32)],
        -1_000i64..1_000,
    )
        .prop_map(move |(day, hour, ms)| {
            first
                + chrono::Duration::days(day)
                + chrono::Duration::hours(i64::from(hour))
                + chrono::Duration::milliseconds(ms)
        });
    prop_oneof![3 => anywhere, 1 => near_edges]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    #[test]
    fn the_service_answers_as_the_rules_say(
        birth in birth_dates(),
        now in instants(),
        call_center in any::<bool>(),
        proxy in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        thread_local! {
            static SERVICE: std::cell::OnceCell<(
                std::sync::Arc<FrozenClock>,
                std::sync::Arc<scheduling_svc::Scheduling>,
            )> = const { std::cell::OnceCell::new() };
        }
        let (clock, scheduling) = SERVICE.with(|cell| {
            cell.get_or_init(|| runtime.block_on(scheduling_2021("2021-08-01T00:00:00+09:00")))
                .clone()
        });
        clock.set(now);
        let channel = if call_center { Channel::CallCenter } else { Channel::Web };
        let answer = scheduling
            .check_eligibility(
                None,
                &Applicant { birth_date: birth, person_key: PersonKey::parse("pk-p").unwrap() },
                Approach { channel, proxy },
            )
            .unwrap();
        let got: Expected = (
            answer.campaign.as_ref().map_or("", |campaign| {
                if campaign.id.as_str() == ROUND_2021 { "covid19-2021-18-49" } else { "covid19-2021-60-plus" }
            }),
            answer.ineligible.map_or("", |reason| reason.as_str()),
            answer.window.as_ref().map(|window| (window.opens_at(), window.closes_at())),
        );
        prop_assert_eq!(got, reference(birth, now, channel, proxy), "born {} at {}", birth, now);
    }
}
