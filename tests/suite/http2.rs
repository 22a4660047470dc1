//! HTTP/2 (issue 23): `--http2` over TLS with ALPN, `--http2-prior-knowledge` in clear
//! text, `tls.alpn` in every TLS record, the head as curl prints it, and every way a
//! server can fail the one stream, against the in-process peer of `util::h2` (which
//! builds its frames independently of headprobe's encoder).
//!
//! The real peers (nginx with its HTTP/2 module, nghttpd) and the comparison with
//! `curl --http2` are in `http2_peers.rs`. Names go through `--resolve`, never DNS.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::util::h2::*;
use crate::util::pki::cacert;
use crate::util::proxy::{HttpProxy, ScriptedProxy, Socks5};
use crate::util::{
    failing, headprobe, json_run, message, ms, ok_response, Behaviour, Outcome, Server,
};

/// The fields of a record's `headers` as (name, value) pairs.
fn pairs(r: &Value) -> Vec<(String, String)> {
    r["headers"]
        .as_array()
        .unwrap_or_else(|| panic!("no headers: {r}"))
        .iter()
        .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
        .collect()
}

/// `--http2 --cacert CA --format json` against `https://probe.test:PORT{path}`.
fn h2_json(peer: &H2Peer, path: &str, extra: &[&str]) -> (Outcome, Value) {
    let mut args: Vec<String> = vec!["--http2".into(), "--cacert".into(), cacert()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(peer.named(path));
    json_run(&args)
}

/// A peer speaking h2 (ALPN h2, http/1.1) that answers `bytes` after its hello.
fn answering(bytes: Vec<u8>) -> H2Peer {
    H2Peer::tls(&["h2", "http/1.1"], writes([hello(), bytes].concat()))
}

/// The failure of `--http2` against a peer that writes `bytes` after the request.
#[track_caller]
fn h2_failure(bytes: Vec<u8>, extra: &[&str], kind: &str) -> (Value, H2Seen) {
    let peer = H2Peer::tls(&["h2"], writes(bytes));
    let (out, r) = h2_json(&peer, "/", extra);
    out.expect_code(1);
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"]["kind"], kind, "{r}");
    assert_eq!(r["tls"]["alpn"], "h2", "{r}");
    (r, peer.seen())
}

// ---------------------------------------------------------------------------------------
// A head over h2
// ---------------------------------------------------------------------------------------

#[test]
fn an_h2_head_is_recorded_as_received() {
    let peer = answering(head(
        "200",
        &[
            ("server", "h2-peer"),
            ("x-a", "1"),
            ("set-cookie", "a=1"),
            ("x-a", "2"),
            ("set-cookie", "b=2"),
        ],
    ));
    let (out, r) = h2_json(&peer, "/", &[]);
    out.expect_code(0);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200);
    assert_eq!(r["version"], "HTTP/2");
    assert_eq!(r["reason"], Value::Null);
    assert_eq!(r["tls"]["alpn"], "h2");
    // In order, with repeats where they came: no grouping by name.
    assert_eq!(
        r["headers"],
        json!([
            ["server", "h2-peer"],
            ["x-a", "1"],
            ["set-cookie", "a=1"],
            ["x-a", "2"],
            ["set-cookie", "b=2"]
        ])
    );
    assert!(ms(&r["timing_ms"]["first_byte"]) <= ms(&r["timing_ms"]["headers"]));

    let seen = peer.seen();
    assert_eq!(seen.offered, ["h2", "http/1.1"]);
    assert_eq!(seen.chosen.as_deref(), Some("h2"));
    let names: Vec<&str> = seen
        .request
        .fields
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(names[..4], [":method", ":scheme", ":authority", ":path"]);
    assert_eq!(seen.request.get(":method"), Some("GET"));
    assert_eq!(seen.request.get(":scheme"), Some("https"));
    let authority = format!("probe.test:{}", peer.peer.port());
    assert_eq!(seen.request.get(":authority"), Some(authority.as_str()));
    assert_eq!(seen.request.get(":path"), Some("/"));
    for banned in ["host", "connection"] {
        assert!(seen.request.get(banned).is_none(), "{banned} sent over h2");
    }
    // Server push off; the client's SETTINGS answered; GOAWAY once the head was read;
    // no error on the peer's side.
    assert!(seen.settings.contains(&(0x2, 0)), "{:?}", seen.settings);
    assert!(
        seen.sent(SETTINGS, ACK),
        "no SETTINGS ACK: {:?}",
        seen.after
    );
    assert!(seen.sent(GOAWAY, 0), "no GOAWAY: {:?}", seen.after);
    assert_eq!(seen.error, None);
}

