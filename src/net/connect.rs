//! Connecting: from a host to the addresses to try (a literal, `--resolve` pins, then
//! the resolver), and from those to one open TCP stream, within the hop's connect
//! budget.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use async_std::future::timeout;
use async_std::net::TcpStream;

use crate::net::hop::{Clock, Gathered, Limit};
use crate::net::options::ProbeOptions;
use crate::net::resolve;
use crate::proto::target::Host;
use crate::report::error::{ErrorKind, ProbeError};

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
