//! Operators' commands against running services: `vaxbook campaigns apply FILE.yaml` loads
//! campaigns as data (checked locally first, then upserted over the admin gRPC API), and
//! `vaxbook exclusions import --campaign ID FILE` streams a file of RRNs (one per line) to
//! auth-svc's person-key service in batches and the person keys it returns to scheduling-svc,
//! which replaces the campaign's exclusion list in one switch. RRNs go to auth-svc only; no
//! RRN is printed or logged, a malformed line is reported by its number.
//!
//! Every admin call carries the operator's credential ([`OperatorCredential`]): the operator
//! token of `vaxbook callcenter login` (`--operator-token`, `VAXBOOK_OPERATOR_TOKEN`), or
//! without one the dev run's key, which only `vaxbook dev` accepts.

use std::time::{Duration, Instant};

use platform::operator::OperatorCredential;
use proto::auth::v1::DerivePersonKeysRequest;
use proto::auth::v1::person_key_service_client::PersonKeyServiceClient;
use proto::scheduling::v1::scheduling_admin_service_client::SchedulingAdminServiceClient;
use proto::scheduling::v1::{ReplaceExclusionsRequest, UpsertCampaignRequest};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::credential::CredentialHelp;

/// RRNs per message to auth-svc, person keys per message to scheduling-svc.
pub const BATCH: usize = 5_000;
/// How long one call may take; an import of millions of lines is one call.
const CALL_TIMEOUT: Duration = Duration::from_secs(600);

/// The admin commands' credential: an operator token, else the dev run's key.
pub const OPERATOR: CredentialHelp = CredentialHelp {
    login: "log in as an operator: vaxbook callcenter login --username <operator> \
     (operator.dev in `vaxbook dev`), and pass the token it prints as --operator-token or \
     VAXBOOK_OPERATOR_TOKEN",
    dev_key_refused: Some("this is not a dev run, which alone takes the dev-run key: "),
    token_refused: "the operator token was refused (it lasts 30 minutes, and only the auth-svc \
     of this deployment issues it): ",
    wrong_role: "the token is not an operator's: ",
};

/// The operator's credential of an admin command: `--operator-token` (or
/// `VAXBOOK_OPERATOR_TOKEN`), else the dev run's key.
pub fn credential(operator_token: Option<String>) -> anyhow::Result<OperatorCredential> {
    OPERATOR.credential(operator_token.as_deref())
}

/// A refused admin call of `what` as an error, with a hint when the credential is what was
/// refused: no operator token outside the dev run, an expired one, or a token of another role.
pub fn refused(
    what: &str,
    credential: &OperatorCredential,
    status: &tonic::Status,
) -> anyhow::Error {
    anyhow::anyhow!("{what}: {}", OPERATOR.refused(status, credential))
}

/// Applies every campaign of `text` (a campaign file); returns one line per campaign.
pub async fn apply_campaigns(
    text: &str,
    scheduling_url: &str,
    credential: &OperatorCredential,
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
            .upsert_campaign(credential.request(UpsertCampaignRequest {
                campaign: Some(campaign),
            })?)
            .await
            .map_err(|status| refused(&format!("campaign {id}"), credential, &status))?
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
    credential: &OperatorCredential,
) -> anyhow::Result<ImportReport> {
    let started = Instant::now();
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|err| anyhow::anyhow!("opening {}: {err}", path.display()))?;
    let mut lines = BufReader::new(file).lines();

    // Batches of RRNs go out as the file is read; the answers come back in order.
    let (batches, outgoing) = tokio::sync::mpsc::channel::<DerivePersonKeysRequest>(4);
    let mut auth = PersonKeyServiceClient::new(platform::grpc::channel(auth_url, CALL_TIMEOUT)?);
    let request = credential.request(ReceiverStream::new(outgoing))?;
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
        .map_err(|status| refused("auth-svc", credential, &status))?
        .into_inner();
    let mut person_keys: Vec<String> = Vec::with_capacity(line_numbers.len() * BATCH);
    let mut bad_lines: Vec<usize> = Vec::new();
    let mut bad_count = 0usize;
    let mut sent_batches = line_numbers.into_iter();
    while let Some(answer) = answers.next().await {
        let answer = answer.map_err(|status| refused("auth-svc", credential, &status))?;
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
        .replace_exclusions(credential.request(tokio_stream::iter(messages))?)
        .await
        .map_err(|status| refused("scheduling-svc", credential, &status))?
        .into_inner();
    Ok(ImportReport {
        lines: lines_read,
        list_version: replaced.list_version,
        entries: replaced.entries,
        elapsed: started.elapsed(),
    })
}