#[test]
fn text_prints_the_head_as_curl_does_with_alpn_on_the_tls_line() {
    let peer = answering(head("404", &[("server", "h2-peer"), ("x-b", "b")]));
    let mut args = vec!["--http2".to_string(), "--cacert".into(), cacert()];
    args.extend(peer.named("/missing"));
    let out = headprobe().args(&args).run();
    out.expect_code(0);
    let t = format!("https://probe.test:{}/missing", peer.peer.port());
    let lines = out.lines();
    assert!(
        lines[0].starts_with(&format!("{t} tls > TLSv1.3 ")),
        "{lines:?}"
    );
    assert!(lines[0].ends_with(" ALPN h2"), "{lines:?}");
    assert_eq!(
        lines[1..],
        [
            format!("{t} header > HTTP/2 404"),
            format!("{t} header > server: h2-peer"),
            format!("{t} header > x-b: b"),
        ]
    );

    let status = headprobe().args(["--format", "status"]).args(&args).run();
    assert_eq!(status.status_rows()[0][1], "404", "{}", status.out());
}

#[test]
fn a_block_split_over_continuation_frames_is_one_head() {
    let all = block(&[(":status", "200"), ("x-one", "1"), ("x-two", "2")]);
    let (a, b) = all.split_at(5);
    let (b, c) = b.split_at(6);
    let bytes = [
        frame(HEADERS, END_STREAM, 1, a),
        frame(CONTINUATION, 0, 1, b),
        frame(CONTINUATION, END_HEADERS, 1, c),
    ]
    .concat();
    let (out, r) = h2_json(&answering(bytes), "/", &[]);
    out.expect_code(0);
    assert_eq!(r["headers"], json!([["x-one", "1"], ["x-two", "2"]]), "{r}");
}

#[test]
fn interim_heads_then_the_final_one() {
    let bytes = [
        headers(
            1,
            false,
            &[(":status", "103"), ("link", "</a.css>; rel=preload")],
        ),
        headers(1, false, &[(":status", "200"), ("server", "h2-peer")]),
        frame(DATA, END_STREAM, 1, b"body"),
    ]
    .concat();
    let peer = answering(bytes);
    let (out, r) = h2_json(&peer, "/", &[]);
    out.expect_code(0);
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(
        r["interim"],
        json!([{"status": 103, "reason": null, "headers": [["link", "</a.css>; rel=preload"]]}])
    );
    assert_eq!(r["headers"], json!([["server", "h2-peer"]]));
}

#[test]
fn frames_the_client_must_answer_are_answered_before_the_head() {
    // PING and SETTINGS before the head: the peer waits for their ACKs, so the probe
    // only succeeds if it answers them.
    let script: Script = Arc::new(|_| {
        vec![
            Play::Write(settings()),
            Play::Write(frame(PING, 0, 0, b"pingpong")),
            Play::Await(PING, ACK),
            Play::Write(frame(WINDOW_UPDATE, 0, 0, &1000u32.to_be_bytes())),
            Play::Write(frame(0xfa, 0, 0, b"an unknown frame type is ignored")),
            Play::Write(settings_ack()),
            Play::Write(head("204", &[("server", "h2-peer")])),
        ]
    });
    let peer = H2Peer::tls(&["h2"], script);
    let (out, r) = h2_json(&peer, "/", &[]);
    out.expect_code(0);
    assert_eq!(r["status"], 204, "{r}");
    let seen = peer.seen();
    let ping = seen
        .after
        .iter()
        .find(|f| f.kind == PING)
        .expect("PING ACK");
    assert_eq!(ping.payload, b"pingpong");
    assert!(seen.sent(SETTINGS, ACK));
}

