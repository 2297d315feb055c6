//! Staff accounts and the staff RPCs against real PostgreSQL (accounts, audit trail), through
//! `serve` configured as production is (no dev-run operator key): the PostgreSQL store passes
//! the memory store's conformance suite; each login refusal has its own problem type and is in
//! the hash-chained trail; repeated failures lock the account; a staff RPC refused for its
//! token or role is audited (and so is a refused reading of the trail over `AuditService`);
//! `RecordCitizenApiRefusal` audits the token's own account and refuses a citizen's token;
//! `PersonKeyService` answers operators only, each call audited without a person key.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use auth_svc::accounts::store::{AccountStore as _, PgAccountStore, conformance};
use auth_svc::accounts::{LOCKOUT, MAX_FAILURES};
use auth_svc::domain::{Rrn, derive_person_key};
use common::staff::{PASSWORD, Staff, forged_operator_token, start, with_token};
use platform::audit::{AuditEntry, AuditLog as _, AuditQuery, verify_trail};
use platform::operator::OperatorCredential;
use platform::problem::{Problem, ProblemKind};
use platform::staff::StaffRole;
use proto::audit::v1::QueryAuditRequest;
use proto::auth::v1 as pb;
use proto::auth::v1::person_key_service_client::PersonKeyServiceClient;
use tonic::{Code, Request, Status};

/// The person-key secret of the tests' configuration (tests/common).
const PERSON_KEY_SECRET: &[u8] = b"end-to-end-secret";

#[tokio::test]
async fn the_postgres_account_store_conforms() -> anyhow::Result<()> {
    let url = platform::pg::create_test_database("staff_accounts").await?;
    let pool = platform::pg::pool(&url, 2)?;
    let store = PgAccountStore::migrate(&url, pool).await?;
    conformance::run(&store).await;
    Ok(())
}

/// The trail as these tests read it: straight from the database, its chain checked.
impl Staff {
    async fn entries(&self) -> Vec<AuditEntry> {
        let entries = self
            .trail
            .query(&AuditQuery {
                limit: 500,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(
            verify_trail(self.trail.trail(), &entries),
            Ok(entries.len() as u64)
        );
        entries
    }

    /// (actor, action, outcome) of every entry.
    async fn steps(&self) -> Vec<(String, String, String)> {
        self.entries()
            .await
            .into_iter()
            .map(|entry| {
                (
                    entry.record.actor,
                    entry.record.action,
                    entry.record.outcome,
                )
            })
            .collect()
    }
}

/// The refusal's problem type, its `reason` metadata (which repeats it) and its gRPC code.
fn refusal(status: &Status) -> (ProblemKind, String, Code) {
    let problem = Problem::from_status(status);
    let reason = problem.extra.get("reason").cloned().unwrap_or_default();
    (problem.kind, reason, status.code())
}

fn step(actor: &str, action: &str, outcome: &str) -> (String, String, String) {
    (actor.to_owned(), action.to_owned(), outcome.to_owned())
}

fn wrong_code(right: &str) -> &'static str {
    if right == "000000" {
        "111111"
    } else {
        "000000"
    }
}

#[tokio::test]
async fn each_login_refusal_has_its_own_problem_type_and_is_audited() {
    let staff = start(
        "staff_login_refusals",
        &[
            ("agent.kim", "national-call-center", StaffRole::Agent),
            ("agent.park", "seoul-gangnam", StaffRole::Agent),
        ],
    )
    .await;
    let kim = staff.account("agent.kim").id.clone();
    let park = staff.account("agent.park").id.clone();

    let code = staff.code("agent.kim");
    let wrong_password = staff
        .login_with("agent.kim", "not the password", &code)
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&wrong_password),
        (
            ProblemKind::InvalidCredentials,
            "invalid-credentials".to_owned(),
            Code::Unauthenticated
        )
    );
    let unknown = staff
        .login_with("agent.nobody", PASSWORD, &code)
        .await
        .unwrap_err();
    assert_eq!(refusal(&unknown), refusal(&wrong_password));
    // The same answer for an unknown name as for a wrong password.
    assert_eq!(unknown.message(), wrong_password.message());
    let code = staff.code("agent.kim");
    let wrong_totp = staff
        .login_with("agent.kim", PASSWORD, wrong_code(&code))
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&wrong_totp),
        (
            ProblemKind::InvalidSecondFactor,
            "invalid-second-factor".to_owned(),
            Code::Unauthenticated
        )
    );
    assert!(
        staff
            .accounts
            .set_disabled("agent.park", true)
            .await
            .unwrap()
    );
    let disabled = staff
        .login_with("agent.park", PASSWORD, &staff.code("agent.park"))
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&disabled),
        (
            ProblemKind::AccountDisabled,
            "account-disabled".to_owned(),
            Code::PermissionDenied
        )
    );
    // Nothing was locked by two failures: the right password and code still log in.
    let logged_in = staff
        .login_with("agent.kim", PASSWORD, &staff.code("agent.kim"))
        .await
        .unwrap();
    assert_eq!(logged_in.account_id, kim);

    assert_eq!(
        staff.steps().await,
        vec![
            step(&kim, "staff.login", "invalid-credentials"),
            step("unknown", "staff.login", "invalid-credentials"),
            step(&kim, "staff.login", "invalid-second-factor"),
            step(&park, "staff.login", "account-disabled"),
            step(&kim, "staff.login", "ok"),
        ]
    );
    // Neither password nor code is in the trail.
    let shown = format!(
        "{:?}",
        staff
            .entries()
            .await
            .iter()
            .map(|e| &e.record)
            .collect::<Vec<_>>()
    );
    assert!(!shown.contains("password"), "{shown}");
    staff.running.stop().await;
}

