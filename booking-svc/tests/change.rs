//! ChangeBooking end to end over gRPC (R8): the campaign's change policy comes from the fake
//! scheduling-svc, "now" and "today" from the settable clock, and the place moves between
//! slots as ListSlots shows them.

#![allow(clippy::unwrap_used)]

mod support;

use platform::problem::ProblemKind;
use proto::booking::v1 as pb;
use support::{Harness, authed, book, change, kst, problem, remaining};
use tonic::{Code, Request};

const CAMPAIGN: &str = "r18-49";
const OTHER_CAMPAIGN: &str = "r60-plus";

/// `person` books `slot` (at the harness clock's now).
async fn booked(harness: &Harness, person: &str, slot: &pb::Slot) -> pb::Booking {
    harness
        .booking
        .clone()
        .create_booking(authed(book(&slot.id, ""), &harness.token(person)))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn a_change_waits_for_the_campaign_then_moves_the_place() {
    let harness = Harness::start().await;
    let old = harness.seed_slot(CAMPAIGN, 10, 5).await;
    let new = harness.seed_slot(CAMPAIGN, 14, 2).await;
    let booking = booked(&harness, "alice", &old).await;
    let mut client = harness.booking.clone();

    // The campaign names no change date: never.
    let (code, never) = problem(
        client
            .change_booking(authed(
                change(&booking.id, &new.id),
                &harness.token("alice"),
            ))
            .await,
    );
    assert_eq!(
        (code, never.kind),
        (
            Code::FailedPrecondition,
            ProblemKind::ModificationNotAllowed
        )
    );
    assert!(
        never.detail.contains("cancel and book again"),
        "{}",
        never.detail
    );
    assert_eq!(never.extra.get("allowed_from"), None);

    // Changes open on 5 Sep 09:00 KST. By then the booking window has closed: the person's
    // eligibility does not matter for a change, only the policy.
    harness.answer(|answer| {
        answer.modification_allowed_from = Some(kst(5, 9, 0));
        answer.eligible = false;
        answer.reason = "closed".to_owned();
        answer.cancellation_closes_days_before = 3;
    });
    harness.clock.set(kst(5, 8, 59));
    let (code, early) = problem(
        client
            .change_booking(authed(
                change(&booking.id, &new.id),
                &harness.token("alice"),
            ))
            .await,
    );
    assert_eq!(
        (code, early.kind),
        (
            Code::FailedPrecondition,
            ProblemKind::ModificationNotAllowed
        )
    );
    assert_eq!(
        early.extra.get("allowed_from").map(String::as_str),
        Some("2021-09-05T09:00:00+09:00")
    );
    assert_eq!(
        (
            remaining(&harness, &old).await,
            remaining(&harness, &new).await
        ),
        (4, 2),
        "a refused change moves nothing"
    );

    harness.clock.set(kst(5, 9, 0));
    let alice = harness.token("alice");
    let moved = client
        .change_booking(authed(change(&booking.id, &new.id), &alice))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.id, booking.id);
    assert_eq!(moved.status, pb::BookingStatus::Confirmed as i32);
    assert_eq!(moved.created_at, booking.created_at);
    let held = moved.slot.clone().unwrap();
    assert_eq!((held.id.as_str(), held.remaining), (new.id.as_str(), 1));
    assert_eq!(
        moved.cancellable_until, "2021-09-11",
        "D-3 of the new slot's date, by the campaign"
    );
    assert_eq!(
        (
            remaining(&harness, &old).await,
            remaining(&harness, &new).await
        ),
        (5, 1),
        "the old place is free again and the new one taken"
    );
    let fetched = client
        .get_booking(authed(
            pb::GetBookingRequest {
                id: booking.id.clone(),
            },
            &alice,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, moved);

    // The policy was asked for the booking's campaign and the token's person.
    let questions = harness.scheduling.questions.lock().unwrap().clone();
    let asked = questions.last().unwrap();
    assert_eq!(
        (asked.campaign_id.as_str(), asked.person_key.as_str()),
        (CAMPAIGN, "alice")
    );

    // Asking again for the slot it now holds (a retried call) answers with the booking as is.
    let again = client
        .change_booking(authed(change(&booking.id, &new.id), &alice))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, moved);
    assert_eq!(remaining(&harness, &new).await, 1);
}

