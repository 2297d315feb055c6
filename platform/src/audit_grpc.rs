//! `vaxbook.audit.v1.AuditService` over any service's audit trail (R9): every service that keeps
//! a hash-chained trail (auth-svc, booking-svc, scheduling-svc, session-svc) serves the same
//! [`AuditGrpc`] over its own [`AuditLog`], so operators query and verify each one the same way.
//!
//! Who may read: an operator token (or, in the dev run only, the development key, as
//! `dev-operator`) reads every entry and verifies the chain; a supervisor token reads the
//! entries of the supervisor's organisation; an agent token is `role-not-allowed`; no
//! credential, a citizen's token or any token that is no valid staff token is
//! `staff-token-required` — the rules of [`OperatorGuard`], with supervisors let in to queries.
//! Every call, answered or refused, is written to the same trail (`audit.query`,
//! `audit.verify-chain`) with outcome `ok` or the problem type, and an answer is only given once
//! its own entry is written.

use std::sync::Arc;

use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::audit::{
    AuditEntry, AuditLog, AuditQuery, AuditRecord, ChainBreak, ChainVerifier, MAX_PAGE,
};
use crate::clock::SharedClock;
use crate::operator::{Operator, OperatorGuard, OperatorRefusal};
use crate::problem::{Problem, ProblemKind};
use crate::staff::{AgentToken, StaffRole};
use proto::audit::v1 as pb;

/// The gRPC service name every service serving [`AuditGrpc`] reports through `grpc.health.v1`.
pub const HEALTH_NAME: &str = pb::audit_service_server::SERVICE_NAME;
/// The audit action of a query of the trail.
pub const QUERY_ACTION: &str = "audit.query";
/// The audit action of a chain verification.
pub const VERIFY_ACTION: &str = "audit.verify-chain";
/// The page size of a query that asks for none.
pub const DEFAULT_PAGE: usize = 100;
/// How many entries one supervisor's page reads at most before it answers (possibly short,
/// with a cursor to read on), so a supervisor of a small organisation cannot make one call
/// walk a whole trail.
pub const SUPERVISOR_SCAN: usize = 10 * MAX_PAGE;
/// The longest person key or actor a filter takes.
const MAX_FILTER_LEN: usize = 128;

/// Who reads the trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditReader {
    /// An operator (or the dev run's `dev-operator`): every entry.
    Operator(Operator),
    /// A supervisor: the entries of their own organisation.
    Supervisor(AgentToken),
}

impl AuditReader {
    /// The organisation the reader is confined to, if any.
    pub fn organisation_scope(&self) -> Option<&str> {
        match self {
            Self::Operator(_) => None,
            Self::Supervisor(token) => Some(&token.org),
        }
    }

    /// The audit record of an action of this reader.
    pub fn record(&self, action: &str, person_key: Option<String>, outcome: &str) -> AuditRecord {
        match self {
            Self::Operator(operator) => operator.record(action, person_key, outcome),
            Self::Supervisor(token) => AuditRecord {
                actor: token.sub.clone(),
                organisation: token.org.clone(),
                role: token.role.as_str().to_owned(),
                action: action.to_owned(),
                person_key,
                outcome: outcome.to_owned(),
            },
        }
    }
}

/// One page of a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// The `after_seq` of the next page; 0 when nothing more matches.
    pub next_after_seq: i64,
    /// The seq of the `audit.query` entry of this reading (0 until it is written).
    pub audit_seq: i64,
}

/// What a chain verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    /// Entries checked and found intact, from seq 1 on.
    pub checked: u64,
    /// The first break, if any.
    pub broken: Option<ChainBreak>,
}

impl ChainReport {
    /// The wire form.
    pub fn to_wire(&self) -> pb::VerifyChainResponse {
        let (first_broken_seq, break_kind, detail) = match &self.broken {
            None => (0, "", String::new()),
            Some(broken) => (broken.seq(), break_kind(broken), broken.to_string()),
        };
        pb::VerifyChainResponse {
            checked: self.checked,
            ok: self.broken.is_none(),
            first_broken_seq,
            break_kind: break_kind.to_owned(),
            detail,
        }
    }
}

/// The wire name of a kind of break (`VerifyChainResponse.break_kind`).
pub fn break_kind(broken: &ChainBreak) -> &'static str {
    match broken {
        ChainBreak::Altered { .. } => "altered",
        ChainBreak::Unlinked { .. } => "unlinked",
        ChainBreak::Gap { .. } => "gap",
    }
}

