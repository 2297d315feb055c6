//! `vaxbook dev`: every service in one process, each on its own loopback port and talking to
//! the others over gRPC exactly as in production, on the in-process stores (or on PostgreSQL and
//! Redis when `DATABASE_URL` / `REDIS_URL` are set), with the settable dev clock, the dev SMS sink
//! and the gateway's `/dev` endpoints. Seeded with the 2021 demo round.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use platform::clock::SharedClock;
use platform::dev::DevHooks;
use platform::operator::OperatorCredential;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::demo;

#[derive(clap::Args, Debug)]
pub struct DevArgs {
    /// Where the gateway listens.
    #[arg(long, env = "VAXBOOK_DEV_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Start with empty stores instead of the demo round.
    #[arg(long)]
    no_seed: bool,
}

struct Listeners {
    auth: TcpListener,
    session: TcpListener,
    scheduling: TcpListener,
    booking: TcpListener,
    gateway: TcpListener,
}

fn url(listener: &TcpListener) -> anyhow::Result<String> {
    Ok(format!("http://{}", listener.local_addr()?))
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let telemetry = platform::telemetry::init("vaxbook-dev")?;
    let shutdown = platform::shutdown::on_signal();
    let result = run_until(args, shutdown).await;
    telemetry.shutdown().await;
    result
}

