//! The agency over HTTP: `POST` the [`platform::carrier::AgencyRequest`] as JSON to the
//! configured endpoint (`AUTH_CARRIER_CHECK_URL`) and read the
//! [`platform::carrier::AgencyResponse`]. Each call has a deadline; a timeout, a refused
//! connection, a non-200 answer or an unreadable body is a failure the circuit breaker counts.
//! The CI in a matching answer is dropped here, unread.

use std::time::{Duration, Instant};

use platform::carrier::AgencyResponse;

use super::{CarrierCheck, CarrierError, CircuitBreaker, SubscriberQuery, SubscriberVerdict};

/// The HTTP adapter.
pub struct HttpCarrierCheck {
    client: reqwest::Client,
    url: reqwest::Url,
    breaker: CircuitBreaker,
}

impl std::fmt::Debug for HttpCarrierCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCarrierCheck")
            .field("url", &platform::config::redact_url(self.url.as_str()))
            .finish_non_exhaustive()
    }
}

/// Why the adapter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpCarrierError {
    #[error("AUTH_CARRIER_CHECK_URL is not an http(s) URL")]
    Url,
    #[error("cannot build the HTTP client of the agency: {0}")]
    Client(#[from] reqwest::Error),
}

impl HttpCarrierCheck {
    pub fn new(
        url: &str,
        timeout: Duration,
        breaker: CircuitBreaker,
    ) -> Result<Self, HttpCarrierError> {
        let url = reqwest::Url::parse(url.trim()).map_err(|_| HttpCarrierError::Url)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpCarrierError::Url);
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            client,
            url,
            breaker,
        })
    }

    async fn call(&self, query: &SubscriberQuery<'_>) -> Result<AgencyResponse, &'static str> {
        let response = self
            .client
            .post(self.url.clone())
            .json(&query.to_wire())
            .send()
            .await
            .map_err(|error| {
                if error.is_timeout() {
                    "timeout"
                } else {
                    "connection"
                }
            })?;
        if response.status() != reqwest::StatusCode::OK {
            return Err("status");
        }
        response
            .json::<AgencyResponse>()
            .await
            .map_err(|_| "malformed")
    }
}

#[async_trait::async_trait]
impl CarrierCheck for HttpCarrierCheck {
    async fn check(&self, query: &SubscriberQuery<'_>) -> Result<SubscriberVerdict, CarrierError> {
        if let Err(retry_after) = self.breaker.admit() {
            metrics::counter!("auth_carrier_checks_total", "outcome" => "breaker-open")
                .increment(1);
            return Err(CarrierError::Open { retry_after });
        }
        let started = Instant::now();
        let outcome = self.call(query).await;
        metrics::histogram!("auth_carrier_check_seconds").record(started.elapsed().as_secs_f64());
        match outcome {
            Ok(answer) => {
                self.breaker.succeeded();
                let verdict = if answer.matched {
                    SubscriberVerdict::Registered
                } else {
                    SubscriberVerdict::Mismatch
                };
                let label = if answer.matched { "match" } else { "mismatch" };
                metrics::counter!("auth_carrier_checks_total", "outcome" => label).increment(1);
                Ok(verdict)
            }
            Err(reason) => {
                self.breaker.failed();
                metrics::counter!("auth_carrier_checks_total", "outcome" => reason).increment(1);
                tracing::warn!(reason, "the identity-verification agency failed");
                Err(CarrierError::Failed(reason))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::carrier::BreakerSettings;

    #[test]
    fn only_http_urls_are_accepted_and_debug_hides_credentials() {
        let breaker = || {
            CircuitBreaker::new(BreakerSettings {
                failure_threshold: 1,
                open_for: Duration::from_secs(1),
            })
        };
        for bad in ["", "not a url", "ftp://agency/check"] {
            assert!(HttpCarrierCheck::new(bad, Duration::from_secs(1), breaker()).is_err());
        }
        let adapter = HttpCarrierCheck::new(
            "https://svc:agency-password@agency.example/v1/check",
            Duration::from_secs(1),
            breaker(),
        )
        .unwrap();
        let shown = format!("{adapter:?}");
        assert!(!shown.contains("agency-password"), "{shown}");
    }
}
