//! Targets streamed from arguments, files and standard input, in that order.
//!
//! Runs on its own thread with blocking reads and hands targets on through a bounded
//! channel, so probing starts before the input ends and memory does not grow with it.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::sync::{Arc, Mutex};

use async_channel::Sender;

use crate::proto::proxy::{self, Proxy};
use crate::proto::target::{self, Defaults};
use crate::proto::Job;
use crate::run::lines::{read_line, LineEnd};
use crate::run::options::RunOptions;
use crate::run::resume::Resume;
use crate::run::usage::UsageError;

/// A line longer than this (without its line ending) is not a target: it is an
/// `invalid_target` record saying so, never cut short and probed.
pub const MAX_LINE: usize = 64 * 1024;

/// How much of an overlong line its record echoes as `target`, before a marker giving
/// the length.
const LONG_LINE_ECHO: usize = 64;

/// One target read from the input, parsed.
#[derive(Debug)]
pub struct Item {
    /// Position among the items handed on (after `--shard` and `--resume`): the order
    /// `--ordered` restores.
    pub seq: u64,
    /// 0-based position in the whole input, counting every target read (invalid ones
    /// included): what `--shard` and `--resume` go by, and JSON's `index`.
    pub index: u64,
    /// The token as read (trimmed).
    pub token: Vec<u8>,
    pub target: Result<Job, String>,
    /// `--resume` with `--all-addresses`: the addresses of this target that already
    /// have a record.
    pub done: Vec<std::net::SocketAddr>,
}

enum Source {
    Arg(String),
    /// A file or standard input, with its name for messages.
    Reader(String, BufReader<Box<dyn Read + Send>>),
}

/// Items travel in batches, so the probing thread is woken once per batch, not per
/// target. A batch is sent when full, or before a read that may block.
pub const BATCH: usize = 64;

struct Batcher {
    batch: Vec<Item>,
    tx: Sender<Vec<Item>>,
}

impl Batcher {
    /// False once the receiver is gone.
    fn push(&mut self, item: Item) -> bool {
        self.batch.push(item);
        self.batch.len() < BATCH || self.flush()
    }

    fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.tx.send_blocking(batch).is_ok()
    }
}

/// The opened input: every `--file` (and `--resume`) is opened up front, so an
/// unreadable one is a usage error before anything is probed.
pub struct Input {
    sources: Vec<Source>,
    defaults: Defaults,
    /// `--proxy-check`: tokens are proxies, with this default port.
    proxies: Option<u16>,
    shard: Option<(u64, u64)>,
    resume: Option<Arc<Resume>>,
    /// How many targets there are, when that is known before reading (arguments only).
    pub known_total: Option<u64>,
    end: Arc<Mutex<Option<InputEnd>>>,
}

/// What reading the input came to.
#[derive(Debug, Default)]
pub struct InputReport {
    /// Targets read, before `--shard`.
    pub read: u64,
    /// A read error that ended a file early.
    pub error: Option<String>,
}

/// Notes for stderr once the whole input has been read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InputEnd {
    /// Warnings, each a sentence without the `headprobe: ` prefix.
    pub notes: Vec<String>,
}

