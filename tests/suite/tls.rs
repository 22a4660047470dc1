//! HTTPS (issue: TLS): `https://` targets, `--tls`, `--cacert`, `-k`, the `tls` JSON
//! object, the text `tls >` line, and every handshake failure, against loopback TLS
//! servers (`util::peer`) on rustls with certificates made by rcgen at test time
//! (`util::pki`).
//!
//! Names never reach DNS: they go through `--resolve NAME:PORT:127.0.0.1`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_rustls::rustls;
use futures_rustls::rustls::pki_types::CertificateDer;
use serde_json::Value;

use crate::util::peer::*;
use crate::util::pki::*;
use crate::util::*;

// ---------------------------------------------------------------------------------------
// Loopback peers
// ---------------------------------------------------------------------------------------

/// The answer every TLS peer gives.
fn tls_response() -> Vec<u8> {
    response(
        "HTTP/1.0 200 OK",
        &["Server: tls-loopback", "Content-Length: 0"],
    )
}

/// A TLS peer with this certificate, TLS 1.2 and 1.3, answering `tls_response()`.
fn tls_peer(leaf: &Leaf) -> Peer {
    Peer::start(tls_handler(
        server_config(leaf, rustls::ALL_VERSIONS),
        tls_response(),
    ))
}

/// Reads one TLS record (the ClientHello): the 5-byte header and its payload.
fn read_record(s: &mut TcpStream) -> Vec<u8> {
    let mut header = [0u8; 5];
    if s.read_exact(&mut header).is_err() {
        return Vec::new();
    }
    let len = u16::from_be_bytes([header[3], header[4]]) as usize;
    let mut body = vec![0u8; len];
    let _ = s.read_exact(&mut body);
    let mut all = header.to_vec();
    all.extend_from_slice(&body);
    all
}

/// Reads the ClientHello, writes `bytes`, closes; reports the ClientHello when the
/// connection ends.
fn raw_answer(bytes: Vec<u8>) -> Handler {
    Arc::new(move |mut tcp: TcpStream, tx: &Sender<Seen>| {
        let hello = read_record(&mut tcp);
        let _ = tcp.write_all(&bytes);
        close_and_drain(&mut tcp);
        let _ = tx.send(Seen {
            bytes: hello,
            ..Seen::default()
        });
    })
}

/// A plaintext TLS alert record (level fatal).
fn alert(description: u8) -> Vec<u8> {
    vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description]
}

// ---------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------

/// `https://probe.test:PORT/` through `--resolve`, with `extra` options.
fn probe_name(peer: &Peer, name: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    args.extend(peer.resolve(name));
    args.push(peer.https_url(name));
    args
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn is_utc_seconds(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// TLS 1.3's suites by their IANA names (rustls spells them `TLS13_...`).
const TLS13_SUITES: [&str; 3] = [
    "TLS_AES_256_GCM_SHA384",
    "TLS_AES_128_GCM_SHA256",
    "TLS_CHACHA20_POLY1305_SHA256",
];

// ---------------------------------------------------------------------------------------
// Success
// ---------------------------------------------------------------------------------------

#[test]
fn verified_with_cacert_records_the_handshake_and_the_certificate() {
    let pki = pki();
    let peer = tls_peer(&pki.good);
    let ca = cacert();
    let (out, r) = json_run(&probe_name(&peer, "probe.test", &["--cacert", &ca]));
    out.expect_code(0);
    let seen = peer.seen();
    assert_eq!(seen.error, None, "server side: {seen:?}");

    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["scheme"], "https", "{r}");
    assert_eq!(r["host"], "probe.test", "{r}");
    assert_eq!(r["port"], peer.port(), "{r}");
    assert_eq!(r["addr"], peer.hostport(), "{r}");
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["reason"], "OK", "{r}");
    assert_eq!(r["error"], Value::Null, "{r}");
    assert_eq!(
        r["headers"],
        serde_json::json!([["Server", "tls-loopback"], ["Content-Length", "0"]]),
        "{r}"
    );

    let tls = &r["tls"];
    assert_eq!(tls["verified"], true, "{r}");
    assert_eq!(tls["version"], "TLSv1.3", "{r}");
    let cipher = tls["cipher"].as_str().unwrap_or_default();
    assert!(TLS13_SUITES.contains(&cipher), "cipher {cipher:?}: {r}");

    let cert = &tls["cert"];
    let subject = cert["subject"].as_str().unwrap_or_default();
    assert!(subject.contains("CN=probe.test"), "subject: {r}");
    let issuer = cert["issuer"].as_str().unwrap_or_default();
    assert!(issuer.contains(&format!("CN={CA_CN}")), "issuer: {r}");
    for field in ["not_before", "not_after"] {
        let t = cert[field].as_str().unwrap_or_default();
        assert!(
            is_utc_seconds(t),
            "{field} {t:?} is not YYYY-MM-DDTHH:MM:SSZ: {r}"
        );
    }
    assert_eq!(cert["not_before"], "2021-03-04T05:06:07Z", "{r}");
    assert_eq!(cert["not_after"], "2090-01-02T03:04:05Z", "{r}");
    let san: Vec<&str> = cert["san"]
        .as_array()
        .unwrap_or_else(|| panic!("san is not an array: {r}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_else(|| panic!("san entry {v}: {r}")))
        .collect();
    for name in NAMES {
        assert!(san.contains(&name), "san lacks {name}: {r}");
    }
    assert_eq!(san.len(), NAMES.len(), "{r}");
    let sha = cert["sha256"].as_str().unwrap_or_default();
    assert_eq!(sha.len(), 64, "{r}");
    assert_eq!(sha, pki.good.sha256(), "sha256 of the leaf DER: {r}");

    let t = &r["timing_ms"];
    let (dns, connect, tls_ms) = (ms(&t["dns"]), ms(&t["connect"]), ms(&t["tls"]));
    let (first, headers, total) = (ms(&t["first_byte"]), ms(&t["headers"]), ms(&t["total"]));
    assert!(dns <= connect, "{t}");
    assert!(connect <= tls_ms, "tls before connect: {t}");
    assert!(tls_ms <= first, "tls after first_byte: {t}");
    assert!(first <= headers && headers <= total, "{t}");
}

#[test]
fn json_tls_object_has_the_contract_keys_in_order() {
    let pki = pki();
    let peer = tls_peer(&pki.good);
    let ca = cacert();
    let (out, _) = json_run(&probe_name(&peer, "probe.test", &["--cacert", &ca]));
    out.expect_code(0);
    let line = out.lines().pop().unwrap_or_default();
    let keys = key_order(&line);
    let tls = keys
        .iter()
        .find(|(k, _)| k == "tls")
        .unwrap_or_else(|| panic!("no tls key: {line}"));
    assert_eq!(
        tls.1,
        ["version", "cipher", "verified", "alpn", "cert", "chain"],
        "{line}"
    );
    let timing = &keys.iter().find(|(k, _)| k == "timing_ms").unwrap().1;
    let at = |k: &str| timing.iter().position(|x| x == k);
    assert!(at("tls").is_some(), "timing_ms has no tls: {line}");
    assert!(
        at("connect") < at("tls") && at("tls") < at("first_byte"),
        "{line}"
    );
    // The cert object's own keys, read off the text from where it starts.
    let from = line.find("\"cert\":").expect("cert key") + "\"cert\":".len();
    let cert_keys: Vec<String> = key_order(&line[from..])
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        cert_keys,
        [
            "subject",
            "issuer",
            "not_before",
            "not_after",
            "san",
            "sha256",
            "days_left"
        ],
        "{line}"
    );
    let _ = peer.seen();
}

#[test]
fn plain_http_records_tls_null() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let (out, r) = json_run(&[server.target()]);
    out.expect_code(0);
    assert_eq!(r.get("tls"), Some(&Value::Null), "{r}");
    assert_eq!(r["timing_ms"].get("tls"), Some(&Value::Null), "{r}");
}

