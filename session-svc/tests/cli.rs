//! The session-svc binary answers `--help` and `--version` without reading its configuration
//! or binding a port, and refuses a stray argument with usage.

use std::process::Command;

#[test]
fn help_and_version_exit_zero() {
    let help = Command::new(env!("CARGO_BIN_EXE_session-svc"))
        .arg("--help")
        .output()
        .expect("session-svc runs");
    assert!(help.status.success(), "{help:?}");
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("environment variables"), "{text}");

    let version = Command::new(env!("CARGO_BIN_EXE_session-svc"))
        .arg("--version")
        .output()
        .expect("session-svc runs");
    assert!(version.status.success(), "{version:?}");
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));

    let stray = Command::new(env!("CARGO_BIN_EXE_session-svc"))
        .arg("--listen")
        .output()
        .expect("session-svc runs");
    assert_eq!(stray.status.code(), Some(2), "{stray:?}");
}
