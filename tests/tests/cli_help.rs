//! `vaxbook-load --help` prints its usage and exits 0 (it used to fail with a backtrace), and a
//! wrong option is refused with usage, not a panic.

use std::process::Command;

#[test]
fn the_load_generator_answers_help_and_refuses_unknown_options() {
    let help = Command::new(env!("CARGO_BIN_EXE_vaxbook-load"))
        .arg("--help")
        .output()
        .expect("vaxbook-load runs");
    assert!(help.status.success(), "{help:?}");
    let usage = String::from_utf8_lossy(&help.stdout);
    assert!(usage.contains("--people"), "{usage}");
    assert!(usage.contains("--concurrency"), "{usage}");

    let wrong = Command::new(env!("CARGO_BIN_EXE_vaxbook-load"))
        .args(["--people", "0"])
        .output()
        .expect("vaxbook-load runs");
    assert_eq!(wrong.status.code(), Some(2), "{wrong:?}");
    let message = String::from_utf8_lossy(&wrong.stderr);
    assert!(message.contains("--people"), "{message}");
    assert!(!message.contains("backtrace"), "{message}");
}
