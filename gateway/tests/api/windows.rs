//! `GET /v1/me/windows`: the person's upcoming booking windows as scheduling-svc lists them,
//! asked for the token's person on the web channel, in KST, with nothing the REST contract cannot
//! say (a window of no known kind) passed on.

use chrono::TimeZone;
use platform::clock::to_timestamp;
use proto::scheduling::v1 as scheduling;
use reqwest::Method;
use serde_json::Value;

use crate::common::{Harness, PERSON_KEY, problem, problem_name};

fn kst(y: i32, m: u32, d: u32, h: u32) -> Option<prost_types::Timestamp> {
    let at = chrono::FixedOffset::east_opt(9 * 3600)
        .unwrap()
        .with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .unwrap()
        .with_timezone(&chrono::Utc);
    Some(to_timestamp(at))
}

fn window(
    id: &str,
    kind: scheduling::WindowKind,
    opens: Option<prost_types::Timestamp>,
    closes: Option<prost_types::Timestamp>,
    channels: &[scheduling::Channel],
) -> scheduling::Window {
    scheduling::Window {
        id: id.into(),
        kind: kind.into(),
        opens_at: opens,
        closes_at: closes,
        channels: channels.iter().map(|channel| (*channel).into()).collect(),
        ..Default::default()
    }
}

fn entry(campaign: &str, window: scheduling::Window, open_now: bool) -> scheduling::PersonWindow {
    scheduling::PersonWindow {
        campaign_id: campaign.into(),
        campaign_name: format!("{campaign} round"),
        window: Some(window),
        open_now,
        vaccination_from: "2021-08-26".into(),
        vaccination_to: "2021-10-02".into(),
    }
}

#[tokio::test]
async fn the_upcoming_windows_are_listed_in_kst_for_the_tokens_person() {
    let harness = Harness::start().await;
    use scheduling::Channel::{CallCenter, Web};
    use scheduling::WindowKind::{Band, Open, Rotation, Unspecified};
    *harness.fakes.windows.lock().unwrap() = scheduling::ListWindowsResponse {
        windows: vec![
            entry(
                "covid19-2021-18-49",
                window(
                    "rotation-19",
                    Rotation,
                    kst(2021, 8, 9, 20),
                    kst(2021, 8, 10, 18),
                    &[Web],
                ),
                true,
            ),
            entry(
                "covid19-2021-18-49",
                window(
                    "catch-up-18-35",
                    Band,
                    kst(2021, 8, 20, 20),
                    kst(2021, 8, 21, 18),
                    &[Web, CallCenter, scheduling::Channel::Unspecified],
                ),
                false,
            ),
            // Nothing the contract can name: left out rather than answered half-empty.
            entry(
                "covid19-2021-18-49",
                window(
                    "odd",
                    Unspecified,
                    kst(2021, 8, 21, 20),
                    kst(2021, 8, 22, 18),
                    &[Web],
                ),
                false,
            ),
            entry(
                "covid19-2021-18-49",
                window("no-close", Open, kst(2021, 8, 21, 20), None, &[Web]),
                false,
            ),
            scheduling::PersonWindow {
                window: None,
                ..entry(
                    "covid19-2021-18-49",
                    window("x", Open, None, None, &[]),
                    false,
                )
            },
        ],
    };
    let response = harness
        .authed(Method::GET, "/v1/me/windows")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let listed = body.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{body}");
    let first = &listed[0];
    assert_eq!(first["campaign_id"], "covid19-2021-18-49");
    assert_eq!(first["campaign_name"], "covid19-2021-18-49 round");
    assert_eq!(first["open_now"], true);
    assert_eq!(first["vaccination_from"], "2021-08-26");
    assert_eq!(first["vaccination_to"], "2021-10-02");
    assert_eq!(first["window"]["id"], "rotation-19");
    assert_eq!(first["window"]["kind"], "rotation");
    assert_eq!(first["window"]["opens_at"], "2021-08-09T20:00:00+09:00");
    assert_eq!(first["window"]["closes_at"], "2021-08-10T18:00:00+09:00");
    assert_eq!(first["window"]["channels"], serde_json::json!(["web"]));
    let second = &listed[1];
    assert_eq!(second["open_now"], false);
    assert_eq!(second["window"]["kind"], "band");
    assert_eq!(second["window"]["opens_at"], "2021-08-20T20:00:00+09:00");
    assert_eq!(
        second["window"]["channels"],
        serde_json::json!(["web", "call_center"])
    );

    // Asked for the token's person (birth date and key from the token, the token forwarded),
    // on the web channel.
    let calls = harness.fakes.calls_to("scheduling.ListWindows");
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert!(
        call.message.contains("birth_date: \"1990-01-19\""),
        "{}",
        call.message
    );
    assert!(call.message.contains(PERSON_KEY), "{}", call.message);
    assert!(call.message.contains("channel: Web"), "{}", call.message);
    let forwarded = call
        .metadata
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // The caller's own token (a signed JWT), not a service credential.
    let token = forwarded.strip_prefix("Bearer ").unwrap_or_default();
    assert_eq!(token.split('.').count(), 3, "{forwarded}");
}

#[tokio::test]
async fn no_windows_is_an_empty_list() {
    let harness = Harness::start().await;
    let response = harness
        .authed(Method::GET, "/v1/me/windows")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!([]));
}

#[tokio::test]
async fn windows_need_a_verified_person_and_scheduling_svc() {
    let harness = Harness::start().await;
    let (status, _, body) = problem(
        harness
            .bare(Method::GET, "/v1/me/windows")
            .header("x-device-id", crate::common::DEVICE)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(problem_name(&body), "unauthenticated");
    assert!(harness.fakes.calls_to("scheduling.ListWindows").is_empty());

    harness
        .fakes
        .fail("scheduling.ListWindows", tonic::Status::unavailable("down"));
    let (status, _, body) = problem(
        harness
            .authed(Method::GET, "/v1/me/windows")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(!body.to_string().contains("down"), "{body}");
}
