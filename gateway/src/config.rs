//! The gateway's configuration: where it listens, how it names itself in problem `type` URIs,
//! where the four services are, how much concurrent work it accepts before shedding load, and
//! how long a client may take ([`EdgeTimeouts`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use platform::clock::{SharedClock, SystemClock};
use platform::dev::DevHooks;

use crate::edge::EdgeTimeouts;

/// Everything [`crate::serve`] needs. All fields are public so the dev run can build it by hand.
#[derive(Clone, Debug)]
pub struct Config {
    /// `GATEWAY_LISTEN_ADDR`, default `0.0.0.0:8080`.
    pub listen_addr: SocketAddr,
    /// `GATEWAY_PUBLIC_URL`, default `http://localhost:8080`, without a trailing slash: problem
    /// `type` URIs are `<public_base_url>/problems/<name>`.
    pub public_base_url: String,
    /// `VAXBOOK_AUTH_URL`, default `http://127.0.0.1:50051`.
    pub auth_url: String,
    /// `VAXBOOK_SESSION_URL`, default `http://127.0.0.1:50052`.
    pub session_url: String,
    /// `VAXBOOK_SCHEDULING_URL`, default `http://127.0.0.1:50053`.
    pub scheduling_url: String,
    /// `VAXBOOK_BOOKING_URL`, default `http://127.0.0.1:50054`.
    pub booking_url: String,
    /// Deadline of every gRPC call, `VAXBOOK_GRPC_TIMEOUT_MS`, default 5000.
    pub request_timeout: Duration,
    /// Requests handled at once before the rest are refused with 503 `overloaded`,
    /// `GATEWAY_MAX_INFLIGHT`, default 1024.
    pub max_inflight: usize,
    /// How long shutdown waits for in-flight requests, `VAXBOOK_SHUTDOWN_GRACE_SECS`, default 10.
    pub shutdown_grace: Duration,
    /// How long a client may take for a request head, a body, or between two bytes
    /// (`GATEWAY_HEADER_READ_TIMEOUT_SECS`, `GATEWAY_BODY_TIMEOUT_SECS`,
    /// `GATEWAY_IDLE_TIMEOUT_SECS`; defaults 10, 15 and 60).
    pub edge: EdgeTimeouts,
    /// The dev run's hooks; `None` (always, from the environment) makes `/dev/*` answer 404.
    pub dev: Option<DevHooks>,
    /// Origins whose browser pages may call the API (CORS); empty: none, `*`: any.
    pub cors_allowed_origins: Vec<String>,
    /// `GATEWAY_TRUSTED_PROXIES`: the proxies (addresses or CIDR blocks) whose
    /// `X-Forwarded-For` names the client; empty trusts none.
    pub trusted_proxies: crate::client_address::TrustedProxies,
    /// The clock token expiry and campaign dates are judged against.
    pub clock: SharedClock,
}

pub const DEFAULT_MAX_INFLIGHT: usize = 1024;

impl Config {
    /// Reads the configuration from the environment. Never enables the dev hooks.
    pub fn from_env() -> anyhow::Result<Self> {
        use platform::config::{addr, parse, seconds, string};
        let max_inflight = parse("GATEWAY_MAX_INFLIGHT", DEFAULT_MAX_INFLIGHT)?;
        if max_inflight == 0 {
            anyhow::bail!("GATEWAY_MAX_INFLIGHT must be at least 1");
        }
        Ok(Self {
            listen_addr: addr("GATEWAY_LISTEN_ADDR", "0.0.0.0:8080")?,
            public_base_url: normalize_base_url(&string(
                "GATEWAY_PUBLIC_URL",
                "http://localhost:8080",
            )),
            auth_url: string("VAXBOOK_AUTH_URL", "http://127.0.0.1:50051"),
            session_url: string("VAXBOOK_SESSION_URL", "http://127.0.0.1:50052"),
            scheduling_url: string("VAXBOOK_SCHEDULING_URL", "http://127.0.0.1:50053"),
            booking_url: string("VAXBOOK_BOOKING_URL", "http://127.0.0.1:50054"),
            request_timeout: Duration::from_millis(parse("VAXBOOK_GRPC_TIMEOUT_MS", 5000u64)?),
            max_inflight,
            shutdown_grace: seconds("VAXBOOK_SHUTDOWN_GRACE_SECS", 10)?,
            edge: EdgeTimeouts::from_env()?,
            dev: None,
            cors_allowed_origins: cors_origins(&string("GATEWAY_CORS_ORIGINS", ""))?,
            trusted_proxies: crate::client_address::TrustedProxies::parse(&string(
                "GATEWAY_TRUSTED_PROXIES",
                "",
            ))?,
            clock: Arc::new(SystemClock),
        })
    }

    /// A configuration for tests and the dev run: loopback on an ephemeral port, the given
    /// service URLs, the real clock and no dev hooks (set `dev` and `clock` afterwards).
    pub fn local(
        auth_url: impl Into<String>,
        session_url: impl Into<String>,
        scheduling_url: impl Into<String>,
        booking_url: impl Into<String>,
    ) -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_base_url: "http://localhost:8080".to_owned(),
            auth_url: auth_url.into(),
            session_url: session_url.into(),
            scheduling_url: scheduling_url.into(),
            booking_url: booking_url.into(),
            request_timeout: Duration::from_secs(5),
            max_inflight: DEFAULT_MAX_INFLIGHT,
            shutdown_grace: Duration::from_secs(5),
            edge: EdgeTimeouts::default(),
            dev: None,
            cors_allowed_origins: Vec::new(),
            trusted_proxies: Default::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Parses `GATEWAY_CORS_ORIGINS`: a comma-separated list of origins (`https://www.example.kr`),
/// or `*` for any.
pub fn cors_origins(raw: &str) -> anyhow::Result<Vec<String>> {
    let mut origins = Vec::new();
    for origin in raw
        .split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
    {
        let well_formed = origin == "*"
            || ((origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.ends_with('/')
                && http::HeaderValue::from_str(origin).is_ok());
        if !well_formed {
            anyhow::bail!(
                "GATEWAY_CORS_ORIGINS: `{origin}` is not an origin like https://www.example.kr"
            );
        }
        origins.push(origin.to_owned());
    }
    Ok(origins)
}

/// Problem URIs are built by appending `/problems/<name>`, so a trailing slash would double.
pub fn normalize_base_url(raw: &str) -> String {
    raw.trim().trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_slashes_are_dropped_from_the_public_url() {
        assert_eq!(
            normalize_base_url("https://vaxbook.example/ "),
            "https://vaxbook.example"
        );
        assert_eq!(normalize_base_url("http://a:8080"), "http://a:8080");
    }
}
