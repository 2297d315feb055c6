//! Client-side balancing over a service's replicas, used by every vaxbook gRPC client.
//!
//! A target is one URL (`http://booking-svc:50054`), a comma-separated list of them
//! (`http://10.0.0.5:50054,http://10.0.0.6:50054`), or a DNS name re-resolved every few seconds
//! (`dns:///booking-svc.vaxbook.svc.cluster.local:50054`, what a Kubernetes headless Service
//! answers with one address per ready pod). Each call goes to the replica with the fewest calls
//! in flight; a replica whose connection fails is ejected for a while (doubling up to
//! [`MAX_EJECTION`]) and tried again after. A call that never reached a replica (the connection
//! was refused) is always retried on another; one that may have reached it is retried only when
//! repeating it is harmless ([`retry_safe`]: reads, upserts, a booking carrying an idempotency
//! key). Every attempt fits in the request deadline, which still ends the call with the same
//! `Timeout expired` as before.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use prost::Message;
use prost::bytes::Bytes;
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};
use tower::{Service, ServiceExt};

/// How often a `dns:///` target is resolved again.
pub const DNS_REFRESH: Duration = Duration::from_secs(5);
/// The first ejection of a failing replica; each further failure doubles it.
pub const FIRST_EJECTION: Duration = Duration::from_millis(500);
/// The longest a failing replica stays ejected before it is tried again.
pub const MAX_EJECTION: Duration = Duration::from_secs(10);
/// Attempts of one call, the first included.
pub const MAX_ATTEMPTS: usize = 3;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where a client's replicas are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A fixed list of URLs (one or more).
    Static(Vec<String>),
    /// A DNS name whose addresses are the replicas, re-resolved every [`DNS_REFRESH`].
    Dns { host: String, port: u16 },
}

impl Target {
    /// Reads `http://a:1`, `http://a:1,http://b:2` or `dns:///host:port` (also `dns://host:port`).
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let spec = spec.trim();
        if let Some(rest) = spec.strip_prefix("dns://") {
            let authority = rest.trim_start_matches('/').trim_end_matches('/');
            let (host, port) = authority
                .rsplit_once(':')
                .ok_or_else(|| anyhow::anyhow!("`{spec}` needs a port: dns:///host:port"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| anyhow::anyhow!("`{spec}`: `{port}` is not a port"))?;
            if host.is_empty() {
                anyhow::bail!("`{spec}` names no host: dns:///host:port");
            }
            return Ok(Self::Dns {
                host: host.to_owned(),
                port,
            });
        }
        let urls: Vec<String> = spec
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect();
        if urls.is_empty() {
            anyhow::bail!("no service address given");
        }
        for url in &urls {
            Endpoint::from_shared(url.clone())
                .map_err(|err| anyhow::anyhow!("`{url}` is not a valid URL: {err}"))?;
        }
        Ok(Self::Static(urls))
    }
}

/// One replica: its own lazily-connecting HTTP/2 channel and what the balancer knows of it.
struct Replica {
    url: String,
    channel: Channel,
    in_flight: AtomicUsize,
    failures: AtomicU32,
    ejected_until: Mutex<Option<Instant>>,
}

impl Replica {
    fn new(url: String) -> Result<Self, BoxError> {
        let channel = Endpoint::from_shared(url.clone())?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true)
            .connect_lazy();
        Ok(Self::with_channel(url, channel))
    }

    fn with_channel(url: String, channel: Channel) -> Self {
        Self {
            url,
            channel,
            in_flight: AtomicUsize::new(0),
            failures: AtomicU32::new(0),
            ejected_until: Mutex::new(None),
        }
    }

    fn ejected_until(&self) -> Option<Instant> {
        self.ejected_until
            .lock()
            .map(|until| *until)
            .unwrap_or(None)
    }

    fn eject(&self, now: Instant) {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed).min(8);
        let period = FIRST_EJECTION
            .saturating_mul(1 << failures)
            .min(MAX_EJECTION);
        if let Ok(mut until) = self.ejected_until.lock() {
            *until = Some(now + period);
        }
        metrics::counter!("grpc_client_ejections_total").increment(1);
        tracing::warn!(replica = %self.url, ejected_for_ms = period.as_millis() as u64, "replica ejected after a failed call");
    }

    fn succeeded(&self) {
        if self.failures.swap(0, Ordering::Relaxed) > 0
            && let Ok(mut until) = self.ejected_until.lock()
        {
            *until = None;
        }
    }
}

