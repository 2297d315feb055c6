//! A server whose local time zone is UTC (or anything else) answers exactly as one in Korea:
//! the rules read instants and Korean dates, never the process's local time. The outer test
//! runs the inner one in child processes of this binary under different `TZ` values and
//! compares what they answered.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use platform::ids::PersonKey;
use scheduling_svc::eligibility::{Applicant, Approach};

const INNER: &str = "answers_under_the_current_time_zone";

/// Prints one `ANSWER` line per (moment, birth date); run by the outer test.
#[tokio::test]
#[ignore = "run by the_time_zone_of_the_server_changes_no_answer under each TZ"]
async fn answers_under_the_current_time_zone() {
    let moments = [
        "2021-08-09T19:59:59.999+09:00",
        "2021-08-09T20:00:00+09:00",
        "2021-08-10T08:59:59.999+09:00",
        "2021-08-10T09:00:00+09:00",
        "2021-08-10T17:59:59.999+09:00",
        "2021-08-10T18:00:00+09:00",
        "2021-08-13T20:30:00+09:00",
    ];
    let births = [
        "1990-05-09",
        "1990-05-10",
        "1990-05-13",
        "1988-02-29",
        "1955-01-01",
    ];
    let (clock, scheduling) = scheduling_2021(moments[0]).await;
    for moment in moments {
        clock.set(at(moment));
        for birth in births {
            let answer = scheduling
                .check_eligibility(
                    None,
                    &Applicant {
                        birth_date: date(birth),
                        person_key: PersonKey::parse("pk-tz").unwrap(),
                    },
                    Approach::default(),
                )
                .unwrap();
            println!(
                "ANSWER {moment} {birth} {} {:?}",
                answer
                    .ineligible
                    .map_or("eligible", |reason| reason.as_str()),
                answer.window.map(|window| window.opens_at())
            );
        }
    }
}

fn answers_under(zone: &str) -> Vec<String> {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            INNER,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TZ", zone)
        .output()
        .unwrap();
    assert!(output.status.success(), "TZ={zone}: {output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        // libtest may print its own "test … " prefix on the first line.
        .filter_map(|line| line.find("ANSWER ").map(|start| line[start..].to_owned()))
        .collect()
}

#[test]
fn the_time_zone_of_the_server_changes_no_answer() {
    let korea = answers_under("Asia/Seoul");
    assert_eq!(korea.len(), 35, "{korea:#?}");
    // Born on the 9th: not yet at 19:59:59.999, open at 20:00.
    assert!(
        korea[0].ends_with("window-not-open Some(2021-08-09T11:00:00Z)"),
        "{}",
        korea[0]
    );
    assert!(korea[5].contains(" 1990-05-09 eligible "), "{}", korea[5]);
    // Born on the 10th at 10 Aug 09:00 KST (00:00 UTC, already the 10th in UTC): not yet.
    assert!(
        korea[16].contains(" 1990-05-10 window-not-open "),
        "{}",
        korea[16]
    );
    for zone in ["UTC", "America/Los_Angeles", "Pacific/Kiritimati"] {
        assert_eq!(answers_under(zone), korea, "answers under TZ={zone}");
    }
}
