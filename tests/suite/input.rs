//! Where targets come from: arguments, `--file`, standard input; in which order; and
//! what is skipped.

use std::time::Duration;

use crate::util::*;

/// The `target` of each json record, in output order.
fn targets_of(out: &Outcome) -> Vec<String> {
    out.json()
        .iter()
        .map(|r| r["target"].as_str().expect("target").to_string())
        .collect()
}

/// A list with comments, blank lines, surrounding whitespace and a CRLF line.
fn messy_list(t: &str) -> String {
    format!("# a comment\n\n   {t}/one  \n\t\n#{t}/commented\n\t{t}/two\r\n{t}/three")
}

const MESSY_TARGETS: [&str; 3] = ["/one", "/two", "/three"];

fn expected(t: &str, paths: &[&str]) -> Vec<String> {
    paths.iter().map(|p| format!("{t}{p}")).collect()
}

#[test]
fn standard_input_when_no_targets_given() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = format!("http://{}", server.target());
    let out = headprobe()
        .args(["--format", "json", "--ordered"])
        .stdin(messy_list(&t))
        .run();
    out.expect_code(0);
    assert_eq!(targets_of(&out), expected(&t, &MESSY_TARGETS));
}

#[test]
fn file_option() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = format!("http://{}", server.target());
    let file = temp_file("list", messy_list(&t).as_bytes());
    let out = headprobe()
        .args(["--format", "json", "--ordered", "-f"])
        .arg(&file)
        .run();
    out.expect_code(0);
    assert_eq!(targets_of(&out), expected(&t, &MESSY_TARGETS));
}

#[test]
fn file_dash_is_standard_input() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = format!("http://{}", server.target());
    let out = headprobe()
        .args(["--format", "json", "--ordered", "--file", "-"])
        .stdin(messy_list(&t))
        .run();
    out.expect_code(0);
    assert_eq!(targets_of(&out), expected(&t, &MESSY_TARGETS));
}

#[test]
fn arguments_first_then_files_in_order() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = format!("http://{}", server.target());
    let a = temp_file("a", format!("{t}/a1\n{t}/a2\n").as_bytes());
    let b = temp_file("b", format!("{t}/b1\n").as_bytes());
    let out = headprobe()
        .args(["--format", "json", "--ordered"])
        .arg("-f")
        .arg(&b)
        .arg(format!("{t}/arg1"))
        .arg("-f")
        .arg("-")
        .arg("--file")
        .arg(&a)
        .arg(format!("{t}/arg2"))
        .stdin(format!("{t}/stdin1\n"))
        .run();
    out.expect_code(0);
    assert_eq!(
        targets_of(&out),
        expected(&t, &["/arg1", "/arg2", "/b1", "/stdin1", "/a1", "/a2"])
    );
}

#[test]
fn standard_input_is_not_read_when_targets_are_given() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = format!("http://{}", server.target());
    let out = headprobe()
        .args(["--format", "json"])
        .arg(format!("{t}/arg"))
        .stdin(format!("{t}/stdin\n"))
        .run();
    out.expect_code(0);
    assert_eq!(targets_of(&out), [format!("{t}/arg")]);
}

#[test]
fn unreadable_file_is_a_usage_error_and_nothing_is_probed() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let missing = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-list");
    let out = headprobe()
        .arg(server.target())
        .arg("-f")
        .arg(&missing)
        .run();
    out.expect_code(2);
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(!out.stderr.is_empty(), "no message on stderr");
    assert!(
        server
            .next_request_within(Duration::from_millis(200))
            .is_none(),
        "a target was probed"
    );
}

#[test]
fn no_targets_at_all_exits_0() {
    let out = headprobe().run();
    out.expect_code(0);
    assert!(out.stdout.is_empty(), "{out:?}");

    let only_comments = temp_file("comments", b"# nothing\n\n   \n");
    let out = headprobe().arg("-f").arg(&only_comments).run();
    out.expect_code(0);
    assert!(out.stdout.is_empty(), "{out:?}");

    let out = headprobe().stdin("").run();
    out.expect_code(0);
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[test]
fn terminal_standard_input_is_a_usage_error() {
    let mut master: libc::c_int = -1;
    let mut slave: libc::c_int = -1;
    // SAFETY: openpty writes two descriptors into the given ints; null name/termios/size.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if rc != 0 {
        eprintln!("skipped: no pty");
        return;
    }
    use std::os::fd::FromRawFd;
    // SAFETY: both descriptors were just opened by openpty and are owned here alone.
    let (master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    };
    let out = headprobe()
        .stdin_from(std::process::Stdio::from(slave))
        .run();
    drop(master);
    out.expect_code(2);
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(!out.stderr.is_empty(), "no usage message");
}

