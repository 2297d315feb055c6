//! The one behaviour every challenge store must have, run against the in-process store and
//! against Redis (each Redis run under its own key prefix). Expiry driven by the injected clock
//! is checked on the in-process store; Redis's own expiry is checked through the TTL it holds.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use platform::clock::{Clock as _, SettableClock};

use super::*;
use crate::domain::{DeviceId, ProviderKind, Rrn, VerificationId, derive_person_key};

fn challenge(label: &str) -> Challenge {
    let rrn = Rrn::parse("900101-1234567").unwrap();
    Challenge {
        provider: ProviderKind::Phone.id(),
        person_key: derive_person_key(label.as_bytes(), &rrn),
        birth_date: NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
        masked_name: "홍*동".to_owned(),
        device_id: DeviceId::parse(&format!("device-{label}")).unwrap(),
        secret: ChallengeSecret::OtpDigest {
            digest: format!("digest-{label}"),
            phone_subject: Some(format!("phone:{label}")),
        },
        expires_at: Utc.with_ymd_and_hms(2021, 8, 9, 11, 3, 0).unwrap(),
        attempts: 0,
    }
}

const TTL: Duration = Duration::from_secs(180);

async fn a_stored_challenge_reads_back_unchanged(store: &dyn ChallengeStore) {
    let id = VerificationId::new_random();
    assert_eq!(store.get(&id).await.unwrap(), None);
    let stored = challenge("a");
    store.put(&id, &stored, TTL).await.unwrap();
    assert_eq!(store.get(&id).await.unwrap(), Some(stored));
    // Another id is another challenge.
    assert_eq!(
        store.get(&VerificationId::new_random()).await.unwrap(),
        None
    );
}

async fn failed_attempts_count_up_and_keep_the_rest(store: &dyn ChallengeStore) {
    let id = VerificationId::new_random();
    let stored = challenge("b");
    store.put(&id, &stored, TTL).await.unwrap();
    assert_eq!(store.record_failed_attempt(&id).await.unwrap(), Some(1));
    assert_eq!(store.record_failed_attempt(&id).await.unwrap(), Some(2));
    let read = store.get(&id).await.unwrap().unwrap();
    assert_eq!(read.attempts, 2);
    assert_eq!(
        Challenge {
            attempts: 0,
            ..read
        },
        stored
    );
    let missing = VerificationId::new_random();
    assert_eq!(store.record_failed_attempt(&missing).await.unwrap(), None);
    assert_eq!(store.get(&missing).await.unwrap(), None);
}

async fn an_assertion_challenge_keeps_its_binding_through_attempts(store: &dyn ChallengeStore) {
    let id = VerificationId::new_random();
    let stored = Challenge {
        provider: ProviderKind::Kakao.id(),
        secret: ChallengeSecret::AssertionBinding {
            nonce: "nonce-h".to_owned(),
            name_digest: "name-digest-h".to_owned(),
        },
        ..challenge("h")
    };
    store.put(&id, &stored, TTL).await.unwrap();
    assert_eq!(store.get(&id).await.unwrap(), Some(stored.clone()));
    assert_eq!(store.record_failed_attempt(&id).await.unwrap(), Some(1));
    assert_eq!(
        store.get(&id).await.unwrap(),
        Some(Challenge {
            attempts: 1,
            ..stored
        })
    );
}

async fn delete_succeeds_once(store: &dyn ChallengeStore) {
    let id = VerificationId::new_random();
    store.put(&id, &challenge("c"), TTL).await.unwrap();
    assert!(store.delete(&id).await.unwrap());
    assert!(!store.delete(&id).await.unwrap());
    assert_eq!(store.get(&id).await.unwrap(), None);
    assert_eq!(store.record_failed_attempt(&id).await.unwrap(), None);
}

async fn rate_limit_counts_per_key(store: &dyn ChallengeStore) {
    let window = Duration::from_secs(600);
    for expected in 1..=6 {
        assert_eq!(
            store.hit_rate_limit("start:p1", window).await.unwrap(),
            expected
        );
    }
    assert_eq!(store.hit_rate_limit("start:p2", window).await.unwrap(), 1);
}

