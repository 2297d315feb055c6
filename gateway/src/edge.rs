//! The gateway's HTTP edge: how connections are accepted, how long a client may take, and how
//! big a request head may be, so slow or odd clients cannot hold connections or memory.
//!
//! - **Header read timeout** ([`EdgeTimeouts::header_read`]): a request head must arrive
//!   complete within it, on a new connection and between keep-alive requests alike (hyper's
//!   HTTP/1 header timer restarts after every response), so idle keep-alive connections and
//!   slowloris clients are closed. A new connection that has not delivered a whole request head
//!   by then is closed here too, which also covers the HTTP/1-or-HTTP/2 detection phase.
//! - **Body timeout** ([`EdgeTimeouts::body`]): a request body must arrive complete within it,
//!   counted from the end of the head; otherwise the answer is 408 `invalid-request` and the
//!   connection is closed.
//! - **Idle timeout** ([`EdgeTimeouts::idle`]): a connection on which no byte moves in either
//!   direction for this long is closed (idle HTTP/2 connections, clients that stop reading).
//!
//! Request heads are limited here, below hyper's own limits, so an oversized URI (414) or header
//! section (431) is answered with `application/problem+json` like every other error. What
//! remains answered by hyper itself, with an empty body and the connection closed, is what hyper
//! cannot parse at all: bytes that are not HTTP (a malformed request line or header line: 400),
//! more than [`HYPER_MAX_HEADERS`] header fields or a head beyond [`HYPER_MAX_BUF_BYTES`] (431),
//! and a URI longer than 65534 bytes (414).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use hyper::body::{Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::problem::HttpProblem;

/// The longest request URI (path and query) answered; longer ones get 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The largest header section answered (names, values and 4 bytes per field); larger gets 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most header fields answered; more get 431.
pub const MAX_HEADERS: usize = 100;
/// hyper's own read buffer for a request head: above our limits, so heads a little over them
/// still reach [`limit_requests`] and get a problem document.
pub const HYPER_MAX_BUF_BYTES: usize = 64 * 1024;
/// hyper's own limit on header fields, above [`MAX_HEADERS`] for the same reason.
pub const HYPER_MAX_HEADERS: usize = 128;

/// How long a client may take; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeTimeouts {
    /// `GATEWAY_HEADER_READ_TIMEOUT_SECS`, default 10.
    pub header_read: Duration,
    /// `GATEWAY_BODY_TIMEOUT_SECS`, default 15.
    pub body: Duration,
    /// `GATEWAY_IDLE_TIMEOUT_SECS`, default 60.
    pub idle: Duration,
}

impl Default for EdgeTimeouts {
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            body: Duration::from_secs(15),
            idle: Duration::from_secs(60),
        }
    }
}

impl EdgeTimeouts {
    /// Reads the three timeouts from the environment; each must be at least one second.
    pub fn from_env() -> anyhow::Result<Self> {
        let defaults = Self::default();
        let read = |name: &str, default: Duration| -> anyhow::Result<Duration> {
            let value = platform::config::seconds(name, default.as_secs())?;
            if value.is_zero() {
                anyhow::bail!("{name} must be at least 1");
            }
            Ok(value)
        };
        Ok(Self {
            header_read: read("GATEWAY_HEADER_READ_TIMEOUT_SECS", defaults.header_read)?,
            body: read("GATEWAY_BODY_TIMEOUT_SECS", defaults.body)?,
            idle: read("GATEWAY_IDLE_TIMEOUT_SECS", defaults.idle)?,
        })
    }
}

/// Middleware: refuses oversized request heads with 414/431 problems, and bounds the time the
/// body may take (408 problem, connection closed). `State` is the body timeout.
pub async fn limit_requests(
    State(body_timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(refusal) = oversized_head(&request) {
        return refusal.into_response();
    }
    let (parts, body) = request.into_parts();
    if hyper::body::Body::is_end_stream(&body) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let body = Body::new(DeadlineBody {
        inner: body,
        deadline: Box::pin(tokio::time::sleep(body_timeout)),
        expired: expired.clone(),
    });
    let response = next.run(Request::from_parts(parts, body)).await;
    if !expired.load(Ordering::Acquire) {
        return response;
    }
    let mut refusal = HttpProblem::invalid(format!(
        "the request body did not arrive within {} s",
        body_timeout.as_secs()
    ))
    .with_status(StatusCode::REQUEST_TIMEOUT)
    .into_response();
    // The rest of the body is still on the wire: this connection cannot carry another request.
    refusal.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    refusal
}

fn oversized_head(request: &Request) -> Option<HttpProblem> {
    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |path_and_query| path_and_query.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return Some(
            HttpProblem::invalid(format!(
                "the request URI is longer than {MAX_URI_BYTES} bytes"
            ))
            .with_status(StatusCode::URI_TOO_LONG),
        );
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return Some(
            HttpProblem::invalid(format!(
                "the request headers exceed {MAX_HEADERS} fields or {MAX_HEADER_BYTES} bytes"
            ))
            .with_status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        );
    }
    None
}

