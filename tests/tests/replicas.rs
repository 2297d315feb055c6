//! Replicas that die under load: two booking-svc, two session-svc and two auth-svc processes
//! (one signing key, one PostgreSQL, one Redis) behind one gateway that is given each service's
//! replicas as a comma-separated list. A bounded load of people verifying and booking once (with
//! an `Idempotency-Key`, retrying only what the gateway says is retryable) runs on 127.0.0.1;
//! once a third of them are booked, one replica of each of the three services is killed with
//! SIGKILL. Every answer is then either a success or a clear retryable problem (503/429 with
//! `Retry-After`, problem+json), PostgreSQL holds exactly one confirmed booking per successful
//! person and nothing else, and the surviving replicas carry the rest of the load.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use vaxbook_tests::journey::OtpSource;
use vaxbook_tests::process::Replica;
use vaxbook_tests::{Api, ProcessStack, Replicas, Reply, seed};

/// People in the load; each verifies (start + complete) and books once.
const PEOPLE: usize = 240;
/// Requests in flight at once.
const CONCURRENCY: usize = 16;
/// The replicas die once this many people are booked.
const KILL_AFTER: usize = PEOPLE / 3;
/// Attempts a client makes of one request when the answer says "retry".
const ATTEMPTS: usize = 6;
/// The whole load, kill included, ends within this.
const LOAD_LIMIT: Duration = Duration::from_secs(240);
/// The replicas killed: the second of each of the three replicated services.
const KILLED: [&str; 3] = ["booking-svc-2", "session-svc-2", "auth-svc-2"];

/// Fictional person `index`: born 1980 onwards (inside the seeded 1972–2003 campaign), a serial
/// and a phone number of their own.
fn person(index: usize) -> (String, String) {
    let base = chrono::NaiveDate::from_ymd_opt(1980, 1, 1).unwrap_or_default();
    let birth = base + chrono::Days::new((index * 7 % 8000) as u64);
    let rrn = format!("{}-1{:06}", birth.format("%y%m%d"), 500_000 + index);
    let phone = format!("010-7{:03}-{:04}", index / 10_000, index % 10_000);
    (rrn, phone)
}

/// What one answer was, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// The status the step expects (201 start, 200 complete, 201 booking).
    Success,
    /// 503 or 429, problem+json, with a `Retry-After` in seconds: the client may retry.
    Retryable { status: u16, problem: String },
    /// Anything else: the test fails on it.
    Unclear(String),
}

fn classify(reply: &Reply, expected: u16) -> (Answer, Duration) {
    if reply.status == expected {
        return (Answer::Success, Duration::ZERO);
    }
    let retry_after = reply
        .header("retry-after")
        .and_then(|value| value.trim().parse::<u64>().ok());
    let problem_json = reply.content_type.starts_with("application/problem+json");
    match retry_after {
        Some(seconds) if (reply.status == 503 || reply.status == 429) && problem_json => (
            Answer::Retryable {
                status: reply.status,
                problem: reply.problem().unwrap_or_default(),
            },
            // A client waits as told; capped so the test stays short.
            Duration::from_secs(seconds).min(Duration::from_millis(500)),
        ),
        _ => (
            Answer::Unclear(format!(
                "{} {} {}",
                reply.status, reply.content_type, reply.body
            )),
            Duration::ZERO,
        ),
    }
}

/// One person's run: every answer they got, when they started, and the booking they got.
#[derive(Debug, Default)]
struct Run {
    index: usize,
    started: Option<Instant>,
    answers: Vec<(&'static str, Answer)>,
    booking_id: Option<String>,
    error: Option<String>,
}

impl Run {
    fn unclear(&self) -> Vec<String> {
        let mut found: Vec<String> = self
            .answers
            .iter()
            .filter_map(|(step, answer)| match answer {
                Answer::Unclear(what) => Some(format!("person {} {step}: {what}", self.index)),
                _ => None,
            })
            .collect();
        if let Some(error) = &self.error {
            found.push(format!("person {}: {error}", self.index));
        }
        found
    }