/// The wire form of an entry.
pub fn entry_to_wire(entry: AuditEntry) -> pb::AuditEntry {
    pb::AuditEntry {
        seq: entry.seq,
        at: Some(crate::clock::to_timestamp(entry.at)),
        actor: entry.record.actor,
        organisation: entry.record.organisation,
        role: entry.record.role,
        action: entry.record.action,
        person_key: entry.record.person_key.unwrap_or_default(),
        outcome: entry.record.outcome,
        prev_hash: entry.prev_hash,
        hash: entry.hash,
    }
}

/// The query a request asks for, or why it is malformed.
pub fn query_from_wire(request: &pb::QueryAuditRequest) -> Result<AuditQuery, Problem> {
    let filter = |raw: &str, name: &str| -> Result<Option<String>, Problem> {
        if raw.len() > MAX_FILTER_LEN {
            return Err(Problem::invalid(format!(
                "{name} is longer than {MAX_FILTER_LEN} bytes"
            )));
        }
        Ok((!raw.is_empty()).then(|| raw.to_owned()))
    };
    let instant = |ts: &Option<prost_types::Timestamp>, name: &str| {
        ts.as_ref()
            .map(|ts| {
                crate::clock::from_timestamp(ts)
                    .ok_or_else(|| Problem::invalid(format!("{name} is not a valid instant")))
            })
            .transpose()
    };
    Ok(AuditQuery {
        person_key: filter(&request.person_key, "person_key")?,
        actor: filter(&request.actor, "actor")?,
        from: instant(&request.from, "from")?,
        until: instant(&request.until, "until")?,
        after_seq: request.after_seq.max(0),
        limit: match request.page_size {
            0 => DEFAULT_PAGE,
            n => usize::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE),
        },
    })
}

fn unavailable(err: &anyhow::Error, doing: &str) -> Problem {
    tracing::error!(error = %err, "{doing}");
    Problem::new(ProblemKind::Unavailable, "the audit trail is unavailable")
}

/// The audit trail service of one service's trail.
pub struct AuditGrpc {
    log: Arc<dyn AuditLog>,
    guard: OperatorGuard,
    clock: SharedClock,
}

impl std::fmt::Debug for AuditGrpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditGrpc")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

impl AuditGrpc {
    /// Serves `log`, with callers checked by `guard` (the service's operator guard: auth-svc's
    /// grants, and the dev key only in a dev-run configuration).
    pub fn new(log: Arc<dyn AuditLog>, guard: OperatorGuard, clock: SharedClock) -> Self {
        Self { log, guard, clock }
    }

    pub fn into_service(self) -> pb::audit_service_server::AuditServiceServer<Self> {
        pb::audit_service_server::AuditServiceServer::new(self)
    }

    /// Who reads, or why not: operators always, supervisors when `supervisors` is set.
    pub async fn authorize(
        &self,
        metadata: &MetadataMap,
        supervisors: bool,
    ) -> Result<AuditReader, OperatorRefusal> {
        match self.guard.authorize(metadata).await {
            Ok(operator) => Ok(AuditReader::Operator(operator)),
            Err(OperatorRefusal {
                staff: Some(staff),
                problem,
            }) if problem.kind == ProblemKind::RoleNotAllowed => {
                if supervisors && staff.role == StaffRole::Supervisor {
                    return Ok(AuditReader::Supervisor(staff));
                }
                let may = if supervisors {
                    "an operator or supervisor account may"
                } else {
                    "an operator account may"
                };
                let detail = format!(
                    "the {} role may not read the audit trail; {may}",
                    staff.role.as_str()
                );
                Err(OperatorRefusal {
                    staff: Some(staff),
                    problem: Problem::new(ProblemKind::RoleNotAllowed, detail),
                })
            }
            Err(refusal) => Err(refusal),
        }
    }

    /// Appends `record`; an answer waits for its own entry. Answers the entry's seq.
    async fn audit(&self, record: AuditRecord) -> Result<i64, Problem> {
        self.log
            .append(self.clock.now(), record)
            .await
            .map(|entry| entry.seq)
            .map_err(|err| unavailable(&err, "writing the audit trail"))
    }

    /// Audits a refusal (best effort: the refusal is the answer either way) and returns it.
    async fn refuse(&self, record: AuditRecord, problem: Problem) -> Problem {
        if let Err(err) = self.log.append(self.clock.now(), record).await {
            tracing::error!(error = %err, "writing a refused audit trail call to the trail");
        }
        problem
    }