#[test]
fn the_body_is_never_read_and_the_connection_ends_with_goaway() {
    // A large DATA frame after the head is not waited for: the record is complete at
    // END_HEADERS.
    let bytes = [
        headers(1, false, &[(":status", "200"), ("content-length", "16000")]),
        frame(DATA, 0, 1, &[b'x'; 16_000]),
    ]
    .concat();
    let peer = answering(bytes);
    let (out, r) = h2_json(&peer, "/", &[]);
    out.expect_code(0);
    assert_eq!(r["ok"], true, "{r}");
    let seen = peer.seen();
    let goaway = seen
        .after
        .iter()
        .find(|f| f.kind == GOAWAY)
        .expect("GOAWAY");
    assert_eq!(goaway.payload[4..8], [0, 0, 0, 0], "NO_ERROR");
}

// ---------------------------------------------------------------------------------------
// ALPN
// ---------------------------------------------------------------------------------------

#[test]
fn tls_alpn_is_h2_http11_or_null() {
    // Without --http2 the client offers only http/1.1, and an h2 server answers in it.
    let both = H2Peer::tls(&["h2", "http/1.1"], writes(head("200", &[])));
    let mut args = vec!["--cacert".to_string(), cacert()];
    args.extend(both.named("/"));
    let (_, r) = json_run(&args);
    assert_eq!(r["tls"]["alpn"], "http/1.1", "{r}");
    assert_eq!(r["version"], "HTTP/1.1");
    assert_eq!(both.seen().offered, ["http/1.1"]);

    // --http2 against a server of HTTP/1.1 only: it stays HTTP/1.1.
    let h1 = H2Peer::tls(&["http/1.1"], writes(Vec::new()));
    let (out, r) = h2_json(&h1, "/", &[]);
    out.expect_code(0);
    assert_eq!(r["tls"]["alpn"], "http/1.1", "{r}");
    assert_eq!(r["version"], "HTTP/1.1");
    assert_eq!(
        r["headers"],
        json!([["Server", "h1-peer"], ["Content-Length", "0"]])
    );
    let seen = h1.seen();
    assert_eq!(seen.offered, ["h2", "http/1.1"]);
    assert!(String::from_utf8_lossy(&seen.http1).starts_with("GET / HTTP/1.0\r\n"));

    // A server without ALPN: null, and HTTP/1.
    let none = H2Peer::tls(&[], writes(Vec::new()));
    let (out, r) = h2_json(&none, "/", &[]);
    out.expect_code(0);
    assert_eq!(r["tls"]["alpn"], Value::Null, "{r}");
    assert_eq!(r["version"], "HTTP/1.1");
    let text = headprobe()
        .args(["--http2", "--cacert", &cacert()])
        .args(none.named("/"))
        .run();
    let tls_line = &text.lines()[0];
    assert!(
        tls_line.contains(" tls > ") && !tls_line.contains("ALPN"),
        "{tls_line}"
    );
}

#[test]
fn plain_http_targets_stay_http1_with_http2() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let (out, r) = json_run(&["--http2".to_string(), server.target()]);
    out.expect_code(0);
    assert_eq!(r["ok"], true, "{r}");
    assert!(server.request_text().starts_with("GET / HTTP/1.0\r\n"));
}

// ---------------------------------------------------------------------------------------
// Prior knowledge
// ---------------------------------------------------------------------------------------

#[test]
fn prior_knowledge_speaks_h2_in_clear_text() {
    let peer = H2Peer::clear(writes(
        [hello(), head("200", &[("server", "h2c-peer")])].concat(),
    ));
    let target = format!("http://{}/x", peer.peer.hostport());
    let (out, r) = json_run(&["--http2-prior-knowledge", &target]);
    out.expect_code(0);
    assert_eq!(r["version"], "HTTP/2", "{r}");
    assert_eq!(r["headers"], json!([["server", "h2c-peer"]]));
    assert_eq!(r["tls"], Value::Null);
    let seen = peer.seen();
    assert_eq!(seen.request.get(":scheme"), Some("http"));
    assert_eq!(seen.request.get(":path"), Some("/x"));
}

