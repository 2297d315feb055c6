//! The call-center walk-through `vaxbook dev` prints is run as printed, in bash with curl, sed
//! and this `vaxbook` on PATH: the dev agent logs in, the citizens' API refuses its token (and
//! auth-svc's audit trail records the attempt), a caller of the 60+ round is verified by the SMS
//! code of the dev sink, booked for, listed and cancelled; the dev operator logs in.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use platform::staff::STAFF_TOKEN_HEADER;
use proto::audit::v1::QueryAuditRequest;
use proto::audit::v1::audit_service_client::AuditServiceClient;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const VAXBOOK: &str = env!("CARGO_BIN_EXE_vaxbook");

/// `vaxbook dev` on in-process stores and a free port; its banner, read up to its last line.
async fn dev_run() -> (Child, String) {
    let mut child = Command::new(VAXBOOK)
        .arg("dev")
        .env("VAXBOOK_DEV_ADDR", "127.0.0.1:0")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let read = async {
        let mut banner = String::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            banner.push_str(&line);
            banner.push('\n');
            if line.starts_with("Stop with ctrl-c.") {
                return banner;
            }
        }
        panic!("vaxbook dev stopped before its banner ended: {banner}");
    };
    let banner = tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .expect("vaxbook dev prints its banner within two minutes");
    // Keep reading what it prints later, or its next line would hit a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, banner)
}

/// The value after `label` on the banner line that starts with it.
fn banner_value<'a>(banner: &'a str, label: &str) -> &'a str {
    banner
        .lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .unwrap_or_else(|| panic!("no `{label}` line in {banner}"))
        .trim()
}

/// The text between `---8<--- NAME` and the next `---8<---`.
fn section<'a>(banner: &'a str, name: &str) -> &'a str {
    banner
        .split(&format!("---8<--- {name}\n"))
        .nth(1)
        .and_then(|rest| rest.split("---8<---").next())
        .unwrap_or_else(|| panic!("no {name} section in {banner}"))
}

/// Asks `vaxbook healthcheck` until the gateway's /readyz answers (every service serving).
async fn wait_ready(gateway: &str) {
    for _ in 0..120 {
        let ready = Command::new(VAXBOOK)
            .args(["healthcheck", "--http", &format!("{gateway}/readyz")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .unwrap();
        if ready.success() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the dev run did not become ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_call_center_walkthrough_runs_as_printed() {
    let (_dev, banner) = dev_run().await;
    let gateway = banner_value(&banner, "gateway:");
    wait_ready(gateway).await;
    // The services' gRPC addresses are printed for the call-center commands.
    let grpc = banner_value(&banner, "gRPC:");
    let auth_url = grpc
        .split(", ")
        .find_map(|entry| entry.strip_prefix("auth-svc "))
        .unwrap_or_else(|| panic!("no auth-svc address in {grpc}"))
        .to_owned();
    let script = section(&banner, "call center");
    assert!(script.contains(&format!("G={gateway}")), "{script}");
    assert!(
        script.contains(&format!("VAXBOOK_AUTH_URL={auth_url}")),
        "{script}"
    );

    // The script as printed, then the operator token it exported, for the audit check below.
    let bin_dir = Path::new(VAXBOOK).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{script}\necho \"OPERATOR_TOKEN=$VAXBOOK_OPERATOR_TOKEN\""
        ))
        .env("PATH", path)
        .env_remove("VAXBOOK_AGENT_TOKEN")
        .env_remove("VAXBOOK_CALLER_GRANT")
        .env_remove("VAXBOOK_OPERATOR_TOKEN")
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("the walk-through needs bash, curl and sed");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");

    // 11. The agent logged in, and names its account.
    let agent_account = stdout
        .lines()
        .find_map(|line| line.strip_prefix("logged in as agent of dev-call-center (account "))
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("the agent did not log in: {stdout}\n{stderr}"))
        .to_owned();
    // 12. Its token on the citizens' API: 403 citizen-token-required.
    assert!(
        stdout.contains("HTTP/1.1 403") && stdout.contains("/problems/citizen-token-required"),
        "{stdout}"
    );
    // 13. The caller was verified by the code sent to their phone.
    assert!(stdout.contains("code sent to "), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("born 1950-03-03 verified"),
        "{stdout}\n{stderr}"
    );
    // 14. A 60+ slot, booked through the call center, listed, cancelled.
    assert!(
        stdout.contains("campaign covid19-2021-60-plus"),
        "{stdout}\n{stderr}"
    );
    let booked: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("booking ") && line.contains("channel call_center"))
        .collect();
    assert!(
        booked
            .iter()
            .any(|line| line.contains("status BOOKING_STATUS_CONFIRMED")),
        "{stdout}\n{stderr}"
    );
    assert!(
        booked
            .iter()
            .any(|line| line.contains("status BOOKING_STATUS_CANCELLED")),
        "{stdout}\n{stderr}"
    );
    // 15. The operator logged in too.
    assert!(
        stdout.contains("logged in as operator of dev-operations"),
        "{stdout}\n{stderr}"
    );
    let operator_token = stdout
        .lines()
        .find_map(|line| line.strip_prefix("OPERATOR_TOKEN="))
        .filter(|token| !token.is_empty())
        .unwrap_or_else(|| panic!("no operator token: {stdout}\n{stderr}"));

    // The refusal of step 12 is in auth-svc's audit trail, under the agent's account.
    let mut client = AuditServiceClient::new(
        tonic::transport::Channel::from_shared(auth_url)
            .unwrap()
            .connect_lazy(),
    );
    let mut request = tonic::Request::new(QueryAuditRequest {
        actor: agent_account.clone(),
        page_size: 500,
        ..Default::default()
    });
    request.metadata_mut().insert(
        STAFF_TOKEN_HEADER,
        format!("Bearer {operator_token}").parse().unwrap(),
    );
    let entries = client
        .query_audit(request)
        .await
        .unwrap()
        .into_inner()
        .entries;
    let refused: Vec<_> = entries
        .iter()
        .filter(|entry| entry.action == "citizen-api.refused")
        .collect();
    assert_eq!(refused.len(), 1, "{entries:?}");
    assert_eq!(refused[0].outcome, "citizen-token-required");
    assert_eq!(refused[0].role, "agent");
    assert!(refused[0].person_key.is_empty());
}

