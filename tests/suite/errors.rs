//! Each error kind that plain TCP can produce, from a server that provokes it.
//! (`dns` is left out on purpose: no lookup may leave the machine. `invalid_target` is
//! in `targets`, `cancelled` in `process`.)

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::*;

/// Probes `target` in json format with `extra` options; returns the one record, after
/// checking the exit code is 1 and the text format names the same kind.
fn failing(target: &str, extra: &[&str], kind: &str) -> Value {
    let out = headprobe()
        .args(["--format", "json"])
        .args(extra)
        .arg(target)
        .run();
    out.expect_code(1);
    let r = out.only_json();
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"]["kind"], kind, "{r}");
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "no message: {r}");
    r
}

/// The last text line for the same probe is `T error > KIND: ...`.
fn text_error_line(target: &str, extra: &[&str], kind: &str) {
    let out = headprobe().args(extra).arg(target).run();
    out.expect_code(1);
    let last = out.lines().pop().unwrap_or_default();
    assert!(
        last.starts_with(&format!("{target} error > {kind}: ")),
        "{out:?}"
    );
}

#[test]
fn refused() {
    let t = refused_addr().to_string();
    let r = failing(&t, &[], "refused");
    assert_eq!(r["addr"], t);
    assert_eq!(r["timing_ms"]["connect"], Value::Null);
    text_error_line(&t, &[], "refused");
}

#[test]
fn connect_timeout() {
    let hole = blackhole_listener();
    let t = hole.target();
    let started = Instant::now();
    let r = failing(&t, &["--connect-timeout", "300ms"], "connect_timeout");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(250), "gave up after {took:?}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_eq!(r["addr"], t);
    assert_eq!(r["timing_ms"]["connect"], Value::Null);
    let total = r["timing_ms"]["total"].as_f64().unwrap();
    assert!((250.0..4000.0).contains(&total), "total {total}");
    text_error_line(&t, &["--connect-timeout", "300ms"], "connect_timeout");
}

#[test]
fn timeout_on_a_silent_server() {
    let server = Server::start(Behaviour::Silent);
    let t = server.target();
    let started = Instant::now();
    let r = failing(&t, &["-t", "300ms"], "timeout");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(250), "gave up after {took:?}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(server.next_request().starts_with(b"GET / HTTP/1.0\r\n"));
    assert_eq!(r["addr"], t);
    assert!(r["timing_ms"]["connect"].is_number(), "{r}");
    assert_eq!(r["timing_ms"]["first_byte"], Value::Null, "{r}");
    assert_eq!(r["status"], Value::Null, "{r}");
    text_error_line(&t, &["-t", "300ms"], "timeout");
}

#[test]
fn timeout_after_the_status_line_keeps_what_was_read() {
    let server = Server::start(Behaviour::Stall(
        b"HTTP/1.1 200 OK\r\nServer: slow\r\n".to_vec(),
    ));
    let t = server.target();
    let r = failing(&t, &["-t", "300ms"], "timeout");
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["version"], "HTTP/1.1", "{r}");
    assert_eq!(r["reason"], "OK", "{r}");
    assert_eq!(r["headers"], json!([["Server", "slow"]]), "{r}");
    assert!(r["timing_ms"]["first_byte"].is_number(), "{r}");
    assert_eq!(r["timing_ms"]["headers"], Value::Null, "{r}");

    let out = headprobe().args(["-t", "300ms"]).arg(&t).run();
    out.expect_code(1);
    let lines = out.lines();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert_eq!(lines[0], format!("{t} header > HTTP/1.1 200 OK"));
    assert_eq!(lines[1], format!("{t} header > Server: slow"));
    assert!(
        lines[2].starts_with(&format!("{t} error > timeout: ")),
        "{out:?}"
    );
}

/// The probe's deadline covers the whole probe: a server that trickles bytes forever
/// does not keep it alive.
#[test]
fn timeout_is_for_the_whole_probe() {
    let chunks: Vec<Vec<u8>> = std::iter::once(b"HTTP/1.0 200 OK\r\n".to_vec())
        .chain((0..100).map(|i| format!("X-{i}: v\r\n").into_bytes()))
        .collect();
    let server = Server::start(Behaviour::RespondSlowly(chunks, Duration::from_millis(50)));
    let started = Instant::now();
    let r = failing(&server.target(), &["-t", "400ms"], "timeout");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(r["status"], 200, "{r}");
}

#[test]
fn slow_but_timely_server_is_ok() {
    let chunks = vec![
        b"HTTP/1.0 200 OK\r\n".to_vec(),
        b"A: 1\r\n".to_vec(),
        b"B: 2\r\n\r\n".to_vec(),
    ];
    let server = Server::start(Behaviour::RespondSlowly(chunks, Duration::from_millis(30)));
    let out = headprobe()
        .args(["--format", "json", "-t", "5s"])
        .arg(server.target())
        .run();
    out.expect_code(0);
    assert_eq!(out.only_json()["headers"], json!([["A", "1"], ["B", "2"]]));
}

