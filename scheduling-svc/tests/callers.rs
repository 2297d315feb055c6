//! scheduling-svc trusts no caller (docs/security.md): `CheckEligibility` answers for the person
//! of a presented citizen access token — its person key and birth date, whatever the request
//! says — or for a caller holding the internal service credential (`x-service-key`, not the old
//! operator key in `x-admin-key`); without either it refuses, and counts the refusal in
//! `refused_internal_calls_total`.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use platform::auth::Role;
use platform::clock::Clock;
use platform::dev::DevHooks;
use platform::problem::{Problem, ProblemKind};
use platform::trust::{AuthStandIn, with_bearer};
use proto::scheduling::v1 as pb;
use proto::scheduling::v1::scheduling_admin_service_client::SchedulingAdminServiceClient;
use proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use scheduling_svc::Config;
use tokio_util::sync::CancellationToken;
use tonic::Code;

const SERVICE_KEY: &str = platform::config::DEV_SERVICE_KEY;

fn question(person_key: &str, birth_date: &str) -> pb::CheckEligibilityRequest {
    pb::CheckEligibilityRequest {
        person_key: person_key.to_owned(),
        birth_date: birth_date.to_owned(),
        ..Default::default()
    }
}

#[tokio::test]
async fn eligibility_is_answered_for_the_tokens_person_or_a_service() {
    platform::telemetry::init_for_tests();
    let _ = platform::metrics::handle();
    let auth = AuthStandIn::start().await.unwrap();
    let hooks = DevHooks::new(at("2021-08-09T20:30:00+09:00"));
    let clock = hooks.clock.clone();
    let mut config = Config::local_dev(SocketAddr::from(([127, 0, 0, 1], 0)), &hooks);
    config.auth_url = auth.url.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(scheduling_svc::serve(config, listener, shutdown.clone()));
    let channel =
        platform::grpc::channel(&format!("http://{addr}"), Duration::from_secs(20)).unwrap();
    let mut admin = SchedulingAdminServiceClient::new(channel.clone());
    admin
        .upsert_campaign(as_dev_operator(pb::UpsertCampaignRequest {
            campaign: Some(round_18_49_message()),
        }))
        .await
        .unwrap();
    let mut scheduling = SchedulingServiceClient::new(channel);
    let now = clock.now();

    // No credential, a wrong service key, a garbage token.
    let refused = scheduling
        .check_eligibility(question("pk-alice", "1990-05-05"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let refused = scheduling
        .check_eligibility(as_service(question("pk-alice", "1990-05-05"), "guessed"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    // The operator key in `x-admin-key` was this credential once; it is none any more, not
    // even the dev run's key, and neither is the service key in that header.
    for old in [platform::config::DEV_ADMIN_KEY, SERVICE_KEY] {
        let mut request = tonic::Request::new(question("pk-alice", "1990-05-05"));
        request
            .metadata_mut()
            .insert("x-admin-key", old.parse().unwrap());
        let refused = scheduling.check_eligibility(request).await.unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    }
    let refused = scheduling
        .check_eligibility(with_bearer(question("", ""), "garbage").unwrap())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    // A citizen's token: the answer is about the token's person (born 1990: 18-49 is open).
    let alice = auth
        .token(Role::Citizen, "pk-alice", "1990-05-05", "s-1", "pc-1", now)
        .unwrap();
    let answer = scheduling
        .check_eligibility(with_bearer(question("", ""), &alice).unwrap())
        .await
        .unwrap()
        .into_inner();
    assert!(answer.eligible, "{answer:?}");
    assert_eq!(answer.campaign_id, "covid19-18-49");
    let same = scheduling
        .check_eligibility(with_bearer(question("pk-alice", "1990-05-05"), &alice).unwrap())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same, answer);
    // The token's birth date decides, not a younger or older one in the request.
    let grandpa = auth
        .token(
            Role::Citizen,
            "pk-grandpa",
            "1940-01-01",
            "s-2",
            "pc-2",
            now,
        )
        .unwrap();
    let answer = scheduling
        .check_eligibility(with_bearer(question("", ""), &grandpa).unwrap())
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.eligible);
    let refused = scheduling
        .check_eligibility(with_bearer(question("", "1990-05-05"), &grandpa).unwrap())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(Problem::from_status(&refused).kind, ProblemKind::Forbidden);
    // Another person's key with one's own token.
    let refused = scheduling
        .check_eligibility(with_bearer(question("pk-bob", ""), &alice).unwrap())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    // An agent's token is not for this call.
    let agent = auth
        .token(Role::Agent, "pk-agent", "1980-01-01", "s-3", "desk-1", now)
        .unwrap();
    let refused = scheduling
        .check_eligibility(with_bearer(question("", ""), &agent).unwrap())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    // A device proof (a grant) is not an access token.
    let proof = auth.proof("pk-alice", "pc-1", now).unwrap();
    let refused = scheduling
        .check_eligibility(with_bearer(question("", ""), &proof).unwrap())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    // The internal service credential: booking-svc asks about the person it authenticated.
    let answer = scheduling
        .check_eligibility(as_service(question("pk-bob", "1990-05-05"), SERVICE_KEY))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.eligible);

    let rendered = platform::metrics::handle().render();
    for reason in [
        "no-credential",
        "wrong-service-key",
        "invalid-token",
        "another-person",
    ] {
        let series = format!(
            "refused_internal_calls_total{{service=\"scheduling-svc\",rpc=\"CheckEligibility\",reason=\"{reason}\"}}"
        );
        assert!(rendered.contains(&series), "{series} missing:\n{rendered}");
    }
    shutdown.cancel();
    server.await.unwrap().unwrap();
}
