//! The admission grant (R11): session-svc's signed statement that a verified person was
//! admitted from the waiting room of one room (a campaign, or `*` for the general room) and may
//! make booking writes until the grant expires. booking-svc verifies it locally on every create
//! and change while the room is on, REST or gRPC alike, and counts its uses itself. The grant
//! is carried by [`crate::grants`] like every other grant kind; the frontend sends it in the
//! `X-Admission` header and the gateway forwards it as `x-admission` gRPC metadata.

use serde::{Deserialize, Serialize};

use crate::grants::GrantKind;

/// session-svc's name as the issuer of grants.
pub const SESSION_ISSUER: &str = "vaxbook-session";
/// The gRPC metadata (and lower-case HTTP header) that carries an admission grant.
pub const ADMISSION_METADATA: &str = "x-admission";
/// The room that governs every campaign without a room of its own.
pub const DEFAULT_ROOM: &str = "*";

/// Claims of an admission grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionGrant {
    /// Person key of the admitted person.
    pub sub: String,
    /// The room the person was admitted from: a campaign id or [`DEFAULT_ROOM`].
    pub room: String,
    /// How many booking writes the grant allows at most; the first that succeeds spends it.
    pub uses: u32,
}

impl GrantKind for AdmissionGrant {
    const KIND: &'static str = "admission";
    const ISSUER: &'static str = SESSION_ISSUER;
    const AUDIENCE: &'static str = "vaxbook-booking";
}

/// The bearer of an `x-admission` metadata value, `None` when absent or not text.
pub fn presented_admission(metadata: &tonic::metadata::MetadataMap) -> Option<&str> {
    metadata
        .get(ADMISSION_METADATA)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}