#[test]
fn prior_knowledge_against_an_http1_server_says_so() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let r = failing(
        &["--http2-prior-knowledge".to_string(), server.target()],
        "protocol",
    );
    let m = message(&r);
    assert!(m.contains("answered the HTTP/2 preface in HTTP/1"), "{m}");
    assert!(m.contains("--http2-prior-knowledge"), "{m}");
    assert!(m.contains("HTTP/1.0 200 OK"), "{m}");
}

// ---------------------------------------------------------------------------------------
// Failures, in words
// ---------------------------------------------------------------------------------------

#[test]
fn goaway_names_its_code_and_quotes_its_debug_data() {
    let (r, _) = h2_failure(
        [settings(), goaway(0, PROTOCOL_ERROR, b"bad\x1b[31m")].concat(),
        &[],
        "protocol",
    );
    let m = message(&r);
    assert!(
        m.contains("closed the connection (GOAWAY) before processing the request"),
        "{m}"
    );
    assert!(
        m.contains("reported a protocol error (PROTOCOL_ERROR)"),
        "{m}"
    );
    assert!(m.contains("bad\\x1b[31m"), "{m}");
    assert!(!m.contains('\x1b'), "{m}");

    let (r, _) = h2_failure(
        [settings(), goaway(1, ENHANCE_YOUR_CALM, b"")].concat(),
        &[],
        "protocol",
    );
    assert!(message(&r).contains("asked the client to slow down (ENHANCE_YOUR_CALM)"));
}

#[test]
fn a_graceful_goaway_still_lets_the_stream_finish() {
    let peer = answering([goaway(1, 0, b""), head("200", &[])].concat());
    let (out, r) = h2_json(&peer, "/", &[]);
    out.expect_code(0);
    assert_eq!(r["status"], 200, "{r}");
}

#[test]
fn rst_stream_is_named_in_words() {
    let (r, _) = h2_failure(
        [hello(), rst_stream(1, REFUSED_STREAM)].concat(),
        &[],
        "protocol",
    );
    let m = message(&r);
    assert!(
        m.contains("reset the stream (RST_STREAM): the server refused the stream (REFUSED_STREAM)"),
        "{m}"
    );
    let (r, _) = h2_failure([hello(), rst_stream(1, 0x77)].concat(), &[], "protocol");
    assert!(message(&r).contains("(0x77)"), "{}", message(&r));
}

#[test]
fn a_malformed_hpack_block_is_a_protocol_error() {
    // 0xff 0x7f: an indexed field far past the static table and an empty dynamic one.
    let (r, _) = h2_failure(
        [
            hello(),
            frame(HEADERS, END_HEADERS | END_STREAM, 1, &[0xff, 0x7f]),
        ]
        .concat(),
        &[],
        "protocol",
    );
    let m = message(&r);
    assert!(m.contains("HPACK cannot decode"), "{m}");
    assert!(m.contains("COMPRESSION_ERROR"), "{m}");
}

#[test]
fn malformed_heads_say_what_is_wrong() {
    let long = format!("{}X{}", "x".repeat(39), "Y".repeat(100));
    for (fields, words) in [
        (vec![("server", "x")], "status"),
        (vec![(":status", "2000")], "2000"),
        (vec![(":status", "200"), ("Upper", "x")], "Upper"),
        (vec![(":status", "200"), (":path", "/")], ":path"),
        (
            vec![(":status", "200"), ("x\u{1b}a", "v")],
            "name \"x\\x1ba\"",
        ),
        (
            vec![(":status", "200"), (&long, "v")],
            "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxX\"...",
        ),
        (
            vec![("x-a", "1"), (":status", "200")],
            ":status after a regular field",
        ),
    ] {
        let (r, _) = h2_failure(
            [hello(), headers(1, true, &fields)].concat(),
            &[],
            "protocol",
        );
        let m = message(&r);
        assert!(m.contains("malformed HTTP/2 response head"), "{m}");
        assert!(m.contains(words), "{fields:?}: {m}");
    }
}

