//! Messages are sentences for a person: peer bytes in the output's `\xNN` escaping,
//! whole sentences, and the option that actually fired.

use futures_rustls::rustls;

use crate::util::peer::*;
use crate::util::pki::*;
use crate::util::*;

#[test]
fn a_non_http_reply_is_quoted_in_output_escaping() {
    let server = Server::start(Behaviour::Banner(
        b"\x16\x03\x01\x00\xff\xfeSSH\tx\r\n".to_vec(),
    ));
    let r = failing(&[&server.target()], "not_http");
    let m = message(&r);
    assert_eq!(
        m,
        format!(
            "{} did not answer with an HTTP status line; it sent \"\\x16\\x03\\x01\\x00\\xff\\xfeSSH\\x09x\"",
            server.target()
        ),
        "{r}"
    );
    assert!(!m.contains("\\u{"), "Rust escapes in {m}");
}

#[test]
fn a_reset_message_is_a_whole_sentence() {
    let server = Server::start(Behaviour::Reset);
    let r = failing(&[&server.target()], "reset");
    let m = message(&r);
    assert!(
        m.starts_with(&format!("connection reset by {} while ", server.target()))
            && m.ends_with(" it"),
        "{m}"
    );
}

#[test]
fn a_connect_cut_short_by_timeout_names_timeout() {
    let hole = blackhole_listener();
    let r = failing(&["-t", "500ms", &hole.target()], "connect_timeout");
    assert_eq!(
        message(&r),
        format!(
            "no connection to {} within 500ms (--timeout)",
            hole.target()
        )
    );
    let r = failing(
        &["--connect-timeout", "300ms", &hole.target()],
        "connect_timeout",
    );
    assert_eq!(
        message(&r),
        format!(
            "no connection to {} within 300ms (--connect-timeout)",
            hole.target()
        )
    );
}

#[test]
fn a_stalled_tls_handshake_names_the_limit_that_fired() {
    let server = Server::start(Behaviour::Banner(Vec::new()));
    let url = format!("https://{}/", server.target());
    let r = failing(&["-t", "400ms", &url], "timeout");
    assert_eq!(
        message(&r),
        "TLS handshake not finished within 400ms (--timeout)",
        "{r}"
    );
}

/// Rust's debug notation in a message: `DnsName("x")`, `Some(..)`, `{ field: .. }`,
/// `[..]` lists of quoted strings.
fn debug_notation(m: &str) -> Option<&'static str> {
    let b = m.as_bytes();
    for (i, _) in m.match_indices('(') {
        // `Word(` straight after a capitalised identifier: an enum variant or a struct.
        let ident = m[..i]
            .rsplit(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .next()
            .unwrap_or("");
        if ident.len() > 1 && ident.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Some("a Name( variant");
        }
    }
    if m.contains("{ ") || m.contains(" }") {
        return Some("a { .. } struct");
    }
    if m.contains("[\"") || b.windows(2).any(|w| w == b"\\\"") {
        return Some("a quoted list or escaped quote");
    }
    None
}

/// Every error path that builds a message, walked once: none shows debug notation.
#[test]
fn no_message_shows_debug_notation() {
    assert_eq!(
        debug_notation("it names DnsName(\"good.test\")"),
        Some("a Name( variant")
    );
    assert_eq!(debug_notation("got Some(3)"), Some("a Name( variant"));
    assert_eq!(debug_notation("Error { kind: X }"), Some("a { .. } struct"));
    assert_eq!(
        debug_notation("connection refused by 127.0.0.1:1 (tried 2 addresses)"),
        None
    );

    let pki = pki();
    let ca = pki.ca_file.to_string_lossy().into_owned();
    let servers = [
        Behaviour::Respond(b"SSH-2.0-OpenSSH\r\n".to_vec()),
        Behaviour::Reset,
        Behaviour::CloseImmediately,
        Behaviour::HalfThenClose(b"HTTP/1.1 200 OK\r\nServer: x\r\n".to_vec()),
        Behaviour::Oversized(70_000),
        Behaviour::Respond(response("HTTP/1.1 404 Not Found", &["Content-Length: 0"])),
        Behaviour::Silent,
    ]
    .map(Server::start);
    // Each fails by itself but the 404, which fails only what is expected of it.
    let mut cases: Vec<Vec<String>> = servers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 5)
        .map(|(_, s)| vec![s.target()])
        .collect();
    let refused = refused_addr().to_string();
    let hole = blackhole_listener();
    cases.extend([
        vec![refused.clone()],
        vec!["--connect-timeout".into(), "300ms".into(), hole.target()],
        vec!["bad token".into()],
        vec!["ftp://x.test/".into()],
        vec!["--expect-status".into(), "200".into(), servers[5].target()],
        vec![
            "--expect-header".into(),
            "Server: ^nginx".into(),
            servers[5].target(),
        ],
        // No DNS server listens there: the lookup fails at once.
        vec!["--resolver".into(), refused.clone(), "name.test".into()],
        vec![
            "--proxy".into(),
            format!("http://{refused}"),
            "x.test".into(),
        ],
        vec![
            "--proxy".into(),
            format!("socks5://{}", servers[0].target()),
            "x.test".into(),
        ],
        vec![
            "--proxy-check".into(),
            "http://x.test/".into(),
            servers[0].target(),
        ],
        vec![format!("https://{}/", servers[0].target())],
    ]);
    let mut peers = Vec::new();
    for (leaf, name) in [
        (&pki.expired, "probe.test"),
        (&pki.good, "other.test"),
        (&pki.wrong_name, "probe.test"),
        (&pki.self_signed, "probe.test"),
    ] {
        let peer = tls_peer_for(leaf);
        let mut args = vec!["--cacert".to_string(), ca.clone()];
        args.extend(peer.resolve(name));
        args.push(peer.https_url(name));
        cases.push(args);
        peers.push(peer);
    }
    // Each case on its own thread: several wait out a short timeout.
    let runs: Vec<_> = cases
        .iter()
        .map(|args| {
            let mut args = args.clone();
            args.splice(0..0, ["-t".to_string(), "1s".to_string()]);
            std::thread::spawn(move || (json_run(&args).1, args))
        })
        .collect();
    for run in runs {
        let (r, args) = run.join().unwrap();
        let m = message(&r);
        assert!(!m.is_empty(), "no message for {args:?}: {r}");
        if let Some(what) = debug_notation(&m) {
            panic!("{what} in the message for {args:?}: {m}");
        }
    }
}

fn tls_peer_for(leaf: &Leaf) -> Peer {
    Peer::start(tls_handler(
        server_config(leaf, rustls::ALL_VERSIONS),
        ok_response(),
    ))
}
