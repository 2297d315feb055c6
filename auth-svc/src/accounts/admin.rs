//! Account administration (R9): staff accounts are disabled, enabled and unlocked here instead
//! of in the database. Operators administer every account and list them all; supervisors
//! administer the agents of their own organisation and list their organisation's accounts;
//! agents administer nothing. An operator cannot disable their own account, so the last
//! operator cannot lock everyone out by accident.
//!
//! Every call, accepted or refused, is written to the audit trail before anything changes, with
//! the target account in the record's person-key slot as `account:<account id>` (a staff
//! account is not a person: the prefix keeps the two apart); when the entry cannot be written
//! the call answers `unavailable` and nothing changes.

use std::sync::Arc;

use platform::audit::{AuditLog, AuditRecord};
use platform::clock::SharedClock;
use platform::problem::{Problem, ProblemKind};
use platform::staff::{AgentToken, StaffRole};
use uuid::Uuid;

use super::callers::outcome_name;
use super::store::AccountStore;
use super::{Account, internal, refusal, valid_name};

/// Audit action of `DisableAccount`.
pub const DISABLE_ACCOUNT: &str = "staff.disable-account";
/// Audit action of `EnableAccount`.
pub const ENABLE_ACCOUNT: &str = "staff.enable-account";
/// Audit action of `UnlockAccount`.
pub const UNLOCK_ACCOUNT: &str = "staff.unlock-account";
/// Audit action of `ListAccounts`.
pub const LIST_ACCOUNTS: &str = "staff.list-accounts";

/// How an audit record names the staff account acted on, in its person-key slot.
pub fn account_key(id: Uuid) -> String {
    format!("account:{id}")
}

/// What an administrator does to one account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountChange {
    /// The account can no longer log in (tokens it holds run out on their own).
    Disable,
    /// A disabled account can log in again.
    Enable,
    /// The lockout after repeated failed logins ends now, the failures are forgotten.
    Unlock,
}

impl AccountChange {
    /// The audit action.
    pub fn action(self) -> &'static str {
        match self {
            Self::Disable => DISABLE_ACCOUNT,
            Self::Enable => ENABLE_ACCOUNT,
            Self::Unlock => UNLOCK_ACCOUNT,
        }
    }
}

/// The account administration rules over the accounts and the audit trail.
pub struct AccountAdmin {
    store: Arc<dyn AccountStore>,
    audit: Arc<dyn AuditLog>,
    clock: SharedClock,
}

/// The caller of an administration call: the claims of its verified staff token, or why its
/// token was refused (`staff-token-required`, or `unavailable` when the keys could not be read).
pub type Caller = Result<AgentToken, Problem>;