    fn retryable(&self) -> usize {
        self.answers
            .iter()
            .filter(|(_, answer)| matches!(answer, Answer::Retryable { .. }))
            .count()
    }
}

/// Sends `request` until it succeeds, answers something not retryable, or runs out of
/// attempts; records every answer. Returns the successful reply.
async fn with_retries<F, Fut>(
    run: &mut Run,
    step: &'static str,
    expected: u16,
    mut request: F,
) -> Option<Reply>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Reply>>,
{
    for _ in 0..ATTEMPTS {
        let reply = match request().await {
            Ok(reply) => reply,
            Err(error) => {
                run.error = Some(format!("{step}: the gateway did not answer: {error}"));
                return None;
            }
        };
        let (answer, wait) = classify(&reply, expected);
        run.answers.push((step, answer.clone()));
        match answer {
            Answer::Success => return Some(reply),
            Answer::Retryable { .. } => tokio::time::sleep(wait).await,
            Answer::Unclear(_) => return None,
        }
    }
    None
}

/// Verifies person `index` (start, read the code, complete) and books once with an
/// `Idempotency-Key`, repeating what the gateway says may be repeated.
async fn one_person(gateway: String, otp: Arc<OtpSource>, slot: String, index: usize) -> Run {
    let mut run = Run {
        index,
        started: Some(Instant::now()),
        ..Run::default()
    };
    let (rrn, phone) = person(index);
    let api = Api::new(&gateway, &format!("replicas-{index}"));
    let start_body =
        json!({"provider": "phone", "name": "홍길동", "rrn": rrn, "phone": phone, "carrier": "kt"});
    let mut token = None;
    // A completion that may have reached a dying auth-svc is not repeated: the person starts
    // a fresh verification instead, as the app does.
    for _ in 0..ATTEMPTS {
        let Some(started) = with_retries(&mut run, "start", 201, || {
            api.post("/v1/auth/verifications", &start_body)
        })
        .await
        else {
            return run;
        };
        let id = started.body["verification_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let code = match otp.latest(&phone).await {
            Ok(code) => code,
            Err(error) => {
                run.error = Some(format!("no code in the SMS outbox: {error}"));
                return run;
            }
        };
        let reply = match api
            .post(
                &format!("/v1/auth/verifications/{id}/complete"),
                &json!({"otp": code}),
            )
            .await
        {
            Ok(reply) => reply,
            Err(error) => {
                run.error = Some(format!("complete: the gateway did not answer: {error}"));
                return run;
            }
        };
        let (answer, wait) = classify(&reply, 200);
        run.answers.push(("complete", answer.clone()));
        match answer {
            Answer::Success => {
                token = reply.body["access_token"].as_str().map(str::to_owned);
                break;
            }
            Answer::Retryable { .. } => tokio::time::sleep(wait).await,
            Answer::Unclear(_) => return run,
        }
    }
    let Some(token) = token else {
        return run;
    };
    let api = api.with_token(&token);
    let key = format!("replicas-booking-{index}");
    let body = json!({"slot_id": slot});
    let headers = [("Idempotency-Key", key.as_str())];
    if let Some(booked) = with_retries(&mut run, "book", 201, || {
        api.send(reqwest::Method::POST, "/v1/bookings", Some(&body), &headers)
    })
    .await
    {
        run.booking_id = booked.body["id"].as_str().map(str::to_owned);
        if run.booking_id.is_none() {
            run.error = Some(format!("a booking without an id: {}", booked.body));
        }
    }
    run
}

/// The sum of a replica's `grpc_server_requests_total` series: how many calls it answered.
async fn served(replica: &Replica) -> anyhow::Result<f64> {
    let text = reqwest::Client::new()
        .get(format!("http://{}/metrics", replica.metrics_addr))
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|line| line.starts_with("grpc_server_requests_total{"))
        .filter_map(|line| line.rsplit(' ').next())
        .filter_map(|value| value.parse::<f64>().ok())
        .sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_replica_of_each_service_under_load_loses_and_doubles_nothing()
-> anyhow::Result<()> {
    let mut stack = ProcessStack::start_replicated(
        "replicas",
        &[
            ("RUST_LOG", "warn"),
            ("AUTH_START_LIMIT", "1000000"),
            // Every client here is 127.0.0.1.
            ("AUTH_CLIENT_START_LIMIT", "1000000"),
        ],
        Replicas {
            auth: 2,
            session: 2,
            scheduling: 1,
            booking: 2,
        },
    )
    .await?;
    assert!(
        stack.booking_url.contains(',') && stack.auth_url.contains(','),
        "the callers are given both replicas: {} / {}",
        stack.booking_url,
        stack.auth_url
    );
    let slots = 4;
    let per_slot = i32::try_from(PEOPLE / slots + 1)?;
    let seeded = seed::open_campaign_with(
        &stack.scheduling_url,
        &stack.booking_url,
        &stack.operator,
        i64::try_from(slots)?,
        per_slot,
    )
    .await?;
    for index in 0..PEOPLE {
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
    let otp = Arc::new(stack.otp());
    let victims: Vec<Replica> = stack
        .replicas
        .iter()
        .filter(|replica| KILLED.contains(&replica.name.as_str()))
        .cloned()
        .collect();
    let survivors: Vec<Replica> = stack
        .replicas
        .iter()
        .filter(|replica| {
            !KILLED.contains(&replica.name.as_str())
                && victims
                    .iter()
                    .any(|victim| victim.service == replica.service)
        })
        .cloned()
        .collect();
    assert_eq!((victims.len(), survivors.len()), (3, 3));

    // The load: PEOPLE people, CONCURRENCY at a time; the KILL_AFTER-th booking wakes the
    // killer below (a count, not a timer).
    let booked = Arc::new(AtomicUsize::new(0));
    let kill_now = Arc::new(tokio::sync::Notify::new());
    let load = {
        let gateway = stack.gateway_url.clone();
        let slot_ids = seeded.slot_ids.clone();
        let booked = booked.clone();
        let kill_now = kill_now.clone();
        tokio::spawn(async move {
            futures::stream::iter(0..PEOPLE)
                .map(|index| {
                    let run = one_person(
                        gateway.clone(),
                        otp.clone(),
                        slot_ids[index % slot_ids.len()].clone(),
                        index,
                    );
                    let booked = booked.clone();
                    let kill_now = kill_now.clone();
                    async move {
                        let run = run.await;
                        if run.booking_id.is_some()
                            && booked.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER
                        {
                            kill_now.notify_one();
                        }
                        run
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .collect::<Vec<Run>>()
                .await
        })
    };
    let mut load = Box::pin(tokio::time::timeout(LOAD_LIMIT, load));

    // Mid-load: SIGKILL one replica of each replicated service.
    let killed_at = tokio::select! {
        () = kill_now.notified() => Instant::now(),
        finished = &mut load => {
            let runs = finished??;
            let problems: Vec<String> = runs.iter().flat_map(Run::unclear).take(10).collect();
            anyhow::bail!(
                "the load ended before {KILL_AFTER} people were booked: {} booked; {problems:?}",
                runs.iter().filter(|run| run.booking_id.is_some()).count()
            );
        }
    };
    let mut before_kill = Vec::new();
    for replica in victims.iter().chain(&survivors) {
        before_kill.push(served(replica).await?);
    }
    for victim in &victims {
        stack
            .proc_mut(&victim.name)
            .ok_or_else(|| anyhow::anyhow!("no process {}", victim.name))?
            .kill()?;
    }
    let booked_at_kill = booked.load(Ordering::SeqCst);
    let runs = load
        .await
        .map_err(|_| anyhow::anyhow!("the load did not end within {LOAD_LIMIT:?}"))??;
    let load_secs = killed_at.elapsed().as_secs_f64();

    // Every answer was a success or a clear retryable problem.
    let unclear: Vec<String> = runs.iter().flat_map(Run::unclear).collect();
    assert!(
        unclear.is_empty(),
        "answers that were neither a success nor a retryable problem: {unclear:#?}"
    );
    let mut retryable: BTreeMap<String, usize> = BTreeMap::new();
    for run in &runs {
        for (step, answer) in &run.answers {
            if let Answer::Retryable { status, problem } = answer {
                *retryable
                    .entry(format!("{step} {status} {problem}"))
                    .or_default() += 1;
            }
        }
    }
    // The survivors carried everyone: every person ended booked (retrying where told), and
    // everyone who started after the kill got there.
    let successes: HashMap<usize, String> = runs
        .iter()
        .filter_map(|run| run.booking_id.clone().map(|id| (run.index, id)))
        .collect();
    let after_kill: Vec<&Run> = runs
        .iter()
        .filter(|run| run.started.is_some_and(|started| started > killed_at))
        .collect();
    assert!(
        !after_kill.is_empty(),
        "nobody started after the kill ({booked_at_kill} booked at the kill)"
    );
    assert!(
        after_kill.iter().all(|run| run.booking_id.is_some()),
        "people who started after the kill and were not booked: {:?}",
        after_kill
            .iter()
            .filter(|run| run.booking_id.is_none())
            .map(|run| (run.index, &run.answers))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        successes.len(),
        PEOPLE,
        "everyone is booked in the end; retryable answers seen: {retryable:?}"
    );
    let ids: HashSet<&String> = successes.values().collect();
    assert_eq!(ids.len(), successes.len(), "two people share a booking id");

    // PostgreSQL agrees: exactly the bookings answered, one per person, counts consistent.
    let (client, connection) =
        tokio_postgres::connect(&stack.database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT id::text, person_key FROM bookings WHERE status = 'confirmed'",
            &[],
        )
        .await?;
    let stored: HashSet<String> = rows.iter().map(|row| row.get::<_, String>(0)).collect();
    let people: HashSet<String> = rows.iter().map(|row| row.get::<_, String>(1)).collect();
    assert_eq!(
        rows.len(),
        successes.len(),
        "confirmed bookings = successes"
    );
    assert_eq!(people.len(), rows.len(), "one confirmed booking per person");
    let answered: HashSet<String> = successes.values().cloned().collect();
    assert_eq!(
        stored, answered,
        "the stored bookings are the answered ones"
    );
    let all_rows: i64 = client
        .query_one("SELECT count(*) FROM bookings", &[])
        .await?
        .get(0);
    assert_eq!(
        usize::try_from(all_rows)?,
        successes.len(),
        "no cancelled or stray booking rows"
    );
    let mismatched: i64 = client
        .query_one(
            "SELECT count(*) FROM slots s WHERE s.booked > s.capacity OR s.booked <> \
             (SELECT count(*) FROM bookings b WHERE b.slot_id = s.id AND b.status = 'confirmed')",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(mismatched, 0, "slot counts agree with the bookings");

    // The load reached both replicas before the kill, and the survivors answered after it.
    for (replica, before) in victims.iter().zip(&before_kill) {
        assert!(
            *before > 0.0,
            "{} answered nothing before it was killed: the load was not spread",
            replica.name
        );
    }
    for (replica, before) in survivors.iter().zip(&before_kill[victims.len()..]) {
        let after = served(replica).await?;
        assert!(
            after > *before,
            "{} answered nothing after the kill ({before} → {after})",
            replica.name
        );
    }
    for victim in &victims {
        assert!(
            !stack
                .proc_mut(&victim.name)
                .is_some_and(|proc| proc.running()),
            "{} still runs",
            victim.name
        );
    }
    println!(
        "{PEOPLE} people, {booked_at_kill} booked at the kill, {} started after it; \
         {:.1} s from the kill to the end; retryable answers: {retryable:?}",
        after_kill.len(),
        load_secs,
    );
    let retries: usize = runs.iter().map(Run::retryable).sum();
    println!("{retries} retryable answers in all");
    drop(stack);
    Ok(())
}
