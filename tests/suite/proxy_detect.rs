//! Proxies (issue 14), protocol detection: bare `--proxy-check` tokens tried as HTTP,
//! SOCKS5 and SOCKS4 in turn at one connection per protocol tried, silent and non-proxy
//! ports, credentials in bare tokens, posers told apart by an https check URL or
//! `--expect-header`, and a mixed pool of bare tokens (with tinyproxy and microsocks when
//! installed).

use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::peer::*;
use crate::util::pki::*;
use crate::util::proxy::*;
use crate::util::*;

/// A peer that counts its connections exactly: `connections` makes a sentinel connection
/// and waits for it, so every connection accepted before it has been counted.
struct Counted {
    peer: Peer,
    clients: Arc<std::sync::Mutex<Vec<SocketAddr>>>,
}

fn counted(start: impl FnOnce(Handler) -> Peer, handler: Handler) -> Counted {
    let clients = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&clients);
    let peer = start(Arc::new(move |s: TcpStream, tx: &Sender<Seen>| {
        if let Ok(from) = s.peer_addr() {
            log.lock().unwrap().push(from);
        }
        handler(s, tx)
    }));
    Counted { peer, clients }
}

impl Counted {
    /// Connections from headprobe so far (the sentinel not counted).
    fn connections(&self) -> usize {
        let sentinel = TcpStream::connect(self.peer.addr()).expect("sentinel connection");
        let me = sentinel.local_addr().unwrap();
        drop(sentinel);
        let deadline = Instant::now() + WAIT;
        loop {
            {
                let clients = self.clients.lock().unwrap();
                if let Some(i) = clients.iter().position(|a| *a == me) {
                    return i;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the sentinel connection was never served"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

fn counted_http() -> Counted {
    let proxy = Arc::new(HttpProxy::default());
    counted(Peer::start, Arc::new(move |s, tx| proxy.serve(s, tx)))
}

fn counted_socks5() -> Counted {
    let proxy = Arc::new(Socks5::default());
    counted(Peer::start, Arc::new(move |s, tx| proxy.serve(s, tx)))
}

fn counted_socks4(proxy: Socks4) -> Counted {
    let proxy = Arc::new(proxy);
    counted(Peer::start, Arc::new(move |s, tx| proxy.serve(s, tx)))
}

#[test]
fn bare_tokens_are_detected_and_cost_one_connection_per_protocol_tried() {
    let origin = origin_server();
    let http = counted_http();
    let socks5 = counted_socks5();
    let socks4 = counted_socks4(Socks4::default());
    let rejecting = counted_socks4(Socks4 {
        reject_others: true,
        ..Socks4::default()
    });
    let ssh = Server::start(Behaviour::Banner(b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec()));
    // Closes at once, whatever comes (a FIN, then it reads until the client is gone).
    let closer = counted(
        Peer::start,
        Arc::new(|mut s: TcpStream, tx: &Sender<Seen>| {
            close_and_drain(&mut s);
            let _ = tx.send(Seen::default());
        }),
    );
    let dead = dead();
    let url = format!("http://127.0.0.1:{}/detect", origin.port());
    let tokens = [
        http.peer.hostport(),
        socks5.peer.hostport(),
        socks4.peer.hostport(),
        ssh.target(),
        closer.peer.hostport(),
        dead.addr.to_string(),
        socks4.peer.url("socks4"),
        rejecting.peer.hostport(),
    ];
    let out = headprobe()
        .args(["--format", "json", "--ordered", "--proxy-check", &url])
        .args(["--connect-timeout", "2s", "-t", "4s"])
        .args(&tokens)
        .run();
    out.expect_code(1);
    let records = out.json();
    assert_eq!(records.len(), tokens.len(), "{out:?}");
    check_detected(&records[0], Some(http.peer.url("http")), None);
    check_detected(&records[1], Some(socks5.peer.url("socks5")), None);
    check_detected(&records[2], Some(socks4.peer.url("socks4")), None);
    for r in &records[..3] {
        assert_eq!(r["status"], 200, "{r}");
        assert!(
            r["headers"]
                .as_array()
                .unwrap()
                .contains(&json!(["X-Origin", "yes"])),
            "{r}"
        );
    }
    check_detected(&records[3], None, Some("proxy"));
    let m = message(&records[3]);
    assert!(
        m.contains("none of HTTP, SOCKS5 and SOCKS4")
            && m.contains(r#"answered "SSH-2.0-OpenSSH_9.2p1""#),
        "{m}"
    );
    check_detected(&records[4], None, Some("proxy"));
    assert!(
        message(&records[4]).contains("closed the connection"),
        "{}",
        records[4]
    );
    check_detected(&records[5], None, Some("refused"));
    // With the scheme given there is nothing to detect.
    assert_eq!(records[6]["detected"], false);
    assert_eq!(records[6]["proxy"], socks4.peer.url("socks4"));
    assert_eq!(records[6]["status"], 200);
    check_detected(&records[7], Some(rejecting.peer.url("socks4")), None);

    // HTTP answers the first attempt; SOCKS5 the second; SOCKS4 the third (plus the
    // schemed run). The SSH port and the closer were tried three times, each once per
    // protocol; the dead port was connected to once.
    assert_eq!(http.connections(), 1, "an HTTP proxy costs one connection");
    assert_eq!(socks5.connections(), 2);
    assert_eq!(socks4.connections(), 3 + 1);
    // One that answers the HTTP request with a SOCKS4 rejection is not greeted in SOCKS5.
    assert_eq!(rejecting.connections(), 2);
    assert_eq!(ssh.accepted(), 3);
    assert_eq!(closer.connections(), 3);
}

#[test]
fn a_silent_bare_proxy_is_one_timeout_within_the_budget() {
    let silent = Server::start(Behaviour::Silent);
    let url = "http://127.0.0.1:9/";
    let started = Instant::now();
    let out = headprobe()
        .args(["--format", "json", "--proxy-check", url])
        .args(["--connect-timeout", "500ms", "-t", "1s"])
        .arg(silent.target())
        .run();
    let took = started.elapsed();
    let r = out.only_json();
    check_detected(&r, None, Some("timeout"));
    assert!(
        message(&r).contains("answered none of HTTP, SOCKS5 and SOCKS4"),
        "{r}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(ms(&r["timing_ms"]["total"]) < 1500.0, "{r}");
    // Each protocol had a share of the budget: silence to HTTP no longer starves SOCKS.
    assert_eq!(silent.accepted(), 3, "every protocol was tried");
}

#[test]
fn bare_tokens_with_credentials_use_them_in_the_protocol_found() {
    let origin = origin_server();
    let http = HttpProxy {
        auth: Some(basic("pool", POOL_PASSWORD)),
        ..HttpProxy::default()
    }
    .start();
    let socks = Socks5 {
        auth: Some(("pool".into(), POOL_PASSWORD.into())),
        ..Socks5::default()
    }
    .start();
    let socks4 = Socks4::default().start();
    let url = format!("http://127.0.0.1:{}/", origin.port());
    let tokens: Vec<String> = [&http, &socks, &socks4]
        .iter()
        .map(|p| format!("pool:{POOL_PASSWORD}@{}", p.addr()))
        .collect();
    for format in ["json", "text", "status"] {
        let out = headprobe()
            .args(["--format", format, "--ordered", "--proxy-check", &url])
            .args(&tokens)
            .run();
        out.expect_code(0);
        assert!(
            !out.out().contains(POOL_PASSWORD) && !out.err().contains(POOL_PASSWORD),
            "{out:?}"
        );
        if format == "json" {
            let records = out.json();
            check_detected(&records[0], Some(http.url("http")), None);
            check_detected(&records[1], Some(socks.url("socks5")), None);
            check_detected(&records[2], Some(socks4.url("socks4")), None);
            assert_eq!(records[0]["target"], format!("pool:***@{}", http.addr()));
        }
    }
    // SOCKS4 got the user name as its user id (each run: HTTP and SOCKS5 first).
    let mut four = socks4.seen();
    while four.bytes.first() != Some(&4) {
        four = socks4.seen();
    }
    assert_eq!(
        four.bytes,
        socks4_request(origin.port(), [127, 0, 0, 1], "pool", None)
    );
}

#[test]
fn an_https_check_url_proves_the_origin_and_expect_header_drops_posers() {
    // A web server posing as a proxy: it answers every request itself.
    let poser = Server::start(Behaviour::Respond(response(
        "HTTP/1.0 200 OK",
        &["Server: poser", "Content-Length: 0"],
    )));
    let origin = origin_server();
    let real = HttpProxy::default().start();
    let tls = tls_origin();
    let ca = cacert();
    let plain = format!("http://127.0.0.1:{}/", origin.port());
    let run = |url: &str, extra: &[&str]| {
        headprobe()
            .args([
                "--format",
                "json",
                "--ordered",
                "--cacert",
                &ca,
                "--proxy-check",
                url,
            ])
            .args(extra)
            .args([poser.target(), real.hostport()])
            .run()
            .json()
    };
    // Over http:// the poser looks like a working proxy...
    let records = run(&plain, &[]);
    assert_eq!(records[0]["ok"], true, "{}", records[0]);
    assert_eq!(records[0]["proxy"], format!("http://{}", poser.target()));
    // ... unless the origin's own header is required.
    let records = run(&plain, &["--expect-header", "X-Origin: ^yes$"]);
    assert_eq!(
        records[0]["error"]["kind"], "header_mismatch",
        "{}",
        records[0]
    );
    let m = message(&records[0]);
    assert!(
        m.contains("no X-Origin header") && m.contains("--expect-header"),
        "{m}"
    );
    assert_eq!(records[1]["ok"], true, "{}", records[1]);
    // Over https:// it cannot fake the origin's verified certificate.
    let records = run(&tls.https_url("127.0.0.1"), &[]);
    assert_eq!(records[0]["ok"], false, "{}", records[0]);
    assert_eq!(records[1]["ok"], true, "{}", records[1]);
    assert_eq!(records[1]["tls"]["verified"], true, "{}", records[1]);
    assert_eq!(records[1]["proxy"], real.url("http"));
}

/// The role of one proxy in the mixed pool, and what detection must find.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Http,
    HttpAuth,
    Socks5,
    Socks5Auth,
    Socks4,
    Socks4Refuses(u8),
    Poser,
    NotAProxy,
    Dead,
    Microsocks,
    Tinyproxy,
}

#[test]
fn a_mixed_pool_of_bare_tokens_is_detected_right() {
    let _ = rlimit::increase_nofile_limit(4096);
    let origin = origin_server();
    let url = format!("http://127.0.0.1:{}/pool", origin.port());
    let mut kinds = Vec::new();
    let mut add = |kind: Kind, n: usize| kinds.resize(kinds.len() + n, kind);
    add(Kind::Http, 20);
    add(Kind::HttpAuth, 5);
    add(Kind::Socks5, 20);
    add(Kind::Socks5Auth, 5);
    add(Kind::Socks4, 20);
    for code in [0x5b, 0x5c, 0x5d] {
        add(Kind::Socks4Refuses(code), 2);
    }
    add(Kind::Poser, 10);
    add(Kind::NotAProxy, 4);
    add(Kind::Dead, 10);
    let microsocks = microsocks_binary().map(|b| start_microsocks(&b, None));
    let tinyproxy = tinyproxy_binary().map(|b| start_tinyproxy(&b));
    if microsocks.is_some() {
        add(Kind::Microsocks, 1);
    } else {
        eprintln!("microsocks is not installed: the pool has no real SOCKS5 peer");
    }
    if tinyproxy.is_some() {
        add(Kind::Tinyproxy, 1);
    } else {
        eprintln!("tinyproxy is not installed: the pool has no real HTTP peer");
    }
    // A fixed interleaving.
    let n = kinds.len();
    let mut order: Vec<usize> = (0..n).map(|i| (i * 37) % n).collect();
    order.dedup();
    assert!(n >= 100 && order.len() == n);

    let mut keep_peers = Vec::new();
    let mut keep_servers = Vec::new();
    let mut keep_dead = Vec::new();
    let mut pool: Vec<(Kind, String, SocketAddr)> = Vec::new();
    for &i in &order {
        let kind = kinds[i];
        let addr = match kind {
            Kind::Http => HttpProxy::default().start(),
            Kind::HttpAuth => HttpProxy {
                auth: Some(basic("pool", POOL_PASSWORD)),
                ..HttpProxy::default()
            }
            .start(),
            Kind::Socks5 => Socks5::default().start(),
            Kind::Socks5Auth => Socks5 {
                auth: Some(("pool".into(), POOL_PASSWORD.into())),
                ..Socks5::default()
            }
            .start(),
            Kind::Socks4 => Socks4::default().start(),
            Kind::Socks4Refuses(code) => Socks4 {
                reply: code,
                ..Socks4::default()
            }
            .start(),
            Kind::Poser | Kind::NotAProxy | Kind::Dead | Kind::Microsocks | Kind::Tinyproxy => {
                let addr = match kind {
                    Kind::Poser => {
                        let s = Server::start(Behaviour::Respond(response(
                            "HTTP/1.0 200 OK",
                            &["Server: poser", "Content-Length: 0"],
                        )));
                        let a = s.addr();
                        keep_servers.push(s);
                        a
                    }
                    Kind::NotAProxy => {
                        let s =
                            Server::start(Behaviour::Banner(b"220 smtp.test ESMTP\r\n".to_vec()));
                        let a = s.addr();
                        keep_servers.push(s);
                        a
                    }
                    Kind::Dead => {
                        let d = dead();
                        let a = d.addr;
                        keep_dead.push(d);
                        a
                    }
                    Kind::Microsocks => microsocks.as_ref().unwrap().addr(),
                    _ => SocketAddr::from(([127, 0, 0, 1], tinyproxy.as_ref().unwrap().port)),
                };
                pool.push((kind, token_for(kind, addr), addr));
                continue;
            }
        };
        let a = addr.addr();
        keep_peers.push(addr);
        pool.push((kind, token_for(kind, a), a));
    }
    let list: String = pool.iter().map(|(_, t, _)| format!("{t}\n")).collect();
    let file = temp_file("mixed-pool.txt", list.as_bytes());

    let out = headprobe()
        .args(["--proxy-check", &url, "-f"])
        .arg(&file)
        .args([
            "-c",
            "256",
            "--connect-timeout",
            "2s",
            "-t",
            "4s",
            "--format",
            "json",
        ])
        .args(["--expect-header", "X-Origin: ^yes$", "--ordered"])
        .run();
    out.expect_code(1);
    assert!(
        !out.out().contains(POOL_PASSWORD) && !out.err().contains(POOL_PASSWORD),
        "a password was printed"
    );
    let records = out.json();
    assert_eq!(records.len(), pool.len(), "one record per proxy");
    for ((kind, token, addr), r) in pool.iter().zip(&records) {
        let shown = token.replace(POOL_PASSWORD, "***");
        assert_eq!(r["target"], shown, "{kind:?}: {r}");
        assert_eq!(r["addr"], addr.to_string(), "{kind:?}: {r}");
        let (scheme, error) = match kind {
            Kind::Http | Kind::HttpAuth | Kind::Tinyproxy => (Some("http"), None),
            Kind::Socks5 | Kind::Socks5Auth | Kind::Microsocks => (Some("socks5"), None),
            Kind::Socks4 => (Some("socks4"), None),
            Kind::Socks4Refuses(_) => (Some("socks4"), Some("proxy")),
            Kind::Poser => (Some("http"), Some("header_mismatch")),
            Kind::NotAProxy => (None, Some("proxy")),
            Kind::Dead => (None, Some("refused")),
        };
        let proxy = scheme.map(|s| format!("{s}://{addr}"));
        check_detected(r, proxy, error);
        if let Kind::Socks4Refuses(code) = kind {
            assert!(message(r).contains(&format!("0x{code:02x}")), "{r}");
        }
    }
}

/// The token a pool lists for a proxy of this kind: bare, credentials where needed.
fn token_for(kind: Kind, addr: SocketAddr) -> String {
    match kind {
        Kind::HttpAuth | Kind::Socks5Auth => format!("pool:{POOL_PASSWORD}@{addr}"),
        _ => addr.to_string(),
    }
}

/// A SOCKS5 peer that answers the greeting (no authentication), reads the CONNECT
/// request and then waits, as a proxy slow to reach the check URL does. To anything but
/// SOCKS5 it closes, as real ones do.
fn socks5_slow_upstream() -> Peer {
    Peer::start(Arc::new(|mut s: TcpStream, tx: &Sender<Seen>| {
        use std::io::{Read, Write};
        let mut seen = Seen::default();
        let mut greeting = [0u8; 2];
        let mut greeted = false;
        if s.read_exact(&mut greeting).is_ok() && greeting[0] == 5 {
            let mut methods = vec![0u8; usize::from(greeting[1])];
            greeted = s.read_exact(&mut methods).is_ok() && s.write_all(&[5, 0]).is_ok();
            seen.bytes = greeting.to_vec();
            seen.bytes.extend_from_slice(&methods);
        }
        let _ = tx.send(seen);
        if greeted {
            // No reply to CONNECT: wait until the client goes.
            close_and_drain_after_client(&mut s);
        }
    }))
}

/// A SOCKS4 peer that reads the request and then waits (its reply would come once it
/// has reached the target); to anything but SOCKS4 it closes.
fn socks4_slow_upstream() -> Peer {
    Peer::start(Arc::new(|mut s: TcpStream, tx: &Sender<Seen>| {
        use std::io::Read;
        let mut version = [0u8; 1];
        let socks4 = s.read_exact(&mut version).is_ok() && version[0] == 4;
        let _ = tx.send(Seen::default());
        if socks4 {
            close_and_drain_after_client(&mut s);
        }
    }))
}

/// Reads until the client closes (or the peer's patience runs out), answering nothing.
fn close_and_drain_after_client(s: &mut TcpStream) {
    use std::io::Read;
    let _ = s.set_read_timeout(Some(PEER_PATIENCE));
    let mut buf = [0u8; 1024];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

/// Issue 32: once a protocol has answered, it is decided: a SOCKS5 proxy that answered
/// the greeting and is slow to reach the check URL is a SOCKS5 proxy that timed out
/// (its message says the greeting was answered), and a SOCKS4 or SOCKS5 proxy whose
/// tunnel is open but whose origin is slow times out on --timeout like any probe. A
/// SOCKS4 proxy silent to its request is a timeout, never "speaks none".
#[test]
fn a_proxy_that_answered_is_decided_even_when_the_check_url_is_slow() {
    let slow_origin = Server::start(Behaviour::Silent);
    let socks5_greeted = socks5_slow_upstream();
    let socks4_silent = socks4_slow_upstream();
    let socks5_open = Socks5::default().start();
    let socks4_open = Socks4::default().start();
    let url = format!("http://127.0.0.1:{}/slow", slow_origin.port());
    let tokens = [
        socks5_greeted.hostport(),
        socks4_silent.hostport(),
        socks5_open.hostport(),
        socks4_open.hostport(),
    ];
    let out = headprobe()
        .args(["--format", "json", "--ordered", "--proxy-check", &url])
        .args(["--connect-timeout", "1s", "-t", "3s"])
        .args(&tokens)
        .run();
    out.expect_code(1);
    let records = out.json();
    assert_eq!(records.len(), tokens.len(), "{out:?}");

    check_detected(
        &records[0],
        Some(socks5_greeted.url("socks5")),
        Some("timeout"),
    );
    let m = message(&records[0]);
    assert!(
        m.contains("answered a SOCKS5 greeting") && m.contains("did not open the tunnel"),
        "{m}"
    );

    check_detected(&records[1], None, Some("timeout"));
    let m = message(&records[1]);
    assert!(!m.contains("speaks none"), "{m}");
    assert!(m.contains("to a SOCKS4 request it stayed silent"), "{m}");

    for (r, proxy) in [
        (&records[2], socks5_open.url("socks5")),
        (&records[3], socks4_open.url("socks4")),
    ] {
        check_detected(r, Some(proxy), Some("timeout"));
        let m = message(r);
        assert!(m.contains("no response within 3s (--timeout)"), "{m}");
    }
}
