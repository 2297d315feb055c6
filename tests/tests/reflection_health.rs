//! Every gRPC service answers server reflection (listing its own services and health) and
//! `grpc.health.v1` with SERVING, as SREs and call-center tooling expect — its audit trail's
//! `vaxbook.audit.v1.AuditService` included.

use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use vaxbook_tests::ProcessStack;

async fn list_services(url: &str) -> anyhow::Result<Vec<String>> {
    let channel = platform::grpc::channel(url, Duration::from_secs(5))?;
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await?
        .into_inner();
    let response = stream
        .message()
        .await?
        .ok_or_else(|| anyhow::anyhow!("no reflection answer"))?;
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => anyhow::bail!("unexpected reflection answer {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_lists_itself_through_reflection_and_reports_serving() -> anyhow::Result<()> {
    let stack = ProcessStack::start("reflection").await?;
    // Every service that keeps an audit trail serves it over the same AuditService.
    const AUDIT: &str = "vaxbook.audit.v1.AuditService";
    let expected: &[(&str, &[&str])] = &[
        ("auth-svc", &["vaxbook.auth.v1.AuthService", AUDIT]),
        ("session-svc", &["vaxbook.session.v1.SessionService", AUDIT]),
        (
            "scheduling-svc",
            &[
                "vaxbook.scheduling.v1.SchedulingService",
                "vaxbook.scheduling.v1.SchedulingAdminService",
                AUDIT,
            ],
        ),
        (
            "booking-svc",
            &[
                "vaxbook.booking.v1.BookingService",
                "vaxbook.booking.v1.BookingAdminService",
                AUDIT,
            ],
        ),
    ];
    for (name, url) in stack.service_urls() {
        let services = list_services(&url).await?;
        let own = expected
            .iter()
            .find(|(service, _)| *service == name)
            .map(|(_, names)| *names)
            .unwrap_or_default();
        assert!(!own.is_empty(), "no expectation for {name}");
        for wanted in own.iter().chain(&[
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
        ]) {
            assert!(
                services.iter().any(|s| s == wanted),
                "{name} does not list {wanted}: {services:?}"
            );
        }
        let mut health = HealthClient::new(platform::grpc::channel(&url, Duration::from_secs(5))?);
        for service in own.iter().chain(&[""]) {
            let status = health
                .check(HealthCheckRequest {
                    service: (*service).to_owned(),
                })
                .await?
                .into_inner()
                .status;
            assert_eq!(
                status,
                ServingStatus::Serving as i32,
                "{name} health of '{service}'"
            );
        }
        let unknown = health
            .check(HealthCheckRequest {
                service: "vaxbook.nothing.v1.Nothing".to_owned(),
            })
            .await;
        assert_eq!(
            unknown.err().map(|status| status.code()),
            Some(tonic::Code::NotFound),
            "{name}"
        );
    }
    Ok(())
}
