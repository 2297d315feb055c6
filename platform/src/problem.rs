//! The one problem vocabulary of vaxbook. Every domain error maps to a [`Problem`], which maps
//! once to a gRPC status (code + `google.rpc.ErrorInfo` with the stable name as reason) and,
//! in the gateway, once to HTTP + `application/problem+json` with the same name in its `type`.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every vaxbook status.
pub const ERROR_DOMAIN: &str = "vaxbook.kr";

/// Stable problem kinds: the name is the last segment of the problem `type` URI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    InvalidRequest,
    InvalidIdentity,
    UnsupportedProvider,
    RateLimited,
    VerificationFailed,
    IdentityMismatch,
    VerificationExpired,
    VerificationNotFound,
    DeviceLocked,
    Unauthenticated,
    SessionExpired,
    SessionSuperseded,
    Forbidden,
    NotEligible,
    ProxyNotAllowed,
    AdmissionRequired,
    NotFound,
    SlotFull,
    AlreadyBooked,
    AlreadyCancelled,
    CancellationClosed,
    ModificationNotAllowed,
    IdempotencyKeyReused,
    InvalidCredentials,
    InvalidSecondFactor,
    AccountLocked,
    AccountDisabled,
    StaffTokenRequired,
    RoleNotAllowed,
    CitizenTokenRequired,
    CallerNotVerified,
    CallerOfAnotherAgent,
    ChannelNotAllowed,
    Overloaded,
    Unavailable,
    ProviderUnavailable,
    Internal,
}

