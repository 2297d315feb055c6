//! The session service's one error type, and its single mapping into the shared problem
//! vocabulary (and so, in [`crate::grpc`], into a gRPC status with `ErrorInfo`/`RetryInfo`).

use std::time::Duration;

use platform::ids::IdError;
use platform::problem::{Problem, ProblemKind};

use crate::store::StoreError;

/// Everything that can go wrong in the session service.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A request field is missing or malformed; nothing was changed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Another device holds the person's lock, or this device is still blocked.
    #[error("the identity is in use on another device, retry after {retry_after:?}")]
    DeviceLocked { retry_after: Duration },
    /// The caller presented no valid credential for the call (docs/security.md).
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The caller's credential does not allow this call (another person's session).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Something this service depends on (auth-svc's keys, the replay store) did not answer.
    #[error("{}", .0.detail)]
    Upstream(Problem),
    /// The waiting room is not answering in time: come back after `retry_after`.
    #[error("overloaded, retry after {retry_after:?}")]
    Overloaded { retry_after: Duration },
    /// No such ticket for this person (or not one of ours).
    #[error("no such ticket")]
    TicketNotFound,
    /// The lock store did not answer or answered nonsense.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SessionError {
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::InvalidArgument(detail.into())
    }
}

impl From<IdError> for SessionError {
    fn from(error: IdError) -> Self {
        // The message names the field and the rule, never the value.
        Self::InvalidArgument(error.to_string())
    }
}

impl From<SessionError> for Problem {
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::InvalidArgument(detail) => Problem::invalid(detail),
            SessionError::DeviceLocked { retry_after } => Problem::new(
                ProblemKind::DeviceLocked,
                "this identity is in use on another device",
            )
            .with_retry_after(retry_after),
            SessionError::Unauthenticated(detail) => {
                Problem::new(ProblemKind::Unauthenticated, detail)
            }
            SessionError::Forbidden(detail) => Problem::new(ProblemKind::Forbidden, detail),
            SessionError::Upstream(problem) => problem,
            SessionError::Overloaded { retry_after } => Problem::new(
                ProblemKind::Overloaded,
                "the waiting room is busy; retry after Retry-After seconds",
            )
            .with_retry_after(retry_after),
            SessionError::TicketNotFound => {
                Problem::new(ProblemKind::NotFound, "no such ticket for this person")
            }
            SessionError::Store(store_error) => {
                // Logged here, where it is turned into an answer, and nowhere else.
                tracing::error!(error = %store_error, "device lock store failed");
                match store_error {
                    // Redis slow or down: a clear, bounded "come back" (R4), never a hang.
                    StoreError::Redis(_) | StoreError::Timeout(_) => Problem::new(
                        ProblemKind::Overloaded,
                        "the session store is not answering",
                    )
                    .with_retry_after(Duration::from_secs(1)),
                    StoreError::Corrupt(_) => Problem::internal(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CorruptData;

    #[test]
    fn device_locked_becomes_failed_precondition_with_retry_info() {
        let status = tonic::Status::from(SessionError::DeviceLocked {
            retry_after: Duration::from_secs(600),
        });
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        let problem = Problem::from_status(&status);
        assert_eq!(problem.kind, ProblemKind::DeviceLocked);
        assert_eq!(problem.retry_after, Some(Duration::from_secs(600)));
    }

    #[test]
    fn invalid_argument_names_the_field() {
        let status = tonic::Status::from(SessionError::invalid("device_id is required"));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("device_id"));
    }

    #[test]
    fn refused_credentials_become_unauthenticated_or_permission_denied() {
        let status = tonic::Status::from(SessionError::Unauthenticated("a proof".into()));
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let status = tonic::Status::from(SessionError::Forbidden("another session".into()));
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn a_store_that_does_not_answer_is_overloaded_with_retry_after() {
        let status = tonic::Status::from(SessionError::Store(StoreError::Timeout(
            Duration::from_millis(250),
        )));
        let problem = Problem::from_status(&status);
        assert_eq!(problem.kind, ProblemKind::Overloaded);
        assert_eq!(problem.retry_after, Some(Duration::from_secs(1)));
    }

    #[test]
    fn corrupt_store_data_does_not_leak() {
        let status = tonic::Status::from(SessionError::Store(StoreError::Corrupt(
            CorruptData::UnknownClaimOutcome("lock hash for pk-secret has no expiry".into()),
        )));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("pk-secret"));
    }
}
