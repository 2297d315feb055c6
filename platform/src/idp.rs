//! The assertion of a "simple certificate" identity provider (Kakao, Naver, PASS): after the
//! person confirms in the provider's app, the provider hands the relying party a compact JWS
//! (EdDSA) with these claims, bound to the verification by its nonce. auth-svc verifies it
//! against the provider's published keys; the dev run's stand-in providers sign it.

use serde::{Deserialize, Serialize};

/// The `aud` of every assertion addressed to vaxbook.
pub const ASSERTION_AUDIENCE: &str = "vaxbook";

/// The simple-certificate providers, by their wire name (also the assertion's `iss`).
pub const SIMPLE_CERT_PROVIDERS: &[&str] = &["kakao", "naver", "pass"];

/// Claims of a simple-certificate assertion.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimpleCertAssertion {
    /// The provider: `kakao`, `naver` or `pass`.
    pub iss: String,
    pub aud: String,
    /// The nonce auth-svc issued when the verification started.
    pub nonce: String,
    /// The person as the provider knows them.
    pub name: String,
    pub rrn: String,
    pub phone: String,
    pub iat: i64,
    pub exp: i64,
}

impl std::fmt::Debug for SimpleCertAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the identity data.
        f.debug_struct("SimpleCertAssertion")
            .field("iss", &self.iss)
            .field("exp", &self.exp)
            .finish_non_exhaustive()
    }
}