struct Shared {
    target: Target,
    replicas: RwLock<Vec<Arc<Replica>>>,
    next: AtomicUsize,
    request_timeout: Duration,
}

impl Shared {
    fn snapshot(&self) -> Vec<Arc<Replica>> {
        self.replicas
            .read()
            .map(|replicas| replicas.clone())
            .unwrap_or_default()
    }

    /// The replica with the fewest calls in flight among those not ejected (round robin among
    /// equals), skipping `avoid` when another is available; when all are ejected, the one whose
    /// ejection ends first.
    fn pick(&self, avoid: &[String], now: Instant) -> Option<Arc<Replica>> {
        let replicas = self.snapshot();
        if replicas.is_empty() {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let ordered =
            (0..replicas.len()).filter_map(|i| replicas.get((start + i) % replicas.len()));
        let usable =
            |replica: &&Arc<Replica>| replica.ejected_until().is_none_or(|until| until <= now);
        let best = |pool: Vec<&Arc<Replica>>| {
            pool.into_iter()
                .min_by_key(|replica| replica.in_flight.load(Ordering::Relaxed))
                .cloned()
        };
        let fresh: Vec<&Arc<Replica>> = ordered
            .clone()
            .filter(usable)
            .filter(|replica| !avoid.contains(&replica.url))
            .collect();
        if !fresh.is_empty() {
            return best(fresh);
        }
        let any_usable: Vec<&Arc<Replica>> = ordered.clone().filter(usable).collect();
        if !any_usable.is_empty() {
            return best(any_usable);
        }
        ordered
            .min_by_key(|replica| replica.ejected_until().unwrap_or(now))
            .cloned()
    }

    /// Replaces the replica set with `urls`, keeping the channels of the replicas that stay.
    fn set_urls(&self, urls: Vec<String>) {
        let current = self.snapshot();
        let mut next = Vec::with_capacity(urls.len());
        for url in urls {
            if let Some(existing) = current.iter().find(|replica| replica.url == url) {
                next.push(existing.clone());
            } else {
                match Replica::new(url.clone()) {
                    Ok(replica) => next.push(Arc::new(replica)),
                    Err(err) => tracing::warn!(replica = %url, %err, "ignoring a replica address"),
                }
            }
        }
        if let Ok(mut replicas) = self.replicas.write() {
            *replicas = next;
        }
    }

    /// Resolves a `dns:///` target once; keeps the old set when the name does not resolve.
    async fn resolve(&self) {
        let Target::Dns { host, port } = &self.target else {
            return;
        };
        match tokio::net::lookup_host((host.as_str(), *port)).await {
            Ok(addrs) => {
                let mut urls: Vec<String> = addrs.map(|addr| format!("http://{addr}")).collect();
                urls.sort();
                urls.dedup();
                if urls.is_empty() {
                    tracing::warn!(%host, "the service name resolved to no address");
                } else {
                    self.set_urls(urls);
                }
            }
            Err(err) => tracing::warn!(%host, %err, "resolving the service name failed"),
        }
    }
}

/// A gRPC channel over every replica of one service (see the module documentation). Cheap to
/// clone: clones share the replicas, their connections and what is known of their health.
#[derive(Clone)]
pub struct BalancedChannel {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BalancedChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BalancedChannel")
            .field("target", &self.shared.target)
            .field("replicas", &self.replica_urls())
            .finish()
    }
}

