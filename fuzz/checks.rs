//! The checks behind the fuzz targets, and behind the corpus replay and property tests
//! (`tests/suite/properties.rs`): one copy, included with `#[path]` by both, so the fuzzers
//! and `cargo test` can never check different things.
#![allow(dead_code)]

use headprobe::proto::http::{Block, Field, HeadError, HeadParser, Progress};
use headprobe::proto::http2::{ErrorCode, H2Error, Reader, DEBUG_MAX};
use headprobe::proto::proxy::{
    parse_socks4_reply, parse_socks5_auth_reply, parse_socks5_choice, parse_socks5_reply,
    socks4_request, socks5_auth_request, socks_connect_request, Reply, Socks4Dest, SocksError,
    SOCKS4_FIELD_MAX,
};
use headprobe::proto::request::{HttpVersion, RequestTemplate};
use headprobe::proto::target::{self, Defaults, Host};
use headprobe::report::sanitize::{escape, escape_into, quote_peer};

pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;
pub type Check = fn(&[u8]);

/// Everything a caller can observe of a `HeadParser` after a parse.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub result: Result<Progress, HeadError>,
    pub complete: bool,
    pub empty: bool,
    pub lines: Vec<Vec<u8>>,
    pub blocks: Vec<Block>,
    /// Per block: status code, reason, headers.
    pub heads: Vec<(u16, Vec<u8>, Pairs)>,
    pub final_code: Option<u16>,
    pub interim: Vec<u16>,
    pub banner: Vec<u8>,
}

pub fn pairs(fields: Vec<Field<'_>>) -> Pairs {
    fields
        .into_iter()
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect()
}

pub fn is_space(b: &u8) -> bool {
    *b == b' ' || *b == b'\t'
}

/// Calls every accessor, checks what holds of any parser state, and records it all.
pub fn snapshot(p: &HeadParser, result: Result<Progress, HeadError>) -> Snapshot {
    let lines: Vec<Vec<u8>> = p.lines().map(<[u8]>::to_vec).collect();
    assert_eq!(p.line_count(), lines.len());
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(p.line(i), &line[..]);
        assert!(!line.contains(&b'\n'), "a line holds a LF: {line:?}");
        assert!(!line.is_empty(), "blank lines are not kept");
    }
    let blocks = p.blocks().to_vec();
    let heads: Vec<_> = blocks
        .iter()
        .map(|b| {
            let headers = pairs(p.headers(b));
            for (name, value) in &headers {
                assert!(!name.contains(&b':'), "name {name:?} holds a colon");
                assert!(
                    value.first().is_none_or(|b| !is_space(b))
                        && value.last().is_none_or(|b| !is_space(b)),
                    "value {value:?} is not trimmed"
                );
            }
            (b.status.code, p.reason(b).to_vec(), headers)
        })
        .collect();
    // Every block but the last was read to its blank line and is interim.
    if let Some((last, done)) = blocks.split_last() {
        assert!(done.iter().all(|b| b.complete && b.status.is_interim()));
        assert!(!last.complete || last.status.is_interim() != p.is_complete());
    }
    let final_code = p.final_block().map(|b| b.status.code);
    let interim: Vec<u16> = p.interim_blocks().iter().map(|b| b.status.code).collect();
    assert_eq!(
        interim.len() + usize::from(final_code.is_some()),
        blocks.len()
    );
    assert!(p.final_block().is_none_or(|b| !b.status.is_interim()));
    assert_eq!(p.is_complete(), result == Ok(Progress::Complete));
    if p.is_complete() {
        assert!(p.final_block().is_some_and(|b| b.complete));
    }
    let banner = p.banner().to_vec();
    assert!(banner.len() <= headprobe::proto::http::BANNER_MAX);
    assert!(!banner.contains(&b'\n'));
    Snapshot {
        result,
        complete: p.is_complete(),
        empty: p.is_empty(),
        lines,
        blocks,
        heads,
        final_code,
        interim,
        banner,
    }
}

/// Feeds `data` in one `feed` call.
pub fn parse_whole(data: &[u8], max: usize) -> Snapshot {
    let mut p = HeadParser::new(max);
    let r = p.feed(data);
    snapshot(&p, r)
}

