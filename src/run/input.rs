//! Targets streamed from arguments, files and standard input, in that order.
//!
//! Runs on its own thread with blocking reads and hands targets on through a bounded
//! channel, so probing starts before the input ends and memory does not grow with it.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read};

use async_channel::Sender;

use crate::cli::{Config, UsageError};
use crate::proto::proxy::{self, Proxy};
use crate::proto::target::{self, Defaults};
use crate::proto::Job;

/// Lines longer than this are not targets; the rest of such a line is skipped unread.
pub const MAX_LINE: usize = 64 * 1024;

/// One target read from the input, parsed.
#[derive(Debug)]
pub struct Item {
    /// Position among the items handed on (after `--shard`): the order `--ordered`
    /// restores, with no gaps.
    pub seq: u64,
    /// Position among all the targets read (before `--shard`): JSON `index`.
    pub index: u64,
    /// The token as read (trimmed).
    pub token: Vec<u8>,
    pub target: Result<Job, String>,
}

enum Source {
    Arg(String),
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

/// The opened input: every `--file` is opened up front, so an unreadable one is a usage
/// error before anything is probed.
pub struct Input {
    sources: Vec<Source>,
    defaults: Defaults,
    /// `--proxy-check`: tokens are proxies, with this default port.
    proxies: Option<u16>,
    shard: Option<(u64, u64)>,
    /// How many targets there are, when that is known before reading (arguments only).
    pub known_total: Option<u64>,
}

/// What reading the input came to.
#[derive(Debug, Default)]
pub struct InputReport {
    /// Targets read, before `--shard`.
    pub read: u64,
    /// A read error that ended a file early.
    pub error: Option<String>,
}

impl Input {
    pub fn open(cfg: &Config) -> Result<Input, UsageError> {
        let mut sources: Vec<Source> = cfg.targets.iter().cloned().map(Source::Arg).collect();
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
        for path in &files {
            let reader: Box<dyn Read + Send> = if path == "-" {
                Box::new(io::stdin())
            } else {
                let file = File::open(path).map_err(|e| {
                    UsageError(format!(
                        "cannot read --file {path}: {}",
                        crate::report::error::os_text(&e)
                    ))
                })?;
                if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
                    return Err(UsageError(format!(
                        "cannot read --file {path}: it is a directory"
                    )));
                }
                Box::new(file)
            };
            let reader = BufReader::with_capacity(64 * 1024, reader);
            sources.push(Source::Reader(path.clone(), reader));
        }
        let known_total = files.is_empty().then(|| {
            let n = cfg.targets.len() as u64;
            match cfg.shard {
                // Indices k, k + N, ... below n (no overflow for any N a user types).
                Some((k, n_shards)) => n / n_shards + u64::from(k < n % n_shards),
                None => n,
            }
        });
        Ok(Input {
            sources,
            defaults: cfg.defaults.clone(),
            proxies: cfg.proxy_check.as_ref().map(|c| c.default_port),
            shard: cfg.shard,
            known_total,
        })
    }

