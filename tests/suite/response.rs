//! Reading the response head: line endings, lenient status lines, interim blocks,
//! header quirks, the byte cap, and never the body.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::*;

/// Serves `answer` once and returns the json record and the text lines for it.
fn probe_both(answer: &[u8], extra: &[&str]) -> (Value, Vec<String>, String) {
    let server = Server::start(Behaviour::Respond(answer.to_vec()));
    let target = server.target();
    let json = headprobe()
        .args(["--format", "json"])
        .args(extra)
        .arg(&target)
        .run();
    let text = headprobe().args(extra).arg(&target).run();
    assert_eq!(
        json.code, text.code,
        "json and text runs disagree\n{json:?}\n{text:?}"
    );
    (json.only_json(), text.lines(), target)
}

fn header_lines(target: &str, lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .map(|l| format!("{target} header > {l}"))
        .collect()
}

#[test]
fn crlf_line_endings() {
    let (r, text, t) = probe_both(b"HTTP/1.1 200 OK\r\nServer: a\r\nX-B: b\r\n\r\n", &[]);
    assert_eq!(r["ok"], true);
    assert_eq!(r["version"], "HTTP/1.1");
    assert_eq!(r["reason"], "OK");
    assert_eq!(r["headers"], json!([["Server", "a"], ["X-B", "b"]]));
    assert_eq!(
        text,
        header_lines(&t, &["HTTP/1.1 200 OK", "Server: a", "X-B: b"])
    );
}

#[test]
fn bare_lf_line_endings() {
    let (r, text, t) = probe_both(b"HTTP/1.0 204 No Content\nServer: a\nX-B: b\n\n", &[]);
    assert_eq!(r["ok"], true);
    assert_eq!(r["status"], 204);
    assert_eq!(r["reason"], "No Content");
    assert_eq!(r["headers"], json!([["Server", "a"], ["X-B", "b"]]));
    assert_eq!(
        text,
        header_lines(&t, &["HTTP/1.0 204 No Content", "Server: a", "X-B: b"])
    );
}

#[test]
fn mixed_line_endings() {
    let (r, _, _) = probe_both(b"HTTP/1.0 200 OK\nA: 1\r\nB: 2\n\r\n", &[]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["headers"], json!([["A", "1"], ["B", "2"]]));
}

#[test]
fn status_line_without_reason() {
    let (r, text, t) = probe_both(b"HTTP/1.1 200\r\nA: 1\r\n\r\n", &[]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200);
    assert_eq!(r["reason"], "");
    assert_eq!(r["version"], "HTTP/1.1");
    assert_eq!(text, header_lines(&t, &["HTTP/1.1 200", "A: 1"]));
}

#[test]
fn status_line_with_extra_spaces() {
    let (r, _, _) = probe_both(b"HTTP/1.1   404   Not Found\r\n\r\n", &[]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 404);
    assert_eq!(r["reason"], "Not Found");
}

#[test]
fn status_line_without_reason_but_trailing_space() {
    let (r, _, _) = probe_both(b"HTTP/1.0 301 \r\nLocation: /x\r\n\r\n", &[]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 301);
    assert_eq!(r["reason"], "");
}

#[test]
fn interim_block_then_final_response() {
    let answer = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n\
                   HTTP/1.1 200 OK\r\nServer: a\r\n\r\n";
    let (r, text, t) = probe_both(answer, &[]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200);
    assert_eq!(r["reason"], "OK");
    assert_eq!(r["headers"], json!([["Server", "a"]]));
    assert_eq!(
        r["interim"],
        json!([{"status": 103, "reason": "Early Hints",
                "headers": [["Link", "</a.css>; rel=preload"]]}])
    );
    assert_eq!(
        text,
        header_lines(
            &t,
            &[
                "HTTP/1.1 103 Early Hints",
                "Link: </a.css>; rel=preload",
                "HTTP/1.1 200 OK",
                "Server: a",
            ]
        )
    );
}

#[test]
fn several_interim_blocks() {
    let answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: <a>\r\n\r\n\
                   HTTP/1.1 200 OK\r\n\r\n";
    let (r, _, _) = probe_both(answer, &[]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200);
    assert_eq!(
        r["interim"],
        json!([
            {"status": 100, "reason": "Continue", "headers": []},
            {"status": 103, "reason": "Early Hints", "headers": [["Link", "<a>"]]}
        ])
    );
}

