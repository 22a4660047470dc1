//! Addresses (issue: addresses): `--all-addresses` (every address of a name, one record
//! each), `--interface` (the source address or device) and `--connect-to` (a name's head
//! from a chosen server), against loopback backends on 127.0.0.2, 127.0.0.3, ... (all
//! this machine's), each answering with the address it serves on and the peer it saw.
//!
//! Names never reach the system resolver: `--resolve`, `--connect-to` to an address, or
//! `--resolver` pointing at the test DNS server.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use futures_rustls::rustls;
use serde_json::Value;

use crate::util::dns::DnsServer;
use crate::util::peer::{tls_handler, Peer};
use crate::util::pki::{cacert, pki, server_config};
use crate::util::*;

/// What a backend saw of one connection.
#[derive(Debug, Clone)]
struct Seen {
    peer: SocketAddr,
    request: String,
}

/// A loopback HTTP backend that answers every request with `X-Served-By: IP:PORT` (its
/// own address) and `X-Peer: IP:PORT` (the client's), and counts its connections.
struct Backend {
    addr: SocketAddr,
    seen: Mutex<Receiver<Seen>>,
    accepted: Arc<AtomicUsize>,
}

impl Backend {
    fn on(addr: &str) -> std::io::Result<Backend> {
        Backend::answering(addr, |_| Vec::new())
    }

    /// A backend whose answer to a request for `path` is `extra(path)` header lines
    /// (ending in CRLF) after the status line `302 Found` when non-empty, `200 OK` when
    /// empty.
    fn answering(
        addr: &str,
        extra: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static,
    ) -> std::io::Result<Backend> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel::<Seen>();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let extra = Arc::new(extra);
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut stream) = conn else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let tx: Sender<Seen> = tx.clone();
                let extra = Arc::clone(&extra);
                thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(WAIT));
                    let head = read_head(&mut stream);
                    let request = String::from_utf8_lossy(&head).into_owned();
                    let path = request.split(' ').nth(1).unwrap_or("/").to_string();
                    let peer = stream.peer_addr().expect("peer address");
                    let more = extra(&path);
                    let status = if more.is_empty() {
                        "200 OK"
                    } else {
                        "302 Found"
                    };
                    let mut answer =
                        format!("HTTP/1.0 {status}\r\nX-Served-By: {addr}\r\nX-Peer: {peer}\r\n")
                            .into_bytes();
                    answer.extend_from_slice(&more);
                    answer.extend_from_slice(b"Content-Length: 0\r\n\r\n");
                    let _ = stream.write_all(&answer);
                    close_and_drain(&mut stream);
                    let _ = tx.send(Seen { peer, request });
                });
            }
        });
        Ok(Backend {
            addr,
            seen: Mutex::new(rx),
            accepted,
        })
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    #[track_caller]
    fn seen(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .recv_timeout(WAIT)
            .expect("the backend saw no connection in time")
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Backends on each of `ips`, all on one port (the first's, of the kernel's choosing).
/// `None` when this machine cannot bind them (no 127.0.0.0/8 beyond 127.0.0.1).
fn backends(ips: &[&str]) -> Option<Vec<Backend>> {
    for _ in 0..20 {
        let first = Backend::on(&format!("{}:0", ips[0])).ok()?;
        let port = first.port();
        let rest: Result<Vec<Backend>, _> = ips[1..]
            .iter()
            .map(|ip| Backend::on(&format!("{ip}:{port}")))
            .collect();
        if let Ok(rest) = rest {
            let mut all = vec![first];
            all.extend(rest);
            return Some(all);
        }
    }
    None
}

/// A header's value in a JSON record.
fn header<'a>(r: &'a Value, name: &str) -> Option<&'a str> {
    r["headers"].as_array()?.iter().find_map(|pair| {
        (pair[0].as_str()?.eq_ignore_ascii_case(name)).then(|| pair[1].as_str())?
    })
}

macro_rules! need {
    ($what:expr) => {
        match $what {
            Some(v) => v,
            None => {
                eprintln!("skipped: this machine has no loopback addresses beyond 127.0.0.1");
                return;
            }
        }
    };
}

// ---------------------------------------------------------------------------------------
// --connect-to
// ---------------------------------------------------------------------------------------

#[test]
fn connect_to_sends_the_original_host_to_the_chosen_server() {
    let b = need!(Backend::on("127.0.0.2:0").ok());
    let rule = format!("www.example.test:80:127.0.0.2:{}", b.port());
    let (out, r) = json_run(&["--connect-to", &rule, "http://www.example.test/health"]);
    out.expect_code(0);
    assert_eq!(r["addr"], b.addr.to_string(), "{r}");
    assert_eq!(header(&r, "X-Served-By"), Some(b.addr.to_string().as_str()));
    let seen = b.seen();
    assert!(
        seen.request.starts_with("GET /health HTTP/1.0\r\n")
            && seen.request.contains("\r\nHost: www.example.test\r\n"),
        "{}",
        seen.request
    );
    // No --resolve, no resolver: the name was never looked up (a lookup of a made-up
    // name would fail, and dns would be timed).
    assert_eq!(r["timing_ms"]["dns"], Value::Null, "{r}");
}

