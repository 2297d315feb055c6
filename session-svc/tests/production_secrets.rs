//! The session-svc binary outside the dev run: it refuses to start with the development operator
//! key, without one, or without the key file that signs admission grants, and says which
//! variable is wrong. Every other variable is set to a valid value, so exactly one thing is wrong
//! in each test.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output, Stdio};
use std::time::Duration;

const OPERATOR_KEY: &str = "an-operator-key-of-our-own-0123456789";

fn start(admin_key: Option<&str>, signing_key_file: Option<&str>) -> Output {
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
        .env("RUST_LOG", "error");
    if let Some(key) = admin_key {
        command.env("VAXBOOK_ADMIN_KEY", key);
    }
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

fn key_file() -> String {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("session-signing-key-{}.pem", std::process::id()));
    std::fs::write(&path, platform::grants::generate_pem().unwrap()).unwrap();
    path.display().to_string()
}

fn assert_refused_naming(output: &Output, variable: &str) {
    assert!(!output.status.success(), "started: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(variable), "{stderr}");
}

#[test]
fn refuses_to_start_without_an_operator_key() {
    assert_refused_naming(&start(None, Some(&key_file())), "VAXBOOK_ADMIN_KEY");
}

#[test]
fn refuses_to_start_with_the_development_operator_key() {
    let output = start(Some(platform::config::DEV_ADMIN_KEY), Some(&key_file()));
    assert_refused_naming(&output, "VAXBOOK_ADMIN_KEY");
    assert!(String::from_utf8_lossy(&output.stderr).contains("development default"));
}

#[test]
fn refuses_to_start_without_the_grant_signing_key() {
    assert_refused_naming(&start(Some(OPERATOR_KEY), None), "SESSION_SIGNING_KEY_FILE");
}
