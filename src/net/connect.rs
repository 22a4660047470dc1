//! Connecting: from a host to the addresses to try (a literal, `--resolve` pins, then
//! the resolver), and from those to one open TCP stream, within the hop's connect
//! budget.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::net::rt::timeout;
use crate::net::rt::TcpStream;
use crate::net::rt::Timer;
use futures_lite::future;

use crate::net::hop::{Clock, Gathered, Limit};
use crate::net::options::{ProbeOptions, Source};
use crate::net::resolve;
use crate::proto::target::Host;
use crate::report::error::{os_text, ErrorKind, ProbeError};

/// Where a probe connects: the addresses in the order to try, and what the name
/// resolved to (`None` for an address literal).
pub(crate) struct Resolved {
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) ips: Option<Vec<IpAddr>>,
}

/// The addresses to try for `host:port`: a literal as is (if its family is allowed),
/// `--resolve` entries, then the resolver. Bounded by `deadline`.
pub(crate) async fn addresses(
    cfg: &ProbeOptions,
    host: &Host,
    port: u16,
    deadline: Instant,
    limit: &dyn fmt::Display,
) -> Result<Resolved, ProbeError> {
    let family = cfg.resolver.family();
    let name = match host {
        Host::Ip(ip) if family.allows(ip) => {
            return Ok(Resolved {
                addrs: vec![SocketAddr::new(*ip, port)],
                ips: None,
            })
        }
        Host::Ip(ip) => {
            let kind = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
            return Err(ProbeError::new(
                ErrorKind::InvalidTarget,
                format!(
                    "{ip} is an {kind} address, and {} allows no other family; nothing was sent",
                    family.flag()
                ),
            ));
        }
        Host::Name(name) => name,
    };
    let ips = match cfg.pins.get(name, port) {
        Some(pinned) => {
            let ips: Vec<IpAddr> = pinned
                .iter()
                .copied()
                .filter(|ip| family.allows(ip))
                .collect();
            if ips.is_empty() {
                return Err(resolve::dns_error(
                    name,
                    &format!(
                        "--resolve gives {name}:{port} no address that {} allows",
                        family.flag()
                    ),
                ));
            }
            ips
        }
        // Boxed: only probes of names carry the lookup's state.
        None => Box::pin(cfg.resolver.lookup(name, deadline, limit)).await?,
    };
    Ok(Resolved {
        addrs: ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect(),
        ips: Some(ips),
    })
}

/// Connects to the first of `addrs` to answer (a race when there are several), within
/// the connect budget, from `source` (`--interface`) when given: then addresses of the
/// other family than its address are not tried.
pub(crate) async fn open(
    addrs: &[SocketAddr],
    source: Option<&Source>,
    clock: &Clock,
    got: &mut Gathered,
) -> Result<TcpStream, ProbeError> {
    let addrs = of_source_family(addrs, source)?;
    let stream = connect(
        &addrs,
        source,
        clock.connect_deadline,
        clock.connect_limit,
        got,
    )
    .await?;
    // The body is never read, so the connection ends with a reset rather than a FIN
    // exchange: no TIME_WAIT left on our side, fewer packets for both ends. (Closing
    // with unread data resets anyway; this makes it the rule, as scanners do.)
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    got.timing.connect = Some(clock.start.elapsed());
    Ok(stream)
}

/// The addresses of `addrs` that `source` (`--interface ADDR`) can reach: those of its
/// family. An error, sent nowhere, when none is.
pub(crate) fn of_source_family<'a>(
    addrs: &'a [SocketAddr],
    source: Option<&Source>,
) -> Result<std::borrow::Cow<'a, [SocketAddr]>, ProbeError> {
    match source {
        Some(Source::Addr(ip)) if addrs.iter().any(|a| a.is_ipv4() != ip.is_ipv4()) => {
            let same: Vec<SocketAddr> = (addrs.iter().copied())
                .filter(|a| a.is_ipv4() == ip.is_ipv4())
                .collect();
            if same.is_empty() {
                return Err(other_family(addrs, *ip));
            }
            Ok(same.into())
        }
        _ => Ok(addrs.into()),
    }
}

