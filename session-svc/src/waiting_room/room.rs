//! The waiting room's validated values: which room ([`Room`]), a ticket's id ([`TicketId`]),
//! a room's admission settings ([`RoomSettings`]) and what a visit to the queue answers
//! ([`TicketView`]). Wire strings become these at the edge; a malformed one is
//! `InvalidArgument` (or, for a ticket that cannot be ours, `NotFound`).

use chrono::{DateTime, Utc};
use platform::admission::DEFAULT_ROOM;
use platform::ids::CampaignId;

use crate::error::SessionError;

/// A waiting room: one campaign's, or the general room that governs every campaign without
/// one of its own.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Room {
    General,
    Campaign(CampaignId),
}

impl Room {
    /// `""` and `"*"` name the general room; anything else must be a campaign id.
    pub fn parse(raw: &str) -> Result<Self, SessionError> {
        let raw = raw.trim();
        if raw.is_empty() || raw == DEFAULT_ROOM {
            return Ok(Self::General);
        }
        Ok(Self::Campaign(CampaignId::parse(raw).map_err(|_| {
            SessionError::invalid(format!(
                "room must be \"*\" or a campaign id that {}",
                CampaignId::EXPECTED
            ))
        })?))
    }

    /// The room's name: `*` or the campaign id.
    pub fn as_str(&self) -> &str {
        match self {
            Self::General => DEFAULT_ROOM,
            Self::Campaign(campaign) => campaign.as_str(),
        }
    }
}

impl std::fmt::Display for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A ticket id: `<room>~<32 hex digits>`, so a poll names its room without a lookup. It is
/// not a credential: a ticket is answered only to the person it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TicketId {
    room: Room,
    raw: String,
}

impl TicketId {
    /// A fresh ticket id in `room`.
    pub fn generate(room: &Room) -> Self {
        Self {
            room: room.clone(),
            raw: format!("{}~{}", room.as_str(), uuid::Uuid::new_v4().simple()),
        }
    }

    /// A presented ticket id; `None` when it cannot be one of ours.
    pub fn parse(raw: &str) -> Option<Self> {
        let (room, random) = raw.rsplit_once('~')?;
        let hex = random.len() == 32 && random.bytes().all(|byte| byte.is_ascii_hexdigit());
        if !hex {
            return None;
        }
        let room = Room::parse(room).ok()?;
        if room == Room::General && room.as_str() != room_text(raw) {
            return None;
        }
        Some(Self {
            room,
            raw: raw.to_owned(),
        })
    }

    pub fn room(&self) -> &Room {
        &self.room
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

fn room_text(raw: &str) -> &str {
    raw.rsplit_once('~').map_or("", |(room, _)| room)
}

/// How a room admits people.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoomSettings {
    /// Whether the room limits admission; off, everyone is admitted at once.
    pub enabled: bool,
    /// People admitted per second while enabled.
    pub rate_per_second: f64,
    /// How many admissions may accumulate while nobody waits (the bucket's depth).
    pub burst: u32,
    /// Whether `enabled` and the rate follow booking-svc's capacity signal.
    pub automatic: bool,
}

impl RoomSettings {
    /// Refuses rates no room can run at.
    pub fn validate(&self) -> Result<(), SessionError> {
        if !self.rate_per_second.is_finite() || self.rate_per_second < 0.0 {
            return Err(SessionError::invalid(
                "rate_per_second must be a finite number of at least 0",
            ));
        }
        if self.rate_per_second > MAX_RATE_PER_SECOND {
            return Err(SessionError::invalid(format!(
                "rate_per_second must be at most {MAX_RATE_PER_SECOND}"
            )));
        }
        Ok(())
    }
}

/// The highest admission rate a room accepts (people per second).
pub const MAX_RATE_PER_SECOND: f64 = 100_000.0;

/// A room's settings and what it measured.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomState {
    pub room: Room,
    pub settings: RoomSettings,
    /// People waiting now.
    pub waiting: u64,
    /// Admissions per second, a moving average over the admission steps.
    pub measured_rate: f64,
}

/// What the queue answers about a person's ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TicketView {
    /// Waiting at `position` (1 = next).
    Waiting { ticket: String, position: u64 },
    /// Admitted until `until`; `grant` is the admission grant once one was issued.
    Admitted {
        ticket: String,
        until: DateTime<Utc>,
        grant: Option<String>,
    },
}

impl TicketView {
    pub fn ticket(&self) -> &str {
        match self {
            Self::Waiting { ticket, .. } | Self::Admitted { ticket, .. } => ticket,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn rooms_and_tickets_round_trip() {
        assert_eq!(Room::parse("").unwrap(), Room::General);
        assert_eq!(Room::parse("*").unwrap(), Room::General);
        let campaign = Room::parse("covid19-2021-18-49").unwrap();
        assert_eq!(campaign.as_str(), "covid19-2021-18-49");
        assert!(Room::parse("Not A Campaign").is_err());

        for room in [Room::General, campaign] {
            let ticket = TicketId::generate(&room);
            let parsed = TicketId::parse(ticket.as_str()).expect("our own ticket parses");
            assert_eq!(parsed.room(), &room);
        }
        assert!(TicketId::parse("*~nothex").is_none());
        assert!(TicketId::parse("no-separator").is_none());
        assert!(TicketId::parse("~0123456789abcdef0123456789abcdef").is_none());
        assert!(TicketId::parse("Bad~0123456789abcdef0123456789abcdef").is_none());
    }

    #[test]
    fn settings_refuse_impossible_rates() {
        let mut settings = RoomSettings {
            enabled: true,
            rate_per_second: 5.0,
            burst: 5,
            automatic: false,
        };
        assert!(settings.validate().is_ok());
        settings.rate_per_second = f64::NAN;
        assert!(settings.validate().is_err());
        settings.rate_per_second = -1.0;
        assert!(settings.validate().is_err());
        settings.rate_per_second = 1e9;
        assert!(settings.validate().is_err());
    }
}
