//! `ListProviders` through `serve` (see `common`): the providers on offer are exactly those
//! configured, each with the fields it needs and its measured health; when the phone
//! provider's adapter (the carriers' agency, over the production HTTP adapter) keeps failing,
//! the list reports phone `down` while the other providers stay `ok`.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use platform::problem::ProblemKind;
use proto::auth::v1::{ListProvidersRequest, ListProvidersResponse, ProviderHealth, ProviderInfo};

async fn providers(running: &Running) -> ListProvidersResponse {
    running
        .client
        .clone()
        .list_providers(ListProvidersRequest {})
        .await
        .unwrap()
        .into_inner()
}

fn find<'a>(list: &'a ListProvidersResponse, id: &str) -> &'a ProviderInfo {
    list.providers
        .iter()
        .find(|provider| provider.id == id)
        .unwrap_or_else(|| panic!("{id} is not offered: {list:?}"))
}

#[tokio::test]
async fn the_configured_providers_are_offered_with_their_fields_and_health() {
    let hooks = platform::dev::DevHooks::new(chrono::Utc::now());
    let running = start_with("auth-e2e-providers", |config| {
        config.financial_cert_roots =
            auth_svc::Config::dev_financial_cert_roots(&hooks.financial_ca);
    })
    .await;
    let list = providers(&running).await;
    let ids: Vec<&str> = list.providers.iter().map(|p| p.id.as_str()).collect();
    // kakao is trusted, naver and pass have no keys configured (see `common`).
    assert_eq!(ids, ["phone", "kakao", "financial_cert"], "{list:?}");
    assert_eq!(list.window_seconds, 300);

    let phone = find(&list, "phone");
    assert_eq!(phone.display_name, "휴대폰 본인확인");
    assert_eq!(phone.start_fields, ["name", "rrn", "phone", "carrier"]);
    assert_eq!(phone.answer_fields, ["otp"]);
    let kakao = find(&list, "kakao");
    assert_eq!(kakao.start_fields, ["name", "rrn"]);
    assert_eq!(kakao.answer_fields, ["assertion"]);
    let financial = find(&list, "financial_cert");
    assert_eq!(financial.start_fields, ["name", "rrn"]);
    assert_eq!(financial.answer_fields, ["signature", "certificate"]);
    for provider in &list.providers {
        assert_eq!(
            provider.health,
            i32::from(ProviderHealth::Ok),
            "{provider:?}"
        );
        assert_eq!(provider.samples, 0);
        assert!((provider.success_rate - 1.0).abs() < f64::EPSILON);
    }

    // A verification that worked is measured.
    running.start(start_request("phone-a")).await.unwrap();
    let phone = find(&providers(&running).await, "phone").clone();
    assert_eq!(phone.samples, 1);
    assert_eq!(phone.health, i32::from(ProviderHealth::Ok));
    running.stop().await;
}

#[tokio::test]
async fn a_provider_whose_adapter_keeps_failing_is_reported_down() {
    let running = start_with("auth-e2e-providers-down", |config| {
        // The carriers' agency does not answer: nothing listens on the discard port.
        config.guards =
            auth_svc::config::GuardConfig::http("http://127.0.0.1:9/agency", config.start_window);
    })
    .await;
    let phones = [
        "010-2000-0001",
        "010-2000-0002",
        "010-2000-0003",
        "010-2000-0004",
        "010-2000-0005",
    ];
    for (index, phone) in phones.iter().enumerate() {
        let mut request = start_request(&format!("pc-{index}"));
        request.rrn = format!("85091{index}-1234567");
        request.phone = (*phone).to_owned();
        let status = running.start(request).await.unwrap_err();
        assert_eq!(
            problem_of(&status).kind,
            ProblemKind::ProviderUnavailable,
            "{status:?}"
        );
        assert!(problem_of(&status).retry_after.is_some());
    }
    assert!(running.outbox().await.is_empty());

    let list = providers(&running).await;
    let phone = find(&list, "phone");
    assert_eq!(phone.health, i32::from(ProviderHealth::Down), "{phone:?}");
    // Five failed calls: as many as the default thresholds need to judge.
    assert_eq!(phone.samples, 5);
    assert!(phone.success_rate.abs() < f64::EPSILON, "{phone:?}");
    // The other providers are not affected.
    let kakao = find(&list, "kakao");
    assert_eq!(kakao.health, i32::from(ProviderHealth::Ok));
    running.stop().await;
}
