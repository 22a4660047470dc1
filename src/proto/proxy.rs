//! Proxies, sans-IO: the `--proxy` / `--proxy-check` URL grammar and the SOCKS message
//! bytes. The handshakes that send them live in `net::tunnel`. Credentials never leave
//! this module except inside the bytes sent to the proxy.

use std::fmt;
use std::net::IpAddr;

use base64::Engine;

use crate::proto::target::{self, Host};

/// Which protocol the proxy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    Http,
    Socks5,
}

impl ProxyKind {
    pub fn name(self) -> &'static str {
        match self {
            ProxyKind::Http => "http",
            ProxyKind::Socks5 => "socks5",
        }
    }
}

/// A proxy to go through.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    pub kind: ProxyKind,
    pub host: Host,
    pub port: u16,
    pub(crate) auth: Option<(String, String)>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the credentials, not even in a debug dump.
        write!(f, "Proxy({self})")
    }
}

impl fmt::Display for Proxy {
    /// `socks5://host:port`, credentials removed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:{}",
            self.kind.name(),
            self.host.authority_form(),
            self.port
        )
    }
}

/// The port of a proxy that names none, as curl has it.
pub const DEFAULT_PROXY_PORT: u16 = 1080;

impl Proxy {
    /// `HOST:PORT`, `http://[user:pass@]HOST:PORT` or `socks5://[user:pass@]HOST:PORT`.
    pub fn parse(token: &str, default_port: u16) -> Result<Proxy, String> {
        let (kind, rest) = match token.split_once("://") {
            None => (ProxyKind::Http, token),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (ProxyKind::Http, rest),
            Some((scheme, rest))
                if scheme.eq_ignore_ascii_case("socks5")
                    || scheme.eq_ignore_ascii_case("socks5h") =>
            {
                (ProxyKind::Socks5, rest)
            }
            Some((scheme, _)) => {
                return Err(format!(
                    "unknown proxy scheme '{scheme}' (use http:// or socks5://)"
                ))
            }
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (auth, authority) = match rest.rsplit_once('@') {
            Some((userinfo, authority)) => {
                let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                (
                    Some((percent_decode(user)?, percent_decode(pass)?)),
                    authority,
                )
            }
            None => (None, rest),
        };
        if authority.contains(['/', '?', '#']) {
            return Err("a proxy is HOST:PORT, without a path".into());
        }
        // Reuse the target grammar for the host and port.
        let defaults = target::Defaults {
            port: default_port,
            ..target::Defaults::default()
        };
        let t =
            target::parse(authority, &defaults).map_err(|e| format!("bad proxy address: {e}"))?;
        if kind == ProxyKind::Socks5 {
            if let Some((user, pass)) = &auth {
                if user.len() > 255 || pass.len() > 255 {
                    return Err("SOCKS5 user name and password are at most 255 bytes each".into());
                }
            }
        }
        Ok(Proxy {
            kind,
            host: t.host,
            port: t.port,
            auth,
        })
    }

    /// `Proxy-Authorization` value for an HTTP proxy with credentials.
    pub fn authorization(&self) -> Option<String> {
        let (user, pass) = self.auth.as_ref()?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        Some(format!("Basic {encoded}"))
    }
}

/// The token with any `user:pass@` shown as `user:***@`, for echoing in output.
pub fn redact(token: &str) -> String {
    let (prefix, rest) = match token.find("://") {
        Some(i) => token.split_at(i + 3),
        None => ("", token),
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{prefix}{user}:***@{host}")
        }
        None => token.to_string(),
    }
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("bad %-escape in proxy credentials")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "proxy credentials must be UTF-8".to_string())
}

/// SOCKS5 reply codes (RFC 1928 §6).
pub fn socks_reply_text(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown error",
    }
}

/// The SOCKS5 CONNECT request for `target`: names go to the proxy to resolve.
pub fn socks_connect_request(host: &Host, port: u16) -> Result<Vec<u8>, String> {
    let mut req = vec![5, 1, 0];
    match host {
        Host::Ip(IpAddr::V4(ip)) => {
            req.push(1);
            req.extend_from_slice(&ip.octets());
        }
        Host::Ip(IpAddr::V6(ip)) => {
            req.push(4);
            req.extend_from_slice(&ip.octets());
        }
        Host::Name(name) => {
            let len = u8::try_from(name.len())
                .map_err(|_| "host name too long for SOCKS5".to_string())?;
            req.push(3);
            req.push(len);
            req.extend_from_slice(name.as_bytes());
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        let p = Proxy::parse("socks5://u%40x:p%3Ass@127.0.0.1:1080", 1080).unwrap();
        assert_eq!(p.kind, ProxyKind::Socks5);
        assert_eq!(p.to_string(), "socks5://127.0.0.1:1080");
        assert_eq!(p.auth, Some(("u@x".into(), "p:ss".into())));
        assert!(!format!("{p:?}").contains("p:ss"));
        let p = Proxy::parse("http://user:pw@proxy.test:3128/", 1080).unwrap();
        assert_eq!(p.to_string(), "http://proxy.test:3128");
        assert_eq!(p.authorization().unwrap(), "Basic dXNlcjpwdw==");
        let p = Proxy::parse("[::1]:8080", 1080).unwrap();
        assert_eq!(
            (p.kind, p.to_string()),
            (ProxyKind::Http, "http://[::1]:8080".to_string())
        );
        assert_eq!(Proxy::parse("proxy.test", 1080).unwrap().port, 1080);
        for bad in [
            "ftp://x:1",
            "http://x:1/path",
            "http://x:0",
            "",
            "socks5://",
        ] {
            assert!(Proxy::parse(bad, 1080).is_err(), "{bad}");
        }
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("http://user:secret@h:1"), "http://user:***@h:1");
        assert_eq!(redact("user:secret@h:1"), "user:***@h:1");
        assert_eq!(redact("socks5://user@h:1"), "socks5://user:***@h:1");
        assert_eq!(redact("h:1"), "h:1");
    }

    #[test]
    fn socks_requests() {
        let name = Host::Name("example.com".into());
        assert_eq!(
            socks_connect_request(&name, 443).unwrap(),
            [&[5, 1, 0, 3, 11][..], b"example.com", &[1, 187]].concat()
        );
        let v4 = Host::Ip("127.0.0.1".parse().unwrap());
        assert_eq!(
            socks_connect_request(&v4, 80).unwrap(),
            [5, 1, 0, 1, 127, 0, 0, 1, 0, 80]
        );
        let v6 = Host::Ip("::1".parse().unwrap());
        let req = socks_connect_request(&v6, 80).unwrap();
        assert_eq!((req[3], req.len()), (4, 4 + 16 + 2));
    }
}
