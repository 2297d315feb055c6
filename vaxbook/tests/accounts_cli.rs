//! `vaxbook accounts list|disable|enable|unlock` against auth-svc served on real PostgreSQL,
//! with accounts made by `vaxbook accounts create`: the operator lists every account (a locked
//! one with its lockout), disables and enables; a supervisor (token in VAXBOOK_AGENT_TOKEN)
//! unlocks an agent of their organisation, who then logs in; the operator's own account, an
//! agent's token and no token at all are refused with what to do.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use auth_svc::accounts::{MAX_FAILURES, credentials};
use platform::dev::DevHooks;
use platform::problem::{Problem, ProblemKind};
use proto::auth::v1::LoginRequest;
use proto::auth::v1::staff_auth_service_client::StaffAuthServiceClient;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const PASSWORD: &str = "a long staff password";

/// `vaxbook ARGS` with the given token variables and nothing else of the caller's environment
/// that names a token or an auth-svc.
async fn vaxbook(args: &[&str], env: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vaxbook"));
        command
            .args(&args)
            .env("RUST_BACKTRACE", "0")
            .env_remove("VAXBOOK_OPERATOR_TOKEN")
            .env_remove("VAXBOOK_AGENT_TOKEN")
            .env_remove("VAXBOOK_AUTH_URL")
            .env_remove("AUTH_DATABASE_URL")
            .envs(env);
        command.output()
    })
    .await
    .unwrap()
    .unwrap()
}

