//! One suite for both admission-use stores (PostgreSQL in its own test database, and in
//! memory): a grant allows its uses and no more, concurrent attempts on one grant take
//! distinct uses, and a grant spent by a write answers that write's idempotency key.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use booking_svc::admission::uses::{AdmissionUses, MemoryAdmissionUses, PgAdmissionUses, Spend};
use chrono::Utc;

async fn uses_are_counted_and_spent(store: Arc<dyn AdmissionUses>) {
    let expires = Utc::now() + chrono::Duration::minutes(2);
    let grant = format!("g-{}", uuid::Uuid::new_v4());
    assert_eq!(
        store.spend(&grant, 2, expires).await.unwrap(),
        Spend::Allowed(1)
    );
    assert_eq!(
        store.spend(&grant, 2, expires).await.unwrap(),
        Spend::Allowed(2)
    );
    assert_eq!(
        store.spend(&grant, 2, expires).await.unwrap(),
        Spend::Spent { by: None }
    );

    // Concurrent attempts on one grant: exactly `allowed` get through.
    let shared = format!("g-{}", uuid::Uuid::new_v4());
    let mut attempts = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        let shared = shared.clone();
        attempts.push(tokio::spawn(async move {
            store.spend(&shared, 3, expires).await.unwrap()
        }));
    }
    let mut allowed = 0;
    for attempt in attempts {
        if matches!(attempt.await.unwrap(), Spend::Allowed(_)) {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 3);

    // A successful write spends the grant, remembering its idempotency key.
    let spent = format!("g-{}", uuid::Uuid::new_v4());
    assert_eq!(
        store.spend(&spent, 3, expires).await.unwrap(),
        Spend::Allowed(1)
    );
    store.finish(&spent, Some("key-1")).await.unwrap();
    assert_eq!(
        store.spend(&spent, 3, expires).await.unwrap(),
        Spend::Spent {
            by: Some("key-1".to_owned())
        }
    );
}

#[tokio::test]
async fn memory() {
    uses_are_counted_and_spent(Arc::new(MemoryAdmissionUses::default())).await;
}

#[tokio::test]
async fn postgres() {
    let url = platform::pg::create_test_database("admission_uses")
        .await
        .unwrap();
    let pool = platform::pg::pool(&url, 8).unwrap();
    let store = PgAdmissionUses::migrate(&url, pool).await.unwrap();
    uses_are_counted_and_spent(Arc::new(store)).await;
}
