//! The call-center channel on the command line (R9): `vaxbook accounts create` bootstraps a
//! staff account in auth-svc's database (the TOTP secret printed once), `vaxbook audit verify`
//! checks a service's hash-chained audit trail and names the first altered entry, and
//! `vaxbook callcenter …` is the reference client of the staff gRPC APIs — login, verifying the
//! caller, slots, book, cancel, bookings — the commands an integrator reads to learn them.
//! Names, RRNs and phone numbers typed here go to auth-svc only and are never printed back.

use std::io::BufRead as _;

use clap::Subcommand;
use platform::audit::{AuditLog as _, AuditQuery, ChainVerifier, MAX_PAGE, PgAuditLog};
use platform::staff::{CALLER_GRANT_HEADER, STAFF_TOKEN_HEADER, StaffRole};
use proto::auth::v1 as auth_pb;
use proto::auth::v1::staff_auth_service_client::StaffAuthServiceClient;
use proto::booking::v1 as pb;
use proto::booking::v1::staff_booking_service_client::StaffBookingServiceClient;
use tonic::Request;
use tonic::transport::Channel;

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
}

/// Which service's trail a database holds (only the default variable differs).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogName {
    Auth,
    Booking,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of an audit trail from its first entry; exits non-zero naming the
    /// first entry that was altered, deleted or rewritten.
    Verify {
        /// The database holding the trail (default: AUTH_DATABASE_URL for --log auth,
        /// DATABASE_URL for --log booking).
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, value_enum, default_value = "auth")]
        log: LogName,
    },
}

#[derive(Subcommand)]
pub enum CallCenterCommand {
    /// Log in with password and TOTP code; prints the agent token (export it as
    /// VAXBOOK_AGENT_TOKEN for the other commands).
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

/// `vaxbook audit verify`: how many entries hold together, or the first break.
pub async fn audit(command: AuditCommand) -> anyhow::Result<String> {
    let AuditCommand::Verify { database_url, log } = command;
    let variable = match log {
        LogName::Auth => "AUTH_DATABASE_URL",
        LogName::Booking => "DATABASE_URL",
    };
    let url = match database_url {
        Some(url) => url,
        None => std::env::var(variable)
            .map_err(|_| anyhow::anyhow!("give --database-url or set {variable}"))?,
    };
    let trail = PgAuditLog::new(platform::pg::pool(&url, 2)?);
    let mut verifier = ChainVerifier::new();
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
                    "the audit trail is broken at entry {}: {broken}",
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
        "audit trail intact: {} entries chained from the first",
        verifier.checked()
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
            Ok(vec![
                format!(
                    "logged in as {} of {} (account {})",
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
