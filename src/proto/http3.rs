//! HTTP/3 for one request without IO (RFC 9114): the client's control stream (its
//! SETTINGS), the request stream's HEADERS frame, and the response stream read frame by
//! frame until the final head. QUIC itself (streams, their ends and resets) is the
//! caller's; field sections are `proto::qpack`'s.
//!
//! The head is written into a `HeadParser` as the lines curl prints (`HTTP/3 200`,
//! then the fields as received, no pseudo-headers), so the rest of headprobe reads
//! HTTP/3 heads as it reads HTTP/1 and HTTP/2 ones.

use std::fmt;

use crate::proto::http::{HeadParser, Progress};
use crate::proto::http2::{Malformed, QUOTE_MAX};
use crate::proto::qpack::{self, QpackError};

/// Frame types (RFC 9114 section 7.2).
pub mod frame {
    pub const DATA: u64 = 0x0;
    pub const HEADERS: u64 = 0x1;
    pub const CANCEL_PUSH: u64 = 0x3;
    pub const SETTINGS: u64 = 0x4;
    pub const PUSH_PROMISE: u64 = 0x5;
    pub const GOAWAY: u64 = 0x7;
    pub const MAX_PUSH_ID: u64 = 0xd;
}

/// Settings (RFC 9114 section 7.2.4.1, RFC 9204 section 5).
mod setting {
    pub const QPACK_MAX_TABLE_CAPACITY: u64 = 0x1;
    pub const MAX_FIELD_SECTION_SIZE: u64 = 0x6;
    pub const QPACK_BLOCKED_STREAMS: u64 = 0x7;
}

/// The unidirectional stream type of a control stream.
const CONTROL_STREAM: u64 = 0x0;

/// H3_NO_ERROR: what a probe closes the connection with once it has the head.
pub const NO_ERROR: u64 = 0x100;

/// Appends a QUIC variable-length integer (RFC 9000 section 16); `v` < 2^62.
pub fn put_varint(out: &mut Vec<u8>, v: u64) {
    if v < 1 << 6 {
        out.push(v as u8);
    } else if v < 1 << 14 {
        out.extend_from_slice(&(v as u16 | 0x4000).to_be_bytes());
    } else if v < 1 << 30 {
        out.extend_from_slice(&(v as u32 | 0x8000_0000).to_be_bytes());
    } else {
        out.extend_from_slice(&(v | 0xc000_0000_0000_0000).to_be_bytes());
    }
}

/// Reads a variable-length integer from the start of `buf`: the value and its length,
/// or `None` when `buf` holds only part of it.
pub fn get_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let len = 1usize << (first >> 6);
    let bytes = buf.get(..len)?;
    let v = bytes[1..]
        .iter()
        .fold(u64::from(first & 0x3f), |v, &b| (v << 8) | u64::from(b));
    Some((v, len))
}

