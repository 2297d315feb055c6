//! The waiting room end to end, every service its own process on real PostgreSQL and Redis
//! (issue 8's "done when"): while the room is on a booking without a grant is refused — through
//! the gateway's REST and over gRPC straight to booking-svc — and with the grant the poll hands
//! out it succeeds once; and the automatic mode opens the room by itself when booking-svc is
//! saturated (a bounded load on 127.0.0.1) and closes it again when the load is gone.

use std::time::{Duration, Instant};

use proto::booking::v1::booking_service_client::BookingServiceClient;
use proto::booking::v1::{ChangeBookingRequest, CreateBookingRequest};
use serde_json::json;
use vaxbook_tests::journey;
use vaxbook_tests::{Api, ProcessStack, seed};

/// Turns the waiting room of every campaign on or off, then waits (bounded) until booking-svc
/// itself shows the change: it caches the room's status for BOOKING_ADMISSION_CACHE_MS.
async fn set_room(
    stack: &ProcessStack,
    probe: &RoomProbe<'_>,
    enabled: bool,
    rate: f64,
) -> anyhow::Result<()> {
    let channel = platform::grpc::channel(&stack.session_url, Duration::from_secs(5))?;
    let mut admin =
        proto::session::v1::queue_admin_service_client::QueueAdminServiceClient::new(channel);
    // The operator's name comes from the operator token.
    let request = stack
        .operator
        .request(proto::session::v1::SetAdmissionRequest {
            room: "*".to_owned(),
            enabled,
            rate_per_second: rate,
            automatic: false,
        })?;
    admin.set_admission(request).await?;
    probe.wait_until_booking_sees(stack, enabled).await
}

/// What booking-svc's admission gate lets through, asked without side effects: a change,
/// without a grant, of a booking that does not exist, into a real slot of the campaign. The
/// gate runs before the booking is looked up, so while booking-svc sees the room on it answers
/// `admission-required`, and while it sees it off the change reaches the lookup and answers
/// `not-found`. Nothing is ever written.
struct RoomProbe<'a> {
    token: &'a str,
    slot_id: &'a str,
}

