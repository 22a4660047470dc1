//! `H2Peer`: an HTTP/2 server written for the tests, on TLS with ALPN (rustls) or in
//! clear text (for `--http2-prior-knowledge`). It reads the client's preface and stream
//! 1's request, then plays a script of frames the test builds, good or hostile, and
//! records what the client sent: the offered ALPN, its SETTINGS, the request fields, and
//! every frame after the request until the client closes.
//!
//! Frames and HPACK blocks are built here, independently of headprobe's own encoder:
//! literal fields without indexing (RFC 7541, section 6.2.2), no Huffman coding.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use futures_rustls::rustls::server::Acceptor;
use futures_rustls::rustls::{self, ServerConfig, StreamOwned};

use super::peer::{Peer, Seen};
use super::pki::{pki, server_config};
use super::{close_and_drain, read_head, WAIT};

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

pub const PROTOCOL_ERROR: u32 = 0x1;
pub const REFUSED_STREAM: u32 = 0x7;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The answer of a peer whose ALPN did not pick h2.
pub const H1_ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nServer: h1-peer\r\nContent-Length: 0\r\n\r\n";

// ---------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------

/// One frame: the nine-byte header and the payload.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The server's preface: an empty SETTINGS frame.
pub fn settings() -> Vec<u8> {
    frame(SETTINGS, 0, 0, &[])
}

pub fn settings_ack() -> Vec<u8> {
    frame(SETTINGS, ACK, 0, &[])
}

/// SETTINGS, then the acknowledgement of the client's: what a server sends first.
pub fn hello() -> Vec<u8> {
    [settings(), settings_ack()].concat()
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541, section 5.1).
fn int(out: &mut Vec<u8>, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A header block of literal fields with new names, never indexed.
pub fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        for s in [name, value] {
            int(&mut out, 0x00, 7, s.len());
            out.extend_from_slice(s.as_bytes());
        }
    }
    out
}

/// HEADERS with END_HEADERS carrying these fields.
pub fn headers(stream: u32, end_stream: bool, fields: &[(&str, &str)]) -> Vec<u8> {
    let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
    frame(HEADERS, flags, stream, &block(fields))
}

/// `:status` and then the fields, on stream 1, ending the stream.
pub fn head(status: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut all = vec![(":status", status)];
    all.extend_from_slice(fields);
    headers(1, true, &all)
}

pub fn goaway(last_stream: u32, code: u32, debug: &[u8]) -> Vec<u8> {
    let mut payload = last_stream.to_be_bytes().to_vec();
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(debug);
    frame(GOAWAY, 0, 0, &payload)
}

