//! What the call-center channel costs per booking (docs/benchmarks.md): in one run against the
//! real `serve` on PostgreSQL, N bookings through the citizens' `BookingService` (a citizen
//! token each, the session checked at the fake session-svc; with the waiting room off, and
//! again on with an admission grant each) and N through `StaffBookingService` (an agent token
//! per agent, a caller grant per caller, an entry in booking-svc's PostgreSQL audit trail per
//! call), with the same number in flight; then N appends straight to that trail at the same
//! concurrency, the audit entry's own cost. Every token and grant is minted before its phase
//! is timed. Ignored by default; run with
//! `cargo nextest run --release -p booking-svc --test call_center_bench --run-ignored only --no-capture`
//! (`CALL_CENTER_BENCH_BOOKINGS` / `CALL_CENTER_BENCH_CONCURRENCY` change the size, bounded).

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use booking_svc::StoreConfig;
use platform::audit::{AuditLog as _, AuditRecord, BOOKING_TRAIL, PgAuditLog};
use platform::clock::Clock as _;
use platform::problem::ProblemKind;
use platform::staff::{CALLER_GRANT_TTL, CallerGrant, StaffRole};
use proto::booking::v1 as pb;
use proto::booking::v1::staff_booking_service_client::StaffBookingServiceClient;
use support::{Harness, authed, book, change, problem};
use tonic::Request;
use tonic::transport::Channel;

const CAMPAIGN: &str = "r18-49";
/// Largest N accepted from the environment, so a run stays bounded.
const MAX_BOOKINGS: usize = 20_000;
const MAX_CONCURRENCY: usize = 64;

fn setting(name: &str, default: usize, max: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(default)
        .clamp(1, max)
}

/// One timed phase: wall time and each call's latency.
struct Phase {
    wall: Duration,
    latencies: Vec<Duration>,
}

impl Phase {
    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }

    fn mean_ms(&self) -> f64 {
        let total: Duration = self.latencies.iter().sum();
        total.as_secs_f64() * 1000.0 / self.latencies.len() as f64
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[index].as_secs_f64() * 1000.0
    }

    /// Wall time per call, in ms (what one call costs the server at this concurrency).
    fn wall_per_call_ms(&self) -> f64 {
        self.wall.as_secs_f64() * 1000.0 / self.latencies.len() as f64
    }

    fn line(&self, label: &str) -> String {
        format!(
            "{label}: {:.0}/s, mean {:.3} ms, p50 {:.3} ms, p99 {:.3} ms",
            self.per_second(),
            self.mean_ms(),
            self.percentile_ms(0.5),
            self.percentile_ms(0.99)
        )
    }
}

/// Runs `calls` with `concurrency` of them in flight; every call must succeed.
async fn run<T, F, Fut>(calls: Vec<T>, concurrency: usize, call: F) -> Phase
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let count = calls.len();
    let calls: Arc<Vec<Mutex<Option<T>>>> =
        Arc::new(calls.into_iter().map(|c| Mutex::new(Some(c))).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (calls, next, call) = (calls.clone(), next.clone(), call.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= calls.len() {
                    break latencies;
                }
                let item = calls[index].lock().unwrap().take().unwrap();
                let one = Instant::now();
                call(item).await;
                latencies.push(one.elapsed());
            }
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let wall = started.elapsed();
    assert_eq!(latencies.len(), count);
    Phase { wall, latencies }
}

struct Bench {
    harness: Harness,
    staff: StaffBookingServiceClient<Channel>,
    audit: PgAuditLog,
    concurrency: usize,
}

impl Bench {
    /// Citizen booking requests into a new slot, one person each, token minted now.
    async fn citizen_requests(
        &self,
        label: &str,
        count: usize,
        admission: bool,
    ) -> Vec<Request<pb::CreateBookingRequest>> {
        let slot = self
            .harness
            .seed_slot(CAMPAIGN, 10, count as i32 + 10)
            .await;
        (0..count)
            .map(|n| {
                let person = format!("{label}-{n}");
                let token = self.harness.token(&person);
                let mut request = authed(book(&slot.id, &format!("{label}-k-{n}")), &token);
                if admission {
                    let grant = self.harness.admission_grant(&person, "*", 3, 600);
                    request
                        .metadata_mut()
                        .insert("x-admission", grant.parse().unwrap());
                }
                request
            })
            .collect()
    }

    /// Staff booking requests into a new slot: one agent per worker (its token minted once),
    /// one caller each, the caller grant issued to the agent that books.
    async fn staff_requests(
        &self,
        label: &str,
        count: usize,
    ) -> Vec<Request<pb::CreateBookingRequest>> {
        let slot = self
            .harness
            .seed_slot(CAMPAIGN, 11, count as i32 + 10)
            .await;
        let agents: Vec<(String, String)> = (0..self.concurrency)
            .map(|a| {
                let agent = format!("agent-{label}-{a}");
                let token = self.harness.staff_token(StaffRole::Agent, &agent);
                (agent, token)
            })
            .collect();
        let now = self.harness.clock.now();
        (0..count)
            .map(|n| {
                let (agent, token) = &agents[n % agents.len()];
                let grant = self
                    .harness
                    .proxy_grants
                    .issue(
                        &CallerGrant {
                            agent: agent.clone(),
                            for_key: format!("caller-{label}-{n}"),
                            for_bd: "1950-05-01".to_owned(),
                        },
                        now,
                        CALLER_GRANT_TTL,
                    )
                    .unwrap()
                    .token;
                let mut request = authed(book(&slot.id, &format!("{label}-k-{n}")), token);
                request
                    .metadata_mut()
                    .insert("x-caller-grant", grant.parse().unwrap());
                request
            })
            .collect()
    }