    /// Reads every source, sending targets on `tx` in batches; stops early when `tx`
    /// closes.
    pub fn run(self, tx: Sender<Vec<Item>>) -> InputReport {
        let mut report = InputReport::default();
        let mut batcher = Batcher {
            batch: Vec::with_capacity(BATCH),
            tx,
        };
        let mut seq = 0u64;
        let mut send = |token: Vec<u8>, report: &mut InputReport, batcher: &mut Batcher| -> bool {
            let index = report.read;
            report.read += 1;
            if let Some((k, n)) = self.shard {
                if index % n != k {
                    return true;
                }
            }
            let target = match (std::str::from_utf8(&token), self.proxies) {
                (Err(_), _) => Err("a target must be valid UTF-8".into()),
                (Ok(text), None) => target::parse(text, &self.defaults).map(Job::Target),
                (Ok(text), Some(port)) => Proxy::parse(text, port).map(Job::Proxy),
            };
            // Credentials in a token (`user:pass@`) never go further than this.
            let token = if token.contains(&b'@') {
                proxy::redact(&String::from_utf8_lossy(&token)).into_bytes()
            } else {
                token
            };
            let item = Item {
                seq,
                index,
                token,
                target,
            };
            seq += 1;
            batcher.push(item)
        };

        for source in self.sources {
            match source {
                Source::Arg(arg) => {
                    if !send(arg.trim().as_bytes().to_vec(), &mut report, &mut batcher) {
                        return report;
                    }
                }
                Source::Reader(path, mut reader) => {
                    let mut line = Vec::new();
                    let mut first = true;
                    loop {
                        // The next read may wait on a slow pipe: hand on what we have first.
                        if !reader.buffer().contains(&b'\n') && !batcher.flush() {
                            return report;
                        }
                        let too_long = match read_line(&mut reader, &mut line, MAX_LINE) {
                            Ok(Some(too_long)) => too_long,
                            Ok(None) => break,
                            Err(e) => {
                                let name = if path == "-" { "standard input" } else { &path };
                                report.error = Some(format!(
                                    "reading {name}: {}",
                                    crate::report::error::os_text(&e)
                                ));
                                break;
                            }
                        };
                        let mut token = line.trim_ascii();
                        if first {
                            token = token.strip_prefix("\u{feff}".as_bytes()).unwrap_or(token);
                            first = false;
                        }
                        if token.is_empty() || token.starts_with(b"#") {
                            continue;
                        }
                        let token = if too_long {
                            // Not a target; keep a bounded echo of it.
                            let mut t = token[..token.len().min(256)].to_vec();
                            t.extend_from_slice(b"...");
                            t
                        } else {
                            token.to_vec()
                        };
                        if !send(token, &mut report, &mut batcher) {
                            return report;
                        }
                    }
                }
            }
        }
        batcher.flush();
        report
    }
}

/// Reads one line (without its LF) into `line`, keeping at most `cap` bytes. `None` at
/// end of input; `Some(true)` when the line was longer than `cap`.
pub fn read_line<R: BufRead + ?Sized>(
    r: &mut R,
    line: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Option<bool>> {
    line.clear();
    let mut any = false;
    let mut too_long = false;
    loop {
        let buf = match r.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(any.then_some(too_long));
        }
        any = true;
        let (chunk, used, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        let room = cap.saturating_sub(line.len());
        if chunk.len() > room {
            too_long = true;
        }
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        r.consume(used);
        if done {
            return Ok(Some(too_long));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(cfg: &Config) -> Vec<(u64, String, bool)> {
        let input = Input::open(cfg).unwrap();
        let (tx, rx) = async_channel::bounded(4);
        let handle = std::thread::spawn(move || input.run(tx));
        let mut out = Vec::new();
        while let Ok(item) = rx.recv_blocking().map(|b| b.into_iter()) {
            for item in item {
                out.push((
                    item.seq,
                    String::from_utf8_lossy(&item.token).into_owned(),
                    item.target.is_ok(),
                ));
            }
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
        let mut cfg = Config::with_targets(&["first.test"]);
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
            let mut cfg = Config::with_targets(&refs);
            cfg.shard = Some((k, 3));
            let got = items(&cfg);
            assert_eq!(
                Input::open(&cfg).unwrap().known_total,
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
    fn long_lines_are_capped() {
        let text = format!("{}\nok\n", "x".repeat(100));
        let mut r = io::Cursor::new(text.into_bytes());
        let mut line = Vec::new();
        assert_eq!(read_line(&mut r, &mut line, 10).unwrap(), Some(true));
        assert_eq!(line.len(), 10);
        assert_eq!(read_line(&mut r, &mut line, 10).unwrap(), Some(false));
        assert_eq!(line, b"ok");
        assert_eq!(read_line(&mut r, &mut line, 10).unwrap(), None);
    }

    #[test]
    fn unreadable_file_is_a_usage_error() {
        let mut cfg = Config::with_targets(&[]);
        cfg.files = vec!["/nonexistent/headprobe/list".into()];
        let err = Input::open(&cfg).err().unwrap();
        assert!(
            err.0
                .contains("cannot read --file /nonexistent/headprobe/list"),
            "{err}"
        );
    }
}