/// Feeds `data` through `read_buf`/`commit`, as the probe does, in chunks whose lengths
/// cycle through `lens` (0 counts as 1), then checks the parser's answer is sticky.
pub fn parse_chunked(data: &[u8], lens: &[usize], max: usize) -> Snapshot {
    let mut p = HeadParser::new(max);
    let mut r = p.feed(&[]);
    let mut rest = data;
    let mut committed = 0;
    for len in lens.iter().cycle() {
        if rest.is_empty() || r != Ok(Progress::Partial) {
            break;
        }
        let room = p.read_buf();
        assert!(!room.is_empty(), "a partial parser offers no room");
        let n = (*len).max(1).min(rest.len()).min(room.len());
        room[..n].copy_from_slice(&rest[..n]);
        r = p.commit(n);
        committed += n;
        rest = &rest[n..];
    }
    assert!(
        committed <= max,
        "read {committed} bytes past the cap {max}"
    );
    let seen = snapshot(&p, r);
    if r != Ok(Progress::Partial) {
        assert!(
            p.read_buf().is_empty(),
            "a finished parser still offers room"
        );
        assert_eq!(
            p.feed(b"HTTP/1.1 200 OK\r\n\r\n"),
            r,
            "the answer is not sticky"
        );
        assert_eq!(snapshot(&p, r), seen);
    }
    seen
}

/// Whole and chunked parses agree, except for the banner: a non-HTTP line is caught at
/// the first read that shows a wrong byte, so the banner holds what had arrived by then,
/// and `feed` reads in steps of its own (1024 bytes, then doubling). Either banner may
/// be the shorter, but both are the start of the same line.
pub fn check_split(data: &[u8], lens: &[usize], max: usize) -> Snapshot {
    let whole = parse_whole(data, max);
    let mut chunked = parse_chunked(data, lens, max);
    if whole.result == Err(HeadError::NotHttp) && chunked.result == whole.result {
        let (a, b) = (&whole.banner, &chunked.banner);
        assert!(
            a.starts_with(b) || b.starts_with(a),
            "banners {:?} and {:?} are not the start of one line",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        );
        chunked.banner.clone_from(&whole.banner);
    }
    assert_eq!(chunked, whole, "chunks {lens:?}, max {max}");
    whole
}

/// Chunk lengths used for a head-parser input that does not start with a control byte.
pub const DEFAULT_LENS: &[usize] = &[1, 7, 2, 13, 3, 64, 1, 1, 5];

/// The `head_parser` fuzz input: when the first byte is below 0x10, its low 3 bits are
/// how many chunk-length bytes follow (none: byte by byte), and bit 3 says one more byte
/// sets a small cap (16 + 4·b); the rest is the response. Otherwise the whole input is
/// the response, fed in `DEFAULT_LENS` chunks, capped at 65536 (the default).
pub fn check_head_parser(data: &[u8]) {
    let (lens, max, response) = chunk_plan(data, |ctl| ctl < 0x10, 4, DEFAULT_LENS);
    check_split(response, &lens, max);
}

pub fn check_target_grammar(data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let with_tls = Defaults {
        https: true,
        ..Defaults::default()
    };
    for defaults in [Defaults::default(), with_tls] {
        let Ok(t) = target::parse(token, &defaults) else {
            continue;
        };
        let host_header = t.host_header();
        // Nothing from the token may split the request or reach the terminal raw.
        for part in [&host_header, &t.path, &t.host.to_string()] {
            assert!(
                !part.chars().any(|c| c.is_whitespace() || c.is_control()),
                "{token:?} gave {part:?}"
            );
        }
        assert_ne!(t.port, 0, "{token:?}");
        assert!(t.path.starts_with('/'), "{token:?} gave path {:?}", t.path);
        let request = RequestTemplate::new("GET", HttpVersion::Http10, &[]).render(&t);
        assert_eq!(
            request.iter().filter(|&&b| b == b'\n').count(),
            5,
            "{token:?}"
        );
        // The canonical URL of a target parses back to that target.
        let url = format!("{}://{host_header}{}", t.scheme.name(), t.path);
        assert_eq!(
            target::parse(&url, &defaults).as_ref(),
            Ok(&t),
            "{token:?} → {url:?}"
        );
    }
}