impl BalancedChannel {
    /// A channel to `spec` ([`Target::parse`]); nothing connects until the first call. A DNS
    /// target is resolved in the background now and every [`DNS_REFRESH`] while the channel
    /// lives (must be called inside the Tokio runtime).
    pub fn new(spec: &str, request_timeout: Duration) -> anyhow::Result<Self> {
        let target = Target::parse(spec)?;
        let shared = Arc::new(Shared {
            target: target.clone(),
            replicas: RwLock::new(Vec::new()),
            next: AtomicUsize::new(0),
            request_timeout,
        });
        match target {
            Target::Static(urls) => shared.set_urls(urls),
            Target::Dns { .. } => {
                let weak: Weak<Shared> = Arc::downgrade(&shared);
                tokio::spawn(async move {
                    loop {
                        let Some(shared) = weak.upgrade() else { break };
                        shared.resolve().await;
                        drop(shared);
                        tokio::time::sleep(DNS_REFRESH).await;
                    }
                });
            }
        }
        Ok(Self { shared })
    }

    /// The replicas' URLs as currently known.
    pub fn replica_urls(&self) -> Vec<String> {
        self.shared
            .snapshot()
            .iter()
            .map(|replica| replica.url.clone())
            .collect()
    }

    async fn send(
        shared: Arc<Shared>,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, BoxError> {
        let deadline = tokio::time::Instant::now() + shared.request_timeout;
        let (parts, body) = request.into_parts();
        // Unary requests are one small message: buffered so that a retry can send it again.
        let message = tokio::time::timeout_at(deadline, body.collect())
            .await
            .map_err(|_| -> BoxError { Box::new(tonic::TimeoutExpired(())) })??
            .to_bytes();
        let safe = retry_safe(parts.uri.path(), &message);
        let mut tried: Vec<String> = Vec::new();
        let mut last_error: Option<BoxError> = None;
        for attempt in 0..MAX_ATTEMPTS {
            if shared.snapshot().is_empty() {
                shared.resolve().await;
            }
            let Some(replica) = shared.pick(&tried, Instant::now()) else {
                return Err(last_error.map(unavailable).unwrap_or_else(|| {
                    Box::new(tonic::ConnectError(
                        "no replica of the service is known (the name resolved to nothing)".into(),
                    ))
                }));
            };
            if attempt > 0 {
                metrics::counter!("grpc_client_retries_total").increment(1);
                if tried.contains(&replica.url) {
                    // The only replica again: a short pause, so a restart can finish.
                    let pause = Duration::from_millis(50 * attempt as u64);
                    tokio::time::sleep_until((tokio::time::Instant::now() + pause).min(deadline))
                        .await;
                }
            }
            tried.push(replica.url.clone());
            let request = http::Request::from_parts(
                parts.clone(),
                Body::new(http_body_util::Full::new(message.clone())),
            );
            replica.in_flight.fetch_add(1, Ordering::Relaxed);
            let outcome = tokio::time::timeout_at(deadline, async {
                let mut channel = replica.channel.clone();
                channel.ready().await?.call(request).await
            })
            .await;
            replica.in_flight.fetch_sub(1, Ordering::Relaxed);
            let error = match outcome {
                Err(_elapsed) => return Err(Box::new(tonic::TimeoutExpired(()))),
                Ok(Ok(response)) => {
                    if safe && trailers_only_unavailable(&response) && attempt + 1 < MAX_ATTEMPTS {
                        replica.eject(Instant::now());
                        last_error = None;
                        continue;
                    }
                    replica.succeeded();
                    return Ok(response);
                }
                Ok(Err(error)) => error,
            };
            replica.eject(Instant::now());
            let error: BoxError = error.into();
            let never_sent = is_connect_error(error.as_ref());
            last_error = Some(error);
            if !(never_sent || safe) {
                break;
            }
        }
        Err(match last_error {
            Some(error) => unavailable(error),
            None => Box::new(tonic::ConnectError("every replica is unavailable".into())),
        })
    }
}

/// A call whose connection failed under it (a replica killed or restarted mid-call) ends as
/// UNAVAILABLE, as gRPC defines a broken transport: tonic would otherwise report the h2/IO error
/// as UNKNOWN or INTERNAL, which callers turn into a 500 instead of a retryable 503. The caller
/// learns the call may or may not have been applied, exactly as with any UNAVAILABLE.
fn unavailable(error: BoxError) -> BoxError {
    if error.is::<tonic::Status>() || error.is::<tonic::TimeoutExpired>() {
        return error;
    }
    Box::new(tonic::Status::unavailable(format!(
        "the replica's connection failed during the call: {error}"
    )))
}

impl From<Channel> for BalancedChannel {
    /// One replica behind an existing channel (its own timeouts apply).
    fn from(channel: Channel) -> Self {
        let replica = Replica::with_channel("channel".to_owned(), channel);
        Self {
            shared: Arc::new(Shared {
                target: Target::Static(vec![replica.url.clone()]),
                replicas: RwLock::new(vec![Arc::new(replica)]),
                next: AtomicUsize::new(0),
                request_timeout: Duration::from_secs(3600),
            }),
        }
    }
}

impl Service<http::Request<Body>> for BalancedChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Every replica channel buffers its own calls; readiness is checked per attempt.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(Self::send(self.shared.clone(), request))
    }
}

