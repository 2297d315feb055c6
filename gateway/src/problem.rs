//! The HTTP side of the problem vocabulary: every error the gateway answers is an
//! `application/problem+json` document (RFC 9457) built from a [`platform::problem::Problem`].
//!
//! Handlers and extractors return [`HttpProblem`], whose response carries the problem as an
//! extension; [`render_problems`], the outermost middleware, writes the body with the configured
//! public base URL in `type`. The same middleware turns any other error response (axum's own
//! 404/405/413 for instance) into a problem, so no plain-text error ever reaches a client.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, StatusCode};
use platform::problem::{Problem, ProblemKind};
use serde_json::{Map, Value};

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Members of the problem document that extra members may not overwrite.
const RESERVED_MEMBERS: &[&str] = &["type", "title", "status", "detail", "instance"];

/// An error answer (boxed: it travels in every handler's `Result`).
#[derive(Clone, Debug)]
pub struct HttpProblem(Box<ProblemAnswer>);

/// A problem, optionally with a status other than its kind's (405, 413) and JSON members that
/// are not plain strings (lists).
#[derive(Clone, Debug)]
pub struct ProblemAnswer {
    pub problem: Problem,
    pub status: Option<StatusCode>,
    pub members: Vec<(String, Value)>,
}

impl std::ops::Deref for HttpProblem {
    type Target = ProblemAnswer;

    fn deref(&self) -> &ProblemAnswer {
        &self.0
    }
}

impl std::ops::DerefMut for HttpProblem {
    fn deref_mut(&mut self) -> &mut ProblemAnswer {
        &mut self.0
    }
}

impl HttpProblem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Problem::new(kind, detail).into()
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Problem::invalid(detail).into()
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_member(mut self, name: &str, value: Value) -> Self {
        self.members.push((name.to_owned(), value));
        self
    }

    /// The problem a failed gRPC call becomes. Only the status code is logged: the message may
    /// carry internal text, and the vaxbook details already name the problem.
    pub fn from_grpc(service: &'static str, status: &tonic::Status) -> Self {
        let problem = Problem::from_status(status);
        match problem.kind {
            ProblemKind::Internal => {
                tracing::error!(service, code = ?status.code(), "a service call failed")
            }
            ProblemKind::Unavailable => {
                tracing::warn!(service, code = ?status.code(), "a service did not answer")
            }
            _ => {}
        }
        problem.into()
    }

    pub fn status_code(&self) -> StatusCode {
        self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.problem.kind.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        })
    }

    /// Seconds for `Retry-After`: the problem's own, or 1 s for answers that promise a retry.
    fn retry_after_secs(&self) -> Option<u64> {
        let status = self.status_code();
        match self.problem.retry_after {
            Some(after) => Some(ceil_secs(after)),
            None if status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::SERVICE_UNAVAILABLE =>
            {
                Some(1)
            }
            None => None,
        }
    }

    /// The problem document.
    pub fn document(&self, public_base_url: &str) -> Value {
        let kind = self.problem.kind;
        let mut document = Map::new();
        document.insert(
            "type".to_owned(),
            Value::String(format!("{public_base_url}/problems/{}", kind.name())),
        );
        document.insert("title".to_owned(), Value::String(kind.title().to_owned()));
        document.insert(
            "status".to_owned(),
            Value::from(self.status_code().as_u16()),
        );
        document.insert(
            "detail".to_owned(),
            Value::String(self.problem.detail.clone()),
        );
        for (name, value) in &self.problem.extra {
            if RESERVED_MEMBERS.contains(&name.as_str()) {
                continue;
            }
            document.insert(name.clone(), extra_member_value(name, value));
        }
        if let Some(seconds) = self.retry_after_secs() {
            // The header and the member always agree.
            document.insert("retry_after".to_owned(), Value::from(seconds));
        }
        for (name, value) in &self.members {
            if !RESERVED_MEMBERS.contains(&name.as_str()) {
                document.insert(name.clone(), value.clone());
            }
        }
        Value::Object(document)
    }
}

impl From<Problem> for HttpProblem {
    fn from(problem: Problem) -> Self {
        Self(Box::new(ProblemAnswer {
            problem,
            status: None,
            members: Vec::new(),
        }))
    }
}

/// `retry_after` is a number of seconds; every other extra member is a string.
fn extra_member_value(name: &str, value: &str) -> Value {
    if name == "retry_after"
        && let Ok(seconds) = value.parse::<u64>()
    {
        return Value::from(seconds);
    }
    Value::String(value.to_owned())
}

