//! HTTP/3 (issue 36): `--http3-only` against real HTTP/3 peers on loopback, and
//! `--http3`'s race with TCP.
//!
//! - aioquic (PyPI), running `tests/util/h3_server.py`, which answers each path with a
//!   chosen head or failure and prints every request's field section; its QPACK is
//!   ls-qpack's (pylsqpack), so both directions are checked against another
//!   implementation.
//! - Debian's ngtcp2 tools: `gtlsserver` serves files, and headprobe's head must equal
//!   what `gtlsclient` prints for the same URL.
//!
//! Each test skips, saying why, when its peer is not installed (`.ci/run` installs them).
//! Names go through `--resolve`, never DNS.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::h2::{writes, H2Peer};
use crate::util::pki::{cacert, pki};
use crate::util::{failing, headprobe, json_run, message, ms, tool, WAIT};

/// The aioquic peer: `tests/util/h3_server.py` as a child, killed on drop.
struct Aioquic {
    child: Child,
    port: u16,
    /// Each request's field section, as the server decoded it.
    requests: Receiver<Vec<(String, String)>>,
}

impl Drop for Aioquic {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Aioquic {
    /// Starts the peer with the test PKI's good leaf; `None` (after saying why) when
    /// python3 or aioquic is missing.
    fn start() -> Option<Aioquic> {
        let have = Command::new("python3")
            .args(["-c", "import aioquic"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !have {
            eprintln!("skipped: python3 with aioquic is not installed (pip install aioquic)");
            return None;
        }
        let leaf = &pki().good;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/util/h3_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(leaf.pem_file())
            .arg(leaf.key_pem_file())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn python3 h3_server.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready, requests) = read_lines(stdout);
        let port = match ready.recv_timeout(WAIT) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                panic!("the aioquic peer did not say it was ready within {WAIT:?}");
            }
        };
        Some(Aioquic {
            child,
            port,
            requests,
        })
    }

    /// `--resolve` for probe.test and the URL of `path` there.
    fn named(&self, path: &str) -> Vec<String> {
        vec![
            "--resolve".into(),
            format!("probe.test:{}:127.0.0.1", self.port),
            format!("https://probe.test:{}{path}", self.port),
        ]
    }

    /// The next request's field section, as the server decoded it.
    fn next_request(&self) -> Vec<(String, String)> {
        self.requests
            .recv_timeout(WAIT)
            .expect("the aioquic peer got a request")
    }
}

/// A thread reading the peer's stdout: the port of `ready PORT`, then requests.
fn read_lines(stdout: ChildStdout) -> (Receiver<u16>, Receiver<Vec<(String, String)>>) {
    let (ready_tx, ready) = channel();
    let (req_tx, requests) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(port) = line.strip_prefix("ready ") {
                let _ = ready_tx.send(port.trim().parse().expect("a port"));
            } else if let Ok(Value::Array(pairs)) = serde_json::from_str::<Value>(&line) {
                let pairs = pairs
                    .iter()
                    .map(|p| {
                        (
                            p[0].as_str().unwrap_or_default().to_string(),
                            p[1].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect();
                let _ = req_tx.send(pairs);
            }
        }
    });
    (ready, requests)
}

