//! The result of one probe: everything the printers need, and nothing about sockets.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::proto::http::HeadParser;
use crate::proto::proxy::Proxy;
use crate::proto::target::Target;
use crate::report::error::{ErrorKind, ProbeError};

/// What a TLS handshake established, for the `tls` JSON object and the text `tls >` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `None` when the handshake failed before a version was chosen.
    pub version: Option<TlsVersion>,
    /// The IANA name of the negotiated suite (`TLS_AES_128_GCM_SHA256`), as blackbox,
    /// curl and openssl print it; `None` when none was chosen.
    pub cipher: Option<String>,
    pub verified: bool,
    /// The protocol the server chose in ALPN (`h2`, `http/1.1`), if it chose one.
    pub alpn: Option<String>,
    pub cert: Option<CertInfo>,
    /// Every certificate the server sent, leaf first (empty when none was seen).
    pub chain: Vec<ChainCert>,
}

impl TlsInfo {
    /// `TLSv1.3 TLS_AES_128_GCM_SHA256 CN=example.com (verified)`, then ` ALPN h2`
    /// when the server chose a protocol.
    pub fn summary(&self) -> String {
        let subject = self.cert.as_ref().map_or("-", |c| c.subject.as_str());
        let verified = if self.verified {
            "verified"
        } else {
            "unverified"
        };
        let version = self.version.map_or_else(|| "-".into(), TlsVersion::name);
        let cipher = self.cipher.as_deref().unwrap_or("-");
        let mut line = format!("{version} {cipher} {subject} ({verified})");
        if let Some(alpn) = &self.alpn {
            line.push_str(" ALPN ");
            line.push_str(alpn);
        }
        line
    }

    /// The earliest notAfter over the certificates the server sent (blackbox_exporter's
    /// `probe_ssl_earliest_cert_expiry`); the leaf's when the chain is unknown.
    pub fn earliest_expiry(&self) -> Option<i64> {
        let chain = self.chain.iter().map(|c| c.not_after).min();
        chain.or(self.cert.as_ref().map(|c| c.not_after))
    }
}

/// A TLS protocol version, as negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Ssl3,
    Tls10,
    Tls11,
    Tls12,
    Tls13,
    /// A version number this list does not name.
    Other(u16),
}

impl TlsVersion {
    /// From the version's number on the wire (`0x0304` is TLS 1.3).
    pub fn from_wire(v: u16) -> TlsVersion {
        match v {
            0x0300 => TlsVersion::Ssl3,
            0x0301 => TlsVersion::Tls10,
            0x0302 => TlsVersion::Tls11,
            0x0303 => TlsVersion::Tls12,
            0x0304 => TlsVersion::Tls13,
            v => TlsVersion::Other(v),
        }
    }

    /// `TLSv1.3`, as openssl and curl write it (JSON and text); `0x0305` for others.
    pub fn name(self) -> String {
        match self {
            TlsVersion::Ssl3 => "SSLv3".into(),
            TlsVersion::Tls10 => "TLSv1.0".into(),
            TlsVersion::Tls11 => "TLSv1.1".into(),
            TlsVersion::Tls12 => "TLSv1.2".into(),
            TlsVersion::Tls13 => "TLSv1.3".into(),
            TlsVersion::Other(v) => format!("0x{v:04x}"),
        }
    }
}

/// The leaf certificate's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    pub san: Vec<String>,
    pub sha256: String,
    /// Whole days from the handshake to `not_after`, counted toward zero: 25 hours
    /// left is 1, 25 hours past is -1, and less than a day either way is 0.
    pub days_left: i64,
    /// `not_after` had passed at the handshake.
    pub expired: bool,
    /// The serial number's magnitude in lower-case hex, no leading zero bytes (as
    /// blackbox_exporter's `serialnumber` label writes it).
    pub serial: String,
    /// Subject and issuer as Go's `pkix.Name.String()` writes them (RFC 2253 order:
    /// `CN=leaf,O=Org,C=US`): the labels of blackbox_exporter's `probe_ssl_last_chain_info`.
    pub subject_rfc2253: String,
    pub issuer_rfc2253: String,
}

/// One certificate the server sent (`tls.chain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCert {
    pub subject: String,
    pub issuer: String,
    /// Unix seconds.
    pub not_after: i64,
    /// Lower-case hex of the SHA-256 of the DER.
    pub sha256: String,
}

/// What a probe hands on as it happens (text output streams it).
#[derive(Debug)]
pub enum Streamed {
    /// The handshake's summary (`tls >` line).
    Tls(String),
    /// Head lines that just arrived, in order.
    Lines(Vec<Vec<u8>>),
    /// `-L`: the next hop's URL (`redirect >` line); the hop's lines are all out.
    Redirect(String),
    /// `--retry`: why and when the target is probed again (`retry >` line); what was
    /// streamed of the failed attempt stays as it was.
    Retry(String),
}

