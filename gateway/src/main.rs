//! The gateway binary: telemetry, configuration from the environment, serve until a signal.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::cli::parse_service_args(
        "gateway",
        env!("CARGO_PKG_VERSION"),
        "vaxbook REST gateway for web and mobile frontends",
    );
    let telemetry = platform::telemetry::init("gateway")?;
    let config = gateway::Config::from_env()?;
    let listener = platform::net::bind_tcp(config.listen_addr).await?;
    let shutdown = platform::shutdown::on_signal();
    let result = gateway::serve(config, listener, shutdown).await;
    telemetry.shutdown().await;
    result
}
