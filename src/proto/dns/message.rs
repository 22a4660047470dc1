//! DNS messages, as much as a stub resolver asking for A or AAAA needs (RFC 1035):
//! a query with one question, and the reading of an answer to it.
//!
//! Hand-written rather than taken from a DNS library: only one question type pair is
//! ever asked, and everything read is bounds-checked here, so a hostile or broken
//! server's bytes yield `Malformed`, never a panic (see the property test below).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The record types asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QType {
    A,
    Aaaa,
}

impl QType {
    pub fn code(self) -> u16 {
        match self {
            QType::A => 1,
            QType::Aaaa => 28,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            QType::A => "A",
            QType::Aaaa => "AAAA",
        }
    }
}

const TYPE_CNAME: u16 = 5;
const TYPE_SOA: u16 = 6;
const CLASS_IN: u16 = 1;
const HEADER_LEN: usize = 12;
/// More compression pointers than this in one name is a loop.
const MAX_POINTERS: usize = 32;
/// Longest name on the wire (RFC 1035 3.1).
const MAX_WIRE_NAME: usize = 255;

/// Response codes a stub has to tell apart.
pub mod rcode {
    pub const NOERROR: u8 = 0;
    pub const FORMERR: u8 = 1;
    pub const SERVFAIL: u8 = 2;
    pub const NXDOMAIN: u8 = 3;
    pub const NOTIMP: u8 = 4;
    pub const REFUSED: u8 = 5;

    /// The mnemonic of a response code, for messages.
    pub fn name(code: u8) -> &'static str {
        match code {
            NOERROR => "NOERROR",
            FORMERR => "FORMERR",
            SERVFAIL => "SERVFAIL",
            NXDOMAIN => "NXDOMAIN",
            NOTIMP => "NOTIMP",
            REFUSED => "REFUSED",
            _ => "an unknown code",
        }
    }
}

/// Why a name cannot be put in a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadName;

/// The most bytes a query for `name` takes: header, name on the wire, type and class.
pub fn query_len(name: &str) -> usize {
    HEADER_LEN + name.len() + 6
}

/// Appends a query for `name` (with or without the final dot), recursion desired, to
/// `out`; on `BadName`, `out` is left as it was.
pub fn write_query(out: &mut Vec<u8>, id: u16, name: &str, qtype: QType) -> Result<(), BadName> {
    let start = out.len();
    out.reserve(query_len(name));
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00]); // RD
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // one question
    if let Err(bad) = encode_name(out, name) {
        out.truncate(start);
        return Err(bad);
    }
    out.extend_from_slice(&qtype.code().to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(())
}

fn encode_name(out: &mut Vec<u8>, name: &str) -> Result<(), BadName> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let start = out.len();
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(BadName);
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() - start > MAX_WIRE_NAME {
        return Err(BadName);
    }
    Ok(())
}

/// What an answer to our question says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub rcode: u8,
    /// The TC bit: the answer did not fit; ask again over TCP.
    pub truncated: bool,
    /// Addresses of the asked type, for the name or the CNAME chain it leads to,
    /// in the order the server gave them.
    pub addrs: Vec<IpAddr>,
    /// How long the answer may be reused: the smallest TTL of the records used, or for
    /// a negative answer the SOA's negative TTL (RFC 2308); `None` when the reply says.
    pub ttl: Option<u32>,
}

/// Why a datagram is not an answer to our question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than its own counts and lengths say, or a name that loops.
    Garbled,
    /// Another query's ID, not a response, or another question.
    NotOurs,
}