/// Probing starts before the input ends.
#[test]
fn input_is_streamed() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    let mut run = headprobe()
        .args(["--format", "status"])
        .stdin(format!("{t}\n"))
        .spawn();
    // Standard input is still open, yet the first target is probed and reported.
    server.next_request();
    let first = run.next_line();
    assert!(first.starts_with(&format!("{t}\t200\t")), "{first:?}");
    run.write_stdin(format!("{t}\n").as_bytes());
    server.next_request();
    let second = run.next_line();
    assert!(second.starts_with(&format!("{t}\t200\t")), "{second:?}");
    run.close_stdin();
    let out = run.finish();
    out.expect_code(0);
    assert_eq!(out.lines().len(), 2, "{out:?}");
}

#[test]
fn duplicates_from_files_are_each_probed() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    let list = format!("{t}\n").repeat(5);
    let file = temp_file("dups", list.as_bytes());
    let out = headprobe()
        .args(["--format", "status", "-f"])
        .arg(&file)
        .arg("-f")
        .arg(&file)
        .run();
    out.expect_code(0);
    assert_eq!(out.status_rows().len(), 10, "{out:?}");
    server.requests(10);
}

/// Issue 11: a line over 65,536 bytes was cut to 256 bytes plus a literal `...` and
/// probed. It is an `invalid_target` record that says why, and nothing is sent.
#[test]
fn an_overlong_line_is_an_invalid_target_and_not_probed() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    let long = format!("http://{t}/?q={}", "x".repeat(70_000));
    let list = format!("{long}\nhttp://{t}/after\n");
    for via_file in [true, false] {
        let file = temp_file("long-line", list.as_bytes());
        let run = headprobe().args(["--format", "json", "--ordered"]);
        let out = if via_file {
            run.arg("-f").arg(&file).run()
        } else {
            run.stdin(list.clone()).run()
        };
        out.expect_code(1);
        let records = out.json();
        assert_eq!(records.len(), 2, "{out:?}");
        let r = &records[0];
        assert_eq!(r["error"]["kind"], "invalid_target", "{r}");
        assert_eq!(r["index"], 0, "{r}");
        let why = message(r);
        assert!(
            why.contains(&format!("is {} bytes long", long.len())) && why.contains("65536"),
            "{why}"
        );
        let echo = r["target"].as_str().unwrap();
        assert!(echo.len() < 200 && echo.contains("-byte line]"), "{echo}");
        assert_eq!(records[1]["ok"], true, "{out:?}");
        // Only the line after it was sent.
        let req = server.request_text();
        assert!(req.starts_with("GET /after HTTP/1.0\r\n"), "{req:?}");
        assert!(
            server
                .next_request_within(Duration::from_millis(100))
                .is_none(),
            "the overlong line was probed"
        );
    }
}

/// Issue 11: a positional `-` is standard input, read at its place among the arguments.
#[test]
fn a_positional_dash_is_standard_input() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = format!("http://{}", server.target());
    let out = headprobe()
        .args(["--format", "json", "--ordered"])
        .arg(format!("{t}/first"))
        .arg("-")
        .arg(format!("{t}/last"))
        .stdin(format!("{t}/stdin1\n{t}/stdin2\n"))
        .run();
    out.expect_code(0);
    assert_eq!(
        targets_of(&out),
        expected(&t, &["/first", "/stdin1", "/stdin2", "/last"])
    );
}

/// Issue 11: `#` after whitespace starts a comment, as `--help` says; a `#` inside a
/// token (a URL's fragment) does not.
#[test]
fn a_hash_after_whitespace_starts_a_comment() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = format!("http://{}", server.target());
    let out = headprobe()
        .args(["--format", "json", "--ordered"])
        .stdin(format!("{t}/a  # main site\n{t}/b\t# tabbed\n{t}/c#frag\n"))
        .run();
    out.expect_code(0);
    assert_eq!(targets_of(&out), expected(&t, &["/a", "/b", "/c#frag"]));
}

/// Issue 11: an empty target list exits 0 (the contract) but says so on stderr, with or
/// without `-q`.
#[test]
fn an_empty_input_warns_but_exits_0() {
    let empty = temp_file("empty", b"");
    for quiet in [false, true] {
        let mut run = headprobe().arg("-f").arg(&empty);
        if quiet {
            run = run.arg("-q");
        }
        let out = run.run();
        out.expect_code(0);
        assert!(out.stdout.is_empty(), "{out:?}");
        assert!(out.err().contains("no targets"), "{out:?}");
    }
}

