//! The Scale options: --shard, --rate, --progress and its summary, and a tight
//! open-file limit.

use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use crate::util::*;

/// Targets for shard tests: every fifth one is invalid, since the shard index counts
/// invalid targets too.
fn shard_input(server: &Server, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 5 {
            4 => format!("bad#{i}"),
            _ => format!("http://{}/t{i}", server.addr()),
        })
        .collect()
}

#[test]
fn shards_cover_the_list_exactly_once() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let input = shard_input(&server, 47);
    let list = temp_file("shard-list.txt", input.join("\n").as_bytes());
    let mut seen: Vec<String> = Vec::new();
    for k in 1..=4 {
        let out = headprobe()
            .args(["--format", "json", "--shard", &format!("{k}/4"), "-f"])
            .arg(&list)
            .run();
        out.expect_code(1);
        let mine: Vec<String> = out
            .json()
            .iter()
            .map(|r| r["target"].as_str().unwrap().to_string())
            .collect();
        // Shard k holds exactly the inputs at indexes i with i % 4 == k - 1.
        let want: Vec<&String> = input
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 4 == k - 1)
            .map(|(_, t)| t)
            .collect();
        let mut got_sorted = mine.clone();
        got_sorted.sort();
        let mut want_sorted: Vec<String> = want.into_iter().cloned().collect();
        want_sorted.sort();
        assert_eq!(got_sorted, want_sorted, "shard {k}/4");
        seen.extend(mine);
    }
    seen.sort();
    let mut all = input.clone();
    all.sort();
    assert_eq!(
        seen, all,
        "the shards together are the list, each target once"
    );
}

#[test]
fn shard_values_are_checked() {
    for bad in ["0/3", "4/3", "1/0", "x/3", "3"] {
        headprobe()
            .args(["--shard", bad, "127.0.0.1:1"])
            .run()
            .expect_code(2);
    }
}

#[test]
fn rate_spaces_new_connections() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    let targets: Vec<&str> = (0..30).map(|_| t.as_str()).collect();
    let started = Instant::now();
    let out = headprobe()
        .args(["--rate", "50", "--format", "status"])
        .args(&targets)
        .run();
    let took = started.elapsed();
    out.expect_code(0);
    assert_eq!(out.lines().len(), 30);
    // 30 connections at 50/s cannot start within less than 29 intervals of 20 ms.
    assert!(
        took >= Duration::from_millis(29 * 20),
        "30 probes at --rate 50 took {took:?}"
    );
    assert_eq!(server.accepted(), 30);
}

#[test]
fn progress_goes_to_stderr_with_a_summary() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    let refused = refused_addr().to_string();
    let out = headprobe()
        .args([
            "--progress",
            "--format",
            "status",
            &t,
            &t,
            &refused,
            "bad target",
        ])
        .run();
    out.expect_code(1);
    assert_eq!(
        out.lines().len(),
        4,
        "stdout holds the records only\n{out:?}"
    );
    assert!(!out.out().contains("probed"), "{out:?}");
    let summary = out.err().lines().last().unwrap_or_default().to_string();
    let summary = summary
        .rsplit('\r')
        .next()
        .unwrap_or_default()
        .trim_start_matches("\x1b[K");
    assert!(
        summary.starts_with("probed 4 targets in ")
            && summary.contains(": 2 ok, 2 failed (")
            && summary.contains("refused 1")
            && summary.contains("invalid_target 1"),
        "summary line: {summary:?}\n{out:?}"
    );
}

#[test]
fn no_progress_means_a_silent_stderr() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let out = headprobe().args(["--no-progress", &server.target()]).run();
    out.expect_code(0);
    assert!(out.stderr.is_empty(), "{out:?}");
    headprobe()
        .args(["--progress", "--no-progress", "127.0.0.1:1"])
        .run()
        .expect_code(2);
}

#[test]
fn a_tight_open_file_limit_lowers_concurrency_once_and_loses_nothing() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    let list = temp_file("pressure.txt", vec![t.as_str(); 500].join("\n").as_bytes());
    let mut cmd = headprobe()
        .args(["-c", "1000", "--format", "status", "-f"])
        .arg(&list)
        .command();
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("running headprobe");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.split('\t').nth(1) == Some("200"))
            .count(),
        500,
        "{stderr}"
    );
    let warnings: Vec<&str> = stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "exactly one warning: {stderr}");
    assert!(
        warnings[0].contains("--concurrency 1000 lowered to") && warnings[0].contains("64"),
        "{stderr}"
    );
    assert!(
        server.max_open() <= 64,
        "at most 64 connections at once, saw {}",
        server.max_open()
    );
}

/// Issue 11: one target is `1 target`, not `1 targets`.
#[test]
fn summary_of_one_target_is_singular() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let out = headprobe()
        .args(["--progress", "-q", &server.target()])
        .run();
    out.expect_code(0);
    let err = out.err();
    let summary = err.lines().last().unwrap_or_default();
    let summary = summary.rsplit("\x1b[K").next().unwrap_or_default();
    assert!(
        summary.starts_with("probed 1 target in "),
        "summary line: {summary:?}\n{out:?}"
    );
}
