//! Exclusion lists and windows over the wire: `ReplaceExclusions` streams person keys in
//! batches behind an operator credential (the dev run's key here), replaces the list whole,
//! refuses malformed keys and unknown campaigns without touching the list in force;
//! `ListWindows` and `CheckEligibility` (asked with the service credential) answer from what was
//! loaded.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use platform::dev::DevHooks;
use proto::scheduling::v1 as pb;
use proto::scheduling::v1::scheduling_admin_service_client::SchedulingAdminServiceClient;
use proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use scheduling_svc::Config;
use tokio_util::sync::CancellationToken;

const SERVICE_KEY: &str = platform::config::DEV_SERVICE_KEY;

fn batches(
    campaign_id: &str,
    keys: &[&str],
    per_message: usize,
) -> Vec<pb::ReplaceExclusionsRequest> {
    let mut messages: Vec<pb::ReplaceExclusionsRequest> = keys
        .chunks(per_message.max(1))
        .map(|chunk| pb::ReplaceExclusionsRequest {
            campaign_id: String::new(),
            person_keys: chunk.iter().map(|key| (*key).to_owned()).collect(),
        })
        .collect();
    if messages.is_empty() {
        messages.push(pb::ReplaceExclusionsRequest::default());
    }
    messages[0].campaign_id = campaign_id.to_owned();
    messages
}

fn question(birth_date: &str, person_key: &str) -> tonic::Request<pb::CheckEligibilityRequest> {
    as_service(
        pb::CheckEligibilityRequest {
            birth_date: birth_date.to_owned(),
            person_key: person_key.to_owned(),
            ..Default::default()
        },
        SERVICE_KEY,
    )
}

#[tokio::test]
async fn exclusion_lists_are_streamed_in_and_replaced_whole() {
    platform::telemetry::init_for_tests();
    let hooks = DevHooks::new(at("2021-08-13T20:30:00+09:00"));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(scheduling_svc::serve(
        Config::local_dev(addr, &hooks),
        listener,
        shutdown.clone(),
    ));
    let channel =
        platform::grpc::channel(&format!("http://{addr}"), Duration::from_secs(20)).unwrap();
    wait_serving(
        channel.clone(),
        "vaxbook.scheduling.v1.SchedulingAdminService",
    )
    .await;
    let mut admin = SchedulingAdminServiceClient::new(channel.clone());
    let mut scheduling = SchedulingServiceClient::new(channel);
    for campaign in scheduling_svc::campaign_file::parse(FIXTURE_2021).unwrap() {
        let stored = admin
            .upsert_campaign(as_dev_operator(pb::UpsertCampaignRequest {
                campaign: Some(campaign),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(stored.version, 1);
    }

    // Without an operator credential: refused.
    let refused = admin
        .replace_exclusions(tokio_stream::iter(batches(ROUND_2021, &["pk-a"], 1)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert_eq!(
        platform::problem::Problem::from_status(&refused).kind,
        platform::problem::ProblemKind::StaffTokenRequired
    );

    let keys: Vec<String> = (0..2_500).map(|n| format!("pk-priority-{n}")).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let replaced = admin
        .replace_exclusions(as_dev_operator(tokio_stream::iter(batches(
            ROUND_2021, &key_refs, 1_000,
        ))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((replaced.list_version, replaced.entries), (1, 2_500));

    let answer = scheduling
        .check_eligibility(question("1990-05-13", "pk-priority-1234"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (answer.eligible, answer.reason.as_str()),
        (false, "excluded-priority-target")
    );
    assert_eq!(answer.campaign_id, ROUND_2021);
    assert_eq!(answer.window.unwrap().id, "rotation-13");
    assert_eq!(answer.supply_release.len(), 10);
    let neighbour = scheduling
        .check_eligibility(question("1990-05-13", "pk-neighbour"))
        .await
        .unwrap()
        .into_inner();
    assert!(neighbour.eligible, "{neighbour:?}");

    // A malformed key or an unknown campaign changes nothing.
    let bad = admin
        .replace_exclusions(as_dev_operator(tokio_stream::iter(batches(
            ROUND_2021,
            &["pk ok", "x"],
            1,
        ))))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().starts_with("person_keys"), "{bad:?}");
    let unknown = admin
        .replace_exclusions(as_dev_operator(tokio_stream::iter(batches(
            "no-such-round",
            &["pk-a"],
            1,
        ))))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    let still = scheduling
        .check_eligibility(question("1990-05-13", "pk-priority-7"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.reason, "excluded-priority-target");

    // A new list replaces the old one whole.
    let replaced = admin
        .replace_exclusions(as_dev_operator(tokio_stream::iter(batches(
            ROUND_2021,
            &["pk-neighbour"],
            1,
        ))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((replaced.list_version, replaced.entries), (2, 1));
    let freed = scheduling
        .check_eligibility(question("1990-05-13", "pk-priority-7"))
        .await
        .unwrap()
        .into_inner();
    assert!(freed.eligible, "{freed:?}");

    // The person's windows, over the wire.
    let windows = scheduling
        .list_windows(as_service(
            pb::ListWindowsRequest {
                birth_date: "1990-05-15".to_owned(),
                person_key: "pk-someone".to_owned(),
                channel: 0,
            },
            SERVICE_KEY,
        ))
        .await
        .unwrap()
        .into_inner()
        .windows;
    let ids: Vec<&str> = windows
        .iter()
        .map(|entry| {
            entry
                .window
                .as_ref()
                .map_or("", |window| window.id.as_str())
        })
        .collect();
    assert_eq!(ids, ["rotation-15", "catch-up-18-35", "open"]);
    assert_eq!(windows[0].window.as_ref().unwrap().rotation_digit, 5);

    shutdown.cancel();
    server.await.unwrap().unwrap();
}
