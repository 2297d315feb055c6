//! The measurement behind docs/decisions.md "eligibility: a call, not a grant": the added cost
//! per booking of asking scheduling-svc `CheckEligibility` over gRPC (loopback, a fake that
//! answers at once) against verifying a signed grant locally (Ed25519, keys cached). Run with
//! `cargo nextest run -p booking-svc --run-ignored only eligibility_cost --no-capture`.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::grants::{GrantVerifier, StaticKeysSource};
use platform::proxy_grant::ProxyGrant;
use proto::scheduling::v1 as sched_pb;
use support::Harness;

const ROUNDS: u32 = 2_000;

fn per_call(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e6 / f64::from(ROUNDS)
}

#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn eligibility_cost() {
    let harness = Harness::start().await;
    let scheduling = support::scheduling_url(&harness);
    let channel = tonic::transport::Channel::from_shared(scheduling)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = sched_pb::scheduling_service_client::SchedulingServiceClient::new(channel);
    let request = sched_pb::CheckEligibilityRequest {
        campaign_id: "r18-49".into(),
        birth_date: "1985-03-09".into(),
        person_key: "alice".into(),
        channel: sched_pb::Channel::Web as i32,
        proxy: false,
    };
    // As booking-svc asks: with the internal service key.
    let ask = || {
        let mut asking = tonic::Request::new(request.clone());
        asking.metadata_mut().insert(
            platform::config::SERVICE_KEY_HEADER,
            platform::config::DEV_SERVICE_KEY.parse().unwrap(),
        );
        asking
    };
    for _ in 0..200 {
        client.check_eligibility(ask()).await.unwrap();
    }
    let started = Instant::now();
    for _ in 0..ROUNDS {
        client.check_eligibility(ask()).await.unwrap();
    }
    let call = per_call(started.elapsed());

    let token = harness.proxy_grant("booker", "parent", "1950-05-01");
    let keys = harness.proxy_grants.keys().jwks();
    let verifier = GrantVerifier::new(Arc::new(StaticKeysSource(keys)), harness.clock.clone());
    verifier.verify::<ProxyGrant>(&token).await.unwrap();
    let started = Instant::now();
    for _ in 0..ROUNDS {
        verifier.verify::<ProxyGrant>(&token).await.unwrap();
    }
    let grant = per_call(started.elapsed());
    println!(
        "eligibility per booking: gRPC CheckEligibility {call:.1} µs, grant verification {grant:.1} µs ({ROUNDS} rounds)"
    );
}
