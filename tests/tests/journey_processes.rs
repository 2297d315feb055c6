//! The journey against the five services as separate processes on the real PostgreSQL and
//! Redis; the production binaries refuse the dev endpoints; every process stops cleanly on
//! SIGTERM.

use vaxbook_tests::journey::{self, Expect};
use vaxbook_tests::{Api, ProcessStack, seed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journey_walks_through_the_multi_process_stack() -> anyhow::Result<()> {
    let mut stack = ProcessStack::start("journey").await?;
    let seeded =
        seed::open_campaign(&stack.scheduling_url, &stack.booking_url, &stack.operator).await?;
    let otp = stack.otp();
    journey::walk(
        &stack.gateway_url,
        &otp,
        &Expect {
            campaign_id: seeded.campaign_id.clone(),
        },
    )
    .await?;

    // Production answers 404 on the dev-only endpoints.
    let anonymous = Api::new(&stack.gateway_url, "probe-1");
    assert_eq!(
        anonymous.get("/dev/sms?to=010-1234-5678").await?.status,
        404
    );
    let set_clock = anonymous
        .send(
            reqwest::Method::PUT,
            "/dev/clock",
            Some(&serde_json::json!({"now": "2021-08-09T20:00:00+09:00"})),
            &[],
        )
        .await?;
    assert_eq!(set_clock.status, 404);

    let idp = anonymous
        .post(
            "/dev/idp/kakao/assertions",
            &serde_json::json!({"name": "홍길동", "rrn": "900101-1234567", "nonce": "n"}),
        )
        .await?;
    assert_eq!(idp.status, 404);
    // Without configured provider keys, simple certificates are not offered.
    anonymous
        .post(
            "/v1/auth/verifications",
            &serde_json::json!({"provider": "kakao", "name": "홍길동", "rrn": "900101-1234567"}),
        )
        .await?
        .assert_problem(400, "unsupported-provider");

    // Operations endpoints.
    assert_eq!(anonymous.get("/healthz").await?.status, 200);
    assert_eq!(anonymous.get("/readyz").await?.status, 200);
    let metrics = anonymous.get("/metrics").await?;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .as_str()
            .unwrap_or_default()
            .contains("http_requests_total"),
        "{metrics:?}"
    );

    let unclean = stack.stop().await?;
    assert!(
        unclean.is_empty(),
        "processes that did not stop cleanly on SIGTERM: {unclean:?}"
    );
    // The whole journey left no RRN, phone number or name in any service's logs.
    for proc in &stack.procs {
        journey::assert_no_personal_data(&proc.name, &proc.logs());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_closes_two_days_before_the_vaccination_date() -> anyhow::Result<()> {
    let stack = ProcessStack::start("cancel").await?;
    let seeded =
        seed::open_campaign(&stack.scheduling_url, &stack.booking_url, &stack.operator).await?;
    let otp = stack.otp();
    let me = journey::login(
        &Api::new(&stack.gateway_url, "laptop-1"),
        &otp,
        &journey::HONG,
    )
    .await?;
    let booked = me
        .post(
            "/v1/bookings",
            &serde_json::json!({"slot_id": seeded.tomorrow_slot_id}),
        )
        .await?;
    assert_eq!(booked.status, 201, "{booked:?}");
    let id = booked.body["id"].as_str().unwrap_or_default().to_owned();
    let refused = me.delete(&format!("/v1/bookings/{id}")).await?;
    refused.assert_problem(409, "cancellation-closed");
    // Refused means unchanged.
    let read = me.get(&format!("/v1/bookings/{id}")).await?;
    assert_eq!(read.body["status"], "confirmed", "{read:?}");
    Ok(())
}

/// booking-svc does not rely on the gateway for the device lock: a call straight over gRPC
/// with a token whose session has ended is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_svc_itself_refuses_tokens_of_ended_sessions() -> anyhow::Result<()> {
    use proto::booking::v1::ListMyBookingsRequest;
    use proto::booking::v1::booking_service_client::BookingServiceClient;

    let stack = ProcessStack::start("direct-grpc").await?;
    seed::open_campaign(&stack.scheduling_url, &stack.booking_url, &stack.operator).await?;
    let otp = stack.otp();
    let me = journey::login(
        &Api::new(&stack.gateway_url, "laptop-1"),
        &otp,
        &journey::HONG,
    )
    .await?;
    let token = me.token.clone().unwrap_or_default();
    let channel = platform::grpc::channel(&stack.booking_url, std::time::Duration::from_secs(5))?;
    let mut booking = BookingServiceClient::new(channel);
    let direct = |token: &str| -> anyhow::Result<tonic::Request<ListMyBookingsRequest>> {
        let mut request = tonic::Request::new(ListMyBookingsRequest {
            made_for_others: false,
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        Ok(request)
    };
    assert!(
        booking.list_my_bookings(direct(&token)?).await.is_ok(),
        "a live session is served"
    );

    let logout = me
        .send(reqwest::Method::POST, "/v1/session/logout", None, &[])
        .await?;
    assert_eq!(logout.status, 204);
    let refused = booking
        .list_my_bookings(direct(&token)?)
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("an ended session was served over gRPC"))?;
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let problem = platform::problem::Problem::from_status(&refused);
    assert_eq!(problem.kind, platform::problem::ProblemKind::SessionExpired);
    Ok(())
}
