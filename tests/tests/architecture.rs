//! Checks that keep the workspace as the architecture says: services meet only through `proto`
//! and `platform`, and the README documents every configuration variable the code reads.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const SERVICES: &[&str] = &[
    "auth-svc",
    "session-svc",
    "scheduling-svc",
    "booking-svc",
    "gateway",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn rust_sources(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_sources(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// Upper-case string literals with an underscore: `"AUTH_OTP_TTL_SECS"`.
fn env_literals(source: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for piece in source.split('"').skip(1).step_by(2) {
        let looks_like_env = piece.len() > 3
            && piece.contains('_')
            && piece.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && piece
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if looks_like_env {
            names.insert(piece.to_owned());
        }
    }
    // CommonConfig::from_env("AUTH", …) reads AUTH_METRICS_ADDR and AUTH_MAX_INFLIGHT.
    for piece in source.split("CommonConfig::from_env(\"").skip(1) {
        if let Some(prefix) = piece.split('"').next() {
            names.insert(format!("{prefix}_METRICS_ADDR"));
            names.insert(format!("{prefix}_MAX_INFLIGHT"));
        }
    }
    names
}

#[test]
fn the_readme_documents_every_configuration_variable() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap_or_default();
    let mut sources = Vec::new();
    for krate in SERVICES.iter().chain(&["platform", "vaxbook"]) {
        rust_sources(&root().join(krate).join("src"), &mut sources);
    }
    assert!(
        sources.len() > 20,
        "found only {} source files",
        sources.len()
    );
    let mut names = BTreeSet::new();
    for path in &sources {
        names.extend(env_literals(
            &std::fs::read_to_string(path).unwrap_or_default(),
        ));
    }
    assert!(
        names.contains("DATABASE_URL") && names.contains("BOOKING_METRICS_ADDR"),
        "{names:?}"
    );
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| !readme.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "README's configuration table lacks {missing:?}"
    );
}

#[test]
fn no_service_depends_on_another_service_crate() {
    for service in SERVICES {
        let manifest =
            std::fs::read_to_string(root().join(service).join("Cargo.toml")).unwrap_or_default();
        assert!(
            manifest.contains("[dependencies]"),
            "{service} has no manifest"
        );
        for other in SERVICES.iter().filter(|other| *other != service) {
            let depends = manifest.lines().any(|line| {
                line.trim_start().starts_with(&format!("{other}."))
                    || line.trim_start().starts_with(&format!("{other} ="))
            });
            assert!(
                !depends,
                "{service} depends on {other}: services meet only through proto and platform"
            );
        }
    }
}

#[test]
fn the_readme_opens_with_the_two_commands_and_ci_runs_the_test_one() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap_or_default();
    let head: String = readme.lines().take(6).collect::<Vec<_>>().join("\n");
    assert!(head.contains("cargo run -p vaxbook -- dev"), "{head}");
    assert!(head.contains("bash scripts/test-all"), "{head}");
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap_or_default();
    assert!(ci.contains("scripts/test-all"), "{ci}");
}
