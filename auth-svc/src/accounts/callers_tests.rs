//! Caller verification: the carrier check and SMS of the phone provider, a caller grant bound to
//! the agent and the person, each refusal with its own reason and an audit entry without the
//! caller's name, RRN or phone.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use platform::audit::{MemoryAuditLog, verify_chain};
use platform::carrier::{CarrierDirectory, Subscriber};
use platform::clock::{SettableClock, SharedClock};
use platform::dev::SmsOutbox;
use platform::grants::{GrantIssuer, GrantVerifier, SigningKeys, StaticKeysSource, VerifiedGrant};
use platform::problem::{Problem, ProblemKind};
use platform::staff::{AgentToken, CallerGrant, StaffRole};

use super::*;
use crate::carrier::DirectoryCarrierCheck;
use crate::limits::{AbuseLimits, LimitSettings};
use crate::providers::{BoundDigester, PhoneGuards, PhoneProvider, PhoneProviderSettings};
use crate::sms::DevSmsSender;
use crate::store::MemoryChallengeStore;

const NAME: &str = "홍길동";
const RRN: &str = "850919-1234567";
const PHONE: &str = "010-1234-5678";

struct Fixture {
    callers: CallerVerifications,
    audit: Arc<MemoryAuditLog>,
    outbox: Arc<SmsOutbox>,
    verifier: GrantVerifier,
}

fn fixture() -> Fixture {
    let clock: SharedClock = Arc::new(SettableClock::starting_at(
        Utc.with_ymd_and_hms(2021, 8, 9, 11, 0, 0).unwrap(),
    ));
    let store: Arc<dyn ChallengeStore> = Arc::new(MemoryChallengeStore::new(clock.clone()));
    let outbox = Arc::new(SmsOutbox::default());
    let carriers = Arc::new(CarrierDirectory::new());
    carriers
        .register(&Subscriber {
            name: NAME.to_owned(),
            rrn: RRN.to_owned(),
            phone: PHONE.to_owned(),
            carrier: "kt".to_owned(),
        })
        .unwrap();
    let limits = LimitSettings {
        phone_starts: 5,
        client_starts: 100,
        proxy_per_booker: 10,
        proxy_per_client: 100,
        start_window: Duration::from_secs(600),
        wrong_codes: 10,
        lockout: Duration::from_secs(1800),
    };
    let phone = Arc::new(PhoneProvider::new(
        store.clone(),
        Arc::new(DevSmsSender::new(outbox.clone(), clock.clone())),
        clock.clone(),
        BoundDigester::for_codes(b"test-secret"),
        PhoneProviderSettings {
            otp_ttl: Duration::from_secs(180),
            max_attempts: 5,
        },
        PhoneGuards {
            carrier: Arc::new(DirectoryCarrierCheck::new(carriers)),
            limits: Arc::new(AbuseLimits::new(store.clone(), limits, b"test-secret")),
        },
    ));
    let keys = Arc::new(SigningKeys::generate().unwrap());
    let audit = Arc::new(MemoryAuditLog::new());
    Fixture {
        callers: CallerVerifications {
            phone,
            store,
            audit: audit.clone(),
            issuer: GrantIssuer::new(keys.clone()),
            clock: clock.clone(),
            person_key_secret: b"person-key-secret".to_vec(),
        },
        audit,
        outbox,
        verifier: GrantVerifier::new(Arc::new(StaticKeysSource(keys.jwks())), clock),
    }
}

fn agent(sub: &str, role: StaffRole) -> VerifiedGrant<AgentToken> {
    let at = Utc.with_ymd_and_hms(2021, 8, 9, 11, 0, 0).unwrap();
    VerifiedGrant {
        claims: AgentToken {
            sub: sub.to_owned(),
            username: format!("user.{sub}"),
            org: "national-call-center".to_owned(),
            role,
        },
        id: "grant-id".to_owned(),
        issued_at: at,
        expires_at: at,
    }
}

fn caller(name: &str) -> CallerIdentity {
    CallerIdentity::parse(name, RRN, "kt", PHONE).unwrap()
}

fn reason(problem: &Problem) -> &str {
    problem
        .extra
        .get("reason")
        .map(String::as_str)
        .unwrap_or(problem.kind.name())
}

impl Fixture {
    fn outcomes(&self) -> Vec<(String, String)> {
        self.audit
            .entries()
            .into_iter()
            .map(|e| (e.record.action, e.record.outcome))
            .collect()
    }

    fn code(&self) -> String {
        self.outbox.sent_to(PHONE)[0].otp.clone()
    }
}

