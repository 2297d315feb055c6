//! The one conformance suite every [`BookingStore`] must pass: each check is a plain async fn
//! over `&dyn BookingStore`, and the macro at the bottom runs every check against the
//! in-process store and against PostgreSQL (a fresh database per test). The checks of
//! changing a booking live in `change.rs` and run through the same macro.

#![allow(clippy::unwrap_used)]

mod change;
mod supply;

use change::{
    a_change_into_a_full_slot_changes_nothing, a_change_moves_the_place,
    a_change_racing_a_cancel_frees_one_place, concurrent_changes_never_overfill_the_new_slot,
    crossing_changes_do_not_deadlock, only_a_confirmed_booking_of_ones_own_changes,
};
use supply::{
    a_change_takes_only_a_released_place, a_proxy_booking_records_its_booker_within_the_limit,
    supply_released_in_steps_is_never_booked_past_the_share,
};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Seoul;
use futures::future::join_all;
use uuid::Uuid;

use super::{BookingStore, BookingStoreError};
use crate::domain::{
    Booking, BookingStatus, Center, IdempotencyKey, NewBooking, ReleasedShare, Slot, SlotDraft,
};

const CAMPAIGN: &str = "r18-49";
const OTHER_CAMPAIGN: &str = "r60-plus";

fn date(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2021, 9, day).unwrap()
}

fn kst(day: u32, hour: u32) -> DateTime<Utc> {
    Seoul
        .with_ymd_and_hms(2021, 9, day, hour, 0, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

async fn center(store: &dyn BookingStore, region: &str, name: &str) -> Center {
    store
        .upsert_center(Center {
            id: Uuid::new_v4(),
            name: name.to_owned(),
            region: region.to_owned(),
            address: format!("{name} 1"),
        })
        .await
        .unwrap()
}

fn draft(center: &Center, campaign: &str, day: u32, hour: u32, capacity: i32) -> SlotDraft {
    SlotDraft {
        id: Uuid::new_v4(),
        campaign_id: campaign.to_owned(),
        center_id: center.id,
        date: date(day),
        starts_at: kst(day, hour),
        ends_at: kst(day, hour + 1),
        vaccine: "mRNA".to_owned(),
        capacity,
    }
}

async fn slot(store: &dyn BookingStore, campaign: &str, capacity: i32) -> Slot {
    let center = center(store, "서울", "중구 센터").await;
    store
        .upsert_slot(draft(&center, campaign, 10, 9, capacity))
        .await
        .unwrap()
}

fn booking(person: &str, slot: &Slot, key: Option<&str>) -> NewBooking {
    NewBooking {
        id: Uuid::new_v4(),
        person_key: person.to_owned(),
        campaign_id: slot.campaign_id.clone(),
        slot_id: slot.id,
        idempotency_key: key.map(|key| IdempotencyKey::parse_optional(key).unwrap().unwrap()),
        created_at: Utc::now(),
        cancellation_closes_days_before: 2,
        released_share: ReleasedShare::FULL,
        proxy: None,
        agent: None,
    }
}

async fn booked(store: &dyn BookingStore, slot: &Slot) -> i32 {
    store.get_slot(slot.id).await.unwrap().unwrap().booked
}

pub async fn capacity_is_never_exceeded_under_concurrency(store: &dyn BookingStore) {
    let slot = slot(store, CAMPAIGN, 10).await;
    let attempts =
        (0..50).map(|n| store.create_booking(booking(&format!("person-{n}"), &slot, None)));
    let outcomes = join_all(attempts).await;
    let succeeded = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let full = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Err(BookingStoreError::SlotFull)))
        .count();
    assert_eq!(succeeded, 10, "{outcomes:?}");
    assert_eq!(full, 40);
    assert_eq!(booked(store, &slot).await, 10);
    assert_eq!(
        store.get_slot(slot.id).await.unwrap().unwrap().remaining(),
        0
    );
}

pub async fn one_confirmed_booking_per_person_and_campaign(store: &dyn BookingStore) {
    let first = slot(store, CAMPAIGN, 5).await;
    let second = slot(store, CAMPAIGN, 5).await;
    store
        .create_booking(booking("alice", &first, None))
        .await
        .unwrap();
    let again = store.create_booking(booking("alice", &second, None)).await;
    assert!(
        matches!(again, Err(BookingStoreError::AlreadyBooked)),
        "{again:?}"
    );
    assert_eq!(
        booked(store, &second).await,
        0,
        "the refused booking took a place"
    );
    assert_eq!(booked(store, &first).await, 1);
    assert_eq!(store.list_bookings("alice").await.unwrap().len(), 1);
}