#[tokio::test]
async fn repeated_failures_lock_the_account() {
    let staff = start(
        "staff_lockout",
        &[("agent.lee", "national-call-center", StaffRole::Agent)],
    )
    .await;
    let lee = staff.account("agent.lee").id.clone();
    for _ in 0..MAX_FAILURES {
        let refused = staff
            .login_with("agent.lee", "not the password", &staff.code("agent.lee"))
            .await
            .unwrap_err();
        assert_eq!(refusal(&refused).0, ProblemKind::InvalidCredentials);
    }
    // Now even the right password and code are refused, for the lockout's remaining time.
    let locked = staff
        .login_with("agent.lee", PASSWORD, &staff.code("agent.lee"))
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&locked),
        (
            ProblemKind::AccountLocked,
            "account-locked".to_owned(),
            Code::PermissionDenied
        )
    );
    let problem = Problem::from_status(&locked);
    let retry_after = problem.retry_after.expect("RetryInfo on a locked account");
    assert!(retry_after > LOCKOUT - Duration::from_secs(60) && retry_after <= LOCKOUT);
    let seconds: u64 = problem.extra["retry_after"].parse().unwrap();
    assert!(seconds > 0 && seconds <= LOCKOUT.as_secs());

    let steps = staff.steps().await;
    assert_eq!(steps.len(), MAX_FAILURES as usize + 1);
    assert!(
        steps[..MAX_FAILURES as usize]
            .iter()
            .all(|s| s == &step(&lee, "staff.login", "invalid-credentials"))
    );
    assert_eq!(
        steps.last(),
        Some(&step(&lee, "staff.login", "account-locked"))
    );
    staff.running.stop().await;
}

