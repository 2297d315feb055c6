//! Abuse limits that a new verification cannot reset. Verification starts are counted per phone
//! number, per person and per client address; wrong one-time codes are counted per person and
//! per phone across verifications, and past the limit both are locked out until the counting
//! window ends. The counters live in the challenge store (Redis in production, so every
//! replica counts together), keyed by a pseudonymous subject: the person key, or a keyed hash
//! of the phone number or client address, so no number or address is stored in clear.
//!
//! Proxy resolutions (a verified person naming someone else to book for, by name and RRN) are
//! counted per booker and per client address in the same window, so the proxy path cannot be
//! used to test RRNs in bulk either.
//!
//! Every refusal in auth-svc is also a security event ([`security_event`]): counted in
//! `auth_security_events_total{kind}` and logged once, without personal data, so an attack
//! shows as it happens.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::{PersonKey, Phone};
use crate::error::AuthError;
use crate::store::ChallengeStore;

/// The client's IP address as the gateway saw it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(IpAddr);

impl ClientAddress {
    /// `None` for an empty field (a caller that does not know the address); a malformed one is
    /// a malformed request.
    pub fn parse_optional(raw: &str) -> Result<Option<Self>, AuthError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        trimmed
            .parse::<IpAddr>()
            .map(|address| Some(Self(address.to_canonical())))
            .map_err(|_| AuthError::InvalidRequest("client_address must be an IP address".into()))
    }
}

impl fmt::Debug for ClientAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientAddress(***)")
    }
}

/// Who a counter counts: `person:…`, `phone:…` or `client:…`, never a value in clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject(String);

impl Subject {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reads a subject back from a stored challenge.
    pub fn from_stored(raw: &str) -> Option<Self> {
        let known = ["person:", "phone:", "client:"]
            .iter()
            .any(|prefix| raw.starts_with(prefix));
        (known && !raw.contains(['{', '}'])).then(|| Self(raw.to_owned()))
    }

    /// The counter key; the braces make the subject the Redis Cluster hash tag.
    fn key(&self, what: &str) -> String {
        format!("{{{}}}:{what}", self.0)
    }
}

/// The limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitSettings {
    /// Starts per phone number in `start_window`.
    pub phone_starts: u64,
    /// Starts per client address in `start_window`.
    pub client_starts: u64,
    pub start_window: Duration,
    /// Proxy resolutions per booker in `start_window`.
    pub proxy_per_booker: u64,
    /// Proxy resolutions per client address in `start_window`.
    pub proxy_per_client: u64,
    /// Wrong codes per person and per phone before the lockout.
    pub wrong_codes: u64,
    /// How long wrong codes are counted; a lockout lasts until this window ends.
    pub lockout: Duration,
}

/// The counters and their limits.
pub struct AbuseLimits {
    store: Arc<dyn ChallengeStore>,
    settings: LimitSettings,
    subject_secret: Vec<u8>,
}

impl AbuseLimits {
    /// `subject_secret` keys the hashes of phone numbers and addresses (auth-svc uses its
    /// person-key secret under a separate label).
    pub fn new(
        store: Arc<dyn ChallengeStore>,
        settings: LimitSettings,
        subject_secret: &[u8],
    ) -> Self {
        Self {
            store,
            settings,
            subject_secret: subject_secret.to_vec(),
        }
    }

    fn keyed(&self, label: &str, value: &str) -> Subject {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.subject_secret)
            .expect("HMAC accepts keys of any length");
        mac.update(b"vaxbook-auth-limit:");
        mac.update(label.as_bytes());
        mac.update(b":");
        mac.update(value.as_bytes());
        // 128 bits are plenty to keep counters apart.
        let digest = mac.finalize().into_bytes();
        Subject(format!("{label}:{}", URL_SAFE_NO_PAD.encode(&digest[..16])))
    }

    pub fn person(person_key: &PersonKey) -> Subject {
        Subject(format!("person:{person_key}"))
    }

    pub fn phone(&self, phone: &Phone) -> Subject {
        self.keyed("phone", phone.digits())
    }

    pub fn client(&self, address: &ClientAddress) -> Subject {
        self.keyed("client", &address.0.to_string())
    }

    /// Counts one start of `subject`'s; refused past its limit.
    pub async fn count_start(&self, subject: &Subject) -> Result<(), AuthError> {
        let (limit, scope) = if subject.0.starts_with("phone:") {
            (self.settings.phone_starts, "phone number")
        } else {
            (self.settings.client_starts, "client address")
        };
        let hit = self
            .store
            .hit_counter(&subject.key("starts"), self.settings.start_window)
            .await?;
        if hit.count > limit {
            return Err(AuthError::TooManyStarts {
                scope,
                retry_after: hit.resets_in.max(Duration::from_secs(1)),
            });
        }
        Ok(())
    }

    /// Counts one proxy resolution of `subject`'s: the booker ([`Self::person`]) or the client
    /// address ([`Self::client`]); refused past its limit.
    pub async fn count_proxy(&self, subject: &Subject) -> Result<(), AuthError> {
        let (limit, scope) = if subject.0.starts_with("person:") {
            (self.settings.proxy_per_booker, "booker")
        } else {
            (self.settings.proxy_per_client, "client address")
        };
        let hit = self
            .store
            .hit_counter(&subject.key("proxies"), self.settings.start_window)
            .await?;
        if hit.count > limit {
            return Err(AuthError::TooManyProxies {
                scope,
                retry_after: hit.resets_in.max(Duration::from_secs(1)),
            });
        }
        Ok(())
    }

    /// Refuses while any of `subjects` has used up its wrong codes.
    pub async fn refuse_if_locked_out(&self, subjects: &[&Subject]) -> Result<(), AuthError> {
        for subject in subjects {
            if let Some(window) = self.store.read_counter(&subject.key("wrong")).await?
                && window.count >= self.settings.wrong_codes
            {
                return Err(AuthError::LockedOut {
                    retry_after: window.resets_in.max(Duration::from_secs(1)),
                });
            }
        }
        Ok(())
    }

    /// Counts one wrong code for each of `subjects`.
    pub async fn count_wrong_code(&self, subjects: &[&Subject]) -> Result<(), AuthError> {
        for subject in subjects {
            self.store
                .hit_counter(&subject.key("wrong"), self.settings.lockout)
                .await?;
        }
        Ok(())
    }
}

