//! One probe: resolve, connect, send the request, read the head, close.
//!
//! With `runner`, the only place that touches async-std (sockets, timers, DNS).
//! Every await here is bounded by the connect deadline or the probe deadline.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_std::future::timeout;
use async_std::net::TcpStream;
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::cli::Config;
use crate::net::detect;
use crate::net::resolve;
use crate::net::tls::TlsInfo;
use crate::net::wire::{read_head, HeadEnd};
use crate::proto::http::{HeadError, HeadParser};
use crate::proto::location;
use crate::proto::proxy::{Proxy, ProxyKind};
use crate::proto::request::RequestTemplate;
use crate::proto::target::{Defaults, Scheme, Target};
use crate::proto::Job;
use crate::report::duration::human;
use crate::report::error::{ErrorKind, ProbeError};
use crate::report::record::{Hop, Record, Streamed, Timing, Via};

/// Receives what a probe streams.
pub type LineSink<'a> = &'a (dyn Fn(Streamed) + Sync);

/// What a probe has gathered so far; it outlives a timeout or a cancellation, so what
/// was received before is kept.
#[derive(Default)]
pub(crate) struct Gathered {
    pub(crate) addr: Option<SocketAddr>,
    /// What the name resolved to, in the order tried.
    resolved: Option<Vec<std::net::IpAddr>>,
    pub(crate) head: Option<HeadParser>,
    tls: Option<Box<TlsInfo>>,
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

/// Probes what `job` asks for, racing the whole probe against `cancelled`.
pub async fn probe<C>(
    cfg: &Config,
    seq: u64,
    index: u64,
    token: Vec<u8>,
    job: Job,
    lines: Option<LineSink<'_>>,
    cancelled: C,
) -> Record
where
    C: std::future::Future<Output = ()>,
{
    let (target, mut via) = plan(cfg, job);
    let start = Instant::now();
    let mut cancelled = std::pin::pin!(cancelled);
    let mut redirects: Vec<Hop> = Vec::new();
    // `-L`: the hop being probed, when it is not the target itself.
    let mut hop: Option<(Target, String)> = None;
    let mut request = Cow::Borrowed(&cfg.request);
    loop {
        let mut got = Gathered::default();
        let current = hop.as_ref().map_or(&target, |(t, _)| t);
        let proxy = via.as_ref().map(|v| &v.proxy);
        let clock = Clock::new(cfg, start);
        let visit = Visit {
            cfg,
            target: current,
            clock: &clock,
            lines,
        };
        // Boxed: the exchange is most of a probe's state; the loop around it stays small.
        let work = Box::pin(exchange(visit, &request, proxy, &mut got));
        let cancel = async {
            cancelled.as_mut().await;
            Err(ProbeError::new(
                ErrorKind::Cancelled,
                "the run was interrupted before this probe finished",
            ))
        };
        let mut result = futures_lite::future::or(work, cancel).await;
        if let (Some(via), Some(kind)) = (&mut via, got.spoken) {
            // Found by detection: later hops go straight to it.
            via.proxy = via.proxy.as_kind(kind);
        }
        if result.is_ok() && cfg.follow {
            match redirect(current, &got) {
                Some(Redirect {
                    status,
                    location,
                    next: Ok((url, next)),
                }) if redirects.len() < cfg.max_redirs => {
                    if let Some(sink) = lines {
                        sink(Streamed::Redirect(url.clone()));
                    }
                    redirects.push(Hop {
                        url: url_of(current),
                        status,
                        location: String::from_utf8_lossy(&location).into_owned(),
                        head: got.head.take(),
                    });
                    // 303 asks for a GET; HEAD stays HEAD, anything else keeps its method.
                    if status == 303 && !matches!(request.method(), "GET" | "HEAD") {
                        request = Cow::Owned(request.with_method("GET"));
                    }
                    hop = Some((next, url));
                    continue;
                }
                Some(Redirect {
                    location,
                    next: Ok(_),
                    ..
                }) => {
                    result = Err(ProbeError::new(
                        ErrorKind::TooManyRedirects,
                        format!(
                            "more than {} redirects (--max-redirs); the last pointed to {}",
                            cfg.max_redirs,
                            String::from_utf8_lossy(&location)
                        ),
                    ))
                }
                // No usable Location: this 3xx is the answer.
                _ => {}
            }
        }
        got.timing.total = start.elapsed();
        if let Some(via) = &mut via {
            via.request_target = got.request_target;
            via.tunnel = got.tunnel;
            // Through --proxy the proxy resolves the target: what we resolved is the
            // proxy's name, which the record does not describe (--proxy-check's does).
            if via.check_url.is_none() {
                got.resolved = None;
            }
        }
        let final_url = cfg.follow.then(|| match hop {
            Some((_, url)) => url,
            None => url_of(&target),
        });
        return Record {
            seq,
            index,
            token,
            target: Some(target),
            addr: got.addr,
            resolved: got.resolved,
            head: got.head,
            tls: got.tls,
            via,
            error: result.err(),
            timing: got.timing,
            redirects,
            final_url,
            attempts: 1,
        };
    }
}

/// The URL a target asks for, as a browser would show it.
fn url_of(target: &Target) -> String {
    format!(
        "{}://{}{}",
        target.scheme.name(),
        target.host_header(),
        target.path
    )
}

/// A redirect the final response asks for.
struct Redirect {
    status: u16,
    /// The `Location` value as sent.
    location: Vec<u8>,
    /// Its URL and target, or why it cannot be followed (the 3xx is then the answer).
    next: Result<(String, Target), String>,
}

/// The redirect in `got`, if its final response is a 3xx that names a `Location`.
fn redirect(current: &Target, got: &Gathered) -> Option<Redirect> {
    let head = got.head.as_ref()?;
    let block = head.final_block()?;
    let status = block.status.code;
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = head
        .headers(block)
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(b"location"))
        .map(|(_, value)| value.into_owned())?;
    let next = location::resolve(&url_of(current), &location).and_then(|url| {
        let defaults = Defaults {
            https: true,
            ..Defaults::default()
        };
        let target = crate::proto::target::parse(&url, &defaults)?;
        Ok((url, target))
    });
    Some(Redirect {
        status,
        location,
        next,
    })
}

