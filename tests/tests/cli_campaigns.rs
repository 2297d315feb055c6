//! The operators' commands against the multi-process stack: `vaxbook campaigns apply FILE.yaml`
//! makes the campaign the eligibility answers come from within seconds, and a malformed file
//! changes nothing; `vaxbook exclusions import --campaign ID FILE` makes the listed person
//! `excluded-priority-target` while another person born the same day stays eligible, and a file
//! with a malformed line changes nothing (the old list stays in force).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use vaxbook_tests::journey::{self, Person};
use vaxbook_tests::{Api, ProcessStack, people, process};

const CAMPAIGN: &str = "e2e-cli-18-49";

/// Born the same day as the journey's person (13 Jan 1990).
const SAME_DAY: Person = Person {
    name: "이영자",
    rrn: "900113-2345678",
    phone: "010-4567-8901",
    carrier: "kt",
};

fn kst(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Asia::Seoul)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// A campaign file with one 18–49 campaign whose one open window runs until `closes`.
fn campaign_file(closes: DateTime<Utc>, kind: &str) -> String {
    let now = Utc::now();
    let date = |at: DateTime<Utc>| {
        platform::ids::format_iso_date(at.with_timezone(&chrono_tz::Asia::Seoul).date_naive())
    };
    format!(
        "campaigns:\n  - id: {CAMPAIGN}\n    name: \"End-to-end 18–49 from a file\"\n    \
         born: {{from: \"1972-01-01\", to: \"2003-12-31\"}}\n    \
         vaccination: {{from: \"{}\", to: \"{}\"}}\n    cancellation_closes_days_before: 2\n    \
         proxy: {{allowed: false}}\n    windows:\n      \
         - {{id: open, kind: {kind}, opens_at: \"{}\", closes_at: \"{}\", channels: [web], supply_share: 100%}}\n",
        date(now + chrono::Duration::days(1)),
        date(now + chrono::Duration::days(10)),
        kst(now - chrono::Duration::hours(1)),
        kst(closes),
    )
}

/// Runs `vaxbook ARGS` against the stack; returns (success, stdout, stderr).
async fn vaxbook(stack: &ProcessStack, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let output = tokio::process::Command::new(process::binary("vaxbook")?)
        .args(args)
        .env("VAXBOOK_SCHEDULING_URL", &stack.scheduling_url)
        .env("VAXBOOK_AUTH_URL", &stack.auth_url)
        .env("VAXBOOK_OPERATOR_TOKEN", stack.operator_token())
        .env("NO_COLOR", "1")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdin(std::process::Stdio::null())
        .output()
        .await?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

async fn eligibility(api: &Api) -> anyhow::Result<Value> {
    let reply = api.get("/v1/me/eligibility").await?;
    anyhow::ensure!(reply.status == 200, "eligibility: {reply:?}");
    Ok(reply.body)
}

/// Asks until `wanted` holds (at most 5 s, "within seconds"); returns the last answer.
async fn eventually(api: &Api, wanted: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
    let started = Instant::now();
    loop {
        let answer = eligibility(api).await?;
        if wanted(&answer) || started.elapsed() > Duration::from_secs(5) {
            return Ok(answer);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_apply_campaign_files_and_import_exclusion_lists() -> anyhow::Result<()> {
    let stack = ProcessStack::start("cli-campaigns").await?;
    let hong = people::verified(&stack, &journey::HONG, "laptop-1").await?;
    let same_day = people::verified(&stack, &SAME_DAY, "tablet-2").await?;
    let before = eligibility(&hong).await?;
    assert_eq!(before["eligible"], false, "{before}");
    assert_eq!(before["reason"], "no-campaign", "{before}");

    let dir = tempdir()?;
    let closes = Utc::now() + chrono::Duration::days(1);
    let file = dir.join("campaigns.yaml");
    std::fs::write(&file, campaign_file(closes, "open"))?;
    let file_arg = file.display().to_string();
    let (ok, out, err) = vaxbook(&stack, &["campaigns", "apply", &file_arg]).await?;
    assert!(ok, "campaigns apply failed: {out}\n{err}");
    assert!(
        out.contains(&format!("campaign {CAMPAIGN} version 1 (1 windows)")),
        "{out}"
    );
    let applied = eventually(&hong, |answer| answer["eligible"] == true).await?;
    assert_eq!(applied["eligible"], true, "{applied}");
    assert_eq!(applied["campaign_id"], CAMPAIGN, "{applied}");
    assert_eq!(applied["closes_at"], kst(closes).as_str(), "{applied}");

    // A malformed campaign file is refused before anything is sent: the campaign stays.
    let broken = dir.join("broken.yaml");
    std::fs::write(
        &broken,
        campaign_file(closes + chrono::Duration::days(1), "weekly"),
    )?;
    let (ok, out, err) = vaxbook(
        &stack,
        &["campaigns", "apply", &broken.display().to_string()],
    )
    .await?;
    assert!(!ok, "a malformed campaign file was applied: {out}");
    assert!(!err.is_empty(), "the refusal says why");
    let unchanged = eligibility(&hong).await?;
    assert_eq!(unchanged["closes_at"], kst(closes).as_str(), "{unchanged}");

    // The exclusion list names the journey's person (comments and blank lines are skipped).
    let list = dir.join("priority-targets.txt");
    std::fs::write(
        &list,
        format!(
            "# priority targets, vaccinated elsewhere\n\n{}\n",
            journey::HONG.rrn
        ),
    )?;
    let list_arg = list.display().to_string();
    let (ok, out, err) = vaxbook(
        &stack,
        &["exclusions", "import", "--campaign", CAMPAIGN, &list_arg],
    )
    .await?;
    assert!(ok, "exclusions import failed: {out}\n{err}");
    assert!(out.contains("version 1 with 1 people"), "{out}");
    let excluded = eventually(&hong, |answer| answer["eligible"] == false).await?;
    assert_eq!(excluded["eligible"], false, "{excluded}");
    assert_eq!(excluded["reason"], "excluded-priority-target", "{excluded}");
    let other = eligibility(&same_day).await?;
    assert_eq!(
        other["eligible"], true,
        "born the same day, not listed: {other}"
    );

    // A file with a malformed line replaces nothing: the old list stays in force.
    let malformed = dir.join("malformed.txt");
    std::fs::write(&malformed, format!("{}\n900113-12345\n", SAME_DAY.rrn))?;
    let (ok, out, err) = vaxbook(
        &stack,
        &[
            "exclusions",
            "import",
            "--campaign",
            CAMPAIGN,
            &malformed.display().to_string(),
        ],
    )
    .await?;
    assert!(!ok, "a malformed list was imported: {out}");
    assert!(err.contains('2'), "the refusal names the line: {err}");
    assert!(
        !err.contains(SAME_DAY.rrn) && !err.contains("900113-12345"),
        "the refusal echoes no RRN: {err}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let still = eligibility(&hong).await?;
    assert_eq!(still["reason"], "excluded-priority-target", "{still}");
    let other = eligibility(&same_day).await?;
    assert_eq!(other["eligible"], true, "{other}");

    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

fn tempdir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("vaxbook-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
