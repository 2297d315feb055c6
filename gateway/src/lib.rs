//! The vaxbook REST gateway: the JSON API web and mobile frontends call, in front of auth-svc,
//! session-svc, scheduling-svc and booking-svc. It verifies access tokens locally, checks the
//! device's session, maps gRPC problems to `application/problem+json`, sheds load beyond a
//! fixed number of in-flight requests, and carries each request's trace into the services.

pub mod client_address;
pub mod clients;
pub mod config;
pub mod edge;
pub mod extract;
mod observe;
pub mod openapi;
pub mod problem;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use platform::clock::SharedClock;
use platform::dev::DevHooks;
use platform::shed::LoadShedLayer;
use tokio::net::TcpListener;
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
    pub(crate) load_shed: LoadShedLayer<observe::HttpShed>,
    /// How long a request body may take to arrive ([`edge::EdgeTimeouts::body`]).
    pub(crate) body_timeout: Duration,
    /// Without a trailing slash.
    pub public_base_url: Arc<str>,
    /// The served OpenAPI document, with `servers` set to the public base URL.
    pub openapi: Arc<str>,
    pub cors_allowed_origins: Arc<[String]>,
    /// Whose `X-Forwarded-For` names the client ([`client_address`]).
    pub trusted_proxies: Arc<client_address::TrustedProxies>,
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
            load_shed: observe::load_shed_layer(config.max_inflight),
            body_timeout: config.edge.body,
            openapi: routes::ops::openapi_document(&public_base_url, config.dev.is_some()).into(),
            public_base_url: public_base_url.into(),
            cors_allowed_origins: config.cors_allowed_origins.clone().into(),
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
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
        .layer(state.load_shed.clone())
        .layer(axum::middleware::from_fn_with_state(
            state.body_timeout,
            edge::limit_requests,
        ))
        .layer(axum::middleware::from_fn(observe::observe))
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
/// lets in-flight requests finish for at most `config.shutdown_grace`. Slow and idle clients
/// are bounded by `config.edge` (see [`edge`]).
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state = AppState::new(&config)?;
    let app = router(state);
    let local_addr = listener.local_addr()?;
    tracing::info!(
        %local_addr,
        dev = config.dev.is_some(),
        header_read_timeout_secs = config.edge.header_read.as_secs(),
        body_timeout_secs = config.edge.body.as_secs(),
        idle_timeout_secs = config.edge.idle.as_secs(),
        "serving HTTP"
    );
    let result = edge::serve(listener, app, config.edge, config.shutdown_grace, shutdown).await;
    tracing::info!("stopped");
    result
}
