//! Redis connections: a multiplexed, auto-reconnecting connection manager with a bounded wait
//! for the server at start-up, and key prefixes so tests and deployments can share a server.

use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

/// Default URL of the local Redis.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Connects to `url`, waiting at most `limit` for the server to answer.
pub async fn connect(url: &str, limit: Duration) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(url)
        .map_err(|err| anyhow::anyhow!("REDIS_URL is not a valid Redis URL: {err}"))?;
    let started = Instant::now();
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(2),
            ConnectionManager::new(client.clone()),
        )
        .await;
        match attempt {
            Ok(Ok(manager)) => return Ok(manager),
            Ok(Err(err)) if started.elapsed() >= limit => {
                return Err(anyhow::anyhow!(
                    "Redis at {url} did not answer within {}s: {err}",
                    limit.as_secs()
                ));
            }
            Err(_) if started.elapsed() >= limit => {
                return Err(anyhow::anyhow!(
                    "Redis at {url} did not answer within {}s",
                    limit.as_secs()
                ));
            }
            _ => {
                tracing::info!("waiting for Redis");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// One round trip to Redis.
pub async fn ping(connection: &ConnectionManager) -> Result<(), String> {
    let mut connection = connection.clone();
    redis::cmd("PING")
        .query_async::<String>(&mut connection)
        .await
        .map(|_| ())
        .map_err(|err| err.to_string())
}

/// A key prefix unique to one test, so tests share the server without sharing state.
pub fn test_prefix(label: &str) -> String {
    format!("vaxbook:test:{label}:{}:", uuid::Uuid::new_v4().simple())
}

/// Connects to the test server (`VAXBOOK_TEST_REDIS_URL`, default local), failing clearly.
pub async fn connect_for_tests() -> anyhow::Result<ConnectionManager> {
    let url = crate::config::string("VAXBOOK_TEST_REDIS_URL", DEFAULT_REDIS_URL);
    connect(&url, Duration::from_secs(3)).await.map_err(|err| {
        anyhow::anyhow!(
            "tests need Redis (start it with `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no`): {err}"
        )
    })
}
