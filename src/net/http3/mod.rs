//! The HTTP/3 conversation (`--http3-only`, and QUIC's side of `--http3`): a QUIC
//! connection of the probe's own (its own UDP socket, connected to the server), the
//! control stream's SETTINGS, one request stream, its frames read until the final head;
//! then the connection is closed with H3_NO_ERROR. The body is never read.
//!
//! QUIC is quinn's (on `runtime`'s async-std runtime); framing and QPACK are
//! `proto::http3`'s and `proto::qpack`'s; this file owns the streams and the messages.
//! `race` is `--http3`: QUIC against TCP, using `exchange`.

pub(crate) mod race;
mod runtime;
mod session;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use quinn::crypto::rustls::{HandshakeData, QuicClientConfig};
use quinn::{ConnectionError, Endpoint, EndpointConfig, ReadError, TransportConfig, VarInt};

use crate::net::hop::{stream_fresh, AddrText, Gathered, Visit};
use crate::net::http1::talk_timeout;
use crate::net::rt::timeout;
use crate::net::tls::{Peer, QuicTls};
use crate::proto::http::{HeadParser, Progress};
use crate::proto::http2::Malformed;
use crate::proto::http3::{self, ErrorCode, H3Error, Reader};
use crate::proto::request::RequestTemplate;
use crate::proto::target::Host;
use crate::report::error::{ErrorKind, ProbeError};
use crate::report::record::Streamed;
use crate::report::sanitize::quote_peer;

/// How much is read from the request stream at a time.
const READ_CHUNK: usize = 4096;

/// Resolved addresses in hand: connects over QUIC to the first that answers (in order,
/// each on what is left of the connect budget), sets `answered` once the handshake is
/// done, then asks for the head.
pub(crate) async fn exchange(
    visit: Visit<'_>,
    template: &RequestTemplate,
    addrs: &[SocketAddr],
    got: &mut Gathered,
    answered: Option<&AtomicBool>,
) -> Result<(), ProbeError> {
    // `--interface ADDR`: only addresses of its family can be reached from it.
    let addrs = crate::net::connect::of_source_family(addrs, visit.cfg.source.as_ref())?;
    let mut last = None;
    for &addr in addrs.iter() {
        got.addr = Some(addr);
        match connect(visit, addr, got).await {
            Ok((socket, endpoint, conn)) => {
                if let Some(answered) = answered {
                    answered.store(true, Ordering::Relaxed);
                }
                // The control stream lives as long as the connection: a control stream
                // closed first is H3_CLOSED_CRITICAL_STREAM to the server.
                let mut control = None;
                let done = talk_in_time(visit, template, &conn, &mut control, got).await;
                // H3_NO_ERROR: the probe has what it came for (or gives up); the
                // endpoint ends once quinn's driver has sent the CONNECTION_CLOSE.
                conn.close(VarInt::from_u32(http3::NO_ERROR as u32), b"");
                sent_close(&conn, &socket.0).await;
                drop((control, endpoint, socket));
                return done;
            }
            // Only a refusal moves on to the next address; anything else used the budget
            // or is the server's answer.
            Err(e) if e.kind == ErrorKind::Refused => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| ProbeError::new(ErrorKind::Dns, "no address to connect to")))
}

/// The transport settings of every probe's connection.
fn transport() -> Arc<TransportConfig> {
    static TRANSPORT: OnceLock<Arc<TransportConfig>> = OnceLock::new();
    Arc::clone(TRANSPORT.get_or_init(|| {
        let mut t = TransportConfig::default();
        // The server opens its control and QPACK streams; a probe opens one request
        // stream and its control stream and needs no more.
        t.max_concurrent_bidi_streams(VarInt::from_u32(0));
        t.max_concurrent_uni_streams(VarInt::from_u32(8));
        // Only the head is read: a small window keeps a server from sending much body.
        t.stream_receive_window(VarInt::from_u32(64 * 1024));
        t.receive_window(VarInt::from_u32(256 * 1024));
        t.send_window(64 * 1024);
        // The probe's own deadlines bound everything; this only keeps a connection the
        // probe has let go of from lingering.
        t.max_idle_timeout(Some(Duration::from_secs(30).try_into().expect("30s fits")));
        Arc::new(t)
    }))
}