/// Whether `error` says the call never left this client (the connection could not be made).
fn is_connect_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = current {
        if err.is::<tonic::ConnectError>() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        current = err.source();
    }
    false
}

/// A `grpc-status: 14` (UNAVAILABLE) answered in the headers, before any message.
fn trailers_only_unavailable(response: &http::Response<Body>) -> bool {
    response
        .headers()
        .get("grpc-status")
        .is_some_and(|status| status.as_bytes() == b"14")
}

/// The methods that only read, or whose repetition leaves the same state (upserts).
const REPEATABLE: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/vaxbook.keys.v1.KeysService/GetKeys",
    "/vaxbook.auth.v1.AuthService/GetJwks",
    "/vaxbook.session.v1.SessionService/ValidateSession",
    "/vaxbook.scheduling.v1.SchedulingService/CheckEligibility",
    "/vaxbook.scheduling.v1.SchedulingService/GetCampaign",
    "/vaxbook.scheduling.v1.SchedulingService/ListCampaigns",
    "/vaxbook.scheduling.v1.SchedulingAdminService/UpsertCampaign",
    "/vaxbook.booking.v1.BookingService/ListCenters",
    "/vaxbook.booking.v1.BookingService/ListSlots",
    "/vaxbook.booking.v1.BookingService/ListMyBookings",
    "/vaxbook.booking.v1.BookingService/GetBooking",
    "/vaxbook.booking.v1.BookingAdminService/UpsertCenter",
    "/vaxbook.booking.v1.BookingAdminService/UpsertSlot",
];

const CREATE_BOOKING: &str = "/vaxbook.booking.v1.BookingService/CreateBooking";

/// Whether a call of `path` carrying the gRPC-framed `message` may be sent again after it may
/// have reached a replica: reads and upserts, and a booking request with an idempotency key
/// (booking-svc answers a repeat with the first booking).
pub fn retry_safe(path: &str, message: &[u8]) -> bool {
    if REPEATABLE.contains(&path) {
        return true;
    }
    if path == CREATE_BOOKING {
        // One uncompressed frame: flag byte, 4-byte length, the message.
        if let Some((&0, rest)) = message.split_first()
            && let Some(payload) = rest.get(4..)
            && let Ok(request) = proto::booking::v1::CreateBookingRequest::decode(payload)
        {
            return !request.idempotency_key.trim().is_empty();
        }
    }
    false
}

