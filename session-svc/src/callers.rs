//! Who may call session-svc (docs/security.md): it trusts no caller for the two calls that
//! change a person's lock. `ClaimDevice` needs auth-svc's device proof — a single-use grant
//! (`platform::trust::DeviceProof`) saying this person has just verified on this device —
//! and `ReleaseSession` needs that session's own access token. `CheckDevice` changes nothing
//! but tells whether a person is signed in elsewhere, so it needs auth-svc's device-check grant
//! (`platform::device_check::DeviceCheck`) for that person and device. All three are verified
//! here, locally, against auth-svc's published keys; every refusal is counted and logged once
//! as a security event without the person key, the device id or the token.

use std::sync::Arc;

use platform::auth::{JwksSource, Role, TokenVerifier};
use platform::clock::SharedClock;
use platform::device_check::DeviceCheck;
use platform::grants::{GrantVerifier, ReplayGuard};
use platform::problem::ProblemKind;
use platform::trust::{DeviceProof, refused_call};

use crate::domain::{CheckDevice, ClaimDevice, ReleaseSession};
use crate::error::SessionError;

const SERVICE: &str = "session-svc";

/// On whose authority a session is released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Releaser {
    /// The session's own access token (the person logging out on that device).
    SessionHolder,
    // Extension point: a call-center agent's token (R9) or an operator's key releases another
    // person's session once those roles exist; add their variants and branches in
    // `Callers::authorize_release`, nowhere else.
}

/// The credentials session-svc accepts, and what it remembers to accept each proof once.
pub struct Callers {
    proofs: GrantVerifier,
    tokens: TokenVerifier,
    replay: Arc<dyn ReplayGuard>,
}

impl Callers {
    /// Verifies against auth-svc's keys from `auth_keys`; `replay` remembers used proofs.
    pub fn new(
        auth_keys: Arc<dyn JwksSource>,
        replay: Arc<dyn ReplayGuard>,
        clock: SharedClock,
    ) -> Self {
        Self {
            proofs: GrantVerifier::new(auth_keys.clone(), clock.clone()),
            tokens: TokenVerifier::new(auth_keys, clock),
            replay,
        }
    }

    /// Accepts the claim only with a valid, unused device proof for its person and device.
    pub async fn authorize_claim(&self, claim: &ClaimDevice) -> Result<(), SessionError> {
        let refuse = |reason: &'static str, detail: &str| {
            refused_call(SERVICE, "ClaimDevice", reason);
            SessionError::Unauthenticated(detail.to_owned())
        };
        if claim.device_proof.is_empty() {
            return Err(refuse(
                "no-credential",
                "a device proof from auth-svc is required",
            ));
        }
        let verified = match self.proofs.verify::<DeviceProof>(&claim.device_proof).await {
            Ok(verified) => verified,
            // The keys could not be fetched: not the caller's fault, and not a refusal.
            Err(problem) if problem.kind == ProblemKind::Unavailable => {
                return Err(SessionError::Upstream(problem));
            }
            Err(problem) => return Err(refuse("invalid-proof", &problem.detail)),
        };
        if verified.claims.sub != claim.person_key.as_str()
            || verified.claims.dev != claim.device_id.as_str()
        {
            return Err(refuse(
                "wrong-subject",
                "the device proof is for another person or device",
            ));
        }
        let first = self
            .replay
            .first_use(&verified.id, verified.expires_at)
            .await
            .map_err(SessionError::Upstream)?;
        if !first {
            return Err(refuse(
                "replayed-proof",
                "the device proof was already used",
            ));
        }
        Ok(())
    }

    /// Answers the check only with a valid device-check grant for its person and device. The
    /// grant is not single use: the check changes nothing, and the grant expires in seconds.
    pub async fn authorize_check(&self, check: &CheckDevice) -> Result<(), SessionError> {
        let refuse = |reason: &'static str, detail: &str| {
            refused_call(SERVICE, "CheckDevice", reason);
            SessionError::Unauthenticated(detail.to_owned())
        };
        if check.device_check.is_empty() {
            return Err(refuse(
                "no-credential",
                "a device-check grant from auth-svc is required",
            ));
        }
        let verified = match self.proofs.verify::<DeviceCheck>(&check.device_check).await {
            Ok(verified) => verified,
            Err(problem) if problem.kind == ProblemKind::Unavailable => {
                return Err(SessionError::Upstream(problem));
            }
            Err(problem) => return Err(refuse("invalid-grant", &problem.detail)),
        };
        if verified.claims.sub != check.person_key.as_str()
            || verified.claims.dev != check.device_id.as_str()
        {
            return Err(refuse(
                "wrong-subject",
                "the device-check grant is for another person or device",
            ));
        }
        Ok(())
    }

    /// Accepts the release only with the access token of the session being released.
    pub async fn authorize_release(
        &self,
        token: Option<&str>,
        release: &ReleaseSession,
    ) -> Result<Releaser, SessionError> {
        let refuse = |reason: &'static str, error: SessionError| {
            refused_call(SERVICE, "ReleaseSession", reason);
            error
        };
        let Some(token) = token else {
            return Err(refuse(
                "no-credential",
                SessionError::Unauthenticated("the session's access token is required".to_owned()),
            ));
        };
        let claims = match self.tokens.verify(token).await {
            Ok(claims) => claims,
            Err(problem) if problem.kind == ProblemKind::Unavailable => {
                return Err(SessionError::Upstream(problem));
            }
            Err(problem) => {
                return Err(refuse(
                    "invalid-token",
                    SessionError::Unauthenticated(problem.detail),
                ));
            }
        };
        match claims.role {
            Role::Citizen
                if claims.sub == release.person_key.as_str()
                    && claims.sid == release.session_id.as_str() =>
            {
                Ok(Releaser::SessionHolder)
            }
            Role::Citizen => Err(refuse(
                "wrong-session",
                SessionError::Forbidden("the access token belongs to another session".to_owned()),
            )),
            Role::Agent => Err(refuse(
                "agent-not-allowed",
                SessionError::Forbidden("agents cannot release sessions yet".to_owned()),
            )),
        }
    }
}

/// The bearer token of `authorization` metadata, `None` when there is none; a malformed
/// header is refused like a missing one.
pub fn presented_token(metadata: &tonic::metadata::MetadataMap) -> Option<&str> {
    platform::auth::bearer(metadata).ok()
}

impl std::fmt::Debug for Callers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callers").finish_non_exhaustive()
    }
}