fn endpoint_config() -> EndpointConfig {
    static CONFIG: OnceLock<EndpointConfig> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            runtime::map_large_buffers();
            let mut config = EndpointConfig::default();
            config
                .max_udp_payload_size(runtime::MAX_DATAGRAM)
                .expect("1472 is a valid UDP payload size");
            config
        })
        .clone()
}

/// A UDP socket for a connection to `addr`: from `--interface`'s address or device when
/// given, else from any local address of `addr`'s family.
fn udp_socket(
    source: Option<&crate::net::options::Source>,
    addr: SocketAddr,
) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    match source {
        Some(source) => crate::net::connect::bind_source(&socket, source)?,
        None => {
            let any: SocketAddr = match addr {
                SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
                SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
            };
            socket.bind(&any.into())?;
        }
    }
    Ok(socket.into())
}

/// The QUIC handshake with `addr`, within the hop's connect budget; an ICMP port
/// unreachable ends it as `refused`.
async fn connect(
    visit: Visit<'_>,
    addr: SocketAddr,
    got: &mut Gathered,
) -> Result<(Ending, Endpoint, quinn::Connection), ProbeError> {
    let Visit {
        cfg,
        target,
        clock,
        lines,
    } = visit;
    let io = |e: std::io::Error| ProbeError::from_io(&e, "opening a UDP socket for", addr);
    let socket = udp_socket(cfg.source.as_ref(), addr).map_err(io)?;
    // Connected, so the kernel reports ICMP errors from the server's host on it.
    socket
        .connect(addr)
        .map_err(|e| ProbeError::from_io(&e, "connecting to", addr))?;
    let (refusals, refused) = async_channel::bounded(1);
    let socket = Ending(Arc::new(
        runtime::Socket::new(socket, refusals).map_err(io)?,
    ));
    let endpoint = Endpoint::new_with_abstract_socket(
        endpoint_config(),
        None,
        Arc::clone(&socket.0) as Arc<dyn quinn::AsyncUdpSocket>,
        Arc::new(runtime::AsyncStd),
    )
    .map_err(io)?;
    let tls = cfg.tls.for_quic();
    let crypto = QuicClientConfig::try_from(Arc::clone(&tls.config)).map_err(|_| {
        ProbeError::new(
            ErrorKind::Tls,
            "the TLS provider offers no cipher suite QUIC can start with",
        )
    })?;
    let (crypto, chosen) = session::Noting::new(crypto);
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(transport());
    let name = match &target.host {
        Host::Ip(ip) => ip.to_string(),
        Host::Name(name) => name.strip_suffix('.').unwrap_or(name).to_string(),
    };
    let connecting = endpoint.connect_with(client, addr, &name).map_err(|e| {
        ProbeError::new(
            ErrorKind::Tls,
            format!("cannot start a QUIC connection to {addr} for '{name}': {e}"),
        )
    })?;
    let left = clock
        .connect_deadline
        .saturating_duration_since(Instant::now());
    let handshake = async { Ok(connecting.await) };
    let refusal = async {
        match refused.recv().await {
            Ok(e) => Err(e),
            // The socket is gone: only the handshake can end this now.
            Err(_) => std::future::pending().await,
        }
    };
    let peer = Peer {
        host: &target.host,
        addr: &AddrText(Some(addr)),
    };
    let conn = match timeout(left, futures_lite::future::or(handshake, refusal)).await {
        Ok(Ok(Ok(conn))) => conn,
        Ok(Ok(Err(e))) => {
            let (error, mut info) = handshake_failed(&e, &tls, &peer, addr);
            if let (Some(info), Some(cipher)) = (&mut info, take(&chosen)) {
                info.cipher = Some(cipher);
            }
            got.tls = info.map(Box::new);
            return Err(error);
        }
        Ok(Err(refused)) => {
            return Err(ProbeError::new(
                ErrorKind::Refused,
                format!(
                    "{addr} refused QUIC: its host answered with port unreachable (no UDP \
                     listener there; {})",
                    crate::report::error::os_text(&refused)
                ),
            ))
        }
        Err(_) => {
            return Err(ProbeError::new(
                ErrorKind::ConnectTimeout,
                format!(
                    "no QUIC handshake with {addr} within {}",
                    clock.connect_limit
                ),
            ))
        }
    };
    let done = clock.start.elapsed();
    got.timing.connect = Some(done);
    got.timing.tls = Some(done);
    let alpn = conn
        .handshake_data()
        .and_then(|d| d.downcast::<HandshakeData>().ok())
        .and_then(|d| d.protocol);
    let info = tls.info(alpn, take(&chosen));
    if let Some(sink) = lines {
        sink(Streamed::Tls(info.summary()));
    }
    got.tls = Some(Box::new(info));
    Ok((socket, endpoint, conn))
}

