//! `vaxbook audit query` and `vaxbook audit verify --url` against a served
//! `vaxbook.audit.v1.AuditService`: every entry is printed once, filters reach the service, an
//! agent's token is refused with a hint, and a rewritten entry fails the verification by seq.

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use platform::audit::{AuditEntry, AuditLog, AuditQuery, AuditRecord, MemoryAuditLog};
use platform::audit_grpc::AuditGrpc;
use platform::clock::{Clock as _, SettableClock};
use platform::config::{DEV_ADMIN_KEY, Secret};
use platform::grants::{GrantIssuer, GrantVerifier, SigningKeys, StaticKeysSource};
use platform::operator::OperatorGuard;
use platform::staff::{AgentToken, StaffRole};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

/// A trail whose entry `rewritten` reads another outcome than was chained (0: none).
struct Trail {
    inner: MemoryAuditLog,
    rewritten: std::sync::atomic::AtomicI64,
}

#[tonic::async_trait]
impl AuditLog for Trail {
    async fn append(&self, at: DateTime<Utc>, record: AuditRecord) -> anyhow::Result<AuditEntry> {
        self.inner.append(at, record).await
    }

    async fn query(&self, query: &AuditQuery) -> anyhow::Result<Vec<AuditEntry>> {
        let rewritten = self.rewritten.load(std::sync::atomic::Ordering::SeqCst);
        let mut page = self.inner.query(query).await?;
        for entry in page.iter_mut().filter(|entry| entry.seq == rewritten) {
            entry.record.outcome = "ok".to_owned();
        }
        Ok(page)
    }
}

async fn vaxbook(args: Vec<String>, token: Option<String>) -> anyhow::Result<Output> {
    Ok(tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vaxbook"));
        command.args(&args).env("RUST_BACKTRACE", "0");
        match token {
            Some(token) => command.env("VAXBOOK_OPERATOR_TOKEN", token),
            None => command.env_remove("VAXBOOK_OPERATOR_TOKEN"),
        };
        command.output()
    })
    .await??)
}

