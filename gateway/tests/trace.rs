//! W3C trace context: a `traceparent` sent to the gateway comes out, with the same trace id and
//! the gateway's own span as parent, in the metadata of every gRPC call the request makes.
//! Its own test binary, because it installs a global OpenTelemetry-backed subscriber.

#![allow(clippy::unwrap_used)]

mod common;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use reqwest::Method;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use common::Harness;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

fn install_tracing() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    // No exporter: spans get real ids, which is all propagation needs.
    let provider = SdkTracerProvider::builder().build();
    let tracer = provider.tracer("gateway-test");
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init()
        .unwrap();
}

#[tokio::test]
async fn the_callers_trace_reaches_every_service() {
    install_tracing();
    let harness = Harness::start().await;
    let response = harness
        .authed(Method::GET, "/v1/me/eligibility")
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    for method in [
        "auth.GetJwks",
        "session.ValidateSession",
        "scheduling.CheckEligibility",
    ] {
        let calls = harness.fakes.calls_to(method);
        assert_eq!(calls.len(), 1, "{method}");
        let traceparent = calls[0]
            .metadata
            .get("traceparent")
            .unwrap_or_else(|| panic!("{method} received no traceparent"))
            .to_str()
            .unwrap()
            .to_owned();
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!(parts[1], TRACE_ID, "{method}: {traceparent}");
        // The parent is the gateway's span, not the caller's.
        assert_ne!(parts[2], CALLER_SPAN_ID, "{method}: {traceparent}");
        assert_eq!(parts[3], "01");
    }

    // Without an incoming trace the gateway starts its own, still propagated.
    let response = harness
        .authed(Method::GET, "/v1/bookings")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let call = &harness.fakes.calls_to("booking.ListMyBookings")[0];
    let traceparent = call.metadata.get("traceparent").unwrap().to_str().unwrap();
    assert!(!traceparent.contains(TRACE_ID), "{traceparent}");
}
