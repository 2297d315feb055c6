//! `vaxbook-load --verifications N`: verifications per second per identity provider through
//! the gateway of the multi-process stack, and nothing else (no booking). auth-svc runs with
//! its production adapters only: the phone provider checks the carrier through its HTTP
//! adapter against the stand-in agency, the simple-certificate providers (kakao, naver, pass)
//! trust JWKS files written here from stand-in provider keys (`AUTH_IDP_*_JWKS_FILE`), and
//! financial certificates chain to a stand-in CA's root (`AUTH_FINANCIAL_CERT_ROOTS`). Each
//! provider verifies N distinct people on N distinct devices: every start, then the answers are
//! made outside the clock (codes read from the SMS outbox, assertions and certificate
//! signatures made by the stand-ins in this process), then every completion. The rate is N over
//! the time spent in the two timed phases; the latency of one verification is its start plus
//! its completion. The providers take turns (five turns of a fifth of their people each), and
//! raw Redis round trips at the same concurrency, measured before every turn and after the
//! last, give a stable yardstick on a noisy machine, as does the ratio to the phone provider.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use vaxbook_tests::{Api, ProcessStack};

use super::{person, timed};

/// Every provider the mode measures, in the order `all` runs them (phone first: the others
/// are compared with it).
pub const PROVIDERS: &[&str] = &["phone", "kakao", "naver", "pass", "financial_cert"];

/// How many turns the providers take (each verifies a fifth of its people per turn).
const ROUNDS: usize = 5;

const SIMPLE_CERT: &[&str] = &["kakao", "naver", "pass"];

/// The name every load person carries.
const NAME: &str = "홍길동";

/// One provider's figures.
struct Measured {
    provider: &'static str,
    count: usize,
    start_secs: f64,
    complete_secs: f64,
    /// Start + completion of each verification, milliseconds.
    latencies: Vec<f64>,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.count as f64 / (self.start_secs + self.complete_secs).max(f64::EPSILON)
    }

    fn percentile(&self, q: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort_by(f64::total_cmp);
        let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted.get(index).copied().unwrap_or(0.0)
    }
}

/// What a started verification needs answered.
struct Started {
    index: usize,
    verification_id: String,
    nonce: String,
    millis: f64,
}

/// The stand-ins whose keys auth-svc is configured to trust.
struct StandIns {
    idp: platform::dev::DevIdentityProviders,
    ca: platform::dev_ca::DevFinancialCa,
    dir: std::path::PathBuf,
}