impl ProblemKind {
    pub const ALL: &'static [ProblemKind] = &[
        Self::InvalidRequest,
        Self::InvalidIdentity,
        Self::UnsupportedProvider,
        Self::RateLimited,
        Self::VerificationFailed,
        Self::IdentityMismatch,
        Self::VerificationExpired,
        Self::VerificationNotFound,
        Self::DeviceLocked,
        Self::Unauthenticated,
        Self::SessionExpired,
        Self::SessionSuperseded,
        Self::Forbidden,
        Self::NotEligible,
        Self::ProxyNotAllowed,
        Self::AdmissionRequired,
        Self::NotFound,
        Self::SlotFull,
        Self::AlreadyBooked,
        Self::AlreadyCancelled,
        Self::CancellationClosed,
        Self::ModificationNotAllowed,
        Self::IdempotencyKeyReused,
        Self::InvalidCredentials,
        Self::InvalidSecondFactor,
        Self::AccountLocked,
        Self::AccountDisabled,
        Self::StaffTokenRequired,
        Self::RoleNotAllowed,
        Self::CitizenTokenRequired,
        Self::CallerNotVerified,
        Self::CallerOfAnotherAgent,
        Self::ChannelNotAllowed,
        Self::Overloaded,
        Self::Unavailable,
        Self::ProviderUnavailable,
        Self::Internal,
    ];

    /// The stable name, used as `ErrorInfo.reason` and as the problem `type` path segment.
    pub fn name(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid-request",
            Self::InvalidIdentity => "invalid-identity",
            Self::UnsupportedProvider => "unsupported-provider",
            Self::RateLimited => "rate-limited",
            Self::VerificationFailed => "verification-failed",
            Self::IdentityMismatch => "identity-mismatch",
            Self::VerificationExpired => "verification-expired",
            Self::VerificationNotFound => "verification-not-found",
            Self::DeviceLocked => "device-locked",
            Self::Unauthenticated => "unauthenticated",
            Self::SessionExpired => "session-expired",
            Self::SessionSuperseded => "session-superseded",
            Self::AdmissionRequired => "admission-required",
            Self::Forbidden => "forbidden",
            Self::NotEligible => "not-eligible",
            Self::ProxyNotAllowed => "proxy-not-allowed",
            Self::NotFound => "not-found",
            Self::SlotFull => "slot-full",
            Self::AlreadyBooked => "already-booked",
            Self::AlreadyCancelled => "already-cancelled",
            Self::CancellationClosed => "cancellation-closed",
            Self::ModificationNotAllowed => "modification-not-allowed",
            Self::IdempotencyKeyReused => "idempotency-key-reused",
            Self::InvalidCredentials => "invalid-credentials",
            Self::InvalidSecondFactor => "invalid-second-factor",
            Self::AccountLocked => "account-locked",
            Self::AccountDisabled => "account-disabled",
            Self::StaffTokenRequired => "staff-token-required",
            Self::RoleNotAllowed => "role-not-allowed",
            Self::CitizenTokenRequired => "citizen-token-required",
            Self::CallerNotVerified => "caller-not-verified",
            Self::CallerOfAnotherAgent => "caller-of-another-agent",
            Self::ChannelNotAllowed => "channel-not-allowed",
            Self::Overloaded => "overloaded",
            Self::Unavailable => "unavailable",
            Self::ProviderUnavailable => "provider-unavailable",
            Self::Internal => "internal",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.name() == name)
    }

    /// A short human-readable title.
    pub fn title(self) -> &'static str {
        match self {
            Self::InvalidRequest => "The request is malformed",
            Self::InvalidIdentity => "The identity data is not valid",
            Self::UnsupportedProvider => "This identity provider is not available",
            Self::RateLimited => "Too many attempts",
            Self::VerificationFailed => "Identity verification failed",
            Self::IdentityMismatch => "The identity data does not match the phone's subscriber",
            Self::VerificationExpired => "The verification has expired",
            Self::VerificationNotFound => "No such verification",
            Self::DeviceLocked => "Another device is using this identity",
            Self::Unauthenticated => "Authentication is required",
            Self::SessionExpired => "The session has ended",
            Self::SessionSuperseded => "A newer session holds this person's lock",
            Self::AdmissionRequired => "Admission from the waiting room is required",
            Self::Forbidden => "Not allowed",
            Self::NotEligible => "Not eligible to book now",
            Self::ProxyNotAllowed => "Booking for another person is not allowed",
            Self::NotFound => "Not found",
            Self::SlotFull => "The slot is fully booked",
            Self::AlreadyBooked => "You already have a booking in this campaign",
            Self::AlreadyCancelled => "The booking is already cancelled",
            Self::CancellationClosed => "The booking can no longer be cancelled",
            Self::ModificationNotAllowed => "Bookings cannot be changed yet",
            Self::IdempotencyKeyReused => "The idempotency key was used for another request",
            Self::InvalidCredentials => "Unknown staff account or wrong password",
            Self::InvalidSecondFactor => "The one-time code is wrong",
            Self::AccountLocked => "The staff account is locked",
            Self::AccountDisabled => "The staff account is disabled",
            Self::StaffTokenRequired => "A staff token is required",
            Self::RoleNotAllowed => "The staff role may not do this",
            Self::CitizenTokenRequired => "This API is for citizens",
            Self::CallerNotVerified => "The caller is not verified",
            Self::CallerOfAnotherAgent => "The caller was verified by another agent",
            Self::ChannelNotAllowed => "The campaign does not allow this channel",
            Self::Overloaded => "The service is busy",
            Self::Unavailable => "The service is unavailable",
            Self::ProviderUnavailable => "The identity provider is unavailable",
            Self::Internal => "Internal error",
        }
    }

    /// A longer explanation served at the problem type's URI.
    pub fn explanation(self) -> &'static str {
        match self {
            Self::InvalidRequest => {
                "A field is missing or malformed; `detail` names it. Nothing was changed."
            }
            Self::InvalidIdentity => {
                "The name, resident registration number or phone number is not well formed."
            }
            Self::UnsupportedProvider => {
                "The identity provider named in the request is unknown or not enabled."
            }
            Self::RateLimited => "Too many attempts in a short time. Wait `retry_after` seconds.",
            Self::VerificationFailed => "The answer to the identity challenge was wrong.",
            Self::IdentityMismatch => {
                "The carrier does not confirm that this phone is registered to this name, birth date and sex digit. The answer is the same whichever of them is wrong, and nothing was sent."
            }
            Self::VerificationExpired => "The verification is too old or used up; start a new one.",
            Self::VerificationNotFound => "The verification id is unknown.",
            Self::DeviceLocked => {
                "This person is verified on another device. This device is blocked for `retry_after` seconds; the other device is not disturbed."
            }
            Self::Unauthenticated => {
                "The request needs a valid access token in `Authorization: Bearer`."
            }
            Self::SessionExpired => {
                "The session no longer holds this person's device lock. Verify again."
            }
            Self::SessionSuperseded => {
                "The person's device lock has changed hands since this session's token was issued (its fencing number is outdated): an older session can never write after losing the lock. Verify again."
            }
            Self::AdmissionRequired => {
                "The waiting room is on for this campaign: take a ticket (`POST /v1/queue/tickets`), poll it until admitted, and send the admission grant as `X-Admission` with the booking call. A grant is for one person and campaign, short-lived, and spent by the booking it allows."
            }
            Self::Forbidden => "The caller may not do this.",
            Self::NotEligible => {
                "The person may not book now; `reason` says why: not-in-age-group (the birth date is outside the campaign's age group), window-not-open (the person's next window has not opened; `opens_at` says when), window-closed (every window of the person has closed while the campaign goes on for others), excluded-priority-target (the person is on the campaign's priority-target list and is vaccinated through that programme), channel-not-allowed (a window is open for the person, but not on this channel), proxy-not-allowed (the campaign does not allow booking for another person, or its `proxy_deadline` has passed), campaign-closed (every window of the campaign has closed), no-campaign (there is no campaign at all)."
            }
            Self::ProxyNotAllowed => {
                "This campaign does not allow booking for another person, or its proxy deadline has passed."
            }
            Self::NotFound => "The resource does not exist or is not yours.",
            Self::SlotFull => "Every place in the slot is taken; choose another slot.",
            Self::AlreadyBooked => "A person holds at most one active booking per campaign.",
            Self::AlreadyCancelled => "The booking was already cancelled.",
            Self::CancellationClosed => {
                "A booking can be cancelled until two days before the vaccination date (through D-2, KST)."
            }
            Self::ModificationNotAllowed => {
                "The campaign does not allow changing bookings yet; `allowed_from` says from when."
            }
            Self::IdempotencyKeyReused => {
                "The Idempotency-Key was already used with a different request."
            }
            Self::InvalidCredentials => {
                "The staff login name is unknown or the password is wrong; the answer is the same for both. Each failure counts towards the account's lockout."
            }
            Self::InvalidSecondFactor => {
                "The password was right but the TOTP code (RFC 6238, 30-second steps) is wrong or stale. Each failure counts towards the account's lockout."
            }
            Self::AccountLocked => {
                "Too many failed logins in a row: the account is locked for `retry_after` seconds (`Retry-After`). An operator, or a supervisor of its organisation for an agent, can unlock it earlier (`StaffAuthService.UnlockAccount`, `vaxbook accounts unlock`)."
            }
            Self::AccountDisabled => {
                "The staff account was disabled; it cannot log in until it is enabled again (`StaffAuthService.EnableAccount`, `vaxbook accounts enable`: an operator, or a supervisor of its organisation for an agent)."
            }
            Self::StaffTokenRequired => {
                "Staff and operator calls need an agent or operator token from `StaffAuthService.Login` in `authorization: Bearer`. A citizen's access token, or a retired static key, is never accepted."
            }
            Self::RoleNotAllowed => {
                "The staff account's role may not make this call: agents and supervisors book for callers; operators run campaigns, centers, slots, exclusions and the waiting room."
            }
            Self::CitizenTokenRequired => {
                "The citizens' API refuses agent and operator tokens: agents book for callers through the call-center API (`vaxbook.booking.v1.StaffBookingService`). The attempt is recorded in the audit trail."
            }
            Self::CallerNotVerified => {
                "This call-center call needs a caller grant from `StaffAuthService.ConfirmCaller` in `x-caller-grant`: missing, expired or malformed."
            }
            Self::CallerOfAnotherAgent => {
                "The caller grant was issued to another agent; an agent acts only for the callers they verified themselves."
            }
            Self::ChannelNotAllowed => {
                "The campaign does not offer booking on this channel now (for the call-center API: the call-center channel). `reason` repeats the eligibility reason."
            }
            Self::Overloaded => "The system is at capacity. Retry after `Retry-After` seconds.",
            Self::Unavailable => "A service behind the gateway does not answer. Retry shortly.",
            Self::ProviderUnavailable => {
                "The identity provider (for the phone provider, the carriers' identity-verification agency) does not answer. Retry after `Retry-After` seconds or choose another provider."
            }
            Self::Internal => "Something unexpected happened. It has been logged.",
        }
    }

    pub fn grpc_code(self) -> Code {
        match self {
            Self::InvalidRequest | Self::InvalidIdentity | Self::UnsupportedProvider => {
                Code::InvalidArgument
            }
            Self::RateLimited | Self::Overloaded => Code::ResourceExhausted,
            Self::VerificationFailed
            | Self::IdentityMismatch
            | Self::Unauthenticated
            | Self::SessionExpired
            | Self::SessionSuperseded => Code::Unauthenticated,
            Self::VerificationExpired
            | Self::DeviceLocked
            | Self::CancellationClosed
            | Self::ModificationNotAllowed
            | Self::AlreadyCancelled => Code::FailedPrecondition,
            Self::VerificationNotFound | Self::NotFound => Code::NotFound,
            Self::Forbidden
            | Self::NotEligible
            | Self::ProxyNotAllowed
            | Self::AdmissionRequired => Code::PermissionDenied,
            Self::SlotFull => Code::ResourceExhausted,
            Self::AlreadyBooked | Self::IdempotencyKeyReused => Code::AlreadyExists,
            Self::Unavailable | Self::ProviderUnavailable => Code::Unavailable,
            Self::InvalidCredentials => Code::Unauthenticated,
            Self::InvalidSecondFactor => Code::Unauthenticated,
            Self::AccountLocked => Code::PermissionDenied,
            Self::AccountDisabled => Code::PermissionDenied,
            Self::StaffTokenRequired => Code::Unauthenticated,
            Self::RoleNotAllowed => Code::PermissionDenied,
            Self::CitizenTokenRequired => Code::PermissionDenied,
            Self::CallerNotVerified => Code::PermissionDenied,
            Self::CallerOfAnotherAgent => Code::PermissionDenied,
            Self::ChannelNotAllowed => Code::PermissionDenied,
            Self::Internal => Code::Internal,
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidRequest | Self::InvalidIdentity | Self::UnsupportedProvider => 400,
            Self::RateLimited => 429,
            Self::VerificationFailed
            | Self::IdentityMismatch
            | Self::Unauthenticated
            | Self::SessionExpired
            | Self::SessionSuperseded => 401,
            Self::VerificationExpired => 410,
            Self::DeviceLocked => 423,
            Self::Forbidden
            | Self::NotEligible
            | Self::ProxyNotAllowed
            | Self::AdmissionRequired => 403,
            Self::VerificationNotFound | Self::NotFound => 404,
            Self::SlotFull
            | Self::AlreadyBooked
            | Self::AlreadyCancelled
            | Self::CancellationClosed
            | Self::ModificationNotAllowed => 409,
            Self::IdempotencyKeyReused => 422,
            Self::Overloaded | Self::Unavailable | Self::ProviderUnavailable => 503,
            Self::InvalidCredentials => 401,
            Self::InvalidSecondFactor => 401,
            Self::AccountLocked => 423,
            Self::AccountDisabled => 403,
            Self::StaffTokenRequired => 401,
            Self::RoleNotAllowed => 403,
            Self::CitizenTokenRequired => 403,
            Self::CallerNotVerified => 403,
            Self::CallerOfAnotherAgent => 403,
            Self::ChannelNotAllowed => 403,
            Self::Internal => 500,
        }
    }
}

