//! The in-process waiting rooms for `vaxbook dev` and unit tests: one mutex over every room, so
//! a visit and a step are atomic like the Redis scripts. Admitted people who never came back
//! are dropped once their return window has passed, so memory stays bounded by the people
//! actually waiting or recently admitted.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    FRONT_OFFSET, MAX_ADMITTED_PER_STEP, PersonPlace, QueueStore, QueueTimes, StepOutcome,
    TicketRecord, Visit,
};
use crate::domain::PersonKey;
use crate::store::{StoreError, instant_from_millis, whole_millis};
use crate::waiting_room::room::{Room, RoomSettings, RoomState, TicketId, TicketView};

#[derive(Debug, Default)]
struct RoomTables {
    settings: Option<RoomSettings>,
    next_order: i64,
    /// order → person key, the people waiting.
    waiting: BTreeMap<i64, String>,
    /// person key → their ticket.
    tickets: HashMap<String, TicketRecord>,
    /// person key → their admission grant.
    grants: HashMap<String, String>,
    tokens: f64,
    last_step_ms: Option<i64>,
    measured_rate: f64,
}

impl RoomTables {
    fn settings_or(&self, defaults: &RoomSettings) -> RoomSettings {
        self.settings.unwrap_or(*defaults)
    }

    fn admit_person(&mut self, person: &str, until_ms: i64) {
        if let Some(record) = self.tickets.get_mut(person) {
            self.waiting.remove(&record.order);
            record.admitted_until_ms = Some(until_ms);
        }
    }

    fn position(&self, order: i64) -> u64 {
        self.waiting.range(..=order).count() as u64
    }

    fn view(&self, person: &str) -> Option<TicketView> {
        let record = self.tickets.get(person)?;
        Some(match record.admitted_until_ms {
            Some(until_ms) => TicketView::Admitted {
                ticket: record.ticket.clone(),
                until: instant_from_millis(until_ms).unwrap_or_default(),
                grant: self.grants.get(person).cloned(),
            },
            None => TicketView::Waiting {
                ticket: record.ticket.clone(),
                position: self.position(record.order),
            },
        })
    }
}

/// Waiting rooms in process memory.
#[derive(Debug, Default)]
pub struct MemoryQueueStore {
    rooms: Mutex<HashMap<Room, RoomTables>>,
}

impl MemoryQueueStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<Room, RoomTables>> {
        // Every update keeps the maps consistent step by step: a poisoned lock is safe to use.
        self.rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl QueueStore for MemoryQueueStore {
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
        let admit_until = now_ms.saturating_add(whole_millis(times.admission));
        let return_ms = whole_millis(times.return_window);
        let person = person_key.as_str();
        let mut rooms = self.rooms();
        let tables = rooms.entry(room.clone()).or_default();
        let enabled = tables.settings_or(defaults).enabled;

        let known = tables.tickets.get(person).cloned();
        // A ticket whose admission lapsed past the return window is forgotten: a new arrival.
        let known = known.filter(|record| {
            record
                .admitted_until_ms
                .is_none_or(|until| until.saturating_add(return_ms) > now_ms)
        });
        match known {
            Some(record) => {
                if visit == Visit::Poll && record.ticket != ticket.as_str() {
                    return Ok(None);
                }
                match record.admitted_until_ms {
                    Some(until) if until > now_ms => {}
                    Some(_) => {
                        // Lapsed without booking: back to the front, in first-arrival order.
                        tables.grants.remove(person);
                        let front = if record.order < 0 {
                            record.order
                        } else {
                            record.order - FRONT_OFFSET
                        };
                        if let Some(kept) = tables.tickets.get_mut(person) {
                            kept.order = front;
                            kept.admitted_until_ms = None;
                        }
                        if enabled {
                            tables.waiting.insert(front, person.to_owned());
                        } else {
                            tables.admit_person(person, admit_until);
                        }
                    }
                    None if !enabled => tables.admit_person(person, admit_until),
                    None => {}
                }
            }
            None => {
                if visit == Visit::Poll {
                    return Ok(None);
                }
                tables.next_order += 1;
                let order = tables.next_order;
                tables.grants.remove(person);
                tables.tickets.insert(
                    person.to_owned(),
                    TicketRecord {
                        ticket: ticket.as_str().to_owned(),
                        order,
                        admitted_until_ms: None,
                    },
                );
                if enabled {
                    tables.waiting.insert(order, person.to_owned());
                } else {
                    tables.admit_person(person, admit_until);
                }
            }
        }
        Ok(tables.view(person))
    }

