//! No back door (R11): while the waiting room is on, booking-svc itself refuses every create
//! and change without session-svc's admission grant for this person and the governing room —
//! over gRPC, straight to booking-svc, as the gateway's REST calls arrive too. With a grant a
//! write succeeds once; its retry (same Idempotency-Key) is still answered; the spent grant
//! opens nothing else. A session whose fencing number is outdated never writes. The capacity
//! signal counts writes.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::Ordering;

use platform::problem::ProblemKind;
use proto::booking::v1 as pb;
use proto::booking::v1::capacity_service_client::CapacityServiceClient;
use support::{Harness, authed, book, problem};
use tonic::Code;

const CAMPAIGN: &str = "r18-49";

fn with_admission<T>(message: T, token: &str, grant: &str) -> tonic::Request<T> {
    let mut request = authed(message, token);
    request
        .metadata_mut()
        .insert("x-admission", grant.parse().unwrap());
    request
}

#[tokio::test]
async fn while_the_room_is_on_a_booking_needs_this_persons_grant() {
    let harness = Harness::start().await;
    let slot = harness.seed_slot(CAMPAIGN, 10, 5).await;
    let other_slot = harness.seed_slot(CAMPAIGN, 11, 5).await;
    harness
        .sessions
        .waiting_room_on
        .store(true, Ordering::SeqCst);
    let token = harness.token("alice");
    let mut client = harness.booking.clone();

    // No grant: the back door is shut.
    let (code, refused) = problem(
        client
            .create_booking(authed(book(&slot.id, "k-1"), &token))
            .await,
    );
    assert_eq!(
        (code, refused.kind),
        (Code::PermissionDenied, ProblemKind::AdmissionRequired)
    );
    assert_eq!(refused.extra.get("room").map(String::as_str), Some("*"));

    // Someone else's grant, another room's grant, an expired grant, garbage: refused alike.
    for grant in [
        harness.admission_grant("mallory", "*", 3, 120),
        harness.admission_grant("alice", "covid-other-room", 3, 120),
        harness.admission_grant("alice", "*", 3, 0),
        "not-a-grant".to_owned(),
    ] {
        let (code, refused) = problem(
            client
                .create_booking(with_admission(book(&slot.id, "k-1"), &token, &grant))
                .await,
        );
        assert_eq!(
            (code, refused.kind),
            (Code::PermissionDenied, ProblemKind::AdmissionRequired),
            "{refused:?}"
        );
    }
    assert_eq!(
        support::remaining(&harness, &slot).await,
        5,
        "nothing was booked"
    );

    // With her grant: booked, once.
    let grant = harness.admission_grant("alice", "*", 3, 120);
    let booked = client
        .create_booking(with_admission(book(&slot.id, "k-1"), &token, &grant))
        .await
        .unwrap()
        .into_inner();
    // The retry of that very write (lost answer) is answered with the same booking.
    let retried = client
        .create_booking(with_admission(book(&slot.id, "k-1"), &token, &grant))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.id, booked.id);
    // Anything else on the spent grant is refused.
    let (code, refused) = problem(
        client
            .create_booking(with_admission(book(&other_slot.id, "k-2"), &token, &grant))
            .await,
    );
    assert_eq!(
        (code, refused.kind),
        (Code::PermissionDenied, ProblemKind::AdmissionRequired)
    );

    // The room off again: no grant needed (reading and writing as before).
    harness
        .sessions
        .waiting_room_on
        .store(false, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (code, refused) = problem(
        client
            .create_booking(authed(book(&other_slot.id, "k-3"), &token))
            .await,
    );
    assert_eq!(
        (code, refused.kind),
        (Code::AlreadyExists, ProblemKind::AlreadyBooked),
        "past the gate, the booking rules answer"
    );
    harness.shutdown.cancel();
}

#[tokio::test]
async fn a_grant_allows_a_few_attempts_then_is_used_up() {
    let harness = Harness::start().await;
    harness
        .sessions
        .waiting_room_on
        .store(true, Ordering::SeqCst);
    let full = harness.seed_slot(CAMPAIGN, 10, 1).await;
    let open = harness.seed_slot(CAMPAIGN, 11, 5).await;
    let mut client = harness.booking.clone();
    let dave = harness.token("dave");
    let daves = harness.admission_grant("dave", "*", 1, 120);
    client
        .create_booking(with_admission(book(&full.id, "d-1"), &dave, &daves))
        .await
        .unwrap();
    let bob = harness.token("bob");
    let grant = harness.admission_grant("bob", "*", 2, 120);
    // Two attempts that fail (the slot is full) take both uses…
    for key in ["b-1", "b-2"] {
        let (code, refused) = problem(
            client
                .create_booking(with_admission(book(&full.id, key), &bob, &grant))
                .await,
        );
        assert_eq!(
            (code, refused.kind),
            (Code::ResourceExhausted, ProblemKind::SlotFull)
        );
    }
    // …and the grant opens nothing more: back to the queue (where he gets the front).
    let (code, refused) = problem(
        client
            .create_booking(with_admission(book(&open.id, "b-3"), &bob, &grant))
            .await,
    );
    assert_eq!(
        (code, refused.kind),
        (Code::PermissionDenied, ProblemKind::AdmissionRequired)
    );
    harness.shutdown.cancel();
}

#[tokio::test]
async fn a_session_whose_lock_changed_hands_never_books() {
    let harness = Harness::start().await;
    let slot = harness.seed_slot(CAMPAIGN, 10, 5).await;
    harness.sessions.superseded.store(true, Ordering::SeqCst);
    let token = harness.token("carol");
    let (code, refused) = problem(
        harness
            .booking
            .clone()
            .create_booking(authed(book(&slot.id, "c-1"), &token))
            .await,
    );
    assert_eq!(
        (code, refused.kind),
        (Code::Unauthenticated, ProblemKind::SessionSuperseded)
    );
    assert_eq!(support::remaining(&harness, &slot).await, 5);
    harness.shutdown.cancel();
}

#[tokio::test]
async fn the_capacity_signal_counts_booking_writes() {
    let harness = Harness::start().await;
    let slot = harness.seed_slot(CAMPAIGN, 10, 50).await;
    let mut client = harness.booking.clone();
    for n in 0..5 {
        let token = harness.token(&format!("p{n}"));
        client
            .create_booking(authed(book(&slot.id, &format!("cap-{n}")), &token))
            .await
            .unwrap();
    }
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", harness.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let capacity = CapacityServiceClient::new(channel)
        .get_capacity(pb::GetCapacityRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(capacity.in_flight, 0);
    assert_eq!(capacity.target_in_flight, 64);
    assert!(capacity.completed_per_second > 0.0, "{capacity:?}");
    assert!(capacity.target_latency_ms > 0.0);
    harness.shutdown.cancel();
}