/// A problem with its kind, a detail for the reader, and extra members (`reason`,
/// `retry_after`, `allowed_from`, …) carried as `ErrorInfo.metadata`.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub detail: String,
    pub extra: HashMap<String, String>,
    pub retry_after: Option<Duration>,
}

impl Problem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            extra: HashMap::new(),
            retry_after: None,
        }
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::InvalidRequest, detail)
    }

    pub fn internal() -> Self {
        Self::new(ProblemKind::Internal, "internal error")
    }

    /// Adds an extra member.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self.extra
            .insert("retry_after".to_owned(), after.as_secs().max(1).to_string());
        self
    }

    /// The gRPC status: the kind's code, the detail as message, and `ErrorInfo` (+ `RetryInfo`).
    pub fn to_status(&self) -> Status {
        let mut details =
            ErrorDetails::with_error_info(self.kind.name(), ERROR_DOMAIN, self.extra.clone());
        if let Some(after) = self.retry_after {
            details.set_retry_info(Some(after));
        }
        Status::with_error_details(self.kind.grpc_code(), self.detail.clone(), details)
    }

    /// Reads a problem back from a gRPC status; statuses without vaxbook details map by code.
    pub fn from_status(status: &Status) -> Self {
        let details = status.get_error_details();
        if let Some(info) = details.error_info()
            && info.domain == ERROR_DOMAIN
            && let Some(kind) = ProblemKind::from_name(&info.reason)
        {
            let retry_after = details.retry_info().and_then(|retry| retry.retry_delay);
            return Self {
                kind,
                detail: status.message().to_owned(),
                extra: info.metadata.clone(),
                retry_after,
            };
        }
        let kind = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => ProblemKind::InvalidRequest,
            Code::Unauthenticated => ProblemKind::Unauthenticated,
            Code::PermissionDenied => ProblemKind::Forbidden,
            Code::NotFound => ProblemKind::NotFound,
            Code::ResourceExhausted => ProblemKind::Overloaded,
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                ProblemKind::Unavailable
            }
            _ => ProblemKind::Internal,
        };
        let detail = match kind {
            ProblemKind::Internal => "internal error".to_owned(),
            ProblemKind::Unavailable => "a service did not answer in time".to_owned(),
            _ => status.message().to_owned(),
        };
        let mut problem = Self::new(kind, detail);
        if kind == ProblemKind::Unavailable || kind == ProblemKind::Overloaded {
            problem = problem.with_retry_after(Duration::from_secs(1));
        }
        problem
    }
}

