//! Conformance checks of `BookingStore::change_booking`: the place moves in one step, a refused
//! change leaves everything as it was, and concurrent changes (and cancels) keep every slot's
//! booked count equal to the confirmed bookings it holds, never above capacity, without
//! deadlocks.

use std::collections::HashMap;

use chrono::Utc;
use futures::future::join_all;
use uuid::Uuid;

use super::{CAMPAIGN, OTHER_CAMPAIGN, booked, booking, center, date, draft, slot};
use crate::domain::{Booking, BookingStatus, ReleasedShare, Slot};
use crate::store::{BookingStore, BookingStoreError};

/// Slots on 2021-09-`day` at one new center.
async fn slots_on(store: &dyn BookingStore, days_and_capacities: &[(u32, i32)]) -> Vec<Slot> {
    let center = center(store, "서울", "강남 센터").await;
    let mut slots = Vec::new();
    for (hour, (day, capacity)) in (9..).zip(days_and_capacities) {
        slots.push(
            store
                .upsert_slot(draft(&center, CAMPAIGN, *day, hour, *capacity))
                .await
                .unwrap(),
        );
    }
    slots
}

/// Books `slot` for each of `people`.
async fn book_all(store: &dyn BookingStore, slot: &Slot, people: &[String]) -> Vec<Booking> {
    let mut bookings = Vec::new();
    for person in people {
        bookings.push(
            store
                .create_booking(booking(person, slot, None))
                .await
                .unwrap(),
        );
    }
    bookings
}

/// Asserts R10 for `slots`: each slot's booked count is the number of confirmed bookings of
/// `people` in it, and within capacity.
async fn assert_counts_match_bookings(
    store: &dyn BookingStore,
    slots: &[&Slot],
    people: &[String],
) {
    let mut confirmed: HashMap<Uuid, i32> = HashMap::new();
    for person in people {
        for held in store.list_bookings(person).await.unwrap() {
            if held.status == BookingStatus::Confirmed {
                *confirmed.entry(held.slot.id).or_default() += 1;
            }
        }
    }
    for slot in slots {
        let now = store.get_slot(slot.id).await.unwrap().unwrap();
        assert!(now.booked <= now.capacity, "{now:?} is over capacity");
        assert_eq!(
            now.booked,
            confirmed.get(&slot.id).copied().unwrap_or(0),
            "booked count of slot {} differs from its confirmed bookings",
            slot.id
        );
    }
}

fn people(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{prefix}-{n}")).collect()
}

pub async fn a_change_moves_the_place(store: &dyn BookingStore) {
    let slots = slots_on(store, &[(10, 5), (12, 5)]).await;
    let (old, new) = (&slots[0], &slots[1]);
    let created = store
        .create_booking(booking("alice", old, Some("first")))
        .await
        .unwrap();
    assert_eq!(created.cancellable_until, date(8));

    let moved = store
        .change_booking(created.id, "alice", new.id, 3, ReleasedShare::FULL)
        .await
        .unwrap();
    assert_eq!(moved.id, created.id);
    assert_eq!(moved.slot.id, new.id);
    assert_eq!(moved.slot.remaining(), 4, "the new place is taken");
    assert_eq!(moved.status, BookingStatus::Confirmed);
    assert_eq!(moved.cancellable_until, date(9), "D-3 of 2021-09-12");
    assert_eq!(
        (moved.created_at, moved.idempotency_key.as_deref()),
        (created.created_at, Some("first"))
    );
    assert_eq!(booked(store, old).await, 0, "the old place is given back");
    assert_eq!(booked(store, new).await, 1);
    assert_eq!(
        store.get_booking(created.id).await.unwrap(),
        Some(moved.clone())
    );

    // Moving to the slot it holds changes nothing, not even the deadline.
    let again = store
        .change_booking(created.id, "alice", new.id, 2, ReleasedShare::FULL)
        .await
        .unwrap();
    assert_eq!(again, moved);
    assert_eq!(booked(store, new).await, 1);

    // Still one confirmed booking in the campaign.
    let second = store.create_booking(booking("alice", old, None)).await;
    assert!(
        matches!(second, Err(BookingStoreError::AlreadyBooked)),
        "{second:?}"
    );

    // A slot of another campaign, or none at all, is not a slot this booking can move to.
    let elsewhere = slot(store, OTHER_CAMPAIGN, 5).await;
    for target in [elsewhere.id, Uuid::new_v4()] {
        let refused = store
            .change_booking(created.id, "alice", target, 2, ReleasedShare::FULL)
            .await;
        assert!(
            matches!(refused, Err(BookingStoreError::NotFound("slot"))),
            "{refused:?}"
        );
    }
    assert_eq!(booked(store, &elsewhere).await, 0);
    assert_eq!(store.get_booking(created.id).await.unwrap(), Some(moved));
}

pub async fn a_change_into_a_full_slot_changes_nothing(store: &dyn BookingStore) {
    let slots = slots_on(store, &[(10, 5), (12, 1)]).await;
    let (old, full) = (&slots[0], &slots[1]);
    store
        .create_booking(booking("bob", full, None))
        .await
        .unwrap();
    let mine = store
        .create_booking(booking("carol", old, None))
        .await
        .unwrap();
    let refused = store
        .change_booking(mine.id, "carol", full.id, 2, ReleasedShare::FULL)
        .await;
    assert!(
        matches!(refused, Err(BookingStoreError::SlotFull)),
        "{refused:?}"
    );
    assert_eq!(booked(store, old).await, 1, "the old place is kept");
    assert_eq!(booked(store, full).await, 1);
    assert_eq!(store.get_booking(mine.id).await.unwrap(), Some(mine));
}

