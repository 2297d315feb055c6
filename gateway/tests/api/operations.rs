//! Probes, metrics, problem explanations, the OpenAPI document (and its drift against the
//! router), the dev-only routes, and load shedding.

use std::collections::BTreeSet;

use platform::dev::{DevHooks, SentSms};
use platform::problem::ProblemKind;
use reqwest::Method;
use serde_json::{Value, json};
use tonic_health::ServingStatus;

use crate::common::{Gate, Harness, PUBLIC_URL, default_now, problem, problem_name};

#[tokio::test]
async fn healthz_answers_without_asking_anyone() {
    let harness = Harness::start().await;
    let response = harness.bare(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    assert!(harness.fakes.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn readyz_follows_every_service_health() {
    let harness = Harness::start().await;
    let response = harness.bare(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(response.status(), 200);

    harness
        .set_health("booking-svc", ServingStatus::NotServing)
        .await;
    let response = harness.bare(Method::GET, "/readyz").send().await.unwrap();
    let (status, headers, body) = problem(response).await;
    assert_eq!(status, 503);
    assert_eq!(problem_name(&body), "unavailable");
    assert_eq!(body["not_ready"], json!(["booking-svc"]));
    assert!(headers.contains_key("retry-after"));

    harness
        .set_health("booking-svc", ServingStatus::Serving)
        .await;
    let response = harness.bare(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn readyz_names_a_service_that_is_down() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let harness = Harness::start_with(|config| config.session_url = closed_url).await;
    let response = harness.bare(Method::GET, "/readyz").send().await.unwrap();
    let (status, _, body) = problem(response).await;
    assert_eq!(status, 503);
    assert_eq!(body["not_ready"], json!(["session-svc"]));
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let harness = Harness::start().await;
    for id in ["booking-a", "booking-b"] {
        let response = harness
            .authed(Method::GET, &format!("/v1/bookings/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let text = harness
        .bare(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = text
        .lines()
        .find(|line| {
            line.starts_with("http_requests_total")
                && line.contains(r#"route="/v1/bookings/{id}""#)
                && line.contains(r#"status="200""#)
        })
        .unwrap_or_else(|| panic!("no request counter in\n{text}"));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    // Other tests in this process may add to the same counter, never less than ours.
    assert!(count >= 2.0, "{line}");
    assert!(text.contains("http_request_duration_seconds"));
    assert!(!text.contains("booking-a"), "ids must not become labels");
}

#[tokio::test]
async fn problem_types_are_explained() {
    let harness = Harness::start().await;
    let response = harness
        .bare(Method::GET, "/problems/slot-full")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(text.contains(ProblemKind::SlotFull.explanation()));

    let response = harness
        .bare(Method::GET, "/problems/device-locked")
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(response.text().await.unwrap().contains("<h1>"));

    let response = harness
        .bare(Method::GET, "/problems/no-such-problem")
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(response).await;
    assert_eq!(status, 404);
    assert_eq!(problem_name(&body), "not-found");
}

fn documented_operations(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.to_uppercase(), path.clone()));
        }
    }
    operations
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let document: Value = serde_json::from_str(gateway::routes::ops::OPENAPI_SOURCE).unwrap();
    let registered: BTreeSet<(String, String)> = gateway::routes::table(true)
        .entries()
        .iter()
        .map(|(method, path)| (method.to_string(), (*path).to_owned()))
        .collect();
    let documented = documented_operations(&document);
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&registered).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.json: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "openapi.json documents unknown routes: {unrouted:?}"
    );

    // The dev routes are marked, and are exactly what `table(false)` leaves out.
    let production: BTreeSet<(String, String)> = gateway::routes::table(false)
        .entries()
        .iter()
        .map(|(method, path)| (method.to_string(), (*path).to_owned()))
        .collect();
    for (method, path) in registered.difference(&production) {
        let operation = &document["paths"][path][method.to_lowercase()];
        assert_eq!(operation["x-dev-only"], true, "{method} {path}");
    }
}

fn resolve<'a>(document: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    document.pointer(pointer)
}

fn check_refs(document: &Value, value: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                assert!(
                    resolve(document, reference).is_some(),
                    "dangling {reference}"
                );
            }
            for child in map.values() {
                check_refs(document, child);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| check_refs(document, item)),
        _ => {}
    }
}

fn collect_problem_types(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(names)) = map.get("x-problem-types") {
                found.extend(names.iter().filter_map(|n| n.as_str().map(str::to_owned)));
            }
            map.values()
                .for_each(|child| collect_problem_types(child, found));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_problem_types(item, found)),
        _ => {}
    }
}

