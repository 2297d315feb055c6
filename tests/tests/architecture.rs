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
        // `env!("CARGO_PKG_VERSION")` and friends are set by cargo, not by an operator.
        let looks_like_env = piece.len() > 3
            && !piece.starts_with("CARGO_")
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
        let source = std::fs::read_to_string(path).unwrap_or_default();
        // Test modules (at the end of a file, by convention) may set variables of their own.
        let production = source.split("#[cfg(test)]").next().unwrap_or_default();
        names.extend(env_literals(production));
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

/// The four gRPC services share one crate layout, so a feature goes into an obvious place:
/// `config.rs`, `error.rs`, `domain.rs` (or `domain/`), `service.rs`, `grpc.rs`, `store/`,
/// and a `lib.rs` that serves and little else.
#[test]
fn every_service_crate_follows_the_template() {
    let mut departures = Vec::new();
    for service in &SERVICES[..4] {
        let src = root().join(service).join("src");
        for file in ["config.rs", "error.rs", "service.rs", "grpc.rs", "lib.rs"] {
            if !src.join(file).is_file() {
                departures.push(format!("{service}: no src/{file}"));
            }
        }
        if !src.join("domain.rs").is_file() && !src.join("domain/mod.rs").is_file() {
            departures.push(format!("{service}: no src/domain.rs or src/domain/"));
        }
        if !src.join("store/mod.rs").is_file() {
            departures.push(format!("{service}: no src/store/"));
        }
        let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
        if !lib.contains("pub async fn serve(") {
            departures.push(format!("{service}: lib.rs has no `pub async fn serve(`"));
        }
        let code_lines = lib
            .lines()
            .filter(|line| {
                let line = line.trim();
                !line.is_empty() && !line.starts_with("//")
            })
            .count();
        if code_lines > 160 {
            departures.push(format!(
                "{service}: lib.rs has {code_lines} lines of code; it should serve and little else"
            ));
        }
        let service_rs = std::fs::read_to_string(src.join("service.rs")).unwrap_or_default();
        if service_rs.contains("tonic::") || service_rs.contains("use tonic") {
            departures.push(format!(
                "{service}: service.rs uses tonic; the adapter belongs in grpc.rs"
            ));
        }
        let error_rs = std::fs::read_to_string(src.join("error.rs")).unwrap_or_default();
        if !error_rs.contains("thiserror::Error") {
            departures.push(format!("{service}: error.rs has no thiserror enum"));
        }
    }
    assert!(departures.is_empty(), "{departures:#?}");
}

/// A person who clones the repository has only the repository: no document in it may send them
/// to files outside it.
#[test]
fn the_documentation_stands_on_its_own() {
    let mut documents = vec![root().join("README.md")];
    for krate in SERVICES
        .iter()
        .chain(&["platform", "proto", "vaxbook", "tests"])
    {
        let readme = root().join(krate).join("README.md");
        assert!(readme.is_file(), "{krate} has no README.md");
        documents.push(readme);
    }
    if let Ok(entries) = std::fs::read_dir(root().join("docs")) {
        documents.extend(entries.flatten().map(|entry| entry.path()));
    }
    assert!(
        root().join("docs/domain.md").is_file(),
        "docs/domain.md is missing"
    );
    for document in documents {
        let text = std::fs::read_to_string(&document).unwrap_or_default();
        for outside in [
            "../shared",
            "/work/shared",
            "shared/DOMAIN.md",
            "shared/API.md",
        ] {
            assert!(
                !text.contains(outside),
                "{} refers to {outside}, which is not in the repository",
                document.display()
            );
        }
    }
}