/// JSON's `index` is the position in the whole input, invalid targets included: the
/// number `--shard` goes by.
#[test]
fn json_index_counts_every_target_read() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    let list = format!("# header\n{t}\nbad token\n\n{t}\n{t}\n");
    let out = headprobe()
        .args(["--format", "json", "--ordered"])
        .stdin(list.clone())
        .run();
    let indices: Vec<u64> = out
        .json()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, [0, 1, 2, 3]);
    let out = headprobe()
        .args(["--format", "json", "--ordered", "--shard", "2/2"])
        .stdin(list)
        .run();
    let indices: Vec<u64> = out
        .json()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, [1, 3]);
}

/// A file that opens but cannot be read is a usage error before anything is probed
/// (it was exit 1 with nothing probed).
#[test]
fn a_file_that_opens_but_cannot_be_read_is_a_usage_error() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let out = headprobe()
        .args([&server.target(), "-f", "/proc/self/mem"])
        .run();
    out.expect_code(2);
    assert_eq!(
        out.err().lines().next().unwrap_or(""),
        "headprobe: cannot read --file /proc/self/mem: Input/output error"
    );
    assert_eq!(server.accepted(), 0);
    assert!(out.stdout.is_empty());
}

/// Only a password is masked in an echo: `bob@` and `bob:pw@` stay apart (both read
/// `bob:***@`, so status lines could not tell them apart).
#[test]
fn an_echo_masks_the_password_only() {
    let dead = refused_addr();
    let out = headprobe()
        .args([
            "--format",
            "status",
            "--ordered",
            "--proxy-check",
            "http://127.0.0.1:9/",
        ])
        .args([
            format!("socks4://bob@{dead}"),
            format!("socks4://bob:pw@{dead}"),
        ])
        .run();
    let rows = out.status_rows();
    assert_eq!(rows[0][0], format!("socks4://bob@{dead}"), "{out:?}");
    assert_eq!(rows[1][0], format!("socks4://bob:***@{dead}"), "{out:?}");
    assert!(!out.out().contains("pw"), "{out:?}");
}

/// An argument that is not UTF-8 is an invalid target, echoed escaped as a file line
/// would be; it was altered (U+FFFD) and probed.
#[test]
fn an_argument_that_is_not_utf8_is_invalid_and_never_probed() {
    use std::os::unix::ffi::OsStrExt;
    let server = Server::start(Behaviour::Respond(ok_response()));
    let bad = format!("http://{}/caf", server.target()).into_bytes();
    let bad = [bad, vec![0xe9]].concat();
    let out = headprobe()
        .args(["--format", "status"])
        .arg(std::ffi::OsStr::from_bytes(&bad))
        .arg(std::ffi::OsStr::from_bytes(b"\xff127.0.0.1"))
        .arg("--ordered")
        .run();
    out.expect_code(1);
    let rows = out.status_rows();
    assert_eq!(rows[0][0], format!("http://{}/caf\\xe9", server.target()));
    assert_eq!(rows[0][1], "invalid_target");
    assert_eq!(rows[1][0], "\\xff127.0.0.1");
    assert!(!out.out().contains('\u{fffd}'), "{out:?}");
    assert_eq!(server.accepted(), 0, "the altered target was probed");
    // The same bytes as an option's value are a usage error.
    let out = headprobe()
        .arg("--path")
        .arg(std::ffi::OsStr::from_bytes(b"/caf\xe9"))
        .arg(server.target())
        .run();
    out.expect_code(2);
    assert_eq!(
        out.err().lines().next().unwrap_or(""),
        "headprobe: invalid --path: '/caf\\xe9' is not valid UTF-8"
    );
}

/// Standard input redirected from a directory (`-f - < /`) cannot be read: a usage
/// error (exit 2) before anything is probed, as an unreadable `-f FILE` is, whether it is
/// named `-f -`, a positional `-`, or read for want of targets.
#[test]
fn standard_input_that_cannot_be_read_is_a_usage_error() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("stdin-is-a-directory");
    std::fs::create_dir_all(&dir).unwrap();
    let target = server.target();
    let runs: [&[&str]; 3] = [&["-f", "-", &target], &["-", &target], &[]];
    for args in runs {
        let dir_in = std::fs::File::open(&dir).expect("open the directory");
        let out = headprobe()
            .args(args)
            .stdin_from(std::process::Stdio::from(dir_in))
            .run();
        out.expect_code(2);
        assert_eq!(
            out.err().lines().next().unwrap_or(""),
            "headprobe: cannot read standard input: it is a directory",
            "{args:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
    assert_eq!(server.accepted(), 0, "a target was probed");
}