#[test]
fn the_document_describes_every_problem_type_and_its_references_resolve() {
    let document: Value = serde_json::from_str(gateway::routes::ops::OPENAPI_SOURCE).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    check_refs(&document, &document);
    let catalogue = &document["components"]["schemas"]["Problem"]["x-problem-types"];
    for kind in ProblemKind::ALL {
        assert_eq!(
            catalogue[kind.name()],
            kind.http_status(),
            "problem type {} in openapi.json",
            kind.name()
        );
    }
    let mut used = BTreeSet::new();
    collect_problem_types(&document["paths"], &mut used);
    collect_problem_types(&document["components"]["responses"], &mut used);
    for name in &used {
        assert!(
            ProblemKind::from_name(name).is_some(),
            "unknown problem type {name}"
        );
    }
    for name in [
        "device-locked",
        "slot-full",
        "not-eligible",
        "cancellation-closed",
        "overloaded",
    ] {
        assert!(used.contains(name), "no response documents {name}");
    }
}

/// Every documented operation reaches a handler of the running gateway (not the fallback, not
/// a 405), so the table the drift test reads is the router that serves.
#[tokio::test]
async fn every_documented_operation_is_served() {
    let harness =
        Harness::start_with(|config| config.dev = Some(DevHooks::new(default_now()))).await;
    let served: Value = harness
        .bare(Method::GET, "/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served["servers"][0]["url"], PUBLIC_URL);
    for (method, path) in documented_operations(&served) {
        let concrete = path
            .replace("{id}", "booking-1")
            .replace("{name}", "slot-full");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let response = harness
            .authed(method.clone(), &concrete)
            .json(
                &json!({"slot_id": "slot-1", "otp": "123456", "now": "2021-08-09T20:00:00+09:00",
                          "provider": "kakao", "name": "n", "rrn": "r"}),
            )
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert!(
            !body.contains("no resource at this path"),
            "{method} {path}: {body}"
        );
    }
}

#[tokio::test]
async fn dev_routes_are_unknown_without_dev_hooks() {
    let harness = Harness::start().await;
    for (method, path) in [
        (Method::GET, "/dev/sms?to=010-1234-5678"),
        (Method::GET, "/dev/clock"),
        (Method::PUT, "/dev/clock"),
        (Method::DELETE, "/dev/clock"),
    ] {
        let response = harness
            .bare(method.clone(), path)
            .json(&json!({"now": "2021-08-09T20:00:00+09:00"}))
            .send()
            .await
            .unwrap();
        let (status, _, body) = problem(response).await;
        assert_eq!(status, 404, "{method} {path}");
        assert_eq!(problem_name(&body), "not-found");
    }
}

#[tokio::test]
async fn dev_routes_show_sms_and_set_the_clock() {
    let hooks = DevHooks::new(default_now());
    let harness = Harness::start_with({
        let hooks = hooks.clone();
        move |config| {
            config.clock = hooks.clock.clone();
            config.dev = Some(hooks);
        }
    })
    .await;
    for (otp, to) in [
        ("111111", "010-1234-5678"),
        ("222222", "010-9999-0000"),
        ("333333", "01012345678"),
    ] {
        hooks.sms.push(SentSms {
            to: to.into(),
            body: format!("[vaxbook] code {otp}"),
            otp: otp.into(),
            sent_at: "2021-08-20T12:00:00+09:00".into(),
        });
    }
    let messages: Value = harness
        .bare(Method::GET, "/dev/sms?to=010-1234-5678")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let otps: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["otp"].as_str().unwrap())
        .collect();
    assert_eq!(otps, ["333333", "111111"]);
    let response = harness.bare(Method::GET, "/dev/sms").send().await.unwrap();
    assert_eq!(problem(response).await.0, 400);

    let answer: Value = harness
        .bare(Method::PUT, "/dev/clock")
        .json(&json!({"now": "2021-08-09T20:00:00+09:00"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        answer["now"]
            .as_str()
            .unwrap()
            .starts_with("2021-08-09T20:00:0"),
        "{answer}"
    );
    let read = platform::clock::Clock::now(hooks.clock.as_ref());
    assert!(platform::clock::rfc3339_kst(read).starts_with("2021-08-09T20:00:0"));
    // Read without setting it (the instant a staff TOTP code is computed for).
    let answer: Value = harness
        .bare(Method::GET, "/dev/clock")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        answer["now"]
            .as_str()
            .unwrap()
            .starts_with("2021-08-09T20:00:0"),
        "{answer}"
    );

    let response = harness
        .bare(Method::PUT, "/dev/clock")
        .json(&json!({"now": "yesterday"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response).await.0, 400);

    let answer: Value = harness
        .bare(Method::DELETE, "/dev/clock")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let now = chrono::DateTime::parse_from_rfc3339(answer["now"].as_str().unwrap()).unwrap();
    assert!(
        (chrono::Utc::now() - now.to_utc()).num_seconds().abs() < 60,
        "{answer}"
    );
}

#[tokio::test]
async fn excess_requests_are_shed_at_once_with_retry_after() {
    let harness = Harness::start_with(|config| config.max_inflight = 1).await;
    let gate = Gate::default();
    *harness.fakes.gate.lock().unwrap() = Some(gate.clone());

    let first = tokio::spawn(harness.authed(Method::GET, "/v1/centers").send());
    gate.entered.notified().await;

    // The only permit is held by the first request, which waits inside booking-svc. The
    // timeout only turns a regression (a queued instead of shed request) into a failure.
    let response = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        harness.authed(Method::GET, "/v1/centers").send(),
    )
    .await
    .expect("an excess request must be answered at once, not queued")
    .unwrap();
    let (status, headers, body) = problem(response).await;
    assert_eq!(status, 503);
    assert_eq!(problem_name(&body), "overloaded");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(body["retry_after"], 1);

    // Probes are never shed.
    let response = harness.bare(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(response.status(), 200);

    *harness.fakes.gate.lock().unwrap() = None;
    gate.release.notify_one();
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(harness.fakes.calls_to("booking.ListCenters").len(), 1);

    // With the permit back, the next request goes through.
    let response = harness
        .authed(Method::GET, "/v1/centers")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let mut harness = Harness::start().await;
    let gate = Gate::default();
    *harness.fakes.gate.lock().unwrap() = Some(gate.clone());
    let in_flight = tokio::spawn(harness.authed(Method::GET, "/v1/centers").send());
    gate.entered.notified().await;

    let url = harness.url("/healthz");
    let stopping = {
        let gateway_stop = harness.gateway_stop();
        gateway_stop.cancel();
        tokio::spawn(async move { harness.stop_gateway().await.map(|()| harness) })
    };
    gate.release.notify_one();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200, "the in-flight request completes");
    let harness = stopping.await.unwrap().unwrap();
    assert!(reqwest::get(&url).await.is_err(), "no longer accepting");
    drop(harness);
}

#[tokio::test]
async fn shutdown_gives_up_on_stuck_requests_after_the_grace_period() {
    let mut harness = Harness::start_with(|config| {
        config.shutdown_grace = std::time::Duration::from_millis(200);
    })
    .await;
    let gate = Gate::default();
    *harness.fakes.gate.lock().unwrap() = Some(gate.clone());
    let stuck = tokio::spawn(harness.authed(Method::GET, "/v1/centers").send());
    gate.entered.notified().await;
    harness.stop_gateway().await.unwrap();
    gate.release.notify_one();
    drop(stuck);
}

#[tokio::test]
async fn browsers_of_allowed_origins_may_call_the_api() {
    let harness = Harness::start_with(|config| {
        config.cors_allowed_origins = vec!["https://www.vaxbook.example".to_owned()];
    })
    .await;
    let preflight = harness
        .bare(Method::OPTIONS, "/v1/bookings")
        .header("origin", "https://www.vaxbook.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,x-device-id,idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{preflight:?}");
    let headers = preflight.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://www.vaxbook.example"
    );
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("x-device-id") && allowed.contains("idempotency-key"),
        "{allowed}"
    );
    assert!(
        harness.fakes.calls.lock().unwrap().is_empty(),
        "a preflight reaches no service"
    );

    // A problem answer carries the headers too, so the page can read it.
    let refused = harness
        .bare(Method::GET, "/v1/bookings")
        .header("origin", "https://www.vaxbook.example")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(
        refused.headers()["access-control-allow-origin"],
        "https://www.vaxbook.example"
    );
    let exposed = refused.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("retry-after"), "{exposed}");

    let foreign = harness
        .bare(Method::GET, "/healthz")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn without_configured_origins_no_cors_headers_are_sent() {
    let harness = Harness::start().await;
    let response = harness
        .bare(Method::GET, "/healthz")
        .header("origin", "https://www.vaxbook.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[test]
fn cors_origins_are_validated() {
    assert_eq!(
        gateway::config::cors_origins(" https://a.example , http://localhost:3000 ").unwrap(),
        vec![
            "https://a.example".to_owned(),
            "http://localhost:3000".to_owned()
        ]
    );
    assert_eq!(
        gateway::config::cors_origins("").unwrap(),
        Vec::<String>::new()
    );
    assert!(gateway::config::cors_origins("a.example").is_err());
    assert!(gateway::config::cors_origins("https://a.example/").is_err());
}