#[test]
fn insecure_accepts_a_self_signed_certificate_and_still_records_it() {
    let pki = pki();
    let peer = tls_peer(&pki.self_signed);
    let (out, r) = json_run(&probe_name(&peer, "probe.test", &["-k"]));
    out.expect_code(0);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["tls"]["verified"], false, "{r}");
    assert_eq!(r["tls"]["version"], "TLSv1.3", "{r}");
    let cert = &r["tls"]["cert"];
    assert!(cert.is_object(), "certificate not recorded: {r}");
    let subject = cert["subject"].as_str().unwrap_or_default();
    assert!(subject.contains("CN=probe.test"), "{r}");
    assert_eq!(cert["issuer"], cert["subject"], "self-signed: {r}");
    assert_eq!(cert["sha256"], pki.self_signed.sha256().as_str(), "{r}");
    let _ = peer.seen();

    // The text line says so.
    let out = headprobe()
        .arg("-k")
        .args(peer.resolve("probe.test"))
        .arg(peer.https_url("probe.test"))
        .run();
    out.expect_code(0);
    let first = out.lines().first().cloned().unwrap_or_default();
    assert!(first.ends_with(" CN=probe.test (unverified)"), "{out:?}");
    let _ = peer.seen();

    // -k skips every check, expiry included.
    let expired = tls_peer(&pki.expired);
    let (out, r) = json_run(&probe_name(&expired, "probe.test", &["-k"]));
    out.expect_code(0);
    assert_eq!(r["tls"]["verified"], false, "{r}");
    assert_eq!(r["tls"]["cert"]["not_after"], "2001-01-01T00:00:00Z", "{r}");
}

// ---------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------

/// A `tls` failure against `leaf` whose message contains `words`.
#[track_caller]
fn cert_failure(leaf: &Leaf, name: &str, extra: &[&str], words: &str) -> Value {
    let peer = tls_peer(leaf);
    let r = failing(&probe_name(&peer, name, extra), "tls");
    let m = message(&r);
    assert!(m.contains(words), "message {m:?} lacks {words:?}: {r}");
    assert_eq!(r["status"], Value::Null, "{r}");
    assert!(r["timing_ms"]["connect"].is_number(), "{r}");
    assert_eq!(r["timing_ms"]["tls"], Value::Null, "{r}");
    let seen = peer.seen();
    assert!(
        seen.error.is_some(),
        "the server finished a handshake: {seen:?}"
    );
    assert!(seen.bytes.is_empty(), "a request was sent: {seen:?}");
    r
}

#[test]
fn unknown_issuer_without_cacert() {
    cert_failure(
        &pki().good,
        "probe.test",
        &[],
        "certificate signed by an unknown issuer",
    );
}

#[test]
fn expired_certificate() {
    let ca = cacert();
    cert_failure(
        &pki().expired,
        "probe.test",
        &["--cacert", &ca],
        "certificate expired",
    );
}

#[test]
fn not_yet_valid_certificate() {
    let ca = cacert();
    cert_failure(
        &pki().not_yet_valid,
        "probe.test",
        &["--cacert", &ca],
        "certificate not yet valid",
    );
}

