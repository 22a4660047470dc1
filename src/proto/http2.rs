//! HTTP/2 for one request without IO (RFC 9113): the bytes that open a connection and
//! send stream 1, and a reader that takes the server's frames until the response head
//! of stream 1 has ended. HPACK decoding is `hpack`'s (beside this module); the request
//! is encoded here (literals, no Huffman, no dynamic table), as it is a few fields.
//!
//! The head is written into a `HeadParser` as the lines curl prints (`HTTP/2 200`,
//! `name: value`), so everything after the conversation (printers, checks, redirects)
//! reads HTTP/2 heads as it reads HTTP/1 ones.

use std::fmt;

use crate::proto::hpack::{self, encode_int, HpackError};
use crate::proto::http::{HeadParser, Progress};

/// What a client sends first (RFC 9113, section 3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The largest frame this client accepts (SETTINGS_MAX_FRAME_SIZE, left at its default).
pub const MAX_FRAME: usize = 16_384;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY_FLAG: u8 = 0x20;

const SETTINGS_ENABLE_PUSH: u16 = 0x2;
const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// The one stream a probe opens.
const STREAM: u32 = 1;

/// An HTTP/2 error code (RFC 9113, section 7), named in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    pub const NO_ERROR: ErrorCode = ErrorCode(0x0);
    pub const CANCEL: ErrorCode = ErrorCode(0x8);

    /// The code's name in the RFC (`REFUSED_STREAM`), if it has one.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => return None,
        })
    }

    /// What the code says the server did, as a phrase: "refused the stream".
    pub fn meaning(self) -> &'static str {
        match self.0 {
            0x0 => "ended it without an error",
            0x1 => "reported a protocol error",
            0x2 => "reported an internal error",
            0x3 => "reported a flow-control error",
            0x4 => "gave up waiting for a SETTINGS acknowledgement",
            0x5 => "said the stream was already closed",
            0x6 => "reported a frame of the wrong size",
            0x7 => "refused the stream",
            0x8 => "cancelled the stream",
            0x9 => "could not keep up the header compression state",
            0xa => "failed the CONNECT request",
            0xb => "asked the client to slow down",
            0xc => "found the connection's security inadequate",
            0xd => "requires HTTP/1.1 for this request",
            _ => "sent an error code the RFC does not define",
        }
    }
}

impl fmt::Display for ErrorCode {
    /// `refused the stream (REFUSED_STREAM)`, or `... (0x1f)` for an unknown code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} ({name})", self.meaning()),
            None => write!(f, "{} (0x{:x})", self.meaning(), self.0),
        }
    }
}

/// Why the head of stream 1 could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum H2Error {
    /// A frame that breaks the framing rules; the text says which and how.
    Frame(String),
    /// The header block could not be decoded.
    Hpack(String),
    /// The decoded head is not a valid HTTP/2 response head.
    Malformed(Malformed),
    /// The server reset stream 1.
    Reset(ErrorCode),
    /// The server closed the connection before answering stream 1, or with an error.
    GoAway {
        code: ErrorCode,
        last_stream: u32,
        /// Its debug data, cut to `DEBUG_MAX` bytes.
        debug: Vec<u8>,
    },
    /// The server chose h2 in ALPN, then answered in HTTP/1.
    Http1(Vec<u8>),
    /// The header list passed the cap (RFC 9113's size: name + value + 32 per field).
    TooLarge,
}

/// What makes a response head malformed (RFC 9113, section 8.1.1). The peer's bytes are
/// kept raw (at most `QUOTE_MAX` + 1 of them) for the layer that words messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Malformed {
    /// DATA on stream 1 before its head.
    BodyFirst,
    NoStatus,
    /// 101, which HTTP/2 forbids.
    SwitchingProtocols,
    /// The stream ended with this interim status.
    EndedInterim(u16),
    /// A pseudo-header other than `:status`.
    Pseudo(Vec<u8>),
    StatusAfterField,
    StatusTwice,
    /// A `:status` value that is no status.
    BadStatus(Vec<u8>),
    /// A field name that is no lower-case token.
    BadName(Vec<u8>),
    /// The value of this field holds NUL, CR or LF.
    BadValue(Vec<u8>),
}

/// How many of a peer's bytes a message quotes; `Malformed` keeps one more, so the
/// quote can say there were more.
pub const QUOTE_MAX: usize = 40;

fn kept(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.len().min(QUOTE_MAX + 1)].to_vec()
}

/// How much of a GOAWAY's debug data is kept.
pub const DEBUG_MAX: usize = 256;