    async fn citizens(&self, label: &str, count: usize, admission: bool) -> Phase {
        let requests = self.citizen_requests(label, count, admission).await;
        let client = self.harness.booking.clone();
        run(requests, self.concurrency, move |request| {
            let mut client = client.clone();
            async move {
                let booked = client.create_booking(request).await.unwrap().into_inner();
                assert_eq!(booked.channel, "web");
            }
        })
        .await
    }

    async fn agents(&self, label: &str, count: usize) -> Phase {
        let requests = self.staff_requests(label, count).await;
        let client = self.staff.clone();
        run(requests, self.concurrency, move |request| {
            let mut client = client.clone();
            async move {
                let booked = client.create_booking(request).await.unwrap().into_inner();
                assert_eq!(booked.channel, "call_center");
            }
        })
        .await
    }

    /// `count` entries appended straight to booking-svc's trail, as a staff booking writes them.
    async fn appends(&self, count: usize) -> Phase {
        let audit = self.audit.clone();
        let clock = self.harness.clock.clone();
        let records: Vec<AuditRecord> = (0..count)
            .map(|n| AuditRecord {
                actor: format!("agent-append-{}", n % self.concurrency),
                organisation: "national-call-center".to_owned(),
                role: "agent".to_owned(),
                action: "staff.book".to_owned(),
                person_key: Some(format!("caller-append-{n}")),
                outcome: "ok".to_owned(),
            })
            .collect();
        run(records, self.concurrency, move |record| {
            let (audit, clock) = (audit.clone(), clock.clone());
            async move {
                audit.append(clock.now(), record).await.unwrap();
            }
        })
        .await
    }

    /// Polls until booking-svc's cached view of the waiting room is `on`: a side-effect-free
    /// change, without a grant, of a booking that does not exist into a real slot answers
    /// `admission-required` while the room is on, `not-found` while it is off.
    async fn room_seen(&self, on: bool) {
        let token = self.harness.token("probe");
        let slot = self.harness.seed_slot(CAMPAIGN, 12, 1).await;
        let unknown = uuid::Uuid::new_v4().to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, answer) = problem(
                self.harness
                    .booking
                    .clone()
                    .change_booking(authed(change(&unknown, &slot.id), &token))
                    .await,
            );
            let required = match answer.kind {
                ProblemKind::AdmissionRequired => true,
                ProblemKind::NotFound => false,
                other => panic!("the room probe was answered {other:?}"),
            };
            if required == on {
                return;
            }
            assert!(Instant::now() < deadline, "the room never showed {on}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
#[ignore = "a benchmark: run it on purpose"]
async fn call_center_booking_cost() {
    let bookings = setting("CALL_CENTER_BENCH_BOOKINGS", 2_000, MAX_BOOKINGS);
    let concurrency = setting("CALL_CENTER_BENCH_CONCURRENCY", 8, MAX_CONCURRENCY);
    let url = platform::pg::create_test_database("booking_call_center_bench")
        .await
        .unwrap();
    let harness = Harness::start_with(|config| {
        config.dev_mode = false;
        config.store = StoreConfig::Postgres {
            url: platform::config::ConnectionUrl::new(url.clone()),
            max_connections: 16,
        };
    })
    .await;
    let channel = Channel::from_shared(format!("http://{}", harness.addr))
        .unwrap()
        .connect_lazy();
    let bench = Bench {
        staff: StaffBookingServiceClient::new(channel),
        audit: PgAuditLog::new(platform::pg::pool(&url, 2).unwrap(), BOOKING_TRAIL),
        harness,
        concurrency,
    };

    // Warm up connections, pools and key caches on both channels.
    let warm = (bookings / 10).max(50);
    bench.citizens("warm-web", warm, false).await;
    bench.agents("warm-cc", warm).await;

    let citizens = bench.citizens("web", bookings, false).await;
    let agents = bench.agents("cc", bookings).await;
    let appends = bench.appends(bookings).await;
    bench
        .harness
        .sessions
        .waiting_room_on
        .store(true, Ordering::SeqCst);
    bench.room_seen(true).await;
    bench.citizens("warm-admitted", warm, true).await;
    let admitted = bench.citizens("admitted", bookings, true).await;

    println!(
        "call-center bench: {bookings} bookings per channel, {concurrency} in flight, PostgreSQL"
    );
    println!("  {}", citizens.line("citizens, room off"));
    println!("  {}", admitted.line("citizens, room on "));
    println!("  {}", agents.line("call center       "));
    println!("  {}", appends.line("audit append alone"));
    println!(
        "  call center / citizens (room off): {:.2} of the bookings/s; (room on): {:.2}",
        agents.per_second() / citizens.per_second(),
        agents.per_second() / admitted.per_second()
    );
    println!(
        "  call center minus citizens (room off), per booking: {:.3} ms wall, {:.3} ms mean latency; the append alone {:.3} ms wall, {:.3} ms mean latency",
        agents.wall_per_call_ms() - citizens.wall_per_call_ms(),
        agents.mean_ms() - citizens.mean_ms(),
        appends.wall_per_call_ms(),
        appends.mean_ms()
    );
    bench.harness.shutdown.cancel();
}
