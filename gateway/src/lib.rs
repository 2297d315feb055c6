//! The vaxbook REST gateway: the JSON API web and mobile frontends call, in front of auth-svc,
//! session-svc, scheduling-svc and booking-svc. It verifies access tokens locally, checks the
//! device's session, maps gRPC problems to `application/problem+json`, sheds load beyond a
//! fixed number of in-flight requests, and carries each request's trace into the services.

pub mod clients;
pub mod config;
pub mod extract;
mod observe;
pub mod openapi;
pub mod problem;
pub mod routes;

use std::future::IntoFuture;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use platform::clock::SharedClock;
use platform::dev::DevHooks;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use crate::clients::Clients;
pub use crate::config::Config;

/// The largest request body accepted; every body of this API is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub clients: Arc<Clients>,
    pub clock: SharedClock,
    pub dev: Option<DevHooks>,
    /// One permit per request allowed in flight; when none is left the request is shed.
    pub inflight: Arc<Semaphore>,
    /// Without a trailing slash.
    pub public_base_url: Arc<str>,
    /// The served OpenAPI document, with `servers` set to the public base URL.
    pub openapi: Arc<str>,
    pub cors_allowed_origins: Arc<[String]>,
}

impl AppState {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        // Install the Prometheus recorder now, or the metrics of requests served before the
        // first scrape would go nowhere.
        let _ = platform::metrics::handle();
        let public_base_url = config::normalize_base_url(&config.public_base_url);
        Ok(Self {
            clients: Arc::new(Clients::new(config)?),
            clock: config.clock.clone(),
            dev: config.dev.clone(),
            inflight: Arc::new(Semaphore::new(config.max_inflight.max(1))),
            openapi: routes::ops::openapi_document(&public_base_url, config.dev.is_some()).into(),
            public_base_url: public_base_url.into(),
            cors_allowed_origins: config.cors_allowed_origins.clone().into(),
        })
    }
}

/// The CORS policy for browser frontends served from other origins: the API's methods and
/// headers, and the response headers a frontend reads (`Retry-After`, `Location`).
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use http::{HeaderName, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|origin| origin.parse().ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-device-id"),
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("traceparent"),
            ])
            .expose_headers([header::RETRY_AFTER, header::LOCATION])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// The whole HTTP application for `state`.
pub fn router(state: AppState) -> Router {
    let public_base_url = state.public_base_url.clone();
    let cors = cors(&state.cors_allowed_origins);
    routes::table(state.dev.is_some())
        .into_router()
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        // Outermost, so it also renders the problems of the layers above.
        .layer(axum::middleware::from_fn_with_state(
            public_base_url,
            problem::render_problems,
        ))
        // Outside everything: a preflight is answered before routing, and every answer,
        // problems included, carries the CORS headers.
        .layer(tower::util::option_layer(cors))
        .with_state(state)
}

/// Serves the gateway on `listener` until `shutdown` is cancelled, then stops accepting and
/// lets in-flight requests finish for at most `config.shutdown_grace`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state = AppState::new(&config)?;
    let app = router(state);
    let local_addr = listener.local_addr()?;
    tracing::info!(%local_addr, dev = config.dev.is_some(), "serving HTTP");
    let drain_started = CancellationToken::new();
    let server = {
        let drain_started = drain_started.clone();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.cancelled().await;
                drain_started.cancel();
            })
            .into_future()
    };
    let grace = config.shutdown_grace;
    let result = tokio::select! {
        result = server => result.map_err(anyhow::Error::from),
        _ = async {
            drain_started.cancelled().await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!("drain deadline passed, closing open requests");
            Ok(())
        }
    };
    tracing::info!("stopped");
    result
}
