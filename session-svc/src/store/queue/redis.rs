//! The Redis waiting rooms. A visit (take or poll) is one Lua script and an admission step is
//! another, so concurrent arrivals get distinct places in order and several replicas stepping
//! the same room share one token bucket. Every key of a room carries the hash tag `{q:<room>}`
//! and every key a script touches is passed in `KEYS`, so the scripts run unchanged on Redis
//! Cluster (each touches one slot). The set of rooms is the one key outside a room's slot and
//! is never touched by a script.
//!
//! Keys (under the configured prefix), for room `R` (`*` or a campaign id):
//! - `{q:R}:seq` — arrival counter;
//! - `{q:R}:waiting` — sorted set person → arrival order (a returning person's order is moved
//!   `FRONT_OFFSET` ahead);
//! - `{q:R}:tickets` — hash person → `ticket order until_ms` (`-` while waiting): the person's
//!   ticket lives in the room's slot, so the script that decides the place also finds it;
//! - `{q:R}:admitted` — sorted set person → admission end, to forget people who never return;
//! - `{q:R}:grants` — hash person → the admission grant handed out;
//! - `{q:R}:conf` — hash `enabled rate burst auto` (absent: the configured defaults);
//! - `{q:R}:bucket` — hash `tokens last rate` (the bucket and the measured admission rate);
//! - `queue:rooms` — set of rooms.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::redis_conn::RedisConnection;
use redis::Script;

use super::{
    FRONT_OFFSET, MAX_ADMITTED_PER_STEP, PersonPlace, QueueStore, QueueTimes, StepOutcome, Visit,
};
use crate::domain::PersonKey;
use crate::store::{CorruptData, StoreError, instant_from_millis, whole_millis};
use crate::waiting_room::room::{Room, RoomSettings, RoomState, TicketId, TicketView};

/// KEYS: seq, waiting, tickets, grants, conf, admitted. ARGV: mode, person, ticket, now_ms,
/// admit_until_ms, return_ms, default_enabled, front_offset.
/// Replies `{'none'}`, `{'waiting', ticket, position, ''}` or `{'admitted', ticket, until_ms,
/// grant}`.
const VISIT_SCRIPT: &str = r"
local now = tonumber(ARGV[4])
local enabled = redis.call('HGET', KEYS[5], 'enabled')
if not enabled then enabled = ARGV[7] end
local person = ARGV[2]
local ticket, order, until_ms
local raw = redis.call('HGET', KEYS[3], person)
if raw then
  local t, o, u = string.match(raw, '^(%S+) (%S+) (%S+)$')
  ticket = t
  order = tonumber(o)
  until_ms = tonumber(u)
  if until_ms and until_ms + tonumber(ARGV[6]) <= now then
    ticket = nil
  end
end
if not ticket then
  if ARGV[1] == 'poll' then return {'none'} end
  ticket = ARGV[3]
  order = redis.call('INCR', KEYS[1])
  until_ms = nil
  redis.call('HDEL', KEYS[4], person)
  redis.call('ZREM', KEYS[6], person)
  if enabled == '1' then
    redis.call('ZADD', KEYS[2], order, person)
  else
    until_ms = tonumber(ARGV[5])
  end
else
  if ARGV[1] == 'poll' and ticket ~= ARGV[3] then return {'none'} end
  if until_ms then
    if until_ms <= now then
      redis.call('HDEL', KEYS[4], person)
      redis.call('ZREM', KEYS[6], person)
      if order >= 0 then order = order - tonumber(ARGV[8]) end
      if enabled == '1' then
        until_ms = nil
        redis.call('ZADD', KEYS[2], order, person)
      else
        until_ms = tonumber(ARGV[5])
      end
    end
  elseif enabled ~= '1' then
    redis.call('ZREM', KEYS[2], person)
    until_ms = tonumber(ARGV[5])
  end
end
local until_text = '-'
if until_ms then until_text = string.format('%d', until_ms) end
redis.call('HSET', KEYS[3], person, ticket .. ' ' .. string.format('%d', order) .. ' ' .. until_text)
if until_ms then
  redis.call('ZADD', KEYS[6], until_text, person)
  local grant = redis.call('HGET', KEYS[4], person) or ''
  return {'admitted', ticket, until_text, grant}
