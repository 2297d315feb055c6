//! Operators instead of one shared key (R9): every admin RPC (scheduling-svc's campaigns and
//! exclusions, booking-svc's centers and slots, session-svc's waiting room and lock operations,
//! auth-svc's person-key derivation) takes an operator token — the agent token auth-svc's
//! `StaffAuthService.Login` issues to an account of role `operator` — in `authorization: Bearer`,
//! verified locally against auth-svc's keys like every other grant. The operator's account,
//! name and organisation come from the verified token and go into the service's audit trail.
//!
//! The one shortcut is the dev run's: a service configured by `Config::local_dev` (never by its
//! production environment) also accepts the development key in `x-admin-key`, acting as
//! [`DEV_OPERATOR`]. A production service has no key to compare with, so the header is refused
//! like no credential at all.

use std::sync::Arc;

use tonic::metadata::MetadataMap;

use crate::audit::AuditRecord;
use crate::config::Secret;
use crate::grants::GrantVerifier;
use crate::problem::{Problem, ProblemKind};
use crate::staff::{AgentToken, STAFF_TOKEN_HEADER, StaffRole};

/// The metadata key of the dev-run shortcut.
pub const DEV_KEY_HEADER: &str = "x-admin-key";
/// The actor the dev-run shortcut acts as in audit entries.
pub const DEV_OPERATOR: &str = "dev-operator";
/// The organisation of [`DEV_OPERATOR`].
pub const DEV_ORGANISATION: &str = "dev-run";

/// The operator an admin call acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    /// The staff account id (the token's `sub`), or [`DEV_OPERATOR`].
    pub account: String,
    /// The login name.
    pub username: String,
    pub organisation: String,
}

impl Operator {
    /// The audit record of an action of this operator.
    pub fn record(&self, action: &str, person_key: Option<String>, outcome: &str) -> AuditRecord {
        AuditRecord {
            actor: self.account.clone(),
            organisation: self.organisation.clone(),
            role: StaffRole::Operator.as_str().to_owned(),
            action: action.to_owned(),
            person_key,
            outcome: outcome.to_owned(),
        }
    }
}

/// A refused admin call, with whatever is known of the caller for the audit entry.
#[derive(Clone, Debug)]
pub struct OperatorRefusal {
    /// The staff account of a verified token of another role (an agent trying an admin RPC).
    pub staff: Option<AgentToken>,
    pub problem: Problem,
}

impl OperatorRefusal {
    /// The audit record of this refusal of `action`.
    pub fn record(&self, action: &str) -> AuditRecord {
        AuditRecord::by_staff(self.staff.as_ref(), action, None, self.problem.kind.name())
    }
}

/// Decides whether an admin call comes from an operator.
pub struct OperatorGuard {
    grants: Arc<GrantVerifier>,
    dev_key: Option<Secret>,
}

impl std::fmt::Debug for OperatorGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorGuard")
            .field("dev_key", &self.dev_key.is_some())
            .finish_non_exhaustive()
    }
}

impl OperatorGuard {
    /// `grants` verifies auth-svc's grants (issuer `vaxbook-auth`); `dev_key` is set only by a
    /// dev-run configuration.
    pub fn new(grants: Arc<GrantVerifier>, dev_key: Option<Secret>) -> Self {
        Self { grants, dev_key }
    }

