//! What one probe is allowed and asked to do, as the layer above built it from the
//! command line: timeouts, caps, names, TLS, proxies, redirects. `net` reads only this.

use std::sync::Arc;
use std::time::Duration;

use crate::net::resolve::{Pins, Resolver, Settings};
use crate::net::tls::TlsSettings;
use crate::proto::proxy::Proxy;
use crate::proto::request::{HttpVersion, RequestTemplate};
use crate::proto::target::{Host, Target};

/// The contract's defaults for the options this layer owns (`--help` repeats them).
pub mod defaults {
    use std::time::Duration;

    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    pub const TIMEOUT: Duration = Duration::from_secs(10);
    pub const MAX_HEADER_BYTES: usize = 65536;
    pub const MAX_REDIRS: usize = 10;
}

/// Everything a probe needs to know, validated.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// `--method`, `--http-version`, `--header`: the request, rendered per target.
    pub request: RequestTemplate,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_header_bytes: usize,
    /// `--resolve` entries, which win over the resolver.
    pub pins: Pins,
    /// The run's stub resolver: `--resolver`, `-4`/`-6`, its cache and queries in flight.
    pub resolver: Arc<Resolver>,
    /// Client settings for https targets.
    pub tls: TlsSettings,
    /// `--proxy`: every probe goes through it.
    pub proxy: Option<Proxy>,
    /// `--proxy-check URL`: targets are proxies, and this is requested through each.
    pub proxy_check: Option<ProxyCheck>,
    /// `-L`: follow redirects, at most `max_redirs` of them.
    pub follow: bool,
    pub max_redirs: usize,
    /// `--http2` / `--http2-prior-knowledge`.
    pub http2: Http2,
    /// `--http3` / `--http3-only`.
    pub http3: Http3,
    /// `--interface`: where connections come from (the proxy's, when there is one).
    pub source: Option<Source>,
    /// `--connect-to` rules, in the order given: the first that matches a hop is used.
    pub connect_to: Vec<ConnectTo>,
}

/// `--interface ADDR|NAME`, checked to exist on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A local address: connections are bound to it (port chosen by the system).
    Addr(std::net::IpAddr),
    /// A network interface, by name: connections are bound to the device (Linux).
    Device(String),
}

impl std::fmt::Display for Source {
    /// As given: `--interface 192.0.2.7`, `--interface eth1`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Addr(ip) => write!(f, "--interface {ip}"),
            Source::Device(name) => write!(f, "--interface {name}"),
        }
    }
}

impl Source {
    /// `--interface ADDR|NAME` read as curl reads it (`if!NAME` and `host!ADDR` too), and
    /// checked against this machine: an address must be one of its own, an interface
    /// must exist. The error is a sentence naming what was given.
    pub fn check(text: &str) -> Result<Source, String> {
        let (text, only) = match text.split_once('!') {
            Some(("if", name)) => (name, Some(false)),
            Some(("host", addr)) => (addr, Some(true)),
            _ => (text, None),
        };
        let bare = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        if let (Ok(ip), false) = (bare.parse::<std::net::IpAddr>(), only == Some(false)) {
            return match std::net::UdpSocket::bind((ip, 0)) {
                Ok(_) => Ok(Source::Addr(ip)),
                Err(e) => Err(format!(
                    "{ip} is not an address of this machine ({}): give one of its own \
                     addresses, or an interface name",
                    crate::report::error::os_text(&e)
                )),
            };
        }
        if only == Some(true) {
            return Err(format!("'{text}' is not an IP address"));
        }
        if text.is_empty() || text.len() > 15 || text.contains(['/', ' ', '\0']) {
            return Err(format!(
                "'{text}' is neither an IP address nor an interface name"
            ));
        }
        device_exists(text)?;
        Ok(Source::Device(text.to_string()))
    }
}

/// Whether interface `name` exists: a socket bound to it says so.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
fn device_exists(name: &str) -> Result<(), String> {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).map_err(|e| {
            format!(
                "cannot check interface {name}: {}",
                crate::report::error::os_text(&e)
            )
        })?;
    match socket.bind_device(Some(name.as_bytes())) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(19) => Err(format!(
            "there is no network interface named '{name}' on this machine (nor is it an IP address)"
        )),
        Err(e) => Err(format!(
            "cannot bind to interface {name}: {}",
            crate::report::error::os_text(&e)
        )),
    }
}

/// Elsewhere a connection cannot be bound to a device by name: the address will do.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "fuchsia")))]
fn device_exists(name: &str) -> Result<(), String> {
    Err(format!(
        "'{name}' is not an IP address, and binding to an interface by name needs Linux: \
         give the interface's address instead"
    ))
}

