//! The errors of scheduling-svc, mapped once into the shared [`Problem`] vocabulary. Store
//! failures are logged where they are turned into a problem and never reach the caller in clear.

use platform::ids::IdError;
use platform::problem::{Problem, ProblemKind};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SchedulingError {
    /// The request was malformed; the detail names the field (and never repeats its value).
    #[error("{0}")]
    Invalid(String),
    #[error("no such campaign")]
    CampaignNotFound,
    /// The campaign store failed (connection, query, or a row that no longer validates).
    #[error("campaign store failed")]
    Store(#[from] StoreError),
}

impl SchedulingError {
    /// A malformed field; `detail` starts with the field's name.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::Invalid(detail.into())
    }
}

impl From<IdError> for SchedulingError {
    fn from(error: IdError) -> Self {
        Self::Invalid(error.to_string())
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

impl From<SchedulingError> for Problem {
    fn from(error: SchedulingError) -> Self {
        match error {
            SchedulingError::Invalid(detail) => Problem::invalid(detail),
            SchedulingError::CampaignNotFound => {
                Problem::new(ProblemKind::NotFound, "no such campaign")
            }
            SchedulingError::Store(store) => {
                tracing::error!(error = %chain(&store), "campaign store failed");
                Problem::new(
                    ProblemKind::Unavailable,
                    "the campaign store is not available",
                )
                .with_retry_after(std::time::Duration::from_secs(1))
            }
        }
    }
}

impl From<SchedulingError> for tonic::Status {
    fn from(error: SchedulingError) -> Self {
        Problem::from(error).to_status()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn store_failures_are_retryable_and_say_nothing_of_the_cause() {
        let problem = Problem::from(SchedulingError::Store(StoreError::Unavailable(
            "postgres://app:secret@db is down",
        )));
        assert_eq!(problem.kind, ProblemKind::Unavailable);
        assert!(problem.retry_after.is_some());
        assert!(!problem.detail.contains("secret"));
    }

    #[test]
    fn id_errors_name_their_field() {
        let error = SchedulingError::from(
            platform::ids::CampaignId::parse("Bad")
                .unwrap_err()
                .for_field("id"),
        );
        let problem = Problem::from(error);
        assert_eq!(problem.kind, ProblemKind::InvalidRequest);
        assert!(problem.detail.starts_with("id "), "{}", problem.detail);
    }
}