pub async fn concurrent_bookings_of_one_person_keep_one(store: &dyn BookingStore) {
    let slots = join_all((0..5).map(|_| slot(store, CAMPAIGN, 5))).await;
    let outcomes = join_all(
        slots
            .iter()
            .map(|slot| store.create_booking(booking("bob", slot, None))),
    )
    .await;
    assert_eq!(outcomes.iter().filter(|outcome| outcome.is_ok()).count(), 1);
    let mut total = 0;
    for slot in &slots {
        total += booked(store, slot).await;
    }
    assert_eq!(total, 1);
}

pub async fn a_person_may_book_in_another_campaign(store: &dyn BookingStore) {
    let first = slot(store, CAMPAIGN, 5).await;
    let other = slot(store, OTHER_CAMPAIGN, 5).await;
    store
        .create_booking(booking("carol", &first, None))
        .await
        .unwrap();
    let second = store
        .create_booking(booking("carol", &other, None))
        .await
        .unwrap();
    assert_eq!(second.campaign_id, OTHER_CAMPAIGN);
    assert_eq!(second.status, BookingStatus::Confirmed);
    assert_eq!(second.slot.booked, 1);
}

pub async fn a_booking_records_what_was_asked(store: &dyn BookingStore) {
    let slot = slot(store, CAMPAIGN, 5).await;
    let request = booking("dave", &slot, Some("key-1"));
    let created = store.create_booking(request.clone()).await.unwrap();
    assert_eq!(created.id, request.id);
    assert_eq!(created.person_key, "dave");
    assert_eq!(created.slot.id, slot.id);
    assert_eq!(created.slot.remaining(), 4);
    assert_eq!(created.idempotency_key.as_deref(), Some("key-1"));
    assert_eq!(created.cancellable_until, date(8), "D-2 of 2021-09-10");
    assert_eq!(created.cancelled_at, None);
    assert_eq!(store.get_booking(created.id).await.unwrap(), Some(created));
    assert_eq!(store.get_booking(Uuid::new_v4()).await.unwrap(), None);
}

pub async fn an_unknown_slot_or_campaign_is_not_found(store: &dyn BookingStore) {
    let slot = slot(store, CAMPAIGN, 5).await;
    let ghost = Slot {
        id: Uuid::new_v4(),
        ..slot.clone()
    };
    let missing = store.create_booking(booking("erin", &ghost, None)).await;
    assert!(
        matches!(missing, Err(BookingStoreError::NotFound("slot"))),
        "{missing:?}"
    );
    let mut wrong_campaign = booking("erin", &slot, None);
    wrong_campaign.campaign_id = OTHER_CAMPAIGN.to_owned();
    let refused = store.create_booking(wrong_campaign).await;
    assert!(
        matches!(refused, Err(BookingStoreError::NotFound("slot"))),
        "{refused:?}"
    );
    assert_eq!(booked(store, &slot).await, 0);
}

pub async fn cancelling_frees_the_place_at_once(store: &dyn BookingStore) {
    let slot = slot(store, CAMPAIGN, 1).await;
    let mine = store
        .create_booking(booking("frank", &slot, None))
        .await
        .unwrap();
    let full = store.create_booking(booking("grace", &slot, None)).await;
    assert!(matches!(full, Err(BookingStoreError::SlotFull)), "{full:?}");
    let now = Utc::now();
    let cancelled = store.cancel_booking(mine.id, "frank", now).await.unwrap();
    assert_eq!(cancelled.status, BookingStatus::Cancelled);
    assert_eq!(
        cancelled.cancelled_at,
        Some(crate::domain::storage_precision(now))
    );
    assert_eq!(cancelled.slot.remaining(), 1);
    // The freed place can be taken, and the person may book in the campaign again.
    let again = store
        .create_booking(booking("frank", &slot, None))
        .await
        .unwrap();
    assert_eq!(again.slot.booked, 1);
    let bookings = store.list_bookings("frank").await.unwrap();
    assert_eq!(bookings.len(), 2);
}

pub async fn cancelling_twice_frees_the_place_once(store: &dyn BookingStore) {
    let slot = slot(store, CAMPAIGN, 5).await;
    let first = store
        .create_booking(booking("heidi", &slot, None))
        .await
        .unwrap();
    let second = store
        .create_booking(booking("ivan", &slot, None))
        .await
        .unwrap();
    store
        .cancel_booking(first.id, "heidi", Utc::now())
        .await
        .unwrap();
    let twice = store.cancel_booking(first.id, "heidi", Utc::now()).await;
    assert!(
        matches!(twice, Err(BookingStoreError::AlreadyCancelled)),
        "{twice:?}"
    );
    assert_eq!(booked(store, &slot).await, 1);
    // Two cancels racing: one wins, and the place is freed once.
    let racing =
        join_all((0..2).map(|_| store.cancel_booking(second.id, "ivan", Utc::now()))).await;
    assert_eq!(
        racing.iter().filter(|outcome| outcome.is_ok()).count(),
        1,
        "{racing:?}"
    );
    assert!(
        racing
            .iter()
            .any(|outcome| matches!(outcome, Err(BookingStoreError::AlreadyCancelled)))
    );
    assert_eq!(booked(store, &slot).await, 0);
}

