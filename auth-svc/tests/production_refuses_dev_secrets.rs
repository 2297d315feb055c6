//! The auth-svc binary as production starts it, from the environment alone: it refuses to
//! start with each development secret, one test per secret, each with every other variable
//! set validly so that exactly one thing is wrong, and the refusal names the variable. A last
//! test shows the valid environment itself is not refused.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A production environment with nothing wrong in it.
struct Environment {
    vars: Vec<(&'static str, String)>,
    key_file: PathBuf,
}

impl Environment {
    fn valid() -> Self {
        let key_file = std::env::temp_dir().join(format!(
            "auth-svc-refusal-{}.pem",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&key_file, auth_svc::tokens::generate_pem().unwrap()).unwrap();
        let vars = vec![
            (
                "AUTH_PERSON_KEY_SECRET",
                format!("person-key-{}", uuid::Uuid::new_v4().simple()),
            ),
            ("AUTH_SIGNING_KEY_FILE", key_file.display().to_string()),
            (
                "AUTH_CARRIER_CHECK_URL",
                "http://127.0.0.1:1/v1/subscriber-check".to_owned(),
            ),
            ("AUTH_LISTEN_ADDR", "127.0.0.1:0".to_owned()),
            ("AUTH_METRICS_ADDR", "127.0.0.1:0".to_owned()),
            // Nothing listens here: a start that got past the configuration waits for Redis.
            ("REDIS_URL", "redis://127.0.0.1:1".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
            ("NO_COLOR", "1".to_owned()),
        ];
        Self { vars, key_file }
    }

    fn set(mut self, name: &'static str, value: &str) -> Self {
        self.without(name).vars.push((name, value.to_owned()));
        self
    }

    fn without(&mut self, name: &str) -> &mut Self {
        self.vars.retain(|(key, _)| *key != name);
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_auth-svc"));
        command
            .env_clear()
            .envs(self.vars.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs the binary, which must exit on its own within a few seconds, non-zero; returns
    /// what it printed.
    fn refused(&self) -> String {
        let mut child = self.command().spawn().unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("auth-svc did not stop at start");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = child.wait_with_output().unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!status.success(), "auth-svc started: {printed}");
        printed
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.key_file);
    }
}

#[test]
fn an_unset_person_key_secret_is_refused() {
    let mut environment = Environment::valid();
    environment.without("AUTH_PERSON_KEY_SECRET");
    let printed = environment.refused();
    assert!(printed.contains("AUTH_PERSON_KEY_SECRET"), "{printed}");
}

#[test]
fn the_development_person_key_secret_is_refused() {
    let environment =
        Environment::valid().set("AUTH_PERSON_KEY_SECRET", auth_svc::DEV_PERSON_KEY_SECRET);
    let printed = environment.refused();
    assert!(printed.contains("AUTH_PERSON_KEY_SECRET"), "{printed}");
    assert!(printed.contains("development default"), "{printed}");
}

#[test]
fn a_missing_signing_key_file_is_refused() {
    let mut environment = Environment::valid();
    environment.without("AUTH_SIGNING_KEY_FILE");
    let printed = environment.refused();
    assert!(printed.contains("AUTH_SIGNING_KEY_FILE"), "{printed}");
}

#[test]
fn no_carrier_agency_is_refused_rather_than_skipped() {
    let mut environment = Environment::valid();
    environment.without("AUTH_CARRIER_CHECK_URL");
    let printed = environment.refused();
    assert!(printed.contains("AUTH_CARRIER_CHECK_URL"), "{printed}");
}

#[test]
fn the_valid_environment_gets_past_the_configuration() {
    let environment = Environment::valid();
    let mut child = environment.command().spawn().unwrap();
    // Past the configuration it waits for Redis (nothing listens on port 1) for far longer
    // than this; a refused configuration would have ended it in milliseconds.
    std::thread::sleep(Duration::from_secs(2));
    let still_running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    assert!(
        still_running,
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
