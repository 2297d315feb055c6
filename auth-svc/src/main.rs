//! The auth-svc binary: telemetry, configuration from the environment, serve until a signal.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = platform::telemetry::init(auth_svc::SERVICE_NAME)?;
    let config = auth_svc::Config::from_env()?;
    let listener = platform::net::bind_tcp(config.listen_addr).await?;
    let shutdown = platform::shutdown::on_signal();
    let result = auth_svc::serve(config, listener, shutdown).await;
    telemetry.shutdown().await;
    result
}