pub async fn only_a_confirmed_booking_of_ones_own_changes(store: &dyn BookingStore) {
    let slots = slots_on(store, &[(10, 5), (12, 5)]).await;
    let (old, new) = (&slots[0], &slots[1]);
    let dropped = store
        .create_booking(booking("dave", old, None))
        .await
        .unwrap();
    store
        .cancel_booking(dropped.id, "dave", Utc::now())
        .await
        .unwrap();
    let cancelled = store
        .change_booking(dropped.id, "dave", new.id, 2, ReleasedShare::FULL)
        .await;
    assert!(
        matches!(cancelled, Err(BookingStoreError::AlreadyCancelled)),
        "{cancelled:?}"
    );

    let theirs = store
        .create_booking(booking("erin", old, None))
        .await
        .unwrap();
    let stolen = store
        .change_booking(theirs.id, "mallory", new.id, 2, ReleasedShare::FULL)
        .await;
    assert!(
        matches!(stolen, Err(BookingStoreError::NotFound("booking"))),
        "{stolen:?}"
    );
    let unknown = store
        .change_booking(Uuid::new_v4(), "erin", new.id, 2, ReleasedShare::FULL)
        .await;
    assert!(
        matches!(unknown, Err(BookingStoreError::NotFound("booking"))),
        "{unknown:?}"
    );
    assert_eq!(booked(store, old).await, 1);
    assert_eq!(booked(store, new).await, 0);
    assert_eq!(store.get_booking(theirs.id).await.unwrap(), Some(theirs));
}

pub async fn concurrent_changes_never_overfill_the_new_slot(store: &dyn BookingStore) {
    let slots = slots_on(store, &[(10, 5), (11, 5), (12, 3)]).await;
    let (first, second, target) = (&slots[0], &slots[1], &slots[2]);
    let everyone = people("rush", 10);
    let mut bookings = book_all(store, first, &everyone[..5]).await;
    bookings.extend(book_all(store, second, &everyone[5..]).await);

    let outcomes = join_all(bookings.iter().map(|held| {
        store.change_booking(held.id, &held.person_key, target.id, 2, ReleasedShare::FULL)
    }))
    .await;
    let moved = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let full = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Err(BookingStoreError::SlotFull)))
        .count();
    assert_eq!((moved, full), (3, 7), "{outcomes:?}");
    assert_eq!(booked(store, target).await, 3);
    assert_eq!(booked(store, first).await + booked(store, second).await, 7);
    assert_counts_match_bookings(store, &[first, second, target], &everyone).await;
}

pub async fn crossing_changes_do_not_deadlock(store: &dyn BookingStore) {
    // Room for everyone in either slot, whatever order the changes land in.
    let slots = slots_on(store, &[(10, 16), (11, 16)]).await;
    let (east, west) = (&slots[0], &slots[1]);
    let everyone = people("swap", 16);
    let eastern = book_all(store, east, &everyone[..8]).await;
    let western = book_all(store, west, &everyone[8..]).await;

    // Half move east → west while the other half move west → east: the two slot rows are
    // locked in opposite "old, new" orders, so only a fixed lock order avoids deadlocks.
    let to_west = eastern.iter().map(|held| {
        store.change_booking(held.id, &held.person_key, west.id, 2, ReleasedShare::FULL)
    });
    let to_east = western.iter().map(|held| {
        store.change_booking(held.id, &held.person_key, east.id, 2, ReleasedShare::FULL)
    });
    let (to_west, to_east) = futures::join!(join_all(to_west), join_all(to_east));
    for outcome in to_west.iter().chain(&to_east) {
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    assert!(
        to_west
            .iter()
            .flatten()
            .all(|moved| moved.slot.id == west.id)
    );
    assert!(
        to_east
            .iter()
            .flatten()
            .all(|moved| moved.slot.id == east.id)
    );
    assert_eq!(
        (booked(store, east).await, booked(store, west).await),
        (8, 8)
    );
    assert_counts_match_bookings(store, &[east, west], &everyone).await;
}

pub async fn a_change_racing_a_cancel_frees_one_place(store: &dyn BookingStore) {
    let slots = slots_on(store, &[(10, 10), (12, 10)]).await;
    let (old, new) = (&slots[0], &slots[1]);
    let everyone = people("race", 8);
    let bookings = book_all(store, old, &everyone).await;

    // Whichever wins, each booking ends cancelled and its one place is free again, in the
    // slot it held last.
    let changes = bookings.iter().map(|held| {
        store.change_booking(held.id, &held.person_key, new.id, 2, ReleasedShare::FULL)
    });
    let cancels = bookings
        .iter()
        .map(|held| store.cancel_booking(held.id, &held.person_key, Utc::now()));
    let (changed, cancelled) = futures::join!(join_all(changes), join_all(cancels));
    for outcome in &changed {
        assert!(
            matches!(outcome, Ok(_) | Err(BookingStoreError::AlreadyCancelled)),
            "{outcome:?}"
        );
    }
    for outcome in &cancelled {
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    for held in &bookings {
        let now = store.get_booking(held.id).await.unwrap().unwrap();
        assert_eq!(now.status, BookingStatus::Cancelled);
    }
    assert_eq!((booked(store, old).await, booked(store, new).await), (0, 0));
    assert_counts_match_bookings(store, &[old, new], &everyone).await;
}