#[test]
fn connect_to_with_empty_host1_and_port1_matches_every_target() {
    let b = need!(Backend::on("127.0.0.2:0").ok());
    let rule = format!("::127.0.0.2:{}", b.port());
    let out = headprobe()
        .args(["--format", "json", "--connect-to", &rule])
        .args(["http://a.example.test:8080/", "b.example.test"])
        .run();
    out.expect_code(0);
    let mut hosts: Vec<String> = (0..2)
        .map(|_| {
            let req = b.seen().request;
            req.lines()
                .find_map(|l| l.strip_prefix("Host: ").map(str::to_string))
                .unwrap()
        })
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["a.example.test:8080", "b.example.test"]);
    for r in out.json() {
        assert_eq!(r["addr"], b.addr.to_string(), "{r}");
    }
}

#[test]
fn connect_to_keeps_the_original_port_when_port2_is_empty_and_first_match_wins() {
    let b = need!(Backend::on("127.0.0.2:0").ok());
    let port = b.port();
    let refused = refused_addr();
    let rules = [
        "--connect-to".to_string(),
        // Not this port: no match.
        format!("site.test:{}:127.0.0.9:1", port.wrapping_add(1).max(1)),
        "--connect-to".to_string(),
        // HOST2 given, PORT2 empty: the target's own port.
        format!("site.test::127.0.0.2:"),
        "--connect-to".to_string(),
        // Matches too, but comes later.
        format!("site.test:{port}:{refused}"),
    ];
    let mut args: Vec<String> = vec!["--format".into(), "json".into()];
    args.extend(rules);
    args.push(format!("site.test:{port}"));
    let out = headprobe().args(&args).run();
    out.expect_code(0);
    assert_eq!(out.only_json()["addr"], b.addr.to_string());
}

#[test]
fn connect_to_over_https_keeps_sni_and_verification_on_host1() {
    let pki = pki();
    let peer = need!(Peer::start_on(
        "127.0.0.5:0",
        tls_handler(
            server_config(&pki.good, rustls::ALL_VERSIONS),
            response("HTTP/1.0 200 OK", &["Content-Length: 0"]),
        ),
    )
    .ok());
    let rule = format!("probe.test:443:127.0.0.5:{}", peer.port());
    let ca = cacert();
    let (out, r) = json_run(&[
        "--cacert",
        &ca,
        "--connect-to",
        &rule,
        "https://probe.test/",
    ]);
    out.expect_code(0);
    assert_eq!(r["tls"]["verified"], true, "{r}");
    assert_eq!(r["addr"], peer.addr().to_string(), "{r}");
    let seen = peer.seen();
    assert_eq!(seen.sni.as_deref(), Some("probe.test"));
    assert!(
        seen.text().contains("\r\nHost: probe.test\r\n"),
        "{}",
        seen.text()
    );

    // A name the certificate does not carry fails verification, though the server is
    // the same: the check is HOST1's, not HOST2's.
    let rule = format!("other.test:443:127.0.0.5:{}", peer.port());
    let (out, r) = json_run(&[
        "--cacert",
        &ca,
        "--connect-to",
        &rule,
        "https://other.test/",
    ]);
    out.expect_code(1);
    assert_eq!(r["error"]["kind"], "tls", "{r}");
    assert_eq!(peer.seen().sni.as_deref(), Some("other.test"));
}

#[test]
fn connect_to_applies_to_each_redirect_hop() {
    let second = need!(Backend::on("127.0.0.3:0").ok());
    let location = format!("Location: http://next.test:{}/landed\r\n", second.port());
    let first = need!(Backend::answering("127.0.0.2:0", move |path| {
        if path == "/" {
            location.clone().into_bytes()
        } else {
            Vec::new()
        }
    })
    .ok());
    let out = headprobe()
        .args(["--format", "json", "-L"])
        .args([
            "--connect-to",
            &format!("start.test:80:127.0.0.2:{}", first.port()),
        ])
        .args(["--connect-to", &format!("next.test::127.0.0.3:")])
        .arg("http://start.test/")
        .run();
    out.expect_code(0);
    let r = out.only_json();
    assert_eq!(r["redirects"][0]["status"], 302, "{r}");
    assert_eq!(r["addr"], second.addr.to_string(), "{r}");
    assert_eq!(
        r["final_url"],
        format!("http://next.test:{}/landed", second.port())
    );
    assert!(first.seen().request.contains("Host: start.test\r\n"));
    let hop = second.seen().request;
    assert!(
        hop.starts_with("GET /landed ")
            && hop.contains(&format!("Host: next.test:{}\r\n", second.port())),
        "{hop}"
    );
}

