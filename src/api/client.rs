//! Who is asking: the client's user agent and address.
//!
//! The address is the socket's peer unless `trusted_proxies` says which
//! proxies stand in front of tokend: then `X-Forwarded-For` is read from the
//! right (each proxy appends the address it saw, so only the entries the
//! trusted proxies added can be believed; whatever the client sent comes
//! first). Only a text that parses as an IP address is taken, in its
//! canonical form; anything else falls back to the socket's peer.

use std::net::IpAddr;

use poem::{Request, http::header, web::RemoteAddr};

use crate::{config::TrustedProxies, registry::pipeline::ClientInfo};

/// The user agent and client address of a request.
pub fn client_info(req: &Request, trusted: &TrustedProxies) -> ClientInfo {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let peer = match req.remote_addr() {
        RemoteAddr(poem::Addr::SocketAddr(addr)) => Some(addr.ip()),
        _ => None,
    };
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    ClientInfo {
        user_agent,
        address: peer
            .map(|peer| client_address(peer, &forwarded, trusted))
            .map(|ip| ip.to_string()),
    }
}

/// The client's address, from the socket's `peer` and the
/// `X-Forwarded-For` entries (left to right) as far as `trusted` allows.
pub fn client_address(peer: IpAddr, forwarded: &[&str], trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    let parse = |text: &str| -> Option<IpAddr> {
        text.parse::<IpAddr>()
            .or_else(|_| text.parse::<std::net::SocketAddr>().map(|s| s.ip()))
            .ok()
            .map(|ip| ip.to_canonical())
    };
    match trusted {
        TrustedProxies::None => peer,
        TrustedProxies::Hops(hops) => {
            let hops = *hops as usize;
            if forwarded.len() < hops {
                // Fewer entries than proxies: the request did not come
                // through all of them.
                return peer;
            }
            parse(forwarded[forwarded.len() - hops]).unwrap_or(peer)
        }
        TrustedProxies::Networks(_) => {
            if !trusted.trusts(peer) {
                return peer;
            }
            let mut client = peer;
            for entry in forwarded.iter().rev() {
                let Some(ip) = parse(entry) else {
                    return peer;
                };
                client = ip;
                if !trusted.trusts(ip) {
                    break;
                }
            }
            client
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn networks(list: &[&str]) -> TrustedProxies {
        TrustedProxies::Networks(list.iter().map(|n| n.parse().unwrap()).collect())
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let spoofed = ["1.2.3.4"];
        assert_eq!(
            client_address(ip("10.0.0.9"), &spoofed, &TrustedProxies::None),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn hops_count_from_the_right() {
        // The client put 6.6.6.6 in first; the one proxy appended 1.2.3.4.
        let chain = ["6.6.6.6", "1.2.3.4"];
        let one = TrustedProxies::Hops(1);
        assert_eq!(client_address(ip("10.0.0.9"), &chain, &one), ip("1.2.3.4"));
        let two = TrustedProxies::Hops(2);
        assert_eq!(client_address(ip("10.0.0.9"), &chain, &two), ip("6.6.6.6"));
        let three = TrustedProxies::Hops(3);
        assert_eq!(
            client_address(ip("10.0.0.9"), &chain, &three),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn networks_skip_trusted_proxies_from_the_right() {
        let trusted = networks(&["10.0.0.0/8"]);
        let chain = ["6.6.6.6", "1.2.3.4", "10.0.0.2"];
        assert_eq!(
            client_address(ip("10.0.0.1"), &chain, &trusted),
            ip("1.2.3.4")
        );
        // From an untrusted peer the header is not read at all.
        assert_eq!(
            client_address(ip("8.8.8.8"), &chain, &trusted),
            ip("8.8.8.8")
        );
    }

    #[test]
    fn only_an_ip_address_is_taken_in_its_canonical_form() {
        let one = TrustedProxies::Hops(1);
        for bad in ["10.1.1.01", "not-an-ip", &"9".repeat(200), ""] {
            assert_eq!(
                client_address(ip("10.0.0.9"), &[bad], &one),
                ip("10.0.0.9"),
                "{bad}"
            );
        }
        assert_eq!(
            client_address(ip("10.0.0.9"), &["::ffff:1.2.3.4"], &one).to_string(),
            "1.2.3.4"
        );
        assert_eq!(
            client_address(ip("10.0.0.9"), &["2001:DB8:0:0::1"], &one).to_string(),
            "2001:db8::1"
        );
        assert_eq!(
            client_address(ip("::ffff:10.0.0.9"), &[], &TrustedProxies::None).to_string(),
            "10.0.0.9"
        );
    }
}