/// Why no address of `addrs` was tried from `--interface ip`: all are of the other family.
fn other_family(addrs: &[SocketAddr], ip: IpAddr) -> ProbeError {
    let (theirs, ours) = match ip {
        IpAddr::V4(_) => ("IPv6", "IPv4"),
        IpAddr::V6(_) => ("IPv4", "IPv6"),
    };
    let shown: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    let (it, is) = match addrs.len() {
        1 => ("it", "is"),
        _ => ("they", "are"),
    };
    ProbeError::new(
        ErrorKind::Unreachable,
        format!(
            "{} {is} {theirs}, and --interface {ip} is {ours}: {it} cannot be reached from \
             there, so nothing was sent",
            shown.join(", ")
        ),
    )
    .definite()
}

/// Starts a connection to `addr`, from `source` when given.
fn dial(addr: SocketAddr, source: Option<&Source>) -> Attempt {
    let Some(source) = source else {
        return Box::pin(TcpStream::connect(addr));
    };
    match bound_socket(source, addr) {
        Ok(socket) => Box::pin(TcpStream::connect_bound(socket, addr)),
        Err(e) => Box::pin(future::ready(Err(e))),
    }
}

/// A TCP socket for `addr`, bound to `--interface`'s address or device.
fn bound_socket(source: &Source, addr: SocketAddr) -> io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    bind_source(&socket, source)?;
    Ok(socket)
}

/// Binds `socket` (TCP, or QUIC's UDP) to `--interface`'s address or device.
pub(crate) fn bind_source(socket: &socket2::Socket, source: &Source) -> io::Result<()> {
    match source {
        Source::Addr(ip) => socket.bind(&SocketAddr::new(*ip, 0).into()),
        Source::Device(name) => bind_device(socket, name),
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
fn bind_device(socket: &socket2::Socket, name: &str) -> io::Result<()> {
    socket.bind_device(Some(name.as_bytes()))
}

/// `--interface NAME` is refused at start-up where it cannot be done.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "fuchsia")))]
fn bind_device(_: &socket2::Socket, name: &str) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("binding to interface {name} needs Linux"),
    ))
}

/// RFC 8305 section 5: how long an attempt has before the next address is tried too.
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// A connection attempt in flight.
type Attempt = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// Races `addrs` (RFC 8305, Happy Eyeballs): each attempt starts `ATTEMPT_DELAY` after
/// the one before unless that one has connected, or at once when it failed; the first
/// to connect wins and the others are dropped (closing their sockets). All of it within
/// the connect budget. `got.addr` is the winner, or the last address tried.
async fn connect(
    addrs: &[SocketAddr],
    source: Option<&Source>,
    deadline: Instant,
    limit: Limit,
    got: &mut Gathered,
) -> Result<TcpStream, ProbeError> {
    let timed_out = |addr: SocketAddr| {
        ProbeError::new(
            ErrorKind::ConnectTimeout,
            format!("no connection to {addr} within {limit}"),
        )
    };
    let (&first, rest) = match addrs.split_first() {
        Some(split) => split,
        None => return Err(ProbeError::new(ErrorKind::Dns, "no address to connect to").definite()),
    };
    got.addr = Some(first);
    if rest.is_empty() {
        // One address, the common case: no race, no boxed attempt.
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = async {
            match source {
                None => TcpStream::connect(first).await,
                Some(_) => dial(first, source).await,
            }
        };
        return match timeout(left, attempt).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(ProbeError::from_io(&e, "connecting to", first)),
            Err(_) => Err(timed_out(first)),
        };
    }
    let mut race = Race {
        addrs,
        source,
        attempts: Vec::with_capacity(addrs.len()),
        failures: Vec::new(),
        next_start: Instant::now(),
        deadline,
        timer: Timer::never(),
    };
    let result = future::poll_fn(|cx| race.poll(cx)).await;
    got.addr = addrs.get(race.attempts.len().saturating_sub(1)).copied();
    match result {
        Ok((i, stream)) => {
            got.addr = Some(addrs[i]);
            Ok(stream)
        }
        Err(timed_out_too) => Err(race.failed(timed_out_too, limit)),
    }
}