impl Input {
    /// With `keep`, the `--resume` records that count as done are copied there.
    pub fn open(cfg: &RunOptions, keep: Option<&mut dyn Write>) -> Result<Input, UsageError> {
        let mut files = cfg.files.clone();
        if cfg.targets.is_empty() && files.is_empty() {
            if io::stdin().is_terminal() {
                return Err(UsageError(
                    "no targets: give them as arguments, with -f FILE, or on standard input \
                     (see --help)"
                        .into(),
                ));
            }
            files.push("-".into());
        }
        // A positional `-` is standard input, read at its place among the arguments.
        let mut sources = Vec::with_capacity(cfg.targets.len() + files.len());
        for arg in &cfg.targets {
            sources.push(match arg.as_str() {
                "-" => open_reader("-")?,
                _ => Source::Arg(arg.clone()),
            });
        }
        for path in &files {
            sources.push(open_reader(path)?);
        }
        let resume = cfg
            .resume
            .as_deref()
            .map(|path| Resume::load(path, cfg.shard, keep))
            .transpose()?;
        let resume = resume.map(Arc::new);
        let args_only = files.is_empty() && !cfg.targets.iter().any(|t| t == "-");
        let known_total =
            args_only.then(|| to_probe(cfg.targets.len() as u64, cfg.shard, resume.as_deref()));
        Ok(Input {
            sources,
            defaults: cfg.defaults.clone(),
            proxies: cfg.probe.proxy_check.as_ref().map(|c| c.default_port),
            shard: cfg.shard,
            resume,
            known_total,
            end: Arc::default(),
        })
    }

    /// When every source is an argument or a regular file, a count of the targets this
    /// run will probe, to be run on a thread of its own (it reads the files once more,
    /// so it can take a while, and probing need not wait for it).
    pub fn counting(&self) -> Option<impl FnOnce() -> Option<u64> + Send + 'static> {
        let mut args = 0u64;
        let mut files = Vec::new();
        for source in &self.sources {
            match source {
                Source::Arg(_) => args += 1,
                Source::Reader(path, _) if path != "-" => {
                    let regular = std::fs::metadata(path).is_ok_and(|m| m.is_file());
                    if !regular {
                        return None;
                    }
                    files.push(path.clone());
                }
                Source::Reader(..) => return None,
            }
        }
        let (shard, resume) = (self.shard, self.resume.clone());
        Some(move || {
            let mut n = args;
            for path in files {
                let file = File::open(path).ok()?;
                n += targets_in(BufReader::with_capacity(256 * 1024, file)).ok()?;
            }
            Some(to_probe(n, shard, resume.as_deref()))
        })
    }

    /// Problems found in the `--resume` file, for stderr before probing starts.
    pub fn resume_problems(&self) -> Option<String> {
        self.resume.as_deref().and_then(Resume::problems)
    }

    /// Where the notes of a completed read will be, for whoever reports after the run:
    /// `None` there means the input was not read to its end.
    pub fn end_notes(&self) -> Arc<Mutex<Option<InputEnd>>> {
        Arc::clone(&self.end)
    }

    /// Reads every source, sending targets on `tx` in batches; stops early when `tx`
    /// closes.
    pub fn run(self, tx: Sender<Vec<Item>>) -> InputReport {
        let Input {
            sources,
            defaults,
            proxies,
            shard,
            resume,
            end,
            ..
        } = self;
        let mut reading = Reading {
            defaults: &defaults,
            proxies,
            shard,
            resume: resume.as_deref(),
            batcher: Batcher {
                batch: Vec::with_capacity(BATCH),
                tx,
            },
            report: InputReport::default(),
            seq: 0,
            skipped: 0,
        };
        for source in sources {
            let more = match source {
                Source::Arg(arg) => reading.send(arg_bytes(&arg).trim_ascii().to_vec(), None),
                Source::Reader(path, reader) => reading.read_lines(&path, reader),
            };
            if !more {
                return reading.report;
            }
        }
        reading.batcher.flush();
        let notes = reading.end_notes();
        if let Ok(mut end) = end.lock() {
            *end = Some(InputEnd { notes });
        }
        reading.report
    }
}

/// The input being read: every target read gets the next index; those in the shard and
/// not done by `--resume` get the next sequence number and go on in batches.
struct Reading<'a> {
    defaults: &'a Defaults,
    proxies: Option<u16>,
    shard: Option<(u64, u64)>,
    resume: Option<&'a Resume>,
    batcher: Batcher,
    report: InputReport,
    seq: u64,
    /// Targets `--resume` skipped.
    skipped: u64,
}