#[tokio::test]
async fn a_change_closes_with_the_cancellation_deadline() {
    let harness = Harness::start().await;
    harness.answer(|answer| answer.modification_allowed_from = Some(kst(1, 0, 0)));
    let old = harness.seed_slot(CAMPAIGN, 10, 5).await;
    let new = harness.seed_slot(CAMPAIGN, 14, 5).await;
    let booking = booked(&harness, "bob", &old).await;
    assert_eq!(booking.cancellable_until, "2021-09-08");
    let mut client = harness.booking.clone();

    // D-1 of the old slot: its place can no longer be given up.
    harness.clock.set(kst(9, 0, 0));
    let (code, closed) = problem(
        client
            .change_booking(authed(change(&booking.id, &new.id), &harness.token("bob")))
            .await,
    );
    assert_eq!(
        (code, closed.kind),
        (Code::FailedPrecondition, ProblemKind::CancellationClosed)
    );
    assert_eq!(
        closed.extra.get("cancellable_until").map(String::as_str),
        Some("2021-09-08")
    );
    assert_eq!(
        (
            remaining(&harness, &old).await,
            remaining(&harness, &new).await
        ),
        (4, 5)
    );

    // The last minute of D-2 still counts.
    harness.clock.set(kst(8, 23, 59));
    let moved = client
        .change_booking(authed(change(&booking.id, &new.id), &harness.token("bob")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.slot.unwrap().id, new.id);
    assert_eq!(moved.cancellable_until, "2021-09-12");
}

#[tokio::test]
async fn malformed_foreign_and_impossible_changes_are_refused() {
    let harness = Harness::start().await;
    harness.answer(|answer| answer.modification_allowed_from = Some(kst(1, 0, 0)));
    let old = harness.seed_slot(CAMPAIGN, 10, 5).await;
    let new = harness.seed_slot(CAMPAIGN, 12, 5).await;
    let full = harness.seed_slot(CAMPAIGN, 13, 1).await;
    let elsewhere = harness.seed_slot(OTHER_CAMPAIGN, 12, 5).await;
    booked(&harness, "erin", &full).await;
    let booking = booked(&harness, "carol", &old).await;
    let carol = harness.token("carol");
    let refuse = |request: Request<pb::ChangeBookingRequest>| {
        let mut client = harness.booking.clone();
        async move { problem(client.change_booking(request).await) }
    };

    let (code, missing) = refuse(Request::new(change(&booking.id, &new.id))).await;
    assert_eq!(
        (code, missing.kind),
        (Code::Unauthenticated, ProblemKind::Unauthenticated)
    );
    let (code, _) = refuse(authed(change(&booking.id, &new.id), "not.a.token")).await;
    assert_eq!(code, Code::Unauthenticated);

    let (code, bad_id) = refuse(authed(change("booking-1", &new.id), &carol)).await;
    assert_eq!(
        (code, bad_id.detail.as_str()),
        (Code::InvalidArgument, "id must be a uuid")
    );
    let (code, bad_slot) = refuse(authed(change(&booking.id, "slot-2"), &carol)).await;
    assert_eq!(
        (code, bad_slot.detail.as_str()),
        (Code::InvalidArgument, "slot_id must be a uuid")
    );

    let (code, foreign) = refuse(authed(change(&booking.id, &elsewhere.id), &carol)).await;
    assert_eq!(
        (code, foreign.kind, foreign.detail.as_str()),
        (
            Code::InvalidArgument,
            ProblemKind::InvalidRequest,
            "the new slot belongs to another campaign"
        )
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    let (code, ghost) = refuse(authed(change(&booking.id, &unknown), &carol)).await;
    assert_eq!(
        (code, ghost.detail.as_str()),
        (Code::NotFound, "no such slot")
    );
    let (code, taken) = refuse(authed(change(&booking.id, &full.id), &carol)).await;
    assert_eq!(
        (code, taken.kind),
        (Code::ResourceExhausted, ProblemKind::SlotFull)
    );
    let (code, _) = refuse(authed(change(&booking.id, &new.id), &harness.token("dave"))).await;
    assert_eq!(
        code,
        Code::NotFound,
        "someone else's booking is not revealed"
    );

    assert_eq!(remaining(&harness, &old).await, 4);
    assert_eq!(remaining(&harness, &full).await, 0);
    for untouched in [&new, &elsewhere] {
        assert_eq!(remaining(&harness, untouched).await, 5);
    }

    harness
        .booking
        .clone()
        .cancel_booking(authed(
            pb::CancelBookingRequest {
                id: booking.id.clone(),
            },
            &carol,
        ))
        .await
        .unwrap();
    let (code, cancelled) = refuse(authed(change(&booking.id, &new.id), &carol)).await;
    assert_eq!(
        (code, cancelled.kind),
        (Code::FailedPrecondition, ProblemKind::AlreadyCancelled)
    );
    assert_eq!(remaining(&harness, &new).await, 5);
}