#[test]
fn switching_protocols_is_final() {
    let answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\
                   HTTP/1.1 200 OK\r\n\r\n";
    let (r, _, _) = probe_both(answer, &[]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 101);
    assert_eq!(r["interim"], json!([]));
    assert_eq!(r["headers"], json!([["Upgrade", "websocket"]]));
}

#[test]
fn obs_fold_is_joined_in_json_and_raw_in_text() {
    let answer = b"HTTP/1.0 200 OK\r\nX-Long: first\r\n   second\r\n\tthird\r\nX-Next: n\r\n\r\n";
    let (r, text, t) = probe_both(answer, &[]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        r["headers"],
        json!([["X-Long", "first second third"], ["X-Next", "n"]])
    );
    assert_eq!(
        text,
        header_lines(
            &t,
            &[
                "HTTP/1.0 200 OK",
                "X-Long: first",
                "   second",
                "\tthird",
                "X-Next: n"
            ]
        )
    );
}

#[test]
fn duplicate_headers_stay_separate_pairs() {
    let answer = b"HTTP/1.0 200 OK\r\nSet-Cookie: a=1\r\nServer: s\r\nSet-Cookie: b=2\r\n\r\n";
    let (r, _, _) = probe_both(answer, &[]);
    assert_eq!(
        r["headers"],
        json!([
            ["Set-Cookie", "a=1"],
            ["Server", "s"],
            ["Set-Cookie", "b=2"]
        ])
    );
}

#[test]
fn header_split_at_first_colon_and_trimmed() {
    let answer = b"HTTP/1.0 200 OK\r\nLocation:   http://x:8080/a:b  \r\nEmpty:\r\n\r\n";
    let (r, _, _) = probe_both(answer, &[]);
    assert_eq!(
        r["headers"],
        json!([["Location", "http://x:8080/a:b"], ["Empty", ""]])
    );
}

#[test]
fn line_without_colon_is_kept() {
    let answer = b"HTTP/1.0 200 OK\r\nA: 1\r\nno colon here\r\n\r\n";
    let (r, text, t) = probe_both(answer, &[]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["headers"], json!([["A", "1"], ["no colon here", ""]]));
    assert_eq!(
        text,
        header_lines(&t, &["HTTP/1.0 200 OK", "A: 1", "no colon here"])
    );
}

#[test]
fn body_is_never_printed() {
    let answer =
        b"HTTP/1.0 200 OK\r\nContent-Length: 40\r\n\r\nBODY-MARKER\r\nNot-A: header\r\n\r\n";
    let server = Server::start(Behaviour::Respond(answer.to_vec()));
    for format in ["text", "status", "json"] {
        let out = headprobe()
            .args(["--format", format])
            .arg(server.target())
            .run();
        out.expect_code(0);
        let stdout = out.out();
        assert!(!stdout.contains("BODY-MARKER"), "{format}: {stdout}");
        assert!(!stdout.contains("Not-A"), "{format}: {stdout}");
    }
}

/// The server sends a head and a body, then keeps the connection open: the probe must
/// end at the blank line, not wait for the close.
#[test]
fn probe_ends_at_the_blank_line_without_waiting_for_close() {
    let mut answer = b"HTTP/1.0 200 OK\r\nA: 1\r\n\r\n".to_vec();
    answer.extend(std::iter::repeat_n(b'x', 1000));
    let server = Server::start(Behaviour::Stall(answer));
    let started = Instant::now();
    let out = headprobe()
        .args(["--format", "json", "-t", "5s"])
        .arg(server.target())
        .run();
    out.expect_code(0);
    let r = out.only_json();
    assert_eq!(r["ok"], true, "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "waited for the close"
    );
    // headprobe closed its side: the server sees the end of the connection.
    assert!(server.next_closed_within(WAIT));
}