fn put_frame(out: &mut Vec<u8>, kind: u64, payload: &[u8]) {
    put_varint(out, kind);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// What the client's control stream carries: its type, then SETTINGS: no dynamic table
/// (so no blocked streams), and the largest field section it accepts.
pub fn control_stream(max_field_section: usize) -> Vec<u8> {
    let mut settings = Vec::with_capacity(12);
    for (id, value) in [
        (setting::QPACK_MAX_TABLE_CAPACITY, 0),
        (setting::QPACK_BLOCKED_STREAMS, 0),
        (setting::MAX_FIELD_SECTION_SIZE, max_field_section as u64),
    ] {
        put_varint(&mut settings, id);
        put_varint(&mut settings, value);
    }
    let mut out = Vec::with_capacity(16);
    put_varint(&mut out, CONTROL_STREAM);
    put_frame(&mut out, frame::SETTINGS, &settings);
    out
}

/// The request stream's bytes: one HEADERS frame (the stream's end follows, so no body).
/// `fields` are the pseudo-headers first, then the header fields with lower-case names.
pub fn request<F: AsRef<[u8]>>(fields: &[(F, F)]) -> Vec<u8> {
    let section = qpack::encode(fields);
    let mut out = Vec::with_capacity(section.len() + 8);
    put_frame(&mut out, frame::HEADERS, &section);
    out
}

/// An HTTP/3 or QPACK error code (RFC 9114 section 8.1, RFC 9204 section 6), as a
/// CONNECTION_CLOSE of the application or a stream reset carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub u64);

impl ErrorCode {
    /// The code's name, when it is one RFC 9114 or 9204 defines.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x100 => "H3_NO_ERROR",
            0x101 => "H3_GENERAL_PROTOCOL_ERROR",
            0x102 => "H3_INTERNAL_ERROR",
            0x103 => "H3_STREAM_CREATION_ERROR",
            0x104 => "H3_CLOSED_CRITICAL_STREAM",
            0x105 => "H3_FRAME_UNEXPECTED",
            0x106 => "H3_FRAME_ERROR",
            0x107 => "H3_EXCESSIVE_LOAD",
            0x108 => "H3_ID_ERROR",
            0x109 => "H3_SETTINGS_ERROR",
            0x10a => "H3_MISSING_SETTINGS",
            0x10b => "H3_REQUEST_REJECTED",
            0x10c => "H3_REQUEST_CANCELLED",
            0x10d => "H3_REQUEST_INCOMPLETE",
            0x10e => "H3_MESSAGE_ERROR",
            0x10f => "H3_CONNECT_ERROR",
            0x110 => "H3_VERSION_FALLBACK",
            0x200 => "QPACK_DECOMPRESSION_FAILED",
            0x201 => "QPACK_ENCODER_STREAM_ERROR",
            0x202 => "QPACK_DECODER_STREAM_ERROR",
            _ => return None,
        })
    }

    /// What the code says, in words.
    pub fn meaning(self) -> &'static str {
        match self.0 {
            0x100 => "closed without an error",
            0x101 => "reports a protocol error",
            0x102 => "reports an internal error",
            0x103 => "objects to a stream the client opened",
            0x104 => "reports a critical stream closed",
            0x105 => "received a frame it did not expect",
            0x106 => "received a malformed frame",
            0x107 => "is overloaded",
            0x108 => "received a wrong stream or push ID",
            0x109 => "rejects the client's SETTINGS",
            0x10a => "did not get the client's SETTINGS",
            0x10b => "rejected the request without processing it",
            0x10c => "cancelled the request",
            0x10d => "says the request was incomplete",
            0x10e => "says the request was malformed",
            0x10f => "reports a failed CONNECT",
            0x110 => "asks the client to use HTTP/1.1",
            0x200 => "could not decode a field section (QPACK)",
            0x201 => "reports a QPACK encoder stream error",
            0x202 => "reports a QPACK decoder stream error",
            // RFC 9114 section 9: codes 0x1f * N + 0x21 are reserved, for greasing.
            n if n >= 0x21 && (n - 0x21) % 0x1f == 0 => "sent a reserved (grease) code",
            _ => "sent an error code HTTP/3 does not define",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} ({name})", self.meaning()),
            None => write!(f, "{} (0x{:x})", self.meaning(), self.0),
        }
    }
}

/// Why the head of the request stream could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum H3Error {
    /// A frame that breaks the framing rules; the text says which and how.
    Frame(String),
    /// A field section QPACK cannot decode.
    Qpack(QpackError),
    /// The decoded head is not a valid response head (RFC 9114 section 4.3, which
    /// asks what RFC 9113 does; the same words serve).
    Malformed(Malformed),
    /// The field section passed the cap (name + value + 32 per field, RFC 9114
    /// section 4.2.2), or its frame is larger than the cap.
    TooLarge,
}

/// Reads the frames of the request stream until the final response head.
#[derive(Debug)]
pub struct Reader {
    max: usize,
    /// Bytes of a frame not complete yet.
    buf: Vec<u8>,
    /// Payload bytes of an unknown frame still to skip.
    skip: u64,
    /// The field size counted so far, over every head (interim ones too).
    size: usize,
    /// A frame was read.
    any: bool,
}

impl Reader {
    /// A reader that accepts heads of at most `max` bytes (`--max-header-bytes`).
    pub fn new(max: usize) -> Reader {
        Reader {
            max,
            buf: Vec::new(),
            skip: 0,
            size: 0,
            any: false,
        }
    }