/// What a probe sends to open the connection and stream 1: the preface, SETTINGS and
/// HEADERS (END_STREAM, so no body follows), for one write. `fields` are the request's
/// pseudo-headers first, then its header fields with lower-case names.
pub fn request<F: AsRef<[u8]>>(fields: &[(F, F)], max_header_list: usize) -> Vec<u8> {
    let mut block = Vec::with_capacity(128);
    for (name, value) in fields {
        encode_field(&mut block, name.as_ref(), value.as_ref());
    }
    let mut out = Vec::with_capacity(PREFACE.len() + 9 + 18 + 9 + block.len() + 9);
    out.extend_from_slice(PREFACE);
    let mut settings = Vec::with_capacity(18);
    for (id, value) in [
        (SETTINGS_ENABLE_PUSH, 0),
        (
            SETTINGS_MAX_HEADER_LIST_SIZE,
            u32::try_from(max_header_list).unwrap_or(u32::MAX),
        ),
    ] {
        settings.extend_from_slice(&id.to_be_bytes());
        settings.extend_from_slice(&value.to_be_bytes());
    }
    frame(&mut out, SETTINGS, 0, 0, &settings);
    // A block larger than one frame continues in CONTINUATION frames.
    let mut chunks = block.chunks(MAX_FRAME).peekable();
    let first = chunks.next().unwrap_or_default();
    let last = chunks.peek().is_none();
    let flags = END_STREAM | if last { END_HEADERS } else { 0 };
    frame(&mut out, HEADERS, flags, STREAM, first);
    while let Some(chunk) = chunks.next() {
        let flags = if chunks.peek().is_none() {
            END_HEADERS
        } else {
            0
        };
        frame(&mut out, CONTINUATION, flags, STREAM, chunk);
    }
    out
}

/// What a probe sends once the head is read: GOAWAY, no stream processed by the client.
pub fn goodbye() -> Vec<u8> {
    let mut out = Vec::with_capacity(17);
    let mut payload = [0u8; 8];
    payload[4..].copy_from_slice(&ErrorCode::NO_ERROR.0.to_be_bytes());
    frame(&mut out, GOAWAY, 0, 0, &payload);
    out
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
}

/// A literal field without indexing (RFC 7541, section 6.2.2), with the name taken from
/// the static table when it is there.
fn encode_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    match static_name_index(name) {
        Some(index) => encode_int(out, 0x00, 4, index as u64),
        None => {
            out.push(0x00);
            encode_str(out, name);
        }
    }
    encode_str(out, value);
}

fn encode_str(out: &mut Vec<u8>, s: &[u8]) {
    encode_int(out, 0x00, 7, s.len() as u64);
    out.extend_from_slice(s);
}

/// The static table's index of the names a probe sends.
fn static_name_index(name: &[u8]) -> Option<usize> {
    Some(match name {
        b":authority" => 1,
        b":method" => 2,
        b":path" => 4,
        b":scheme" => 6,
        b"accept" => 19,
        b"accept-encoding" => 16,
        b"accept-language" => 17,
        b"authorization" => 23,
        b"cache-control" => 24,
        b"cookie" => 32,
        b"if-modified-since" => 40,
        b"if-none-match" => 41,
        b"range" => 50,
        b"referer" => 51,
        b"user-agent" => 58,
        _ => return None,
    })
}

/// A header block being received: HEADERS, then CONTINUATION until END_HEADERS.
struct OpenBlock {
    stream: u32,
    end_stream: bool,
}

/// Reads the server's side of the connection until the head of stream 1 has ended.
/// Frames the client must answer (SETTINGS, PING) leave their answers in `outgoing`.
pub struct Reader {
    /// Bytes of a frame not whole yet.
    buf: Vec<u8>,
    decoder: hpack::Decoder,
    /// The fragments of the block being received.
    block: Vec<u8>,
    open: Option<OpenBlock>,
    out: Vec<u8>,
    /// The server's SETTINGS (its preface) arrived.
    settings: bool,
    /// The server acknowledged ours.
    acked: bool,
    /// A GOAWAY that still lets stream 1 finish.
    goaway: Option<ErrorCode>,
    /// The header-list size so far, as RFC 9113 counts it, over every block.
    size: usize,
    max: usize,
    done: bool,
    /// The error that ended the reading: it is the answer from then on.
    failed: Option<H2Error>,
}

