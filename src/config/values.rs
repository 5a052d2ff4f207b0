//! How setting values are written: durations, lifetimes, lists.

use std::{net::IpAddr, time::Duration};

use ipnet::IpNet;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::KeyConfig;

/// A duration written like `30s`, `5m`, `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = StringOrNumber::deserialize(d)?.into_string();
        parse_duration(&text)
            .map(HumanDuration)
            .map_err(serde::de::Error::custom)
    }
}

/// A token lifetime: a duration, or `never` (no expiry at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime(pub Option<Duration>);

impl Lifetime {
    pub const NEVER: Lifetime = Lifetime(None);

    pub fn secs(secs: u64) -> Self {
        Lifetime(Some(Duration::from_secs(secs)))
    }
}

impl Serialize for Lifetime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            None => s.serialize_str("never"),
            Some(d) => HumanDuration(d).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Lifetime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = StringOrNumber::deserialize(d)?.into_string();
        if text.trim() == "never" {
            return Ok(Lifetime(None));
        }
        match parse_duration(&text) {
            Ok(d) if d.is_zero() => Err(serde::de::Error::custom(
                "a lifetime must be positive, or `never`",
            )),
            Ok(d) => Ok(Lifetime(Some(d))),
            Err(e) => Err(serde::de::Error::custom(format!("{e}, or `never`"))),
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text)
        .map_err(|_| format!("`{text}` is not a duration like 30s, 5m, 1d"))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    S(String),
    N(u64),
}

impl StringOrNumber {
    fn into_string(self) -> String {
        match self {
            StringOrNumber::S(s) => s,
            StringOrNumber::N(n) => n.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ListOrString<T> {
    List(Vec<T>),
    Text(String),
}

pub(super) fn list_or_comma_separated<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    Ok(match ListOrString::<String>::deserialize(d)? {
        ListOrString::List(list) => list,
        ListOrString::Text(text) => split_list(&text),
    })
}

/// `[[keys]]` tables in the file, or `TOKEND_KEYS=a.pem,b.pem`.
pub(super) fn keys_from_list_or_paths<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<KeyConfig>, D::Error> {
    Ok(match ListOrString::<KeyConfig>::deserialize(d)? {
        ListOrString::List(list) => list,
        ListOrString::Text(text) => split_list(&text)
            .into_iter()
            .map(|path| KeyConfig {
                path: Some(path.into()),
                ..KeyConfig::default()
            })
            .collect(),
    })
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_are_hops_or_networks() {
        let read = |json: &str| serde_json::from_str::<TrustedProxies>(json);
        assert_eq!(read("0").unwrap(), TrustedProxies::None);
        assert_eq!(read("2").unwrap(), TrustedProxies::Hops(2));
        assert_eq!(read("\"1\"").unwrap(), TrustedProxies::Hops(1));
        let nets = read("\"10.0.0.0/8, 192.168.1.7\"").unwrap();
        assert!(nets.trusts("10.1.2.3".parse().unwrap()));
        assert!(nets.trusts("192.168.1.7".parse().unwrap()));
        assert!(!nets.trusts("192.168.1.8".parse().unwrap()));
        assert_eq!(read("[\"::1\"]").unwrap(), read("\"::1/128\"").unwrap());
        assert!(read("\"10.0.0.0/33\"").is_err());
        assert!(read("\"proxy.example\"").is_err());
    }

    #[test]
    fn durations_read_like_humans_write_them() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn never_is_a_lifetime_without_expiry() {
        let l: Lifetime = serde_json::from_str("\"never\"").unwrap();
        assert_eq!(l, Lifetime::NEVER);
        let l: Lifetime = serde_json::from_str("\"1d\"").unwrap();
        assert_eq!(l, Lifetime::secs(86400));
        assert!(serde_json::from_str::<Lifetime>("\"0s\"").is_err());
    }
}

/// `trusted_proxies`: whom to believe about the client's address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TrustedProxies {
    /// Nobody: the client is the socket's peer (`X-Forwarded-For` is
    /// ignored).
    #[default]
    None,
    /// This many proxies stand in front of tokend, each appending the address
    /// it saw: the client is that many entries from the right.
    Hops(u32),
    /// Proxies are the addresses in these networks: the client is the first
    /// address from the right that is not one.
    Networks(Vec<IpNet>),
}

impl TrustedProxies {
    /// Whether an address is one of the trusted proxies' (networks only).
    pub fn trusts(&self, ip: IpAddr) -> bool {
        match self {
            TrustedProxies::Networks(nets) => nets.iter().any(|n| n.contains(&ip)),
            _ => false,
        }
    }
}

impl Serialize for TrustedProxies {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TrustedProxies::None => s.serialize_u32(0),
            TrustedProxies::Hops(n) => s.serialize_u32(*n),
            TrustedProxies::Networks(nets) => s.collect_seq(nets.iter().map(IpNet::to_string)),
        }
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Hops(u32),
            List(Vec<String>),
            Text(String),
        }
        let networks = |items: Vec<String>| {
            items
                .iter()
                .map(|text| parse_network(text))
                .collect::<Result<Vec<_>, String>>()
                .map(|nets| match nets.is_empty() {
                    true => TrustedProxies::None,
                    false => TrustedProxies::Networks(nets),
                })
                .map_err(serde::de::Error::custom)
        };
        match Raw::deserialize(d)? {
            Raw::Hops(0) => Ok(TrustedProxies::None),
            Raw::Hops(n) => Ok(TrustedProxies::Hops(n)),
            Raw::List(items) => networks(items),
            Raw::Text(text) => match text.trim().parse::<u32>() {
                Ok(0) => Ok(TrustedProxies::None),
                Ok(n) => Ok(TrustedProxies::Hops(n)),
                Err(_) => networks(split_list(&text)),
            },
        }
    }
}

/// `10.0.0.0/8`, or one address (`10.0.0.1`, a network of one).
fn parse_network(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!("`{text}` is not a number of hops, an IP address or a network like 10.0.0.0/8")
        })
}

/// An absolute `http(s)://host[:port][/path]` URL, without a query, a
/// fragment or credentials: what `public_url` must be.
pub fn check_public_url(url: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("`{url}` is not an absolute http(s) URL: {why}"));
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return bad("it must start with https:// or http://");
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return bad("it has no host");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains whitespace");
    }
    if url.contains(['?', '#', '@']) {
        return bad("a query, a fragment or credentials have no place in it");
    }
    Ok(())
}
