//! What clients look up before they verify: the identity providers on offer (from auth-svc's
//! `ListProviders`: the fields each needs and its measured health, which frontends show as a
//! traffic light) and the public keys of the access tokens as a JWKS at the well-known path.
//! The gateway keeps no list of providers of its own.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header::CACHE_CONTROL;
use proto::auth::v1 as auth;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::problem::HttpProblem;

/// How long clients and caches may keep the key set: short, so a rotated key is seen soon.
pub const JWKS_CACHE_CONTROL: &str = "public, max-age=60";

/// How long the provider list may be kept: its health figures move.
pub const PROVIDERS_CACHE_CONTROL: &str = "public, max-age=10";

/// A provider's measured health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Calls succeed and the 95th percentile latency is under the slow threshold.
    Ok,
    /// Calls are slow, or some fail in the provider's adapter.
    Slow,
    /// Most calls fail in the provider's adapter.
    Down,
}

/// One provider on offer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = IdentityProvider)]
pub struct ProviderView {
    /// What `provider` of `POST /v1/auth/verifications` takes.
    #[schema(example = "phone")]
    pub id: String,
    #[schema(example = "휴대폰 본인확인")]
    pub display_name: String,
    /// The body fields a start needs.
    #[schema(example = json!(["name", "rrn", "phone"]))]
    pub start_fields: Vec<String>,
    /// The body fields `…/complete` answers with.
    #[schema(example = json!(["otp"]))]
    pub answer_fields: Vec<String>,
    pub health: Health,
    /// Share of the measured calls that did not fail in the provider's adapter, 0 to 1.
    #[schema(minimum = 0.0, maximum = 1.0, example = 0.99)]
    pub success_rate: f64,
    /// 95th percentile latency of the measured calls, milliseconds.
    #[schema(minimum = 0, example = 420)]
    pub p95_latency_ms: u32,
    /// How many calls the figures rest on.
    #[schema(minimum = 0)]
    pub samples: u32,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = IdentityProviders)]
pub struct ProvidersView {
    pub providers: Vec<ProviderView>,
    /// The window the health figures cover, seconds.
    #[schema(minimum = 0, example = 300)]
    pub window_seconds: u32,
}

fn view(info: auth::ProviderInfo) -> ProviderView {
    let health = match auth::ProviderHealth::try_from(info.health) {
        Ok(auth::ProviderHealth::Down) => Health::Down,
        Ok(auth::ProviderHealth::Slow) => Health::Slow,
        _ => Health::Ok,
    };
    ProviderView {
        id: info.id,
        display_name: info.display_name,
        start_fields: info.start_fields,
        answer_fields: info.answer_fields,
        health,
        success_rate: info.success_rate.clamp(0.0, 1.0),
        p95_latency_ms: info.p95_latency_ms,
        samples: info.samples,
    }
}

/// `GET /v1/auth/providers`
#[utoipa::path(
    get,
    path = "/v1/auth/providers",
    operation_id = "listProviders",
    summary = "The identity providers on offer, the fields each needs and its measured health",
    tag = "auth",
    responses((status = 200, description = "The providers, in the order to offer them.", body = ProvidersView,
        headers(("Cache-Control" = String, description = "`public, max-age=10`")))),
    extensions(("x-problem-types" = json!(["internal", "overloaded", "unavailable"])))
)]
pub async fn list_providers(State(state): State<AppState>) -> Result<Response, HttpProblem> {
    let listed = state
        .clients
        .auth
        .clone()
        .list_providers(auth::ListProvidersRequest {})
        .await
        .map_err(|status| HttpProblem::from_grpc("auth-svc", &status))?
        .into_inner();
    let body = ProvidersView {
        providers: listed.providers.into_iter().map(view).collect(),
        window_seconds: listed.window_seconds,
    };
    Ok(([(CACHE_CONTROL, PROVIDERS_CACHE_CONTROL)], Json(body)).into_response())
}

/// One public key (RFC 8037 OKP).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = JsonWebKey)]
pub struct JwkView {
    #[schema(example = "OKP")]
    pub kty: String,
    #[schema(example = "Ed25519")]
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    pub kid: String,
    #[schema(example = "EdDSA")]
    pub alg: String,
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    pub use_: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = JsonWebKeySet)]
pub struct JwksView {
    pub keys: Vec<JwkView>,
}

/// `GET /.well-known/jwks.json`
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    operation_id = "jwks",
    summary = "The public keys of the access tokens (JWKS), current and retired",
    tag = "auth",
    responses((status = 200, description = "The key set.", body = JwksView,
        headers(("Cache-Control" = String, description = "`public, max-age=60`")))),
    extensions(("x-problem-types" = json!(["internal", "overloaded", "unavailable"])))
)]
pub async fn jwks(State(state): State<AppState>) -> Result<Response, HttpProblem> {
    let keys = state
        .clients
        .auth
        .clone()
        .get_jwks(auth::GetJwksRequest {})
        .await
        .map_err(|status| HttpProblem::from_grpc("auth-svc", &status))?
        .into_inner()
        .keys;
    let body = JwksView {
        keys: keys
            .into_iter()
            .map(|key| JwkView {
                kty: key.kty,
                crv: key.crv,
                x: key.x,
                kid: key.kid,
                alg: key.alg,
                use_: key.key_use,
            })
            .collect(),
    };
    Ok(([(CACHE_CONTROL, JWKS_CACHE_CONTROL)], Json(body)).into_response())
}