#[tokio::test]
async fn a_verified_caller_earns_a_grant_bound_to_the_agent_and_the_person() {
    let f = fixture();
    let kim = agent("agent-kim", StaffRole::Agent);
    let started = f.callers.start(&kim, caller(NAME)).await.unwrap();
    assert_eq!(started.masked_phone, "010-****-5678");
    let code = f.code();
    let verified = f
        .callers
        .confirm(&kim, &started.verification_id.to_string(), &code)
        .await
        .unwrap();
    let grant = f
        .verifier
        .verify::<CallerGrant>(&verified.grant.token)
        .await
        .unwrap();
    let expected_key = derive_person_key(b"person-key-secret", &Rrn::parse(RRN).unwrap());
    assert_eq!(grant.claims.agent, "agent-kim");
    assert_eq!(grant.claims.for_key, expected_key.to_string());
    assert_eq!(grant.claims.for_bd, "1985-09-19");
    assert_eq!(verified.masked_name, "홍*동");
    // A caller grant is not an agent token.
    assert!(
        f.verifier
            .verify::<AgentToken>(&verified.grant.token)
            .await
            .is_err()
    );
    assert_eq!(
        f.outcomes(),
        vec![
            ("staff.verify-caller".to_owned(), "ok".to_owned()),
            ("staff.confirm-caller".to_owned(), "ok".to_owned()),
        ]
    );
    let entries = f.audit.entries();
    assert_eq!(verify_chain(&entries).unwrap(), 2);
    for entry in &entries {
        assert_eq!(entry.record.actor, "agent-kim");
        assert_eq!(
            entry.record.person_key.as_deref(),
            Some(expected_key.as_str())
        );
        let shown = format!("{entry:?}");
        for secret in ["길동", "850919", "1234567", "5678"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}

#[tokio::test]
async fn a_phone_registered_to_someone_else_sends_nothing_and_is_audited() {
    let f = fixture();
    let kim = agent("agent-kim", StaffRole::Agent);
    let refused = f.callers.start(&kim, caller("김철수")).await.unwrap_err();
    assert_eq!(refused.kind, ProblemKind::IdentityMismatch);
    assert!(f.outbox.sent_to(PHONE).is_empty());
    assert_eq!(
        f.outcomes(),
        vec![(
            "staff.verify-caller".to_owned(),
            "identity-mismatch".to_owned()
        )]
    );
}

#[tokio::test]
async fn only_the_agent_who_started_a_verification_confirms_it() {
    let f = fixture();
    let kim = agent("agent-kim", StaffRole::Agent);
    let lee = agent("agent-lee", StaffRole::Agent);
    let started = f.callers.start(&kim, caller(NAME)).await.unwrap();
    let code = f.code();
    let id = started.verification_id.to_string();
    let refused = f.callers.confirm(&lee, &id, &code).await.unwrap_err();
    assert_eq!(refused.kind, ProblemKind::CallerOfAnotherAgent);
    assert_eq!(reason(&refused), "caller-of-another-agent");
    // The code still works for the agent who asked.
    assert!(f.callers.confirm(&kim, &id, &code).await.is_ok());
    let outcomes = f.outcomes();
    assert_eq!(outcomes[1].1, "caller-of-another-agent");
    assert_eq!(f.audit.entries()[1].record.actor, "agent-lee");
}

#[tokio::test]
async fn a_wrong_code_and_an_unknown_verification_are_refused_and_audited() {
    let f = fixture();
    let kim = agent("agent-kim", StaffRole::Agent);
    let started = f.callers.start(&kim, caller(NAME)).await.unwrap();
    let code = f.code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let id = started.verification_id.to_string();
    let refused = f.callers.confirm(&kim, &id, wrong).await.unwrap_err();
    assert_eq!(refused.kind, ProblemKind::VerificationFailed);
    let unknown = VerificationId::new_random().to_string();
    let refused = f.callers.confirm(&kim, &unknown, &code).await.unwrap_err();
    assert_eq!(refused.kind, ProblemKind::VerificationExpired);
    let outcomes = f.outcomes();
    assert_eq!(outcomes[1].1, "verification-failed");
    assert_eq!(outcomes[2].1, "verification-expired");
    assert_eq!(f.audit.entries()[2].record.person_key, None);
}

#[tokio::test]
async fn operators_do_not_verify_callers() {
    let f = fixture();
    let root = agent("op-park", StaffRole::Operator);
    let refused = f.callers.start(&root, caller(NAME)).await.unwrap_err();
    assert_eq!(refused.kind, ProblemKind::RoleNotAllowed);
    assert_eq!(reason(&refused), "role-not-allowed");
    assert!(f.outbox.sent_to(PHONE).is_empty());
    assert_eq!(f.outcomes()[0].1, "role-not-allowed");
}
