//! The HTTP/2 conversation (`--http2` after ALPN chose h2, or `--http2-prior-knowledge`):
//! one write opens the connection and stream 1, then frames are read until the head of
//! stream 1 has ended (streaming each block's lines as it ends). The body is never read.
//! Framing and HPACK are `proto::http2`'s; this file owns the socket and the messages.
use crate::net::rt::timeout;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::net::hop::{stream_fresh, AddrText, Gathered, Visit};
use crate::net::http1::{talk_timeout, tls_or_io};
use crate::net::options::ProbeOptions;
use crate::proto::http::{HeadParser, Progress};
use crate::proto::http2::{self, ErrorCode, H2Error, Malformed, Reader, QUOTE_MAX};
use crate::proto::request::RequestTemplate;
use crate::proto::target::Scheme;
use crate::report::duration::human;
use crate::report::error::{ErrorKind, ProbeError};
use crate::report::sanitize::quote_peer;

/// How much is read from the stream at a time.
const READ_CHUNK: usize = 4096;

/// `talk`, within what is left of `--timeout`.
pub(crate) async fn talk_in_time<T: AsyncRead + AsyncWrite + Unpin>(
    visit: Visit<'_>,
    template: &RequestTemplate,
    stream: T,
    got: &mut Gathered,
) -> Result<(), ProbeError> {
    let (cfg, left) = (visit.cfg, visit.clock.left(visit.cfg));
    let mut reader = Reader::new(cfg.max_header_bytes);
    let fields = template.h2_fields(visit.target);
    match timeout(left, talk(visit, &fields, stream, got, &mut reader)).await {
        Ok(result) => result,
        Err(_) => Err(out_of_time(cfg, got, &reader)),
    }
}

async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
    visit: Visit<'_>,
    fields: &[(Vec<u8>, Vec<u8>)],
    mut stream: S,
    got: &mut Gathered,
    reader: &mut Reader,
) -> Result<(), ProbeError> {
    let Visit {
        cfg,
        target,
        clock,
        lines,
    } = visit;
    let start = clock.start;
    let addr = AddrText(got.addr);
    let opening = http2::request(fields, cfg.max_header_bytes);
    let sending = |e: std::io::Error| tls_or_io(&e, "sending the request to", addr);
    stream.write_all(&opening).await.map_err(sending)?;
    stream.flush().await.map_err(sending)?;

    let head = got.head.insert(HeadParser::new(cfg.max_header_bytes));
    let mut buf = [0u8; READ_CHUNK];
    loop {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| tls_or_io(&e, "reading the response from", addr))?;
        if n == 0 {
            return Err(closed(addr, reader, head));
        }
        let progress = reader.feed(&buf[..n], head);
        if got.timing.first_byte.is_none() && head.line_count() > 0 {
            got.timing.first_byte = Some(start.elapsed());
        }
        stream_fresh(head, &mut got.streamed, lines);
        match progress {
            Ok(Progress::Partial) => {
                let answers = reader.outgoing();
                if !answers.is_empty() {
                    stream.write_all(&answers).await.map_err(sending)?;
                    stream.flush().await.map_err(sending)?;
                }
            }
            Ok(Progress::Complete) => {
                got.timing.headers = Some(start.elapsed());
                // A courtesy: the server learns the client is done, and gets the
                // acknowledgements it is owed (its SETTINGS often come with the head).
                // What it costs is one small write; whether it arrives changes nothing.
                let mut bye = reader.outgoing();
                bye.extend_from_slice(&http2::goodbye());
                if stream.write_all(&bye).await.is_ok() {
                    let _ = stream.flush().await;
                }
                return Ok(());
            }
            Err(e) => return Err(explain(cfg, addr, target.scheme, e)),
        }
    }
}

/// The server closed the connection before the head ended.
fn closed(addr: AddrText, reader: &Reader, head: &HeadParser) -> ProbeError {
    if !reader.saw_settings() {
        return ProbeError::new(
            ErrorKind::Empty,
            format!("{addr} closed the connection without sending HTTP/2 SETTINGS"),
        );
    }
    let when = if head.is_empty() {
        "before answering the request"
    } else {
        "inside the response head"
    };
    let after = match reader.goaway() {
        Some(code) => format!(" after GOAWAY ({})", code.name().unwrap_or("?")),
        None => String::new(),
    };
    ProbeError::new(
        ErrorKind::Incomplete,
        format!("{addr} closed the HTTP/2 connection{after} {when}"),
    )
}

