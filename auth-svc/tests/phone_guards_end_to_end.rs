//! The phone provider's guards against real Redis and the production HTTP adapter to a
//! stand-in carriers' agency: a phone registered to someone else is refused and sends nothing;
//! wrong codes spread over several verifications still lock out; 40 starts with 40 RRNs at one
//! phone send only the per-phone limit's worth; the circuit breaker opens when the agency is
//! down (503 provider-unavailable with Retry-After, within the adapter's timeout) and closes
//! again when it answers.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use auth_svc::carrier::BreakerSettings;
use auth_svc::config::CarrierConfig;
use common::*;
use platform::carrier::{AgencyBehaviour, Subscriber};
use platform::problem::ProblemKind;
use proto::auth::v1::StartVerificationRequest;

#[tokio::test]
async fn a_phone_registered_to_someone_else_is_refused_and_sends_nothing() {
    let running = start_everything("auth-mismatch").await;
    // Each of phone, name, RRN (birth date or sex digit) and carrier wrong on its own.
    let variants = [
        StartVerificationRequest {
            phone: "010-9999-0000".to_owned(),
            ..start_request("phone-a")
        },
        StartVerificationRequest {
            name: "홍길순".to_owned(),
            ..start_request("phone-a")
        },
        StartVerificationRequest {
            rrn: "850920-1234567".to_owned(),
            ..start_request("phone-a")
        },
        StartVerificationRequest {
            rrn: "850919-2234567".to_owned(),
            ..start_request("phone-a")
        },
        StartVerificationRequest {
            carrier: "kt".to_owned(),
            ..start_request("phone-a")
        },
    ];
    let mut answers = Vec::new();
    for request in variants {
        let status = running.start(request).await.unwrap_err();
        let problem = problem_of(&status);
        assert_eq!(problem.kind, ProblemKind::IdentityMismatch);
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        answers.push(problem.detail);
    }
    // One answer, whichever field was wrong.
    answers.dedup();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(running.outbox().await.is_empty(), "an SMS was sent");
    assert!(running.challenge_keys().await.is_empty());
    assert_eq!(running.agency.calls(), 5);

    // A phone provider start without a carrier is a malformed request, refused before the agency.
    let status = running
        .start(StartVerificationRequest {
            carrier: String::new(),
            ..start_request("phone-a")
        })
        .await
        .unwrap_err();
    assert_eq!(problem_of(&status).kind, ProblemKind::InvalidRequest);
    assert_eq!(running.agency.calls(), 5);

    // The registered person gets the code.
    running.start(start_request("phone-a")).await.unwrap();
    assert_eq!(running.outbox().await.len(), 1);
    running.stop().await;
}

#[tokio::test]
async fn wrong_codes_spread_over_several_verifications_still_lock_out() {
    let running = start_everything("auth-lockout").await;
    // The default limit is ten wrong codes; a verification allows five. Four wrong codes in
    // each of two verifications and two in a third reach it, though no challenge is used up.
    let wrong_codes = |otp: &str| format!("{:06}", (otp.parse::<u32>().unwrap() + 1) % 1_000_000);
    let mut right = String::new();
    let mut verification_id = String::new();
    for wrong_in_this_one in [4, 4, 2] {
        let started = running.start(start_request("phone-a")).await.unwrap();
        verification_id = started.verification_id;
        right = running.latest_otp().await;
        for _ in 0..wrong_in_this_one {
            let status = running
                .complete(&verification_id, &wrong_codes(&right), "phone-a")
                .await
                .unwrap_err();
            assert_eq!(problem_of(&status).kind, ProblemKind::VerificationFailed);
        }
    }
    // Even the right code of the open verification is refused now, with a Retry-After.
    let status = running
        .complete(&verification_id, &right, "phone-a")
        .await
        .unwrap_err();
    let problem = problem_of(&status);
    assert_eq!(problem.kind, ProblemKind::RateLimited);
    assert!(problem.retry_after.unwrap() > Duration::from_secs(60));
    // A new verification does not reset it, and is refused before any code is sent.
    let sent = running.outbox().await.len();
    let status = running.start(start_request("phone-b")).await.unwrap_err();
    let problem = problem_of(&status);
    assert_eq!(problem.kind, ProblemKind::RateLimited);
    assert!(problem.retry_after.is_some());
    assert_eq!(running.outbox().await.len(), sent);
    assert!(running.sessions.claims.lock().unwrap().is_empty());
    running.stop().await;
}

