//! Who is at the other end of a request: the peer's address, or, only when the peer is one
//! of `JOBDECK_TRUSTED_PROXIES`, the address its `X-Forwarded-For` names (the nearest hop
//! that is not itself a trusted proxy). Anyone can send the header; only a proxy we run
//! can be believed. The same rule gives the scheme a proxy says the client used.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};

/// Addresses or CIDR ranges (`10.0.0.0/8`, `::1`), from `JOBDECK_TRUSTED_PROXIES`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// A comma-separated list; an entry that is neither an address nor a CIDR is an error.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (addr, bits) = match entry.split_once('/') {
                Some((addr, bits)) => (addr, Some(bits)),
                None => (entry, None),
            };
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| format!("{entry:?} is not an address or CIDR range"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(bits) => bits
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("{entry:?} has a bad prefix length"))?,
            };
            ranges.push((addr, bits));
        }
        Ok(Self(ranges))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|&(net, bits)| match (net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix(u32::from(net) as u128, u32::from(ip) as u128, bits, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix(u128::from(net), u128::from(ip), bits, 128),
            _ => false,
        })
    }
}

fn prefix(net: u128, ip: u128, bits: u8, width: u8) -> bool {
    if bits == 0 {
        return true;
    }
    let shift = u32::from(width - bits);
    (net >> shift) == (ip >> shift)
}

fn peer(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_canonical())
}

/// The client's address, as text for the audit log and the login limit.
pub fn client_addr(
    trusted: &TrustedProxies,
    extensions: &Extensions,
    headers: &HeaderMap,
) -> Option<String> {
    let peer = peer(extensions)?;
    if !trusted.contains(peer) {
        return Some(peer.to_string());
    }
    // From the nearest hop outwards: proxies we trust are passed over, and the first hop
    // that is not one is the client. What lies beyond it was written by the client itself.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| value.to_str().unwrap_or_default().split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) if trusted.contains(ip) => client = ip,
            Ok(ip) => return Some(ip.to_string()),
            // A hop we cannot read names nobody: the last proxy we believed is the client.
            Err(_) => break,
        }
    }
    Some(client.to_string())
}

/// `https` when a trusted proxy says so (`X-Forwarded-Proto`), else `http`: the portal
/// itself serves plain HTTP.
pub fn request_scheme(
    trusted: &TrustedProxies,
    extensions: &Extensions,
    headers: &HeaderMap,
) -> &'static str {
    let proxied = peer(extensions).is_some_and(|peer| trusted.contains(peer));
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    if proxied && https {
        "https"
    } else {
        "http"
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn from(peer: &str, forwarded: Option<&str>, trusted: &str) -> Option<String> {
        let mut extensions = Extensions::new();
        extensions.insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 4000)));
        let mut headers = HeaderMap::new();
        if let Some(value) = forwarded {
            headers.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        client_addr(
            &TrustedProxies::parse(trusted).unwrap(),
            &extensions,
            &headers,
        )
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let client = Some("198.51.100.9".to_string());
        assert_eq!(
            from("203.0.113.5", Some("198.51.100.9"), ""),
            Some("203.0.113.5".into())
        );
        assert_eq!(from("10.0.0.2", Some("198.51.100.9"), "10.0.0.0/8"), client);
        // A client's own X-Forwarded-For entries in front of the proxy's are ignored.
        assert_eq!(
            from(
                "10.0.0.2",
                Some("1.2.3.4, 198.51.100.9, 10.0.0.3"),
                "10.0.0.0/8"
            ),
            client
        );
        assert_eq!(
            from("10.0.0.2", Some("garbage"), "10.0.0.0/8"),
            Some("10.0.0.2".into())
        );
        // Garbage written by the client in front of the real hop changes nothing.
        assert_eq!(
            from("10.0.0.2", Some("garbage, 198.51.100.9"), "10.0.0.0/8"),
            client
        );
        assert_eq!(
            from("10.0.0.2", Some("198.51.100.9, 10.0.0.3"), "10.0.0.0/8"),
            client
        );
        assert_eq!(
            from("::1", Some("2001:db8::7"), "::1"),
            Some("2001:db8::7".into())
        );
        assert_eq!(
            from("::ffff:10.0.0.2", Some("198.51.100.9"), "10.0.0.2"),
            client
        );
    }

    #[test]
    fn the_list_parses_addresses_and_ranges() {
        let list = TrustedProxies::parse("10.0.0.0/8, ::1,192.0.2.1/32").unwrap();
        assert!(list.contains("10.200.0.1".parse().unwrap()));
        assert!(!list.contains("11.0.0.1".parse().unwrap()));
        assert!(list.contains("::1".parse().unwrap()));
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.local").is_err());
        assert_eq!(
            TrustedProxies::parse(" ").unwrap(),
            TrustedProxies::default()
        );
    }
}