#[tokio::test]
async fn record_citizen_api_refusal_names_the_tokens_account_and_refuses_a_citizen_token() {
    let staff = start(
        "staff_citizen_api_refusal",
        &[("agent.kim", "national-call-center", StaffRole::Agent)],
    )
    .await;
    let kim = staff.account("agent.kim").id.clone();
    let agent = staff.token("agent.kim").await;
    let report = |token: Option<&str>| {
        let message = pb::RecordCitizenApiRefusalRequest {
            surface: "POST /v1/bookings".to_owned(),
        };
        match token {
            Some(token) => with_token(message, token),
            None => Request::new(message),
        }
    };
    let recorded = staff
        .staff()
        .record_citizen_api_refusal(report(Some(&agent)))
        .await
        .unwrap()
        .into_inner();

    let citizen = staff.citizen_token().await;
    let forged = forged_operator_token();
    for token in [Some(citizen.as_str()), Some(forged.as_str()), None] {
        let refused = staff
            .staff()
            .record_citizen_api_refusal(report(token))
            .await
            .unwrap_err();
        assert_eq!(
            refusal(&refused),
            (
                ProblemKind::StaffTokenRequired,
                "staff-token-required".to_owned(),
                Code::Unauthenticated
            )
        );
    }

    let entries = staff.entries().await;
    let entry = entries.iter().find(|e| e.seq == recorded.seq).unwrap();
    assert_eq!(entry.record.actor, kim);
    assert_eq!(entry.record.organisation, "national-call-center");
    assert_eq!(entry.record.role, "agent");
    assert_eq!(entry.record.action, "citizen-api.refused");
    assert_eq!(entry.record.outcome, "citizen-token-required");
    assert_eq!(entry.record.person_key, None);
    let refusals: Vec<_> = entries
        .iter()
        .filter(|e| e.record.action == "staff.record-citizen-api-refusal")
        .map(|e| (e.record.actor.as_str(), e.record.outcome.as_str()))
        .collect();
    assert_eq!(refusals, vec![("unknown", "staff-token-required"); 3]);
    // Only the agent's own report is about the agent.
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.record.action == "citizen-api.refused")
            .count(),
        1
    );
    staff.running.stop().await;
}