/// A frame's nine-byte header.
#[derive(Clone, Copy)]
struct FrameHeader {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

impl Reader {
    /// `max`: the cap on the decoded header list (`--max-header-bytes`).
    pub fn new(max: usize) -> Reader {
        Reader {
            buf: Vec::new(),
            // The client never raised SETTINGS_HEADER_TABLE_SIZE from its 4,096.
            decoder: hpack::Decoder::new(4096),
            block: Vec::new(),
            open: None,
            out: Vec::new(),
            settings: false,
            acked: false,
            goaway: None,
            size: 0,
            max,
            done: false,
            failed: None,
        }
    }

    /// Whether the server's SETTINGS arrived.
    pub fn saw_settings(&self) -> bool {
        self.settings
    }

    /// Whether the server acknowledged the client's SETTINGS.
    pub fn acked(&self) -> bool {
        self.acked
    }

    /// A graceful GOAWAY (the server will close once stream 1 is answered).
    pub fn goaway(&self) -> Option<ErrorCode> {
        self.goaway
    }

    /// Answers the server is owed (SETTINGS ACK, PING ACK); empty if none.
    pub fn outgoing(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Takes bytes from the server, writing the head's lines into `head` as blocks end.
    /// Bytes after the end of the head are ignored, as the body is.
    pub fn feed(&mut self, bytes: &[u8], head: &mut HeadParser) -> Result<Progress, H2Error> {
        if self.done {
            return Ok(Progress::Complete);
        }
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        // Frames are read where they lie: in `bytes` when nothing was left over (reads
        // usually end on a frame's end), else behind what was.
        let mut buf = std::mem::take(&mut self.buf);
        let (taken, result) = if buf.is_empty() {
            let (taken, result) = self.frames(bytes, head);
            if result == Ok(Progress::Partial) {
                buf.extend_from_slice(&bytes[taken..]);
            }
            (0, result)
        } else {
            buf.extend_from_slice(bytes);
            self.frames(&buf, head)
        };
        buf.drain(..taken);
        self.buf = buf;
        match &result {
            Ok(Progress::Complete) => self.done = true,
            Err(e) => self.failed = Some(e.clone()),
            Ok(_) => {}
        }
        result
    }

    /// Reads the whole frames at the start of `buf`; how many bytes they took, and what
    /// came of them.
    fn frames(&mut self, buf: &[u8], head: &mut HeadParser) -> (usize, Result<Progress, H2Error>) {
        let mut start = 0;
        loop {
            let rest = &buf[start..];
            if !self.settings {
                // The server's preface is a SETTINGS frame; a server that answers in
                // HTTP/1 shows itself in its first bytes.
                let n = rest.len().min(5);
                if n > 0 && rest[..n] == b"HTTP/"[..n] {
                    if n == 5 {
                        return (start, Err(H2Error::Http1(first_line(rest))));
                    }
                    return (start, Ok(Progress::Partial));
                }
            }
            if rest.len() < 9 {
                return (start, Ok(Progress::Partial));
            }
            let header = FrameHeader {
                len: usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]),
                kind: rest[3],
                flags: rest[4],
                stream: u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) & 0x7fff_ffff,
            };
            if !self.settings && (header.kind != SETTINGS || header.flags & ACK != 0) {
                return (
                    start,
                    Err(H2Error::Frame(format!(
                        "the server's first frame is {}, not the SETTINGS that opens an HTTP/2 \
                         connection",
                        kind_name(header.kind)
                    ))),
                );
            }
            if header.len > MAX_FRAME {
                return (
                    start,
                    Err(H2Error::Frame(format!(
                        "a {} frame of {} bytes, over the {MAX_FRAME} the client allows \
                         (FRAME_SIZE_ERROR)",
                        kind_name(header.kind),
                        header.len
                    ))),
                );
            }
            let Some(payload) = rest.get(9..9 + header.len) else {
                return (start, Ok(Progress::Partial));
            };
            start += 9 + header.len;
            match self.frame(header, payload, head) {
                Ok(Progress::Partial) => {}
                done => return (start, done),
            }
        }
    }

    fn frame(
        &mut self,
        h: FrameHeader,
        payload: &[u8],
        head: &mut HeadParser,
    ) -> Result<Progress, H2Error> {
        if let Some(open) = &self.open {
            if h.kind != CONTINUATION || h.stream != open.stream {
                return Err(H2Error::Frame(format!(
                    "a {} frame came where the CONTINUATION of stream {}'s header block \
                     belongs",
                    kind_name(h.kind),
                    open.stream
                )));
            }
        }
        let on_connection = |what: &str| -> Result<(), H2Error> {
            if h.stream != 0 {
                return Err(H2Error::Frame(format!(
                    "a {what} frame on stream {} (it belongs to the connection, stream 0)",
                    h.stream
                )));
            }
            Ok(())
        };
        let on_stream = |what: &str| -> Result<(), H2Error> {
            if h.stream == 0 {
                return Err(H2Error::Frame(format!(
                    "a {what} frame on stream 0 (it belongs to a stream)"
                )));
            }
            Ok(())
        };
        let sized = |what: &str, want: usize| -> Result<(), H2Error> {
            if payload.len() != want {
                return Err(H2Error::Frame(format!(
                    "a {what} frame of {} (it has {want}; FRAME_SIZE_ERROR)",
                    bytes(payload.len())
                )));
            }
            Ok(())
        };
        match h.kind {
            DATA => {
                on_stream("DATA")?;
                if h.stream == STREAM {
                    return Err(H2Error::Malformed(Malformed::BodyFirst));
                }
            }
            HEADERS => {
                on_stream("HEADERS")?;
                let fragment = unpad(h, payload)?;
                self.open = Some(OpenBlock {
                    stream: h.stream,
                    end_stream: h.flags & END_STREAM != 0,
                });
                return self.fragment(h, fragment, head);
            }
            PRIORITY => {
                on_stream("PRIORITY")?;
                sized("PRIORITY", 5)?;
            }
            RST_STREAM => {
                on_stream("RST_STREAM")?;
                sized("RST_STREAM", 4)?;
                if h.stream == STREAM {
                    return Err(H2Error::Reset(ErrorCode(be32(payload))));
                }
            }
            SETTINGS => {
                on_connection("SETTINGS")?;
                if h.flags & ACK != 0 {
                    sized("SETTINGS acknowledgement", 0)?;
                    self.acked = true;
                } else {
                    settings(payload)?;
                    self.settings = true;
                    frame(&mut self.out, SETTINGS, ACK, 0, &[]);
                }
            }
            PUSH_PROMISE => {
                return Err(H2Error::Frame(
                    "a PUSH_PROMISE, though the client turned server push off".into(),
                ))
            }
            PING => {
                on_connection("PING")?;
                sized("PING", 8)?;
                if h.flags & ACK == 0 {
                    frame(&mut self.out, PING, ACK, 0, payload);
                }
            }
            GOAWAY => {
                on_connection("GOAWAY")?;
                if payload.len() < 8 {
                    return Err(H2Error::Frame(format!(
                        "a GOAWAY frame of {} (it has at least 8; FRAME_SIZE_ERROR)",
                        bytes(payload.len())
                    )));
                }
                let last_stream = be32(payload) & 0x7fff_ffff;
                let code = ErrorCode(be32(&payload[4..]));
                if last_stream < STREAM || code != ErrorCode::NO_ERROR {
                    let debug = &payload[8..];
                    return Err(H2Error::GoAway {
                        code,
                        last_stream,
                        debug: debug[..debug.len().min(DEBUG_MAX)].to_vec(),
                    });
                }
                self.goaway = Some(code);
            }
            WINDOW_UPDATE => sized("WINDOW_UPDATE", 4)?,
            CONTINUATION => {
                if self.open.is_none() {
                    return Err(H2Error::Frame(
                        "a CONTINUATION frame with no header block open".into(),
                    ));
                }
                return self.fragment(h, payload, head);
            }
            // Unknown frame types are ignored (RFC 9113, section 4.1).
            _ => {}
        }
        Ok(Progress::Partial)
    }

    /// Adds a header block fragment; at END_HEADERS, decodes the block.
    fn fragment(
        &mut self,
        h: FrameHeader,
        fragment: &[u8],
        head: &mut HeadParser,
    ) -> Result<Progress, H2Error> {
        // The compressed block is bounded too: a CONTINUATION flood ends here. A field
        // is at least one byte on the wire for 32 counted, so 4 x the cap is generous.
        if self.block.len() + fragment.len() > self.max.saturating_mul(4).max(MAX_FRAME) {
            return Err(H2Error::TooLarge);
        }
        self.block.extend_from_slice(fragment);
        if h.flags & END_HEADERS == 0 {
            return Ok(Progress::Partial);
        }
        let open = self.open.take().expect("a block is open");
        let block = std::mem::take(&mut self.block);
        self.block_done(open, &block, head)
    }

    fn block_done(
        &mut self,
        open: OpenBlock,
        block: &[u8],
        head: &mut HeadParser,
    ) -> Result<Progress, H2Error> {
        let mine = open.stream == STREAM;
        let mut fields = Fields {
            status: None,
            lines: Vec::new(),
            regular: false,
            error: None,
            size: self.size,
            max: self.max,
        };
        // Every block is decoded, to keep the compression state in step.
        let decoded = self.decoder.decode(block, |name, value| {
            if mine {
                fields.take(name, value);
            }
        });
        if let Err(e) = decoded {
            return Err(H2Error::Hpack(hpack_text(&e)));
        }
        if !mine {
            return Ok(Progress::Partial);
        }
        if let Some(e) = fields.error {
            return Err(e);
        }
        self.size = fields.size;
        let Some(status) = fields.status else {
            return Err(H2Error::Malformed(Malformed::NoStatus));
        };
        let interim = (100..200).contains(&status);
        if status == 101 {
            return Err(H2Error::Malformed(Malformed::SwitchingProtocols));
        }
        if interim && open.end_stream {
            return Err(H2Error::Malformed(Malformed::EndedInterim(status)));
        }
        head.push_h2_block(status, &fields.lines);
        Ok(if interim {
            Progress::Partial
        } else {
            Progress::Complete
        })
    }
}