end
local rank = redis.call('ZRANK', KEYS[2], person)
if not rank then
  redis.call('ZADD', KEYS[2], order, person)
  rank = redis.call('ZRANK', KEYS[2], person)
end
return {'waiting', ticket, tostring(rank + 1), ''}
";

/// KEYS: waiting, tickets, grants, conf, bucket, admitted. ARGV: now_ms, default_enabled,
/// default_rate, default_burst, admit_until_ms, return_ms, max_per_step.
/// Replies `{admitted, still_waiting, measured_rate}`.
const ADMIT_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local conf = redis.call('HMGET', KEYS[4], 'enabled', 'rate', 'burst')
local enabled = conf[1] or ARGV[2]
local rate = tonumber(conf[2] or ARGV[3]) or 0
local burst = tonumber(conf[3] or ARGV[4]) or 1
if burst < 1 then burst = 1 end
local bucket = redis.call('HMGET', KEYS[5], 'tokens', 'last', 'rate')
local tokens = tonumber(bucket[1]) or 0
local last = tonumber(bucket[2])
local measured = tonumber(bucket[3]) or 0
local elapsed = 0
if last then elapsed = math.max(0, now - last) end
local waiting = redis.call('ZCARD', KEYS[1])
local count
if enabled == '1' then
  tokens = math.min(burst, tokens + rate * elapsed / 1000)
  count = math.min(math.floor(tokens), waiting)
  tokens = tokens - count
else
  tokens = 0
  count = waiting
end
count = math.min(count, tonumber(ARGV[7]))
if count > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[1], count)
  for i = 1, #popped, 2 do
    local person = popped[i]
    local raw = redis.call('HGET', KEYS[2], person)
    if raw then
      local ticket, order = string.match(raw, '^(%S+) (%S+) ')
      if ticket then
        redis.call('HSET', KEYS[2], person, ticket .. ' ' .. order .. ' ' .. ARGV[5])
        redis.call('ZADD', KEYS[6], ARGV[5], person)
      end
    end
  end
end
if elapsed > 0 and (count > 0 or waiting > 0) then
  measured = 0.8 * measured + 0.2 * (count * 1000 / elapsed)
end
local stale = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', string.format('%d', now - tonumber(ARGV[6])), 'LIMIT', 0, 1000)
for _, person in ipairs(stale) do
  redis.call('HDEL', KEYS[2], person)
  redis.call('HDEL', KEYS[3], person)
  redis.call('ZREM', KEYS[6], person)
end
redis.call('HSET', KEYS[5], 'tokens', tostring(tokens), 'last', ARGV[1], 'rate', tostring(measured))
return {count, waiting - count, tostring(measured)}
";

/// Waiting rooms in Redis.
#[derive(Clone)]
pub struct RedisQueueStore {
    connection: RedisConnection,
    key_prefix: String,
    visit_script: Script,
    admit_script: Script,
}

impl std::fmt::Debug for RedisQueueStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueueStore")
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

fn flag(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}

impl RedisQueueStore {
    /// Rooms whose keys all start with `key_prefix` (`vaxbook:` in production).
    pub fn new(connection: RedisConnection, key_prefix: impl Into<String>) -> Self {
        Self {
            connection,
            key_prefix: key_prefix.into(),
            visit_script: Script::new(VISIT_SCRIPT),
            admit_script: Script::new(ADMIT_SCRIPT),
        }
    }

    /// The key `part` of `room`, under the room's hash tag.
    pub fn room_key(&self, room: &Room, part: &str) -> String {
        format!("{}{{q:{}}}:{part}", self.key_prefix, room.as_str())
    }

    fn rooms_key(&self) -> String {
        format!("{}queue:rooms", self.key_prefix)
    }

    async fn remember_room(&self, room: &Room) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        redis::cmd("SADD")
            .arg(self.rooms_key())
            .arg(room.as_str())
            .query_async::<i64>(&mut connection)
            .await?;
        Ok(())
    }
}

