//! One conformance suite for every `DeviceLockStore`: the same generic checks run against the
//! Redis store (each test under its own key prefix) and the in-process store, so the two cannot
//! drift. Time is explicit: every call gets its `now`, so no test sleeps.
//!
//! Decision recorded here: a blocked device stays blocked for the whole block duration, even if
//! the holder releases its session in the meantime (R3: "blocked for 10 minutes").

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use session_svc::domain::{DeviceId, PersonKey, SessionId};
use session_svc::{
    ClaimOutcome, DeviceLockStore, DeviceStanding, MemoryDeviceLockStore, RedisDeviceLockStore,
};

const TTL: Duration = Duration::from_secs(1200);
const BLOCK: Duration = Duration::from_secs(600);

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2021-08-09T20:00:00+09:00")
        .unwrap()
        .with_timezone(&Utc)
}

fn at(offset_ms: i64) -> DateTime<Utc> {
    start() + chrono::Duration::milliseconds(offset_ms)
}

fn person() -> PersonKey {
    PersonKey::parse(&format!("pk-{}", uuid::Uuid::new_v4().simple())).unwrap()
}

fn device(name: &str) -> DeviceId {
    DeviceId::parse(name).unwrap()
}

async fn claim_at(
    store: &dyn DeviceLockStore,
    person: &PersonKey,
    device: &DeviceId,
    now: DateTime<Utc>,
) -> ClaimOutcome {
    store.claim(person, device, now, TTL, BLOCK).await.unwrap()
}

async fn granted_at(
    store: &dyn DeviceLockStore,
    person: &PersonKey,
    device: &DeviceId,
    now: DateTime<Utc>,
) -> (SessionId, DateTime<Utc>) {
    match claim_at(store, person, device, now).await {
        ClaimOutcome::Granted {
            session_id,
            expires_at,
        } => (session_id, expires_at),
        refused => panic!("expected the claim to be granted, got {refused:?}"),
    }
}

async fn first_device_is_granted(store: &dyn DeviceLockStore) {
    let person = person();
    let pc = device("pc-1");
    let (session, expires_at) = granted_at(store, &person, &pc, start()).await;
    assert_eq!(expires_at, start() + chrono::Duration::seconds(1200));
    assert!(uuid::Uuid::parse_str(session.as_str()).is_ok());
    assert!(store.validate(&person, &session, &pc, at(1)).await.unwrap());
}

async fn second_device_is_locked_for_the_block_duration(store: &dyn DeviceLockStore) {
    let person = person();
    let (pc, phone) = (device("pc-1"), device("phone-1"));
    let (session, _) = granted_at(store, &person, &pc, start()).await;

    let refused = claim_at(store, &person, &phone, at(1_000)).await;
    assert_eq!(refused, ClaimOutcome::Locked { retry_after: BLOCK });
    // The holder is not disturbed.
    assert!(
        store
            .validate(&person, &session, &pc, at(1_001))
            .await
            .unwrap()
    );

    // A repeated attempt does not extend the block; the wait is rounded up to whole seconds.
    let again = claim_at(store, &person, &phone, at(101_500)).await;
    assert_eq!(
        again,
        ClaimOutcome::Blocked {
            retry_after: Duration::from_secs(500)
        }
    );
    let last_moment = claim_at(store, &person, &phone, at(600_999)).await;
    assert_eq!(
        last_moment,
        ClaimOutcome::Blocked {
            retry_after: Duration::from_secs(1)
        }
    );
    assert!(
        store
            .validate(&person, &session, &pc, at(601_000))
            .await
            .unwrap()
    );
}

async fn a_block_outlives_the_holders_release(store: &dyn DeviceLockStore) {
    let person = person();
    let (pc, phone) = (device("pc-1"), device("phone-1"));
    let (session, _) = granted_at(store, &person, &pc, start()).await;
    assert!(matches!(
        claim_at(store, &person, &phone, start()).await,
        ClaimOutcome::Locked { .. }
    ));
    assert!(store.release(&person, &session, at(5_000)).await.unwrap());

    let still_blocked = claim_at(store, &person, &phone, at(10_000)).await;
    assert_eq!(
        still_blocked,
        ClaimOutcome::Blocked {
            retry_after: Duration::from_secs(590)
        }
    );
    // Once the block has ended, the free lock goes to the waiting device.
    let (phone_session, _) = granted_at(store, &person, &phone, at(600_000)).await;
    assert!(
        store
            .validate(&person, &phone_session, &phone, at(600_001))
            .await
            .unwrap()
    );
}

