//! The `prometheus` format: every record folded into a compact per-target summary as it
//! arrives, then the Prometheus text exposition format (0.0.4) written once at the end,
//! each family with its `# HELP` and `# TYPE` and all its samples together.
//!
//! The per-target families carry blackbox_exporter's http-prober names and meanings, so
//! its dashboards and alert rules work unchanged; the rest start with `headprobe_`.
//!
//! - `target` label: the input token as written. Bytes that are not UTF-8 and control
//!   characters become `\xNN`, as in the other formats; then the format's own escaping
//!   (`\\`, `\"`) applies, so a parser reads the `\xNN` text back.
//! - Samples follow input order (the record's `index`), whatever order records arrive
//!   in, so two runs over the same list give files that diff line by line.
//! - **Duplicates.** Two samples of one family may not share their labels (promtool and
//!   node_exporter reject the file). A target listed more than once (or two tokens whose
//!   labels come out the same, such as a literal `\xff` and the byte 0xff) is probed
//!   each time, but only its first occurrence in the input gets `probe_*` and
//!   `headprobe_probe_error` samples; the other occurrences still count in
//!   `headprobe_targets` and `headprobe_target_errors` (so those match the summary line
//!   and the exit status), and `headprobe_duplicate_targets` says how many were left out.
//! - **Phases** (`probe_http_duration_seconds{phase}`), from the record's timing, each
//!   the time between two marks, 0 when not reached (blackbox also always has them):
//!   `resolve` = start..dns, `connect` = dns..connect, `tls` = connect..tls (after a
//!   proxy tunnel, if any), `processing` = connected (after TLS)..first byte of the
//!   response, `transfer` = first byte..end of the head. headprobe reads no body, so
//!   `transfer` is the rest of the head where blackbox's includes the body. With `-L`
//!   the marks are the last request's, measured from the probe's start: the earlier
//!   hops' time lands in the first phase the last one has (blackbox sums each phase
//!   over the hops; the phases' total is the same).
//! - `probe_http_version`: blackbox's `major.minor` read as a number, so 1.0 is `1`,
//!   1.1 is `1.1`, HTTP/2 is `2`; 0 without a status line.
//! - `probe_http_ssl` and the `probe_ssl_*` and `probe_tls_*` families describe the final
//!   response, as blackbox's do: they exist only when a status line came over TLS.
//!   `probe_ssl_earliest_cert_expiry` is the earliest notAfter over the certificates the
//!   server sent (an intermediate that expires before the leaf shows). blackbox's
//!   `probe_ssl_last_chain_expiry_timestamp_seconds` is the same over its verified
//!   chains, which end in the trusted root: headprobe knows only what was sent, so it is
//!   the earliest over those, and is written only when they verified (blackbox writes
//!   year 1 for an unverified connection). `probe_ssl_last_chain_info` is the leaf's
//!   labels as blackbox writes them: the SHA-256 of its DER in lower-case hex, subject
//!   and issuer as Go prints a name (`CN=leaf,O=Org`), its DNS names joined with `,`,
//!   the serial number's bytes in hex.
//! - `probe_http_content_length`: the final response's Content-Length, -1 without one,
//!   0 without a response (blackbox's empty response). headprobe reads no body, so
//!   blackbox's body-derived `probe_http_uncompressed_body_length` has no counterpart.
//! - `probe_http_last_modified_timestamp_seconds`: only when the final response's
//!   Last-Modified reads as an HTTP date (`proto::httpdate`), as in blackbox.
//! - `probe_ip_addr_hash`: blackbox's FNV-1a (32 bit) of the address probed, over its
//!   4 bytes (IPv4, IPv4-mapped IPv6 included) or 16 bytes (IPv6); 0 without one.
//! - `probe_timeout_seconds`: the probe's `--timeout`.
//! - Run-wide counts (`headprobe_targets`, `headprobe_target_errors`) count every
//!   record, whether or not `--only-failed` wrote its samples (`Metrics::count_hidden`).

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::ErrorKind;
use super::record::{Record, TlsInfo, TlsVersion};
use super::sanitize;
use crate::proto::httpdate;

/// What the run knows at its end, for `headprobe_run_duration_seconds` and
/// `headprobe_last_run_timestamp_seconds`.
#[derive(Debug, Clone, Copy)]
pub struct RunFacts {
    pub duration: Duration,
    pub finished_at: SystemTime,
    /// `--timeout`, for `probe_timeout_seconds`.
    pub probe_timeout: Duration,
}

/// One target's numbers. Kept small: 100,000 of them are under 10 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// The record's position among all targets read (input order).
    index: u64,
    /// The escaped label value: `labels[label_at..label_at + label_len]`.
    label_at: u64,
    label_len: u32,
    /// Microseconds, saturating at about 71 minutes.
    total_us: u32,
    phases_us: [u32; PHASES.len()],
    /// `0` when no status line was read.
    status: u16,
    redirects: u16,
    /// `major * 10 + minor` of the final status line, 0 without one.
    version: u8,
    /// `0` ok, else 1 + the kind's position in `ErrorKind::ALL`.
    kind: u8,
    /// 4, 6, or 0 when no address was tried.
    ip_protocol: u8,
    /// The final response came over TLS: 1 + position in `TLS_VERSIONS`; 0 when not.
    tls: u8,
    /// The earliest notAfter over the chain sent, Unix seconds; `NO_EXPIRY` when
    /// unknown or not over TLS.
    cert_expiry: i64,
    /// The final response's Content-Length; -1 without one, 0 without a response.
    content_length: i64,
    /// The final response's Last-Modified, Unix seconds; `NO_EXPIRY` when absent or not
    /// an HTTP date.
    last_modified: i64,
    /// FNV-1a of the address probed; 0 without one.
    ip_hash: u32,
    /// The final response's TLS details: its position in `Metrics::tls`, or `NO_TLS`.
    tls_detail: u32,
}

const NO_EXPIRY: i64 = i64::MIN;
const NO_TLS: u32 = u32::MAX;

