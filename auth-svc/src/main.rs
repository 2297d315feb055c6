//! The auth-svc binary: telemetry, configuration from the environment, serve until a signal.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::cli::parse_service_args(
        auth_svc::SERVICE_NAME,
        env!("CARGO_PKG_VERSION"),
        "vaxbook identity verification and access tokens (gRPC)",
    );
    let telemetry = platform::telemetry::init(auth_svc::SERVICE_NAME)?;
    let config = auth_svc::Config::from_env()?;
    let listener = platform::net::bind_tcp(config.listen_addr).await?;
    let shutdown = platform::shutdown::on_signal();
    let result = auth_svc::serve(config, listener, shutdown).await;
    telemetry.shutdown().await;
    result
}