impl Reading<'_> {
    /// Numbers one target read (`invalid` says why it is no target) and hands it on
    /// if it is this run's to probe. False once the receiver is gone.
    fn send(&mut self, token: Vec<u8>, invalid: Option<String>) -> bool {
        let index = self.report.read;
        self.report.read += 1;
        if let Some((k, n)) = self.shard {
            if index % n != k {
                return true;
            }
        }
        if self.resume.is_some_and(|r| r.is_done(index)) {
            self.skipped += 1;
            return true;
        }
        let target = match (invalid, std::str::from_utf8(&token), self.proxies) {
            (Some(why), _, _) => Err(why),
            (None, Err(_), _) => Err("a target must be valid UTF-8".into()),
            (None, Ok(text), None) => target::parse(text, self.defaults).map(Job::Target),
            (None, Ok(text), Some(port)) => Proxy::parse(text, port).map(Job::Proxy),
        };
        // Credentials in a token (`user:pass@`) never go further than this.
        let token = if token.contains(&b'@') {
            proxy::redact(&String::from_utf8_lossy(&token)).into_bytes()
        } else {
            token
        };
        let done = self
            .resume
            .map(|r| r.done_addresses(index).to_vec())
            .unwrap_or_default();
        let item = Item {
            seq: self.seq,
            index,
            token,
            target,
            done,
        };
        self.seq += 1;
        self.batcher.push(item)
    }

    /// Every target line of one file: comments and blank lines skipped, an overlong
    /// line an `invalid_target` saying so. A read error ends the file (noted in the
    /// report). False once the receiver is gone.
    fn read_lines(&mut self, path: &str, mut reader: BufReader<Box<dyn Read + Send>>) -> bool {
        let name = if path == "-" { "standard input" } else { path };
        let mut line = Vec::new();
        let mut number = 0u64;
        loop {
            // The next read may wait on a slow pipe: hand on what we have first.
            if !reader.buffer().contains(&b'\n') && !self.batcher.flush() {
                return false;
            }
            let end = match read_line(&mut reader, &mut line, MAX_LINE) {
                Ok(Some(end)) => end,
                Ok(None) => return true,
                Err(e) => {
                    self.report.error = Some(format!(
                        "reading {name}: {}",
                        crate::report::error::os_text(&e)
                    ));
                    return true;
                }
            };
            number += 1;
            let more = match classify(&line, end, number == 1) {
                LineKind::Skip => true,
                LineKind::Target(token) => self.send(token.to_vec(), None),
                LineKind::TooLong(text) => {
                    let why = format!(
                        "line {number} of {name} is {} bytes long; a target line may be at \
                         most {MAX_LINE} bytes",
                        end.len
                    );
                    self.send(long_line_echo(text, end.len), Some(why))
                }
            };
            if !more {
                return false;
            }
        }
    }

    /// Notes about the input as a whole, once it was read to its end.
    fn end_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let report = &self.report;
        if report.read == 0 && report.error.is_none() {
            notes.push("warning: there were no targets in the input; nothing was probed".into());
        }
        if let Some(resume) = self.resume {
            if report.error.is_none() {
                notes.extend(resume.past_end(report.read));
            }
            if self.skipped > 0 {
                notes.push(format!(
                    "--resume {}: skipped {} {} that already had a record",
                    resume.path,
                    self.skipped,
                    if self.skipped == 1 {
                        "target"
                    } else {
                        "targets"
                    }
                ));
            }
        }
        notes
    }
}