#[test]
fn name_mismatch() {
    let ca = cacert();
    // A good certificate asked for a name it does not carry: the names it does carry,
    // as written (they read `DnsName("probe.test")` once, Rust's debug notation).
    let r = cert_failure(
        &pki().good,
        "other.test",
        &["--cacert", &ca],
        "certificate name mismatch",
    );
    assert_eq!(
        message(&r),
        "certificate name mismatch: it is not valid for other.test (it names localhost, \
         probe.test, 127.0.0.1)"
    );
    // ...and a certificate for another name.
    cert_failure(
        &pki().wrong_name,
        "probe.test",
        &["--cacert", &ca],
        "certificate name mismatch",
    );
}

#[test]
fn self_signed_certificate() {
    cert_failure(&pki().self_signed, "probe.test", &[], "self-signed");
}

#[test]
fn failure_in_text_and_status_formats() {
    let peer = tls_peer(&pki().expired);
    let ca = cacert();
    let t = peer.https_url("probe.test");
    let out = headprobe()
        .args(["--cacert", &ca])
        .args(peer.resolve("probe.test"))
        .arg(&t)
        .run();
    out.expect_code(1);
    // The rejected certificate is still shown, as unverified, before the error.
    let lines = out.lines();
    assert_eq!(lines.len(), 2, "{out:?}");
    let suite = lines[0]
        .strip_prefix(&format!("{t} tls > TLSv1.3 "))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_default();
    assert!(TLS13_SUITES.contains(&suite), "{out:?}");
    assert!(lines[0].ends_with(" CN=probe.test (unverified)"), "{out:?}");
    assert_eq!(lines[1], format!("{t} error > tls: certificate expired"));
    let _ = peer.seen();

    let out = headprobe()
        .args(["--format", "status", "--cacert", &ca])
        .args(peer.resolve("probe.test"))
        .arg(&t)
        .run();
    out.expect_code(1);
    let rows = out.status_rows();
    assert_eq!(rows.len(), 1, "{out:?}");
    let row = &rows[0];
    assert_eq!(row.len(), 5, "{out:?}");
    assert_eq!(row[0], t);
    assert_eq!(row[1], "tls");
    assert_eq!(row[3], peer.hostport());
    assert_eq!(row[4], "certificate expired");
}

#[test]
fn plain_http_peer_on_a_tls_probe() {
    let peer = Peer::start(raw_answer(response(
        "HTTP/1.0 200 OK",
        &["Server: plain", "Content-Length: 0"],
    )));
    let r = failing(&[format!("https://{}/", peer.hostport())], "tls");
    let m = message(&r);
    // The peer is a plain-HTTP server: the hint must point that way (not "plain HTTP on
    // a TLS port"), name the address and quote what it said.
    assert_eq!(
        m,
        format!(
            "handshake failure: {} answered in plain HTTP, not TLS (\"HTTP/1.0 200 OK\"): is \
             it an http:// port?",
            peer.hostport()
        ),
        "{r}"
    );
    assert_eq!(r["status"], Value::Null, "{r}");
    assert_eq!(r["tls"], Value::Null, "{r}");
    let seen = peer.seen();
    assert_eq!(seen.bytes.first(), Some(&0x16), "no ClientHello: {seen:?}");
}

#[test]
fn protocol_version_alert() {
    // What a server that speaks only older TLS answers to our ClientHello.
    let peer = Peer::start(raw_answer(alert(70)));
    let r = failing(&[format!("https://{}/", peer.hostport())], "tls");
    let m = message(&r);
    assert!(m.starts_with("protocol version"), "message {m:?}: {r}");
    let _ = peer.seen();
}

#[test]
fn handshake_failure_alert() {
    let peer = Peer::start(raw_answer(alert(40)));
    let r = failing(&[format!("https://{}/", peer.hostport())], "tls");
    let m = message(&r);
    assert!(m.starts_with("handshake failure"), "message {m:?}: {r}");
    let _ = peer.seen();
}

#[test]
fn peer_closing_during_the_handshake() {
    let peer = Peer::start(raw_answer(Vec::new()));
    let r = failing(&[format!("https://{}/", peer.hostport())], "tls");
    let m = message(&r);
    assert!(m.starts_with("handshake failure"), "message {m:?}: {r}");
    let _ = peer.seen();
}

#[test]
fn stalled_handshake_is_a_timeout_within_connect_timeout() {
    // Accepts, reads the ClientHello, never answers.
    let server = Server::start(Behaviour::Silent);
    let t = format!("https://{}/", server.target());
    let started = Instant::now();
    let r = failing(&["--connect-timeout", "500ms", &t], "timeout");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(450), "gave up after {took:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}: {r}");
    assert!(r["timing_ms"]["connect"].is_number(), "{r}");
    assert_eq!(r["timing_ms"]["tls"], Value::Null, "{r}");
    assert_eq!(r["tls"], Value::Null, "{r}");
    let total = ms(&r["timing_ms"]["total"]);
    assert!((450.0..3000.0).contains(&total), "total {total}: {r}");
    // The server did get a ClientHello, not an HTTP request.
    let hello = server.next_request();
    assert_eq!(hello.first(), Some(&0x16), "{hello:?}");
    assert!(
        server.next_closed_within(WAIT),
        "headprobe kept the connection"
    );
}