#[test]
fn a_broken_frame_is_a_protocol_error() {
    for (bytes, words) in [
        (frame(HEADERS, 0, 1, b""), "first frame is HEADERS"),
        (
            [hello(), frame(PING, 0, 0, b"short")].concat(),
            "PING frame of 5 bytes",
        ),
        (
            [hello(), frame(DATA, 0, 1, b"body")].concat(),
            "body data before the response head",
        ),
        (
            [hello(), frame(0x5, END_HEADERS, 1, &[0, 0, 0, 2])].concat(),
            "PUSH_PROMISE",
        ),
        (
            [
                hello(),
                frame(HEADERS, END_STREAM, 1, &block(&[(":status", "200")])),
                frame(PING, 0, 0, &[0; 8]),
            ]
            .concat(),
            "CONTINUATION",
        ),
    ] {
        let (r, _) = h2_failure(bytes, &[], "protocol");
        let m = message(&r);
        assert!(
            m.contains("broke HTTP/2's framing rules") || m.contains("malformed"),
            "{m}"
        );
        assert!(m.contains(words), "{words}: {m}");
    }
}

#[test]
fn a_header_list_over_the_cap_is_headers_too_large() {
    let big = "v".repeat(900);
    let fields: Vec<(&str, &str)> = (0..4).map(|_| ("x-big", big.as_str())).collect();
    let mut all = vec![(":status", "200")];
    all.extend(fields);
    let (r, seen) = h2_failure(
        [hello(), headers(1, true, &all)].concat(),
        &["--max-header-bytes", "2048"],
        "headers_too_large",
    );
    let m = message(&r);
    assert!(
        m.contains("larger than 2048 bytes (--max-header-bytes"),
        "{m}"
    );
    // The cap was announced in SETTINGS_MAX_HEADER_LIST_SIZE.
    assert!(seen.settings.contains(&(0x6, 2048)), "{:?}", seen.settings);

    // A CONTINUATION flood ends at the cap too, long before the peer stops.
    let mut flood = [
        hello(),
        frame(HEADERS, END_STREAM, 1, &block(&[(":status", "200")])),
    ]
    .concat();
    for _ in 0..200 {
        flood.extend(frame(CONTINUATION, 0, 1, &[0u8; 1000]));
    }
    h2_failure(flood, &["--max-header-bytes", "4096"], "headers_too_large");
}

#[test]
fn h2_then_http1_is_a_protocol_error_that_says_so() {
    let (r, _) = h2_failure(
        b"HTTP/1.1 400 Bad Request\r\nServer: confused\r\n\r\n".to_vec(),
        &[],
        "protocol",
    );
    let m = message(&r);
    assert!(
        m.contains("chose h2 in ALPN, then answered in HTTP/1"),
        "{m}"
    );
    assert!(m.contains("HTTP/1.1 400 Bad Request"), "{m}");
}

#[test]
fn silence_is_a_timeout_that_says_what_was_missing() {
    // Nothing at all: no SETTINGS.
    let (r, _) = h2_failure(Vec::new(), &["--timeout", "1s"], "timeout");
    let m = message(&r);
    assert!(m.contains("no HTTP/2 SETTINGS from 127.0.0.1:"), "{m}");
    assert!(m.contains("within 1s (--timeout)"), "{m}");

    // SETTINGS, then neither an acknowledgement nor an answer.
    let (r, _) = h2_failure(settings(), &["--timeout", "1s"], "timeout");
    let m = message(&r);
    assert!(
        m.contains("sent its SETTINGS but neither acknowledged"),
        "{m}"
    );
}

