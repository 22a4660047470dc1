//! The response-head parser fed in chunks (through `read_buf`/`commit`, as the probe
//! reads) must end as it does fed whole; every accessor is called and checked.
//!
//! Input: when the first byte is below 0x10, its low 3 bits are how many chunk-length
//! bytes follow (none: byte by byte), and bit 3 says one more byte sets a small cap
//! (16 + 4·b); the rest is the response. Otherwise the whole input is the response, fed
//! in chunks of 1, 7, 2, 13, 3, 64, 1, 1, 5 bytes (cycling), capped at 65536.
//! Same check as `check_head_parser` in tests/properties.rs (keep them in step).
#![no_main]

use std::borrow::Cow;

use headprobe::http::{Block, HeadError, HeadParser, Progress, BANNER_MAX};
use libfuzzer_sys::fuzz_target;

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Debug, PartialEq)]
struct Snapshot {
    result: Result<Progress, HeadError>,
    complete: bool,
    empty: bool,
    lines: Vec<Vec<u8>>,
    blocks: Vec<Block>,
    heads: Vec<(u16, Vec<u8>, Pairs)>,
    final_code: Option<u16>,
    interim: Vec<u16>,
    banner: Vec<u8>,
}

fn is_space(b: &u8) -> bool {
    *b == b' ' || *b == b'\t'
}

fn snapshot(p: &HeadParser, result: Result<Progress, HeadError>) -> Snapshot {
    let lines: Vec<Vec<u8>> = p.lines().map(<[u8]>::to_vec).collect();
    assert_eq!(p.line_count(), lines.len());
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(p.line(i), &line[..]);
        assert!(!line.contains(&b'\n') && !line.is_empty(), "line {line:?}");
    }
    let blocks = p.blocks().to_vec();
    let heads: Vec<_> = blocks
        .iter()
        .map(|b| {
            let headers: Pairs = p
                .headers(b)
                .into_iter()
                .map(|(n, v): (Cow<[u8]>, Cow<[u8]>)| (n.into_owned(), v.into_owned()))
                .collect();
            for (name, value) in &headers {
                assert!(!name.contains(&b':'), "name {name:?} holds a colon");
                assert!(
                    value.first().map_or(true, |b| !is_space(b))
                        && value.last().map_or(true, |b| !is_space(b)),
                    "value {value:?} is not trimmed"
                );
            }
            (b.status.code, p.reason(b).to_vec(), headers)
        })
        .collect();
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
    assert!(p.final_block().map_or(true, |b| !b.status.is_interim()));
    assert_eq!(p.is_complete(), result == Ok(Progress::Complete));
    if p.is_complete() {
        assert!(p.final_block().is_some_and(|b| b.complete));
    }
    let banner = p.banner().to_vec();
    assert!(banner.len() <= BANNER_MAX && !banner.contains(&b'\n'));
    let (complete, empty) = (p.is_complete(), p.is_empty());
    Snapshot {
        result,
        complete,
        empty,
        lines,
        blocks,
        heads,
        final_code,
        interim,
        banner,
    }
}

fn parse_chunked(data: &[u8], lens: &[usize], max: usize) -> Snapshot {
    let mut p = HeadParser::new(max);
    let mut r = p.feed(&[]);
    let (mut rest, mut committed) = (data, 0);
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

fuzz_target!(|data: &[u8]| {
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
        _ => (vec![1, 7, 2, 13, 3, 64, 1, 1, 5], 65536, data),
    };
    let mut whole = HeadParser::new(max);
    let r = whole.feed(response);
    let whole = snapshot(&whole, r);
    let mut chunked = parse_chunked(response, &lens, max);
    if whole.result == Err(HeadError::NotHttp) && chunked.result == whole.result {
        // The banner holds what had arrived when a wrong byte was seen, and `feed` reads
        // in steps of its own: either banner may be the shorter, both start one line.
        let (a, b) = (&whole.banner, &chunked.banner);
        assert!(
            a.starts_with(b) || b.starts_with(a),
            "{chunked:?} vs {whole:?}"
        );
        chunked.banner.clone_from(&whole.banner);
    }
    assert_eq!(chunked, whole, "chunks {lens:?}, max {max}");
});