/// The state of a race over several addresses.
struct Race<'a> {
    addrs: &'a [SocketAddr],
    source: Option<&'a Source>,
    /// One per address started so far, in order; `None` once it failed.
    attempts: Vec<Option<Attempt>>,
    /// What happened to each failed attempt, in the order they failed.
    failures: Vec<(SocketAddr, io::Error)>,
    /// When the next address is due to start.
    next_start: Instant,
    deadline: Instant,
    timer: Timer,
}

impl Race<'_> {
    /// `Ready(Ok)` with the winner, or `Ready(Err(deadline passed))` once every attempt
    /// failed or the budget ran out.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(usize, TcpStream), bool>> {
        loop {
            let now = Instant::now();
            let started = self.attempts.len();
            let running = self.attempts.iter().any(Option::is_some);
            if started < self.addrs.len() && (now >= self.next_start || !running) {
                let addr = self.addrs[started];
                self.attempts.push(Some(dial(addr, self.source)));
                self.next_start = now + ATTEMPT_DELAY;
            }
            let mut failed = false;
            for (i, slot) in self.attempts.iter_mut().enumerate() {
                let Some(attempt) = slot else { continue };
                match attempt.as_mut().poll(cx) {
                    Poll::Ready(Ok(stream)) => return Poll::Ready(Ok((i, stream))),
                    Poll::Ready(Err(e)) => {
                        self.failures.push((self.addrs[i], e));
                        *slot = None;
                        failed = true;
                    }
                    Poll::Pending => {}
                }
            }
            let running = self.attempts.iter().any(Option::is_some);
            let all_started = self.attempts.len() == self.addrs.len();
            if all_started && !running {
                return Poll::Ready(Err(false));
            }
            if Instant::now() >= self.deadline {
                return Poll::Ready(Err(true));
            }
            if failed {
                // A failure starts the next address at once.
                self.next_start = Instant::now();
                continue;
            }
            let wake = if all_started {
                self.deadline
            } else {
                self.next_start.min(self.deadline)
            };
            self.timer.set_at(wake);
            if Pin::new(&mut self.timer).poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    /// The error of a race that nobody won: the kind of what ended it, and what
    /// happened to each address, in the order tried.
    fn failed(&self, out_of_time: bool, limit: Limit) -> ProbeError {
        let tried = &self.addrs[..self.attempts.len()];
        let fates: Vec<String> = tried
            .iter()
            .map(|addr| match self.failures.iter().find(|(a, _)| a == addr) {
                Some((_, e)) => format!("{addr} {}", fate(e)),
                None => format!("{addr} did not answer"),
            })
            .collect();
        let untried = self.addrs.len() - tried.len();
        let mut message = format!(
            "no connection to any of {} addresses within {limit}: {}",
            self.addrs.len(),
            fates.join(", ")
        );
        if untried > 0 {
            message.push_str(&format!(" ({untried} not tried in time)"));
        }
        let kind = match (out_of_time, self.failures.last()) {
            (false, Some((_, e))) => crate::report::error::kind_of_io(e),
            _ => ErrorKind::ConnectTimeout,
        };
        ProbeError::new(kind, message)
    }
}

/// What a failed attempt met, for a race's message: `refused the connection`.
fn fate(e: &io::Error) -> String {
    match crate::report::error::kind_of_io(e) {
        ErrorKind::Refused => "refused the connection".into(),
        ErrorKind::Unreachable => format!("is unreachable ({})", os_text(e)),
        ErrorKind::Reset => "reset the connection".into(),
        _ => format!("failed: {}", os_text(e)),
    }
}
