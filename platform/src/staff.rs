//! The call-center channel's signed statements (R9): the agent token auth-svc issues when an
//! agent, supervisor or operator logs in, and the caller grant it issues when an agent has
//! verified the person on the phone. Both are [`crate::grants`] grants (EdDSA, issuer
//! `vaxbook-auth`), so every service verifies them locally against auth-svc's KeysService like
//! any other grant. The agent token's audience is [`STAFF_AUDIENCE`], never the citizens' access
//! token audience: a citizen token is refused by every staff RPC and an agent token by every
//! citizen endpoint, because the verifier checks audience and kind.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::grants::{GrantKind, VerifiedGrant};
use crate::problem::{Problem, ProblemKind};

/// Audience of agent tokens: the staff gRPC APIs of auth-svc, booking-svc and scheduling-svc.
pub const STAFF_AUDIENCE: &str = "vaxbook-staff";
/// gRPC metadata key carrying the agent (or operator) token on staff and admin RPCs.
pub const STAFF_TOKEN_HEADER: &str = "authorization";
/// gRPC metadata key carrying the caller grant on staff booking RPCs.
pub const CALLER_GRANT_HEADER: &str = "x-caller-grant";
/// How long an agent token is valid: a shift logs in again.
pub const AGENT_TOKEN_TTL: Duration = Duration::from_secs(30 * 60);
/// How long a caller grant is valid: one phone call.
pub const CALLER_GRANT_TTL: Duration = Duration::from_secs(15 * 60);

/// What a staff account may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StaffRole {
    /// Books for verified callers.
    Agent,
    /// An agent who may also read the audit trail of their organisation.
    Supervisor,
    /// Runs the system: campaigns, centers, slots, exclusions, the whole audit trail.
    Operator,
}

impl StaffRole {
    pub const ALL: [StaffRole; 3] = [Self::Agent, Self::Supervisor, Self::Operator];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Supervisor => "supervisor",
            Self::Operator => "operator",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == raw)
    }

    /// Whether this role books for callers (agents and supervisors; operators do not).
    pub fn books_for_callers(self) -> bool {
        matches!(self, Self::Agent | Self::Supervisor)
    }
}

/// Claims of an agent token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentToken {
    /// The account id (a UUID), never a person's data.
    pub sub: String,
    /// The login name, for the audit trail.
    pub username: String,
    /// The organisation, e.g. `national-call-center`, `seoul-gangnam`.
    pub org: String,
    pub role: StaffRole,
}

impl GrantKind for AgentToken {
    const KIND: &'static str = "agent";
    const ISSUER: &'static str = crate::auth::ISSUER;
    const AUDIENCE: &'static str = STAFF_AUDIENCE;
}

/// Claims of a caller grant: the person an agent verified on the phone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerGrant {
    /// The agent account the grant is bound to (the agent token's `sub`).
    pub agent: String,
    /// Person key of the caller.
    pub for_key: String,
    /// Birth date of the caller, YYYY-MM-DD.
    pub for_bd: String,
}

impl GrantKind for CallerGrant {
    const KIND: &'static str = "caller";
    const ISSUER: &'static str = crate::auth::ISSUER;
    const AUDIENCE: &'static str = "vaxbook-booking";
}

/// The bearer token of a staff request's metadata value (`Bearer <token>`).
pub fn bearer(value: Option<&str>) -> Result<&str, Problem> {
    value
        .and_then(|raw| raw.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            Problem::new(
                ProblemKind::Unauthenticated,
                "staff RPCs need an agent or operator token in `authorization: Bearer`",
            )
        })
}

/// Refuses a verified agent token whose role is not one of `allowed`.
pub fn require_role(
    token: &VerifiedGrant<AgentToken>,
    allowed: &[StaffRole],
) -> Result<(), Problem> {
    if allowed.contains(&token.claims.role) {
        Ok(())
    } else {
        Err(Problem::new(
            ProblemKind::Forbidden,
            format!("the {} role may not do this", token.claims.role.as_str()),
        ))
    }
}

/// Refuses a caller grant that was issued to another agent.
pub fn require_own_caller(
    agent: &VerifiedGrant<AgentToken>,
    caller: &VerifiedGrant<CallerGrant>,
) -> Result<(), Problem> {
    if caller.claims.agent == agent.claims.sub {
        Ok(())
    } else {
        Err(Problem::new(
            ProblemKind::Forbidden,
            "the caller grant was issued to another agent",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_only_agents_and_supervisors_book() {
        for role in StaffRole::ALL {
            assert_eq!(StaffRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(StaffRole::parse("root"), None);
        assert!(StaffRole::Agent.books_for_callers());
        assert!(!StaffRole::Operator.books_for_callers());
    }

    #[test]
    fn bearer_needs_the_scheme_and_a_token() {
        assert_eq!(bearer(Some("Bearer abc")).ok(), Some("abc"));
        assert!(bearer(Some("abc")).is_err());
        assert!(bearer(Some("Bearer ")).is_err());
        assert!(bearer(None).is_err());
    }
}
