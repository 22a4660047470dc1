//! Proxies, sans-IO: the `--proxy` / `--proxy-check` URL grammar and the SOCKS message
//! bytes, built and parsed here (RFC 1928 and 1929 for SOCKS5; the SOCKS4 and 4a
//! protocol notes). The handshakes that send them live in `net::tunnel`. Credentials
//! never leave this module except inside the bytes sent to the proxy.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine;

use crate::proto::target::{self, Host};

/// Which protocol the proxy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    Http,
    /// SOCKS4: the client resolves the target (IPv4 only).
    Socks4,
    /// SOCKS4a: the proxy resolves target names.
    Socks4a,
    /// SOCKS5 (`socks5h://` is the same: names always go to the proxy).
    Socks5,
}

impl ProxyKind {
    pub fn name(self) -> &'static str {
        match self {
            ProxyKind::Http => "http",
            ProxyKind::Socks4 => "socks4",
            ProxyKind::Socks4a => "socks4a",
            ProxyKind::Socks5 => "socks5",
        }
    }

    /// The protocols a bare `HOST:PORT` in a pool is tried as, in order.
    pub const DETECTION_ORDER: [ProxyKind; 3] =
        [ProxyKind::Http, ProxyKind::Socks5, ProxyKind::Socks4];
}

/// Whether the protocol was named by the token, or is found by trying (`--proxy-check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    /// The token named the scheme (or `--proxy` took a bare one as HTTP).
    Given,
    /// A bare `HOST:PORT` whose protocol is not known (yet, or at all): `kind` is a guess.
    Unknown,
    /// A bare `HOST:PORT` that answered as `kind`.
    Found,
}

/// A proxy to go through.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    pub kind: ProxyKind,
    pub host: Host,
    pub port: u16,
    pub detection: Detection,
    pub(crate) auth: Option<(String, String)>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the credentials, not even in a debug dump.
        write!(f, "Proxy({self})")
    }
}

impl fmt::Display for Proxy {
    /// `socks5://host:port`, credentials removed; `host:port` while the protocol is unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detection != Detection::Unknown {
            write!(f, "{}://", self.kind.name())?;
        }
        write!(f, "{}:{}", self.host.authority_form(), self.port)
    }
}

/// The protocol a peer's first bytes are in, when they are the start of an answer in
/// one of the proxy protocols: an HTTP status line, a SOCKS5 method choice (`05 xx`),
/// a SOCKS4 reply (`00 5a`..`00 5d`).
pub fn spoken_in(bytes: &[u8]) -> Option<ProxyKind> {
    match bytes {
        // A SOCKS handshake reads two bytes: `HT` is as much of a status line as it sees.
        _ if bytes.len() >= 2 && b"HTTP/".starts_with(&bytes[..bytes.len().min(5)]) => {
            Some(ProxyKind::Http)
        }
        [b'H', b'T', b'T', b'P', b'/', ..] => Some(ProxyKind::Http),
        [0x05, 0x00 | 0x01 | 0x02 | 0xff, ..] => Some(ProxyKind::Socks5),
        [0x00, 0x5a..=0x5d, ..] => Some(ProxyKind::Socks4),
        _ => None,
    }
}

/// The port of a proxy that names none, as curl has it.
pub const DEFAULT_PROXY_PORT: u16 = 1080;

/// The longest SOCKS4 user id and SOCKS4a host name sent (the protocol sets no limit).
pub const SOCKS4_FIELD_MAX: usize = 255;

