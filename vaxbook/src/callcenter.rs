//! The call-center channel on the command line (R9): `vaxbook accounts create` bootstraps a
//! staff account in auth-svc's database (the TOTP secret printed once), `vaxbook accounts
//! list|disable|enable|unlock` administer accounts over gRPC ([`crate::accounts`]),
//! `vaxbook audit query`
//! pages through a running service's audit trail over gRPC, `vaxbook audit verify` checks a
//! service's hash-chained trail (over gRPC or in its database) and names the first altered
//! entry, and
//! `vaxbook callcenter …` is the reference client of the staff gRPC APIs — login, verifying the
//! caller, slots, book, cancel, bookings — the commands an integrator reads to learn them.
//! Names, RRNs and phone numbers typed here go to auth-svc only and are never printed back.

use std::io::BufRead as _;

use clap::Subcommand;
use platform::audit::{AuditLog as _, AuditQuery, ChainVerifier, MAX_PAGE, PgAuditLog};
use platform::operator::OperatorCredential;
use platform::staff::{CALLER_GRANT_HEADER, STAFF_TOKEN_HEADER, StaffRole};
use proto::audit::v1 as audit_pb;
use proto::audit::v1::audit_service_client::AuditServiceClient;
use proto::auth::v1 as auth_pb;
use proto::auth::v1::staff_auth_service_client::StaffAuthServiceClient;
use proto::booking::v1 as pb;
use proto::booking::v1::staff_booking_service_client::StaffBookingServiceClient;
use tonic::Request;
use tonic::transport::Channel;

use crate::credential::CredentialHelp;

#[derive(Subcommand)]
pub enum AccountsCommand {
    /// Create an agent, supervisor or operator account and print its TOTP secret once (as text
    /// and as an otpauth:// URI for an authenticator app). The password is read from the first
    /// line of standard input unless --password is given.
    Create {
        /// Organisation, e.g. national-call-center or seoul-gangnam.
        #[arg(long)]
        org: String,
        /// agent, supervisor or operator.
        #[arg(long)]
        role: String,
        /// Login name (3 to 64 of a-z, 0-9, '.', '-', '_').
        #[arg(long)]
        name: String,
        #[arg(long)]
        password: Option<String>,
        /// auth-svc's database.
        #[arg(long, env = "AUTH_DATABASE_URL")]
        database_url: String,
    },
    /// Print the current TOTP code of a base32 secret (the dev run's agent, tests, scripts;
    /// staff use their authenticator app).
    Totp {
        #[arg(long)]
        secret: String,
        /// The instant (RFC 3339) to compute it for instead of now: the dev run checks codes
        /// on its own clock (`curl $G/dev/clock`).
        #[arg(long)]
        at: Option<String>,
    },
    /// List the staff accounts through auth-svc (never a password hash or TOTP secret): an
    /// operator's token lists every organisation's (or --org's), a supervisor's their own
    /// organisation's. One line per account.
    List {
        /// Only this organisation's accounts.
        #[arg(long)]
        org: Option<String>,
        #[command(flatten)]
        admin: crate::accounts::AdminArgs,
    },
    /// Disable an account through auth-svc: its logins are refused (account-disabled) until it
    /// is enabled; tokens it already holds run out within 30 minutes. An operator may disable
    /// any account but their own, a supervisor the agents of their own organisation.
    Disable {
        /// The account's login name.
        #[arg(long)]
        username: String,
        #[command(flatten)]
        admin: crate::accounts::AdminArgs,
    },
    /// Enable a disabled account through auth-svc.
    Enable {
        /// The account's login name.
        #[arg(long)]
        username: String,
        #[command(flatten)]
        admin: crate::accounts::AdminArgs,
    },
    /// Unlock an account locked after repeated failed logins (account-locked) now, instead of
    /// when the lockout runs out; its failed logins are forgotten.
    Unlock {
        /// The account's login name.
        #[arg(long)]
        username: String,
        #[command(flatten)]
        admin: crate::accounts::AdminArgs,
    },
}

/// Which trail of a database to verify: each service's own, named in its rows (booking-svc's and
/// scheduling-svc's share a database), or the rows written before trails had names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogName {
    /// auth-svc's trail (AUTH_DATABASE_URL).
    Auth,
    /// booking-svc's trail (DATABASE_URL).
    Booking,
    /// scheduling-svc's trail (DATABASE_URL).
    Scheduling,
    /// The entries written before trails had names, in whichever database they are (give
    /// --database-url).
    Legacy,
}

