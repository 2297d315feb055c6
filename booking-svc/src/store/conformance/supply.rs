//! Conformance checks of the released share (R5) and of proxy bookings (R1): a slot's supply
//! released in steps is never booked past the share in force, whatever the concurrency (a
//! change into the slot included), and a proxy booking records its booker, counts against the
//! booker's limit atomically, and is seen by both the booker and the person booked for.

use futures::future::join_all;

use super::{CAMPAIGN, booked, booking, slot};
use crate::domain::{NewBooking, ProxyBooking, ReleasedShare, Slot};
use crate::store::{BookingStore, BookingStoreError};

fn share(basis_points: u32) -> ReleasedShare {
    ReleasedShare::from_basis_points(basis_points).unwrap()
}

fn released(person: &str, slot: &Slot, released_share: ReleasedShare) -> NewBooking {
    NewBooking {
        released_share,
        ..booking(person, slot, None)
    }
}

fn by_proxy(booker: &str, person: &str, slot: &Slot, max_per_booker: u32) -> NewBooking {
    NewBooking {
        proxy: Some(ProxyBooking {
            booked_by: booker.to_owned(),
            beneficiary_masked_name: "홍*동".to_owned(),
            max_per_booker,
        }),
        ..booking(person, slot, None)
    }
}

/// 40 bookers at once under `share`: how many got a place.
async fn rush(store: &dyn BookingStore, slot: &Slot, step: &str, share: ReleasedShare) -> usize {
    let attempts =
        (0..40).map(|n| store.create_booking(released(&format!("{step}-{n}"), slot, share)));
    let outcomes = join_all(attempts).await;
    for outcome in &outcomes {
        assert!(
            matches!(outcome, Ok(_) | Err(BookingStoreError::SlotFull)),
            "{outcome:?}"
        );
    }
    outcomes.iter().filter(|outcome| outcome.is_ok()).count()
}

pub async fn supply_released_in_steps_is_never_booked_past_the_share(store: &dyn BookingStore) {
    let slot = slot(store, CAMPAIGN, 25).await;
    // Before the first window nothing is bookable.
    assert_eq!(rush(store, &slot, "before", ReleasedShare::NONE).await, 0);
    // A tenth of 25 is 2 places (floored), then 30 % → 7, 55 % → 13, then everything.
    assert_eq!(rush(store, &slot, "first", share(1_000)).await, 2);
    assert_eq!(booked(store, &slot).await, 2);
    assert_eq!(rush(store, &slot, "second", share(3_000)).await, 5);
    assert_eq!(booked(store, &slot).await, 7);
    assert_eq!(rush(store, &slot, "third", share(5_500)).await, 6);
    assert_eq!(booked(store, &slot).await, 13);
    assert_eq!(rush(store, &slot, "open", ReleasedShare::FULL).await, 12);
    assert_eq!(booked(store, &slot).await, 25);
    let stored = store.get_slot(slot.id).await.unwrap().unwrap();
    assert_eq!(stored.clone().released_at(share(5_500)).remaining(), 0);
    assert_eq!(stored.released_at(ReleasedShare::FULL).remaining(), 0);
}

pub async fn a_change_takes_only_a_released_place(store: &dyn BookingStore) {
    let from = slot(store, CAMPAIGN, 10).await;
    let into = slot(store, CAMPAIGN, 10).await;
    let held = store
        .create_booking(booking("mover", &from, None))
        .await
        .unwrap();
    store
        .create_booking(released("first", &into, share(1_000)))
        .await
        .unwrap();
    let refused = store
        .change_booking(held.id, "mover", into.id, 2, share(1_000))
        .await;
    assert!(
        matches!(refused, Err(BookingStoreError::SlotFull)),
        "{refused:?}"
    );
    assert_eq!(
        (booked(store, &from).await, booked(store, &into).await),
        (1, 1)
    );
    let moved = store
        .change_booking(held.id, "mover", into.id, 2, share(2_000))
        .await
        .unwrap();
    assert_eq!(moved.slot.id, into.id);
    assert_eq!(
        (booked(store, &from).await, booked(store, &into).await),
        (0, 2)
    );
}

pub async fn a_proxy_booking_records_its_booker_within_the_limit(store: &dyn BookingStore) {
    let slot = slot(store, CAMPAIGN, 20).await;
    // One booker, five people at once, a limit of two.
    let attempts =
        (0..5).map(|n| store.create_booking(by_proxy("child", &format!("parent-{n}"), &slot, 2)));
    let outcomes = join_all(attempts).await;
    let made = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let limited = outcomes
        .iter()
        .filter(|outcome| {
            matches!(
                outcome,
                Err(BookingStoreError::ProxyLimitReached { max: 2 })
            )
        })
        .count();
    assert_eq!((made, limited), (2, 3), "{outcomes:?}");
    assert_eq!(booked(store, &slot).await, 2);

    let mine = store.list_bookings_made_for_others("child").await.unwrap();
    assert_eq!(mine.len(), 2);
    for booking in &mine {
        assert_eq!(booking.booked_by.as_deref(), Some("child"));
        assert_eq!(booking.beneficiary_masked_name.as_deref(), Some("홍*동"));
        assert!(booking.made_by_proxy());
        // The person booked for sees it among their own bookings.
        let theirs = store.list_bookings(&booking.person_key).await.unwrap();
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0].id, booking.id);
    }
    assert!(store.list_bookings("child").await.unwrap().is_empty());
    assert!(
        store
            .list_bookings_made_for_others(&mine[0].person_key)
            .await
            .unwrap()
            .is_empty()
    );

    // The person booked for already holds a booking: the one-booking rule holds for them.
    let again = store
        .create_booking(by_proxy("sibling", &mine[0].person_key, &slot, 2))
        .await;
    assert!(
        matches!(again, Err(BookingStoreError::AlreadyBooked)),
        "{again:?}"
    );
    // A cancelled proxy booking no longer counts against the limit.
    store
        .cancel_booking(mine[0].id, &mine[0].person_key, chrono::Utc::now())
        .await
        .unwrap();
    store
        .create_booking(by_proxy("child", "parent-new", &slot, 2))
        .await
        .unwrap();
    assert_eq!(booked(store, &slot).await, 2);
}