/// Reads `msg` as the answer to query `id` for `name`/`qtype`.
pub fn parse_reply(msg: &[u8], id: u16, name: &str, qtype: QType) -> Result<Reply, Malformed> {
    let mut r = Reader { msg, pos: 0 };
    let got_id = r.u16()?;
    let flags = r.u16()?;
    let (qd, an, ns) = (r.u16()?, r.u16()?, r.u16()?);
    let _ar = r.u16()?;
    let is_response = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xF;
    if got_id != id || !is_response || opcode != 0 {
        return Err(Malformed::NotOurs);
    }
    let rcode = (flags & 0xF) as u8;
    let truncated = flags & 0x0200 != 0;
    let wanted = name.strip_suffix('.').unwrap_or(name);
    match qd {
        1 => {
            let is_ours = r.name_is(wanted)?;
            let (t, c) = (r.u16()?, r.u16()?);
            if !is_ours || t != qtype.code() || c != CLASS_IN {
                return Err(Malformed::NotOurs);
            }
        }
        // Some servers leave the question out of an error reply: the ID has to do.
        0 if rcode != rcode::NOERROR || truncated => {}
        _ => return Err(Malformed::NotOurs),
    }
    let mut reply = Reply {
        rcode,
        truncated,
        addrs: Vec::new(),
        ttl: None,
    };
    if truncated {
        // What follows may be cut anywhere; TCP will bring the whole answer.
        return Ok(reply);
    }
    // The names that lead to the addresses: ours, then each CNAME target in turn (read
    // only when there is one: an answer's names are compared where they lie).
    let mut aliases: Vec<String> = Vec::new();
    let mut ttl = u32::MAX;
    for _ in 0..an {
        let rr = r.record()?;
        if rr.class != CLASS_IN {
            continue;
        }
        let mut leads_to_us = name_is(msg, rr.owner_at, wanted)?;
        for alias in &aliases {
            leads_to_us = leads_to_us || name_is(msg, rr.owner_at, alias)?;
        }
        if !leads_to_us {
            continue;
        }
        match (rr.rtype, rr.data.len()) {
            (1, 4) if qtype == QType::A => {
                let b: [u8; 4] = rr.data.try_into().map_err(|_| Malformed::Garbled)?;
                reply.addrs.push(IpAddr::V4(Ipv4Addr::from(b)));
                ttl = ttl.min(rr.ttl);
            }
            (28, 16) if qtype == QType::Aaaa => {
                let b: [u8; 16] = rr.data.try_into().map_err(|_| Malformed::Garbled)?;
                reply.addrs.push(IpAddr::V6(Ipv6Addr::from(b)));
                ttl = ttl.min(rr.ttl);
            }
            (1, _) | (28, _) if rr.rtype == qtype.code() => return Err(Malformed::Garbled),
            (TYPE_CNAME, _) => {
                let target = r.name_at(rr.data_at)?;
                ttl = ttl.min(rr.ttl);
                if aliases.len() < 15 {
                    aliases.push(target);
                }
            }
            _ => {}
        }
    }
    if !reply.addrs.is_empty() {
        reply.ttl = Some(ttl);
        return Ok(reply);
    }
    // A negative answer: its lifetime comes from the SOA in the authority section.
    for _ in 0..ns {
        let rr = r.record()?;
        if rr.rtype == TYPE_SOA {
            let mut soa = Reader {
                msg,
                pos: rr.data_at,
            };
            soa.skip_name()?;
            soa.skip_name()?;
            soa.skip(16)?;
            let minimum = soa.u32()?;
            reply.ttl = Some(rr.ttl.min(minimum));
            break;
        }
    }
    Ok(reply)
}

struct Record<'a> {
    /// Where the owner name starts in the message.
    owner_at: usize,
    rtype: u16,
    class: u16,
    ttl: u32,
    data: &'a [u8],
    /// Where `data` starts in the message (names in it may point anywhere before).
    data_at: usize,
}

struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(n).ok_or(Malformed::Garbled)?;
        let bytes = self.msg.get(self.pos..end).ok_or(Malformed::Garbled)?;
        self.pos = end;
        Ok(bytes)
    }

    fn skip(&mut self, n: usize) -> Result<(), Malformed> {
        self.take(n).map(|_| ())
    }

    fn u16(&mut self) -> Result<u16, Malformed> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Moves the cursor past a possibly compressed name.
    fn skip_name(&mut self) -> Result<(), Malformed> {
        self.pos = walk_name(self.msg, self.pos, |_| {})?;
        Ok(())
    }

    /// A name at `at`, leaving the cursor where it is.
    fn name_at(&self, at: usize) -> Result<String, Malformed> {
        read_name(self.msg, at).map(|(name, _)| name)
    }

    /// Whether the name at the cursor is `dotted` (ASCII case ignored); the cursor moves
    /// past it.
    fn name_is(&mut self, dotted: &str) -> Result<bool, Malformed> {
        let at = self.pos;
        let (is, end) = name_matches(self.msg, at, dotted)?;
        self.pos = end;
        Ok(is)
    }

    fn record(&mut self) -> Result<Record<'a>, Malformed> {
        let owner_at = self.pos;
        self.skip_name()?;
        let rtype = self.u16()?;
        let class = self.u16()?;
        let ttl = self.u32()?;
        // RFC 2181 8: a TTL with the top bit set is read as zero.
        let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
        let len = self.u16()? as usize;
        let data_at = self.pos;
        let data = self.take(len)?;
        Ok(Record {
            owner_at,
            rtype,
            class,
            ttl,
            data,
            data_at,
        })
    }
}