fn stdout(output: &Output) -> Vec<String> {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn stderr(output: &Output) -> String {
    assert!(!output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `vaxbook accounts create`; the TOTP secret it prints.
async fn create(database_url: &str, name: &str, org: &str, role: &str) -> String {
    let printed = stdout(
        &vaxbook(
            &[
                "accounts",
                "create",
                "--org",
                org,
                "--role",
                role,
                "--name",
                name,
                "--password",
                PASSWORD,
                "--database-url",
                database_url,
            ],
            &[],
        )
        .await,
    );
    printed[2].clone()
}

struct Auth {
    channel: Channel,
    url: String,
}

impl Auth {
    async fn login(&self, name: &str, password: &str, secret: &str) -> Result<String, Problem> {
        let unix = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
        let code = credentials::totp_code(secret, name, unix).unwrap();
        StaffAuthServiceClient::new(self.channel.clone())
            .login(LoginRequest {
                username: name.to_owned(),
                password: password.to_owned(),
                totp_code: code,
            })
            .await
            .map(|answer| answer.into_inner().token)
            .map_err(|status| Problem::from_status(&status))
    }

    async fn admin(&self, args: &[&str], token_variable: &str, token: &str) -> Output {
        let mut all = vec!["accounts"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--auth-url", &self.url]);
        vaxbook(&all, &[(token_variable, token)]).await
    }
}

#[tokio::test]
async fn operators_and_supervisors_administer_accounts_from_the_command_line() {
    let database_url = platform::pg::create_test_database("accounts_cli")
        .await
        .unwrap();
    let operator_secret = create(
        &database_url,
        "operator.kim",
        "national-operations",
        "operator",
    )
    .await;
    let supervisor_secret = create(&database_url, "super.han", "seoul-gangnam", "supervisor").await;
    let agent_secret = create(&database_url, "agent.park", "seoul-gangnam", "agent").await;

    // auth-svc on that database, as the dev run configures it otherwise.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hooks = DevHooks::new(chrono::Utc::now());
    let mut config = auth_svc::Config::local_dev(addr, &hooks);
    config.staff_database = Some(platform::config::ConnectionUrl::new(database_url.clone()));
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(auth_svc::serve(config, listener, shutdown.clone()));
    let url = format!("http://{addr}");
    let auth = Auth {
        channel: Channel::from_shared(url.clone()).unwrap().connect_lazy(),
        url,
    };
    let operator = auth
        .login("operator.kim", PASSWORD, &operator_secret)
        .await
        .unwrap();
    let supervisor = auth
        .login("super.han", PASSWORD, &supervisor_secret)
        .await
        .unwrap();
    let agent = auth
        .login("agent.park", PASSWORD, &agent_secret)
        .await
        .unwrap();
    for _ in 0..MAX_FAILURES {
        let refused = auth
            .login("agent.park", "not the password", &agent_secret)
            .await
            .unwrap_err();
        assert_eq!(refused.kind, ProblemKind::InvalidCredentials);
    }
    let locked = auth
        .login("agent.park", PASSWORD, &agent_secret)
        .await
        .unwrap_err();
    assert_eq!(locked.kind, ProblemKind::AccountLocked);

    // The operator lists every account; the locked one says until when.
    let listed = stdout(
        &auth
            .admin(&["list"], "VAXBOOK_OPERATOR_TOKEN", &operator)
            .await,
    );
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(
        listed[0].starts_with("username operator.kim "),
        "{listed:?}"
    );
    assert!(listed[1].starts_with("username agent.park "), "{listed:?}");
    assert!(listed[1].contains(" role agent org seoul-gangnam disabled no locked-until 20"));
    assert!(
        listed[2].contains(" locked-until - failed-logins 0 "),
        "{listed:?}"
    );
    assert_eq!(listed[3], "3 accounts");
    assert!(!listed.join("\n").contains(&agent_secret));

    // The supervisor unlocks their agent, who logs in at once.
    let unlocked = stdout(
        &auth
            .admin(
                &["unlock", "--username", "agent.park"],
                "VAXBOOK_AGENT_TOKEN",
                &supervisor,
            )
            .await,
    );
    assert_eq!(unlocked[0], "account agent.park unlocked");
    assert!(
        unlocked[1].contains(" locked-until - failed-logins 0 "),
        "{unlocked:?}"
    );
    auth.login("agent.park", PASSWORD, &agent_secret)
        .await
        .unwrap();
    // Their organisation's accounts only.
    let own = stdout(
        &auth
            .admin(&["list"], "VAXBOOK_AGENT_TOKEN", &supervisor)
            .await,
    );
    assert_eq!(own.last().map(String::as_str), Some("2 accounts"));

    // The operator disables the agent (account-disabled at login) and enables them again.
    let disabled = stdout(
        &auth
            .admin(
                &["disable", "--username", "agent.park"],
                "VAXBOOK_OPERATOR_TOKEN",
                &operator,
            )
            .await,
    );
    assert_eq!(disabled[0], "account agent.park disabled");
    assert!(disabled[1].contains(" disabled yes "), "{disabled:?}");
    let refused = auth
        .login("agent.park", PASSWORD, &agent_secret)
        .await
        .unwrap_err();
    assert_eq!(refused.kind, ProblemKind::AccountDisabled);
    let enabled = stdout(
        &auth
            .admin(
                &["enable", "--username", "agent.park"],
                "VAXBOOK_OPERATOR_TOKEN",
                &operator,
            )
            .await,
    );
    assert_eq!(enabled[0], "account agent.park enabled");
    auth.login("agent.park", PASSWORD, &agent_secret)
        .await
        .unwrap();

    // Refusals say why, and how to log in when the token is the reason.
    let own_account = stderr(
        &auth
            .admin(
                &["disable", "--username", "operator.kim"],
                "VAXBOOK_OPERATOR_TOKEN",
                &operator,
            )
            .await,
    );
    assert!(
        own_account.contains("own account") && own_account.contains("invalid-request"),
        "{own_account}"
    );
    let by_agent = stderr(&auth.admin(&["list"], "VAXBOOK_AGENT_TOKEN", &agent).await);
    assert!(
        by_agent.contains("role-not-allowed") && by_agent.contains("callcenter login"),
        "{by_agent}"
    );
    let no_token = stderr(&auth.admin(&["list"], "VAXBOOK_AGENT_TOKEN", "").await);
    assert!(
        no_token.contains("no token") && no_token.contains("callcenter login"),
        "{no_token}"
    );

    shutdown.cancel();
    server.await.unwrap().unwrap();
}
