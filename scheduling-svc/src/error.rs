//! The errors of scheduling-svc, mapped once into the shared [`Problem`] vocabulary. Store
//! failures are logged where they are turned into a problem and never reach the caller in clear.

use platform::problem::{Problem, ProblemKind};

#[derive(Debug, thiserror::Error)]
pub enum SchedulingError {
    /// The request was malformed; the problem names the field.
    #[error("{0}")]
    Invalid(Problem),
    #[error("no such campaign")]
    CampaignNotFound,
    /// The campaign store failed (connection, query, or a row that no longer validates).
    #[error("campaign store failed: {0}")]
    Store(String),
}

impl SchedulingError {
    pub fn store(context: &str, err: impl std::fmt::Display) -> Self {
        Self::Store(format!("{context}: {err}"))
    }
}

impl From<Problem> for SchedulingError {
    fn from(problem: Problem) -> Self {
        Self::Invalid(problem)
    }
}

impl From<SchedulingError> for Problem {
    fn from(error: SchedulingError) -> Self {
        match error {
            SchedulingError::Invalid(problem) => problem,
            SchedulingError::CampaignNotFound => {
                Problem::new(ProblemKind::NotFound, "no such campaign")
            }
            SchedulingError::Store(detail) => {
                tracing::error!(error = %detail, "campaign store failed");
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