impl LogName {
    /// The trail's name in the `audit_log` table.
    pub fn trail(self) -> &'static str {
        match self {
            Self::Auth => platform::audit::AUTH_TRAIL,
            Self::Booking => platform::audit::BOOKING_TRAIL,
            Self::Scheduling => platform::audit::SCHEDULING_TRAIL,
            Self::Legacy => platform::audit::LEGACY_TRAIL,
        }
    }

    /// The variable naming the trail's database by default.
    fn database_variable(self) -> Option<&'static str> {
        match self {
            Self::Auth => Some("AUTH_DATABASE_URL"),
            Self::Booking | Self::Scheduling => Some("DATABASE_URL"),
            Self::Legacy => None,
        }
    }
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Page through a running service's audit trail over gRPC (vaxbook.audit.v1.AuditService)
    /// and print one line per entry, oldest first; all given filters combine. Entries name
    /// people by person key only. An operator reads every entry, a supervisor their
    /// organisation's; the reading itself is written to the trail (audit.query).
    Query {
        /// The service's gRPC URL: auth-svc http://127.0.0.1:50051, session-svc :50052,
        /// scheduling-svc :50053, booking-svc :50054 in the dev run.
        #[arg(long)]
        url: String,
        /// Only entries for this person key.
        #[arg(long)]
        person_key: Option<String>,
        /// Only entries of this actor (a staff account id, dev-operator or unknown).
        #[arg(long)]
        actor: Option<String>,
        /// Only entries at or after this instant (RFC 3339, e.g. 2021-08-09T20:00:00+09:00).
        #[arg(long)]
        from: Option<String>,
        /// Only entries before this instant (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Entries per call (1 to 500); every page is read.
        #[arg(long, default_value_t = 100)]
        page_size: u32,
        #[command(flatten)]
        credential: AuditCredential,
    },
    /// Check the hash chain of an audit trail from its first entry; exits non-zero naming the
    /// first entry that was altered, deleted, rewritten or moved from another trail. With --url
    /// the running service checks its own trail (AuditService.VerifyChain, an operator's call);
    /// without, the trail named by --log is read from its PostgreSQL database.
    Verify {
        /// The service's gRPC URL (see `audit query --url`): ask the service instead of its
        /// database.
        #[arg(long, conflicts_with_all = ["database_url", "log"])]
        url: Option<String>,
        /// The database holding the trail (default: AUTH_DATABASE_URL for --log auth,
        /// DATABASE_URL for --log booking and --log scheduling; required for --log legacy).
        #[arg(long)]
        database_url: Option<String>,
        /// Which trail of the database to check: auth (the default), booking, scheduling, or
        /// legacy (the entries from before trails had names). Only that trail's entries are
        /// read, so booking-svc's and scheduling-svc's trails in one database are checked apart.
        #[arg(long, value_enum)]
        log: Option<LogName>,
        #[command(flatten)]
        credential: AuditCredential,
    },
}

/// The credential of `vaxbook audit` calls over gRPC.
#[derive(clap::Args)]
pub struct AuditCredential {
    /// An operator's (or for `audit query` a supervisor's) token from `vaxbook callcenter
    /// login`, sent as `authorization: Bearer`. Without it the dev run's key is sent, which
    /// only `vaxbook dev` accepts.
    #[arg(long, env = "VAXBOOK_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,
}

impl AuditCredential {
    fn credential(&self) -> anyhow::Result<OperatorCredential> {
        AUDIT.credential(self.operator_token.as_deref())
    }
}

/// The credential of `vaxbook audit`: a token that reads audit trails, else the dev run's key.
const AUDIT: CredentialHelp = CredentialHelp {
    login: "log in as an operator (or a supervisor, for queries): vaxbook callcenter login \
     --username <name>, and pass the token it prints as --operator-token or \
     VAXBOOK_OPERATOR_TOKEN",
    dev_key_refused: Some("only a dev run takes the dev-run key: "),
    token_refused: "the token was refused (it lasts 30 minutes): ",
    wrong_role: "",
};