/// `--timeout` ran out: what the server had done by then.
fn out_of_time(cfg: &ProbeOptions, got: &Gathered, reader: &Reader) -> ProbeError {
    let within = format!("within {} (--timeout)", human(cfg.timeout));
    let addr = AddrText(got.addr);
    let empty = got.head.as_ref().is_none_or(HeadParser::is_empty);
    if !reader.saw_settings() {
        ProbeError::new(
            ErrorKind::Timeout,
            format!("no HTTP/2 SETTINGS from {addr} {within}"),
        )
    } else if !reader.acked() && empty {
        ProbeError::new(
            ErrorKind::Timeout,
            format!(
                "{addr} sent its SETTINGS but neither acknowledged the client's nor answered \
                 {within}"
            ),
        )
    } else {
        talk_timeout(cfg, got)
    }
}

/// An HTTP/2 failure in words.
fn explain(cfg: &ProbeOptions, addr: AddrText, scheme: Scheme, e: H2Error) -> ProbeError {
    let protocol = |message: String| ProbeError::new(ErrorKind::Protocol, message);
    match e {
        H2Error::Frame(what) => protocol(format!("{addr} broke HTTP/2's framing rules: {what}")),
        H2Error::Hpack(why) => protocol(format!(
            "{addr} sent a response header block that HPACK cannot decode: {why} \
             (COMPRESSION_ERROR)"
        )),
        H2Error::Malformed(why) => protocol(format!(
            "{addr} sent a malformed HTTP/2 response head: {}",
            malformed(&why, "HTTP/2", "body data")
        )),
        H2Error::Reset(code) => protocol(format!(
            "{addr} reset the stream (RST_STREAM): the server {code}"
        )),
        H2Error::GoAway {
            code,
            last_stream,
            debug,
        } => {
            let when = if last_stream == 0 {
                " before processing the request"
            } else {
                ""
            };
            let what = if code == ErrorCode::NO_ERROR {
                "it is shutting down (NO_ERROR)".to_string()
            } else {
                format!("the server {code}")
            };
            let said = if debug.is_empty() {
                String::new()
            } else {
                format!("; it said {}", quote_peer(&debug, 120))
            };
            protocol(format!(
                "{addr} closed the connection (GOAWAY){when}: {what}{said}"
            ))
        }
        H2Error::Http1(line) => protocol(match scheme {
            Scheme::Https => format!(
                "{addr} chose h2 in ALPN, then answered in HTTP/1: it sent {}",
                quote_peer(&line, 80)
            ),
            Scheme::Http => format!(
                "{addr} answered the HTTP/2 preface in HTTP/1 (--http2-prior-knowledge: it \
                 does not speak HTTP/2 in clear text): it sent {}",
                quote_peer(&line, 80)
            ),
        }),
        H2Error::TooLarge => ProbeError::new(
            ErrorKind::HeadersTooLarge,
            format!(
                "the HTTP/2 header list is larger than {} bytes (--max-header-bytes, counted \
                 as HTTP/2 does: name + value + 32 per field)",
                cfg.max_header_bytes
            ),
        ),
    }
}

/// What is wrong with a head, quoting the peer's bytes as the output escapes them. The
/// rules are HTTP/2's, which HTTP/3 shares (RFC 9114 section 4.3): `version` names the
/// protocol (`HTTP/2`) and `body` what it calls the body's frames (`body data`, `DATA`).
pub(crate) fn malformed(m: &Malformed, version: &str, body: &str) -> String {
    let quote = |bytes: &[u8]| quote_peer(bytes, QUOTE_MAX);
    match m {
        Malformed::BodyFirst => format!("the server sent {body} before the response head"),
        Malformed::NoStatus => "the response head has no :status".into(),
        Malformed::SwitchingProtocols => {
            format!("status 101 (Switching Protocols), which {version} forbids")
        }
        Malformed::EndedInterim(status) => {
            format!("the stream ended with the interim status {status}")
        }
        Malformed::Pseudo(name) => format!("the pseudo-header {} in a response", quote(name)),
        Malformed::StatusAfterField => ":status after a regular field".into(),
        Malformed::StatusTwice => ":status twice".into(),
        Malformed::BadStatus(value) => format!(
            ":status {}, which is no HTTP status (three digits, 100 to 599)",
            quote(value)
        ),
        Malformed::BadName(name) => format!(
            "the field name {} ({version} names are lower-case tokens)",
            quote(name)
        ),
        Malformed::BadValue(name) => format!("the value of {} holds NUL, CR or LF", quote(name)),
    }
}
