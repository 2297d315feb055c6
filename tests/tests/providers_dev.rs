//! `GET /v1/auth/providers` through `vaxbook dev` (gateway → auth-svc's ListProviders): the dev
//! run offers every provider it has a stand-in for — phone (the carriers' stand-in agency), the
//! three simple certificates and financial certificates under the dev CA —, each with the
//! fields its start needs and its answer carries, and health measured from the calls made.

use serde_json::json;
use vaxbook_tests::journey::{self, OtpSource};
use vaxbook_tests::{Api, DevStack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_run_lists_its_providers_with_fields_and_measured_health() -> anyhow::Result<()> {
    let dev = DevStack::start("dev-providers").await?;
    let anonymous = Api::new(&dev.gateway_url, "");
    let listed = anonymous.get("/v1/auth/providers").await?;
    assert_eq!(listed.status, 200, "{listed:?}");
    let providers = listed.body["providers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ids: Vec<&str> = providers
        .iter()
        .filter_map(|provider| provider["id"].as_str())
        .collect();
    for id in ["phone", "kakao", "naver", "pass", "financial_cert"] {
        assert!(ids.contains(&id), "{id} not offered: {listed:?}");
    }
    let field_list = |id: &str, field: &str| -> Vec<String> {
        providers
            .iter()
            .find(|provider| provider["id"] == id)
            .and_then(|provider| provider[field].as_array())
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        field_list("phone", "start_fields"),
        ["name", "rrn", "phone", "carrier"]
    );
    assert_eq!(field_list("phone", "answer_fields"), ["otp"]);
    assert_eq!(field_list("kakao", "answer_fields"), ["assertion"]);
    assert_eq!(
        field_list("financial_cert", "answer_fields"),
        ["signature", "certificate"]
    );
    for provider in &providers {
        assert_eq!(provider["health"], "ok", "{provider}");
        assert_eq!(provider["samples"], 0, "{provider}");
    }
    assert!(listed.body["window_seconds"].as_u64().unwrap_or(0) > 0);

    // A verification is measured: phone's figures rest on its start and completion.
    let otp = OtpSource::DevSms {
        gateway: dev.gateway_url.clone(),
    };
    journey::login(
        &Api::new(&dev.gateway_url, "laptop-1"),
        &otp,
        &journey::HONG,
    )
    .await?;
    let listed = anonymous.get("/v1/auth/providers").await?;
    let phone = listed.body["providers"]
        .as_array()
        .and_then(|providers| providers.iter().find(|p| p["id"] == "phone").cloned())
        .unwrap_or_else(|| json!({}));
    assert_eq!(phone["samples"], 2, "{listed:?}");
    assert_eq!(phone["health"], "ok", "{listed:?}");
    assert_eq!(phone["success_rate"], 1.0, "{listed:?}");
    Ok(())
}
