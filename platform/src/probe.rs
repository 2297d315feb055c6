//! The health probe a container runs against its own process (`vaxbook healthcheck`): a
//! `grpc.health.v1` Check for the gRPC services, or a plain HTTP GET (the gateway's `/readyz`),
//! with a short deadline, needing no shell or curl in the image.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Asks the gRPC health service at `addr` (`host:port` or `http://host:port`) about the whole
/// server; `Ok` only for SERVING.
pub async fn grpc(addr: &str, timeout: Duration) -> Result<(), String> {
    let url = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    let channel = tonic::transport::Endpoint::from_shared(url)
        .map_err(|err| format!("`{addr}` is not a valid address: {err}"))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect_lazy();
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let answer = client
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|status| format!("{addr}: {}", status.message()))?
        .into_inner();
    if answer.status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32 {
        Ok(())
    } else {
        Err(format!("{addr} is not serving"))
    }
}

/// GETs `url` (`http://host:port/path`, plain HTTP/1.1); `Ok` for a 2xx status.
pub async fn http(url: &str, timeout: Duration) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}` is not an http:// URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/"),
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|err| format!("{authority}: {err}"))?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|err| err.to_string())?;
        let mut head = vec![0u8; 64];
        let read = stream
            .read(&mut head)
            .await
            .map_err(|err| err.to_string())?;
        let line = String::from_utf8_lossy(head.get(..read).unwrap_or_default()).into_owned();
        let status = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        if status.starts_with('2') {
            Ok(())
        } else {
            Err(format!("{url} answered {status}"))
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("{url} did not answer within {}s", timeout.as_secs()))?
}

/// Probes `target`: `http://…` URLs over HTTP, anything else (`grpc://host:port`,
/// `host:port`) over `grpc.health.v1`.
pub async fn check(target: &str, timeout: Duration) -> Result<(), String> {
    match target.strip_prefix("grpc://") {
        Some(addr) => grpc(addr, timeout).await,
        None if target.starts_with("http://") => http(target, timeout).await,
        None => grpc(target, timeout).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_fails_and_a_serving_one_passes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|err| panic!("bind: {err}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|err| panic!("addr: {err}"));
        let (_reporter, service) = tonic_health::server::health_reporter();
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await;
        });
        let timeout = Duration::from_secs(2);
        assert_eq!(check(&format!("grpc://{addr}"), timeout).await, Ok(()));
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap_or_else(|err| panic!("bind: {err}"));
        assert!(check(&closed.to_string(), timeout).await.is_err());
        assert!(
            check(&format!("http://{closed}/readyz"), timeout)
                .await
                .is_err()
        );
    }
}