    /// The operator of a call, or why the call is refused: no credential or a token that is no
    /// staff token (a citizen's, a forged or expired one) is `staff-token-required`; a staff
    /// token of another role is `role-not-allowed`; auth-svc's keys out of reach is
    /// `unavailable`.
    pub async fn authorize(&self, metadata: &MetadataMap) -> Result<Operator, OperatorRefusal> {
        let refused =
            |staff: Option<AgentToken>, kind: ProblemKind, detail: &str| OperatorRefusal {
                staff,
                problem: Problem::new(kind, detail),
            };
        if let Some(header) = metadata.get(STAFF_TOKEN_HEADER) {
            let token = header
                .to_str()
                .ok()
                .and_then(|raw| raw.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|token| !token.is_empty())
                .ok_or_else(|| {
                    refused(
                        None,
                        ProblemKind::StaffTokenRequired,
                        "authorization must be `Bearer <operator token>`",
                    )
                })?;
            let verified = match self.grants.verify::<AgentToken>(token).await {
                Ok(verified) => verified,
                Err(problem) if problem.kind == ProblemKind::Unavailable => {
                    return Err(OperatorRefusal {
                        staff: None,
                        problem,
                    });
                }
                Err(_) => {
                    return Err(refused(
                        None,
                        ProblemKind::StaffTokenRequired,
                        "admin calls need a valid operator token from StaffAuthService.Login",
                    ));
                }
            };
            if verified.claims.role != StaffRole::Operator {
                let detail = format!(
                    "the {} role may not make admin calls; an operator account may",
                    verified.claims.role.as_str()
                );
                return Err(refused(
                    Some(verified.claims),
                    ProblemKind::RoleNotAllowed,
                    &detail,
                ));
            }
            let claims = verified.claims;
            return Ok(Operator {
                account: claims.sub,
                username: claims.username,
                organisation: claims.org,
            });
        }
        let presented = metadata
            .get(DEV_KEY_HEADER)
            .and_then(|value| value.to_str().ok());
        match (presented, &self.dev_key) {
            (Some(key), Some(dev_key))
                if crate::auth::constant_time_eq(key.as_bytes(), dev_key.expose().as_bytes()) =>
            {
                Ok(Operator {
                    account: DEV_OPERATOR.to_owned(),
                    username: DEV_OPERATOR.to_owned(),
                    organisation: DEV_ORGANISATION.to_owned(),
                })
            }
            (Some(_), Some(_)) => Err(refused(
                None,
                ProblemKind::StaffTokenRequired,
                "the dev-run operator key is wrong",
            )),
            (Some(_), None) => Err(refused(
                None,
                ProblemKind::StaffTokenRequired,
                "there is no static operator key outside the dev run: log in with StaffAuthService.Login and send the operator token",
            )),
            (None, _) => Err(refused(
                None,
                ProblemKind::StaffTokenRequired,
                "admin calls need an operator token in `authorization: Bearer`",
            )),
        }
    }
}

/// How a client (the `vaxbook` CLI, a test) authenticates its admin calls.
#[derive(Clone, PartialEq, Eq)]
pub enum OperatorCredential {
    /// An operator token from `StaffAuthService.Login`.
    Token(String),
    /// The dev run's key (accepted only by a dev-run service).
    DevKey(String),
}

impl std::fmt::Debug for OperatorCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("OperatorCredential::Token(***)"),
            Self::DevKey(_) => f.write_str("OperatorCredential::DevKey(***)"),
        }
    }
}

impl OperatorCredential {
    /// The dev run's own key.
    pub fn dev() -> Self {
        Self::DevKey(crate::config::DEV_ADMIN_KEY.to_owned())
    }

    /// Puts the credential into `metadata`.
    pub fn apply(&self, metadata: &mut MetadataMap) -> anyhow::Result<()> {
        let (key, value) = match self {
            Self::Token(token) => (STAFF_TOKEN_HEADER, format!("Bearer {token}")),
            Self::DevKey(key) => (DEV_KEY_HEADER, key.clone()),
        };
        let value = tonic::metadata::MetadataValue::try_from(value.as_str()).map_err(|_| {
            anyhow::anyhow!("the operator credential is not a valid metadata value")
        })?;
        metadata.insert(key, value);
        Ok(())
    }

    /// `message` as an admin request carrying the credential.
    pub fn request<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        self.apply(request.metadata_mut())?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::{Clock as _, SettableClock};
    use crate::grants::{GrantIssuer, SigningKeys, StaticKeysSource};