/// A request body that fails once its deadline passes, and says so through `expired`.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

/// The error a [`DeadlineBody`] ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(BodyTimedOut.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `app` on `listener` until `shutdown` is cancelled; then stops accepting, asks every
/// connection to finish its current request, and closes what is still open after `grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    timeouts: EdgeTimeouts,
    grace: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let builder = Arc::new(connection_builder(timeouts));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next() => continue,
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!(error = %err, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY");
        }
        connections.spawn(serve_connection(
            builder.clone(),
            stream,
            peer,
            app.clone(),
            timeouts,
            shutdown.clone(),
        ));
    }
    drop(listener);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "drain deadline passed, closing open requests"
        );
        connections.shutdown().await;
    }
    Ok(())
}

fn connection_builder(timeouts: EdgeTimeouts) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read)
        .max_buf_size(HYPER_MAX_BUF_BYTES)
        .max_headers(HYPER_MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        // No keep-alive pings: they would keep an idle connection from ever looking idle.
        .max_header_list_size(u32::try_from(HYPER_MAX_BUF_BYTES).unwrap_or(u32::MAX));
    builder
}

async fn serve_connection(
    builder: Arc<auto::Builder<TokioExecutor>>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    timeouts: EdgeTimeouts,
    shutdown: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        TowerToHyperService::new(tower::ServiceExt::map_request(
            app,
            move |request: http::Request<hyper::body::Incoming>| {
                activity.request_arrived();
                let mut request = request.map(Body::new);
                // The peer, for the client address (`crate::client_address`).
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request
            },
        ))
    };
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        let deadline = activity.next_deadline(timeouts);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                return;
            }
            () = shutdown.cancelled(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(deadline) => {
                if activity.expired(timeouts) {
                    tracing::debug!(%peer, "closing a connection that stalled");
                    return;
                }
            }
        }
    }
}

/// When a connection last moved a byte, and whether it ever delivered a request head.
struct Activity {
    started: Instant,
    /// Milliseconds after `started`.
    last_io_ms: AtomicU64,
    served: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last_io_ms: AtomicU64::new(0),
            served: AtomicBool::new(false),
        }
    }

    fn touch(&self) {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_io_ms.store(elapsed, Ordering::Relaxed);
    }

    fn request_arrived(&self) {
        self.served.store(true, Ordering::Relaxed);
    }

    fn last_io(&self) -> Instant {
        self.started + Duration::from_millis(self.last_io_ms.load(Ordering::Relaxed))
    }

    /// The next instant a limit could run out: the first head's deadline, or the idle one.
    fn next_deadline(&self, timeouts: EdgeTimeouts) -> Instant {
        let idle = self.last_io() + timeouts.idle;
        if self.served.load(Ordering::Relaxed) {
            idle
        } else {
            idle.min(self.started + timeouts.header_read)
        }
    }

    fn expired(&self, timeouts: EdgeTimeouts) -> bool {
        self.expired_at(Instant::now(), timeouts)
    }

    fn expired_at(&self, now: Instant, timeouts: EdgeTimeouts) -> bool {
        let first_head_late =
            !self.served.load(Ordering::Relaxed) && now >= self.started + timeouts.header_read;
        first_head_late || now >= self.last_io() + timeouts.idle
    }
}

/// A connection's socket that records when bytes last moved.
struct Watched<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.touch();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            this.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            this.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: EdgeTimeouts = EdgeTimeouts {
        header_read: Duration::from_secs(10),
        body: Duration::from_secs(15),
        idle: Duration::from_secs(60),
    };

    #[test]
    fn a_connection_without_a_request_head_expires_after_the_header_timeout() {
        let activity = Activity::new();
        let start = activity.started;
        activity.touch();
        assert!(!activity.expired_at(start + Duration::from_secs(9), TIMEOUTS));
        assert!(activity.expired_at(start + Duration::from_secs(10), TIMEOUTS));
        assert!(activity.next_deadline(TIMEOUTS) <= start + Duration::from_secs(10));
    }

    #[test]
    fn after_a_request_only_silence_in_both_directions_expires() {
        let activity = Activity::new();
        let start = activity.started;
        activity.request_arrived();
        assert!(!activity.expired_at(start + Duration::from_secs(59), TIMEOUTS));
        assert!(activity.expired_at(start + Duration::from_secs(61), TIMEOUTS));
        assert!(activity.next_deadline(TIMEOUTS) >= start + Duration::from_secs(60));
    }

    #[test]
    fn the_defaults_are_10_15_and_60_seconds() {
        let defaults = EdgeTimeouts::default();
        assert_eq!(defaults.header_read, Duration::from_secs(10));
        assert_eq!(defaults.body, Duration::from_secs(15));
        assert_eq!(defaults.idle, Duration::from_secs(60));
    }
}