async fn concurrent_deletes_have_one_winner(store: Arc<dyn ChallengeStore>) {
    let id = VerificationId::new_random();
    store.put(&id, &challenge("d"), TTL).await.unwrap();
    let attempts = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.delete(&id).await.unwrap() })
    });
    let outcomes = futures::future::join_all(attempts).await;
    let winners = outcomes
        .into_iter()
        .filter(|won| *won.as_ref().unwrap())
        .count();
    assert_eq!(winners, 1);
}

async fn concurrent_failed_attempts_are_all_counted(store: Arc<dyn ChallengeStore>) {
    let id = VerificationId::new_random();
    store.put(&id, &challenge("e"), TTL).await.unwrap();
    let attempts = (0..10).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.record_failed_attempt(&id).await.unwrap() })
    });
    let mut counts: Vec<u32> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|count| count.unwrap().unwrap())
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=10).collect::<Vec<_>>());
    assert_eq!(store.get(&id).await.unwrap().unwrap().attempts, 10);
}

async fn abuse_counters_count_per_key_and_tell_the_time_left(store: &dyn ChallengeStore) {
    let window = Duration::from_secs(900);
    let key = format!("{{phone:{}}}:wrong", uuid::Uuid::new_v4().simple());
    assert_eq!(store.read_counter(&key).await.unwrap(), None);
    for expected in 1..=3 {
        let hit = store.hit_counter(&key, window).await.unwrap();
        assert_eq!(hit.count, expected);
        assert!(
            hit.resets_in > Duration::from_secs(890) && hit.resets_in <= window,
            "{hit:?}"
        );
    }
    // Reading does not count; a later, longer window does not restart the running one.
    let read = store.read_counter(&key).await.unwrap().unwrap();
    assert_eq!(read.count, 3);
    assert!(read.resets_in <= window, "{read:?}");
    let longer = store
        .hit_counter(&key, Duration::from_secs(7200))
        .await
        .unwrap();
    assert_eq!(longer.count, 4);
    assert!(longer.resets_in <= window, "{longer:?}");
    // Another subject has its own count, and the start-rate counters are apart.
    let other = format!("{{person:{}}}:wrong", uuid::Uuid::new_v4().simple());
    assert_eq!(store.hit_counter(&other, window).await.unwrap().count, 1);
    assert_eq!(store.hit_rate_limit(&key, window).await.unwrap(), 1);
}

async fn concurrent_counter_hits_are_all_counted(store: Arc<dyn ChallengeStore>) {
    let key = format!("{{client:{}}}:starts", uuid::Uuid::new_v4().simple());
    let hits = (0..12).map(|_| {
        let store = store.clone();
        let key = key.clone();
        tokio::spawn(async move {
            store
                .hit_counter(&key, Duration::from_secs(60))
                .await
                .unwrap()
                .count
        })
    });
    let mut counts: Vec<u64> = futures::future::join_all(hits)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=12).collect::<Vec<_>>());
}

async fn run_suite(store: Arc<dyn ChallengeStore>) {
    store.ping().await.unwrap();
    a_stored_challenge_reads_back_unchanged(store.as_ref()).await;
    failed_attempts_count_up_and_keep_the_rest(store.as_ref()).await;
    an_assertion_challenge_keeps_its_binding_through_attempts(store.as_ref()).await;
    delete_succeeds_once(store.as_ref()).await;
    rate_limit_counts_per_key(store.as_ref()).await;
    concurrent_deletes_have_one_winner(store.clone()).await;
    abuse_counters_count_per_key_and_tell_the_time_left(store.as_ref()).await;
    concurrent_counter_hits_are_all_counted(store.clone()).await;
    concurrent_failed_attempts_are_all_counted(store).await;
}

#[tokio::test]
async fn memory_counters_end_with_the_injected_clock() {
    let (clock, store) = memory_store();
    let window = Duration::from_secs(900);
    assert_eq!(
        store
            .hit_counter("{p:1}:wrong", window)
            .await
            .unwrap()
            .count,
        1
    );
    let start = clock.now();
    clock.set(start + chrono::Duration::seconds(600));
    let read = store.read_counter("{p:1}:wrong").await.unwrap().unwrap();
    // The settable clock keeps running from where it was set.
    assert!(
        read.resets_in > Duration::from_secs(298) && read.resets_in <= Duration::from_secs(300),
        "{read:?}"
    );
    clock.set(start + chrono::Duration::seconds(901));
    assert_eq!(store.read_counter("{p:1}:wrong").await.unwrap(), None);
    assert_eq!(
        store
            .hit_counter("{p:1}:wrong", window)
            .await
            .unwrap()
            .count,
        1
    );
}