#[test]
fn unreadable_cacert_is_a_usage_error() {
    let peer = tls_peer(&pki().good);
    let missing = temp_file("gone.pem", b"");
    std::fs::remove_file(&missing).unwrap();
    let not_pem = temp_file("not.pem", b"hello\n");
    let empty = temp_file("empty.pem", b"");
    let key_only = temp_file(
        "key.pem",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let truncated_pem = {
        let pem = std::fs::read_to_string(cacert()).unwrap();
        temp_file("cut.pem", &pem.as_bytes()[..pem.len() / 2])
    };
    let not_der = temp_file(
        "garbage.pem",
        b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
    );
    let cases = [
        (&missing, "No such file or directory"),
        (&not_pem, "not a PEM file"),
        (&empty, "the file is empty"),
        (&key_only, "holds no certificate"),
        (&truncated_pem, "no END line"),
        (&not_der, "not a valid X.509 certificate"),
    ];
    for (path, why) in cases {
        for extra in [&[][..], &["-k"]] {
            let out = headprobe()
                .args(extra)
                .arg("--cacert")
                .arg(path)
                .arg(format!("https://{}/", peer.hostport()))
                .run();
            out.expect_code(2);
            assert!(out.stdout.is_empty(), "{out:?}");
            let err = out.err();
            assert!(err.contains("--cacert"), "{out:?}");
            assert!(
                err.contains(path.to_str().unwrap()),
                "names the file: {out:?}"
            );
            assert!(err.contains(why), "{why:?}: {out:?}");
            assert!(!err.contains("panicked"), "{out:?}");
        }
    }
    for path in [&missing, &not_pem] {
        let out = headprobe()
            .arg("--cacert")
            .arg(path)
            .arg(format!("https://{}/", peer.hostport()))
            .run();
        out.expect_code(2);
        assert!(out.stdout.is_empty(), "{out:?}");
        assert!(out.err().contains("--cacert"), "{out:?}");
    }
    assert!(
        peer.seen_within(Duration::from_millis(200)).is_none(),
        "a probe was made"
    );
}

// ---------------------------------------------------------------------------------------
// SNI, versions, --tls, text, request bytes
// ---------------------------------------------------------------------------------------

#[test]
fn sni_carries_the_name_and_is_absent_for_ip_literals() {
    let pki = pki();
    let peer = tls_peer(&pki.good);
    let ca = cacert();

    let (out, _) = json_run(&probe_name(&peer, "probe.test", &["--cacert", &ca]));
    out.expect_code(0);
    assert_eq!(peer.seen().sni.as_deref(), Some("probe.test"));

    // The IP literal verifies against the certificate's IP SAN, and sends no SNI.
    let (out, r) = json_run(&["--cacert", &ca, &format!("https://{}/", peer.hostport())]);
    out.expect_code(0);
    assert_eq!(r["tls"]["verified"], true, "{r}");
    assert_eq!(peer.seen().sni, None);

    // Nor for an IPv6 literal, when this machine has ::1.
    if let Ok(v6) = Peer::start_on(
        "[::1]:0",
        tls_handler(
            server_config(&pki.good, rustls::ALL_VERSIONS),
            tls_response(),
        ),
    ) {
        let (out, r) = json_run(&["-k", &format!("https://{}/", v6.addr())]);
        out.expect_code(0);
        assert_eq!(r["tls"]["version"], "TLSv1.3", "{r}");
        assert_eq!(v6.seen().sni, None);
    }
}

#[test]
fn tls12_and_tls13_peers() {
    let pki = pki();
    let ca = cacert();
    for (version, name, prefix) in [
        (&rustls::version::TLS12, "TLSv1.2", "TLS_ECDHE_"),
        (&rustls::version::TLS13, "TLSv1.3", "TLS_"),
    ] {
        let peer = Peer::start(tls_handler(
            server_config(&pki.good, &[version]),
            tls_response(),
        ));
        let (out, r) = json_run(&probe_name(&peer, "probe.test", &["--cacert", &ca]));
        out.expect_code(0);
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["tls"]["version"], name, "{r}");
        assert_eq!(r["tls"]["verified"], true, "{r}");
        let cipher = r["tls"]["cipher"].as_str().unwrap_or_default();
        assert!(cipher.starts_with(prefix), "{name} cipher {cipher:?}: {r}");
        if name == "TLSv1.3" {
            assert!(TLS13_SUITES.contains(&cipher), "IANA name: {r}");
        }
        let seen = peer.seen();
        assert_eq!(seen.version, Some(version.version), "{seen:?}");
    }
}

#[test]
fn tls_flag_with_bare_targets() {
    let peer = tls_peer(&pki().good);
    let ca = cacert();
    let port = peer.port().to_string();
    let hostport = format!("127.0.0.1:{port}");
    let runs = [
        vec!["--tls", "--cacert", &ca, &hostport],
        vec!["--tls", "--cacert", &ca, "-p", &port, "127.0.0.1"],
    ];
    for args in runs {
        let (out, r) = json_run(&args);
        out.expect_code(0);
        assert_eq!(r["scheme"], "https", "{args:?}: {r}");
        assert_eq!(r["port"], peer.port(), "{args:?}: {r}");
        assert_eq!(r["tls"]["version"], "TLSv1.3", "{args:?}: {r}");
        assert_eq!(r["status"], 200, "{args:?}: {r}");
        let seen = peer.seen();
        assert_eq!(seen.error, None, "{seen:?}");
        let request = seen.text();
        assert!(
            request.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")),
            "{args:?}: {request:?}"
        );
    }
}

