//! The client's address, for auth-svc's per-address start limit. It is the TCP peer, unless
//! the peer is one of the configured trusted proxies (`GATEWAY_TRUSTED_PROXIES`: addresses or
//! CIDR blocks, comma-separated): then `X-Forwarded-For` is read from the right, skipping
//! trusted hops, and the first address that is not a trusted proxy is the client. From any
//! other peer the header is ignored, so a client cannot choose the address it is counted as.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use http::request::Parts;

use crate::AppState;

/// One trusted address or block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Block {
    network: IpAddr,
    prefix: u8,
}

impl Block {
    fn parse(raw: &str) -> Option<Self> {
        let (address, prefix) = match raw.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.parse::<u8>().ok()?)),
            None => (raw, None),
        };
        let network = address.trim().parse::<IpAddr>().ok()?.to_canonical();
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(bits);
        (prefix <= bits).then_some(Self { network, prefix })
    }

    fn contains(&self, address: IpAddr) -> bool {
        let keep = |bits: u32| -> u128 {
            if self.prefix == 0 {
                0
            } else {
                u128::MAX << (bits - u32::from(self.prefix))
            }
        };
        match (self.network, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = keep(32);
                (u128::from(u32::from(network)) & mask) == (u128::from(u32::from(address)) & mask)
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = keep(128);
                (u128::from(network) & mask) == (u128::from(address) & mask)
            }
            _ => false,
        }
    }
}

/// The proxies whose `X-Forwarded-For` the gateway believes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Block>);

impl TrustedProxies {
    /// Parses `GATEWAY_TRUSTED_PROXIES`; empty trusts no proxy.
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        raw.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                Block::parse(entry).ok_or_else(|| {
                    anyhow::anyhow!(
                        "GATEWAY_TRUSTED_PROXIES: `{entry}` is not an IP address or CIDR block"
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Self)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(address))
    }

    /// The client behind `peer`, given the request's `X-Forwarded-For` values.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops = forwarded_for
            .iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .rev();
        let mut client = peer;
        for hop in hops {
            let Ok(address) = hop.parse::<IpAddr>() else {
                // A malformed hop ends what can be believed.
                break;
            };
            client = address.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// The client's address as this request's extractor; `None` when the connection's peer is not
/// known (requests served without the edge, as in router tests).
pub struct ClientAddress(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(Self(None));
        };
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        Ok(Self(Some(
            state.trusted_proxies.client(peer.ip(), &forwarded),
        )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    #[test]
    fn x_forwarded_for_is_ignored_from_an_untrusted_peer() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.0.2.1").unwrap();
        assert_eq!(
            proxies.client(ip("203.0.113.5"), &["198.51.100.7"]),
            ip("203.0.113.5")
        );
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("10.1.1.1"), &["1.2.3.4"]), ip("10.1.1.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_first_untrusted_hop_from_the_right_is_the_client() {
        let proxies = TrustedProxies::parse("10.0.0.0/8,192.0.2.1").unwrap();
        // The client may put anything on the left; it is not believed past its own hop.
        assert_eq!(
            proxies.client(ip("10.0.0.2"), &["6.6.6.6, 198.51.100.7", "192.0.2.1"]),
            ip("198.51.100.7")
        );
        assert_eq!(proxies.client(ip("10.0.0.2"), &[]), ip("10.0.0.2"));
        assert_eq!(
            proxies.client(ip("10.0.0.2"), &["garbage, 10.3.3.3"]),
            ip("10.3.3.3")
        );
        assert_eq!(
            proxies.client(ip("::ffff:10.0.0.2"), &["198.51.100.8"]),
            ip("198.51.100.8")
        );
    }

    #[test]
    fn the_proxy_list_is_checked() {
        assert!(TrustedProxies::parse("").unwrap().0.is_empty());
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.internal").is_err());
        let v6 = TrustedProxies::parse("fd00::/8").unwrap();
        assert!(v6.trusts(ip("fd12::1")));
        assert!(!v6.trusts(ip("2001:db8::1")));
        let all = TrustedProxies::parse("0.0.0.0/0").unwrap();
        assert!(all.trusts(ip("8.8.8.8")));
    }
}
