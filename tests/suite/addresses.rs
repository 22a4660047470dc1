//! Addresses (issue: addresses): `--all-addresses` (every address of a name, one record
//! each), `--interface` (the source address or device) and `--connect-to` (a name's head
//! from a chosen server), against loopback backends on 127.0.0.2, 127.0.0.3, ... (all
//! this machine's), each answering with the address it serves on and the peer it saw.
//!
//! Names never reach the system resolver: `--resolve`, `--connect-to` to an address, or
//! `--resolver` pointing at the test DNS server.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use futures_rustls::rustls;
use serde_json::Value;

use crate::util::dns::DnsServer;
use crate::util::peer::{tls_handler, Peer};
use crate::util::pki::{cacert, pki, server_config};
use crate::util::*;

/// What a backend adds to its answer for a request path (header lines, CRLF each);
/// anything makes the answer a `302 Found`.
type Extra = Arc<dyn Fn(&str) -> Vec<u8> + Send + Sync>;

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

/// A gate a backend's connections wait at, after reading the request, until it opens.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    /// Waits for the gate (at most `WAIT`, so that no thread outlives a failed test).
    fn pass(&self) {
        let open = self.open.lock().unwrap();
        let _ = self.opened.wait_timeout_while(open, WAIT, |open| !*open);
    }
}

impl Backend {
    fn on(addr: &str) -> std::io::Result<Backend> {
        Backend::answering(addr, |_| Vec::new())
    }

    /// A backend whose connections wait at `gate` before answering.
    fn gated(addr: &str, gate: Arc<Gate>) -> std::io::Result<Backend> {
        Backend::start(addr, Arc::new(|_: &str| Vec::new()), Some(gate), None)
    }

    /// Like `gated`, and says on `arrived` when a request has been read.
    fn gated_reporting(
        addr: &str,
        gate: Arc<Gate>,
        arrived: Sender<SocketAddr>,
    ) -> std::io::Result<Backend> {
        Backend::start(
            addr,
            Arc::new(|_: &str| Vec::new()),
            Some(gate),
            Some(arrived),
        )
    }

    /// A backend whose answer to a request for `path` is `extra(path)` header lines
    /// (ending in CRLF) after the status line `302 Found` when non-empty, `200 OK` when
    /// empty.
    fn answering(
        addr: &str,
        extra: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static,
    ) -> std::io::Result<Backend> {
        Backend::start(addr, Arc::new(extra), None, None)
    }

    fn start(
        addr: &str,
        extra: Extra,
        gate: Option<Arc<Gate>>,
        arrived: Option<Sender<SocketAddr>>,
    ) -> std::io::Result<Backend> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel::<Seen>();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut stream) = conn else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let tx: Sender<Seen> = tx.clone();
                let extra = Arc::clone(&extra);
                let gate = gate.clone();
                let arrived = arrived.clone();
                thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(WAIT));
                    let head = read_head(&mut stream);
                    if let Some(arrived) = arrived {
                        let _ = arrived.send(addr);
                    }
                    if let Some(gate) = gate {
                        gate.pass();
                    }
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
    same_port(ips, |addr, _| Backend::on(addr))
}

/// Backends made by `make(ADDR:PORT, i)` on each of `ips`, all on one port.
fn same_port(
    ips: &[&str],
    make: impl Fn(&str, usize) -> std::io::Result<Backend>,
) -> Option<Vec<Backend>> {
    for _ in 0..20 {
        let first = make(&format!("{}:0", ips[0]), 0).ok()?;
        let port = first.port();
        let rest: Result<Vec<Backend>, _> = (ips[1..].iter().enumerate())
            .map(|(i, ip)| make(&format!("{ip}:{port}"), i + 1))
            .collect();
        if let Ok(rest) = rest {
            let mut all = vec![first];
            all.extend(rest);
            return Some(all);
        }
    }
    None
}

