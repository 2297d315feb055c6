//! booking-svc end to end over gRPC: the real `serve`, a fake auth-svc publishing the test
//! key, a fake scheduling-svc, and a settable clock.

#![allow(clippy::unwrap_used)]

mod support;

use platform::auth::Role;
use platform::clock::Clock;
use platform::problem::ProblemKind;
use proto::booking::v1 as pb;
use support::{Harness, TestKeys, admin, authed, book, kst, problem, remaining};
use tonic::{Code, Request};

const CAMPAIGN: &str = "r18-49";

#[tokio::test]
async fn person_calls_without_a_valid_token_are_unauthenticated() {
    let harness = Harness::start().await;
    let slot = harness.seed_slot(CAMPAIGN, 10, 5).await;
    let mut client = harness.booking.clone();

    let (code, missing) = problem(
        client
            .create_booking(Request::new(book(&slot.id, "")))
            .await,
    );
    assert_eq!(
        (code, missing.kind),
        (Code::Unauthenticated, ProblemKind::Unauthenticated)
    );
    let (code, _) = problem(
        client
            .list_my_bookings(Request::new(pb::ListMyBookingsRequest::default()))
            .await,
    );
    assert_eq!(code, Code::Unauthenticated);

    let garbage = client
        .create_booking(authed(book(&slot.id, ""), "not.a.token"))
        .await;
    assert_eq!(problem(garbage).0, Code::Unauthenticated);

    // Right kid, wrong key: the signature does not verify.
    let forger = TestKeys::new(8);
    let forged = forger.sign(&TestKeys::claims(
        "mallory",
        "1985-03-09",
        harness.clock.now(),
    ));
    let (code, _) = problem(
        client
            .create_booking(authed(book(&slot.id, ""), &forged))
            .await,
    );
    assert_eq!(code, Code::Unauthenticated);

    // Expired by the injected clock.
    let stale = harness.token("alice");
    harness
        .clock
        .set(harness.clock.now() + chrono::Duration::hours(1));
    let (code, expired) = problem(
        client
            .create_booking(authed(book(&slot.id, ""), &stale))
            .await,
    );
    assert_eq!(code, Code::Unauthenticated);
    assert!(expired.detail.contains("expired"), "{}", expired.detail);

    // An agent token does not speak for a person.
    let mut agent = TestKeys::claims("agent-7", "1985-03-09", harness.clock.now());
    agent.role = Role::Agent;
    let agent = harness.keys.sign(&agent);
    let (code, refused) = problem(
        client
            .create_booking(authed(book(&slot.id, ""), &agent))
            .await,
    );
    assert_eq!(
        (code, refused.kind),
        (Code::PermissionDenied, ProblemKind::CitizenTokenRequired)
    );
    // Nor does a staff agent token from StaffAuthService.Login.
    let staff = harness.staff_token(platform::staff::StaffRole::Agent, "agent-7");
    let (code, refused) = problem(
        client
            .create_booking(authed(book(&slot.id, ""), &staff))
            .await,
    );
    assert_eq!(
        (code, refused.kind),
        (Code::PermissionDenied, ProblemKind::CitizenTokenRequired)
    );

    assert!(harness.scheduling.questions.lock().unwrap().is_empty());
    assert_eq!(remaining(&harness, &slot).await, 5);
}