fn open_reader(path: &str) -> Result<Source, UsageError> {
    let reader: Box<dyn Read + Send> = if path == "-" {
        return open_stdin();
    } else {
        let file = File::open(path).map_err(|e| {
            UsageError(format!(
                "cannot read --file {path}: {}",
                crate::report::error::os_text(&e)
            ))
        })?;
        let meta = file.metadata().ok();
        if meta.as_ref().is_some_and(|m| m.is_dir()) {
            return Err(UsageError(format!(
                "cannot read --file {path}: it is a directory"
            )));
        }
        if meta.is_some_and(|m| m.is_file()) {
            // A file that opens but cannot be read (/proc/self/mem, an I/O error) is a
            // usage error now, before anything is probed, not a failed run later. Only
            // for regular files: a pipe's first read could wait for its writer.
            let mut reader = BufReader::with_capacity(64 * 1024, Box::new(file) as Box<_>);
            if let Err(e) = reader.fill_buf() {
                return Err(UsageError(format!(
                    "cannot read --file {path}: {}",
                    crate::report::error::os_text(&e)
                )));
            }
            return Ok(Source::Reader(path.to_string(), reader));
        }
        Box::new(file)
    };
    Ok(Source::Reader(
        path.to_string(),
        BufReader::with_capacity(64 * 1024, reader),
    ))
}

/// Standard input as a source. Redirected from a directory (`-f - < /`) it is a usage
/// error, as an unreadable `--file` is; redirected from a regular file its first read
/// happens now, so that a read error is one too. A pipe or a terminal is not read
/// before probing starts: its first read could wait for its writer.
fn open_stdin() -> Result<Source, UsageError> {
    let mut reader = BufReader::with_capacity(64 * 1024, Box::new(io::stdin()) as Box<_>);
    let cannot = |why: String| UsageError(format!("cannot read standard input: {why}"));
    match stdin_kind() {
        Some(StdinKind::Directory) => return Err(cannot("it is a directory".into())),
        Some(StdinKind::File) => {
            if let Err(e) = reader.fill_buf() {
                return Err(cannot(crate::report::error::os_text(&e)));
            }
        }
        None => {}
    }
    Ok(Source::Reader("-".into(), reader))
}

#[cfg_attr(not(unix), allow(dead_code))]
enum StdinKind {
    Directory,
    File,
}

/// What standard input was redirected from, when it is a directory or a regular file.
#[cfg(unix)]
fn stdin_kind() -> Option<StdinKind> {
    use std::os::fd::AsFd;
    let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
    let meta = File::from(fd).metadata().ok()?;
    if meta.is_dir() {
        Some(StdinKind::Directory)
    } else if meta.is_file() {
        Some(StdinKind::File)
    } else {
        None
    }
}

/// Elsewhere standard input is read as it comes (a read error ends the run's input).
#[cfg(not(unix))]
fn stdin_kind() -> Option<StdinKind> {
    None
}

/// How a target argument that is not UTF-8 travels in `RunOptions::targets` (argh and
/// the options take `String`s): `\0raw:` and its bytes in hex. No argument can hold a
/// NUL, so nothing a user types reads as one.
const RAW_ARG: &str = "\0raw:";