impl From<Problem> for Status {
    fn from(problem: Problem) -> Self {
        problem.to_status()
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.detail)
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_not_eligible_explanation_names_every_current_reason() {
        let text = ProblemKind::NotEligible.explanation();
        for reason in [
            "not-in-age-group",
            "window-not-open",
            "window-closed",
            "excluded-priority-target",
            "channel-not-allowed",
            "proxy-not-allowed",
            "campaign-closed",
            "no-campaign",
        ] {
            assert!(
                text.contains(&format!("{reason} (")),
                "{reason} missing: {text}"
            );
        }
        // The names of before the campaigns became data are gone.
        for stale in ["not-open-yet", " closed,", "excluded)"] {
            assert!(!text.contains(stale), "stale `{stale}` in: {text}");
        }
    }

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for kind in ProblemKind::ALL {
            assert!(seen.insert(kind.name()), "duplicate name {}", kind.name());
            assert_eq!(ProblemKind::from_name(kind.name()), Some(*kind));
        }
    }

    #[test]
    fn a_problem_survives_the_grpc_status_round_trip() {
        let problem = Problem::new(ProblemKind::DeviceLocked, "held by another device")
            .with_retry_after(Duration::from_secs(600))
            .with("reason", "x");
        let status = problem.to_status();
        assert_eq!(status.code(), Code::FailedPrecondition);
        let back = Problem::from_status(&status);
        assert_eq!(back.kind, ProblemKind::DeviceLocked);
        assert_eq!(back.retry_after, Some(Duration::from_secs(600)));
        assert_eq!(
            back.extra.get("retry_after").map(String::as_str),
            Some("600")
        );
        assert_eq!(back.extra.get("reason").map(String::as_str), Some("x"));
    }

    #[test]
    fn a_foreign_internal_status_does_not_leak_its_message() {
        let status = Status::internal("connection string postgres://secret");
        let problem = Problem::from_status(&status);
        assert_eq!(problem.kind, ProblemKind::Internal);
        assert!(!problem.detail.contains("secret"));
    }
}
