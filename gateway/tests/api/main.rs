//! The gateway against in-test fake services: every route, the problem mapping, the guards in
//! front of booking-svc, staff tokens on the citizens' API, and the operational endpoints.

#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod bookings;
mod guards;
mod operations;
mod staff_tokens;
mod windows;