#[derive(Subcommand)]
pub enum CallCenterCommand {
    /// Log in with password and TOTP code; prints the token on the last line. An agent's or
    /// supervisor's token is for the other `callcenter` commands (export it as
    /// VAXBOOK_AGENT_TOKEN); an operator's is for the admin commands (`seed-demo`,
    /// `campaigns apply`, `exclusions import`: export it as VAXBOOK_OPERATOR_TOKEN).
    Login {
        #[arg(long)]
        username: String,
        /// The password; read from standard input when absent.
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        totp: String,
    },
    /// Check the caller at the carriers' agency and send them a one-time code by SMS; prints
    /// the verification id.
    VerifyCaller {
        #[arg(long)]
        name: String,
        #[arg(long)]
        rrn: String,
        /// skt, kt, lgu or mvno.
        #[arg(long)]
        carrier: String,
        #[arg(long)]
        phone: String,
    },
    /// Take the code the caller reads out; prints the caller grant (export it as
    /// VAXBOOK_CALLER_GRANT).
    ConfirmCaller {
        #[arg(long)]
        verification_id: String,
        #[arg(long)]
        otp: String,
    },
    /// The centers, or with --center that center's slots and the places released.
    Slots {
        #[arg(long)]
        center: Option<String>,
        /// YYYY-MM-DD, inclusive.
        #[arg(long, default_value = "")]
        from: String,
        #[arg(long, default_value = "")]
        to: String,
    },
    /// Book a slot for the verified caller.
    Book {
        #[arg(long)]
        slot: String,
        #[arg(long, default_value = "")]
        idempotency_key: String,
    },
    /// Cancel one of the verified caller's bookings.
    Cancel {
        #[arg(long)]
        booking: String,
    },
    /// The verified caller's bookings.
    Bookings,
}

/// Where `vaxbook callcenter` talks to and with which credentials.
#[derive(clap::Args)]
pub struct CallCenterArgs {
    #[arg(
        long,
        env = "VAXBOOK_AUTH_URL",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub auth_url: String,
    #[arg(
        long,
        env = "VAXBOOK_BOOKING_URL",
        default_value = "http://127.0.0.1:50054",
        global = true
    )]
    pub booking_url: String,
    /// The agent token of `vaxbook callcenter login`.
    #[arg(
        long,
        env = "VAXBOOK_AGENT_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// The caller grant of `vaxbook callcenter confirm-caller`.
    #[arg(
        long,
        env = "VAXBOOK_CALLER_GRANT",
        global = true,
        hide_env_values = true
    )]
    pub caller_grant: Option<String>,
    #[command(subcommand)]
    pub command: CallCenterCommand,
}