/// Reverses the sanitiser for input without backslashes (where `\xNN` is unambiguous).
pub fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let escaped = bytes.get(i..i + 4).filter(|e| e.starts_with(b"\\x"));
            let hex = escaped.unwrap_or_else(|| panic!("a bare backslash in {text:?}"));
            let hex = std::str::from_utf8(&hex[2..]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

pub fn check_sanitize(data: &[u8]) {
    for escape_tab in [false, true] {
        let mut out = b"kept>".to_vec();
        escape_into(&mut out, data, escape_tab);
        let text = std::str::from_utf8(&out)
            .unwrap_or_else(|e| panic!("{data:?} escaped to invalid UTF-8: {e}"));
        let text = text
            .strip_prefix("kept>")
            .expect("escape_into keeps what was there");
        assert_eq!(escape(data, escape_tab), text);
        if let Some(c) = text.chars().find(|&c| {
            (c.is_control() && (c != '\t' || escape_tab)) || ('\u{80}'..='\u{9f}').contains(&c)
        }) {
            panic!("{data:?} (escape_tab {escape_tab}) let {c:?} through: {text:?}");
        }
        if data.iter().all(|b| (0x20..0x7f).contains(b)) {
            assert_eq!(text.as_bytes(), data, "printable ASCII was changed");
        }
        if !data.contains(&b'\\') {
            assert_eq!(unescape(text), data, "escaping lost information: {text:?}");
        }
    }
}

/// A DNS reply read as the answer to a query for `a.test` (A, or AAAA when the first
/// byte is odd; ID 0x0102, which seeds carry): never panics; the addresses returned are
/// all of the asked family; a truncated reply carries none. Also resolv.conf and hosts
/// text never panic, and their search list respects DNS length limits.
pub fn check_dns_reply(data: &[u8]) {
    use headprobe::proto::dns::conf::{Hosts, ResolvConf};
    use headprobe::proto::dns::message::{parse_reply, QType};
    let qtype = if data.first().is_some_and(|b| b % 2 == 1) {
        QType::Aaaa
    } else {
        QType::A
    };
    if let Ok(reply) = parse_reply(data, 0x0102, "a.test", qtype) {
        assert!(
            reply
                .addrs
                .iter()
                .all(|ip| ip.is_ipv6() == (qtype == QType::Aaaa)),
            "{reply:?}"
        );
        assert!(!reply.truncated || reply.addrs.is_empty(), "{reply:?}");
        assert_eq!(
            reply.ttl.is_some() && !reply.addrs.is_empty(),
            !reply.addrs.is_empty()
        );
    }
    let text = String::from_utf8_lossy(data);
    let conf = ResolvConf::parse(&text);
    assert!(conf.ndots <= 15);
    for name in ["a", "a.b", "a.b."] {
        for candidate in conf.candidates(name) {
            assert!(candidate.len() <= 253 || candidate == name, "{candidate}");
        }
    }
    let _ = Hosts::parse(&text).get("a.test");
}

// ---------------------------------------------------------------------------------------
// SOCKS messages
// ---------------------------------------------------------------------------------------

/// A SOCKS reply parser, as `net::tunnel` drives it.
pub type SocksParse = fn(&[u8]) -> Result<Reply<String>, SocksError>;

/// The parsers under test, each with the longest message it may ask for. Answers are
/// compared as their debug text, so one driver serves them all.
pub const SOCKS_PARSERS: [(&str, SocksParse, usize); 4] = [
    (
        "socks5 choice",
        |b| parse_socks5_choice(b).map(debug_reply),
        2,
    ),
    (
        "socks5 auth",
        |b| Ok(debug_reply(parse_socks5_auth_reply(b))),
        2,
    ),
    (
        "socks5 reply",
        |b| parse_socks5_reply(b).map(debug_reply),
        4 + 1 + 255 + 2,
    ),
    (
        "socks4 reply",
        |b| parse_socks4_reply(b).map(debug_reply),
        8,
    ),
];

fn debug_reply<T: std::fmt::Debug>(r: Reply<T>) -> Reply<String> {
    match r {
        Reply::Need(n) => Reply::Need(n),
        Reply::Done(t) => Reply::Done(format!("{t:?}")),
    }
}

/// Drives `parse` over `input` as the handshake does, a byte at a time (the worst case
/// of short reads): it must ask for more than it has and never past its longest message,
/// and what it answers must not change when more bytes follow (the tunnel behind the
/// reply is never its business); an error must show in its message only escaped bytes.
pub fn check_socks_parser(name: &str, parse: SocksParse, longest: usize, input: &[u8]) {
    let mut have = 0;
    let answer = loop {
        match parse(&input[..have]) {
            Ok(Reply::Need(n)) => {
                assert!(n > have, "{name}: asks for {n} bytes with {have} in hand");
                assert!(n <= longest, "{name}: asks for {n} > {longest} bytes");
                if have == input.len() {
                    return;
                }
                have += 1;
            }
            other => break other,
        }
    };
    // The same answer with the rest of the input behind it, and once more from scratch.
    for more in [&input[..have], input] {
        match (&answer, parse(more)) {
            (Ok(a), Ok(b)) => assert_eq!(a, &b, "{name}: {more:?}"),
            (Err(a), Err(b)) => assert_eq!(
                std::mem::discriminant(a),
                std::mem::discriminant(&b),
                "{name}: {more:?}"
            ),
            (a, b) => panic!("{name}: {a:?} then {b:?} for {more:?}"),
        }
    }
    if let Err(e) = &answer {
        let text = headprobe::net::tunnel::describe(e);
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() || ('\u{80}'..='\u{9f}').contains(&c)),
            "{name}: raw bytes in {text:?}"
        );
    }
}