fn ceil_secs(after: Duration) -> u64 {
    let whole = after.as_secs();
    let seconds = if after.subsec_nanos() > 0 {
        whole + 1
    } else {
        whole
    };
    seconds.max(1)
}

/// The problem waiting in a response's extensions for [`render_problems`].
#[derive(Clone, Debug)]
struct PendingProblem(Arc<HttpProblem>);

impl IntoResponse for HttpProblem {
    fn into_response(self) -> Response {
        let mut response = self.status_code().into_response();
        if let Some(seconds) = self.retry_after_secs() {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
            .extensions_mut()
            .insert(PendingProblem(Arc::new(self)));
        response
    }
}

/// Writes the body of every problem answer, and turns any other error answer into a problem.
pub async fn render_problems(
    State(public_base_url): State<Arc<str>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let pending = response.extensions().get::<PendingProblem>().cloned();
    let problem = match pending {
        Some(PendingProblem(problem)) => problem,
        None if is_unrendered_error(&response) => Arc::new(problem_for_bare_status(&response)),
        None => return response,
    };
    let (mut parts, _) = response.into_parts();
    parts.extensions.remove::<PendingProblem>();
    parts.status = problem.status_code();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
    if let Some(seconds) = problem.retry_after_secs() {
        parts
            .headers
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    if matches!(
        problem.problem.kind,
        ProblemKind::Unauthenticated | ProblemKind::SessionExpired
    ) {
        // RFC 6750: tell the client which scheme the resource expects.
        parts.headers.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"vaxbook\""),
        );
    }
    let body = problem.document(&public_base_url).to_string();
    Response::from_parts(parts, Body::from(body))
}

fn is_unrendered_error(response: &Response) -> bool {
    let status = response.status();
    let already_problem = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with(PROBLEM_CONTENT_TYPE));
    (status.is_client_error() || status.is_server_error()) && !already_problem
}

/// A problem for an error answer that was not built from one (axum's fallbacks and limits).
fn problem_for_bare_status(response: &Response) -> HttpProblem {
    let status = response.status();
    let problem = match status {
        StatusCode::NOT_FOUND => HttpProblem::new(ProblemKind::NotFound, "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = response
                .headers()
                .get(http::header::ALLOW)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
                .to_owned();
            HttpProblem::invalid(format!(
                "this method is not allowed on this path; allowed: {allowed}"
            ))
        }
        StatusCode::PAYLOAD_TOO_LARGE => HttpProblem::invalid("the request body is too large"),
        StatusCode::UNAUTHORIZED => {
            HttpProblem::new(ProblemKind::Unauthenticated, "authentication is required")
        }
        StatusCode::FORBIDDEN => HttpProblem::new(ProblemKind::Forbidden, "not allowed"),
        StatusCode::TOO_MANY_REQUESTS => {
            HttpProblem::new(ProblemKind::RateLimited, "too many requests")
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            HttpProblem::new(ProblemKind::Unavailable, "the service is unavailable")
        }
        status if status.is_client_error() => HttpProblem::invalid("the request was refused"),
        _ => {
            tracing::error!(status = status.as_u16(), "an error answer had no problem");
            Problem::internal().into()
        }
    };
    problem.with_status(status)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn retry_after_is_a_number_and_other_extras_are_strings() {
        let problem = Problem::new(ProblemKind::DeviceLocked, "held elsewhere")
            .with_retry_after(Duration::from_secs(600))
            .with("reason", "closed")
            .with("type", "https://evil.example");
        let document = HttpProblem::from(problem).document("https://vaxbook.example");
        assert_eq!(
            document["type"],
            "https://vaxbook.example/problems/device-locked"
        );
        assert_eq!(document["status"], 423);
        assert_eq!(document["retry_after"], 600);
        assert_eq!(document["reason"], "closed");
        assert_eq!(document["title"], ProblemKind::DeviceLocked.title());
    }

    #[test]
    fn unavailable_answers_promise_a_retry_even_without_retry_info() {
        let problem = HttpProblem::new(ProblemKind::Unavailable, "down");
        assert_eq!(problem.retry_after_secs(), Some(1));
        let response = problem.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
    }

    #[test]
    fn fractional_retry_delays_round_up() {
        assert_eq!(ceil_secs(Duration::from_millis(1500)), 2);
        assert_eq!(ceil_secs(Duration::from_millis(10)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(600)), 600);
    }

    #[test]
    fn a_grpc_internal_error_does_not_leak_its_message() {
        let status = tonic::Status::internal("password=hunter2 at db01");
        let problem = HttpProblem::from_grpc("booking-svc", &status);
        let document = problem.document("http://x");
        assert_eq!(document["status"], 500);
        assert!(!document.to_string().contains("hunter2"));
    }
}
