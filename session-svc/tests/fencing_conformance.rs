//! Fencing numbers and idle sessions, for both lock stores (Redis under its own key prefix, and
//! in process): the number grows each time the person's lock changes hands, a validation
//! answers the number in force, and a session ends after the idle timeout without a validation
//! — not only at the end of its lifetime — so another device may then claim the person.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use session_svc::domain::{DeviceId, PersonKey, SessionId};
use session_svc::store::LockOperations;
use session_svc::{ClaimOutcome, DeviceLockStore, MemoryDeviceLockStore, RedisDeviceLockStore};

const TTL: Duration = Duration::from_secs(1200);
const BLOCK: Duration = Duration::from_secs(600);
const IDLE: Duration = Duration::from_secs(60);

fn at(offset_ms: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2021-08-09T20:00:00+09:00")
        .unwrap()
        .with_timezone(&Utc)
        + chrono::Duration::milliseconds(offset_ms)
}

fn person() -> PersonKey {
    PersonKey::parse(&format!("pk-{}", uuid::Uuid::new_v4().simple())).unwrap()
}

fn device(name: &str) -> DeviceId {
    DeviceId::parse(name).unwrap()
}

async fn granted(
    store: &dyn DeviceLockStore,
    who: &PersonKey,
    on: &DeviceId,
    now: DateTime<Utc>,
) -> SessionId {
    match store.claim(who, on, now, TTL, BLOCK).await.unwrap() {
        ClaimOutcome::Granted { session_id, .. } => session_id,
        refused => panic!("expected a grant, got {refused:?}"),
    }
}

async fn the_fencing_number_grows_each_time_the_lock_changes_hands<S>(store: Arc<S>)
where
    S: DeviceLockStore + LockOperations + 'static,
{
    let who = person();
    let (pc, phone) = (device("pc-1"), device("phone-1"));
    let first = granted(store.as_ref(), &who, &pc, at(0)).await;
    let one = store
        .validate_fenced(&who, &first, &pc, at(1))
        .await
        .unwrap();
    assert!(one.valid);
    assert!(one.fence >= 1);
    // Released, then claimed by the phone: a higher number; the old session is not valid.
    assert!(store.release(&who, &first, at(2)).await.unwrap());
    let second = granted(store.as_ref(), &who, &phone, at(3)).await;
    let two = store
        .validate_fenced(&who, &second, &phone, at(4))
        .await
        .unwrap();
    assert!(two.valid);
    assert!(two.fence > one.fence, "{two:?} after {one:?}");
    let old = store
        .validate_fenced(&who, &first, &pc, at(4))
        .await
        .unwrap();
    assert!(!old.valid);
    assert_eq!(
        old.fence, two.fence,
        "the number in force is the new holder's"
    );
    // An operator sees the holder and the number; a forced release frees the lock.
    let seen = store.inspect(&who, at(5)).await.unwrap();
    assert_eq!(seen.fence, two.fence);
    assert_eq!(seen.lock.unwrap().session_id, second.as_str());
    assert!(store.force_release(&who, at(6)).await.unwrap());
    assert!(store.inspect(&who, at(7)).await.unwrap().lock.is_none());
    let third = granted(store.as_ref(), &who, &pc, at(8)).await;
    let three = store
        .validate_fenced(&who, &third, &pc, at(9))
        .await
        .unwrap();
    assert!(three.fence > two.fence);
}

async fn a_session_ends_after_idleness<S>(store: Arc<S>)
where
    S: DeviceLockStore + LockOperations + 'static,
{
    let who = person();
    let (pc, phone) = (device("pc-1"), device("phone-1"));
    let session = granted(store.as_ref(), &who, &pc, at(0)).await;
    // Activity keeps it alive past the idle timeout…
    assert!(
        store
            .validate(&who, &session, &pc, at(59_000))
            .await
            .unwrap()
    );
    assert!(
        store
            .validate(&who, &session, &pc, at(118_000))
            .await
            .unwrap()
    );
    // …and a minute without any ends it, long before its lifetime.
    assert!(
        !store
            .validate(&who, &session, &pc, at(178_001))
            .await
            .unwrap()
    );
    // Ended, it no longer blocks another device.
    granted(store.as_ref(), &who, &phone, at(178_002)).await;
}

async fn idleness_never_extends_a_session_past_its_lifetime<S>(store: Arc<S>)
where
    S: DeviceLockStore + LockOperations + 'static,
{
    let who = person();
    let pc = device("pc-1");
    let session = granted(store.as_ref(), &who, &pc, at(0)).await;
    let mut now = 0;
    while now < 1_199_000 {
        now += 50_000;
        let alive = store.validate(&who, &session, &pc, at(now)).await.unwrap();
        assert_eq!(alive, now < 1_200_000, "at {now} ms");
    }
    assert!(
        !store
            .validate(&who, &session, &pc, at(1_200_001))
            .await
            .unwrap()
    );
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    let store = super::MemoryDeviceLockStore::new().with_idle_timeout(super::IDLE);
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let connection = platform::redis_conn::connect_for_tests().await.unwrap();
                    let prefix = platform::redis_conn::test_prefix("fencing");
                    let store = super::RedisDeviceLockStore::new(connection, prefix)
                        .with_idle_timeout(super::IDLE);
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

conformance!(
    the_fencing_number_grows_each_time_the_lock_changes_hands,
    a_session_ends_after_idleness,
    idleness_never_extends_a_session_past_its_lifetime,
);