/// Reads a NUL-terminated field of a SOCKS4 request, as a server does.
fn nul_field(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let nul = bytes.iter().position(|&b| b == 0)?;
    Some((&bytes[..nul], &bytes[nul + 1..]))
}

/// The request builders on arbitrary user ids, passwords and names: refused with a reason,
/// or bytes that a server reads back to exactly what was given.
pub fn check_socks_requests(data: &[u8]) {
    let (port, rest) = match data {
        [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
        _ => (80, data),
    };
    let mut parts = rest.splitn(2, |&b| b == 0xff);
    let (Ok(user), Ok(name)) = (
        std::str::from_utf8(parts.next().unwrap_or_default()),
        std::str::from_utf8(parts.next().unwrap_or_default()),
    ) else {
        return;
    };
    let field_ok = |s: &str| !s.contains('\0') && s.len() <= SOCKS4_FIELD_MAX;

    let ip = std::net::Ipv4Addr::new(192, 0, 2, 1);
    match socks4_request(Socks4Dest::Ip(ip), port, user) {
        Ok(req) => {
            assert!(field_ok(user), "accepted user id {user:?}");
            assert_eq!(
                &req[..8],
                &[&[4, 1][..], &port.to_be_bytes(), &ip.octets()].concat()[..]
            );
            assert_eq!(nul_field(&req[8..]), Some((user.as_bytes(), &[][..])));
        }
        Err(e) => assert!(!field_ok(user), "refused user id {user:?}: {e}"),
    }
    match socks4_request(Socks4Dest::Name(name), port, user) {
        Ok(req) => {
            assert!(
                field_ok(user) && field_ok(name) && !name.is_empty(),
                "{user:?} {name:?}"
            );
            assert_eq!(
                &req[4..8],
                &[0, 0, 0, 1],
                "SOCKS4a marks a name with 0.0.0.x"
            );
            let (u, rest) = nul_field(&req[8..]).expect("user id ends in NUL");
            let (n, rest) = nul_field(rest).expect("name ends in NUL");
            assert_eq!((u, n, rest), (user.as_bytes(), name.as_bytes(), &[][..]));
        }
        Err(_) => assert!(!(field_ok(user) && field_ok(name) && !name.is_empty())),
    }
    match socks5_auth_request(user, name) {
        Ok(req) => {
            assert!(user.len() <= 255 && name.len() <= 255);
            let ulen = usize::from(req[1]);
            assert_eq!(req[0], 1);
            assert_eq!(&req[2..2 + ulen], user.as_bytes());
            assert_eq!(usize::from(req[2 + ulen]), name.len());
            assert_eq!(&req[3 + ulen..], name.as_bytes());
        }
        Err(_) => assert!(user.len() > 255 || name.len() > 255),
    }
    match socks_connect_request(&Host::Name(name.to_string()), port) {
        Ok(req) => {
            assert_eq!(&req[..4], &[5, 1, 0, 3]);
            assert_eq!(usize::from(req[4]), name.len());
            assert_eq!(&req[5..5 + name.len()], name.as_bytes());
            assert_eq!(&req[5 + name.len()..], &port.to_be_bytes());
        }
        Err(_) => assert!(name.len() > 255),
    }
}

/// The `socks_messages` fuzz input: the first byte picks what is checked (0 to 3 a reply
/// parser from `SOCKS_PARSERS`, 4 the request builders), the rest is its input.
pub fn check_socks_messages(data: &[u8]) {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    match usize::from(selector % 5) {
        4 => check_socks_requests(input),
        i => {
            let (name, parse, longest) = SOCKS_PARSERS[i];
            check_socks_parser(name, parse, longest, input);
        }
    }
}

// ---------------------------------------------------------------------------------------
// HTTP/2 frame reader
// ---------------------------------------------------------------------------------------

/// Everything a caller can observe of an HTTP/2 `Reader` (and the `HeadParser` it writes
/// into) after a conversation.
#[derive(Debug, PartialEq)]
pub struct H2Snapshot {
    pub result: Result<Progress, H2Error>,
    pub head: Snapshot,
    pub saw_settings: bool,
    pub acked: bool,
    pub goaway: Option<ErrorCode>,
    /// Everything `outgoing` handed over, in order.
    pub outgoing: Vec<u8>,
}

/// Chunk lengths for an `h2_reader` input without a control byte: cuts inside frame
/// headers (1, 8, 2) and at their end (9), and the probe's own 4096-byte reads.
pub const H2_LENS: &[usize] = &[1, 8, 2, 9, 13, 3, 64, 1, 4096, 5];

/// What the `Reader` answers the server must be frames of nine-byte headers whose
/// lengths match: a SETTINGS acknowledgement (empty) or a PING acknowledgement (eight
/// bytes), on stream 0. Returns how many SETTINGS acknowledgements there are.
pub fn check_h2_outgoing(out: &[u8]) -> usize {
    let mut rest = out;
    let mut settings_acks = 0;
    while !rest.is_empty() {
        assert!(rest.len() >= 9, "a cut frame header in {out:?}");
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let (kind, flags) = (rest[3], rest[4]);
        let stream = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]);
        assert!(
            rest.len() >= 9 + len,
            "a frame longer than its bytes in {out:?}"
        );
        match (kind, len) {
            (0x4, 0) => settings_acks += 1,
            (0x6, 8) => {}
            _ => panic!("the client answers with a frame of type {kind:#x}, {len} bytes"),
        }
        assert_eq!(flags, 0x1, "an answer without ACK");
        assert_eq!(stream, 0, "an answer on stream {stream}");
        rest = &rest[9 + len..];
    }
    settings_acks
}

