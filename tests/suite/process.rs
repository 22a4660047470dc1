//! The process as a whole: exit codes, option values, quiet mode, concurrency, output
//! order, Ctrl-C and a closed standard output.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

#[test]
fn exit_0_when_every_target_is_ok() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    headprobe().args([&t, &t]).run().expect_code(0);
}

#[test]
fn exit_1_when_any_target_is_not_ok() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let refused = refused_addr().to_string();
    let out = headprobe()
        .args(["--format", "status", &server.target(), &refused])
        .run();
    out.expect_code(1);
    assert_eq!(out.lines().len(), 2, "{out:?}");
}

#[test]
fn bad_options_exit_2_without_probing() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    let cases: &[&[&str]] = &[
        &["--no-such-option"],
        &["-t", "abc"],
        &["-t", "5x"],
        &["-t", "-1"],
        &["--connect-timeout", ""],
        &["--connect-timeout", "soon"],
        &["-c", "many"],
        &["-p", "70000"],
        &["-p", "http"],
        &["--format", "xml"],
        &["--http-version", "2"],
        &["--max-header-bytes", "lots"],
        &["--expect-status", "ok"],
        &["--resolve", "nonsense"],
        &["--resolve", "localhost:80:not-an-ip"],
        &["-c"],
    ];
    for args in cases {
        let out = headprobe().args(*args).arg(&t).run();
        assert_eq!(out.code, Some(2), "{args:?}\n{out:?}");
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout\n{out:?}");
        assert!(!out.stderr.is_empty(), "{args:?} gave no message");
    }
    assert!(
        server
            .next_request_within(Duration::from_millis(200))
            .is_none(),
        "a usage error still probed"
    );
}

#[test]
fn durations_in_every_form_are_accepted() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    for value in ["250ms", "2.5", "1m", "5s", "3"] {
        headprobe()
            .args(["-t", value, "--connect-timeout", value, &t])
            .run()
            .expect_code(0);
    }
}

/// `0.4` is seconds and `400ms` milliseconds: both time a silent server out after about
/// 400 ms.
#[test]
fn durations_mean_what_they_say() {
    let server = Server::start(Behaviour::Silent);
    for value in ["0.4", "400ms"] {
        let started = Instant::now();
        let out = headprobe()
            .args(["--format", "json", "-t", value, &server.target()])
            .run();
        let took = started.elapsed();
        out.expect_code(1);
        assert_eq!(out.only_json()["error"]["kind"], "timeout");
        assert!(
            took >= Duration::from_millis(350) && took < Duration::from_secs(4),
            "-t {value} timed out after {took:?}"
        );
    }
}

#[test]
fn quiet_prints_nothing_but_keeps_the_exit_code() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    let out = headprobe().args(["-q", &t]).run();
    out.expect_code(0);
    assert!(out.stdout.is_empty(), "{out:?}");

    let refused = refused_addr().to_string();
    for format in ["text", "status", "json"] {
        let out = headprobe()
            .args(["--quiet", "--format", format, &t, &refused])
            .run();
        out.expect_code(1);
        assert!(out.stdout.is_empty(), "{out:?}");
    }
}

#[test]
fn version_and_help() {
    for flag in ["-V", "--version"] {
        let out = headprobe().arg(flag).run();
        out.expect_code(0);
        assert!(out.out().contains(VERSION), "{out:?}");
    }
    let out = headprobe().arg("--help").run();
    out.expect_code(0);
    let help = out.out();
    for option in [
        "--concurrency",
        "--timeout",
        "--format",
        "--ordered",
        "--resolve",
    ] {
        assert!(
            help.contains(option),
            "--help does not mention {option}\n{help}"
        );
    }
}

/// With `-c 3`, the server never has more than three connections from headprobe open.
#[test]
fn concurrency_is_bounded() {
    let server = Server::start(Behaviour::Hold(ok_response()));
    let t = server.target();
    let run = headprobe()
        .args(["--format", "status", "-c", "3"])
        .args(vec![t.as_str(); 10])
        .spawn();
    server.requests(3);
    assert!(
        server
            .next_request_within(Duration::from_millis(300))
            .is_none(),
        "a fourth probe started while three were in flight"
    );
    assert_eq!(server.max_open(), 3);
    // Let them go one by one: each finished probe makes room for exactly one more.
    for _ in 0..7 {
        server.release(1);
        server.next_request();
    }
    server.release_all();
    let out = run.finish();
    out.expect_code(0);
    assert_eq!(out.status_rows().len(), 10, "{out:?}");
    assert_eq!(server.accepted(), 10);
    assert!(server.max_open() <= 3, "max open {}", server.max_open());
}

