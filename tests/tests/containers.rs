//! The journey through the containerised system: `deploy/containers.sh up` starts the five
//! services as podman containers of the image `deploy/images.sh` built (host network, the local
//! PostgreSQL in a fresh database and Redis under a fresh key prefix, a stand-in carriers' agency
//! on a loopback port; auth-svc's staff accounts in a database of their own, with the operator
//! containers.sh creates and logs in, who seeds the campaign), and the journey walks through the
//! containerised gateway. Slow and needs podman, so it is outside the default run:
//!
//! ```sh
//! deploy/images.sh
//! cargo nextest run -p vaxbook-tests --run-ignored only -E 'test(containerised)'
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use vaxbook_tests::journey::{self, Expect, HONG, OtpSource};
use vaxbook_tests::seed;

fn workspace() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Removes the containers however the test ends.
struct Containers {
    name: String,
}

impl Drop for Containers {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg("deploy/containers.sh")
            .arg("down")
            .current_dir(workspace())
            .env("VAXBOOK_CONTAINERS_NAME", &self.name)
            .stdin(Stdio::null())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow, needs podman and the image: deploy/images.sh first"]
async fn the_journey_walks_through_the_containerised_gateway() -> anyhow::Result<()> {
    let agency = platform::carrier::StandInAgency::start(std::sync::Arc::new(
        platform::carrier::CarrierDirectory::new(),
    ))
    .await?;
    agency
        .directory
        .register(&platform::carrier::Subscriber {
            name: HONG.name.to_owned(),
            rrn: HONG.rrn.to_owned(),
            phone: HONG.phone.to_owned(),
            carrier: HONG.carrier.to_owned(),
        })
        .map_err(|error| anyhow::anyhow!("cannot register the test person: {error}"))?;
    let database_url = platform::pg::create_test_database("containers").await?;
    let auth_database_url = platform::pg::create_test_database("containers_auth").await?;
    let name = format!(
        "vaxbook-t{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let port_base =
        std::env::var("VAXBOOK_CONTAINERS_PORT_BASE").unwrap_or_else(|_| "18500".to_owned());
    let containers = Containers { name: name.clone() };
    let output = tokio::task::spawn_blocking({
        let name = name.clone();
        let carrier = agency.url().to_owned();
        move || {
            Command::new("bash")
                .arg("deploy/containers.sh")
                .arg("up")
                .current_dir(workspace())
                .env("VAXBOOK_CONTAINERS_NAME", name)
                .env("VAXBOOK_CONTAINERS_PORT_BASE", port_base)
                .env("DATABASE_URL", database_url)
                .env("AUTH_DATABASE_URL", auth_database_url)
                .env("AUTH_CARRIER_CHECK_URL", carrier)
                .stdin(Stdio::null())
                .output()
        }
    })
    .await??;
    anyhow::ensure!(
        output.status.success(),
        "deploy/containers.sh up failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: HashMap<String, String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    let get = |key: &str| {
        printed
            .get(key)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("containers.sh printed no {key}="))
    };
    let gateway = get("GATEWAY_URL")?;
    // The containers take operator tokens only: containers.sh keeps an operator account in
    // auth-svc's database and prints a fresh token of it.
    let operator = platform::operator::OperatorCredential::Token(get("OPERATOR_TOKEN")?);
    let seeded =
        seed::open_campaign(&get("SCHEDULING_URL")?, &get("BOOKING_URL")?, &operator).await?;
    journey::walk(
        &gateway,
        &OtpSource::RedisOutbox {
            url: get("REDIS_URL")?,
            prefix: get("REDIS_KEY_PREFIX")?,
        },
        &Expect {
            campaign_id: seeded.campaign_id,
        },
    )
    .await?;

    // The image's own health check answers for every container.
    for service in [
        "gateway",
        "auth-svc",
        "session-svc",
        "scheduling-svc",
        "booking-svc",
    ] {
        let status = Command::new("podman")
            .args(["healthcheck", "run", &format!("{name}-{service}")])
            .env(
                "CONTAINERS_CONF",
                workspace().join("deploy/podman/containers.conf"),
            )
            .stdin(Stdio::null())
            .output()?;
        assert!(
            status.status.success(),
            "{service}'s health check: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    }
    drop(containers);
    Ok(())
}