/// `--resolve NAME:PORT:ADDRS`.
fn resolve(name: &str, port: u16, addrs: &str) -> [String; 2] {
    ["--resolve".to_string(), format!("{name}:{port}:{addrs}")]
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
        "site.test::127.0.0.2:".to_string(),
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
        .args(["--connect-to", "next.test::127.0.0.3:"])
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
        assert!(
            out.err()
                .contains(&format!("invalid --connect-to: '{rule}': ")),
            "{rule}: {}",
            out.err()
        );
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

// ---------------------------------------------------------------------------------------
// --all-addresses
// ---------------------------------------------------------------------------------------

/// Backends on 127.0.0.2 and 127.0.0.3 (one port), nothing on 127.0.0.4.
fn two_live_one_dead() -> Option<(Vec<Backend>, u16)> {
    let live = backends(&["127.0.0.2", "127.0.0.3"])?;
    let port = live[0].port();
    Some((live, port))
}

#[test]
fn all_addresses_gives_each_address_a_record_and_the_dead_one_fails_alone() {
    let (live, port) = need!(two_live_one_dead());
    let out = headprobe()
        .args(["--format", "json", "--all-addresses"])
        .args(resolve("multi.test", port, "127.0.0.2,127.0.0.3,127.0.0.4"))
        .arg(format!("multi.test:{port}"))
        .run();
    out.expect_code(1);
    let mut records = out.json();
    records.sort_by_key(|r| r["address"].as_str().unwrap().to_string());
    assert_eq!(records.len(), 3, "{}", out.out());
    for (r, ip) in records.iter().zip(["127.0.0.2", "127.0.0.3", "127.0.0.4"]) {
        let address = format!("{ip}:{port}");
        assert_eq!(r["index"], 0, "{r}");
        assert_eq!(r["address"], address, "{r}");
        assert_eq!(r["addr"], address, "{r}");
        assert_eq!(r["of_addresses"], 3, "{r}");
        assert_eq!(
            r["resolved"],
            serde_json::json!(["127.0.0.2", "127.0.0.3", "127.0.0.4"])
        );
        if ip == "127.0.0.4" {
            assert_eq!(r["ok"], false, "{r}");
            assert_eq!(r["error"]["kind"], "refused", "{r}");
            assert!(message(r).contains(&address), "{r}");
        } else {
            assert_eq!(r["ok"], true, "{r}");
            // The answer came from the address the record names.
            assert_eq!(header(r, "X-Served-By"), Some(address.as_str()), "{r}");
        }
    }
    for b in &live {
        b.seen();
        assert_eq!(b.accepted(), 1);
    }
}

#[test]
fn all_addresses_in_text_and_status_is_a_block_or_line_per_address() {
    let (_live, port) = need!(two_live_one_dead());
    let target = format!("multi.test:{port}");
    let run = |format: &str| {
        headprobe()
            .args(["--format", format, "--all-addresses"])
            .args(resolve("multi.test", port, "127.0.0.2,127.0.0.3,127.0.0.4"))
            .arg(&target)
            .run()
    };
    let text = run("text");
    text.expect_code(1);
    for ip in ["127.0.0.2", "127.0.0.3"] {
        let line = format!("{target}@{ip}:{port} header > X-Served-By: {ip}:{port}");
        assert!(text.lines().contains(&line), "{line}\n{}", text.out());
        let status = format!("{target}@{ip}:{port} header > HTTP/1.0 200 OK");
        assert!(text.lines().contains(&status), "{}", text.out());
    }
    let dead = format!("{target}@127.0.0.4:{port} error > refused: ");
    assert_eq!(
        text.lines().iter().filter(|l| l.starts_with(&dead)).count(),
        1,
        "{}",
        text.out()
    );

    let status = run("status");
    status.expect_code(1);
    let mut rows = status.status_rows();
    rows.sort_by(|a, b| a[3].cmp(&b[3]));
    let summary: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[3].clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (target.clone(), "200".into(), format!("127.0.0.2:{port}")),
            (target.clone(), "200".into(), format!("127.0.0.3:{port}")),
            (
                target.clone(),
                "refused".into(),
                format!("127.0.0.4:{port}")
            ),
        ]
    );
}

