//! `--resume FILE`: which input indices an earlier run's JSON Lines output already has a
//! record for (other than `cancelled`), so that this run skips them.
//!
//! The file is read whole, before anything is probed, so new records may be appended to
//! it. Only a set of indices is kept (about a bit per index), never the records: each
//! line is parsed for its `index` and `error.kind` alone, borrowing from the line.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Write};

use serde::Deserialize;

use crate::run::lines::read_line;
use crate::run::usage::UsageError;

/// A record longer than this is not read (it would be a record of tens of megabytes of
/// headers): it counts as a line that is not a record, and its target is probed again.
const MAX_RECORD_LINE: usize = 64 << 20;

/// Indices past this are no input's: reading 2^40 targets would take weeks. They are
/// counted as past the end at once, so a junk index cannot make the set large.
const MAX_INDEX: u64 = 1 << 40;

/// The fields of a record that resuming needs; the others are skipped unread.
#[derive(Deserialize)]
struct Line<'a> {
    index: u64,
    #[serde(borrow)]
    error: Option<LineError<'a>>,
    /// `--all-addresses` records: the address probed, and how many the name has.
    #[serde(default, borrow)]
    address: Option<Cow<'a, str>>,
    #[serde(default)]
    of_addresses: Option<u32>,
}

#[derive(Deserialize)]
struct LineError<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
}

/// A set of indices in pages of `PAGE_BITS`, so that memory follows the indices present
/// (a bit each where they are dense), not the largest one.
#[derive(Debug, Default)]
struct IndexSet {
    pages: BTreeMap<u64, Box<[u64; PAGE_WORDS]>>,
}

const PAGE_WORDS: usize = 16;
const PAGE_BITS: u64 = 64 * PAGE_WORDS as u64;

impl IndexSet {
    fn insert(&mut self, i: u64) {
        let page = self
            .pages
            .entry(i / PAGE_BITS)
            .or_insert_with(|| Box::new([0; PAGE_WORDS]));
        let bit = i % PAGE_BITS;
        page[(bit / 64) as usize] |= 1 << (bit % 64);
    }