pub async fn an_idempotency_key_names_one_booking(store: &dyn BookingStore) {
    let slot = slot(store, CAMPAIGN, 5).await;
    let other = slot_in(store, OTHER_CAMPAIGN).await;
    let created = store
        .create_booking(booking("judy", &slot, Some("k-42")))
        .await
        .unwrap();
    let key = IdempotencyKey::parse_optional("k-42").unwrap().unwrap();
    let replayed = store
        .find_by_idempotency_key("judy", &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replayed.id, created.id);
    assert_eq!(
        store
            .find_by_idempotency_key("mallory", &key)
            .await
            .unwrap(),
        None
    );
    let reused = store
        .create_booking(booking("judy", &other, Some("k-42")))
        .await;
    assert!(
        matches!(reused, Err(BookingStoreError::IdempotencyConflict)),
        "{reused:?}"
    );
    assert_eq!(booked(store, &other).await, 0);
    // The key is the person's own: someone else may use the same string.
    store
        .create_booking(booking("mallory", &slot, Some("k-42")))
        .await
        .unwrap();
}

async fn slot_in(store: &dyn BookingStore, campaign: &str) -> Slot {
    slot(store, campaign, 5).await
}

pub async fn listings_are_ordered(store: &dyn BookingStore) {
    let busan = center(store, "부산", "해운대 센터").await;
    let seoul_b = center(store, "서울", "중구 센터").await;
    let seoul_a = center(store, "서울", "강남 센터").await;
    let all = store.list_centers(None).await.unwrap();
    let ids: Vec<Uuid> = all.iter().map(|center| center.id).collect();
    assert_eq!(ids, vec![busan.id, seoul_a.id, seoul_b.id]);
    let seoul = store.list_centers(Some("서울")).await.unwrap();
    assert_eq!(seoul, vec![seoul_a.clone(), seoul_b.clone()]);
    assert_eq!(
        store.get_center(busan.id).await.unwrap(),
        Some(busan.clone())
    );

    let late = store
        .upsert_slot(draft(&seoul_a, CAMPAIGN, 11, 14, 3))
        .await
        .unwrap();
    let early = store
        .upsert_slot(draft(&seoul_a, CAMPAIGN, 10, 9, 3))
        .await
        .unwrap();
    let middle = store
        .upsert_slot(draft(&seoul_a, CAMPAIGN, 10, 15, 3))
        .await
        .unwrap();
    store
        .upsert_slot(draft(&seoul_b, CAMPAIGN, 10, 9, 3))
        .await
        .unwrap();
    let slot_ids = |slots: Vec<Slot>| slots.into_iter().map(|slot| slot.id).collect::<Vec<_>>();
    let every = store.list_slots(seoul_a.id, None, None).await.unwrap();
    assert_eq!(slot_ids(every), vec![early.id, middle.id, late.id]);
    let tenth = store
        .list_slots(seoul_a.id, Some(date(10)), Some(date(10)))
        .await
        .unwrap();
    assert_eq!(slot_ids(tenth), vec![early.id, middle.id]);
    let from_eleventh = store
        .list_slots(seoul_a.id, Some(date(11)), None)
        .await
        .unwrap();
    assert_eq!(slot_ids(from_eleventh), vec![late.id]);
    let until_tenth = store
        .list_slots(seoul_a.id, None, Some(date(10)))
        .await
        .unwrap();
    assert_eq!(slot_ids(until_tenth), vec![early.id, middle.id]);

    let mut older = booking("kim", &early, None);
    older.created_at = Utc::now() - chrono::Duration::minutes(5);
    let older = store.create_booking(older).await.unwrap();
    let newer = store
        .create_booking(NewBooking {
            campaign_id: OTHER_CAMPAIGN.to_owned(),
            ..booking("kim", &slot_in(store, OTHER_CAMPAIGN).await, None)
        })
        .await
        .unwrap();
    let ids: Vec<Uuid> = store
        .list_bookings("kim")
        .await
        .unwrap()
        .iter()
        .map(|booking: &Booking| booking.id)
        .collect();
    assert_eq!(ids, vec![newer.id, older.id]);
}