#[test]
fn tls_flag_defaults_to_port_443_and_leaves_http_urls_alone() {
    // Whatever answers (or not) on 127.0.0.1:443, the record says where it went.
    let out = headprobe()
        .args([
            "--format",
            "json",
            "--tls",
            "--connect-timeout",
            "1s",
            "-t",
            "2s",
        ])
        .arg("127.0.0.1")
        .run();
    let r = out.only_json();
    assert_eq!(r["scheme"], "https", "{r}");
    assert_eq!(r["port"], 443, "{r}");
    assert_eq!(r["addr"], "127.0.0.1:443", "{r}");

    // An explicit http:// keeps its scheme under --tls.
    let server = Server::start(Behaviour::Respond(ok_response()));
    let (out, r) = json_run(&["--tls".to_string(), format!("http://{}/", server.target())]);
    out.expect_code(0);
    assert_eq!(r["scheme"], "http", "{r}");
    assert_eq!(r["tls"], Value::Null, "{r}");
    assert!(server.next_request().starts_with(b"GET / HTTP/1.0\r\n"));
}

#[test]
fn text_format_prints_the_tls_line_first() {
    let peer = tls_peer(&pki().good);
    let ca = cacert();
    let t = peer.https_url("probe.test");
    let out = headprobe()
        .args(["--cacert", &ca])
        .args(peer.resolve("probe.test"))
        .arg(&t)
        .run();
    out.expect_code(0);
    let lines = out.lines();
    assert_eq!(lines.len(), 4, "{out:?}");
    let prefix = format!("{t} tls > TLSv1.3 ");
    let rest = lines[0]
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("first line is not the tls line: {out:?}"));
    let (cipher, rest) = rest.split_once(' ').unwrap_or_default();
    assert!(TLS13_SUITES.contains(&cipher), "cipher {cipher:?}: {out:?}");
    assert_eq!(rest, "CN=probe.test (verified)", "{out:?}");
    assert_eq!(
        lines[1..],
        [
            format!("{t} header > HTTP/1.0 200 OK"),
            format!("{t} header > Server: tls-loopback"),
            format!("{t} header > Content-Length: 0"),
        ],
        "{out:?}"
    );
    let _ = peer.seen();
}

#[test]
fn status_format_is_unchanged_for_https() {
    let peer = tls_peer(&pki().good);
    let ca = cacert();
    let t = peer.https_url("probe.test");
    let out = headprobe()
        .args(["--format", "status", "--cacert", &ca])
        .args(peer.resolve("probe.test"))
        .arg(&t)
        .run();
    out.expect_code(0);
    let rows = out.status_rows();
    assert_eq!(rows.len(), 1, "{out:?}");
    let row = &rows[0];
    assert_eq!(row.len(), 5, "{out:?}");
    assert_eq!(row[0], t);
    assert_eq!(row[1], "200");
    assert!(row[2].parse::<u64>().is_ok(), "total ms {:?}", row[2]);
    assert_eq!(row[3], peer.hostport());
    assert_eq!(row[4], "OK");
    let _ = peer.seen();
}

#[test]
fn request_bytes_over_tls_are_the_plain_http_ones() {
    let peer = tls_peer(&pki().good);
    let plain = Server::start(Behaviour::Respond(ok_response()));
    let ca = cacert();
    let extra = ["-H", "X-Probe: 1"];

    let out = headprobe()
        .args(extra)
        .args([
            "--resolve",
            &format!("probe.test:{}:127.0.0.1", plain.port()),
        ])
        .arg(format!("http://probe.test:{}/a/b?c=d", plain.port()))
        .run();
    out.expect_code(0);
    let plain_request = plain.request_text();

    let out = headprobe()
        .args(extra)
        .args(["--cacert", &ca])
        .args(peer.resolve("probe.test"))
        .arg(format!("https://probe.test:{}/a/b?c=d", peer.port()))
        .run();
    out.expect_code(0);
    let tls_request = peer.seen().text();

    let expected = format!(
        "GET /a/b?c=d HTTP/1.0\r\nHost: probe.test:{}\r\nUser-Agent: headprobe/{VERSION}\r\n\
         Accept: */*\r\nX-Probe: 1\r\n\r\n",
        peer.port()
    );
    assert_eq!(tls_request, expected);
    assert_eq!(
        tls_request,
        plain_request.replace(
            &format!("probe.test:{}", plain.port()),
            &format!("probe.test:{}", peer.port())
        ),
        "differs from the plain-HTTP request"
    );

    // The bare default request too.
    let (out, _) = json_run(&["--cacert", &ca, &format!("https://{}/", peer.hostport())]);
    out.expect_code(0);
    let request = peer.seen().text();
    assert_eq!(
        request,
        format!(
            "GET / HTTP/1.0\r\nHost: {}\r\nUser-Agent: headprobe/{VERSION}\r\nAccept: */*\r\n\r\n",
            peer.hostport()
        )
    );
}

// ---------------------------------------------------------------------------------------
// Trust as curl does (--cacert with servers' own certificates), chains, expiry, alerts
// ---------------------------------------------------------------------------------------

/// A verified probe of `leaf` served as is, trusting `--cacert FILE`.
#[track_caller]
fn verified_with(leaf: &Leaf, cacert: &str) -> Value {
    let peer = tls_peer(leaf);
    let (out, r) = json_run(&probe_name(&peer, "probe.test", &["--cacert", cacert]));
    out.expect_code(0);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["tls"]["verified"], true, "{r}");
    assert_eq!(r["tls"]["cert"]["sha256"], leaf.sha256().as_str(), "{r}");
    let seen = peer.seen();
    assert_eq!(seen.error, None, "{seen:?}");
    r
}

