//! The port to the carriers' identity-verification agency (R2, "Identity data"): before the
//! phone provider sends a code, the agency confirms that the phone is registered, at the named
//! carrier, to the person's name, birth date and sex digit. A phone registered to someone else
//! is refused with `identity-mismatch` and nothing is sent.
//!
//! Two adapters: [`HttpCarrierCheck`] speaks the agency's HTTP contract (see
//! [`platform::carrier`]) with a timeout and a [`CircuitBreaker`]; [`DirectoryCarrierCheck`]
//! answers from the dev run's subscriber directory. The agency also returns the person's
//! connecting information (CI); auth-svc does not keep it: the person key is derived from the
//! RRN the same way for every provider, so one person is one key whichever provider they use.

mod breaker;
mod directory;
mod http;

use std::fmt;
use std::time::Duration;

use chrono::NaiveDate;

pub use self::breaker::{BreakerSettings, CircuitBreaker};
pub use self::directory::DirectoryCarrierCheck;
pub use self::http::HttpCarrierCheck;
use crate::domain::{Name, Phone};
use crate::error::AuthError;

/// The mobile carrier a phone is registered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Carrier {
    Skt,
    Kt,
    LgUplus,
    /// A budget operator on one of the three networks (알뜰폰).
    Mvno,
}

impl Carrier {
    pub const ALL: [Carrier; 4] = [Self::Skt, Self::Kt, Self::LgUplus, Self::Mvno];

    /// The wire name: `skt`, `kt`, `lgu`, `mvno`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Skt => "skt",
            Self::Kt => "kt",
            Self::LgUplus => "lgu",
            Self::Mvno => "mvno",
        }
    }

    /// Reads a wire name (case and surrounding white space ignored).
    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        let wanted = raw.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|carrier| carrier.name() == wanted)
            .ok_or_else(|| {
                AuthError::InvalidRequest(
                    "carrier must be one of skt, kt, lgu, mvno for the phone provider".to_owned(),
                )
            })
    }
}

/// What the agency is asked: is `phone` registered at `carrier` to this person? No `Debug`
/// content: every field is personal data.
pub struct SubscriberQuery<'a> {
    pub name: &'a Name,
    pub birth_date: NaiveDate,
    /// The 7th digit of the RRN (sex and century).
    pub sex_digit: char,
    pub phone: &'a Phone,
    pub carrier: Carrier,
}

impl fmt::Debug for SubscriberQuery<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriberQuery")
            .field("carrier", &self.carrier)
            .finish_non_exhaustive()
    }
}

impl SubscriberQuery<'_> {
    /// The agency's request body.
    pub fn to_wire(&self) -> platform::carrier::AgencyRequest {
        platform::carrier::AgencyRequest {
            name: self.name.registered().to_owned(),
            birth_date: platform::ids::format_iso_date(self.birth_date),
            sex_digit: self.sex_digit.to_string(),
            phone: self.phone.digits().to_owned(),
            carrier: self.carrier.name().to_owned(),
        }
    }
}

/// The agency's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriberVerdict {
    /// Registered to this person. The CI the agency returned is not kept.
    Registered,
    /// Not registered to this person: which field differed is not known, and not told.
    Mismatch,
}

/// The agency could not answer.
#[derive(Debug, thiserror::Error)]
pub enum CarrierError {
    /// The agency did not answer in time, answered an error or something unreadable.
    #[error("the identity-verification agency failed: {0}")]
    Failed(&'static str),
    /// The circuit breaker is open after repeated failures: no call was made.
    #[error("the identity-verification agency is unavailable; retry later")]
    Open { retry_after: Duration },
}

impl CarrierError {
    /// How long the person should wait before retrying.
    pub fn retry_after(&self) -> Duration {
        match self {
            Self::Failed(_) => Duration::from_secs(1),
            Self::Open { retry_after } => *retry_after,
        }
    }
}

/// The identity-verification agency.
#[async_trait::async_trait]
pub trait CarrierCheck: Send + Sync {
    async fn check(&self, query: &SubscriberQuery<'_>) -> Result<SubscriberVerdict, CarrierError>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn carriers_round_trip_their_wire_names() {
        for carrier in Carrier::ALL {
            assert_eq!(Carrier::parse(carrier.name()).unwrap(), carrier);
        }
        assert_eq!(Carrier::parse(" SKT ").unwrap(), Carrier::Skt);
        assert!(Carrier::parse("verizon").is_err());
        assert!(Carrier::parse("").is_err());
        let wire: Vec<&str> = Carrier::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(wire, platform::carrier::CARRIERS);
    }

    #[test]
    fn a_query_prints_no_personal_data() {
        let name = Name::parse("홍길동").unwrap();
        let phone = Phone::parse("010-1234-5678").unwrap();
        let query = SubscriberQuery {
            name: &name,
            birth_date: NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
            sex_digit: '1',
            phone: &phone,
            carrier: Carrier::Kt,
        };
        let shown = format!("{query:?}");
        assert!(
            !shown.contains("길동") && !shown.contains("5678"),
            "{shown}"
        );
        let wire = query.to_wire();
        assert_eq!(wire.phone, "01012345678");
        assert_eq!(wire.birth_date, "1990-01-01");
        assert_eq!(wire.sex_digit, "1");
        assert_eq!(wire.carrier, "kt");
        assert_eq!(wire.name, "홍길동");
    }
}
