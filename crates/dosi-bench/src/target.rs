//! The server under test: parsing `--url`, refusing anything but loopback,
//! and building request paths (with proper percent-encoding).

use std::net::{IpAddr, SocketAddr};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::BenchError;

/// Characters left as they are in a query parameter value: RFC 3986 unreserved.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The host part of a target URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A literal IP address.
    Ip(IpAddr),
    /// A name to resolve (only `localhost` unless remote targets are allowed).
    Name(String),
}

/// A parsed `http://host:port/prefix` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where to connect.
    pub host: Host,
    /// TCP port (80 when the URL names none).
    pub port: u16,
    /// Path prefix without a trailing slash (`""` for none).
    pub base_path: String,
    /// The `Host` header value.
    pub authority: String,
}

impl Target {
    /// Parses `url`; unless `allow_remote`, only loopback addresses and `localhost` pass.
    pub fn parse(url: &str, allow_remote: bool) -> Result<Target, BenchError> {
        let invalid = |reason: &str| BenchError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: http::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => return Err(invalid("only plain http:// is supported")),
            None => return Err(invalid("missing http:// scheme")),
        }
        if uri.query().is_some() {
            return Err(invalid("a query string is not allowed"));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| invalid("missing host"))?
            .clone();
        if authority.as_str().contains('@') {
            return Err(invalid("user info is not allowed"));
        }
        let host_str = authority.host();
        let bare = host_str.trim_start_matches('[').trim_end_matches(']');
        let host = match bare.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) if bare.is_empty() => return Err(invalid("missing host")),
            Err(_) => Host::Name(bare.to_ascii_lowercase()),
        };
        if !allow_remote {
            let local = match &host {
                Host::Ip(ip) => ip.is_loopback(),
                Host::Name(name) => name == "localhost",
            };
            if !local {
                return Err(BenchError::RemoteTarget {
                    host: host_str.to_owned(),
                });
            }
        }
        Ok(Target {
            host,
            port: authority.port_u16().unwrap_or(80),
            base_path: uri.path().trim_end_matches('/').to_owned(),
            authority: authority.as_str().to_owned(),
        })
    }

    /// Resolves the target to one socket address, re-checking loopback after resolution.
    pub async fn resolve(&self, allow_remote: bool) -> Result<SocketAddr, BenchError> {
        let addrs: Vec<SocketAddr> = match &self.host {
            Host::Ip(ip) => vec![SocketAddr::new(*ip, self.port)],
            Host::Name(name) => tokio::net::lookup_host((name.as_str(), self.port))
                .await
                .map_err(|source| BenchError::Unreachable {
                    target: self.authority.clone(),
                    source,
                })?
                .collect(),
        };
        let usable = addrs
            .iter()
            .find(|a| allow_remote || a.ip().is_loopback())
            .copied();
        usable.ok_or_else(|| BenchError::RemoteTarget {
            host: self.authority.clone(),
        })
    }

    /// `path` under the base path (`path` starts with `/`).
    pub fn path(&self, path: &str) -> String {
        format!("{}{}", self.base_path, path)
    }
}

/// Percent-encodes a query parameter value (everything but RFC 3986 unreserved).
pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// A query string from `(name, value)` pairs, values percent-encoded.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(name);
        out.push('=');
        out.push_str(&encode(value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Parses `url` (loopback only) and compares `(host, port, base_path)`, or the error's text.
    fn check(url: &str, expected: Result<(&str, u16, &str), &str>) {
        let got = Target::parse(url, false).map(|t| {
            let host = match t.host {
                Host::Ip(ip) => ip.to_string(),
                Host::Name(n) => n,
            };
            (host, t.port, t.base_path)
        });
        match (got, expected) {
            (Ok((h, p, b)), Ok((eh, ep, eb))) => {
                assert_eq!((h.as_str(), p, b.as_str()), (eh, ep, eb), "{url}")
            }
            (Err(e), Err(fragment)) => assert!(e.to_string().contains(fragment), "{url}: {e}"),
            (got, expected) => panic!("{url}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn urls() {
        check("http://127.0.0.1:1026", Ok(("127.0.0.1", 1026, "")));
        check("http://127.0.0.1:1026/", Ok(("127.0.0.1", 1026, "")));
        check(
            "http://127.1.2.3:8080/broker/",
            Ok(("127.1.2.3", 8080, "/broker")),
        );
        check("http://localhost:1026", Ok(("localhost", 1026, "")));
        check("http://LOCALHOST", Ok(("localhost", 80, "")));
        check("http://[::1]:1026", Ok(("::1", 1026, "")));
        check("http://10.0.0.1:1026", Err("not a loopback"));
        check("http://192.168.1.10", Err("not a loopback"));
        check("http://example.com", Err("not a loopback"));
        check("http://[2001:db8::1]:80", Err("not a loopback"));
        check("https://127.0.0.1:1026", Err("only plain http"));
        check("127.0.0.1:1026", Err("missing http:// scheme"));
        check("http://127.0.0.1:1026/?x=1", Err("query string"));
        check("http://u:p@127.0.0.1", Err("user info"));
        check("not a url", Err("not a URL"));
        check("", Err("not a URL"));
    }

    #[test]
    fn remote_hosts_pass_only_when_allowed() {
        let t = Target::parse("http://10.1.2.3:1026", true).expect("allowed");
        assert_eq!(t.authority, "10.1.2.3:1026");
    }

    #[tokio::test]
    async fn resolution_stays_on_loopback() {
        let t = Target::parse("http://127.0.0.1:9", false).expect("valid");
        let addr = t.resolve(false).await.expect("literal");
        assert_eq!(addr, "127.0.0.1:9".parse().expect("addr"));
    }

    /// `query_string(pairs)` is `expected`.
    fn check_query(pairs: &[(&str, &str)], expected: &str) {
        assert_eq!(query_string(pairs), expected);
    }

    #[test]
    fn query_strings_are_encoded() {
        check_query(&[], "");
        check_query(&[("type", "Sensor")], "?type=Sensor");
        check_query(&[("q", "band==7")], "?q=band%3D%3D7");
        check_query(
            &[("q", "temperature>30.5;name==\"a b\"")],
            "?q=temperature%3E30.5%3Bname%3D%3D%22a%20b%22",
        );
        check_query(
            &[
                ("georel", "near;maxDistance==500"),
                ("coordinates", "[102.83,16.43]"),
            ],
            "?georel=near%3BmaxDistance%3D%3D500&coordinates=%5B102.83%2C16.43%5D",
        );
        check_query(&[("q", "é&=")], "?q=%C3%A9%26%3D");
    }

    proptest! {
        #[test]
        fn parse_never_panics(url in ".*", allow in any::<bool>()) {
            let _ = Target::parse(&url, allow);
        }

        #[test]
        fn encoded_values_decode_back(value in ".*") {
            let encoded = encode(&value);
            prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
            let decoded = percent_encoding::percent_decode_str(&encoded)
                .decode_utf8()
                .map(|d| d.into_owned());
            prop_assert_eq!(decoded.ok(), Some(value));
        }
    }
}
