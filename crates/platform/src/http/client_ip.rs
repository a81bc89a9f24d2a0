//! The client's address: the TCP peer, or, when the peer is a trusted proxy
//! (`server.trusted_proxies`), the nearest untrusted hop of `X-Forwarded-For`.
//!
//! Walking the header from the right stops at the first address no trusted proxy vouches for,
//! so a client cannot pick its own address by sending a forged header.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::Request;
use ipnet::IpNet;

/// The header a proxy appends the address it received the request from to.
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// The client address of `request`, or `None` when the server recorded no peer (a router
/// called directly, as in unit tests).
///
/// ```
/// use std::net::SocketAddr;
/// use axum::extract::ConnectInfo;
/// let proxy: SocketAddr = "10.0.0.5:4000".parse().unwrap();
/// let trusted = ["10.0.0.0/8".parse().unwrap()];
/// let mut request = axum::http::Request::new(());
/// request.extensions_mut().insert(ConnectInfo(proxy));
/// request.headers_mut().insert("x-forwarded-for", "1.2.3.4, 10.0.0.9".parse().unwrap());
/// let ip = platform::http::client_ip::client_ip(&request, &trusted);
/// assert_eq!(ip, Some("1.2.3.4".parse().unwrap()));
/// ```
pub fn client_ip<B>(request: &Request<B>, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()?
        .0
        .ip();
    Some(resolve(peer, request.headers(), trusted_proxies))
}

fn resolve(peer: IpAddr, headers: &axum::http::HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    // Several headers are one list, in order; the rightmost hop is the closest.
    let hops: Vec<&str> = headers
        .get_all(FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => client = ip,
            Ok(ip) => return ip,
            // A garbled hop: nothing to its left can be believed.
            Err(_) => return client,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(peer: &str, forwarded: &[&str], trusted: &[&str], expected: &str) {
        let mut headers = axum::http::HeaderMap::new();
        for value in forwarded {
            headers.append(FORWARDED_FOR, value.parse().unwrap());
        }
        let trusted: Vec<IpNet> = trusted.iter().map(|net| net.parse().unwrap()).collect();
        let got = resolve(peer.parse().unwrap(), &headers, &trusted);
        assert_eq!(
            got,
            expected.parse::<IpAddr>().unwrap(),
            "{peer} {forwarded:?}"
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        check("203.0.113.7", &["1.1.1.1"], &[], "203.0.113.7");
        check("203.0.113.7", &["1.1.1.1"], &["10.0.0.0/8"], "203.0.113.7");
    }

    #[test]
    fn a_trusted_chain_yields_the_first_untrusted_hop_from_the_right() {
        let trusted = ["10.0.0.0/8"];
        check(
            "10.0.0.1",
            &["6.6.6.6, 1.2.3.4, 10.0.0.2"],
            &trusted,
            "1.2.3.4",
        );
        check("10.0.0.1", &["6.6.6.6", "1.2.3.4"], &trusted, "1.2.3.4");
        check("10.0.0.1", &["10.0.0.3"], &trusted, "10.0.0.3");
        check("10.0.0.1", &[], &trusted, "10.0.0.1");
        check(
            "10.0.0.1",
            &["1.2.3.4, garbage, 10.0.0.2"],
            &trusted,
            "10.0.0.2",
        );
        check("::1", &["2001:db8::1"], &["::1/128"], "2001:db8::1");
    }
}
