//! The checks behind the fuzz targets, and behind the corpus replay and property tests
//! (`tests/suite/properties.rs`): one copy, included with `#[path]` by both, so the fuzzers
//! and `cargo test` can never check different things.
#![allow(dead_code)]

use headprobe::proto::http::{Block, Field, HeadError, HeadParser, Progress};
use headprobe::proto::request::{HttpVersion, RequestTemplate};
use headprobe::proto::target::{self, Defaults};
use headprobe::report::sanitize::{escape, escape_into};

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
    let (lens, max, response): (Vec<usize>, usize, &[u8]) = match data.split_first() {
        Some((&ctl, rest)) if ctl < 0x10 => {
            let k = usize::from(ctl & 7).min(rest.len());
            let (lens, rest) = rest.split_at(k);
            let (max, rest) = match rest.split_first() {
                Some((&cap, rest)) if ctl & 8 != 0 => (16 + 4 * usize::from(cap), rest),
                _ => (65536, rest),
            };
            let lens: Vec<usize> = lens.iter().map(|&b| usize::from(b)).collect();
            (if lens.is_empty() { vec![1] } else { lens }, max, rest)
        }
        _ => (DEFAULT_LENS.to_vec(), 65536, data),
    };
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
