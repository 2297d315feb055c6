//! The audit trail (R9): who did what, when, for which person key, with what outcome — every
//! staff action (agent logins, caller verifications, bookings for callers) and every operator
//! action (campaigns, centers, slots, exclusions). Never an RRN, phone or name: people appear by
//! person key only.
//!
//! The trail is append-only and hash-chained: entry `n` stores `hash = SHA-256(prev_hash ‖
//! canonical(entry n))` where `prev_hash` is entry `n-1`'s hash ([`GENESIS_HASH`] for the first)
//! and the canonical form is a JSON array of the entry's fields in a fixed order. A rewritten
//! entry no longer matches its hash, a deleted one leaves a gap in `seq` and a `prev_hash` that
//! points nowhere; [`verify_chain`] names the first entry where either shows. In PostgreSQL
//! ([`PgAuditLog`]) the table also refuses UPDATE, DELETE and TRUNCATE with a trigger (trust
//! authentication is used here, so a role without the grants alone would not stop a superuser's
//! tools; the trigger does until someone drops it, and the chain shows what happened after).
//!
//! Each service owns its trail, even in a database it shares with another (booking-svc and
//! scheduling-svc share `DATABASE_URL`): a PostgreSQL trail is named ([`AUTH_TRAIL`],
//! [`BOOKING_TRAIL`], [`SCHEDULING_TRAIL`]), its rows carry the name, and seq, chain and append
//! lock are the trail's own. The name is part of the canonical form of every entry of a named
//! trail, so an entry moved to another trail no longer matches its hash there (and leaves a gap
//! in the trail it left, unless it was that trail's last). A trail alone in its store (in
//! memory, session-svc's Redis list) is unnamed ([`AuditLog::trail`] is `None`) and hashed
//! without a name, as are the PostgreSQL rows written before trails had names, kept as the
//! closed trail [`LEGACY_TRAIL`]. `vaxbook audit verify --log …` checks each trail.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The largest page a query returns.
pub const MAX_PAGE: usize = 500;
/// auth-svc's trail (in its staff database).
pub const AUTH_TRAIL: &str = "auth";
/// booking-svc's trail.
pub const BOOKING_TRAIL: &str = "booking";
/// scheduling-svc's trail (next to booking-svc's when they share a database).
pub const SCHEDULING_TRAIL: &str = "scheduling";
/// The PostgreSQL rows written before trails had names (migration V2): one chain of whatever
/// services wrote to that database, hashed without a trail name. Read and verified, never
/// appended to.
pub const LEGACY_TRAIL: &str = "legacy";

/// Whether `name` may name a trail: a lowercase ASCII letter, then up to 31 lowercase letters,
/// digits or `-` (the table's `audit_log_trail_name` check).
pub fn valid_trail_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|first| first.is_ascii_lowercase())
        && name.len() <= 32
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// What happened, as the acting service records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// The acting account id (agent or operator), or `dev-operator` for the dev-run shortcut.
    pub actor: String,
    pub organisation: String,
    /// `agent`, `supervisor`, `operator`.
    pub role: String,
    /// A stable verb, e.g. `staff.login`, `staff.book`, `admin.upsert-campaign`.
    pub action: String,
    /// The person acted for, by person key (never an RRN, phone or name).
    pub person_key: Option<String>,
    /// `ok` or the problem type name of the refusal (e.g. `slot-full`).
    pub outcome: String,
}

impl AuditRecord {
    /// The record of `action` by a staff account, or by nobody known (`None`: no staff token
    /// verified; actor `unknown`), about `person_key`, ending in `outcome`.
    pub fn by_staff(
        staff: Option<&crate::staff::AgentToken>,
        action: &str,
        person_key: Option<String>,
        outcome: &str,
    ) -> Self {
        Self {
            actor: staff.map_or_else(|| "unknown".to_owned(), |s| s.sub.clone()),
            organisation: staff.map(|s| s.org.clone()).unwrap_or_default(),
            role: staff
                .map(|s| s.role.as_str().to_owned())
                .unwrap_or_default(),
            action: action.to_owned(),
            person_key,
            outcome: outcome.to_owned(),
        }
    }
}

