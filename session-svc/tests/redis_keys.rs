//! What the Redis store leaves in Redis: keys under the configured prefix in the documented
//! layout, each with a TTL so Redis garbage-collects it, and nothing else.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use session_svc::domain::{DeviceId, PersonKey, SessionId};
use session_svc::{ClaimOutcome, DeviceLockStore, RedisDeviceLockStore, StoreError};

const TTL: Duration = Duration::from_secs(1200);
const BLOCK: Duration = Duration::from_secs(600);

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2021-08-09T20:00:00+09:00")
        .unwrap()
        .with_timezone(&Utc)
}

async fn keys_under(
    connection: &mut platform::redis_conn::RedisConnection,
    prefix: &str,
) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(connection)
        .await
        .unwrap();
    keys.sort();
    keys
}

async fn ttl_ms(connection: &mut platform::redis_conn::RedisConnection, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(connection)
        .await
        .unwrap()
}

#[tokio::test]
async fn locks_and_blocks_are_prefixed_keys_with_ttls() {
    let mut connection = platform::redis_conn::connect_for_tests().await.unwrap();
    let prefix = platform::redis_conn::test_prefix("session-keys");
    let store = RedisDeviceLockStore::new(connection.clone(), prefix.clone());
    let person = PersonKey::parse("pk-keys").unwrap();
    let (pc, phone) = (
        DeviceId::parse("pc-1").unwrap(),
        DeviceId::parse("phone:1").unwrap(),
    );

    let ClaimOutcome::Granted { session_id, .. } = store
        .claim(&person, &pc, start(), TTL, BLOCK)
        .await
        .unwrap()
    else {
        panic!("the first device is granted");
    };
    let refused = store
        .claim(&person, &phone, start(), TTL, BLOCK)
        .await
        .unwrap();
    assert_eq!(refused, ClaimOutcome::Locked { retry_after: BLOCK });

    let lock_key = format!("{prefix}session:lock:{{pk-keys}}");
    let block_key = format!("{prefix}session:block:{{pk-keys}}:phone:1");
    let fence_key = format!("{prefix}session:fence:{{pk-keys}}");
    let blocked_key = format!("{prefix}session:blocks:{{pk-keys}}");
    assert_eq!(store.lock_key(&person), lock_key);
    assert_eq!(store.block_key(&person, &phone), block_key);
    assert_eq!(store.fence_key(&person), fence_key);
    assert_eq!(store.blocked_devices_key(&person), blocked_key);
    assert_eq!(
        keys_under(&mut connection, &prefix).await,
        vec![
            block_key.clone(),
            blocked_key.clone(),
            fence_key.clone(),
            lock_key.clone()
        ]
    );

    let (device, session, expires_ms): (String, String, i64) = redis::cmd("HMGET")
        .arg(&lock_key)
        .arg("device")
        .arg("session")
        .arg("expires_ms")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(device, "pc-1");
    assert_eq!(session, session_id.as_str());
    assert_eq!(expires_ms, start().timestamp_millis() + 1_200_000);
    let block_until: i64 = redis::cmd("GET")
        .arg(&block_key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(block_until, start().timestamp_millis() + 600_000);

    let lock_ttl = ttl_ms(&mut connection, &lock_key).await;
    assert!(lock_ttl > 1_190_000 && lock_ttl <= 1_200_000, "{lock_ttl}");
    let block_ttl = ttl_ms(&mut connection, &block_key).await;
    assert!(block_ttl > 590_000 && block_ttl <= 600_000, "{block_ttl}");
    // The fencing counter lives as long as the newest session could.
    let fence_ttl = ttl_ms(&mut connection, &fence_key).await;
    assert!(
        fence_ttl > 1_190_000 && fence_ttl <= 1_200_000,
        "{fence_ttl}"
    );
    let blocked_ttl = ttl_ms(&mut connection, &blocked_key).await;
    assert!(
        blocked_ttl > 590_000 && blocked_ttl <= 600_000,
        "{blocked_ttl}"
    );

    // Releasing removes the lock key and leaves the other device's block (and the counter,
    // so the next holder's number is higher).
    assert!(store.release(&person, &session_id, start()).await.unwrap());
    assert_eq!(
        keys_under(&mut connection, &prefix).await,
        vec![block_key, blocked_key, fence_key]
    );
}

#[tokio::test]
async fn a_foreign_lock_value_is_reported_not_trusted() {
    let mut connection = platform::redis_conn::connect_for_tests().await.unwrap();
    let prefix = platform::redis_conn::test_prefix("session-corrupt");
    let store = RedisDeviceLockStore::new(connection.clone(), prefix.clone());
    let person = PersonKey::parse("pk-corrupt").unwrap();
    let device = DeviceId::parse("pc-1").unwrap();
    let session = SessionId::parse("s-1").unwrap();
    let _: i64 = redis::cmd("HSET")
        .arg(store.lock_key(&person))
        .arg("device")
        .arg("pc-1")
        .arg("session")
        .arg("s-1")
        .arg("expires_ms")
        .arg("soon")
        .query_async(&mut connection)
        .await
        .unwrap();
    let answer = store.validate(&person, &session, &device, start()).await;
    assert!(matches!(answer, Err(StoreError::Corrupt(_))), "{answer:?}");
    let _: i64 = redis::cmd("DEL")
        .arg(store.lock_key(&person))
        .query_async(&mut connection)
        .await
        .unwrap();
}

#[tokio::test]
async fn ping_answers() {
    let connection = platform::redis_conn::connect_for_tests().await.unwrap();
    let store = RedisDeviceLockStore::new(connection, platform::redis_conn::test_prefix("ping"));
    store.ping().await.unwrap();
}