/// What a job asks for: the URL to request and, when a proxy is involved, how. With
/// `--proxy-check` the proxy is the job and the URL comes from the configuration.
pub fn plan(cfg: &Config, job: Job) -> (Target, Option<Via>) {
    let via = |proxy, check_url| Via {
        proxy,
        check_url,
        request_target: None,
        tunnel: None,
    };
    match job {
        Job::Target(target) => (target, cfg.proxy.clone().map(|p| via(p, None))),
        Job::Proxy(proxy) => {
            // Input makes proxy jobs only when --proxy-check is set.
            let check = cfg
                .proxy_check
                .as_ref()
                .expect("proxy jobs come with --proxy-check");
            (
                check.target.clone(),
                Some(via(proxy, Some(check.url.clone()))),
            )
        }
    }
}

/// What one hop of a probe works with and never changes: the settings, where it goes,
/// its clock, and where its lines stream. The functions below take it, and apart from
/// it only what they work on and what they change (`got`).
#[derive(Clone, Copy)]
pub(crate) struct Visit<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) target: &'a Target,
    pub(crate) clock: &'a Clock,
    pub(crate) lines: Option<LineSink<'a>>,
}

async fn exchange(
    visit: Visit<'_>,
    template: &RequestTemplate,
    via: Option<&Proxy>,
    got: &mut Gathered,
) -> Result<(), ProbeError> {
    let Visit {
        cfg, target, clock, ..
    } = visit;
    let (host, port) = match via {
        Some(proxy) => (&proxy.host, proxy.port),
        None => (&target.host, target.port),
    };
    let resolved = resolve::addresses(
        cfg,
        host,
        port,
        clock.connect_deadline,
        &clock.connect_limit,
    )
    .await?;
    let addrs = resolved.addrs;
    if resolved.ips.is_some() {
        got.timing.dns = Some(clock.start.elapsed());
    }
    got.resolved = resolved.ips;
    match via {
        None => {
            let stream = open(&addrs, clock, got).await?;
            let request = template.render(target);
            converse(visit, &request, stream, got).await
        }
        // Boxed: only proxied probes carry the tunnel's state.
        Some(proxy) => Box::pin(detect::through(visit, template, proxy, &addrs, got)).await,
    }
}

/// Connects to the first of `addrs` that answers, within the connect budget.
pub(crate) async fn open(
    addrs: &[SocketAddr],
    clock: &Clock,
    got: &mut Gathered,
) -> Result<TcpStream, ProbeError> {
    let stream = connect(addrs, clock.connect_deadline, clock.connect_limit, got).await?;
    // The body is never read, so the connection ends with a reset rather than a FIN
    // exchange: no TIME_WAIT left on our side, fewer packets for both ends. (Closing
    // with unread data resets anyway; this makes it the rule, as scanners do.)
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    got.timing.connect = Some(clock.start.elapsed());
    Ok(stream)
}

