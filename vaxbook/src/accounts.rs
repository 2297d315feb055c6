//! `vaxbook accounts list|disable|enable|unlock`: staff account administration over auth-svc's
//! `StaffAuthService` (ListAccounts, DisableAccount, EnableAccount, UnlockAccount), next to
//! `vaxbook accounts create`, which bootstraps an account in the database. An operator's token
//! administers every account, a supervisor's the agents of their own organisation; auth-svc
//! writes every call to its audit trail under the token's account, the target as
//! `account:<id>`.

use std::time::Duration;

use platform::operator::OperatorCredential;
use proto::auth::v1 as pb;
use proto::auth::v1::staff_auth_service_client::StaffAuthServiceClient;

use crate::credential::CredentialHelp;

/// Where the administration calls go and whose token they carry.
#[derive(clap::Args)]
pub struct AdminArgs {
    /// auth-svc's gRPC URL.
    #[arg(
        long,
        env = "VAXBOOK_AUTH_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub auth_url: String,
    /// An operator's token from `vaxbook callcenter login` (every account), sent as
    /// `authorization: Bearer`.
    #[arg(long, env = "VAXBOOK_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,
    /// A supervisor's token from `vaxbook callcenter login` (the agents of their own
    /// organisation), used when no operator token is given.
    #[arg(long, env = "VAXBOOK_AGENT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// What an administration command does to one account.
#[derive(Clone, Copy, Debug)]
pub enum Change {
    Disable,
    Enable,
    Unlock,
}

/// The credential of account administration: an operator's or a supervisor's token, never the
/// dev run's key.
const ADMIN: CredentialHelp = CredentialHelp {
    login: "log in as an operator or a supervisor: vaxbook callcenter login \
     --username <name>, and pass an operator's token as --operator-token or \
     VAXBOOK_OPERATOR_TOKEN, a supervisor's as --token or VAXBOOK_AGENT_TOKEN",
    dev_key_refused: None,
    token_refused: "the token was refused (it lasts 30 minutes): ",
    wrong_role: "",
};

impl AdminArgs {
    /// The operator's token if given (and not blank), else the supervisor's.
    fn credential(&self) -> anyhow::Result<OperatorCredential> {
        let given = [&self.operator_token, &self.token]
            .into_iter()
            .flatten()
            .map(|token| token.trim())
            .find(|token| !token.is_empty());
        ADMIN.credential(given)
    }

    fn client(&self) -> anyhow::Result<StaffAuthServiceClient<platform::grpc::GrpcChannel>> {
        Ok(StaffAuthServiceClient::new(platform::grpc::channel(
            &self.auth_url,
            Duration::from_secs(30),
        )?))
    }
}

/// One printed line per account.
pub fn account_line(account: &pb::StaffAccount) -> String {
    let instant = |at: Option<&prost_types::Timestamp>| {
        at.and_then(platform::clock::from_timestamp)
            .map(platform::clock::rfc3339_kst)
            .unwrap_or_else(|| "-".to_owned())
    };
    format!(
        "username {} id {} role {} org {} disabled {} locked-until {} failed-logins {} created {}",
        account.username,
        account.id,
        account.role,
        account.organisation,
        if account.disabled { "yes" } else { "no" },
        instant(account.locked_until.as_ref()),
        account.failed_attempts,
        instant(account.created_at.as_ref()),
    )
}

/// `vaxbook accounts list`: one line per account, then how many.
pub async fn list(args: AdminArgs, organisation: Option<String>) -> anyhow::Result<Vec<String>> {
    let credential = args.credential()?;
    let request = credential.request(pb::ListAccountsRequest {
        organisation: organisation.unwrap_or_default(),
    })?;
    let listed = args
        .client()?
        .list_accounts(request)
        .await
        .map_err(|status| ADMIN.refused(&status, &credential))?
        .into_inner();
    let mut lines: Vec<String> = listed.accounts.iter().map(account_line).collect();
    lines.push(format!("{} accounts", listed.accounts.len()));
    Ok(lines)
}

/// `vaxbook accounts disable|enable|unlock --username NAME`: what was done, then the account
/// as it is now.
pub async fn change(
    args: AdminArgs,
    change: Change,
    username: String,
) -> anyhow::Result<Vec<String>> {
    let credential = args.credential()?;
    let mut client = args.client()?;
    let (done, account) = match change {
        Change::Disable => {
            let request = credential.request(pb::DisableAccountRequest { username })?;
            let answer = client.disable_account(request).await;
            ("disabled", answer.map(|a| a.into_inner().account))
        }
        Change::Enable => {
            let request = credential.request(pb::EnableAccountRequest { username })?;
            let answer = client.enable_account(request).await;
            ("enabled", answer.map(|a| a.into_inner().account))
        }
        Change::Unlock => {
            let request = credential.request(pb::UnlockAccountRequest { username })?;
            let answer = client.unlock_account(request).await;
            ("unlocked", answer.map(|a| a.into_inner().account))
        }
    };
    let account = account
        .map_err(|status| ADMIN.refused(&status, &credential))?
        .ok_or_else(|| anyhow::anyhow!("auth-svc answered without the account"))?;
    Ok(vec![
        format!("account {} {done}", account.username),
        account_line(&account),
    ])
}
