//! Proxy bookings (R1) and the supply released per window (R5), over gRPC against the real
//! `serve`: the proxy deadline of the 60+ round to the second, the limit per booker, the
//! one-booking rule of the person booked for, a grant issued to someone else, and slot listings
//! and bookings that follow the released share as the clock passes each window's opening.

#![allow(clippy::unwrap_used)]

mod support;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Asia::Seoul;
use platform::problem::ProblemKind;
use proto::booking::v1 as pb;
use support::{Harness, authed, book, problem, remaining};
use tonic::Code;

const SENIORS: &str = "r60-plus";
const PARENT_BIRTH_DATE: &str = "1950-05-01";

fn august(day: u32, hour: u32, minute: u32, second: u32) -> DateTime<Utc> {
    Seoul
        .with_ymd_and_hms(2021, 8, day, hour, minute, second)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// The 60+ round: proxies until 9 Aug 2021 18:00 KST, at most `max` per booker.
fn seniors(harness: &Harness, max: u32) {
    harness.answer(|answer| {
        answer.proxy_allowed = true;
        answer.proxy_deadline = Some(august(9, 18, 0, 0));
        answer.proxy_max_per_booker = max;
    });
}

fn for_parent(
    harness: &Harness,
    slot: &pb::Slot,
    booker: &str,
    parent: &str,
) -> pb::CreateBookingRequest {
    pb::CreateBookingRequest {
        proxy: true,
        proxy_grant: harness.proxy_grant(booker, parent, PARENT_BIRTH_DATE),
        ..book(&slot.id, "")
    }
}

#[tokio::test]
async fn a_proxy_books_until_the_deadline_and_not_a_second_later() {
    let harness = Harness::start().await;
    seniors(&harness, 0);
    let slot = harness.seed_slot(SENIORS, 10, 5).await;
    let mut client = harness.booking.clone();

    harness.clock.set(august(9, 17, 59, 59));
    let child = harness.token("child");
    let booked = client
        .create_booking(authed(
            for_parent(&harness, &slot, "child", "parent"),
            &child,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(booked.made_by_proxy);
    assert_eq!(booked.booked_for_masked_name, "홍*동");
    // scheduling-svc was asked about the parent, as a proxy booking on the web.
    let question = harness
        .scheduling
        .questions
        .lock()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(question.person_key, "parent");
    assert_eq!(question.birth_date, PARENT_BIRTH_DATE);
    assert!(question.proxy);
    assert_eq!(question.channel, proto::scheduling::v1::Channel::Web as i32);

    harness.clock.set(august(9, 18, 0, 0));
    let late = client
        .create_booking(authed(
            for_parent(&harness, &slot, "child", "mother"),
            &harness.token("child"),
        ))
        .await;
    let (code, refused) = problem(late);
    assert_eq!(
        (code, refused.kind),
        (Code::PermissionDenied, ProblemKind::ProxyNotAllowed)
    );
    assert!(refused.detail.contains("deadline"), "{}", refused.detail);
    assert_eq!(
        refused.extra.get("proxy_deadline").map(String::as_str),
        Some("2021-08-09T18:00:00+09:00")
    );
    assert_eq!(remaining(&harness, &slot).await, 4);

    // The booker lists what they made for others; the parent sees it as their own.
    let mine = client
        .list_my_bookings(authed(
            pb::ListMyBookingsRequest {
                made_for_others: true,
            },
            &harness.token("child"),
        ))
        .await
        .unwrap()
        .into_inner()
        .bookings;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].booked_for_masked_name, "홍*동");
    let own = client
        .list_my_bookings(authed(
            pb::ListMyBookingsRequest::default(),
            &harness.token("child"),
        ))
        .await
        .unwrap()
        .into_inner()
        .bookings;
    assert!(own.is_empty());
    let parents = client
        .list_my_bookings(authed(
            pb::ListMyBookingsRequest::default(),
            &harness.token("parent"),
        ))
        .await
        .unwrap()
        .into_inner()
        .bookings;
    assert_eq!(parents.len(), 1);
    assert_eq!(parents[0].id, booked.id);
    assert!(parents[0].made_by_proxy);
}

#[tokio::test]
async fn a_booker_makes_at_most_the_campaigns_proxy_bookings() {
    let harness = Harness::start().await;
    seniors(&harness, 2);
    harness.clock.set(august(9, 10, 0, 0));
    let slot = harness.seed_slot(SENIORS, 10, 10).await;
    let mut client = harness.booking.clone();
    let token = harness.token("child");
    for parent in ["father", "mother"] {
        client
            .create_booking(authed(for_parent(&harness, &slot, "child", parent), &token))
            .await
            .unwrap();
    }
    let (code, third) = problem(
        client
            .create_booking(authed(
                for_parent(&harness, &slot, "child", "grandma"),
                &token,
            ))
            .await,
    );
    assert_eq!(
        (code, third.kind),
        (Code::PermissionDenied, ProblemKind::ProxyNotAllowed)
    );
    assert_eq!(
        third.extra.get("max_per_booker").map(String::as_str),
        Some("2")
    );
    assert_eq!(remaining(&harness, &slot).await, 8);
}

#[tokio::test]
async fn the_person_booked_for_keeps_one_booking() {
    let harness = Harness::start().await;
    seniors(&harness, 0);
    harness.clock.set(august(9, 10, 0, 0));
    let slot = harness.seed_slot(SENIORS, 10, 10).await;
    let other = harness.seed_slot(SENIORS, 11, 10).await;
    let mut client = harness.booking.clone();
    client
        .create_booking(authed(book(&slot.id, ""), &harness.token("parent")))
        .await
        .unwrap();
    let (code, again) = problem(
        client
            .create_booking(authed(
                for_parent(&harness, &other, "child", "parent"),
                &harness.token("child"),
            ))
            .await,
    );
    assert_eq!(
        (code, again.kind),
        (Code::AlreadyExists, ProblemKind::AlreadyBooked)
    );
    assert_eq!(remaining(&harness, &other).await, 10);
}

#[tokio::test]
async fn proxies_outside_the_policy_or_on_someone_elses_grant_are_refused() {
    let harness = Harness::start().await;
    harness.clock.set(august(9, 10, 0, 0));
    let slot = harness.seed_slot(SENIORS, 10, 10).await;
    let mut client = harness.booking.clone();
    // The campaign allows no proxies.
    let (_, closed) = problem(
        client
            .create_booking(authed(
                for_parent(&harness, &slot, "child", "parent"),
                &harness.token("child"),
            ))
            .await,
    );
    assert_eq!(closed.kind, ProblemKind::ProxyNotAllowed);
    seniors(&harness, 0);
    // A grant issued to another booker.
    let (_, stolen) = problem(
        client
            .create_booking(authed(
                for_parent(&harness, &slot, "child", "parent"),
                &harness.token("mallory"),
            ))
            .await,
    );
    assert_eq!(stolen.kind, ProblemKind::Forbidden);
    // A forged grant.
    let forged = pb::CreateBookingRequest {
        proxy: true,
        proxy_grant: "eyJhbGciOiJFZERTQSJ9.e30.c2ln".to_owned(),
        ..book(&slot.id, "")
    };
    let (code, _) = problem(
        client
            .create_booking(authed(forged, &harness.token("child")))
            .await,
    );
    assert_eq!(code, Code::Unauthenticated);
    // scheduling-svc's own proxy refusal is a proxy refusal, not "not eligible".
    harness.answer(|answer| {
        answer.eligible = false;
        answer.reason = "proxy-not-allowed".to_owned();
    });
    let (_, policy) = problem(
        client
            .create_booking(authed(
                for_parent(&harness, &slot, "child", "parent"),
                &harness.token("child"),
            ))
            .await,
    );
    assert_eq!(policy.kind, ProblemKind::ProxyNotAllowed);
    assert_eq!(remaining(&harness, &slot).await, 10);
}

#[tokio::test]
async fn listings_and_bookings_follow_the_supply_released_by_the_clock() {
    let harness = Harness::start().await;
    // Two windows: 20:00 on 9 Aug releases 40 %, 20:00 on 10 Aug the rest.
    harness.answer(|answer| {
        answer.supply_release = vec![(august(9, 20, 0, 0), 4_000), (august(10, 20, 0, 0), 10_000)];
    });
    harness.clock.set(august(9, 19, 59, 59));
    let slot = harness.seed_slot("r18-49", 10, 5).await;
    assert_eq!(remaining(&harness, &slot).await, 0);
    let mut client = harness.booking.clone();
    let (code, early) = problem(
        client
            .create_booking(authed(book(&slot.id, ""), &harness.token("early")))
            .await,
    );
    assert_eq!(
        (code, early.kind),
        (Code::ResourceExhausted, ProblemKind::SlotFull)
    );

    // The window opens by the clock, no operator involved: 2 of 5 places (40 %, floored).
    harness.clock.set(august(9, 20, 0, 0));
    // The listing cache lives a couple of seconds; bookings see the share at once.
    for person in ["a", "b"] {
        let booked = client
            .create_booking(authed(book(&slot.id, ""), &harness.token(person)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(booked.slot.unwrap().released, 2);
    }
    let (_, third) = problem(
        client
            .create_booking(authed(book(&slot.id, ""), &harness.token("c")))
            .await,
    );
    assert_eq!(third.kind, ProblemKind::SlotFull);

    harness.clock.set(august(10, 20, 0, 0));
    tokio::time::sleep(booking_svc::eligibility::TERMS_CACHE_TTL).await;
    assert_eq!(remaining(&harness, &slot).await, 3);
    client
        .create_booking(authed(book(&slot.id, ""), &harness.token("c")))
        .await
        .unwrap();
}