    /// One page of `query` as `reader` may see it.
    pub async fn read_page(
        &self,
        reader: &AuditReader,
        query: &AuditQuery,
    ) -> anyhow::Result<AuditPage> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        let Some(organisation) = reader.organisation_scope() else {
            let page = AuditQuery {
                limit,
                ..query.clone()
            };
            let entries = self.log.query(&page).await?;
            let next_after_seq = if entries.len() >= limit {
                entries.last().map_or(0, |entry| entry.seq)
            } else {
                0
            };
            return Ok(AuditPage {
                entries,
                next_after_seq,
                audit_seq: 0,
            });
        };
        // A supervisor's page: read on in full pages, keep their organisation's entries.
        let mut scan = AuditQuery {
            limit: MAX_PAGE,
            ..query.clone()
        };
        let mut entries = Vec::new();
        let mut scanned = 0;
        loop {
            let raw = self.log.query(&scan).await?;
            let full = raw.len() >= MAX_PAGE;
            scanned += raw.len();
            for entry in raw {
                scan.after_seq = entry.seq;
                if entry.record.organisation == organisation {
                    entries.push(entry);
                    if entries.len() >= limit {
                        return Ok(AuditPage {
                            entries,
                            next_after_seq: scan.after_seq,
                            audit_seq: 0,
                        });
                    }
                }
            }
            if !full {
                return Ok(AuditPage {
                    entries,
                    next_after_seq: 0,
                    audit_seq: 0,
                });
            }
            if scanned >= SUPERVISOR_SCAN {
                return Ok(AuditPage {
                    entries,
                    next_after_seq: scan.after_seq,
                    audit_seq: 0,
                });
            }
        }
    }

    /// A whole query call: authorizes (operators and supervisors), reads one page, audits the
    /// call as `audit.query`.
    pub async fn query(
        &self,
        metadata: &MetadataMap,
        request: &pb::QueryAuditRequest,
    ) -> Result<AuditPage, Problem> {
        let asked_for = (!request.person_key.is_empty()
            && request.person_key.len() <= MAX_FILTER_LEN)
            .then(|| request.person_key.clone());
        let reader = match self.authorize(metadata, true).await {
            Ok(reader) => reader,
            Err(refusal) => {
                let mut record = refusal.record(QUERY_ACTION);
                record.person_key = asked_for;
                return Err(self.refuse(record, refusal.problem).await);
            }
        };
        let query = match query_from_wire(request) {
            Ok(query) => query,
            Err(problem) => {
                let record = reader.record(QUERY_ACTION, asked_for, problem.kind.name());
                return Err(self.refuse(record, problem).await);
            }
        };
        let page = match self.read_page(&reader, &query).await {
            Ok(page) => page,
            Err(err) => {
                let problem = unavailable(&err, "reading the audit trail");
                let record = reader.record(QUERY_ACTION, asked_for, problem.kind.name());
                return Err(self.refuse(record, problem).await);
            }
        };
        let audit_seq = self
            .audit(reader.record(QUERY_ACTION, asked_for, "ok"))
            .await?;
        Ok(AuditPage { audit_seq, ..page })
    }

    /// Walks the whole trail from seq 1 (operators only), audited as `audit.verify-chain`.
    pub async fn verify(&self, metadata: &MetadataMap) -> Result<ChainReport, Problem> {
        let reader = match self.authorize(metadata, false).await {
            Ok(reader) => reader,
            Err(refusal) => {
                let record = refusal.record(VERIFY_ACTION);
                return Err(self.refuse(record, refusal.problem).await);
            }
        };
        let report = match walk_chain(self.log.as_ref()).await {
            Ok(report) => report,
            Err(err) => {
                let problem = unavailable(&err, "reading the audit trail");
                let record = reader.record(VERIFY_ACTION, None, problem.kind.name());
                return Err(self.refuse(record, problem).await);
            }
        };
        self.audit(reader.record(VERIFY_ACTION, None, "ok")).await?;
        Ok(report)
    }
}