impl RoomProbe<'_> {
    /// Whether booking-svc currently requires an admission grant for the probe's campaign.
    async fn booking_requires_admission(&self, stack: &ProcessStack) -> anyhow::Result<bool> {
        let channel = platform::grpc::channel(&stack.booking_url, Duration::from_secs(5))?;
        let mut request = tonic::Request::new(ChangeBookingRequest {
            id: uuid::Uuid::new_v4().to_string(),
            slot_id: self.slot_id.to_owned(),
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {}", self.token).parse()?);
        let status = BookingServiceClient::new(channel)
            .change_booking(request)
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("a booking that does not exist was changed"))?;
        match platform::problem::Problem::from_status(&status).kind {
            platform::problem::ProblemKind::AdmissionRequired => Ok(true),
            platform::problem::ProblemKind::NotFound => Ok(false),
            other => anyhow::bail!("the room probe was answered {other:?}: {status:?}"),
        }
    }

    /// Polls until booking-svc's gate shows the room `enabled` (within 20 s).
    async fn wait_until_booking_sees(
        &self,
        stack: &ProcessStack,
        enabled: bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.booking_requires_admission(stack).await? == enabled {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "booking-svc never saw the waiting room {}",
                if enabled { "on" } else { "off" }
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn admitted_grant(me: &Api) -> anyhow::Result<String> {
    let taken = me.post("/v1/queue/tickets", &json!({})).await?;
    anyhow::ensure!(taken.status == 202, "take a ticket: {taken:?}");
    let ticket = taken.body["ticket"].as_str().unwrap_or_default().to_owned();
    // Taking again (another tab) answers the same ticket.
    let again = me.post("/v1/queue/tickets", &json!({})).await?;
    anyhow::ensure!(
        again.body["ticket"] == ticket.as_str(),
        "same ticket: {again:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let polled = me.get(&format!("/v1/queue/tickets/{ticket}")).await?;
        anyhow::ensure!(polled.status == 200, "poll: {polled:?}");
        if polled.body["admitted"] == true {
            return Ok(polled.body["admission"]
                .as_str()
                .unwrap_or_default()
                .to_owned());
        }
        anyhow::ensure!(Instant::now() < deadline, "never admitted: {polled:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn grpc_booking(
    token: &str,
    slot_id: &str,
    key: &str,
    grant: Option<&str>,
) -> anyhow::Result<tonic::Request<CreateBookingRequest>> {
    let mut request = tonic::Request::new(CreateBookingRequest {
        slot_id: slot_id.to_owned(),
        idempotency_key: key.to_owned(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    if let Some(grant) = grant {
        request.metadata_mut().insert("x-admission", grant.parse()?);
    }
    Ok(request)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_back_door_through_rest_or_grpc() -> anyhow::Result<()> {
    let stack = ProcessStack::start("waiting-room").await?;
    let seeded =
        seed::open_campaign(&stack.scheduling_url, &stack.booking_url, &stack.operator).await?;
    let otp = stack.otp();
    let me = journey::login(
        &Api::new(&stack.gateway_url, "laptop-1"),
        &otp,
        &journey::HONG,
    )
    .await?;
    let token = me.token.clone().unwrap_or_default();
    let slot = seeded.slot_ids[0].clone();
    let probe = RoomProbe {
        token: &token,
        slot_id: &slot,
    };
    set_room(&stack, &probe, true, 2.0).await?;

    // REST without the grant: refused.
    let refused = me
        .send(
            reqwest::Method::POST,
            "/v1/bookings",
            Some(&json!({"slot_id": slot})),
            &[("Idempotency-Key", "rest-1")],
        )
        .await?;
    refused.assert_problem(403, "admission-required");
    // gRPC straight to booking-svc without the grant: refused the same.
    let channel = platform::grpc::channel(&stack.booking_url, Duration::from_secs(5))?;
    let mut booking = BookingServiceClient::new(channel);
    let status = booking
        .create_booking(grpc_booking(&token, &slot, "grpc-1", None)?)
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("a booking without a grant went through gRPC"))?;
    assert_eq!(
        platform::problem::Problem::from_status(&status).kind,
        platform::problem::ProblemKind::AdmissionRequired
    );

    // Through the waiting room: admitted, the grant books once.
    let grant = admitted_grant(&me).await?;
    assert!(!grant.is_empty());
    let booked = me
        .send(
            reqwest::Method::POST,
            "/v1/bookings",
            Some(&json!({"slot_id": slot})),
            &[("Idempotency-Key", "rest-2"), ("X-Admission", &grant)],
        )
        .await?;
    assert_eq!(booked.status, 201, "{booked:?}");
    let again = me
        .send(
            reqwest::Method::POST,
            "/v1/bookings",
            Some(&json!({"slot_id": seeded.slot_ids[1]})),
            &[("Idempotency-Key", "rest-3"), ("X-Admission", &grant)],
        )
        .await?;
    again.assert_problem(403, "admission-required");
    // The same spent grant over gRPC opens nothing either.
    let status = booking
        .create_booking(grpc_booking(
            &token,
            &seeded.slot_ids[1],
            "grpc-2",
            Some(&grant),
        )?)
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("a spent grant booked over gRPC"))?;
    assert_eq!(
        platform::problem::Problem::from_status(&status).kind,
        platform::problem::ProblemKind::AdmissionRequired
    );
    set_room(&stack, &probe, false, 2.0).await?;
    Ok(())
}

async fn room_enabled(stack: &ProcessStack) -> anyhow::Result<bool> {
    let channel = platform::grpc::channel(&stack.session_url, Duration::from_secs(5))?;
    let state = proto::session::v1::queue_service_client::QueueServiceClient::new(channel)
        .get_admission(proto::session::v1::GetAdmissionRequest {
            room: "*".to_owned(),
        })
        .await?
        .into_inner();
    Ok(state.enabled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_automatic_mode_opens_the_room_under_load_and_closes_it_after() -> anyhow::Result<()> {
    // booking-svc sized for one write in flight: a few concurrent writes saturate it.
    let stack = ProcessStack::start_with(
        "waiting-room-auto",
        &[
            ("SESSION_ADMISSION_AUTO", "true"),
            ("BOOKING_TARGET_IN_FLIGHT", "1"),
            ("BOOKING_TARGET_LATENCY_MS", "60000"),
        ],
    )
    .await?;
    let seeded =
        seed::open_campaign(&stack.scheduling_url, &stack.booking_url, &stack.operator).await?;
    let otp = stack.otp();
    let me = journey::login(
        &Api::new(&stack.gateway_url, "laptop-1"),
        &otp,
        &journey::HONG,
    )
    .await?;
    let token = me.token.clone().unwrap_or_default();
    assert!(!room_enabled(&stack).await?, "the room starts closed");

    // A bounded load: 16 callers writing as fast as they can for at most 20 s, straight to
    // booking-svc, until the room opens by itself.
    let channel = platform::grpc::channel(&stack.booking_url, Duration::from_secs(5))?;
    let stop = tokio_util::sync::CancellationToken::new();
    let mut load = Vec::new();
    for lane in 0..16 {
        let mut booking = BookingServiceClient::new(channel.clone());
        let (token, slot, stop) = (
            token.clone(),
            seeded.slot_ids[lane % 2].clone(),
            stop.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.is_cancelled() {
                n += 1;
                if let Ok(request) = grpc_booking(&token, &slot, &format!("load-{lane}-{n}"), None)
                {
                    let _ = booking.create_booking(request).await;
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut opened = false;
    while Instant::now() < deadline {
        if room_enabled(&stack).await? {
            opened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        opened,
        "booking-svc saturated: the automatic mode opened the room"
    );
    // While it is open (the load still on, once booking-svc's cached status shows it), a
    // write without a grant is refused.
    RoomProbe {
        token: &token,
        slot_id: &seeded.slot_ids[0],
    }
    .wait_until_booking_sees(&stack, true)
    .await?;
    let refused = me
        .send(
            reqwest::Method::POST,
            "/v1/bookings",
            Some(&json!({"slot_id": seeded.slot_ids[0]})),
            &[("Idempotency-Key", "during")],
        )
        .await?;
    refused.assert_problem(403, "admission-required");
    stop.cancel();
    for lane in load {
        let _ = lane.await;
    }

    // The load gone and nobody waiting: the room closes by itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut closed = false;
    while Instant::now() < deadline {
        if !room_enabled(&stack).await? {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        closed,
        "booking-svc recovered: the automatic mode closed the room"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_lock_changed_hands_never_books() -> anyhow::Result<()> {
    let stack = ProcessStack::start("fencing").await?;
    let seeded =
        seed::open_campaign(&stack.scheduling_url, &stack.booking_url, &stack.operator).await?;
    let otp = stack.otp();
    let laptop = Api::new(&stack.gateway_url, "laptop-1");
    let first = journey::login(&laptop, &otp, &journey::HONG).await?;
    let old_token = first.token.clone().unwrap_or_default();
    // The lock changes hands: logged out, then verified again (a higher fencing number).
    let logout = first
        .send(reqwest::Method::POST, "/v1/session/logout", None, &[])
        .await?;
    assert_eq!(logout.status, 204);
    let second = journey::login(&laptop, &otp, &journey::HONG).await?;
    assert_ne!(second.token, first.token);

    // The old token, straight to booking-svc: refused as superseded, nothing booked.
    let channel = platform::grpc::channel(&stack.booking_url, Duration::from_secs(5))?;
    let status = BookingServiceClient::new(channel)
        .create_booking(grpc_booking(
            &old_token,
            &seeded.slot_ids[0],
            "stale-1",
            None,
        )?)
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("a superseded session booked"))?;
    assert_eq!(
        platform::problem::Problem::from_status(&status).kind,
        platform::problem::ProblemKind::SessionSuperseded
    );
    // Through the gateway the same.
    let refused = first
        .send(
            reqwest::Method::POST,
            "/v1/bookings",
            Some(&json!({"slot_id": seeded.slot_ids[0]})),
            &[("Idempotency-Key", "stale-2")],
        )
        .await?;
    refused.assert_problem(401, "session-superseded");
    // The current session books.
    let booked = second
        .send(
            reqwest::Method::POST,
            "/v1/bookings",
            Some(&json!({"slot_id": seeded.slot_ids[0]})),
            &[("Idempotency-Key", "fresh-1")],
        )
        .await?;
    assert_eq!(booked.status, 201, "{booked:?}");
    Ok(())
}
