//! The call-center channel end to end with the reference client, `vaxbook callcenter`, against
//! the five services as processes on real PostgreSQL and Redis: an agent account made with
//! `vaxbook accounts create`, its login with the TOTP code (a wrong code is refused
//! `invalid-second-factor`), the caller checked at the stand-in carriers' agency and confirmed
//! with the code from the SMS outbox, the centers and slots, a booking (none without a caller
//! grant: `caller-not-verified`), the caller's bookings and the cancellation. The booking row
//! names the channel and the agent; auth-svc's and booking-svc's audit trails hold every step,
//! chained (`vaxbook audit verify`), and no name, RRN or phone number.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt as _;
use vaxbook_tests::journey::{OtpSource, Person};
use vaxbook_tests::{ProcessStack, people, process, seed};

/// Born 1985: in the seeded 18–49 campaign, which is open on every channel.
const CALLER: Person = Person {
    name: "최민수",
    rrn: "850720-1234567",
    phone: "010-2345-6789",
    carrier: "lgu",
};

const AGENT: &str = "agent.e2e";
const PASSWORD: &str = "a-long-agent-password";
/// No command here takes longer on a loaded machine.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// What one `vaxbook` command did.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().map(str::trim).collect()
    }

    /// The last line printed: the token, grant or id the command hands on.
    fn last_line(&self) -> anyhow::Result<String> {
        self.lines()
            .last()
            .filter(|line| !line.is_empty())
            .map(|line| (*line).to_owned())
            .ok_or_else(|| anyhow::anyhow!("nothing printed: {}", self.stderr))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

/// The client of one agent: the stack's addresses and, once known, the agent token and the
/// caller grant (as `vaxbook callcenter` reads them from its environment).
struct Client<'a> {
    stack: &'a ProcessStack,
    token: Option<String>,
    caller_grant: Option<String>,
}

impl Client<'_> {
    /// Runs `vaxbook ARGS` (standard input `stdin`), bounded by [`COMMAND_LIMIT`].
    async fn run(&self, args: &[&str], stdin: &str) -> anyhow::Result<Run> {
        let mut command = tokio::process::Command::new(process::binary("vaxbook")?);
        command
            .args(args)
            .env("VAXBOOK_AUTH_URL", &self.stack.auth_url)
            .env("VAXBOOK_BOOKING_URL", &self.stack.booking_url)
            .env("NO_COLOR", "1")
            .env_remove("VAXBOOK_AGENT_TOKEN")
            .env_remove("VAXBOOK_CALLER_GRANT")
            .env_remove("AUTH_DATABASE_URL")
            .env_remove("DATABASE_URL")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(token) = &self.token {
            command.env("VAXBOOK_AGENT_TOKEN", token);
        }
        if let Some(grant) = &self.caller_grant {
            command.env("VAXBOOK_CALLER_GRANT", grant);
        }
        let mut child = command.spawn()?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).await?;
        }
        let output = tokio::time::timeout(COMMAND_LIMIT, child.wait_with_output())
            .await
            .map_err(|_| {
                anyhow::anyhow!("`vaxbook {}` did not finish in time", args.join(" "))
            })??;
        Ok(Run {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// `vaxbook callcenter ARGS`, which must succeed.
    async fn callcenter(&self, args: &[&str]) -> anyhow::Result<Run> {
        let run = self.run(&[&["callcenter"], args].concat(), "").await?;
        anyhow::ensure!(
            run.ok,
            "`vaxbook callcenter {}` failed:\n{run}",
            args.join(" ")
        );
        Ok(run)
    }
}

/// The word after `key` in `line` (`booking <id> slot <id> …`).
fn word_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let mut words = line.split_whitespace();
    words.find(|word| *word == key)?;
    words.next()
}