pub fn rst_stream(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

// ---------------------------------------------------------------------------------------
// The peer
// ---------------------------------------------------------------------------------------

/// A frame the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// The request as the peer read it.
#[derive(Debug, Default, Clone)]
pub struct H2Request {
    /// The decoded fields of stream 1's HEADERS, pseudo-headers included, in order.
    pub fields: Vec<(String, String)>,
}

impl H2Request {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the peer saw on one connection.
#[derive(Debug, Default, Clone)]
pub struct H2Seen {
    /// The ALPN protocols the ClientHello offered (TLS peers only).
    pub offered: Vec<String>,
    /// The protocol ALPN chose, if any.
    pub chosen: Option<String>,
    /// The client's SETTINGS parameters.
    pub settings: Vec<(u16, u32)>,
    pub request: H2Request,
    /// Every frame after the request's HEADERS, until the client closed.
    pub after: Vec<Frame>,
    /// Bytes the client sent when it was not speaking HTTP/2 (an HTTP/1 request head).
    pub http1: Vec<u8>,
    /// What went wrong on the peer's side, if anything.
    pub error: Option<String>,
}

impl H2Seen {
    /// Whether the client sent a frame of this kind with these flags after the request.
    pub fn sent(&self, kind: u8, flags: u8) -> bool {
        self.after
            .iter()
            .any(|f| f.kind == kind && f.flags & flags == flags)
    }
}

/// What the peer does after reading the request.
#[derive(Debug, Clone)]
pub enum Play {
    /// Write these bytes.
    Write(Vec<u8>),
    /// Read frames until one of this kind with these flags arrives (recording them).
    Await(u8, u8),
    /// Close the connection now (after a TLS close_notify), whatever the client sends.
    Close,
}

/// The script for a request.
pub type Script = Arc<dyn Fn(&H2Request) -> Vec<Play> + Send + Sync>;

/// A script that writes these bytes whatever the request.
pub fn writes(bytes: Vec<u8>) -> Script {
    Arc::new(move |_| vec![Play::Write(bytes.clone())])
}

pub struct H2Peer {
    pub peer: Peer,
    seen: Receiver<H2Seen>,
}

impl H2Peer {
    /// A TLS peer serving `pki().good` (names localhost, probe.test, 127.0.0.1) that
    /// offers these ALPN protocols; it speaks h2 when ALPN picks it, else HTTP/1.1
    /// answering `H1_ANSWER`.
    pub fn tls(alpn: &[&str], script: Script) -> H2Peer {
        let mut config = (*server_config(&pki().good, rustls::ALL_VERSIONS)).clone();
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let config = Arc::new(config);
        H2Peer::start(move |tcp, tx| serve_tls(tcp, &config, &script, tx))
    }

    /// A clear-text peer that expects the HTTP/2 preface at once (prior knowledge).
    pub fn clear(script: Script) -> H2Peer {
        H2Peer::start(move |mut tcp, tx| {
            let _ = tcp.set_nodelay(true);
            let seen = serve_h2(&mut tcp, &script, H2Seen::default());
            let _ = tx.send(seen);
            close_and_drain(&mut tcp);
        })
    }

    fn start(serve: impl Fn(TcpStream, &Sender<H2Seen>) + Send + Sync + 'static) -> H2Peer {
        let (tx, seen) = mpsc::channel();
        let peer = Peer::start(Arc::new(move |tcp, _: &Sender<Seen>| serve(tcp, &tx)));
        H2Peer { peer, seen }
    }

    /// What the next connection saw; panics if none is reported within `WAIT`.
    #[track_caller]
    pub fn seen(&self) -> H2Seen {
        self.seen
            .recv_timeout(WAIT)
            .expect("the h2 peer reported no connection in time")
    }

    /// `https://probe.test:PORT{path}` with its `--resolve`.
    pub fn named(&self, path: &str) -> Vec<String> {
        let mut args = self.peer.resolve("probe.test").to_vec();
        args.push(format!("https://probe.test:{}{path}", self.peer.port()));
        args
    }
}

fn serve_tls(mut tcp: TcpStream, config: &Arc<ServerConfig>, script: &Script, tx: &Sender<H2Seen>) {
    // The head must not wait for the ACK of the session tickets (Nagle).
    let _ = tcp.set_nodelay(true);
    let mut seen = H2Seen::default();
    let mut acceptor = Acceptor::default();
    let accepted = loop {
        match acceptor.read_tls(&mut tcp) {
            Ok(0) | Err(_) => {
                seen.error = Some("the client closed before its ClientHello".into());
                let _ = tx.send(seen);
                return;
            }
            Ok(_) => {}
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => break accepted,
            Ok(None) => {}
            Err((e, _)) => {
                seen.error = Some(e.to_string());
                let _ = tx.send(seen);
                return;
            }
        }
    };
    if let Some(offered) = accepted.client_hello().alpn() {
        seen.offered = offered
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
    }
    let mut conn = match accepted.into_connection(Arc::clone(config)) {
        Ok(conn) => conn,
        Err((e, _)) => {
            seen.error = Some(e.to_string());
            let _ = tx.send(seen);
            return;
        }
    };
    while conn.is_handshaking() {
        match conn.complete_io(&mut tcp) {
            Ok((0, 0)) | Err(_) => {
                seen.error = Some("the handshake did not complete".into());
                let _ = tx.send(seen);
                return;
            }
            Ok(_) => {}
        }
    }
    seen.chosen = conn
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let mut tls = StreamOwned::new(conn, tcp);
    let seen = if seen.chosen.as_deref() == Some("h2") {
        serve_h2(&mut tls, script, seen)
    } else {
        seen.http1 = read_head(&mut tls);
        let _ = tls.write_all(H1_ANSWER);
        seen
    };
    tls.conn.send_close_notify();
    let _ = tls.flush();
    let _ = tx.send(seen);
    close_and_drain(&mut tls.sock);
}

/// Reads one frame; None at the end of the stream or on a read error.
fn read_frame(s: &mut impl Read) -> Option<Frame> {
    let mut header = [0u8; 9];
    read_exact(s, &mut header)?;
    let len = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    let mut payload = vec![0u8; len];
    read_exact(s, &mut payload)?;
    Some(Frame {
        kind: header[3],
        flags: header[4],
        stream: u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff,
        payload,
    })
}

fn read_exact(s: &mut impl Read, buf: &mut [u8]) -> Option<()> {
    let mut at = 0;
    while at < buf.len() {
        match s.read(&mut buf[at..]) {
            Ok(0) => return None,
            Ok(n) => at += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(())
}

/// The HTTP/2 side: preface, request, script, then frames until the client closes.
fn serve_h2(s: &mut (impl Read + Write), script: &Script, mut seen: H2Seen) -> H2Seen {
    let mut preface = [0u8; 24];
    if read_exact(s, &mut preface).is_none() || preface != PREFACE {
        seen.error = Some(format!(
            "no HTTP/2 preface: {:?}",
            String::from_utf8_lossy(&preface)
        ));
        return seen;
    }
    let mut decoder = loona_hpack::Decoder::new();
    let mut block = Vec::new();
    loop {
        let Some(f) = read_frame(s) else {
            seen.error = Some("the client closed before its request".into());
            return seen;
        };
        match f.kind {
            SETTINGS if f.flags & ACK == 0 => {
                seen.settings = f
                    .payload
                    .chunks_exact(6)
                    .map(|c| {
                        (
                            u16::from_be_bytes([c[0], c[1]]),
                            u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                        )
                    })
                    .collect();
            }
            HEADERS | CONTINUATION => {
                block.extend_from_slice(&f.payload);
                if f.flags & END_HEADERS != 0 {
                    break;
                }
            }
            _ => seen.after.push(f),
        }
    }
    match decoder.decode(&block) {
        Ok(fields) => {
            seen.request.fields = fields
                .into_iter()
                .map(|(n, v)| {
                    (
                        String::from_utf8_lossy(&n).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })
                .collect();
        }
        Err(e) => seen.error = Some(format!("the request's HPACK block: {e:?}")),
    }
    for step in script(&seen.request) {
        match step {
            Play::Write(bytes) => {
                if s.write_all(&bytes).and_then(|_| s.flush()).is_err() {
                    return seen;
                }
            }
            Play::Await(kind, flags) => loop {
                let Some(f) = read_frame(s) else {
                    seen.error = Some(format!("the client closed before frame type {kind}"));
                    return seen;
                };
                let found = f.kind == kind && f.flags & flags == flags;
                seen.after.push(f);
                if found {
                    break;
                }
            },
            Play::Close => return seen,
        }
    }
    while let Some(f) = read_frame(s) {
        seen.after.push(f);
    }
    seen
}
