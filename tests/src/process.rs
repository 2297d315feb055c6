//! Starting and stopping vaxbook processes for tests.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use platform::operator::OperatorCredential;
use platform::staff::StaffRole;
use proto::auth::v1::LoginRequest;
use proto::auth::v1::staff_auth_service_client::StaffAuthServiceClient;

/// The login name of the operator every [`ProcessStack`] bootstraps.
pub const OPERATOR_NAME: &str = "operator.e2e";
/// The organisation of that operator.
pub const OPERATOR_ORG: &str = "vaxbook-operations";
/// The organisation of the staff accounts [`ProcessStack::staff_account`] creates.
pub const CALL_CENTER_ORG: &str = "national-call-center";

/// The target profile directory (`target/debug`, `target/release`) this executable was built
/// into: test executables live in its `deps/`, binaries in it directly.
fn profile_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow::anyhow!("cannot locate the target directory"))?;
    let dir = if dir.ends_with("deps") {
        dir.parent().unwrap_or(dir)
    } else {
        dir
    };
    Ok(dir.to_path_buf())
}

/// The path of a workspace binary built into the same profile directory as this executable.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = profile_dir()?.join(name);
    if !path.exists() {
        anyhow::bail!(
            "{} is missing: build the binaries first with `cargo build --workspace --bins`",
            path.display()
        );
    }
    Ok(path)
}

/// A free loopback port for a process that must be told its port in advance (the
/// deploy/local scripts). It is drawn below the kernel's ephemeral range, so no process binding
/// port 0 (everything else the tests start) can take it between this check and its use.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| {
            range
                .split_whitespace()
                .next()
                .and_then(|low| low.parse().ok())
        })
        .unwrap_or(32768);
    let low = 10_000u16.min(ephemeral_low.saturating_sub(1000));
    let span = ephemeral_low.saturating_sub(low).max(1);
    for _ in 0..200 {
        let random = u16::from_le_bytes(
            *uuid::Uuid::new_v4()
                .as_bytes()
                .first_chunk::<2>()
                .unwrap_or(&[0, 0]),
        );
        let port = low + random % span;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            return Ok(listener.local_addr()?);
        }
    }
    anyhow::bail!("no free port below the ephemeral range")
}