#[test]
fn cacert_trusts_a_self_signed_ca_leaf_as_curl_does() {
    // What `openssl req -x509 -subj /CN=probe.test` makes: self-signed, CA:TRUE.
    let pki = pki();
    // It has no SAN: its common name is matched, as curl does for it.
    let file = pki.self_signed_ca.pem_file();
    verified_with(&pki.self_signed_ca, &file);
    // Another name still fails, and so does an IP address (only a SAN can name one).
    cert_failure(
        &pki.self_signed_ca,
        "other.test",
        &["--cacert", &file],
        "certificate name mismatch: it is not valid for other.test",
    );
    let peer = tls_peer(&pki.self_signed_ca);
    let r = failing(
        &["--cacert", &file, &format!("https://{}/", peer.hostport())],
        "tls",
    );
    assert!(message(&r).contains("name mismatch"), "{r}");
    let _ = peer.seen();
    // Without it, it is self-signed and untrusted.
    cert_failure(&pki.self_signed_ca, "probe.test", &[], "self-signed");
}

#[test]
fn cacert_trusts_a_leaf_given_directly() {
    let pki = pki();
    // A self-signed leaf that is not a CA...
    let file = pki.self_signed.pem_file();
    verified_with(&pki.self_signed, &file);
    // ...and a leaf issued by a CA the file does not hold.
    let file = pki.good.pem_file();
    verified_with(&pki.good, &file);
    // A trusted leaf is trusted as is, not as an issuer: a sibling stays unknown.
    let r = cert_failure(
        &pki.wrong_name,
        "wrong.test",
        &["--cacert", &file],
        "unknown issuer",
    );
    assert_eq!(r["tls"]["verified"], false, "{r}");
    // Its name is still checked.
    cert_failure(
        &pki.good,
        "other.test",
        &["--cacert", &file],
        "certificate name mismatch: it is not valid for other.test",
    );
    // And its dates.
    let file = pki.expired.pem_file();
    cert_failure(
        &pki.expired,
        "probe.test",
        &["--cacert", &file],
        "certificate expired",
    );
}

#[test]
fn cacert_with_several_certificates_trusts_each() {
    let pki = pki();
    let both = std::fs::read_to_string(cacert()).unwrap() + &pem_of(&pki.self_signed.der);
    let path = temp_file("both.pem", both.as_bytes());
    let path = path.to_str().unwrap();
    verified_with(&pki.good, path);
    verified_with(&pki.self_signed, path);
}

#[test]
fn chain_through_an_intermediate() {
    let pki = pki();
    let r = verified_with(&pki.via_intermediate, &cacert());
    let issuer = r["tls"]["cert"]["issuer"].as_str().unwrap_or_default();
    assert!(issuer.contains("intermediate"), "{r}");
    // Without the intermediate in the handshake, the chain does not reach the root.
    let alone = pki.via_intermediate.alone();
    let ca = cacert();
    cert_failure(&alone, "probe.test", &["--cacert", &ca], "unknown issuer");
}

