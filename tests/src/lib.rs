//! The harness of vaxbook's end-to-end tests: starts the whole system — the five services as
//! separate processes against the real PostgreSQL and Redis, or `vaxbook dev` — on free
//! loopback ports, seeds it through the operators' gRPC APIs, and gives the tests an HTTP client
//! for the gateway's REST API and a way to read the one-time codes the SMS port sent.

pub mod api;
pub mod journey;
pub mod otlp;
pub mod people;
pub mod process;
pub mod seed;

pub use api::{Api, Reply};
pub use process::{DevStack, ProcessStack, Replicas};
