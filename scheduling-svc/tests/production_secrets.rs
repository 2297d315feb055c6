//! The scheduling-svc binary outside the dev run: it refuses to start without an internal service
//! key of its own (`VAXBOOK_SERVICE_KEY`, which booking-svc presents to `CheckEligibility`) or
//! with the development one, and says which variable is wrong. Every other variable is set to a
//! valid value, so the service key is the only reason it can stop. Admin RPCs take operator
//! tokens, so there is no operator key to refuse.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};
use std::time::Duration;

fn start(service_key: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scheduling-svc"));
    command
        .env_clear()
        .env("SCHEDULING_LISTEN_ADDR", "127.0.0.1:0")
        .env("SCHEDULING_METRICS_ADDR", "127.0.0.1:0")
        .env(
            "SCHEDULING_DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/vaxbook_refused",
        )
        .env("SCHEDULING_DB_POOL_SIZE", "2")
        .env("SCHEDULING_CACHE_REFRESH_SECS", "5")
        .env("VAXBOOK_SHUTDOWN_GRACE_SECS", "1")
        // Still read by the shared configuration while it is being retired; scheduling-svc
        // itself no longer uses it. A valid value, so it cannot be the reason to stop.
        .env("RUST_LOG", "error");
    if let Some(key) = service_key {
        command.env(platform::config::SERVICE_KEY_VAR, key);
    }
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait_with_output());
    });
    done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the binary should stop at once on a refused configuration")
        .unwrap()
}

fn assert_refused(output: &Output) {
    assert!(!output.status.success(), "started: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("VAXBOOK_SERVICE_KEY"), "{stderr}");
}

#[test]
fn refuses_to_start_without_a_service_key() {
    assert_refused(&start(None));
}

#[test]
fn refuses_to_start_with_the_development_service_key() {
    let output = start(Some(platform::config::DEV_SERVICE_KEY));
    assert_refused(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("development default"), "{stderr}");
}
