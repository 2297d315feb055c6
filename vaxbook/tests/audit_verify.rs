//! `vaxbook audit verify --log …` against real PostgreSQL trails: on a database booking-svc and
//! scheduling-svc share, each trail is checked on its own — it passes on an untouched trail,
//! exits non-zero naming the entry an operator altered directly in the database, and the other
//! trail's entries neither count nor break it.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use chrono::{TimeZone, Utc};
use platform::audit::{AuditLog as _, AuditRecord, BOOKING_TRAIL, PgAuditLog, SCHEDULING_TRAIL};

fn verify(log: &str, url: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vaxbook"));
    command.args(["audit", "verify", "--log", log]);
    if let Some(url) = url {
        command.args(["--database-url", url]);
    }
    command
        .env("RUST_BACKTRACE", "0")
        .env_remove("DATABASE_URL")
        .env_remove("AUTH_DATABASE_URL")
        .output()
        .unwrap()
}

fn said(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn entry(minute: u32, action: &str, outcome: &str) -> (chrono::DateTime<Utc>, AuditRecord) {
    (
        Utc.with_ymd_and_hms(2021, 8, 9, 2, minute, 0).unwrap(),
        AuditRecord {
            actor: "agent-kim".to_owned(),
            organisation: "national-call-center".to_owned(),
            role: "agent".to_owned(),
            action: action.to_owned(),
            person_key: Some("person-key".to_owned()),
            outcome: outcome.to_owned(),
        },
    )
}

#[tokio::test]
async fn each_trail_of_a_shared_database_passes_untouched_and_pinpoints_its_altered_entry() {
    let url = platform::pg::create_test_database("audit_verify_cli")
        .await
        .unwrap();
    let pool = platform::pg::pool(&url, 2).unwrap();
    let booking = PgAuditLog::migrate(&url, pool.clone(), BOOKING_TRAIL)
        .await
        .unwrap();
    let scheduling = PgAuditLog::migrate(&url, pool.clone(), SCHEDULING_TRAIL)
        .await
        .unwrap();
    for (minute, outcome) in [(0, "ok"), (1, "caller-not-verified"), (2, "ok")] {
        let (at, record) = entry(minute, "staff.book", outcome);
        booking.append(at, record).await.unwrap();
        let (at, record) = entry(minute, "admin.upsert-campaign", "ok");
        scheduling.append(at, record).await.unwrap();
    }
    let (at, record) = entry(3, "admin.replace-exclusions", "ok");
    scheduling.append(at, record).await.unwrap();

    for (log, count) in [("booking", "3 entries"), ("scheduling", "4 entries")] {
        let intact = verify(log, Some(&url));
        assert!(intact.status.success(), "{}", said(&intact));
        let shown = String::from_utf8_lossy(&intact.stdout);
        assert!(shown.contains("audit trail intact"), "{shown}");
        assert!(shown.contains(count), "{log}: {shown}");
        assert!(shown.contains(&format!("(trail {log})")), "{shown}");
    }
    // Nothing in this database is auth-svc's or from before trails had names.
    for log in ["auth", "legacy"] {
        let empty = verify(log, Some(&url));
        assert!(empty.status.success(), "{}", said(&empty));
        assert!(said(&empty).contains("0 entries"), "{}", said(&empty));
    }

    pool.get()
        .await
        .unwrap()
        .batch_execute(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update; \
             UPDATE audit_log SET outcome = 'ok' WHERE trail = 'booking' AND seq = 2; \
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;",
        )
        .await
        .unwrap();
    let broken = verify("booking", Some(&url));
    assert!(!broken.status.success());
    let shown = String::from_utf8_lossy(&broken.stderr);
    assert!(
        shown.contains("booking audit trail is broken at entry 2"),
        "{shown}"
    );
    let untouched = verify("scheduling", Some(&url));
    assert!(untouched.status.success(), "{}", said(&untouched));
    assert!(
        said(&untouched).contains("4 entries"),
        "{}",
        said(&untouched)
    );

    // scheduling-svc's entry 4 moved into booking-svc's trail, where it would follow on in seq.
    pool.get()
        .await
        .unwrap()
        .batch_execute(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update; \
             UPDATE audit_log SET outcome = 'caller-not-verified' WHERE trail = 'booking' AND seq = 2; \
             UPDATE audit_log SET trail = 'booking' WHERE trail = 'scheduling' AND seq = 4; \
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;",
        )
        .await
        .unwrap();
    let moved = verify("booking", Some(&url));
    assert!(!moved.status.success());
    assert!(
        said(&moved).contains("broken at entry 4"),
        "{}",
        said(&moved)
    );
}

#[test]
fn the_legacy_trail_needs_its_database_named_and_scheduling_reads_database_url() {
    let legacy = verify("legacy", None);
    assert!(!legacy.status.success());
    assert!(
        said(&legacy).contains("give --database-url for --log legacy"),
        "{}",
        said(&legacy)
    );
    let scheduling = verify("scheduling", None);
    assert!(!scheduling.status.success());
    assert!(
        said(&scheduling).contains("set DATABASE_URL"),
        "{}",
        said(&scheduling)
    );
}
