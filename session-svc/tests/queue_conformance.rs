//! One conformance suite for every `QueueStore`: the same checks run against Redis (each test
//! under its own key prefix) and the in-process store, so the two cannot drift. Time is
//! explicit: every call gets its `now`, so no test sleeps.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use session_svc::domain::PersonKey;
use session_svc::store::queue::{MemoryQueueStore, QueueStore, QueueTimes, RedisQueueStore, Visit};
use session_svc::waiting_room::room::{Room, RoomSettings, TicketId, TicketView};

const TIMES: QueueTimes = QueueTimes {
    admission: Duration::from_secs(120),
    return_window: Duration::from_secs(1800),
};

const ON: RoomSettings = RoomSettings {
    enabled: true,
    rate_per_second: 10.0,
    burst: 10,
    automatic: false,
};

const OFF: RoomSettings = RoomSettings {
    enabled: false,
    ..ON
};

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2021-08-09T20:00:00+09:00")
        .unwrap()
        .with_timezone(&Utc)
}

fn at(offset_ms: i64) -> DateTime<Utc> {
    start() + chrono::Duration::milliseconds(offset_ms)
}

fn person(n: usize) -> PersonKey {
    PersonKey::parse(&format!("pk-{n}-{}", uuid::Uuid::new_v4().simple())).unwrap()
}

fn campaign() -> Room {
    Room::parse(&format!("c-{}", uuid::Uuid::new_v4().simple())).unwrap()
}

async fn take(
    store: &dyn QueueStore,
    room: &Room,
    who: &PersonKey,
    now: DateTime<Utc>,
    defaults: &RoomSettings,
) -> TicketView {
    store
        .visit(
            Visit::Take,
            who,
            &TicketId::generate(room),
            now,
            defaults,
            TIMES,
        )
        .await
        .unwrap()
        .expect("a take always answers")
}

async fn poll(
    store: &dyn QueueStore,
    who: &PersonKey,
    ticket: &str,
    now: DateTime<Utc>,
) -> Option<TicketView> {
    store
        .visit(
            Visit::Poll,
            who,
            &TicketId::parse(ticket).unwrap(),
            now,
            &ON,
            TIMES,
        )
        .await
        .unwrap()
}

fn position(view: &TicketView) -> u64 {
    match view {
        TicketView::Waiting { position, .. } => *position,
        TicketView::Admitted { .. } => 0,
    }
}

async fn concurrent_arrivals_get_distinct_places_in_order(store: Arc<dyn QueueStore>) {
    let room = campaign();
    // Sequential arrivals: places 1..N in arrival order.
    let first: Vec<PersonKey> = (0..5).map(person).collect();
    for (index, who) in first.iter().enumerate() {
        let view = take(store.as_ref(), &room, who, at(index as i64), &ON).await;
        assert_eq!(position(&view), index as u64 + 1);
    }
    // Concurrent arrivals: every place from 6 to 5+N exactly once.
    let count = 100;
    let mut tasks = Vec::new();
    for n in 0..count {
        let store = store.clone();
        let room = room.clone();
        tasks.push(tokio::spawn(async move {
            let who = person(1000 + n);
            let view = take(store.as_ref(), &room, &who, at(10), &ON).await;
            (who, view)
        }));
    }
    let mut places = Vec::new();
    for task in tasks {
        let (who, view) = task.await.unwrap();
        places.push((position(&view), who, view));
    }
    let mut positions: Vec<u64> = places.iter().map(|(p, _, _)| *p).collect();
    positions.sort_unstable();
    assert_eq!(positions, (6..6 + count as u64).collect::<Vec<_>>());
    // A later poll answers the place the take answered: the order is the arrival order.
    for (place, who, view) in places.iter().take(10) {
        let polled = poll(store.as_ref(), who, view.ticket(), at(20))
            .await
            .unwrap();
        assert_eq!(position(&polled), *place);
    }
}

async fn the_same_person_keeps_their_place_and_nobody_else_polls_it(store: Arc<dyn QueueStore>) {
    let room = campaign();
    let (alice, bob) = (person(1), person(2));
    let alices = take(store.as_ref(), &room, &alice, at(0), &ON).await;
    let bobs = take(store.as_ref(), &room, &bob, at(1), &ON).await;
    assert_eq!(position(&bobs), 2);
    // Reload, another tab, coming back: the same ticket and place.
    let again = take(store.as_ref(), &room, &alice, at(5_000), &ON).await;
    assert_eq!(again, alices);
    assert_eq!(
        poll(store.as_ref(), &alice, alices.ticket(), at(6_000)).await,
        Some(again)
    );
    // Bob cannot poll Alice's ticket, and a made-up ticket is nobody's.
    assert_eq!(
        poll(store.as_ref(), &bob, alices.ticket(), at(6_000)).await,
        None
    );
    let made_up = TicketId::generate(&room);
    assert_eq!(
        poll(store.as_ref(), &alice, made_up.as_str(), at(6_000)).await,
        None
    );
}

async fn admission_follows_the_bucket_in_arrival_order(store: Arc<dyn QueueStore>) {
    let room = campaign();
    let people: Vec<PersonKey> = (0..30).map(person).collect();
    let mut tickets = Vec::new();
    for (index, who) in people.iter().enumerate() {
        tickets.push(take(store.as_ref(), &room, who, at(index as i64), &ON).await);
    }
    // The first step only starts the clock; half a second at 10/s admits five.
    let first = store.admit(&room, at(100), &ON, TIMES).await.unwrap();
    assert_eq!(first.admitted, 0);
    let second = store.admit(&room, at(600), &ON, TIMES).await.unwrap();
    assert_eq!(second.admitted, 5);
    assert_eq!(second.still_waiting, 25);
    for (index, (who, ticket)) in people.iter().zip(&tickets).enumerate() {
        let view = poll(store.as_ref(), who, ticket.ticket(), at(700))
            .await
            .unwrap();
        if index < 5 {
            assert!(
                matches!(view, TicketView::Admitted { .. }),
                "{index}: {view:?}"
            );
        } else {
            assert_eq!(position(&view), index as u64 - 4, "{index}");
        }
    }
    // Ten seconds idle fill the bucket only to its depth (10), never more.
    let third = store.admit(&room, at(10_600), &ON, TIMES).await.unwrap();
    assert_eq!(third.admitted, 10);
    assert!(third.measured_rate > 0.0);
    let state = store.state(&room, &ON).await.unwrap();
    assert_eq!(state.waiting, 15);
}