/// Whether text a `Debug` rendering shows holds a control character. `Debug` of a `str`
/// writes those as escapes (`\n`, `\0`, `\u{1b}`, `\u{85}`), and any other backslash
/// as `\\` (a quote as `\"`): so this holds of an error whatever shape its payloads take.
pub fn debug_shows_control(text: &str) -> bool {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c.is_control() {
            return true;
        }
        if c == '\\' && !matches!(chars.next(), Some('\\' | '"' | '\'')) {
            return true;
        }
    }
    false
}

/// An error's words hold no control character, and what it keeps of peer bytes is
/// bounded and, quoted as the messages quote it, printable.
pub fn check_h2_error(e: &H2Error) {
    let debug = format!("{e:?}");
    assert!(
        !debug_shows_control(&debug),
        "a control character in the error {debug}"
    );
    // What any variant keeps of peer bytes is cut (GOAWAY debug data to DEBUG_MAX, a
    // quoted name or value to a few dozen bytes, an HTTP/1 line to 80), whatever shape
    // its payload has: `Debug` shows a byte in at most 5 characters.
    assert!(
        debug.len() <= 5 * DEBUG_MAX + 512,
        "an error keeps {} characters of text: {debug}",
        debug.len()
    );
    let printable = |s: &str| {
        !s.chars()
            .any(|c| c.is_control() || ('\u{80}'..='\u{9f}').contains(&c))
    };
    match e {
        H2Error::Http1(line) => {
            assert!(line.starts_with(b"HTTP/"), "{debug}");
            assert!(line.len() <= 80, "{debug}");
            assert!(!line.contains(&b'\r') && !line.contains(&b'\n'), "{debug}");
            assert!(printable(&quote_peer(line, 80)), "{debug}");
        }
        H2Error::GoAway {
            code,
            last_stream,
            debug: data,
        } => {
            assert!(data.len() <= DEBUG_MAX, "{debug}");
            assert!(*last_stream <= 0x7fff_ffff, "{debug}");
            assert!(
                *last_stream == 0 || *code != ErrorCode::NO_ERROR,
                "a graceful GOAWAY covering stream 1 is an error: {debug}"
            );
            assert!(printable(&quote_peer(data, 120)), "{debug}");
            assert!(printable(&code.to_string()), "{debug}");
        }
        H2Error::Reset(code) => assert!(printable(&code.to_string()), "{debug}"),
        _ => {}
    }
}