#[test]
fn all_addresses_in_prometheus_labels_each_address_and_promtool_accepts_it() {
    let (_live, port) = need!(two_live_one_dead());
    let target = format!("multi.test:{port}");
    let out = headprobe()
        .args(["--format", "prometheus", "--all-addresses"])
        .args(resolve("multi.test", port, "127.0.0.2,127.0.0.3,127.0.0.4"))
        // Listed twice: the second occurrence is a duplicate, left out of the samples.
        .args([&target, &target])
        .run();
    out.expect_code(1);
    let text = out.out();
    for (ip, ok) in [("127.0.0.2", 1), ("127.0.0.3", 1), ("127.0.0.4", 0)] {
        let sample = format!("probe_success{{target=\"{target}\",address=\"{ip}:{port}\"}} {ok}");
        assert_eq!(
            text.lines().filter(|l| *l == sample).count(),
            1,
            "{sample}\n{text}"
        );
    }
    assert!(
        text.contains(&format!(
            "headprobe_probe_error{{target=\"{target}\",address=\"127.0.0.4:{port}\",kind=\"refused\"}} 1"
        )),
        "{text}"
    );
    assert!(text.contains("headprobe_duplicate_targets 3"), "{text}");
    let Some(promtool) = tool("/usr/bin/promtool", "prometheus") else {
        return;
    };
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = child.wait_with_output().expect("promtool");
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[test]
fn an_ip_literal_is_one_address() {
    let b = need!(Backend::on("127.0.0.2:0").ok());
    let target = b.addr.to_string();
    let (out, r) = json_run(&["--all-addresses", &target]);
    out.expect_code(0);
    assert_eq!(r["of_addresses"], 1, "{r}");
    assert_eq!(r["address"], target, "{r}");
    let text = headprobe().args(["--all-addresses", &target]).run();
    assert!(
        text.lines()
            .contains(&format!("{target} header > HTTP/1.0 200 OK")),
        "{}",
        text.out()
    );
    // Without the option the fields are absent, as before.
    let (_, r) = json_run(&[&target]);
    assert!(
        r.get("of_addresses").is_none() && r.get("address").is_none(),
        "{r}"
    );
}

#[test]
fn all_addresses_ordered_writes_each_name_s_addresses_in_order() {
    let gate = Arc::new(Gate::default());
    let held = Arc::clone(&gate);
    // 127.0.0.6 answers only once 127.0.0.7 has answered everything.
    let b = need!(same_port(
        &["127.0.0.6", "127.0.0.7"],
        move |addr, i| match i {
            0 => Backend::gated(addr, Arc::clone(&held)),
            _ => Backend::on(addr),
        }
    ));
    let port = b[0].port();
    let mut running = headprobe()
        .args([
            "--format",
            "status",
            "--all-addresses",
            "--ordered",
            "-c",
            "2",
        ])
        .args(resolve("first.test", port, "127.0.0.6,127.0.0.7,127.0.0.4"))
        .args(resolve("second.test", port, "127.0.0.7"))
        .args([format!("first.test:{port}"), format!("second.test:{port}")])
        .spawn();
    b[1].seen();
    b[1].seen();
    assert_eq!(
        running.next_line_within(Duration::from_millis(200)),
        None,
        "nothing may be written before first.test's first address is done"
    );
    gate.open();
    let out = running.finish();
    out.expect_code(1);
    let rows: Vec<(String, String, String)> = out
        .status_rows()
        .iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[3].clone()))
        .collect();
    let first = format!("first.test:{port}");
    let second = format!("second.test:{port}");
    assert_eq!(
        rows,
        [
            (first.clone(), "200".into(), format!("127.0.0.6:{port}")),
            (first.clone(), "200".into(), format!("127.0.0.7:{port}")),
            (first, "refused".into(), format!("127.0.0.4:{port}")),
            (second, "200".into(), format!("127.0.0.7:{port}")),
        ]
    );
}

#[test]
fn all_addresses_resume_probes_only_the_addresses_without_a_record() {
    let gate = Arc::new(Gate::default());
    let held = Arc::clone(&gate);
    // 127.0.0.3 holds its answer until after the run is interrupted.
    let b = need!(same_port(
        &["127.0.0.2", "127.0.0.3"],
        move |addr, i| match i {
            0 => Backend::on(addr),
            _ => Backend::gated(addr, Arc::clone(&held)),
        }
    ));
    let port = b[0].port();
    let args = |extra: &[String]| {
        let mut all: Vec<String> = ["--format", "json", "--all-addresses"]
            .map(String::from)
            .to_vec();
        all.extend(resolve("multi.test", port, "127.0.0.2,127.0.0.3,127.0.0.4"));
        all.extend(resolve("one.test", port, "127.0.0.2"));
        all.extend(extra.iter().cloned());
        all.push(format!("multi.test:{port}"));
        all.push(format!("one.test:{port}"));
        all
    };
    let mut running = headprobe().args(args(&[])).spawn();
    // multi.test at .2 and .4, and one.test, are done; multi.test at .3 waits.
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(running.next_line());
    }
    running.interrupt();
    let out = running.finish();
    assert_eq!(out.code, Some(130), "{out:?}");
    let records = out.json();
    assert_eq!(records.len(), 4, "{}", out.out());
    let cancelled: Vec<&Value> = records
        .iter()
        .filter(|r| r["error"]["kind"] == "cancelled")
        .collect();
    assert_eq!(cancelled.len(), 1, "{}", out.out());
    assert_eq!(cancelled[0]["address"], format!("127.0.0.3:{port}"));
    let file = temp_file("resume-addresses.jsonl", out.out().as_bytes());
    gate.open();
    let before = (b[0].accepted(), b[1].accepted());

    let again = headprobe()
        .args(args(&["--resume".into(), file.to_str().unwrap().into()]))
        .run();
    again.expect_code(0);
    let r = again.only_json();
    assert_eq!(r["index"], 0, "{r}");
    assert_eq!(r["address"], format!("127.0.0.3:{port}"), "{r}");
    assert_eq!(r["of_addresses"], 3, "{r}");
    assert_eq!(
        header(&r, "X-Served-By"),
        Some(format!("127.0.0.3:{port}").as_str())
    );
    assert_eq!(b[0].accepted(), before.0, "127.0.0.2 was probed again");
    assert_eq!(b[1].accepted(), before.1 + 1);
}