/// Counts a refusal in `auth_security_events_total{kind}` and logs it once, with the step and
/// provider only: no person key, phone, name, address or device.
pub fn security_event(kind: &'static str, step: &'static str, provider: &str) {
    metrics::counter!("auth_security_events_total", "kind" => kind).increment(1);
    tracing::warn!(
        security_event = kind,
        step,
        provider,
        "verification refused"
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone as _;
    use platform::clock::{Clock as _, SettableClock};

    use super::*;
    use crate::store::MemoryChallengeStore;

    fn limits() -> (Arc<SettableClock>, AbuseLimits) {
        let clock = Arc::new(SettableClock::starting_at(
            chrono::Utc.with_ymd_and_hms(2021, 8, 9, 11, 0, 0).unwrap(),
        ));
        let store = Arc::new(MemoryChallengeStore::new(clock.clone()));
        let settings = LimitSettings {
            phone_starts: 2,
            client_starts: 3,
            proxy_per_booker: 2,
            proxy_per_client: 3,
            start_window: Duration::from_secs(600),
            wrong_codes: 3,
            lockout: Duration::from_secs(1800),
        };
        (clock, AbuseLimits::new(store, settings, b"secret"))
    }

    #[test]
    fn subjects_are_keyed_hashes_that_name_no_value() {
        let (_, limits) = limits();
        let phone = Phone::parse("010-1234-5678").unwrap();
        let subject = limits.phone(&phone);
        assert!(subject.as_str().starts_with("phone:"));
        assert!(!subject.as_str().contains("5678"));
        assert_eq!(subject, limits.phone(&Phone::parse("01012345678").unwrap()));
        let address = ClientAddress::parse_optional("::ffff:203.0.113.9")
            .unwrap()
            .unwrap();
        let same = ClientAddress::parse_optional(" 203.0.113.9 ")
            .unwrap()
            .unwrap();
        assert_eq!(limits.client(&address), limits.client(&same));
        assert!(!limits.client(&address).as_str().contains("203"));
        assert_eq!(Subject::from_stored(subject.as_str()), Some(subject));
        assert_eq!(Subject::from_stored("{phone:x}"), None);
        assert_eq!(Subject::from_stored("other:x"), None);
        assert!(ClientAddress::parse_optional("").unwrap().is_none());
        assert!(ClientAddress::parse_optional("not-an-ip").is_err());
        assert_eq!(format!("{address:?}"), "ClientAddress(***)");
    }

    #[tokio::test]
    async fn starts_past_the_limit_are_refused_until_the_window_ends() {
        let (clock, limits) = limits();
        let phone = limits.phone(&Phone::parse("010-1234-5678").unwrap());
        limits.count_start(&phone).await.unwrap();
        limits.count_start(&phone).await.unwrap();
        let refused = limits.count_start(&phone).await.unwrap_err();
        assert!(
            matches!(refused, AuthError::TooManyStarts { retry_after, .. } if retry_after > Duration::from_secs(598) && retry_after <= Duration::from_secs(600)),
            "{refused:?}"
        );
        clock.set(clock.now() + chrono::Duration::seconds(601));
        limits.count_start(&phone).await.unwrap();
    }

    #[tokio::test]
    async fn wrong_codes_lock_out_every_subject_they_were_counted_for() {
        let (clock, limits) = limits();
        let person = AbuseLimits::person(&PersonKey::parse("person-a").unwrap());
        let phone = limits.phone(&Phone::parse("010-1234-5678").unwrap());
        for _ in 0..2 {
            limits.count_wrong_code(&[&person, &phone]).await.unwrap();
            limits.refuse_if_locked_out(&[&person]).await.unwrap();
        }
        limits.count_wrong_code(&[&person, &phone]).await.unwrap();
        for subject in [&person, &phone] {
            let refused = limits.refuse_if_locked_out(&[subject]).await.unwrap_err();
            assert!(
                matches!(refused, AuthError::LockedOut { .. }),
                "{refused:?}"
            );
        }
        clock.set(clock.now() + chrono::Duration::seconds(1801));
        limits
            .refuse_if_locked_out(&[&person, &phone])
            .await
            .unwrap();
    }
}
