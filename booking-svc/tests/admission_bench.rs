//! What the admission check adds to a booking (docs/benchmarks.md): the same bookings through
//! booking-svc's gRPC API with the waiting room off and on (a fresh grant each, verified
//! locally, its use counted in the in-process store, the room's status cached). Ignored by
//! default; run with
//! `cargo nextest run -p booking-svc --test admission_bench --run-ignored only --no-capture`.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::{Harness, authed, book};

const BOOKINGS: usize = 300;

async fn book_all(harness: &Harness, room_on: bool, label: &str) -> Duration {
    harness
        .sessions
        .waiting_room_on
        .store(room_on, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let slot = harness.seed_slot("r18-49", 10, BOOKINGS as i32 + 10).await;
    let mut client = harness.booking.clone();
    let mut total = Duration::ZERO;
    for n in 0..BOOKINGS {
        let person = format!("{label}-{n}");
        let token = harness.token(&person);
        let mut request = authed(book(&slot.id, &format!("{label}-k-{n}")), &token);
        if room_on {
            let grant = harness.admission_grant(&person, "*", 3, 120);
            request
                .metadata_mut()
                .insert("x-admission", grant.parse().unwrap());
        }
        let started = Instant::now();
        client.create_booking(request).await.unwrap();
        total += started.elapsed();
    }
    total / BOOKINGS as u32
}

#[tokio::test]
#[ignore = "a benchmark: run it on purpose"]
async fn the_admission_check_adds_little_to_a_booking() {
    let harness = Harness::start().await;
    // Warm up connections and key caches.
    book_all(&harness, true, "warm").await;
    let off = book_all(&harness, false, "off").await;
    let on = book_all(&harness, true, "on").await;
    println!(
        "admission bench: {BOOKINGS} bookings each: room off {:.3} ms, room on {:.3} ms, added {:.3} ms per booking",
        off.as_secs_f64() * 1000.0,
        on.as_secs_f64() * 1000.0,
        (on.as_secs_f64() - off.as_secs_f64()) * 1000.0
    );
    harness.shutdown.cancel();
}
