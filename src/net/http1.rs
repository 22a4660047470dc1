//! The HTTP/1.x conversation: write the request, read the head line by line (streaming
//! each line as it is read), stop at the blank line. The body is never read.

use std::time::Instant;

use crate::net::rt::timeout;
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::net::hop::{stream_fresh, AddrText, Gathered, LineSink, Visit};
use crate::net::options::ProbeOptions;
use crate::net::wire::{read_head, HeadEnd};
use crate::proto::http::{HeadError, HeadParser};
use crate::report::duration::human;
use crate::report::error::{ErrorKind, ProbeError};

/// `talk`, within what is left of `--timeout`.
pub(crate) async fn talk_in_time<S: AsyncRead + AsyncWrite + Unpin>(
    visit: Visit<'_>,
    request: &[u8],
    stream: S,
    got: &mut Gathered,
) -> Result<(), ProbeError> {
    let Visit {
        cfg, clock, lines, ..
    } = visit;
    match timeout(
        clock.left(cfg),
        talk(cfg, request, stream, clock.start, got, lines),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(talk_timeout(cfg, got)),
    }
}

/// `--timeout` ran out after connecting.
pub(crate) fn talk_timeout(cfg: &ProbeOptions, got: &Gathered) -> ProbeError {
    let what = match &got.head {
        Some(head) if !head.is_empty() => "the header block did not end",
        _ => "no response",
    };
    ProbeError::new(
        ErrorKind::Timeout,
        format!("{what} within {} (--timeout)", human(cfg.timeout)),
    )
}

/// Sends the request and reads the head. The body is never read.
async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
    cfg: &ProbeOptions,
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
        stream_fresh(head, streamed, lines);
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
            match crate::proto::http::out_of_range_code(head.banner()) {
                Some(code) => format!(
                    "{addr} answered with status {code:03}, which is no HTTP status (RFC 9110: \
                     100 to 599); it sent {}",
                    crate::report::sanitize::quote_peer(head.banner(), 80)
                ),
                None => format!(
                    "{addr} did not answer with an HTTP status line; it sent {}{}",
                    crate::report::sanitize::quote_peer(head.banner(), 80),
                    if crate::net::tls::looks_like_tls(head.banner()) {
                        " (a TLS record: is it an https:// port?)"
                    } else {
                        ""
                    }
                ),
            },
        )),
    }
}

/// An error from the stream: a TLS alert (a TLS 1.3 server refuses a client only after
/// the handshake) is `tls`, anything else is classified as I/O.
pub(crate) fn tls_or_io(e: &std::io::Error, what: &str, addr: AddrText) -> ProbeError {
    crate::net::tls::after_handshake(e).unwrap_or_else(|| ProbeError::from_io(e, what, addr))
}

pub(crate) fn too_large(cfg: &ProbeOptions) -> ProbeError {
    ProbeError::new(
        ErrorKind::HeadersTooLarge,
        format!(
            "the header block is larger than {} bytes (--max-header-bytes)",
            cfg.max_header_bytes
        ),
    )
}
