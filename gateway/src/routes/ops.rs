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

/// The OpenAPI document as written, before `servers` is filled in.
pub const OPENAPI_SOURCE: &str = include_str!("../../openapi.json");

/// The served OpenAPI document: [`OPENAPI_SOURCE`] with `servers` set to the public base URL.
pub fn openapi_document(public_base_url: &str) -> anyhow::Result<String> {
    let mut document: Value = serde_json::from_str(OPENAPI_SOURCE)
        .map_err(|err| anyhow::anyhow!("parsing the bundled openapi.json: {err}"))?;
    let object = document
        .as_object_mut()
        .ok_or_else(|| anyhow::anyhow!("the bundled openapi.json is not an object"))?;
    object.insert(
        "servers".to_owned(),
        serde_json::json!([{ "url": public_base_url }]),
    );
    Ok(document.to_string())
}

/// `GET /healthz`: the process answers; dependencies are `/readyz`'s business.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`
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
pub async fn openapi(State(state): State<AppState>) -> Response {
    (
        [(CONTENT_TYPE, "application/json")],
        state.openapi.to_string(),
    )
        .into_response()
}

/// `GET /problems/{name}`: HTML for browsers, plain text otherwise.
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
            serde_json::from_str(&openapi_document("https://vaxbook.example").unwrap()).unwrap();
        assert_eq!(served["servers"][0]["url"], "https://vaxbook.example");
        assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
