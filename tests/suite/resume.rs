//! `--resume FILE` and JSON's `index`: an interrupted run finished by a second one that
//! appends to the same file; shards; junk in FILE; memory with a large FILE.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

/// `http://ADDR/t{i}` for i in 0..n, one per line.
fn list(server: &Server, n: usize) -> String {
    (0..n)
        .map(|i| format!("http://{}/t{i}\n", server.addr()))
        .collect()
}

/// The path each request asked for (`/t7`), counted: `taken` already read off the
/// server, then the rest of every connection it accepted.
fn requested_paths(server: &Server, taken: Vec<Vec<u8>>) -> BTreeMap<String, usize> {
    let rest = server.accepted() - taken.len();
    let mut paths = BTreeMap::new();
    for req in taken.into_iter().chain(server.requests(rest)) {
        let text = String::from_utf8_lossy(&req);
        if let Some(path) = text.split(' ').nth(1) {
            *paths.entry(path.to_string()).or_insert(0) += 1;
        }
    }
    paths
}

/// Runs `run` with stdout appended to `out` (as `>> out` does); returns the exit code
/// and stderr.
fn run_appending(run: Headprobe, out: &std::path::Path) -> (Option<i32>, String) {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(out)
        .unwrap();
    let done = run
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::piped())
        .output()
        .expect("run headprobe");
    (
        done.status.code(),
        String::from_utf8_lossy(&done.stderr).into_owned(),
    )
}

fn records(path: &std::path::Path) -> Vec<Value> {
    parse_json_lines(&std::fs::read_to_string(path).unwrap())
}

fn index(r: &Value) -> u64 {
    r["index"]
        .as_u64()
        .unwrap_or_else(|| panic!("no index: {r}"))
}

fn cancelled(r: &Value) -> bool {
    r["error"]["kind"] == "cancelled"
}

/// Ctrl-C mid-way, then `--resume out.jsonl ... >> out.jsonl`: every index has exactly
/// one record other than `cancelled`, and no target that finished was asked twice.
#[test]
fn an_interrupted_run_resumes_appending_to_the_same_file() {
    let server = Server::start(Behaviour::Hold(ok_response()));
    // More targets than the input hands on before a stop, so that some were never read
    // (no record at all), besides those in flight (cancelled) and those done.
    let n = 1000;
    let list = temp_file("resume-list", list(&server, n).as_bytes());
    let out = temp_file("resume-out.jsonl", b"");

    server.release(6);
    let mut first = headprobe()
        .args(["--format", "json", "-c", "4", "-f"])
        .arg(&list)
        .spawn();
    for _ in 0..6 {
        let line = first.next_line();
        assert!(line.contains("\"ok\":true"), "{line}");
    }
    // Four more are in flight, held by the server.
    let taken = server.requests(6 + 4);
    first.interrupt();
    let first = first.finish();
    first.expect_code(130);
    std::fs::write(&out, &first.stdout).unwrap();
    let before = records(&out);
    let done_first: Vec<u64> = before.iter().filter(|r| !cancelled(r)).map(index).collect();
    assert_eq!(done_first.len(), 6, "{first:?}");
    assert!(
        before.iter().filter(|r| cancelled(r)).count() >= 4,
        "{first:?}"
    );
    assert!(
        before.len() < n,
        "every target was read before the stop: {first:?}"
    );

    server.release_all();
    let second = headprobe()
        .args(["--format", "json", "-c", "16", "--resume"])
        .arg(&out)
        .arg("-f")
        .arg(&list);
    let (code, err) = run_appending(second, &out);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("skipped 6 targets"), "{err}");

    let all = records(&out);
    let mut finished: BTreeMap<u64, usize> = BTreeMap::new();
    for r in all.iter().filter(|r| !cancelled(r)) {
        *finished.entry(index(r)).or_insert(0) += 1;
    }
    assert_eq!(finished.len(), n, "some index has no finished record");
    assert!(
        finished.values().all(|&c| c == 1),
        "an index has two records: {:?}",
        finished.iter().filter(|(_, &c)| c > 1).collect::<Vec<_>>()
    );
    // What finished in the first run was not asked again.
    let paths = requested_paths(&server, taken);
    for i in &done_first {
        assert_eq!(paths.get(&format!("/t{i}")), Some(&1), "target {i}");
    }
    assert_eq!(paths.len(), n, "every target was asked for");
}

/// A shard that finished resumes to nothing: no record, no connection, exit 0. Another
/// shard given that file probes all of its own and says the file is of other shards.
#[test]
fn a_finished_shard_resumes_to_nothing() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let mut lines = list(&server, 10);
    lines.push_str("not a target\n");
    let list = temp_file("shard-list", lines.as_bytes());
    let out = temp_file("shard-2.jsonl", b"");
    let first = headprobe()
        .args(["--format", "json", "--ordered", "--shard", "2/3", "-f"])
        .arg(&list);
    let (code, err) = run_appending(first, &out);
    // Index 10 is the invalid target.
    assert_eq!(code, Some(1), "{err}");
    let first: Vec<u64> = records(&out).iter().map(index).collect();
    assert_eq!(first, [1, 4, 7, 10]);
    server.requests(3);

    let again = headprobe()
        .args(["--format", "json", "--shard", "2/3", "--resume"])
        .arg(&out)
        .arg("-f")
        .arg(&list)
        .run();
    again.expect_code(0);
    assert!(again.stdout.is_empty(), "{again:?}");
    assert!(again.err().contains("skipped 4 targets"), "{again:?}");
    assert!(
        server
            .next_request_within(Duration::from_millis(100))
            .is_none(),
        "a finished shard probed again"
    );

    let other = headprobe()
        .args(["--format", "json", "--shard", "1/3", "--resume"])
        .arg(&out)
        .arg("-f")
        .arg(&list)
        .run();
    other.expect_code(0);
    let mine: Vec<u64> = other.json().iter().map(index).collect();
    let mut mine = mine;
    mine.sort();
    assert_eq!(mine, [0, 3, 6, 9]);
    assert!(other.err().contains("of other shards"), "{other:?}");
}