/// The header-list size of what reached the head, counted as RFC 9113 does (name +
/// value + 32 per field, `:status` included), from the lines the reader wrote.
pub fn h2_list_size(p: &HeadParser) -> usize {
    p.lines()
        .map(|line| match line.strip_prefix(b"HTTP/2 ") {
            Some(code) => b":status".len() + code.len() + 32,
            None => line.len() - b": ".len() + 32,
        })
        .sum()
}

/// Feeds `data` to a `Reader` (capping the header list at `max`) in one `feed` call when
/// `lens` is empty, otherwise in chunks whose lengths cycle through `lens` (0 counts as
/// 1), until it answers something other than `Partial`, as the probe does; then checks
/// what holds of any reader state.
pub fn read_h2(data: &[u8], lens: &[usize], max: usize) -> H2Snapshot {
    let mut reader = Reader::new(max);
    let mut head = HeadParser::new(max);
    let mut outgoing = Vec::new();
    let mut result = Ok(Progress::Partial);
    if lens.is_empty() {
        result = reader.feed(data, &mut head);
        outgoing.extend(reader.outgoing());
    } else {
        let mut rest = data;
        for len in lens.iter().cycle() {
            if rest.is_empty() || result != Ok(Progress::Partial) {
                break;
            }
            let (chunk, more) = rest.split_at((*len).max(1).min(rest.len()));
            rest = more;
            result = reader.feed(chunk, &mut head);
            outgoing.extend(reader.outgoing());
        }
    }
    assert!(
        reader.outgoing().is_empty(),
        "outgoing() hands answers twice"
    );

    let settings_acks = check_h2_outgoing(&outgoing);
    assert_eq!(
        reader.saw_settings(),
        settings_acks > 0,
        "SETTINGS seen ({}) but {settings_acks} acknowledged",
        reader.saw_settings()
    );
    if let Some(code) = reader.goaway() {
        assert_eq!(
            code,
            ErrorCode::NO_ERROR,
            "a GOAWAY with an error is graceful"
        );
    }
    if let Err(e) = &result {
        check_h2_error(e);
        if matches!(e, H2Error::Http1(..)) {
            assert!(!reader.saw_settings() && head.is_empty());
        }
    }

    // The head: as `HeadParser::feed` would have left it, complete exactly when the
    // reader says so, every line `HTTP/2 NNN` or `name: value` of an HTTP/2 name.
    let progress = match result {
        Ok(Progress::Complete) => Ok(Progress::Complete),
        _ => Ok(Progress::Partial),
    };
    let snap = snapshot(&head, progress);
    for (b, (code, reason, headers)) in snap.blocks.iter().zip(&snap.heads) {
        assert!(b.status.is_h2() && b.complete, "{b:?}");
        assert!(
            headprobe::proto::http::STATUS_RANGE.contains(code) && *code != 101,
            "status {code}"
        );
        assert!(
            reason.is_empty(),
            "an HTTP/2 status line with a reason {reason:?}"
        );
        for (name, _) in headers {
            assert!(
                !name.is_empty()
                    && name.iter().all(|&c| {
                        c.is_ascii_lowercase()
                            || c.is_ascii_digit()
                            || b"!#$%&'*+-.^_`|~".contains(&c)
                    }),
                "the field name {name:?}"
            );
        }
    }
    for line in &snap.lines {
        let status_line = line.len() == 10
            && line.starts_with(b"HTTP/2 ")
            && line[7..].iter().all(u8::is_ascii_digit);
        assert!(
            status_line || line.windows(2).any(|w| w == b": "),
            "the line {line:?}"
        );
        assert!(!line.iter().any(|&c| matches!(c, 0 | b'\r')), "{line:?}");
    }
    // The decoded list never passes the cap: HTTP/2 counts it exactly (the 4 x cap slack
    // is on the compressed block only, which never reaches the head).
    let size = h2_list_size(&head);
    assert!(
        size <= max,
        "a header list of {size} bytes passed the cap {max}"
    );

    H2Snapshot {
        result,
        head: snap,
        saw_settings: reader.saw_settings(),
        acked: reader.acked(),
        goaway: reader.goaway(),
        outgoing,
    }
    .sticky(&mut reader, &mut head)
}

