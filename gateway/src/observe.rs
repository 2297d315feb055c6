//! The per-request middleware: admission (a fixed number of requests in flight, the rest shed
//! at once with 503 `overloaded`, through the shared [`platform::shed`] layer), the
//! `http_request` span continuing the caller's W3C trace, the in-flight gauge, and the request
//! metrics, labelled by the matched route template.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use platform::problem::{Problem, ProblemKind};
use platform::shed::{LoadShedLayer, ShedPolicy};
use tracing::Instrument;

use crate::problem::HttpProblem;

/// Label for requests that matched no route, so unknown paths cannot explode label cardinality.
const UNMATCHED_ROUTE: &str = "unmatched";

/// Routes that are never shed: probes and scrapes must answer precisely when the gateway is
/// busy, or the orchestrator restarts a healthy but loaded replica.
const NEVER_SHED: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// The gauge of requests being answered right now.
const IN_FLIGHT_GAUGE: &str = "http_requests_in_flight";

/// The gateway's side of [`platform::shed`]: probes are exempt, a refusal is 503 `overloaded`
/// with `Retry-After: 1`, counted per route.
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpShed;

impl<B> ShedPolicy<http::Request<B>, Response> for HttpShed {
    fn is_exempt(&self, request: &http::Request<B>) -> bool {
        NEVER_SHED.contains(&route_of(request).as_str())
    }

    fn refuse(&self, request: &http::Request<B>) -> Response {
        metrics::counter!("http_requests_shed_total", "route" => route_of(request)).increment(1);
        overloaded().into_response()
    }
}

/// Sheds requests beyond `max_inflight` at once (at least one).
pub fn load_shed_layer(max_inflight: usize) -> LoadShedLayer<HttpShed> {
    LoadShedLayer::new(HttpShed, max_inflight)
}

fn route_of<B>(request: &http::Request<B>) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned())
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned())
}

/// Counts one request in [`IN_FLIGHT_GAUGE`] for as long as it lives, so a request whose
/// client goes away (its future dropped mid-way) is uncounted too.
struct InFlight;

impl InFlight {
    fn enter() -> Self {
        metrics::gauge!(IN_FLIGHT_GAUGE).increment(1.0);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(IN_FLIGHT_GAUGE).decrement(1.0);
    }
}

pub async fn observe(request: Request, next: Next) -> Response {
    let route = route_of(&request);
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

    let in_flight = InFlight::enter();
    let response = next.run(request).instrument(span.clone()).await;
    drop(in_flight);

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

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn in_flight_now() -> Option<f64> {
        platform::metrics::handle()
            .render()
            .lines()
            .find(|line| line.starts_with(IN_FLIGHT_GAUGE))
            .and_then(|line| line.split_whitespace().last())
            .and_then(|value| value.parse().ok())
    }

    #[tokio::test]
    async fn a_cancelled_request_leaves_the_in_flight_gauge() {
        let _ = platform::metrics::handle();
        let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
        let entered_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(entered_tx)));
        let app = Router::new()
            .route(
                "/slow",
                get(move || {
                    if let Some(entered) = entered_tx.lock().ok().and_then(|mut tx| tx.take()) {
                        let _ = entered.send(());
                    }
                    std::future::pending::<&'static str>()
                }),
            )
            .layer(axum::middleware::from_fn(observe));
        let request = http::Request::builder()
            .uri("/slow")
            .body(Body::empty())
            .unwrap_or_default();
        let call = tokio::spawn(app.oneshot(request));
        assert!(entered_rx.await.is_ok(), "the handler was reached");
        assert_eq!(in_flight_now(), Some(1.0));
        // The client goes away: the request's future is dropped before it answers.
        call.abort();
        assert!(call.await.is_err_and(|err| err.is_cancelled()));
        assert_eq!(in_flight_now(), Some(0.0));
    }
}
