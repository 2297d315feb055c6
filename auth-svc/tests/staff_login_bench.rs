//! What a staff login costs (docs/benchmarks.md): `StaffLogin::login` in process on the
//! PostgreSQL stores (account lookup, argon2id verification, TOTP check, the success recorded,
//! the agent token signed, the `staff.login` entry appended to auth-svc's hash-chained trail),
//! M logins with a few in flight, one account per worker; beside it one argon2id verification
//! alone (one at a time, in turn with single logins, and at the same concurrency), the TOTP
//! check alone and the audit append alone, so the login's cost reads as a multiple of the
//! password hash. Ignored by default; run with
//! `cargo nextest run --release -p auth-svc --test staff_login_bench --run-ignored only --no-capture`
//! (`STAFF_LOGIN_BENCH_LOGINS` / `STAFF_LOGIN_BENCH_CONCURRENCY` change the size, bounded).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_svc::accounts::store::PgAccountStore;
use auth_svc::accounts::{StaffLogin, create_account, credentials};
use chrono::{DateTime, Utc};
use platform::audit::{AUTH_TRAIL, AuditLog, AuditRecord, PgAuditLog};
use platform::clock::{SettableClock, SharedClock};
use platform::grants::{GrantIssuer, SigningKeys};
use platform::staff::StaffRole;

const PASSWORD: &str = "a long staff password";
const MAX_LOGINS: usize = 1_000;
const MAX_CONCURRENCY: usize = 16;

fn setting(name: &str, default: usize, max: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(default)
        .clamp(1, max)
}

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
}

/// One timed phase: wall time and each operation's latency.
struct Phase {
    wall: Duration,
    latencies: Vec<Duration>,
}

impl Phase {
    fn empty() -> Self {
        Self {
            wall: Duration::ZERO,
            latencies: Vec::new(),
        }
    }

    fn add(&mut self, other: Phase) {
        self.wall += other.wall;
        self.latencies.extend(other.latencies);
    }

    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }

    fn mean_ms(&self) -> f64 {
        let total: Duration = self.latencies.iter().sum();
        total.as_secs_f64() * 1000.0 / self.latencies.len() as f64
    }

    fn line(&self, label: &str) -> String {
        format!(
            "{label}: {} in {:.2} s, {:.1}/s, mean {:.2} ms",
            self.latencies.len(),
            self.wall.as_secs_f64(),
            self.per_second(),
            self.mean_ms()
        )
    }
}

/// `total` operations split over `workers` tasks; worker `w` runs `op(w)` for each of its share.
async fn run<F, Fut>(total: usize, workers: usize, op: F) -> Phase
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let share = total / workers + usize::from(worker < total % workers);
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(share);
            for _ in 0..share {
                let one = Instant::now();
                op(worker).await;
                latencies.push(one.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    Phase {
        wall: started.elapsed(),
        latencies,
    }
}

/// An account of the benchmark: its login name, TOTP secret and code at [`at`], password hash.
#[derive(Clone)]
struct Agent {
    username: String,
    totp_secret: String,
    code: String,
    hash: String,
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: run it on purpose"]
async fn staff_login_cost() {
    let logins = setting("STAFF_LOGIN_BENCH_LOGINS", 200, MAX_LOGINS);
    let concurrency = setting("STAFF_LOGIN_BENCH_CONCURRENCY", 4, MAX_CONCURRENCY);
    let url = platform::pg::create_test_database("auth_staff_login_bench")
        .await
        .unwrap();
    // As auth-svc opens its staff stores: one pool of 4 for the accounts and the trail.
    let pool = platform::pg::pool(&url, 4).unwrap();
    let store = Arc::new(PgAccountStore::migrate(&url, pool.clone()).await.unwrap());
    let audit = Arc::new(PgAuditLog::migrate(&url, pool, AUTH_TRAIL).await.unwrap());
    let clock: SharedClock = Arc::new(SettableClock::starting_at(at()));
    let unix = u64::try_from(at().timestamp()).unwrap();
    let mut agents = Vec::new();
    for n in 0..concurrency {
        let username = format!("agent.bench{n}");
        let created = create_account(
            store.as_ref(),
            &username,
            "national-call-center",
            StaffRole::Agent,
            PASSWORD.to_owned(),
            at(),
        )
        .await
        .unwrap();
        agents.push(Agent {
            code: credentials::totp_code(&created.totp_secret, &username, unix).unwrap(),
            hash: created.account.password_hash,
            totp_secret: created.totp_secret,
            username,
        });
    }
    let login = Arc::new(StaffLogin::new(
        store,
        audit.clone(),
        GrantIssuer::new(Arc::new(SigningKeys::generate().unwrap())),
        clock.clone(),
    ));
    let agents = Arc::new(agents);

    let log_in = {
        let (login, agents) = (login.clone(), agents.clone());
        move |worker: usize| {
            let (login, agent) = (login.clone(), agents[worker].clone());
            async move {
                let logged_in = login
                    .login(&agent.username, PASSWORD.to_owned(), &agent.code)
                    .await
                    .unwrap();
                assert_eq!(logged_in.account.username, agent.username);
            }
        }
    };
    let verify = {
        let agents = agents.clone();
        move |worker: usize| {
            let hash = agents[worker].hash.clone();
            async move {
                assert!(
                    credentials::verify_password(PASSWORD.to_owned(), hash)
                        .await
                        .unwrap()
                );
            }
        }
    };

    // Warm up the pool, the statements and the blocking threads.
    run(concurrency, concurrency, log_in.clone()).await;
    // One at a time, a verification and a login in turn, so noise falls on both alike.
    let (mut one_verify, mut one_login) = (Phase::empty(), Phase::empty());
    for _ in 0..logins.min(50) {
        one_verify.add(run(1, 1, verify.clone()).await);
        one_login.add(run(1, 1, log_in.clone()).await);
    }
    let verifies = run(logins, concurrency, verify).await;
    let logged_in = run(logins, concurrency, log_in).await;
    let appends = {
        let audit = audit.clone();
        run(logins, concurrency, move |worker| {
            let (audit, clock) = (audit.clone(), clock.clone());
            async move {
                let record = AuditRecord {
                    actor: format!("bench-account-{worker}"),
                    organisation: "national-call-center".to_owned(),
                    role: "agent".to_owned(),
                    action: "staff.login".to_owned(),
                    person_key: None,
                    outcome: "ok".to_owned(),
                };
                audit.append(clock.now(), record).await.unwrap();
            }
        })
        .await
    };
    let totp_rounds: u32 = 1_000;
    let started = Instant::now();
    for _ in 0..totp_rounds {
        assert!(credentials::check_totp(
            &agents[0].totp_secret,
            &agents[0].username,
            &agents[0].code,
            unix
        ));
    }
    let totp_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(totp_rounds);

    println!("staff login bench: {logins} logins, {concurrency} in flight, PostgreSQL stores");
    println!("  {}", logged_in.line("logins               "));
    println!("  {}", verifies.line("argon2id verifications"));
    println!("  {}", one_login.line("logins, 1 at once    "));
    println!("  {}", one_verify.line("argon2id, 1 at once  "));
    println!("  {}", appends.line("audit appends        "));
    println!("  TOTP check alone: {totp_us:.1} µs");
    println!(
        "  one login = {:.2}× one argon2id verification (1 at once: {:.2} ms / {:.2} ms); logins/s = {:.2}× argon2id verifications/s at {concurrency} in flight",
        one_login.mean_ms() / one_verify.mean_ms(),
        one_login.mean_ms(),
        one_verify.mean_ms(),
        logged_in.per_second() / verifies.per_second()
    );
}
