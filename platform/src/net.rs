//! Listening sockets, for gRPC and HTTP alike.

use tokio::net::TcpListener;

/// Binds a TCP listener on `addr`, with an error that names the address.
pub async fn bind_tcp(addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|err| anyhow::anyhow!("binding {addr}: {err}"))
}
