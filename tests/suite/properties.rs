//! Property tests for the sans-IO core (issue 4), and the replay of the fuzz corpora.
//!
//! - The response-head parser gives the same result whatever the chunking of its input
//!   (realistic heads and arbitrary bytes), its header list round-trips, and a generated
//!   head parses to the status, reason, headers and interim codes it was built from.
//! - The terminal sanitiser never lets a control character (other than an allowed TAB)
//!   or invalid UTF-8 through, and leaves printable text alone.
//! - The target grammar never panics, and parses generated targets back to their parts.
//! - `fuzz_corpus_replays_clean` runs every file under `fuzz/corpus/<target>/` through
//!   the same checks as the cargo-fuzz target of that name, so CI replays the corpora
//!   (seeds and any regression inputs) on stable, without libFuzzer.
//!
//! The checks (`check_*`) live in `fuzz/checks.rs`, which the fuzz targets include too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use headprobe::proto::http::{HeadParser, Progress};
use headprobe::proto::target::{self, Defaults, Host, Scheme, Target};
use headprobe::report::sanitize::escape;
use proptest::prelude::*;

#[path = "../../fuzz/checks.rs"]
mod checks;
use checks::*;

// ---------------------------------------------------------------------------------------
// The fuzz corpora, replayed.
// ---------------------------------------------------------------------------------------

#[test]
fn fuzz_corpus_replays_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let checks: [(&str, Check); 8] = [
        ("dns_reply", check_dns_reply),
        ("h2_reader", check_h2_reader),
        ("h3_reader", check_h3_reader),
        ("hpack", check_hpack),
        ("head_parser", check_head_parser),
        ("sanitize", check_sanitize),
        ("socks_messages", check_socks_messages),
        ("target_grammar", check_target_grammar),
    ];
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut replayed = Vec::new();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let check = checks
            .iter()
            .find(|(target, _)| *target == name)
            .unwrap_or_else(|| panic!("fuzz/corpus/{name}: no check for this fuzz target"))
            .1;
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        files.sort();
        for file in &files {
            let data = std::fs::read(file).unwrap();
            if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("{} fails: {msg}", file.display());
            }
        }
        replayed.push((name, files.len()));
    }
    for (target, _) in checks {
        assert!(
            replayed.iter().any(|(name, n)| name == target && *n > 0),
            "fuzz/corpus/{target} is missing or empty: {replayed:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------------------

fn eol() -> impl Strategy<Value = &'static [u8]> {
    prop_oneof![3 => Just(&b"\r\n"[..]), 1 => Just(&b"\n"[..])]
}

/// Header-value bytes: mostly printable, sometimes anything but CR and LF (controls,
/// high bytes, invalid UTF-8).
fn value_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        8 => 0x20u8..0x7f,
        1 => Just(b'\t'),
        1 => any::<u8>().prop_filter("no line ends", |b| *b != b'\r' && *b != b'\n'),
    ];
    prop::collection::vec(byte, 0..max)
}

fn header_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}"
}

/// One header: name, value, and obs-fold continuation lines (leading whitespace, text).
#[derive(Debug, Clone)]
struct GenHeader {
    name: String,
    value: Vec<u8>,
    folds: Vec<(String, Vec<u8>)>,
    eols: Vec<&'static [u8]>,
}

impl GenHeader {
    fn render(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(&self.value);
        out.extend_from_slice(self.eols[0]);
        for (i, (lead, text)) in self.folds.iter().enumerate() {
            out.extend_from_slice(lead.as_bytes());
            out.extend_from_slice(text);
            out.extend_from_slice(self.eols[i + 1]);
        }
    }