#[test]
fn all_addresses_of_a_name_from_the_dns_server() {
    let b = need!(backends(&["127.0.0.2", "127.0.0.3"]));
    let port = b[0].port();
    let v6 = Backend::on(&format!("[::1]:{port}")).ok();
    let dns = DnsServer::zone(&[("pool.test", &["127.0.0.2", "127.0.0.3", "::1"])]);
    let out = headprobe()
        .args([
            "--format",
            "json",
            "--all-addresses",
            "--resolver",
            &dns.arg(),
        ])
        .arg(format!("pool.test:{port}"))
        .run();
    let records = out.json();
    let mut addresses: Vec<String> = records
        .iter()
        .map(|r| r["address"].as_str().unwrap().to_string())
        .collect();
    addresses.sort();
    assert_eq!(
        addresses,
        [
            format!("127.0.0.2:{port}"),
            format!("127.0.0.3:{port}"),
            format!("[::1]:{port}")
        ],
        "{}",
        out.out()
    );
    for r in &records {
        assert_eq!(r["of_addresses"], 3, "{r}");
        if v6.is_some() || r["address"].as_str().unwrap().starts_with("127.") {
            assert_eq!(r["ok"], true, "{r}");
            assert_eq!(header(r, "X-Served-By"), r["address"].as_str(), "{r}");
        }
    }
    if v6.is_some() {
        out.expect_code(0);
    }

    // -4: the IPv4 addresses only.
    let out = headprobe()
        .args([
            "--format",
            "json",
            "--all-addresses",
            "-4",
            "--resolver",
            &dns.arg(),
        ])
        .arg(format!("pool.test:{port}"))
        .run();
    out.expect_code(0);
    let records = out.json();
    assert_eq!(records.len(), 2, "{}", out.out());
    assert!(records.iter().all(|r| r["of_addresses"] == 2));
}

