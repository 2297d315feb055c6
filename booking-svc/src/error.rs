//! The errors of booking-svc's rules, mapped once into the shared [`Problem`] vocabulary (and so
//! into a gRPC status with its ErrorInfo). Storage failures are logged where they become a
//! problem and reach the caller only as "busy" or "internal", never in clear.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use platform::clock::rfc3339_kst;
use platform::ids::{IdError, format_iso_date};
use platform::problem::{Problem, ProblemKind};

use crate::eligibility::TermsError;
use crate::store::BookingStoreError;

#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    /// A malformed request; the detail names the field and never repeats its value.
    #[error("{0}")]
    Invalid(String),
    /// The person may not book in the campaign now; `reason` is scheduling-svc's.
    #[error("you may not book in this campaign now")]
    NotEligible { reason: String },
    /// A proxy booking outside the campaign's proxy policy; the detail says why, and
    /// `proxy_deadline` is the campaign's deadline when it has passed.
    #[error("{detail}")]
    ProxyNotAllowed {
        detail: &'static str,
        proxy_deadline: Option<DateTime<Utc>>,
    },
    #[error("the booking can no longer be cancelled")]
    CancellationClosed { cancellable_until: NaiveDate },
    /// The campaign never allows changes (`None`) or not before `allowed_from`.
    #[error("this campaign does not allow changing bookings")]
    ModificationNotAllowed { allowed_from: Option<DateTime<Utc>> },
    #[error(transparent)]
    Store(#[from] BookingStoreError),
    /// Another service (scheduling-svc, session-svc) refused or failed; its problem as read
    /// back from its status with `Problem::from_status`, ErrorInfo included.
    #[error("{0}")]
    Upstream(Problem),
    /// scheduling-svc answered with campaign terms that do not validate: booking stops
    /// rather than guessing a deadline or a policy.
    #[error("scheduling-svc sent malformed campaign terms")]
    MalformedTerms(#[source] TermsError),
}

impl BookingError {
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::Invalid(detail.into())
    }

    /// A proxy refusal without a deadline to name.
    pub fn proxy_not_allowed(detail: &'static str) -> Self {
        Self::ProxyNotAllowed {
            detail,
            proxy_deadline: None,
        }
    }

    /// The problem kind this error becomes (also the `reason` label of the metrics).
    pub fn kind(&self) -> ProblemKind {
        match self {
            Self::Invalid(_) => ProblemKind::InvalidRequest,
            Self::NotEligible { .. } => ProblemKind::NotEligible,
            Self::ProxyNotAllowed { .. } => ProblemKind::ProxyNotAllowed,
            Self::CancellationClosed { .. } => ProblemKind::CancellationClosed,
            Self::ModificationNotAllowed { .. } => ProblemKind::ModificationNotAllowed,
            Self::Store(store) => match store {
                BookingStoreError::SlotFull => ProblemKind::SlotFull,
                BookingStoreError::ProxyLimitReached { .. } => ProblemKind::ProxyNotAllowed,
                BookingStoreError::AlreadyBooked => ProblemKind::AlreadyBooked,
                BookingStoreError::IdempotencyConflict => ProblemKind::IdempotencyKeyReused,
                BookingStoreError::NotFound(_) => ProblemKind::NotFound,
                BookingStoreError::AlreadyCancelled => ProblemKind::AlreadyCancelled,
                BookingStoreError::CapacityBelowBooked { .. }
                | BookingStoreError::SlotHasBookings => ProblemKind::InvalidRequest,
                error if error.is_busy() => ProblemKind::Unavailable,
                _ => ProblemKind::Internal,
            },
            Self::Upstream(problem) => problem.kind,
            Self::MalformedTerms(_) => ProblemKind::Internal,
        }
    }
}

impl From<IdError> for BookingError {
    fn from(error: IdError) -> Self {
        Self::Invalid(error.to_string())
    }
}

impl From<Problem> for BookingError {
    fn from(problem: Problem) -> Self {
        Self::Upstream(problem)
    }
}

/// The error and its sources on one line, for the log.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<BookingError> for Problem {
    fn from(error: BookingError) -> Self {
        let kind = error.kind();
        match error {
            BookingError::Invalid(detail) => Problem::new(kind, detail),
            BookingError::NotEligible { reason } => {
                let reason = if reason.is_empty() {
                    "not-eligible".to_owned()
                } else {
                    reason
                };
                Problem::new(kind, "you may not book in this campaign now").with("reason", reason)
            }
            BookingError::ProxyNotAllowed {
                detail,
                proxy_deadline,
            } => {
                let problem = Problem::new(kind, detail);
                match proxy_deadline {
                    Some(deadline) => problem.with("proxy_deadline", rfc3339_kst(deadline)),
                    None => problem,
                }
            }
            BookingError::CancellationClosed { cancellable_until } => {
                Problem::new(kind, "the booking can no longer be cancelled")
                    .with("cancellable_until", format_iso_date(cancellable_until))
            }
            BookingError::ModificationNotAllowed { allowed_from: None } => Problem::new(
                kind,
                "this campaign does not allow changing bookings; cancel and book again",
            ),
            BookingError::ModificationNotAllowed {
                allowed_from: Some(allowed_from),
            } => Problem::new(kind, "this campaign does not allow changing bookings yet")
                .with("allowed_from", rfc3339_kst(allowed_from)),
            BookingError::Store(store) => store_problem(kind, store),
            BookingError::Upstream(problem) => problem,
            BookingError::MalformedTerms(terms) => {
                tracing::error!(error = %chain(&terms), "scheduling-svc sent malformed campaign terms");
                Problem::internal()
            }
        }
    }
}

fn store_problem(kind: ProblemKind, error: BookingStoreError) -> Problem {
    match error {
        BookingStoreError::SlotFull => {
            Problem::new(kind, "every place of this slot released so far is taken")
        }
        BookingStoreError::ProxyLimitReached { max } => Problem::new(
            kind,
            "you already made as many proxy bookings in this campaign as it allows",
        )
        .with("max_per_booker", max.to_string()),
        BookingStoreError::AlreadyBooked => {
            Problem::new(kind, "you already have a booking in this campaign")
        }
        BookingStoreError::IdempotencyConflict => {
            Problem::new(kind, "the idempotency key was used for another booking")
        }
        BookingStoreError::NotFound(what) => Problem::new(kind, format!("no such {what}")),
        BookingStoreError::AlreadyCancelled => {
            Problem::new(kind, "the booking is already cancelled")
        }
        BookingStoreError::CapacityBelowBooked { capacity, booked } => Problem::new(
            kind,
            format!("slot.capacity {capacity} is below the {booked} places already booked"),
        ),
        BookingStoreError::SlotHasBookings => Problem::new(
            kind,
            "a slot with bookings cannot move to another campaign or date",
        ),
        error if error.is_busy() => {
            tracing::warn!(error = %chain(&error), "booking store busy");
            Problem::new(kind, "the booking database is busy")
                .with_retry_after(Duration::from_secs(1))
        }
        error => {
            tracing::error!(error = %chain(&error), "booking store failed");
            Problem::internal()
        }
    }
}

impl From<BookingError> for tonic::Status {
    fn from(error: BookingError) -> Self {
        Problem::from(error).to_status()
    }
}