fn read_password(given: Option<String>) -> anyhow::Result<String> {
    if let Some(password) = given {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(
        !password.is_empty(),
        "give the password on standard input or with --password"
    );
    Ok(password)
}

/// `vaxbook accounts …`: the lines to print.
pub async fn accounts(command: AccountsCommand) -> anyhow::Result<Vec<String>> {
    let (org, role, name, password, database_url) = match command {
        AccountsCommand::Create {
            org,
            role,
            name,
            password,
            database_url,
        } => (org, role, name, password, database_url),
        AccountsCommand::Totp { secret, at } => {
            let at = match at {
                Some(raw) => chrono::DateTime::parse_from_rfc3339(&raw)
                    .map_err(|err| anyhow::anyhow!("--at must be RFC 3339: {err}"))?
                    .with_timezone(&chrono::Utc),
                None => chrono::Utc::now(),
            };
            let unix = u64::try_from(at.timestamp())?;
            return Ok(vec![auth_svc::accounts::credentials::totp_code(
                &secret, "totp", unix,
            )?]);
        }
        AccountsCommand::List { org, admin } => return crate::accounts::list(admin, org).await,
        AccountsCommand::Disable { username, admin } => {
            return crate::accounts::change(admin, crate::accounts::Change::Disable, username)
                .await;
        }
        AccountsCommand::Enable { username, admin } => {
            return crate::accounts::change(admin, crate::accounts::Change::Enable, username).await;
        }
        AccountsCommand::Unlock { username, admin } => {
            return crate::accounts::change(admin, crate::accounts::Change::Unlock, username).await;
        }
    };
    let role = StaffRole::parse(&role)
        .ok_or_else(|| anyhow::anyhow!("--role must be agent, supervisor or operator"))?;
    let password = read_password(password)?;
    let pool = platform::pg::pool(&database_url, 2)?;
    let store = auth_svc::accounts::store::PgAccountStore::migrate(&database_url, pool).await?;
    let created =
        auth_svc::accounts::create_account(&store, &name, &org, role, password, chrono::Utc::now())
            .await?;
    Ok(vec![
        format!(
            "account {} ({}, {} of {}) created",
            created.account.id,
            created.account.username,
            role.as_str(),
            created.account.organisation
        ),
        "TOTP secret (shown once; add it to the authenticator app now):".to_owned(),
        created.totp_secret,
        created.otpauth_uri,
    ])
}

fn instant(raw: Option<String>, flag: &str) -> anyhow::Result<Option<prost_types::Timestamp>> {
    raw.map(|raw| {
        chrono::DateTime::parse_from_rfc3339(&raw)
            .map(|at| platform::clock::to_timestamp(at.with_timezone(&chrono::Utc)))
            .map_err(|err| anyhow::anyhow!("--{flag} must be RFC 3339: {err}"))
    })
    .transpose()
}

/// One printed line of an entry.
fn audit_line(entry: &audit_pb::AuditEntry) -> String {
    let at = entry
        .at
        .as_ref()
        .and_then(platform::clock::from_timestamp)
        .map(platform::clock::rfc3339_kst)
        .unwrap_or_default();
    let or_dash = |text: &str| {
        if text.is_empty() {
            "-".to_owned()
        } else {
            text.to_owned()
        }
    };
    format!(
        "seq {} at {at} actor {} role {} org {} action {} person {} outcome {} hash {}",
        entry.seq,
        entry.actor,
        or_dash(&entry.role),
        or_dash(&entry.organisation),
        entry.action,
        or_dash(&entry.person_key),
        entry.outcome,
        entry.hash.get(..16).unwrap_or(&entry.hash),
    )
}

fn audit_client(url: &str) -> anyhow::Result<AuditServiceClient<platform::grpc::GrpcChannel>> {
    Ok(AuditServiceClient::new(platform::grpc::channel(
        url,
        std::time::Duration::from_secs(30),
    )?))
}

/// `vaxbook audit query`: prints every matching entry as it arrives, up to the trail as it
/// stood at the first page (each page read writes an `audit.query` entry of its own, which a
/// reading to the end would otherwise chase); the summary to print last.
async fn audit_query(
    url: &str,
    filter: audit_pb::QueryAuditRequest,
    credential: &OperatorCredential,
) -> anyhow::Result<String> {
    use std::io::Write as _;
    let mut client = audit_client(url)?;
    let mut request = filter;
    let mut printed: u64 = 0;
    let mut stop_at: Option<i64> = None;
    loop {
        let page = client
            .query_audit(credential.request(request.clone())?)
            .await
            .map_err(|status| AUDIT.refused(&status, credential))?
            .into_inner();
        anyhow::ensure!(
            page.audit_seq > 0,
            "the service did not say which entry recorded this query"
        );
        let stop_at = *stop_at.get_or_insert(page.audit_seq);
        let mut out = std::io::stdout().lock();
        for entry in page.entries.iter().filter(|entry| entry.seq < stop_at) {
            writeln!(out, "{}", audit_line(entry))?;
            printed += 1;
        }
        out.flush()?;
        if page.next_after_seq == 0 || page.next_after_seq + 1 >= stop_at {
            return Ok(format!(
                "{printed} entries (the trail up to entry {})",
                stop_at - 1
            ));
        }
        anyhow::ensure!(
            page.next_after_seq > request.after_seq,
            "the service answered a page cursor that does not move on"
        );
        request.after_seq = page.next_after_seq;
    }
}

/// `vaxbook audit verify --url`: the service's own check of its trail.
async fn audit_verify_remote(url: &str, credential: &OperatorCredential) -> anyhow::Result<String> {
    let report = audit_client(url)?
        .verify_chain(credential.request(audit_pb::VerifyChainRequest {})?)
        .await
        .map_err(|status| AUDIT.refused(&status, credential))?
        .into_inner();
    anyhow::ensure!(
        report.ok,
        "the audit trail is broken at entry {} ({}): {} ({} entries intact before it)",
        report.first_broken_seq,
        report.break_kind,
        report.detail,
        report.checked
    );
    Ok(format!(
        "audit trail intact: {} entries chained from the first",
        report.checked
    ))
}

/// `vaxbook audit …`: `query` prints the entries itself and answers a summary; `verify`
/// answers how many entries hold together, or fails on the first break.
pub async fn audit(command: AuditCommand) -> anyhow::Result<String> {
    let (database_url, log) = match command {
        AuditCommand::Query {
            url,
            person_key,
            actor,
            from,
            until,
            page_size,
            credential,
        } => {
            let filter = audit_pb::QueryAuditRequest {
                person_key: person_key.unwrap_or_default(),
                actor: actor.unwrap_or_default(),
                from: instant(from, "from")?,
                until: instant(until, "until")?,
                after_seq: 0,
                page_size: page_size.clamp(1, 500),
            };
            return audit_query(&url, filter, &credential.credential()?).await;
        }
        AuditCommand::Verify {
            url: Some(url),
            credential,
            ..
        } => return audit_verify_remote(&url, &credential.credential()?).await,
        AuditCommand::Verify {
            url: None,
            database_url,
            log,
            ..
        } => (database_url, log.unwrap_or(LogName::Auth)),
    };
    let url = match (database_url, log.database_variable()) {
        (Some(url), _) => url,
        (None, Some(variable)) => std::env::var(variable)
            .map_err(|_| anyhow::anyhow!("give --database-url or set {variable}"))?,
        (None, None) => anyhow::bail!("give --database-url for --log {}", log.trail()),
    };
    let trail = PgAuditLog::new(platform::pg::pool(&url, 2)?, log.trail());
    let mut verifier = ChainVerifier::of(trail.trail());
    let mut after_seq = 0;
    loop {
        let page = trail
            .query(&AuditQuery {
                after_seq,
                limit: MAX_PAGE,
                ..AuditQuery::default()
            })
            .await
            .map_err(|err| {
                anyhow::anyhow!(
                    "reading the audit trail (has the service run on this database?): {err:#}"
                )
            })?;
        for entry in &page {
            verifier.check(entry).map_err(|broken| {
                anyhow::anyhow!(
                    "the {} audit trail is broken at entry {}: {broken}",
                    log.trail(),
                    broken.seq()
                )
            })?;
        }
        match page.last() {
            Some(last) if page.len() == MAX_PAGE => after_seq = last.seq,
            _ => break,
        }
    }
    Ok(format!(
        "audit trail intact: {} entries chained from the first (trail {})",
        verifier.checked(),
        log.trail()
    ))
}

fn channel(url: &str) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(url.to_owned())?.connect_lazy())
}

