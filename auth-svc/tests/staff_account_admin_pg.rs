//! Account administration over `StaffAuthService` against real PostgreSQL (accounts, audit
//! trail), through `serve` configured as production is: a locked account is unlocked and logs
//! in; a disabled account is `account-disabled` at login until enabled; an operator cannot
//! disable their own account; a supervisor unlocks an agent of their own organisation but not
//! another organisation's, nor an operator; agents and tokens that are not staff tokens are
//! refused; every call is in the hash-chained trail with the target as `account:<id>`.

#![allow(clippy::unwrap_used)]

mod common;

use auth_svc::accounts::MAX_FAILURES;
use common::staff::{PASSWORD, Staff, forged_operator_token, start, with_token};
use platform::problem::{Problem, ProblemKind};
use platform::staff::StaffRole;
use proto::audit::v1::{self as audit_pb, QueryAuditRequest, VerifyChainRequest};
use proto::auth::v1 as pb;
use tonic::{Code, Status};

/// The problem type and gRPC code of a refusal.
fn refusal(status: &Status) -> (ProblemKind, Code) {
    (Problem::from_status(status).kind, status.code())
}

const TOKEN_REQUIRED: (ProblemKind, Code) =
    (ProblemKind::StaffTokenRequired, Code::Unauthenticated);
const ROLE_NOT_ALLOWED: (ProblemKind, Code) = (ProblemKind::RoleNotAllowed, Code::PermissionDenied);
const NOT_FOUND: (ProblemKind, Code) = (ProblemKind::NotFound, Code::NotFound);

/// The administration calls and the trail as these tests read them.
impl Staff {
    /// `account:<id>`, how the trail names the account acted on.
    fn key(&self, username: &str) -> String {
        format!("account:{}", self.id(username))
    }

    /// Locks `username` with repeated wrong passwords; its login is then `account-locked`.
    async fn lock(&self, username: &str) {
        for _ in 0..MAX_FAILURES {
            let refused = self.login(username, "not the password").await;
            assert_eq!(
                refusal(&refused.unwrap_err()).0,
                ProblemKind::InvalidCredentials
            );
        }
        let locked = self.login(username, PASSWORD).await.unwrap_err();
        assert_eq!(
            refusal(&locked),
            (ProblemKind::AccountLocked, Code::PermissionDenied)
        );
    }

    async fn unlock(&self, token: &str, username: &str) -> Result<pb::StaffAccount, Status> {
        let message = pb::UnlockAccountRequest {
            username: username.to_owned(),
        };
        let answer = self
            .staff()
            .unlock_account(with_token(message, token))
            .await?;
        Ok(answer.into_inner().account.unwrap())
    }

    async fn disable(&self, token: &str, username: &str) -> Result<pb::StaffAccount, Status> {
        let message = pb::DisableAccountRequest {
            username: username.to_owned(),
        };
        let answer = self
            .staff()
            .disable_account(with_token(message, token))
            .await?;
        Ok(answer.into_inner().account.unwrap())
    }

    async fn enable(&self, token: &str, username: &str) -> Result<pb::StaffAccount, Status> {
        let message = pb::EnableAccountRequest {
            username: username.to_owned(),
        };
        let answer = self
            .staff()
            .enable_account(with_token(message, token))
            .await?;
        Ok(answer.into_inner().account.unwrap())
    }

    async fn list(&self, token: &str, organisation: &str) -> Result<Vec<pb::StaffAccount>, Status> {
        let message = pb::ListAccountsRequest {
            organisation: organisation.to_owned(),
        };
        let answer = self
            .staff()
            .list_accounts(with_token(message, token))
            .await?;
        Ok(answer.into_inner().accounts)
    }

    /// The entries of the trail (for `person_key`, or all when empty), read by an operator
    /// over AuditService after the service checked the whole chain.
    async fn entries(&self, operator: &str, person_key: &str) -> Vec<audit_pb::AuditEntry> {
        let mut audit = self.audit();
        let checked = audit
            .verify_chain(with_token(VerifyChainRequest {}, operator))
            .await
            .unwrap()
            .into_inner();
        assert!(checked.ok, "{checked:?}");
        let query = QueryAuditRequest {
            person_key: person_key.to_owned(),
            page_size: 500,
            ..Default::default()
        };
        let page = audit
            .query_audit(with_token(query, operator))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.next_after_seq, 0, "one page holds the whole trail");
        page.entries
    }

    /// (actor, action, person key, outcome) of the administration entries, in order.
    async fn administration(&self, operator: &str) -> Vec<(String, String, String, String)> {
        self.entries(operator, "")
            .await
            .into_iter()
            .filter(|entry| entry.action.starts_with("staff.") && entry.action != "staff.login")
            .map(|entry| (entry.actor, entry.action, entry.person_key, entry.outcome))
            .collect()
    }
}