impl H2Snapshot {
    /// A finished head stays finished: more frames (another head for stream 1, a
    /// SETTINGS that would be answered, HTTP/1 text) change nothing and are not answered.
    /// After an error, more bytes must at least not panic.
    fn sticky(self, reader: &mut Reader, head: &mut HeadParser) -> H2Snapshot {
        let mut more = vec![0, 0, 0, 0x4, 0, 0, 0, 0, 0];
        more.extend_from_slice(&[0, 0, 1, 0x1, 0x5, 0, 0, 0, 1, 0x8d]); // :status 404
        more.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
        let again = reader.feed(&more, head);
        if self.result == Ok(Progress::Complete) {
            assert_eq!(again, Ok(Progress::Complete), "a finished reader went on");
            assert!(reader.outgoing().is_empty(), "a finished reader answers");
            let progress = Ok(Progress::Complete);
            assert_eq!(
                snapshot(head, progress),
                self.head,
                "a finished head changed"
            );
        } else {
            let _ = reader.outgoing();
        }
        self
    }
}

/// Whole and chunked reads agree, apart from the line an `Http1` error quotes: it is
/// what had arrived when `HTTP/` showed, so either may be the shorter, but both are the
/// start of the same line.
pub fn check_h2_split(data: &[u8], lens: &[usize], max: usize) -> H2Snapshot {
    let whole = read_h2(data, &[], max);
    let mut chunked = read_h2(data, lens, max);
    if let (Err(H2Error::Http1(a)), Err(H2Error::Http1(b))) = (&whole.result, &chunked.result) {
        assert!(
            a.starts_with(b) || b.starts_with(a),
            "HTTP/1 lines {:?} and {:?} are not the start of one line",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        );
        chunked.result.clone_from(&whole.result);
    }
    assert_eq!(chunked, whole, "chunks {lens:?}, max {max}");
    whole
}

/// The `h2_reader` fuzz input: when the first byte is 0xf0 or more (a frame length no
/// reader accepts, so no loss), its low 3 bits are how many chunk-length bytes follow
/// (none: byte by byte), and bit 3 says one more byte sets a small cap (16 + 8·b); the
/// rest is the server's bytes. Otherwise the whole input is the server's bytes, fed in
/// `H2_LENS` chunks, capped at 65536 (the default `--max-header-bytes`).
pub fn check_h2_reader(data: &[u8]) {
    let (lens, max, server) = chunk_plan(data, |ctl| ctl >= 0xf0, 8, H2_LENS);
    check_h2_split(server, &lens, max);
}

/// The chunked input of `head_parser` and `h2_reader`: when the first byte is a control
/// byte (`is_control`), its low 3 bits are how many chunk-length bytes follow (none:
/// byte by byte) and bit 3 says one more byte sets a small cap (16 + `cap_step`·b);
/// otherwise the whole input is fed in `default` chunks, capped at 65536. Returns the
/// chunk lengths, the cap and the bytes to feed.
fn chunk_plan<'a>(
    data: &'a [u8],
    is_control: impl Fn(u8) -> bool,
    cap_step: usize,
    default: &[usize],
) -> (Vec<usize>, usize, &'a [u8]) {
    match data.split_first() {
        Some((&ctl, rest)) if is_control(ctl) => {
            let k = usize::from(ctl & 7).min(rest.len());
            let (lens, rest) = rest.split_at(k);
            let (max, rest) = match rest.split_first() {
                Some((&cap, rest)) if ctl & 8 != 0 => (16 + cap_step * usize::from(cap), rest),
                _ => (65536, rest),
            };
            let lens: Vec<usize> = lens.iter().map(|&b| usize::from(b)).collect();
            (if lens.is_empty() { vec![1] } else { lens }, max, rest)
        }
        _ => (default.to_vec(), 65536, data),
    }
}

