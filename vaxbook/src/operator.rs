//! Operators' commands against running services: `vaxbook campaigns apply FILE.yaml` loads
//! campaigns as data (checked locally first, then upserted over the admin gRPC API), and
//! `vaxbook exclusions import --campaign ID FILE` streams a file of RRNs (one per line) to
//! auth-svc's person-key service in batches and the person keys it returns to scheduling-svc,
//! which replaces the campaign's exclusion list in one switch. RRNs go to auth-svc only; no
//! RRN is printed or logged, a malformed line is reported by its number.

use std::time::{Duration, Instant};

use platform::grpc::admin_request;
use proto::auth::v1::DerivePersonKeysRequest;
use proto::auth::v1::person_key_service_client::PersonKeyServiceClient;
use proto::scheduling::v1::scheduling_admin_service_client::SchedulingAdminServiceClient;
use proto::scheduling::v1::{ReplaceExclusionsRequest, UpsertCampaignRequest};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

/// RRNs per message to auth-svc, person keys per message to scheduling-svc.
pub const BATCH: usize = 5_000;
/// How long one call may take; an import of millions of lines is one call.
const CALL_TIMEOUT: Duration = Duration::from_secs(600);

/// Applies every campaign of `text` (a campaign file); returns one line per campaign.
pub async fn apply_campaigns(
    text: &str,
    scheduling_url: &str,
    admin_key: &str,
) -> anyhow::Result<Vec<String>> {
    let campaigns = scheduling_svc::campaign_file::parse(text)?;
    let mut scheduling = SchedulingAdminServiceClient::new(platform::grpc::channel(
        scheduling_url,
        Duration::from_secs(10),
    )?);
    let mut applied = Vec::with_capacity(campaigns.len());
    for campaign in campaigns {
        let id = campaign.id.clone();
        let stored = scheduling
            .upsert_campaign(admin_request(
                UpsertCampaignRequest {
                    campaign: Some(campaign),
                },
                admin_key,
            )?)
            .await
            .map_err(|status| anyhow::anyhow!("campaign {id}: {}", status.message()))?
            .into_inner();
        applied.push(format!(
            "campaign {} version {} ({} windows)",
            stored.id,
            stored.version,
            stored.windows.len()
        ));
    }
    Ok(applied)
}

/// What an import did.
#[derive(Debug)]
pub struct ImportReport {
    pub lines: usize,
    pub list_version: i64,
    pub entries: u64,
    pub elapsed: Duration,
}

/// Streams the RRNs of `path` (one per line; blank lines and `#` comments skipped) through
/// auth-svc into `campaign_id`'s exclusion list. Any malformed line stops the import before
/// the list is replaced, naming the first line numbers.
pub async fn import_exclusions(
    path: &std::path::Path,
    campaign_id: &str,
    auth_url: &str,
    scheduling_url: &str,
    admin_key: &str,
) -> anyhow::Result<ImportReport> {
    let started = Instant::now();
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|err| anyhow::anyhow!("opening {}: {err}", path.display()))?;
    let mut lines = BufReader::new(file).lines();

    // Batches of RRNs go out as the file is read; the answers come back in order.
    let (batches, outgoing) = tokio::sync::mpsc::channel::<DerivePersonKeysRequest>(4);
    let mut auth = PersonKeyServiceClient::new(platform::grpc::channel(auth_url, CALL_TIMEOUT)?);
    let request = admin_request(ReceiverStream::new(outgoing), admin_key)?;
    let answers = tokio::spawn(async move { auth.derive_person_keys(request).await });

    let mut line_numbers: Vec<Vec<usize>> = Vec::new();
    let mut batch: Vec<String> = Vec::with_capacity(BATCH);
    let mut numbers: Vec<usize> = Vec::with_capacity(BATCH);
    let mut line_number = 0;
    let mut read_error = None;
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(err) => {
                read_error = Some(anyhow::anyhow!("reading {}: {err}", path.display()));
                break;
            }
        };
        line_number += 1;
        let entry = line.trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        batch.push(entry.to_owned());
        numbers.push(line_number);
        if batch.len() == BATCH {
            line_numbers.push(std::mem::replace(&mut numbers, Vec::with_capacity(BATCH)));
            let rrns = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if batches
                .send(DerivePersonKeysRequest { rrns })
                .await
                .is_err()
            {
                break;
            }
        }
    }
    if !batch.is_empty() {
        line_numbers.push(numbers);
        // A closed stream shows up as the call's error below.
        let _ = batches.send(DerivePersonKeysRequest { rrns: batch }).await;
    }
    drop(batches);
    if let Some(err) = read_error {
        return Err(err);
    }

    let mut answers = answers
        .await
        .map_err(|err| anyhow::anyhow!("the auth-svc call stopped: {err}"))?
        .map_err(|status| anyhow::anyhow!("auth-svc: {}", status.message()))?
        .into_inner();
    let mut person_keys: Vec<String> = Vec::with_capacity(line_numbers.len() * BATCH);
    let mut bad_lines: Vec<usize> = Vec::new();
    let mut bad_count = 0usize;
    let mut sent_batches = line_numbers.into_iter();
    while let Some(answer) = answers.next().await {
        let answer = answer.map_err(|status| anyhow::anyhow!("auth-svc: {}", status.message()))?;
        let numbers = sent_batches.next().unwrap_or_default();
        for (index, key) in answer.person_keys.into_iter().enumerate() {
            if key.is_empty() {
                bad_count += 1;
                if bad_lines.len() < 10 {
                    bad_lines.extend(numbers.get(index));
                }
            } else {
                person_keys.push(key);
            }
        }
    }
    if bad_count > 0 {
        anyhow::bail!(
            "{bad_count} line(s) are not resident registration numbers (first: lines {bad_lines:?}); nothing was imported"
        );
    }

    let lines_read = person_keys.len();
    let campaign = campaign_id.to_owned();
    let mut messages = Vec::with_capacity(person_keys.len() / BATCH + 1);
    let mut keys = person_keys.into_iter().peekable();
    messages.push(ReplaceExclusionsRequest {
        campaign_id: campaign,
        person_keys: keys.by_ref().take(BATCH).collect(),
    });
    while keys.peek().is_some() {
        messages.push(ReplaceExclusionsRequest {
            campaign_id: String::new(),
            person_keys: keys.by_ref().take(BATCH).collect(),
        });
    }
    let mut scheduling =
        SchedulingAdminServiceClient::new(platform::grpc::channel(scheduling_url, CALL_TIMEOUT)?);
    let replaced = scheduling
        .replace_exclusions(admin_request(tokio_stream::iter(messages), admin_key)?)
        .await
        .map_err(|status| anyhow::anyhow!("scheduling-svc: {}", status.message()))?
        .into_inner();
    Ok(ImportReport {
        lines: lines_read,
        list_version: replaced.list_version,
        entries: replaced.entries,
        elapsed: started.elapsed(),
    })
}