#[tokio::test]
async fn staff_rpcs_refused_for_their_token_or_role_are_audited() {
    let staff = start(
        "staff_rpc_refusals",
        &[
            ("agent.kim", "national-call-center", StaffRole::Agent),
            ("operator.park", "national-operations", StaffRole::Operator),
        ],
    )
    .await;
    let kim = staff.account("agent.kim").id.clone();
    let park = staff.account("operator.park").id.clone();
    let agent = staff.token("agent.kim").await;
    let operator = staff.token("operator.park").await;
    let citizen = staff.citizen_token().await;
    let verify = pb::VerifyCallerRequest {
        name: "홍길동".to_owned(),
        rrn: common::RRN.to_owned(),
        carrier: common::CARRIER.to_owned(),
        phone: common::PHONE.to_owned(),
    };
    let confirm = pb::ConfirmCallerRequest {
        verification_id: uuid::Uuid::new_v4().to_string(),
        otp: "123456".to_owned(),
    };
    let token_required = (
        ProblemKind::StaffTokenRequired,
        "staff-token-required".to_owned(),
        Code::Unauthenticated,
    );
    let role_not_allowed = (
        ProblemKind::RoleNotAllowed,
        "role-not-allowed".to_owned(),
        Code::PermissionDenied,
    );

    // VerifyCaller without a token, ConfirmCaller with a citizen's token.
    let refused = staff
        .staff()
        .verify_caller(verify.clone())
        .await
        .unwrap_err();
    assert_eq!(refusal(&refused), token_required);
    let refused = staff
        .staff()
        .confirm_caller(with_token(confirm.clone(), &citizen))
        .await
        .unwrap_err();
    assert_eq!(refusal(&refused), token_required);
    // Operators do not speak for callers.
    let refused = staff
        .staff()
        .verify_caller(with_token(verify, &operator))
        .await
        .unwrap_err();
    assert_eq!(refusal(&refused), role_not_allowed);
    // The trail over AuditService: an agent may not read it, a forged token is nobody's (the
    // same problem types, without StaffAuthService's `reason` metadata).
    let kind_and_code = |status: &Status| (Problem::from_status(status).kind, status.code());
    let mut audit = staff.audit();
    let refused = audit
        .query_audit(with_token(QueryAuditRequest::default(), &agent))
        .await
        .unwrap_err();
    assert_eq!(
        kind_and_code(&refused),
        (ProblemKind::RoleNotAllowed, Code::PermissionDenied)
    );
    let refused = audit
        .query_audit(with_token(
            QueryAuditRequest::default(),
            &forged_operator_token(),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        kind_and_code(&refused),
        (ProblemKind::StaffTokenRequired, Code::Unauthenticated)
    );

    // The operator reads every refusal back over AuditService.
    let page = audit
        .query_audit(with_token(
            QueryAuditRequest {
                page_size: 100,
                ..Default::default()
            },
            &operator,
        ))
        .await
        .unwrap()
        .into_inner();
    let steps: Vec<_> = page
        .entries
        .iter()
        .filter(|e| e.action != "staff.login")
        .map(|e| step(&e.actor, &e.action, &e.outcome))
        .collect();
    assert_eq!(
        steps,
        vec![
            step("unknown", "staff.verify-caller", "staff-token-required"),
            step("unknown", "staff.confirm-caller", "staff-token-required"),
            step(&park, "staff.verify-caller", "role-not-allowed"),
            step(&kim, "audit.query", "role-not-allowed"),
            step("unknown", "audit.query", "staff-token-required"),
        ]
    );
    // Nothing of the caller's identity is in the trail.
    let shown = format!("{:?}", page.entries);
    for secret in ["길동", "850919", "1234567", "1234-5678"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    staff.running.stop().await;
}

#[tokio::test]
async fn person_keys_are_derived_for_operators_only_and_every_call_is_audited() {
    let staff = start(
        "staff_person_keys",
        &[
            ("agent.kim", "national-call-center", StaffRole::Agent),
            ("operator.park", "national-operations", StaffRole::Operator),
        ],
    )
    .await;
    let kim = staff.account("agent.kim").id.clone();
    let park = staff.account("operator.park").id.clone();
    let agent = staff.token("agent.kim").await;
    let operator = staff.token("operator.park").await;
    let derive = |credential: Option<OperatorCredential>| {
        let batches = tokio_stream::iter(vec![pb::DerivePersonKeysRequest {
            rrns: vec![common::RRN.to_owned(), "not an rrn".to_owned()],
        }]);
        let request = match credential {
            Some(credential) => credential.request(batches).unwrap(),
            None => Request::new(batches),
        };
        let mut client = PersonKeyServiceClient::new(staff.running.channel.clone());
        async move {
            let mut answers = client.derive_person_keys(request).await?.into_inner();
            let mut all = Vec::new();
            while let Some(answer) = answers.message().await? {
                all.push(answer);
            }
            Ok::<_, Status>(all)
        }
    };

    let kind_and_code = |status: &Status| (Problem::from_status(status).kind, status.code());
    let token_required = (ProblemKind::StaffTokenRequired, Code::Unauthenticated);
    let refused = derive(None).await.unwrap_err();
    assert_eq!(kind_and_code(&refused), token_required);
    // The dev run's key means nothing to a production auth-svc.
    let refused = derive(Some(OperatorCredential::dev())).await.unwrap_err();
    assert_eq!(kind_and_code(&refused), token_required);
    let refused = derive(Some(OperatorCredential::Token(forged_operator_token())))
        .await
        .unwrap_err();
    assert_eq!(kind_and_code(&refused), token_required);
    let refused = derive(Some(OperatorCredential::Token(agent)))
        .await
        .unwrap_err();
    assert_eq!(
        kind_and_code(&refused),
        (ProblemKind::RoleNotAllowed, Code::PermissionDenied)
    );

    let answers = derive(Some(OperatorCredential::Token(operator)))
        .await
        .unwrap();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].rejected, 1);
    let expected = derive_person_key(PERSON_KEY_SECRET, &Rrn::parse(common::RRN).unwrap());
    assert_eq!(
        answers[0].person_keys,
        vec![expected.to_string(), String::new()]
    );

    let entries: Vec<_> = staff
        .entries()
        .await
        .into_iter()
        .filter(|e| e.record.action == "admin.derive-person-keys")
        .collect();
    let steps: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e.record.actor.as_str(),
                e.record.role.as_str(),
                e.record.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("unknown", "", "staff-token-required"),
            ("unknown", "", "staff-token-required"),
            ("unknown", "", "staff-token-required"),
            (kim.as_str(), "agent", "role-not-allowed"),
            (park.as_str(), "operator", "ok"),
        ]
    );
    assert_eq!(entries[4].record.organisation, "national-operations");
    // No person key is listed, nor anything of the RRN.
    assert!(entries.iter().all(|e| e.record.person_key.is_none()));
    let shown = format!(
        "{:?}",
        entries.iter().map(|e| &e.record).collect::<Vec<_>>()
    );
    assert!(!shown.contains("850919"), "{shown}");
    staff.running.stop().await;
}