/// A target that hangs neither holds up the others nor, by default, their output.
#[test]
fn slow_target_does_not_hold_up_the_others() {
    let slow = Server::start(Behaviour::Hold(ok_response()));
    let fast = Server::start(Behaviour::Respond(ok_response()));
    let (s, f) = (slow.target(), fast.target());
    let mut run = headprobe()
        .args(["--format", "status", "-c", "2", "-t", "20s", &s])
        .args(vec![f.as_str(); 5])
        .spawn();
    slow.next_request();
    for _ in 0..5 {
        let line = run.next_line();
        assert!(line.starts_with(&format!("{f}\t200\t")), "{line:?}");
    }
    slow.release_all();
    let line = run.next_line();
    assert!(line.starts_with(&format!("{s}\t200\t")), "{line:?}");
    run.finish().expect_code(0);
}

/// `--ordered` prints in input order even when the first target finishes last.
#[test]
fn ordered_output_follows_input_order() {
    let slow = Server::start(Behaviour::Hold(ok_response()));
    let fast = Server::start(Behaviour::Stall(ok_response()));
    let s = slow.target();
    let fast_targets = [
        format!("http://{}/b", fast.target()),
        format!("http://{}/c", fast.target()),
    ];
    let mut run = headprobe()
        .args(["--format", "status", "--ordered", &s])
        .args(&fast_targets)
        .spawn();
    slow.next_request();
    // Both fast probes are over: headprobe has closed their connections.
    assert!(fast.next_closed_within(WAIT) && fast.next_closed_within(WAIT));
    assert_eq!(
        run.next_line_within(Duration::from_millis(200)),
        None,
        "printed before the first target finished"
    );
    slow.release_all();
    let out = run.finish();
    out.expect_code(0);
    let order: Vec<String> = out
        .status_rows()
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(
        order,
        [s.clone(), fast_targets[0].clone(), fast_targets[1].clone()]
    );
}

#[test]
fn ordered_output_in_text_keeps_each_target_together() {
    let slow = Server::start(Behaviour::Hold(ok_response()));
    let fast = Server::start(Behaviour::Respond(ok_response()));
    let (s, f) = (slow.target(), fast.target());
    let run = headprobe().args(["--ordered", &s, &f]).spawn();
    slow.next_request();
    fast.next_request();
    assert!(fast.next_closed_within(WAIT));
    slow.release_all();
    let out = run.finish();
    out.expect_code(0);
    let lines = out.lines();
    assert_eq!(lines.len(), 6, "{out:?}");
    assert!(lines[..3]
        .iter()
        .all(|l| l.starts_with(&format!("{s} header > "))));
    assert!(lines[3..]
        .iter()
        .all(|l| l.starts_with(&format!("{f} header > "))));
}

/// Ctrl-C: every probe in flight gets a `cancelled` record, printed before the exit 130.
#[test]
fn sigint_cancels_probes_in_flight() {
    let silent = Server::start(Behaviour::Silent);
    let good = Server::start(Behaviour::Respond(ok_response()));
    let (s, g) = (silent.target(), good.target());
    let mut run = headprobe()
        .args(["--format", "json", "-t", "20s", &g, &s, &s])
        .spawn();
    silent.requests(2);
    good.next_request();
    // The good probe's record is out before the interrupt.
    let first: Value = serde_json::from_str(&run.next_line()).unwrap();
    assert_eq!(first["target"], g.as_str());
    assert_eq!(first["ok"], true);
    run.interrupt();
    let out = run.finish();
    out.expect_code(130);
    let records = out.json();
    assert_eq!(records.len(), 3, "{out:?}");
    for r in &records[1..] {
        assert_eq!(r["target"], s.as_str(), "{r}");
        assert_eq!(r["ok"], false, "{r}");
        assert_eq!(r["error"]["kind"], "cancelled", "{r}");
    }
}

#[test]
fn sigint_in_text_format() {
    let silent = Server::start(Behaviour::Silent);
    let s = silent.target();
    let run = headprobe().args(["-t", "20s", &s]).spawn();
    silent.next_request();
    run.interrupt();
    let out = run.finish();
    out.expect_code(130);
    let lines = out.lines();
    assert_eq!(lines.len(), 1, "{out:?}");
    assert!(
        lines[0].starts_with(&format!("{s} error > cancelled: ")),
        "{out:?}"
    );
}

