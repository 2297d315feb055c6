//! The one error type of auth-svc and its single mapping into the shared [`Problem`]
//! vocabulary. Messages never carry personal data (RRN, phone, name): they describe the rule
//! that failed, not the value that broke it.

use std::time::Duration;

use platform::ids::IdError;
use platform::problem::{Problem, ProblemKind};

use crate::carrier::CarrierError;
use crate::sms::SmsError;
use crate::store::StoreError;

/// Everything that can go wrong in auth-svc.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A malformed or missing request field; the text names the field.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("rrn must be YYMMDD-GNNNNNN with a valid birth date")]
    InvalidRrn,
    #[error("name must be 1 to 50 Hangul or Latin letters, spaces, '·' or '-'")]
    InvalidName,
    #[error("phone must be a mobile number 01X-XXXX-XXXX")]
    InvalidPhone,
    #[error("provider {0} is not enabled yet")]
    ProviderNotEnabled(String),
    #[error("too many verifications started for this person; retry later")]
    RateLimited { retry_after: Duration },
    #[error("too many verifications started for this {scope}; retry later")]
    TooManyStarts {
        scope: &'static str,
        retry_after: Duration,
    },
    /// Too many proxy resolutions (`ResolveProxy`) by this booker or from this client address.
    #[error("too many people named to book for by this {scope}; retry later")]
    TooManyProxies {
        scope: &'static str,
        retry_after: Duration,
    },
    #[error("too many wrong codes for this person or phone number; retry later")]
    LockedOut { retry_after: Duration },
    /// The carriers' agency does not confirm the phone for this person. One answer whichever
    /// of phone, name or RRN was wrong.
    #[error("the carrier does not confirm this phone number for this person")]
    IdentityMismatch,
    #[error("{0}")]
    ProviderUnavailable(#[from] CarrierError),
    #[error("the verification is unknown or has expired")]
    VerificationExpired,
    #[error("the verification was started on another device")]
    WrongDevice,
    #[error("the code is wrong; {attempts_left} attempt(s) left")]
    WrongAnswer { attempts_left: u32 },
    #[error("the provider's assertion was not accepted; {attempts_left} attempt(s) left")]
    AssertionRejected { attempts_left: u32 },
    #[error("the challenge was answered wrongly too many times; start a new verification")]
    AttemptsExhausted,
    /// session-svc refused or failed: its problem is passed on unchanged.
    #[error("{0}")]
    Session(Problem),
    #[error("the challenge store failed: {0}")]
    Store(#[from] StoreError),
    #[error("sending the one-time code failed: {0}")]
    Sms(#[from] SmsError),
    #[error("signing the access token failed: {0}")]
    Signing(#[source] jsonwebtoken::errors::Error),
}

/// A malformed shared identifier (device id, session id) is a malformed request field.
impl From<IdError> for AuthError {
    fn from(error: IdError) -> Self {
        Self::InvalidRequest(error.to_string())
    }
}

impl From<AuthError> for Problem {
    fn from(error: AuthError) -> Self {
        let detail = error.to_string();
        match error {
            AuthError::InvalidRequest(_) => Problem::invalid(detail),
            AuthError::InvalidRrn | AuthError::InvalidName | AuthError::InvalidPhone => {
                Problem::new(ProblemKind::InvalidIdentity, detail)
            }
            AuthError::ProviderNotEnabled(_) => {
                Problem::new(ProblemKind::UnsupportedProvider, detail)
            }
            AuthError::RateLimited { retry_after } => {
                Problem::new(ProblemKind::RateLimited, detail).with_retry_after(retry_after)
            }
            AuthError::TooManyStarts { retry_after, .. }
            | AuthError::TooManyProxies { retry_after, .. }
            | AuthError::LockedOut { retry_after } => {
                Problem::new(ProblemKind::RateLimited, detail).with_retry_after(retry_after)
            }
            AuthError::IdentityMismatch => Problem::new(ProblemKind::IdentityMismatch, detail),
            AuthError::ProviderUnavailable(error) => Problem::new(
                ProblemKind::ProviderUnavailable,
                "the identity provider is unavailable; retry later or choose another provider",
            )
            .with_retry_after(error.retry_after()),
            AuthError::VerificationExpired => {
                Problem::new(ProblemKind::VerificationExpired, detail)
            }
            AuthError::WrongDevice
            | AuthError::WrongAnswer { .. }
            | AuthError::AssertionRejected { .. }
            | AuthError::AttemptsExhausted => Problem::new(ProblemKind::VerificationFailed, detail),
            AuthError::Session(problem) => problem,
            AuthError::Store(_) | AuthError::Sms(_) => {
                // Logged here, once, where the error turns into an answer.
                tracing::error!(error = %detail, "a dependency of auth-svc failed");
                Problem::new(
                    ProblemKind::Unavailable,
                    "identity verification is unavailable, retry shortly",
                )
                .with_retry_after(Duration::from_secs(1))
            }
            AuthError::Signing(_) => {
                tracing::error!(error = %detail, "cannot sign an access token");
                Problem::internal()
            }
        }
    }
}

impl From<AuthError> for tonic::Status {
    fn from(error: AuthError) -> Self {
        Problem::from(error).to_status()
    }
}