/// Checks a whole trail in pages from seq 1: how many entries passed and the first break.
pub async fn walk_chain(log: &dyn AuditLog) -> anyhow::Result<ChainReport> {
    let mut verifier = ChainVerifier::of(log.trail());
    let mut query = AuditQuery {
        limit: MAX_PAGE,
        ..AuditQuery::default()
    };
    loop {
        let page = log.query(&query).await?;
        let Some(last) = page.last() else {
            return Ok(ChainReport {
                checked: verifier.checked(),
                broken: None,
            });
        };
        query.after_seq = last.seq;
        for entry in &page {
            if let Err(broken) = verifier.check(entry) {
                return Ok(ChainReport {
                    checked: verifier.checked(),
                    broken: Some(broken),
                });
            }
        }
    }
}

#[tonic::async_trait]
impl pb::audit_service_server::AuditService for AuditGrpc {
    async fn query_audit(
        &self,
        request: Request<pb::QueryAuditRequest>,
    ) -> Result<Response<pb::QueryAuditResponse>, Status> {
        let page = self
            .query(request.metadata(), request.get_ref())
            .await
            .map_err(|problem| problem.to_status())?;
        Ok(Response::new(pb::QueryAuditResponse {
            entries: page.entries.into_iter().map(entry_to_wire).collect(),
            next_after_seq: page.next_after_seq,
            audit_seq: page.audit_seq,
        }))
    }

