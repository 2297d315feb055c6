//! The identifiers and date format every service shares, each with one set of limits, so a value
//! one service accepts is never refused by the next one on the path. Each type is built only by
//! its `parse` constructor; a malformed value is an [`IdError`] naming the field, which services
//! turn into their own `InvalidArgument`-kind error (or a [`Problem`] directly).

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::problem::Problem;

/// A value that is not a well-formed identifier or date: which field, and what is expected.
/// The message never repeats the value (it may be personal data).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} {expected}")]
pub struct IdError {
    pub field: &'static str,
    pub expected: &'static str,
}

impl IdError {
    fn new(field: &'static str, expected: &'static str) -> Self {
        Self { field, expected }
    }

    /// The same error reported under another field name (a header, a path segment).
    pub fn for_field(self, field: &'static str) -> Self {
        Self { field, ..self }
    }
}

impl From<IdError> for Problem {
    fn from(error: IdError) -> Self {
        Problem::invalid(error.to_string())
    }
}

fn well_formed(raw: &str, max: usize, allowed: impl Fn(u8) -> bool) -> bool {
    !raw.is_empty() && raw.len() <= max && raw.bytes().all(allowed)
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;

            fn from_str(raw: &str) -> Result<Self, IdError> {
                Self::parse(raw)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// The pseudonymous key auth-svc derives for a person (a keyed hash, base64url):
    /// `[A-Za-z0-9_-]{1,128}`. Every service knows a person only by this key.
    PersonKey
);

impl PersonKey {
    pub const MAX_LEN: usize = 128;
    pub const EXPECTED: &'static str = "must be 1 to 128 characters of A-Z a-z 0-9 _ -";

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let allowed = |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-');
        if !well_formed(raw, Self::MAX_LEN, allowed) {
            return Err(IdError::new("person_key", Self::EXPECTED));
        }
        Ok(Self(raw.to_owned()))
    }
}

string_id!(
    /// The opaque id a frontend keeps per browser or app install: `[A-Za-z0-9._:-]{1,128}`.
    DeviceId
);

impl DeviceId {
    pub const MAX_LEN: usize = 128;
    pub const EXPECTED: &'static str = "must be 1 to 128 characters of A-Z a-z 0-9 . _ : -";
    /// The same rule as a regular expression (for the OpenAPI document).
    pub const PATTERN: &'static str = "^[A-Za-z0-9._:-]{1,128}$";

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let allowed =
            |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b':' | b'-');
        if !well_formed(raw, Self::MAX_LEN, allowed) {
            return Err(IdError::new("device_id", Self::EXPECTED));
        }
        Ok(Self(raw.to_owned()))
    }
}

string_id!(
    /// A session id, opaque to callers (ours are UUIDs): 1 to 64 printable ASCII characters.
    SessionId
);

impl SessionId {
    pub const MAX_LEN: usize = 64;
    pub const EXPECTED: &'static str = "must be 1 to 64 printable ASCII characters";

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        if !well_formed(raw, Self::MAX_LEN, |byte| byte.is_ascii_graphic()) {
            return Err(IdError::new("session_id", Self::EXPECTED));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A fresh random session id (UUID v4).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

string_id!(
    /// A campaign id: `^[a-z0-9][a-z0-9-]{0,63}$`, safe in URLs, logs and metric labels.
    CampaignId
);

impl CampaignId {
    pub const MAX_LEN: usize = 64;
    pub const EXPECTED: &'static str =
        "must match ^[a-z0-9][a-z0-9-]{0,63}$ (lowercase letters, digits and dashes)";
    pub const PATTERN: &'static str = "^[a-z0-9][a-z0-9-]{0,63}$";

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let lower_alnum = |byte: u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();
        let first_ok = raw.bytes().next().is_some_and(lower_alnum);
        if !first_ok || !well_formed(raw, Self::MAX_LEN, |b| lower_alnum(b) || b == b'-') {
            return Err(IdError::new("campaign_id", Self::EXPECTED));
        }
        Ok(Self(raw.to_owned()))
    }
}

string_id!(
    /// A client-chosen idempotency key: 1 to 255 printable ASCII characters, no spaces.
    IdempotencyKey
);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;
    pub const EXPECTED: &'static str = "must be 1 to 255 printable ASCII characters";
    pub const PATTERN: &'static str = "^[!-~]{1,255}$";

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        if !well_formed(raw, Self::MAX_LEN, |byte| byte.is_ascii_graphic()) {
            return Err(IdError::new("idempotency_key", Self::EXPECTED));
        }
        Ok(Self(raw.to_owned()))
    }

    /// `None` for an empty key (the request is not idempotent).
    pub fn parse_optional(raw: &str) -> Result<Option<Self>, IdError> {
        if raw.is_empty() {
            return Ok(None);
        }
        Self::parse(raw).map(Some)
    }
}