#[tokio::test]
async fn admin_commands_without_a_token_outside_a_dev_run_say_how_to_log_in() {
    // Not a dev run: a stand-in scheduling-svc that refuses every credential as a production
    // service refuses the dev key.
    use proto::scheduling::v1::scheduling_admin_service_server::{
        SchedulingAdminService, SchedulingAdminServiceServer,
    };
    use proto::scheduling::v1::*;

    struct Production;

    fn refuse() -> tonic::Status {
        platform::problem::Problem::new(
            platform::problem::ProblemKind::StaffTokenRequired,
            "there is no static operator key outside the dev run",
        )
        .to_status()
    }

    #[tonic::async_trait]
    impl SchedulingAdminService for Production {
        async fn upsert_campaign(
            &self,
            _: tonic::Request<UpsertCampaignRequest>,
        ) -> Result<tonic::Response<Campaign>, tonic::Status> {
            Err(refuse())
        }

        async fn replace_exclusions(
            &self,
            _: tonic::Request<tonic::Streaming<ReplaceExclusionsRequest>>,
        ) -> Result<tonic::Response<ReplaceExclusionsResponse>, tonic::Status> {
            Err(refuse())
        }
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SchedulingAdminServiceServer::new(Production))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let campaigns = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/campaigns/2021.yaml");
    let apply = |token: Option<&str>| {
        let mut command = Command::new(VAXBOOK);
        command
            .args(["campaigns", "apply", campaigns, "--scheduling-url", &url])
            .env_remove("VAXBOOK_OPERATOR_TOKEN")
            .env("RUST_BACKTRACE", "0");
        if let Some(token) = token {
            command.env("VAXBOOK_OPERATOR_TOKEN", token);
        }
        command.output()
    };

    let output = apply(None).await.unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("staff-token-required"), "{message}");
    assert!(message.contains("not a dev run"), "{message}");
    assert!(
        message.contains("vaxbook callcenter login --username")
            && message.contains("--operator-token")
            && message.contains("VAXBOOK_OPERATOR_TOKEN"),
        "{message}"
    );

    // A refused token gets the same way out.
    let output = apply(Some("an-expired-token")).await.unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("the operator token was refused"),
        "{message}"
    );
    assert!(message.contains("VAXBOOK_OPERATOR_TOKEN"), "{message}");
}