/// Sends `request` over `stream` (after a TLS handshake for https) and reads the head.
pub(crate) async fn converse(
    visit: Visit<'_>,
    request: &[u8],
    stream: TcpStream,
    got: &mut Gathered,
) -> Result<(), ProbeError> {
    match visit.target.scheme {
        Scheme::Http => talk_in_time(visit, request, stream, got).await,
        // Boxed: only https probes carry the TLS state, so plain ones stay small.
        Scheme::Https => Box::pin(over_tls(visit, request, stream, got)).await,
    }
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
    fn new(cfg: &Config, start: Instant) -> Clock {
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
}

/// A time limit and the option that set it: `500ms (--timeout)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limit(Duration, &'static str);

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", human(self.0), self.1)
    }
}

/// The TLS handshake (on the connect budget), then the request and the head.
async fn over_tls(
    visit: Visit<'_>,
    request: &[u8],
    stream: TcpStream,
    got: &mut Gathered,
) -> Result<(), ProbeError> {
    let Visit {
        cfg,
        target,
        clock,
        lines,
    } = visit;
    // As curl: small writes go out at once (a long request, not queued with the
    // handshake, is written after it; Nagle would hold it for the Finished's ACK).
    let _ = stream.set_nodelay(true);
    // The request rides with the client's Finished (see TlsSettings::handshake).
    let queued = request.len() <= crate::net::tls::EARLY_REQUEST_MAX;
    let left = clock
        .connect_deadline
        .saturating_duration_since(Instant::now());
    let peer = crate::net::tls::Peer {
        host: &target.host,
        addr: &AddrText(got.addr),
    };
    let (stream, info) = match timeout(
        left,
        cfg.tls.handshake(&peer, stream, queued.then_some(request)),
    )
    .await
    {
        Ok(Ok(done)) => done,
        Ok(Err(failed)) => {
            // What the handshake learnt (the certificate, even a rejected one) is kept.
            got.tls = failed.info.map(Box::new);
            return Err(failed.error);
        }
        Err(_) => {
            return Err(ProbeError::new(
                ErrorKind::Timeout,
                format!("TLS handshake not finished within {}", clock.connect_limit),
            ))
        }
    };
    got.timing.tls = Some(clock.start.elapsed());
    if let Some(sink) = lines {
        sink(Streamed::Tls(info.summary()));
    }
    got.tls = Some(Box::new(info));
    let request = if queued { &[][..] } else { request };
    talk_in_time(visit, request, stream, got).await
}

/// `talk`, within what is left of `--timeout`.
async fn talk_in_time<S: AsyncRead + AsyncWrite + Unpin>(
    visit: Visit<'_>,
    request: &[u8],
    stream: S,
    got: &mut Gathered,
) -> Result<(), ProbeError> {
    let Visit {
        cfg, clock, lines, ..
    } = visit;
    let left = (clock.start + cfg.timeout).saturating_duration_since(Instant::now());
    match timeout(left, talk(cfg, request, stream, clock.start, got, lines)).await {
        Ok(result) => result,
        Err(_) => Err(talk_timeout(cfg, got)),
    }
}

/// `--timeout` ran out after connecting.
fn talk_timeout(cfg: &Config, got: &Gathered) -> ProbeError {
    let what = match &got.head {
        Some(head) if !head.is_empty() => "the header block did not end",
        _ => "no response",
    };
    ProbeError::new(
        ErrorKind::Timeout,
        format!("{what} within {} (--timeout)", human(cfg.timeout)),
    )
}

pub(crate) fn final_status(got: &Gathered) -> Option<u16> {
    got.head.as_ref()?.final_block().map(|b| b.status.code)
}

