//! The SMS port: how a one-time code reaches the person's phone. Production appends the message
//! to a Redis stream (`{prefix}sms:outbox`) that the SMS relay delivers from, so a slow SMS
//! gateway never holds a verification request open; the dev run keeps messages in memory for
//! `/dev/sms`.

use std::sync::Arc;

use platform::clock::{SharedClock, rfc3339_kst};
use platform::dev::{SentSms, SmsOutbox};
use platform::redis_conn::RedisConnection;

use crate::domain::Phone;

/// The outbox could not take the message.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("appending to the SMS outbox: {0}")]
    Outbox(#[from] redis::RedisError),
}

/// Sends a text message with a one-time code.
#[async_trait::async_trait]
pub trait SmsSender: Send + Sync {
    async fn send(&self, to: &Phone, body: &str, otp: &str) -> Result<(), SmsError>;
}

/// The dev run's sink: messages land in the shared [`SmsOutbox`] the gateway shows.
pub struct DevSmsSender {
    outbox: Arc<SmsOutbox>,
    clock: SharedClock,
}

impl DevSmsSender {
    pub fn new(outbox: Arc<SmsOutbox>, clock: SharedClock) -> Self {
        Self { outbox, clock }
    }
}

#[async_trait::async_trait]
impl SmsSender for DevSmsSender {
    async fn send(&self, to: &Phone, body: &str, otp: &str) -> Result<(), SmsError> {
        self.outbox.push(SentSms {
            to: to.formatted(),
            body: body.to_owned(),
            otp: otp.to_owned(),
            sent_at: rfc3339_kst(self.clock.now()),
        });
        Ok(())
    }
}

/// The production outbox: one stream entry per message, trimmed to about the last 100,000.
pub struct RedisStreamSmsSender {
    connection: RedisConnection,
    stream_key: String,
    clock: SharedClock,
}

impl RedisStreamSmsSender {
    /// Roughly how many messages the stream keeps for the relay (and for inspection).
    pub const MAX_LENGTH: u64 = 100_000;

    /// Seconds after its last message that the stream is dropped.
    pub const IDLE_EXPIRY_SECS: u64 = 86_400;

    pub fn new(connection: RedisConnection, key_prefix: &str, clock: SharedClock) -> Self {
        Self {
            connection,
            stream_key: Self::stream_key(key_prefix),
            clock,
        }
    }

    /// The stream the relay reads: `{prefix}sms:outbox`.
    pub fn stream_key(key_prefix: &str) -> String {
        format!("{key_prefix}sms:outbox")
    }
}

#[async_trait::async_trait]
impl SmsSender for RedisStreamSmsSender {
    async fn send(&self, to: &Phone, body: &str, otp: &str) -> Result<(), SmsError> {
        let mut connection = self.connection.clone();
        // The stream expires a day after its last message: a code lives for minutes, so an
        // outbox nobody has read for a day holds nothing worth delivering.
        redis::pipe()
            .atomic()
            .cmd("XADD")
            .arg(&self.stream_key)
            .arg("MAXLEN")
            .arg("~")
            .arg(Self::MAX_LENGTH)
            .arg("*")
            .arg("to")
            .arg(to.formatted())
            .arg("body")
            .arg(body)
            .arg("otp")
            .arg(otp)
            .arg("sent_at")
            .arg(rfc3339_kst(self.clock.now()))
            .ignore()
            .cmd("EXPIRE")
            .arg(&self.stream_key)
            .arg(Self::IDLE_EXPIRY_SECS)
            .ignore()
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use chrono::{TimeZone, Utc};
    use platform::clock::SettableClock;

    use super::*;

    fn clock() -> SharedClock {
        Arc::new(SettableClock::starting_at(
            Utc.with_ymd_and_hms(2021, 8, 9, 11, 0, 0).unwrap(),
        ))
    }

    #[tokio::test]
    async fn the_dev_sender_fills_the_shared_outbox_with_kst_times() {
        let outbox = Arc::new(SmsOutbox::default());
        let sender = DevSmsSender::new(outbox.clone(), clock());
        let phone = Phone::parse("01012345678").unwrap();
        sender.send(&phone, "hello 123456", "123456").await.unwrap();
        let sent = outbox.sent_to("010-1234-5678");
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, "010-1234-5678");
        assert_eq!(sent[0].otp, "123456");
        assert_eq!(sent[0].body, "hello 123456");
        assert!(
            sent[0].sent_at.starts_with("2021-08-09T20:00:"),
            "{}",
            sent[0].sent_at
        );
        assert!(sent[0].sent_at.ends_with("+09:00"));
    }

    #[tokio::test]
    async fn the_redis_sender_appends_to_the_prefixed_stream() {
        let connection = platform::redis_conn::connect_for_tests().await.unwrap();
        let prefix = platform::redis_conn::test_prefix("auth-sms");
        let sender = RedisStreamSmsSender::new(connection.clone(), &prefix, clock());
        let phone = Phone::parse("010-2222-3333").unwrap();
        sender.send(&phone, "first", "111111").await.unwrap();
        sender.send(&phone, "second", "222222").await.unwrap();

        let mut connection = connection;
        let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XREVRANGE")
            .arg(format!("{prefix}sms:outbox"))
            .arg("+")
            .arg("-")
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(entries.len(), 2);
        let newest = &entries[0].1;
        assert_eq!(newest["to"], "010-2222-3333");
        assert_eq!(newest["body"], "second");
        assert_eq!(newest["otp"], "222222");
        assert!(newest["sent_at"].starts_with("2021-08-09T20:00:"));
        assert_eq!(entries[1].1["otp"], "111111");
    }
}