fn parse_millis(raw: &str) -> Result<i64, StoreError> {
    raw.parse()
        .map_err(|err| StoreError::Corrupt(CorruptData::ExpiryNotANumber(err)))
}

#[async_trait]
impl QueueStore for RedisQueueStore {
    async fn visit(
        &self,
        visit: Visit,
        person_key: &PersonKey,
        ticket: &TicketId,
        now: DateTime<Utc>,
        defaults: &RoomSettings,
        times: QueueTimes,
    ) -> Result<Option<TicketView>, StoreError> {
        let room = ticket.room();
        let now_ms = now.timestamp_millis();
        let mut connection = self.connection.clone();
        let reply: Vec<String> = self
            .visit_script
            .key(self.room_key(room, "seq"))
            .key(self.room_key(room, "waiting"))
            .key(self.room_key(room, "tickets"))
            .key(self.room_key(room, "grants"))
            .key(self.room_key(room, "conf"))
            .key(self.room_key(room, "admitted"))
            .arg(match visit {
                Visit::Take => "take",
                Visit::Poll => "poll",
            })
            .arg(person_key.as_str())
            .arg(ticket.as_str())
            .arg(now_ms)
            .arg(now_ms.saturating_add(whole_millis(times.admission)))
            .arg(whole_millis(times.return_window))
            .arg(flag(defaults.enabled))
            .arg(FRONT_OFFSET)
            .invoke_async(&mut connection)
            .await?;
        if visit == Visit::Take {
            self.remember_room(room).await?;
        }
        match reply.as_slice() {
            [outcome] if outcome == "none" => Ok(None),
            [outcome, ticket, position, _] if outcome == "waiting" => {
                Ok(Some(TicketView::Waiting {
                    ticket: ticket.clone(),
                    position: position.parse().map_err(|_| {
                        StoreError::Corrupt(CorruptData::UnknownClaimOutcome(
                            "queue position".to_owned(),
                        ))
                    })?,
                }))
            }
            [outcome, ticket, until, grant] if outcome == "admitted" => {
                Ok(Some(TicketView::Admitted {
                    ticket: ticket.clone(),
                    until: instant_from_millis(parse_millis(until)?)?,
                    grant: (!grant.is_empty()).then(|| grant.clone()),
                }))
            }
            _ => Err(StoreError::Corrupt(CorruptData::UnknownClaimOutcome(
                "queue visit".to_owned(),
            ))),
        }
    }

    async fn keep_grant(
        &self,
        room: &Room,
        person_key: &PersonKey,
        grant: &str,
    ) -> Result<String, StoreError> {
        let key = self.room_key(room, "grants");
        let mut connection = self.connection.clone();
        let set: i64 = redis::cmd("HSETNX")
            .arg(&key)
            .arg(person_key.as_str())
            .arg(grant)
            .query_async(&mut connection)
            .await?;
        if set == 1 {
            return Ok(grant.to_owned());
        }
        let kept: Option<String> = redis::cmd("HGET")
            .arg(&key)
            .arg(person_key.as_str())
            .query_async(&mut connection)
            .await?;
        Ok(kept.unwrap_or_else(|| grant.to_owned()))
    }

    async fn admit(
        &self,
        room: &Room,
        now: DateTime<Utc>,
        defaults: &RoomSettings,
        times: QueueTimes,
    ) -> Result<StepOutcome, StoreError> {
        let now_ms = now.timestamp_millis();
        let mut connection = self.connection.clone();
        let (admitted, still_waiting, measured): (u64, u64, String) = self
            .admit_script
            .key(self.room_key(room, "waiting"))
            .key(self.room_key(room, "tickets"))
            .key(self.room_key(room, "grants"))
            .key(self.room_key(room, "conf"))
            .key(self.room_key(room, "bucket"))
            .key(self.room_key(room, "admitted"))
            .arg(now_ms)
            .arg(flag(defaults.enabled))
            .arg(defaults.rate_per_second)
            .arg(defaults.burst)
            .arg(now_ms.saturating_add(whole_millis(times.admission)))
            .arg(whole_millis(times.return_window))
            .arg(MAX_ADMITTED_PER_STEP)
            .invoke_async(&mut connection)
            .await?;
        Ok(StepOutcome {
            admitted,
            still_waiting,
            measured_rate: measured.parse().unwrap_or(0.0),
        })
    }