/// Ctrl-C while standard input is still open: reading stops and the run ends.
#[test]
fn sigint_stops_reading_input() {
    let silent = Server::start(Behaviour::Silent);
    let s = silent.target();
    let run = headprobe()
        .args(["--format", "status", "-t", "20s"])
        .stdin(format!("{s}\n"))
        .spawn();
    silent.next_request();
    run.interrupt();
    // The exit must not wait for the end of the input.
    let out = run.finish_with_stdin_open();
    out.expect_code(130);
    let rows = out.status_rows();
    assert_eq!(rows.len(), 1, "{out:?}");
    assert_eq!(rows[0][0], s);
    assert_eq!(rows[0][1], "cancelled");
}

/// A closed stdout (`| head -1`) ends the run at once, quietly, with status 0.
#[test]
fn closed_stdout_ends_the_run_quietly() {
    let headers: Vec<String> = (0..20).map(|i| format!("X-Header-{i}: value")).collect();
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let server = Server::start(Behaviour::Respond(response("HTTP/1.0 200 OK", &refs)));
    let t = server.target();
    let total = 2000;
    let mut cmd = headprobe().args(["-c", "8"]).command();
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    let list = format!("{t}\n").repeat(total);
    thread::spawn(move || {
        let _ = stdin.write_all(list.as_bytes());
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with(&format!("{t} header > ")), "{first:?}");
    drop(stdout);

    let mut stderr = child.stderr.take().unwrap();
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let status = child.wait();
        let mut err = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut err);
        let _ = tx.send((status, err));
    });
    let (status, err) = match rx.recv_timeout(WATCHDOG) {
        Ok(done) => done,
        Err(_) => {
            // SAFETY: our own child, not reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("still running {WATCHDOG:?} after stdout was closed");
        }
    };
    let status = status.unwrap();
    let err = String::from_utf8_lossy(&err);
    assert_eq!(status.code(), Some(0), "{status:?}, stderr: {err}");
    assert!(err.is_empty(), "stderr: {err}");
    assert!(
        server.accepted() < total / 2,
        "{} of {total} probed after stdout closed",
        server.accepted()
    );
}

/// Standard output carries results only; a plain run says nothing on stderr.
#[test]
fn plain_run_is_silent_on_stderr() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let out = headprobe().args(["-c", "8", &server.target()]).run();
    out.expect_code(0);
    assert!(out.stderr.is_empty(), "{out:?}");
}

/// Standard output whose reader is already gone: every write fails with EPIPE.
fn closed_pipe() -> Stdio {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe(2) writes two fresh descriptors into `fds`.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    use std::os::fd::FromRawFd;
    // SAFETY: both descriptors were just made by pipe(2) and are owned here alone.
    let (read, write) = unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    drop(read);
    Stdio::from(write)
}

/// Issue 11: `headprobe --help | true` and `-V | true` panicked (exit 101) on the closed
/// pipe. A closed stdout is exit 0, quietly, whatever the output.
#[test]
fn closed_stdout_is_quiet_for_help_version_and_results() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    let runs: &[&[&str]] = &[
        &["--help"],
        &["-V"],
        &["--version"],
        &[&t],
        &["--format", "json", &t],
    ];
    for args in runs {
        let out = headprobe()
            .args(*args)
            .command()
            .stdin(Stdio::null())
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .expect("run headprobe");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?} said: {err}");
    }
}

/// Issue 11: `--rate 1e-300` and `1e-19` panicked in duration arithmetic.
#[test]
fn tiny_rates_are_usage_errors() {
    for rate in ["1e-300", "1e-19", "0.0000001"] {
        let out = headprobe().args(["--rate", rate, "127.0.0.1:1"]).run();
        out.expect_code(2);
        assert!(out.err().contains("--rate"), "{out:?}");
    }
}

mod option_values {
    use proptest::prelude::*;

    use crate::util::*;

    /// Options whose values a user types, long name first. `--proxy` is left out: a
    /// random value could name a host to look up, and no lookup may leave the machine.
    const OPTIONS: &[(&str, &str)] = &[
        ("--concurrency", "-c"),
        ("--port", "-p"),
        ("--method", "-X"),
        ("--path", "--path"),
        ("--header", "-H"),
        ("--http-version", "--http-version"),
        ("--connect-timeout", "--connect-timeout"),
        ("--timeout", "-t"),
        ("--max-header-bytes", "--max-header-bytes"),
        ("--format", "--format"),
        ("--resolve", "--resolve"),
        ("--expect-status", "--expect-status"),
        ("--rate", "--rate"),
        ("--shard", "--shard"),
        ("--proxy-check", "--proxy-check"),
        ("--cacert", "--cacert"),
        ("--resume", "--resume"),
    ];