fn staff_request<T>(
    message: T,
    token: Option<&str>,
    caller_grant: Option<&str>,
) -> anyhow::Result<Request<T>> {
    let token = token
        .ok_or_else(|| anyhow::anyhow!("log in first: give --token or set VAXBOOK_AGENT_TOKEN"))?;
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(STAFF_TOKEN_HEADER, format!("Bearer {token}").parse()?);
    if let Some(grant) = caller_grant {
        request
            .metadata_mut()
            .insert(CALLER_GRANT_HEADER, grant.parse()?);
    }
    Ok(request)
}

fn refused(status: tonic::Status) -> anyhow::Error {
    let problem = platform::problem::Problem::from_status(&status);
    match problem.extra.get("reason") {
        Some(reason) => anyhow::anyhow!("{} ({reason}): {}", problem.kind.name(), problem.detail),
        None => anyhow::anyhow!("{}: {}", problem.kind.name(), problem.detail),
    }
}

fn booking_line(booking: &pb::Booking) -> String {
    let slot = booking.slot.as_ref();
    format!(
        "booking {} slot {} on {} status {} cancellable until {} channel {}",
        booking.id,
        slot.map(|s| s.id.as_str()).unwrap_or(""),
        slot.map(|s| s.date.as_str()).unwrap_or(""),
        pb::BookingStatus::try_from(booking.status)
            .map(|s| s.as_str_name())
            .unwrap_or("unknown"),
        booking.cancellable_until,
        booking.channel
    )
}