    /// What the parser should give: the value and non-empty fold texts, each trimmed,
    /// joined with one space.
    fn expected(&self) -> (Vec<u8>, Vec<u8>) {
        let parts = std::iter::once(&self.value[..])
            .chain(self.folds.iter().map(|(_, t)| &t[..]))
            .map(trim)
            .filter(|p| !p.is_empty());
        (
            self.name.clone().into_bytes(),
            parts.collect::<Vec<_>>().join(&b' '),
        )
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
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

fn header(fold: bool) -> impl Strategy<Value = GenHeader> {
    let folds = if fold { 0..3usize } else { 0..1 };
    (
        header_name(),
        value_bytes(40),
        prop::collection::vec(("[ \t]{1,3}", value_bytes(20)), folds),
        prop::collection::vec(eol(), 3),
    )
        .prop_map(|(name, value, folds, eols)| GenHeader {
            name,
            value,
            folds,
            eols,
        })
}

/// One response head: status line, headers, blank line.
#[derive(Debug, Clone)]
struct GenBlock {
    version: (u8, u8),
    gap: String,
    code: u16,
    reason: String,
    headers: Vec<GenHeader>,
    eol: &'static [u8],
}

impl GenBlock {
    fn render(&self, out: &mut Vec<u8>) {
        let (major, minor) = self.version;
        out.extend_from_slice(format!("HTTP/{major}.{minor}{}{}", self.gap, self.code).as_bytes());
        if !self.reason.is_empty() {
            out.push(b' ');
            out.extend_from_slice(self.reason.as_bytes());
        }
        out.extend_from_slice(self.eol);
        for h in &self.headers {
            h.render(out);
        }
        out.extend_from_slice(self.eol);
    }
}

fn block(codes: impl Strategy<Value = u16>) -> impl Strategy<Value = GenBlock> {
    (
        (0u8..10, 0u8..10),
        "[ ]{1,3}",
        codes,
        "[ -~]{0,24}",
        prop::collection::vec(header(true), 0..6),
        eol(),
    )
        .prop_map(|(version, gap, code, reason, headers, eol)| GenBlock {
            version,
            gap,
            code,
            reason,
            headers,
            eol,
        })
}

/// A whole response: interim 1xx blocks, the final block, maybe a body.
#[derive(Debug, Clone)]
struct GenResponse {
    interim: Vec<GenBlock>,
    last: GenBlock,
    body: Vec<u8>,
}

impl GenResponse {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for b in &self.interim {
            b.render(&mut out);
        }
        self.last.render(&mut out);
        out.extend_from_slice(&self.body);
        out
    }
}

fn response() -> impl Strategy<Value = GenResponse> {
    let interim_code = prop_oneof![Just(100u16), Just(102), Just(103), Just(199)];
    let final_code = prop_oneof![1 => Just(101u16), 9 => 200u16..600];
    (
        prop::collection::vec(block(interim_code), 0..3),
        block(final_code),
        prop_oneof![Just(Vec::new()), prop::collection::vec(any::<u8>(), 0..64)],
    )
        .prop_map(|(interim, last, body)| GenResponse {
            interim,
            last,
            body,
        })
}

/// Response bytes to split: realistic heads (whole, cut short or with bytes changed), a
/// status line followed by noise, and plain noise.
fn response_bytes() -> impl Strategy<Value = Vec<u8>> {
    let realistic = response().prop_map(|r| r.bytes()).boxed();
    prop_oneof![
        4 => realistic.clone(),
        2 => (realistic.clone(), any::<prop::sample::Index>())
            .prop_map(|(b, at)| b[..at.index(b.len() + 1)].to_vec()),
        2 => (realistic, prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4))
            .prop_map(|(mut b, edits)| {
                for (at, byte) in edits {
                    let i = at.index(b.len());
                    b[i] = byte;
                }
                b
            }),
        1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(|noise| {
            [&b"HTTP/1.1 200 OK\r\n"[..], &noise].concat()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..300),
    ]
}

fn chunk_lens() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![3 => 1usize..4, 2 => 1usize..40, 1 => 40usize..2000],
        1..8,
    )
}

fn cap() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(65536usize), 1 => 1usize..1500]
}

/// A DNS name the grammar accepts (labels neither starting nor ending with '-', the
/// last not a number, as the WHATWG URL Standard counts them: digits or 0x and hex; at
/// most 253 bytes).
fn dns_name() -> impl Strategy<Value = String> {
    (
        prop::collection::vec("[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?", 0..4),
        "[A-Za-z0-9_]{0,20}[A-Za-z_]([A-Za-z0-9_-]{0,20}[A-Za-z0-9_])?",
        any::<bool>(),
    )
        .prop_filter_map("at most 253 bytes", |(mut labels, last, dot)| {
            let hex = last
                .strip_prefix("0x")
                .or_else(|| last.strip_prefix("0X"))
                .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
            if hex {
                return None;
            }
            labels.push(last);
            let name = labels.join(".");
            (name.len() <= 253).then(|| if dot { name + "." } else { name })
        })
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        2 => dns_name().prop_map(Host::Name),
        1 => any::<[u8; 4]>().prop_map(|o| Host::Ip(IpAddr::V4(Ipv4Addr::from(o)))),
        1 => any::<[u16; 8]>().prop_map(|s| Host::Ip(IpAddr::V6(Ipv6Addr::from(s)))),
    ]
}

