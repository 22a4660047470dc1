//! The printer: the one place that formats results and writes them to stdout.
//!
//! Generic over `io::Write` so tests print into a `Vec<u8>`.

use std::collections::HashMap;
use std::io::{self, Write};

use super::prometheus::{Metrics, RunFacts};
use super::sanitize::escape_into;
use crate::report::record::{Record, Streamed};

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `TARGET header > LINE`, streamed as lines arrive.
    Text,
    /// One tab-separated line per target.
    Status,
    /// One JSON object per line per target.
    Json,
    /// The Prometheus text exposition format, written whole at the end of the run.
    Prometheus,
}

impl Format {
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "text" => Some(Format::Text),
            "status" => Some(Format::Status),
            "json" => Some(Format::Json),
            "prometheus" => Some(Format::Prometheus),
            _ => None,
        }
    }
}

/// Formats lines and records onto `out`.
pub struct Printer<W: Write> {
    out: W,
    format: Format,
    line: Vec<u8>,
    /// What was already printed of probes still running (`text`, streamed), by `Probe`.
    shown: HashMap<Probe, Shown>,
    /// `prometheus`: every record folded in, written by `finish`.
    metrics: Option<Box<Metrics>>,
}

/// Which probe streamed something: the record's `seq`, and with `--all-addresses` the
/// address's position among the name's (0 otherwise).
pub type Probe = (u64, u32);

/// The `Probe` a record is the result of.
pub fn probe_of(rec: &Record) -> Probe {
    (rec.seq, rec.one_of.map_or(0, |o| o.position))
}

