//! A small HTTP client for the gateway's REST API, keeping status, headers and JSON together.

use reqwest::Method;
use serde_json::Value;

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub content_type: String,
}

impl Reply {
    /// The problem name of a problem+json answer (the last segment of `type`).
    pub fn problem(&self) -> Option<String> {
        if !self.content_type.starts_with("application/problem+json") {
            return None;
        }
        self.body["type"]
            .as_str()
            .and_then(|uri| uri.rsplit("/problems/").next())
            .map(str::to_owned)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    }

    /// Asserts a problem+json answer with this status and problem name.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, name: &str) {
        assert_eq!(
            self.status, status,
            "expected {status} {name}, got {self:?}"
        );
        assert_eq!(
            self.problem().as_deref(),
            Some(name),
            "expected problem {name}, got {self:?}"
        );
        assert_eq!(
            self.body["status"].as_u64(),
            Some(u64::from(status)),
            "problem status member: {self:?}"
        );
        assert!(
            self.body["title"].is_string(),
            "problem title member: {self:?}"
        );
    }
}

/// A client for one gateway, speaking for one device.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub device_id: String,
    pub token: Option<String>,
    client: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, device_id: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            device_id: device_id.to_owned(),
            token: None,
            client: reqwest::Client::new(),
        }
    }

    pub fn with_token(&self, token: &str) -> Self {
        let mut api = self.clone();
        api.token = Some(token.to_owned());
        api
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        let body = match body {
            Some(body) => Some((serde_json::to_vec(body)?, "application/json")),
            None => None,
        };
        self.send_bytes(method, path, body, headers).await
    }

    /// Sends `body` bytes with their content type as they are (also for malformed-input tests).
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .timeout(std::time::Duration::from_secs(30));
        if !self.device_id.is_empty() {
            request = request.header("X-Device-Id", &self.device_id);
        }
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some((bytes, content_type)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(Reply {
            status,
            headers,
            body,
            content_type,
        })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Reply> {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        self.send(Method::POST, path, Some(body), &[]).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Reply> {
        self.send(Method::DELETE, path, None, &[]).await
    }
}
