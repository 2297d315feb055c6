//! session-svc's audit trail of operators' calls on a person (`LookupPerson`, `ReleaseLock`):
//! the platform's hash-chained trail (`platform::audit`), kept in session-svc's own store. The
//! dev run uses the platform's in-memory trail; production keeps the chain in a Redis list
//! (`{prefix}session:audit`, one JSON entry per element, element `n-1` is entry `seq = n`),
//! appended by a script that pushes only if the list still has the length the new entry was
//! chained to, so replicas keep one linear chain. `vaxbook audit verify` style checks
//! (`platform::audit::verify_log`) work on it unchanged.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::audit::{AuditEntry, AuditLog, AuditQuery, AuditRecord, MAX_PAGE, next_entry};
use platform::redis_conn::RedisConnection;
use redis::Script;
use serde_json::{Value, json};

/// KEYS: list. ARGV: expected length, entry. Replies 1 when pushed, 0 when another append won.
const APPEND_SCRIPT: &str = r"
if redis.call('LLEN', KEYS[1]) ~= tonumber(ARGV[1]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[2])
return 1
";

/// How often an append retries after losing a race to another replica.
const APPEND_ATTEMPTS: usize = 16;

/// The audit chain in a Redis list.
#[derive(Clone)]
pub struct RedisAuditLog {
    connection: RedisConnection,
    key: String,
    append_script: Script,
}

impl RedisAuditLog {
    pub fn new(connection: RedisConnection, key_prefix: &str) -> Self {
        Self {
            connection,
            key: format!("{key_prefix}session:audit"),
            append_script: Script::new(APPEND_SCRIPT),
        }
    }
}

fn encode(entry: &AuditEntry) -> String {
    json!({
        "seq": entry.seq,
        "at_us": entry.at.timestamp_micros(),
        "actor": entry.record.actor,
        "organisation": entry.record.organisation,
        "role": entry.record.role,
        "action": entry.record.action,
        "person_key": entry.record.person_key,
        "outcome": entry.record.outcome,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    })
    .to_string()
}

fn decode(raw: &str) -> anyhow::Result<AuditEntry> {
    let value: Value = serde_json::from_str(raw)?;
    let text = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("an audit entry lacks {name}"))
    };
    let number = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_i64)
            .ok_or_else(|| anyhow::anyhow!("an audit entry lacks {name}"))
    };
    Ok(AuditEntry {
        seq: number("seq")?,
        at: DateTime::<Utc>::from_timestamp_micros(number("at_us")?)
            .ok_or_else(|| anyhow::anyhow!("an audit entry's time is out of range"))?,
        record: AuditRecord {
            actor: text("actor")?,
            organisation: text("organisation")?,
            role: text("role")?,
            action: text("action")?,
            person_key: value
                .get("person_key")
                .and_then(Value::as_str)
                .map(str::to_owned),
            outcome: text("outcome")?,
        },
        prev_hash: text("prev_hash")?,
        hash: text("hash")?,
    })
}

fn wanted(query: &AuditQuery, entry: &AuditEntry) -> bool {
    query
        .person_key
        .as_ref()
        .is_none_or(|key| entry.record.person_key.as_ref() == Some(key))
        && query
            .actor
            .as_ref()
            .is_none_or(|actor| &entry.record.actor == actor)
        && query.from.is_none_or(|from| entry.at >= from)
        && query.until.is_none_or(|until| entry.at < until)
}

#[async_trait]
impl AuditLog for RedisAuditLog {
    async fn append(&self, at: DateTime<Utc>, record: AuditRecord) -> anyhow::Result<AuditEntry> {
        let mut connection = self.connection.clone();
        for _ in 0..APPEND_ATTEMPTS {
            let (length, last): (i64, Option<String>) = redis::pipe()
                .cmd("LLEN")
                .arg(&self.key)
                .cmd("LINDEX")
                .arg(&self.key)
                .arg(-1)
                .query_async(&mut connection)
                .await?;
            let last = last.as_deref().map(decode).transpose()?;
            let entry = next_entry(
                last.as_ref().map(|last| (last.seq, last.hash.as_str())),
                at,
                record.clone(),
            );
            if entry.seq != length + 1 {
                anyhow::bail!("the audit list's length does not match its last entry");
            }
            let pushed: i64 = self
                .append_script
                .key(&self.key)
                .arg(length)
                .arg(encode(&entry))
                .invoke_async(&mut connection)
                .await?;
            if pushed == 1 {
                return Ok(entry);
            }
        }
        anyhow::bail!("the audit trail is too busy to append to")
    }

    async fn query(&self, query: &AuditQuery) -> anyhow::Result<Vec<AuditEntry>> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        let mut connection = self.connection.clone();
        let mut found = Vec::new();
        let mut start = query.after_seq.max(0);
        loop {
            let raw: Vec<String> = redis::cmd("LRANGE")
                .arg(&self.key)
                .arg(start)
                .arg(start + MAX_PAGE as i64 - 1)
                .query_async(&mut connection)
                .await?;
            if raw.is_empty() {
                return Ok(found);
            }
            start += raw.len() as i64;
            for each in &raw {
                let entry = decode(each)?;
                if wanted(query, &entry) {
                    found.push(entry);
                    if found.len() == limit {
                        return Ok(found);
                    }
                }
            }
        }
    }
}