    fn guard(dev_key: Option<&str>) -> (OperatorGuard, GrantIssuer, Arc<SettableClock>) {
        let keys = Arc::new(SigningKeys::generate().expect("keys"));
        let clock = Arc::new(SettableClock::new());
        let verifier = GrantVerifier::new(Arc::new(StaticKeysSource(keys.jwks())), clock.clone());
        (
            OperatorGuard::new(Arc::new(verifier), dev_key.map(Secret::new)),
            GrantIssuer::new(keys),
            clock,
        )
    }

    fn staff(role: StaffRole) -> AgentToken {
        AgentToken {
            sub: "6f1c0b9e-0000-4000-8000-000000000001".to_owned(),
            username: format!("{}.kim", role.as_str()),
            org: "national-call-center".to_owned(),
            role,
        }
    }

    fn metadata(credential: &OperatorCredential) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        credential.apply(&mut metadata).expect("a metadata value");
        metadata
    }

    #[tokio::test]
    async fn an_operator_token_passes_and_names_the_operator() {
        let (guard, issuer, clock) = guard(None);
        let token = issuer
            .issue(
                &staff(StaffRole::Operator),
                clock.now(),
                Duration::from_secs(60),
            )
            .expect("issued");
        let operator = guard
            .authorize(&metadata(&OperatorCredential::Token(token.token)))
            .await
            .expect("authorized");
        assert_eq!(operator.username, "operator.kim");
        assert_eq!(operator.organisation, "national-call-center");
        let record = operator.record("admin.upsert-slot", None, "ok");
        assert_eq!(record.role, "operator");
        assert_eq!(record.actor, operator.account);
    }

    #[tokio::test]
    async fn agents_supervisors_citizens_and_nobody_are_refused() {
        let (guard, issuer, clock) = guard(None);
        for role in [StaffRole::Agent, StaffRole::Supervisor] {
            let token = issuer
                .issue(&staff(role), clock.now(), Duration::from_secs(60))
                .expect("issued");
            let refused = guard
                .authorize(&metadata(&OperatorCredential::Token(token.token)))
                .await
                .expect_err("refused");
            assert_eq!(refused.problem.kind, ProblemKind::RoleNotAllowed);
            assert_eq!(refused.record("admin.upsert-slot").role, role.as_str());
        }
        let refused = guard
            .authorize(&MetadataMap::new())
            .await
            .expect_err("refused");
        assert_eq!(refused.problem.kind, ProblemKind::StaffTokenRequired);
        let refused = guard
            .authorize(&metadata(&OperatorCredential::Token(
                "not.a.token".to_owned(),
            )))
            .await
            .expect_err("refused");
        assert_eq!(refused.problem.kind, ProblemKind::StaffTokenRequired);
        // An expired operator token is no operator token.
        let token = issuer
            .issue(
                &staff(StaffRole::Operator),
                clock.now(),
                Duration::from_secs(60),
            )
            .expect("issued");
        clock.set(clock.now() + chrono::Duration::seconds(61));
        let refused = guard
            .authorize(&metadata(&OperatorCredential::Token(token.token)))
            .await
            .expect_err("refused");
        assert_eq!(refused.problem.kind, ProblemKind::StaffTokenRequired);
    }

    #[tokio::test]
    async fn the_dev_key_works_only_where_a_dev_run_configured_it() {
        let (production, _, _) = guard(None);
        let refused = production
            .authorize(&metadata(&OperatorCredential::dev()))
            .await
            .expect_err("refused");
        assert_eq!(refused.problem.kind, ProblemKind::StaffTokenRequired);
        let (dev, _, _) = guard(Some(crate::config::DEV_ADMIN_KEY));
        let operator = dev
            .authorize(&metadata(&OperatorCredential::dev()))
            .await
            .expect("authorized");
        assert_eq!(operator.account, DEV_OPERATOR);
        let refused = dev
            .authorize(&metadata(&OperatorCredential::DevKey("guess".to_owned())))
            .await
            .expect_err("refused");
        assert_eq!(refused.problem.kind, ProblemKind::StaffTokenRequired);
    }
}