/// One entry of the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    /// Microsecond precision (what PostgreSQL keeps).
    pub at: DateTime<Utc>,
    pub record: AuditRecord,
    pub prev_hash: String,
    pub hash: String,
}

/// The canonical bytes hashed for one entry of `trail`: `[trail, seq, at_us, actor,
/// organisation, role, action, person_key, outcome]` for a named trail, the same without the
/// leading name for an unnamed one (`None`). The two forms never coincide (nine elements
/// starting with a string against eight starting with a number), so an entry hashed for one
/// trail checks under no other.
pub fn canonical(
    trail: Option<&str>,
    seq: i64,
    at: DateTime<Utc>,
    record: &AuditRecord,
) -> Vec<u8> {
    let mut fields = vec![
        serde_json::json!(seq),
        serde_json::json!(at.timestamp_micros()),
        serde_json::json!(record.actor),
        serde_json::json!(record.organisation),
        serde_json::json!(record.role),
        serde_json::json!(record.action),
        serde_json::json!(record.person_key),
        serde_json::json!(record.outcome),
    ];
    if let Some(trail) = trail {
        fields.insert(0, serde_json::json!(trail));
    }
    serde_json::Value::Array(fields).to_string().into_bytes()
}

/// The hash of an entry of `trail` given its predecessor's hash.
pub fn chain_hash(
    trail: Option<&str>,
    prev_hash: &str,
    seq: i64,
    at: DateTime<Utc>,
    record: &AuditRecord,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(canonical(trail, seq, at, record));
    hex_lower(&hasher.finalize())
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// Truncates to microseconds, as stored.
pub fn to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// The next entry of an unnamed trail after `last` (or the first).
pub fn next_entry(last: Option<(i64, &str)>, at: DateTime<Utc>, record: AuditRecord) -> AuditEntry {
    next_entry_in(None, last, at, record)
}

/// The next entry of `trail` after `last` (or the first).
pub fn next_entry_in(
    trail: Option<&str>,
    last: Option<(i64, &str)>,
    at: DateTime<Utc>,
    record: AuditRecord,
) -> AuditEntry {
    let (seq, prev_hash) = match last {
        Some((seq, hash)) => (seq + 1, hash.to_owned()),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let at = to_micros(at);
    let hash = chain_hash(trail, &prev_hash, seq, at, &record);
    AuditEntry {
        seq,
        at,
        record,
        prev_hash,
        hash,
    }
}

/// Where and why the chain is broken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("entry {seq} was altered: its content no longer matches its hash")]
    Altered { seq: i64 },
    #[error(
        "entry {seq} does not follow the entry before it (an entry was deleted or rewritten before {seq})"
    )]
    Unlinked { seq: i64 },
    #[error("entries {after}..{seq} are missing")]
    Gap { after: i64, seq: i64 },
}

impl ChainBreak {
    /// The entry where the break shows.
    pub fn seq(&self) -> i64 {
        match self {
            Self::Altered { seq } | Self::Unlinked { seq } | Self::Gap { seq, .. } => *seq,
        }
    }
}