/// Tries each address in order until one connects. Each attempt gets an equal share of
/// what is left of the connect budget, so every address is tried.
async fn connect(
    addrs: &[SocketAddr],
    deadline: Instant,
    limit: Limit,
    got: &mut Gathered,
) -> Result<TcpStream, ProbeError> {
    let mut last = None;
    for (i, &addr) in addrs.iter().enumerate() {
        got.addr = Some(addr);
        let left = deadline.saturating_duration_since(Instant::now());
        let timed_out = || {
            ProbeError::new(
                ErrorKind::ConnectTimeout,
                format!("no connection to {addr} within {limit}"),
            )
        };
        if left.is_zero() {
            last = Some(timed_out());
            break;
        }
        let share = left / (addrs.len() - i) as u32;
        match timeout(share, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = Some(ProbeError::from_io(&e, "connecting to", addr)),
            Err(_) => last = Some(timed_out()),
        }
    }
    let mut err = last
        .unwrap_or_else(|| ProbeError::new(ErrorKind::Dns, "no address to connect to").definite());
    if addrs.len() > 1 {
        err.message
            .push_str(&format!(" (tried {} addresses)", addrs.len()));
    }
    Err(err)
}

/// Sends the request and reads the head. The body is never read.
async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
    cfg: &Config,
    request: &[u8],
    mut stream: S,
    start: Instant,
    got: &mut Gathered,
    lines: Option<LineSink<'_>>,
) -> Result<(), ProbeError> {
    let addr = AddrText(got.addr);
    stream
        .write_all(request)
        .await
        .map_err(|e| tls_or_io(&e, "sending the request to", addr))?;

    let head = got.head.insert(HeadParser::new(cfg.max_header_bytes));
    let (timing, streamed) = (&mut got.timing, &mut got.streamed);
    let read = read_head(&mut stream, head, |head| {
        if timing.first_byte.is_none() {
            timing.first_byte = Some(start.elapsed());
        }
        if let (Some(sink), true) = (lines, head.line_count() > *streamed) {
            let fresh = (*streamed..head.line_count()).map(|i| head.line(i).to_vec());
            sink(Streamed::Lines(fresh.collect()));
            *streamed = head.line_count();
        }
    })
    .await;
    match read {
        Ok(()) => {
            got.timing.headers = Some(start.elapsed());
            Ok(())
        }
        Err(HeadEnd::Io(e)) => Err(tls_or_io(&e, "reading the response from", addr)),
        Err(HeadEnd::Eof) if head.is_empty() => Err(ProbeError::new(
            ErrorKind::Empty,
            format!("{addr} closed the connection without sending anything"),
        )),
        Err(HeadEnd::Eof) => Err(ProbeError::new(
            ErrorKind::Incomplete,
            format!("{addr} closed the connection inside the header block"),
        )),
        Err(HeadEnd::Head(HeadError::TooLarge)) => Err(too_large(cfg)),
        Err(HeadEnd::Head(HeadError::NotHttp)) => Err(ProbeError::new(
            ErrorKind::NotHttp,
            format!(
                "{addr} did not answer with an HTTP status line; it sent {}{}",
                crate::report::sanitize::quote_peer(head.banner(), 80),
                if crate::net::tls::looks_like_tls(head.banner()) {
                    " (a TLS record: is it an https:// port?)"
                } else {
                    ""
                }
            ),
        )),
    }
}

/// An error from the stream: a TLS alert (a TLS 1.3 server refuses a client only after
/// the handshake) is `tls`, anything else is classified as I/O.
fn tls_or_io(e: &std::io::Error, what: &str, addr: AddrText) -> ProbeError {
    crate::net::tls::after_handshake(e).unwrap_or_else(|| ProbeError::from_io(e, what, addr))
}

fn too_large(cfg: &Config) -> ProbeError {
    ProbeError::new(
        ErrorKind::HeadersTooLarge,
        format!(
            "the header block is larger than {} bytes (--max-header-bytes)",
            cfg.max_header_bytes
        ),
    )
}

/// An address for messages, formatted only if a message is made.
#[derive(Clone, Copy)]
struct AddrText(Option<SocketAddr>);

impl std::fmt::Display for AddrText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str("the peer"),
        }
    }
}

#[cfg(test)]
mod tests {
    /// Each probe in flight is one task holding this future: at `-c 10000` its size is
    /// most of the memory. TLS and proxy state are boxed so plain probes stay small.
    #[test]
    fn a_probe_in_flight_stays_small() {
        let cfg = crate::cli::Config::with_targets(&[]);
        let t = crate::proto::target::parse("127.0.0.1:1", &cfg.defaults).unwrap();
        let job = crate::proto::Job::Target(t);
        let fut = super::probe(&cfg, 0, 0, vec![], job, None, std::future::pending::<()>());
        let size = std::mem::size_of_val(&fut);
        assert!(size <= 2048, "the probe future grew to {size} bytes");
    }
}