/// A six-digit code that is the account's TOTP code at no step from two before now to two
/// after (auth-svc accepts one step either way).
fn wrong_totp(secret: &str) -> anyhow::Result<String> {
    let now = u64::try_from(chrono::Utc::now().timestamp())?;
    let valid = (0..5)
        .map(|step| auth_svc::accounts::credentials::totp_code(secret, AGENT, now + step * 30 - 60))
        .collect::<anyhow::Result<Vec<_>>>()?;
    (0..10u32)
        .map(|digit| format!("{digit}").repeat(6))
        .find(|code| !valid.contains(code))
        .ok_or_else(|| anyhow::anyhow!("every candidate code is valid"))
}

/// The newest code sent to `phone`, waiting (bounded) for the SMS outbox to have one newer than
/// the `before` codes.
async fn code_sent(otp: &OtpSource, phone: &str, before: usize) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let codes = otp.codes(phone).await?;
        if codes.len() > before
            && let Some(code) = codes.into_iter().next()
        {
            return Ok(code);
        }
        anyhow::ensure!(Instant::now() < deadline, "no code reached the SMS outbox");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Verifies `caller` with `vaxbook callcenter verify-caller` and `confirm-caller` (the code read
/// from the SMS outbox, as the caller reads it out); keeps the caller grant in `client` and
/// returns the caller's person key. `born` is what the confirmation must say.
async fn verify_caller(
    client: &mut Client<'_>,
    otp: &OtpSource,
    caller: &Person,
    born: &str,
) -> anyhow::Result<String> {
    let before = otp.codes(caller.phone).await?.len();
    let started = client
        .callcenter(&[
            "verify-caller",
            "--name",
            caller.name,
            "--rrn",
            caller.rrn,
            "--carrier",
            caller.carrier,
            "--phone",
            caller.phone,
        ])
        .await?;
    anyhow::ensure!(
        started.stdout.contains("code sent to ") && !started.stdout.contains(caller.phone),
        "{started}"
    );
    let verification_id = started.last_line()?;
    let sent = code_sent(otp, caller.phone, before).await?;
    let confirmed = client
        .callcenter(&[
            "confirm-caller",
            "--verification-id",
            &verification_id,
            "--otp",
            &sent,
        ])
        .await?;
    let verified_line = confirmed
        .lines()
        .first()
        .copied()
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(
        verified_line.contains(&format!("{born} verified")),
        "{confirmed}"
    );
    for shown in [caller.name, caller.rrn] {
        anyhow::ensure!(!confirmed.stdout.contains(shown), "{confirmed}");
    }
    let person_key = verified_line
        .rsplit("person key ")
        .next()
        .map(|rest| rest.trim_end_matches(')').to_owned())
        .filter(|key| !key.is_empty() && !key.contains(' '))
        .ok_or_else(|| anyhow::anyhow!("no person key shown:\n{confirmed}"))?;
    client.caller_grant = Some(confirmed.last_line()?);
    Ok(person_key)
}

async fn pg(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// One audit entry: (actor, role, action, person key, outcome).
type Entry = (String, String, String, Option<String>, String);

/// Every entry of the audit trail `trail` (auth, booking, scheduling) in the database `url`, in
/// order; fails when an entry shows a name, an RRN or a phone number of one of `callers`.
async fn audit_entries(url: &str, trail: &str, callers: &[&Person]) -> anyhow::Result<Vec<Entry>> {
    let client = pg(url).await?;
    let rows = client
        .query(
            "SELECT actor, organisation, role, action, person_key, outcome FROM audit_log \
             WHERE trail = $1 ORDER BY seq",
            &[&trail],
        )
        .await?;
    let digits = |raw: &str| raw.chars().filter(char::is_ascii_digit).collect::<String>();
    let mut entries = Vec::new();
    for row in rows {
        let entry: Entry = (row.get(0), row.get(2), row.get(3), row.get(4), row.get(5));
        let shown = format!("{entry:?} {}", row.get::<_, String>(1));
        for caller in callers {
            for secret in [
                caller.name.to_owned(),
                digits(caller.rrn),
                caller.rrn.to_owned(),
                digits(caller.phone),
                caller.phone.to_owned(),
            ] {
                anyhow::ensure!(
                    !shown.contains(&secret),
                    "an audit entry shows personal data: {shown}"
                );
            }
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Whether `entries` has one of `actor` doing `action` with `outcome` (and, when given, about
/// `person_key`).
fn has(
    entries: &[Entry],
    actor: &str,
    action: &str,
    person_key: Option<&str>,
    outcome: &str,
) -> bool {
    entries.iter().any(|(who, _, what, about, how)| {
        who == actor
            && what == action
            && how == outcome
            && person_key.is_none_or(|key| about.as_deref() == Some(key))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_books_and_cancels_for_a_verified_caller_with_the_reference_client()
-> anyhow::Result<()> {
    let stack = ProcessStack::start("callcenter").await?;
    let seeded =
        seed::open_campaign(&stack.scheduling_url, &stack.booking_url, &stack.operator).await?;
    people::register(&stack, &CALLER)?;
    let otp = stack.otp();
    let mut client = Client {
        stack: &stack,
        token: None,
        caller_grant: None,
    };

    // The account: the password on standard input, the TOTP secret printed once.
    let created = client
        .run(
            &[
                "accounts",
                "create",
                "--org",
                process::CALL_CENTER_ORG,
                "--role",
                "agent",
                "--name",
                AGENT,
                "--database-url",
                &stack.auth_database_url,
            ],
            &format!("{PASSWORD}\n"),
        )
        .await?;
    assert!(created.ok, "accounts create failed:\n{created}");
    assert!(!created.stdout.contains(PASSWORD), "{created}");
    let lines = created.lines();
    let account_id = word_after(lines.first().copied().unwrap_or_default(), "account")
        .unwrap_or_default()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&account_id).is_ok(), "{created}");
    let secret_at = lines
        .iter()
        .position(|line| line.starts_with("TOTP secret"))
        .ok_or_else(|| anyhow::anyhow!("no TOTP secret shown:\n{created}"))?;
    let secret = lines
        .get(secret_at + 1)
        .copied()
        .unwrap_or_default()
        .to_owned();
    assert!(
        lines
            .get(secret_at + 2)
            .is_some_and(|uri| uri.starts_with("otpauth://totp/")),
        "{created}"
    );

    // A wrong second factor: refused, nothing printed to hand on.
    let refused = client
        .run(
            &[
                "callcenter",
                "login",
                "--username",
                AGENT,
                "--totp",
                &wrong_totp(&secret)?,
            ],
            &format!("{PASSWORD}\n"),
        )
        .await?;
    assert!(!refused.ok, "a wrong TOTP code logged in:\n{refused}");
    assert!(
        refused.stderr.contains("invalid-second-factor"),
        "{refused}"
    );
    assert!(refused.stdout.trim().is_empty(), "{refused}");

    // The right code (computed the way `vaxbook accounts totp` shows it) logs in.
    let code = client
        .run(&["accounts", "totp", "--secret", &secret], "")
        .await?;
    assert!(code.ok, "accounts totp failed:\n{code}");
    let code = code.last_line()?;
    assert!(
        code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()),
        "{code}"
    );
    let login = client
        .run(
            &["callcenter", "login", "--username", AGENT, "--totp", &code],
            &format!("{PASSWORD}\n"),
        )
        .await?;
    assert!(login.ok, "login failed:\n{login}");
    assert!(
        login.stdout.contains(&format!(
            "logged in as agent of {} (account {account_id})",
            process::CALL_CENTER_ORG
        )),
        "{login}"
    );
    client.token = Some(login.last_line()?);

    // The centers and the slots, with no caller yet.
    let centers = client.callcenter(&["slots"]).await?;
    assert!(
        centers
            .lines()
            .iter()
            .any(|line| word_after(line, "center") == Some(seeded.center_id.as_str())),
        "{centers}"
    );
    let slot_id = seeded.slot_ids[0].clone();
    let slots = client
        .callcenter(&["slots", "--center", &seeded.center_id])
        .await?;
    let slot_line = slots
        .lines()
        .into_iter()
        .find(|line| word_after(line, "slot") == Some(slot_id.as_str()))
        .ok_or_else(|| anyhow::anyhow!("slot {slot_id} not listed:\n{slots}"))?
        .to_owned();
    assert_eq!(word_after(&slot_line, "campaign"), Some(seed::CAMPAIGN_ID));
    assert_eq!(
        word_after(&slot_line, "remaining"),
        Some("5"),
        "{slot_line}"
    );

    // No booking without a caller verified by this agent: the agent's own token is no caller
    // grant.
    let unverified = Client {
        stack: &stack,
        token: client.token.clone(),
        caller_grant: client.token.clone(),
    };
    let run = unverified
        .run(&["callcenter", "book", "--slot", &slot_id], "")
        .await?;
    assert!(!run.ok, "booked without a verified caller:\n{run}");
    assert!(run.stderr.contains("caller-not-verified"), "{run}");
    let db = pg(&stack.database_url).await?;
    let count: i64 = db
        .query_one("SELECT count(*) FROM bookings", &[])
        .await?
        .get(0);
    assert_eq!(count, 0, "a refused booking left a row");

    // The caller: checked at the carriers' agency, the code they read out from their SMS.
    let person_key = verify_caller(&mut client, &otp, &CALLER, "born 1985-07-20").await?;

    // The booking: through the call-center channel, made by this agent.
    let booked = client
        .callcenter(&[
            "book",
            "--slot",
            &slot_id,
            "--idempotency-key",
            "callcenter-e2e-1",
        ])
        .await?;
    let booked_line = booked.last_line()?;
    let booking_id = word_after(&booked_line, "booking")
        .unwrap_or_default()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&booking_id).is_ok(), "{booked}");
    assert_eq!(word_after(&booked_line, "slot"), Some(slot_id.as_str()));
    assert_eq!(
        word_after(&booked_line, "status"),
        Some("BOOKING_STATUS_CONFIRMED"),
        "{booked}"
    );
    assert_eq!(word_after(&booked_line, "channel"), Some("call_center"));
    let row = db
        .query_one(
            "SELECT channel, agent, person_key, status FROM bookings WHERE id = $1::text::uuid",
            &[&booking_id],
        )
        .await?;
    assert_eq!(row.get::<_, String>(0), "call_center");
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some(account_id.as_str())
    );
    assert_eq!(row.get::<_, String>(2), person_key);
    assert_eq!(row.get::<_, String>(3), "confirmed");
    let remaining = client
        .callcenter(&["slots", "--center", &seeded.center_id])
        .await?;
    assert!(
        remaining
            .lines()
            .iter()
            .any(|line| word_after(line, "slot") == Some(slot_id.as_str())
                && word_after(line, "remaining") == Some("4")),
        "{remaining}"
    );

    // The caller's bookings, then the cancellation.
    let listed = client.callcenter(&["bookings"]).await?;
    assert_eq!(listed.lines().len(), 1, "{listed}");
    assert_eq!(
        word_after(&listed.stdout, "booking"),
        Some(booking_id.as_str())
    );
    let cancelled = client
        .callcenter(&["cancel", "--booking", &booking_id])
        .await?;
    assert_eq!(
        word_after(&cancelled.last_line()?, "status"),
        Some("BOOKING_STATUS_CANCELLED"),
        "{cancelled}"
    );
    let status: String = db
        .query_one(
            "SELECT status FROM bookings WHERE id = $1::text::uuid",
            &[&booking_id],
        )
        .await?
        .get(0);
    assert_eq!(status, "cancelled");
    let listed = client.callcenter(&["bookings"]).await?;
    assert!(
        listed
            .lines()
            .iter()
            .all(|line| word_after(line, "status") != Some("BOOKING_STATUS_CONFIRMED")),
        "{listed}"
    );

    // Every trail holds together from its first entry and records every step; booking-svc's
    // and scheduling-svc's share a database but not a chain.
    for (log, url) in [
        ("auth", &stack.auth_database_url),
        ("booking", &stack.database_url),
        ("scheduling", &stack.database_url),
    ] {
        let verified = client
            .run(
                &["audit", "verify", "--log", log, "--database-url", url],
                "",
            )
            .await?;
        assert!(verified.ok, "the {log} trail does not verify:\n{verified}");
        assert!(verified.stdout.contains("audit trail intact"), "{verified}");
        assert!(
            verified.stdout.contains(&format!("(trail {log})")),
            "{verified}"
        );
    }
    let auth = audit_entries(&stack.auth_database_url, "auth", &[&CALLER]).await?;
    for (action, person_key, outcome) in [
        ("staff.login", None, "invalid-second-factor"),
        ("staff.login", None, "ok"),
        ("staff.verify-caller", None, "ok"),
        ("staff.confirm-caller", Some(person_key.as_str()), "ok"),
    ] {
        assert!(
            has(&auth, &account_id, action, person_key, outcome),
            "auth-svc's trail lacks {action} {outcome}: {auth:?}"
        );
    }
    let booking = audit_entries(&stack.database_url, "booking", &[&CALLER]).await?;
    for (action, person_key, outcome) in [
        ("staff.list-centers", None, "ok"),
        ("staff.list-slots", None, "ok"),
        ("staff.book", None, "caller-not-verified"),
        ("staff.book", Some(person_key.as_str()), "ok"),
        ("staff.list-bookings", Some(person_key.as_str()), "ok"),
        ("staff.cancel", Some(person_key.as_str()), "ok"),
    ] {
        assert!(
            has(&booking, &account_id, action, person_key, outcome),
            "booking-svc's trail lacks {action} {outcome}: {booking:?}"
        );
    }
    assert!(
        booking
            .iter()
            .filter(|(actor, ..)| actor == &account_id)
            .all(|(_, role, ..)| role == "agent"),
        "{booking:?}"
    );
    // The seeding came from the harness's operator, logged in like any staff member.
    let operator = &stack.operator_account.id;
    assert!(has(&auth, operator, "staff.login", None, "ok"), "{auth:?}");
    for action in ["admin.upsert-center", "admin.upsert-slot"] {
        assert!(
            booking
                .iter()
                .any(|(actor, role, what, _, outcome)| actor == operator
                    && role == "operator"
                    && what == action
                    && outcome == "ok"),
            "booking-svc's trail lacks the operator's {action}: {booking:?}"
        );
    }
    // The campaign is scheduling-svc's: in its trail, not in booking-svc's.
    let scheduling = audit_entries(&stack.database_url, "scheduling", &[&CALLER]).await?;
    assert!(
        has(&scheduling, operator, "admin.upsert-campaign", None, "ok"),
        "scheduling-svc's trail lacks the operator's campaign: {scheduling:?}"
    );
    assert!(
        scheduling
            .iter()
            .all(|(_, _, action, ..)| !action.starts_with("staff.")
                && action != "admin.upsert-center"
                && action != "admin.upsert-slot"),
        "booking-svc's entries in scheduling-svc's trail: {scheduling:?}"
    );
    assert!(
        booking
            .iter()
            .all(|(_, _, action, ..)| action != "admin.upsert-campaign"),
        "scheduling-svc's entries in booking-svc's trail: {booking:?}"
    );
    Ok(())
}

/// A 60+ campaign open now on the web only, one center and one slot on D+5 in it; the slot id.
async fn web_only_campaign(stack: &ProcessStack) -> anyhow::Result<String> {
    use proto::booking::v1::booking_admin_service_client::BookingAdminServiceClient;
    use proto::booking::v1::{Slot, UpsertSlotRequest};
    use proto::scheduling::v1::scheduling_admin_service_client::SchedulingAdminServiceClient;
    use proto::scheduling::v1::{Campaign, Channel, UpsertCampaignRequest, Window, WindowKind};

    let timeout = Duration::from_secs(10);
    let now = chrono::Utc::now();
    let kst_date = |at: chrono::DateTime<chrono::Utc>| {
        platform::ids::format_iso_date(at.with_timezone(&chrono_tz::Asia::Seoul).date_naive())
    };
    let campaign = Campaign {
        id: WEB_ONLY.to_owned(),
        name: "End-to-end 60+ on the web only".to_owned(),
        born_from: "1900-01-01".to_owned(),
        born_to: "1961-12-31".to_owned(),
        vaccination_from: kst_date(now + chrono::Duration::days(1)),
        vaccination_to: kst_date(now + chrono::Duration::days(10)),
        cancellation_closes_days_before: 2,
        windows: vec![Window {
            id: "open".to_owned(),
            kind: WindowKind::Open.into(),
            opens_at: Some(platform::clock::to_timestamp(
                now - chrono::Duration::hours(1),
            )),
            closes_at: Some(platform::clock::to_timestamp(
                now + chrono::Duration::days(2),
            )),
            channels: vec![Channel::Web.into()],
            supply_share_bp: 10_000,
            ..Default::default()
        }],
        ..Default::default()
    };
    SchedulingAdminServiceClient::new(platform::grpc::channel(&stack.scheduling_url, timeout)?)
        .upsert_campaign(stack.operator.request(UpsertCampaignRequest {
            campaign: Some(campaign),
        })?)
        .await?;
    let mut booking =
        BookingAdminServiceClient::new(platform::grpc::channel(&stack.booking_url, timeout)?);
    let center = seed::center(&mut booking, &stack.operator).await?;
    let starts_at = now + chrono::Duration::days(5);
    let slot = booking
        .upsert_slot(stack.operator.request(UpsertSlotRequest {
            slot: Some(Slot {
                campaign_id: WEB_ONLY.to_owned(),
                center_id: center.id,
                date: kst_date(starts_at),
                starts_at: Some(platform::clock::to_timestamp(starts_at)),
                ends_at: Some(platform::clock::to_timestamp(
                    starts_at + chrono::Duration::hours(4),
                )),
                vaccine: "Pfizer".to_owned(),
                capacity: 5,
                ..Default::default()
            }),
        })?)
        .await?
        .into_inner();
    Ok(slot.id)
}

const WEB_ONLY: &str = "e2e-60-plus-web-only";

/// A campaign that keeps its windows to the web refuses the call center's booking for a caller
/// it would take online: `channel-not-allowed`, no booking, the refusal in booking-svc's trail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_closed_to_the_call_center_refuses_the_agents_booking() -> anyhow::Result<()> {
    let stack = ProcessStack::start("callcenter-web-only").await?;
    let slot_id = web_only_campaign(&stack).await?;
    people::register(&stack, &people::MOTHER)?;
    let otp = stack.otp();
    // The harness's own agent: created in auth-svc's database, logged in over gRPC.
    let (agent, token) = stack.agent("agent.web-only").await?;
    let mut client = Client {
        stack: &stack,
        token: Some(token),
        caller_grant: None,
    };
    let person_key = verify_caller(&mut client, &otp, &people::MOTHER, "born 1950-03-03").await?;
    let run = client
        .run(&["callcenter", "book", "--slot", &slot_id], "")
        .await?;
    assert!(
        !run.ok,
        "booked on a channel the campaign keeps closed:\n{run}"
    );
    assert!(run.stderr.contains("channel-not-allowed"), "{run}");
    let count: i64 = pg(&stack.database_url)
        .await?
        .query_one("SELECT count(*) FROM bookings", &[])
        .await?
        .get(0);
    assert_eq!(count, 0, "a refused booking left a row");
    let booking = audit_entries(&stack.database_url, "booking", &[&people::MOTHER]).await?;
    assert!(
        has(
            &booking,
            &agent.id,
            "staff.book",
            Some(&person_key),
            "channel-not-allowed"
        ),
        "{booking:?}"
    );
    Ok(())
}