/// One `--connect-to HOST1:PORT1:HOST2:PORT2` rule; `None` is an empty field: it matches
/// any host or port (HOST1, PORT1), or keeps the request's own (HOST2, PORT2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo {
    pub host: Option<Host>,
    pub port: Option<u16>,
    pub to_host: Option<Host>,
    pub to_port: Option<u16>,
}

impl ConnectTo {
    /// Where a hop to `host:port` connects under the first rule of `rules` that matches
    /// it; `None` when none does. Names compare in any case, with or without a trailing
    /// dot.
    pub fn apply<'a>(rules: &'a [ConnectTo], host: &'a Host, port: u16) -> Option<(&'a Host, u16)> {
        let rule = rules.iter().find(|r| {
            r.port.is_none_or(|p| p == port) && r.host.as_ref().is_none_or(|h| same_host(h, host))
        })?;
        Some((
            rule.to_host.as_ref().unwrap_or(host),
            rule.to_port.unwrap_or(port),
        ))
    }
}

fn same_host(a: &Host, b: &Host) -> bool {
    match (a, b) {
        (Host::Ip(a), Host::Ip(b)) => a == b,
        (Host::Name(a), Host::Name(b)) => {
            let trim = |s: &'_ str| {
                s.strip_suffix('.')
                    .map(str::to_owned)
                    .unwrap_or_else(|| s.to_owned())
            };
            trim(a).eq_ignore_ascii_case(&trim(b))
        }
        _ => false,
    }
}

/// When a probe speaks HTTP/2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Http2 {
    /// Never: HTTP/1.x, ALPN offers `http/1.1`.
    #[default]
    Off,
    /// `--http2`: over TLS when the server chooses `h2` in ALPN.
    Alpn,
    /// `--http2-prior-knowledge`: also in clear text, without asking.
    PriorKnowledge,
}

/// When an https probe speaks HTTP/3 (QUIC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Http3 {
    /// Never: TCP only.
    #[default]
    Off,
    /// `--http3`: QUIC raced with TCP, which starts after a head start.
    Race,
    /// `--http3-only`: QUIC only.
    Only,
}

/// `--proxy-check`: the URL as given, parsed.
#[derive(Debug, Clone)]
pub struct ProxyCheck {
    pub url: String,
    pub target: Target,
    /// Port for proxies that name none.
    pub default_port: u16,
}

impl Default for ProbeOptions {
    /// The contract's defaults: no proxy, no redirects, the system's resolver and roots.
    fn default() -> Self {
        ProbeOptions {
            request: RequestTemplate::new("GET", HttpVersion::Http10, &[]),
            connect_timeout: defaults::CONNECT_TIMEOUT,
            timeout: defaults::TIMEOUT,
            max_header_bytes: defaults::MAX_HEADER_BYTES,
            pins: Pins::default(),
            resolver: Arc::new(Resolver::new(Settings::default())),
            tls: TlsSettings::new(None, false, false).expect("the built-in roots load"),
            proxy: None,
            proxy_check: None,
            follow: false,
            max_redirs: defaults::MAX_REDIRS,
            http2: Http2::Off,
            http3: Http3::Off,
            source: None,
            connect_to: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        host: Option<&str>,
        port: Option<u16>,
        to: Option<&str>,
        to_port: Option<u16>,
    ) -> ConnectTo {
        let host_of = |h: &str| match h.parse() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(h.to_string()),
        };
        ConnectTo {
            host: host.map(host_of),
            port,
            to_host: to.map(host_of),
            to_port,
        }
    }

    #[test]
    fn the_first_matching_rule_decides_and_empty_fields_match_or_keep() {
        let rules = [
            rule(Some("a.test"), Some(443), Some("10.0.0.1"), Some(8443)),
            rule(Some("a.test"), None, Some("b.test"), None),
            rule(None, Some(81), None, Some(8081)),
        ];
        let name = |n: &str| Host::Name(n.into());
        let at = |h: &str, p| {
            let host = name(h);
            ConnectTo::apply(&rules, &host, p).map(|(h, p)| (h.to_string(), p))
        };
        assert_eq!(at("a.test", 443), Some(("10.0.0.1".into(), 8443)));
        assert_eq!(at("A.Test.", 80), Some(("b.test".into(), 80)));
        assert_eq!(at("c.test", 81), Some(("c.test".into(), 8081)));
        assert_eq!(at("c.test", 80), None);
        let ip = Host::Ip("10.0.0.1".parse().unwrap());
        assert_eq!(ConnectTo::apply(&rules, &ip, 80), None);
    }
}
