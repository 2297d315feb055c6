//! The HTTP contract of the carriers' identity-verification agency, and the dev run's stand-in
//! for it: a subscriber directory. Before a one-time code is sent, auth-svc asks the agency
//! whether a phone number is registered, at that carrier, to that name, birth date and sex digit
//! (the 7th digit of the resident registration number). The agency answers `match` and, when it
//! matches, the person's connecting information (CI).
//!
//! Contract: `POST <AUTH_CARRIER_CHECK_URL>` with `content-type: application/json`,
//! body [`AgencyRequest`] `{"name", "birth_date": "YYYY-MM-DD", "sex_digit": "1", "phone":
//! "01012345678", "carrier": "skt"}`, answered `200` with [`AgencyResponse`] `{"match": bool,
//! "ci": "..."}` (`ci` only when matched). Any other status, a malformed body or no answer in
//! time counts as the agency being unavailable.
//!
//! The directory is what `vaxbook dev` seeds, what `POST /dev/carrier/subscribers` adds to and
//! what the stand-in agency server ([`StandInAgency`], for tests and the load generator)
//! answers from. Its `Debug` prints no entry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// The carriers a Korean mobile number can be registered with, by wire name.
pub const CARRIERS: &[&str] = &["skt", "kt", "lgu", "mvno"];

/// What auth-svc asks the agency. No `Debug`: every field is personal data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgencyRequest {
    /// The name as registered (trimmed).
    pub name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// The 7th digit of the RRN (sex and century), one character.
    pub sex_digit: String,
    /// The number's digits only, e.g. `01012345678`.
    pub phone: String,
    /// One of [`CARRIERS`].
    pub carrier: String,
}

/// The agency's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgencyResponse {
    #[serde(rename = "match")]
    pub matched: bool,
    /// The connecting information of the matched person; absent when not matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<String>,
}

/// A subscriber the directory knows: as the dev endpoint receives it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct Subscriber {
    pub name: String,
    /// `YYMMDD-GNNNNNN` (the hyphen may be left out).
    pub rrn: String,
    pub phone: String,
    /// One of [`CARRIERS`].
    pub carrier: String,
}

/// Why a subscriber was not added.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubscriberError {
    #[error("`name` must not be empty")]
    Name,
    #[error("`rrn` must be YYMMDD-GNNNNNN")]
    Rrn,
    #[error("`phone` must be a mobile number 01X-XXXX-XXXX")]
    Phone,
    #[error("`carrier` must be one of skt, kt, lgu, mvno")]
    Carrier,
}

/// One registration, in the form the agency compares: name with single spaces, the RRN's
/// first seven digits, phone digits, carrier; and the CI the agency hands back.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Entry {
    name: String,
    rrn_front: String,
    phone: String,
    carrier: String,
}

/// The stand-in agency's subscribers.
#[derive(Default)]
pub struct CarrierDirectory {
    /// Each registration with the CI the agency answers for it (derived from the whole RRN,
    /// so it is one value per person).
    entries: Mutex<HashMap<Entry, String>>,
}

impl std::fmt::Debug for CarrierDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarrierDirectory").finish_non_exhaustive()
    }
}

fn digits(raw: &str) -> String {
    raw.chars().filter(char::is_ascii_digit).collect()
}