    async fn state(&self, room: &Room, defaults: &RoomSettings) -> Result<RoomState, StoreError> {
        let mut connection = self.connection.clone();
        let ((enabled, rate, burst, automatic), waiting, measured): (
            (
                Option<String>,
                Option<String>,
                Option<String>,
                Option<String>,
            ),
            u64,
            Option<String>,
        ) = redis::pipe()
            .cmd("HMGET")
            .arg(self.room_key(room, "conf"))
            .arg("enabled")
            .arg("rate")
            .arg("burst")
            .arg("auto")
            .cmd("ZCARD")
            .arg(self.room_key(room, "waiting"))
            .cmd("HGET")
            .arg(self.room_key(room, "bucket"))
            .arg("rate")
            .query_async(&mut connection)
            .await?;
        let settings = RoomSettings {
            enabled: enabled.map_or(defaults.enabled, |value| value == "1"),
            rate_per_second: rate
                .and_then(|value| value.parse().ok())
                .unwrap_or(defaults.rate_per_second),
            burst: burst
                .and_then(|value| value.parse().ok())
                .unwrap_or(defaults.burst),
            automatic: automatic.map_or(defaults.automatic, |value| value == "1"),
        };
        Ok(RoomState {
            room: room.clone(),
            settings,
            waiting,
            measured_rate: measured.and_then(|value| value.parse().ok()).unwrap_or(0.0),
        })
    }

    async fn set_settings(&self, room: &Room, settings: &RoomSettings) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        redis::cmd("HSET")
            .arg(self.room_key(room, "conf"))
            .arg("enabled")
            .arg(flag(settings.enabled))
            .arg("rate")
            .arg(settings.rate_per_second)
            .arg("burst")
            .arg(settings.burst)
            .arg("auto")
            .arg(flag(settings.automatic))
            .query_async::<i64>(&mut connection)
            .await?;
        self.remember_room(room).await
    }

    async fn has_settings(&self, room: &Room) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let exists: i64 = redis::cmd("EXISTS")
            .arg(self.room_key(room, "conf"))
            .query_async(&mut connection)
            .await?;
        Ok(exists == 1)
    }

    async fn rooms(&self) -> Result<Vec<Room>, StoreError> {
        let mut connection = self.connection.clone();
        let names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.rooms_key())
            .query_async(&mut connection)
            .await?;
        let mut rooms: Vec<Room> = names
            .iter()
            .filter_map(|name| Room::parse(name).ok())
            .collect();
        rooms.sort();
        Ok(rooms)
    }

    async fn places(
        &self,
        person_key: &PersonKey,
        rooms: &[Room],
        _now: DateTime<Utc>,
    ) -> Result<Vec<PersonPlace>, StoreError> {
        let mut places = Vec::new();
        for room in rooms {
            let mut connection = self.connection.clone();
            let (record, rank, grant): (Option<String>, Option<u64>, Option<String>) =
                redis::pipe()
                    .cmd("HGET")
                    .arg(self.room_key(room, "tickets"))
                    .arg(person_key.as_str())
                    .cmd("ZRANK")
                    .arg(self.room_key(room, "waiting"))
                    .arg(person_key.as_str())
                    .cmd("HGET")
                    .arg(self.room_key(room, "grants"))
                    .arg(person_key.as_str())
                    .query_async(&mut connection)
                    .await?;
            let Some(record) = record else { continue };
            let mut fields = record.split(' ');
            let (Some(ticket), Some(_order), Some(until)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let view = match (until, rank) {
                ("-", Some(rank)) => TicketView::Waiting {
                    ticket: ticket.to_owned(),
                    position: rank + 1,
                },
                ("-", None) => continue,
                (until, _) => TicketView::Admitted {
                    ticket: ticket.to_owned(),
                    until: instant_from_millis(parse_millis(until)?)?,
                    grant,
                },
            };
            places.push(PersonPlace {
                room: room.clone(),
                view,
            });
        }
        Ok(places)
    }
}