pub async fn bookings_of_others_stay_invisible(store: &dyn BookingStore) {
    let slot = slot(store, CAMPAIGN, 5).await;
    let theirs = store
        .create_booking(booking("lee", &slot, Some("mine")))
        .await
        .unwrap();
    assert!(store.list_bookings("park").await.unwrap().is_empty());
    let stolen = store.cancel_booking(theirs.id, "park", Utc::now()).await;
    assert!(
        matches!(stolen, Err(BookingStoreError::NotFound("booking"))),
        "{stolen:?}"
    );
    assert_eq!(booked(store, &slot).await, 1);
    let unknown = store
        .cancel_booking(Uuid::new_v4(), "lee", Utc::now())
        .await;
    assert!(matches!(
        unknown,
        Err(BookingStoreError::NotFound("booking"))
    ));
    assert_eq!(
        store.list_bookings("lee").await.unwrap()[0].status,
        BookingStatus::Confirmed
    );
}

pub async fn slot_updates_keep_the_bookings_valid(store: &dyn BookingStore) {
    let nowhere = Center {
        id: Uuid::new_v4(),
        name: "x".into(),
        region: "y".into(),
        address: String::new(),
    };
    let orphan = store.upsert_slot(draft(&nowhere, CAMPAIGN, 10, 9, 3)).await;
    assert!(
        matches!(orphan, Err(BookingStoreError::NotFound("center"))),
        "{orphan:?}"
    );

    let slot = slot(store, CAMPAIGN, 3).await;
    store
        .create_booking(booking("moon", &slot, None))
        .await
        .unwrap();
    store
        .create_booking(booking("noh", &slot, None))
        .await
        .unwrap();
    let base = SlotDraft {
        id: slot.id,
        campaign_id: slot.campaign_id.clone(),
        center_id: slot.center_id,
        date: slot.date,
        starts_at: slot.starts_at,
        ends_at: slot.ends_at,
        vaccine: slot.vaccine.clone(),
        capacity: slot.capacity,
    };
    let shrunk = store
        .upsert_slot(SlotDraft {
            capacity: 1,
            ..base.clone()
        })
        .await;
    assert!(
        matches!(
            shrunk,
            Err(BookingStoreError::CapacityBelowBooked {
                capacity: 1,
                booked: 2
            })
        ),
        "{shrunk:?}"
    );
    let moved = store
        .upsert_slot(SlotDraft {
            campaign_id: OTHER_CAMPAIGN.into(),
            ..base.clone()
        })
        .await;
    assert!(
        matches!(moved, Err(BookingStoreError::SlotHasBookings)),
        "{moved:?}"
    );
    let updated = store
        .upsert_slot(SlotDraft {
            capacity: 2,
            vaccine: "viral vector".into(),
            ..base
        })
        .await
        .unwrap();
    assert_eq!(
        (updated.capacity, updated.booked),
        (2, 2),
        "an update keeps the booked count"
    );
    assert_eq!(updated.vaccine, "viral vector");
    let full = store.create_booking(booking("oh", &slot, None)).await;
    assert!(matches!(full, Err(BookingStoreError::SlotFull)));
    assert!(store.ping().await.is_ok());
}

macro_rules! conformance_suite {
    ($($check:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let store = crate::store::MemoryBookingStore::new();
                    super::$check(&store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let store = crate::store::pg::tests::fresh_store(stringify!($check)).await;
                    super::$check(&store).await;
                }
            )*
        }
    };
}

conformance_suite!(
    capacity_is_never_exceeded_under_concurrency,
    one_confirmed_booking_per_person_and_campaign,
    concurrent_bookings_of_one_person_keep_one,
    a_person_may_book_in_another_campaign,
    a_booking_records_what_was_asked,
    an_unknown_slot_or_campaign_is_not_found,
    cancelling_frees_the_place_at_once,
    cancelling_twice_frees_the_place_once,
    an_idempotency_key_names_one_booking,
    listings_are_ordered,
    bookings_of_others_stay_invisible,
    slot_updates_keep_the_bookings_valid,
    a_change_moves_the_place,
    a_change_into_a_full_slot_changes_nothing,
    only_a_confirmed_booking_of_ones_own_changes,
    concurrent_changes_never_overfill_the_new_slot,
    crossing_changes_do_not_deadlock,
    a_change_racing_a_cancel_frees_one_place,
    supply_released_in_steps_is_never_booked_past_the_share,
    a_change_takes_only_a_released_place,
    a_proxy_booking_records_its_booker_within_the_limit,
);
