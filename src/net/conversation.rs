//! A conversation over an open connection: the TLS handshake for https, then the
//! protocol's exchange: HTTP/1.x (`http1`), or HTTP/2 (`http2`) when ALPN chose h2 or
//! `--http2-prior-knowledge` says so. Probes and proxy tunnels both start here once
//! they hold a stream to the origin.

use std::time::Instant;

use crate::net::rt::timeout;
use crate::net::rt::TcpStream;

use crate::net::hop::{AddrText, Gathered, Visit};
use crate::net::http1::talk_in_time;
use crate::net::options::Http2;
use crate::net::tls::ALPN_H2;
use crate::proto::request::RequestTemplate;
use crate::proto::target::Scheme;
use crate::report::error::{ErrorKind, ProbeError};
use crate::report::record::Streamed;

/// Sends the request over `stream` (after a TLS handshake for https) and reads the
/// head. `request` is the HTTP/1 rendering of `template`; an HTTP/2 conversation
/// renders its own fields from `template`.
pub(crate) async fn converse(
    visit: Visit<'_>,
    template: &RequestTemplate,
    request: &[u8],
    stream: TcpStream,
    got: &mut Gathered,
) -> Result<(), ProbeError> {
    // The absolute form through an HTTP proxy is the proxy's HTTP/1 request.
    let prior_knowledge = visit.cfg.http2 == Http2::PriorKnowledge && got.request_target.is_none();
    match visit.target.scheme {
        // Boxed, as TLS below: plain HTTP/1 probes stay small.
        Scheme::Http if prior_knowledge => {
            let _ = stream.set_nodelay(true);
            Box::pin(crate::net::http2::talk_in_time(
                visit, template, stream, got,
            ))
            .await
        }
        Scheme::Http => talk_in_time(visit, request, stream, got).await,
        // Boxed: only https probes carry the TLS state, so plain ones stay small.
        Scheme::Https => Box::pin(over_tls(visit, template, request, stream, got)).await,
    }
}

/// The TLS handshake (on the connect budget), then the request and the head.
async fn over_tls(
    visit: Visit<'_>,
    template: &RequestTemplate,
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
    // The request rides with the client's Finished (see TlsSettings::handshake), unless
    // ALPN is to choose between HTTP/2 and HTTP/1 first.
    let queued =
        visit.cfg.http2 == Http2::Off && request.len() <= crate::net::tls::EARLY_REQUEST_MAX;
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
    let h2 = info.alpn.as_deref().map(str::as_bytes) == Some(ALPN_H2);
    got.tls = Some(Box::new(info));
    if h2 {
        return crate::net::http2::talk_in_time(visit, template, stream, got).await;
    }
    let request = if queued { &[][..] } else { request };
    talk_in_time(visit, request, stream, got).await
}
