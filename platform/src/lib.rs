//! What every vaxbook service shares: configuration from the environment, telemetry
//! (tracing + OpenTelemetry export + W3C trace context), Prometheus metrics, the gRPC server
//! scaffolding (health, reflection, graceful shutdown), access-token verification, the one
//! problem vocabulary shared by gRPC and HTTP, the injectable Asia/Seoul clock, and the
//! PostgreSQL/Redis connection helpers, and the identifiers every service shares (`ids`).

pub mod admission;
pub mod audit;
pub mod audit_grpc;
pub mod auth;
pub mod balance;
pub mod carrier;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dev;
pub mod dev_ca;
pub mod device_check;
pub mod grants;
pub mod grpc;
pub mod idp;
pub mod ids;
pub mod metrics;
pub mod net;
pub mod operator;
pub mod pg;
pub mod probe;
pub mod problem;
pub mod proxy_grant;
pub mod redis_conn;
pub mod shed;
pub mod shutdown;
pub mod staff;
pub mod telemetry;
pub mod trust;