/// How much of one probe's output is already out: whole redirect hops, then the head
/// lines and `tls >` line of the hop in progress.
#[derive(Debug, Default, Clone, Copy)]
struct Shown {
    hops: usize,
    lines: usize,
    tls: bool,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, format: Format) -> Self {
        Printer {
            out,
            format,
            line: Vec::with_capacity(512),
            shown: HashMap::new(),
            metrics: (format == Format::Prometheus).then(Box::default),
        }
    }

    /// The end of the run: formats that write once (`prometheus`) write now, onto
    /// `out` (it can be large: 100,000 targets are over 100 MB of text, which is
    /// written as it is formatted, never held whole).
    pub fn finish<X: Write>(&mut self, run: &RunFacts, out: &mut X) -> io::Result<()> {
        match &self.metrics {
            Some(metrics) => metrics.render(out, run),
            None => Ok(()),
        }
    }

    /// Head lines of probe `seq` that just arrived (`text` format only).
    pub fn lines<L: AsRef<[u8]>>(
        &mut self,
        seq: Probe,
        token: &[u8],
        lines: &[L],
    ) -> io::Result<()> {
        self.shown.entry(seq).or_default().lines += lines.len();
        self.line.clear();
        for line in lines {
            text_line(&mut self.line, token, b"header", line.as_ref());
        }
        self.out.write_all(&self.line)
    }

    /// The `tls >` line of probe `seq` (`text` format only).
    pub fn tls_line(&mut self, seq: Probe, token: &[u8], summary: &str) -> io::Result<()> {
        self.shown.entry(seq).or_default().tls = true;
        self.line.clear();
        text_line(&mut self.line, token, b"tls", summary.as_bytes());
        self.out.write_all(&self.line)
    }

    /// Something probe `seq` streamed as it happened (`text` format only).
    pub fn streamed(&mut self, seq: Probe, token: &[u8], what: Streamed) -> io::Result<()> {
        match what {
            Streamed::Lines(lines) => self.lines(seq, token, &lines),
            Streamed::Tls(summary) => self.tls_line(seq, token, &summary),
            Streamed::Redirect(url) => {
                let shown = self.shown.entry(seq).or_default();
                *shown = Shown {
                    hops: shown.hops + 1,
                    ..Shown::default()
                };
                self.note(token, b"redirect", url.as_bytes())
            }
            Streamed::Retry(why) => {
                self.shown.insert(seq, Shown::default());
                self.note(token, b"retry", why.as_bytes())
            }
        }
    }

    fn note(&mut self, token: &[u8], what: &[u8], text: &[u8]) -> io::Result<()> {
        self.line.clear();
        text_line(&mut self.line, token, what, text);
        self.out.write_all(&self.line)
    }

    /// Drops what is known of probe `seq`'s streamed output (its record is not printed).
    pub fn forget(&mut self, seq: Probe) {
        self.shown.remove(&seq);
    }

    /// A record that is not printed (`--only-failed`) still counts in the run-wide
    /// totals of formats that have them (`prometheus`).
    pub fn count_hidden(&mut self, rec: &Record) {
        if let Some(metrics) = &mut self.metrics {
            metrics.count_hidden(rec);
        }
    }

    /// A finished probe: in `text`, the head lines not yet streamed and the error line.
    pub fn record(&mut self, rec: &Record) -> io::Result<()> {
        self.line.clear();
        match self.format {
            Format::Text => {
                let shown = self.shown.remove(&probe_of(rec)).unwrap_or_default();
                let token = rec.text_token();
                let token = &token[..];
                // Hops not streamed (`--ordered`): their lines, then where they led.
                for (i, hop) in rec.redirects.iter().enumerate().skip(shown.hops) {
                    for line in hop.head.iter().flat_map(|h| h.lines()) {
                        text_line(&mut self.line, token, b"header", line);
                    }
                    let next = rec.redirects.get(i + 1).map(|h| h.url.as_str());
                    if let Some(url) = next.or(rec.final_url.as_deref()) {
                        text_line(&mut self.line, token, b"redirect", url.as_bytes());
                    }
                }
                let shown = if shown.hops == rec.redirects.len() {
                    shown
                } else {
                    Shown::default()
                };
                if let (Some(tls), false) = (&rec.tls, shown.tls) {
                    text_line(&mut self.line, token, b"tls", tls.summary().as_bytes());
                }
                if let Some(head) = &rec.head {
                    for line in head.lines().skip(shown.lines) {
                        text_line(&mut self.line, token, b"header", line);
                    }
                }
                if let Some(err) = &rec.error {
                    let message = format!("{}: {}", err.kind, err.message);
                    text_line(&mut self.line, token, b"error", message.as_bytes());
                }
            }
            Format::Status => status_line(&mut self.line, rec),
            Format::Json => {
                super::json::write(&mut self.line, rec).map_err(io::Error::other)?;
                self.line.push(b'\n');
            }
            Format::Prometheus => {
                if let Some(metrics) = &mut self.metrics {
                    metrics.add(rec);
                }
            }
        }
        self.out.write_all(&self.line)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl Printer<Vec<u8>> {
    /// The output formatted so far, leaving the printer empty.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.out, Vec::with_capacity(4096))
    }
}

fn text_line(out: &mut Vec<u8>, token: &[u8], what: &[u8], line: &[u8]) {
    escape_into(out, token, false);
    out.push(b' ');
    out.extend_from_slice(what);
    out.extend_from_slice(b" > ");
    escape_into(out, line, false);
    out.push(b'\n');
}

