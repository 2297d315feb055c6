//! Services trust no caller, against the five services as separate processes (real Redis and
//! PostgreSQL): whoever reaches session-svc or scheduling-svc on the internal network, knowing a
//! person key, cannot claim or release that person's device lock or ask about their
//! eligibility; the refusals show in the services' metrics (docs/security.md).

use proto::scheduling::v1 as scheduling;
use proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use proto::session::v1 as session;
use proto::session::v1::session_service_client::SessionServiceClient;
use tonic::Code;
use vaxbook_tests::ProcessStack;

async fn channel(url: &str) -> anyhow::Result<tonic::transport::Channel> {
    Ok(tonic::transport::Channel::from_shared(url.to_owned())?
        .connect()
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_network_is_not_a_credential() -> anyhow::Result<()> {
    let mut stack = ProcessStack::start("trust").await?;
    let person = format!("pk-{}", uuid::Uuid::new_v4().simple());
    let mut sessions = SessionServiceClient::new(channel(&stack.session_url).await?);

    // A lock cannot be claimed without auth-svc's device proof, nor with a made-up one.
    for proof in ["", "eyJhbGciOiJFZERTQSJ9.e30.AAAA"] {
        let refused = sessions
            .claim_device(session::ClaimDeviceRequest {
                person_key: person.clone(),
                device_id: "attacker-pc".to_owned(),
                device_proof: proof.to_owned(),
            })
            .await
            .expect_err("a claim without a valid proof is refused");
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    }
    // A session cannot be released knowing its person key and id.
    let refused = sessions
        .release_session(session::ReleaseSessionRequest {
            person_key: person.clone(),
            session_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .expect_err("a release without the session's token is refused");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    // Nobody is told about a person's eligibility without a token or the service credential.
    let mut schedule = SchedulingServiceClient::new(channel(&stack.scheduling_url).await?);
    let refused = schedule
        .check_eligibility(scheduling::CheckEligibilityRequest {
            person_key: person.clone(),
            birth_date: "1990-01-01".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("an eligibility question without a credential is refused");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    // Each refusal is counted where it happened.
    let client = reqwest::Client::new();
    for (service, series) in [
        (
            "session-svc",
            r#"refused_internal_calls_total{service="session-svc",rpc="ClaimDevice",reason="no-credential"}"#,
        ),
        (
            "session-svc",
            r#"refused_internal_calls_total{service="session-svc",rpc="ClaimDevice",reason="invalid-proof"}"#,
        ),
        (
            "session-svc",
            r#"refused_internal_calls_total{service="session-svc",rpc="ReleaseSession",reason="no-credential"}"#,
        ),
        (
            "scheduling-svc",
            r#"refused_internal_calls_total{service="scheduling-svc",rpc="CheckEligibility",reason="no-credential"}"#,
        ),
    ] {
        let addr = stack
            .metrics_addrs
            .iter()
            .find(|(name, _)| *name == service)
            .map(|(_, addr)| addr.clone())
            .ok_or_else(|| anyhow::anyhow!("no metrics address for {service}"))?;
        let rendered = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        assert!(rendered.contains(series), "{series} missing:\n{rendered}");
    }

    let unclean = stack.stop().await?;
    assert!(unclean.is_empty(), "did not stop cleanly: {unclean:?}");
    Ok(())
}
