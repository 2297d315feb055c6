//! The waiting room's throughput against the real Redis (docs/benchmarks.md): tickets taken,
//! polls answered and people admitted per second, through `RedisQueueStore` with the given
//! concurrency. Ignored by default; run with
//! `cargo nextest run -p session-svc --test queue_bench --run-ignored only --no-capture`
//! (`QUEUE_BENCH_PEOPLE`, `QUEUE_BENCH_CONCURRENCY` change the size).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use session_svc::domain::PersonKey;
use session_svc::store::queue::{QueueStore, QueueTimes, RedisQueueStore, Visit};
use session_svc::waiting_room::room::{Room, RoomSettings, TicketId};

const TIMES: QueueTimes = QueueTimes {
    admission: Duration::from_secs(120),
    return_window: Duration::from_secs(1800),
};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

async fn in_parallel<F, Fut>(people: &Arc<Vec<PersonKey>>, concurrency: usize, work: F) -> f64
where
    F: Fn(PersonKey) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let work = Arc::new(work);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for lane in 0..concurrency {
        let people = people.clone();
        let work = work.clone();
        tasks.push(tokio::spawn(async move {
            let mut index = lane;
            while index < people.len() {
                work(people[index].clone()).await;
                index += concurrency;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    people.len() as f64 / started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run it on purpose"]
async fn tickets_polls_and_admissions_per_second() {
    let count = env("QUEUE_BENCH_PEOPLE", 20_000);
    let concurrency = env("QUEUE_BENCH_CONCURRENCY", 64);
    let connection = platform::redis_conn::connect_for_tests().await.unwrap();
    let store: Arc<dyn QueueStore> = Arc::new(RedisQueueStore::new(
        connection,
        platform::redis_conn::test_prefix("queue-bench"),
    ));
    let room = Room::parse(&format!("bench-{}", uuid::Uuid::new_v4().simple())).unwrap();
    let on = RoomSettings {
        enabled: true,
        rate_per_second: 1_000_000.0,
        burst: 1_000,
        automatic: false,
    };
    store.set_settings(&room, &on).await.unwrap();
    let people: Arc<Vec<PersonKey>> = Arc::new(
        (0..count)
            .map(|n| PersonKey::parse(&format!("pk-bench-{n}")).unwrap())
            .collect(),
    );

    let tickets = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let taken = {
        let (store, room, tickets) = (store.clone(), room.clone(), tickets.clone());
        in_parallel(&people, concurrency, move |person| {
            let (store, room, tickets) = (store.clone(), room.clone(), tickets.clone());
            async move {
                let view = store
                    .visit(
                        Visit::Take,
                        &person,
                        &TicketId::generate(&room),
                        Utc::now(),
                        &on,
                        TIMES,
                    )
                    .await
                    .unwrap()
                    .unwrap();
                tickets
                    .lock()
                    .unwrap()
                    .insert(person.as_str().to_owned(), view.ticket().to_owned());
            }
        })
        .await
    };
    let polled = {
        let (store, tickets) = (store.clone(), tickets.clone());
        in_parallel(&people, concurrency, move |person| {
            let (store, tickets) = (store.clone(), tickets.clone());
            async move {
                let ticket = tickets.lock().unwrap()[person.as_str()].clone();
                let ticket = TicketId::parse(&ticket).unwrap();
                store
                    .visit(Visit::Poll, &person, &ticket, Utc::now(), &on, TIMES)
                    .await
                    .unwrap()
                    .unwrap();
            }
        })
        .await
    };
    // Admission steps back to back until everyone is in (1000 a step at most).
    store.admit(&room, Utc::now(), &on, TIMES).await.unwrap();
    let started = Instant::now();
    let mut admitted = 0;
    while admitted < count as u64 {
        tokio::time::sleep(Duration::from_millis(2)).await;
        admitted += store
            .admit(&room, Utc::now(), &on, TIMES)
            .await
            .unwrap()
            .admitted;
    }
    let admissions = admitted as f64 / started.elapsed().as_secs_f64();
    println!(
        "queue bench: {count} people, concurrency {concurrency}: {taken:.0} tickets/s, {polled:.0} polls/s, {admissions:.0} admissions/s"
    );
}