    /// Whether any frame (or part of one) arrived.
    pub fn got_any(&self) -> bool {
        self.any
    }

    /// Reads what the stream delivered next, writing each head into `head`.
    pub fn feed(&mut self, mut bytes: &[u8], head: &mut HeadParser) -> Result<Progress, H3Error> {
        if !bytes.is_empty() {
            self.any = true;
        }
        loop {
            if self.skip > 0 {
                let n = (bytes.len() as u64).min(self.skip) as usize;
                self.skip -= n as u64;
                bytes = &bytes[n..];
            }
            if bytes.is_empty() {
                return Ok(Progress::Partial);
            }
            // Frames are taken from `bytes` in place when whole; only a frame split
            // across reads is copied.
            let (kind, payload, used) = if self.buf.is_empty() {
                match self.frame(bytes)? {
                    Some(found) => found,
                    None => {
                        self.buf.extend_from_slice(bytes);
                        return Ok(Progress::Partial);
                    }
                }
            } else {
                let before = self.buf.len();
                self.buf.extend_from_slice(bytes);
                let mut buf = std::mem::take(&mut self.buf);
                let found = self.frame(&buf)?;
                let Some((kind, payload, used)) = found else {
                    self.buf = buf;
                    return Ok(Progress::Partial);
                };
                // The frame ends within `bytes`: what follows it is read from there.
                let progress = self.take(kind, payload, head)?;
                bytes = &bytes[used - before..];
                buf.clear();
                self.buf = buf;
                if progress == Progress::Complete {
                    return Ok(progress);
                }
                continue;
            };
            let progress = self.take(kind, payload, head)?;
            bytes = &bytes[used..];
            if progress == Progress::Complete {
                return Ok(progress);
            }
        }
    }

    /// The frame at the start of `buf`: its type, payload (empty for one being skipped)
    /// and length in `buf`; `None` when more bytes are needed.
    #[allow(clippy::type_complexity)]
    fn frame<'a>(&mut self, buf: &'a [u8]) -> Result<Option<(u64, &'a [u8], usize)>, H3Error> {
        let Some((kind, a)) = get_varint(buf) else {
            return Ok(None);
        };
        let Some((len, b)) = get_varint(&buf[a..]) else {
            return Ok(None);
        };
        let start = a + b;
        match kind {
            frame::HEADERS if len > self.max as u64 => return Err(H3Error::TooLarge),
            frame::HEADERS | frame::DATA => {}
            frame::CANCEL_PUSH
            | frame::SETTINGS
            | frame::GOAWAY
            | frame::MAX_PUSH_ID
            | frame::PUSH_PROMISE => {
                return Err(H3Error::Frame(format!(
                    "{} on the request stream, where it is not allowed (H3_FRAME_UNEXPECTED)",
                    kind_name(kind)
                )))
            }
            0x2 | 0x6 | 0x8 | 0x9 => {
                return Err(H3Error::Frame(format!(
                    "an HTTP/2 frame type (0x{kind:x}), which HTTP/3 reserves (H3_FRAME_UNEXPECTED)"
                )))
            }
            // Unknown (and grease) frames are skipped, RFC 9114 section 9: their
            // payload is never buffered.
            _ => {
                let here = (buf.len() - start) as u64;
                let n = here.min(len);
                self.skip = len - n;
                return Ok(Some((kind, &[], start + n as usize)));
            }
        }
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len));
        match end {
            Some(end) if end <= buf.len() => Ok(Some((kind, &buf[start..end], end))),
            _ => Ok(None),
        }
    }

    fn take(
        &mut self,
        kind: u64,
        payload: &[u8],
        head: &mut HeadParser,
    ) -> Result<Progress, H3Error> {
        match kind {
            frame::HEADERS => self.section(payload, head),
            frame::DATA => Err(H3Error::Malformed(Malformed::BodyFirst)),
            _ => Ok(Progress::Partial),
        }
    }

    fn section(&mut self, payload: &[u8], head: &mut HeadParser) -> Result<Progress, H3Error> {
        let mut fields = Fields {
            status: None,
            lines: Vec::new(),
            regular: false,
            error: None,
            size: self.size,
            max: self.max,
        };
        qpack::decode(payload, |name, value| fields.take(name, value)).map_err(H3Error::Qpack)?;
        if let Some(e) = fields.error {
            return Err(e);
        }
        self.size = fields.size;
        let Some(status) = fields.status else {
            return Err(H3Error::Malformed(Malformed::NoStatus));
        };
        if status == 101 {
            return Err(H3Error::Malformed(Malformed::SwitchingProtocols));
        }
        head.push_h3_block(status, &fields.lines);
        Ok(if (100..200).contains(&status) {
            Progress::Partial
        } else {
            Progress::Complete
        })
    }
}