/// Path and query (possibly empty), and an optional fragment.
fn path_query_fragment() -> impl Strategy<Value = (String, Option<String>, Option<String>)> {
    (
        "(/[A-Za-z0-9._~!$&'()*+,;=:@%-]{0,10}){0,4}",
        prop::option::of("[A-Za-z0-9=&._~/?:@-]{0,12}"),
        prop::option::of("[A-Za-z0-9=&._~/?#-]{0,8}"),
    )
}

/// Strings that wander through the grammar's corners.
fn grammar_noise() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("http://".to_string()),
        Just("HTTPS://".to_string()),
        Just("ftp://".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("::".to_string()),
        "[a-z0-9:/?#@.\\[\\]%_-]{1,8}",
        "[0-9]{1,6}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|p| p.concat())
}

// ---------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Regressions found go into `fuzz/corpus/*` (replayed above), not into tests/.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn any_split_of_a_response_parses_as_the_whole(
        data in response_bytes(),
        lens in chunk_lens(),
        max in cap(),
    ) {
        check_split(&data, &lens, max);
    }

    #[test]
    fn any_split_of_arbitrary_bytes_parses_as_the_whole(
        data in prop::collection::vec(any::<u8>(), 0..600),
        lens in chunk_lens(),
        max in cap(),
    ) {
        check_split(&data, &lens, max);
    }

    #[test]
    fn a_generated_head_parses_to_what_it_was_built_from(
        r in response(),
        lens in chunk_lens(),
    ) {
        let got = check_split(&r.bytes(), &lens, 65536);
        prop_assert_eq!(got.result, Ok(Progress::Complete));
        let blocks: Vec<&GenBlock> = r.interim.iter().chain([&r.last]).collect();
        prop_assert_eq!(got.heads.len(), blocks.len());
        for (seen, want) in got.heads.iter().zip(blocks) {
            prop_assert_eq!(seen.0, want.code);
            prop_assert_eq!(&seen.1[..], want.reason.trim_matches([' ', '\t']).as_bytes());
            let headers: Pairs = want.headers.iter().map(GenHeader::expected).collect();
            prop_assert_eq!(&seen.2, &headers);
        }
        prop_assert_eq!(got.final_code, Some(r.last.code));
        let interim: Vec<u16> = r.interim.iter().map(|b| b.code).collect();
        prop_assert_eq!(got.interim, interim);
    }

    #[test]
    fn the_header_list_round_trips(
        headers in prop::collection::vec((header_name(), value_bytes(60)), 0..12),
    ) {
        let mut data = b"HTTP/1.1 200 OK\r\n".to_vec();
        for (name, value) in &headers {
            data.extend_from_slice(name.as_bytes());
            data.extend_from_slice(b": ");
            data.extend_from_slice(value);
            data.extend_from_slice(b"\r\n");
        }
        data.extend_from_slice(b"\r\n");
        let mut p = HeadParser::new(65536);
        prop_assert_eq!(p.feed(&data), Ok(Progress::Complete));
        let got = pairs(p.headers(p.final_block().unwrap()));
        let want: Pairs = headers
            .iter()
            .map(|(n, v)| (n.clone().into_bytes(), trim(v).to_vec()))
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn sanitised_bytes_are_safe(data in prop::collection::vec(any::<u8>(), 0..200)) {
        check_sanitize(&data);
    }

    #[test]
    fn sanitised_text_is_safe(text in any::<String>()) {
        check_sanitize(text.as_bytes());
    }

    #[test]
    fn printable_text_is_left_alone(text in "[ -~]{0,80}", tabbed in "[ -~\t]{0,80}") {
        prop_assert_eq!(escape(text.as_bytes(), false), text.as_str());
        prop_assert_eq!(escape(text.as_bytes(), true), text.as_str());
        prop_assert_eq!(escape(tabbed.as_bytes(), false), tabbed.as_str());
        prop_assert_eq!(escape(tabbed.as_bytes(), true), tabbed.replace('\t', "\\x09"));
        // The rest of Unicode too, bar controls (C0, DEL, C1).
        let unicode: String = text.chars().chain(['é', '漢', '\u{202e}', '😀']).collect();
        prop_assert_eq!(escape(unicode.as_bytes(), true), unicode);
    }

    #[test]
    fn socks_messages_hold_up_to_any_bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
        check_socks_messages(&data);
    }

    #[test]
    fn socks_replies_that_look_right_parse_at_any_split(
        which in 0usize..4,
        body in prop::collection::vec(any::<u8>(), 0..40),
        atyp in prop::sample::select(vec![1u8, 3, 4]),
        code in 0x5au8..=0x5d,
    ) {
        // Well-formed starts, so the parsers get past their first byte.
        let input = match which {
            0 => [&[5u8][..], &body].concat(),
            1 => [&[1u8][..], &body].concat(),
            2 => [&[5u8, 0, 0, atyp][..], &body].concat(),
            _ => [&[0u8, code][..], &body].concat(),
        };
        let (name, parse, longest) = SOCKS_PARSERS[which];
        check_socks_parser(name, parse, longest, &input);
    }

    #[test]
    fn socks_requests_round_trip(user in ".{0,300}", name in ".{0,300}", port in any::<u16>()) {
        let mut data = port.to_be_bytes().to_vec();
        data.extend_from_slice(user.as_bytes());
        data.push(0xff);
        data.extend_from_slice(name.as_bytes());
        check_socks_requests(&data);
    }

    #[test]
    fn the_target_grammar_never_panics(token in any::<String>(), noise in grammar_noise()) {
        check_target_grammar(token.as_bytes());
        check_target_grammar(noise.as_bytes());
    }

    #[test]
    fn generated_targets_parse_back(
        host in host(),
        port in prop::option::of(1u16..=65535),
        (path, query, fragment) in path_query_fragment(),
        upper in any::<bool>(),
    ) {
        let tls = Defaults { https: true, ..Defaults::default() };
        let authority = |port: Option<u16>| {
            let h = host.authority_form();
            port.map_or(h.to_string(), |p| format!("{h}:{p}"))
        };

        // Bare forms: HOST, HOST:PORT, [V6], [V6]:PORT, and a bare IPv6 literal.
        let t = target::parse(&authority(port), &Defaults::default()).unwrap();
        prop_assert_eq!(
            (t.scheme, &t.host, t.port, t.path.as_str()),
            (Scheme::Http, &host, port.unwrap_or(80), "/")
        );
        if let (Host::Ip(IpAddr::V6(ip)), None) = (&host, port) {
            let t = target::parse(&ip.to_string(), &Defaults::default()).unwrap();
            prop_assert_eq!(&t.host, &host);
        }

        // URLs: scheme://HOST[:PORT][PATH][?QUERY][#FRAGMENT].
        let mut tail = path.clone();
        if let Some(q) = &query {
            tail = format!("{tail}?{q}");
        }
        let want_path = if tail.is_empty() { "/".to_string() } else if tail.starts_with('?') { format!("/{tail}") } else { tail.clone() };
        if let Some(f) = &fragment {
            tail = format!("{tail}#{f}");
        }
        for (scheme, default_port) in [(Scheme::Http, 80), (Scheme::Https, 443)] {
            let name = if upper { scheme.name().to_uppercase() } else { scheme.name().to_string() };
            let url = format!("{name}://{}{tail}", authority(port));
            let t: Target = target::parse(&url, &tls).unwrap_or_else(|e| panic!("{url:?}: {e}"));
            prop_assert_eq!(
                (t.scheme, &t.host, t.port, t.path.as_str()),
                (scheme, &host, port.unwrap_or(default_port), want_path.as_str()),
                "{}", url
            );
            let want_header = match port {
                Some(p) if p != default_port => authority(Some(p)),
                _ => authority(None),
            };
            prop_assert_eq!(t.host_header(), want_header);
        }
    }
}