#[tokio::test]
async fn malformed_and_unknown_slots_are_refused() {
    let harness = Harness::start().await;
    let token = harness.token("alice");
    let mut client = harness.booking.clone();
    let (code, malformed) = problem(
        client
            .create_booking(authed(book("slot-1", ""), &token))
            .await,
    );
    assert_eq!(
        (code, malformed.kind),
        (Code::InvalidArgument, ProblemKind::InvalidRequest)
    );
    assert!(malformed.detail.contains("slot_id"));

    let unknown = uuid::Uuid::new_v4().to_string();
    let (code, missing) = problem(
        client
            .create_booking(authed(book(&unknown, ""), &token))
            .await,
    );
    assert_eq!(
        (code, missing.kind),
        (Code::NotFound, ProblemKind::NotFound)
    );
    assert_eq!(missing.detail, "no such slot");

    // One over the shared limit (platform::ids::IdempotencyKey, the gateway's too).
    let long_key = "k".repeat(platform::ids::IdempotencyKey::MAX_LEN + 1);
    let (code, _) = problem(
        client
            .create_booking(authed(book(&unknown, &long_key), &token))
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
}

#[tokio::test]
async fn a_person_not_eligible_books_nothing() {
    let harness = Harness::start().await;
    let slot = harness.seed_slot(CAMPAIGN, 10, 5).await;
    harness.answer(|answer| {
        answer.eligible = false;
        answer.reason = "not-open-yet".to_owned();
    });
    let token = harness.token("alice");
    let mut client = harness.booking.clone();
    let (code, refused) = problem(
        client
            .create_booking(authed(book(&slot.id, "k1"), &token))
            .await,
    );
    assert_eq!(
        (code, refused.kind),
        (Code::PermissionDenied, ProblemKind::NotEligible)
    );
    assert_eq!(
        refused.extra.get("reason").map(String::as_str),
        Some("not-open-yet")
    );
    assert_eq!(remaining(&harness, &slot).await, 5);
    let mine = client
        .list_my_bookings(authed(pb::ListMyBookingsRequest::default(), &token))
        .await
        .unwrap()
        .into_inner();
    assert!(mine.bookings.is_empty());

    // The question named the slot's campaign and the token's person, never the request's.
    let questions = harness.scheduling.questions.lock().unwrap().clone();
    assert_eq!(questions.len(), 1);
    assert_eq!(questions[0].campaign_id, CAMPAIGN);
    assert_eq!(questions[0].person_key, "alice");
    assert_eq!(questions[0].birth_date, "1985-03-09");
}

#[tokio::test]
async fn booking_replay_and_one_booking_per_campaign() {
    let harness = Harness::start().await;
    let slot = harness.seed_slot(CAMPAIGN, 10, 5).await;
    let other_slot = harness.seed_slot(CAMPAIGN, 11, 5).await;
    let alice = harness.token("alice");
    let mut client = harness.booking.clone();

    let booking = client
        .create_booking(authed(book(&slot.id, "retry-1"), &alice))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(booking.status, pb::BookingStatus::Confirmed as i32);
    assert_eq!(booking.campaign_id, CAMPAIGN);
    assert_eq!(booking.cancellable_until, "2021-09-08");
    let embedded = booking.slot.clone().unwrap();
    assert_eq!(
        (embedded.id.as_str(), embedded.remaining),
        (slot.id.as_str(), 4)
    );
    let created = booking.created_at.as_ref().unwrap().seconds;
    assert!(
        (created - harness.clock.now().timestamp()).abs() < 5,
        "created by the injected clock"
    );

    let replay = client
        .create_booking(authed(book(&slot.id, "retry-1"), &alice))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay.id, booking.id);
    assert_eq!(
        remaining(&harness, &slot).await,
        4,
        "a replay books nothing"
    );

    let (code, reused) = problem(
        client
            .create_booking(authed(book(&other_slot.id, "retry-1"), &alice))
            .await,
    );
    assert_eq!(
        (code, reused.kind),
        (Code::AlreadyExists, ProblemKind::IdempotencyKeyReused)
    );
    let (code, twice) = problem(
        client
            .create_booking(authed(book(&other_slot.id, ""), &alice))
            .await,
    );
    assert_eq!(
        (code, twice.kind),
        (Code::AlreadyExists, ProblemKind::AlreadyBooked)
    );
    assert_eq!(remaining(&harness, &other_slot).await, 5);

    let (code, proxy) = problem(
        client
            .create_booking(authed(
                pb::CreateBookingRequest {
                    proxy: true,
                    ..book(&other_slot.id, "")
                },
                &harness.token("bob"),
            ))
            .await,
    );
    assert_eq!(
        (code, proxy.kind),
        (Code::PermissionDenied, ProblemKind::ProxyNotAllowed)
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
    assert_eq!(fetched, booking);
    let bob = harness.token("bob");
    let (code, _) = problem(
        client
            .get_booking(authed(
                pb::GetBookingRequest {
                    id: booking.id.clone(),
                },
                &bob,
            ))
            .await,
    );
    assert_eq!(
        code,
        Code::NotFound,
        "someone else's booking is not revealed"
    );
    let (code, _) = problem(
        client
            .cancel_booking(authed(
                pb::CancelBookingRequest {
                    id: booking.id.clone(),
                },
                &bob,
            ))
            .await,
    );
    assert_eq!(code, Code::NotFound);
    let bobs = client
        .list_my_bookings(authed(pb::ListMyBookingsRequest::default(), &bob))
        .await
        .unwrap();
    assert!(bobs.into_inner().bookings.is_empty());
    let alices = client
        .list_my_bookings(authed(pb::ListMyBookingsRequest::default(), &alice))
        .await
        .unwrap();
    assert_eq!(alices.into_inner().bookings, vec![booking]);
}

#[tokio::test]
async fn cancellation_is_open_through_d_minus_2_kst() {
    let harness = Harness::start().await;
    let slot = harness.seed_slot(CAMPAIGN, 10, 5).await;
    let mut client = harness.booking.clone();

    harness.clock.set(kst(8, 23, 59));
    let alice = harness.token("alice");
    let on_d2 = client
        .create_booking(authed(book(&slot.id, ""), &alice))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(remaining(&harness, &slot).await, 4);
    let cancelled = client
        .cancel_booking(authed(
            pb::CancelBookingRequest {
                id: on_d2.id.clone(),
            },
            &alice,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.status, pb::BookingStatus::Cancelled as i32);
    assert!(cancelled.cancelled_at.is_some());
    assert_eq!(
        cancelled.slot.unwrap().remaining,
        5,
        "the place is free at once"
    );
    let (code, again) = problem(
        client
            .cancel_booking(authed(pb::CancelBookingRequest { id: on_d2.id }, &alice))
            .await,
    );
    assert_eq!(
        (code, again.kind),
        (Code::FailedPrecondition, ProblemKind::AlreadyCancelled)
    );
    assert_eq!(remaining(&harness, &slot).await, 5);

    let rebooked = client
        .create_booking(authed(book(&slot.id, ""), &alice))
        .await
        .unwrap()
        .into_inner();
    harness.clock.set(kst(9, 0, 0));
    let alice = harness.token("alice");
    let (code, closed) = problem(
        client
            .cancel_booking(authed(pb::CancelBookingRequest { id: rebooked.id }, &alice))
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
    assert_eq!(remaining(&harness, &slot).await, 4);
}

#[tokio::test]
async fn the_campaign_sets_the_cancellation_deadline() {
    let harness = Harness::start().await;
    harness.answer(|answer| answer.cancellation_closes_days_before = 5);
    let slot = harness.seed_slot(CAMPAIGN, 10, 5).await;
    let booking = harness
        .booking
        .clone()
        .create_booking(authed(book(&slot.id, ""), &harness.token("alice")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(booking.cancellable_until, "2021-09-05");
}

#[tokio::test]
async fn operator_calls_need_an_operator_and_valid_slots() {
    let harness = Harness::start().await;
    let mut operator = harness.admin.clone();
    let center = pb::UpsertCenterRequest {
        center: Some(pb::Center {
            name: "강남 센터".into(),
            region: "서울".into(),
            ..Default::default()
        }),
    };
    let (code, missing) = problem(operator.upsert_center(Request::new(center.clone())).await);
    assert_eq!(
        (code, missing.kind),
        (Code::Unauthenticated, ProblemKind::StaffTokenRequired)
    );
    // The dev run's key works here (a local_dev configuration), a guess at it does not.
    let mut wrong = Request::new(center.clone());
    wrong
        .metadata_mut()
        .insert("x-admin-key", "guess".parse().unwrap());
    assert_eq!(
        problem(operator.upsert_center(wrong).await).1.kind,
        ProblemKind::StaffTokenRequired
    );
    operator.upsert_center(admin(center.clone())).await.unwrap();
    let agent = harness.staff_token(platform::staff::StaffRole::Agent, "agent-kim");
    let (code, refused) = problem(operator.upsert_center(authed(center, &agent)).await);
    assert_eq!(
        (code, refused.kind),
        (Code::PermissionDenied, ProblemKind::RoleNotAllowed)
    );
    let (code, _) = problem(
        operator
            .upsert_slot(Request::new(support::slot_request(
                &uuid::Uuid::new_v4().to_string(),
                CAMPAIGN,
                10,
                5,
            )))
            .await,
    );
    assert_eq!(code, Code::Unauthenticated);

    let unknown_center = uuid::Uuid::new_v4().to_string();
    let (code, orphan) = problem(
        operator
            .upsert_slot(admin(support::slot_request(
                &unknown_center,
                CAMPAIGN,
                10,
                5,
            )))
            .await,
    );
    assert_eq!(
        (code, orphan.detail.as_str()),
        (Code::NotFound, "no such center")
    );

    let slot = harness.seed_slot(CAMPAIGN, 10, 2).await;
    harness
        .booking
        .clone()
        .create_booking(authed(book(&slot.id, ""), &harness.token("alice")))
        .await
        .unwrap();
    let mut shrink = support::slot_request(&slot.center_id, CAMPAIGN, 10, 0);
    shrink.slot.as_mut().unwrap().id = slot.id.clone();
    let (code, below) = problem(operator.upsert_slot(admin(shrink.clone())).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(below.detail.contains("capacity"), "{}", below.detail);
    shrink.slot.as_mut().unwrap().capacity = 3;
    let grown = operator
        .upsert_slot(admin(shrink))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((grown.id, grown.capacity, grown.remaining), (slot.id, 3, 2));
}

#[tokio::test]
async fn centers_and_slots_are_listed_in_order() {
    let harness = Harness::start().await;
    let busan = harness.seed_center("부산", "해운대 센터").await;
    let gangnam = harness.seed_center("서울", "강남 센터").await;
    let mut client = harness.booking.clone();
    let all = client
        .list_centers(pb::ListCentersRequest {
            region: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(all.into_inner().centers, vec![busan, gangnam.clone()]);
    let seoul = client
        .list_centers(pb::ListCentersRequest {
            region: "서울".into(),
        })
        .await
        .unwrap();
    assert_eq!(seoul.into_inner().centers, vec![gangnam.clone()]);

    let mut operator = harness.admin.clone();
    let late = operator
        .upsert_slot(admin(support::slot_request(&gangnam.id, CAMPAIGN, 12, 3)))
        .await
        .unwrap();
    let early = operator
        .upsert_slot(admin(support::slot_request(&gangnam.id, CAMPAIGN, 10, 3)))
        .await
        .unwrap();
    let listed = |from: &str, to: &str| pb::ListSlotsRequest {
        center_id: gangnam.id.clone(),
        from: from.into(),
        to: to.into(),
    };
    let every = client
        .list_slots(listed("", ""))
        .await
        .unwrap()
        .into_inner()
        .slots;
    assert_eq!(every, vec![early.into_inner(), late.into_inner()]);
    let window = client
        .list_slots(listed("2021-09-11", "2021-09-12"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(window.slots.len(), 1);
    assert_eq!(window.slots[0].date, "2021-09-12");
    let (code, _) = problem(client.list_slots(listed("2021-09-12", "2021-09-11")).await);
    assert_eq!(code, Code::InvalidArgument);
    let (code, _) = problem(client.list_slots(pb::ListSlotsRequest::default()).await);
    assert_eq!(code, Code::InvalidArgument);
}

#[tokio::test]
async fn an_unreachable_scheduling_service_is_a_retryable_answer() {
    let dead = support::dead_url().await;
    let harness = Harness::start_with(|config| config.scheduling_url = dead).await;
    let slot = harness.seed_slot(CAMPAIGN, 10, 5).await;
    let (code, down) = problem(
        harness
            .booking
            .clone()
            .create_booking(authed(book(&slot.id, ""), &harness.token("alice")))
            .await,
    );
    assert_eq!(
        (code, down.kind),
        (Code::Unavailable, ProblemKind::Unavailable)
    );
    assert!(down.retry_after.is_some());
    assert_eq!(remaining(&harness, &slot).await, 5);
}

#[tokio::test]
async fn the_in_process_store_needs_dev_mode() {
    let mut harness = Harness::start_with(|config| config.dev_mode = false).await;
    let error = (&mut harness.server).await.unwrap().unwrap_err();
    assert!(
        error.to_string().contains("only for `vaxbook dev`"),
        "{error}"
    );
}

#[tokio::test]
async fn a_session_that_lost_its_device_lock_cannot_book_even_over_grpc() {
    let harness = Harness::start().await;
    let slot = harness.seed_slot(CAMPAIGN, 10, 5).await;
    harness
        .sessions
        .valid
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let (code, refused) = problem(
        harness
            .booking
            .clone()
            .create_booking(authed(book(&slot.id, ""), &harness.token("alice")))
            .await,
    );
    assert_eq!(
        (code, refused.kind),
        (Code::Unauthenticated, ProblemKind::SessionExpired)
    );
    assert_eq!(remaining(&harness, &slot).await, 5);
}

#[tokio::test]
async fn malformed_campaign_terms_from_scheduling_refuse_the_booking() {
    let harness = Harness::start().await;
    let slot = harness.seed_slot(CAMPAIGN, 10, 5).await;
    harness.answer(|answer| answer.cancellation_closes_days_before = -1);
    let (code, refused) = problem(
        harness
            .booking
            .clone()
            .create_booking(authed(book(&slot.id, ""), &harness.token("alice")))
            .await,
    );
    assert_eq!(
        (code, refused.kind),
        (Code::Internal, ProblemKind::Internal)
    );
    assert_eq!(remaining(&harness, &slot).await, 5);
}