    fn contains(&self, i: u64) -> bool {
        let bit = i % PAGE_BITS;
        self.pages
            .get(&(i / PAGE_BITS))
            .is_some_and(|page| page[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    /// How many indices at or past `from` are in the set.
    fn count_from(&self, from: u64) -> u64 {
        self.pages
            .range(from / PAGE_BITS..)
            .map(|(&p, page)| {
                (0..PAGE_BITS)
                    .filter(|b| p * PAGE_BITS + b >= from)
                    .filter(|b| page[(b / 64) as usize] & (1 << (b % 64)) != 0)
                    .count() as u64
            })
            .sum()
    }
}

/// What an earlier run's output says is done.
#[derive(Debug)]
pub struct Resume {
    /// FILE as given, for messages.
    pub path: String,
    done: IndexSet,
    /// Lines that are not a record with an index, and the first of them (1-based).
    bad_lines: u64,
    first_bad: u64,
    /// Whether the last line has no newline: a run killed mid-write.
    cut_short: bool,
    /// Records of other shards than this run's.
    other_shards: u64,
    /// Records whose index no input reaches.
    huge: u64,
    /// `--all-addresses`: targets with records for some of their addresses, not all.
    partial: std::collections::HashMap<u64, Partial>,
}

/// The addresses of one target that have a record, and how many the name has.
#[derive(Debug, Default)]
struct Partial {
    of: u32,
    addresses: Vec<std::net::SocketAddr>,
}

impl Resume {
    /// Reads FILE whole. An unreadable FILE is a usage error; bad lines are counted.
    /// With `keep`, every line that counts as done is copied there (with `-o`, the new
    /// FILE starts with the records resumed from).
    pub fn load(
        path: &str,
        shard: Option<(u64, u64)>,
        mut keep: Option<&mut dyn Write>,
    ) -> Result<Resume, UsageError> {
        let cannot = |e: &io::Error| {
            UsageError(format!(
                "cannot read --resume {path}: {}",
                crate::report::error::os_text(e)
            ))
        };
        let file = File::open(path).map_err(|e| cannot(&e))?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(UsageError(format!(
                "cannot read --resume {path}: it is a directory"
            )));
        }
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let mut resume = Resume {
            path: path.to_string(),
            done: IndexSet::default(),
            bad_lines: 0,
            first_bad: 0,
            cut_short: false,
            other_shards: 0,
            huge: 0,
            partial: Default::default(),
        };
        let mut line = Vec::new();
        let mut number = 0u64;
        loop {
            let end = match read_line(&mut reader, &mut line, MAX_RECORD_LINE) {
                Ok(Some(end)) => end,
                Ok(None) => break,
                Err(e) => return Err(cannot(&e)),
            };
            number += 1;
            resume.cut_short = !end.newline;
            if line.trim_ascii().is_empty() {
                continue;
            }
            let parsed = if end.len > MAX_RECORD_LINE {
                None
            } else {
                serde_json::from_slice::<Line>(&line).ok()
            };
            match parsed {
                None => {
                    resume.bad_lines += 1;
                    if resume.first_bad == 0 {
                        resume.first_bad = number;
                    }
                }
                Some(rec) => {
                    if resume.add(rec, shard) {
                        if let Some(out) = keep.as_mut() {
                            out.write_all(&line)
                                .and_then(|()| out.write_all(b"\n"))
                                .map_err(|e| {
                                    UsageError(format!(
                                        "cannot copy --resume {path} into -o: {}",
                                        crate::report::error::os_text(&e)
                                    ))
                                })?;
                        }
                    }
                }
            }
        }
        Ok(resume)
    }

    /// Counts `rec`; true when it marks its index done.
    fn add(&mut self, rec: Line<'_>, shard: Option<(u64, u64)>) -> bool {
        if rec.error.is_some_and(|e| e.kind == "cancelled") {
            return false;
        }
        if rec.index >= MAX_INDEX {
            self.huge += 1;
        } else if shard.is_some_and(|(k, n)| rec.index % n != k) {
            self.other_shards += 1;
        } else if !self.done.contains(rec.index) {
            let address = rec.address.as_deref().and_then(|a| a.parse().ok());
            if let (Some(of), Some(address)) = (rec.of_addresses, address) {
                // One address of several: the target is done once each has a record.
                let partial = self.partial.entry(rec.index).or_default();
                partial.of = of;
                if partial.addresses.contains(&address) {
                    return false;
                }
                partial.addresses.push(address);
                if partial.addresses.len() < of as usize {
                    return true;
                }
                self.partial.remove(&rec.index);
            }
            self.done.insert(rec.index);
            return true;
        }
        false
    }

    /// `--all-addresses`: the addresses of target `index` that already have a record
    /// (empty when it has none, or is done as a whole).
    pub fn done_addresses(&self, index: u64) -> &[std::net::SocketAddr] {
        self.partial
            .get(&index)
            .map_or(&[], |p| p.addresses.as_slice())
    }

    /// Whether target `index` already has a record.
    pub fn is_done(&self, index: u64) -> bool {
        self.done.contains(index)
    }

    /// Problems with FILE seen on reading it, one sentence, for stderr before probing.
    pub fn problems(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.bad_lines > 0 {
            parts.push(format!(
                "{} {} not a headprobe JSON record with an index (the first is line {}); \
                 ignored",
                self.bad_lines,
                if self.bad_lines == 1 {
                    "line is"
                } else {
                    "lines are"
                },
                self.first_bad
            ));
        }
        if self.cut_short {
            parts.push(
                "the last line has no newline (was a run killed mid-write?): end FILE with \
                 a newline before appending to it"
                    .to_string(),
            );
        }
        if self.other_shards > 0 {
            parts.push(format!(
                "{} {} of other shards than this run's --shard; ignored",
                self.other_shards,
                records(self.other_shards)
            ));
        }
        (!parts.is_empty()).then(|| format!("--resume {}: {}", self.path, parts.join("; ")))
    }

    /// After the whole input was read (`read` targets): records whose index is past its
    /// end, which means FILE belongs to another input list.
    pub fn past_end(&self, read: u64) -> Option<String> {
        let n = self.huge + self.done.count_from(read);
        (n > 0).then(|| {
            format!(
                "--resume {}: {n} {} an index past the end of the input ({read} targets); \
                 was it written for another input list?",
                self.path,
                if n == 1 { "record has" } else { "records have" }
            )
        })
    }
}

fn records(n: u64) -> &'static str {
    if n == 1 {
        "record is"
    } else {
        "records are"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &[u8], shard: Option<(u64, u64)>) -> Resume {
        let dir = std::env::temp_dir().join(format!("headprobe-resume-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("r{}", text.len()));
        std::fs::write(&path, text).unwrap();
        let r = Resume::load(path.to_str().unwrap(), shard, None).unwrap();
        std::fs::remove_file(&path).unwrap();
        r
    }

    #[test]
    fn done_is_every_index_with_a_record_but_cancelled() {
        let r = load(
            concat!(
                r#"{"target":"a","index":0,"ok":true,"error":null}"#,
                "\n",
                r#"{"target":"b","index":1,"ok":false,"error":{"kind":"cancelled","message":"x"}}"#,
                "\n\n",
                r#"{"target":"c","index":2,"ok":false,"error":{"kind":"timeout","message":"x"}}"#,
                "\n",
                r#"{"target":"b","index":1,"ok":false,"error":{"kind":"refused","message":"x"}}"#,
                "\n",
                r#"{"target":"d","index":4,"headers":[["index","7"]],"error":{"message":"m","kind":"canc\u0065lled"}}"#,
                "\n",
            )
            .as_bytes(),
            None,
        );
        let done: Vec<u64> = (0..8).filter(|&i| r.is_done(i)).collect();
        assert_eq!(done, [0, 1, 2]);
        assert_eq!(r.problems(), None);
        assert_eq!(r.past_end(5), None);
    }

    #[test]
    fn with_all_addresses_a_target_is_done_once_each_address_has_a_record() {
        let r = load(
            concat!(
                r#"{"index":0,"address":"10.0.0.1:80","of_addresses":3,"error":null}"#,
                "\n",
                r#"{"index":0,"address":"10.0.0.2:80","of_addresses":3,"error":{"kind":"cancelled","message":"x"}}"#,
                "\n",
                r#"{"index":0,"address":"10.0.0.3:80","of_addresses":3,"error":{"kind":"refused","message":"x"}}"#,
                "\n",
                r#"{"index":1,"address":"10.0.0.1:80","of_addresses":2,"error":null}"#,
                "\n",
                r#"{"index":1,"address":"10.0.0.1:80","of_addresses":2,"error":null}"#,
                "\n",
                r#"{"index":1,"address":"[::1]:80","of_addresses":2,"error":null}"#,
                "\n",
                r#"{"index":2,"address":null,"of_addresses":null,"error":{"kind":"dns","message":"x"}}"#,
                "\n",
            )
            .as_bytes(),
            None,
        );
        assert!(!r.is_done(0) && r.is_done(1) && r.is_done(2));
        let done: Vec<String> = r.done_addresses(0).iter().map(|a| a.to_string()).collect();
        assert_eq!(done, ["10.0.0.1:80", "10.0.0.3:80"]);
        assert!(r.done_addresses(1).is_empty());
    }

    #[test]
    fn junk_is_counted_never_fatal() {
        let r = load(
            b"not json\n{\"index\":-1}\n{\"index\":\"3\"}\n[1,2]\n{\"target\":\"x\"}\n\
             {\"index\":3}\n{\"index\":18446744073709551615}\n\xff\xfe\n{\"index\":9}\n{\"ind",
            None,
        );
        assert!(r.is_done(3) && r.is_done(9));
        let problems = r.problems().unwrap();
        assert!(problems.contains("7 lines are not"), "{problems}");
        assert!(problems.contains("the first is line 1"), "{problems}");
        assert!(problems.contains("no newline"), "{problems}");
        assert!(r
            .past_end(10)
            .unwrap()
            .contains(": 1 record has an index past"));
        assert!(r
            .past_end(5)
            .unwrap()
            .contains("2 records have an index past the end"));
    }

    #[test]
    fn other_shards_are_ignored() {
        let r = load(
            b"{\"index\":0}\n{\"index\":1}\n{\"index\":4}\n",
            Some((1, 3)),
        );
        assert!(!r.is_done(0) && r.is_done(1) && r.is_done(4));
        assert!(r
            .problems()
            .unwrap()
            .contains("1 record is of other shards"));
    }

    #[test]
    fn index_set_counts_past_a_point() {
        let mut s = IndexSet::default();
        for i in [0, 5, 1023, 1024, 5000, 1 << 39] {
            s.insert(i);
        }
        assert!(s.contains(1024) && !s.contains(1025) && s.contains(1 << 39));
        assert_eq!(s.count_from(0), 6);
        assert_eq!(s.count_from(6), 4);
        assert_eq!(s.count_from(1024), 3);
        assert_eq!(s.count_from(5001), 1);
    }

    #[test]
    fn a_missing_file_is_a_usage_error() {
        let err = Resume::load("/nonexistent/headprobe/out.jsonl", None, None).unwrap_err();
        assert!(
            err.0.contains("--resume /nonexistent/headprobe/out.jsonl"),
            "{err}"
        );
    }
}