/// HPACK: `headprobe`'s decoder against `loona-hpack`'s, block by block, on one
/// connection's state. The first byte sets the table size the client allowed (times 32,
/// at most 4096); then each block is a length byte and that many bytes. Both decoders
/// give the same fields in order, or both refuse the block (where `loona-hpack` lets a
/// size update follow a field and this decoder does not, the fields are not compared);
/// nothing panics. A refused block ends the connection, as it does in HTTP/2.
pub fn check_hpack(data: &[u8]) {
    use headprobe::proto::hpack::{Decoder, HpackError};
    let Some((&size, mut rest)) = data.split_first() else {
        return;
    };
    let limit = (usize::from(size) * 32).min(4096);
    let mut ours = Decoder::new(limit);
    let mut theirs = loona_hpack::Decoder::new();
    theirs.set_max_allowed_table_size(limit);
    theirs.set_max_table_size(limit);
    while let Some((&len, more)) = rest.split_first() {
        let (block, after) = more.split_at(usize::from(len).min(more.len()));
        rest = after;
        let mut a: Pairs = Vec::new();
        let got = ours.decode(block, |n, v| a.push((n.to_vec(), v.to_vec())));
        let mut b: Pairs = Vec::new();
        let want = theirs.decode_with_cb(block, |n, v| b.push((n.to_vec(), v.to_vec())));
        if got == Err(HpackError::LateSizeUpdate) {
            return;
        }
        assert_eq!(
            got.is_ok(),
            want.is_ok(),
            "{block:02x?}: ours {got:?}, loona-hpack {want:?}"
        );
        assert_eq!(a, b, "{block:02x?}");
        if got.is_err() {
            return;
        }
    }
}

/// What the HTTP/3 request-stream reader (`proto::http3`) leaves behind after a feed.
#[derive(Debug, PartialEq)]
pub struct H3Snapshot {
    pub result: Result<Progress, headprobe::proto::http3::H3Error>,
    pub lines: Vec<Vec<u8>>,
    pub codes: Vec<u16>,
    pub got_any: bool,
}

/// Feeds `data` to a fresh HTTP/3 reader in chunks of `lens` (cycling; none: whole),
/// stopping at the first answer that is not `Partial`, as the conversation does.
pub fn read_h3(data: &[u8], lens: &[usize], max: usize) -> H3Snapshot {
    use headprobe::proto::http3::{H3Error, Reader};
    let mut reader = Reader::new(max);
    let mut head = HeadParser::new(max);
    let mut result = Ok(Progress::Partial);
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = match lens {
            [] => rest.len(),
            _ => lens[i % lens.len()].clamp(1, rest.len()),
        };
        i += 1;
        let (chunk, after) = rest.split_at(n);
        rest = after;
        result = reader.feed(chunk, &mut head);
        if let Ok(Progress::Complete) = result {
            assert!(head.is_complete(), "Complete with the head not complete");
        }
        if result != Ok(Progress::Partial) {
            break;
        }
    }
    if let Err(H3Error::Frame(why)) = &result {
        assert!(
            !why.chars().any(char::is_control),
            "a control character in {why:?}"
        );
    }
    // Each block's fields count name + value + 32 against the cap, as the reader does.
    let size: usize = head
        .blocks()
        .iter()
        .flat_map(|b| head.headers(b))
        .map(|(n, v)| n.len() + v.len() + 32)
        .sum::<usize>()
        + head.blocks().len() * (":status".len() + 3 + 32);
    assert!(size <= max, "decoded {size} bytes past the cap {max}");
    H3Snapshot {
        result,
        lines: head.lines().map(<[u8]>::to_vec).collect(),
        codes: head.blocks().iter().map(|b| b.status.code).collect(),
        got_any: reader.got_any(),
    }
}

/// The `h3_reader` fuzz input: as `h2_reader`'s (a first byte of 0xf0 or more is a
/// control byte: chunk lengths and an optional small cap), then the server's bytes on
/// the request stream. Fed whole and in chunks, the reader ends the same way; it never
/// panics, and what it decoded stays within the cap. QPACK's encoder must round-trip
/// through its decoder on the fields the reader saw.
pub fn check_h3_reader(data: &[u8]) {
    use headprobe::proto::qpack;
    let (lens, max, server) = chunk_plan(data, |ctl| ctl >= 0xf0, 8, H2_LENS);
    let whole = read_h3(server, &[], max);
    let chunked = read_h3(server, &lens, max);
    assert_eq!(chunked, whole, "chunks {lens:?}, max {max}");
    let fields: Pairs = whole
        .lines
        .iter()
        .filter(|l| !l.starts_with(b"HTTP/3 "))
        .filter_map(|l| {
            let at = l.windows(2).position(|w| w == b": ")?;
            Some((l[..at].to_vec(), l[at + 2..].to_vec()))
        })
        .collect();
    let section = qpack::encode(&fields);
    let mut back: Pairs = Vec::new();
    qpack::decode(&section, |n, v| back.push((n.to_vec(), v.to_vec())))
        .expect("our own section decodes");
    assert_eq!(back, fields);
}