    /// Values at the edges: tried with every option.
    const EDGES: &[&str] = &[
        "",
        "0",
        "-0",
        "-1",
        "1e-300",
        "1e-19",
        "1e300",
        "inf",
        "-inf",
        "NaN",
        "1/1",
        "0/0",
        "2/1",
        "1/18446744073709551615",
        "18446744073709551616",
        "4294967296",
        "65535",
        "65536",
        "0.0000001",
        "1ns",
        "1us",
        "999999999999s",
        "7d",
        "8d",
        "1.5",
        "1s 500ms",
        "*",
        "/",
        "-",
        "a:b:c",
        "x:80:127.0.0.1",
        "200-100",
        "100-999",
        "1.1",
        "2",
        "json",
        "X:",
        ":",
        "http://",
        "https://127.0.0.1:1/",
    ];

    /// Values as people type them, and as they mistype them.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(EDGES).prop_map(str::to_string),
            any::<f64>().prop_map(|f| f.to_string()),
            any::<f64>().prop_map(|f| format!("{f:e}")),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            (
                any::<u32>(),
                prop::sample::select(vec!["ms", "s", "m", "h", "d", "us", "x"])
            )
                .prop_map(|(n, unit)| format!("{n}{unit}")),
            (any::<u16>(), any::<u16>()).prop_map(|(k, n)| format!("{k}/{n}")),
            "[ -~]{0,12}",
            "\\PC{0,6}",
        ]
    }

    /// Runs `flag value` against a refused port; an error (with the message) unless the
    /// outcome is exit 0 or 1, or exit 2 with a message naming the option.
    fn check(long: &str, short: &str, flag: &str, value: &str) -> Result<(), String> {
        let target = refused_addr().to_string();
        let out = headprobe()
            .args(["--format", "status", flag, value, &target])
            .run();
        let err = out.err();
        match out.code {
            _ if err.contains("panicked") => Err(format!("{flag} {value:?} panicked: {out:?}")),
            Some(0 | 1) => Ok(()),
            Some(2) if err.contains(long) || err.contains(short) => Ok(()),
            Some(2) => Err(format!("{flag} {value:?}: no option named\n{out:?}")),
            _ => Err(format!("{flag} {value:?}: {out:?}")),
        }
    }

    #[test]
    fn every_option_with_every_edge_value() {
        let failures: Vec<String> = OPTIONS
            .iter()
            .flat_map(|(long, short)| EDGES.iter().map(move |v| check(long, short, long, v)))
            .filter_map(Result::err)
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 160,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Every value a user can type gets exit 2 with an error naming the option, or
        /// works: never a panic (exit 101).
        #[test]
        fn every_option_value_is_an_error_or_works(
            (long, short) in prop::sample::select(OPTIONS.to_vec()),
            use_short in any::<bool>(),
            value in value(),
        ) {
            let flag = if use_short { short } else { long };
            if let Err(e) = check(long, short, flag, &value) {
                prop_assert!(false, "{}", e);
            }
        }
    }
}

/// Issue 32: `| head -1` with silent targets: the run ends when the reader goes away,
/// not when the next record is written (`-t 20s` later). The test reads one line, drops
/// its end of the pipe, and allows the exit 10 s.
#[test]
fn a_reader_gone_ends_the_run_without_waiting_for_a_write() {
    let good = Server::start(Behaviour::Respond(ok_response()));
    let silent = Server::start(Behaviour::Silent);
    let (g, s) = (good.target(), silent.target());
    let mut cmd = headprobe()
        .args(["--format", "status", "-t", "20s", &g, &s, &s, &s])
        .command();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with(&format!("{g}\t")), "{first:?}");
    // Every silent probe is waiting for its answer: nothing more will be written.
    silent.requests(3);
    drop(stdout);

    let mut stderr = child.stderr.take().unwrap();
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let status = child.wait();
        let mut err = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut err);
        let _ = tx.send((status, err));
    });
    let (status, err) = match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(done) => done,
        Err(_) => {
            // SAFETY: our own child, not reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("still running 10s after its reader went away (-t 20s)");
        }
    };
    let status = status.unwrap();
    let err = String::from_utf8_lossy(&err);
    assert_eq!(status.code(), Some(0), "{status:?}, stderr: {err}");
    assert!(err.is_empty(), "stderr: {err}");
}
