//! Account administration rules on the memory stores: who may change whom, what each change
//! does, the operator who cannot disable themselves, the audit entry of every call (the target
//! as `account:<id>`), and nothing changed when the trail cannot be written.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use platform::audit::{AuditEntry, AuditLog, AuditQuery, AuditRecord, MemoryAuditLog};
use platform::clock::{SettableClock, SharedClock};
use platform::problem::{Problem, ProblemKind};
use platform::staff::{AgentToken, StaffRole};

use super::*;
use crate::accounts::NewAccount;
use crate::accounts::store::MemoryAccountStore;

fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
}

/// login name, organisation, role
const ACCOUNTS: [(&str, &str, StaffRole); 6] = [
    ("operator.kim", "national-operations", StaffRole::Operator),
    ("operator.yoon", "national-operations", StaffRole::Operator),
    ("super.lee", "seoul-gangnam", StaffRole::Supervisor),
    ("super.han", "seoul-gangnam", StaffRole::Supervisor),
    ("agent.park", "seoul-gangnam", StaffRole::Agent),
    ("agent.choi", "busan-haeundae", StaffRole::Agent),
];

struct Fixture {
    admin: AccountAdmin,
    store: Arc<MemoryAccountStore>,
    audit: Arc<MemoryAuditLog>,
}

async fn fixture() -> Fixture {
    let store = Arc::new(MemoryAccountStore::new());
    for (username, organisation, role) in ACCOUNTS {
        store
            .create(
                NewAccount {
                    username: username.to_owned(),
                    organisation: organisation.to_owned(),
                    role,
                    password_hash: "$argon2id$placeholder".to_owned(),
                    totp_secret: "JBSWY3DPEHPK3PXP".to_owned(),
                },
                start(),
            )
            .await
            .expect("create");
    }
    let audit = Arc::new(MemoryAuditLog::new());
    let clock: SharedClock = Arc::new(SettableClock::starting_at(start()));
    Fixture {
        admin: AccountAdmin::new(store.clone(), audit.clone(), clock),
        store,
        audit,
    }
}

impl Fixture {
    async fn account(&self, username: &str) -> Account {
        self.store
            .find(username)
            .await
            .expect("find")
            .expect("exists")
    }

    /// The caller that a verified token of `username` names.
    async fn caller(&self, username: &str) -> Caller {
        let account = self.account(username).await;
        Ok(AgentToken {
            sub: account.id.to_string(),
            username: account.username,
            org: account.organisation,
            role: account.role,
        })
    }

    async fn change(
        &self,
        by: &str,
        change: AccountChange,
        username: &str,
    ) -> Result<Account, Problem> {
        self.admin
            .change(self.caller(by).await, change, username)
            .await
    }

    /// (actor, action, person key, outcome) of the last entry.
    fn last(&self) -> (String, String, Option<String>, String) {
        let entries = self.audit.entries();
        let record = entries.last().expect("an entry").record.clone();
        (
            record.actor,
            record.action,
            record.person_key,
            record.outcome,
        )
    }

    async fn key(&self, username: &str) -> Option<String> {
        Some(account_key(self.account(username).await.id))
    }

    async fn id(&self, username: &str) -> String {
        self.account(username).await.id.to_string()
    }

    async fn lock(&self, username: &str) {
        let id = self.account(username).await.id;
        let until = start() + chrono::Duration::minutes(15);
        for _ in 0..3 {
            self.store.record_failure(id, 3, until).await.expect("fail");
        }
        assert!(self.account(username).await.locked_until.is_some());
    }
}

fn kind(result: Result<impl std::fmt::Debug, Problem>) -> ProblemKind {
    result.expect_err("refused").kind
}

