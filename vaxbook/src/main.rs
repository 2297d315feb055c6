//! The vaxbook command line: `vaxbook dev` runs every service in one process on the embedded
//! default, `vaxbook migrate` applies the database migrations, `vaxbook seed-demo` loads the
//! 2021 demo round into running services, `vaxbook campaigns apply` and `vaxbook exclusions
//! import` are the operators' data loads, `vaxbook healthcheck` is the containers' health probe;
//! `vaxbook accounts`, `vaxbook audit` and `vaxbook callcenter` serve the call-center channel.

mod accounts;
mod callcenter;
mod credential;
mod demo;
mod dev;
mod operator;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "vaxbook",
    version,
    about = "vaxbook: national vaccination appointment system"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in one process (in-process stores unless DATABASE_URL / REDIS_URL are
    /// set), seeded with the 2021 18–49 demo round, with the dev-only endpoints.
    Dev(dev::DevArgs),
    /// Apply booking-svc's and scheduling-svc's database migrations.
    Migrate {
        /// Database URL (default: DATABASE_URL, else the local database).
        #[arg(long, env = "DATABASE_URL", default_value = platform::pg::DEFAULT_DATABASE_URL)]
        database_url: String,
    },
    /// Print a new Ed25519 signing key for auth-svc (PKCS#8 PEM), for `AUTH_SIGNING_KEY_FILE`:
    /// every replica signs with the same key; rotate by moving the old file to
    /// `AUTH_RETIRED_SIGNING_KEY_FILES` until the tokens it signed have expired.
    Keygen,
    /// Exit 0 when the service answers healthy: `--grpc ADDR` asks grpc.health.v1, `--http URL`
    /// GETs a URL (the gateway's /readyz); without either, `VAXBOOK_HEALTHCHECK` names the target
    /// (the container images' HEALTHCHECK).
    Healthcheck {
        #[arg(long, conflicts_with = "http")]
        grpc: Option<String>,
        #[arg(long)]
        http: Option<String>,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 2)]
        timeout: u64,
    },
    /// Load the 2021 demo round (campaign, centers, slots) into running services (an operator
    /// token, see --operator-token).
    SeedDemo {
        #[arg(
            long,
            env = "VAXBOOK_SCHEDULING_URL",
            default_value = "http://127.0.0.1:50053"
        )]
        scheduling_url: String,
        #[arg(
            long,
            env = "VAXBOOK_BOOKING_URL",
            default_value = "http://127.0.0.1:50054"
        )]
        booking_url: String,
        #[command(flatten)]
        operator_args: OperatorArgs,
    },
    /// Campaigns as data (deploy/campaigns/*.yaml).
    Campaigns {
        #[command(subcommand)]
        command: CampaignsCommand,
    },
    /// Priority-target exclusion lists (R7).
    Exclusions {
        #[command(subcommand)]
        command: ExclusionsCommand,
    },
    /// Call-center staff accounts (R9): `create` in auth-svc's database (the bootstrap),
    /// `list`, `disable`, `enable`, `unlock` through running auth-svc with an operator's or a
    /// supervisor's token, `totp` to compute a code.
    Accounts {
        #[command(subcommand)]
        command: callcenter::AccountsCommand,
    },
    /// The hash-chained audit trails (R9).
    Audit {
        #[command(subcommand)]
        command: callcenter::AuditCommand,
    },
    /// The reference call-center client of the staff gRPC APIs (R9).
    Callcenter(callcenter::CallCenterArgs),
}

/// The operator credential of the admin commands.
#[derive(clap::Args)]
struct OperatorArgs {
    /// The operator token `vaxbook callcenter login` prints for an account of role operator
    /// (valid 30 minutes), sent as `authorization: Bearer`. Without it the dev run's key is
    /// sent, which only `vaxbook dev` accepts.
    #[arg(long, env = "VAXBOOK_OPERATOR_TOKEN", hide_env_values = true)]
    operator_token: Option<String>,
}

impl OperatorArgs {
    fn credential(self) -> anyhow::Result<platform::operator::OperatorCredential> {
        operator::credential(self.operator_token)
    }
}