fn logs_dir(label: &str) -> anyhow::Result<PathBuf> {
    let target = profile_dir()?
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = target
        .join("e2e-logs")
        .join(format!("{label}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Writes a new auth-svc signing key (`vaxbook keygen`, PKCS#8 PEM) to `path`.
fn write_signing_key(path: &std::path::Path) -> anyhow::Result<()> {
    let output = Command::new(binary("vaxbook")?)
        .arg("keygen")
        .stdin(Stdio::null())
        .output()?;
    if !output.status.success() || output.stdout.is_empty() {
        anyhow::bail!(
            "`vaxbook keygen` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::write(path, &output.stdout)?;
    Ok(())
}

/// A staff account created in auth-svc's database, with what its login takes. `Debug` shows
/// neither the password nor the TOTP secret.
#[derive(Clone)]
pub struct StaffAccount {
    /// The account id (the `sub` of its tokens, the actor of its audit entries).
    pub id: String,
    pub username: String,
    pub organisation: String,
    pub role: StaffRole,
    pub password: String,
    /// Base32, as `vaxbook accounts create` shows it once.
    pub totp_secret: String,
}

impl std::fmt::Debug for StaffAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffAccount")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("organisation", &self.organisation)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl StaffAccount {
    /// The account's TOTP code now (auth-svc checks it on the real clock, ± one step).
    pub fn totp_now(&self) -> anyhow::Result<String> {
        let unix = u64::try_from(chrono::Utc::now().timestamp())?;
        auth_svc::accounts::credentials::totp_code(&self.totp_secret, &self.username, unix)
    }
}

/// Creates a staff account in auth-svc's staff database (`AUTH_DATABASE_URL`), as
/// `vaxbook accounts create` does, with a fresh random password.
pub async fn create_staff_account(
    auth_database_url: &str,
    username: &str,
    organisation: &str,
    role: StaffRole,
) -> anyhow::Result<StaffAccount> {
    let pool = platform::pg::pool(auth_database_url, 2)?;
    let store = auth_svc::accounts::store::PgAccountStore::migrate(auth_database_url, pool).await?;
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let created = auth_svc::accounts::create_account(
        &store,
        username,
        organisation,
        role,
        password.clone(),
        chrono::Utc::now(),
    )
    .await?;
    Ok(StaffAccount {
        id: created.account.id.to_string(),
        username: created.account.username,
        organisation: created.account.organisation,
        role,
        password,
        totp_secret: created.totp_secret,
    })
}

/// Logs `account` in at `auth_url` (`StaffAuthService.Login`, password and the current TOTP
/// code); the token it answers.
pub async fn staff_login(auth_url: &str, account: &StaffAccount) -> anyhow::Result<String> {
    let mut client =
        StaffAuthServiceClient::new(platform::grpc::channel(auth_url, Duration::from_secs(30))?);
    let answer = client
        .login(LoginRequest {
            username: account.username.clone(),
            password: account.password.clone(),
            totp_code: account.totp_now()?,
        })
        .await
        .map_err(|status| {
            let problem = platform::problem::Problem::from_status(&status);
            anyhow::anyhow!(
                "{} could not log in: {} ({}): {}",
                account.username,
                problem.kind.name(),
                problem.extra.get("reason").map_or("", String::as_str),
                problem.detail
            )
        })?
        .into_inner();
    anyhow::ensure!(
        answer.role == account.role.as_str(),
        "{} logged in as {}, not {}",
        account.username,
        answer.role,
        account.role.as_str()
    );
    Ok(answer.token)
}

/// One child process, its logs (stderr) and its output (stdout) each in a file.
pub struct Proc {
    pub name: String,
    child: Child,
    pub log: PathBuf,
    pub out: PathBuf,
}

impl Proc {
    pub fn spawn(
        name: &str,
        binary_name: &str,
        args: &[&str],
        env: &HashMap<String, String>,
        dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let log = dir.join(format!("{name}.log"));
        let out_path = dir.join(format!("{name}.out"));
        let err = std::fs::File::create(&log)?;
        let out = std::fs::File::create(&out_path)?;
        let mut command = Command::new(binary(binary_name)?);
        command
            .args(args)
            .envs(env)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        if let Some(endpoint) = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            command.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
        }
        let child = command.spawn()?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
            out: out_path,
        })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits (at most `limit`) for the first line of `file` containing `needle`; fails when the
    /// process exits first.
    pub async fn wait_for_line(
        &mut self,
        in_output: bool,
        needle: &str,
        limit: Duration,
    ) -> anyhow::Result<String> {
        let started = Instant::now();
        loop {
            let text = if in_output {
                self.output()
            } else {
                self.logs()
            };
            if let Some(line) = text.lines().find(|line| line.contains(needle)) {
                return Ok(line.to_owned());
            }
            if !self.running() {
                anyhow::bail!(
                    "{} exited before saying `{needle}`; see {}",
                    self.name,
                    self.log.display()
                );
            }
            if started.elapsed() > limit {
                anyhow::bail!(
                    "{} did not say `{needle}` within {}s; see {}",
                    self.name,
                    limit.as_secs(),
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What the process logged (stderr) so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What the process printed on stdout so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (bounded) for a graceful exit; returns whether it exited cleanly.
    pub async fn terminate(&mut self, limit: Duration) -> anyhow::Result<bool> {
        if self.child.try_wait()?.is_some() {
            return Ok(false);
        }
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.success());
            }
            if started.elapsed() > limit {
                self.child.kill()?;
                let _ = self.child.wait();
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL (what `Child::kill` sends on Unix: no drain, no goodbye) and reaps the process;
    /// what a replica dying under load looks like to its callers.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_none() {
            self.child.kill()?;
        }
        self.child.wait()?;
        Ok(())
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- last lines of {} ({}) ----\n{}",
                self.name,
                self.log.display(),
                self.tail()
            );
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The value of `key=` in a log line (up to the next space).
fn field(line: &str, key: &str) -> anyhow::Result<String> {
    line.split_whitespace()
        .find_map(|part| part.strip_prefix(&format!("{key}=")))
        .map(|value| value.trim_matches('"').to_owned())
        .ok_or_else(|| anyhow::anyhow!("no {key} in `{line}`"))
}

/// The environment prefix of a service's own variables (`booking-svc` → `BOOKING`).
fn listen_prefix(service: &str) -> String {
    service.trim_end_matches("-svc").to_ascii_uppercase()
}

/// Waits until `GET {base}/readyz` answers 200, or fails after `limit`.
pub async fn wait_ready(base: &str, procs: &mut [Proc], limit: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        for proc in procs.iter_mut() {
            if !proc.running() {
                anyhow::bail!(
                    "{} exited during start-up; see {}",
                    proc.name,
                    proc.log.display()
                );
            }
        }
        if let Ok(response) = client
            .get(format!("{base}/readyz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            && response.status().is_success()
        {
            return Ok(());
        }
        if started.elapsed() > limit {
            anyhow::bail!(
                "the system at {base} was not ready within {}s",
                limit.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many processes of each gRPC service a [`ProcessStack`] runs (the gateway runs one).
/// Replicas of a service share its store and, for auth-svc, the one signing key; the callers get
/// the comma-separated list of their addresses, as an operator would configure them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replicas {
    pub auth: usize,
    pub session: usize,
    pub scheduling: usize,
    pub booking: usize,
}

impl Default for Replicas {
    fn default() -> Self {
        Self {
            auth: 1,
            session: 1,
            scheduling: 1,
            booking: 1,
        }
    }
}

impl Replicas {
    fn of(&self, service: &str) -> usize {
        let count = match service {
            "auth-svc" => self.auth,
            "session-svc" => self.session,
            "scheduling-svc" => self.scheduling,
            "booking-svc" => self.booking,
            _ => 1,
        };
        count.max(1)
    }
}

/// The process name of replica `index` (0-based) of `service`: the first keeps the service's
/// name, the others are `booking-svc-2`, `booking-svc-3`, ...
pub fn replica_name(service: &str, index: usize) -> String {
    if index == 0 {
        service.to_owned()
    } else {
        format!("{service}-{}", index + 1)
    }
}

/// One running replica of a gRPC service.
#[derive(Clone, Debug)]
pub struct Replica {
    /// The service (`booking-svc`).
    pub service: &'static str,
    /// Its process name (`booking-svc-2`), as in [`ProcessStack::procs`].
    pub name: String,
    /// Its own gRPC URL.
    pub url: String,
    /// Where it serves `/metrics`.
    pub metrics_addr: String,
}

/// The five services as separate processes on free ports, against the real PostgreSQL (a fresh
/// database) and Redis (a fresh key prefix).
pub struct ProcessStack {
    pub gateway_url: String,
    /// The service's gRPC URL; with several replicas, the comma-separated list of them.
    pub auth_url: String,
    pub session_url: String,
    pub scheduling_url: String,
    pub booking_url: String,
    pub database_url: String,
    /// auth-svc's own database (`AUTH_DATABASE_URL`): staff accounts and auth-svc's audit trail,
    /// apart from the other services' as in production.
    pub auth_database_url: String,
    pub redis_url: String,
    pub redis_prefix: String,
    /// The credential of every admin RPC: the operator token of [`Self::operator_account`],
    /// logged in at auth-svc once the stack is up (production processes take no static key).
    pub operator: OperatorCredential,
    /// The operator account the harness created in auth-svc's database.
    pub operator_account: StaffAccount,
    /// Where each service serves `/metrics` (one entry per replica, by service name).
    pub metrics_addrs: Vec<(&'static str, String)>,
    /// Every replica of the four gRPC services, in start order.
    pub replicas: Vec<Replica>,
    /// The stand-in carriers' agency auth-svc checks phones with (through its production HTTP
    /// adapter); the journey's person is registered, add others to `agency.directory`.
    pub agency: platform::carrier::StandInAgency,
    pub procs: Vec<Proc>,
}

impl ProcessStack {
    pub async fn start(label: &str) -> anyhow::Result<Self> {
        Self::start_with(label, &[]).await
    }

    /// Starts the stack with extra environment variables for every process.
    pub async fn start_with(label: &str, extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_replicated(label, extra_env, Replicas::default()).await
    }

    /// Starts the stack with `replicas` processes of each gRPC service.
    pub async fn start_replicated(
        label: &str,
        extra_env: &[(&str, &str)],
        replicas: Replicas,
    ) -> anyhow::Result<Self> {
        let database_url = platform::pg::create_test_database(label).await?;
        let redis_url = platform::config::string(
            "VAXBOOK_TEST_REDIS_URL",
            platform::redis_conn::DEFAULT_REDIS_URL,
        );
        // Fail clearly when Redis is down rather than timing out later.
        platform::redis_conn::connect_for_tests().await?;
        let redis_prefix = platform::redis_conn::test_prefix(label);
        let auth_database_url =
            platform::pg::create_test_database(&format!("auth_{label}")).await?;
        let dir = logs_dir(label)?;

        // Every process binds port 0 and logs the addresses it got; the processes start in
        // dependency order, each told where the ones before it listen. No port is guessed, so
        // parallel tests cannot collide.
        let mut env: HashMap<String, String> = HashMap::new();
        let mut set = |key: &str, value: String| {
            env.insert(key.to_owned(), value);
        };
        set("DATABASE_URL", database_url.clone());
        set("REDIS_URL", redis_url.clone());
        set("REDIS_KEY_PREFIX", redis_prefix.clone());
        set("AUTH_DATABASE_URL", auth_database_url.clone());
        // booking-svc's credential towards scheduling-svc, fresh for each stack.
        set(
            platform::config::SERVICE_KEY_VAR,
            format!("service-{}", uuid::Uuid::new_v4().simple()),
        );
        for prefix in ["AUTH", "SESSION", "SCHEDULING", "BOOKING", "GATEWAY"] {
            set(&format!("{prefix}_LISTEN_ADDR"), "127.0.0.1:0".to_owned());
            set(&format!("{prefix}_METRICS_ADDR"), "127.0.0.1:0".to_owned());
        }
        set(
            "AUTH_PERSON_KEY_SECRET",
            format!("secret-{}", uuid::Uuid::new_v4().simple()),
        );
        // auth-svc refuses to start without a signing key file; one per stack, made the way
        // deploy/local makes it.
        let signing_key = dir.join("auth-signing-key.pem");
        write_signing_key(&signing_key)?;
        set("AUTH_SIGNING_KEY_FILE", signing_key.display().to_string());
        // session-svc signs admission grants with a key every replica shares.
        let session_key = dir.join("session-signing-key.pem");
        write_signing_key(&session_key)?;
        set(
            "SESSION_SIGNING_KEY_FILE",
            session_key.display().to_string(),
        );
        // The agency on a loopback port, behind auth-svc's HTTP adapter like the real one.
        let agency = platform::carrier::StandInAgency::start(std::sync::Arc::new(
            platform::carrier::CarrierDirectory::new(),
        ))
        .await?;
        let hong = crate::journey::HONG;
        agency
            .directory
            .register(&platform::carrier::Subscriber {
                name: hong.name.to_owned(),
                rrn: hong.rrn.to_owned(),
                phone: hong.phone.to_owned(),
                carrier: hong.carrier.to_owned(),
            })
            .map_err(|error| anyhow::anyhow!("cannot register the test person: {error}"))?;
        set("AUTH_CARRIER_CHECK_URL", agency.url().to_owned());
        set("NO_COLOR", "1".to_owned());
        // session-svc and scheduling-svc verify auth-svc's grants and tokens against its keys,
        // and auth-svc calls session-svc: the one cycle in the start order. auth-svc's replicas
        // get ports drawn here (keys are fetched lazily, so session-svc may start first).
        let mut auth_addrs = Vec::new();
        for _ in 0..replicas.of("auth-svc") {
            auth_addrs.push(free_addr()?);
        }
        let auth_list = auth_addrs
            .iter()
            .map(|addr| format!("http://{addr}"))
            .collect::<Vec<_>>()
            .join(",");
        set("VAXBOOK_AUTH_URL", auth_list);
        // session-svc's automatic waiting room reads booking-svc's capacity signal, and
        // booking-svc asks session-svc: booking-svc's ports are drawn here too.
        let mut booking_addrs = Vec::new();
        for _ in 0..replicas.of("booking-svc") {
            booking_addrs.push(free_addr()?);
        }
        set(
            "VAXBOOK_BOOKING_URL",
            booking_addrs
                .iter()
                .map(|addr| format!("http://{addr}"))
                .collect::<Vec<_>>()
                .join(","),
        );
        let mut log_filter = "info".to_owned();
        for (key, value) in extra_env {
            if *key == "RUST_LOG" {
                log_filter = (*value).to_owned();
            } else {
                set(key, (*value).to_owned());
            }
        }
        // The harness reads the bound addresses from these two lines, whatever else is filtered.
        set(
            "RUST_LOG",
            format!("{log_filter},vaxbook_platform::grpc=info,gateway=info"),
        );

        let limit = Duration::from_secs(90);
        let mut procs = Vec::new();
        let mut urls: HashMap<&'static str, String> = HashMap::new();
        let mut metrics_addrs = Vec::new();
        let mut replica_urls = Vec::new();
        let services: [(&'static str, &'static str); 4] = [
            ("session-svc", "VAXBOOK_SESSION_URL"),
            ("scheduling-svc", "VAXBOOK_SCHEDULING_URL"),
            ("auth-svc", "VAXBOOK_AUTH_URL"),
            ("booking-svc", "VAXBOOK_BOOKING_URL"),
        ];
        for (name, url_var) in services {
            let listen_var = format!("{}_LISTEN_ADDR", listen_prefix(name));
            let mut list = Vec::new();
            for index in 0..replicas.of(name) {
                let mut own_env = env.clone();
                let drawn = match name {
                    "auth-svc" => auth_addrs.get(index),
                    "booking-svc" => booking_addrs.get(index),
                    _ => None,
                };
                if let Some(addr) = drawn {
                    own_env.insert(listen_var.clone(), addr.to_string());
                }
                let proc_name = replica_name(name, index);
                let mut proc = Proc::spawn(&proc_name, name, &[], &own_env, &dir)?;
                let line = proc.wait_for_line(false, "serving gRPC", limit).await;
                procs.push(proc);
                let line = line?;
                let url = format!("http://{}", field(&line, "local_addr")?);
                let metrics_addr = field(&line, "metrics_addr")?;
                metrics_addrs.push((name, metrics_addr.clone()));
                replica_urls.push(Replica {
                    service: name,
                    name: proc_name,
                    url: url.clone(),
                    metrics_addr,
                });
                list.push(url);
            }
            let list = list.join(",");
            env.insert(url_var.to_owned(), list.clone());
            urls.insert(name, list);
        }
        let mut gateway = Proc::spawn("gateway", "gateway", &[], &env, &dir)?;
        let line = gateway.wait_for_line(false, "serving HTTP", limit).await;
        procs.push(gateway);
        let gateway_url = format!("http://{}", field(&line?, "local_addr")?);
        wait_ready(&gateway_url, &mut procs, limit).await?;
        let url = |name: &str| urls.get(name).cloned().unwrap_or_default();
        // A real operator, as production bootstraps one: an account in auth-svc's database,
        // logged in with password and TOTP code; its token authenticates every admin call.
        let operator_account = create_staff_account(
            &auth_database_url,
            OPERATOR_NAME,
            OPERATOR_ORG,
            StaffRole::Operator,
        )
        .await?;
        let operator =
            OperatorCredential::Token(staff_login(&url("auth-svc"), &operator_account).await?);
        Ok(Self {
            auth_url: url("auth-svc"),
            session_url: url("session-svc"),
            scheduling_url: url("scheduling-svc"),
            booking_url: url("booking-svc"),
            gateway_url,
            metrics_addrs,
            replicas: replica_urls,
            database_url,
            auth_database_url,
            redis_url,
            redis_prefix,
            operator,
            operator_account,
            agency,
            procs,
        })
    }

    /// The operator token (for `vaxbook … --operator-token` / `VAXBOOK_OPERATOR_TOKEN`).
    pub fn operator_token(&self) -> &str {
        match &self.operator {
            OperatorCredential::Token(token) => token,
            OperatorCredential::DevKey(_) => "",
        }
    }

    /// A new staff account of `role` in the national call center, in auth-svc's database.
    pub async fn staff_account(
        &self,
        username: &str,
        role: StaffRole,
    ) -> anyhow::Result<StaffAccount> {
        create_staff_account(&self.auth_database_url, username, CALL_CENTER_ORG, role).await
    }

    /// Logs `account` in at auth-svc (`StaffAuthService.Login`); the agent token.
    pub async fn login(&self, account: &StaffAccount) -> anyhow::Result<String> {
        staff_login(&self.auth_url, account).await
    }

    /// A new agent of the national call center, logged in: the account and its agent token.
    pub async fn agent(&self, username: &str) -> anyhow::Result<(StaffAccount, String)> {
        let account = self.staff_account(username, StaffRole::Agent).await?;
        let token = self.login(&account).await?;
        Ok((account, token))
    }

    /// Where this stack's one-time codes can be read: auth-svc's SMS outbox in its Redis prefix.
    pub fn otp(&self) -> crate::journey::OtpSource {
        crate::journey::OtpSource::RedisOutbox {
            url: self.redis_url.clone(),
            prefix: self.redis_prefix.clone(),
        }
    }

    /// The gRPC URLs of the four services, by crate name.
    pub fn service_urls(&self) -> Vec<(&'static str, String)> {
        vec![
            ("auth-svc", self.auth_url.clone()),
            ("session-svc", self.session_url.clone()),
            ("scheduling-svc", self.scheduling_url.clone()),
            ("booking-svc", self.booking_url.clone()),
        ]
    }

    /// The process of replica `proc_name` (e.g. `booking-svc-2`).
    pub fn proc_mut(&mut self, proc_name: &str) -> Option<&mut Proc> {
        self.procs.iter_mut().find(|proc| proc.name == proc_name)
    }

    /// SIGTERM to every process; returns the names of those that did not exit cleanly.
    pub async fn stop(&mut self) -> anyhow::Result<Vec<String>> {
        let mut unclean = Vec::new();
        // Gateway first, as a load balancer would drain it.
        for proc in self.procs.iter_mut().rev() {
            if !proc.terminate(Duration::from_secs(20)).await? {
                unclean.push(proc.name.clone());
            }
        }
        Ok(unclean)
    }
}

/// `vaxbook dev` as a child process on a free port.
pub struct DevStack {
    pub gateway_url: String,
    pub proc: Proc,
}

impl DevStack {
    /// `vaxbook dev` on the embedded default: in-process stores, even if the caller's shell
    /// has `DATABASE_URL` or `REDIS_URL` set.
    pub async fn start(label: &str) -> anyhow::Result<Self> {
        Self::start_with(label, &[("DATABASE_URL", ""), ("REDIS_URL", "")]).await
    }

    /// `vaxbook dev` with extra environment variables (e.g. real stores).
    pub async fn start_with(label: &str, extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = logs_dir(label)?;
        let mut env = HashMap::new();
        // Port 0: the gateway's address is read from the banner the dev run prints.
        env.insert("VAXBOOK_DEV_ADDR".to_owned(), "127.0.0.1:0".to_owned());
        env.insert("RUST_LOG".to_owned(), "info".to_owned());
        env.insert("NO_COLOR".to_owned(), "1".to_owned());
        for (key, value) in extra_env {
            env.insert((*key).to_owned(), (*value).to_owned());
        }
        let mut proc = Proc::spawn("vaxbook-dev", "vaxbook", &["dev"], &env, &dir)?;
        let limit = Duration::from_secs(60);
        let banner = proc.wait_for_line(true, "gateway:", limit).await;
        let gateway_url = match banner {
            Ok(line) => line.trim().trim_start_matches("gateway:").trim().to_owned(),
            Err(err) => {
                drop(proc);
                return Err(err);
            }
        };
        let mut procs = [proc];
        wait_ready(&gateway_url, &mut procs, limit).await?;
        let [proc] = procs;
        Ok(Self { gateway_url, proc })
    }
}