/// Where a label value is in `Metrics::labels`: (start, length).
type Span = (u64, u32);

/// What a target answered over TLS says, beyond the version: kept aside, since most
/// runs have few https targets or none.
#[derive(Debug, Clone, Copy)]
struct TlsDetail {
    cipher: Span,
    /// `NO_EXPIRY` unless the chain verified.
    last_chain_expiry: i64,
    /// fingerprint_sha256, subject, issuer, subjectalternative, serialnumber.
    leaf: Option<[Span; 5]>,
}

const PHASES: [&str; 5] = ["resolve", "connect", "tls", "processing", "transfer"];

/// The versions blackbox names, with its label values (Go's names); any other is
/// `unknown`.
const TLS_VERSIONS: [(Option<TlsVersion>, &str); 5] = [
    (Some(TlsVersion::Tls13), "TLS 1.3"),
    (Some(TlsVersion::Tls12), "TLS 1.2"),
    (Some(TlsVersion::Tls11), "TLS 1.1"),
    (Some(TlsVersion::Tls10), "TLS 1.0"),
    (None, "unknown"),
];

/// The accumulator: `add` each record as it comes, `render` once at the end.
#[derive(Debug, Default)]
pub struct Metrics {
    entries: Vec<Entry>,
    /// Every target's escaped label value, end to end (and the TLS details' values).
    labels: Vec<u8>,
    tls: Vec<TlsDetail>,
    /// Records counted but not written (`--only-failed`'s ok ones), by kind as
    /// `Entry::kind`.
    hidden: [u64; ErrorKind::ALL.len() + 1],
}

impl Metrics {
    pub fn new() -> Self {
        Metrics::default()
    }

    /// How many records were added.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Counts a record in the run-wide families without writing its samples
    /// (`--only-failed` leaves out the ok ones; the counts still cover every target).
    pub fn count_hidden(&mut self, rec: &Record) {
        self.hidden[usize::from(kind_index(rec))] += 1;
    }

    /// Appends a label value (escaped) to `labels`.
    fn push_label(&mut self, value: &[u8]) -> Span {
        let at = self.labels.len() as u64;
        escape_label(&mut self.labels, value);
        (
            at,
            u32::try_from(self.labels.len() as u64 - at).unwrap_or(u32::MAX),
        )
    }

    fn add_tls(&mut self, t: &TlsInfo) -> u32 {
        let cipher = self.push_label(t.cipher.as_deref().unwrap_or("unknown").as_bytes());
        let leaf = t.cert.as_ref().map(|c| {
            // blackbox's `subjectalternative`: the DNS names (Go's `DNSNames`), not the
            // addresses.
            let dns: Vec<&str> = c
                .san
                .iter()
                .filter(|n| n.parse::<std::net::IpAddr>().is_err())
                .map(String::as_str)
                .collect();
            [
                self.push_label(c.sha256.as_bytes()),
                self.push_label(c.subject_rfc2253.as_bytes()),
                self.push_label(c.issuer_rfc2253.as_bytes()),
                self.push_label(dns.join(",").as_bytes()),
                self.push_label(c.serial.as_bytes()),
            ]
        });
        let earliest = t.earliest_expiry();
        self.tls.push(TlsDetail {
            cipher,
            last_chain_expiry: earliest.filter(|_| t.verified).unwrap_or(NO_EXPIRY),
            leaf,
        });
        u32::try_from(self.tls.len() - 1).unwrap_or(NO_TLS)
    }

    /// Folds one finished record in; records may come in any order.
    pub fn add(&mut self, rec: &Record) {
        let label_at = self.labels.len() as u64;
        escape_label(&mut self.labels, &rec.token);
        if let Some(address) = rec.one_of.and_then(|o| o.address) {
            // `--all-addresses`: the address is part of the series' identity, written
            // after the target label (the stored value closes and opens the quotes).
            self.labels
                .extend_from_slice(format!("\",address=\"{address}").as_bytes());
        }
        let label_len = u32::try_from(self.labels.len() as u64 - label_at).unwrap_or(u32::MAX);
        let head = rec.head.as_ref();
        let last = head.and_then(|h| h.final_block());
        let over_tls = last.is_some() && rec.tls.is_some();
        let tls = rec.tls.as_deref().filter(|_| over_tls);
        let kind = kind_index(rec);
        let header = |name: &str| {
            let (head, block) = (head?, last?);
            head.headers(block)
                .into_iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
                .map(|(_, v)| v)
        };
        let content_length = match (last, header("content-length")) {
            (None, _) => 0,
            (Some(_), Some(v)) => std::str::from_utf8(&v)
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(-1),
            (Some(_), None) => -1,
        };
        let last_modified = header("last-modified")
            .and_then(|v| httpdate::parse(&v))
            .unwrap_or(NO_EXPIRY);
        let tls_detail = tls.map_or(NO_TLS, |t| self.add_tls(t));
        self.entries.push(Entry {
            index: rec.index,
            label_at,
            label_len,
            total_us: micros(rec.timing.total),
            phases_us: phases(rec),
            status: last.map_or(0, |b| b.status.code),
            redirects: u16::try_from(rec.redirects.len()).unwrap_or(u16::MAX),
            version: last.map_or(0, |b| {
                b.status
                    .major
                    .saturating_mul(10)
                    .saturating_add(b.status.minor.min(9))
            }),
            kind,
            ip_protocol: match rec.addr {
                Some(SocketAddr::V4(_)) => 4,
                Some(SocketAddr::V6(_)) => 6,
                None => 0,
            },
            tls: tls.map_or(0, |t| {
                let i = TLS_VERSIONS
                    .iter()
                    .position(|(v, _)| v.is_some() && *v == t.version)
                    .unwrap_or(TLS_VERSIONS.len() - 1);
                i as u8 + 1
            }),
            cert_expiry: tls.and_then(TlsInfo::earliest_expiry).unwrap_or(NO_EXPIRY),
            content_length,
            last_modified,
            ip_hash: rec.addr.map_or(0, |a| ip_hash(a.ip())),
            tls_detail,
        });
    }