fn lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_cli_pages_filters_and_verifies_over_grpc() -> anyhow::Result<()> {
    let trail = Arc::new(Trail {
        inner: MemoryAuditLog::new(),
        rewritten: 0.into(),
    });
    for minute in 0..7 {
        trail
            .append(
                Utc.with_ymd_and_hms(2021, 8, 9, 2, minute, 0)
                    .single()
                    .expect("an instant"),
                AuditRecord {
                    actor: format!("agent-{}", minute % 2),
                    organisation: "national-call-center".to_owned(),
                    role: "agent".to_owned(),
                    action: "staff.book".to_owned(),
                    person_key: Some(format!("person-{}", minute % 3)),
                    outcome: "caller-not-verified".to_owned(),
                },
            )
            .await?;
    }
    let keys = Arc::new(SigningKeys::generate()?);
    let clock = Arc::new(SettableClock::new());
    let verifier = GrantVerifier::new(Arc::new(StaticKeysSource(keys.jwks())), clock.clone());
    let guard = OperatorGuard::new(Arc::new(verifier), Some(Secret::new(DEV_ADMIN_KEY)));
    let service = AuditGrpc::new(trail.clone(), guard, clock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let stop = CancellationToken::new();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service.into_service())
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(listener),
                stop.clone().cancelled_owned(),
            ),
    );
    let args = |extra: &[&str]| -> Vec<String> {
        ["audit"]
            .iter()
            .chain(extra)
            .map(|arg| (*arg).to_owned())
            .collect()
    };

    // The dev key, one entry per call: every entry of the trail as it stood, once, in order.
    let all = vaxbook(args(&["query", "--url", &url, "--page-size", "1"]), None).await?;
    assert!(all.status.success(), "{all:?}");
    let printed = lines(&all);
    assert_eq!(printed.len(), 8, "{printed:?}");
    for (n, line) in printed[..7].iter().enumerate() {
        assert!(line.starts_with(&format!("seq {} ", n + 1)), "{line}");
    }
    assert!(printed[0].contains("actor agent-0 role agent org national-call-center"));
    assert!(printed[0].contains("person person-0 outcome caller-not-verified"));
    assert_eq!(printed[7], "7 entries (the trail up to entry 7)");
    // One audit.query entry per page read: seven pages of one; the reading stopped at the
    // first page's own entry instead of chasing the entries of its own pages.
    let queries = trail
        .inner
        .entries()
        .iter()
        .filter(|entry| entry.record.action == "audit.query")
        .count();
    assert_eq!(queries, 7);

    // Filters: person-1 is minutes 1 and 4 (seqs 2, 5), of agent-1 only minute 1 (seq 2);
    // minutes 2..5 are seqs 3..=5.
    let by_person = vaxbook(
        args(&["query", "--url", &url, "--person-key", "person-1"]),
        None,
    )
    .await?;
    let printed = lines(&by_person);
    assert!(printed[0].starts_with("seq 2 ") && printed[1].starts_with("seq 5 "));
    assert_eq!(
        printed.last().map(String::as_str),
        Some("2 entries (the trail up to entry 14)")
    );
    let narrow = vaxbook(
        args(&[
            "query",
            "--url",
            &url,
            "--person-key",
            "person-1",
            "--actor",
            "agent-1",
            "--from",
            "2021-08-09T11:00:00+09:00",
            "--until",
            "2021-08-09T11:05:00+09:00",
        ]),
        None,
    )
    .await?;
    assert!(narrow.status.success(), "{narrow:?}");
    let printed = lines(&narrow);
    assert_eq!(printed.len(), 2, "{printed:?}");
    assert!(printed[0].starts_with("seq 2 at 2021-08-09T11:01:00+09:00 actor agent-1"));
    let in_range = vaxbook(
        args(&[
            "query",
            "--url",
            &url,
            "--from",
            "2021-08-09T11:02:00+09:00",
            "--until",
            "2021-08-09T11:05:00+09:00",
        ]),
        None,
    )
    .await?;
    let seqs: Vec<String> = lines(&in_range)
        .iter()
        .filter_map(|line| line.split(' ').nth(1).map(str::to_owned))
        .collect();
    assert_eq!(seqs[..3], ["3", "4", "5"]);
    assert_eq!(seqs.len(), 4, "three entries and the summary");

    // An agent's token is refused, with the problem type and how to get a token that reads.
    let agent = GrantIssuer::new(keys.clone()).issue(
        &AgentToken {
            sub: "agent-account".to_owned(),
            username: "agent.park".to_owned(),
            org: "national-call-center".to_owned(),
            role: StaffRole::Agent,
        },
        clock.now(),
        Duration::from_secs(60),
    )?;
    let refused = vaxbook(args(&["query", "--url", &url]), Some(agent.token)).await?;
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("role-not-allowed") && said.contains("callcenter login"),
        "{said}"
    );

    // Verification by the service: intact, then entry 4 reads otherwise than was chained.
    let operator = GrantIssuer::new(keys).issue(
        &AgentToken {
            sub: "operator-account".to_owned(),
            username: "operator.park".to_owned(),
            org: "national-call-center".to_owned(),
            role: StaffRole::Operator,
        },
        clock.now(),
        Duration::from_secs(60),
    )?;
    let intact = vaxbook(
        args(&["verify", "--url", &url]),
        Some(operator.token.clone()),
    )
    .await?;
    assert!(intact.status.success(), "{intact:?}");
    assert!(String::from_utf8_lossy(&intact.stdout).contains("audit trail intact"));
    trail
        .rewritten
        .store(4, std::sync::atomic::Ordering::SeqCst);
    let broken = vaxbook(args(&["verify", "--url", &url]), Some(operator.token)).await?;
    assert!(!broken.status.success());
    let said = String::from_utf8_lossy(&broken.stderr);
    assert!(said.contains("broken at entry 4 (altered)"), "{said}");
    assert!(said.contains("3 entries intact before it"), "{said}");

    stop.cancel();
    server.await??;
    Ok(())
}
