//! A conversation over an open connection: the TLS handshake for https, then the
//! protocol's exchange (HTTP/1.x today, in `http1`). Probes and proxy tunnels both
//! start here once they hold a stream to the origin.

use std::time::Instant;

use async_std::future::timeout;
use async_std::net::TcpStream;

use crate::net::hop::{AddrText, Gathered, Visit};
use crate::net::http1::talk_in_time;
use crate::proto::target::Scheme;
use crate::report::error::{ErrorKind, ProbeError};
use crate::report::record::Streamed;

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
