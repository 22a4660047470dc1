//! Connecting: from the addresses a name resolved to, one open TCP stream, within the
//! hop's connect budget.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_std::future::timeout;
use async_std::net::TcpStream;

use crate::net::hop::{Clock, Gathered, Limit};
use crate::report::error::{ErrorKind, ProbeError};

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