/// Bytes of one uncompressed gRPC frame holding `message` (for tests and tools).
pub fn grpc_frame(message: &impl Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut frame = Vec::with_capacity(body.len() + 5);
    frame.push(0);
    frame.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    frame.extend_from_slice(&body);
    Bytes::from(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_read_from_one_url_a_list_or_a_dns_name() {
        assert_eq!(
            Target::parse("http://127.0.0.1:1").ok(),
            Some(Target::Static(vec!["http://127.0.0.1:1".to_owned()]))
        );
        assert_eq!(
            Target::parse(" http://a:1, http://b:2 ,").ok(),
            Some(Target::Static(vec![
                "http://a:1".to_owned(),
                "http://b:2".to_owned()
            ]))
        );
        for spec in ["dns:///booking-svc:50054", "dns://booking-svc:50054"] {
            assert_eq!(
                Target::parse(spec).ok(),
                Some(Target::Dns {
                    host: "booking-svc".to_owned(),
                    port: 50054
                })
            );
        }
        assert!(Target::parse("dns:///booking-svc").is_err());
        assert!(Target::parse("").is_err());
        assert!(Target::parse("http://a b").is_err());
    }

    #[test]
    fn only_repeatable_calls_and_keyed_bookings_are_retried() {
        assert!(retry_safe(
            "/vaxbook.booking.v1.BookingService/ListSlots",
            &[]
        ));
        assert!(retry_safe("/grpc.health.v1.Health/Check", &[]));
        assert!(!retry_safe(
            "/vaxbook.booking.v1.BookingService/CancelBooking",
            &[]
        ));
        assert!(!retry_safe(
            "/vaxbook.session.v1.SessionService/ClaimDevice",
            &[]
        ));
        let keyed = proto::booking::v1::CreateBookingRequest {
            slot_id: "s".to_owned(),
            idempotency_key: "k-1".to_owned(),
            ..Default::default()
        };
        let unkeyed = proto::booking::v1::CreateBookingRequest {
            idempotency_key: String::new(),
            ..keyed.clone()
        };
        assert!(retry_safe(CREATE_BOOKING, &grpc_frame(&keyed)));
        assert!(!retry_safe(CREATE_BOOKING, &grpc_frame(&unkeyed)));
        assert!(!retry_safe(CREATE_BOOKING, b"\x01junk"));
    }

    #[test]
    fn a_transport_failure_during_a_call_is_unavailable() {
        let reset: BoxError = Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        let status = unavailable(reset)
            .downcast::<tonic::Status>()
            .map(|status| status.code())
            .ok();
        assert_eq!(status, Some(tonic::Code::Unavailable));
        // A replica's own answer and the deadline stay what they were.
        let answered: BoxError = Box::new(tonic::Status::not_found("no such slot"));
        let kept = unavailable(answered)
            .downcast::<tonic::Status>()
            .map(|status| status.code())
            .ok();
        assert_eq!(kept, Some(tonic::Code::NotFound));
        let timeout: BoxError = Box::new(tonic::TimeoutExpired(()));
        assert!(unavailable(timeout).is::<tonic::TimeoutExpired>());
    }

    /// A health server on a loopback port; returns its URL.
    async fn health_server() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|err| panic!("bind: {err}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|err| panic!("addr: {err}"));
        let (_reporter, service) = tonic_health::server::health_reporter();
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await;
        });
        format!("http://{addr}")
    }

    /// A loopback URL nothing listens on.
    fn dead_url() -> String {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|err| panic!("bind: {err}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|err| panic!("addr: {err}"));
        drop(listener);
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn calls_skip_a_dead_replica_and_spread_over_the_live_ones() {
        let (live_a, live_b, dead) = (health_server().await, health_server().await, dead_url());
        let channel =
            BalancedChannel::new(&format!("{dead},{live_a},{live_b}"), Duration::from_secs(2))
                .unwrap_or_else(|err| panic!("channel: {err}"));
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        for _ in 0..12 {
            let answer = client
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await;
            assert!(answer.is_ok(), "a call failed: {answer:?}");
        }
        let replicas = channel.shared.snapshot();
        let ejected: Vec<&str> = replicas
            .iter()
            .filter(|replica| replica.ejected_until().is_some())
            .map(|replica| replica.url.as_str())
            .collect();
        assert_eq!(ejected, vec![dead.as_str()]);
    }

    #[tokio::test]
    async fn a_call_nobody_answers_fails_as_unavailable_within_the_deadline() {
        let channel = BalancedChannel::new(
            &format!("{},{}", dead_url(), dead_url()),
            Duration::from_secs(2),
        )
        .unwrap_or_else(|err| panic!("channel: {err}"));
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let started = Instant::now();
        let answer = client
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await;
        assert_eq!(
            answer.err().map(|status| status.code()),
            Some(tonic::Code::Unavailable)
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_dns_target_finds_its_replicas() {
        let live = health_server().await;
        let port = live.rsplit(':').next().unwrap_or_default().to_owned();
        let channel =
            BalancedChannel::new(&format!("dns:///localhost:{port}"), Duration::from_secs(2))
                .unwrap_or_else(|err| panic!("channel: {err}"));
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let answer = client
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await;
        assert!(
            answer.is_ok(),
            "{answer:?} via {:?}",
            channel.replica_urls()
        );
    }
}
