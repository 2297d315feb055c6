//! Operations: liveness, readiness (every service answers `grpc.health.v1` SERVING), the
//! Prometheus scrape, the OpenAPI document, and the explanations behind problem `type` URIs.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use http::header::{ACCEPT, CONTENT_TYPE};
use platform::problem::ProblemKind;
use serde_json::Value;

use crate::AppState;
use crate::extract::PathId;
use crate::problem::HttpProblem;

/// The committed OpenAPI document (`gateway/openapi.json`); a test holds it equal to what
/// [`crate::openapi::committed_text`] generates.
pub const OPENAPI_SOURCE: &str = include_str!("../../openapi.json");

/// The served OpenAPI document: the generated one with `servers` set to the public base URL,
/// listing the `/dev` routes only when they are served.
pub fn openapi_document(public_base_url: &str, with_dev_routes: bool) -> String {
    crate::openapi::served_document(public_base_url, with_dev_routes)
}

/// `GET /healthz`: the process answers; dependencies are `/readyz`'s business.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    summary = "Liveness: the process answers",
    tag = "operations",
    responses((status = 200, description = "Alive.", content_type = "text/plain", body = String, example = "ok"))
)]
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    summary = "Readiness: every service answers grpc.health.v1 SERVING within 1 s",
    tag = "operations",
    responses(
        (status = 200, description = "Every service is ready.", content_type = "text/plain", body = String, example = "ready"),
        (status = 503, description = "At least one service is not ready; `not_ready` lists them, or the gateway is at capacity.",
            content_type = "application/problem+json", body = ref("#/components/schemas/NotReadyProblem"))
    ),
    extensions(("x-problem-types" = json!(["unavailable", "overloaded"])))
)]
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, HttpProblem> {
    let not_ready = state.clients.not_ready().await;
    if not_ready.is_empty() {
        return Ok("ready");
    }
    Err(HttpProblem::new(
        ProblemKind::Unavailable,
        format!("not ready: {}", not_ready.join(", ")),
    )
    .with_member("not_ready", Value::from(not_ready)))
}

/// `GET /metrics`
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    summary = "Prometheus metrics",
    tag = "operations",
    responses((status = 200, description = "The Prometheus text exposition format.", content_type = "text/plain", body = String))
)]
pub async fn metrics() -> Response {
    let handle = platform::metrics::handle();
    handle.run_upkeep();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// `GET /openapi.json`
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    summary = "This document",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document, with `servers` set to the public base URL.", content_type = "application/json", body = Object)),
    extensions(("x-problem-types" = json!(["overloaded", "unavailable"])))
)]
pub async fn openapi(State(state): State<AppState>) -> Response {
    (
        [(CONTENT_TYPE, "application/json")],
        state.openapi.to_string(),
    )
        .into_response()
}

/// The interactive reference page: Redoc, vendored under `gateway/assets/redoc` (no
/// download at build or run time).
const DOCS_PAGE: &str = include_str!("../../assets/redoc/index.html");
const REDOC_BUNDLE: &str = include_str!("../../assets/redoc/redoc.standalone.js");

/// `GET /docs`
#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "docs",
    summary = "Interactive reference of this API (Redoc)",
    tag = "operations",
    responses((status = 200, description = "The reference page; it reads `/openapi.json`.", content_type = "text/html", body = String)),
    extensions(("x-problem-types" = json!(["overloaded"])))
)]
pub async fn docs() -> Response {
    ([(CONTENT_TYPE, "text/html; charset=utf-8")], DOCS_PAGE).into_response()
}

/// `GET /docs/redoc.standalone.js`
#[utoipa::path(
    get,
    path = "/docs/redoc.standalone.js",
    operation_id = "docsScript",
    summary = "The Redoc bundle the reference page runs",
    tag = "operations",
    responses((status = 200, description = "Redoc's standalone bundle (MIT).", content_type = "text/javascript", body = String)),
    extensions(("x-problem-types" = json!(["overloaded"])))
)]
pub async fn docs_script() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (http::header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        REDOC_BUNDLE,
    )
        .into_response()
}

/// `GET /problems/{name}`: HTML for browsers, plain text otherwise.
#[utoipa::path(
    get,
    path = "/problems/{name}",
    operation_id = "problemExplanation",
    summary = "Human-readable explanation of a problem type",
    tag = "operations",
    params(("name" = ProblemName, Path, description = "Problem name, the last segment of a problem `type`.")),
    responses((status = 200, description = "The explanation, as HTML when the client accepts text/html, else plain text.",
        content((String = "text/html"), (String = "text/plain")))),
    extensions(("x-problem-types" = json!(["invalid-request", "not-found", "overloaded", "unavailable"])))
)]
pub async fn problem_explanation(
    PathId(name): PathId,
    headers: HeaderMap,
) -> Result<Response, HttpProblem> {
    let kind = ProblemKind::from_name(&name)
        .ok_or_else(|| HttpProblem::new(ProblemKind::NotFound, "no such problem type"))?;
    let wants_html = headers
        .get(ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        let page = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
             <body><h1>{title}</h1><p>HTTP {status} &middot; <code>{name}</code></p><p>{explanation}</p></body></html>\n",
            title = escape_html(kind.title()),
            status = kind.http_status(),
            name = kind.name(),
            explanation = escape_html(kind.explanation()),
        );
        return Ok(([(CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response());
    }
    let text = format!(
        "{}\n\nHTTP {} ({})\n\n{}\n",
        kind.title(),
        kind.http_status(),
        kind.name(),
        kind.explanation()
    );
    Ok(([(CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// The schema of a problem name: one of [`ProblemKind::ALL`].
pub struct ProblemName;

impl utoipa::PartialSchema for ProblemName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(ProblemKind::ALL.iter().map(|kind| kind.name())))
            .into()
    }
}

impl utoipa::ToSchema for ProblemName {}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_served_document_names_the_public_server() {
        let served: Value =
            serde_json::from_str(&openapi_document("https://vaxbook.example", true)).unwrap();
        assert_eq!(served["servers"][0]["url"], "https://vaxbook.example");
        assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));
    }

    #[tokio::test]
    async fn the_reference_page_loads_the_vendored_bundle_and_the_document() {
        let page = docs().await;
        assert_eq!(page.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(DOCS_PAGE.contains("src=\"/docs/redoc.standalone.js\""));
        assert!(DOCS_PAGE.contains("spec-url=\"/openapi.json\""));
        assert!(REDOC_BUNDLE.contains("Redoc"));
        let script = docs_script().await;
        assert!(
            script.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