#[test]
fn all_addresses_follows_each_address_s_redirects_on_that_address() {
    let b = need!(same_port(&["127.0.0.2", "127.0.0.3"], |addr, _| {
        Backend::answering(addr, |path| match path {
            "/" => b"Location: /next\r\n".to_vec(),
            _ => Vec::new(),
        })
    }));
    let port = b[0].port();
    let out = headprobe()
        .args(["--format", "json", "--all-addresses", "-L"])
        .args(resolve("multi.test", port, "127.0.0.2,127.0.0.3"))
        .arg(format!("multi.test:{port}"))
        .run();
    out.expect_code(0);
    let records = out.json();
    assert_eq!(records.len(), 2, "{}", out.out());
    for r in &records {
        // The last hop was served where the chain started.
        assert_eq!(r["redirects"][0]["status"], 302, "{r}");
        assert_eq!(header(r, "X-Served-By"), r["address"].as_str(), "{r}");
        assert_eq!(r["addr"], r["address"], "{r}");
    }
    for backend in &b {
        // Each reports a connection when it ends, in whichever order they end.
        let mut paths: Vec<String> = (0..2)
            .map(|_| {
                backend
                    .seen()
                    .request
                    .split(' ')
                    .nth(1)
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        paths.sort();
        assert_eq!(paths, ["/", "/next"]);
    }
}

#[test]
fn all_addresses_with_one_connection_at_a_time_probes_every_address() {
    let (live, port) = need!(two_live_one_dead());
    let targets: Vec<String> = (0..6).map(|i| format!("n{i}.test:{port}")).collect();
    let mut cmd = headprobe().args(["--format", "status", "--all-addresses", "-c", "1"]);
    for i in 0..6 {
        cmd = cmd.args(resolve(
            &format!("n{i}.test"),
            port,
            "127.0.0.2,127.0.0.3,127.0.0.4",
        ));
    }
    let out = cmd.args(&targets).run();
    out.expect_code(1);
    assert_eq!(out.status_rows().len(), 18, "{}", out.out());
    assert_eq!(live[0].accepted() + live[1].accepted(), 12);
}

#[test]
fn all_addresses_with_a_proxy_is_a_usage_error() {
    let out = headprobe()
        .args([
            "--all-addresses",
            "--proxy",
            "http://127.0.0.1:1",
            "example.test",
        ])
        .run();
    out.expect_code(2);
    assert!(
        out.err().contains("invalid --all-addresses with a proxy"),
        "{}",
        out.err()
    );
}

#[test]
fn help_explains_each_option_with_an_example() {
    let out = headprobe().arg("--help").run();
    out.expect_code(0);
    let help = out.out().split_whitespace().collect::<Vec<_>>().join(" ");
    for (option, example) in [
        (
            "--all-addresses",
            "--all-addresses --format status www.example.com",
        ),
        ("--interface", "--interface 192.0.2.7, or --interface eth1"),
        (
            "--connect-to",
            "--connect-to www.example.com:443:origin1.example.net:443",
        ),
    ] {
        assert!(help.contains(option), "{option}\n{help}");
        assert!(help.contains(example), "{example}\n{help}");
    }
}

#[test]
fn all_addresses_retries_a_failed_lookup_with_retry() {
    use crate::util::dns::Action;
    let b = need!(backends(&["127.0.0.2", "127.0.0.3"]));
    let port = b[0].port();
    // SERVFAIL the first question of each type, then answer.
    let dns = DnsServer::scripted(
        &[("flaky.test", &["127.0.0.2", "127.0.0.3"])],
        |q| match q.nth {
            1 => Action::Rcode(2),
            _ => Action::Zone,
        },
    );
    let out = headprobe()
        .args([
            "--format",
            "json",
            "--all-addresses",
            "-4",
            "--resolver",
            &dns.arg(),
        ])
        .args(["--retry", "1", "--retry-delay", "10ms"])
        .arg(format!("flaky.test:{port}"))
        .run();
    out.expect_code(0);
    let records = out.json();
    assert_eq!(records.len(), 2, "{}", out.out());
    assert!(records
        .iter()
        .all(|r| r["of_addresses"] == 2 && r["ok"] == true));

    // Without --retry the failed lookup is the target's one record, with no address.
    let again = DnsServer::scripted(&[("flaky.test", &["127.0.0.2"])], |_| Action::Rcode(2));
    let out = headprobe()
        .args([
            "--format",
            "json",
            "--all-addresses",
            "--resolver",
            &again.arg(),
        ])
        .arg(format!("flaky.test:{port}"))
        .run();
    out.expect_code(1);
    let r = out.only_json();
    assert_eq!(r["error"]["kind"], "dns", "{r}");
    assert_eq!(r["address"], Value::Null, "{r}");
    assert_eq!(r["of_addresses"], Value::Null, "{r}");
}

#[test]
fn all_addresses_counts_connections_against_concurrency() {
    let gate = Arc::new(Gate::default());
    let (arrived_tx, arrived) = mpsc::channel::<SocketAddr>();
    let held = Arc::clone(&gate);
    let ips = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];
    let b = need!(same_port(&ips, move |addr, _| {
        Backend::gated_reporting(addr, Arc::clone(&held), arrived_tx.clone())
    }));
    let port = b[0].port();
    let running = headprobe()
        .args(["--format", "status", "--all-addresses", "-c", "2"])
        .args(resolve("four.test", port, &ips.join(",")))
        .arg(format!("four.test:{port}"))
        .spawn();
    for _ in 0..2 {
        arrived.recv_timeout(WAIT).expect("two connections at once");
    }
    assert!(
        arrived.recv_timeout(Duration::from_millis(300)).is_err(),
        "a third connection opened while two were in flight (-c 2)"
    );
    gate.open();
    let out = running.finish();
    out.expect_code(0);
    assert_eq!(out.status_rows().len(), 4, "{}", out.out());
}

#[test]
fn interface_holds_for_every_redirect_hop() {
    let second = need!(Backend::on("127.0.0.3:0").ok());
    let location = format!("Location: http://{}/next\r\n", second.addr);
    let first =
        need!(Backend::answering("127.0.0.2:0", move |_| location.clone().into_bytes()).ok());
    let (out, r) = json_run(&[
        "-L",
        "--interface",
        "127.0.0.9",
        &format!("http://{}/", first.addr),
    ]);
    out.expect_code(0);
    assert_eq!(r["addr"], second.addr.to_string(), "{r}");
    assert_eq!(first.seen().peer.ip().to_string(), "127.0.0.9");
    assert_eq!(second.seen().peer.ip().to_string(), "127.0.0.9");
}