#[test]
fn connect_to_a_name_uses_resolve_for_host2_as_curl_does() {
    let b = need!(Backend::on("127.0.0.2:0").ok());
    let port = b.port();
    let out = headprobe()
        .args(["--format", "json"])
        .args(["--connect-to", &format!("front.test:80:origin.test:{port}")])
        // HOST1's pin is not used: the connection goes to HOST2.
        .args([
            "--resolve",
            &format!("front.test:80:{}", refused_addr().ip()),
        ])
        .args(["--resolve", &format!("origin.test:{port}:127.0.0.2")])
        .arg("front.test")
        .run();
    out.expect_code(0);
    let r = out.only_json();
    assert_eq!(r["addr"], b.addr.to_string(), "{r}");
    assert_eq!(r["resolved"], serde_json::json!(["127.0.0.2"]), "{r}");
    assert!(b.seen().request.contains("Host: front.test\r\n"));
}

#[test]
fn bad_connect_to_rules_are_usage_errors() {
    for rule in [
        "a:80:b",
        "a:x:b:80",
        "a:80:b:70000",
        "a:80:[::1:80",
        "a:80:b:80:c",
    ] {
        let out = headprobe()
            .args(["--connect-to", rule, "127.0.0.1:1"])
            .run();
        out.expect_code(2);
        assert!(out.err().contains("--connect-to"), "{rule}: {}", out.err());
    }
}

// ---------------------------------------------------------------------------------------
// --interface
// ---------------------------------------------------------------------------------------

#[test]
fn interface_address_is_the_source_the_server_sees() {
    let b = need!(Backend::on("127.0.0.2:0").ok());
    let (out, r) = json_run(&["--interface", "127.0.0.9", &b.addr.to_string()]);
    out.expect_code(0);
    assert_eq!(b.seen().peer.ip(), "127.0.0.9".parse::<IpAddr>().unwrap());
    assert!(
        header(&r, "X-Peer").unwrap().starts_with("127.0.0.9:"),
        "{r}"
    );
}

#[test]
fn interface_by_name_binds_to_the_device() {
    let b = need!(Backend::on("127.0.0.2:0").ok());
    let (out, _) = json_run(&["--interface", "lo", &b.addr.to_string()]);
    out.expect_code(0);
    b.seen();
}

#[test]
fn interface_that_is_not_this_machines_is_a_usage_error_before_any_connection() {
    let b = need!(Backend::on("127.0.0.2:0").ok());
    // TEST-NET-3 and an interface name no machine has.
    for (given, words) in [
        (
            "203.0.113.77",
            "203.0.113.77 is not an address of this machine",
        ),
        ("nosuchif0", "no network interface named 'nosuchif0'"),
    ] {
        let out = headprobe()
            .args(["--interface", given, &b.addr.to_string()])
            .run();
        out.expect_code(2);
        assert!(out.err().contains("--interface"), "{}", out.err());
        assert!(out.err().contains(words), "{}", out.err());
        assert_eq!(out.out(), "");
    }
    assert_eq!(b.accepted(), 0);
}

#[test]
fn interface_of_the_other_family_is_never_sent() {
    let b = need!(Backend::on("127.0.0.2:0").ok());
    // An IPv6 target from an IPv4 source: nothing is sent.
    let r = failing(&["--interface", "127.0.0.9", "[::1]:9"], "unreachable");
    let m = message(&r);
    assert!(
        m.contains("[::1]:9 is IPv6, and --interface 127.0.0.9 is IPv4")
            && m.contains("nothing was sent"),
        "{m}"
    );
    // A name with both: only the IPv4 address is tried.
    let port = b.port();
    let (out, r) = json_run(&[
        "--interface",
        "127.0.0.9",
        "--resolve",
        &format!("dual.test:{port}:::1,127.0.0.2"),
        &format!("dual.test:{port}"),
    ]);
    out.expect_code(0);
    assert_eq!(r["addr"], b.addr.to_string(), "{r}");
}

#[test]
fn interface_address_is_where_the_resolver_asks_from() {
    let b = need!(Backend::on("127.0.0.2:0").ok());
    let dns = DnsServer::zone(&[("src.test", &["127.0.0.2"])]);
    let (out, r) = json_run(&[
        "--interface",
        "127.0.0.9",
        "--resolver",
        &dns.arg(),
        &format!("src.test:{}", b.port()),
    ]);
    out.expect_code(0);
    assert_eq!(r["addr"], b.addr.to_string(), "{r}");
    let asked_from: Vec<IpAddr> = dns.senders().iter().map(|a| a.ip()).collect();
    assert!(
        !asked_from.is_empty() && asked_from.iter().all(|ip| ip.to_string() == "127.0.0.9"),
        "{asked_from:?}"
    );
}

#[test]
fn interface_applies_to_the_connection_to_a_proxy() {
    let b = need!(Backend::on("127.0.0.2:0").ok());
    // The backend, asked in absolute form, is its own HTTP proxy here: what matters is
    // who connected to it.
    let out = headprobe()
        .args(["--format", "json", "--interface", "127.0.0.9"])
        .args(["--proxy", &format!("http://{}", b.addr)])
        .arg("http://site.test/")
        .run();
    out.expect_code(0);
    let seen = b.seen();
    assert_eq!(seen.peer.ip().to_string(), "127.0.0.9");
    assert!(
        seen.request.starts_with("GET http://site.test/ HTTP/1.0"),
        "{}",
        seen.request
    );
}
