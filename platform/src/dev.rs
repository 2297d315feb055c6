//! What only the dev run (`vaxbook dev`) has: the settable clock every service reads and the
//! SMS sink the gateway shows on `/dev/sms`. Production wiring never constructs these.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::SettableClock;

/// One message the dev SMS sink "sent".
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SentSms {
    pub to: String,
    pub body: String,
    pub otp: String,
    pub sent_at: String,
}

/// Keeps the messages the dev run "sent", newest last, bounded.
#[derive(Debug, Default)]
pub struct SmsOutbox {
    messages: Mutex<Vec<SentSms>>,
}

impl SmsOutbox {
    const LIMIT: usize = 10_000;

    pub fn push(&self, message: SentSms) {
        if let Ok(mut messages) = self.messages.lock() {
            if messages.len() >= Self::LIMIT {
                messages.remove(0);
            }
            messages.push(message);
        }
    }

    /// Messages sent to `to` (digits compared, so 010-1234-5678 = 01012345678), newest first.
    pub fn sent_to(&self, to: &str) -> Vec<SentSms> {
        let wanted = digits(to);
        self.messages
            .lock()
            .map(|messages| {
                messages
                    .iter()
                    .rev()
                    .filter(|message| digits(&message.to) == wanted)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn digits(raw: &str) -> String {
    raw.chars().filter(char::is_ascii_digit).collect()
}

/// The handles the dev run shares between its services and the gateway's `/dev` endpoints.
#[derive(Clone, Debug)]
pub struct DevHooks {
    pub clock: Arc<SettableClock>,
    pub sms: Arc<SmsOutbox>,
}

impl DevHooks {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            clock: Arc::new(SettableClock::starting_at(start)),
            sms: Arc::new(SmsOutbox::default()),
        }
    }
}