/// Junk in FILE is counted and reported once, never fatal; an index past the input's
/// end says FILE may be another list's; a missing FILE is a usage error.
#[test]
fn junk_in_the_resume_file_is_reported_once() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    let resume = temp_file(
        "junk.jsonl",
        b"garbage\n{\"index\":1,\"ok\":true,\"error\":null}\n\n[1]\n\xff\n{\"index\":99}\n{\"index\":2,\"error\":{\"kind\":\"cancelled\"}}\n{\"targ",
    );
    let out = headprobe()
        .args(["--format", "json", "--ordered", "--resume"])
        .arg(&resume)
        .args([&t, &t, &t])
        .run();
    out.expect_code(0);
    let got: Vec<u64> = out.json().iter().map(index).collect();
    assert_eq!(got, [0, 2]);
    let err = out.err();
    assert_eq!(
        err.matches("not a headprobe JSON record").count(),
        1,
        "{err}"
    );
    assert!(err.contains("4 lines are not"), "{err}");
    assert!(err.contains("no newline"), "{err}");
    assert!(
        err.contains("1 record has an index past the end of the input (3 targets)"),
        "{err}"
    );
    server.requests(2);

    let missing = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-resume.jsonl");
    let out = headprobe().arg("--resume").arg(&missing).arg(&t).run();
    out.expect_code(2);
    assert!(out.err().contains("--resume"), "{out:?}");
    assert!(server
        .next_request_within(Duration::from_millis(100))
        .is_none());
}

/// The peak resident memory (VmHWM) of a running process, in KiB, if /proc says.
///
/// Read from /proc while the process runs rather than from wait4's ru_maxrss: a child
/// started with vfork/posix_spawn shares the test process's memory until exec, and
/// ru_maxrss would count that.
fn peak_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A file of `n` records as a real run writes them (failed ones, to keep it small).
fn synthetic_records(n: usize) -> std::path::PathBuf {
    let path = temp_file("big.jsonl", b"");
    let mut w = BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..n {
        writeln!(
            w,
            concat!(
                r#"{{"target":"127.0.0.1:1","index":{},"scheme":"http","host":"127.0.0.1","#,
                r#""port":1,"path":"/","addr":"127.0.0.1:1","ok":false,"status":null,"#,
                r#""headers":[],"error":{{"kind":"refused","message":"connection refused by "#,
                r#"127.0.0.1:1"}},"timing_ms":{{"total":0.1}}}}"#
            ),
            i
        )
        .unwrap();
    }
    w.flush().unwrap();
    path
}

/// 300,000 records resume in at most 24 MiB, about what 1,000 take: the set of indices
/// is kept, not the records.
#[test]
fn a_large_resume_file_keeps_memory_flat() {
    // Standard input comes last and stays open: once the record of its one target is
    // out, FILE and the list have been read; the process is still there to be measured.
    let peak = |n: usize| -> Option<u64> {
        let resume = synthetic_records(n);
        let list = temp_file("big-list", "127.0.0.1:1\n".repeat(n).as_bytes());
        let mut run = headprobe()
            .args(["--format", "json", "--no-progress", "--resume"])
            .arg(&resume)
            .arg("-f")
            .arg(&list)
            .args(["-f", "-"])
            .stdin(format!("{}\n", refused_addr()))
            .spawn();
        // Reading 300,000 records in a debug build took 9.75 s of the default 10 s bound
        // on a loaded machine (one CI-like run timed out): the bound here is the file's.
        let line = run
            .next_line_within(Duration::from_secs(60))
            .expect("the record of the one target left, within 60s");
        assert!(line.contains(&format!("\"index\":{n},")), "{line}");
        let kib = peak_kib(run.pid());
        let out = run.finish();
        let _ = std::fs::remove_file(&resume);
        let _ = std::fs::remove_file(&list);
        out.expect_code(1);
        assert!(
            out.err().contains(&format!("skipped {n} targets")),
            "{out:?}"
        );
        kib
    };
    let Some(small) = peak(1_000) else {
        eprintln!("skipped: /proc/PID/status gives no VmHWM here");
        return;
    };
    let large = peak(300_000).expect("VmHWM");
    assert!(
        large <= 24 * 1024,
        "300,000 records took {large} KiB at peak"
    );
    assert!(
        large <= small + 4 * 1024,
        "memory grew with the file: {small} KiB for 1,000 records, {large} KiB for 300,000"
    );
}

#[test]
fn help_says_what_resume_cannot_detect() {
    let help = headprobe().arg("--help").run().out();
    assert!(help.contains("--resume"), "{help}");
    assert!(
        help.contains("cannot be") && help.contains("detected"),
        "{help}"
    );
}
