//! `vaxbook-load`: a bounded load test on 127.0.0.1. Starts the five services as processes
//! (from the same target directory as this binary: build with `--release`), verifies N people
//! through the gateway, books one slot each with C requests in flight, checks the capacity
//! invariants in PostgreSQL, and measures the same N booking transactions straight against
//! PostgreSQL (booking-svc's own store, no HTTP or gRPC) with the same concurrency, so the
//! report gives end-to-end bookings/s as a ratio of raw database bookings/s measured in one run.
//!
//! With `--verifications N` it instead measures verifications per second per identity
//! provider (phone, kakao, naver, pass, financial_cert) and nothing else (see
//! `verifications.rs`).
//!
//! ```sh
//! cargo build --release --workspace --bins
//! target/release/vaxbook-load --people 2000 --concurrency 64
//! target/release/vaxbook-load --verifications 2000 --provider all --concurrency 64
//! ```

#[path = "load/verifications.rs"]
mod verifications;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use booking_svc::BookingStore;
use booking_svc::domain::{Center, NewBooking, SlotDraft};
use chrono::{Datelike, Days, NaiveDate, Utc};
use futures::StreamExt;
use serde_json::json;
use vaxbook_tests::{Api, ProcessStack, seed};

/// A bounded load test of the whole system on 127.0.0.1: starts the five services as
/// processes from this binary's target directory (build them with `--release`), verifies N
/// people through the gateway and books one slot each, then measures the same bookings straight
/// against PostgreSQL. Needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL or the local
/// defaults).
#[derive(clap::Parser, Debug)]
#[command(name = "vaxbook-load", version)]
struct Args {
    /// How many people verify and book (1 to 100000).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    people: u32,
    /// How many requests are in flight at once (1 to 1024).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    concurrency: u32,
    /// Instead of the booking run: how many verifications (start + complete, distinct people
    /// and devices) each provider runs through the gateway (1 to 20000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    verifications: Option<u32>,
    /// With --verifications: the provider measured, or all of them in one run.
    #[arg(long, default_value = "all", value_parser = ["phone", "kakao", "naver", "pass", "financial_cert", "all"])]
    provider: String,
    /// With --verifications: the run gives up (stopping the stack) after this many seconds.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(10..=3600))]
    time_limit_secs: u64,
}

impl Args {
    fn people(&self) -> usize {
        self.people as usize
    }

    fn concurrency(&self) -> usize {
        self.concurrency as usize
    }
}

/// Fictional person `index`: born between 1972 and 2001, a unique serial and phone number.
fn person(index: usize) -> (String, String) {
    let base = NaiveDate::from_ymd_opt(1972, 1, 1).unwrap_or_default();
    let birth = base + Days::new((index % 10_950) as u64);
    let century = if birth.year() < 2000 { 1 } else { 3 };
    let rrn = format!(
        "{}-{century}{:06}",
        birth.format("%y%m%d"),
        index % 1_000_000
    );
    let phone = format!("010-{:04}-{:04}", (index / 10_000) % 10_000, index % 10_000);
    (rrn, phone)
}

struct Latencies(Vec<f64>);

impl Latencies {
    fn summary(mut self) -> String {
        self.0.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let index = ((self.0.len() as f64 - 1.0) * q).round() as usize;
            self.0.get(index).copied().unwrap_or(0.0)
        };
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            at(0.5),
            at(0.99),
            at(1.0)
        )
    }
}

async fn timed<F, T>(future: F) -> (f64, T)
where
    F: std::future::Future<Output = T>,
{
    let started = Instant::now();
    let value = future.await;
    (started.elapsed().as_secs_f64() * 1000.0, value)
}