/// `--http3-only --cacert CA --format json` against the peer's `path`.
fn h3_json(peer: &Aioquic, path: &str, extra: &[&str]) -> (crate::util::Outcome, Value) {
    let mut args: Vec<String> = vec!["--http3-only".into(), "--cacert".into(), cacert()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(peer.named(path));
    json_run(&args)
}

#[track_caller]
fn h3_failure(peer: &Aioquic, path: &str, extra: &[&str], kind: &str) -> Value {
    let mut args: Vec<String> = vec!["--http3-only".into(), "--cacert".into(), cacert()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(peer.named(path));
    failing(&args, kind)
}

/// The fields of a record's `headers` as (name, value) pairs.
fn pairs(r: &Value) -> Vec<(String, String)> {
    r["headers"]
        .as_array()
        .unwrap_or_else(|| panic!("no headers: {r}"))
        .iter()
        .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
        .collect()
}

fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Heads over HTTP/3 (aioquic)
// ---------------------------------------------------------------------------------------

#[test]
fn an_h3_head_is_recorded_as_received() {
    let Some(peer) = Aioquic::start() else { return };
    let (out, r) = h3_json(&peer, "/ok", &[]);
    out.expect_code(0);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200);
    assert_eq!(r["version"], "HTTP/3");
    assert_eq!(r["reason"], Value::Null);
    assert_eq!(r["tls"]["alpn"], "h3");
    assert_eq!(r["tls"]["version"], "TLSv1.3");
    // aioquic prefers AES-256-GCM; the suite test is gtlsserver's, below.
    assert!(
        r["tls"]["cipher"].as_str().unwrap().starts_with("TLS_AES_"),
        "{r}"
    );
    assert_eq!(r["tls"]["verified"], true);
    assert_eq!(r["tls"]["cert"]["subject"], "CN=probe.test", "{r}");
    // The chain as over TCP: what the server sent, leaf first.
    assert_eq!(r["tls"]["chain"][0]["sha256"], pki().good.sha256(), "{r}");
    assert_eq!(r["tls"]["cert"]["sha256"], pki().good.sha256(), "{r}");
    // In order, with the repeat where it came.
    assert_eq!(
        pairs(&r),
        owned(&[
            ("server", "aioquic-test"),
            ("x-a", "1"),
            ("set-cookie", "a=1"),
            ("x-a", "2"),
            ("content-type", "text/plain"),
        ])
    );
    // The QUIC handshake is the connect phase; the head comes after it.
    let t = &r["timing_ms"];
    assert!(ms(&t["connect"]) <= ms(&t["headers"]), "{t}");
    assert_eq!(t["connect"], t["tls"], "{t}");
}

#[test]
fn text_output_prints_the_head_as_curl_does() {
    let Some(peer) = Aioquic::start() else { return };
    let mut args: Vec<String> = vec!["--http3-only".into(), "--cacert".into(), cacert()];
    args.extend(peer.named("/ok"));
    let out = headprobe().args(&args).run();
    out.expect_code(0);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let url = format!("https://probe.test:{}/ok", peer.port);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(&format!("{url} tls > TLSv1.3 ")),
        "{text}"
    );
    assert!(lines[0].ends_with("ALPN h3"), "{text}");
    assert_eq!(lines[1], format!("{url} header > HTTP/3 200"), "{text}");
    assert_eq!(lines[2], format!("{url} header > server: aioquic-test"));
}

#[test]
fn the_request_carries_the_path_with_its_query_and_the_authority_as_sent() {
    let Some(peer) = Aioquic::start() else { return };
    let (out, _) = h3_json(&peer, "/ok?a=1&b=two", &["-H", "X-Extra: yes"]);
    out.expect_code(0);
    let req = peer.next_request();
    let get = |n: &str| {
        req.iter()
            .find(|(name, _)| name == n)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get(":method").as_deref(), Some("GET"), "{req:?}");
    assert_eq!(get(":scheme").as_deref(), Some("https"), "{req:?}");
    assert_eq!(
        get(":authority"),
        Some(format!("probe.test:{}", peer.port)),
        "{req:?}"
    );
    assert_eq!(get(":path").as_deref(), Some("/ok?a=1&b=two"), "{req:?}");
    assert_eq!(get("x-extra").as_deref(), Some("yes"), "{req:?}");
    // Pseudo-headers first.
    assert!(req[..4].iter().all(|(n, _)| n.starts_with(':')), "{req:?}");
}

#[test]
fn a_404_with_60_fields_is_read_whole() {
    let Some(peer) = Aioquic::start() else { return };
    let (out, r) = h3_json(&peer, "/many", &[]);
    out.expect_code(0);
    assert_eq!(r["status"], 404, "{r}");
    let got = pairs(&r);
    assert_eq!(got.len(), 60, "{r}");
    for (i, (n, v)) in got.iter().enumerate() {
        assert_eq!(n, &format!("x-field-{i:02}"));
        assert_eq!(v, &format!("value {i}"));
    }
}

#[test]
fn an_interim_head_comes_before_the_final_one() {
    let Some(peer) = Aioquic::start() else { return };
    let (out, r) = h3_json(&peer, "/interim", &[]);
    out.expect_code(0);
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["interim"][0]["status"], 103, "{r}");
}

