//! One suite for both used-proof guards (`platform::grants::ReplayGuard`): the Redis one
//! session-svc runs in production (`RedisReplayGuard`, shared by every replica) and the
//! in-process one of the dev run (`MemoryReplayGuard`). A proof id is accepted once, ids do
//! not disturb each other, and Redis forgets an id once its proof has expired.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use platform::clock::{Clock, SettableClock};
use platform::grants::{MemoryReplayGuard, ReplayGuard};
use session_svc::RedisReplayGuard;

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2021-08-09T20:00:00+09:00")
        .unwrap()
        .with_timezone(&Utc)
}

fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn an_id_is_accepted_once(guard: &dyn ReplayGuard, clock: &SettableClock) {
    let expires = clock.now() + chrono::Duration::seconds(30);
    let proof = id();
    assert!(guard.first_use(&proof, expires).await.unwrap());
    assert!(!guard.first_use(&proof, expires).await.unwrap());
    assert!(!guard.first_use(&proof, expires).await.unwrap());
}

async fn ids_are_independent(guard: &dyn ReplayGuard, clock: &SettableClock) {
    let expires = clock.now() + chrono::Duration::seconds(30);
    let (first, second) = (id(), id());
    assert!(guard.first_use(&first, expires).await.unwrap());
    assert!(guard.first_use(&second, expires).await.unwrap());
    assert!(!guard.first_use(&first, expires).await.unwrap());
}

async fn an_id_is_remembered_while_its_proof_is_valid(
    guard: &dyn ReplayGuard,
    clock: &SettableClock,
) {
    let expires = clock.now() + chrono::Duration::seconds(30);
    let proof = id();
    assert!(guard.first_use(&proof, expires).await.unwrap());
    clock.set(clock.now() + chrono::Duration::seconds(29));
    assert!(!guard.first_use(&proof, expires).await.unwrap());
}

async fn suite(guard: &dyn ReplayGuard, clock: &SettableClock) {
    an_id_is_accepted_once(guard, clock).await;
    ids_are_independent(guard, clock).await;
    an_id_is_remembered_while_its_proof_is_valid(guard, clock).await;
}

#[tokio::test]
async fn the_memory_guard_conforms() {
    let clock = Arc::new(SettableClock::starting_at(start()));
    let guard = MemoryReplayGuard::new(clock.clone());
    suite(&guard, &clock).await;
}

#[tokio::test]
async fn the_redis_guard_conforms() {
    let clock = Arc::new(SettableClock::starting_at(start()));
    let connection = platform::redis_conn::connect_for_tests().await.unwrap();
    let prefix = platform::redis_conn::test_prefix("session-replay");
    let guard = RedisReplayGuard::new(connection.clone(), prefix.clone(), clock.clone());
    suite(&guard, &clock).await;

    // The key lives only as long as the proof: PX is what is left of it by the service's clock.
    let proof = id();
    let expires = clock.now() + chrono::Duration::seconds(30);
    assert!(guard.first_use(&proof, expires).await.unwrap());
    let mut connection = connection;
    let ttl: i64 = redis::cmd("PTTL")
        .arg(guard.proof_key(&proof))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!((1..=30_000).contains(&ttl), "{ttl}");
    assert!(guard.proof_key(&proof).starts_with(&prefix));
    // An already expired proof still gets a key that goes away at once (never a negative PX).
    let late = id();
    assert!(
        guard
            .first_use(&late, clock.now() - chrono::Duration::seconds(5))
            .await
            .unwrap()
    );
}
