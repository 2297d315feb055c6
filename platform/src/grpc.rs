//! The gRPC server scaffolding every service uses: health and reflection next to the service's
//! own routes, a trace span per request continuing the caller's trace, request metrics,
//! `/metrics` on its own port, admin-key checks, and graceful shutdown with a deadline.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic_health::ServingStatus;

use crate::problem::{Problem, ProblemKind};
use crate::shed::ShedPolicy;
use crate::telemetry::TracePropagation;

/// A readiness probe: `Ok` when the service's dependencies answer.
pub type ReadinessProbe =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// What [`run`] needs to serve one service.
pub struct GrpcService {
    /// Short name for metrics and logs (`booking-svc`).
    pub name: &'static str,
    /// The service's own routes (health and reflection are added here).
    pub routes: Routes,
    /// Fully-qualified gRPC service names reported through `grpc.health.v1`.
    pub health_names: Vec<&'static str>,
    /// Checked every few seconds; the health status follows it.
    pub readiness: Option<ReadinessProbe>,
}

/// Serves `service` on `listener` (gRPC) and `/metrics` on `common.metrics_addr` until
/// `shutdown` is cancelled, then stops accepting, reports NOT_SERVING and drains for at most
/// `common.shutdown_grace`.
pub async fn run(
    service: GrpcService,
    listener: TcpListener,
    common: &crate::config::CommonConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Install the recorder before the first request, or what is counted before the metrics
    // task first runs would be lost.
    let _ = crate::metrics::handle();
    let metrics_listener = crate::net::bind_tcp(common.metrics_addr).await?;
    let grace = common.shutdown_grace;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let routes = service
        .routes
        .add_service(health_service)
        .add_service(reflection);

    let set_all = {
        let reporter = health_reporter.clone();
        let names = service.health_names.clone();
        move |status: ServingStatus| {
            let reporter = reporter.clone();
            let names = names.clone();
            async move {
                reporter.set_service_status("", status).await;
                for name in names {
                    reporter.set_service_status(name, status).await;
                }
            }
        }
    };

    // NOT_SERVING until the first readiness check passes (tonic-health starts "" as SERVING).
    set_all(ServingStatus::NotServing).await;

    let local_addr = listener.local_addr()?;
    let metrics_addr = metrics_listener.local_addr()?;
    let metrics_shutdown = shutdown.child_token();
    let metrics_task = tokio::spawn(crate::metrics::serve(
        metrics_listener,
        metrics_shutdown.clone(),
    ));

    // Readiness follows the dependencies; NOT_SERVING until the first successful check.
    let readiness_task = {
        let set_all = set_all.clone();
        let probe = service.readiness.clone();
        let stop = shutdown.clone();
        let name = service.name;
        tokio::spawn(async move {
            let mut last: Option<bool> = None;
            loop {
                let ready = match &probe {
                    None => true,
                    Some(probe) => match probe().await {
                        Ok(()) => true,
                        Err(reason) => {
                            if last != Some(false) {
                                tracing::warn!(service = name, %reason, "dependency not ready");
                            }
                            false
                        }
                    },
                };
                if last != Some(ready) {
                    let status = if ready {
                        ServingStatus::Serving
                    } else {
                        ServingStatus::NotServing
                    };
                    set_all(status).await;
                    last = Some(ready);
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        })
    };

    tracing::info!(service = service.name, %local_addr, %metrics_addr, "serving gRPC");
    let drain_started = CancellationToken::new();
    let server = {
        let drain_started = drain_started.clone();
        let shutdown = shutdown.clone();
        let set_all = set_all.clone();
        tonic::transport::Server::builder()
            .trace_fn(crate::telemetry::grpc_server_span)
            .layer(crate::metrics::GrpcMetricsLayer::new(service.name))
            .layer(load_shed_layer(service.name, common.max_inflight))
            .add_routes(routes)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
                shutdown.cancelled().await;
                set_all(ServingStatus::NotServing).await;
                drain_started.cancel();
            })
    };
    tokio::pin!(server);
    let result = tokio::select! {
        result = &mut server => result,
        _ = async {
            drain_started.cancelled().await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(service = service.name, "drain deadline passed, closing open requests");
            Ok(())
        }
    };
    metrics_shutdown.cancel();
    readiness_task.abort();
    let _ = metrics_task.await;
    tracing::info!(service = service.name, "stopped");
    result.map_err(Into::into)
}

/// The channel every vaxbook client uses: calls spread over the service's replicas
/// ([`crate::balance`]).
pub type GrpcChannel = crate::balance::BalancedChannel;

/// A lazily-connecting channel to another service with sane timeouts: `url` is one URL, a
/// comma-separated list of replicas, or `dns:///host:port` re-resolved periodically; every call
/// (retries included) ends within `request_timeout`.
pub fn channel(url: &str, request_timeout: Duration) -> anyhow::Result<GrpcChannel> {
    crate::balance::BalancedChannel::new(url, request_timeout)
}

