//! The exact shape of the three output formats, and terminal-safe escaping.

use serde_json::{json, Value};

use crate::util::*;

const JSON_KEYS: [&str; 16] = [
    "target",
    "index",
    "scheme",
    "host",
    "port",
    "path",
    "addr",
    "ok",
    "status",
    "version",
    "reason",
    "headers",
    "interim",
    "banner",
    "error",
    "timing_ms",
];
const TIMING_KEYS: [&str; 5] = ["dns", "connect", "first_byte", "headers", "total"];
/// Fields that later sections of the contract (HTTPS, proxies, names, redirects and
/// retries) add, at unspecified places.
const EXTENSION_KEYS: [&str; 9] = [
    "tls",
    "proxy",
    "detected",
    "tunnel",
    "url",
    "resolved",
    "redirects",
    "final_url",
    "attempts",
];
const TIMING_EXTENSION_KEYS: [&str; 2] = ["tls", "proxy"];

/// `keys` are `expected` in that order, apart from documented extension fields.
#[track_caller]
fn assert_keys(keys: &[String], expected: &[&str], extensions: &[&str], line: &str) {
    let core: Vec<&str> = keys
        .iter()
        .map(String::as_str)
        .filter(|k| !extensions.contains(k))
        .collect();
    assert_eq!(core, expected, "{line}");
    let mut seen = std::collections::HashSet::new();
    assert!(keys.iter().all(|k| seen.insert(k)), "duplicate key: {line}");
}

/// Asserts the record's keys, and those of `timing_ms` (and `error` when set), are the
/// contract's, in the contract's order.
#[track_caller]
fn assert_json_layout(line: &str) {
    let keys = key_order(line);
    let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
    assert_keys(&names, &JSON_KEYS, &EXTENSION_KEYS, line);
    let timing = &keys.iter().find(|(k, _)| k == "timing_ms").unwrap().1;
    assert_keys(timing, &TIMING_KEYS, &TIMING_EXTENSION_KEYS, line);
    let error = &keys.iter().find(|(k, _)| k == "error").unwrap().1;
    assert!(
        error.is_empty() || error == &["kind", "message"],
        "error keys {error:?}: {line}"
    );
}

#[test]
fn text_shape_of_a_good_probe() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    let out = headprobe().arg(&t).run();
    out.expect_code(0);
    assert_eq!(
        out.out(),
        format!(
            "{t} header > HTTP/1.0 200 OK\n{t} header > Server: loopback\n\
             {t} header > Content-Length: 0\n"
        )
    );
}

#[test]
fn text_shape_of_an_error() {
    let t = refused_addr().to_string();
    let out = headprobe().arg(&t).run();
    out.expect_code(1);
    let lines = out.lines();
    assert_eq!(lines.len(), 1, "{out:?}");
    let prefix = format!("{t} error > refused: ");
    assert!(lines[0].starts_with(&prefix), "{out:?}");
    assert!(lines[0].len() > prefix.len(), "empty message: {out:?}");
}

#[test]
fn status_shape_of_a_good_probe() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    let out = headprobe().args(["--format", "status", &t]).run();
    out.expect_code(0);
    let rows = out.status_rows();
    assert_eq!(rows.len(), 1, "{out:?}");
    let row = &rows[0];
    assert_eq!(row.len(), 5, "{out:?}");
    assert_eq!(row[0], t);
    assert_eq!(row[1], "200");
    row[2]
        .parse::<u64>()
        .unwrap_or_else(|_| panic!("TOTAL_MS not whole ms: {:?}", row[2]));
    assert_eq!(row[3], t);
    assert_eq!(row[4], "OK");
}

#[test]
fn status_shape_with_empty_reason() {
    let server = Server::start(Behaviour::Respond(b"HTTP/1.1 204\r\n\r\n".to_vec()));
    let t = server.target();
    let out = headprobe().args(["--format", "status", &t]).run();
    out.expect_code(0);
    let row = &out.status_rows()[0];
    assert_eq!(row.len(), 5, "{out:?}");
    assert_eq!(row[1], "204");
    assert_eq!(row[4], "");
}

#[test]
fn status_shape_of_errors() {
    let t = refused_addr().to_string();
    let out = headprobe()
        .args(["--format", "status", "--ordered", &t, "127.0.0.1:0"])
        .run();
    out.expect_code(1);
    let rows = out.status_rows();
    assert_eq!(rows.len(), 2, "{out:?}");
    let (refused, invalid) = (&rows[0], &rows[1]);
    assert_eq!(refused.len(), 5, "{out:?}");
    assert_eq!(refused[0], t);
    assert_eq!(refused[1], "refused");
    refused[2].parse::<u64>().expect("TOTAL_MS");
    assert_eq!(refused[3], t);
    assert!(!refused[4].is_empty(), "no message: {out:?}");
    assert_eq!(invalid.len(), 5, "{out:?}");
    assert_eq!(invalid[0], "127.0.0.1:0");
    assert_eq!(invalid[1], "invalid_target");
    invalid[2].parse::<u64>().expect("TOTAL_MS");
    assert_eq!(invalid[3], "-");
    assert!(!invalid[4].is_empty(), "no message: {out:?}");
}