async fn after_the_block_and_the_lock_end_the_second_device_is_granted(
    store: &dyn DeviceLockStore,
) {
    let person = person();
    let (pc, phone) = (device("pc-1"), device("phone-1"));
    let (pc_session, _) = granted_at(store, &person, &pc, start()).await;
    assert!(matches!(
        claim_at(store, &person, &phone, start()).await,
        ClaimOutcome::Locked { .. }
    ));

    // The block has ended but the holder's session still runs: the device is blocked anew.
    let reblocked = claim_at(store, &person, &phone, at(700_000)).await;
    assert_eq!(reblocked, ClaimOutcome::Locked { retry_after: BLOCK });

    // Both the new block (ends at 1 300 s) and the holder's lock (1 200 s) are over.
    let (phone_session, expires_at) = granted_at(store, &person, &phone, at(1_300_000)).await;
    assert_eq!(expires_at, at(1_300_000 + 1_200_000));
    assert!(
        store
            .validate(&person, &phone_session, &phone, at(1_300_001))
            .await
            .unwrap()
    );
    assert!(
        !store
            .validate(&person, &pc_session, &pc, at(1_300_001))
            .await
            .unwrap()
    );
}

async fn the_same_device_reclaiming_gets_a_new_session(store: &dyn DeviceLockStore) {
    let person = person();
    let pc = device("pc-1");
    let (first, _) = granted_at(store, &person, &pc, start()).await;
    let (second, expires_at) = granted_at(store, &person, &pc, at(60_000)).await;
    assert_ne!(first, second);
    assert_eq!(expires_at, at(60_000 + 1_200_000));
    assert!(
        !store
            .validate(&person, &first, &pc, at(60_001))
            .await
            .unwrap()
    );
    assert!(
        store
            .validate(&person, &second, &pc, at(60_001))
            .await
            .unwrap()
    );
    // The replaced session can no longer free the lock.
    assert!(!store.release(&person, &first, at(60_002)).await.unwrap());
    assert!(
        store
            .validate(&person, &second, &pc, at(60_003))
            .await
            .unwrap()
    );
}

async fn a_release_by_another_session_does_nothing(store: &dyn DeviceLockStore) {
    let person = person();
    let pc = device("pc-1");
    let (session, _) = granted_at(store, &person, &pc, start()).await;
    let stranger = SessionId::generate();
    assert!(!store.release(&person, &stranger, at(1)).await.unwrap());
    assert!(store.validate(&person, &session, &pc, at(2)).await.unwrap());

    assert!(store.release(&person, &session, at(3)).await.unwrap());
    assert!(!store.validate(&person, &session, &pc, at(4)).await.unwrap());
    assert!(!store.release(&person, &session, at(5)).await.unwrap());
    // The lock is free: another device may take it right away.
    granted_at(store, &person, &device("phone-1"), at(6)).await;
}

async fn releasing_an_expired_lock_reports_nothing_released(store: &dyn DeviceLockStore) {
    let person = person();
    let pc = device("pc-1");
    let (session, _) = granted_at(store, &person, &pc, start()).await;
    assert!(
        !store
            .release(&person, &session, at(1_200_000))
            .await
            .unwrap()
    );
    assert!(!store.validate(&person, &session, &pc, at(1)).await.unwrap());
}