#[tokio::test]
async fn an_operator_disables_enables_and_unlocks_any_account_each_change_audited() {
    let f = fixture().await;
    let kim = f.id("operator.kim").await;

    let disabled = f
        .change("operator.kim", AccountChange::Disable, "super.lee")
        .await
        .expect("disable");
    assert!(disabled.disabled);
    assert!(f.account("super.lee").await.disabled);
    assert_eq!(
        f.last(),
        (
            kim.clone(),
            "staff.disable-account".to_owned(),
            f.key("super.lee").await,
            "ok".to_owned()
        )
    );
    let enabled = f
        .change("operator.kim", AccountChange::Enable, "super.lee")
        .await
        .expect("enable");
    assert!(!enabled.disabled);
    assert_eq!(f.last().1, "staff.enable-account");

    f.lock("agent.choi").await;
    let unlocked = f
        .change("operator.kim", AccountChange::Unlock, "agent.choi")
        .await
        .expect("unlock");
    assert_eq!((unlocked.failed_attempts, unlocked.locked_until), (0, None));
    assert_eq!(
        f.last(),
        (
            kim.clone(),
            "staff.unlock-account".to_owned(),
            f.key("agent.choi").await,
            "ok".to_owned()
        )
    );
    // Another operator too.
    f.change("operator.kim", AccountChange::Disable, "operator.yoon")
        .await
        .expect("disable another operator");
}

#[tokio::test]
async fn an_operator_cannot_disable_their_own_account() {
    let f = fixture().await;
    let refused = f
        .change("operator.kim", AccountChange::Disable, "operator.kim")
        .await
        .expect_err("refused");
    assert_eq!(refused.kind, ProblemKind::InvalidRequest);
    assert!(refused.detail.contains("own account"), "{}", refused.detail);
    assert!(!f.account("operator.kim").await.disabled);
    assert_eq!(
        f.last(),
        (
            f.id("operator.kim").await,
            "staff.disable-account".to_owned(),
            f.key("operator.kim").await,
            "invalid-request".to_owned()
        )
    );
}

#[tokio::test]
async fn a_supervisor_administers_the_agents_of_their_own_organisation_only() {
    let f = fixture().await;
    let lee = f.id("super.lee").await;
    f.lock("agent.park").await;
    let unlocked = f
        .change("super.lee", AccountChange::Unlock, "agent.park")
        .await
        .expect("unlock");
    assert_eq!(unlocked.locked_until, None);
    f.change("super.lee", AccountChange::Disable, "agent.park")
        .await
        .expect("disable");
    f.change("super.lee", AccountChange::Enable, "agent.park")
        .await
        .expect("enable");

    // Another organisation's agent is not theirs to see.
    f.lock("agent.choi").await;
    assert_eq!(
        kind(
            f.change("super.lee", AccountChange::Unlock, "agent.choi")
                .await
        ),
        ProblemKind::NotFound
    );
    assert!(f.account("agent.choi").await.locked_until.is_some());
    assert_eq!(
        f.last(),
        (
            lee.clone(),
            "staff.unlock-account".to_owned(),
            f.key("agent.choi").await,
            "not-found".to_owned()
        )
    );
    // Nor an operator, nor another supervisor of their organisation, nor themselves.
    for target in ["operator.kim", "super.han", "super.lee"] {
        let refused = f.change("super.lee", AccountChange::Disable, target).await;
        let expected = if target == "operator.kim" {
            ProblemKind::NotFound
        } else {
            ProblemKind::RoleNotAllowed
        };
        assert_eq!(kind(refused), expected, "{target}");
        assert!(!f.account(target).await.disabled);
        assert_eq!(f.last().2, f.key(target).await);
    }
}

