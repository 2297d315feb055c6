//! The HTTP edge against slow and odd clients, over real sockets on 127.0.0.1 with short
//! configured timeouts: idle, half-sent and keep-alive connections are closed after the
//! timeouts while `/healthz` stays fast; a stalled body gets 408; oversized URIs and headers get
//! 414/431, all as `application/problem+json`.
//!
//! Nothing here waits by sleeping: each connection is read until the server closes it, with an
//! outer bound that fails the test.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gateway::edge::EdgeTimeouts;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const HEADER_READ: Duration = Duration::from_secs(1);
const BODY: Duration = Duration::from_secs(1);
const IDLE: Duration = Duration::from_secs(2);
/// How long past its timeout a connection may stay open before the test fails.
const SLACK: Duration = Duration::from_secs(3);

struct Gateway {
    addr: SocketAddr,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Gateway {
    async fn start() -> Self {
        platform::telemetry::init_for_tests();
        // Nothing listens on port 1: these tests never get as far as a gRPC call.
        let nowhere = "http://127.0.0.1:1";
        let mut config = gateway::Config::local(nowhere, nowhere, nowhere, nowhere);
        config.edge = EdgeTimeouts {
            header_read: HEADER_READ,
            body: BODY,
            idle: IDLE,
        };
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(gateway::serve(config, listener, shutdown.clone()));
        Self {
            addr,
            shutdown,
            server,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .expect("the gateway stops")
            .unwrap()
            .unwrap();
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    /// Sends `request` on a new connection and reads until the server closes it.
    async fn exchange(&self, request: &[u8]) -> String {
        let mut stream = self.connect().await;
        stream.write_all(request).await.unwrap();
        read_to_close(&mut stream, HEADER_READ + SLACK)
            .await
            .expect("the server answers and closes")
    }

    /// `GET /healthz` on a new connection; returns how long the answer took.
    async fn healthz(&self) -> Duration {
        let started = Instant::now();
        let answer = self
            .exchange(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
            .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        started.elapsed()
    }
}

/// Reads until EOF (or a reset), failing with `None` if the connection is still open after
/// `bound`.
async fn read_to_close(stream: &mut TcpStream, bound: Duration) -> Option<String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(bound, async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&received).into_owned())
}

fn assert_problem(answer: &str, status: u16) {
    let head_end = answer.find("\r\n\r\n").unwrap_or(answer.len());
    let head = answer[..head_end].to_ascii_lowercase();
    assert!(
        head.starts_with(&format!("http/1.1 {status}")),
        "expected {status}: {answer}"
    );
    assert!(
        head.contains("content-type: application/problem+json"),
        "{answer}"
    );
    let body: serde_json::Value = serde_json::from_str(answer[head_end..].trim()).unwrap();
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|uri| uri.contains("/problems/"))
    );
}

#[tokio::test]
async fn idle_and_slowloris_connections_are_closed_while_healthz_stays_fast() {
    let gateway = Gateway::start().await;

    // Connections that never send a byte.
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(gateway.connect().await);
    }
    // Slowloris: a request head that keeps growing, one header line at a time, never ending.
    let mut slowloris = Vec::new();
    for index in 0..20 {
        let mut stream = gateway.connect().await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n")
            .await
            .unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let drip = tokio::spawn(async move {
            // The attack's own pace; the test never waits on it.
            let mut ticker = tokio::time::interval(Duration::from_millis(200));
            loop {
                ticker.tick().await;
                let line = format!("X-Drip-{index}: 1\r\n");
                if writer.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        let closed = tokio::spawn(async move {
            let mut sink = [0u8; 1024];
            tokio::time::timeout(HEADER_READ + SLACK, async {
                loop {
                    match reader.read(&mut sink).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await
            .is_ok()
        });
        slowloris.push((drip, closed));
    }
    // A keep-alive connection that got its answer and then goes quiet.
    let mut kept_alive = gateway.connect().await;
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();

    // While all of that is open, a real client is answered at once.
    let started = Instant::now();
    let healthz = gateway.healthz().await;
    assert!(healthz < Duration::from_millis(500), "{healthz:?}");

    let answer = read_to_close(&mut kept_alive, HEADER_READ + SLACK)
        .await
        .expect("an idle keep-alive connection is closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    for mut stream in idle {
        let closed = read_to_close(&mut stream, HEADER_READ + SLACK).await;
        assert_eq!(closed.as_deref(), Some(""), "an idle connection is closed");
    }
    for (drip, closed) in slowloris {
        assert!(closed.await.unwrap(), "a slowloris connection is closed");
        drip.abort();
    }
    // Closed by the header timeout, not at once.
    assert!(started.elapsed() >= HEADER_READ, "{:?}", started.elapsed());

    assert!(gateway.healthz().await < Duration::from_millis(500));
    gateway.stop().await;
}

#[tokio::test]
async fn a_stalled_body_gets_408_problem() {
    let gateway = Gateway::start().await;
    let mut stream = gateway.connect().await;
    // A head promising 100 bytes, then ten of them, then nothing.
    stream
        .write_all(
            b"POST /v1/auth/verifications HTTP/1.1\r\nHost: gw\r\n\
              Content-Type: application/json\r\nX-Device-Id: device-1\r\n\
              Content-Length: 100\r\n\r\n{\"provider",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_to_close(&mut stream, BODY + SLACK)
        .await
        .expect("the gateway answers and closes");
    assert!(started.elapsed() >= BODY, "{:?}", started.elapsed());
    assert_problem(&answer, 408);
    gateway.stop().await;
}

#[tokio::test]
async fn oversized_uris_and_headers_are_problems() {
    let gateway = Gateway::start().await;

    let long_query = "a".repeat(gateway::edge::MAX_URI_BYTES + 100);
    let request =
        format!("GET /healthz?q={long_query} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
    assert_problem(&gateway.exchange(request.as_bytes()).await, 414);

    let big_value = "v".repeat(gateway::edge::MAX_HEADER_BYTES + 100);
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Big: {big_value}\r\nConnection: close\r\n\r\n"
    );
    assert_problem(&gateway.exchange(request.as_bytes()).await, 431);

    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n");
    for index in 0..gateway::edge::MAX_HEADERS + 5 {
        many.push_str(&format!("X-H{index}: 1\r\n"));
    }
    many.push_str("\r\n");
    assert_problem(&gateway.exchange(many.as_bytes()).await, 431);

    // Limits are not hit by an ordinary request.
    assert!(gateway.healthz().await < Duration::from_millis(500));
    gateway.stop().await;
}

/// What hyper cannot parse never reaches the application, so it cannot be a problem document
/// (see `gateway::edge`): it is at least refused with 400 and closed at once, never left open.
#[tokio::test]
async fn unparseable_heads_are_refused_and_closed_at_once() {
    let gateway = Gateway::start().await;
    for request in [
        &b"GET /healthz HTTP/1.1\r\nHost: gw\r\nBad Header: x\r\n\r\n"[..],
        &b"GET /healthz HTTP/1.1\r\nHost: gw\r\nContent-Length: ten\r\n\r\n"[..],
        &b"\x16\x03\x01 not http at all\r\n\r\n"[..],
    ] {
        let started = Instant::now();
        let answer = gateway.exchange(request).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(started.elapsed() < HEADER_READ, "{:?}", started.elapsed());
    }
    assert!(gateway.healthz().await < Duration::from_millis(500));
    gateway.stop().await;
}

#[test]
fn the_gateway_binary_answers_help() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success(), "{help:?}");
    assert!(String::from_utf8_lossy(&help.stdout).contains("environment variables"));
}
