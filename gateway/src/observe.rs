//! The per-request middleware: admission (a fixed number of requests in flight, the rest shed
//! at once with 503 `overloaded`), the `http_request` span continuing the caller's W3C trace,
//! and the request metrics, labelled by the matched route template.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use platform::problem::{Problem, ProblemKind};
use tracing::Instrument;

use crate::AppState;
use crate::problem::HttpProblem;

/// Label for requests that matched no route, so unknown paths cannot explode label cardinality.
const UNMATCHED_ROUTE: &str = "unmatched";

/// Routes that are never shed: probes and scrapes must answer precisely when the gateway is
/// busy, or the orchestrator restarts a healthy but loaded replica.
const NEVER_SHED: &[&str] = &["/healthz", "/readyz", "/metrics"];

pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned())
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
    let method = request.method().clone();
    let span = tracing::info_span!(
        "http_request",
        otel.kind = "server",
        otel.name = %format_args!("{method} {route}"),
        http.method = %method,
        http.route = %route,
        http.status_code = tracing::field::Empty,
    );
    platform::telemetry::set_parent_from_headers(&span, request.headers());
    let started = Instant::now();

    let permit = if NEVER_SHED.contains(&route.as_str()) {
        None
    } else {
        match state.inflight.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                metrics::counter!("http_requests_shed_total", "route" => route.clone())
                    .increment(1);
                let response = overloaded().into_response();
                span.record("http.status_code", response.status().as_u16());
                record(&route, &response, started);
                return response;
            }
        }
    };

    metrics::gauge!("http_requests_in_flight").increment(1.0);
    let response = next.run(request).instrument(span.clone()).await;
    metrics::gauge!("http_requests_in_flight").decrement(1.0);
    drop(permit);

    span.record("http.status_code", response.status().as_u16());
    record(&route, &response, started);
    response
}

fn overloaded() -> HttpProblem {
    Problem::new(
        ProblemKind::Overloaded,
        "the gateway is at capacity; retry shortly",
    )
    .with_retry_after(Duration::from_secs(1))
    .into()
}

fn record(route: &str, response: &Response, started: Instant) {
    metrics::counter!(
        "http_requests_total",
        "route" => route.to_owned(),
        "status" => response.status().as_u16().to_string()
    )
    .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route.to_owned())
        .record(started.elapsed().as_secs_f64());
}