/// The fields of one decoded section, checked as RFC 9114 section 4.3 says.
struct Fields {
    status: Option<u16>,
    /// `name: value` lines.
    lines: Vec<Vec<u8>>,
    /// A regular field was seen (pseudo-headers must come first).
    regular: bool,
    error: Option<H3Error>,
    size: usize,
    max: usize,
}

fn kept(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.len().min(QUOTE_MAX + 1)].to_vec()
}

impl Fields {
    fn take(&mut self, name: &[u8], value: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.size = self.size.saturating_add(name.len() + value.len() + 32);
        if self.size > self.max {
            self.error = Some(H3Error::TooLarge);
            return;
        }
        let malformed = |m| Some(H3Error::Malformed(m));
        if let Some(pseudo) = name.strip_prefix(b":") {
            self.error = if pseudo != b"status" {
                malformed(Malformed::Pseudo(kept(name)))
            } else if self.regular {
                malformed(Malformed::StatusAfterField)
            } else if self.status.is_some() {
                malformed(Malformed::StatusTwice)
            } else {
                match parse_status(value) {
                    Some(code) => {
                        self.status = Some(code);
                        None
                    }
                    None => malformed(Malformed::BadStatus(kept(value))),
                }
            };
            return;
        }
        self.regular = true;
        let bad_name = name.is_empty()
            || !name.iter().all(|&b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
            });
        if bad_name {
            self.error = malformed(Malformed::BadName(kept(name)));
            return;
        }
        if value.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')) {
            self.error = malformed(Malformed::BadValue(kept(name)));
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

fn kind_name(kind: u64) -> String {
    match kind {
        frame::DATA => "DATA".into(),
        frame::HEADERS => "HEADERS".into(),
        frame::CANCEL_PUSH => "CANCEL_PUSH".into(),
        frame::SETTINGS => "SETTINGS".into(),
        frame::PUSH_PROMISE => "PUSH_PROMISE".into(),
        frame::GOAWAY => "GOAWAY".into(),
        frame::MAX_PUSH_ID => "MAX_PUSH_ID".into(),
        n => format!("a frame of type 0x{n:x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(fields: &[(&[u8], &[u8])]) -> Vec<u8> {
        request(fields)
    }

    fn read(bytes: &[u8], max: usize) -> (Result<Progress, H3Error>, HeadParser) {
        let mut head = HeadParser::new(max);
        let mut reader = Reader::new(max);
        (reader.feed(bytes, &mut head), head)
    }

    fn lines(head: &HeadParser) -> Vec<String> {
        head.lines()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    #[test]
    fn varints_round_trip_in_every_length() {
        for v in [
            0,
            63,
            64,
            16383,
            16384,
            (1 << 30) - 1,
            1 << 30,
            (1 << 62) - 1,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(get_varint(&out), Some((v, out.len())));
            assert_eq!(get_varint(&out[..out.len() - 1]), None);
        }
        // RFC 9000 appendix A.1's examples.
        assert_eq!(get_varint(&[0x7b, 0xbd]), Some((15293, 2)));
        assert_eq!(get_varint(&[0x25]), Some((37, 1)));
    }

    #[test]
    fn the_control_stream_opens_with_settings() {
        assert_eq!(
            control_stream(65536),
            [0x00, 0x04, 9, 0x01, 0x00, 0x07, 0x00, 0x06, 0x80, 0x01, 0x00, 0x00]
        );
    }

    #[test]
    fn a_head_is_written_as_curl_prints_it() {
        let bytes = headers(&[
            (b":status", b"200"),
            (b"server", b"t"),
            (b"set-cookie", b"a"),
        ]);
        let (result, head) = read(&bytes, 4096);
        assert_eq!(result, Ok(Progress::Complete));
        assert_eq!(lines(&head), ["HTTP/3 200", "server: t", "set-cookie: a"]);
        assert_eq!(head.final_block().unwrap().status.version(), "HTTP/3");
    }

    #[test]
    fn interim_heads_and_unknown_frames_come_first_byte_by_byte() {
        let mut bytes = headers(&[(b":status", b"103"), (b"link", b"</a>")]);
        // A grease frame of type 0x21 with five bytes, skipped unread.
        bytes.extend_from_slice(&[0x21, 5, 1, 2, 3, 4, 5]);
        bytes.extend(headers(&[(b":status", b"404"), (b"x-a", b"b")]));
        bytes.extend_from_slice(&[0x00, 3, b'b', b'o', b'd']);
        let mut head = HeadParser::new(4096);
        let mut reader = Reader::new(4096);
        let mut last = Ok(Progress::Partial);
        for b in &bytes {
            last = reader.feed(std::slice::from_ref(b), &mut head);
            if last != Ok(Progress::Partial) {
                break;
            }
        }
        assert_eq!(last, Ok(Progress::Complete));
        assert_eq!(
            lines(&head),
            ["HTTP/3 103", "link: </a>", "HTTP/3 404", "x-a: b"]
        );
    }

    #[test]
    fn broken_peers_are_errors_in_words() {
        let malformed = |fields: &[(&[u8], &[u8])]| read(&headers(fields), 4096).0;
        assert_eq!(
            malformed(&[(b"server", b"x")]),
            Err(H3Error::Malformed(Malformed::NoStatus))
        );
        assert_eq!(
            malformed(&[(b":status", b"200"), (b"Server", b"x")]),
            Err(H3Error::Malformed(Malformed::BadName(b"Server".to_vec())))
        );
        assert_eq!(
            malformed(&[(b":status", b"20x")]),
            Err(H3Error::Malformed(Malformed::BadStatus(b"20x".to_vec())))
        );
        assert_eq!(
            malformed(&[(b":path", b"/")]),
            Err(H3Error::Malformed(Malformed::Pseudo(b":path".to_vec())))
        );
        assert_eq!(
            read(&[0x00, 1, 0], 4096).0,
            Err(H3Error::Malformed(Malformed::BodyFirst))
        );
        let Err(H3Error::Frame(why)) = read(&[0x04, 0], 4096).0 else {
            panic!("SETTINGS on a request stream is an error");
        };
        assert!(why.contains("SETTINGS"), "{why}");
        assert_eq!(
            read(&[0x01, 2, 1, 0], 4096).0,
            Err(H3Error::Qpack(QpackError::Dynamic))
        );
    }

    #[test]
    fn the_cap_counts_fields_as_the_rfc_does() {
        let bytes = headers(&[(b":status", b"200"), (b"x", b"y")]);
        // ":status" + "200" + 32, then "x" + "y" + 32: 76 bytes.
        assert_eq!(read(&bytes, 76).0, Ok(Progress::Complete));
        assert_eq!(read(&bytes, 75).0, Err(H3Error::TooLarge));
        // A HEADERS frame longer than the cap is refused before it is buffered.
        let mut huge = Vec::new();
        put_varint(&mut huge, frame::HEADERS);
        put_varint(&mut huge, 1 << 20);
        assert_eq!(read(&huge, 65536).0, Err(H3Error::TooLarge));
    }

    #[test]
    fn error_codes_are_named() {
        assert_eq!(
            ErrorCode(0x10b).to_string(),
            "rejected the request without processing it (H3_REQUEST_REJECTED)"
        );
        assert_eq!(ErrorCode(0x21 + 0x1f).name(), None);
        assert!(ErrorCode(0x40).to_string().ends_with("(0x40)"));
    }
}