fn normalized_name(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl CarrierDirectory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `subscriber`'s phone at their carrier (again is fine). Checks the shapes only.
    pub fn register(&self, subscriber: &Subscriber) -> Result<(), SubscriberError> {
        let name = normalized_name(&subscriber.name);
        if name.is_empty() || name.chars().count() > 50 {
            return Err(SubscriberError::Name);
        }
        let rrn = subscriber.rrn.trim();
        let rrn_digits = digits(rrn);
        let rrn_shaped = matches!(rrn.len(), 13 | 14) && rrn_digits.len() == 13;
        if !rrn_shaped {
            return Err(SubscriberError::Rrn);
        }
        let phone = digits(&subscriber.phone);
        if !matches!(phone.len(), 10 | 11) || !phone.starts_with("01") {
            return Err(SubscriberError::Phone);
        }
        let carrier = subscriber.carrier.trim().to_ascii_lowercase();
        if !CARRIERS.contains(&carrier.as_str()) {
            return Err(SubscriberError::Carrier);
        }
        let rrn_front = rrn_digits[..7].to_owned();
        let ci = format!(
            "dev-ci-{}",
            URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(rrn_digits.as_bytes()))
        );
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(
                Entry {
                    name,
                    rrn_front,
                    phone,
                    carrier,
                },
                ci,
            );
        }
        Ok(())
    }

    /// The agency's answer to `request`: a match only when name, birth date, sex digit, phone
    /// and carrier all agree with one registration.
    pub fn check(&self, request: &AgencyRequest) -> AgencyResponse {
        let no_match = AgencyResponse {
            matched: false,
            ci: None,
        };
        // YYYY-MM-DD → YYMMDD, the RRN's own form (the sex digit carries the century).
        let date = digits(&request.birth_date);
        if date.len() != 8 || request.sex_digit.len() != 1 {
            return no_match;
        }
        let name = normalized_name(&request.name);
        let wanted = Entry {
            rrn_front: format!("{}{}", &date[2..], request.sex_digit),
            name,
            phone: digits(&request.phone),
            carrier: request.carrier.trim().to_ascii_lowercase(),
        };
        let ci = self
            .entries
            .lock()
            .ok()
            .and_then(|entries| entries.get(&wanted).cloned());
        match ci {
            Some(ci) => AgencyResponse {
                matched: true,
                ci: Some(ci),
            },
            None => no_match,
        }
    }
}

/// How the stand-in agency server behaves, for tests of the adapter's failure handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgencyBehaviour {
    /// Answers from the directory.
    Up,
    /// Answers `500` at once.
    Failing,
    /// Accepts the request and never answers (the adapter's deadline must end the call).
    Hanging,
}

/// A stand-in agency HTTP server on `127.0.0.1:0` that answers the contract above from a
/// [`CarrierDirectory`]: what the multi-process tests, the load generator and auth-svc's own
/// end-to-end tests put behind the production HTTP adapter. Stops when dropped.
pub struct StandInAgency {
    pub directory: Arc<CarrierDirectory>,
    url: String,
    state: Arc<AgencyState>,
    shutdown: tokio_util::sync::CancellationToken,
}

struct AgencyState {
    directory: Arc<CarrierDirectory>,
    behaviour: Mutex<AgencyBehaviour>,
    calls: AtomicU64,
}

/// The path the stand-in serves the check on.
pub const STAND_IN_PATH: &str = "/v1/subscriber-check";

impl StandInAgency {
    /// Binds a loopback port and serves until dropped.
    pub async fn start(directory: Arc<CarrierDirectory>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}{STAND_IN_PATH}", listener.local_addr()?);
        let state = Arc::new(AgencyState {
            directory: directory.clone(),
            behaviour: Mutex::new(AgencyBehaviour::Up),
            calls: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .route(STAND_IN_PATH, axum::routing::post(answer))
            .with_state(state.clone());
        let shutdown = tokio_util::sync::CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "the stand-in agency stopped");
            }
        });
        Ok(Self {
            directory,
            url,
            state,
            shutdown,
        })
    }

    /// The endpoint, for `AUTH_CARRIER_CHECK_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn set_behaviour(&self, behaviour: AgencyBehaviour) {
        if let Ok(mut current) = self.state.behaviour.lock() {
            *current = behaviour;
        }
    }

    /// How many checks reached the server.
    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::Relaxed)
    }
}

