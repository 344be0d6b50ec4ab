//! Members' host names and their addresses. Each address a member's name
//! resolves to is a member of its own in the balancer (its own health,
//! ejection and breaker, the member's weight each); names are resolved
//! when the configuration loads (a typo is refused then) and again every
//! `resolve_interval` by the pool's task, which adds the addresses that
//! appeared and retires the ones that are gone.

use std::{
    io,
    net::{IpAddr, SocketAddr},
};

/// `host:port` with the scheme's port added when the URL left it out.
pub fn with_port(authority: &str, scheme: &str) -> String {
    let port_given = authority.rsplit_once(':').is_some_and(|(h, p)| {
        !h.ends_with(':') && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
    }) && !authority.ends_with(']');
    if port_given {
        authority.to_string()
    } else {
        let port = if scheme == "https" { 443 } else { 80 };
        format!("{authority}:{port}")
    }
}

/// The address when the host is an IP address (nothing to resolve).
pub fn literal(address: &str) -> Option<SocketAddr> {
    address.parse().ok().or_else(|| {
        let (host, port) = address.rsplit_once(':')?;
        let ip: IpAddr = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?;
        Some(SocketAddr::new(ip, port.parse().ok()?))
    })
}

/// Resolves now, blocking (while a configuration loads).
pub fn resolve_blocking(address: &str) -> io::Result<Vec<SocketAddr>> {
    use std::net::ToSocketAddrs;
    Ok(distinct(address.to_socket_addrs()?))
}

/// Resolves on the runtime's blocking pool.
pub async fn resolve(address: &str) -> io::Result<Vec<SocketAddr>> {
    Ok(distinct(tokio::net::lookup_host(address).await?))
}

/// In a stable order, so that an unchanged answer is seen as unchanged.
fn distinct(addresses: impl Iterator<Item = SocketAddr>) -> Vec<SocketAddr> {
    let mut all: Vec<SocketAddr> = addresses.collect();
    all.sort();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_literals() {
        assert_eq!(with_port("backend", "http"), "backend:80");
        assert_eq!(with_port("backend:8080", "https"), "backend:8080");
        assert_eq!(with_port("[::1]", "https"), "[::1]:443");
        assert_eq!(with_port("[::1]:9", "http"), "[::1]:9");
        assert_eq!(literal("[::1]:9"), Some("[::1]:9".parse().unwrap()));
        assert_eq!(literal("10.0.0.1:80"), Some("10.0.0.1:80".parse().unwrap()));
        assert_eq!(literal("localhost:80"), None);
    }

    #[test]
    fn a_name_gives_every_address_once() {
        let all = resolve_blocking("localhost:80").unwrap();
        assert!(!all.is_empty() && all.iter().all(|a| a.ip().is_loopback()));
        let mut sorted = all.clone();
        sorted.dedup();
        assert_eq!(sorted, all);
    }
}
