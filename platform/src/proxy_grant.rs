//! The proxy grant (R1): auth-svc's signed statement that the verified person `sub` asked to
//! book for the person it resolved from a name and resident registration number. booking-svc
//! accepts it instead of ever seeing the RRN: the grant carries only the person key and birth
//! date of the person booked for and their masked name. Short-lived; carried by
//! [`crate::grants`] like every other grant kind.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::grants::GrantKind;

/// Claims of a proxy grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyGrant {
    /// Person key of the booker (the access token's `sub` when auth-svc issued the grant).
    pub sub: String,
    /// Person key of the person booked for.
    pub for_key: String,
    /// Birth date of the person booked for, YYYY-MM-DD.
    pub for_bd: String,
    /// Name of the person booked for, masked (홍*동).
    pub for_name: String,
}

impl GrantKind for ProxyGrant {
    const KIND: &'static str = "proxy";
    const ISSUER: &'static str = crate::auth::ISSUER;
    const AUDIENCE: &'static str = "vaxbook-booking";
}

/// How long a proxy grant is valid: it is asked for right before the booking it is for.
pub const PROXY_GRANT_TTL: Duration = Duration::from_secs(120);