    async fn keep_grant(
        &self,
        room: &Room,
        person_key: &PersonKey,
        grant: &str,
    ) -> Result<String, StoreError> {
        let mut rooms = self.rooms();
        let tables = rooms.entry(room.clone()).or_default();
        Ok(tables
            .grants
            .entry(person_key.as_str().to_owned())
            .or_insert_with(|| grant.to_owned())
            .clone())
    }

    async fn admit(
        &self,
        room: &Room,
        now: DateTime<Utc>,
        defaults: &RoomSettings,
        times: QueueTimes,
    ) -> Result<StepOutcome, StoreError> {
        let now_ms = now.timestamp_millis();
        let until = now_ms.saturating_add(whole_millis(times.admission));
        let return_ms = whole_millis(times.return_window);
        let mut rooms = self.rooms();
        let tables = rooms.entry(room.clone()).or_default();
        let settings = tables.settings_or(defaults);
        let elapsed_ms = tables
            .last_step_ms
            .map_or(0, |last| now_ms.saturating_sub(last).max(0));
        let waiting = tables.waiting.len() as u64;
        let count = if settings.enabled {
            tables.tokens = (tables.tokens + settings.rate_per_second * elapsed_ms as f64 / 1000.0)
                .min(f64::from(settings.burst.max(1)));
            let count = (tables.tokens.floor() as u64).min(waiting);
            tables.tokens -= count as f64;
            count
        } else {
            tables.tokens = 0.0;
            waiting
        }
        .min(MAX_ADMITTED_PER_STEP);
        let admitted: Vec<String> = tables
            .waiting
            .values()
            .take(count as usize)
            .cloned()
            .collect();
        for person in &admitted {
            tables.admit_person(person, until);
        }
        if elapsed_ms > 0 && (count > 0 || waiting > 0) {
            let instant = count as f64 * 1000.0 / elapsed_ms as f64;
            tables.measured_rate = 0.8 * tables.measured_rate + 0.2 * instant;
        }
        tables.last_step_ms = Some(now_ms);
        // Forget admitted people whose return window has passed.
        let forgotten: Vec<String> = tables
            .tickets
            .iter()
            .filter(|(_, record)| {
                record
                    .admitted_until_ms
                    .is_some_and(|until| until.saturating_add(return_ms) <= now_ms)
            })
            .map(|(person, _)| person.clone())
            .collect();
        for person in forgotten {
            tables.tickets.remove(&person);
            tables.grants.remove(&person);
        }
        Ok(StepOutcome {
            admitted: count,
            still_waiting: waiting - count,
            measured_rate: tables.measured_rate,
        })
    }

    async fn state(&self, room: &Room, defaults: &RoomSettings) -> Result<RoomState, StoreError> {
        let rooms = self.rooms();
        let (settings, waiting, measured_rate) = match rooms.get(room) {
            Some(tables) => (
                tables.settings_or(defaults),
                tables.waiting.len() as u64,
                tables.measured_rate,
            ),
            None => (*defaults, 0, 0.0),
        };
        Ok(RoomState {
            room: room.clone(),
            settings,
            waiting,
            measured_rate,
        })
    }

    async fn set_settings(&self, room: &Room, settings: &RoomSettings) -> Result<(), StoreError> {
        self.rooms().entry(room.clone()).or_default().settings = Some(*settings);
        Ok(())
    }

    async fn has_settings(&self, room: &Room) -> Result<bool, StoreError> {
        Ok(self
            .rooms()
            .get(room)
            .is_some_and(|tables| tables.settings.is_some()))
    }

    async fn rooms(&self) -> Result<Vec<Room>, StoreError> {
        let mut rooms: Vec<Room> = self.rooms().keys().cloned().collect();
        rooms.sort();
        Ok(rooms)
    }

    async fn places(
        &self,
        person_key: &PersonKey,
        rooms: &[Room],
        _now: DateTime<Utc>,
    ) -> Result<Vec<PersonPlace>, StoreError> {
        let tables = self.rooms();
        Ok(rooms
            .iter()
            .filter_map(|room| {
                let view = tables.get(room)?.view(person_key.as_str())?;
                Some(PersonPlace {
                    room: room.clone(),
                    view,
                })
            })
            .collect())
    }
}
