//! The audit trail against real PostgreSQL: appends chain, UPDATE and DELETE are refused by the
//! table, and an entry altered behind the trigger's back is pinpointed by the chain check. Two
//! services' trails in one database (booking-svc's and scheduling-svc's share one) are separate
//! chains: each its own seq from 1, each verifies alone, a query of one never answers the other's
//! entries, and a row moved from one trail to the other is pinpointed. The rows written before
//! trails had names stay verifiable as the closed trail `legacy`.

use std::collections::HashSet;

use chrono::Utc;
use vaxbook_platform::audit::{
    AUDIT_HISTORY_TABLE, AUTH_TRAIL, AuditEntry, AuditLog, AuditQuery, AuditRecord, BOOKING_TRAIL,
    ChainBreak, GENESIS_HASH, LEGACY_TRAIL, MAX_PAGE, PgAuditLog, SCHEDULING_TRAIL, next_entry,
    verify_log,
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

fn by(actor: &str, action: &str, person_key: &str) -> AuditRecord {
    AuditRecord {
        actor: actor.into(),
        person_key: Some(person_key.into()),
        ..record(action)
    }
}

async fn all(log: &PgAuditLog) -> anyhow::Result<Vec<AuditEntry>> {
    log.query(&AuditQuery {
        limit: MAX_PAGE,
        ..AuditQuery::default()
    })
    .await
}

/// A database with booking-svc's and scheduling-svc's trails side by side.
async fn shared() -> anyhow::Result<(deadpool_postgres::Pool, PgAuditLog, PgAuditLog)> {
    let url = vaxbook_platform::pg::create_test_database("audit_trails").await?;
    let pool = vaxbook_platform::pg::pool(&url, 4)?;
    let booking = PgAuditLog::migrate(&url, pool.clone(), BOOKING_TRAIL).await?;
    let scheduling = PgAuditLog::migrate(&url, pool.clone(), SCHEDULING_TRAIL).await?;
    Ok((pool, booking, scheduling))
}

#[tokio::test]
async fn the_trail_is_append_only_and_an_altered_row_is_pinpointed() -> anyhow::Result<()> {
    let url = vaxbook_platform::pg::create_test_database("audit").await?;
    let pool = vaxbook_platform::pg::pool(&url, 2)?;
    let log = PgAuditLog::migrate(&url, pool.clone(), AUTH_TRAIL).await?;
    assert_eq!(log.name(), AUTH_TRAIL);
    assert_eq!(log.trail(), Some(AUTH_TRAIL));
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
    for refused in [
        "UPDATE audit_log SET outcome = 'forbidden' WHERE trail = 'auth' AND seq = 2",
        "UPDATE audit_log SET trail = 'booking' WHERE trail = 'auth' AND seq = 2",
        "DELETE FROM audit_log WHERE trail = 'auth' AND seq = 2",
        "TRUNCATE audit_log",
    ] {
        assert!(client.batch_execute(refused).await.is_err(), "{refused}");
    }
    // Every new row names its trail, a valid name.
    for refused in [
        "INSERT INTO audit_log (seq, at, actor, organisation, role, action, outcome, prev_hash, hash) \
         VALUES (9, now(), 'a', 'o', 'agent', 'x', 'ok', 'p', 'h')",
        "INSERT INTO audit_log (trail, seq, at, actor, organisation, role, action, outcome, prev_hash, hash) \
         VALUES ('Booking Svc', 9, now(), 'a', 'o', 'agent', 'x', 'ok', 'p', 'h')",
    ] {
        assert!(client.batch_execute(refused).await.is_err(), "{refused}");
    }
    // Someone with the power to drop the trigger rewrites entry 2.
    client
        .batch_execute(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update; \
             UPDATE audit_log SET person_key = 'pk-2' WHERE trail = 'auth' AND seq = 2;",
        )
        .await?;
    assert_eq!(verify_log(&log).await?, Err(ChainBreak::Altered { seq: 2 }));
    Ok(())
}

#[tokio::test]
async fn two_trails_in_one_database_are_separate_chains() -> anyhow::Result<()> {
    let (_pool, booking, scheduling) = shared().await?;
    // Written in turn, as two services on one database would.
    for n in 0..4 {
        booking
            .append(Utc::now(), by("agent-b", "staff.book", &format!("pk-{n}")))
            .await?;
        scheduling
            .append(
                Utc::now(),
                by("operator-s", "admin.upsert-campaign", "pk-0"),
            )
            .await?;
    }
    booking
        .append(Utc::now(), by("agent-b", "staff.cancel", "pk-0"))
        .await?;

    let booked = all(&booking).await?;
    let scheduled = all(&scheduling).await?;
    assert_eq!(
        booked.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(
        scheduled.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(booked[0].prev_hash, GENESIS_HASH);
    assert_eq!(scheduled[0].prev_hash, GENESIS_HASH);
    assert!(booked.iter().all(|e| e.record.actor == "agent-b"));
    assert!(scheduled.iter().all(|e| e.record.actor == "operator-s"));
    // Same seq, same moment's kind of entry, different chains: no hash is shared.
    let hashes: HashSet<&str> = booked
        .iter()
        .chain(&scheduled)
        .map(|e| e.hash.as_str())
        .collect();
    assert_eq!(hashes.len(), 9);
    assert_eq!(verify_log(&booking).await?, Ok(5));
    assert_eq!(verify_log(&scheduling).await?, Ok(4));

    // Every filter stays inside its trail.
    let other_actor = booking
        .query(&AuditQuery {
            actor: Some("operator-s".into()),
            limit: MAX_PAGE,
            ..AuditQuery::default()
        })
        .await?;
    assert!(other_actor.is_empty(), "{other_actor:?}");
    let person = |log: &PgAuditLog| {
        let log = log.clone();
        async move {
            log.query(&AuditQuery {
                person_key: Some("pk-0".into()),
                limit: MAX_PAGE,
                ..AuditQuery::default()
            })
            .await
        }
    };
    let booked_for = person(&booking).await?;
    assert_eq!(
        booked_for
            .iter()
            .map(|e| (e.seq, e.record.action.as_str()))
            .collect::<Vec<_>>(),
        [(1, "staff.book"), (5, "staff.cancel")]
    );
    assert_eq!(person(&scheduling).await?.len(), 4);
    let after = scheduling
        .query(&AuditQuery {
            after_seq: 4,
            limit: MAX_PAGE,
            ..AuditQuery::default()
        })
        .await?;
    assert!(after.is_empty(), "{after:?}");
    let window = booking
        .query(&AuditQuery {
            from: Some(booked[0].at),
            until: Some(Utc::now() + chrono::Duration::seconds(1)),
            limit: MAX_PAGE,
            ..AuditQuery::default()
        })
        .await?;
    assert_eq!(window.len(), 5);
    Ok(())
}

#[tokio::test]
async fn replicas_of_two_services_appending_at_once_keep_each_chain_linear() -> anyhow::Result<()> {
    let (pool, booking, scheduling) = shared().await?;
    // Two replicas of each service, each its own handle on the same trail, all appending at once.
    let mut tasks = tokio::task::JoinSet::new();
    for (replica, log) in [
        (0, booking.clone()),
        (1, PgAuditLog::new(pool.clone(), BOOKING_TRAIL)),
        (2, scheduling.clone()),
        (3, PgAuditLog::new(pool.clone(), SCHEDULING_TRAIL)),
    ] {
        tasks.spawn(async move {
            for n in 0..10 {
                log.append(
                    Utc::now(),
                    by(
                        &format!("replica-{replica}"),
                        "staff.book",
                        &format!("pk-{n}"),
                    ),
                )
                .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    for log in [&booking, &scheduling] {
        assert_eq!(verify_log(log).await?, Ok(20), "{}", log.name());
        let seqs: Vec<i64> = all(log).await?.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    }
    Ok(())
}

#[tokio::test]
async fn a_row_moved_to_another_trail_is_pinpointed_in_both() -> anyhow::Result<()> {
    let (pool, booking, scheduling) = shared().await?;
    for _ in 0..2 {
        booking.append(Utc::now(), record("staff.book")).await?;
    }
    for _ in 0..4 {
        scheduling
            .append(Utc::now(), record("admin.upsert-campaign"))
            .await?;
    }
    let client = pool.get().await?;
    assert!(
        client
            .batch_execute(
                "UPDATE audit_log SET trail = 'booking' WHERE trail = 'scheduling' AND seq = 3"
            )
            .await
            .is_err(),
        "the trigger lets a row change trails"
    );

    // Behind the trigger's back, scheduling-svc's entry 3 becomes booking-svc's entry 3: it
    // follows on in seq, but its hash binds the trail it was written to.
    client
        .batch_execute(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update; \
             UPDATE audit_log SET trail = 'booking' WHERE trail = 'scheduling' AND seq = 3; \
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;",
        )
        .await?;
    assert_eq!(
        verify_log(&booking).await?,
        Err(ChainBreak::Altered { seq: 3 })
    );
    assert_eq!(
        verify_log(&scheduling).await?,
        Err(ChainBreak::Gap { after: 2, seq: 4 })
    );
    Ok(())
}

#[tokio::test]
async fn a_whole_trail_relabelled_as_another_is_pinpointed_at_its_first_entry() -> anyhow::Result<()>
{
    // The case seq and links alone cannot see: every row of scheduling-svc's trail moved into an
    // empty trail, each entry still following the one before it.
    let (pool, booking, scheduling) = shared().await?;
    for _ in 0..3 {
        scheduling
            .append(Utc::now(), record("admin.upsert-campaign"))
            .await?;
    }
    pool.get()
        .await?
        .batch_execute(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update; \
             UPDATE audit_log SET trail = 'booking' WHERE trail = 'scheduling'; \
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;",
        )
        .await?;
    assert_eq!(all(&booking).await?.len(), 3);
    assert_eq!(
        verify_log(&booking).await?,
        Err(ChainBreak::Altered { seq: 1 })
    );
    // Into the legacy trail, hashed without a name, it does not check either.
    pool.get()
        .await?
        .batch_execute(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update; \
             UPDATE audit_log SET trail = 'legacy' WHERE trail = 'booking'; \
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;",
        )
        .await?;
    let legacy = PgAuditLog::new(pool.clone(), LEGACY_TRAIL);
    assert_eq!(
        verify_log(&legacy).await?,
        Err(ChainBreak::Altered { seq: 1 })
    );
    // What it left is an empty trail: a chain cannot tell a trail that lost its entries from one
    // never written (the services' own appends restart it at 1, which the operator sees).
    assert_eq!(verify_log(&scheduling).await?, Ok(0));
    Ok(())
}

#[tokio::test]
async fn rows_from_before_trails_stay_verifiable_as_the_closed_legacy_trail() -> anyhow::Result<()>
{
    let url = vaxbook_platform::pg::create_test_database("audit_legacy").await?;
    let pool = vaxbook_platform::pg::pool(&url, 2)?;
    // A database as the first audit migration left it, with rows hashed as they were then.
    vaxbook_platform::pg::migrate(
        &url,
        vaxbook_platform::audit::migrations_runner().set_target(refinery::Target::Version(1)),
        AUDIT_HISTORY_TABLE,
    )
    .await?;
    let client = pool.get().await?;
    let mut last: Option<AuditEntry> = None;
    for action in ["staff.book", "admin.upsert-campaign", "staff.cancel"] {
        let entry = next_entry(
            last.as_ref().map(|e| (e.seq, e.hash.as_str())),
            Utc::now(),
            record(action),
        );
        client
            .execute(
                "INSERT INTO audit_log (seq, at, actor, organisation, role, action, person_key, outcome, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &entry.seq,
                    &entry.at,
                    &entry.record.actor,
                    &entry.record.organisation,
                    &entry.record.role,
                    &entry.record.action,
                    &entry.record.person_key,
                    &entry.record.outcome,
                    &entry.prev_hash,
                    &entry.hash,
                ],
            )
            .await?;
        last = Some(entry);
    }

    // The service starts on the migrated database: its trail begins at 1, the old rows are
    // nobody's trail but `legacy`, and they check as they were written.
    let booking = PgAuditLog::migrate(&url, pool.clone(), BOOKING_TRAIL).await?;
    assert_eq!(verify_log(&booking).await?, Ok(0));
    let first = booking.append(Utc::now(), record("staff.book")).await?;
    assert_eq!((first.seq, first.prev_hash.as_str()), (1, GENESIS_HASH));
    let legacy = PgAuditLog::new(pool.clone(), LEGACY_TRAIL);
    assert_eq!(legacy.trail(), None);
    assert_eq!(verify_log(&legacy).await?, Ok(3));
    assert_eq!(verify_log(&booking).await?, Ok(1));
    // Nothing is appended to it, and no service opens it as its own.
    assert!(
        legacy
            .append(Utc::now(), record("staff.book"))
            .await
            .is_err()
    );
    assert!(
        PgAuditLog::migrate(&url, pool.clone(), LEGACY_TRAIL)
            .await
            .is_err()
    );
    assert!(
        PgAuditLog::migrate(&url, pool.clone(), "Booking")
            .await
            .is_err()
    );
    assert_eq!(verify_log(&legacy).await?, Ok(3));
    // An old row rewritten is pinpointed there as before.
    client
        .batch_execute(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update; \
             UPDATE audit_log SET outcome = 'slot-full' WHERE trail = 'legacy' AND seq = 2; \
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;",
        )
        .await?;
    assert_eq!(
        verify_log(&legacy).await?,
        Err(ChainBreak::Altered { seq: 2 })
    );
    Ok(())
}