async fn validation_checks_device_session_person_and_expiry(store: &dyn DeviceLockStore) {
    let person = person();
    let pc = device("pc-1");
    let (session, _) = granted_at(store, &person, &pc, start()).await;
    assert!(
        !store
            .validate(&person, &session, &device("pc-2"), at(1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .validate(&person, &SessionId::generate(), &pc, at(1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .validate(&self::person(), &session, &pc, at(1))
            .await
            .unwrap()
    );
    assert!(
        store
            .validate(&person, &session, &pc, at(1_199_999))
            .await
            .unwrap()
    );
    assert!(
        !store
            .validate(&person, &session, &pc, at(1_200_000))
            .await
            .unwrap()
    );
}

async fn locks_and_blocks_are_per_person_and_per_device(store: &dyn DeviceLockStore) {
    let (alice, bob) = (person(), person());
    let (pc, phone, tablet) = (device("pc-1"), device("phone-1"), device("tablet-1"));
    granted_at(store, &alice, &pc, start()).await;
    // Another person on the device that was just refused for Alice is not affected.
    assert!(matches!(
        claim_at(store, &alice, &phone, start()).await,
        ClaimOutcome::Locked { .. }
    ));
    granted_at(store, &bob, &phone, at(1)).await;
    // Each refused device gets its own block, starting at its own attempt.
    let tablet_refused = claim_at(store, &alice, &tablet, at(300_000)).await;
    assert_eq!(tablet_refused, ClaimOutcome::Locked { retry_after: BLOCK });
    let phone_refused = claim_at(store, &alice, &phone, at(300_000)).await;
    assert_eq!(
        phone_refused,
        ClaimOutcome::Blocked {
            retry_after: Duration::from_secs(300)
        }
    );
}

async fn of_twenty_racing_devices_exactly_one_wins(store: &dyn DeviceLockStore) {
    let person = person();
    let devices: Vec<DeviceId> = (0..20)
        .map(|index| device(&format!("dev-{index}")))
        .collect();
    let attempts = devices
        .iter()
        .map(|device| store.claim(&person, device, start(), TTL, BLOCK));
    let outcomes = futures::future::join_all(attempts).await;

    let mut winners = Vec::new();
    for (device, outcome) in devices.iter().zip(outcomes) {
        match outcome.unwrap() {
            ClaimOutcome::Granted { session_id, .. } => winners.push((device.clone(), session_id)),
            ClaimOutcome::Locked { retry_after } => assert_eq!(retry_after, BLOCK),
            blocked => panic!("no device was blocked before the race: {blocked:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one device wins: {winners:?}");
    let (winner, session) = &winners[0];
    assert!(
        store
            .validate(&person, session, winner, at(1))
            .await
            .unwrap()
    );
}

async fn standing_answers_what_a_claim_would_and_changes_nothing(store: &dyn DeviceLockStore) {
    let person = person();
    let (pc, phone) = (device("pc-1"), device("phone-1"));
    let standing = |device: &DeviceId, now| {
        let person = person.clone();
        let device = device.clone();
        async move { store.standing(&person, &device, now).await.unwrap() }
    };
    assert_eq!(standing(&pc, start()).await, DeviceStanding::Free);
    // Asking did not claim: the lock is still free for either device.
    let (session, _) = granted_at(store, &person, &pc, at(1)).await;
    assert_eq!(standing(&pc, at(2)).await, DeviceStanding::Free);
    for offset in [2, 3, 4] {
        assert_eq!(
            standing(&phone, at(offset)).await,
            DeviceStanding::HeldByAnother
        );
    }
    // Asking did not block the phone: once the holder leaves, the phone is granted at once.
    assert!(store.release(&person, &session, at(5)).await.unwrap());
    assert_eq!(standing(&phone, at(6)).await, DeviceStanding::Free);
    let (phone_session, _) = granted_at(store, &person, &phone, at(7)).await;
    assert!(
        store
            .validate(&person, &phone_session, &phone, at(8))
            .await
            .unwrap()
    );

    // A claim that blocked the pc: the standing tells the block's rest, rounded up.
    assert!(matches!(
        claim_at(store, &person, &pc, at(10_000)).await,
        ClaimOutcome::Locked { .. }
    ));
    assert_eq!(
        standing(&pc, at(250_500)).await,
        DeviceStanding::Blocked {
            retry_after: Duration::from_secs(360)
        }
    );
    // Still blocked after the holder's release, as a claim would be.
    assert!(
        store
            .release(&person, &phone_session, at(300_000))
            .await
            .unwrap()
    );
    assert!(matches!(
        standing(&pc, at(300_001)).await,
        DeviceStanding::Blocked { .. }
    ));
    assert_eq!(standing(&pc, at(610_000)).await, DeviceStanding::Free);
    // Another person's lock and blocks are not this person's.
    assert_eq!(
        store
            .standing(&self::person(), &pc, at(300_001))
            .await
            .unwrap(),
        DeviceStanding::Free
    );
}

async fn memory_store() -> Arc<dyn DeviceLockStore> {
    Arc::new(MemoryDeviceLockStore::new())
}

async fn redis_store() -> Arc<dyn DeviceLockStore> {
    let connection = platform::redis_conn::connect_for_tests()
        .await
        .expect("the Redis store tests need Redis");
    Arc::new(RedisDeviceLockStore::new(
        connection,
        platform::redis_conn::test_prefix("session-conformance"),
    ))
}

macro_rules! conformance_suite {
    ($module:ident, $make_store:ident, [$($case:ident),* $(,)?]) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let store = super::$make_store().await;
                    super::$case(store.as_ref()).await;
                }
            )*
        }
    };
}

macro_rules! both_stores {
    ($($case:ident),* $(,)?) => {
        conformance_suite!(memory, memory_store, [$($case),*]);
        conformance_suite!(redis, redis_store, [$($case),*]);
    };
}

both_stores!(
    first_device_is_granted,
    second_device_is_locked_for_the_block_duration,
    a_block_outlives_the_holders_release,
    after_the_block_and_the_lock_end_the_second_device_is_granted,
    the_same_device_reclaiming_gets_a_new_session,
    a_release_by_another_session_does_nothing,
    releasing_an_expired_lock_reports_nothing_released,
    validation_checks_device_session_person_and_expiry,
    locks_and_blocks_are_per_person_and_per_device,
    of_twenty_racing_devices_exactly_one_wins,
    standing_answers_what_a_claim_would_and_changes_nothing,
);