#[test]
fn reset() {
    let server = Server::start(Behaviour::Reset);
    let t = server.target();
    let r = failing(&t, &[], "reset");
    assert_eq!(r["addr"], t);
    text_error_line(&t, &[], "reset");
}

#[test]
fn empty() {
    let server = Server::start(Behaviour::CloseImmediately);
    let t = server.target();
    let r = failing(&t, &[], "empty");
    assert_eq!(r["status"], Value::Null, "{r}");
    assert_eq!(r["banner"], Value::Null, "{r}");
    text_error_line(&t, &[], "empty");
}

#[test]
fn incomplete_keeps_the_lines_read() {
    let server = Server::start(Behaviour::HalfThenClose(
        b"HTTP/1.0 200 OK\r\nServer: half\r\nX-Cut: ".to_vec(),
    ));
    let t = server.target();
    let r = failing(&t, &[], "incomplete");
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["headers"][0], json!(["Server", "half"]), "{r}");
    let out = headprobe().arg(&t).run();
    out.expect_code(1);
    let lines = out.lines();
    assert_eq!(lines[0], format!("{t} header > HTTP/1.0 200 OK"));
    assert_eq!(lines[1], format!("{t} header > Server: half"));
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with(&format!("{t} error > incomplete: ")),
        "{out:?}"
    );
}

#[test]
fn incomplete_inside_the_status_line() {
    let server = Server::start(Behaviour::HalfThenClose(b"HTTP/1.1 20".to_vec()));
    failing(&server.target(), &[], "incomplete");
}

#[test]
fn not_http_banner() {
    let server = Server::start(Behaviour::Banner(b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()));
    let t = server.target();
    let r = failing(&t, &["-t", "5s"], "not_http");
    assert_eq!(r["banner"], "SSH-2.0-OpenSSH_9.6", "{r}");
    assert_eq!(r["status"], Value::Null, "{r}");
    text_error_line(&t, &["-t", "5s"], "not_http");
}

#[test]
fn not_http_banner_is_capped() {
    let mut line = vec![b'Z'; 600];
    line.extend_from_slice(b"\r\n");
    let server = Server::start(Behaviour::Banner(line));
    let r = failing(&server.target(), &["-t", "5s"], "not_http");
    let banner = r["banner"].as_str().expect("banner");
    assert!(
        !banner.is_empty() && banner.len() <= 512,
        "{} bytes",
        banner.len()
    );
    assert!(banner.bytes().all(|b| b == b'Z'), "{banner:?}");
}

#[test]
fn malformed_status_line_is_not_http() {
    for first in [
        "HTTP/1.1 2x0 OK",
        "HTTP/x.1 200 OK",
        "HTTP/1.1 20 OK",
        "HTTP/1.1 2000 OK",
    ] {
        let answer = response(first, &["A: 1"]);
        let server = Server::start(Behaviour::Respond(answer));
        let r = failing(&server.target(), &[], "not_http");
        assert_eq!(r["banner"], first, "{r}");
    }
}

#[test]
fn status_mismatch() {
    let server = Server::start(Behaviour::Respond(response("HTTP/1.0 404 Not Found", &[])));
    let t = server.target();
    let r = failing(&t, &["--expect-status", "200,300-399"], "status_mismatch");
    assert_eq!(r["status"], 404, "{r}");
    assert_eq!(r["reason"], "Not Found", "{r}");
    text_error_line(&t, &["--expect-status", "200,300-399"], "status_mismatch");

    let out = headprobe()
        .args(["--format", "status", "--expect-status", "200,300-399", &t])
        .run();
    out.expect_code(1);
    assert_eq!(out.status_rows()[0][1], "status_mismatch", "{out:?}");
}

#[test]
fn expected_statuses_are_ok() {
    for (status, code) in [
        ("200 OK", 0),
        ("302 Found", 0),
        ("399 Odd", 0),
        ("301 Moved", 0),
    ] {
        let server = Server::start(Behaviour::Respond(response(
            &format!("HTTP/1.0 {status}"),
            &[],
        )));
        let out = headprobe()
            .args(["--format", "json", "--expect-status", "200,300-399"])
            .arg(server.target())
            .run();
        out.expect_code(code);
        assert_eq!(out.only_json()["ok"], true);
    }
    // Without --expect-status any final status is ok.
    let server = Server::start(Behaviour::Respond(response("HTTP/1.0 500 Oops", &[])));
    headprobe().arg(server.target()).run().expect_code(0);
}

/// Issue 11: a duration in a message reads as the user would write it (`1.05s`), not in
/// humantime's `1s 50ms`.
#[test]
fn durations_in_messages_read_as_typed() {
    let server = Server::start(Behaviour::Silent);
    let r = failing(&server.target(), &["-t", "1.05"], "timeout");
    assert_eq!(message(&r), "no response within 1.05s (--timeout)", "{r}");
}
