//! Redis connections: one server through a multiplexed, auto-reconnecting connection manager,
//! or a Redis Cluster through a slot-aware cluster connection, behind one [`RedisConnection`]
//! the stores use unchanged; a bounded wait for the server at start-up, and key prefixes so
//! tests and deployments can share a server.
//!
//! `REDIS_URL` names one server (`redis://host:6379`), or a Redis Cluster by its seed nodes:
//! a comma-separated list (`redis://10.0.0.1:6379,redis://10.0.0.2:6379`) or one seed with the
//! `redis+cluster://` scheme. On a cluster every Lua script and MULTI must touch keys of one
//! hash slot: the stores put the person key in a hash tag (`{…}`) for that.

use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// Default URL of the local Redis.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A connection to one Redis server or to a Redis Cluster; cheap to clone (clones share the
/// underlying multiplexed connections).
#[derive(Clone)]
pub enum RedisConnection {
    /// One server.
    Single(ConnectionManager),
    /// A Redis Cluster: each command goes to the primary owning its keys' slot.
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(connection) => connection.req_packed_commands(cmd, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

impl RedisConnection {
    /// Whether this is a Redis Cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

/// The cluster seed nodes `url` names, or `None` for a single server.
pub fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    let nodes: Vec<String> = url
        .split(',')
        .map(str::trim)
        .filter(|node| !node.is_empty())
        .map(|node| match node.strip_prefix("redis+cluster://") {
            Some(rest) => format!("redis://{rest}"),
            None => node.to_owned(),
        })
        .collect();
    let cluster = nodes.len() > 1 || url.trim_start().starts_with("redis+cluster://");
    cluster.then_some(nodes)
}

async fn open(url: &str) -> Result<RedisConnection, String> {
    match cluster_nodes(url) {
        Some(nodes) => {
            let client = redis::cluster::ClusterClient::builder(nodes)
                .connection_timeout(Duration::from_secs(2))
                .response_timeout(Duration::from_secs(5))
                .build()
                .map_err(|err| format!("REDIS_URL does not name valid cluster nodes: {err}"))?;
            let connection = client
                .get_async_connection()
                .await
                .map_err(|err| err.to_string())?;
            Ok(RedisConnection::Cluster(connection))
        }
        None => {
            let client = redis::Client::open(url)
                .map_err(|err| format!("REDIS_URL is not a valid Redis URL: {err}"))?;
            ConnectionManager::new(client)
                .await
                .map(RedisConnection::Single)
                .map_err(|err| err.to_string())
        }
    }
}

/// Connects to `url` (one server or a cluster, see the module documentation), waiting at most
/// `limit` for it to answer.
pub async fn connect(url: &str, limit: Duration) -> anyhow::Result<RedisConnection> {
    let shown = url
        .split(',')
        .map(|node| crate::config::redact_url(node.trim()))
        .collect::<Vec<_>>()
        .join(",");
    // A malformed URL fails at once instead of being waited for.
    if cluster_nodes(url).is_none() {
        redis::Client::open(url)
            .map_err(|err| anyhow::anyhow!("REDIS_URL is not a valid Redis URL: {err}"))?;
    }
    let started = Instant::now();
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(3), open(url)).await;
        match attempt {
            Ok(Ok(connection)) => {
                if let Err(err) = ping(&connection).await {
                    if started.elapsed() >= limit {
                        anyhow::bail!(
                            "Redis at {shown} did not answer within {}s: {err}",
                            limit.as_secs()
                        );
                    }
                } else {
                    return Ok(connection);
                }
            }
            Ok(Err(err)) if err.starts_with("REDIS_URL") => anyhow::bail!(err),
            Ok(Err(err)) if started.elapsed() >= limit => {
                anyhow::bail!(
                    "Redis at {shown} did not answer within {}s: {err}",
                    limit.as_secs()
                );
            }
            Err(_) if started.elapsed() >= limit => {
                anyhow::bail!(
                    "Redis at {shown} did not answer within {}s",
                    limit.as_secs()
                );
            }
            _ => {}
        }
        tracing::info!("waiting for Redis");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One round trip to Redis.
pub async fn ping(connection: &RedisConnection) -> Result<(), String> {
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
/// The variable may name a Redis Cluster (`scripts/redis-cluster start` prints its value).
pub async fn connect_for_tests() -> anyhow::Result<RedisConnection> {
    let url = crate::config::string("VAXBOOK_TEST_REDIS_URL", DEFAULT_REDIS_URL);
    connect(&url, Duration::from_secs(3)).await.map_err(|err| {
        anyhow::anyhow!(
            "tests need Redis (start it with `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no`): {err}"
        )
    })
}