#[test]
fn json_shape_of_a_good_probe() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    let out = headprobe().args(["--format", "json", &t]).run();
    out.expect_code(0);
    let line = out.lines().pop().unwrap();
    assert_json_layout(&line);
    let r = out.only_json();
    let expected = json!({
        "target": t, "scheme": "http", "host": "127.0.0.1", "port": server.port(),
        "path": "/", "addr": t, "ok": true, "status": 200, "version": "HTTP/1.0",
        "reason": "OK", "headers": [["Server", "loopback"], ["Content-Length", "0"]],
        "interim": [], "banner": null, "error": null,
    });
    for (k, v) in expected.as_object().unwrap() {
        assert_eq!(&r[k], v, "{k}: {r}");
    }
    let timing = &r["timing_ms"];
    assert_eq!(
        timing["dns"],
        Value::Null,
        "no lookup for an IP literal: {r}"
    );
    let steps: Vec<f64> = ["connect", "first_byte", "headers", "total"]
        .iter()
        .map(|k| ms(&timing[k]))
        .collect();
    assert!(steps[0] >= 0.0, "{timing}");
    assert!(
        steps.windows(2).all(|w| w[0] <= w[1]),
        "phases out of order: {timing}"
    );
}

#[test]
fn json_shape_of_errors() {
    let t = refused_addr().to_string();
    let out = headprobe()
        .args(["--format", "json", "--ordered", &t, "127.0.0.1:0"])
        .run();
    out.expect_code(1);
    for line in out.lines() {
        assert_json_layout(&line);
    }
    let records = out.json();
    assert_eq!(records.len(), 2, "{out:?}");

    let r = &records[0];
    assert_eq!(r["ok"], false);
    assert_eq!(r["addr"], t);
    assert_eq!(r["status"], Value::Null);
    assert_eq!(r["headers"], json!([]));
    assert_eq!(r["interim"], json!([]));
    assert_eq!(r["banner"], Value::Null);
    assert_eq!(r["error"]["kind"], "refused");
    assert!(!r["error"]["message"].as_str().unwrap().is_empty(), "{r}");
    let timing = &r["timing_ms"];
    for phase in ["connect", "first_byte", "headers"] {
        assert_eq!(timing[phase], Value::Null, "{phase} not reached: {r}");
    }
    ms(&timing["total"]);

    let r = &records[1];
    assert_eq!(r["target"], "127.0.0.1:0");
    assert_eq!(r["ok"], false);
    assert_eq!(r["addr"], Value::Null);
    assert_eq!(r["error"]["kind"], "invalid_target");
    assert!(r["error"]["message"].is_string(), "{r}");
}

#[test]
fn output_lines_are_whole_under_concurrency() {
    let headers: Vec<String> = (0..30)
        .map(|i| format!("X-Line-{i}: {}", "v".repeat(60)))
        .collect();
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let answer = response("HTTP/1.0 200 OK", &header_refs);
    let servers: Vec<Server> = (0..4)
        .map(|_| Server::start(Behaviour::Respond(answer.clone())))
        .collect();
    let targets: Vec<String> = servers
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.target(), 10))
        .collect();
    let out = headprobe().args(["-c", "40"]).args(&targets).run();
    out.expect_code(0);
    let lines = out.lines();
    assert_eq!(lines.len(), 40 * 31, "{out:?}");
    let known: std::collections::HashSet<String> = servers
        .iter()
        .flat_map(|s| {
            let t = s.target();
            std::iter::once(format!("{t} header > HTTP/1.0 200 OK"))
                .chain(headers.iter().map(move |h| format!("{t} header > {h}")))
        })
        .collect();
    for line in &lines {
        assert!(known.contains(line), "torn or unknown line: {line:?}");
    }
}

/// A hostile server's bytes reach no terminal raw.
const EVIL: &[u8] = b"HTTP/1.0 200 O\x1bK\r\nX-Evil: a\x1b[31mb\x07c\x00d\xffe\tf\x7fg\r\n\r\n";

#[test]
fn text_escapes_control_bytes_and_invalid_utf8() {
    let server = Server::start(Behaviour::Respond(EVIL.to_vec()));
    let t = server.target();
    let out = headprobe().arg(&t).run();
    out.expect_code(0);
    assert_terminal_safe(&out.stdout);
    assert_eq!(
        out.lines(),
        [
            format!("{t} header > HTTP/1.0 200 O\\x1bK"),
            format!("{t} header > X-Evil: a\\x1b[31mb\\x07c\\x00d\\xffe\tf\\x7fg"),
        ]
    );
}