impl Drop for StandInAgency {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn answer(
    axum::extract::State(state): axum::extract::State<Arc<AgencyState>>,
    axum::Json(request): axum::Json<AgencyRequest>,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    state.calls.fetch_add(1, Ordering::Relaxed);
    let behaviour = state
        .behaviour
        .lock()
        .map(|behaviour| *behaviour)
        .unwrap_or(AgencyBehaviour::Up);
    match behaviour {
        AgencyBehaviour::Up => axum::Json(state.directory.check(&request)).into_response(),
        AgencyBehaviour::Failing => http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        AgencyBehaviour::Hanging => {
            std::future::pending::<()>().await;
            http::StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hong() -> Subscriber {
        Subscriber {
            name: "홍길동".to_owned(),
            rrn: "900101-1234567".to_owned(),
            phone: "010-1234-5678".to_owned(),
            carrier: "skt".to_owned(),
        }
    }

    fn asked() -> AgencyRequest {
        AgencyRequest {
            name: "홍길동".to_owned(),
            birth_date: "1990-01-01".to_owned(),
            sex_digit: "1".to_owned(),
            phone: "01012345678".to_owned(),
            carrier: "skt".to_owned(),
        }
    }

    #[test]
    fn only_a_registration_that_agrees_in_every_field_matches() {
        let directory = CarrierDirectory::new();
        assert!(!directory.check(&asked()).matched);
        directory.register(&hong()).unwrap();
        let answer = directory.check(&asked());
        assert!(answer.matched);
        assert!(answer.ci.unwrap().starts_with("dev-ci-"));
        let variants: [fn(&mut AgencyRequest); 5] = [
            |r| r.name = "홍길순".to_owned(),
            |r| r.birth_date = "1990-01-02".to_owned(),
            |r| r.sex_digit = "2".to_owned(),
            |r| r.phone = "01012345679".to_owned(),
            |r| r.carrier = "kt".to_owned(),
        ];
        for change in variants {
            let mut request = asked();
            change(&mut request);
            assert_eq!(
                directory.check(&request),
                AgencyResponse {
                    matched: false,
                    ci: None
                }
            );
        }
    }

    #[test]
    fn malformed_subscribers_are_refused() {
        let directory = CarrierDirectory::new();
        let mut bad = hong();
        bad.carrier = "sprint".to_owned();
        assert_eq!(directory.register(&bad), Err(SubscriberError::Carrier));
        let mut bad = hong();
        bad.rrn = "9001".to_owned();
        assert_eq!(directory.register(&bad), Err(SubscriberError::Rrn));
        let mut bad = hong();
        bad.phone = "12345".to_owned();
        assert_eq!(directory.register(&bad), Err(SubscriberError::Phone));
        assert!(format!("{directory:?}").contains("CarrierDirectory"));
    }

    #[tokio::test]
    async fn the_stand_in_server_answers_the_contract_and_can_fail() {
        let directory = Arc::new(CarrierDirectory::new());
        directory.register(&hong()).unwrap();
        let agency = StandInAgency::start(directory).await.unwrap();
        let client = reqwest_free_post(agency.url(), &asked()).await;
        assert_eq!(client.0, 200);
        let answer: AgencyResponse = serde_json::from_str(&client.1).unwrap();
        assert!(answer.matched);
        agency.set_behaviour(AgencyBehaviour::Failing);
        assert_eq!(reqwest_free_post(agency.url(), &asked()).await.0, 500);
        assert_eq!(agency.calls(), 2);
    }

    /// A minimal HTTP/1.1 POST over a TCP stream (platform has no HTTP client).
    async fn reqwest_free_post(url: &str, body: &AgencyRequest) -> (u16, String) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let json = serde_json::to_string(body).unwrap();
        let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
        let request = format!(
            "POST /{path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
            json.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        let status = raw[9..12].parse().unwrap();
        let body = raw.split_once("\r\n\r\n").unwrap().1.to_owned();
        (status, body)
    }

    #[test]
    fn the_wire_names_match_the_contract() {
        let json = serde_json::to_value(AgencyResponse {
            matched: true,
            ci: Some("c".to_owned()),
        })
        .unwrap();
        assert_eq!(json, serde_json::json!({"match": true, "ci": "c"}));
        let parsed: AgencyResponse = serde_json::from_str(r#"{"match": false}"#).unwrap();
        assert!(!parsed.matched && parsed.ci.is_none());
    }
}
