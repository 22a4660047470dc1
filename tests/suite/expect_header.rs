//! `--expect-header NAME: REGEX`, in every mode: hits, misses and missing headers
//! (`header_mismatch`, with the peer's bytes escaped), bad patterns as usage errors, and
//! the check applied through a proxy too.

use crate::util::proxy::*;
use crate::util::*;

fn header_server() -> Server {
    Server::start(Behaviour::Respond(response(
        "HTTP/1.1 200 OK",
        &[
            "Server: nginx/1.22.1",
            "Set-Cookie: a=1",
            "Set-Cookie: session=xyz",
            "X-Evil: \x1b[2Jgone",
        ],
    )))
}

#[test]
fn expect_header_hits() {
    let server = header_server();
    for expect in [
        vec!["Server: nginx"],
        vec!["server: ^nginx/1\\.22"],
        vec!["SET-COOKIE: ^session="],
        vec!["Server: nginx", "Set-Cookie: a=1"],
        vec!["Server:"],
    ] {
        let mut args = vec![server.target()];
        for e in &expect {
            args.extend(["--expect-header".to_string(), e.to_string()]);
        }
        let (out, r) = json_run(&args);
        out.expect_code(0);
        assert_eq!(r["ok"], true, "{expect:?}: {r}");
    }
}

#[test]
fn expect_header_misses_and_missing_headers_are_header_mismatch() {
    let server = header_server();
    let target = server.target();
    let r = failing(
        &[&target, "--expect-header", "Server: ^apache"],
        "header_mismatch",
    );
    assert_eq!(
        message(&r),
        "Server is \"nginx/1.22.1\", which does not match '^apache' \
         (--expect-header 'Server: ^apache')"
    );
    assert_eq!(r["status"], 200, "the response is kept: {r}");
    let r = failing(
        &[&target, "--expect-header", "Via: proxy"],
        "header_mismatch",
    );
    assert!(message(&r).contains("no Via header"), "{r}");
    // All must hold: the second one fails.
    let r = failing(
        &[
            &target,
            "--expect-header",
            "Server: nginx",
            "--expect-header",
            "Set-Cookie: ^b=",
        ],
        "header_mismatch",
    );
    let m = message(&r);
    assert!(
        m.contains(r#"Set-Cookie is "a=1", "session=xyz""#) && m.contains("'^b='"),
        "{m}"
    );
    // Peer bytes in the message are escaped, in every format.
    let r = failing(
        &[&target, "--expect-header", "X-Evil: fine"],
        "header_mismatch",
    );
    assert!(message(&r).contains(r#""\x1b[2Jgone""#), "{r}");
    for format in ["text", "status"] {
        let out = headprobe()
            .args([
                "--format",
                format,
                "--expect-header",
                "X-Evil: fine",
                &target,
            ])
            .run();
        out.expect_code(1);
        assert!(out.out().contains("header_mismatch"), "{out:?}");
        assert_terminal_safe(&out.stdout);
    }
    // --expect-status is judged first.
    let r = failing(
        &[
            &target,
            "--expect-status",
            "204",
            "--expect-header",
            "Via: x",
        ],
        "status_mismatch",
    );
    assert!(message(&r).contains("204"), "{r}");
}

#[test]
fn a_bad_expect_header_is_a_usage_error_naming_it() {
    for (arg, named) in [
        ("Server: ngin(x", "ngin(x"),
        ("Server: [z-a]", "[z-a]"),
        ("no colon here", "no colon here"),
        ("Bad Name: x", "Bad Name"),
    ] {
        let out = headprobe()
            .args(["--expect-header", arg, "127.0.0.1:9"])
            .run();
        out.expect_code(2);
        assert!(out.stdout.is_empty(), "nothing probed: {out:?}");
        let err = out.err();
        assert!(
            err.contains("--expect-header") && err.contains(named),
            "{arg}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn expect_header_applies_through_proxies_too() {
    let origin = origin_server();
    let socks = Socks5::default().start();
    let url = format!("http://127.0.0.1:{}/", origin.port());
    let (out, _) = json_run(&[
        "--proxy",
        &socks.url("socks5"),
        "--expect-header",
        "X-Origin: yes",
        &url,
    ]);
    out.expect_code(0);
    let r = failing(
        &[
            "--proxy",
            &socks.url("socks5"),
            "--expect-header",
            "X-Origin: no",
            &url,
        ],
        "header_mismatch",
    );
    assert!(message(&r).contains("X-Origin is \"yes\""), "{r}");
}