impl StandIns {
    /// Makes the stand-in keys and writes what auth-svc reads at start.
    fn write() -> anyhow::Result<(Self, Vec<(String, String)>)> {
        let dir = std::env::temp_dir().join(format!(
            "vaxbook-load-verifications-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        let idp = platform::dev::DevIdentityProviders::generate();
        let ca = platform::dev_ca::DevFinancialCa::new();
        let mut env = Vec::new();
        for provider in SIMPLE_CERT {
            let jwks = idp
                .jwks(provider)
                .ok_or_else(|| anyhow::anyhow!("no stand-in key for {provider}"))?;
            let path = dir.join(format!("{provider}.jwks.json"));
            std::fs::write(&path, serde_json::to_vec(&jwks)?)?;
            env.push((
                format!("AUTH_IDP_{}_JWKS_FILE", provider.to_ascii_uppercase()),
                path.display().to_string(),
            ));
        }
        let root = dir.join("financial-root.pem");
        std::fs::write(&root, ca.root_pem()?)?;
        env.push((
            "AUTH_FINANCIAL_CERT_ROOTS".to_owned(),
            root.display().to_string(),
        ));
        Ok((Self { idp, ca, dir }, env))
    }
}

impl Drop for StandIns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Decodes unpadded base64url (a person key); `None` on any other character.
fn base64url(text: &str) -> Option<Vec<u8>> {
    let value = |byte: u8| -> Option<u32> {
        Some(match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in text.bytes() {
        buffer = (buffer << 6) | value(byte)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The certificate identifier auth-svc expects for each RRN: its person key (asked of
/// auth-svc's operator `DerivePersonKeys` with the stack's operator key) as lower-case hex.
async fn subject_identifiers(
    stack: &ProcessStack,
    rrns: Vec<String>,
) -> anyhow::Result<HashMap<String, String>> {
    use proto::auth::v1::DerivePersonKeysRequest;
    use proto::auth::v1::person_key_service_client::PersonKeyServiceClient;
    let mut client = PersonKeyServiceClient::new(platform::grpc::channel(
        &stack.auth_url,
        Duration::from_secs(30),
    )?);
    let batches: Vec<DerivePersonKeysRequest> = rrns
        .chunks(5_000)
        .map(|chunk| DerivePersonKeysRequest {
            rrns: chunk.to_vec(),
        })
        .collect();
    let request = stack.operator.request(tokio_stream::iter(batches))?;
    let mut answers = client.derive_person_keys(request).await?.into_inner();
    let mut keys = Vec::with_capacity(rrns.len());
    while let Some(answer) = answers.next().await {
        keys.extend(answer?.person_keys);
    }
    anyhow::ensure!(keys.len() == rrns.len(), "auth-svc derived too few keys");
    rrns.into_iter()
        .zip(keys)
        .map(|(rrn, key)| {
            let bytes = base64url(&key)
                .ok_or_else(|| anyhow::anyhow!("auth-svc answered a malformed person key"))?;
            let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
            Ok((rrn, hex))
        })
        .collect()
}

/// `count` raw Redis round trips (SET of distinct keys under the stack's prefix, expiring) with
/// `concurrency` in flight on one multiplexed connection; round trips per second.
async fn redis_round_trips(
    stack: &ProcessStack,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let client = redis::Client::open(stack.redis_url.as_str())?;
    let connection = client.get_multiplexed_async_connection().await?;
    let started = Instant::now();
    let done = futures::stream::iter(0..count)
        .map(|index| {
            let mut connection = connection.clone();
            let key = format!("{}load:rt:{index}", stack.redis_prefix);
            async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("EX")
                    .arg(60)
                    .query_async::<()>(&mut connection)
                    .await
                    .is_ok()
            }
        })
        .buffer_unordered(concurrency)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    anyhow::ensure!(done == count, "{} Redis round trips failed", count - done);
    Ok(count as f64 / started.elapsed().as_secs_f64().max(f64::EPSILON))
}

/// Starts a verification for each person `first..first + count` with `provider`.
async fn start_all(
    gateway: &str,
    provider: &'static str,
    first: usize,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Started>> {
    futures::stream::iter(first..first + count)
        .map(|index| {
            let gateway = gateway.to_owned();
            async move {
                let (rrn, phone) = person(index);
                let api = Api::new(&gateway, &format!("verify-{provider}-{index}"));
                let body = if provider == "phone" {
                    json!({"provider": provider, "name": NAME, "rrn": rrn, "phone": phone, "carrier": "kt"})
                } else {
                    json!({"provider": provider, "name": NAME, "rrn": rrn})
                };
                let (millis, reply) = timed(api.post("/v1/auth/verifications", &body)).await;
                let reply = reply?;
                anyhow::ensure!(
                    reply.status == 201,
                    "{provider} start {index}: {} {:?}",
                    reply.status,
                    reply.problem()
                );
                let text = |field: &str| reply.body[field].as_str().unwrap_or_default().to_owned();
                Ok(Started {
                    index,
                    verification_id: text("verification_id"),
                    nonce: text("nonce"),
                    millis,
                })
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<anyhow::Result<Started>>>()
        .await
        .into_iter()
        .collect()
}

/// The completion body of each started verification, made outside the clock.
async fn answers(
    stack: &ProcessStack,
    stand_ins: &StandIns,
    provider: &'static str,
    started: &[Started],
) -> anyhow::Result<Vec<serde_json::Value>> {
    if provider == "phone" {
        let otp = stack.otp();
        let codes = otp.all_codes().await?;
        return started
            .iter()
            .map(|one| {
                let phone = person(one.index).1.replace('-', "");
                let code = codes
                    .get(&phone)
                    .ok_or_else(|| anyhow::anyhow!("no code sent for person {}", one.index))?;
                Ok(json!({"otp": code}))
            })
            .collect();
    }
    let now = chrono::Utc::now();
    started
        .iter()
        .map(|one| {
            let (rrn, phone) = person(one.index);
            if provider == "financial_cert" {
                let signed = stand_ins.ca.issue(NAME, &rrn, &one.nonce, now)?;
                Ok(json!({"certificate": signed.certificate, "signature": signed.signature}))
            } else {
                let assertion = stand_ins
                    .idp
                    .issue(provider, NAME, &rrn, &phone, &one.nonce, now)?;
                Ok(json!({"assertion": assertion}))
            }
        })
        .collect()
}

/// Completes each started verification with its answer; milliseconds by person index.
async fn complete_all(
    gateway: &str,
    provider: &'static str,
    started: &[Started],
    bodies: Vec<serde_json::Value>,
    concurrency: usize,
) -> anyhow::Result<HashMap<usize, f64>> {
    futures::stream::iter(started.iter().zip(bodies))
        .map(|(one, body)| {
            let gateway = gateway.to_owned();
            async move {
                let api = Api::new(&gateway, &format!("verify-{provider}-{}", one.index));
                let path = format!("/v1/auth/verifications/{}/complete", one.verification_id);
                let (millis, reply) = timed(api.post(&path, &body)).await;
                let reply = reply?;
                anyhow::ensure!(
                    reply.status == 200 && reply.body["access_token"].is_string(),
                    "{provider} complete {}: {} {:?}",
                    one.index,
                    reply.status,
                    reply.problem()
                );
                Ok((one.index, millis))
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<anyhow::Result<(usize, f64)>>>()
        .await
        .into_iter()
        .collect()
}

async fn measure(
    stack: &ProcessStack,
    stand_ins: &StandIns,
    provider: &'static str,
    first: usize,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Measured> {
    let clock = Instant::now();
    let started = start_all(&stack.gateway_url, provider, first, count, concurrency).await?;
    let start_secs = clock.elapsed().as_secs_f64();
    let bodies = answers(stack, stand_ins, provider, &started).await?;
    let clock = Instant::now();
    let completed =
        complete_all(&stack.gateway_url, provider, &started, bodies, concurrency).await?;
    let complete_secs = clock.elapsed().as_secs_f64();
    let latencies = started
        .iter()
        .map(|one| one.millis + completed.get(&one.index).copied().unwrap_or(0.0))
        .collect();
    Ok(Measured {
        provider,
        count,
        start_secs,
        complete_secs,
        latencies,
    })
}

/// Runs the mode: `count` verifications with each of `providers`, `concurrency` in flight.
pub async fn run(
    count: usize,
    providers: &[&'static str],
    concurrency: usize,
) -> anyhow::Result<()> {
    println!(
        "vaxbook-load verifications: {count} per provider ({}), {concurrency} requests in flight, 127.0.0.1 only",
        providers.join(", ")
    );
    let (stand_ins, stand_in_env) = StandIns::write()?;
    let mut env: Vec<(&str, &str)> = vec![
        ("RUST_LOG", "warn"),
        ("AUTH_START_LIMIT", "1000000"),
        // Every load client is 127.0.0.1.
        ("AUTH_CLIENT_START_LIMIT", "1000000"),
    ];
    env.extend(
        stand_in_env
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str())),
    );
    let stack = ProcessStack::start_with("load-verifications", &env).await?;

    // Provider k verifies the people k*count .. (k+1)*count: nobody verifies twice, so no
    // device lock (R3) and no per-person limit is shared between providers.
    let first_of = |provider: &str| {
        PROVIDERS
            .iter()
            .position(|one| *one == provider)
            .unwrap_or(0)
            * count
    };
    if providers.contains(&"phone") {
        let first = first_of("phone");
        for index in first..first + count {
            let (rrn, phone) = person(index);
            stack
                .agency
                .directory
                .register(&platform::carrier::Subscriber {
                    name: NAME.to_owned(),
                    rrn,
                    phone,
                    carrier: "kt".to_owned(),
                })
                .map_err(|error| anyhow::anyhow!("cannot register person {index}: {error}"))?;
        }
    }
    if providers.contains(&"financial_cert") {
        let first = first_of("financial_cert");
        let rrns = (first..first + count)
            .map(|index| person(index).0)
            .collect();
        let identifiers = Arc::new(subject_identifiers(&stack, rrns).await?);
        stand_ins
            .ca
            .set_subject_identifier(Arc::new(move |rrn: &str| identifiers.get(rrn).cloned()));
    }

    // The providers take turns, a fifth of their people at a time, with Redis round trips
    // measured in every turn: a burst of noise on the shared machine falls on all of them.
    let rounds = ROUNDS.min(count);
    let round_trips = (count * 4 / rounds).clamp(2_000, 20_000);
    let mut redis_rates = Vec::new();
    let mut results: Vec<Measured> = providers
        .iter()
        .map(|provider| Measured {
            provider,
            count: 0,
            start_secs: 0.0,
            complete_secs: 0.0,
            latencies: Vec::new(),
        })
        .collect();
    let mut done = 0;
    for round in 0..rounds {
        let size = count * (round + 1) / rounds - done;
        redis_rates.push(redis_round_trips(&stack, round_trips, concurrency).await?);
        for total in &mut results {
            let turn = measure(
                &stack,
                &stand_ins,
                total.provider,
                first_of(total.provider) + done,
                size,
                concurrency,
            )
            .await?;
            total.count += turn.count;
            total.start_secs += turn.start_secs;
            total.complete_secs += turn.complete_secs;
            total.latencies.extend(turn.latencies);
        }
        done += size;
    }
    redis_rates.push(redis_round_trips(&stack, round_trips, concurrency).await?);
    for measured in &results {
        println!(
            "  {:<15} {:>6.0} verifications/s (start {:.2} s + complete {:.2} s), p50 {:.1} ms, p95 {:.1} ms",
            measured.provider,
            measured.rate(),
            measured.start_secs,
            measured.complete_secs,
            measured.percentile(0.5),
            measured.percentile(0.95)
        );
    }
    drop(stack);

    let redis = redis_rates.iter().sum::<f64>() / redis_rates.len() as f64;
    let spread = redis_rates
        .iter()
        .map(|rate| format!("{rate:.0}"))
        .collect::<Vec<_>>()
        .join(", ");
    let phone = results
        .iter()
        .find(|measured| measured.provider == "phone")
        .map(Measured::rate);
    println!(
        "raw Redis round trips (SET, {round_trips} per measurement, same concurrency): mean {redis:.0}/s ({spread})"
    );
    println!(
        "| provider | verifications | in flight | verifications/s | p50 / p95 latency | / phone | per 1000 Redis round trips/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for measured in &results {
        let to_phone = phone
            .map(|phone| format!("{:.2}", measured.rate() / phone))
            .unwrap_or_else(|| "-".to_owned());
        println!(
            "| {} | {} | {concurrency} | {:.0} | {:.1} / {:.1} ms | {to_phone} | {:.1} |",
            measured.provider,
            measured.count,
            measured.rate(),
            measured.percentile(0.5),
            measured.percentile(0.95),
            measured.rate() / redis * 1000.0
        );
    }
    Ok(())
}
