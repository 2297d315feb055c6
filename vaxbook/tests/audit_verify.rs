//! `vaxbook audit verify` against a real PostgreSQL trail: it passes on an untouched log and
//! exits non-zero naming the entry an operator altered directly in the database.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use chrono::{TimeZone, Utc};
use platform::audit::{AuditLog as _, AuditRecord, PgAuditLog};

fn verify(url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vaxbook"))
        .args(["audit", "verify", "--log", "booking", "--database-url", url])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

#[tokio::test]
async fn passes_on_an_untouched_log_and_pinpoints_an_altered_entry() {
    let url = platform::pg::create_test_database("audit_verify_cli")
        .await
        .unwrap();
    let pool = platform::pg::pool(&url, 2).unwrap();
    let trail = PgAuditLog::migrate(&url, pool.clone()).await.unwrap();
    for (minute, outcome) in [(0, "ok"), (1, "caller-not-verified"), (2, "ok")] {
        trail
            .append(
                Utc.with_ymd_and_hms(2021, 8, 9, 2, minute, 0).unwrap(),
                AuditRecord {
                    actor: "agent-kim".to_owned(),
                    organisation: "national-call-center".to_owned(),
                    role: "agent".to_owned(),
                    action: "staff.book".to_owned(),
                    person_key: Some("person-key".to_owned()),
                    outcome: outcome.to_owned(),
                },
            )
            .await
            .unwrap();
    }

    let intact = verify(&url);
    assert!(intact.status.success(), "{intact:?}");
    assert!(String::from_utf8_lossy(&intact.stdout).contains("3 entries"));

    pool.get()
        .await
        .unwrap()
        .batch_execute(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update; \
             UPDATE audit_log SET outcome = 'ok' WHERE seq = 2; \
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;",
        )
        .await
        .unwrap();
    let broken = verify(&url);
    assert!(!broken.status.success());
    let said = String::from_utf8_lossy(&broken.stderr);
    assert!(said.contains("broken at entry 2"), "{said}");
}