#[derive(Subcommand)]
enum CampaignsCommand {
    /// Check a campaign file and create or replace each of its campaigns in scheduling-svc
    /// (every replica answers with it within its cache refresh).
    Apply {
        /// The campaign file (YAML), e.g. deploy/campaigns/2021.yaml.
        file: std::path::PathBuf,
        #[arg(
            long,
            env = "VAXBOOK_SCHEDULING_URL",
            default_value = "http://127.0.0.1:50053"
        )]
        scheduling_url: String,
        #[command(flatten)]
        operator_args: OperatorArgs,
    },
}

#[derive(Subcommand)]
enum ExclusionsCommand {
    /// Replace a campaign's exclusion list with the people of FILE (one RRN per line): the RRNs
    /// are turned into person keys by auth-svc, scheduling-svc keeps only the keys. A malformed
    /// line stops the import before anything is replaced.
    Import {
        #[arg(long)]
        campaign: String,
        file: std::path::PathBuf,
        #[arg(
            long,
            env = "VAXBOOK_AUTH_URL",
            default_value = "http://127.0.0.1:50051"
        )]
        auth_url: String,
        #[arg(
            long,
            env = "VAXBOOK_SCHEDULING_URL",
            default_value = "http://127.0.0.1:50053"
        )]
        scheduling_url: String,
        #[command(flatten)]
        operator_args: OperatorArgs,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Dev(args) => dev::run(args).await,
        Command::Migrate { database_url } => {
            let telemetry = platform::telemetry::init("vaxbook-migrate")?;
            scheduling_svc::migrate(&database_url).await?;
            booking_svc::migrate(&database_url).await?;
            tracing::info!("migrations applied");
            telemetry.shutdown().await;
            Ok(())
        }
        Command::Accounts { command } => {
            for line in callcenter::accounts(command).await? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Audit { command } => {
            println!("{}", callcenter::audit(command).await?);
            Ok(())
        }
        Command::Callcenter(args) => {
            for line in callcenter::callcenter(args).await? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Keygen => {
            print!("{}", auth_svc::tokens::generate_pem()?);
            Ok(())
        }
        Command::Healthcheck {
            grpc,
            http,
            timeout,
        } => {
            let target = match (grpc, http) {
                (Some(addr), _) => format!("grpc://{addr}"),
                (None, Some(url)) => url,
                (None, None) => std::env::var("VAXBOOK_HEALTHCHECK").map_err(|_| {
                    anyhow::anyhow!("give --grpc ADDR or --http URL, or set VAXBOOK_HEALTHCHECK")
                })?,
            };
            platform::probe::check(&target, std::time::Duration::from_secs(timeout))
                .await
                .map_err(|reason| anyhow::anyhow!("unhealthy: {reason}"))
        }
        Command::SeedDemo {
            scheduling_url,
            booking_url,
            operator_args,
        } => {
            let credential = operator_args.credential()?;
            let telemetry = platform::telemetry::init("vaxbook-seed")?;
            let summary = demo::seed(&scheduling_url, &booking_url, &credential).await?;
            println!("{summary}");
            telemetry.shutdown().await;
            Ok(())
        }
        Command::Campaigns {
            command:
                CampaignsCommand::Apply {
                    file,
                    scheduling_url,
                    operator_args,
                },
        } => {
            let credential = operator_args.credential()?;
            let text = std::fs::read_to_string(&file)
                .map_err(|err| anyhow::anyhow!("reading {}: {err}", file.display()))?;
            for line in operator::apply_campaigns(&text, &scheduling_url, &credential).await? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Exclusions {
            command:
                ExclusionsCommand::Import {
                    campaign,
                    file,
                    auth_url,
                    scheduling_url,
                    operator_args,
                },
        } => {
            let credential = operator_args.credential()?;
            let report = operator::import_exclusions(
                &file,
                &campaign,
                &auth_url,
                &scheduling_url,
                &credential,
            )
            .await?;
            println!(
                "campaign {campaign}: exclusion list version {} with {} people ({} lines) in {:.1} s",
                report.list_version,
                report.entries,
                report.lines,
                report.elapsed.as_secs_f64()
            );
            Ok(())
        }
    }
}