#[tokio::test]
async fn agents_unknown_names_and_refused_tokens_change_nothing_and_are_audited() {
    let f = fixture().await;
    let refused = f
        .change("agent.park", AccountChange::Disable, "agent.choi")
        .await;
    assert_eq!(kind(refused), ProblemKind::RoleNotAllowed);
    assert!(!f.account("agent.choi").await.disabled);
    assert_eq!(
        f.last(),
        (
            f.id("agent.park").await,
            "staff.disable-account".to_owned(),
            f.key("agent.choi").await,
            "role-not-allowed".to_owned()
        )
    );

    let nobody = f
        .change("operator.kim", AccountChange::Unlock, "agent.nobody")
        .await;
    assert_eq!(kind(nobody), ProblemKind::NotFound);
    assert_eq!(f.last().2, None);
    assert_eq!(f.last().3, "not-found");
    let malformed = f
        .change("operator.kim", AccountChange::Unlock, "Not A Name")
        .await;
    assert_eq!(kind(malformed), ProblemKind::InvalidRequest);

    // A refused token: the attempt is nobody's, but the target is named.
    let token_refused = Err(Problem::new(
        ProblemKind::StaffTokenRequired,
        "no staff token",
    ));
    let refused = f
        .admin
        .change(token_refused, AccountChange::Disable, "operator.kim")
        .await;
    assert_eq!(kind(refused), ProblemKind::StaffTokenRequired);
    assert!(!f.account("operator.kim").await.disabled);
    assert_eq!(
        f.last(),
        (
            "unknown".to_owned(),
            "staff.disable-account".to_owned(),
            f.key("operator.kim").await,
            "staff-token-required".to_owned()
        )
    );
    let entry = f.audit.entries().last().cloned().expect("entry");
    assert_eq!(
        (entry.record.organisation, entry.record.role),
        (String::new(), String::new())
    );
}

#[tokio::test]
async fn listing_answers_an_operator_everything_and_a_supervisor_their_organisation() {
    let f = fixture().await;
    let names =
        |accounts: Vec<Account>| accounts.into_iter().map(|a| a.username).collect::<Vec<_>>();
    let everything = f
        .admin
        .list(f.caller("operator.kim").await, "")
        .await
        .expect("list");
    assert_eq!(everything.len(), ACCOUNTS.len());
    let busan = f
        .admin
        .list(f.caller("operator.kim").await, "busan-haeundae")
        .await
        .expect("list");
    assert_eq!(names(busan), vec!["agent.choi"]);
    assert_eq!(
        f.last(),
        (
            f.id("operator.kim").await,
            "staff.list-accounts".to_owned(),
            None,
            "ok".to_owned()
        )
    );

    for filter in ["", "seoul-gangnam"] {
        let own = f
            .admin
            .list(f.caller("super.lee").await, filter)
            .await
            .expect("list");
        assert_eq!(names(own), vec!["agent.park", "super.han", "super.lee"]);
    }
    let other = f
        .admin
        .list(f.caller("super.lee").await, "busan-haeundae")
        .await;
    assert_eq!(kind(other), ProblemKind::RoleNotAllowed);
    assert_eq!(f.last().3, "role-not-allowed");
    let agent = f.admin.list(f.caller("agent.park").await, "").await;
    assert_eq!(kind(agent), ProblemKind::RoleNotAllowed);
    let malformed = f
        .admin
        .list(f.caller("operator.kim").await, "Not An Org")
        .await;
    assert_eq!(kind(malformed), ProblemKind::InvalidRequest);
    assert_eq!(f.audit.entries().len(), 7);
}

/// A trail that cannot be written.
struct Unwritable;

#[async_trait::async_trait]
impl AuditLog for Unwritable {
    async fn append(&self, _at: DateTime<Utc>, _record: AuditRecord) -> anyhow::Result<AuditEntry> {
        anyhow::bail!("the trail's database is down")
    }

    async fn query(&self, _query: &AuditQuery) -> anyhow::Result<Vec<AuditEntry>> {
        anyhow::bail!("the trail's database is down")
    }
}

#[tokio::test]
async fn without_an_audit_entry_nothing_changes() {
    let f = fixture().await;
    f.lock("agent.park").await;
    let admin = AccountAdmin::new(
        f.store.clone(),
        Arc::new(Unwritable),
        Arc::new(SettableClock::starting_at(start())),
    );
    let operator = f.caller("operator.kim").await;
    for change in [AccountChange::Disable, AccountChange::Unlock] {
        let refused = admin.change(operator.clone(), change, "agent.park").await;
        assert_eq!(kind(refused), ProblemKind::Unavailable);
    }
    let park = f.account("agent.park").await;
    assert!(!park.disabled);
    assert!(park.locked_until.is_some());
    assert_eq!(
        kind(admin.list(operator, "").await),
        ProblemKind::Unavailable
    );
}