fn step(actor: &str, action: &str, key: &str, outcome: &str) -> (String, String, String, String) {
    (
        actor.to_owned(),
        action.to_owned(),
        key.to_owned(),
        outcome.to_owned(),
    )
}

#[tokio::test]
async fn an_operator_unlocks_disables_and_enables_accounts_and_every_call_is_audited() {
    let staff = start(
        "staff_admin_operator",
        &[
            ("operator.kim", "national-operations", StaffRole::Operator),
            ("agent.lee", "national-call-center", StaffRole::Agent),
        ],
    )
    .await;
    let kim = staff.id("operator.kim");
    let operator = staff.token("operator.kim").await;

    // Locked by repeated failures; the list shows until when, never a hash or a secret.
    staff.lock("agent.lee").await;
    let listed = staff.list(&operator, "").await.unwrap();
    let names: Vec<_> = listed.iter().map(|a| a.username.as_str()).collect();
    assert_eq!(names, vec!["agent.lee", "operator.kim"]);
    let lee = &listed[0];
    assert_eq!(lee.id, staff.id("agent.lee"));
    assert_eq!(
        (lee.organisation.as_str(), lee.role.as_str(), lee.disabled),
        ("national-call-center", "agent", false)
    );
    let until = platform::clock::from_timestamp(lee.locked_until.as_ref().unwrap()).unwrap();
    assert!(until > chrono::Utc::now());
    assert!(lee.created_at.is_some());
    let shown = format!("{listed:?}");
    assert!(!shown.contains("argon2") && !shown.contains(&staff.account("agent.lee").totp_secret));

    // Unlocked: the right password and code log in again at once.
    let unlocked = staff.unlock(&operator, "agent.lee").await.unwrap();
    assert_eq!((unlocked.locked_until, unlocked.failed_attempts), (None, 0));
    staff.login("agent.lee", PASSWORD).await.unwrap();

    // Disabled: account-disabled at login, until enabled again.
    let disabled = staff.disable(&operator, "agent.lee").await.unwrap();
    assert!(disabled.disabled);
    let refused = staff.login("agent.lee", PASSWORD).await.unwrap_err();
    assert_eq!(
        refusal(&refused),
        (ProblemKind::AccountDisabled, Code::PermissionDenied)
    );
    let enabled = staff.enable(&operator, "agent.lee").await.unwrap();
    assert!(!enabled.disabled);
    staff.login("agent.lee", PASSWORD).await.unwrap();

    // Not their own account, which would leave nobody to enable it; no unknown account.
    let own = staff.disable(&operator, "operator.kim").await.unwrap_err();
    assert_eq!(
        refusal(&own),
        (ProblemKind::InvalidRequest, Code::InvalidArgument)
    );
    assert!(Problem::from_status(&own).detail.contains("own account"));
    staff.login("operator.kim", PASSWORD).await.unwrap();
    let unknown = staff.unlock(&operator, "agent.nobody").await.unwrap_err();
    assert_eq!(refusal(&unknown), NOT_FOUND);

    let lee_key = staff.key("agent.lee");
    assert_eq!(
        staff.administration(&operator).await,
        vec![
            step(&kim, "staff.list-accounts", "", "ok"),
            step(&kim, "staff.unlock-account", &lee_key, "ok"),
            step(&kim, "staff.disable-account", &lee_key, "ok"),
            step(&kim, "staff.enable-account", &lee_key, "ok"),
            step(
                &kim,
                "staff.disable-account",
                &staff.key("operator.kim"),
                "invalid-request"
            ),
            step(&kim, "staff.unlock-account", "", "not-found"),
        ]
    );
    // Everything done to agent.lee, by the person key the trail files it under.
    let about_lee = staff.entries(&operator, &lee_key).await;
    let actions: Vec<_> = about_lee.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "staff.unlock-account",
            "staff.disable-account",
            "staff.enable-account"
        ]
    );
    staff.running.stop().await;
}