#[tokio::test]
async fn forty_rrns_at_one_phone_send_only_the_per_phone_limit() {
    let running = start_everything("auth-phone-limit").await;
    let phone = "010-4040-4040";
    let mut sent = 0;
    let mut limited = 0;
    for index in 0..40 {
        let rrn = format!("9001{:02}-1{:06}", index % 28 + 1, index);
        // Every one of them really is registered at that phone: only the limit stops them.
        running
            .agency
            .directory
            .register(&Subscriber {
                name: "김민수".to_owned(),
                rrn: rrn.clone(),
                phone: phone.to_owned(),
                carrier: "lgu".to_owned(),
            })
            .unwrap();
        let request = StartVerificationRequest {
            name: "김민수".to_owned(),
            rrn,
            phone: phone.to_owned(),
            carrier: "lgu".to_owned(),
            ..start_request(&format!("device-{index}"))
        };
        match running.start(request).await {
            Ok(_) => sent += 1,
            Err(status) => {
                let problem = problem_of(&status);
                assert_eq!(problem.kind, ProblemKind::RateLimited, "{problem:?}");
                assert!(problem.retry_after.is_some());
                limited += 1;
            }
        }
    }
    assert_eq!(sent, 5);
    assert_eq!(limited, 35);
    assert_eq!(running.outbox().await.len(), 5);
    // The refused starts never reached the agency.
    assert_eq!(running.agency.calls(), 5);
    running.stop().await;
}

#[tokio::test]
async fn the_circuit_breaker_opens_while_the_agency_is_down_and_closes_again() {
    let timeout = Duration::from_millis(400);
    let running = start_with("auth-breaker", |config| {
        if let CarrierConfig::Http {
            timeout: adapter_timeout,
            breaker,
            ..
        } = &mut config.guards.carrier
        {
            *adapter_timeout = timeout;
            *breaker = BreakerSettings {
                failure_threshold: 2,
                open_for: Duration::from_secs(2),
            };
        }
    })
    .await;
    running.agency.set_behaviour(AgencyBehaviour::Hanging);
    for _ in 0..2 {
        let started = Instant::now();
        let status = running.start(start_request("phone-a")).await.unwrap_err();
        let problem = problem_of(&status);
        assert_eq!(problem.kind, ProblemKind::ProviderUnavailable);
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(problem.retry_after.is_some());
        assert!(started.elapsed() < timeout * 3, "{:?}", started.elapsed());
    }
    // Open: refused at once, without calling the agency.
    let calls = running.agency.calls();
    let started = Instant::now();
    let status = running.start(start_request("phone-a")).await.unwrap_err();
    let problem = problem_of(&status);
    assert_eq!(problem.kind, ProblemKind::ProviderUnavailable);
    assert!(problem.retry_after.unwrap() >= Duration::from_secs(1));
    assert!(started.elapsed() < timeout, "{:?}", started.elapsed());
    assert_eq!(running.agency.calls(), calls);
    assert!(running.outbox().await.is_empty());

    // The agency answers again; after the open time the trial call closes the breaker.
    running.agency.set_behaviour(AgencyBehaviour::Up);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    running.start(start_request("phone-a")).await.unwrap();
    running.start(start_request("phone-b")).await.unwrap();
    assert_eq!(running.outbox().await.len(), 2);
    running.stop().await;
}

#[tokio::test]
async fn starts_are_limited_per_client_address() {
    let running = start_with("auth-client-limit", |config| {
        config.guards.limits.client_starts = 3;
    })
    .await;
    let from = |address: &str, rrn: &str| StartVerificationRequest {
        client_address: address.to_owned(),
        rrn: rrn.to_owned(),
        provider: proto::auth::v1::Provider::Kakao.into(),
        phone: String::new(),
        carrier: String::new(),
        ..start_request("phone-a")
    };
    for index in 0..3 {
        let rrn = format!("8001{:02}-1234567", index + 1);
        running.start(from("203.0.113.7", &rrn)).await.unwrap();
    }
    let status = running
        .start(from("203.0.113.7", "800110-1234567"))
        .await
        .unwrap_err();
    assert_eq!(problem_of(&status).kind, ProblemKind::RateLimited);
    // Another address is counted apart; a malformed one is a malformed request.
    running
        .start(from("198.51.100.1", "800111-1234567"))
        .await
        .unwrap();
    let status = running
        .start(from("not-an-address", "800112-1234567"))
        .await
        .unwrap_err();
    assert_eq!(problem_of(&status).kind, ProblemKind::InvalidRequest);
    running.stop().await;
}