/// User + system CPU seconds each process of the stack used so far (Linux /proc), by name.
fn cpu_seconds(stack: &ProcessStack) -> Vec<(String, f64)> {
    let ticks_per_second = 100.0;
    stack
        .procs
        .iter()
        .map(|proc| {
            let stat =
                std::fs::read_to_string(format!("/proc/{}/stat", proc.id())).unwrap_or_default();
            // Fields after the command name (in parentheses): utime is the 12th, stime the 13th.
            let fields: Vec<&str> = stat
                .rsplit(')')
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .collect();
            let ticks: f64 = [11, 12]
                .iter()
                .filter_map(|index| {
                    fields
                        .get(*index)
                        .and_then(|value| value.parse::<f64>().ok())
                })
                .sum();
            (proc.name.clone(), ticks / ticks_per_second)
        })
        .collect()
}

/// Per process: CPU seconds in the verification phase, in the booking phase, and journeys
/// (one verification + one booking) per CPU-second of that process over both.
fn cpu_report(
    start: &[(String, f64)],
    verified: &[(String, f64)],
    end: &[(String, f64)],
    people: usize,
) -> String {
    let at = |snapshot: &[(String, f64)], name: &str| {
        snapshot
            .iter()
            .find(|(other, _)| other == name)
            .map(|(_, seconds)| *seconds)
            .unwrap_or(0.0)
    };
    end.iter()
        .map(|(name, total)| {
            let verify = at(verified, name) - at(start, name);
            let book = total - at(verified, name);
            let per_core = if verify + book > 0.0 {
                format!("{:.0}", people as f64 / (verify + book))
            } else {
                "-".to_owned()
            };
            format!(
                "  {name:<15} verification {verify:6.2} s, booking {book:6.2} s, {per_core} journeys per CPU-second"
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The sum of every `series{...}` sample in a `/metrics` page.
async fn counted(url: &str, series: &str) -> f64 {
    let Ok(response) = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
    else {
        return 0.0;
    };
    let text = response.text().await.unwrap_or_default();
    let prefix = format!("{series}{{");
    text.lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| line.rsplit(' ').next())
        .filter_map(|value| value.parse::<f64>().ok())
        .sum()
}

/// Requests each service answered over the run (its own counters), per journey.
async fn calls_report(stack: &ProcessStack, people: usize) -> String {
    let mut parts = Vec::new();
    let gateway = counted(
        &format!("{}/metrics", stack.gateway_url),
        "http_requests_total",
    )
    .await;
    parts.push(format!(
        "gateway {:.2} HTTP",
        gateway / people.max(1) as f64
    ));
    for (name, addr) in &stack.metrics_addrs {
        let calls = counted(
            &format!("http://{addr}/metrics"),
            "grpc_server_requests_total",
        )
        .await;
        parts.push(format!("{name} {:.2} gRPC", calls / people.max(1) as f64));
    }
    parts.join(", ")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    let people = args.people();
    let concurrency = args.concurrency();
    if let Some(count) = args.verifications {
        let providers: Vec<&'static str> = verifications::PROVIDERS
            .iter()
            .copied()
            .filter(|provider| args.provider == "all" || args.provider == *provider)
            .collect();
        let limit = Duration::from_secs(args.time_limit_secs);
        return tokio::time::timeout(
            limit,
            verifications::run(count as usize, &providers, concurrency),
        )
        .await
        .map_err(|_| anyhow::anyhow!("gave up after {} s", limit.as_secs()))?;
    }
    println!("vaxbook-load: {people} people, {concurrency} requests in flight, 127.0.0.1 only");

    // Enough places for everyone, spread over 20 slots.
    let per_slot = i32::try_from(people.div_ceil(20) + 1)?;
    let stack = ProcessStack::start_with(
        "load",
        &[
            ("RUST_LOG", "warn"),
            ("AUTH_START_LIMIT", "1000000"),
            // Every load client is 127.0.0.1.
            ("AUTH_CLIENT_START_LIMIT", "1000000"),
        ],
    )
    .await?;
    let seeded = seed::open_campaign_with(
        &stack.scheduling_url,
        &stack.booking_url,
        &stack.operator,
        20,
        per_slot,
    )
    .await?;
    let gateway = stack.gateway_url.clone();
    // Everyone's phone is registered with the stand-in carriers' agency.
    for index in 0..people {
        let (rrn, phone) = person(index);
        stack
            .agency
            .directory
            .register(&platform::carrier::Subscriber {
                name: "홍길동".to_owned(),
                rrn,
                phone,
                carrier: "kt".to_owned(),
            })
            .map_err(|error| anyhow::anyhow!("cannot register person {index}: {error}"))?;
    }

    // Verification: start for everyone, read the codes from the SMS outbox, complete.
    let cpu_start = cpu_seconds(&stack);
    let started = Instant::now();
    let starts = futures::stream::iter(0..people)
        .map(|index| {
            let gateway = gateway.clone();
            async move {
                let (rrn, phone) = person(index);
                let api = Api::new(&gateway, &format!("load-{index}"));
                let reply = api
                    .post(
                        "/v1/auth/verifications",
                        &json!({"provider": "phone", "name": "홍길동", "rrn": rrn, "phone": phone, "carrier": "kt"}),
                    )
                    .await?;
                anyhow::ensure!(reply.status == 201, "start {index}: {reply:?}");
                Ok((
                    index,
                    reply.body["verification_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ))
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<anyhow::Result<(usize, String)>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    let otp = stack.otp();
    let codes: HashMap<String, String> = otp.all_codes().await?;
    let tokens = futures::stream::iter(starts)
        .map(|(index, verification_id)| {
            let gateway = gateway.clone();
            let code = codes
                .get(&person(index).1.replace('-', ""))
                .cloned()
                .unwrap_or_default();
            async move {
                let api = Api::new(&gateway, &format!("load-{index}"));
                let reply = api
                    .post(
                        &format!("/v1/auth/verifications/{verification_id}/complete"),
                        &json!({"otp": code}),
                    )
                    .await?;
                anyhow::ensure!(reply.status == 200, "complete {index}: {reply:?}");
                Ok((
                    index,
                    reply.body["access_token"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ))
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<anyhow::Result<(usize, String)>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    let verify_secs = started.elapsed().as_secs_f64();
    let cpu_verified = cpu_seconds(&stack);

    // Booking: one slot each, round robin over the slots.
    let started = Instant::now();
    let results = futures::stream::iter(tokens)
        .map(|(index, token)| {
            let gateway = gateway.clone();
            let slot = seeded.slot_ids[index % seeded.slot_ids.len()].clone();
            async move {
                let api = Api::new(&gateway, &format!("load-{index}")).with_token(&token);
                timed(api.post("/v1/bookings", &json!({"slot_id": slot}))).await
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    let booking_secs = started.elapsed().as_secs_f64();
    let cpu_end = cpu_seconds(&stack);
    let mut latencies = Vec::new();
    let mut failures: HashMap<String, usize> = HashMap::new();
    for (millis, reply) in results {
        latencies.push(millis);
        match reply {
            Ok(reply) if reply.status == 201 => {}
            Ok(reply) => {
                *failures
                    .entry(reply.problem().unwrap_or_else(|| reply.status.to_string()))
                    .or_default() += 1
            }
            Err(err) => *failures.entry(err.to_string()).or_default() += 1,
        }
    }
    let booked = people - failures.values().sum::<usize>();

    // The database agrees: one confirmed booking per person, no slot over capacity.
    let (client, connection) =
        tokio_postgres::connect(&stack.database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let confirmed: i64 = client
        .query_one(
            "SELECT count(*) FROM bookings WHERE status = 'confirmed'",
            &[],
        )
        .await?
        .get(0);
    let overbooked: i64 = client
        .query_one("SELECT count(*) FROM slots WHERE booked > capacity", &[])
        .await?
        .get(0);
    let mismatched: i64 = client
        .query_one(
            "SELECT count(*) FROM slots s WHERE s.booked <> (SELECT count(*) FROM bookings b WHERE b.slot_id = s.id AND b.status = 'confirmed')",
            &[],
        )
        .await?
        .get(0);
    let cpu = cpu_report(&cpu_start, &cpu_verified, &cpu_end, people);
    let calls = calls_report(&stack, people).await;
    drop(stack);

    // The same bookings straight against PostgreSQL through booking-svc's store.
    let baseline_url = platform::pg::create_test_database("load_baseline").await?;
    let store = booking_svc::PgBookingStore::connect(
        &baseline_url,
        concurrency.min(64),
        Duration::from_secs(30),
    )
    .await?;
    let center = store
        .upsert_center(Center {
            id: uuid::Uuid::new_v4(),
            name: "baseline".into(),
            region: "서울".into(),
            address: String::new(),
        })
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let mut slot_ids = Vec::new();
    let date = Utc::now().date_naive() + Days::new(5);
    for hour in 0..20u32 {
        let starts_at =
            Utc::now() + chrono::Duration::days(5) + chrono::Duration::minutes(i64::from(hour));
        let slot = store
            .upsert_slot(SlotDraft {
                id: uuid::Uuid::new_v4(),
                campaign_id: seed::CAMPAIGN_ID.into(),
                center_id: center.id,
                date,
                starts_at,
                ends_at: starts_at + chrono::Duration::hours(1),
                vaccine: "Pfizer".into(),
                capacity: per_slot,
            })
            .await
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        slot_ids.push(slot.id);
    }
    let started = Instant::now();
    let baseline = futures::stream::iter(0..people)
        .map(|index| {
            let store = &store;
            let slot_id = slot_ids[index % slot_ids.len()];
            async move {
                store
                    .create_booking(NewBooking {
                        id: uuid::Uuid::new_v4(),
                        person_key: format!("baseline-{index}"),
                        campaign_id: seed::CAMPAIGN_ID.into(),
                        slot_id,
                        idempotency_key: None,
                        created_at: Utc::now(),
                        cancellation_closes_days_before: 2,
                        released_share: booking_svc::domain::ReleasedShare::FULL,
                        proxy: None,
                        agent: None,
                    })
                    .await
                    .is_ok()
            }
        })
        .buffer_unordered(concurrency)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    let baseline_secs = started.elapsed().as_secs_f64();

    let e2e_rate = booked as f64 / booking_secs;
    let raw_rate = baseline as f64 / baseline_secs;
    println!(
        "verification (start + complete through the gateway): {people} in {verify_secs:.2} s = {:.0} people/s",
        people as f64 / verify_secs
    );
    println!(
        "end-to-end bookings: {booked} of {people} in {booking_secs:.2} s = {e2e_rate:.0} bookings/s ({:.2} million/hour); {}",
        e2e_rate * 3600.0 / 1e6,
        Latencies(latencies).summary()
    );
    println!(
        "raw PostgreSQL booking transactions: {baseline} in {baseline_secs:.2} s = {raw_rate:.0} bookings/s"
    );
    println!("ratio end-to-end / raw: {:.2}", e2e_rate / raw_rate);
    println!(
        "database check: {confirmed} confirmed bookings, {overbooked} slots over capacity, {mismatched} slots whose count disagrees"
    );
    println!("CPU seconds per process (user + system, /proc/<pid>/stat):\n{cpu}");
    println!("requests answered per journey (seeding included): {calls}");
    if !failures.is_empty() {
        println!("failed bookings by problem: {failures:?}");
    }
    anyhow::ensure!(
        overbooked == 0 && mismatched == 0,
        "capacity invariant broken"
    );
    anyhow::ensure!(
        usize::try_from(confirmed)? == booked,
        "confirmed bookings differ from successful answers"
    );
    Ok(())
}