/// Incremental chain check over the entries of one trail in `seq` order (pages may be fed one
/// after another).
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    trail: Option<String>,
    last: Option<(i64, String)>,
    checked: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A check of an unnamed trail.
    pub fn new() -> Self {
        Self::of(None)
    }

    /// A check of `trail` (`None`: unnamed; see [`AuditLog::trail`]).
    pub fn of(trail: Option<&str>) -> Self {
        Self {
            trail: trail.map(str::to_owned),
            last: None,
            checked: 0,
        }
    }

    /// Checks the next entry.
    pub fn check(&mut self, entry: &AuditEntry) -> Result<(), ChainBreak> {
        let (expected_seq, expected_prev) = match &self.last {
            Some((seq, hash)) => (seq + 1, hash.as_str()),
            None => (1, GENESIS_HASH),
        };
        if entry.seq != expected_seq {
            return Err(ChainBreak::Gap {
                after: expected_seq - 1,
                seq: entry.seq,
            });
        }
        let trail = self.trail.as_deref();
        if chain_hash(trail, &entry.prev_hash, entry.seq, entry.at, &entry.record) != entry.hash {
            return Err(ChainBreak::Altered { seq: entry.seq });
        }
        if entry.prev_hash != expected_prev {
            return Err(ChainBreak::Unlinked { seq: entry.seq });
        }
        self.last = Some((entry.seq, entry.hash.clone()));
        self.checked += 1;
        Ok(())
    }

    /// How many entries passed.
    pub fn checked(&self) -> u64 {
        self.checked
    }
}

/// Checks a whole unnamed chain; the number of entries on success.
pub fn verify_chain<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
) -> Result<u64, ChainBreak> {
    verify_trail(None, entries)
}

/// Checks the whole chain of `trail`; the number of entries on success.
pub fn verify_trail<'a>(
    trail: Option<&str>,
    entries: impl IntoIterator<Item = &'a AuditEntry>,
) -> Result<u64, ChainBreak> {
    let mut verifier = ChainVerifier::of(trail);
    for entry in entries {
        verifier.check(entry)?;
    }
    Ok(verifier.checked())
}

/// Which entries a query wants (all conditions combine; `after_seq` pages forward).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub person_key: Option<String>,
    pub actor: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub after_seq: i64,
    pub limit: usize,
}

impl AuditQuery {
    fn page_size(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE)
    }

    fn matches(&self, entry: &AuditEntry) -> bool {
        entry.seq > self.after_seq
            && self
                .person_key
                .as_ref()
                .is_none_or(|key| entry.record.person_key.as_ref() == Some(key))
            && self
                .actor
                .as_ref()
                .is_none_or(|actor| &entry.record.actor == actor)
            && self.from.is_none_or(|from| entry.at >= from)
            && self.until.is_none_or(|until| entry.at < until)
    }
}

/// Where a service appends its audit entries.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// The trail name bound into every entry's hash, or `None` for an unnamed trail (the only
    /// trail of its store, hashed without a name). Verify with [`ChainVerifier::of`] this.
    fn trail(&self) -> Option<&str> {
        None
    }
    /// Appends one entry, chained to the last.
    async fn append(&self, at: DateTime<Utc>, record: AuditRecord) -> anyhow::Result<AuditEntry>;
    /// Entries matching `query`, in `seq` order, at most one page.
    async fn query(&self, query: &AuditQuery) -> anyhow::Result<Vec<AuditEntry>>;
}

/// Appends `record` at `at`, or answers `unavailable` (retry in a second) when the trail cannot
/// be written: a service that audits an action gives no other answer without its entry.
pub async fn append_or_unavailable(
    log: &dyn AuditLog,
    at: DateTime<Utc>,
    record: AuditRecord,
) -> Result<AuditEntry, crate::problem::Problem> {
    let action = record.action.clone();
    log.append(at, record).await.map_err(|err| {
        tracing::error!(error = %err, action = %action, "writing the audit trail");
        crate::problem::Problem::new(
            crate::problem::ProblemKind::Unavailable,
            "the audit trail is unavailable",
        )
        .with_retry_after(std::time::Duration::from_secs(1))
    })
}

/// Walks a whole log in pages and checks its chain.
pub async fn verify_log(log: &dyn AuditLog) -> anyhow::Result<Result<u64, ChainBreak>> {
    let mut verifier = ChainVerifier::of(log.trail());
    let mut query = AuditQuery {
        limit: MAX_PAGE,
        ..AuditQuery::default()
    };
    loop {
        let page = log.query(&query).await?;
        let Some(last) = page.last() else {
            return Ok(Ok(verifier.checked()));
        };
        query.after_seq = last.seq;
        for entry in &page {
            if let Err(broken) = verifier.check(entry) {
                return Ok(Err(broken));
            }
        }
    }
}