async fn a_lapsed_admission_goes_back_to_the_front(store: Arc<dyn QueueStore>) {
    let room = campaign();
    let people: Vec<PersonKey> = (0..4).map(person).collect();
    let mut tickets = Vec::new();
    for (index, who) in people.iter().enumerate() {
        tickets.push(take(store.as_ref(), &room, who, at(index as i64), &ON).await);
    }
    store.admit(&room, at(10), &ON, TIMES).await.unwrap();
    // 100 ms at 10/s: exactly the first person.
    let step = store.admit(&room, at(110), &ON, TIMES).await.unwrap();
    assert_eq!(step.admitted, 1);
    let admitted = poll(store.as_ref(), &people[0], tickets[0].ticket(), at(200)).await;
    assert!(matches!(admitted, Some(TicketView::Admitted { .. })));
    let kept = store
        .keep_grant(&room, &people[0], "grant-one")
        .await
        .unwrap();
    assert_eq!(kept, "grant-one");
    // A second grant is not kept: concurrent polls hand out one.
    assert_eq!(
        store
            .keep_grant(&room, &people[0], "grant-two")
            .await
            .unwrap(),
        "grant-one"
    );
    // A newcomer arrives; the admission lapses without a booking.
    let late = person(99);
    take(store.as_ref(), &room, &late, at(1_000), &ON).await;
    let lapsed = at(110 + 120_000 + 1);
    let back = poll(store.as_ref(), &people[0], tickets[0].ticket(), lapsed)
        .await
        .unwrap();
    assert_eq!(position(&back), 1, "back at the front: {back:?}");
    assert_eq!(back.ticket(), tickets[0].ticket());
    let second = poll(store.as_ref(), &people[1], tickets[1].ticket(), lapsed)
        .await
        .unwrap();
    assert_eq!(position(&second), 2);
    // Admitted again, the old grant is gone: a fresh one is kept.
    store
        .admit(
            &room,
            lapsed + chrono::Duration::milliseconds(100),
            &ON,
            TIMES,
        )
        .await
        .unwrap();
    let again = poll(
        store.as_ref(),
        &people[0],
        tickets[0].ticket(),
        lapsed + chrono::Duration::milliseconds(200),
    )
    .await
    .unwrap();
    assert!(
        matches!(&again, TicketView::Admitted { grant: None, .. }),
        "{again:?}"
    );
}

async fn past_the_return_window_a_person_starts_again(store: Arc<dyn QueueStore>) {
    let room = campaign();
    let (alice, bob) = (person(1), person(2));
    let alices = take(store.as_ref(), &room, &alice, at(0), &OFF).await;
    assert!(
        matches!(alices, TicketView::Admitted { .. }),
        "room off: admitted at once"
    );
    take(store.as_ref(), &room, &bob, at(1), &ON).await;
    // Long after her admission and the return window: a new arrival, behind Bob.
    let later = at(120_000 + 1_800_000 + 10);
    store.admit(&room, later, &ON, TIMES).await.unwrap();
    let again = take(store.as_ref(), &room, &alice, later, &ON).await;
    assert_ne!(again.ticket(), alices.ticket());
    assert_eq!(position(&again), 2);
}

async fn turning_a_room_off_admits_everyone_waiting(store: Arc<dyn QueueStore>) {
    let room = campaign();
    assert!(!store.has_settings(&room).await.unwrap());
    store.set_settings(&room, &ON).await.unwrap();
    assert!(store.has_settings(&room).await.unwrap());
    let people: Vec<PersonKey> = (0..3).map(person).collect();
    for who in &people {
        take(store.as_ref(), &room, who, at(0), &OFF).await;
    }
    let state = store.state(&room, &OFF).await.unwrap();
    assert_eq!(
        state.settings, ON,
        "the room's own settings win over the defaults"
    );
    assert_eq!(state.waiting, 3);
    store.set_settings(&room, &OFF).await.unwrap();
    let step = store.admit(&room, at(10), &ON, TIMES).await.unwrap();
    assert_eq!(step.admitted, 3);
    assert!(store.rooms().await.unwrap().contains(&room));
    let places = store
        .places(&people[0], std::slice::from_ref(&room), at(20))
        .await
        .unwrap();
    assert_eq!(places.len(), 1);
    assert!(matches!(places[0].view, TicketView::Admitted { .. }));
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(std::sync::Arc::new(super::MemoryQueueStore::new())).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let connection = platform::redis_conn::connect_for_tests().await.unwrap();
                    let prefix = platform::redis_conn::test_prefix("queue");
                    super::$name(std::sync::Arc::new(super::RedisQueueStore::new(connection, prefix))).await;
                }
            )*
        }
    };
}

conformance!(
    concurrent_arrivals_get_distinct_places_in_order,
    the_same_person_keeps_their_place_and_nobody_else_polls_it,
    admission_follows_the_bucket_in_arrival_order,
    a_lapsed_admission_goes_back_to_the_front,
    past_the_return_window_a_person_starts_again,
    turning_a_room_off_admits_everyone_waiting,
);
