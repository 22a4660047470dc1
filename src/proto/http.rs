//! HTTP/1.x response heads without IO (the request bytes are `proto::request`'s).
//!
//! The caller owns the socket: it reads into `HeadParser::read_buf`, reports the count
//! with `commit`, and gets back complete / partial / error, as httparse does.

use std::borrow::Cow;
use std::ops::Range;

/// Whether `s` is an RFC 9110 token (method and header names).
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A status line: `HTTP/<d>.<d> <ddd>[ <reason>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    pub major: u8,
    pub minor: u8,
    pub code: u16,
    /// Range of the reason phrase within the line.
    reason: Range<usize>,
    /// Read from HTTP/2 or HTTP/3 (`HTTP/2 200`, `HTTP/3 200`: no minor version, no
    /// reason phrase); `major` says which.
    h2: bool,
}

impl StatusLine {
    /// The protocol as curl prints it: `HTTP/1.1`, `HTTP/2`, `HTTP/3`.
    pub fn version(&self) -> String {
        if self.h2 {
            format!("HTTP/{}", self.major)
        } else {
            format!("HTTP/{}.{}", self.major, self.minor)
        }
    }

    /// The head came over HTTP/2 or HTTP/3 (it has no reason phrase).
    pub fn is_h2(&self) -> bool {
        self.h2
    }

    /// 1xx other than 101: another response follows.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.code) && self.code != 101
    }
}

/// Status codes as RFC 9110 (section 15) defines them: three digits, 100 to 599.
pub const STATUS_RANGE: std::ops::RangeInclusive<u16> = 100..=599;

/// The code of a line shaped like a status line whose code is outside `STATUS_RANGE`
/// (`HTTP/1.1 099 X`, `HTTP/1.1 999 Request Denied`), for the `not_http` message.
pub fn out_of_range_code(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/")?;
    let (version, rest) = rest.split_at_checked(3)?;
    if !(version[0].is_ascii_digit() && version[1] == b'.' && version[2].is_ascii_digit()) {
        return None;
    }
    let rest = rest.trim_ascii_start();
    let digits = rest.get(..3)?;
    let after = rest.get(3).copied();
    if !digits.iter().all(u8::is_ascii_digit) || after.is_some_and(|b| !b.is_ascii_whitespace()) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    (!STATUS_RANGE.contains(&code)).then_some(code)
}

enum Match {
    Yes(StatusLine),
    /// The bytes so far could still become a status line.
    Prefix,
    No,
}

/// Matches a status line; with `complete` false, a viable prefix answers `Prefix`.
fn match_status(line: &[u8], complete: bool) -> Match {
    if !complete {
        if let Some(before_cr) = line.strip_suffix(b"\r") {
            // The CR may be the end of the line: viable if the line without it matches.
            return match match_status(before_cr, true) {
                Match::No => Match::No,
                _ => Match::Prefix,
            };
        }
    }
    let short = || if complete { Match::No } else { Match::Prefix };
    let proto = b"HTTP/";
    let n = line.len().min(proto.len());
    if line[..n] != proto[..n] {
        return Match::No;
    }
    let mut p = proto.len();
    let digit = |p: &mut usize| -> Option<Option<u8>> {
        match line.get(*p) {
            None => Some(None),
            Some(b) if b.is_ascii_digit() => {
                *p += 1;
                Some(Some(b - b'0'))
            }
            Some(_) => None,
        }
    };
    let major = match digit(&mut p) {
        Some(Some(d)) => d,
        Some(None) => return short(),
        None => return Match::No,
    };
    match line.get(p) {
        None => return short(),
        Some(b'.') => p += 1,
        Some(_) => return Match::No,
    }
    let minor = match digit(&mut p) {
        Some(Some(d)) => d,
        Some(None) => return short(),
        None => return Match::No,
    };
    let spaces = line[p..]
        .iter()
        .take_while(|b| **b == b' ' || **b == b'\t')
        .count();
    if p + spaces == line.len() {
        return short();
    }
    if spaces == 0 {
        return Match::No;
    }
    p += spaces;
    let mut code: u16 = 0;
    for _ in 0..3 {
        match digit(&mut p) {
            Some(Some(d)) => code = code * 10 + u16::from(d),
            Some(None) => return short(),
            None => return Match::No,
        }
    }
    if !STATUS_RANGE.contains(&code) {
        return Match::No;
    }
    let reason = match line.get(p) {
        None if !complete => return Match::Prefix,
        None => p..p,
        Some(b' ' | b'\t') => {
            let rest = &line[p..];
            let start = p + rest
                .iter()
                .take_while(|b| **b == b' ' || **b == b'\t')
                .count();
            let end = p + rest.len()
                - rest
                    .iter()
                    .rev()
                    .take_while(|b| **b == b' ' || **b == b'\t')
                    .count();
            start..end.max(start)
        }
        Some(_) => return Match::No,
    };
    Match::Yes(StatusLine {
        major,
        minor,
        code,
        reason,
        h2: false,
    })
}

/// A header field as `(name, value)`; the value is owned only when obs-fold joined lines.
pub type Field<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// Why a head could not be read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// A line where a status line belongs is not one (see `HeadParser::banner`).
    NotHttp,
    /// The head reached the byte cap without ending.
    TooLarge,
}

/// `commit` and `feed` answer this when no error stopped them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The head is not complete yet: read more.
    Partial,
    /// The blank line ending the final response's head was read.
    Complete,
}

/// One response head within the header block (interim 1xx or final).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub status: StatusLine,
    /// Index of the status line in `HeadParser::line`.
    first_line: usize,
    /// One past the last line of this block read so far.
    end_line: usize,
    /// Whether the blank line ending this block was read.
    pub complete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Status,
    Headers,
    Done,
    Failed(HeadError),
}

/// Incremental parser for the response head, over a buffer it owns.
#[derive(Debug, Clone)]
pub struct HeadParser {
    buf: Vec<u8>,
    /// How many bytes of `buf` hold data (the rest is room offered by `read_buf`).
    filled: usize,
    max: usize,
    /// Bytes of `buf` already searched for a line end.
    scanned: usize,
    line_start: usize,
    /// Status and header lines (CR dropped, blank lines left out), as ranges of `buf`.
    lines: Vec<Span>,
    blocks: Vec<Block>,
    state: State,
}

/// A line's place in the buffer. `u32` is enough (the cap is at most 256 MiB) and
/// halves the per-probe line list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn new(range: &Range<usize>) -> Span {
        Span {
            start: range.start as u32,
            end: range.end as u32,
        }
    }

    fn of(self, buf: &[u8]) -> &[u8] {
        &buf[self.start as usize..self.end as usize]
    }
}

/// What `read_buf` offers at first; it doubles up to the cap.
const FIRST_READ: usize = 512;
/// How much of an unfinished status line is checked on each read.
const EARLY_CHECK: usize = 32;
/// `banner` is cut to this many bytes.
pub const BANNER_MAX: usize = 512;

impl HeadParser {
    /// A parser that accepts a header block of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        HeadParser {
            buf: Vec::new(),
            filled: 0,
            max,
            scanned: 0,
            line_start: 0,
            lines: Vec::with_capacity(16),
            blocks: Vec::with_capacity(1),
            state: State::Status,
        }
    }

    /// Room to read into: never more than the cap leaves, so nothing past it is read.
    /// Empty once the parser is done or failed, or the cap is reached.
    pub fn read_buf(&mut self) -> &mut [u8] {
        let len = self.filled;
        let limit = match self.state {
            State::Status | State::Headers => self.max,
            _ => len,
        };
        // Room already zeroed is kept between reads; it doubles only when used up, so
        // many small reads cost linear time.
        if self.buf.len() == len && len < limit {
            let grown = (len * 2).max(FIRST_READ).min(limit);
            self.buf.resize(grown, 0);
        }
        let end = self.buf.len().min(limit);
        &mut self.buf[len..end.max(len)]
    }

    /// Takes `n` bytes written at the start of the last `read_buf`.
    pub fn commit(&mut self, n: usize) -> Result<Progress, HeadError> {
        self.filled = (self.filled + n).min(self.buf.len());
        self.advance()
    }

    /// Copies `bytes` in and parses them (for tests, fuzzers and in-memory callers).
    /// Bytes after the end of the head are ignored, as the body is.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<Progress, HeadError> {
        loop {
            let progress = self.advance()?;
            if progress == Progress::Complete || bytes.is_empty() {
                return Ok(progress);
            }
            let room = self.read_buf();
            let n = room.len().min(bytes.len());
            room[..n].copy_from_slice(&bytes[..n]);
            self.commit(n)?;
            bytes = &bytes[n..];
        }
    }

    fn advance(&mut self) -> Result<Progress, HeadError> {
        match self.state {
            State::Done => return Ok(Progress::Complete),
            State::Failed(e) => return Err(e),
            _ => {}
        }
        while let Some(offset) = self.buf[self.scanned..self.filled]
            .iter()
            .position(|&b| b == b'\n')
        {
            let lf = self.scanned + offset;
            self.scanned = lf + 1;
            let mut line = self.line_start..lf;
            if self.buf[line.clone()].last() == Some(&b'\r') {
                line.end -= 1;
            }
            let line_start = std::mem::replace(&mut self.line_start, lf + 1);
            if let Err(e) = self.take_line(line) {
                // Keep the offending line findable for `banner`.
                self.line_start = line_start;
                self.state = State::Failed(e);
                return Err(e);
            }
            if self.state == State::Done {
                self.filled = self.scanned;
                self.buf.truncate(self.filled);
                return Ok(Progress::Complete);
            }
        }
        self.scanned = self.filled;
        // A peer that is not HTTP is caught early, from the start of its first line. Only
        // a bounded prefix is looked at, so a line trickled byte by byte costs constant
        // work per read, not a rescan of everything so far; the whole line is judged
        // once, when it ends.
        let partial = &self.buf[self.line_start..self.filled];
        let early = &partial[..partial.len().min(EARLY_CHECK)];
        if self.state == State::Status && matches!(match_status(early, false), Match::No) {
            self.state = State::Failed(HeadError::NotHttp);
            return Err(HeadError::NotHttp);
        }
        if self.filled >= self.max {
            self.state = State::Failed(HeadError::TooLarge);
            return Err(HeadError::TooLarge);
        }
        Ok(Progress::Partial)
    }

    fn take_line(&mut self, line: Range<usize>) -> Result<(), HeadError> {
        match self.state {
            State::Status => match match_status(&self.buf[line.clone()], true) {
                Match::Yes(mut status) => {
                    status.reason.start += line.start;
                    status.reason.end += line.start;
                    self.lines.push(Span::new(&line));
                    self.blocks.push(Block {
                        status,
                        first_line: self.lines.len() - 1,
                        end_line: self.lines.len(),
                        complete: false,
                    });
                    self.state = State::Headers;
                    Ok(())
                }
                _ => Err(HeadError::NotHttp),
            },
            State::Headers => {
                let block = self.blocks.last_mut().expect("a block is open in Headers");
                if line.is_empty() {
                    block.complete = true;
                    self.state = if block.status.is_interim() {
                        State::Status
                    } else {
                        State::Done
                    };
                } else {
                    self.lines.push(Span::new(&line));
                    block.end_line = self.lines.len();
                }
                Ok(())
            }
            State::Done | State::Failed(_) => Ok(()),
        }
    }

    /// Adds a head read over HTTP/2 (`proto::http2`), as the lines curl prints:
    /// `HTTP/2 {status}`, then each `name: value`. The caller enforces the cap, which
    /// HTTP/2 counts on the decoded fields.
    pub fn push_h2_block(&mut self, status: u16, fields: &[Vec<u8>]) {
        self.push_framed_block(2, status, fields);
    }

    /// Adds a head read over HTTP/3 (`proto::http3`): `HTTP/3 {status}`, then the
    /// fields, as `push_h2_block`.
    pub fn push_h3_block(&mut self, status: u16, fields: &[Vec<u8>]) {
        self.push_framed_block(3, status, fields);
    }

    fn push_framed_block(&mut self, major: u8, status: u16, fields: &[Vec<u8>]) {
        if !matches!(self.state, State::Status) {
            return;
        }
        self.buf.truncate(self.filled);
        let push_line = |buf: &mut Vec<u8>, lines: &mut Vec<Span>, line: &[u8]| {
            let start = buf.len();
            buf.extend_from_slice(line);
            lines.push(Span::new(&(start..buf.len())));
            buf.extend_from_slice(b"\r\n");
        };
        let first_line = self.lines.len();
        push_line(
            &mut self.buf,
            &mut self.lines,
            format!("HTTP/{major} {status:03}").as_bytes(),
        );
        let reason = self.buf.len() - 2..self.buf.len() - 2;
        for field in fields {
            push_line(&mut self.buf, &mut self.lines, field);
        }
        self.buf.extend_from_slice(b"\r\n");
        let status = StatusLine {
            major,
            minor: 0,
            code: status,
            reason,
            h2: true,
        };
        let interim = status.is_interim();
        self.blocks.push(Block {
            status,
            first_line,
            end_line: self.lines.len(),
            complete: true,
        });
        self.filled = self.buf.len();
        self.scanned = self.filled;
        self.line_start = self.filled;
        self.state = if interim { State::Status } else { State::Done };
    }

    /// The peer closed the connection: a first line that had not ended but can no longer
    /// be a status line makes this `NotHttp` (otherwise the head is just incomplete).
    pub fn at_eof(&mut self) -> Option<HeadError> {
        if self.state == State::Status
            && self.line_start < self.filled
            && matches!(
                match_status(&self.buf[self.line_start..self.filled], false),
                Match::No
            )
        {
            self.state = State::Failed(HeadError::NotHttp);
            return Some(HeadError::NotHttp);
        }
        None
    }

    /// Whether the final head was read to its blank line.
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// Whether any byte was received.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// How many complete status and header lines were read.
    pub fn line_count(&self) -> usize {
        self.lines.len()
    }

    /// Complete line `i` (status or header, CR dropped).
    pub fn line(&self, i: usize) -> &[u8] {
        self.lines[i].of(&self.buf)
    }

    /// Every complete status and header line, in order.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.lines.iter().map(|span| span.of(&self.buf))
    }

    /// The response heads seen so far, interim ones first.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// The final (non-interim) response, if its status line was read.
    pub fn final_block(&self) -> Option<&Block> {
        self.blocks.last().filter(|b| !b.status.is_interim())
    }

    /// The interim (1xx) responses read.
    pub fn interim_blocks(&self) -> &[Block] {
        match self.final_block() {
            Some(_) => &self.blocks[..self.blocks.len() - 1],
            None => &self.blocks,
        }
    }

    /// The reason phrase of `block` (possibly empty).
    pub fn reason(&self, block: &Block) -> &[u8] {
        &self.buf[block.status.reason.clone()]
    }

    /// The header fields of `block` as `(name, value)`: split at the first colon, value
    /// trimmed; no colon gives an empty value; obs-fold lines join the previous value.
    pub fn headers(&self, block: &Block) -> Vec<Field<'_>> {
        let mut out: Vec<Field> = Vec::new();
        for i in block.first_line + 1..block.end_line {
            let line = self.line(i);
            if matches!(line.first(), Some(b' ' | b'\t')) {
                if let Some((_, value)) = out.last_mut() {
                    let more = trim(line);
                    if !more.is_empty() {
                        let v = value.to_mut();
                        if !v.is_empty() {
                            v.push(b' ');
                        }
                        v.extend_from_slice(more);
                    }
                    continue;
                }
            }
            match line.iter().position(|&b| b == b':') {
                Some(colon) => out.push((
                    Cow::Borrowed(&line[..colon]),
                    Cow::Borrowed(trim(&line[colon + 1..])),
                )),
                None => out.push((Cow::Borrowed(trim(line)), Cow::Borrowed(&[]))),
            }
        }
        out
    }

    /// After `NotHttp`: the offending line (up to its end or what was read), at most
    /// `BANNER_MAX` bytes, CR dropped.
    pub fn banner(&self) -> &[u8] {
        let rest = &self.buf[self.line_start.min(self.filled)..self.filled];
        let line = match rest.iter().position(|&b| b == b'\n') {
            Some(lf) => &rest[..lf],
            None => rest,
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        &line[..line.len().min(BANNER_MAX)]
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;

    /// What a parse came to, in a form tests can compare.
    #[derive(Debug, PartialEq)]
    struct Outcome {
        result: Result<Progress, HeadError>,
        lines: Vec<String>,
        status: Option<(u8, u8, u16, String)>,
        headers: Vec<(String, String)>,
        interim: Vec<u16>,
        banner: String,
    }

    fn outcome(p: &HeadParser, result: Result<Progress, HeadError>) -> Outcome {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Outcome {
            result,
            lines: p.lines().map(s).collect(),
            status: p.final_block().map(|b| {
                (
                    b.status.major,
                    b.status.minor,
                    b.status.code,
                    s(p.reason(b)),
                )
            }),
            headers: p
                .final_block()
                .map(|b| p.headers(b))
                .unwrap_or_default()
                .iter()
                .map(|(n, v)| (s(n), s(v)))
                .collect(),
            interim: p.interim_blocks().iter().map(|b| b.status.code).collect(),
            banner: if result == Err(HeadError::NotHttp) {
                s(p.banner())
            } else {
                String::new()
            },
        }
    }

    fn parse_whole(bytes: &[u8], max: usize) -> Outcome {
        let mut p = HeadParser::new(max);
        let r = p.feed(bytes);
        outcome(&p, r)
    }

    fn parse_bytewise(bytes: &[u8], max: usize) -> Outcome {
        let mut p = HeadParser::new(max);
        let mut r = Ok(Progress::Partial);
        for b in bytes {
            r = p.feed(std::slice::from_ref(b));
            if r != Ok(Progress::Partial) {
                break;
            }
        }
        outcome(&p, r)
    }

    fn hdrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn heads_parse_the_same_whole_and_byte_by_byte() {
        use HeadError::*;
        use Progress::*;
        let st = |maj, min, code, r: &str| Some((maj, min, code, r.to_string()));
        type Case<'a> = (
            &'a [u8],
            Result<Progress, HeadError>,
            Option<(u8, u8, u16, String)>,
            Vec<(String, String)>,
            Vec<u16>,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            (
                b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 3\r\n\r\nok\n",
                Ok(Complete),
                st(1, 1, 200, "OK"),
                hdrs(&[("Server", "nginx"), ("Content-Length", "3")]),
                vec![],
                "",
            ),
            (
                b"HTTP/1.0 302 Moved Temporarily\nLocation: /x\n\n",
                Ok(Complete),
                st(1, 0, 302, "Moved Temporarily"),
                hdrs(&[("Location", "/x")]),
                vec![],
                "",
            ),
            (b"HTTP/1.1 204\r\n\r\n", Ok(Complete), st(1, 1, 204, ""), vec![], vec![], ""),
            (
                b"HTTP/1.1   404   Not  Found  \r\n\r\n",
                Ok(Complete),
                st(1, 1, 404, "Not  Found"),
                vec![],
                vec![],
                "",
            ),
            (
                b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nA: 1\r\n\r\n",
                Ok(Complete),
                st(1, 1, 200, "OK"),
                hdrs(&[("A", "1")]),
                vec![103, 100],
                "",
            ),
            (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
                Ok(Complete),
                st(1, 1, 101, "Switching Protocols"),
                hdrs(&[("Upgrade", "websocket")]),
                vec![],
                "",
            ),
            (
                b"HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\n\tc\r\nSet-Cookie: 1\r\nSet-Cookie: 2\r\nNoColon\r\nE:\r\nX: :v: \r\n\r\n",
                Ok(Complete),
                st(1, 1, 200, "OK"),
                hdrs(&[
                    ("X-Long", "a b c"),
                    ("Set-Cookie", "1"),
                    ("Set-Cookie", "2"),
                    ("NoColon", ""),
                    ("E", ""),
                    ("X", ":v:"),
                ]),
                vec![],
                "",
            ),
            (b"HTTP/1.1 200 OK\r\nServer: x\r\n", Ok(Partial), st(1, 1, 200, "OK"), hdrs(&[("Server", "x")]), vec![], ""),
            (b"HTTP/1.", Ok(Partial), None, vec![], vec![], ""),
            (b"SSH-2.0-OpenSSH_9.6\r\n", Err(NotHttp), None, vec![], vec![], "SSH-2.0-OpenSSH_9.6"),
            (b"220 smtp ready\r\n", Err(NotHttp), None, vec![], vec![], "220 smtp ready"),
            (b"\x15\x03\x01\x00\x02\x02\x0a", Err(NotHttp), None, vec![], vec![], "\x15\x03\x01\x00\x02\x02"),
            (b"HTTP/2 200\r\n\r\n", Err(NotHttp), None, vec![], vec![], "HTTP/2 200"),
            (b"HTTP/1.1 2000 OK\r\n\r\n", Err(NotHttp), None, vec![], vec![], "HTTP/1.1 2000 OK"),
            (b"HTTP/1.1 20 OK\r\n\r\n", Err(NotHttp), None, vec![], vec![], "HTTP/1.1 20 OK"),
            (b"HTTP/1.1200 OK\r\n\r\n", Err(NotHttp), None, vec![], vec![], "HTTP/1.1200 OK"),
            (b"\r\nHTTP/1.1 200 OK\r\n\r\n", Err(NotHttp), None, vec![], vec![], ""),
            (
                b"HTTP/1.1 103 Early Hints\r\n\r\n<html>\r\n",
                Err(NotHttp),
                None,
                vec![],
                vec![103],
                "<html>",
            ),
        ];
        for (input, result, status, headers, interim, banner) in cases {
            let want = Outcome {
                result,
                lines: parse_whole(input, 65536).lines,
                status,
                headers,
                interim,
                banner: banner.to_string(),
            };
            let whole = parse_whole(input, 65536);
            assert_eq!(whole, want, "whole {:?}", String::from_utf8_lossy(input));
            // Byte by byte, a non-HTTP first line is caught at its first wrong byte, so
            // the banner holds what had arrived by then: a prefix of the whole line.
            let mut bytewise = parse_bytewise(input, 65536);
            assert!(want.banner.starts_with(&bytewise.banner), "{input:?}");
            if want.result == Err(HeadError::NotHttp) {
                assert!(
                    !bytewise.banner.is_empty() || want.banner.is_empty(),
                    "{input:?}"
                );
            }
            bytewise.banner = want.banner.clone();
            assert_eq!(
                bytewise,
                want,
                "bytewise {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn text_lines_are_raw() {
        let out = parse_whole(b"HTTP/1.1 200 OK\r\nA: 1\r\n  folded\r\n\r\nbody", 100);
        assert_eq!(out.lines, ["HTTP/1.1 200 OK", "A: 1", "  folded"]);
    }

    #[test]
    fn the_cap_counts_every_byte_of_the_block() {
        let head = b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\n"; // 25 bytes
        assert_eq!(parse_whole(head, head.len()).result, Ok(Progress::Complete));
        let over = parse_whole(head, head.len() - 1);
        assert_eq!(over.result, Err(HeadError::TooLarge));
        assert_eq!(over.lines, ["HTTP/1.1 200 OK", "A: 1"]);
        let over = parse_bytewise(head, 20);
        assert_eq!(over.result, Err(HeadError::TooLarge));
        assert_eq!(over.lines, ["HTTP/1.1 200 OK"]);
        // Interim blocks count too.
        let interim = b"HTTP/1.1 103 E\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
        assert_eq!(parse_whole(interim, 30).result, Err(HeadError::TooLarge));
        // A long line without a newline stops at the cap instead of buffering forever.
        let long = [b"HTTP/1.1 200 OK\r\nX: ".as_slice(), &[b'a'; 100_000]].concat();
        let out = parse_whole(&long, 65536);
        assert_eq!(out.result, Err(HeadError::TooLarge));
        assert_eq!(out.lines, ["HTTP/1.1 200 OK"]);
    }

    #[test]
    fn read_buf_never_offers_past_the_cap() {
        let mut p = HeadParser::new(10);
        assert_eq!(p.read_buf().len(), 10);
        p.read_buf()[..4].copy_from_slice(b"HTTP");
        assert_eq!(p.commit(4), Ok(Progress::Partial));
        assert_eq!(p.read_buf().len(), 6);
        let mut done = HeadParser::new(1000);
        assert_eq!(
            done.feed(b"HTTP/1.0 200 OK\n\nbody"),
            Ok(Progress::Complete)
        );
        assert!(done.read_buf().is_empty());
    }

    #[test]
    fn a_trickled_status_line_costs_linear_time() {
        // Found by fuzzing: each read rescanned the unfinished status line and re-zeroed
        // the buffer, so a peer sending one byte at a time cost quadratic time. Compare
        // how the cost scales (16x the input) rather than any absolute time.
        fn best_of_3(spaces: usize) -> std::time::Duration {
            let mut line = b"HTTP/1.1".to_vec();
            line.extend(std::iter::repeat_n(b' ', spaces));
            line.extend_from_slice(b"200 OK\r\n\r\n");
            (0..3)
                .map(|_| {
                    let started = std::time::Instant::now();
                    assert_eq!(
                        parse_bytewise(&line, 1 << 20).result,
                        Ok(Progress::Complete)
                    );
                    started.elapsed()
                })
                .min()
                .unwrap()
        }
        let small = best_of_3(4_000);
        let large = best_of_3(64_000);
        let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-9);
        assert!(
            ratio < 64.0,
            "16x the bytes took {ratio:.0}x the time ({small:?} -> {large:?})"
        );
    }

    #[test]
    fn garbage_past_the_early_window_is_judged_at_the_line_end_or_eof() {
        let mut junk = b"HTTP/1.1".to_vec();
        junk.extend(std::iter::repeat_n(b' ', 40));
        junk.extend_from_slice(b"nope");
        let mut p = HeadParser::new(65536);
        assert_eq!(p.feed(&junk), Ok(Progress::Partial));
        assert_eq!(p.at_eof(), Some(HeadError::NotHttp));
        let mut p = HeadParser::new(65536);
        junk.extend_from_slice(b"\r\n");
        assert_eq!(p.feed(&junk), Err(HeadError::NotHttp));
        let mut cut = HeadParser::new(65536);
        assert_eq!(cut.feed(b"HTTP/1.1 20"), Ok(Progress::Partial));
        assert_eq!(
            cut.at_eof(),
            None,
            "a status line cut short is incomplete, not garbage"
        );
    }

    #[test]
    fn banner_is_capped() {
        let long = vec![b'x'; 2000];
        let mut p = HeadParser::new(65536);
        assert_eq!(p.feed(&long), Err(HeadError::NotHttp));
        assert_eq!(p.banner().len(), BANNER_MAX);
    }
}