/// The in-memory trail (dev run, tests).
#[derive(Debug, Default)]
pub struct MemoryAuditLog {
    entries: Mutex<Vec<AuditEntry>>,
}

impl MemoryAuditLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every entry (tests).
    pub fn entries(&self) -> Vec<AuditEntry> {
        self.entries.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl AuditLog for MemoryAuditLog {
    async fn append(&self, at: DateTime<Utc>, record: AuditRecord) -> anyhow::Result<AuditEntry> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| anyhow::anyhow!("audit log lock poisoned"))?;
        let entry = next_entry(
            entries.last().map(|last| (last.seq, last.hash.as_str())),
            at,
            record,
        );
        entries.push(entry.clone());
        Ok(entry)
    }

    async fn query(&self, query: &AuditQuery) -> anyhow::Result<Vec<AuditEntry>> {
        let entries = self
            .entries
            .lock()
            .map_err(|_| anyhow::anyhow!("audit log lock poisoned"))?;
        Ok(entries
            .iter()
            .filter(|entry| query.matches(entry))
            .take(query.page_size())
            .cloned()
            .collect())
    }
}

mod embedded {
    refinery::embed_migrations!("audit_migrations");
}

/// Name of the audit trail's migration history table (services may share a database).
pub const AUDIT_HISTORY_TABLE: &str = "audit_schema_history";

/// The audit trail's migrations (`platform/audit_migrations`), for [`crate::pg::migrate`] with
/// [`AUDIT_HISTORY_TABLE`]; [`PgAuditLog::migrate`] applies them all.
pub fn migrations_runner() -> refinery::Runner {
    embedded::migrations::runner()
}

/// The advisory lock key serialising the appends to `trail`, so each trail stays linear across
/// replicas while the trails of a shared database append side by side: the first 8 bytes of
/// SHA-256(`vaxbook.audit.append:` ‖ trail).
pub fn append_lock_key(trail: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(b"vaxbook.audit.append:")
        .chain_update(trail.as_bytes())
        .finalize();
    let mut key = [0_u8; 8];
    key.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(key)
}

/// One named trail in PostgreSQL (table `audit_log`, append-only by trigger, rows of every
/// trail of the database side by side, each trail its own seq and chain).
#[derive(Clone)]
pub struct PgAuditLog {
    pool: deadpool_postgres::Pool,
    trail: String,
}

impl std::fmt::Debug for PgAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgAuditLog")
            .field("trail", &self.trail)
            .finish_non_exhaustive()
    }
}

impl PgAuditLog {
    /// Applies the audit migrations to `url` and returns the service's trail `trail` over `pool`
    /// (a [`valid_trail_name`], not [`LEGACY_TRAIL`]: a service appends to its own trail).
    pub async fn migrate(
        url: &str,
        pool: deadpool_postgres::Pool,
        trail: &str,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            valid_trail_name(trail) && trail != LEGACY_TRAIL,
            "{trail:?} cannot name a service's audit trail"
        );
        crate::pg::migrate(url, migrations_runner(), AUDIT_HISTORY_TABLE).await?;
        Ok(Self::new(pool, trail))
    }

    /// The trail `trail` in a database already migrated (readers: `vaxbook audit verify`, tests).
    /// A name the table refuses (see [`valid_trail_name`]) holds no entries and takes none.
    pub fn new(pool: deadpool_postgres::Pool, trail: &str) -> Self {
        Self {
            pool,
            trail: trail.to_owned(),
        }
    }

    /// The trail's name, as the rows' `trail` column holds it.
    pub fn name(&self) -> &str {
        &self.trail
    }
}

fn entry_from_row(row: &tokio_postgres::Row) -> AuditEntry {
    AuditEntry {
        seq: row.get("seq"),
        at: row.get("at"),
        record: AuditRecord {
            actor: row.get("actor"),
            organisation: row.get("organisation"),
            role: row.get("role"),
            action: row.get("action"),
            person_key: row.get("person_key"),
            outcome: row.get("outcome"),
        },
        prev_hash: row.get("prev_hash"),
        hash: row.get("hash"),
    }
}