#[test]
fn status_escapes_control_bytes_including_tab() {
    let server = Server::start(Behaviour::Respond(
        b"HTTP/1.0 200 A\tB\x1b\xfe\r\n\r\n".to_vec(),
    ));
    let t = server.target();
    let out = headprobe().args(["--format", "status", &t]).run();
    out.expect_code(0);
    assert_terminal_safe(&out.stdout);
    let rows = out.status_rows();
    assert_eq!(rows[0].len(), 5, "a TAB split a field: {out:?}");
    assert_eq!(rows[0][4], "A\\x09B\\x1b\\xfe");
}

#[test]
fn json_keeps_text_and_replaces_invalid_utf8() {
    let server = Server::start(Behaviour::Respond(EVIL.to_vec()));
    let out = headprobe()
        .args(["--format", "json"])
        .arg(server.target())
        .run();
    out.expect_code(0);
    let r = out.only_json();
    assert_eq!(r["reason"], "O\u{1b}K");
    assert_eq!(
        r["headers"],
        json!([["X-Evil", "a\u{1b}[31mb\u{7}c\u{0}d\u{fffd}e\tf\u{7f}g"]])
    );
}

/// The odd bytes sit in the path of a URL to a refused port, so that a parser lax
/// about them would still only knock on 127.0.0.1.
#[test]
fn echoed_target_tokens_are_escaped() {
    let base = format!("http://{}", refused_addr());
    let mut input = Vec::new();
    for odd in [&b"esc\x1bx"[..], b"bad\xffx", b"tab\tx"] {
        input.extend_from_slice(format!("{base}/").as_bytes());
        input.extend_from_slice(odd);
        input.push(b'\n');
    }
    let echoed = |s: &str| format!("{base}/{s}");

    let out = headprobe().args(["--ordered"]).stdin(input.clone()).run();
    out.expect_code(1);
    assert_terminal_safe(&out.stdout);
    let lines = out.lines();
    assert_eq!(lines.len(), 3, "{out:?}");
    // A control character makes the token invalid; a byte that is not UTF-8 may or may
    // not (the contract does not say), so only its echo is checked.
    for (line, (token, kind)) in lines.iter().zip([
        ("esc\\x1bx", "invalid_target: "),
        ("bad\\xffx", ""),
        ("tab\tx", "invalid_target: "),
    ]) {
        let prefix = format!("{} error > {kind}", echoed(token));
        assert!(
            line.starts_with(&prefix),
            "{line:?} should start with {prefix:?}"
        );
    }

    let out = headprobe()
        .args(["--ordered", "--format", "status"])
        .stdin(input.clone())
        .run();
    out.expect_code(1);
    assert_terminal_safe(&out.stdout);
    let rows = out.status_rows();
    assert!(rows.iter().all(|r| r.len() == 5), "{out:?}");
    let tokens: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        tokens,
        [
            echoed("esc\\x1bx"),
            echoed("bad\\xffx"),
            echoed("tab\\x09x")
        ],
        "{out:?}"
    );

    let out = headprobe()
        .args(["--ordered", "--format", "json"])
        .stdin(input)
        .run();
    let targets: Vec<Value> = out.json().iter().map(|r| r["target"].clone()).collect();
    assert_eq!(
        targets,
        [
            json!(echoed("esc\u{1b}x")),
            json!(echoed("bad\u{fffd}x")),
            json!(echoed("tab\tx"))
        ]
    );
}

#[test]
fn every_format_gives_one_record_per_duplicate() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    let five = vec![t.as_str(); 5];
    let bad = vec!["127.0.0.1:0"; 3];

    let out = headprobe().args(&five).args(&bad).run();
    out.expect_code(1);
    let lines = out.lines();
    let status_lines = format!("{t} header > HTTP/1.0 200 OK");
    assert_eq!(
        lines.iter().filter(|l| **l == status_lines).count(),
        5,
        "{out:?}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("127.0.0.1:0 error > invalid_target: "))
            .count(),
        3,
        "{out:?}"
    );

    let out = headprobe()
        .args(["--format", "status"])
        .args(&five)
        .args(&bad)
        .run();
    let rows = out.status_rows();
    assert_eq!(
        rows.iter().filter(|r| r[0] == t && r[1] == "200").count(),
        5,
        "{out:?}"
    );
    assert_eq!(rows.len(), 8, "{out:?}");

    let out = headprobe()
        .args(["--format", "json"])
        .args(&five)
        .args(&bad)
        .run();
    let records = out.json();
    assert_eq!(records.len(), 8, "{out:?}");
    assert_eq!(records.iter().filter(|r| r["ok"] == true).count(), 5);

    assert_eq!(server.requests(15).len(), 15);
}