/// Header lines are printed as they arrive, before the head is complete.
#[test]
fn text_lines_stream_as_they_are_read() {
    let server = Server::start(Behaviour::Script(vec![
        Step::Write(b"HTTP/1.0 200 OK\r\nFirst: 1\r\n".to_vec()),
        Step::WaitRelease,
        Step::Write(b"Second: 2\r\n\r\n".to_vec()),
    ]));
    let t = server.target();
    let mut run = headprobe().args(["-t", "20s"]).arg(&t).spawn();
    assert_eq!(run.next_line(), format!("{t} header > HTTP/1.0 200 OK"));
    assert_eq!(run.next_line(), format!("{t} header > First: 1"));
    server.release(1);
    assert_eq!(run.next_line(), format!("{t} header > Second: 2"));
    run.finish().expect_code(0);
}

#[test]
fn max_header_bytes_keeps_complete_lines() {
    // 17-byte status line + 20-byte lines: 4 lines fit in 100 bytes, the 5th does not.
    let server = Server::start(Behaviour::Oversized(1000));
    let t = server.target();
    let out = headprobe()
        .args(["--format", "json", "--max-header-bytes", "100"])
        .arg(&t)
        .run();
    out.expect_code(1);
    let r = out.only_json();
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"]["kind"], "headers_too_large", "{r}");
    assert_eq!(r["status"], 200, "{r}");
    let expected: Vec<Value> = (0..4)
        .map(|i| {
            let line = fill_line(i);
            let (n, v) = line.trim_end().split_once(": ").unwrap();
            json!([n, v])
        })
        .collect();
    assert_eq!(r["headers"], Value::Array(expected), "{r}");

    let out = headprobe()
        .args(["--max-header-bytes", "100"])
        .arg(&t)
        .run();
    out.expect_code(1);
    let lines = out.lines();
    assert_eq!(lines.len(), 6, "{out:?}");
    assert_eq!(lines[0], format!("{t} header > HTTP/1.1 200 OK"));
    assert_eq!(
        lines[4],
        format!("{t} header > {}", fill_line(3).trim_end())
    );
    assert!(
        lines[5].starts_with(&format!("{t} error > headers_too_large: ")),
        "{out:?}"
    );
}

#[test]
fn max_header_bytes_counts_interim_blocks() {
    // A 61-byte interim block and a 65-byte final head: each fits in 100, both do not.
    let interim = b"HTTP/1.1 103 Early Hints\r\nLink: <aaaaaaaaaaaaaaaaaaaaaaa>\r\n\r\n";
    let final_head = b"HTTP/1.1 200 OK\r\nServer: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n\r\n";
    assert_eq!(interim.len(), 61);
    assert_eq!(final_head.len(), 65);
    let mut answer = interim.to_vec();
    answer.extend_from_slice(final_head);
    let (r, _, _) = probe_both(&answer, &["--max-header-bytes", "100"]);
    assert_eq!(r["error"]["kind"], "headers_too_large", "{r}");
    let (r, _, _) = probe_both(&answer, &["--max-header-bytes", "200"]);
    assert_eq!(r["ok"], true, "{r}");
}

#[test]
fn default_header_cap_is_64k() {
    let big = Server::start(Behaviour::Oversized(70_000));
    let r = headprobe()
        .args(["--format", "json"])
        .arg(big.target())
        .run()
        .only_json();
    assert_eq!(r["error"]["kind"], "headers_too_large", "{}", r["error"]);

    let fits = Server::start(Behaviour::Oversized(60_000));
    let out = headprobe()
        .args(["--format", "json"])
        .arg(fits.target())
        .run();
    out.expect_code(0);
    let r = out.only_json();
    assert_eq!(r["ok"], true, "{}", r["error"]);
    assert_eq!(r["headers"].as_array().unwrap().len(), 3000);
}

/// RFC 9110 status codes run from 100 to 599: `099` is not 99, and 600 is no status.
#[test]
fn a_status_outside_100_to_599_is_not_http_naming_the_code() {
    for (line, code) in [("HTTP/1.1 099 Low", "099"), ("HTTP/1.0 600 High", "600")] {
        let server = Server::start(Behaviour::Respond(format!("{line}\r\n\r\n").into_bytes()));
        let r = failing(&[&server.target()], "not_http");
        assert_eq!(
            message(&r),
            format!(
                "{} answered with status {code}, which is no HTTP status (RFC 9110: 100 to \
                 599); it sent \"{line}\"",
                server.target()
            )
        );
        assert_eq!(r["status"], serde_json::Value::Null, "{r}");
        assert_eq!(r["banner"], line, "{r}");
    }
}
