//! The client address the gateway passes to auth-svc (for its per-address abuse limits), with
//! the gateway started on its real configuration: `X-Forwarded-For` is ignored from a peer
//! that is not in `GATEWAY_TRUSTED_PROXIES` (anyone could send it), and read — the rightmost
//! address that is not itself a trusted proxy — when the peer is a trusted proxy.

#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use gateway::client_address::TrustedProxies;
use reqwest::Method;
use serde_json::json;

/// Starts one verification with `forwarded_for` and answers the client address auth-svc's
/// fake received.
async fn address_seen_by_auth(harness: &Harness, forwarded_for: Option<&str>) -> String {
    let mut request = harness
        .bare(Method::POST, "/v1/auth/verifications")
        .header("x-device-id", "pc-1")
        .json(
            &json!({"provider": "phone", "name": "홍길동", "rrn": "900119-1234567",
            "phone": "010-1234-5678", "carrier": "skt"}),
        );
    if let Some(value) = forwarded_for {
        request = request.header("x-forwarded-for", value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 201);
    let calls = harness.fakes.calls_to("auth.StartVerification");
    let message = &calls.last().unwrap().message;
    let start = message.find("client_address: \"").unwrap() + "client_address: \"".len();
    let end = start + message[start..].find('"').unwrap();
    message[start..end].to_owned()
}

#[tokio::test]
async fn forwarded_for_is_ignored_from_an_untrusted_peer() {
    // The default: no trusted proxies. The test client (127.0.0.1) claims another address.
    let harness = Harness::start().await;
    assert_eq!(address_seen_by_auth(&harness, None).await, "127.0.0.1");
    assert_eq!(
        address_seen_by_auth(&harness, Some("203.0.113.7")).await,
        "127.0.0.1"
    );
    // A proxy list that does not name the peer changes nothing.
    let harness = Harness::start_with(|config| {
        config.trusted_proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
    })
    .await;
    assert_eq!(
        address_seen_by_auth(&harness, Some("203.0.113.7")).await,
        "127.0.0.1"
    );
}

#[tokio::test]
async fn forwarded_for_names_the_client_behind_a_trusted_proxy() {
    let harness = Harness::start_with(|config| {
        config.trusted_proxies = TrustedProxies::parse("127.0.0.1/32, 10.0.0.0/8").unwrap();
    })
    .await;
    assert_eq!(
        address_seen_by_auth(&harness, Some("203.0.113.7")).await,
        "203.0.113.7"
    );
    // The rightmost untrusted hop: what the client wrote in front of it is not believed, and
    // trusted proxies along the way are skipped.
    assert_eq!(
        address_seen_by_auth(&harness, Some("198.51.100.1, 203.0.113.7, 10.1.2.3")).await,
        "203.0.113.7"
    );
    // Without the header the peer is the client.
    assert_eq!(address_seen_by_auth(&harness, None).await, "127.0.0.1");
}