/// The fields of one decoded block of stream 1, checked as RFC 9113 section 8.3.2 says.
struct Fields {
    status: Option<u16>,
    /// `name: value` lines.
    lines: Vec<Vec<u8>>,
    /// A regular field was seen (pseudo-headers must come first).
    regular: bool,
    error: Option<H2Error>,
    size: usize,
    max: usize,
}

impl Fields {
    fn take(&mut self, name: &[u8], value: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.size = self.size.saturating_add(name.len() + value.len() + 32);
        if self.size > self.max {
            self.error = Some(H2Error::TooLarge);
            return;
        }
        if let Some(pseudo) = name.strip_prefix(b":") {
            let wrong = if pseudo != b"status" {
                Some(Malformed::Pseudo(kept(name)))
            } else if self.regular {
                Some(Malformed::StatusAfterField)
            } else if self.status.is_some() {
                Some(Malformed::StatusTwice)
            } else {
                None
            };
            let checked = match wrong {
                Some(m) => Err(m),
                None => parse_status(value).ok_or_else(|| Malformed::BadStatus(kept(value))),
            };
            match checked {
                Ok(code) => self.status = Some(code),
                Err(m) => self.error = Some(H2Error::Malformed(m)),
            }
            return;
        }
        self.regular = true;
        let bad_name = name.is_empty()
            || !name.iter().all(|&b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
            });
        if bad_name {
            self.error = Some(H2Error::Malformed(Malformed::BadName(kept(name))));
            return;
        }
        if value.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')) {
            self.error = Some(H2Error::Malformed(Malformed::BadValue(kept(name))));
            return;
        }
        let mut line = Vec::with_capacity(name.len() + 2 + value.len());
        line.extend_from_slice(name);
        line.extend_from_slice(b": ");
        line.extend_from_slice(value);
        self.lines.push(line);
    }
}