#[test]
fn a_redirect_is_followed_over_http3_with_l() {
    let Some(peer) = Aioquic::start() else { return };
    let (out, r) = h3_json(&peer, "/moved", &["-L"]);
    out.expect_code(0);
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["version"], "HTTP/3");
    assert_eq!(r["redirects"][0]["status"], 301, "{r}");
    assert_eq!(
        r["final_url"],
        format!("https://probe.test:{}/ok", peer.port),
        "{r}"
    );
}

#[test]
fn expectations_and_formats_apply_over_http3() {
    let Some(peer) = Aioquic::start() else { return };
    let r = h3_failure(
        &peer,
        "/many",
        &["--expect-status", "200"],
        "status_mismatch",
    );
    assert_eq!(r["version"], "HTTP/3");
    let mut args: Vec<String> = vec![
        "--http3-only".into(),
        "--cacert".into(),
        cacert(),
        "--format".into(),
        "status".into(),
    ];
    args.extend(peer.named("/ok"));
    let out = headprobe().args(&args).run();
    out.expect_code(0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\t200"), "{text}");
}

#[test]
fn a_field_section_over_the_cap_is_headers_too_large() {
    let Some(peer) = Aioquic::start() else { return };
    let r = h3_failure(
        &peer,
        "/big",
        &["--max-header-bytes", "1000"],
        "headers_too_large",
    );
    assert!(message(&r).contains("--max-header-bytes"), "{r}");
}

#[test]
fn an_untrusted_certificate_is_tls_with_the_certificate_kept() {
    let Some(peer) = Aioquic::start() else { return };
    let mut args: Vec<String> = vec!["--http3-only".into()];
    args.extend(peer.named("/ok"));
    let r = failing(&args, "tls");
    assert!(message(&r).contains("issuer"), "{r}");
    assert_eq!(r["tls"]["cert"]["subject"], "CN=probe.test", "{r}");
    assert_eq!(r["tls"]["verified"], false, "{r}");
    // -k records it and goes on.
    args.insert(0, "-k".into());
    let (out, r) = json_run(&args);
    out.expect_code(0);
    assert_eq!(r["tls"]["verified"], false, "{r}");
    assert_eq!(r["version"], "HTTP/3");
}

#[test]
fn a_stream_reset_names_its_code() {
    let Some(peer) = Aioquic::start() else { return };
    let r = h3_failure(&peer, "/reset", &[], "protocol");
    let m = message(&r);
    assert!(m.contains("H3_REQUEST_REJECTED"), "{m}");
    assert!(m.contains("RESET_STREAM"), "{m}");
}

#[test]
fn a_connection_close_names_its_code_and_reason() {
    let Some(peer) = Aioquic::start() else { return };
    let r = h3_failure(&peer, "/close", &[], "protocol");
    let m = message(&r);
    assert!(m.contains("H3_INTERNAL_ERROR"), "{m}");
    assert!(m.contains("going away for the test"), "{m}");
}

#[test]
fn data_before_the_head_is_protocol() {
    let Some(peer) = Aioquic::start() else { return };
    let r = h3_failure(&peer, "/data", &[], "protocol");
    assert!(message(&r).contains("DATA before the response head"), "{r}");
}

#[test]
fn a_server_that_never_answers_the_head_is_timeout() {
    let Some(peer) = Aioquic::start() else { return };
    let r = h3_failure(&peer, "/silent", &["--timeout", "1s"], "timeout");
    assert!(message(&r).contains("--timeout"), "{r}");
}

// ---------------------------------------------------------------------------------------
// No QUIC there
// ---------------------------------------------------------------------------------------

/// A UDP port bound by the test that never answers.
fn silent_udp() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket")
}

#[test]
fn no_quic_answer_within_the_connect_timeout_is_connect_timeout() {
    let silent = silent_udp();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let r = failing(
        &[
            "--http3-only",
            "--connect-timeout",
            "500ms",
            &format!("https://127.0.0.1:{port}/"),
        ],
        "connect_timeout",
    );
    assert!(message(&r).contains("--connect-timeout"), "{r}");
    assert!(started.elapsed() < Duration::from_secs(5), "{r}");
}

