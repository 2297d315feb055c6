//! The scheduling-svc binary: reads its configuration from the environment and serves until
//! SIGTERM or ctrl-c.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::cli::parse_service_args(
        scheduling_svc::SERVICE_NAME,
        env!("CARGO_PKG_VERSION"),
        "vaxbook campaigns, age groups and eligibility (gRPC)",
    );
    let telemetry = platform::telemetry::init(scheduling_svc::SERVICE_NAME)?;
    let config = scheduling_svc::Config::from_env()?;
    let listener = platform::net::bind_tcp(config.listen_addr).await?;
    let shutdown = platform::shutdown::on_signal();
    let outcome = scheduling_svc::serve(config, listener, shutdown).await;
    if let Err(err) = &outcome {
        tracing::error!(error = %err, "scheduling-svc stopped with an error");
    }
    telemetry.shutdown().await;
    outcome
}