/// `TARGET \t CODE_OR_KIND \t TOTAL_MS \t ADDR \t DETAIL`
fn status_line(out: &mut Vec<u8>, rec: &Record) {
    escape_into(out, &rec.token, true);
    out.push(b'\t');
    // Writing into a Vec cannot fail.
    match (&rec.error, rec.status()) {
        (Some(err), _) => out.extend_from_slice(err.kind.name().as_bytes()),
        (None, Some(code)) => {
            let _ = write!(out, "{code}");
        }
        (None, None) => out.push(b'-'),
    }
    let _ = write!(out, "\t{}\t", rec.timing.total.as_millis());
    match rec.addr {
        Some(addr) => {
            let _ = write!(out, "{addr}");
        }
        None => out.push(b'-'),
    }
    out.push(b'\t');
    match &rec.error {
        Some(err) => escape_into(out, err.message.as_bytes(), true),
        None => {
            let head = rec.head.as_ref();
            if let Some((head, block)) = head.and_then(|h| Some((h, h.final_block()?))) {
                escape_into(out, head.reason(block), true);
            }
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http::HeadParser;
    use crate::proto::target;
    use crate::report::error::{ErrorKind, ProbeError};
    use crate::report::record::Timing;
    use std::time::Duration;

    fn record(token: &str, response: &[u8], error: Option<ProbeError>) -> Record {
        let mut head = HeadParser::new(65536);
        let _ = head.feed(response);
        Record {
            seq: 0,
            index: 0,
            token: token.as_bytes().to_vec(),
            target: target::parse(token, &target::Defaults::default()).ok(),
            addr: Some("127.0.0.1:8080".parse().unwrap()),
            resolved: None,
            head: Some(head),
            tls: None,
            via: None,
            error,
            timing: Timing {
                dns: None,
                connect: Some(Duration::from_micros(1234)),
                tls: None,
                proxy: None,
                first_byte: Some(Duration::from_micros(2345)),
                headers: Some(Duration::from_micros(2399)),
                total: Duration::from_micros(2450),
            },
            redirects: Vec::new(),
            final_url: None,
            attempts: 1,
            one_of: None,
        }
    }

    fn print(format: Format, rec: &Record) -> String {
        let mut p = Printer::new(Vec::new(), format);
        p.record(rec).unwrap();
        String::from_utf8(p.into_inner()).unwrap()
    }

    #[test]
    fn text_prints_raw_lines_then_the_error() {
        let ok = record(
            "127.0.0.1:8080",
            b"HTTP/1.1 200 OK\r\nA: 1\r\n  2\r\n\r\n",
            None,
        );
        assert_eq!(
            print(Format::Text, &ok),
            "127.0.0.1:8080 header > HTTP/1.1 200 OK\n127.0.0.1:8080 header > A: 1\n127.0.0.1:8080 header >   2\n"
        );
        let mut p = Printer::new(Vec::new(), Format::Text);
        p.lines(
            (0, 0),
            b"127.0.0.1:8080",
            &[&b"HTTP/1.1 200 OK"[..], b"A: 1"],
        )
        .unwrap();
        p.out.clear();
        p.record(&ok).unwrap();
        assert_eq!(
            String::from_utf8(p.into_inner()).unwrap(),
            "127.0.0.1:8080 header >   2\n"
        );
        let err = record(
            "127.0.0.1:8080",
            b"HTTP/1.1 200 OK\r\n",
            Some(ProbeError::new(
                ErrorKind::Timeout,
                "no end of the header block within 1s",
            )),
        );
        assert_eq!(
            print(Format::Text, &err),
            "127.0.0.1:8080 header > HTTP/1.1 200 OK\n127.0.0.1:8080 error > timeout: no end of the header block within 1s\n"
        );
    }

    #[test]
    fn text_escapes_peer_bytes_and_the_token() {
        let rec = record("x\x1b", b"HTTP/1.1 200 O\x1bK\x07\tz\xff\r\n\r\n", None);
        assert_eq!(
            print(Format::Text, &rec),
            "x\\x1b header > HTTP/1.1 200 O\\x1bK\\x07\tz\\xff\n"
        );
    }

    #[test]
    fn streamed_lines() {
        let mut p = Printer::new(Vec::new(), Format::Text);
        p.lines((7, 0), b"t", &[&b"HTTP/1.0 200 OK"[..], b"A: \x1b"])
            .unwrap();
        assert_eq!(
            String::from_utf8(p.into_inner()).unwrap(),
            "t header > HTTP/1.0 200 OK\nt header > A: \\x1b\n"
        );
    }

    #[test]
    fn status_lines() {
        let ok = record("127.0.0.1:8080", b"HTTP/1.1 404 Not\tFound\r\n\r\n", None);
        assert_eq!(
            print(Format::Status, &ok),
            "127.0.0.1:8080\t404\t2\t127.0.0.1:8080\tNot\\x09Found\n"
        );
        let mut bad = Record::failed(
            0,
            0,
            b"bad\ttoken".to_vec(),
            None,
            ProbeError::new(ErrorKind::InvalidTarget, "a target cannot contain spaces"),
        );
        bad.timing.total = Duration::ZERO;
        assert_eq!(
            print(Format::Status, &bad),
            "bad\\x09token\tinvalid_target\t0\t-\ta target cannot contain spaces\n"
        );
    }
}