    /// Writes every family. Nothing is written before this: a file that is renamed into
    /// place holds one whole run.
    pub fn render<W: Write>(&self, out: &mut W, run: &RunFacts) -> io::Result<()> {
        let (order, duplicates) = self.order();
        let shown = || order.iter().map(|&i| &self.entries[i as usize]);
        let labels = &self.labels[..];
        let mut w = Families { out, labels };
        let text = |(at, len): Span| {
            std::str::from_utf8(&labels[at as usize..][..len as usize]).unwrap_or_default()
        };
        let detail = |e: &Entry| self.tls.get(e.tls_detail as usize);
        w.per_target(
            "probe_success",
            "Displays whether or not the probe was a success",
            shown(),
            |e, v| v.int(i64::from(e.kind == 0)),
        )?;
        w.per_target(
            "probe_duration_seconds",
            "Returns how long the probe took to complete in seconds",
            shown(),
            |e, v| v.micros(e.total_us),
        )?;
        w.per_target(
            "probe_timeout_seconds",
            "Returns how long the probe timeout is in seconds",
            shown(),
            |_, v| v.seconds(run.probe_timeout.as_secs_f64()),
        )?;
        w.per_target(
            "probe_http_status_code",
            "Response HTTP status code",
            shown(),
            |e, v| v.int(i64::from(e.status)),
        )?;
        w.per_target(
            "probe_http_version",
            "Returns the version of HTTP of the probe response",
            shown(),
            |e, v| v.version(e.version),
        )?;
        w.per_target(
            "probe_http_ssl",
            "Indicates if SSL was used for the final redirect",
            shown(),
            |e, v| v.int(i64::from(e.tls != 0)),
        )?;
        w.per_target(
            "probe_http_redirects",
            "The number of redirects",
            shown(),
            |e, v| v.int(i64::from(e.redirects)),
        )?;
        w.per_target(
            "probe_http_content_length",
            "Length of http content response",
            shown(),
            |e, v| v.int(e.content_length),
        )?;
        w.per_target(
            "probe_http_last_modified_timestamp_seconds",
            "Returns the Last-Modified HTTP response header in unixtime",
            shown().filter(|e| e.last_modified != NO_EXPIRY),
            |e, v| v.int(e.last_modified),
        )?;
        w.header(
            "probe_http_duration_seconds",
            "Duration of http request by phase, summed over all redirects",
        )?;
        for e in shown() {
            for (phase, &us) in PHASES.iter().zip(&e.phases_us) {
                w.sample("probe_http_duration_seconds", e, &[("phase", phase)])?
                    .micros(us)?;
            }
        }
        w.per_target(
            "probe_dns_lookup_time_seconds",
            "Returns the time taken for probe dns lookup in seconds",
            shown(),
            |e, v| v.micros(e.phases_us[0]),
        )?;
        w.per_target(
            "probe_ip_protocol",
            "Specifies whether probe ip protocol is IP4 or IP6",
            shown(),
            |e, v| v.int(i64::from(e.ip_protocol)),
        )?;
        w.per_target(
            "probe_ip_addr_hash",
            "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
            shown(),
            |e, v| v.int(i64::from(e.ip_hash)),
        )?;
        w.per_target(
            "probe_ssl_earliest_cert_expiry",
            "Returns last SSL chain expiry in unixtime",
            shown().filter(|e| e.cert_expiry != NO_EXPIRY),
            |e, v| v.int(e.cert_expiry),
        )?;
        w.per_target(
            "probe_ssl_last_chain_expiry_timestamp_seconds",
            "Returns last SSL chain expiry in timestamp",
            shown().filter(|e| detail(e).is_some_and(|d| d.last_chain_expiry != NO_EXPIRY)),
            |e, v| v.int(detail(e).map_or(0, |d| d.last_chain_expiry)),
        )?;
        let with_leaf = shown().filter_map(|e| Some((e, detail(e)?.leaf?)));
        if with_leaf.clone().next().is_some() {
            w.header(
                "probe_ssl_last_chain_info",
                "Contains SSL leaf certificate information",
            )?;
            for (e, leaf) in with_leaf {
                let names = [
                    "fingerprint_sha256",
                    "subject",
                    "issuer",
                    "subjectalternative",
                    "serialnumber",
                ];
                let pairs: Vec<(&str, &str)> = names.into_iter().zip(leaf.map(text)).collect();
                w.sample("probe_ssl_last_chain_info", e, &pairs)?.int(1)?;
            }
        }
        let with_tls = shown().filter(|e| e.tls != 0);
        if with_tls.clone().next().is_some() {
            w.header(
                "probe_tls_version_info",
                "Returns the TLS version used or NaN when unknown",
            )?;
            for e in with_tls {
                let version = TLS_VERSIONS[usize::from(e.tls - 1)].1;
                w.sample("probe_tls_version_info", e, &[("version", version)])?
                    .int(1)?;
            }
        }
        let with_cipher = shown().filter_map(|e| Some((e, detail(e)?)));
        if with_cipher.clone().next().is_some() {
            w.header(
                "probe_tls_cipher_info",
                "Returns the TLS cipher negotiated during handshake",
            )?;
            for (e, d) in with_cipher {
                w.sample("probe_tls_cipher_info", e, &[("cipher", text(d.cipher))])?
                    .int(1)?;
            }
        }
        w.per_target(
            "probe_failed_due_to_regex",
            "Indicates if probe failed due to regex",
            shown(),
            |e, v| v.int(i64::from(kind_of(e) == Some(ErrorKind::HeaderMismatch))),
        )?;
        let failed = shown().filter(|e| e.kind != 0);
        if failed.clone().next().is_some() {
            w.header(
                "headprobe_probe_error",
                "The error kind of a target that is not ok (1), as in the JSON error.kind",
            )?;
            for e in failed {
                let kind = kind_of(e).map_or("io", ErrorKind::name);
                w.sample("headprobe_probe_error", e, &[("kind", kind)])?
                    .int(1)?;
            }
        }

        // Run-wide counts cover every record, duplicates and hidden ones included.
        let mut by_kind = self.hidden;
        for e in &self.entries {
            by_kind[usize::from(e.kind)] += 1;
        }
        let failed_total: u64 = by_kind[1..].iter().sum();
        w.header(
            "headprobe_targets",
            "Targets probed in the last run, by result (duplicates included)",
        )?;
        w.run_sample("headprobe_targets", &[("result", "ok")])?
            .int(by_kind[0] as i64)?;
        w.run_sample("headprobe_targets", &[("result", "failed")])?
            .int(failed_total as i64)?;
        w.header(
            "headprobe_target_errors",
            "Targets of the last run that failed, by error kind (duplicates included)",
        )?;
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            w.run_sample("headprobe_target_errors", &[("kind", kind.name())])?
                .int(by_kind[i + 1] as i64)?;
        }
        w.header(
            "headprobe_duplicate_targets",
            "Records left out of the per-target families: later occurrences of a target label",
        )?;
        w.run_sample("headprobe_duplicate_targets", &[])?
            .int(duplicates as i64)?;
        w.header(
            "headprobe_run_duration_seconds",
            "How long the last run took, from start to its last record",
        )?;
        w.run_sample("headprobe_run_duration_seconds", &[])?
            .seconds(run.duration.as_secs_f64())?;
        w.header(
            "headprobe_last_run_timestamp_seconds",
            "When the last run finished, in Unix seconds",
        )?;
        let at = match run.finished_at.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        w.run_sample("headprobe_last_run_timestamp_seconds", &[])?
            .seconds((at * 1000.0).round() / 1000.0)?;
        Ok(())
    }

    /// The entries to show, in input order, and how many were left out as duplicates.
    fn order(&self) -> (Vec<u32>, usize) {
        let label = |i: u32| {
            let e = &self.entries[i as usize];
            &self.labels[e.label_at as usize..][..e.label_len as usize]
        };
        let mut order: Vec<u32> = (0..self.entries.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            label(a)
                .cmp(label(b))
                .then(
                    self.entries[a as usize]
                        .index
                        .cmp(&self.entries[b as usize].index),
                )
                .then(a.cmp(&b))
        });
        let before = order.len();
        order.dedup_by(|later, first| label(*later) == label(*first));
        let duplicates = before - order.len();
        // One index has several entries with --all-addresses: by address then.
        order.sort_unstable_by(|&a, &b| {
            (self.entries[a as usize]
                .index
                .cmp(&self.entries[b as usize].index))
            .then(label(a).cmp(label(b)))
            .then(a.cmp(&b))
        });
        (order, duplicates)
    }
}