impl Proxy {
    /// `[SCHEME://][user[:pass]@]HOST[:PORT]` with SCHEME one of http, socks4, socks4a,
    /// socks5, socks5h. Without a scheme the protocol is `Detection::Unknown` (its `kind`
    /// says HTTP): `--proxy` takes it as HTTP, `--proxy-check` finds out.
    pub fn parse(token: &str, default_port: u16) -> Result<Proxy, String> {
        let (kind, detection, rest) = match token.split_once("://") {
            None => (ProxyKind::Http, Detection::Unknown, token),
            Some((scheme, rest)) => {
                let kind = match scheme.to_ascii_lowercase().as_str() {
                    "http" => ProxyKind::Http,
                    "socks4" => ProxyKind::Socks4,
                    "socks4a" => ProxyKind::Socks4a,
                    "socks5" | "socks5h" => ProxyKind::Socks5,
                    _ => {
                        // Named only when it cannot carry anything to a terminal.
                        let plain = !scheme.is_empty()
                            && scheme
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
                        let named = if plain {
                            format!(" '{scheme}'")
                        } else {
                            String::new()
                        };
                        return Err(format!(
                            "unknown proxy scheme{named} (use http://, socks4://, socks4a://, \
                             socks5:// or socks5h://)"
                        ));
                    }
                };
                (kind, Detection::Given, rest)
            }
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (auth, authority, with_password) = match rest.rsplit_once('@') {
            Some((userinfo, authority)) => {
                let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                (
                    Some((percent_decode(user)?, percent_decode(pass)?)),
                    authority,
                    userinfo.contains(':'),
                )
            }
            None => (None, rest, false),
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
        if let Some((user, pass)) = &auth {
            match kind {
                ProxyKind::Socks5 if user.len() > 255 || pass.len() > 255 => {
                    return Err("SOCKS5 user name and password are at most 255 bytes each".into())
                }
                ProxyKind::Socks4 | ProxyKind::Socks4a if detection == Detection::Given => {
                    if with_password {
                        return Err("SOCKS4 takes a user id but no password \
                                    (socks4://USER@HOST:PORT)"
                            .into());
                    }
                    socks4_user_check(user)?;
                }
                _ => {}
            }
        }
        Ok(Proxy {
            kind,
            host: t.host,
            port: t.port,
            detection,
            auth,
        })
    }

    /// This proxy taken as `kind`: one attempt at detecting its protocol, which is the
    /// answer if the proxy speaks it.
    pub fn as_kind(&self, kind: ProxyKind) -> Proxy {
        Proxy {
            kind,
            detection: match self.detection {
                Detection::Given => Detection::Given,
                Detection::Unknown | Detection::Found => Detection::Found,
            },
            ..self.clone()
        }
    }

    /// `Proxy-Authorization` value for an HTTP proxy with credentials.
    pub fn authorization(&self) -> Option<String> {
        let (user, pass) = self.auth.as_ref()?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        Some(format!("Basic {encoded}"))
    }

    /// Whether a user name (and maybe a password) was given.
    pub fn has_credentials(&self) -> bool {
        self.auth.is_some()
    }

    /// The SOCKS4 user id: the user name given, else empty.
    pub fn socks4_user(&self) -> &str {
        self.auth.as_ref().map_or("", |(user, _)| user.as_str())
    }

    /// The SOCKS5 user name and password (RFC 1929), when given.
    pub fn socks5_credentials(&self) -> Option<(&str, &str)> {
        self.auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }
}

fn socks4_user_check(user: &str) -> Result<(), String> {
    if user.contains('\0') {
        return Err("a SOCKS4 user id cannot contain a NUL byte".into());
    }
    if user.len() > SOCKS4_FIELD_MAX {
        return Err(format!(
            "a SOCKS4 user id is at most {SOCKS4_FIELD_MAX} bytes"
        ));
    }
    Ok(())
}

/// The token with any `user:pass@` shown as `user:***@` (a `user@` alone as it is),
/// for echoing in output.
pub fn redact(token: &str) -> String {
    let (prefix, rest) = match token.find("://") {
        Some(i) => token.split_at(i + 3),
        None => ("", token),
    };
    match rest.rsplit_once('@') {
        // Only a password is masked: `bob@` and `bob:***@` stay apart in the echo.
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{prefix}{user}:***@{host}"),
            None => format!("{prefix}{userinfo}@{host}"),
        },
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

// ---------------------------------------------------------------------------------------
// SOCKS messages. Builders return the bytes to send; parsers take what was read so far
// and answer `Need(n)` (read until the buffer holds n bytes, then call again: never
// more than the message, so nothing of the tunnel behind it is read), `Done`, or a
// `SocksError` as soon as the bytes cannot be the expected message.
// ---------------------------------------------------------------------------------------

/// A SOCKS parser's answer when no error stopped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<T> {
    /// Read until the buffer holds this many bytes in all, then parse again.
    Need(usize),
    /// The whole message, exactly the bytes given.
    Done(T),
}

/// Bytes that cannot be the SOCKS message expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocksError {
    /// The first bytes are not a SOCKS5 answer (the version byte is not 5).
    NotSocks5(Vec<u8>),
    /// The bytes are not a SOCKS4 reply (version 0 or 4, code 0x5a to 0x5d).
    NotSocks4(Vec<u8>),
    /// A SOCKS5 reply with an address type other than 1, 3 or 4.
    AddressType(u8),
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

/// The SOCKS5 greeting: no authentication, plus username/password when we have them.
pub fn socks5_greeting(with_credentials: bool) -> &'static [u8] {
    if with_credentials {
        &[5, 2, 0, 2]
    } else {
        &[5, 1, 0]
    }
}

/// The method the SOCKS5 proxy chose (0 none, 2 username/password, 0xff none acceptable).
pub fn parse_socks5_choice(buf: &[u8]) -> Result<Reply<u8>, SocksError> {
    match buf {
        [] => Ok(Reply::Need(2)),
        [v, ..] if *v != 5 => Err(SocksError::NotSocks5(buf.to_vec())),
        [_] => Ok(Reply::Need(2)),
        [_, method, ..] => Ok(Reply::Done(*method)),
    }
}

/// The RFC 1929 username/password request.
pub fn socks5_auth_request(user: &str, pass: &str) -> Result<Vec<u8>, String> {
    let (Ok(ulen), Ok(plen)) = (u8::try_from(user.len()), u8::try_from(pass.len())) else {
        return Err("SOCKS5 user name and password are at most 255 bytes each".into());
    };
    let mut req = vec![1, ulen];
    req.extend_from_slice(user.as_bytes());
    req.push(plen);
    req.extend_from_slice(pass.as_bytes());
    Ok(req)
}

/// Whether the RFC 1929 answer accepts the credentials (status 0). The version byte is
/// not checked: servers send 1 (the RFC) or 5.
pub fn parse_socks5_auth_reply(buf: &[u8]) -> Reply<bool> {
    match buf {
        [_, status, ..] => Reply::Done(*status == 0),
        _ => Reply::Need(2),
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

/// Where a SOCKS proxy says it connected from (its bound address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    Ip(IpAddr, u16),
    Name(Vec<u8>, u16),
}

/// A SOCKS5 reply to CONNECT: its code (0 succeeded) and the bound address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socks5Reply {
    pub code: u8,
    pub bound: Bound,
}

/// The SOCKS5 reply to CONNECT: `VER REP RSV ATYP ADDR PORT`, ADDR sized by ATYP.
pub fn parse_socks5_reply(buf: &[u8]) -> Result<Reply<Socks5Reply>, SocksError> {
    if let Some(&v) = buf.first() {
        if v != 5 {
            return Err(SocksError::NotSocks5(buf.to_vec()));
        }
    }
    let Some(&atyp) = buf.get(3) else {
        return Ok(Reply::Need(5));
    };
    let need = match atyp {
        1 => 4 + 4 + 2,
        4 => 4 + 16 + 2,
        3 => match buf.get(4) {
            Some(&len) => 5 + usize::from(len) + 2,
            None => return Ok(Reply::Need(5)),
        },
        t => return Err(SocksError::AddressType(t)),
    };
    if buf.len() < need {
        return Ok(Reply::Need(need));
    }
    let port = u16::from_be_bytes([buf[need - 2], buf[need - 1]]);
    let addr = &buf[4..need - 2];
    let bound = match atyp {
        1 => Bound::Ip(
            IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
            port,
        ),
        4 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(addr);
            Bound::Ip(IpAddr::V6(Ipv6Addr::from(octets)), port)
        }
        _ => Bound::Name(addr[1..].to_vec(), port),
    };
    Ok(Reply::Done(Socks5Reply {
        code: buf[1],
        bound,
    }))
}