/// SHA-256 of DER bytes, lower-case hex.
fn sha256_hex(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// `tls.chain`: every certificate the server sent, leaf first, each with its own
/// subject, issuer, notAfter and fingerprint; an intermediate that expires before the
/// leaf shows there. Verified or not, and with -k too.
#[test]
fn the_chain_lists_every_certificate_sent_leaf_first() {
    let pki = pki();
    let leaf = &pki.early_intermediate;
    let mid = &leaf.chain[0];
    let check = |r: &Value| {
        let chain = r["tls"]["chain"]
            .as_array()
            .unwrap_or_else(|| panic!("no tls.chain array: {r}"));
        assert_eq!(chain.len(), 2, "{r}");
        let keys: Vec<&str> = chain[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        // (serde_json's map sorts them.)
        assert_eq!(keys, ["issuer", "not_after", "sha256", "subject"], "{r}");
        assert_eq!(chain[0]["sha256"], leaf.sha256().as_str(), "{r}");
        assert_eq!(chain[0]["subject"], r["tls"]["cert"]["subject"], "{r}");
        assert_eq!(chain[0]["issuer"], format!("CN={EARLY_CN}").as_str(), "{r}");
        assert_eq!(chain[0]["not_after"], "2090-01-02T03:04:05Z", "{r}");
        assert_eq!(chain[1]["sha256"], sha256_hex(mid.as_ref()).as_str(), "{r}");
        assert_eq!(
            chain[1]["subject"],
            format!("CN={EARLY_CN}").as_str(),
            "{r}"
        );
        assert_eq!(chain[1]["issuer"], format!("CN={CA_CN}").as_str(), "{r}");
        assert_eq!(chain[1]["not_after"], "2080-06-01T00:00:00Z", "{r}");
    };
    check(&verified_with(leaf, &cacert()));
    // Not verified (no --cacert): the chain is still what was sent.
    let peer = tls_peer(leaf);
    let r = failing(&probe_name(&peer, "probe.test", &[]), "tls");
    check(&r);
    let _ = peer.seen();
    let peer = tls_peer(leaf);
    let (out, r) = json_run(&probe_name(&peer, "probe.test", &["-k"]));
    out.expect_code(0);
    check(&r);
    let _ = peer.seen();
    // A leaf sent alone is a chain of one.
    let r = verified_with(&pki.good, &cacert());
    assert_eq!(r["tls"]["chain"].as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(
        r["tls"]["chain"][0]["sha256"],
        pki.good.sha256().as_str(),
        "{r}"
    );
}

#[test]
fn a_rejected_certificate_is_still_recorded() {
    let pki = pki();
    let ca = cacert();
    let r = cert_failure(
        &pki.expired,
        "probe.test",
        &["--cacert", &ca],
        "certificate expired",
    );
    let tls = &r["tls"];
    assert_eq!(tls["verified"], false, "{r}");
    assert_eq!(tls["version"], "TLSv1.3", "{r}");
    let cipher = tls["cipher"].as_str().unwrap_or_default();
    assert!(TLS13_SUITES.contains(&cipher), "cipher {cipher:?}: {r}");
    let cert = &tls["cert"];
    assert_eq!(cert["sha256"], pki.expired.sha256().as_str(), "{r}");
    assert_eq!(cert["not_after"], "2001-01-01T00:00:00Z", "{r}");
    assert!(cert["days_left"].as_i64().is_some_and(|d| d < -9000), "{r}");
    assert!(
        cert["subject"]
            .as_str()
            .unwrap_or_default()
            .contains("CN=probe.test"),
        "{r}"
    );

    // Unknown issuer over TLS 1.2 too.
    let peer = Peer::start(tls_handler(
        server_config(&pki.good, &[&rustls::version::TLS12]),
        tls_response(),
    ));
    let r = failing(&probe_name(&peer, "probe.test", &[]), "tls");
    assert!(message(&r).contains("unknown issuer"), "{r}");
    assert_eq!(r["tls"]["version"], "TLSv1.2", "{r}");
    assert_eq!(
        r["tls"]["cert"]["sha256"],
        pki.good.sha256().as_str(),
        "{r}"
    );
    let _ = peer.seen();
}

#[test]
fn days_left_and_expect_cert_days() {
    let pki = pki();
    let ca = cacert();
    let peer = tls_peer(&pki.five_days);

    // 5 days less a minute: 4 whole days left.
    let (out, r) = json_run(&probe_name(&peer, "probe.test", &["--cacert", &ca]));
    out.expect_code(0);
    assert_eq!(r["tls"]["cert"]["days_left"], 4, "{r}");
    let _ = peer.seen();

    let r = failing(
        &probe_name(
            &peer,
            "probe.test",
            &["--cacert", &ca, "--expect-cert-days", "30"],
        ),
        "cert_expiring",
    );
    let not_after = r["tls"]["cert"]["not_after"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        message(&r),
        format!("the certificate expires on {not_after}, in 4 days (--expect-cert-days 30)"),
        "{r}"
    );
    assert_eq!(r["status"], 200, "the response is still recorded: {r}");
    let _ = peer.seen();

    let (out, r) = json_run(&probe_name(
        &peer,
        "probe.test",
        &["--cacert", &ca, "--expect-cert-days", "2"],
    ));
    out.expect_code(0);
    assert_eq!(r["ok"], true, "{r}");
    let _ = peer.seen();

    // A long-lived certificate passes a long limit; -k records are judged too.
    let good = tls_peer(&pki.good);
    let (out, _) = json_run(&probe_name(
        &good,
        "probe.test",
        &["--cacert", &ca, "--expect-cert-days", "3650"],
    ));
    out.expect_code(0);
    let _ = good.seen();
    let r = failing(
        &probe_name(&peer, "probe.test", &["-k", "--expect-cert-days", "5"]),
        "cert_expiring",
    );
    assert!(message(&r).contains("in 4 days"), "{r}");
    let _ = peer.seen();

    // The text format says so too.
    let t = peer.https_url("probe.test");
    let out = headprobe()
        .args(["--cacert", &ca, "--expect-cert-days", "30"])
        .args(peer.resolve("probe.test"))
        .arg(&t)
        .run();
    out.expect_code(1);
    let last = out.lines().pop().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "{t} error > cert_expiring: the certificate expires on "
        )),
        "{out:?}"
    );
    let _ = peer.seen();
}

#[test]
fn expect_cert_days_rejects_bad_values() {
    for bad in ["-1", "x", "1.5", ""] {
        let out = headprobe()
            .args(["--expect-cert-days", bad, "https://127.0.0.1:1/"])
            .run();
        out.expect_code(2);
        assert!(out.err().contains("--expect-cert-days"), "{bad}: {out:?}");
    }
}

#[test]
fn a_server_demanding_a_client_certificate() {
    let pki = pki();
    let ca = cacert();
    for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12]] {
        let peer = Peer::start(tls_handler(
            client_auth_config(&pki.good, versions),
            tls_response(),
        ));
        let r = failing(&probe_name(&peer, "probe.test", &["--cacert", &ca]), "tls");
        assert_eq!(
            message(&r),
            "the server requires a client certificate",
            "{versions:?}: {r}"
        );
        assert_eq!(r["status"], Value::Null, "{r}");
        let seen = peer.seen();
        assert!(seen.error.is_some(), "{seen:?}");
    }
}

#[test]
fn alerts_are_named_in_words() {
    // The server does not serve the name asked for.
    let peer = Peer::start(raw_answer(alert(112)));
    let r = failing(&probe_name(&peer, "probe.test", &[]), "tls");
    assert_eq!(
        message(&r),
        "the server does not know the name probe.test",
        "{r}"
    );
    let _ = peer.seen();

    for (code, words) in [
        (40, "handshake failure"),
        (70, "protocol version not supported"),
        (48, "the TLS alert unknown CA (48)"),
        (80, "the TLS alert internal error (80)"),
        (199, "the TLS alert of an unknown kind (199)"),
    ] {
        let peer = Peer::start(raw_answer(alert(code)));
        let r = failing(&[format!("https://{}/", peer.hostport())], "tls");
        let m = message(&r);
        assert!(m.contains(words), "alert {code}: {m:?} lacks {words:?}");
        let camel = m.split(' ').any(|w| {
            let lower = w.find(char::is_lowercase);
            lower.is_some_and(|i| w[i..].contains(char::is_uppercase))
        });
        assert!(!camel, "alert {code}: an enum name in {m:?}");
        let _ = peer.seen();
    }
}