/// `bytes`, a target argument, as a `String` that keeps every byte.
pub fn raw_arg(bytes: &[u8]) -> String {
    let mut s = String::from(RAW_ARG);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The bytes of a target argument as given (see `raw_arg`).
fn arg_bytes(arg: &str) -> Vec<u8> {
    let Some(hex) = arg.strip_prefix(RAW_ARG) else {
        return arg.as_bytes().to_vec();
    };
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// What one line of a target list is.
enum LineKind<'a> {
    /// Blank, or a comment.
    Skip,
    /// A target token, trimmed, its comment cut off.
    Target(&'a [u8]),
    /// A line over `MAX_LINE` (its start, as kept): an `invalid_target` saying so.
    TooLong(&'a [u8]),
}

/// Reads `line` (read by `read_line`, ending `end`; `first` for line 1, which may carry
/// a byte-order mark) as the input rules say.
fn classify(line: &[u8], end: LineEnd, first: bool) -> LineKind<'_> {
    let mut text = line;
    if first {
        text = text.strip_prefix("\u{feff}".as_bytes()).unwrap_or(text);
    }
    if end.len > MAX_LINE {
        let start = text.trim_ascii_start();
        return match start.starts_with(b"#") {
            true => LineKind::Skip,
            false => LineKind::TooLong(start),
        };
    }
    match strip_comment(text.trim_ascii()).trim_ascii() {
        [] => LineKind::Skip,
        token => LineKind::Target(token),
    }
}

/// How many targets a list holds, by the same rules as reading it.
fn targets_in(mut reader: impl BufRead) -> io::Result<u64> {
    let (mut line, mut n, mut first) = (Vec::new(), 0u64, true);
    while let Some(end) = read_line(&mut reader, &mut line, MAX_LINE)? {
        if !matches!(classify(&line, end, first), LineKind::Skip) {
            n += 1;
        }
        first = false;
    }
    Ok(n)
}

/// Of `n` targets read, how many this run probes: those in `--shard` and not done by
/// `--resume`.
fn to_probe(n: u64, shard: Option<(u64, u64)>, resume: Option<&Resume>) -> u64 {
    let skipped = |i: &u64| resume.is_some_and(|r| r.is_done(*i));
    match shard {
        // Indices k, k + N, ... below n (no overflow for any N a user types).
        Some((k, n_shards)) => {
            let in_shard = n / n_shards + u64::from(k < n % n_shards);
            match resume {
                None => in_shard,
                Some(_) => (0..in_shard)
                    .map(|j| k + j * n_shards)
                    .filter(|i| !skipped(i))
                    .count() as u64,
            }
        }
        None => (0..n).filter(|i| !skipped(i)).count() as u64,
    }
}

/// A trimmed line without its comment: `#` at the start, or after a space or tab, runs
/// to the end of the line (`example.com  # main site`). A `#` inside a token (a URL's
/// fragment) is part of the token.
fn strip_comment(line: &[u8]) -> &[u8] {
    let mut prev = b' ';
    for (i, &b) in line.iter().enumerate() {
        if b == b'#' && (prev == b' ' || prev == b'\t') {
            return &line[..i];
        }
        prev = b;
    }
    line
}

/// What the record of an overlong line shows as its target: the line's first bytes (cut
/// at a character boundary) and a marker that says how much is left out, so the echo
/// can never pass for the line itself.
fn long_line_echo(start: &[u8], len: usize) -> Vec<u8> {
    let mut cut = start.len().min(LONG_LINE_ECHO);
    while cut > 0 && cut < start.len() && (start[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    let mut echo = start[..cut].to_vec();
    echo.extend_from_slice(format!("[... {len}-byte line]").as_bytes());
    echo
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (seq, token, is a target) of every item.
    fn items(cfg: &RunOptions) -> Vec<(u64, String, bool)> {
        full_items(cfg)
            .into_iter()
            .map(|i| {
                (
                    i.seq,
                    String::from_utf8_lossy(&i.token).into_owned(),
                    i.target.is_ok(),
                )
            })
            .collect()
    }

    fn full_items(cfg: &RunOptions) -> Vec<Item> {
        let input = Input::open(cfg, None).unwrap();
        let (tx, rx) = async_channel::bounded(4);
        let handle = std::thread::spawn(move || input.run(tx));
        let mut out = Vec::new();
        while let Ok(item) = rx.recv_blocking().map(|b| b.into_iter()) {
            out.extend(item);
        }
        handle.join().unwrap();
        out
    }

    #[test]
    fn files_skip_comments_blanks_and_trim() {
        let dir = std::env::temp_dir().join(format!("headprobe-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("list.txt");
        std::fs::write(
            &path,
            "\u{feff}a.test\n\n  # comment\n\t b.test:81 \r\nbad token\nc.test",
        )
        .unwrap();
        let mut cfg = RunOptions::with_targets(&["first.test"]);
        cfg.files = vec![path.to_string_lossy().into_owned()];
        assert_eq!(
            items(&cfg),
            [
                (0, "first.test".into(), true),
                (1, "a.test".into(), true),
                (2, "b.test:81".into(), true),
                (3, "bad token".into(), false),
                (4, "c.test".into(), true),
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn shards_cover_the_input_exactly_once() {
        let all: Vec<String> = (0..10).map(|i| format!("h{i}.test")).collect();
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut seen = Vec::new();
        for k in 0..3 {
            let mut cfg = RunOptions::with_targets(&refs);
            cfg.shard = Some((k, 3));
            let got = items(&cfg);
            assert_eq!(
                Input::open(&cfg, None).unwrap().known_total,
                Some(got.len() as u64)
            );
            seen.extend(got.into_iter().map(|(_, t, _)| t));
        }
        seen.sort();
        let mut want = all.clone();
        want.sort();
        assert_eq!(seen, want);
    }

    #[test]
    fn comments_start_at_a_hash_after_whitespace() {
        let cases: &[(&str, &str)] = &[
            ("example.com  # main site", "example.com  "),
            ("example.com\t#tab", "example.com\t"),
            ("# whole line", ""),
            ("http://h/p#frag", "http://h/p#frag"),
            ("http://h/p#frag # note", "http://h/p#frag "),
            ("a#b", "a#b"),
        ];
        for (line, want) in cases {
            assert_eq!(strip_comment(line.as_bytes()), want.as_bytes(), "{line:?}");
        }
    }

    #[test]
    fn an_overlong_line_is_an_invalid_target_with_a_marked_echo() {
        let dir = std::env::temp_dir().join(format!("headprobe-long-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("list.txt");
        let long = format!("http://127.0.0.1:9/?q={}", "é".repeat(40_000));
        let exactly = format!("http://127.0.0.1:9/?q={}", "x".repeat(MAX_LINE - 22));
        assert_eq!(exactly.len(), MAX_LINE);
        std::fs::write(&path, format!("{long}\r\n{exactly}\r\n# {long}\nok.test\n")).unwrap();
        let mut cfg = RunOptions::with_targets(&[]);
        cfg.files = vec![path.to_string_lossy().into_owned()];
        let got = full_items(&cfg);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got.len(), 3);
        let echo = String::from_utf8(got[0].token.clone()).unwrap();
        assert!(echo.starts_with("http://127.0.0.1:9/?q=é"), "{echo}");
        assert!(
            echo.ends_with(&format!("[... {}-byte line]", long.len())),
            "{echo}"
        );
        assert!(echo.len() < 100, "{echo}");
        let why = got[0].target.as_ref().unwrap_err();
        assert!(
            why.contains(&format!("line 1 of {} is 80022 bytes long", path.display())),
            "{why}"
        );
        assert!(why.contains("at most 65536 bytes"), "{why}");
        assert_eq!(got[1].token, exactly.as_bytes());
        assert!(got[1].target.is_ok());
        assert_eq!(
            (got[2].index, got[2].token.as_slice()),
            (2, &b"ok.test"[..])
        );
    }

    #[test]
    fn index_counts_every_target_and_seq_only_those_handed_on() {
        let mut cfg =
            RunOptions::with_targets(&["a.test", "bad token", "c.test", "d.test", "e.test"]);
        cfg.shard = Some((1, 2));
        let got: Vec<(u64, u64)> = full_items(&cfg).iter().map(|i| (i.seq, i.index)).collect();
        assert_eq!(got, [(0, 1), (1, 3)]);
    }

    #[test]
    fn unreadable_file_is_a_usage_error() {
        let mut cfg = RunOptions::with_targets(&[]);
        cfg.files = vec!["/nonexistent/headprobe/list".into()];
        let err = Input::open(&cfg, None).err().unwrap();
        assert!(
            err.0
                .contains("cannot read --file /nonexistent/headprobe/list"),
            "{err}"
        );
    }
}