impl AccountAdmin {
    pub fn new(store: Arc<dyn AccountStore>, audit: Arc<dyn AuditLog>, clock: SharedClock) -> Self {
        Self {
            store,
            audit,
            clock,
        }
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Applies `change` to the account named `username` for `caller`; the account as it is
    /// after. Audited before the change, refused or not.
    pub async fn change(
        &self,
        caller: Caller,
        change: AccountChange,
        username: &str,
    ) -> Result<Account, Problem> {
        // The target is looked up whoever asks, so that a refused attempt names it too.
        let (target, lookup) = match valid_name("username", username) {
            Ok(_) => match self.store.find(username).await {
                Ok(target) => (target, Ok(())),
                Err(err) => (None, Err(internal(err))),
            },
            Err(_) => (None, Ok(())),
        };
        let decision = caller.as_ref().map_err(Clone::clone).and_then(|staff| {
            administrator(staff)?;
            lookup?;
            may_change(staff, change, username, target.as_ref())
        });
        let person_key = target.as_ref().map(|target| account_key(target.id));
        self.record(&caller, change.action(), person_key, &decision)
            .await?;
        decision?;
        let changed = match change {
            AccountChange::Disable => self.store.set_disabled(username, true).await,
            AccountChange::Enable => self.store.set_disabled(username, false).await,
            AccountChange::Unlock => self.store.unlock(username).await,
        }
        .map_err(internal)?;
        let after = if changed {
            self.store.find(username).await.map_err(internal)?
        } else {
            None
        };
        after.ok_or_else(|| unknown_account(username))
    }

    /// The accounts `caller` may see: an operator's of `organisation` (empty: every
    /// organisation), a supervisor's own organisation's. Audited before the reading.
    pub async fn list(&self, caller: Caller, organisation: &str) -> Result<Vec<Account>, Problem> {
        let decision = caller.as_ref().map_err(Clone::clone).and_then(|staff| {
            administrator(staff)?;
            let filter = match organisation {
                "" => None,
                given => Some(
                    valid_name("organisation", given)
                        .map_err(|problem| refusal(ProblemKind::InvalidRequest, problem.detail))?,
                ),
            };
            match (staff.role, filter) {
                (StaffRole::Supervisor, Some(other)) if other != staff.org => Err(refusal(
                    ProblemKind::RoleNotAllowed,
                    "a supervisor lists the accounts of their own organisation only",
                )),
                (StaffRole::Supervisor, _) => Ok(Some(staff.org.clone())),
                (_, filter) => Ok(filter),
            }
        });
        self.record(&caller, LIST_ACCOUNTS, None, &decision).await?;
        let filter = decision?;
        self.store.list(filter.as_deref()).await.map_err(internal)
    }

    /// Writes the entry of a call; no entry, no answer but `unavailable`.
    async fn record<T>(
        &self,
        caller: &Caller,
        action: &str,
        person_key: Option<String>,
        decision: &Result<T, Problem>,
    ) -> Result<(), Problem> {
        let record = AuditRecord::by_staff(
            caller.as_ref().ok(),
            action,
            person_key,
            &outcome_name(decision),
        );
        platform::audit::append_or_unavailable(&*self.audit, self.clock.now(), record)
            .await
            .map(|_| ())
            .map_err(|problem| Problem {
                detail: "the audit trail is unavailable; nothing was changed".to_owned(),
                ..problem
            })
    }
}

/// Operators and supervisors administer accounts; agents are `role-not-allowed`.
fn administrator(staff: &AgentToken) -> Result<(), Problem> {
    match staff.role {
        StaffRole::Operator | StaffRole::Supervisor => Ok(()),
        StaffRole::Agent => Err(refusal(
            ProblemKind::RoleNotAllowed,
            "the agent role may not administer accounts; ask a supervisor or an operator",
        )),
    }
}

fn unknown_account(username: &str) -> Problem {
    refusal(
        ProblemKind::NotFound,
        format!("there is no staff account named {username}"),
    )
}

/// Whether an operator or supervisor may apply `change` to `target` (named `username`).
fn may_change(
    staff: &AgentToken,
    change: AccountChange,
    username: &str,
    target: Option<&Account>,
) -> Result<(), Problem> {
    valid_name("username", username)
        .map_err(|problem| refusal(ProblemKind::InvalidRequest, problem.detail))?;
    let Some(target) = target else {
        return Err(unknown_account(username));
    };
    if staff.role == StaffRole::Supervisor {
        // Another organisation's accounts are not a supervisor's to see (nor to list).
        if target.organisation != staff.org {
            return Err(unknown_account(username));
        }
        if target.role != StaffRole::Agent {
            return Err(refusal(
                ProblemKind::RoleNotAllowed,
                format!(
                    "a supervisor administers the agents of their own organisation only, and {username} is a {}: ask an operator",
                    target.role.as_str()
                ),
            ));
        }
    }
    if change == AccountChange::Disable && target.id.to_string() == staff.sub {
        return Err(refusal(
            ProblemKind::InvalidRequest,
            "an operator cannot disable their own account (the last operator would lock everyone out): ask another operator",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "admin_tests.rs"]
mod tests;