#[test]
fn a_port_with_no_listener_is_refused() {
    // Bound, then closed: the host answers the Initial with ICMP port unreachable.
    let port = silent_udp().local_addr().unwrap().port();
    let r = failing(
        &["--http3-only", &format!("https://127.0.0.1:{port}/")],
        "refused",
    );
    assert!(message(&r).contains("port unreachable"), "{r}");
    assert!(ms(&r["timing_ms"]["total"]) < 2000.0, "{r}");
}

#[test]
fn proxies_do_not_carry_quic() {
    for (flag, proxy) in [
        ("--http3", "--proxy"),
        ("--http3-only", "--proxy"),
        ("--http3-only", "--proxy-check"),
    ] {
        let out = headprobe()
            .args([flag, proxy, "http://127.0.0.1:1", "https://127.0.0.1:1/"])
            .run();
        out.expect_code(2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag) && err.contains(proxy), "{err}");
    }
}

// ---------------------------------------------------------------------------------------
// --http3: the race with TCP
// ---------------------------------------------------------------------------------------

/// A TCP-only TLS peer answering in HTTP/1.1.
fn tcp_only() -> H2Peer {
    H2Peer::tls(
        &["http/1.1"],
        writes(b"HTTP/1.1 200 OK\r\nserver: tcp-only\r\ncontent-length: 0\r\n\r\n".to_vec()),
    )
}

#[test]
fn http3_falls_back_to_tcp_when_nothing_listens_on_udp() {
    let peer = tcp_only();
    let mut args: Vec<String> = vec!["--http3".into(), "--cacert".into(), cacert()];
    args.extend(peer.named("/"));
    let (out, r) = json_run(&args);
    out.expect_code(0);
    assert_eq!(r["version"], "HTTP/1.1", "{r}");
    assert_eq!(r["tls"]["alpn"], "http/1.1", "{r}");
}

#[test]
fn http3_against_a_silent_udp_port_costs_no_more_than_the_head_start() {
    let peer = tcp_only();
    let port: u16 = peer.named("/")[2]
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("the peer's port");
    // Something on the same UDP port that never answers: QUIC waits, TCP starts after
    // the head start and wins.
    let Ok(_silent) = UdpSocket::bind(("127.0.0.1", port)) else {
        eprintln!("skipped: UDP port {port} is taken");
        return;
    };
    let mut args: Vec<String> = vec!["--http3".into(), "--cacert".into(), cacert()];
    args.extend(peer.named("/"));
    let (out, r) = json_run(&args);
    out.expect_code(0);
    assert_eq!(r["version"], "HTTP/1.1", "{r}");
    let connect = ms(&r["timing_ms"]["connect"]);
    // 200ms of head start, then a loopback TCP connect: well under a second even on a
    // loaded machine, and far from the 5s connect timeout QUIC alone would use.
    assert!(connect >= 190.0, "TCP started before the head start: {r}");
    assert!(ms(&r["timing_ms"]["total"]) < 1500.0, "{r}");
}

#[test]
fn http3_uses_quic_when_it_answers() {
    let Some(peer) = Aioquic::start() else { return };
    let mut args: Vec<String> = vec!["--http3".into(), "--cacert".into(), cacert()];
    args.extend(peer.named("/ok"));
    let (out, r) = json_run(&args);
    out.expect_code(0);
    // Nothing listens on the TCP port: QUIC's answer is the only one.
    assert_eq!(r["version"], "HTTP/3", "{r}");
    assert_eq!(r["tls"]["alpn"], "h3", "{r}");
}

// ---------------------------------------------------------------------------------------
// ngtcp2's server and client (Debian's ngtcp2-server, ngtcp2-client)
// ---------------------------------------------------------------------------------------