#[tokio::test]
async fn a_supervisor_unlocks_the_agents_of_their_organisation_only_and_agents_nothing() {
    let staff = start(
        "staff_admin_supervisor",
        &[
            ("operator.kim", "national-operations", StaffRole::Operator),
            ("super.han", "seoul-gangnam", StaffRole::Supervisor),
            ("agent.park", "seoul-gangnam", StaffRole::Agent),
            ("agent.choi", "busan-haeundae", StaffRole::Agent),
        ],
    )
    .await;
    let han = staff.id("super.han");
    let park = staff.id("agent.park");
    let supervisor = staff.token("super.han").await;
    let agent = staff.token("agent.park").await;
    let operator = staff.token("operator.kim").await;

    staff.lock("agent.park").await;
    staff.lock("agent.choi").await;
    let unlocked = staff.unlock(&supervisor, "agent.park").await.unwrap();
    assert_eq!(unlocked.locked_until, None);
    staff.login("agent.park", PASSWORD).await.unwrap();
    // Another organisation's agent is not theirs (nor visible to them); an operator neither.
    let other = staff.unlock(&supervisor, "agent.choi").await.unwrap_err();
    assert_eq!(refusal(&other), NOT_FOUND);
    let still_locked = staff.login("agent.choi", PASSWORD).await.unwrap_err();
    assert_eq!(refusal(&still_locked).0, ProblemKind::AccountLocked);
    let of_operator = staff
        .disable(&supervisor, "operator.kim")
        .await
        .unwrap_err();
    assert_eq!(refusal(&of_operator), NOT_FOUND);
    staff.login("operator.kim", PASSWORD).await.unwrap();
    // Nor themselves, a supervisor.
    let own = staff.disable(&supervisor, "super.han").await.unwrap_err();
    assert_eq!(refusal(&own), ROLE_NOT_ALLOWED);
    // Their organisation's accounts only.
    let listed = staff.list(&supervisor, "").await.unwrap();
    let names: Vec<_> = listed.iter().map(|a| a.username.as_str()).collect();
    assert_eq!(names, vec!["agent.park", "super.han"]);
    let elsewhere = staff.list(&supervisor, "busan-haeundae").await.unwrap_err();
    assert_eq!(refusal(&elsewhere), ROLE_NOT_ALLOWED);

    // Agents administer nothing, not even their own organisation's accounts.
    assert_eq!(
        refusal(&staff.enable(&agent, "agent.park").await.unwrap_err()),
        ROLE_NOT_ALLOWED
    );
    assert_eq!(
        refusal(&staff.list(&agent, "").await.unwrap_err()),
        ROLE_NOT_ALLOWED
    );
    // No token, a citizen's, a forged operator's: staff-token-required.
    let no_token = staff
        .staff()
        .unlock_account(pb::UnlockAccountRequest {
            username: "agent.choi".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(refusal(&no_token), TOKEN_REQUIRED);
    let citizen = staff.citizen_token().await;
    assert_eq!(
        refusal(&staff.disable(&citizen, "agent.choi").await.unwrap_err()),
        TOKEN_REQUIRED
    );
    assert_eq!(
        refusal(&staff.list(&forged_operator_token(), "").await.unwrap_err()),
        TOKEN_REQUIRED
    );
    let still_locked = staff.login("agent.choi", PASSWORD).await.unwrap_err();
    assert_eq!(refusal(&still_locked).0, ProblemKind::AccountLocked);

    let choi_key = staff.key("agent.choi");
    assert_eq!(
        staff.administration(&operator).await,
        vec![
            step(&han, "staff.unlock-account", &staff.key("agent.park"), "ok"),
            step(&han, "staff.unlock-account", &choi_key, "not-found"),
            step(
                &han,
                "staff.disable-account",
                &staff.key("operator.kim"),
                "not-found"
            ),
            step(
                &han,
                "staff.disable-account",
                &staff.key("super.han"),
                "role-not-allowed"
            ),
            step(&han, "staff.list-accounts", "", "ok"),
            step(&han, "staff.list-accounts", "", "role-not-allowed"),
            step(
                &park,
                "staff.enable-account",
                &staff.key("agent.park"),
                "role-not-allowed"
            ),
            step(&park, "staff.list-accounts", "", "role-not-allowed"),
            step(
                "unknown",
                "staff.unlock-account",
                &choi_key,
                "staff-token-required"
            ),
            step(
                "unknown",
                "staff.disable-account",
                &choi_key,
                "staff-token-required"
            ),
            step("unknown", "staff.list-accounts", "", "staff-token-required"),
        ]
    );
    // The supervisor's entries carry their organisation and role.
    let entries = staff.entries(&operator, "").await;
    let first = entries
        .iter()
        .find(|e| e.action == "staff.unlock-account")
        .unwrap();
    assert_eq!(
        (first.organisation.as_str(), first.role.as_str()),
        ("seoul-gangnam", "supervisor")
    );
    staff.running.stop().await;
}
