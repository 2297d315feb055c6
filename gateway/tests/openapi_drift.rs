//! The committed `gateway/openapi.json` and the served `/openapi.json` are exactly what the
//! code generates. Regenerate the committed file with
//! `cargo run -p gateway --bin gateway-openapi > gateway/openapi.json`
//! (or run this test with `UPDATE_OPENAPI=1`).

#![allow(clippy::unwrap_used)]

use serde_json::Value;

#[test]
fn the_committed_document_is_the_generated_one() {
    let generated = gateway::openapi::committed_text();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        std::fs::write(path, &generated).unwrap();
        return;
    }
    assert!(
        gateway::routes::ops::OPENAPI_SOURCE == generated,
        "gateway/openapi.json differs from the code; regenerate it with \
         `cargo run -p gateway --bin gateway-openapi > gateway/openapi.json`"
    );
}

#[test]
fn the_served_document_is_the_generated_one_with_its_server() {
    for with_dev in [true, false] {
        let served: Value = serde_json::from_str(&gateway::routes::ops::openapi_document(
            "https://vaxbook.example",
            with_dev,
        ))
        .unwrap();
        let mut expected = gateway::openapi::document(with_dev);
        expected["servers"] = serde_json::json!([{ "url": "https://vaxbook.example" }]);
        assert_eq!(served, expected);
        let has_dev = served["paths"]
            .as_object()
            .unwrap()
            .keys()
            .any(|path| path.starts_with("/dev/"));
        assert_eq!(has_dev, with_dev);
    }
}

#[test]
fn the_schema_patterns_are_the_shared_identifiers_rules() {
    let document = gateway::openapi::document(true);
    let text = document.to_string();
    let pattern = |p: &str| serde_json::to_string(p).unwrap();
    assert!(text.contains(&pattern(platform::ids::DeviceId::PATTERN)));
    assert!(text.contains(&pattern(platform::ids::IdempotencyKey::PATTERN)));
    assert!(text.contains(&pattern(platform::ids::CampaignId::PATTERN)));
    let device = &document["paths"]["/v1/bookings"]["get"]["parameters"][0];
    assert_eq!(device["name"], "X-Device-Id");
    assert_eq!(
        device["schema"]["pattern"],
        platform::ids::DeviceId::PATTERN
    );
}

#[test]
fn the_sent_sms_schema_has_the_fields_of_sent_sms() {
    let sms = platform::dev::SentSms {
        to: "010".into(),
        body: "b".into(),
        otp: "1".into(),
        sent_at: "2021-08-20T12:00:00+09:00".into(),
    };
    let value = serde_json::to_value(&sms).unwrap();
    let mut fields: Vec<&String> = value.as_object().unwrap().keys().collect();
    fields.sort();
    let document = gateway::openapi::document(true);
    let schema = &document["components"]["schemas"]["SentSms"];
    let mut documented: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    documented.sort();
    assert_eq!(fields, documented);
}
