//! What SREs run: `vaxbook migrate`, the deploy/local scripts, and every service's `/metrics`.

use std::time::Duration;

use vaxbook_tests::process::{binary, free_addr};
use vaxbook_tests::{Api, ProcessStack, seed};

async fn tables(database_url: &str) -> anyhow::Result<Vec<String>> {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

#[tokio::test]
async fn vaxbook_migrate_applies_every_schema_and_can_run_again() -> anyhow::Result<()> {
    let database_url = platform::pg::create_test_database("migrate").await?;
    for _ in 0..2 {
        let status = tokio::process::Command::new(binary("vaxbook")?)
            .args(["migrate", "--database-url", &database_url])
            .status()
            .await?;
        assert!(status.success(), "vaxbook migrate failed");
    }
    let tables = tables(&database_url).await?;
    for wanted in [
        "booking_schema_history",
        "bookings",
        "campaigns",
        "centers",
        "scheduling_schema_history",
        "slots",
    ] {
        assert!(
            tables.iter().any(|t| t == wanted),
            "{wanted} missing: {tables:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn vaxbook_migrate_fails_clearly_on_a_bad_url() -> anyhow::Result<()> {
    let output = tokio::process::Command::new(binary("vaxbook")?)
        .args(["migrate", "--database-url", "not a url"])
        .output()
        .await?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.to_lowercase().contains("url") || stderr.contains("invalid"),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_exposes_its_request_metrics() -> anyhow::Result<()> {
    let stack = ProcessStack::start("metrics").await?;
    seed::open_campaign(&stack.scheduling_url, &stack.booking_url, &stack.operator).await?;
    let client = reqwest::Client::new();
    assert_eq!(stack.metrics_addrs.len(), 4);
    for (name, addr) in &stack.metrics_addrs {
        let body = client
            .get(format!("http://{addr}/metrics"))
            .timeout(Duration::from_secs(5))
            .send()
            .await?
            .text()
            .await?;
        // Seeding called scheduling and booking; readiness checks called every service's health.
        assert!(
            body.contains("grpc_server_requests_total"),
            "{name}: {body}"
        );
        assert!(
            body.contains("grpc_server_request_duration_seconds"),
            "{name}: {body}"
        );
    }
    Ok(())
}

/// `deploy/local/start.sh` starts the five services as processes (the build is skipped: the
/// binaries exist), `stop.sh` stops them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_local_scripts_start_and_stop_the_system() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no workspace root"))?
        .to_path_buf();
    let run_dir =
        std::env::temp_dir().join(format!("vaxbook-local-{}", uuid::Uuid::new_v4().simple()));
    let database_url = platform::pg::create_test_database("deploy").await?;
    let agency = platform::carrier::StandInAgency::start(std::sync::Arc::new(
        platform::carrier::CarrierDirectory::new(),
    ))
    .await?;
    let gateway = free_addr()?;
    let mut env: Vec<(String, String)> = vec![
        ("VAXBOOK_RUN_DIR".into(), run_dir.display().to_string()),
        ("VAXBOOK_SKIP_BUILD".into(), "1".into()),
        ("VAXBOOK_SEED_DEMO".into(), "1".into()),
        ("DATABASE_URL".into(), database_url),
        (
            "REDIS_KEY_PREFIX".into(),
            platform::redis_conn::test_prefix("deploy"),
        ),
        ("GATEWAY_LISTEN_ADDR".into(), gateway.to_string()),
        ("AUTH_CARRIER_CHECK_URL".into(), agency.url().to_owned()),
    ];
    let services = [
        ("AUTH", "VAXBOOK_AUTH_URL"),
        ("SESSION", "VAXBOOK_SESSION_URL"),
        ("SCHEDULING", "VAXBOOK_SCHEDULING_URL"),
        ("BOOKING", "VAXBOOK_BOOKING_URL"),
    ];
    for (prefix, url_var) in services {
        let addr = free_addr()?;
        env.push((format!("{prefix}_LISTEN_ADDR"), addr.to_string()));
        env.push((url_var.to_owned(), format!("http://{addr}")));
        env.push((format!("{prefix}_METRICS_ADDR"), free_addr()?.to_string()));
    }
    let start = tokio::process::Command::new("bash")
        .arg(root.join("deploy/local/start.sh"))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .await?;
    let started = String::from_utf8_lossy(&start.stdout).into_owned();
    let stop = || async {
        tokio::process::Command::new("bash")
            .arg(root.join("deploy/local/stop.sh"))
            .env("VAXBOOK_RUN_DIR", &run_dir)
            .output()
            .await
    };
    if !start.status.success() {
        let _ = stop().await;
        anyhow::bail!(
            "start.sh failed: {started}\n{}",
            String::from_utf8_lossy(&start.stderr)
        );
    }
    let ready = Api::new(&format!("http://{gateway}"), "probe")
        .get("/readyz")
        .await?;
    let pids: Vec<u32> = [
        "session-svc",
        "auth-svc",
        "scheduling-svc",
        "booking-svc",
        "gateway",
    ]
    .iter()
    .filter_map(|svc| std::fs::read_to_string(run_dir.join(format!("{svc}.pid"))).ok())
    .filter_map(|pid| pid.trim().parse().ok())
    .collect();
    let key = std::fs::read_to_string(run_dir.join("auth-signing-key.pem")).unwrap_or_default();
    let stopped = stop().await?;
    assert_eq!(ready.status, 200, "{ready:?}\n{started}");
    assert!(
        key.starts_with("-----BEGIN PRIVATE KEY-----"),
        "start.sh gives auth-svc a key file: {key}"
    );
    assert_eq!(pids.len(), 5, "pid files: {started}");
    assert!(
        started.contains("seeded 2 campaigns, 6 centers, 732 slots"),
        "seed-demo: {started}"
    );
    assert!(
        stopped.status.success(),
        "stop.sh: {}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    for pid in pids {
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "process {pid} still running after stop.sh");
    }
    Ok(())
}

/// The load generator keeps working: a small bounded run books everyone, never overbooks, and
/// measures the raw database baseline (numbers are for the release benchmark, not asserted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_generator_books_everyone_without_overbooking() -> anyhow::Result<()> {
    let output = tokio::process::Command::new(binary("vaxbook-load")?)
        .args(["--people", "40", "--concurrency", "8"])
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("end-to-end bookings: 40 of 40"), "{stdout}");
    assert!(
        stdout.contains(
            "40 confirmed bookings, 0 slots over capacity, 0 slots whose count disagrees"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("raw PostgreSQL booking transactions: 40"),
        "{stdout}"
    );
    Ok(())
}

#[tokio::test]
async fn vaxbook_keygen_prints_a_new_signing_key_each_time() -> anyhow::Result<()> {
    let mut keys = Vec::new();
    for _ in 0..2 {
        let output = tokio::process::Command::new(binary("vaxbook")?)
            .arg("keygen")
            .output()
            .await?;
        assert!(output.status.success());
        let pem = String::from_utf8(output.stdout)?;
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        assert!(
            pem.trim_end().ends_with("-----END PRIVATE KEY-----"),
            "{pem}"
        );
        keys.push(pem);
    }
    assert_ne!(keys[0], keys[1]);
    Ok(())
}
