//! Import time and resident memory of a 1,000,000-entry exclusion list: the person keys (43
//! base64url characters, as auth-svc derives them) are streamed over gRPC in batches of 5,000
//! into a scheduling-svc served in this process, which stores the list (PostgreSQL when
//! `--database-url URL` is given, else the in-process store) and installs it in memory. Reports
//! the wall time, the process's resident memory before and after, and lookups per second.
//! Run with `cargo run --release -p scheduling-svc --example exclusions_bench [-- --database-url
//! postgres://…] [-- ENTRIES]`; the result is recorded in docs/benchmarks.md.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use platform::operator::OperatorCredential;
use proto::scheduling::v1 as pb;
use proto::scheduling::v1::scheduling_admin_service_client::SchedulingAdminServiceClient;
use scheduling_svc::{Config, StoreConfig};
use tokio_util::sync::CancellationToken;

/// (resident, peak resident) in MiB, from /proc/self/status.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A deterministic 43-character base64url key per index.
fn key(index: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state = index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    (0..43)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[(state % 64) as usize])
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut database_url = None;
    let mut entries: u64 = 1_000_000;
    while let Some(arg) = args.next() {
        if arg == "--database-url" {
            database_url = args.next();
        } else {
            entries = arg.parse()?;
        }
    }
    let hooks = platform::dev::DevHooks::new(chrono::Utc::now());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let mut config = Config::local_dev(addr, &hooks);
    let store = match &database_url {
        Some(url) => {
            scheduling_svc::migrate(url).await?;
            config.store = StoreConfig::Postgres {
                url: platform::config::ConnectionUrl::new(url.clone()),
                max_connections: 4,
            };
            "PostgreSQL"
        }
        None => "in-process",
    };
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(scheduling_svc::serve(config, listener, shutdown.clone()));
    let channel = platform::grpc::channel(&format!("http://{addr}"), Duration::from_secs(600))?;
    let mut admin = SchedulingAdminServiceClient::new(channel);
    // A dev-run configuration: the dev run's operator key is accepted.
    let operator = OperatorCredential::dev();
    let campaign =
        scheduling_svc::campaign_file::parse(include_str!("../../deploy/campaigns/2021.yaml"))?
            .remove(0);
    let campaign_id = campaign.id.clone();
    loop {
        let upsert = pb::UpsertCampaignRequest {
            campaign: Some(campaign.clone()),
        };
        match admin.upsert_campaign(operator.request(upsert)?).await {
            Ok(_) => break,
            Err(status) if status.code() == tonic::Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => anyhow::bail!("upsert: {status}"),
        }
    }

    let (before, _) = memory_mib();
    let started = Instant::now();
    // Batches are produced as they are sent, so the client never holds the whole list.
    let batch = 5_000u64;
    let messages = (0..entries.div_ceil(batch)).map(move |n| pb::ReplaceExclusionsRequest {
        campaign_id: if n == 0 {
            campaign_id.clone()
        } else {
            String::new()
        },
        person_keys: (n * batch..((n + 1) * batch).min(entries))
            .map(key)
            .collect(),
    });
    let replaced = admin
        .replace_exclusions(operator.request(tokio_stream::iter(messages))?)
        .await?
        .into_inner();
    let elapsed = started.elapsed();
    let (after, peak) = memory_mib();
    println!(
        "{} entries into the {store} store in {:.2} s ({:.0} entries/s); resident memory {:.0} MiB before, {:.0} MiB after (+{:.0} MiB), peak {:.0} MiB; list version {}",
        replaced.entries,
        elapsed.as_secs_f64(),
        replaced.entries as f64 / elapsed.as_secs_f64(),
        before,
        after,
        after - before,
        peak,
        replaced.list_version
    );
    shutdown.cancel();
    let _ = server.await;

    // The in-memory set alone: built from keys generated one at a time (no list of strings).
    let (before, _) = memory_mib();
    let started = Instant::now();
    let set = scheduling_svc::exclusions::ExclusionSet::from_digests(
        1,
        (0..entries).map(|index| scheduling_svc::exclusions::key_digest(&key(index))),
    );
    let built = started.elapsed();
    let (after, _) = memory_mib();
    let probe = Instant::now();
    let mut found = 0usize;
    for index in 0..entries {
        found += usize::from(set.contains(&key(index * 2)));
    }
    let probing = probe.elapsed();
    println!(
        "the in-memory set of {} entries: built in {:.2} s, +{:.0} MiB resident; {:.0} lookups/s (key generation included, {found} hits)",
        set.len(),
        built.as_secs_f64(),
        after - before,
        entries as f64 / probing.as_secs_f64()
    );
    Ok(())
}