    async fn verify_chain(
        &self,
        request: Request<pb::VerifyChainRequest>,
    ) -> Result<Response<pb::VerifyChainResponse>, Status> {
        let report = self
            .verify(request.metadata())
            .await
            .map_err(|problem| problem.to_status())?;
        Ok(Response::new(report.to_wire()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::audit::MemoryAuditLog;
    use crate::clock::{Clock as _, SettableClock};
    use crate::config::Secret;
    use crate::grants::{GrantIssuer, GrantVerifier, SigningKeys, StaticKeysSource};
    use crate::operator::{DEV_OPERATOR, OperatorCredential};
    use crate::staff::CallerGrant;

    const ORG: &str = "national-call-center";
    const OTHER_ORG: &str = "seoul-gangnam";

    struct Fixture {
        log: Arc<MemoryAuditLog>,
        service: AuditGrpc,
        issuer: GrantIssuer,
        clock: Arc<SettableClock>,
    }

    fn fixture_over(
        log: Arc<dyn AuditLog>,
        dev_key: Option<&str>,
    ) -> (AuditGrpc, GrantIssuer, Arc<SettableClock>) {
        let keys = Arc::new(SigningKeys::generate().expect("keys"));
        let clock = Arc::new(SettableClock::new());
        let verifier = GrantVerifier::new(Arc::new(StaticKeysSource(keys.jwks())), clock.clone());
        let guard = OperatorGuard::new(Arc::new(verifier), dev_key.map(Secret::new));
        (
            AuditGrpc::new(log, guard, clock.clone()),
            GrantIssuer::new(keys),
            clock,
        )
    }

    fn fixture(dev_key: Option<&str>) -> Fixture {
        let log = Arc::new(MemoryAuditLog::new());
        let (service, issuer, clock) = fixture_over(log.clone(), dev_key);
        Fixture {
            log,
            service,
            issuer,
            clock,
        }
    }

    fn staff(role: StaffRole, org: &str) -> AgentToken {
        AgentToken {
            sub: format!("account-of-the-{}", role.as_str()),
            username: format!("{}.kim", role.as_str()),
            org: org.to_owned(),
            role,
        }
    }

    fn record(actor: &str, org: &str, action: &str, person: Option<&str>) -> AuditRecord {
        AuditRecord {
            actor: actor.to_owned(),
            organisation: org.to_owned(),
            role: "agent".to_owned(),
            action: action.to_owned(),
            person_key: person.map(str::to_owned),
            outcome: "ok".to_owned(),
        }
    }

    impl Fixture {
        fn token(&self, role: StaffRole, org: &str) -> MetadataMap {
            let token = self
                .issuer
                .issue(&staff(role, org), self.clock.now(), Duration::from_secs(60))
                .expect("issued");
            credential(&OperatorCredential::Token(token.token))
        }

        /// Entries 1..=n at one minute apart from `start`, alternating organisations and
        /// persons.
        async fn fill(&self, n: i64, start: DateTime<Utc>) {
            for seq in 1..=n {
                let (org, actor) = if seq % 2 == 0 {
                    (OTHER_ORG, "agent-b")
                } else {
                    (ORG, "agent-a")
                };
                let person = format!("pk-{}", seq % 3);
                self.log
                    .append(
                        start + chrono::Duration::minutes(seq),
                        record(actor, org, "staff.book", Some(&person)),
                    )
                    .await
                    .expect("appended");
            }
        }

        async fn all_pages(
            &self,
            metadata: &MetadataMap,
            mut request: pb::QueryAuditRequest,
        ) -> Vec<i64> {
            let mut seqs = Vec::new();
            loop {
                let page = self
                    .service
                    .query(metadata, &request)
                    .await
                    .expect("answered");
                seqs.extend(page.entries.iter().map(|entry| entry.seq));
                if page.next_after_seq == 0 {
                    return seqs;
                }
                assert!(
                    page.next_after_seq > request.after_seq,
                    "the cursor moves on"
                );
                request.after_seq = page.next_after_seq;
            }
        }

        fn last(&self) -> AuditEntry {
            self.log.entries().last().cloned().expect("an entry")
        }
    }

    fn credential(credential: &OperatorCredential) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        credential.apply(&mut metadata).expect("a metadata value");
        metadata
    }

    #[tokio::test]
    async fn an_operator_pages_through_everything_and_each_query_is_audited() {
        let f = fixture(None);
        f.fill(7, Utc::now() - chrono::Duration::hours(1)).await;
        let operator = f.token(StaffRole::Operator, ORG);
        let first = f
            .service
            .query(
                &operator,
                &pb::QueryAuditRequest {
                    page_size: 3,
                    ..Default::default()
                },
            )
            .await
            .expect("answered");
        assert_eq!(
            first.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(first.next_after_seq, 3);
        let audited = f.last();
        assert_eq!(audited.seq, 8);
        assert_eq!(first.audit_seq, 8);
        assert_eq!(audited.record.action, QUERY_ACTION);
        assert_eq!(audited.record.outcome, "ok");
        assert_eq!(audited.record.role, "operator");
        assert_eq!(audited.record.actor, staff(StaffRole::Operator, ORG).sub);
        assert_eq!(audited.record.person_key, None);

        // Paging on reads every entry exactly once, the audit entries of the paging included
        // as they are written.
        let seqs = f
            .all_pages(
                &operator,
                pb::QueryAuditRequest {
                    page_size: 3,
                    ..Default::default()
                },
            )
            .await;
        assert_eq!(seqs[..8], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(seqs.windows(2).all(|w| w[0] + 1 == w[1]));
    }

    #[tokio::test]
    async fn filters_combine_person_key_actor_and_time_range() {
        let f = fixture(None);
        // Whole microseconds, as the trail keeps them.
        let start = crate::audit::to_micros(Utc::now() - chrono::Duration::hours(2));
        f.fill(12, start).await;
        let operator = f.token(StaffRole::Operator, ORG);
        // pk-1: seqs 1, 4, 7, 10; of those agent-a (odd seqs): 1, 7.
        let by_person = f
            .all_pages(
                &operator,
                pb::QueryAuditRequest {
                    person_key: "pk-1".to_owned(),
                    page_size: 2,
                    ..Default::default()
                },
            )
            .await;
        // A query by person key is itself an entry for that person key: who looked at whom
        // shows in the person's history, read on as the paging goes.
        assert_eq!(by_person[..4], [1, 4, 7, 10]);
        let entries = f.log.entries();
        for seq in &by_person[4..] {
            let entry = &entries[usize::try_from(*seq).expect("a positive seq") - 1];
            assert_eq!(entry.record.action, QUERY_ACTION);
            assert_eq!(entry.record.person_key.as_deref(), Some("pk-1"));
        }
        assert_eq!(f.last().record.person_key.as_deref(), Some("pk-1"));
        let by_person_and_actor = f
            .all_pages(
                &operator,
                pb::QueryAuditRequest {
                    person_key: "pk-1".to_owned(),
                    actor: "agent-a".to_owned(),
                    ..Default::default()
                },
            )
            .await;
        assert_eq!(by_person_and_actor, vec![1, 7]);
        // Entry n is at start + n minutes: [start+4m, start+9m) holds 4..=8.
        let in_range = f
            .all_pages(
                &operator,
                pb::QueryAuditRequest {
                    from: Some(crate::clock::to_timestamp(
                        start + chrono::Duration::minutes(4),
                    )),
                    until: Some(crate::clock::to_timestamp(
                        start + chrono::Duration::minutes(9),
                    )),
                    ..Default::default()
                },
            )
            .await;
        assert_eq!(in_range, vec![4, 5, 6, 7, 8]);
        let malformed = f
            .service
            .query(
                &operator,
                &pb::QueryAuditRequest {
                    from: Some(prost_types::Timestamp {
                        seconds: 0,
                        nanos: -1,
                    }),
                    ..Default::default()
                },
            )
            .await
            .expect_err("refused");
        assert_eq!(malformed.kind, ProblemKind::InvalidRequest);
        assert_eq!(f.last().record.outcome, "invalid-request");
    }

    #[tokio::test]
    async fn a_supervisor_sees_only_their_organisation() {
        let f = fixture(None);
        f.fill(9, Utc::now() - chrono::Duration::hours(1)).await;
        let supervisor = f.token(StaffRole::Supervisor, ORG);
        let seqs = f
            .all_pages(
                &supervisor,
                pb::QueryAuditRequest {
                    page_size: 2,
                    ..Default::default()
                },
            )
            .await;
        // The odd entries are ORG's, and so are the supervisor's own query entries (10 on).
        assert_eq!(seqs[..5], [1, 3, 5, 7, 9]);
        let entries = f.log.entries();
        for seq in &seqs {
            let entry = &entries[usize::try_from(*seq).expect("a positive seq") - 1];
            assert_eq!(entry.record.organisation, ORG, "entry {seq}");
        }
        let audited = f.last();
        assert_eq!(audited.record.role, "supervisor");
        assert_eq!(audited.record.organisation, ORG);

        // The other organisation's supervisor sees the other half.
        let other = f.token(StaffRole::Supervisor, OTHER_ORG);
        let seqs = f.all_pages(&other, pb::QueryAuditRequest::default()).await;
        assert_eq!(seqs, vec![2, 4, 6, 8]);
    }

    #[tokio::test]
    async fn a_supervisor_page_stops_after_a_bounded_scan_with_a_cursor() {
        let f = fixture(None);
        let start = Utc::now() - chrono::Duration::hours(1);
        let scan = i64::try_from(SUPERVISOR_SCAN).expect("fits");
        for _ in 0..scan + 1 {
            f.log
                .append(start, record("agent-b", OTHER_ORG, "staff.book", None))
                .await
                .expect("appended");
        }
        f.log
            .append(start, record("agent-a", ORG, "staff.book", None))
            .await
            .expect("appended");
        let supervisor = f.token(StaffRole::Supervisor, ORG);
        let first = f
            .service
            .query(&supervisor, &pb::QueryAuditRequest::default())
            .await
            .expect("answered");
        assert!(first.entries.is_empty());
        assert_eq!(first.next_after_seq, scan);
        let second = f
            .service
            .query(
                &supervisor,
                &pb::QueryAuditRequest {
                    after_seq: first.next_after_seq,
                    ..Default::default()
                },
            )
            .await
            .expect("answered");
        assert_eq!(
            second.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![scan + 2, scan + 3]
        );
        assert_eq!(second.next_after_seq, 0);
    }

    #[tokio::test]
    async fn agents_citizens_and_nobody_are_refused_and_audited() {
        let f = fixture(None);
        f.fill(2, Utc::now() - chrono::Duration::hours(1)).await;
        let agent = f.token(StaffRole::Agent, ORG);
        let refused = f
            .service
            .query(
                &agent,
                &pb::QueryAuditRequest {
                    person_key: "pk-1".to_owned(),
                    ..Default::default()
                },
            )
            .await
            .expect_err("refused");
        assert_eq!(refused.kind, ProblemKind::RoleNotAllowed);
        let audited = f.last();
        assert_eq!(audited.record.action, QUERY_ACTION);
        assert_eq!(audited.record.outcome, "role-not-allowed");
        assert_eq!(audited.record.role, "agent");
        assert_eq!(audited.record.person_key.as_deref(), Some("pk-1"));

        // A grant that is no staff token (here a caller grant), a forged token, no credential.
        let other_grant = f
            .issuer
            .issue(
                &CallerGrant {
                    agent: "agent-a".to_owned(),
                    for_key: "pk-1".to_owned(),
                    for_bd: "1950-01-01".to_owned(),
                },
                f.clock.now(),
                Duration::from_secs(60),
            )
            .expect("issued");
        for metadata in [
            credential(&OperatorCredential::Token(other_grant.token)),
            credential(&OperatorCredential::Token("not.a.token".to_owned())),
            MetadataMap::new(),
            credential(&OperatorCredential::dev()),
        ] {
            let refused = f
                .service
                .query(&metadata, &pb::QueryAuditRequest::default())
                .await
                .expect_err("refused");
            assert_eq!(refused.kind, ProblemKind::StaffTokenRequired);
            let audited = f.last();
            assert_eq!(audited.record.actor, "unknown");
            assert_eq!(audited.record.outcome, "staff-token-required");
        }

        // Supervisors may query but not verify the chain.
        let supervisor = f.token(StaffRole::Supervisor, ORG);
        let refused = f.service.verify(&supervisor).await.expect_err("refused");
        assert_eq!(refused.kind, ProblemKind::RoleNotAllowed);
        assert_eq!(f.last().record.action, VERIFY_ACTION);
        assert_eq!(f.last().record.outcome, "role-not-allowed");
    }

    #[tokio::test]
    async fn the_dev_key_reads_only_where_the_dev_run_configured_it() {
        let f = fixture(Some(crate::config::DEV_ADMIN_KEY));
        f.fill(3, Utc::now() - chrono::Duration::hours(1)).await;
        let page = f
            .service
            .query(
                &credential(&OperatorCredential::dev()),
                &pb::QueryAuditRequest::default(),
            )
            .await
            .expect("answered");
        assert_eq!(page.entries.len(), 3);
        assert_eq!(f.last().record.actor, DEV_OPERATOR);
        let refused = f
            .service
            .query(
                &credential(&OperatorCredential::DevKey("guess".to_owned())),
                &pb::QueryAuditRequest::default(),
            )
            .await
            .expect_err("refused");
        assert_eq!(refused.kind, ProblemKind::StaffTokenRequired);
    }

    /// A trail someone rewrote: entry `seq` reads another outcome than was chained.
    struct Rewritten {
        inner: MemoryAuditLog,
        seq: i64,
    }

    #[async_trait]
    impl AuditLog for Rewritten {
        async fn append(
            &self,
            at: DateTime<Utc>,
            record: AuditRecord,
        ) -> anyhow::Result<AuditEntry> {
            self.inner.append(at, record).await
        }

        async fn query(&self, query: &AuditQuery) -> anyhow::Result<Vec<AuditEntry>> {
            let mut page = self.inner.query(query).await?;
            for entry in &mut page {
                if entry.seq == self.seq {
                    entry.record.outcome = "slot-full".to_owned();
                }
            }
            Ok(page)
        }
    }

    #[tokio::test]
    async fn verify_chain_answers_an_intact_trail_and_pinpoints_an_altered_entry() {
        let f = fixture(None);
        f.fill(5, Utc::now() - chrono::Duration::hours(1)).await;
        let operator = f.token(StaffRole::Operator, ORG);
        let report = f.service.verify(&operator).await.expect("answered");
        assert_eq!(
            report,
            ChainReport {
                checked: 5,
                broken: None
            }
        );
        let wire = report.to_wire();
        assert!(wire.ok);
        assert_eq!((wire.first_broken_seq, wire.break_kind.as_str()), (0, ""));
        assert_eq!(f.last().record.action, VERIFY_ACTION);
        assert_eq!(f.last().record.outcome, "ok");

        let rewritten = Arc::new(Rewritten {
            inner: MemoryAuditLog::new(),
            seq: 3,
        });
        let start = Utc::now() - chrono::Duration::hours(1);
        for n in 0..5 {
            rewritten
                .append(
                    start + chrono::Duration::minutes(n),
                    record("agent-a", ORG, "staff.book", Some("pk-1")),
                )
                .await
                .expect("appended");
        }
        let (service, issuer, clock) = fixture_over(rewritten.clone(), None);
        let token = issuer
            .issue(
                &staff(StaffRole::Operator, ORG),
                clock.now(),
                Duration::from_secs(60),
            )
            .expect("issued");
        let wire = service
            .verify(&credential(&OperatorCredential::Token(token.token)))
            .await
            .expect("answered")
            .to_wire();
        assert!(!wire.ok);
        assert_eq!(wire.checked, 2);
        assert_eq!(wire.first_broken_seq, 3);
        assert_eq!(wire.break_kind, "altered");
        assert!(wire.detail.contains('3'));
        // The verification itself is on the trail.
        let last = rewritten.inner.entries().last().cloned().expect("an entry");
        assert_eq!((last.seq, last.record.action.as_str()), (6, VERIFY_ACTION));
    }
}
