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