fn memory_store() -> (Arc<SettableClock>, Arc<dyn ChallengeStore>) {
    let clock = Arc::new(SettableClock::starting_at(
        Utc.with_ymd_and_hms(2021, 8, 9, 11, 0, 0).unwrap(),
    ));
    let store = Arc::new(MemoryChallengeStore::new(clock.clone()));
    (clock, store)
}

async fn redis_store(
    label: &str,
) -> (
    platform::redis_conn::RedisConnection,
    String,
    RedisChallengeStore,
) {
    let connection = platform::redis_conn::connect_for_tests().await.unwrap();
    let prefix = platform::redis_conn::test_prefix(label);
    let store = RedisChallengeStore::new(connection.clone(), prefix.clone());
    (connection, prefix, store)
}

#[tokio::test]
async fn memory_store_conforms() {
    let (_clock, store) = memory_store();
    run_suite(store).await;
}

#[tokio::test]
async fn redis_store_conforms() {
    let (_connection, _prefix, store) = redis_store("auth-store").await;
    run_suite(Arc::new(store)).await;
}

#[tokio::test]
async fn memory_store_expires_by_the_injected_clock() {
    let (clock, store) = memory_store();
    let id = VerificationId::new_random();
    store.put(&id, &challenge("f"), TTL).await.unwrap();
    let window = Duration::from_secs(600);
    assert_eq!(store.hit_rate_limit("k", window).await.unwrap(), 1);
    assert_eq!(store.hit_rate_limit("k", window).await.unwrap(), 2);

    let start = clock.now();
    clock.set(start + chrono::Duration::seconds(170));
    assert!(store.get(&id).await.unwrap().is_some());
    clock.set(start + chrono::Duration::seconds(181));
    assert_eq!(store.get(&id).await.unwrap(), None);
    assert!(!store.delete(&id).await.unwrap());
    // Still inside the rate window.
    assert_eq!(store.hit_rate_limit("k", window).await.unwrap(), 3);
    // A new window starts after the old one ended.
    clock.set(start + chrono::Duration::seconds(601));
    assert_eq!(store.hit_rate_limit("k", window).await.unwrap(), 1);
}

#[tokio::test]
async fn redis_store_gives_keys_their_ttl_and_keeps_it() {
    let (mut connection, prefix, store) = redis_store("auth-ttl").await;
    let id = VerificationId::new_random();
    store.put(&id, &challenge("g"), TTL).await.unwrap();
    let key = format!("{prefix}auth:challenge:{id}");
    let pttl = |connection: &mut platform::redis_conn::RedisConnection, key: String| {
        let mut connection = connection.clone();
        async move {
            ::redis::cmd("PTTL")
                .arg(key)
                .query_async::<i64>(&mut connection)
                .await
                .unwrap()
        }
    };
    let challenge_ttl = pttl(&mut connection, key.clone()).await;
    assert!(
        challenge_ttl > 170_000 && challenge_ttl <= 180_000,
        "{challenge_ttl}"
    );
    store.record_failed_attempt(&id).await.unwrap();
    let after_attempt = pttl(&mut connection, key).await;
    assert!(
        after_attempt > 170_000 && after_attempt <= challenge_ttl,
        "{after_attempt}"
    );

    let window = Duration::from_secs(600);
    store.hit_rate_limit("start:x", window).await.unwrap();
    let rate_key = format!("{prefix}auth:rate:start:x");
    let first = pttl(&mut connection, rate_key.clone()).await;
    assert!(first > 590_000 && first <= 600_000, "{first}");
    // A later hit does not restart the window.
    store
        .hit_rate_limit("start:x", Duration::from_secs(3600))
        .await
        .unwrap();
    let second = pttl(&mut connection, rate_key).await;
    assert!(second <= first, "{second} > {first}");
}