/// Where a SOCKS4 CONNECT goes: an IPv4 address (SOCKS4), or a name for the proxy to
/// resolve (SOCKS4a).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Socks4Dest<'a> {
    Ip(Ipv4Addr),
    Name(&'a str),
}

/// The SOCKS4 CONNECT request: `VN=4 CD=1 DSTPORT DSTIP USERID NUL`; for a name
/// (SOCKS4a) DSTIP is 0.0.0.1 and `NAME NUL` follows.
pub fn socks4_request(dest: Socks4Dest<'_>, port: u16, user: &str) -> Result<Vec<u8>, String> {
    socks4_user_check(user)?;
    let mut req = vec![4, 1];
    req.extend_from_slice(&port.to_be_bytes());
    match dest {
        Socks4Dest::Ip(ip) => req.extend_from_slice(&ip.octets()),
        Socks4Dest::Name(_) => req.extend_from_slice(&[0, 0, 0, 1]),
    }
    req.extend_from_slice(user.as_bytes());
    req.push(0);
    if let Socks4Dest::Name(name) = dest {
        if name.is_empty() || name.contains('\0') || name.len() > SOCKS4_FIELD_MAX {
            return Err(format!(
                "a SOCKS4a host name is 1 to {SOCKS4_FIELD_MAX} bytes without NUL"
            ));
        }
        req.extend_from_slice(name.as_bytes());
        req.push(0);
    }
    Ok(req)
}