/// `-L`: one response that redirected, and where to.
#[derive(Debug, Clone)]
pub struct Hop {
    /// The URL that was requested.
    pub url: String,
    pub status: u16,
    /// The `Location` value as sent.
    pub location: String,
    /// The whole head, for text output of `--ordered` runs.
    pub head: Option<HeadParser>,
}

/// How a probe went through a proxy.
#[derive(Debug, Clone)]
pub struct Via {
    pub proxy: Proxy,
    /// `--proxy-check`: the proxy is what the record describes; this is the URL asked for.
    pub check_url: Option<String>,
    /// The request target as sent, when it is not the target's path (absolute form).
    pub request_target: Option<String>,
    /// The proxy's reply to CONNECT.
    pub tunnel: Option<Box<HeadParser>>,
}

/// When each phase ended, measured from the probe's start; `None` when not reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timing {
    pub dns: Option<Duration>,
    pub connect: Option<Duration>,
    pub tls: Option<Duration>,
    /// Tunnel through the proxy established (CONNECT or SOCKS5).
    pub proxy: Option<Duration>,
    pub first_byte: Option<Duration>,
    pub headers: Option<Duration>,
    pub total: Duration,
}

/// `--all-addresses`: which of its name's addresses a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneOf {
    /// The address's place in what the name resolved to (0-based).
    pub position: u32,
    /// How many addresses the name has (after `-4`/`-6`); `None` when the target came
    /// to no address (invalid, or the lookup failed).
    pub of: Option<u32>,
    /// The address probed, where the record's chain started (`addr` is where it ended).
    pub address: Option<SocketAddr>,
}

/// One input target's result. Exactly one is made for every target read (with
/// `--all-addresses`, one for every address of a name).
#[derive(Debug, Clone)]
pub struct Record {
    /// Position among the records of this run (input order), for `--ordered`.
    pub seq: u64,
    /// Position among all the targets read, before `--shard` (JSON `index`).
    pub index: u64,
    /// The input token as read.
    pub token: Vec<u8>,
    /// `None` when the token is not a target.
    pub target: Option<Target>,
    /// The last address a connection was tried to.
    pub addr: Option<SocketAddr>,
    /// What the host name resolved to, in the order tried; `None` for an address
    /// literal, a failed lookup, or a name that a proxy resolves.
    pub resolved: Option<Vec<IpAddr>>,
    /// What was read of the response head, if a connection was made.
    pub head: Option<HeadParser>,
    /// What the TLS handshake established (https only).
    pub tls: Option<Box<TlsInfo>>,
    /// The proxy gone through, and whether it is the subject (`--proxy-check`).
    pub via: Option<Via>,
    pub error: Option<ProbeError>,
    pub timing: Timing,
    /// `-L`: the responses that redirected, in order; the record describes the last.
    pub redirects: Vec<Hop>,
    /// `-L`: the URL of the last request.
    pub final_url: Option<String>,
    /// How many times the target was probed (`--retry`).
    pub attempts: u32,
    /// `--all-addresses`: the address of the name this record is about; `None` without
    /// the option.
    pub one_of: Option<OneOf>,
}

impl Record {
    /// A record for a target that never got probed (invalid, or cancelled while queued).
    pub fn failed(
        seq: u64,
        index: u64,
        token: Vec<u8>,
        target: Option<Target>,
        error: ProbeError,
    ) -> Self {
        Record {
            seq,
            index,
            token,
            target,
            addr: None,
            resolved: None,
            head: None,
            tls: None,
            via: None,
            error: Some(error),
            timing: Timing::default(),
            redirects: Vec::new(),
            final_url: None,
            attempts: 0,
            one_of: None,
        }
    }

    /// A final status line and the end of the head were read, and the status is wanted.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.error.as_ref().map(|e| e.kind)
    }

    /// The final status code, if its status line was read.
    pub fn status(&self) -> Option<u16> {
        let head = self.head.as_ref()?;
        head.final_block().map(|b| b.status.code)
    }

    /// What text output prefixes the record's lines with: the token, and with
    /// `--all-addresses` for a name, `@` and the address (`www.example.com@192.0.2.7:80`),
    /// so that each address's lines stand apart and still form one word.
    pub fn text_token(&self) -> std::borrow::Cow<'_, [u8]> {
        let name = matches!(
            self.target.as_ref().map(|t| &t.host),
            Some(crate::proto::target::Host::Name(_))
        );
        match self.one_of.and_then(|o| o.address) {
            Some(addr) if name => {
                let mut token = self.token.clone();
                token.extend_from_slice(format!("@{addr}").as_bytes());
                std::borrow::Cow::Owned(token)
            }
            _ => std::borrow::Cow::Borrowed(&self.token),
        }
    }

    /// The peer's first line, when it was not HTTP.
    pub fn banner(&self) -> Option<&[u8]> {
        match (self.error_kind(), &self.head) {
            (Some(ErrorKind::NotHttp), Some(head)) => Some(head.banner()),
            _ => None,
        }
    }
}