#[async_trait]
impl AuditLog for PgAuditLog {
    /// The rows' trail name, except for [`LEGACY_TRAIL`], whose rows were hashed unnamed.
    fn trail(&self) -> Option<&str> {
        (self.trail != LEGACY_TRAIL).then_some(self.trail.as_str())
    }

    async fn append(&self, at: DateTime<Utc>, record: AuditRecord) -> anyhow::Result<AuditEntry> {
        anyhow::ensure!(
            self.trail != LEGACY_TRAIL,
            "the {LEGACY_TRAIL} audit trail is closed: nothing is appended to it"
        );
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        transaction
            .execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[&append_lock_key(&self.trail)],
            )
            .await?;
        let last = transaction
            .query_opt(
                "SELECT seq, hash FROM audit_log WHERE trail = $1 ORDER BY seq DESC LIMIT 1",
                &[&self.trail],
            )
            .await?
            .map(|row| (row.get::<_, i64>(0), row.get::<_, String>(1)));
        let entry = next_entry_in(
            self.trail(),
            last.as_ref().map(|(seq, hash)| (*seq, hash.as_str())),
            at,
            record,
        );
        transaction
            .execute(
                "INSERT INTO audit_log (trail, seq, at, actor, organisation, role, action, person_key, outcome, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[
                    &self.trail,
                    &entry.seq,
                    &entry.at,
                    &entry.record.actor,
                    &entry.record.organisation,
                    &entry.record.role,
                    &entry.record.action,
                    &entry.record.person_key,
                    &entry.record.outcome,
                    &entry.prev_hash,
                    &entry.hash,
                ],
            )
            .await?;
        transaction.commit().await?;
        Ok(entry)
    }

    async fn query(&self, query: &AuditQuery) -> anyhow::Result<Vec<AuditEntry>> {
        let client = self.pool.get().await?;
        let limit = i64::try_from(query.page_size()).unwrap_or(500);
        let rows = client
            .query(
                "SELECT seq, at, actor, organisation, role, action, person_key, outcome, prev_hash, hash \
                 FROM audit_log \
                 WHERE trail = $1 \
                   AND seq > $2 \
                   AND ($3::text IS NULL OR person_key = $3) \
                   AND ($4::text IS NULL OR actor = $4) \
                   AND ($5::timestamptz IS NULL OR at >= $5) \
                   AND ($6::timestamptz IS NULL OR at < $6) \
                 ORDER BY seq LIMIT $7",
                &[
                    &self.trail,
                    &query.after_seq,
                    &query.person_key,
                    &query.actor,
                    &query.from,
                    &query.until,
                    &limit,
                ],
            )
            .await?;
        Ok(rows.iter().map(entry_from_row).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(action: &str, person: Option<&str>) -> AuditRecord {
        AuditRecord {
            actor: "agent-1".into(),
            organisation: "national-call-center".into(),
            role: "agent".into(),
            action: action.into(),
            person_key: person.map(str::to_owned),
            outcome: "ok".into(),
        }
    }

    async fn three() -> MemoryAuditLog {
        let log = MemoryAuditLog::new();
        let now = Utc::now();
        for (action, person) in [
            ("staff.login", None),
            ("staff.verify-caller", Some("pk-1")),
            ("staff.book", Some("pk-1")),
        ] {
            log.append(now, record(action, person))
                .await
                .expect("append");
        }
        log
    }

    #[tokio::test]
    async fn an_untouched_chain_verifies() {
        let log = three().await;
        assert_eq!(verify_log(&log).await.expect("read"), Ok(3));
        assert_eq!(log.entries()[0].prev_hash, GENESIS_HASH);
    }

    #[tokio::test]
    async fn an_altered_entry_is_pinpointed() {
        let log = three().await;
        let mut entries = log.entries();
        entries[1].record.outcome = "forbidden".into();
        assert_eq!(verify_chain(&entries), Err(ChainBreak::Altered { seq: 2 }));
    }

    #[tokio::test]
    async fn a_rehashed_entry_breaks_the_link_of_the_next() {
        let log = three().await;
        let mut entries = log.entries();
        entries[1].record.person_key = Some("pk-2".into());
        entries[1].hash = chain_hash(
            None,
            &entries[1].prev_hash,
            entries[1].seq,
            entries[1].at,
            &entries[1].record,
        );
        assert_eq!(verify_chain(&entries), Err(ChainBreak::Unlinked { seq: 3 }));
    }

    #[tokio::test]
    async fn a_deleted_entry_leaves_a_gap() {
        let log = three().await;
        let mut entries = log.entries();
        entries.remove(1);
        assert_eq!(
            verify_chain(&entries),
            Err(ChainBreak::Gap { after: 1, seq: 3 })
        );
    }

    #[tokio::test]
    async fn queries_filter_and_page() {
        let log = three().await;
        let by_person = AuditQuery {
            person_key: Some("pk-1".into()),
            limit: 1,
            ..AuditQuery::default()
        };
        let page = log.query(&by_person).await.expect("query");
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].seq, 2);
        let next = AuditQuery {
            after_seq: page[0].seq,
            ..by_person
        };
        let page = log.query(&next).await.expect("query");
        assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3]);
    }

    fn named(trail: &str) -> Vec<AuditEntry> {
        let now = Utc::now();
        let mut entries: Vec<AuditEntry> = Vec::new();
        for action in ["staff.login", "staff.book"] {
            let last = entries.last().map(|e| (e.seq, e.hash.as_str()));
            let entry = next_entry_in(Some(trail), last, now, record(action, Some("pk-1")));
            entries.push(entry);
        }
        entries
    }

    #[test]
    fn a_named_trail_checks_under_its_own_name_only() {
        let booking = named(BOOKING_TRAIL);
        assert_eq!(verify_trail(Some(BOOKING_TRAIL), &booking), Ok(2));
        // The same entries read as another trail's, or as an unnamed trail's, break at the first.
        assert_eq!(
            verify_trail(Some(SCHEDULING_TRAIL), &booking),
            Err(ChainBreak::Altered { seq: 1 })
        );
        assert_eq!(verify_chain(&booking), Err(ChainBreak::Altered { seq: 1 }));
        // And an unnamed trail's entries do not check as a named one's.
        let unnamed = next_entry(None, Utc::now(), record("staff.login", None));
        assert_eq!(
            verify_trail(Some(AUTH_TRAIL), [&unnamed]),
            Err(ChainBreak::Altered { seq: 1 })
        );
        let at = to_micros(Utc::now());
        let r = record("staff.login", None);
        assert_ne!(
            canonical(None, 1, at, &r),
            canonical(Some("auth"), 1, at, &r)
        );
        assert_ne!(
            canonical(Some("auth"), 1, at, &r),
            canonical(Some("booking"), 1, at, &r)
        );
    }

    #[test]
    fn trail_names_and_their_append_locks() {
        for name in [
            AUTH_TRAIL,
            BOOKING_TRAIL,
            SCHEDULING_TRAIL,
            LEGACY_TRAIL,
            "a-1",
        ] {
            assert!(valid_trail_name(name), "{name}");
        }
        for name in [
            "",
            "Booking",
            "1auth",
            "-auth",
            "auth_svc",
            "a b",
            &"a".repeat(33),
        ] {
            assert!(!valid_trail_name(name), "{name}");
        }
        assert!(valid_trail_name(&"a".repeat(32)));
        let keys: std::collections::HashSet<i64> = [AUTH_TRAIL, BOOKING_TRAIL, SCHEDULING_TRAIL]
            .into_iter()
            .map(append_lock_key)
            .collect();
        assert_eq!(keys.len(), 3);
        assert_eq!(append_lock_key(BOOKING_TRAIL), append_lock_key("booking"));
    }
}
