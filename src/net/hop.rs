//! What one hop of a probe works with (its settings, target, clock and line sink) and
//! what it gathers on the way. Every room of `net` that takes part in a hop (connect,
//! the conversations, proxy detection) shares these, and this file uses none of them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::net::options::ProbeOptions;
use crate::net::tls::TlsInfo;
use crate::proto::http::HeadParser;
use crate::proto::proxy::ProxyKind;
use crate::proto::target::Target;
use crate::report::duration::human;
use crate::report::record::{Streamed, Timing};

/// Receives what a probe streams.
pub type LineSink<'a> = &'a (dyn Fn(Streamed) + Sync);

/// What a probe has gathered so far; it outlives a timeout or a cancellation, so what
/// was received before is kept.
#[derive(Default)]
pub(crate) struct Gathered {
    pub(crate) addr: Option<SocketAddr>,
    /// What the name resolved to, in the order tried.
    pub(crate) resolved: Option<Vec<std::net::IpAddr>>,
    pub(crate) head: Option<HeadParser>,
    pub(crate) tls: Option<Box<TlsInfo>>,
    pub(crate) timing: Timing,
    /// Head lines already handed to the line sink.
    pub(crate) streamed: usize,
    /// The proxy's reply to CONNECT.
    pub(crate) tunnel: Option<Box<HeadParser>>,
    /// The request target as sent, when in absolute form (through an HTTP proxy).
    pub(crate) request_target: Option<String>,
    /// The protocol the proxy spoke (what detection found, for a bare `HOST:PORT`).
    pub(crate) spoken: Option<ProxyKind>,
}

impl Gathered {
    /// The final response's status, once its status line was read.
    pub(crate) fn final_status(&self) -> Option<u16> {
        self.head.as_ref()?.final_block().map(|b| b.status.code)
    }
}

/// Hands the head lines not streamed yet to `lines` (the HTTP/1 and HTTP/2
/// conversations call it after each read); `streamed` counts those already handed on.
pub(crate) fn stream_fresh(head: &HeadParser, streamed: &mut usize, lines: Option<LineSink<'_>>) {
    if let (Some(sink), true) = (lines, head.line_count() > *streamed) {
        let fresh = (*streamed..head.line_count()).map(|i| head.line(i).to_vec());
        sink(Streamed::Lines(fresh.collect()));
        *streamed = head.line_count();
    }
}

/// What one hop of a probe works with and never changes: the settings, where it goes,
/// its clock, and where its lines stream. The functions of a hop take it, and apart from
/// it only what they work on and what they change (`got`).
#[derive(Clone, Copy)]
pub(crate) struct Visit<'a> {
    pub(crate) cfg: &'a ProbeOptions,
    pub(crate) target: &'a Target,
    pub(crate) clock: &'a Clock,
    pub(crate) lines: Option<LineSink<'a>>,
}

/// When a probe started and how long this hop may take to connect: each hop of a
/// redirect chain connects on a budget of its own, all within `--timeout` of the start.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    pub(crate) start: Instant,
    pub(crate) connect_deadline: Instant,
    /// The option that sets `connect_deadline`, for messages.
    pub(crate) connect_limit: Limit,
}

impl Clock {
    pub(crate) fn new(cfg: &ProbeOptions, start: Instant) -> Clock {
        let by_connect = Instant::now() + cfg.connect_timeout;
        let by_total = start + cfg.timeout;
        let (connect_deadline, connect_limit) = if by_connect <= by_total {
            (by_connect, Limit(cfg.connect_timeout, "--connect-timeout"))
        } else {
            (by_total, Limit(cfg.timeout, "--timeout"))
        };
        Clock {
            start,
            connect_deadline,
            connect_limit,
        }
    }

    /// What is left of `--timeout` for this probe.
    pub(crate) fn left(&self, cfg: &ProbeOptions) -> Duration {
        (self.start + cfg.timeout).saturating_duration_since(Instant::now())
    }
}

/// A time limit and the option that set it: `500ms (--timeout)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limit(pub(crate) Duration, pub(crate) &'static str);

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", human(self.0), self.1)
    }
}

/// An address for messages, formatted only if a message is made.
#[derive(Clone, Copy)]
pub(crate) struct AddrText(pub(crate) Option<SocketAddr>);

impl std::fmt::Display for AddrText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str("the peer"),
        }
    }
}