/// gtlsserver serving a scratch directory on a loopback UDP port; killed on drop.
struct Gtls {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Gtls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gtls {
    fn start(server: &Path, extra: &[&str]) -> Gtls {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "headprobe-gtls-{}-{}",
            std::process::id(),
            crate::util::free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), "<p>index</p>\n").unwrap();
        std::fs::write(dir.join("style.css"), "p {}\n").unwrap();
        let port = silent_udp().local_addr().unwrap().port();
        let leaf = &pki().good;
        // `-q` unless the test reads the server's frame log (its stderr, to a file).
        let log = extra.contains(&"--log");
        let extra: Vec<&str> = extra.iter().copied().filter(|a| *a != "--log").collect();
        let stderr = match log {
            true => Stdio::from(std::fs::File::create(dir.join("server.log")).unwrap()),
            false => Stdio::null(),
        };
        let child = Command::new(server)
            .args(&extra)
            .args(if log {
                &["--no-quic-dump"][..]
            } else {
                &["-q"][..]
            })
            .arg("-d")
            .arg(&dir)
            .args(["127.0.0.1", &port.to_string()])
            .arg(leaf.key_pem_file())
            .arg(leaf.pem_file())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn gtlsserver");
        let gtls = Gtls { child, port, dir };
        // It says nothing when ready: wait until the kernel lists its UDP socket.
        let deadline = Instant::now() + WAIT;
        while !udp_bound(port) {
            assert!(Instant::now() < deadline, "gtlsserver did not bind {port}");
            std::thread::sleep(Duration::from_millis(10));
        }
        gtls
    }
}

/// Whether a UDP socket is bound to 127.0.0.1:`port` (from /proc/net/udp).
fn udp_bound(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .map(|t| {
            t.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(&want))
        })
        .unwrap_or(false)
}

/// The response head gtlsclient prints (`http: stream 0x0 [name: value]` lines between
/// "response headers started" and "headers ended"), as (status, fields).
fn gtlsclient_head(client: &Path, port: u16, url: &str) -> (u16, Vec<(String, String)>) {
    let out = Command::new(client)
        .args([
            "--exit-on-first-stream-close",
            "--no-quic-dump",
            "--no-http-dump",
        ])
        .args(["--timeout", "5s"])
        .args(["127.0.0.1", &port.to_string(), url])
        .stdin(Stdio::null())
        .output()
        .expect("run gtlsclient");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut status = 0;
    let mut fields = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("http: stream 0x0 ") else {
            continue;
        };
        if rest.starts_with("response headers started") {
            inside = true;
        } else if rest.starts_with("headers ended") && inside {
            break;
        } else if let (true, Some(field)) = (inside, rest.strip_prefix('[')) {
            let field = field.strip_suffix(']').unwrap_or(field);
            let (n, v) = field.split_once(": ").unwrap_or((field, ""));
            if n == ":status" {
                status = v.parse().unwrap_or(0);
            } else {
                fields.push((n.to_string(), v.to_string()));
            }
        }
    }
    assert!(status != 0, "gtlsclient printed no head:\n{text}");
    (status, fields)
}

#[test]
fn the_head_equals_what_gtlsclient_prints() {
    let (Some(server), Some(client)) = (
        tool("/usr/sbin/gtlsserver", "ngtcp2-server"),
        tool("/usr/bin/gtlsclient", "ngtcp2-client"),
    ) else {
        return;
    };
    let gtls = Gtls::start(&server, &[]);
    for path in ["/", "/index.html", "/style.css", "/missing"] {
        let url = format!("https://127.0.0.1:{}{path}", gtls.port);
        let (status, fields) = gtlsclient_head(&client, gtls.port, &url);
        let (out, r) = json_run(&["--http3-only", "--cacert", &cacert(), &url]);
        assert_eq!(r["status"], status, "{path}: {r}");
        assert_eq!(pairs(&r), fields, "{path}: {r}");
        assert_eq!(r["version"], "HTTP/3", "{r}");
        out.expect_code(0);
    }
}

#[test]
fn the_cipher_suite_is_the_one_the_server_chose() {
    let Some(server) = tool("/usr/sbin/gtlsserver", "ngtcp2-server") else {
        return;
    };
    // Neither is the client's first choice (AES-128-GCM), and the Initial packets are
    // AES-128-GCM whatever is chosen: the record must name what the handshake chose.
    for (suite, gnutls) in [
        ("TLS_CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305"),
        ("TLS_AES_256_GCM_SHA384", "AES-256-GCM"),
    ] {
        let ciphers = format!("--ciphers=NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+{gnutls}");
        let gtls = Gtls::start(&server, &[&ciphers]);
        let url = format!("https://127.0.0.1:{}/", gtls.port);
        let (out, r) = json_run(&["--http3-only", "--cacert", &cacert(), &url]);
        out.expect_code(0);
        assert_eq!(r["tls"]["cipher"], suite, "{r}");
    }
}