#[test]
fn closing_early_is_empty_or_incomplete() {
    let close = |steps: Vec<Play>| -> Script { Arc::new(move |_| steps.clone()) };
    let peer = H2Peer::tls(&["h2"], close(vec![Play::Close]));
    let (out, r) = h2_json(&peer, "/", &[]);
    out.expect_code(1);
    assert_eq!(r["error"]["kind"], "empty", "{r}");
    assert!(message(&r).contains("closed the connection without sending HTTP/2 SETTINGS"));

    let peer = H2Peer::tls(&["h2"], close(vec![Play::Write(hello()), Play::Close]));
    let (out, r) = h2_json(&peer, "/", &[]);
    out.expect_code(1);
    assert_eq!(r["error"]["kind"], "incomplete", "{r}");
    let m = message(&r);
    assert!(
        m.contains("closed the HTTP/2 connection before answering the request"),
        "{m}"
    );

    let after_goaway = vec![
        Play::Write([hello(), goaway(1, 0, b"")].concat()),
        Play::Close,
    ];
    let peer = H2Peer::tls(&["h2"], close(after_goaway));
    let (_, r) = h2_json(&peer, "/", &[]);
    assert_eq!(r["error"]["kind"], "incomplete", "{r}");
    assert!(message(&r).contains("after GOAWAY (NO_ERROR)"), "{r}");
}

// ---------------------------------------------------------------------------------------
// With the rest of the tool: -L, --retry, --expect-*, proxies
// ---------------------------------------------------------------------------------------

/// Answers 301 to `/old` (to `/new`), 200 elsewhere.
fn redirecting() -> H2Peer {
    H2Peer::tls(
        &["h2", "http/1.1"],
        Arc::new(|req: &H2Request| {
            let answer = if req.get(":path") == Some("/old") {
                head("301", &[("location", "/new")])
            } else {
                head("200", &[("server", "h2-peer")])
            };
            vec![Play::Write([hello(), answer].concat())]
        }),
    )
}

#[test]
fn redirects_are_followed_over_h2_each_hop_negotiating_anew() {
    let peer = redirecting();
    let (out, r) = h2_json(&peer, "/old", &["-L"]);
    out.expect_code(0);
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["version"], "HTTP/2");
    assert_eq!(r["redirects"][0]["status"], 301);
    assert_eq!(r["redirects"][0]["location"], "/new");
    let port = peer.peer.port();
    assert_eq!(r["final_url"], format!("https://probe.test:{port}/new"));
    // Two connections, each with its own ALPN.
    for path in ["/old", "/new"] {
        let seen = peer.seen();
        assert_eq!(seen.chosen.as_deref(), Some("h2"));
        assert_eq!(seen.request.get(":path"), Some(path));
    }
}

#[test]
fn retry_over_h2() {
    let count = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&count);
    let peer = H2Peer::tls(
        &["h2"],
        Arc::new(move |_| {
            let status = if c.fetch_add(1, Ordering::SeqCst) == 0 {
                "503"
            } else {
                "200"
            };
            vec![Play::Write([hello(), head(status, &[])].concat())]
        }),
    );
    let (out, r) = h2_json(&peer, "/", &["--retry", "1", "--retry-delay", "10ms"]);
    out.expect_code(0);
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["attempts"], 2);
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[test]
fn expectations_read_h2_heads() {
    let peer = answering(head("200", &[("server", "nginx/1.22.1")]));
    let (out, r) = h2_json(
        &peer,
        "/",
        &[
            "--expect-status",
            "200",
            "--expect-header",
            "Server: ^nginx",
        ],
    );
    out.expect_code(0);
    assert_eq!(r["ok"], true, "{r}");

    let peer = answering(head("200", &[("server", "h2-peer")]));
    let (out, r) = h2_json(&peer, "/", &["--expect-header", "server: ^nginx"]);
    out.expect_code(1);
    assert_eq!(r["error"]["kind"], "header_mismatch", "{r}");
    assert!(message(&r).contains("\"h2-peer\""), "{r}");
}

#[test]
fn h2_inside_connect_and_socks_tunnels() {
    let peer = answering(head("200", &[("server", "tunnelled")]));
    let http = HttpProxy {
        route: Some(peer.peer.addr()),
        ..HttpProxy::default()
    }
    .start();
    let socks = Socks5::default().start();
    for proxy in [http.url("http"), socks.url("socks5h")] {
        let (out, r) = h2_json(&peer, "/", &["--proxy", &proxy]);
        out.expect_code(0);
        assert_eq!(r["version"], "HTTP/2", "{proxy}: {r}");
        assert_eq!(pairs(&r), [("server".to_string(), "tunnelled".to_string())]);
        assert_eq!(peer.seen().chosen.as_deref(), Some("h2"));
    }
}