fn parse_status(value: &[u8]) -> Option<u16> {
    if value.len() != 3 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = value.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    crate::proto::http::STATUS_RANGE
        .contains(&code)
        .then_some(code)
}

/// The header block fragment of a HEADERS frame: padding and priority removed.
fn unpad(h: FrameHeader, payload: &[u8]) -> Result<&[u8], H2Error> {
    let mut body = payload;
    let mut pad = 0;
    if h.flags & PADDED != 0 {
        let Some((&n, rest)) = body.split_first() else {
            return Err(H2Error::Frame(
                "a padded HEADERS frame with no pad length".into(),
            ));
        };
        pad = usize::from(n);
        body = rest;
    }
    if h.flags & PRIORITY_FLAG != 0 {
        body = body.get(5..).ok_or_else(|| {
            H2Error::Frame("a HEADERS frame too short for its priority fields".into())
        })?;
    }
    if pad > body.len() {
        return Err(H2Error::Frame(format!(
            "a HEADERS frame whose padding ({pad} bytes) is longer than the frame"
        )));
    }
    Ok(&body[..body.len() - pad])
}

/// Checks the server's SETTINGS values (RFC 9113, section 6.5.2).
fn settings(payload: &[u8]) -> Result<(), H2Error> {
    if !payload.len().is_multiple_of(6) {
        return Err(H2Error::Frame(format!(
            "a SETTINGS frame of {} bytes, not a multiple of 6 (FRAME_SIZE_ERROR)",
            payload.len()
        )));
    }
    for entry in payload.chunks_exact(6) {
        let id = u16::from_be_bytes([entry[0], entry[1]]);
        let value = be32(&entry[2..]);
        let bad = match id {
            SETTINGS_ENABLE_PUSH => value > 1,
            SETTINGS_INITIAL_WINDOW_SIZE => value > 0x7fff_ffff,
            SETTINGS_MAX_FRAME_SIZE => !(16_384..=16_777_215).contains(&value),
            _ => false,
        };
        if bad {
            return Err(H2Error::Frame(format!(
                "the server's SETTINGS give setting 0x{id:x} the invalid value {value}"
            )));
        }
    }
    Ok(())
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The first line of bytes, at most 80 of them (for the HTTP/1 message).
fn first_line(bytes: &[u8]) -> Vec<u8> {
    let end = bytes
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(bytes.len())
        .min(80);
    bytes[..end].to_vec()
}

fn kind_name(kind: u8) -> String {
    match kind {
        DATA => "DATA".into(),
        HEADERS => "HEADERS".into(),
        PRIORITY => "PRIORITY".into(),
        RST_STREAM => "RST_STREAM".into(),
        SETTINGS => "SETTINGS".into(),
        PUSH_PROMISE => "PUSH_PROMISE".into(),
        PING => "PING".into(),
        GOAWAY => "GOAWAY".into(),
        WINDOW_UPDATE => "WINDOW_UPDATE".into(),
        CONTINUATION => "CONTINUATION".into(),
        other => format!("type-0x{other:x}"),
    }
}

/// `1 byte`, `5 bytes`.
fn bytes(n: usize) -> String {
    if n == 1 {
        "1 byte".into()
    } else {
        format!("{n} bytes")
    }
}

/// The decoder's error as lower-case words.
fn hpack_text(e: &HpackError) -> String {
    match e {
        HpackError::Index => "it refers to a table entry that does not exist",
        HpackError::Integer => "an integer in it is malformed or too large",
        HpackError::Truncated => "a string in it is cut short",
        HpackError::Huffman => "a string in it is badly Huffman-coded",
        HpackError::TableSize => "it sets the dynamic table larger than the 4096 bytes allowed",
        HpackError::LateSizeUpdate => "it updates the table size after a field",
        HpackError::SizeUpdateAtEnd => "it ends with a table size update",
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame(&mut out, kind, flags, stream, payload);
        out
    }

    fn block(fields: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, v) in fields {
            out.push(0x00);
            encode_str(&mut out, n);
            encode_str(&mut out, v);
        }
        out
    }

    fn opened() -> Vec<u8> {
        server_frame(SETTINGS, 0, 0, &[])
    }

    fn read(bytes: &[u8], max: usize) -> (Result<Progress, H2Error>, HeadParser) {
        let mut head = HeadParser::new(max);
        let mut reader = Reader::new(max);
        let r = reader.feed(bytes, &mut head);
        (r, head)
    }

    #[test]
    fn request_opens_with_the_preface_settings_and_one_headers_frame() {
        let fields: [(&[u8], &[u8]); 4] = [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", b"a.test"),
            (b":path", b"/"),
        ];
        let bytes = request(&fields, 65536);
        assert!(bytes.starts_with(PREFACE));
        let rest = &bytes[PREFACE.len()..];
        assert_eq!(rest[3], SETTINGS);
        let settings_len = usize::from(rest[2]);
        let headers = &rest[9 + settings_len..];
        assert_eq!(headers[3], HEADERS);
        assert_eq!(headers[4], END_STREAM | END_HEADERS);
        let mut decoder = loona_hpack::Decoder::new();
        let decoded = decoder.decode(&headers[9..]).unwrap();
        let want: Vec<(Vec<u8>, Vec<u8>)> = fields
            .iter()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(decoded, want);
    }

    #[test]
    fn a_long_request_block_continues_in_continuation_frames() {
        let big = vec![b'x'; 40_000];
        let fields: [(&[u8], &[u8]); 2] = [(b":method", b"GET"), (b"x-big", &big)];
        let bytes = request(&fields, 65536);
        let mut at = PREFACE.len();
        let mut kinds = Vec::new();
        while at < bytes.len() {
            let len = usize::from(bytes[at]) << 16
                | usize::from(bytes[at + 1]) << 8
                | usize::from(bytes[at + 2]);
            assert!(len <= MAX_FRAME);
            kinds.push((bytes[at + 3], bytes[at + 4]));
            at += 9 + len;
        }
        assert_eq!(
            kinds,
            [
                (SETTINGS, 0),
                (HEADERS, END_STREAM),
                (CONTINUATION, 0),
                (CONTINUATION, END_HEADERS)
            ]
        );
    }

    #[test]
    fn a_head_is_written_as_curl_prints_it() {
        let mut bytes = opened();
        let b = block(&[
            (b":status", b"200"),
            (b"server", b"t"),
            (b"set-cookie", b"a"),
        ]);
        bytes.extend(server_frame(HEADERS, END_HEADERS, 1, &b));
        let (r, head) = read(&bytes, 65536);
        assert_eq!(r, Ok(Progress::Complete));
        let lines: Vec<&[u8]> = head.lines().collect();
        assert_eq!(lines, [&b"HTTP/2 200"[..], b"server: t", b"set-cookie: a"]);
        assert!(head.is_complete());
        let last = head.final_block().unwrap();
        assert_eq!(last.status.code, 200);
        assert!(last.status.is_h2());
    }

    #[test]
    fn interim_heads_come_first_and_continuation_joins_fragments() {
        let mut bytes = opened();
        let early = block(&[(b":status", b"103"), (b"link", b"</a>")]);
        bytes.extend(server_frame(HEADERS, END_HEADERS, 1, &early));
        let b = block(&[(b":status", b"404"), (b"x", b"1")]);
        let (a, c) = b.split_at(3);
        bytes.extend(server_frame(HEADERS, 0, 1, a));
        bytes.extend(server_frame(CONTINUATION, END_HEADERS, 1, c));
        // Whole, a byte at a time as a slow server sends it, and in reads that end
        // inside frames and span others.
        for size in [bytes.len(), 1, 7, 13] {
            let mut head = HeadParser::new(65536);
            let mut reader = Reader::new(65536);
            let mut last = Ok(Progress::Partial);
            for chunk in bytes.chunks(size) {
                last = reader.feed(chunk, &mut head);
            }
            assert_eq!(last, Ok(Progress::Complete), "reads of {size}");
            assert_eq!(head.blocks().len(), 2);
            assert_eq!(head.interim_blocks()[0].status.code, 103);
            assert_eq!(head.final_block().unwrap().status.code, 404);
        }
    }

    #[test]
    fn settings_and_pings_are_answered() {
        let mut bytes = server_frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0xff, 0xff]);
        bytes.extend(server_frame(PING, 0, 0, b"12345678"));
        bytes.extend(server_frame(SETTINGS, ACK, 0, &[]));
        let mut head = HeadParser::new(65536);
        let mut reader = Reader::new(65536);
        assert_eq!(reader.feed(&bytes, &mut head), Ok(Progress::Partial));
        assert!(reader.saw_settings() && reader.acked());
        let out = reader.outgoing();
        assert_eq!(out[..9], [0, 0, 0, SETTINGS, ACK, 0, 0, 0, 0]);
        assert_eq!(out[9..18], [0, 0, 8, PING, ACK, 0, 0, 0, 0]);
        assert_eq!(&out[18..], b"12345678");
    }

    #[test]
    fn resets_and_goaways_carry_their_codes() {
        let mut bytes = opened();
        bytes.extend(server_frame(RST_STREAM, 0, 1, &7u32.to_be_bytes()));
        assert_eq!(read(&bytes, 65536).0, Err(H2Error::Reset(ErrorCode(7))));
        assert_eq!(
            ErrorCode(7).to_string(),
            "refused the stream (REFUSED_STREAM)"
        );
        assert_eq!(
            ErrorCode(0x99).to_string(),
            "sent an error code the RFC does not define (0x99)"
        );

        let mut bytes = opened();
        let mut goaway = vec![0, 0, 0, 0, 0, 0, 0, 0xb];
        goaway.extend_from_slice(b"calm");
        bytes.extend(server_frame(GOAWAY, 0, 0, &goaway));
        assert_eq!(
            read(&bytes, 65536).0,
            Err(H2Error::GoAway {
                code: ErrorCode(0xb),
                last_stream: 0,
                debug: b"calm".to_vec()
            })
        );

        // A graceful GOAWAY that covers stream 1 lets the answer come.
        let mut bytes = opened();
        bytes.extend(server_frame(GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0]));
        bytes.extend(server_frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            1,
            &block(&[(b":status", b"200")]),
        ));
        assert_eq!(read(&bytes, 65536).0, Ok(Progress::Complete));
    }

    #[test]
    fn an_error_stays_the_answer() {
        // Found by the h2_reader fuzzer: DATA before the head, then a head in the next
        // read, was a complete 200.
        let mut head = HeadParser::new(65536);
        let mut reader = Reader::new(65536);
        let mut first = opened();
        first.extend(server_frame(DATA, 0, 1, &[]));
        let e = Err(H2Error::Malformed(Malformed::BodyFirst));
        assert_eq!(reader.feed(&first, &mut head), e);
        let later = server_frame(HEADERS, END_HEADERS | END_STREAM, 1, &[0x88]);
        assert_eq!(reader.feed(&later, &mut head), e);
        assert!(head.is_empty());
    }

    #[test]
    fn unknown_frame_types_and_sizes_read_as_words() {
        // Found by the h2_reader fuzzer: "a a frame of type 0xa frame of 16385 bytes".
        let mut big = opened();
        big.extend([0x00, 0x40, 0x01, 0x0a, 0, 0, 0, 0, 0]);
        let Err(H2Error::Frame(m)) = read(&big, 65536).0 else {
            panic!("not a frame error")
        };
        assert_eq!(
            m,
            "a type-0xa frame of 16385 bytes, over the 16384 the client allows \
             (FRAME_SIZE_ERROR)"
        );
        let mut short = opened();
        short.extend(server_frame(WINDOW_UPDATE, 0, 0, &[1]));
        let Err(H2Error::Frame(m)) = read(&short, 65536).0 else {
            panic!("not a frame error")
        };
        assert!(m.contains("frame of 1 byte (it has 4;"), "{m}");
    }

    #[test]
    fn broken_peers_are_errors_in_words() {
        let http1 = b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n";
        assert_eq!(
            read(http1, 65536).0,
            Err(H2Error::Http1(b"HTTP/1.1 200 OK".to_vec()))
        );
        // Cut inside "HTTP/": not decided yet.
        assert_eq!(read(b"HTT", 65536).0, Ok(Progress::Partial));

        let first_not_settings = server_frame(PING, 0, 0, b"12345678");
        assert!(
            matches!(read(&first_not_settings, 65536).0, Err(H2Error::Frame(m)) if m.contains("PING"))
        );

        let mut on_zero = opened();
        on_zero.extend(server_frame(HEADERS, END_HEADERS, 0, &[0x88]));
        assert!(
            matches!(read(&on_zero, 65536).0, Err(H2Error::Frame(m)) if m.contains("stream 0"))
        );

        let mut oversized = opened();
        oversized.extend_from_slice(&[0x00, 0x40, 0x01, DATA, 0, 0, 0, 0, 1]);
        assert!(matches!(read(&oversized, 65536).0, Err(H2Error::Frame(m)) if m.contains("16385")));

        let mut bad_hpack = opened();
        bad_hpack.extend(server_frame(
            HEADERS,
            END_HEADERS,
            1,
            &[0xff, 0xff, 0xff, 0x7f],
        ));
        assert!(matches!(read(&bad_hpack, 65536).0, Err(H2Error::Hpack(_))));

        let mut upper = opened();
        let b = block(&[(b":status", b"200"), (b"Server", b"x")]);
        upper.extend(server_frame(HEADERS, END_HEADERS, 1, &b));
        assert!(
            read(&upper, 65536).0
                == Err(H2Error::Malformed(Malformed::BadName(b"Server".to_vec())))
        );

        let mut no_status = opened();
        no_status.extend(server_frame(
            HEADERS,
            END_HEADERS,
            1,
            &block(&[(b"a", b"b")]),
        ));
        assert!(read(&no_status, 65536).0 == Err(H2Error::Malformed(Malformed::NoStatus)));

        let mut interleaved = opened();
        interleaved.extend(server_frame(HEADERS, 0, 1, &[0x88]));
        interleaved.extend(server_frame(PING, 0, 0, b"12345678"));
        assert!(
            matches!(read(&interleaved, 65536).0, Err(H2Error::Frame(m)) if m.contains("CONTINUATION"))
        );
    }

    #[test]
    fn the_cap_counts_fields_as_the_rfc_does() {
        // ":status" + "200" + 32 = 42; "a" + 10 bytes + 32 = 43: 85 in all.
        let b = block(&[(b":status", b"200"), (b"a", b"0123456789")]);
        let mut bytes = opened();
        bytes.extend(server_frame(HEADERS, END_HEADERS, 1, &b));
        assert_eq!(read(&bytes, 85).0, Ok(Progress::Complete));
        assert_eq!(read(&bytes, 84).0, Err(H2Error::TooLarge));
    }

    #[test]
    fn a_continuation_flood_is_cut_off() {
        let mut bytes = opened();
        bytes.extend(server_frame(HEADERS, 0, 1, &[0x88]));
        for _ in 0..20 {
            bytes.extend(server_frame(CONTINUATION, 0, 1, &[0u8; MAX_FRAME]));
        }
        assert_eq!(read(&bytes, 65536).0, Err(H2Error::TooLarge));
    }
}
