//! booking-svc served on PostgreSQL: start-up migrates a fresh database, readiness turns
//! SERVING once the database answers, and a booking round-trips through it.

#![allow(clippy::unwrap_used)]

mod support;

use booking_svc::StoreConfig;
use proto::booking::v1 as pb;
use support::{Harness, authed, book};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test]
async fn serves_bookings_from_a_migrated_database() {
    let url = platform::pg::create_test_database("booking_serve")
        .await
        .unwrap();
    let harness = Harness::start_with(|config| {
        config.dev_mode = false;
        config.store = StoreConfig::Postgres {
            url: platform::config::ConnectionUrl::new(url.clone()),
            max_connections: 4,
        };
    })
    .await;

    let channel = tonic::transport::Channel::from_shared(format!("http://{}", harness.addr))
        .unwrap()
        .connect_lazy();
    let mut health = HealthClient::new(channel);
    let mut updates = health
        .watch(HealthCheckRequest {
            service: "vaxbook.booking.v1.BookingService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    loop {
        let update = updates
            .message()
            .await
            .unwrap()
            .expect("the health stream ended");
        if update.status == ServingStatus::Serving as i32 {
            break;
        }
    }

    let slot = harness.seed_slot("r18-49", 10, 1).await;
    let mut client = harness.booking.clone();
    let booking = client
        .create_booking(authed(book(&slot.id, "pg-1"), &harness.token("alice")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(booking.slot.unwrap().remaining, 0);
    let full = client
        .create_booking(authed(book(&slot.id, ""), &harness.token("bob")))
        .await;
    assert_eq!(full.unwrap_err().code(), tonic::Code::ResourceExhausted);
    let mine = client
        .list_my_bookings(authed(
            pb::ListMyBookingsRequest::default(),
            &harness.token("alice"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.bookings.len(), 1);
    assert_eq!(mine.bookings[0].id, booking.id);
}