/// The client-side stack every vaxbook client uses: trace context propagation.
pub type TracedChannel =
    tonic::service::interceptor::InterceptedService<GrpcChannel, TracePropagation>;

/// The gRPC side of [`crate::shed`]: requests beyond `max_inflight` at once are refused with
/// RESOURCE_EXHAUSTED `overloaded` (and a one-second retry delay), so a surge is answered
/// instead of queued without bound. Health and reflection are never refused: a busy replica
/// must not look dead to its orchestrator.
#[derive(Clone, Debug)]
pub struct GrpcShed {
    service: &'static str,
}

impl<B, R: Default> ShedPolicy<http::Request<B>, http::Response<R>> for GrpcShed {
    fn is_exempt(&self, request: &http::Request<B>) -> bool {
        let path = request.uri().path();
        path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.")
    }

    fn refuse(&self, _request: &http::Request<B>) -> http::Response<R> {
        metrics::counter!("grpc_server_shed_total", "service" => self.service).increment(1);
        Problem::new(ProblemKind::Overloaded, "the service is at capacity")
            .with_retry_after(Duration::from_secs(1))
            .to_status()
            .into_http()
    }
}

/// The load-shedding layer of every gRPC server.
pub type LoadShedLayer = crate::shed::LoadShedLayer<GrpcShed>;
/// The service [`LoadShedLayer`] builds.
pub type LoadShed<S> = crate::shed::LoadShed<S, GrpcShed>;

/// Sheds gRPC requests of `service` (its name in metrics) beyond `max_inflight` at once.
pub fn load_shed_layer(service: &'static str, max_inflight: usize) -> LoadShedLayer {
    crate::shed::LoadShedLayer::new(GrpcShed { service }, max_inflight)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{Layer, Service, ServiceExt};

    use super::*;

    #[tokio::test]
    async fn requests_beyond_the_limit_are_refused_at_once_and_health_never() {
        // The inner service answers each request only when the test opens the gate for it.
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let inner_gate = gate.clone();
        let inner = tower::service_fn(move |_request: http::Request<()>| {
            let gate = inner_gate.clone();
            async move {
                if let Ok(pass) = gate.acquire().await {
                    pass.forget();
                }
                Ok::<_, Infallible>(http::Response::new(String::from("done")))
            }
        });
        let mut service = load_shed_layer("test", 1).layer(inner);
        let request = |path: &str| {
            http::Request::builder()
                .uri(path)
                .body(())
                .unwrap_or_default()
        };
        async fn send(
            service: &mut LoadShed<
                impl Service<
                    http::Request<()>,
                    Response = http::Response<String>,
                    Error = Infallible,
                    Future = impl Future<Output = Result<http::Response<String>, Infallible>>
                             + Send
                             + 'static,
                >,
            >,
            request: http::Request<()>,
        ) -> tokio::task::JoinHandle<Result<http::Response<String>, Infallible>> {
            let ready = service.ready().await.map(|ready| ready.call(request));
            match ready {
                Ok(future) => tokio::spawn(future),
                Err(never) => match never {},
            }
        }

        // The first request takes the only permit and waits at the gate.
        let first = send(&mut service, request("/vaxbook.x.v1.X/A")).await;
        // The second is refused at once, with the overloaded problem and a retry delay.
        let refused = send(&mut service, request("/vaxbook.x.v1.X/B")).await;
        let refused = refused.await.ok().and_then(Result::ok).unwrap_or_default();
        let status = tonic::Status::from_header_map(refused.headers())
            .unwrap_or_else(|| tonic::Status::ok(""));
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        let problem = Problem::from_status(&status);
        assert_eq!(problem.kind, ProblemKind::Overloaded);
        assert_eq!(problem.retry_after, Some(Duration::from_secs(1)));
        // Health is exempt: it reaches the busy inner service instead of being refused.
        let health = send(&mut service, request("/grpc.health.v1.Health/Check")).await;
        gate.add_permits(2);
        let bodies = (first.await, health.await);
        let first_body = bodies
            .0
            .ok()
            .and_then(Result::ok)
            .map(http::Response::into_body);
        let health_body = bodies
            .1
            .ok()
            .and_then(Result::ok)
            .map(http::Response::into_body);
        assert_eq!(first_body.as_deref(), Some("done"));
        assert_eq!(health_body.as_deref(), Some("done"));
        // The permit came back: the next request is served.
        let next = send(&mut service, request("/vaxbook.x.v1.X/C")).await;
        gate.add_permits(1);
        let next_body = next
            .await
            .ok()
            .and_then(Result::ok)
            .map(http::Response::into_body);
        assert_eq!(next_body.as_deref(), Some("done"));
    }
}
