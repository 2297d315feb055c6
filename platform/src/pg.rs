//! PostgreSQL connection pools, bounded waits for the server, and per-test databases.

use std::str::FromStr;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

/// Default URL of the local development database.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/vaxbook";

/// A pool of `max_size` connections to `url` (connections are made on demand).
pub fn pool(url: &str, max_size: usize) -> anyhow::Result<Pool> {
    let config = tokio_postgres::Config::from_str(url)
        .map_err(|err| anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL URL: {err}"))?;
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()?)
}

/// Waits until the database answers, for at most `limit`.
pub async fn wait_ready(pool: &Pool, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        match ping(pool).await {
            Ok(()) => return Ok(()),
            Err(err) if started.elapsed() >= limit => {
                return Err(anyhow::anyhow!(
                    "PostgreSQL did not answer within {}s: {err}",
                    limit.as_secs()
                ));
            }
            Err(err) => {
                tracing::info!(error = %err, "waiting for PostgreSQL");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// One round trip to the database.
pub async fn ping(pool: &Pool) -> Result<(), String> {
    let client = pool.get().await.map_err(|err| err.to_string())?;
    client
        .simple_query("SELECT 1")
        .await
        .map(|_| ())
        .map_err(|err| err.to_string())
}

/// Creates the database named in `url` when it does not exist (connecting to `postgres`).
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    let config = tokio_postgres::Config::from_str(url)?;
    let Some(name) = config.get_dbname().map(str::to_owned) else {
        return Ok(());
    };
    let mut admin = config.clone();
    admin.dbname("postgres");
    let (client, connection) = admin.connect(NoTls).await?;
    let driver = tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        let statement = format!("CREATE DATABASE \"{}\"", name.replace('"', ""));
        if let Err(err) = client.batch_execute(&statement).await {
            // Another process may have created it at the same time.
            if err.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) {
                return Err(err.into());
            }
        }
    }
    drop(client);
    let _ = driver.await;
    Ok(())
}

/// Test databases older than this are dropped when the next one is created.
const TEST_DATABASE_MAX_AGE_SECS: i64 = 6 * 3600;

/// Creates a fresh, empty database for one test and returns its URL. The server is the one
/// of `VAXBOOK_TEST_DATABASE_URL` (default: the local server as user postgres). The name
/// carries its creation time, so databases of earlier runs are dropped after a few hours.
pub async fn create_test_database(label: &str) -> anyhow::Result<String> {
    let base = crate::config::string(
        "VAXBOOK_TEST_DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    );
    let mut config = tokio_postgres::Config::from_str(&base)?;
    let (client, connection) = config.connect(NoTls).await.map_err(|err| {
        anyhow::anyhow!(
            "tests need PostgreSQL at {base} (start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`): {err}"
        )
    })?;
    let driver = tokio::spawn(connection);
    let now = chrono::Utc::now().timestamp();
    drop_stale_test_databases(&client, now).await;
    let label: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(20)
        .collect();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("vaxbook_t_{now}_{label}_{}", &unique[..12]);
    client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await?;
    drop(client);
    let _ = driver.await;
    config.dbname(&name);
    let user = config.get_user().unwrap_or("postgres").to_owned();
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    Ok(format!("postgres://{user}@{host}:{port}/{name}"))
}

/// Drops test databases created more than [`TEST_DATABASE_MAX_AGE_SECS`] ago (best effort:
/// one still in use by a long run is left alone).
async fn drop_stale_test_databases(client: &tokio_postgres::Client, now: i64) {
    let Ok(rows) = client
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'vaxbook\\_t\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let created: Option<i64> = name
            .strip_prefix("vaxbook_t_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|stamp| stamp.parse().ok());
        let stale = created.is_none_or(|created| now - created > TEST_DATABASE_MAX_AGE_SECS);
        if stale {
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                .await;
        }
    }
}

/// Applies a service's embedded migrations to `url`: creates the database when missing, then
/// runs `runner` with the service's own history table (services may share a database), under a
/// PostgreSQL advisory lock so replicas starting together migrate one at a time.
pub async fn migrate(
    url: &str,
    mut runner: refinery::Runner,
    history_table: &str,
) -> anyhow::Result<()> {
    ensure_database(url).await?;
    let config = tokio_postgres::Config::from_str(url)?;
    let (mut client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|err| anyhow::anyhow!("connecting to PostgreSQL to migrate: {err}"))?;
    let driver = tokio::spawn(connection);
    let lock_key = advisory_lock_key(history_table);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&lock_key])
        .await
        .map_err(|err| anyhow::anyhow!("taking the migration lock: {err}"))?;
    runner.set_migration_table_name(history_table);
    let outcome = runner.run_async(&mut client).await;
    // The lock is per session: closing the connection would release it as well.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&lock_key])
        .await;
    drop(client);
    let _ = driver.await;
    let report = outcome
        .map_err(|err| anyhow::anyhow!("applying the migrations of {history_table}: {err}"))?;
    for migration in report.applied_migrations() {
        tracing::info!(
            table = history_table,
            version = migration.version(),
            name = migration.name(),
            "applied migration"
        );
    }
    Ok(())
}

/// A stable advisory-lock key per history table (FNV-1a of its name).
fn advisory_lock_key(history_table: &str) -> i64 {
    let hash = history_table
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Start-up of a PostgreSQL-backed service: waits (at most `wait_limit`) for the server —
/// through [`ensure_database`], so a missing database is created on the way — then builds a pool
/// of `max_connections`, checks it answers, and applies the service's migrations.
pub async fn open_migrated(
    url: &str,
    max_connections: usize,
    wait_limit: Duration,
    runner: refinery::Runner,
    history_table: &str,
) -> anyhow::Result<Pool> {
    let started = Instant::now();
    loop {
        match ensure_database(url).await {
            Ok(()) => break,
            Err(err) if started.elapsed() >= wait_limit => {
                return Err(anyhow::anyhow!(
                    "PostgreSQL did not answer within {}s: {err}",
                    wait_limit.as_secs()
                ));
            }
            Err(err) => {
                tracing::info!(error = %err, "waiting for PostgreSQL");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    let pool = pool(url, max_connections)?;
    wait_ready(&pool, wait_limit.saturating_sub(started.elapsed())).await?;
    migrate(url, runner, history_table).await?;
    Ok(pool)
}
