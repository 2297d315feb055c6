//! Eligibility checks per second on one core, from memory: the shipped 2021 campaign file with
//! a 100,000-entry exclusion list loaded, questions spread over birth dates (in and out of the
//! age groups) and instants across August 2021, each answered as the gRPC adapter answers
//! (decision plus the wire response). Run with
//! `cargo run --release -p scheduling-svc --example eligibility_bench [-- CHECKS]`; the result
//! is recorded in docs/benchmarks.md.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use platform::ids::PersonKey;
use scheduling_svc::domain::CampaignId;
use scheduling_svc::eligibility::{Applicant, Approach};
use scheduling_svc::wire::eligibility_response;
use scheduling_svc::{MemoryCampaignStore, Scheduling};

#[derive(Debug, Default)]
struct StillClock(std::sync::RwLock<DateTime<Utc>>);

impl platform::clock::Clock for StillClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.read().map(|now| *now).unwrap_or_default()
    }
}

fn main() -> anyhow::Result<()> {
    let checks: usize = std::env::args()
        .nth(1)
        .map(|raw| raw.parse())
        .transpose()?
        .unwrap_or(2_000_000);
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let clock = Arc::new(StillClock::default());
    let scheduling = runtime.block_on(async {
        let scheduling =
            Scheduling::load(Arc::new(MemoryCampaignStore::new()), clock.clone()).await?;
        for campaign in scheduling_svc::campaign_file::parse_campaigns(include_str!(
            "../../deploy/campaigns/2021.yaml"
        ))? {
            scheduling.upsert_campaign(campaign).await?;
        }
        let excluded = (0..100_000).map(|n| format!("pk-excluded-{n}")).collect();
        scheduling
            .replace_exclusions(&CampaignId::parse("covid19-2021-18-49")?, excluded)
            .await?;
        anyhow::Ok(scheduling)
    })?;

    // 4,096 distinct questions, asked round-robin.
    let first_birth = NaiveDate::from_ymd_opt(1940, 1, 1).unwrap_or_default();
    let august = chrono_tz::Asia::Seoul
        .with_ymd_and_hms(2021, 8, 1, 0, 0, 0)
        .single()
        .map(|instant| instant.with_timezone(&Utc))
        .unwrap_or_default();
    let questions: Vec<(Applicant, DateTime<Utc>)> = (0..4_096u32)
        .map(|n| {
            let birth =
                first_birth + Duration::days(i64::from(n.wrapping_mul(2_654_435_761) % 24_000));
            let key = if n % 50 == 0 {
                format!("pk-excluded-{n}")
            } else {
                format!("pk-person-{n}")
            };
            let applicant = Applicant {
                birth_date: birth,
                person_key: PersonKey::parse(&key).unwrap_or_else(|_| unreachable!()),
            };
            (
                applicant,
                august + Duration::minutes(i64::from(n * 97 % 44_640)),
            )
        })
        .collect();

    let mut eligible = 0usize;
    let started = Instant::now();
    for index in 0..checks {
        let (applicant, now) = &questions[index % questions.len()];
        if let Ok(mut guard) = clock.0.write() {
            *guard = *now;
        }
        let response = scheduling.check_eligibility_with(
            None,
            applicant,
            Approach::default(),
            eligibility_response,
        )?;
        eligible += usize::from(response.eligible);
    }
    let elapsed = started.elapsed();
    println!(
        "{checks} eligibility checks in {:.2} s on one thread: {:.0} checks/s ({eligible} eligible)",
        elapsed.as_secs_f64(),
        checks as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
