//! The session-svc binary outside the dev run: it refuses to start without the key file that
//! signs admission grants, and says which variable is wrong. Every other variable is set to a
//! valid value, so the key file is the only reason it can stop. There is no operator key to
//! set: `QueueAdminService` takes operator tokens, verified against auth-svc's keys.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn start(signing_key_file: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_session-svc"));
    command
        .env_clear()
        .env("SESSION_LISTEN_ADDR", "127.0.0.1:0")
        .env("SESSION_METRICS_ADDR", "127.0.0.1:0")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("VAXBOOK_AUTH_URL", "http://127.0.0.1:1")
        .env("VAXBOOK_BOOKING_URL", "http://127.0.0.1:1")
        .env("VAXBOOK_GRPC_TIMEOUT_MS", "1000")
        .env("VAXBOOK_SHUTDOWN_GRACE_SECS", "1")
        // Read by platform's shared settings until the retired operator key is gone from them;
        // a valid value, so it is never the reason to stop.
        .env("RUST_LOG", "error");
    if let Some(path) = signing_key_file {
        command.env("SESSION_SIGNING_KEY_FILE", path);
    }
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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

fn assert_refused_naming(output: &Output, variable: &str) {
    assert!(!output.status.success(), "started: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(variable), "{stderr}");
}

#[test]
fn refuses_to_start_without_the_grant_signing_key() {
    assert_refused_naming(&start(None), "SESSION_SIGNING_KEY_FILE");
}
