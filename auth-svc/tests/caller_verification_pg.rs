//! Verifying the caller end to end (R9) against real PostgreSQL (staff accounts, audit trail)
//! and Redis (challenges, SMS outbox), through `serve` and the carriers' agency over HTTP: an
//! agent logs in, verifies the caller with the code the caller received, and gets a caller
//! grant bound to that agent and person; the caller's device lock is never touched, another
//! agent cannot confirm, and every step is in the hash-chained trail without name, RRN or phone.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use auth_svc::accounts::store::PgAccountStore;
use auth_svc::accounts::{create_account, credentials};
use platform::audit::{AUTH_TRAIL, AuditLog as _, AuditQuery, PgAuditLog, verify_trail};
use platform::grants::{GrantVerifier, GrpcKeysSource};
use platform::staff::{CallerGrant, StaffRole};
use proto::auth::v1 as pb;
use proto::auth::v1::staff_auth_service_client::StaffAuthServiceClient;
use tonic::Request;

const PASSWORD: &str = "a long staff password";

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test]
async fn an_agent_verifies_a_caller_and_gets_a_grant_bound_to_both() {
    let url = platform::pg::create_test_database("auth_caller_verification")
        .await
        .unwrap();
    let pool = platform::pg::pool(&url, 2).unwrap();
    let accounts = PgAccountStore::migrate(&url, pool.clone()).await.unwrap();
    let mut totp = Vec::new();
    for name in ["agent.kim", "agent.lee"] {
        let created = create_account(
            &accounts,
            name,
            "national-call-center",
            StaffRole::Agent,
            PASSWORD.to_owned(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        totp.push((name, created.totp_secret, created.account.id.to_string()));
    }
    let running = common::start_with("caller_verification", |config| {
        config.staff_database = Some(platform::config::ConnectionUrl::new(url.clone()));
    })
    .await;
    let mut staff = StaffAuthServiceClient::new(running.channel.clone());
    let mut tokens = Vec::new();
    for (name, secret, _) in &totp {
        let unix = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
        let answer = staff
            .login(pb::LoginRequest {
                username: (*name).to_owned(),
                password: PASSWORD.to_owned(),
                totp_code: credentials::totp_code(secret, name, unix).unwrap(),
            })
            .await
            .unwrap()
            .into_inner();
        tokens.push(answer.token);
    }
    let (kim, lee) = (&tokens[0], &tokens[1]);

    let started = staff
        .verify_caller(with_token(
            pb::VerifyCallerRequest {
                name: "홍길동".to_owned(),
                rrn: common::RRN.to_owned(),
                carrier: common::CARRIER.to_owned(),
                phone: common::PHONE.to_owned(),
            },
            kim,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.masked_phone, "010-****-5678");
    let otp = running.latest_otp().await;
    let confirm = |token: &str| {
        with_token(
            pb::ConfirmCallerRequest {
                verification_id: started.verification_id.clone(),
                otp: otp.clone(),
            },
            token,
        )
    };
    let refused = staff.confirm_caller(confirm(lee)).await.unwrap_err();
    assert_eq!(
        common::problem_of(&refused)
            .extra
            .get("reason")
            .map(String::as_str),
        Some("caller-of-another-agent")
    );
    let confirmed = staff
        .confirm_caller(confirm(kim))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(confirmed.birth_date, "1985-09-19");

    let verifier = GrantVerifier::new(
        Arc::new(GrpcKeysSource::new(running.channel.clone())),
        Arc::new(platform::clock::SystemClock),
    );
    let grant = verifier
        .verify::<CallerGrant>(&confirmed.caller_grant)
        .await
        .unwrap();
    assert_eq!(grant.claims.agent, totp[0].2);
    assert_eq!(grant.claims.for_key, confirmed.person_key);
    // The caller's device lock was neither checked nor claimed.
    assert!(running.sessions.claims.lock().unwrap().is_empty());
    assert!(running.sessions.checks.lock().unwrap().is_empty());

    let trail = PgAuditLog::new(pool, AUTH_TRAIL);
    let entries = trail
        .query(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let steps: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.record.action.as_str(), e.record.outcome.as_str()))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("staff.login", "ok"),
            ("staff.login", "ok"),
            ("staff.verify-caller", "ok"),
            ("staff.confirm-caller", "caller-of-another-agent"),
            ("staff.confirm-caller", "ok"),
        ]
    );
    assert_eq!(verify_trail(trail.trail(), &entries).unwrap(), 5);
    // The records (not the hashes, which are random hex).
    let records: Vec<_> = entries.iter().map(|e| &e.record).collect();
    let shown = format!("{records:?}");
    for secret in ["길동", "850919", "1234567", "1234-5678"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    running.stop().await;
}
