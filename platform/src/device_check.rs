//! The device-check grant: auth-svc asks session-svc, before it sends an SMS or any other
//! challenge, whether a claim of the person's lock by this device would be refused (R3), so a
//! blocked second device is told `423 device-locked` without a code being sent. The question
//! is read-only, yet it reveals whether a person is signed in elsewhere, so session-svc answers
//! it only for auth-svc: a short-lived grant ([`crate::grants`]) naming the person and the
//! device. It is its own kind, so it can never stand in for a device proof and claim a lock.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::grants::GrantKind;

/// auth-svc's question "may this device claim this person's lock?" (`CheckDevice`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCheck {
    /// The person key.
    pub sub: String,
    /// The device id.
    pub dev: String,
}

impl GrantKind for DeviceCheck {
    const KIND: &'static str = "device-check";
    const ISSUER: &'static str = crate::auth::ISSUER;
    const AUDIENCE: &'static str = "vaxbook-session";
}

/// How long a device-check grant is valid: it covers one call and some clock skew.
pub const DEVICE_CHECK_TTL: Duration = Duration::from_secs(30);