/// How long the endpoint waits for its CONNECTION_CLOSE to go out (quinn's driver sends
/// it as soon as it runs; this bounds a driver starved of CPU).
const CLOSE_GRACE: Duration = Duration::from_millis(50);

/// Waits until the connection's CONNECTION_CLOSE has gone out, at most `CLOSE_GRACE`:
/// quinn sends it from the connection's driver, which stops once the endpoint ends (and
/// the run may end with the probe, taking the drivers along). Called after `close`:
/// every datagram the driver sends from then on carries the CONNECTION_CLOSE, so the
/// next send (or one already counted) is it.
async fn sent_close(conn: &quinn::Connection, socket: &runtime::Socket) {
    let sent = socket.watch_sends();
    if conn.stats().frame_tx.connection_close == 0 {
        let _ = timeout(CLOSE_GRACE, sent.recv()).await;
    }
}

/// Ends the probe's endpoint when the probe lets go of it, however it does (done,
/// failed, timed out, cancelled, or the race lost): see `runtime::Socket`.
struct Ending(Arc<runtime::Socket>);

impl Drop for Ending {
    fn drop(&mut self) {
        self.0.done();
    }
}

fn take(chosen: &session::Chosen) -> Option<String> {
    chosen.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// `talk`, within what is left of `--timeout`.
async fn talk_in_time(
    visit: Visit<'_>,
    template: &RequestTemplate,
    conn: &quinn::Connection,
    control: &mut Option<quinn::SendStream>,
    got: &mut Gathered,
) -> Result<(), ProbeError> {
    let cfg = visit.cfg;
    let left = visit.clock.left(cfg);
    let mut reader = Reader::new(cfg.max_header_bytes);
    match timeout(left, talk(visit, template, conn, control, got, &mut reader)).await {
        Ok(result) => result,
        Err(_) => Err(talk_timeout(cfg, got)),
    }
}

async fn talk(
    visit: Visit<'_>,
    template: &RequestTemplate,
    conn: &quinn::Connection,
    control: &mut Option<quinn::SendStream>,
    got: &mut Gathered,
    reader: &mut Reader,
) -> Result<(), ProbeError> {
    let Visit {
        cfg,
        target,
        clock,
        lines,
    } = visit;
    let addr = got.addr;
    let lost = |e: ConnectionError| connection_lost(&e, addr);
    // The control stream stays open for the connection's life, as RFC 9114 requires.
    let control = control.insert(conn.open_uni().await.map_err(lost)?);
    let sent = |e: quinn::WriteError| write_failed(e, addr);
    control
        .write_all(&http3::control_stream(cfg.max_header_bytes))
        .await
        .map_err(sent)?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(lost)?;
    let fields = template.h2_fields(target);
    send.write_all(&http3::request(&fields))
        .await
        .map_err(sent)?;
    let _ = send.finish();

    let head = got.head.insert(HeadParser::new(cfg.max_header_bytes));
    loop {
        // quinn's own buffer, without a copy: no read buffer in every probe's future.
        let chunk = match recv.read_chunk(READ_CHUNK, true).await {
            Ok(Some(chunk)) => chunk.bytes,
            Ok(None) => return Err(ended(addr, reader, head)),
            Err(e) => return Err(read_failed(e, addr)),
        };
        let progress = reader.feed(&chunk, head);
        if got.timing.first_byte.is_none() && reader.got_any() {
            got.timing.first_byte = Some(clock.start.elapsed());
        }
        stream_fresh(head, &mut got.streamed, lines);
        match progress {
            Ok(Progress::Partial) => {}
            Ok(Progress::Complete) => {
                got.timing.headers = Some(clock.start.elapsed());
                // The rest of the response is not wanted.
                let _ = recv.stop(VarInt::from_u32(ErrorCode(0x10c).0 as u32));
                return Ok(());
            }
            Err(e) => return Err(explain(cfg.max_header_bytes, AddrText(addr), e)),
        }
    }
}

/// The server ended the request stream before the head did.
fn ended(addr: Option<SocketAddr>, reader: &Reader, head: &HeadParser) -> ProbeError {
    let addr = AddrText(addr);
    if !reader.got_any() {
        return ProbeError::new(
            ErrorKind::Empty,
            format!("{addr} ended the HTTP/3 request stream without answering"),
        );
    }
    match head.blocks().last() {
        Some(b) if head.final_block().is_none() => ProbeError::new(
            ErrorKind::Protocol,
            format!(
                "{addr} sent a malformed HTTP/3 response head: {}",
                crate::net::http2::malformed(
                    &Malformed::EndedInterim(b.status.code),
                    "HTTP/3",
                    "DATA"
                )
            ),
        ),
        _ => ProbeError::new(
            ErrorKind::Incomplete,
            format!("{addr} ended the HTTP/3 request stream inside the response head"),
        ),
    }
}

fn read_failed(e: ReadError, addr: Option<SocketAddr>) -> ProbeError {
    let at = AddrText(addr);
    match e {
        ReadError::Reset(code) => ProbeError::new(
            ErrorKind::Protocol,
            format!(
                "{at} reset the request stream (RESET_STREAM): the server {}",
                ErrorCode(code.into_inner())
            ),
        ),
        ReadError::ConnectionLost(e) => connection_lost(&e, addr),
        other => ProbeError::new(
            ErrorKind::Io,
            format!("reading the response from {at} failed: {other}"),
        ),
    }
}

fn write_failed(e: quinn::WriteError, addr: Option<SocketAddr>) -> ProbeError {
    let at = AddrText(addr);
    match e {
        quinn::WriteError::Stopped(code) => ProbeError::new(
            ErrorKind::Protocol,
            format!(
                "{at} refused the request stream (STOP_SENDING): the server {}",
                ErrorCode(code.into_inner())
            ),
        ),
        quinn::WriteError::ConnectionLost(e) => connection_lost(&e, addr),
        other => ProbeError::new(
            ErrorKind::Io,
            format!("sending the request to {at} failed: {other}"),
        ),
    }
}

/// A handshake that did not finish: the certificate (`tls`, with what it was), an alert
/// the server sent (`tls`), or the transport's failure.
fn handshake_failed(
    e: &ConnectionError,
    tls: &QuicTls,
    peer: &Peer<'_>,
    addr: SocketAddr,
) -> (ProbeError, Option<crate::net::tls::TlsInfo>) {
    if let Some((error, info)) = tls.rejected(peer) {
        return (error, Some(info));
    }
    let crypto = |code: u64| {
        (0x100..0x200)
            .contains(&code)
            .then_some((code & 0xff) as u8)
    };
    match e {
        ConnectionError::ConnectionClosed(close) => {
            if let Some(alert) = crypto(u64::from(close.error_code)) {
                return (tls.alert(alert, peer), None);
            }
        }
        ConnectionError::TransportError(t) if crypto(u64::from(t.code)).is_some() => {
            let message = format!("handshake failure with {addr}: {}", t.reason);
            return (ProbeError::new(ErrorKind::Tls, message), None);
        }
        _ => {}
    }
    (connection_lost(e, Some(addr)), None)
}

/// The connection ended before the head: each way in words.
fn connection_lost(e: &ConnectionError, addr: Option<SocketAddr>) -> ProbeError {
    let at = AddrText(addr);
    let protocol = |m: String| ProbeError::new(ErrorKind::Protocol, m);
    let said = |reason: &[u8]| {
        if reason.is_empty() {
            String::new()
        } else {
            format!("; it said {}", quote_peer(reason, 120))
        }
    };
    match e {
        ConnectionError::ApplicationClosed(close) => {
            let code = ErrorCode(close.error_code.into_inner());
            protocol(format!(
                "{at} closed the connection (CONNECTION_CLOSE): the server {code}{}",
                said(&close.reason)
            ))
        }
        ConnectionError::ConnectionClosed(close) => {
            let code = u64::from(close.error_code);
            protocol(format!(
                "{at} closed the connection (CONNECTION_CLOSE) with the QUIC transport error \
                 {}{}",
                transport_code(code),
                said(&close.reason)
            ))
        }
        ConnectionError::TransportError(t) => protocol(format!(
            "{at} broke QUIC's rules: {} ({})",
            t.reason,
            transport_code(u64::from(t.code))
        )),
        ConnectionError::VersionMismatch => protocol(format!(
            "{at} does not speak QUIC version 1 (it offered only other versions)"
        )),
        ConnectionError::Reset => protocol(format!(
            "{at} reset the QUIC connection (stateless reset: it has no state for it)"
        )),
        ConnectionError::TimedOut => ProbeError::new(
            ErrorKind::Timeout,
            format!("{at} stopped answering on the QUIC connection (idle timeout)"),
        ),
        ConnectionError::LocallyClosed | ConnectionError::CidsExhausted => ProbeError::new(
            ErrorKind::Io,
            format!("the QUIC connection to {at} failed: {e}"),
        ),
    }
}

/// A QUIC transport error code by its RFC 9000 name (section 20.1).
fn transport_code(code: u64) -> String {
    let name = match code {
        0x0 => "NO_ERROR",
        0x1 => "INTERNAL_ERROR",
        0x2 => "CONNECTION_REFUSED",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "STREAM_LIMIT_ERROR",
        0x5 => "STREAM_STATE_ERROR",
        0x6 => "FINAL_SIZE_ERROR",
        0x7 => "FRAME_ENCODING_ERROR",
        0x8 => "TRANSPORT_PARAMETER_ERROR",
        0x9 => "CONNECTION_ID_LIMIT_ERROR",
        0xa => "PROTOCOL_VIOLATION",
        0xb => "INVALID_TOKEN",
        0xc => "APPLICATION_ERROR",
        0xd => "CRYPTO_BUFFER_EXCEEDED",
        0xe => "KEY_UPDATE_ERROR",
        0xf => "AEAD_LIMIT_REACHED",
        0x10 => "NO_VIABLE_PATH",
        0x100..=0x1ff => return format!("CRYPTO_ERROR (TLS alert {})", code & 0xff),
        _ => return format!("0x{code:x}"),
    };
    name.to_string()
}

/// An HTTP/3 failure of the request stream in words.
fn explain(max: usize, addr: AddrText, e: H3Error) -> ProbeError {
    let protocol = |message: String| ProbeError::new(ErrorKind::Protocol, message);
    match e {
        H3Error::Frame(what) => protocol(format!("{addr} broke HTTP/3's framing rules: {what}")),
        H3Error::Qpack(why) => protocol(format!(
            "{addr} sent a response field section that QPACK cannot decode: {why} \
             (QPACK_DECOMPRESSION_FAILED)"
        )),
        H3Error::Malformed(why) => protocol(format!(
            "{addr} sent a malformed HTTP/3 response head: {}",
            crate::net::http2::malformed(&why, "HTTP/3", "DATA")
        )),
        H3Error::TooLarge => ProbeError::new(
            ErrorKind::HeadersTooLarge,
            format!(
                "the HTTP/3 field section is larger than {max} bytes (--max-header-bytes, \
                 counted as HTTP/3 does: name + value + 32 per field)"
            ),
        ),
    }
}