/// `vaxbook callcenter …`: the lines to print.
pub async fn callcenter(args: CallCenterArgs) -> anyhow::Result<Vec<String>> {
    let token = args.token.as_deref();
    let grant = || {
        args.caller_grant.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "verify the caller first: give --caller-grant or set VAXBOOK_CALLER_GRANT"
            )
        })
    };
    let auth = || channel(&args.auth_url).map(StaffAuthServiceClient::new);
    let booking = || channel(&args.booking_url).map(StaffBookingServiceClient::new);
    match args.command {
        CallCenterCommand::Login {
            username,
            password,
            totp,
        } => {
            let answer = auth()?
                .login(auth_pb::LoginRequest {
                    username,
                    password: read_password(password)?,
                    totp_code: totp,
                })
                .await
                .map_err(refused)?
                .into_inner();
            let variable = match StaffRole::parse(&answer.role) {
                Some(StaffRole::Operator) => "VAXBOOK_OPERATOR_TOKEN",
                _ => "VAXBOOK_AGENT_TOKEN",
            };
            // The token alone on the last line, for `| tail -n 1`.
            Ok(vec![
                format!(
                    "logged in as {} of {} (account {}); export the token below as {variable}",
                    answer.role, answer.organisation, answer.account_id
                ),
                answer.token,
            ])
        }
        CallCenterCommand::VerifyCaller {
            name,
            rrn,
            carrier,
            phone,
        } => {
            let message = auth_pb::VerifyCallerRequest {
                name,
                rrn,
                carrier,
                phone,
            };
            let answer = auth()?
                .verify_caller(staff_request(message, token, None)?)
                .await
                .map_err(refused)?
                .into_inner();
            Ok(vec![
                format!("code sent to {}", answer.masked_phone),
                answer.verification_id,
            ])
        }
        CallCenterCommand::ConfirmCaller {
            verification_id,
            otp,
        } => {
            let message = auth_pb::ConfirmCallerRequest {
                verification_id,
                otp,
            };
            let answer = auth()?
                .confirm_caller(staff_request(message, token, None)?)
                .await
                .map_err(refused)?
                .into_inner();
            Ok(vec![
                format!(
                    "caller {} born {} verified (person key {})",
                    answer.masked_name, answer.birth_date, answer.person_key
                ),
                answer.caller_grant,
            ])
        }
        CallCenterCommand::Slots { center, from, to } => {
            let mut client = booking()?;
            let Some(center_id) = center else {
                let centers = client
                    .list_centers(staff_request(
                        pb::ListCentersRequest::default(),
                        token,
                        None,
                    )?)
                    .await
                    .map_err(refused)?
                    .into_inner();
                return Ok(centers
                    .centers
                    .iter()
                    .map(|c| format!("center {} {} ({})", c.id, c.name, c.region))
                    .collect());
            };
            let message = pb::ListSlotsRequest {
                center_id,
                from,
                to,
            };
            let slots = client
                .list_slots(staff_request(message, token, None)?)
                .await
                .map_err(refused)?
                .into_inner();
            Ok(slots
                .slots
                .iter()
                .map(|s| {
                    format!(
                        "slot {} {} {} campaign {} remaining {}",
                        s.id, s.date, s.vaccine, s.campaign_id, s.remaining
                    )
                })
                .collect())
        }
        CallCenterCommand::Book {
            slot,
            idempotency_key,
        } => {
            let message = pb::CreateBookingRequest {
                slot_id: slot,
                idempotency_key,
                ..Default::default()
            };
            let booked = booking()?
                .create_booking(staff_request(message, token, Some(grant()?))?)
                .await
                .map_err(refused)?
                .into_inner();
            Ok(vec![booking_line(&booked)])
        }
        CallCenterCommand::Cancel { booking: id } => {
            let message = pb::CancelBookingRequest { id };
            let cancelled = booking()?
                .cancel_booking(staff_request(message, token, Some(grant()?))?)
                .await
                .map_err(refused)?
                .into_inner();
            Ok(vec![booking_line(&cancelled)])
        }
        CallCenterCommand::Bookings => {
            let message = pb::ListCallerBookingsRequest::default();
            let listed = booking()?
                .list_caller_bookings(staff_request(message, token, Some(grant()?))?)
                .await
                .map_err(refused)?
                .into_inner();
            Ok(listed.bookings.iter().map(booking_line).collect())
        }
    }
}
