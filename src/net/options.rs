//! What one probe is allowed and asked to do, as the layer above built it from the
//! command line: timeouts, caps, names, TLS, proxies, redirects. `net` reads only this.

use std::sync::Arc;
use std::time::Duration;

use crate::net::resolve::{Pins, Resolver, Settings};
use crate::net::tls::TlsSettings;
use crate::proto::proxy::Proxy;
use crate::proto::request::{HttpVersion, RequestTemplate};
use crate::proto::target::Target;

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
        }
    }
}
