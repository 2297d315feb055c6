//! The audit trail against real PostgreSQL: appends chain, UPDATE and DELETE are refused by the
//! table, and an entry altered behind the trigger's back is pinpointed by the chain check.

use chrono::Utc;
use vaxbook_platform::audit::{
    AuditLog, AuditQuery, AuditRecord, ChainBreak, PgAuditLog, verify_log,
};

fn record(action: &str) -> AuditRecord {
    AuditRecord {
        actor: "agent-1".into(),
        organisation: "national-call-center".into(),
        role: "agent".into(),
        action: action.into(),
        person_key: Some("pk-1".into()),
        outcome: "ok".into(),
    }
}

#[tokio::test]
async fn the_trail_is_append_only_and_an_altered_row_is_pinpointed() -> anyhow::Result<()> {
    let url = vaxbook_platform::pg::create_test_database("audit").await?;
    let pool = vaxbook_platform::pg::pool(&url, 2)?;
    let log = PgAuditLog::migrate(&url, pool.clone()).await?;
    for action in ["staff.login", "staff.verify-caller", "staff.book"] {
        log.append(Utc::now(), record(action)).await?;
    }
    assert_eq!(verify_log(&log).await?, Ok(3));
    let page = log
        .query(&AuditQuery {
            actor: Some("agent-1".into()),
            limit: 2,
            ..AuditQuery::default()
        })
        .await?;
    assert_eq!(page.len(), 2);

    let client = pool.get().await?;
    assert!(
        client
            .execute(
                "UPDATE audit_log SET outcome = 'forbidden' WHERE seq = 2",
                &[]
            )
            .await
            .is_err()
    );
    assert!(
        client
            .execute("DELETE FROM audit_log WHERE seq = 2", &[])
            .await
            .is_err()
    );
    // Someone with the power to drop the trigger rewrites entry 2.
    client
        .batch_execute(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update; \
             UPDATE audit_log SET person_key = 'pk-2' WHERE seq = 2;",
        )
        .await?;
    assert_eq!(verify_log(&log).await?, Err(ChainBreak::Altered { seq: 2 }));
    Ok(())
}