#[test]
fn the_connection_ends_with_h3_no_error_and_its_control_stream_open() {
    let Some(server) = tool("/usr/sbin/gtlsserver", "ngtcp2-server") else {
        return;
    };
    let gtls = Gtls::start(&server, &["--log"]);
    let url = format!("https://127.0.0.1:{}/", gtls.port);
    let (out, _) = json_run(&["--http3-only", "--cacert", &cacert(), &url]);
    out.expect_code(0);
    // The server logs each frame it receives; wait (bounded) for the close.
    let log = gtls.dir.join("server.log");
    let deadline = Instant::now() + WAIT;
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("rx") && text.contains("CONNECTION_CLOSE") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no CONNECTION_CLOSE received:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let closes: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("CONNECTION_CLOSE"))
        .collect();
    assert!(
        closes
            .iter()
            .any(|l| l.contains(" rx ") && l.contains("(0x100)")),
        "no H3_NO_ERROR from the client: {closes:?}"
    );
    // A control stream closed before the connection is H3_CLOSED_CRITICAL_STREAM.
    assert!(
        !closes.iter().any(|l| l.contains(" tx ")),
        "the server closed the connection itself: {closes:?}"
    );
}

// --- the addresses options over QUIC ---------------------------------------------------

/// `--all-addresses` over HTTP/3: each address its own QUIC connection and record; the one
/// with nothing listening (127.0.0.3 refuses by ICMP) fails alone.
#[test]
fn all_addresses_probes_each_address_over_quic() {
    let Some(peer) = Aioquic::start() else { return };
    let out = headprobe()
        .args([
            "--http3-only",
            "--all-addresses",
            "--format",
            "json",
            "--cacert",
            &cacert(),
            "--resolve",
            &format!("probe.test:{}:127.0.0.1,127.0.0.3", peer.port),
            &format!("https://probe.test:{}/ok", peer.port),
        ])
        .run();
    out.expect_code(1);
    let records = out.json();
    assert_eq!(records.len(), 2, "{}", out.out());
    let live = format!("127.0.0.1:{}", peer.port);
    let dead = format!("127.0.0.3:{}", peer.port);
    for r in &records {
        assert_eq!(r["of_addresses"], 2, "{r}");
        if r["address"] == live.as_str() {
            assert_eq!(r["ok"], true, "{r}");
            assert_eq!(r["version"], "HTTP/3", "{r}");
            assert_eq!(r["addr"], live.as_str(), "{r}");
        } else {
            assert_eq!(r["address"], dead.as_str(), "{r}");
            assert_eq!(r["error"]["kind"], "refused", "{r}");
        }
    }
}

/// `--interface ADDR` binds QUIC's UDP socket as it binds TCP's: the server sees the
/// Initial come from that address; an address of the other family is never sent to.
#[test]
fn interface_binds_the_quic_socket_and_keeps_its_family() {
    let server = silent_udp();
    server.set_read_timeout(Some(WAIT)).expect("a read timeout");
    let port = server.local_addr().unwrap().port();
    let child = headprobe()
        .args([
            "--http3-only",
            "--connect-timeout",
            "2s",
            "--interface",
            "127.0.0.9",
            &format!("https://127.0.0.1:{port}/"),
        ])
        .spawn();
    let mut buf = [0u8; 2048];
    let (_, from) = server.recv_from(&mut buf).expect("an Initial within WAIT");
    assert_eq!(from.ip().to_string(), "127.0.0.9");
    child.finish().expect_code(1);

    // From ::1, 127.0.0.1 is the other family: nothing is sent, and the record says so.
    // (A fresh socket: the first run's retransmitted Initials may still be queued.)
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipped the IPv6 half: no ::1 here");
        return;
    }
    let server = silent_udp();
    let port = server.local_addr().unwrap().port();
    let r = failing(
        &[
            "--http3-only",
            "--interface",
            "::1",
            &format!("https://127.0.0.1:{port}/"),
        ],
        "unreachable",
    );
    assert!(message(&r).contains("nothing was sent"), "{r}");
    server
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(server.recv_from(&mut buf).is_err(), "a datagram came: {r}");
}