fn kind_of(e: &Entry) -> Option<ErrorKind> {
    usize::from(e.kind)
        .checked_sub(1)
        .and_then(|i| ErrorKind::ALL.get(i).copied())
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// The five phases from the record's marks; a phase not reached is 0.
fn phases(rec: &Record) -> [u32; PHASES.len()] {
    let t = &rec.timing;
    let span =
        |from: Duration, to: Option<Duration>| to.map_or(0, |to| micros(to.saturating_sub(from)));
    let zero = Duration::ZERO;
    let dns = t.dns.unwrap_or(zero);
    let connect = t.connect.unwrap_or(dns);
    // Through a tunnel, TLS starts once the proxy has answered.
    let tls_start = t.proxy.unwrap_or(connect);
    let connected = t.tls.or(t.proxy).or(t.connect).unwrap_or(dns);
    let first_byte = t.first_byte.unwrap_or(connected);
    [
        span(zero, t.dns),
        span(dns, t.connect),
        span(tls_start, t.tls),
        t.connect.map_or(0, |_| span(connected, t.first_byte)),
        span(first_byte, t.headers),
    ]
}

/// A label value: the token in the output's `\xNN` escaping (control characters, tabs
/// and bytes that are not UTF-8), then the format's backslash and quote escapes.
fn escape_label(out: &mut Vec<u8>, token: &[u8]) {
    let safe = sanitize::escape(token, true);
    for b in safe.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

/// `0` ok, else 1 + the kind's position in `ErrorKind::ALL` (`Entry::kind`).
fn kind_index(rec: &Record) -> u8 {
    rec.error_kind()
        .and_then(|k| ErrorKind::ALL.iter().position(|&a| a == k))
        .map_or(0, |i| i as u8 + 1)
}

/// blackbox_exporter's `ipHash`: 32-bit FNV-1a over the address's bytes, 4 of them for
/// IPv4 (an IPv4-mapped IPv6 address too, as Go's `To4` reads it), else 16.
fn ip_hash(ip: std::net::IpAddr) -> u32 {
    let v4 = match ip {
        std::net::IpAddr::V4(v4) => Some(v4),
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    };
    let bytes = match (v4, ip) {
        (Some(v4), _) => v4.octets().to_vec(),
        (None, std::net::IpAddr::V6(v6)) => v6.octets().to_vec(),
        (None, std::net::IpAddr::V4(v4)) => v4.octets().to_vec(),
    };
    bytes.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Writes family headers and samples.
struct Families<'a, W: Write> {
    out: &'a mut W,
    labels: &'a [u8],
}

/// The value half of a sample line; each method ends the line.
struct Value<'a, W: Write>(&'a mut W);

impl<W: Write> Value<'_, W> {
    fn int(self, v: i64) -> io::Result<()> {
        writeln!(self.0, " {v}")
    }

    fn micros(self, us: u32) -> io::Result<()> {
        self.seconds(f64::from(us) / 1e6)
    }

    /// Rust's shortest round-trip form: `0.001234`, `1`, never an exponent.
    fn seconds(self, s: f64) -> io::Result<()> {
        writeln!(self.0, " {s}")
    }

    /// `11` is 1.1, `10` is 1, `20` is 2.
    fn version(self, v: u8) -> io::Result<()> {
        match v % 10 {
            0 => writeln!(self.0, " {}", v / 10),
            minor => writeln!(self.0, " {}.{minor}", v / 10),
        }
    }
}

