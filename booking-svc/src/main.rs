//! The booking-svc binary: reads its configuration from the environment and serves until
//! SIGTERM or ctrl-c.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::cli::parse_service_args(
        booking_svc::SERVICE_NAME,
        env!("CARGO_PKG_VERSION"),
        "vaxbook centers, slots and bookings (gRPC)",
    );
    let telemetry = platform::telemetry::init(booking_svc::SERVICE_NAME)?;
    let config = booking_svc::Config::from_env()?;
    let listener = platform::net::bind_tcp(config.listen_addr).await?;
    let shutdown = platform::shutdown::on_signal();
    let served = booking_svc::serve(config, listener, shutdown).await;
    telemetry.shutdown().await;
    served
}