/// The calendar-date format of every wire field and token claim: ISO 8601 `YYYY-MM-DD`.
pub const ISO_DATE_FORMAT: &str = "%Y-%m-%d";

/// Reads an ISO `YYYY-MM-DD` date named `field`; anything else (including a missing value) is
/// an error, never a default.
pub fn parse_iso_date(field: &'static str, raw: &str) -> Result<NaiveDate, IdError> {
    let well_shaped = raw.len() == 10
        && raw.bytes().enumerate().all(|(index, byte)| match index {
            4 | 7 => byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    if !well_shaped {
        return Err(IdError::new(field, "must be a date as YYYY-MM-DD"));
    }
    NaiveDate::parse_from_str(raw, ISO_DATE_FORMAT)
        .map_err(|_| IdError::new(field, "must be a real calendar date as YYYY-MM-DD"))
}

/// Writes a date as ISO `YYYY-MM-DD`.
pub fn format_iso_date(date: NaiveDate) -> String {
    date.format(ISO_DATE_FORMAT).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn person_key_limits() {
        assert!(PersonKey::parse("abc_DEF-123").is_ok());
        assert!(PersonKey::parse(&"a".repeat(128)).is_ok());
        assert!(PersonKey::parse(&"a".repeat(129)).is_err());
        assert!(PersonKey::parse("").is_err());
        assert!(PersonKey::parse("a b").is_err());
        assert!(PersonKey::parse("a/b").is_err());
    }

    #[test]
    fn device_id_limits() {
        assert!(DeviceId::parse("web:abc.1_2-3").is_ok());
        assert!(DeviceId::parse(&"d".repeat(128)).is_ok());
        assert!(DeviceId::parse(&"d".repeat(129)).is_err());
        assert!(DeviceId::parse("").is_err());
        assert!(DeviceId::parse("dev ice").is_err());
        assert_eq!(
            DeviceId::parse("é").unwrap_err().to_string(),
            "device_id must be 1 to 128 characters of A-Z a-z 0-9 . _ : -"
        );
    }

    #[test]
    fn session_id_limits() {
        assert!(SessionId::parse(SessionId::generate().as_str()).is_ok());
        assert!(SessionId::parse(&"s".repeat(65)).is_err());
        assert!(SessionId::parse("a\nb").is_err());
        assert!(SessionId::parse("").is_err());
    }

    #[test]
    fn campaign_id_limits() {
        assert!(CampaignId::parse("covid19-2021-18-49").is_ok());
        assert!(CampaignId::parse(&"c".repeat(64)).is_ok());
        assert!(CampaignId::parse(&"c".repeat(65)).is_err());
        assert!(CampaignId::parse("-leading").is_err());
        assert!(CampaignId::parse("Upper").is_err());
        assert!(CampaignId::parse("").is_err());
    }

    #[test]
    fn idempotency_key_limits() {
        assert_eq!(IdempotencyKey::parse_optional("").unwrap(), None);
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("with space").is_err());
        assert!(IdempotencyKey::parse("tab\t").is_err());
    }

    #[test]
    fn iso_dates() {
        let date = parse_iso_date("birth_date", "1980-02-29").unwrap();
        assert_eq!(format_iso_date(date), "1980-02-29");
        assert!(parse_iso_date("birth_date", "1981-02-29").is_err());
        assert!(parse_iso_date("birth_date", "1980-2-9").is_err());
        assert!(parse_iso_date("birth_date", "+1980-02-01").is_err());
        assert!(parse_iso_date("birth_date", "").is_err());
        assert_eq!(
            parse_iso_date("date", "x").unwrap_err().to_string(),
            "date must be a date as YYYY-MM-DD"
        );
    }

    #[test]
    fn deserialize_validates() {
        let key: Result<PersonKey, _> = serde_json::from_str("\"a b\"");
        assert!(key.is_err());
        let key: PersonKey = serde_json::from_str("\"ab\"").unwrap();
        assert_eq!(key.as_str(), "ab");
    }
}
