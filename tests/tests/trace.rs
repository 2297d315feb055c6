//! One booking's spans, from the gateway and from every service the booking crossed, share one
//! trace id: the trace context travels in HTTP headers and gRPC metadata, and every process
//! exports over OTLP to a real OTLP/gRPC receiver.

use std::collections::BTreeSet;

use serde_json::json;
use vaxbook_tests::journey;
use vaxbook_tests::otlp::Collector;
use vaxbook_tests::{Api, ProcessStack, seed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_keeps_one_trace_id_across_the_gateway_and_the_services() -> anyhow::Result<()> {
    let collector = Collector::start().await?;
    let mut stack = ProcessStack::start_with(
        "trace",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
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

    // The frontend starts the trace; the gateway continues it.
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let traceparent = format!(
        "00-{trace_id}-{}-01",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    let booked = me
        .send(
            reqwest::Method::POST,
            "/v1/bookings",
            Some(&json!({"slot_id": seeded.slot_ids[0]})),
            &[("traceparent", traceparent.as_str())],
        )
        .await?;
    assert_eq!(booked.status, 201, "{booked:?}");

    // Graceful stop flushes every exporter.
    let unclean = stack.stop().await?;
    assert!(unclean.is_empty(), "unclean stop: {unclean:?}");

    let spans = collector.spans();
    let services: BTreeSet<String> = spans
        .iter()
        .filter(|span| span.trace_id == trace_id)
        .map(|span| span.service.clone())
        .collect();
    for crossed in ["gateway", "session-svc", "scheduling-svc", "booking-svc"] {
        assert!(
            services.contains(crossed),
            "no span of {crossed} in trace {trace_id}; services seen in it: {services:?}; all spans: {}",
            spans.len()
        );
    }
    Ok(())
}
