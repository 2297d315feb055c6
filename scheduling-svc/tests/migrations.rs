//! The embedded migrations against a real PostgreSQL: they create the database when missing,
//! record themselves in scheduling's own history table, are idempotent and safe to run from
//! several replicas at once, and the table refuses rows the service would refuse.

#![allow(clippy::unwrap_used)]

mod common;

use tokio_postgres::NoTls;

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

async fn table_exists(client: &tokio_postgres::Client, table: &str) -> bool {
    client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn migrating_creates_the_missing_database_and_its_own_history_table() {
    let existing = platform::pg::create_test_database("m").await.unwrap();
    let missing = format!("{existing}_fresh");
    scheduling_svc::migrate(&missing).await.unwrap();

    let client = connect(&missing).await;
    assert!(table_exists(&client, "campaigns").await);
    assert!(table_exists(&client, scheduling_svc::store::MIGRATION_TABLE).await);
    assert!(!table_exists(&client, "refinery_schema_history").await);
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM scheduling_schema_history ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, vec![1, 2]);
    for table in [
        "campaign_versions",
        "exclusion_lists",
        "exclusion_entries",
        "exclusion_current",
    ] {
        assert!(table_exists(&client, table).await, "{table}");
    }
}

/// A campaign written before rules existed (schema version 1) is still served after the
/// migration, exactly as before: one open window over its booking period, on every channel,
/// releasing all supply, at version 1 with its history row.
#[tokio::test]
async fn campaigns_stored_before_rules_stay_readable() {
    use scheduling_svc::store::CampaignStore;

    let url = platform::pg::create_test_database("sched_mig_v1")
        .await
        .unwrap();
    let only_v1 =
        scheduling_svc::store::migrations_runner().set_target(refinery::Target::Version(1));
    platform::pg::migrate(&url, only_v1, scheduling_svc::store::MIGRATION_TABLE)
        .await
        .unwrap();
    let client = connect(&url).await;
    client
        .batch_execute(
            "INSERT INTO campaigns (id, name, born_from, born_to, booking_opens_at, \
             booking_closes_at, vaccination_from, vaccination_to, proxy_allowed, \
             proxy_deadline, cancellation_closes_days_before) VALUES ('covid19-18-49', \
             'COVID-19 18-49', '1972-01-01', '2003-12-31', '2021-08-09T20:00:00+09:00', \
             '2021-09-18T18:00:00+09:00', '2021-08-26', '2021-10-02', false, NULL, 2)",
        )
        .await
        .unwrap();
    scheduling_svc::migrate(&url).await.unwrap();

    let store = common::pg_store_at(&url).await;
    let campaign = store
        .get(&scheduling_svc::domain::CampaignId::parse("covid19-18-49").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(campaign, common::round_18_49().with_version(1));
    assert_eq!(campaign.windows.len(), 1);
    let history: i64 = client
        .query_one("SELECT count(*) FROM campaign_versions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(history, 1);
    // The next change is version 2.
    assert_eq!(store.upsert(&campaign).await.unwrap().version, 2);
}

#[tokio::test]
async fn migrating_again_and_concurrently_is_harmless() {
    let url = platform::pg::create_test_database("sched_mig_twice")
        .await
        .unwrap();
    let runs = (0..4).map(|_| scheduling_svc::migrate(&url));
    for outcome in futures::future::join_all(runs).await {
        outcome.unwrap();
    }
    scheduling_svc::migrate(&url).await.unwrap();
    let client = connect(&url).await;
    let applied: i64 = client
        .query_one("SELECT count(*) FROM scheduling_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, 2);
}

#[tokio::test]
async fn the_table_refuses_contradictory_campaigns() {
    let url = common::migrated_database("sched_mig_check").await;
    let client = connect(&url).await;
    let insert = |id: &str, born_from: &str, born_to: &str, days: i32| {
        format!(
            "INSERT INTO campaigns (id, name, born_from, born_to, booking_opens_at, \
             booking_closes_at, vaccination_from, vaccination_to, proxy_allowed, \
             cancellation_closes_days_before) VALUES ('{id}', 'n', '{born_from}', '{born_to}', \
             '2021-08-09T20:00:00+09:00', '2021-09-18T18:00:00+09:00', '2021-08-26', \
             '2021-10-02', false, {days})"
        )
    };
    client
        .batch_execute(&insert("ok", "1972-01-01", "2003-12-31", 2))
        .await
        .unwrap();
    for bad in [
        insert("Bad_Id", "1972-01-01", "2003-12-31", 2),
        insert("reversed", "2003-12-31", "1972-01-01", 2),
        insert("too-late", "1972-01-01", "2003-12-31", 31),
        insert("negative", "1972-01-01", "2003-12-31", -1),
    ] {
        let err = client.batch_execute(&bad).await.unwrap_err();
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION),
            "{bad}"
        );
    }
}
