//! The request bytes, exactly as the server receives them.

use crate::util::*;

/// Runs headprobe with `args` then the server's target, and returns the request it sent.
fn request_for(args: &[&str]) -> String {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let out = headprobe().args(args).arg(server.target()).run();
    out.expect_code(0);
    server.request_text()
}

/// The request's header lines (without the request line and the blank line).
fn header_lines(req: &str) -> Vec<&str> {
    let head = req
        .strip_suffix("\r\n\r\n")
        .unwrap_or_else(|| panic!("request not ended by a blank line: {req:?}"));
    head.split("\r\n").skip(1).collect()
}

/// The values of the headers named `name`, compared case-insensitively.
fn values<'a>(req: &'a str, name: &str) -> Vec<&'a str> {
    header_lines(req)
        .into_iter()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

#[test]
fn default_request_is_exact() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let port = server.port();
    headprobe().arg(server.target()).run().expect_code(0);
    assert_eq!(
        server.request_text(),
        format!(
            "GET / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: headprobe/{VERSION}\r\n\
             Accept: */*\r\n\r\n"
        )
    );
}

/// The Host header leaves out the scheme's default port. Needs port 80 on 127.0.0.1,
/// so it is skipped where that cannot be bound.
#[test]
fn host_header_leaves_out_default_port() {
    let Ok(server) = Server::start_on("127.0.0.1:80", Behaviour::Respond(ok_response())) else {
        eprintln!("skipped: cannot bind 127.0.0.1:80");
        return;
    };
    for target in ["127.0.0.1", "127.0.0.1:80", "http://127.0.0.1/x"] {
        headprobe().arg(target).run().expect_code(0);
        let req = server.request_text();
        assert_eq!(values(&req, "Host"), ["127.0.0.1"], "{target}: {req:?}");
    }
}

#[test]
fn method_option() {
    let req = request_for(&["-X", "HEAD"]);
    assert!(req.starts_with("HEAD / HTTP/1.0\r\n"), "{req:?}");
    let req = request_for(&["--method", "OPTIONS"]);
    assert!(req.starts_with("OPTIONS / HTTP/1.0\r\n"), "{req:?}");
}

#[test]
fn path_option() {
    let req = request_for(&["--path", "/health?full=1"]);
    assert!(
        req.starts_with("GET /health?full=1 HTTP/1.0\r\n"),
        "{req:?}"
    );
}

#[test]
fn extra_headers_follow_the_defaults_in_order() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let port = server.port();
    headprobe()
        .args([
            "-H",
            "X-One: 1",
            "--header",
            "X-Two: two words",
            "-H",
            "X-One: again",
        ])
        .arg(server.target())
        .run()
        .expect_code(0);
    assert_eq!(
        server.request_text(),
        format!(
            "GET / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: headprobe/{VERSION}\r\n\
             Accept: */*\r\nX-One: 1\r\nX-Two: two words\r\nX-One: again\r\n\r\n"
        )
    );
}

#[test]
fn header_replaces_a_default_case_insensitively() {
    let req = request_for(&["-H", "user-agent: probe/9", "-H", "HOST: example.test"]);
    assert_eq!(values(&req, "User-Agent"), ["probe/9"], "{req:?}");
    assert_eq!(values(&req, "Host"), ["example.test"], "{req:?}");
    assert_eq!(values(&req, "Accept"), ["*/*"], "{req:?}");
    assert_eq!(header_lines(&req).len(), 3, "{req:?}");
}

#[test]
fn header_with_empty_value_removes_a_default() {
    let req = request_for(&["-H", "Accept:"]);
    assert!(values(&req, "Accept").is_empty(), "{req:?}");
    assert_eq!(header_lines(&req).len(), 2, "{req:?}");

    let req = request_for(&["-H", "user-agent:", "-H", "X-Kept: yes"]);
    assert!(values(&req, "User-Agent").is_empty(), "{req:?}");
    assert_eq!(values(&req, "X-Kept"), ["yes"], "{req:?}");
    assert_eq!(values(&req, "Accept"), ["*/*"], "{req:?}");
}

#[test]
fn http_11_adds_connection_close() {
    let req = request_for(&["--http-version", "1.1"]);
    assert!(req.starts_with("GET / HTTP/1.1\r\n"), "{req:?}");
    assert_eq!(values(&req, "Connection"), ["close"], "{req:?}");
    assert_eq!(values(&req, "Accept"), ["*/*"], "{req:?}");
    assert_eq!(header_lines(&req).len(), 4, "{req:?}");
}

#[test]
fn http_10_is_explicitly_accepted() {
    let req = request_for(&["--http-version", "1.0"]);
    assert!(req.starts_with("GET / HTTP/1.0\r\n"), "{req:?}");
    assert!(values(&req, "Connection").is_empty(), "{req:?}");
}

/// Issue 11: removing a default must not upset the other rules. Curl's behaviour: a
/// user header replaces the default of that name, repeated ones are all sent in order.
#[test]
fn header_rules_hold_after_a_removal() {
    let req = request_for(&["-H", "User-Agent:", "-H", "X-A: 1", "-H", "X-A: 2"]);
    assert_eq!(values(&req, "X-A"), ["1", "2"], "{req:?}");
    assert!(values(&req, "User-Agent").is_empty(), "{req:?}");

    let req = request_for(&["-H", "User-Agent:", "-H", "Accept: text/html"]);
    assert_eq!(values(&req, "Accept"), ["text/html"], "{req:?}");
    assert_eq!(header_lines(&req).len(), 2, "{req:?}");

    let req = request_for(&[
        "--http-version",
        "1.1",
        "-H",
        "Accept:",
        "-H",
        "Connection: keep-alive",
    ]);
    assert_eq!(values(&req, "Connection"), ["keep-alive"], "{req:?}");
    assert!(values(&req, "Accept").is_empty(), "{req:?}");
    assert_eq!(header_lines(&req).len(), 3, "{req:?}");
}

/// Issue 11: `--path` applies to a URL that gives no path; a URL's own path wins.
#[test]
fn path_option_applies_to_urls_without_a_path() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    let cases = [
        (format!("http://{t}"), "GET /health HTTP/1.0\r\n"),
        (format!("http://{t}/"), "GET / HTTP/1.0\r\n"),
        (format!("http://{t}/own"), "GET /own HTTP/1.0\r\n"),
        (t.clone(), "GET /health HTTP/1.0\r\n"),
    ];
    for (target, want) in cases {
        headprobe()
            .args(["--path", "/health", &target])
            .run()
            .expect_code(0);
        let req = server.request_text();
        assert!(req.starts_with(want), "{target}: {req:?}");
    }
}