#[test]
fn garbage_and_truncated_certificates_are_tls_records() {
    let pki = pki();
    let truncated = CertificateDer::from(pki.good.der.as_ref()[..200].to_vec());
    let garbage = CertificateDer::from(b"\x30\x03\x02\x01\x00 not a certificate".to_vec());
    for chain in [vec![truncated], vec![garbage], vec![]] {
        for extra in [&[][..], &["-k"]] {
            let peer = Peer::start(tls_handler(
                raw_chain_config(&pki.good, chain.clone()),
                tls_response(),
            ));
            let (out, r) = json_run(&probe_name(&peer, "probe.test", extra));
            out.expect_code(1);
            assert_eq!(r["error"]["kind"], "tls", "{extra:?}: {r}");
            assert!(!out.err().contains("panicked"), "{out:?}");
            let _ = peer.seen();
        }
    }
}

#[test]
fn a_request_too_long_to_ride_with_the_handshake_is_still_sent_whole() {
    // Short requests leave with the client's Finished; one over 16 KiB is written after
    // the handshake. Both must arrive byte for byte.
    let pki = pki();
    let ca = cacert();
    for size in [10, 20_000] {
        let peer = tls_peer(&pki.good);
        let value = "v".repeat(size);
        let header = format!("X-Long: {value}");
        let (out, r) = json_run(&probe_name(
            &peer,
            "probe.test",
            &["--cacert", &ca, "-H", &header],
        ));
        out.expect_code(0);
        assert_eq!(r["status"], 200, "{size}: {r}");
        let request = peer.seen().text();
        assert!(
            request.starts_with("GET / HTTP/1.0\r\n"),
            "{size}: {request:?}"
        );
        assert!(
            request.ends_with(&format!("\r\n{header}\r\n\r\n")),
            "{size}: the request was cut or altered"
        );
    }
}

#[test]
fn plain_http_sent_to_a_tls_port_says_so() {
    // The reverse of plain_http_peer_on_a_tls_probe: http:// to a TLS server, which
    // answers the request with a TLS alert record.
    let peer = tls_peer(&pki().good);
    let r = failing(&[format!("http://{}/", peer.hostport())], "not_http");
    let m = message(&r);
    assert!(
        m.ends_with(" (a TLS record: is it an https:// port?)"),
        "message {m:?}: {r}"
    );
    assert!(
        m.contains("\\x15\\x03"),
        "peer bytes in \\xNN escaping: {m:?}"
    );
    let _ = peer.seen();
    // A plain-HTTP server's odd answer gets no such hint.
    let server = Server::start(Behaviour::Respond(b"SSH-2.0-OpenSSH\r\n".to_vec()));
    let r = failing(&[server.target()], "not_http");
    assert!(!message(&r).contains("https://"), "{r}");
}

/// After -L the certificate is the last hop's: `cert_expiring` and TLS failures name
/// the host (and hop) they are about, not only the target's address.
#[test]
fn tls_messages_after_a_redirect_name_the_hop() {
    let ca = cacert();
    let pki = pki();
    for (leaf, extra, kind, want) in [
        (
            &pki.five_days,
            vec!["--expect-cert-days", "30"],
            "cert_expiring",
            "the certificate of probe.test expires on ",
        ),
        (
            &pki.expired,
            vec![],
            "tls",
            "certificate expired (at https://probe.test:",
        ),
    ] {
        let peer = tls_peer(leaf);
        let to = peer.https_url("probe.test");
        let origin = Server::start(Behaviour::Respond(response(
            "HTTP/1.1 301 Moved Permanently",
            &[&format!("Location: {to}"), "Content-Length: 0"],
        )));
        let mut args: Vec<String> = vec!["-L".into(), "--cacert".into(), ca.clone()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(peer.resolve("probe.test"));
        args.push(origin.target());
        let r = failing(&args, kind);
        let m = message(&r);
        assert!(m.starts_with(want), "{m}");
        if kind == "tls" {
            assert!(m.ends_with(&format!("(at {to}, after 1 redirect)")), "{m}");
        }
        let _ = peer.seen();
    }
}

/// Days count toward zero: a certificate 25 hours past notAfter expired 1 day ago (it
/// read 2), and the message gives the date.
#[test]
fn days_ago_count_whole_days() {
    let ca = cacert();
    let peer = tls_peer(&pki().expired_yesterday);
    let r = failing(
        &probe_name(&peer, "probe.test", &["-k", "--expect-cert-days", "30"]),
        "cert_expiring",
    );
    assert_eq!(r["tls"]["cert"]["days_left"], -1, "{r}");
    let not_after = r["tls"]["cert"]["not_after"].as_str().unwrap_or_default();
    assert_eq!(
        message(&r),
        format!("the certificate expired on {not_after}, 1 day ago (--expect-cert-days 30)")
    );
    let _ = peer.seen();
    // Verified, it is a tls failure that still records the days.
    let peer = tls_peer(&pki().expired_yesterday);
    let r = failing(&probe_name(&peer, "probe.test", &["--cacert", &ca]), "tls");
    assert_eq!(r["tls"]["cert"]["days_left"], -1, "{r}");
    let _ = peer.seen();
}