/// Walks the labels of the name at `at`, handing each to `label`, and returns where the
/// name ends in the message (after the first pointer, if any). Pointers may only point
/// backwards, so a name cannot loop.
fn walk_name(msg: &[u8], at: usize, mut label: impl FnMut(&[u8])) -> Result<usize, Malformed> {
    let mut pos = at;
    let mut end = None;
    let mut pointers = 0;
    let mut wire_len = 0usize;
    loop {
        let len = *msg.get(pos).ok_or(Malformed::Garbled)? as usize;
        match len & 0xC0 {
            0x00 if len == 0 => return Ok(end.unwrap_or(pos + 1)),
            0x00 => {
                let bytes = msg.get(pos + 1..pos + 1 + len).ok_or(Malformed::Garbled)?;
                wire_len += len + 1;
                if wire_len > MAX_WIRE_NAME {
                    return Err(Malformed::Garbled);
                }
                label(bytes);
                pos += 1 + len;
            }
            0xC0 => {
                let low = *msg.get(pos + 1).ok_or(Malformed::Garbled)? as usize;
                let target = ((len & 0x3F) << 8) | low;
                pointers += 1;
                if target >= pos || pointers > MAX_POINTERS {
                    return Err(Malformed::Garbled);
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(Malformed::Garbled),
        }
    }
}

/// A label byte as it can appear in a dotted name; others are shown escaped.
fn plain(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'.'
}

/// Reads a name at `at`: the dotted name (no final dot) and where the name ends.
fn read_name(msg: &[u8], at: usize) -> Result<(String, usize), Malformed> {
    // Room for most names at once: growing from empty took three allocations a name.
    let mut name = String::with_capacity(64);
    let end = walk_name(msg, at, |label| {
        if !name.is_empty() {
            name.push('.');
        }
        // Bytes outside printable ASCII cannot match a name we asked for; keep them
        // visible but harmless.
        for &b in label {
            if plain(b) {
                name.push(b as char);
            } else {
                name.push_str(&format!("\\{b:03}"));
            }
        }
    })?;
    Ok((name, end))
}

/// Whether the name at `at` is `dotted` (no final dot, ASCII case ignored, odd bytes
/// escaped as `read_name` shows them), and where it ends; compared where it lies, with
/// no copy.
fn name_matches(msg: &[u8], at: usize, dotted: &str) -> Result<(bool, usize), Malformed> {
    let mut rest = dotted.as_bytes();
    let mut is = true;
    let mut first = true;
    let end = walk_name(msg, at, |label| {
        if !is {
            return;
        }
        if !std::mem::take(&mut first) {
            match rest.split_first() {
                Some((b'.', after)) => rest = after,
                _ => {
                    is = false;
                    return;
                }
            }
        }
        for &b in label {
            // Each byte as `read_name` shows it: itself, or escaped as \DDD.
            let escaped = [b'\\', b'0' + b / 100, b'0' + b / 10 % 10, b'0' + b % 10];
            let shown: &[u8] = match plain(b) {
                true => std::slice::from_ref(&b),
                false => &escaped,
            };
            match rest.get(..shown.len()) {
                Some(head) if head.eq_ignore_ascii_case(shown) => rest = &rest[shown.len()..],
                _ => {
                    is = false;
                    return;
                }
            }
        }
    })?;
    Ok((is && rest.is_empty(), end))
}

/// [`name_matches`] without the end.
fn name_is(msg: &[u8], at: usize, dotted: &str) -> Result<bool, Malformed> {
    name_matches(msg, at, dotted).map(|(is, _)| is)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_query(id: u16, name: &str, qtype: QType) -> Result<Vec<u8>, BadName> {
        let mut out = b"kept".to_vec();
        let written = write_query(&mut out, id, name, qtype);
        if written.is_err() {
            assert_eq!(out, b"kept", "a bad name leaves the buffer as it was");
        }
        written.map(|()| out.split_off(4))
    }

    /// A reply to `query` (as built above) with these answer and authority records.
    fn reply(query: &[u8], flags: u16, answers: &[Vec<u8>], authority: &[Vec<u8>]) -> Vec<u8> {
        let mut m = query[..2].to_vec();
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&(answers.len() as u16).to_be_bytes());
        m.extend_from_slice(&(authority.len() as u16).to_be_bytes());
        m.extend_from_slice(&0u16.to_be_bytes());
        m.extend_from_slice(&query[12..]);
        for rr in answers.iter().chain(authority) {
            m.extend_from_slice(rr);
        }
        m
    }

    /// A record owned by the question's name (pointer to offset 12).
    fn rr(rtype: u16, ttl: u32, data: &[u8]) -> Vec<u8> {
        rr_named(&[0xC0, 12], rtype, ttl, data)
    }

    fn rr_named(owner: &[u8], rtype: u16, ttl: u32, data: &[u8]) -> Vec<u8> {
        let mut r = owner.to_vec();
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&1u16.to_be_bytes());
        r.extend_from_slice(&ttl.to_be_bytes());
        r.extend_from_slice(&(data.len() as u16).to_be_bytes());
        r.extend_from_slice(data);
        r
    }

    fn wire(name: &str) -> Vec<u8> {
        let mut v = Vec::new();
        encode_name(&mut v, name).unwrap();
        v
    }

    #[test]
    fn query_bytes() {
        let q = build_query(0xBEEF, "Ab.test.", QType::Aaaa).unwrap();
        assert_eq!(
            q,
            b"\xBE\xEF\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x02Ab\x04test\x00\x00\x1C\x00\x01"
        );
        assert_eq!(build_query(1, &"a".repeat(64), QType::A), Err(BadName));
        assert_eq!(build_query(1, "a..b", QType::A), Err(BadName));
        let long = format!("{}a", "abcdefghi.".repeat(26));
        assert_eq!(build_query(1, &long, QType::A), Err(BadName));
    }

    #[test]
    fn addresses_ttl_and_cname_chains() {
        let q = build_query(7, "www.x.test", QType::A).unwrap();
        let m = reply(
            &q,
            0x8180,
            &[
                rr(TYPE_CNAME, 300, &wire("edge.x.test")),
                rr_named(&wire("edge.x.test"), 1, 60, &[127, 0, 1, 2]),
                rr_named(&wire("other.test"), 1, 60, &[10, 0, 0, 1]),
                rr_named(&wire("EDGE.x.test"), 1, 30, &[127, 0, 1, 3]),
            ],
            &[],
        );
        let r = parse_reply(&m, 7, "WWW.x.test.", QType::A).unwrap();
        assert_eq!(r.rcode, rcode::NOERROR);
        assert_eq!(
            r.addrs,
            [
                "127.0.1.2".parse::<IpAddr>().unwrap(),
                "127.0.1.3".parse().unwrap()
            ]
        );
        assert_eq!(r.ttl, Some(30));

        // A chain through a name with an odd byte (a space) is followed too.
        let m = reply(
            &q,
            0x8180,
            &[
                rr(TYPE_CNAME, 300, &wire("od d.x.test")),
                rr_named(&wire("OD D.x.test"), 1, 60, &[127, 0, 1, 4]),
            ],
            &[],
        );
        let r = parse_reply(&m, 7, "www.x.test", QType::A).unwrap();
        assert_eq!(r.addrs, ["127.0.1.4".parse::<IpAddr>().unwrap()]);

        let q6 = build_query(8, "v6.test", QType::Aaaa).unwrap();
        let m = reply(
            &q6,
            0x8180,
            &[rr(
                28,
                5,
                &[0; 15].iter().chain(&[1]).copied().collect::<Vec<_>>(),
            )],
            &[],
        );
        let r = parse_reply(&m, 8, "v6.test", QType::Aaaa).unwrap();
        assert_eq!(r.addrs, ["::1".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn negative_answers_take_the_soa_minimum() {
        let q = build_query(9, "nope.test", QType::A).unwrap();
        let mut soa = wire("ns.test");
        soa.extend(wire("admin.test"));
        soa.extend_from_slice(&[0; 16]);
        soa.extend_from_slice(&20u32.to_be_bytes());
        let m = reply(
            &q,
            0x8183,
            &[],
            &[rr_named(&wire("test"), TYPE_SOA, 600, &soa)],
        );
        let r = parse_reply(&m, 9, "nope.test", QType::A).unwrap();
        assert_eq!(
            (r.rcode, r.ttl, r.addrs.len()),
            (rcode::NXDOMAIN, Some(20), 0)
        );
    }

    #[test]
    fn replies_that_are_not_ours_or_garbled() {
        let q = build_query(9, "a.test", QType::A).unwrap();
        let good = reply(&q, 0x8180, &[rr(1, 5, &[127, 0, 0, 1])], &[]);
        assert!(parse_reply(&good, 9, "a.test", QType::A).is_ok());
        assert_eq!(
            parse_reply(&good, 10, "a.test", QType::A),
            Err(Malformed::NotOurs)
        );
        assert_eq!(
            parse_reply(&good, 9, "b.test", QType::A),
            Err(Malformed::NotOurs)
        );
        assert_eq!(
            parse_reply(&good, 9, "a.test", QType::Aaaa),
            Err(Malformed::NotOurs)
        );
        assert_eq!(
            parse_reply(&q, 9, "a.test", QType::A),
            Err(Malformed::NotOurs)
        );
        for cut in 0..good.len() {
            assert!(
                parse_reply(&good[..cut], 9, "a.test", QType::A).is_err(),
                "{cut}"
            );
        }
        // A pointer to itself, and one pointing forward.
        let mut looped = good.clone();
        let at = good.len() - 16;
        looped[at..at + 2].copy_from_slice(&[0xC0, at as u8]);
        assert_eq!(
            parse_reply(&looped, 9, "a.test", QType::A),
            Err(Malformed::Garbled)
        );
        // An A record of the wrong length.
        let bad = reply(&q, 0x8180, &[rr(1, 5, &[127, 0, 0])], &[]);
        assert_eq!(
            parse_reply(&bad, 9, "a.test", QType::A),
            Err(Malformed::Garbled)
        );
        // Truncated: the rest need not be read.
        let mut tc = reply(&q, 0x8380, &[], &[]);
        tc[7] = 5;
        assert!(parse_reply(&tc, 9, "a.test", QType::A).unwrap().truncated);
    }

    #[test]
    fn names_compare_where_they_lie() {
        // "a.Test" at 0, then "x" followed by a pointer to it: "x.a.Test".
        let mut m = wire("a.Test");
        let at = m.len();
        m.extend_from_slice(&[1, b'x', 0xC0, 0]);
        assert_eq!(name_matches(&m, 0, "A.test"), Ok((true, at)));
        assert_eq!(name_matches(&m, at, "x.a.test"), Ok((true, m.len())));
        for other in ["a", "a.test.x", "x.a", "", "a.tes", "x.a.test.", "xa.test"] {
            assert_eq!(name_is(&m, at, other), Ok(false), "{other}");
        }
        // A label byte that `read_name` escapes is compared in its escaped form.
        let odd = [3, b'a', b'.', b'b', 0];
        assert_eq!(read_name(&odd, 0).unwrap().0, "a\\046b");
        assert_eq!(name_is(&odd, 0, "a.b"), Ok(false));
        assert_eq!(name_is(&odd, 0, "a\\046b"), Ok(true));
    }

    proptest::proptest! {
        /// Comparing a name in place agrees with reading it out and comparing: on
        /// arbitrary bytes, and on a well-formed name against itself in other cases.
        #[test]
        fn names_in_place_agree_with_names_read(
            bytes in proptest::collection::vec(proptest::sample::select(vec![0u8, 1, 2, 3, b'a', b'B', b'.', 0xC0]), 0..24),
            labels in proptest::collection::vec("[a-cA-C]{1,3}", 0..4),
            dotted in "[aAbB.]{0,6}",
        ) {
            let agree = |msg: &[u8], dotted: &str| -> Result<(), proptest::test_runner::TestCaseError> {
                let in_place = name_matches(msg, 0, dotted);
                match read_name(msg, 0) {
                    Ok((name, end)) => proptest::prop_assert_eq!(in_place, Ok((name.eq_ignore_ascii_case(dotted), end))),
                    Err(e) => proptest::prop_assert_eq!(in_place, Err(e)),
                }
                Ok(())
            };
            agree(&bytes, &dotted)?;
            if let Ok((read, _)) = read_name(&bytes, 0) {
                proptest::prop_assert_eq!(name_is(&bytes, 0, &read), Ok(true));
            }
            let name = labels.join(".");
            let msg = wire(&name);
            agree(&msg, &dotted)?;
            agree(&msg, &name.to_ascii_uppercase())?;
            proptest::prop_assert_eq!(name_is(&msg, 0, &name.to_ascii_lowercase()), Ok(true));
        }

        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = parse_reply(&bytes, 1, "a.test", QType::A);
            let mut with_header = vec![0, 1, 0x81, 0x80, 0, 1, 0, 4, 0, 1, 0, 0];
            with_header.extend_from_slice(&bytes);
            let _ = parse_reply(&with_header, 1, "a.test", QType::A);
        }
    }
}
