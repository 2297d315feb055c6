//! Load shedding shared by the gRPC services and the REST gateway: at most `max_inflight`
//! requests are worked on at once, and a request beyond that is answered at once by the
//! caller's [`ShedPolicy`] instead of being queued without bound. The policy also names the
//! requests that are never refused (health probes, reflection, scrapes), because a busy replica
//! must not look dead to its orchestrator.
//!
//! The permit is held by the response future and returned when it completes or is dropped, so
//! a cancelled request never leaks capacity.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Semaphore;

/// What one protocol does around the shared limit: which requests are exempt, and the answer to
/// a refused one (which is also where it is counted).
pub trait ShedPolicy<Request, Response> {
    /// Requests that are served even at capacity, without taking a permit.
    fn is_exempt(&self, request: &Request) -> bool;
    /// The answer to a request refused because every permit is taken.
    fn refuse(&self, request: &Request) -> Response;
}

/// A [`tower::Layer`] that sheds requests beyond `max_inflight`; every service it wraps shares
/// the same permits (clones of the layer too).
#[derive(Clone, Debug)]
pub struct LoadShedLayer<P> {
    policy: P,
    permits: Arc<Semaphore>,
}

impl<P> LoadShedLayer<P> {
    /// A limit of `max_inflight` requests at once (at least one).
    pub fn new(policy: P, max_inflight: usize) -> Self {
        Self {
            policy,
            permits: Arc::new(Semaphore::new(max_inflight.max(1))),
        }
    }

    /// Permits not taken right now (for tests and diagnostics).
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

impl<S, P: Clone> tower::Layer<S> for LoadShedLayer<P> {
    type Service = LoadShed<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShed {
            inner,
            policy: self.policy.clone(),
            permits: self.permits.clone(),
        }
    }
}

/// The service [`LoadShedLayer`] builds.
#[derive(Clone, Debug)]
pub struct LoadShed<S, P> {
    inner: S,
    policy: P,
    permits: Arc<Semaphore>,
}

impl<S, P, Request> tower::Service<Request> for LoadShed<S, P>
where
    S: tower::Service<Request>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    P: ShedPolicy<Request, S::Response>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if self.policy.is_exempt(&request) {
            return Box::pin(self.inner.call(request));
        }
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let future = self.inner.call(request);
                Box::pin(async move {
                    // Held until the answer is ready, or until the caller drops the future.
                    let _permit = permit;
                    future.await
                })
            }
            Err(_) => {
                let refusal = self.policy.refuse(&request);
                Box::pin(std::future::ready(Ok(refusal)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use tower::{Layer, Service, ServiceExt};

    use super::*;

    /// Requests are paths; `/health` is exempt; a refusal answers `refused`.
    #[derive(Clone)]
    struct Policy;

    impl ShedPolicy<&'static str, &'static str> for Policy {
        fn is_exempt(&self, request: &&'static str) -> bool {
            *request == "/health"
        }

        fn refuse(&self, _request: &&'static str) -> &'static str {
            "refused"
        }
    }

    #[tokio::test]
    async fn the_n_plus_first_is_refused_and_a_cancelled_request_returns_its_permit() {
        let layer = LoadShedLayer::new(Policy, 2);
        // The inner service never answers: every admitted request stays in flight.
        let inner = tower::service_fn(|_request: &'static str| {
            std::future::pending::<Result<&'static str, Infallible>>()
        });
        let mut service = layer.layer(inner);

        let first = service.ready().await.map(|ready| ready.call("/a"));
        let second = service.ready().await.map(|ready| ready.call("/b"));
        assert_eq!(layer.available(), 0);

        let third = service.ready().await.map(|ready| ready.call("/c"));
        let third = match third {
            Ok(future) => tokio::time::timeout(Duration::from_secs(1), future).await,
            Err(never) => match never {},
        };
        assert!(matches!(third, Ok(Ok("refused"))), "{third:?}");

        // Exempt requests pass even at capacity.
        let health = service.ready().await.map(|ready| ready.call("/health"));
        assert_eq!(layer.available(), 0);

        // A caller giving up (the future dropped before it answered) frees its permit.
        drop(first);
        assert_eq!(layer.available(), 1);
        drop((second, health));
        assert_eq!(layer.available(), 2);
    }
}