impl<'a, W: Write> Families<'a, W> {
    fn header(&mut self, name: &str, help: &str) -> io::Result<()> {
        writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} gauge")
    }

    /// `name{target="...",k="v"}`, waiting for its value.
    fn sample(
        &mut self,
        name: &str,
        e: &Entry,
        extra: &[(&str, &str)],
    ) -> io::Result<Value<'_, W>> {
        let label = &self.labels[e.label_at as usize..][..e.label_len as usize];
        write!(self.out, "{name}{{target=\"")?;
        self.out.write_all(label)?;
        self.out.write_all(b"\"")?;
        for (k, v) in extra {
            // Our own label values: fixed words that need no escaping.
            write!(self.out, ",{k}=\"{v}\"")?;
        }
        self.out.write_all(b"}")?;
        Ok(Value(&mut *self.out))
    }

    fn run_sample(&mut self, name: &str, labels: &[(&str, &str)]) -> io::Result<Value<'_, W>> {
        self.out.write_all(name.as_bytes())?;
        if !labels.is_empty() {
            let list: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            write!(self.out, "{{{}}}", list.join(","))?;
        }
        Ok(Value(&mut *self.out))
    }

    /// One family with one sample per entry; nothing at all when there are no entries.
    fn per_target<'e, I, F>(
        &mut self,
        name: &str,
        help: &str,
        entries: I,
        value: F,
    ) -> io::Result<()>
    where
        I: Iterator<Item = &'e Entry>,
        F: Fn(&Entry, Value<'_, W>) -> io::Result<()>,
    {
        let mut entries = entries.peekable();
        if entries.peek().is_none() {
            return Ok(());
        }
        self.header(name, help)?;
        for e in entries {
            let v = self.sample(name, e, &[])?;
            value(e, v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http::HeadParser;
    use crate::report::error::ProbeError;
    use crate::report::record::{CertInfo, ChainCert, Hop, Timing, TlsInfo};

    const MS: Duration = Duration::from_millis(1);

    fn head(bytes: &[u8]) -> HeadParser {
        let mut head = HeadParser::new(65536);
        let _ = head.feed(bytes);
        head
    }

    fn timing(marks: [Option<u64>; 5], total: u64) -> Timing {
        let at = |m: Option<u64>| m.map(|ms| MS * ms as u32);
        Timing {
            dns: at(marks[0]),
            connect: at(marks[1]),
            tls: at(marks[2]),
            proxy: None,
            first_byte: at(marks[3]),
            headers: at(marks[4]),
            total: MS * total as u32,
        }
    }

    fn record(
        index: u64,
        token: &[u8],
        response: Option<&[u8]>,
        error: Option<ErrorKind>,
    ) -> Record {
        let mut rec = Record::failed(
            index,
            index,
            token.to_vec(),
            None,
            ProbeError::new(ErrorKind::Io, "unused"),
        );
        rec.error = error.map(|k| ProbeError::new(k, "a sentence"));
        rec.head = response.map(head);
        rec.addr = Some("127.0.0.1:8080".parse().unwrap());
        rec.timing = timing([Some(1), Some(3), None, Some(6), Some(7)], 8);
        rec.attempts = 1;
        rec
    }

    /// 2090-01-02T03:04:05Z
    const Y2090: i64 = 3_787_009_445;

    fn tls(version: TlsVersion, not_after: i64) -> Box<TlsInfo> {
        Box::new(TlsInfo {
            version: Some(version),
            cipher: Some("TLS_AES_128_GCM_SHA256".into()),
            verified: true,
            alpn: None,
            cert: Some(CertInfo {
                subject: "CN=probe.test".into(),
                issuer: "CN=headprobe test CA".into(),
                not_before: 1_614_834_367,
                not_after,
                san: vec!["probe.test".into(), "127.0.0.1".into(), "b.test".into()],
                sha256: "00ff".into(),
                days_left: 1000,
                expired: false,
                serial: "0a1b".into(),
                subject_rfc2253: "CN=probe.test,O=Q\\,\"uote".into(),
                issuer_rfc2253: "CN=headprobe test CA".into(),
            }),
            chain: vec![ChainCert {
                subject: "CN=probe.test".into(),
                issuer: "CN=headprobe test CA".into(),
                not_after,
                sha256: "00ff".into(),
            }],
        })
    }

    fn render(m: &Metrics) -> String {
        let mut out = Vec::new();
        let run = RunFacts {
            duration: Duration::from_millis(1500),
            finished_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_250),
            probe_timeout: Duration::from_millis(2500),
        };
        m.render(&mut out, &run).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn render_all(recs: &[Record]) -> String {
        let mut m = Metrics::new();
        recs.iter().for_each(|r| m.add(r));
        render(&m)
    }

    /// The value of `name{labels}` as written (labels exactly as in the file).
    fn value<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
    }

    #[test]
    fn the_entry_stays_small() {
        assert!(
            std::mem::size_of::<Entry>() <= 96,
            "{} bytes per target",
            std::mem::size_of::<Entry>()
        );
    }

    #[test]
    fn labels_are_escaped_as_the_format_says() {
        let cases: &[(&[u8], &str)] = &[
            (b"http://a.test/", "http://a.test/"),
            (b"q\"uote", "q\\\"uote"),
            (b"back\\slash", "back\\\\slash"),
            (b"bad\xff", "bad\\\\xff"),
            (b"tab\tesc\x1b", "tab\\\\x09esc\\\\x1b"),
            (b"nl\n", "nl\\\\x0a"),
            ("caf\u{e9}".as_bytes(), "caf\u{e9}"),
        ];
        for (token, want) in cases {
            let mut out = Vec::new();
            escape_label(&mut out, token);
            assert_eq!(String::from_utf8(out).unwrap(), *want, "{token:?}");
        }
    }

    /// Every family once, its header first, its samples together: what promtool checks.
    #[test]
    fn families_are_grouped_with_one_header_each() {
        let recs = [
            record(0, b"a", Some(b"HTTP/1.1 200 OK\r\n\r\n"), None),
            record(1, b"b", None, Some(ErrorKind::Refused)),
        ];
        let text = render_all(&recs);
        let mut seen: Vec<String> = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap().to_string();
                assert!(!seen.contains(&name), "{name} twice:\n{text}");
                seen.push(name.clone());
                current = name;
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                assert_eq!(rest, format!("{current} gauge"));
            } else {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(name, current, "{line} outside its family:\n{text}");
            }
        }
        assert_eq!(
            seen,
            [
                "probe_success",
                "probe_duration_seconds",
                "probe_timeout_seconds",
                "probe_http_status_code",
                "probe_http_version",
                "probe_http_ssl",
                "probe_http_redirects",
                "probe_http_content_length",
                "probe_http_duration_seconds",
                "probe_dns_lookup_time_seconds",
                "probe_ip_protocol",
                "probe_ip_addr_hash",
                "probe_failed_due_to_regex",
                "headprobe_probe_error",
                "headprobe_targets",
                "headprobe_target_errors",
                "headprobe_duplicate_targets",
                "headprobe_run_duration_seconds",
                "headprobe_last_run_timestamp_seconds",
            ]
        );
        assert!(!text.contains('\r'));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn values_for_each_kind_of_record() {
        let ok = record(0, b"ok", Some(b"HTTP/1.1 200 OK\r\n\r\n"), None);
        let not_found = record(1, b"404", Some(b"HTTP/1.0 404 Not Found\r\n\r\n"), None);
        let mut refused = record(2, b"refused", None, Some(ErrorKind::Refused));
        refused.timing = timing([Some(1), None, None, None, None], 2);
        let mut timeout = record(
            3,
            b"timeout",
            Some(b"HTTP/1.1 200 OK\r\nA: 1\r\n"),
            Some(ErrorKind::Timeout),
        );
        timeout.timing = timing([None, Some(2), None, Some(4), None], 1000);
        let mut https = record(4, b"https", Some(b"HTTP/1.1 200 OK\r\n\r\n"), None);
        https.tls = Some(tls(TlsVersion::Tls13, Y2090));
        https.addr = Some("[::1]:443".parse().unwrap());
        https.timing = timing([Some(1), Some(2), Some(5), Some(9), Some(10)], 11);
        let mut redirected = record(5, b"redirect", Some(b"HTTP/1.1 204 No\r\n\r\n"), None);
        redirected.redirects = vec![Hop {
            url: "http://x/".into(),
            status: 301,
            location: "/y".into(),
            head: None,
        }];
        let mismatch = record(
            6,
            b"mismatch",
            Some(b"HTTP/1.1 200 OK\r\n\r\n"),
            Some(ErrorKind::HeaderMismatch),
        );
        let mut tls_failed = record(7, b"tls_failed", None, Some(ErrorKind::Tls));
        tls_failed.tls = Some(tls(TlsVersion::Tls12, 946_684_800));
        let mut invalid = record(8, b"bad token", None, Some(ErrorKind::InvalidTarget));
        invalid.addr = None;
        invalid.timing = Timing::default();
        let mut h2 = record(9, b"h2", Some(b"HTTP/2 200\r\n\r\n"), None);
        h2.head = Some(head(b"HTTP/2.0 200 OK\r\n\r\n"));
        let text = render_all(&[
            ok, not_found, refused, timeout, https, redirected, mismatch, tls_failed, invalid, h2,
        ]);
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("ok", "probe_success", Some("1")),
            ("ok", "probe_http_status_code", Some("200")),
            ("ok", "probe_http_version", Some("1.1")),
            ("ok", "probe_http_ssl", Some("0")),
            ("ok", "probe_http_redirects", Some("0")),
            ("ok", "probe_duration_seconds", Some("0.008")),
            ("ok", "probe_dns_lookup_time_seconds", Some("0.001")),
            ("ok", "probe_ip_protocol", Some("4")),
            ("ok", "probe_failed_due_to_regex", Some("0")),
            ("ok", "probe_ssl_earliest_cert_expiry", None),
            ("ok", "headprobe_probe_error", None),
            // No --expect-status: a 404 is an answer, as the record says.
            ("404", "probe_success", Some("1")),
            ("404", "probe_http_status_code", Some("404")),
            ("404", "probe_http_version", Some("1")),
            ("refused", "probe_success", Some("0")),
            ("refused", "probe_http_status_code", Some("0")),
            ("refused", "probe_http_version", Some("0")),
            ("timeout", "probe_success", Some("0")),
            ("timeout", "probe_duration_seconds", Some("1")),
            ("timeout", "probe_dns_lookup_time_seconds", Some("0")),
            ("https", "probe_http_ssl", Some("1")),
            (
                "https",
                "probe_ssl_earliest_cert_expiry",
                Some("3787009445"),
            ),
            ("https", "probe_ip_protocol", Some("6")),
            ("redirect", "probe_http_redirects", Some("1")),
            ("redirect", "probe_http_status_code", Some("204")),
            ("mismatch", "probe_success", Some("0")),
            ("mismatch", "probe_failed_due_to_regex", Some("1")),
            ("mismatch", "probe_http_status_code", Some("200")),
            // No response over TLS: nothing about the final response's TLS.
            ("tls_failed", "probe_http_ssl", Some("0")),
            ("tls_failed", "probe_ssl_earliest_cert_expiry", None),
            ("bad token", "probe_ip_protocol", Some("0")),
            ("bad token", "probe_duration_seconds", Some("0")),
            ("h2", "probe_http_version", Some("2")),
        ];
        for (target, name, want) in cases {
            let series = format!("{name}{{target=\"{target}\"}}");
            assert_eq!(value(&text, &series), *want, "{series}\n{text}");
        }
        let labelled: &[(&str, Option<&str>)] = &[
            (
                r#"probe_tls_version_info{target="https",version="TLS 1.3"}"#,
                Some("1"),
            ),
            (
                r#"headprobe_probe_error{target="refused",kind="refused"}"#,
                Some("1"),
            ),
            (
                r#"headprobe_probe_error{target="timeout",kind="timeout"}"#,
                Some("1"),
            ),
            (
                r#"headprobe_probe_error{target="mismatch",kind="header_mismatch"}"#,
                Some("1"),
            ),
            (
                r#"headprobe_probe_error{target="tls_failed",kind="tls"}"#,
                Some("1"),
            ),
            (
                r#"headprobe_probe_error{target="bad token",kind="invalid_target"}"#,
                Some("1"),
            ),
            (r#"headprobe_targets{result="ok"}"#, Some("5")),
            (r#"headprobe_targets{result="failed"}"#, Some("5")),
            (r#"headprobe_target_errors{kind="refused"}"#, Some("1")),
            (r#"headprobe_target_errors{kind="dns"}"#, Some("0")),
            ("headprobe_duplicate_targets", Some("0")),
            ("headprobe_run_duration_seconds", Some("1.5")),
            (
                "headprobe_last_run_timestamp_seconds",
                Some("1700000000.25"),
            ),
        ];
        for (series, want) in labelled {
            assert_eq!(value(&text, series), *want, "{series}\n{text}");
        }
        assert_eq!(text.matches("probe_tls_version_info{").count(), 1, "{text}");
    }

    #[test]
    fn tls_chain_header_and_address_families() {
        // An intermediate that expires before the leaf: the earliest is the chain's.
        let mut chained = record(0, b"chained", Some(b"HTTP/1.1 200 OK\r\n\r\n"), None);
        let mut t = tls(TlsVersion::Tls12, Y2090);
        t.cipher = Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into());
        t.chain.push(ChainCert {
            subject: "CN=intermediate".into(),
            issuer: "CN=root".into(),
            not_after: 2_000_000_000,
            sha256: "11".into(),
        });
        chained.tls = Some(t);
        chained.addr = Some("[::1]:443".parse().unwrap());
        // -k: no verified chain, so no last-chain expiry (blackbox writes year 1).
        let mut unverified = record(
            1,
            b"unverified",
            Some(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"),
            None,
        );
        let mut t = tls(TlsVersion::Tls13, Y2090);
        t.verified = false;
        unverified.tls = Some(t);
        let plain = record(
            2,
            b"plain",
            Some(b"HTTP/1.1 200 OK\r\nlast-modified: yesterday\r\ncontent-length: 0\r\n\r\n"),
            None,
        );
        let mut mapped = record(3, b"mapped", None, Some(ErrorKind::Refused));
        mapped.addr = Some("[::ffff:127.0.0.1]:80".parse().unwrap());
        let text = render_all(&[chained, unverified, plain, mapped]);
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"probe_ssl_earliest_cert_expiry{target="chained"}"#,
                Some("2000000000"),
            ),
            (
                r#"probe_ssl_last_chain_expiry_timestamp_seconds{target="chained"}"#,
                Some("2000000000"),
            ),
            (
                r#"probe_ssl_earliest_cert_expiry{target="unverified"}"#,
                Some("3787009445"),
            ),
            (
                r#"probe_ssl_last_chain_expiry_timestamp_seconds{target="unverified"}"#,
                None,
            ),
            (
                r#"probe_tls_cipher_info{target="chained",cipher="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}"#,
                Some("1"),
            ),
            (
                r#"probe_tls_cipher_info{target="unverified",cipher="TLS_AES_128_GCM_SHA256"}"#,
                Some("1"),
            ),
            (
                r#"probe_ssl_last_chain_info{target="chained",fingerprint_sha256="00ff",subject="CN=probe.test,O=Q\\,\"uote",issuer="CN=headprobe test CA",subjectalternative="probe.test,b.test",serialnumber="0a1b"}"#,
                Some("1"),
            ),
            (r#"probe_http_content_length{target="chained"}"#, Some("-1")),
            (
                r#"probe_http_content_length{target="unverified"}"#,
                Some("1234"),
            ),
            (r#"probe_http_content_length{target="plain"}"#, Some("0")),
            // No response at all: blackbox's empty response.
            (r#"probe_http_content_length{target="mapped"}"#, Some("0")),
            (
                r#"probe_http_last_modified_timestamp_seconds{target="unverified"}"#,
                Some("784111777"),
            ),
            (
                r#"probe_http_last_modified_timestamp_seconds{target="plain"}"#,
                None,
            ),
            (
                r#"probe_http_last_modified_timestamp_seconds{target="chained"}"#,
                None,
            ),
            // FNV-1a over 127.0.0.1's 4 bytes, ::1's 16; a mapped address is IPv4.
            (r#"probe_ip_addr_hash{target="plain"}"#, Some("3668918509")),
            (r#"probe_ip_addr_hash{target="mapped"}"#, Some("3668918509")),
            (
                r#"probe_ip_addr_hash{target="chained"}"#,
                Some("1751717746"),
            ),
            (r#"probe_timeout_seconds{target="plain"}"#, Some("2.5")),
        ];
        for (series, want) in cases {
            assert_eq!(value(&text, series), *want, "{series}\n{text}");
        }
        assert_eq!(
            text.matches("probe_ssl_last_chain_info{").count(),
            2,
            "{text}"
        );
    }

    /// `--only-failed`: ok records are not written, but the run-wide counts have them.
    #[test]
    fn hidden_records_count_but_are_not_written() {
        let mut m = Metrics::new();
        for i in 0..5 {
            let token = format!("t{i}");
            let rec = if i < 2 {
                record(i, token.as_bytes(), Some(b"HTTP/1.1 200 OK\r\n\r\n"), None)
            } else {
                record(i, token.as_bytes(), None, Some(ErrorKind::Refused))
            };
            if rec.ok() {
                m.count_hidden(&rec);
            } else {
                m.add(&rec);
            }
        }
        let text = render(&m);
        assert_eq!(text.matches("probe_success{").count(), 3, "{text}");
        assert_eq!(value(&text, r#"headprobe_targets{result="ok"}"#), Some("2"));
        assert_eq!(
            value(&text, r#"headprobe_targets{result="failed"}"#),
            Some("3")
        );
        assert_eq!(
            value(&text, r#"headprobe_target_errors{kind="refused"}"#),
            Some("3")
        );
    }

    #[test]
    fn phases_follow_blackbox_definitions() {
        let phase = |text: &str, target: &str, p: &str| {
            let series =
                format!("probe_http_duration_seconds{{target=\"{target}\",phase=\"{p}\"}}");
            value(text, &series).map(str::to_string)
        };
        let mut https = record(0, b"https", Some(b"HTTP/1.1 200 OK\r\n\r\n"), None);
        https.tls = Some(tls(TlsVersion::Tls13, Y2090));
        https.timing = timing([Some(1), Some(3), Some(6), Some(10), Some(15)], 16);
        let plain = record(1, b"plain", Some(b"HTTP/1.1 200 OK\r\n\r\n"), None);
        let mut literal = record(2, b"literal", Some(b"HTTP/1.1 200 OK\r\n\r\n"), None);
        literal.timing = timing([None, Some(2), None, Some(5), Some(5)], 6);
        let mut refused = record(3, b"refused", None, Some(ErrorKind::Refused));
        refused.timing = timing([Some(1), None, None, None, None], 2);
        let text = render_all(&[https, plain, literal, refused]);
        let cases = [
            ("https", ["0.001", "0.002", "0.003", "0.004", "0.005"]),
            // marks 1, 3, -, 6, 7
            ("plain", ["0.001", "0.002", "0", "0.003", "0.001"]),
            ("literal", ["0", "0.002", "0", "0.003", "0"]),
            ("refused", ["0.001", "0", "0", "0", "0"]),
        ];
        for (target, want) in cases {
            for (p, w) in PHASES.iter().zip(want) {
                assert_eq!(
                    phase(&text, target, p).as_deref(),
                    Some(w),
                    "{target} {p}\n{text}"
                );
            }
        }
    }

    /// Records arrive as probes finish; the file is in input order all the same.
    #[test]
    fn arrival_order_does_not_matter() {
        let recs: Vec<Record> = (0..5)
            .map(|i| {
                let token = format!("t{i}");
                record(i, token.as_bytes(), Some(b"HTTP/1.1 200 OK\r\n\r\n"), None)
            })
            .collect();
        let forward = render_all(&recs);
        let mut shuffled = recs.clone();
        shuffled.swap(0, 3);
        shuffled.swap(1, 4);
        assert_eq!(render_all(&shuffled), forward);
        let targets: Vec<&str> = forward
            .lines()
            .filter_map(|l| l.strip_prefix("probe_success{target=\""))
            .map(|l| &l[..2])
            .collect();
        assert_eq!(targets, ["t0", "t1", "t2", "t3", "t4"]);
    }

    #[test]
    fn duplicates_keep_the_first_occurrence_and_are_counted() {
        let ok = |i, t: &[u8]| record(i, t, Some(b"HTTP/1.1 200 OK\r\n\r\n"), None);
        let failed = |i, t: &[u8]| record(i, t, None, Some(ErrorKind::Refused));
        let cases: Vec<(&str, Vec<Record>, &str, usize, &str)> = vec![
            (
                "first ok wins",
                vec![ok(0, b"a"), failed(1, b"a")],
                "1",
                1,
                "1",
            ),
            (
                "first failed wins",
                vec![failed(0, b"a"), ok(1, b"a")],
                "0",
                1,
                "1",
            ),
            // Arrival order is not input order: the lower index still wins.
            ("by index", vec![ok(5, b"a"), failed(2, b"a")], "0", 1, "1"),
            (
                "thrice",
                vec![ok(0, b"a"), ok(1, b"a"), failed(2, b"a")],
                "1",
                1,
                "2",
            ),
            // Different tokens, one label: the byte 0xff and the text \xff.
            (
                "same label",
                vec![ok(0, b"\\xff"), failed(1, b"\xff")],
                "1",
                1,
                "1",
            ),
            ("distinct", vec![ok(0, b"a"), ok(1, b"b")], "1", 2, "0"),
        ];
        for (what, recs, success, samples, dups) in cases {
            let text = render_all(&recs);
            let first = text
                .lines()
                .find(|l| l.starts_with("probe_success{"))
                .unwrap();
            assert_eq!(first.rsplit(' ').next(), Some(success), "{what}\n{text}");
            assert_eq!(
                text.matches("probe_success{").count(),
                samples,
                "{what}\n{text}"
            );
            assert_eq!(
                value(&text, "headprobe_duplicate_targets"),
                Some(dups),
                "{what}"
            );
            let total: usize = ["ok", "failed"]
                .iter()
                .map(|r| {
                    value(&text, &format!("headprobe_targets{{result=\"{r}\"}}"))
                        .unwrap()
                        .parse::<usize>()
                        .unwrap()
                })
                .sum();
            assert_eq!(total, recs.len(), "{what}: counts include duplicates");
            // No two samples share a name and labels.
            let mut series: Vec<&str> = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.rsplit_once(' ').map(|(s, _)| s))
                .collect();
            let n = series.len();
            series.sort_unstable();
            series.dedup();
            assert_eq!(series.len(), n, "{what}\n{text}");
        }
    }

    #[test]
    fn an_empty_run_still_says_when_it_ran() {
        let text = render(&Metrics::new());
        assert!(!text.contains("probe_success"), "{text}");
        assert_eq!(value(&text, r#"headprobe_targets{result="ok"}"#), Some("0"));
        assert_eq!(
            value(&text, "headprobe_last_run_timestamp_seconds"),
            Some("1700000000.25")
        );
    }
}
