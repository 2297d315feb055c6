//! The session-svc binary: telemetry, configuration from the environment, serve until SIGTERM.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::cli::parse_service_args(
        session_svc::SERVICE_NAME,
        env!("CARGO_PKG_VERSION"),
        "vaxbook device lock: one device per person (gRPC)",
    );
    let telemetry = platform::telemetry::init(session_svc::SERVICE_NAME)?;
    let config = session_svc::Config::from_env()?;
    let listener = platform::net::bind_tcp(config.listen_addr).await?;
    let shutdown = platform::shutdown::on_signal();
    let result = session_svc::serve(config, listener, shutdown).await;
    if let Err(err) = &result {
        tracing::error!(error = %err, "session-svc stopped with an error");
    }
    telemetry.shutdown().await;
    result
}
