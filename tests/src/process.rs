//! Starting and stopping vaxbook processes for tests.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// A free loopback address (the port is released for the child to bind).
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
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

/// The five services as separate processes on free ports, against the real PostgreSQL (a fresh
/// database) and Redis (a fresh key prefix).
pub struct ProcessStack {
    pub gateway_url: String,
    pub auth_url: String,
    pub session_url: String,
    pub scheduling_url: String,
    pub booking_url: String,
    pub database_url: String,
    pub redis_url: String,
    pub redis_prefix: String,
    pub admin_key: String,
    pub procs: Vec<Proc>,
}

impl ProcessStack {
    pub async fn start(label: &str) -> anyhow::Result<Self> {
        Self::start_with(label, &[]).await
    }

    /// Starts the stack with extra environment variables for every process.
    pub async fn start_with(label: &str, extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let database_url = platform::pg::create_test_database(label).await?;
        let redis_url = platform::config::string(
            "VAXBOOK_TEST_REDIS_URL",
            platform::redis_conn::DEFAULT_REDIS_URL,
        );
        // Fail clearly when Redis is down rather than timing out later.
        platform::redis_conn::connect_for_tests().await?;
        let redis_prefix = platform::redis_conn::test_prefix(label);
        let admin_key = format!("admin-{}", uuid::Uuid::new_v4().simple());
        let dir = logs_dir(label)?;

        let auth = free_addr()?;
        let session = free_addr()?;
        let scheduling = free_addr()?;
        let booking = free_addr()?;
        let gateway = free_addr()?;
        let mut env: HashMap<String, String> = HashMap::new();
        let mut set = |key: &str, value: String| {
            env.insert(key.to_owned(), value);
        };
        set("DATABASE_URL", database_url.clone());
        set("REDIS_URL", redis_url.clone());
        set("REDIS_KEY_PREFIX", redis_prefix.clone());
        set("VAXBOOK_ADMIN_KEY", admin_key.clone());
        set("AUTH_LISTEN_ADDR", auth.to_string());
        set("SESSION_LISTEN_ADDR", session.to_string());
        set("SCHEDULING_LISTEN_ADDR", scheduling.to_string());
        set("BOOKING_LISTEN_ADDR", booking.to_string());
        set("GATEWAY_LISTEN_ADDR", gateway.to_string());
        set("GATEWAY_PUBLIC_URL", format!("http://{gateway}"));
        for prefix in ["AUTH", "SESSION", "SCHEDULING", "BOOKING"] {
            set(&format!("{prefix}_METRICS_ADDR"), free_addr()?.to_string());
        }
        set("VAXBOOK_AUTH_URL", format!("http://{auth}"));
        set("VAXBOOK_SESSION_URL", format!("http://{session}"));
        set("VAXBOOK_SCHEDULING_URL", format!("http://{scheduling}"));
        set("VAXBOOK_BOOKING_URL", format!("http://{booking}"));
        set(
            "AUTH_PERSON_KEY_SECRET",
            format!("secret-{}", uuid::Uuid::new_v4().simple()),
        );
        set("RUST_LOG", "info".to_owned());
        for (key, value) in extra_env {
            set(key, (*value).to_owned());
        }

        let mut procs = Vec::new();
        for name in [
            "session-svc",
            "auth-svc",
            "scheduling-svc",
            "booking-svc",
            "gateway",
        ] {
            procs.push(Proc::spawn(name, name, &[], &env, &dir)?);
        }
        let gateway_url = format!("http://{gateway}");
        wait_ready(&gateway_url, &mut procs, Duration::from_secs(90)).await?;
        Ok(Self {
            gateway_url,
            auth_url: format!("http://{auth}"),
            session_url: format!("http://{session}"),
            scheduling_url: format!("http://{scheduling}"),
            booking_url: format!("http://{booking}"),
            database_url,
            redis_url,
            redis_prefix,
            admin_key,
            procs,
        })
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
        let gateway = free_addr()?;
        let mut env = HashMap::new();
        env.insert("VAXBOOK_DEV_ADDR".to_owned(), gateway.to_string());
        env.insert("RUST_LOG".to_owned(), "info".to_owned());
        for (key, value) in extra_env {
            env.insert((*key).to_owned(), (*value).to_owned());
        }
        let proc = Proc::spawn("vaxbook-dev", "vaxbook", &["dev"], &env, &dir)?;
        let gateway_url = format!("http://{gateway}");
        let mut procs = [proc];
        wait_ready(&gateway_url, &mut procs, Duration::from_secs(60)).await?;
        let [proc] = procs;
        Ok(Self { gateway_url, proc })
    }
}