/// SOCKS4 reply codes.
pub const SOCKS4_GRANTED: u8 = 0x5a;

/// What a SOCKS4 reply code means, in words.
pub fn socks4_reply_text(code: u8) -> &'static str {
    match code {
        0x5a => "request granted",
        0x5b => "request rejected or failed",
        0x5c => "request rejected because the proxy cannot reach an identd on the client",
        0x5d => "request rejected because identd reports a different user id",
        _ => "unknown reply",
    }
}

/// The SOCKS4 reply: `VN CD DSTPORT DSTIP`, 8 bytes; VN is 0 (some servers send 4) and CD
/// one of 0x5a to 0x5d. Answers the code. Wrong bytes are an error as soon as they show.
pub fn parse_socks4_reply(buf: &[u8]) -> Result<Reply<u8>, SocksError> {
    let bad = || Err(SocksError::NotSocks4(buf.to_vec()));
    if let Some(&vn) = buf.first() {
        if vn != 0 && vn != 4 {
            return bad();
        }
    }
    if let Some(&cd) = buf.get(1) {
        if !(0x5a..=0x5d).contains(&cd) {
            return bad();
        }
    }
    match buf.get(..8) {
        Some(reply) => Ok(Reply::Done(reply[1])),
        None => Ok(Reply::Need(8)),
    }
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
            (p.kind, p.detection, p.to_string()),
            (
                ProxyKind::Http,
                Detection::Unknown,
                "[::1]:8080".to_string()
            )
        );
        assert_eq!(
            p.as_kind(ProxyKind::Socks4).to_string(),
            "socks4://[::1]:8080"
        );
        assert_eq!(Proxy::parse("proxy.test", 1080).unwrap().port, 1080);
        for (token, kind, shown) in [
            (
                "socks4://10.0.0.1:1080",
                ProxyKind::Socks4,
                "socks4://10.0.0.1:1080",
            ),
            (
                "SOCKS4A://bob@h.test:9",
                ProxyKind::Socks4a,
                "socks4a://h.test:9",
            ),
            ("socks5h://h.test:9", ProxyKind::Socks5, "socks5://h.test:9"),
        ] {
            let p = Proxy::parse(token, 1080).unwrap();
            assert_eq!((p.kind, p.detection), (kind, Detection::Given), "{token}");
            assert_eq!(p.to_string(), shown);
        }
        assert_eq!(
            Proxy::parse("socks4a://bob@h.test:9", 1)
                .unwrap()
                .socks4_user(),
            "bob"
        );
        for bad in [
            "ftp://x:1",
            "http://x:1/path",
            "http://x:0",
            "",
            "socks5://",
            "socks4://bob:pw@h.test:1",
            "socks4://b%00b@h.test:1",
        ] {
            assert!(Proxy::parse(bad, 1080).is_err(), "{bad}");
        }
        // A bare token may carry a password: it is used if the proxy speaks SOCKS5/HTTP.
        let p = Proxy::parse("bob:pw@h.test:1", 1).unwrap();
        assert_eq!(p.socks4_user(), "bob");
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("http://user:secret@h:1"), "http://user:***@h:1");
        assert_eq!(redact("user:secret@h:1"), "user:***@h:1");
        assert_eq!(redact("socks5://user@h:1"), "socks5://user@h:1");
        assert_eq!(redact("socks4://bob:pw@h:1"), "socks4://bob:***@h:1");
        assert_eq!(redact("h:1"), "h:1");
    }

    #[test]
    fn socks5_requests() {
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
        assert_eq!(
            socks5_auth_request("al", "pw").unwrap(),
            [1, 2, b'a', b'l', 2, b'p', b'w']
        );
        assert!(socks5_auth_request(&"x".repeat(256), "").is_err());
    }

    #[test]
    fn socks5_replies() {
        use Reply::*;
        assert_eq!(parse_socks5_choice(&[]), Ok(Need(2)));
        assert_eq!(parse_socks5_choice(&[5]), Ok(Need(2)));
        assert_eq!(parse_socks5_choice(&[5, 0xff]), Ok(Done(0xff)));
        assert_eq!(
            parse_socks5_choice(b"HT"),
            Err(SocksError::NotSocks5(b"HT".to_vec()))
        );
        assert_eq!(parse_socks5_auth_reply(&[1]), Need(2));
        assert_eq!(parse_socks5_auth_reply(&[1, 0]), Done(true));
        assert_eq!(parse_socks5_auth_reply(&[5, 1]), Done(false));

        let v4 = [5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90];
        for n in 0..v4.len() {
            let need = if n < 4 { 5 } else { 10 };
            assert_eq!(parse_socks5_reply(&v4[..n]), Ok(Need(need)), "{n}");
        }
        let done = Done(Socks5Reply {
            code: 0,
            bound: Bound::Ip("127.0.0.1".parse().unwrap(), 8080),
        });
        assert_eq!(parse_socks5_reply(&v4), Ok(done.clone()));
        assert_eq!(parse_socks5_reply(&[&v4[..], b"more"].concat()), Ok(done));
        let name = [&[5, 2, 0, 3, 4][..], b"prox", &[0, 80]].concat();
        assert_eq!(parse_socks5_reply(&name[..5]), Ok(Need(11)));
        assert_eq!(
            parse_socks5_reply(&name),
            Ok(Done(Socks5Reply {
                code: 2,
                bound: Bound::Name(b"prox".to_vec(), 80)
            }))
        );
        let v6 = [&[5, 0, 0, 4][..], &[0; 16], &[0, 1]].concat();
        assert_eq!(parse_socks5_reply(&v6[..5]), Ok(Need(22)));
        assert!(matches!(parse_socks5_reply(&v6), Ok(Done(_))));
        assert_eq!(
            parse_socks5_reply(&[5, 0, 0, 9, 0]),
            Err(SocksError::AddressType(9))
        );
        assert_eq!(
            parse_socks5_reply(&[0x16]),
            Err(SocksError::NotSocks5(vec![0x16]))
        );
    }

    #[test]
    fn socks4_messages() {
        let ip = Socks4Dest::Ip(Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(
            socks4_request(ip, 80, "bob").unwrap(),
            [4, 1, 0, 80, 127, 0, 0, 1, b'b', b'o', b'b', 0]
        );
        assert_eq!(
            socks4_request(Socks4Dest::Name("a.test"), 443, "").unwrap(),
            [&[4, 1, 1, 187, 0, 0, 0, 1, 0][..], b"a.test", &[0]].concat()
        );
        assert!(socks4_request(ip, 80, "a\0b").is_err());
        assert!(socks4_request(Socks4Dest::Name(""), 80, "").is_err());
        assert!(socks4_request(Socks4Dest::Name(&"x".repeat(256)), 80, "").is_err());

        use Reply::*;
        assert_eq!(parse_socks4_reply(&[]), Ok(Need(8)));
        assert_eq!(parse_socks4_reply(&[0, 0x5a, 0, 0]), Ok(Need(8)));
        for code in 0x5a..=0x5d {
            assert_eq!(
                parse_socks4_reply(&[0, code, 0, 0, 0, 0, 0, 0]),
                Ok(Done(code))
            );
            assert_ne!(socks4_reply_text(code), "unknown reply");
        }
        assert_eq!(
            parse_socks4_reply(&[4, 0x5a, 0, 0, 0, 0, 0, 0]),
            Ok(Done(0x5a))
        );
        for bad in [&b"H"[..], b"HTTP/1.1", &[0, 0x5e], &[5, 0xff], &[0, 0]] {
            assert_eq!(
                parse_socks4_reply(bad),
                Err(SocksError::NotSocks4(bad.to_vec())),
                "{bad:?}"
            );
        }
    }
}