async fn run_until(args: DevArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let hooks = DevHooks::new(demo::dev_clock_start());
    // The walk-through person's phone is known to the stand-in carriers' agency in every run;
    // others are added with POST /dev/carrier/subscribers.
    demo::seed_carriers(&hooks.carriers)?;
    let clock: SharedClock = hooks.clock.clone();
    let database_url = platform::config::var("DATABASE_URL");
    let redis_url = platform::config::var("REDIS_URL");
    let redis_prefix = platform::config::string("REDIS_KEY_PREFIX", "vaxbook:dev:");
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let listeners = Listeners {
        auth: platform::net::bind_tcp(loopback).await?,
        session: platform::net::bind_tcp(loopback).await?,
        scheduling: platform::net::bind_tcp(loopback).await?,
        booking: platform::net::bind_tcp(loopback).await?,
        gateway: platform::net::bind_tcp(args.addr).await?,
    };
    let auth_url = url(&listeners.auth)?;
    let session_url = url(&listeners.session)?;
    let scheduling_url = url(&listeners.scheduling)?;
    let booking_url = url(&listeners.booking)?;
    let gateway_url = format!("http://{}", listeners.gateway.local_addr()?);
    let timeout = Duration::from_secs(5);

    // Each service's dev defaults live in its own `Config::local_dev`; the dev run only says
    // where the services found each other and which real stores it was given.
    let redis = |url: &String| {
        (
            platform::config::ConnectionUrl::new(url.clone()),
            redis_prefix.clone(),
        )
    };
    let mut session_config =
        session_svc::Config::local_dev(listeners.session.local_addr()?, &hooks);
    // session-svc verifies auth-svc's device proofs and tokens against auth-svc's keys.
    session_config.auth_url = auth_url.clone();
    // The automatic waiting room reads booking-svc's capacity signal.
    session_config.queue.booking_url = booking_url.clone();
    if let Some((url, key_prefix)) = redis_url.as_ref().map(redis) {
        session_config.store = session_svc::StoreConfig::Redis { url, key_prefix };
    }
    let mut auth_config = auth_svc::Config::local_dev(listeners.auth.local_addr()?, &hooks);
    auth_config.session_url = session_url.clone();
    auth_config.request_timeout = timeout;
    if let Some((url, key_prefix)) = redis_url.as_ref().map(redis) {
        auth_config.store = auth_svc::StoreConfig::Redis { url, key_prefix };
    }
    let mut scheduling_config =
        scheduling_svc::Config::local_dev(listeners.scheduling.local_addr()?, &hooks);
    scheduling_config.auth_url = auth_url.clone();
    if let Some(url) = &database_url {
        scheduling_config.store = scheduling_svc::StoreConfig::Postgres {
            url: platform::config::ConnectionUrl::new(url.clone()),
            max_connections: 4,
        };
    }
    let mut booking_config =
        booking_svc::Config::local_dev(listeners.booking.local_addr()?, &hooks);
    if let Some(url) = &database_url {
        booking_config.store = booking_svc::StoreConfig::Postgres {
            url: platform::config::ConnectionUrl::new(url.clone()),
            max_connections: 8,
        };
    }
    booking_config.auth_url = auth_url.clone();
    booking_config.scheduling_url = scheduling_url.clone();
    booking_config.session_url = session_url.clone();
    booking_config.request_timeout = timeout;
    // Printed in the banner: the call-center walk-through talks gRPC to them.
    let auth_url_printed = auth_url.clone();
    let session_url_printed = session_url.clone();
    let gateway_config = gateway::Config {
        listen_addr: listeners.gateway.local_addr()?,
        public_base_url: gateway_url.clone(),
        auth_url,
        session_url,
        scheduling_url: scheduling_url.clone(),
        booking_url: booking_url.clone(),
        request_timeout: timeout,
        max_inflight: 1024,
        shutdown_grace: Duration::from_secs(5),
        dev: Some(hooks.clone()),
        // Any local frontend (another port) may call the dev run.
        cors_allowed_origins: vec!["*".to_owned()],
        trusted_proxies: Default::default(),
        edge: gateway::edge::EdgeTimeouts::default(),
        clock: clock.clone(),
    };

    let mut tasks = JoinSet::new();
    tasks.spawn(named(
        "session-svc",
        session_svc::serve(session_config, listeners.session, shutdown.clone()),
    ));
    tasks.spawn(named(
        "auth-svc",
        auth_svc::serve(auth_config, listeners.auth, shutdown.clone()),
    ));
    tasks.spawn(named(
        "scheduling-svc",
        scheduling_svc::serve(scheduling_config, listeners.scheduling, shutdown.clone()),
    ));
    tasks.spawn(named(
        "booking-svc",
        booking_svc::serve(booking_config, listeners.booking, shutdown.clone()),
    ));
    let seeded = if args.no_seed {
        "no demo data (--no-seed)".to_owned()
    } else {
        // The dev run loads its demo with its own key, which its services accept.
        let credential = OperatorCredential::dev();
        tokio::select! {
            seeded = demo::seed(&scheduling_url, &booking_url, &credential) => seeded?,
            Some(ended) = tasks.join_next() => {
                shutdown.cancel();
                return Err(flatten(ended).err().unwrap_or_else(|| anyhow::anyhow!("a service stopped during start-up")));
            }
        }
    };
    // The gateway comes up last, so /readyz and the first request see the seeded demo.
    tasks.spawn(named(
        "gateway",
        gateway::serve(gateway_config, listeners.gateway, shutdown.clone()),
    ));
    let stores = match (&database_url, &redis_url) {
        (None, None) => "in-process stores".to_owned(),
        _ => format!(
            "{} + {}",
            if database_url.is_some() {
                "PostgreSQL (DATABASE_URL)"
            } else {
                "in-process booking/scheduling stores"
            },
            if redis_url.is_some() {
                "Redis (REDIS_URL)"
            } else {
                "in-process auth/session stores"
            }
        ),
    };
    let addresses = Addresses {
        gateway: gateway_url,
        auth: auth_url_printed,
        session: session_url_printed,
        scheduling: scheduling_url,
        booking: booking_url,
    };
    println!("{}", banner(&addresses, &stores, &seeded, &clock));

    // Run until ctrl-c / SIGTERM or until a service fails; then stop everything.
    let mut failure = None;
    tokio::select! {
        _ = shutdown.cancelled() => {}
        Some(ended) = tasks.join_next() => {
            if let Err(err) = flatten(ended) {
                tracing::error!(error = %err, "a service failed, stopping the dev run");
                failure = Some(err);
            }
            shutdown.cancel();
        }
    }
    while let Some(ended) = tasks.join_next().await {
        if let Err(err) = flatten(ended)
            && failure.is_none()
        {
            failure = Some(err);
        }
    }
    match failure {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

async fn named<F>(name: &'static str, future: F) -> anyhow::Result<()>
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    future
        .await
        .map_err(|err| err.context(format!("{name} failed")))
}

fn flatten(ended: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Result<()> {
    match ended {
        Ok(result) => result,
        Err(err) => Err(anyhow::anyhow!("a service task panicked: {err}")),
    }
}

/// The copy-paste walk-through printed at start-up (`$G` is the gateway URL). The end-to-end
/// tests run it as printed, so it stays true.
const WALKTHROUGH: &str = r#"G=@GATEWAY@
DEV='X-Device-Id: laptop-1'
JSON='content-type: application/json'
PERSON='{"provider":"phone","name":"홍길동","rrn":"900113-1234567","phone":"010-1234-5678","carrier":"skt"}'
# 1. start identity verification with the phone provider (born on the 13th: the 10-part
#    rotation opened their window on 13 Aug 20:00, and the dev clock starts at 20:30)
V=$(curl -s -X POST $G/v1/auth/verifications -H "$JSON" -H "$DEV" -d "$PERSON")
echo "$V"; VID=$(echo "$V" | sed -E 's/.*"verification_id":"([^"]+)".*/\1/')
# 2. read the one-time code from the dev SMS sink
OTP=$(curl -s "$G/dev/sms?to=010-1234-5678" | sed -E 's/^\[\{[^}]*"otp":"([0-9]+)".*/\1/'); echo "otp $OTP"
# 3. complete the verification: this device now holds the person's lock
T=$(curl -s -X POST $G/v1/auth/verifications/$VID/complete -H "$JSON" -H "$DEV" -d "{\"otp\":\"$OTP\"}")
echo "$T"; TOKEN=$(echo "$T" | sed -E 's/.*"access_token":"([^"]+)".*/\1/'); AUTH="Authorization: Bearer $TOKEN"
# 4. may I book now?
curl -s $G/v1/me/eligibility -H "$AUTH" -H "$DEV"; echo
# 5. centers, and the slots of one center on 26-27 Aug 2021
curl -s $G/v1/centers -H "$AUTH" -H "$DEV"; echo
CENTER=00000000-0000-4000-8000-000000000001
S=$(curl -s "$G/v1/slots?center_id=$CENTER&from=2021-08-26&to=2021-08-27" -H "$AUTH" -H "$DEV"); echo "$S"
SLOT=$(echo "$S" | sed -E 's/^\[\{"id":"([^"]+)".*/\1/')
# 6. book it, list my bookings, cancel
B=$(curl -s -X POST $G/v1/bookings -H "$JSON" -H "$AUTH" -H "$DEV" -H "Idempotency-Key: demo-$VID" -d "{\"slot_id\":\"$SLOT\"}")
echo "$B"; BID=$(echo "$B" | sed -E 's/^\{"id":"([^"]+)".*/\1/')
curl -s $G/v1/bookings -H "$AUTH" -H "$DEV"; echo
curl -s -X DELETE $G/v1/bookings/$BID -H "$AUTH" -H "$DEV"; echo
# 6b. booking for someone else (R1): the 60+ round took proxy bookings until 9 Aug 18:00 KST,
#     so booking now for a parent born in 1950 is refused (403 proxy-not-allowed, with the deadline)
S60=$(curl -s "$G/v1/slots?center_id=$CENTER&from=2021-08-16&to=2021-08-16" -H "$AUTH" -H "$DEV")
SLOT60=$(echo "$S60" | sed -E 's/^\[\{"id":"([^"]+)".*/\1/')
curl -s -i -X POST $G/v1/bookings -H "$JSON" -H "$AUTH" -H "$DEV" -d "{\"slot_id\":\"$SLOT60\",\"for\":{\"name\":\"김순자\",\"rrn\":\"500303-2234567\"}}"; echo
# 7. the same person on a second device is blocked for 10 minutes (423 device-locked), told so
#    when it starts: no code is sent to it
curl -s -i -X POST $G/v1/auth/verifications -H "$JSON" -H 'X-Device-Id: phone-2' -d "$PERSON"; echo
# 8. someone not yet in their window: born on the 15th, their turn is 15 Aug 20:00
#    (window-not-open with opens_at), and their upcoming windows
P2='{"provider":"phone","name":"김영희","rrn":"950115-2234567","phone":"010-2345-6789","carrier":"kt"}'
V3=$(curl -s -X POST $G/v1/auth/verifications -H "$JSON" -H 'X-Device-Id: tablet-3' -d "$P2")
VID3=$(echo "$V3" | sed -E 's/.*"verification_id":"([^"]+)".*/\1/')
OTP3=$(curl -s "$G/dev/sms?to=010-2345-6789" | sed -E 's/^\[\{[^}]*"otp":"([0-9]+)".*/\1/')
T3=$(curl -s -X POST $G/v1/auth/verifications/$VID3/complete -H "$JSON" -H 'X-Device-Id: tablet-3' -d "{\"otp\":\"$OTP3\"}")
AUTH3="Authorization: Bearer $(echo "$T3" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')"
curl -s $G/v1/me/eligibility -H "$AUTH3" -H 'X-Device-Id: tablet-3'; echo
curl -s $G/v1/me/windows -H "$AUTH3" -H 'X-Device-Id: tablet-3'; echo
# 9. or verify with a financial certificate: the dev CA's stand-in app signs the nonce
P4='{"provider":"financial_cert","name":"박민수","rrn":"800220-1234567"}'
V4=$(curl -s -X POST $G/v1/auth/verifications -H "$JSON" -H 'X-Device-Id: pc-4' -d "$P4")
VID4=$(echo "$V4" | sed -E 's/.*"verification_id":"([^"]+)".*/\1/'); NONCE4=$(echo "$V4" | sed -E 's/.*"nonce":"([^"]+)".*/\1/')
SIG4=$(curl -s -X POST $G/dev/idp/financial_cert/signatures -H "$JSON" -d "{\"name\":\"박민수\",\"rrn\":\"800220-1234567\",\"nonce\":\"$NONCE4\"}")
curl -s -X POST $G/v1/auth/verifications/$VID4/complete -H "$JSON" -H 'X-Device-Id: pc-4' -d "$SIG4" | sed -E 's/.*"masked_name":"([^"]+)".*/verified by certificate: \1/'
# 10. the waiting room (R11): on, admitting 2 people a second, a booking without an admission is
#     refused (403 admission-required); take a ticket (the same one from any tab), poll it until
#     admitted, book with the admission grant in X-Admission, then turn the room off again
curl -s -X PUT $G/dev/admission -H "$JSON" -d '{"enabled":true,"rate_per_second":2}'; echo
sleep 3   # booking-svc reuses the room's status for 2 s
curl -s -i -X POST $G/v1/bookings -H "$JSON" -H "$AUTH" -H "$DEV" -d "{\"slot_id\":\"$SLOT\"}"; echo
Q=$(curl -s -X POST $G/v1/queue/tickets -H "$AUTH" -H "$DEV"); echo "$Q"
TICKET=$(echo "$Q" | sed -E 's/.*"ticket":"([^"]+)".*/\1/')
for i in $(seq 30); do echo "$Q" | grep -q '"admitted":true' && break; sleep 1; Q=$(curl -s "$G/v1/queue/tickets/$TICKET" -H "$AUTH" -H "$DEV"); done; echo "$Q"
ADM=$(echo "$Q" | sed -E 's/.*"admission":"([^"]+)".*/\1/')
curl -s -X POST $G/v1/bookings -H "$JSON" -H "$AUTH" -H "$DEV" -H "X-Admission: $ADM" -H "Idempotency-Key: queued-$VID" -d "{\"slot_id\":\"$SLOT\"}"; echo
curl -s -X PUT $G/dev/admission -H "$JSON" -d '{"enabled":false}'; echo
"#;

/// The call-center channel's copy-paste walk-through (R9), printed after the citizens' one: the
/// dev agent logs in with `vaxbook callcenter` against the services' gRPC addresses, is refused
/// by the citizens' API, verifies a caller of the 60+ round (the SMS code read from the dev
/// sink), books for them, lists and cancels; the dev operator logs in the same way. It needs
/// `vaxbook` on PATH; vaxbook/tests/dev_walkthrough.rs runs it as printed.
const CALL_CENTER_WALKTHROUGH: &str = r#"G=@GATEWAY@
export VAXBOOK_AUTH_URL=@AUTH@ VAXBOOK_BOOKING_URL=@BOOKING@ VAXBOOK_SCHEDULING_URL=@SCHEDULING@
# 11. the agent logs in as @AGENT@ with its password and TOTP code; the dev run checks codes on
#     its own clock, so the code is computed for what GET /dev/clock reads
NOW=$(curl -s $G/dev/clock | sed -E 's/.*"now":"([^"]+)".*/\1/')
L=$(vaxbook callcenter login --username @AGENT@ --password @AGENT_PASSWORD@ --totp "$(vaxbook accounts totp --secret @AGENT_SECRET@ --at "$NOW")")
echo "$L" | head -n 1; export VAXBOOK_AGENT_TOKEN=$(echo "$L" | tail -n 1)
# 12. an agent's token is no citizen's: the citizens' API refuses it (403 citizen-token-required)
#     and auth-svc's audit trail records the attempt (citizen-api.refused)
curl -s -i $G/v1/bookings -H "Authorization: Bearer $VAXBOOK_AGENT_TOKEN" -H 'X-Device-Id: console-1'; echo
# 13. the parent of step 6b phones in: the carriers' agency confirms the phone is theirs, a code
#     goes to it by SMS (read here from the dev sink), the caller reads it out
V=$(vaxbook callcenter verify-caller --name @CALLER_NAME@ --rrn @CALLER_RRN@ --carrier @CALLER_CARRIER@ --phone @CALLER_PHONE@)
echo "$V" | head -n 1; VID=$(echo "$V" | tail -n 1)
OTP=$(curl -s "$G/dev/sms?to=@CALLER_PHONE@" | sed -E 's/^\[\{[^}]*"otp":"([0-9]+)".*/\1/')
C=$(vaxbook callcenter confirm-caller --verification-id "$VID" --otp "$OTP")
echo "$C" | head -n 1; export VAXBOOK_CALLER_GRANT=$(echo "$C" | tail -n 1)
# 14. a slot of the 60+ round (it takes call-center bookings; 18-49 is web only), book it for
#     the caller, list their bookings, cancel
CENTER=00000000-0000-4000-8000-000000000001
S=$(vaxbook callcenter slots --center $CENTER --from 2021-08-16 --to 2021-08-16); echo "$S"
B=$(vaxbook callcenter book --slot "$(echo "$S" | head -n 1 | cut -d' ' -f2)" --idempotency-key "call-$VID")
echo "$B"; BID=$(echo "$B" | cut -d' ' -f2)
vaxbook callcenter bookings
vaxbook callcenter cancel --booking "$BID"
# 15. operators log in the same way, as @OPERATOR@; the admin commands (vaxbook seed-demo,
#     campaigns apply, exclusions import) send its token from VAXBOOK_OPERATOR_TOKEN. Only the
#     dev run also takes its own key: outside it they are refused staff-token-required without one
L=$(vaxbook callcenter login --username @OPERATOR@ --password @OPERATOR_PASSWORD@ --totp "$(vaxbook accounts totp --secret @OPERATOR_SECRET@ --at "$(curl -s $G/dev/clock | sed -E 's/.*"now":"([^"]+)".*/\1/')")")
echo "$L" | head -n 1; export VAXBOOK_OPERATOR_TOKEN=$(echo "$L" | tail -n 1)
"#;

/// Where the dev run's gateway and services answer.
struct Addresses {
    gateway: String,
    auth: String,
    session: String,
    scheduling: String,
    booking: String,
}

/// The call-center walk-through for `addresses`, with the dev accounts' and the caller's values.
fn call_center_walkthrough(addresses: &Addresses) -> String {
    use auth_svc::accounts::dev;
    let (name, rrn, phone, carrier) = demo::CALL_CENTER_CALLER;
    [
        ("@GATEWAY@", addresses.gateway.as_str()),
        ("@AUTH@", addresses.auth.as_str()),
        ("@BOOKING@", addresses.booking.as_str()),
        ("@SCHEDULING@", addresses.scheduling.as_str()),
        ("@AGENT_PASSWORD@", dev::DEV_AGENT_PASSWORD),
        ("@AGENT_SECRET@", dev::DEV_AGENT_TOTP_SECRET),
        ("@AGENT@", dev::DEV_AGENT_USERNAME),
        ("@OPERATOR_PASSWORD@", dev::DEV_OPERATOR_PASSWORD),
        ("@OPERATOR_SECRET@", dev::DEV_OPERATOR_TOTP_SECRET),
        ("@OPERATOR@", dev::DEV_OPERATOR_USERNAME),
        ("@CALLER_NAME@", name),
        ("@CALLER_RRN@", rrn),
        ("@CALLER_PHONE@", phone),
        ("@CALLER_CARRIER@", carrier),
    ]
    .iter()
    .fold(CALL_CENTER_WALKTHROUGH.to_owned(), |text, (from, to)| {
        text.replace(from, to)
    })
}

fn banner(
    addresses: &Addresses,
    stores: &str,
    seeded: &str,
    clock: &Arc<dyn platform::clock::Clock>,
) -> String {
    let gateway = &addresses.gateway;
    let now = platform::clock::rfc3339_kst(clock.now());
    let walkthrough = WALKTHROUGH.replace("@GATEWAY@", gateway);
    let call_center = call_center_walkthrough(addresses);
    format!(
        "\nvaxbook dev is running\n  gateway:  {gateway}\n  gRPC:     auth-svc {}, session-svc {}, \
         scheduling-svc {}, booking-svc {}\n  stores:   {stores}\n  demo:     {seeded}\n  \
         clock:    {now} (set it: curl -X PUT {gateway}/dev/clock -H 'content-type: application/json' \
         -d '{{\"now\":\"2021-08-09T20:00:00+09:00\"}}')\n\n\
         Walk the journey (copy and paste into a shell):\n\n\
         ---8<--- walk-through\n{walkthrough}---8<---\n\n\
         The call-center channel (vaxbook callcenter against the services' gRPC addresses; needs \
         vaxbook on PATH):\n\n\
         ---8<--- call center\n{call_center}---8<---\n\nStop with ctrl-c.\n",
        addresses.auth, addresses.session, addresses.scheduling, addresses.booking
    )
}
