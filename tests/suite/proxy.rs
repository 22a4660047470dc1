//! Proxies (issue: proxies): `--proxy` through HTTP forward proxies (absolute form and
//! CONNECT) and SOCKS5 (RFC 1928, RFC 1929), `--proxy-check` over proxy pools, every
//! refusal, and credential redaction, against in-process loopback proxies built here on
//! std::net threads.
//!
//! Names never reach DNS: the test proxies map every name they are asked for to
//! 127.0.0.1 themselves (or to a fixed route), and the origins are `util::Server`s or the
//! TLS origin below (a `util::peer` TLS peer with the `util::pki` certificates).

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use futures_rustls::rustls;
use serde_json::{json, Value};

use crate::util::peer::*;
use crate::util::pki::*;
use crate::util::*;

// ---------------------------------------------------------------------------------------
// Loopback peers (proxies are `util::peer::Peer`s with the handlers below)
// ---------------------------------------------------------------------------------------

/// An address on 127.0.0.1 where nothing listens, held for the test's lifetime: the
/// socket is bound but never listens, so connecting is refused and no other listener can
/// take the port meanwhile.
struct Dead {
    _socket: socket2::Socket,
    addr: SocketAddr,
}

fn dead() -> Dead {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).expect("bind 127.0.0.1:0");
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    Dead {
        _socket: socket,
        addr,
    }
}

/// Reads until the peer closes (or errors, or `PEER_PATIENCE` runs out), keeping it all.
fn drain_into(s: &mut TcpStream, into: &mut Vec<u8>) {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// A scripted SOCKS peer: its handshake, then the bytes spliced both ways. Each
/// connection reports what it saw.
trait ScriptedProxy: Send + Sync + Sized + 'static {
    /// Runs the handshake; the upstream connection when the proxy grants it.
    fn handshake(&self, c: &mut TcpStream, seen: &mut Seen) -> Option<TcpStream>;

    fn start(self) -> Peer {
        let proxy = Arc::new(self);
        Peer::start(Arc::new(move |s, tx| proxy.serve(s, tx)))
    }

    fn serve(&self, mut client: TcpStream, tx: &Sender<Seen>) {
        let mut seen = Seen::default();
        match self.handshake(&mut client, &mut seen) {
            Some(upstream) => {
                seen.upstream = upstream.peer_addr().ok();
                let _ = tx.send(seen);
                splice(client, upstream);
            }
            None => {
                let _ = tx.send(seen);
                close_and_drain(&mut client);
            }
        }
    }
}

/// Relays bytes both ways until both directions have ended.
fn splice(client: TcpStream, upstream: TcpStream) {
    let _ = upstream.set_read_timeout(Some(PEER_PATIENCE));
    let _ = upstream.set_write_timeout(Some(PEER_PATIENCE));
    let (Ok(mut client_r), Ok(mut upstream_w)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let up = thread::spawn(move || {
        let _ = std::io::copy(&mut client_r, &mut upstream_w);
        let _ = upstream_w.shutdown(Shutdown::Write);
    });
    let (mut upstream_r, mut client_w) = (upstream, client);
    let _ = std::io::copy(&mut upstream_r, &mut client_w);
    let _ = client_w.shutdown(Shutdown::Write);
    let _ = up.join();
}

/// Where a test proxy connects for `host:port`: IP literals as they are, every name to
/// 127.0.0.1 (no DNS), or `route` when set.
fn origin_for(host: &str, port: u16, route: Option<SocketAddr>) -> SocketAddr {
    if let Some(route) = route {
        return route;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let ip = bare
        .parse::<IpAddr>()
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    SocketAddr::new(ip, port)
}

/// `host[:port]` or `[v6][:port]` into the bare host and the port.
fn split_authority(authority: &str, default_port: u16) -> (String, u16) {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = port.and_then(|p| p.parse().ok()).unwrap_or(default_port);
    (host.to_string(), port)
}

/// The value of header `name` (case-insensitive) in a request head.
fn header_value(head: &str, name: &str) -> Option<String> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// `Basic base64(user:pass)`.
fn basic(user: &str, pass: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {encoded}")
}

// ---------------------------------------------------------------------------------------
// The HTTP forward proxy
// ---------------------------------------------------------------------------------------

const CONNECT_OK: &[u8] =
    b"HTTP/1.1 200 Connection established\r\nProxy-Agent: headprobe-test\r\n\r\n";

fn auth_required() -> Vec<u8> {
    response(
        "HTTP/1.1 407 Proxy Authentication Required",
        &[
            "Proxy-Authenticate: Basic realm=\"headprobe-test\"",
            "Content-Length: 0",
        ],
    )
}

/// A refusal as the CONNECT-refusing proxy sends it.
fn refusal(code: u16, reason: &str) -> Vec<u8> {
    response(
        &format!("HTTP/1.1 {code} {reason}"),
        &["X-Refused-By: headprobe-test", "Content-Length: 0"],
    )
}

/// An HTTP forward proxy: absolute-form requests are forwarded in origin form (without
/// `Proxy-Authorization`) and the answer relayed; CONNECT gets `CONNECT_OK` and a
/// byte-for-byte tunnel. The options make it refuse.
#[derive(Clone, Default)]
struct HttpProxy {
    /// The `Proxy-Authorization` value required; without it or with another: 407.
    auth: Option<String>,
    /// The answer to every CONNECT, instead of opening the tunnel.
    refuse_connect: Option<Vec<u8>>,
    /// The answer to every absolute-form request, instead of forwarding it.
    answer: Option<Vec<u8>>,
    /// Connect here whatever the request names.
    route: Option<SocketAddr>,
}

impl HttpProxy {
    fn start(self) -> Peer {
        let proxy = Arc::new(self);
        Peer::start(Arc::new(move |s, tx| proxy.serve(s, tx)))
    }

    fn serve(&self, mut client: TcpStream, tx: &Sender<Seen>) {
        let head = read_head(&mut client);
        let mut seen = Seen {
            bytes: head.clone(),
            ..Seen::default()
        };
        let text = String::from_utf8_lossy(&head).into_owned();
        let request_line = text.split("\r\n").next().unwrap_or_default().to_string();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or_default();
        let target = parts.next().unwrap_or_default();
        let version = parts.next().unwrap_or("HTTP/1.0");

        let answer_and_close = |mut client: TcpStream, seen: Seen, bytes: &[u8]| {
            let _ = tx.send(seen);
            let _ = client.write_all(bytes);
            close_and_drain(&mut client);
        };
        if let Some(want) = &self.auth {
            if header_value(&text, "Proxy-Authorization").as_deref() != Some(want.as_str()) {
                return answer_and_close(client, seen, &auth_required());
            }
        }
        if method == "CONNECT" {
            if let Some(refusal) = &self.refuse_connect {
                return answer_and_close(client, seen, refusal);
            }
            let (host, port) = split_authority(target, 443);
            let addr = origin_for(&host, port, self.route);
            let Ok(upstream) = TcpStream::connect_timeout(&addr, WAIT) else {
                return answer_and_close(client, seen, &refusal(502, "Bad Gateway"));
            };
            seen.upstream = Some(addr);
            let _ = tx.send(seen);
            if client.write_all(CONNECT_OK).is_ok() {
                splice(client, upstream);
            }
            return;
        }
        if let Some(answer) = &self.answer {
            return answer_and_close(client, seen, answer);
        }
        let Some(rest) = target.strip_prefix("http://") else {
            return answer_and_close(client, seen, &refusal(400, "Bad Request"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let (host, port) = split_authority(authority, 80);
        let addr = origin_for(&host, port, self.route);
        let Ok(mut upstream) = TcpStream::connect_timeout(&addr, WAIT) else {
            return answer_and_close(client, seen, &refusal(502, "Bad Gateway"));
        };
        seen.upstream = Some(addr);
        let _ = tx.send(seen);
        let mut forwarded = format!("{method} {path} {version}\r\n");
        for line in text.split("\r\n").skip(1).filter(|l| !l.is_empty()) {
            let name = line.split(':').next().unwrap_or_default().trim();
            if !name.eq_ignore_ascii_case("Proxy-Authorization") {
                forwarded.push_str(line);
                forwarded.push_str("\r\n");
            }
        }
        forwarded.push_str("\r\n");
        if upstream.write_all(forwarded.as_bytes()).is_ok() {
            splice(client, upstream);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The SOCKS5 proxy
// ---------------------------------------------------------------------------------------

/// RFC 1928 §6, by reply code.
const SOCKS_REPLY_TEXT: [&str; 9] = [
    "succeeded",
    "general SOCKS server failure",
    "connection not allowed by ruleset",
    "network unreachable",
    "host unreachable",
    "connection refused",
    "TTL expired",
    "command not supported",
    "address type not supported",
];

/// A SOCKS5 proxy (CONNECT only). Names are mapped to 127.0.0.1 without DNS.
#[derive(Clone, Default)]
struct Socks5 {
    /// Require RFC 1929 username/password authentication with these.
    auth: Option<(String, String)>,
    /// Answer every CONNECT with this reply code (0: connect and relay).
    reply: u8,
    /// Connect here whatever the request names.
    route: Option<SocketAddr>,
    /// Give the bound address of a successful reply as a name (address type 3).
    bound_as_name: bool,
}

/// Reads exactly `n` bytes, keeping them in `seen`.
fn take(c: &mut TcpStream, seen: &mut Seen, n: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; n];
    c.read_exact(&mut buf).ok()?;
    seen.bytes.extend_from_slice(&buf);
    Some(buf)
}

fn socks_reply(code: u8) -> [u8; 10] {
    [5, code, 0, 1, 0, 0, 0, 0, 0, 0]
}

impl ScriptedProxy for Socks5 {
    fn handshake(&self, c: &mut TcpStream, seen: &mut Seen) -> Option<TcpStream> {
        let greeting = take(c, seen, 2)?;
        let methods = take(c, seen, usize::from(greeting[1]))?;
        let wanted = if self.auth.is_some() { 2 } else { 0 };
        if greeting[0] != 5 || !methods.contains(&wanted) {
            let _ = c.write_all(&[5, 0xff]);
            return None;
        }
        c.write_all(&[5, wanted]).ok()?;
        if let Some((user, pass)) = &self.auth {
            let head = take(c, seen, 2)?;
            let u = take(c, seen, usize::from(head[1]))?;
            let plen = take(c, seen, 1)?;
            let p = take(c, seen, usize::from(plen[0]))?;
            let good = head[0] == 1 && u == user.as_bytes() && p == pass.as_bytes();
            c.write_all(&[1, if good { 0 } else { 1 }]).ok()?;
            if !good {
                return None;
            }
        }
        let request = take(c, seen, 4)?;
        let host = match request[3] {
            1 => {
                let ip: [u8; 4] = take(c, seen, 4)?.try_into().ok()?;
                Ipv4Addr::from(ip).to_string()
            }
            4 => {
                let ip: [u8; 16] = take(c, seen, 16)?.try_into().ok()?;
                Ipv6Addr::from(ip).to_string()
            }
            3 => {
                let len = take(c, seen, 1)?;
                String::from_utf8_lossy(&take(c, seen, usize::from(len[0]))?).into_owned()
            }
            _ => {
                let _ = c.write_all(&socks_reply(8));
                return None;
            }
        };
        let port = take(c, seen, 2)?;
        let port = u16::from_be_bytes([port[0], port[1]]);
        if request[0] != 5 || request[1] != 1 {
            let _ = c.write_all(&socks_reply(7));
            return None;
        }
        if self.reply != 0 {
            let _ = c.write_all(&socks_reply(self.reply));
            return None;
        }
        let addr = origin_for(&host, port, self.route);
        let Ok(upstream) = TcpStream::connect_timeout(&addr, WAIT) else {
            let _ = c.write_all(&socks_reply(5));
            return None;
        };
        let local = upstream.local_addr().ok()?;
        let mut reply = vec![5, 0, 0];
        match (self.bound_as_name, local.ip()) {
            (true, _) => {
                reply.extend_from_slice(&[3, 10]);
                reply.extend_from_slice(b"proxy.test");
            }
            (false, IpAddr::V4(ip)) => {
                reply.push(1);
                reply.extend_from_slice(&ip.octets());
            }
            (false, IpAddr::V6(ip)) => {
                reply.push(4);
                reply.extend_from_slice(&ip.octets());
            }
        }
        reply.extend_from_slice(&local.port().to_be_bytes());
        c.write_all(&reply).ok()?;
        Some(upstream)
    }
}

/// The SOCKS5 CONNECT request the client must send for a name.
fn socks_name_request(name: &str, port: u16) -> Vec<u8> {
    let mut req = vec![5, 1, 0, 3, name.len() as u8];
    req.extend_from_slice(name.as_bytes());
    req.extend_from_slice(&port.to_be_bytes());
    req
}

/// A proxy that accepts, reads whatever comes and never answers.
fn stalling() -> Peer {
    Peer::start(Arc::new(|mut client: TcpStream, tx: &Sender<Seen>| {
        let mut seen = Seen::default();
        drain_into(&mut client, &mut seen.bytes);
        let _ = tx.send(seen);
    }))
}

// ---------------------------------------------------------------------------------------
// The TLS origin
// ---------------------------------------------------------------------------------------

/// A TLS origin: handshake, read the request head, answer 200, close_notify, close.
fn tls_origin() -> Peer {
    Peer::start(tls_handler(
        server_config(&pki().good, rustls::DEFAULT_VERSIONS),
        response(
            "HTTP/1.0 200 OK",
            &["Server: tls-origin", "Content-Length: 0"],
        ),
    ))
}

// ---------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------

/// The exact request headprobe sends by default, with this request target and Host.
fn default_request(request_target: &str, host: &str, extra: &[&str]) -> String {
    let mut r = format!(
        "GET {request_target} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: headprobe/{VERSION}\r\nAccept: */*\r\n"
    );
    for line in extra {
        r.push_str(line);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r
}

fn origin_server() -> Server {
    Server::start(Behaviour::Respond(response(
        "HTTP/1.0 200 OK",
        &["Server: origin", "X-Origin: yes", "Content-Length: 0"],
    )))
}

// ---------------------------------------------------------------------------------------
// HTTP proxy: plain http targets in absolute form
// ---------------------------------------------------------------------------------------

#[test]
fn http_target_through_an_http_proxy_is_sent_in_absolute_form() {
    let origin = origin_server();
    let proxy = HttpProxy::default().start();
    let url = format!("http://127.0.0.1:{}/a/b?c=d", origin.port());
    let (out, r) = json_run(&["--proxy", &proxy.url("http"), &url]);
    out.expect_code(0);

    let seen = proxy.seen();
    assert_eq!(
        seen.text(),
        default_request(&url, &format!("127.0.0.1:{}", origin.port()), &[]),
        "the request line the proxy received"
    );
    assert_eq!(seen.upstream, Some(origin.addr()));
    // The proxy relayed it: the origin got it (in origin form, from the proxy).
    assert!(
        origin
            .request_text()
            .starts_with("GET /a/b?c=d HTTP/1.0\r\n"),
        "origin request"
    );

    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200, "{r}");
    assert!(
        r["headers"]
            .as_array()
            .unwrap()
            .contains(&json!(["X-Origin", "yes"])),
        "the origin's headers came through the proxy: {r}"
    );
    assert_eq!(r["target"], url.as_str());
    assert_eq!(r["scheme"], "http");
    assert_eq!(r["host"], "127.0.0.1");
    assert_eq!(r["port"], origin.port());
    assert_eq!(
        r["path"],
        url.as_str(),
        "path is the request target as sent"
    );
    assert_eq!(r["addr"], proxy.hostport(), "addr is where we connected");
    assert_eq!(r["proxy"], proxy.url("http"));
    assert_eq!(r["url"], Value::Null);
    assert_eq!(r["tunnel"], Value::Null);
    assert_eq!(r["tls"], Value::Null);
    assert_eq!(r["error"], Value::Null);
    assert_eq!(r["timing_ms"]["proxy"], Value::Null, "no tunnel: {r}");
    assert!(ms(&r["timing_ms"]["connect"]) <= ms(&r["timing_ms"]["headers"]));
}

#[test]
fn absolute_form_omits_port_80_and_leaves_names_to_the_proxy() {
    let origin = origin_server();
    let proxy = HttpProxy {
        route: Some(origin.addr()),
        ..HttpProxy::default()
    }
    .start();
    // origin.test is in no DNS: only the proxy can make sense of it.
    let (out, r) = json_run(&["--proxy", &proxy.url("http"), "http://origin.test/x"]);
    out.expect_code(0);
    assert_eq!(
        proxy.seen().text(),
        default_request("http://origin.test/x", "origin.test", &[])
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["host"], "origin.test");
    assert_eq!(r["port"], 80);
    assert_eq!(r["path"], "http://origin.test/x");
    assert_eq!(r["timing_ms"]["dns"], Value::Null, "nothing resolved: {r}");
}

#[test]
fn http_proxy_credentials_are_sent_as_basic_and_percent_decoded() {
    let origin = origin_server();
    let proxy = HttpProxy {
        auth: Some(basic("al@ice", "open sesame")),
        ..HttpProxy::default()
    }
    .start();
    let url = format!("http://127.0.0.1:{}/", origin.port());
    let proxy_url = proxy.url_with("http", "al%40ice", "open%20sesame");
    let (out, r) = json_run(&["--proxy", &proxy_url, &url]);
    out.expect_code(0);
    // base64("al@ice:open sesame"), worked out by hand.
    assert_eq!(
        basic("al@ice", "open sesame"),
        "Basic YWxAaWNlOm9wZW4gc2VzYW1l"
    );
    assert_eq!(
        proxy.seen().text(),
        default_request(
            &url,
            &format!("127.0.0.1:{}", origin.port()),
            &["Proxy-Authorization: Basic YWxAaWNlOm9wZW4gc2VzYW1l"]
        )
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200);
    assert_eq!(r["proxy"], proxy.url("http"), "no credentials in `proxy`");
}

#[test]
fn http_proxy_answering_407_is_kind_proxy() {
    let proxy = HttpProxy {
        auth: Some(basic("alice", "right")),
        ..HttpProxy::default()
    }
    .start();
    let url = "http://127.0.0.1:9/";
    for (proxy_url, why) in [
        (proxy.url("http"), "credentials required"),
        (
            proxy.url_with("http", "alice", "wrong"),
            "credentials rejected",
        ),
    ] {
        let r = failing(&["--proxy", &proxy_url, url], "proxy");
        proxy.seen();
        let m = message(&r);
        assert!(m.contains("407"), "message: {m}");
        assert!(m.contains(why), "message: {m}");
        assert!(m.contains(&proxy.url("http")), "names the proxy: {m}");
        assert_eq!(r["status"], 407, "what was read is kept: {r}");
        assert_eq!(r["tunnel"], Value::Null, "{r}");
        assert_eq!(r["addr"], proxy.hostport());

        let out = headprobe()
            .args(["--format", "status", "--proxy", &proxy_url, url])
            .run();
        out.expect_code(1);
        proxy.seen();
        let rows = out.status_rows();
        assert_eq!(rows.len(), 1, "{out:?}");
        assert_eq!(rows[0][0], url);
        assert_eq!(rows[0][1], "proxy");
        assert_eq!(rows[0][3], proxy.hostport());
        assert!(rows[0][4].contains(why), "{out:?}");
    }
}

// ---------------------------------------------------------------------------------------
// HTTP proxy: https targets through CONNECT
// ---------------------------------------------------------------------------------------

#[test]
fn https_target_goes_through_a_connect_tunnel_then_tls() {
    let origin = tls_origin();
    let proxy = HttpProxy::default().start();
    let url = format!("https://probe.test:{}/secure", origin.port());
    let ca = cacert();
    let (out, r) = json_run(&["--proxy", &proxy.url("http"), "--cacert", &ca, &url]);
    out.expect_code(0);

    let authority = format!("probe.test:{}", origin.port());
    let seen = proxy.seen();
    assert_eq!(
        seen.text(),
        format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n")
    );
    assert_eq!(seen.upstream, Some(origin.addr()));
    let tls = origin.seen();
    assert_eq!(
        tls.sni.as_deref(),
        Some("probe.test"),
        "SNI through the tunnel"
    );
    assert_eq!(
        tls.text(),
        default_request("/secure", &authority, &[]),
        "origin form inside the tunnel"
    );

    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200);
    assert_eq!(r["tls"]["verified"], true, "{r}");
    assert_eq!(r["path"], "/secure");
    assert_eq!(r["addr"], proxy.hostport());
    assert_eq!(r["proxy"], proxy.url("http"));
    assert_eq!(
        r["tunnel"],
        json!({"status": 200, "reason": "Connection established",
               "headers": [["Proxy-Agent", "headprobe-test"]]})
    );
    let t = &r["timing_ms"];
    assert!(ms(&t["connect"]) <= ms(&t["proxy"]), "{t}");
    assert!(ms(&t["proxy"]) <= ms(&t["tls"]), "{t}");
    assert!(ms(&t["tls"]) <= ms(&t["headers"]), "{t}");
}

#[test]
fn connect_carries_proxy_authorization() {
    let origin = tls_origin();
    let proxy = HttpProxy {
        auth: Some(basic("bob", "pw")),
        ..HttpProxy::default()
    }
    .start();
    let url = format!("https://127.0.0.1:{}/", origin.port());
    let ca = cacert();
    let (out, r) = json_run(&[
        "--proxy",
        &proxy.url_with("http", "bob", "pw"),
        "--cacert",
        &ca,
        &url,
    ]);
    out.expect_code(0);
    let authority = format!("127.0.0.1:{}", origin.port());
    assert_eq!(
        proxy.seen().text(),
        format!(
            "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nProxy-Authorization: {}\r\n\r\n",
            basic("bob", "pw")
        )
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(origin.seen().sni, None, "no SNI for an IP literal");
}

#[test]
fn connect_refusals_are_kind_proxy_and_keep_the_reply() {
    for (code, reason) in [
        (403, "Forbidden"),
        (407, "Proxy Authentication Required"),
        (502, "Bad Gateway"),
    ] {
        let proxy = HttpProxy {
            refuse_connect: Some(refusal(code, reason)),
            ..HttpProxy::default()
        }
        .start();
        let url = "https://probe.test:8443/";
        let r = failing(&["--proxy", &proxy.url("http"), url], "proxy");
        assert_eq!(
            proxy.seen().text(),
            "CONNECT probe.test:8443 HTTP/1.1\r\nHost: probe.test:8443\r\n\r\n"
        );
        let m = message(&r);
        assert!(
            m.contains(&format!("{code} {reason}")),
            "the proxy's answer in the message: {m}"
        );
        assert!(m.contains(&proxy.url("http")), "names the proxy: {m}");
        if code == 407 {
            assert!(m.contains("credentials required"), "message: {m}");
        }
        assert_eq!(
            r["tunnel"],
            json!({"status": code, "reason": reason,
                   "headers": [["X-Refused-By", "headprobe-test"], ["Content-Length", "0"]]}),
            "{r}"
        );
        assert_eq!(r["status"], Value::Null, "{r}");
        assert_eq!(r["tls"], Value::Null, "{r}");
        assert_eq!(r["addr"], proxy.hostport());
        assert_eq!(r["timing_ms"]["proxy"], Value::Null, "no tunnel: {r}");
        assert_eq!(r["timing_ms"]["tls"], Value::Null, "{r}");

        let out = headprobe().args(["--proxy", &proxy.url("http"), url]).run();
        out.expect_code(1);
        proxy.seen();
        assert_eq!(out.lines(), [format!("{url} error > proxy: {m}")], "text");

        let out = headprobe()
            .args(["--format", "status", "--proxy", &proxy.url("http"), url])
            .run();
        out.expect_code(1);
        proxy.seen();
        let rows = out.status_rows();
        assert_eq!(rows.len(), 1, "{out:?}");
        assert_eq!(
            (
                &rows[0][0][..],
                &rows[0][1][..],
                &rows[0][3][..],
                &rows[0][4][..]
            ),
            (url, "proxy", &proxy.hostport()[..], &m[..]),
            "status"
        );
    }
}

#[test]
fn connect_with_wrong_credentials_says_they_were_rejected() {
    let proxy = HttpProxy {
        auth: Some(basic("bob", "right")),
        ..HttpProxy::default()
    }
    .start();
    let r = failing(
        &[
            "--proxy",
            &proxy.url_with("http", "bob", "wrong"),
            "https://probe.test:8443/",
        ],
        "proxy",
    );
    let m = message(&r);
    assert!(
        m.contains("407") && m.contains("credentials rejected"),
        "{m}"
    );
    assert_eq!(r["tunnel"]["status"], 407, "{r}");
    assert!(
        r["tunnel"]["headers"].as_array().unwrap().contains(&json!([
            "Proxy-Authenticate",
            "Basic realm=\"headprobe-test\""
        ])),
        "{r}"
    );
}

#[test]
fn connect_brackets_ipv6_literals() {
    let proxy = HttpProxy {
        refuse_connect: Some(refusal(403, "Forbidden")),
        ..HttpProxy::default()
    }
    .start();
    failing(
        &["--proxy", &proxy.url("http"), "https://[::1]:8443/"],
        "proxy",
    );
    assert_eq!(
        proxy.seen().text(),
        "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n"
    );
}

// ---------------------------------------------------------------------------------------
// SOCKS5
// ---------------------------------------------------------------------------------------

/// Asserts the common shape of a record that went through a SOCKS5 proxy and succeeded.
#[track_caller]
fn assert_socks_ok(r: &Value, socks: &Peer, path: &str) {
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["path"], path, "origin form through SOCKS: {r}");
    assert_eq!(r["addr"], socks.hostport());
    assert_eq!(r["proxy"], socks.url("socks5"));
    assert_eq!(r["tunnel"], Value::Null, "no CONNECT reply for SOCKS: {r}");
    let t = &r["timing_ms"];
    assert!(ms(&t["connect"]) <= ms(&t["proxy"]), "{t}");
    assert!(ms(&t["proxy"]) <= ms(&t["headers"]), "{t}");
}

#[test]
fn socks5_sends_names_for_the_proxy_to_resolve() {
    let origin = origin_server();
    let socks = Socks5::default().start();
    let url = format!("http://origin.test:{}/s", origin.port());
    let (out, r) = json_run(&["--proxy", &socks.url("socks5"), &url]);
    out.expect_code(0);

    let seen = socks.seen();
    let mut want = vec![5, 1, 0];
    want.extend(socks_name_request("origin.test", origin.port()));
    assert_eq!(
        seen.bytes, want,
        "greeting [5,1,0], CONNECT with address type 3"
    );
    assert_eq!(seen.upstream, Some(origin.addr()));
    assert_eq!(
        origin.request_text(),
        default_request("/s", &format!("origin.test:{}", origin.port()), &[])
    );
    assert_socks_ok(&r, &socks, "/s");
    assert_eq!(r["host"], "origin.test");
    assert_eq!(r["timing_ms"]["dns"], Value::Null, "nothing resolved: {r}");
}

#[test]
fn socks5_sends_ipv4_literals_as_address_type_1() {
    let origin = origin_server();
    let socks = Socks5::default().start();
    let url = format!("http://127.0.0.1:{}/", origin.port());
    let (out, r) = json_run(&["--proxy", &socks.url("socks5"), &url]);
    out.expect_code(0);
    let seen = socks.seen();
    let mut want = vec![5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1];
    want.extend(origin.port().to_be_bytes());
    assert_eq!(seen.bytes, want);
    assert_eq!(seen.upstream, Some(origin.addr()));
    assert_socks_ok(&r, &socks, "/");
}

#[test]
fn socks5_sends_ipv6_literals_as_address_type_4() {
    let Some(origin) = Server::start_v6(Behaviour::Respond(ok_response())) else {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    };
    let socks = Socks5::default().start();
    let url = format!("http://[::1]:{}/v6", origin.port());
    let (out, r) = json_run(&["--proxy", &socks.url("socks5"), &url]);
    out.expect_code(0);
    let seen = socks.seen();
    let mut want = vec![5, 1, 0, 5, 1, 0, 4];
    want.extend(Ipv6Addr::LOCALHOST.octets());
    want.extend(origin.port().to_be_bytes());
    assert_eq!(seen.bytes, want);
    assert_eq!(seen.upstream, Some(origin.addr()));
    // The reply's bound address is an IPv6 one too (16 bytes to skip).
    assert_socks_ok(&r, &socks, "/v6");
    assert_eq!(r["host"], "::1");
}

#[test]
fn socks5_carries_https_by_name_with_sni() {
    let origin = tls_origin();
    let socks = Socks5::default().start();
    let url = format!("https://probe.test:{}/", origin.port());
    let ca = cacert();
    let (out, r) = json_run(&["--proxy", &socks.url("socks5"), "--cacert", &ca, &url]);
    out.expect_code(0);
    let seen = socks.seen();
    let mut want = vec![5, 1, 0];
    want.extend(socks_name_request("probe.test", origin.port()));
    assert_eq!(seen.bytes, want);
    assert_eq!(origin.seen().sni.as_deref(), Some("probe.test"));
    assert_socks_ok(&r, &socks, "/");
    assert_eq!(r["tls"]["verified"], true, "{r}");
    assert!(ms(&r["timing_ms"]["proxy"]) <= ms(&r["timing_ms"]["tls"]));
}

#[test]
fn socks5_username_password_authentication() {
    let origin = origin_server();
    let socks = Socks5 {
        auth: Some(("alice".into(), "s3cret".into())),
        // Exercises skipping a bound address given as a name.
        bound_as_name: true,
        ..Socks5::default()
    }
    .start();
    let url = format!("http://127.0.0.1:{}/", origin.port());
    let (out, r) = json_run(&[
        "--proxy",
        &socks.url_with("socks5", "alice", "s3cret"),
        &url,
    ]);
    out.expect_code(0);
    let mut want = vec![5, 2, 0, 2, 1, 5];
    want.extend(b"alice");
    want.push(6);
    want.extend(b"s3cret");
    want.extend([5, 1, 0, 1, 127, 0, 0, 1]);
    want.extend(origin.port().to_be_bytes());
    assert_eq!(
        socks.seen().bytes,
        want,
        "greeting offers [0, 2], then RFC 1929, then CONNECT"
    );
    assert_socks_ok(&r, &socks, "/");
}

#[test]
fn socks5_without_auth_accepts_a_client_that_has_credentials() {
    let origin = origin_server();
    let socks = Socks5::default().start();
    let url = format!("http://127.0.0.1:{}/", origin.port());
    let (out, r) = json_run(&["--proxy", &socks.url_with("socks5", "u", "p"), &url]);
    out.expect_code(0);
    let seen = socks.seen();
    assert_eq!(&seen.bytes[..4], [5, 2, 0, 2], "offers both methods");
    assert_eq!(
        &seen.bytes[4..8],
        [5, 1, 0, 1],
        "no RFC 1929 when 0 is chosen"
    );
    assert_socks_ok(&r, &socks, "/");
}

#[test]
fn socks5_reply_codes_are_kind_proxy_with_their_meaning() {
    for code in 1..=8u8 {
        let socks = Socks5 {
            reply: code,
            ..Socks5::default()
        }
        .start();
        let r = failing(
            &["--proxy", &socks.url("socks5"), "http://origin.test:8080/"],
            "proxy",
        );
        let seen = socks.seen();
        assert!(
            seen.bytes
                .ends_with(&socks_name_request("origin.test", 8080)),
            "{seen:?}"
        );
        let m = message(&r);
        let want = format!("{} (reply {code})", SOCKS_REPLY_TEXT[usize::from(code)]);
        assert!(m.contains(&want), "reply {code}: {m:?} lacks {want:?}");
        assert!(m.contains(&socks.url("socks5")), "names the proxy: {m}");
        assert_eq!(r["addr"], socks.hostport());
        assert_eq!(r["status"], Value::Null);
        assert_eq!(r["tunnel"], Value::Null);
        assert_eq!(r["timing_ms"]["proxy"], Value::Null, "{r}");
    }
}

#[test]
fn socks5_authentication_failures_are_kind_proxy() {
    let socks = Socks5 {
        auth: Some(("alice".into(), "right".into())),
        ..Socks5::default()
    }
    .start();
    let url = "http://origin.test:8080/";

    let r = failing(
        &["--proxy", &socks.url_with("socks5", "alice", "wrong"), url],
        "proxy",
    );
    socks.seen();
    let m = message(&r);
    assert!(m.contains("rejected"), "wrong password: {m}");
    assert_eq!(r["timing_ms"]["proxy"], Value::Null);

    let r = failing(&["--proxy", &socks.url("socks5"), url], "proxy");
    assert_eq!(socks.seen().bytes, [5, 1, 0], "no-auth greeting only");
    let m = message(&r);
    assert!(
        m.contains("authentication") && m.contains(&socks.url("socks5")),
        "no credentials for a proxy that needs them: {m}"
    );
}

// ---------------------------------------------------------------------------------------
// Unreachable and stalled proxies
// ---------------------------------------------------------------------------------------

#[test]
fn dead_proxy_is_refused() {
    let dead = dead();
    for scheme in ["http", "socks5"] {
        for url in ["http://origin.test:8080/", "https://origin.test:8443/"] {
            let proxy = format!("{scheme}://{}", dead.addr);
            let r = failing(&["--proxy", &proxy, url], "refused");
            assert_eq!(r["addr"], dead.addr.to_string(), "{r}");
            assert_eq!(r["proxy"], proxy, "{r}");
            assert_eq!(r["timing_ms"]["connect"], Value::Null, "{r}");
            assert_eq!(r["timing_ms"]["proxy"], Value::Null, "{r}");
        }
    }
}

#[test]
fn proxy_stalling_in_the_tunnel_times_out_within_connect_timeout() {
    let stall = stalling();
    for (scheme, url, sent) in [
        (
            "socks5",
            "http://origin.test:8080/",
            b"\x05\x01\x00".to_vec(),
        ),
        (
            "http",
            "https://origin.test:8443/",
            b"CONNECT origin.test:8443 HTTP/1.1\r\nHost: origin.test:8443\r\n\r\n".to_vec(),
        ),
    ] {
        let started = Instant::now();
        let r = failing(
            &[
                "--connect-timeout",
                "1s",
                "-t",
                "20s",
                "--proxy",
                &stall.url(scheme),
                url,
            ],
            "timeout",
        );
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(4),
            "{scheme}: took {took:?}, --connect-timeout is 1s"
        );
        let total = ms(&r["timing_ms"]["total"]);
        assert!((990.0..3000.0).contains(&total), "{scheme}: total {total}");
        assert!(
            message(&r).contains("--connect-timeout"),
            "{scheme}: {}",
            message(&r)
        );
        assert_eq!(r["timing_ms"]["proxy"], Value::Null, "{r}");
        assert_eq!(r["tunnel"], Value::Null, "{r}");
        assert_eq!(r["addr"], stall.hostport());
        assert_eq!(stall.seen().bytes, sent, "{scheme}: what the proxy got");
    }
}

#[test]
fn http_proxy_stalling_on_an_absolute_form_request_times_out_within_timeout() {
    let stall = stalling();
    let started = Instant::now();
    let r = failing(
        &[
            "--connect-timeout",
            "1s",
            "-t",
            "2s",
            "--proxy",
            &stall.url("http"),
            "http://origin.test:8080/",
        ],
        "timeout",
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}, -t is 2s");
    let total = ms(&r["timing_ms"]["total"]);
    assert!((1990.0..4000.0).contains(&total), "total {total}");
    assert!(message(&r).contains("--timeout"), "{}", message(&r));
    assert_eq!(
        stall.seen().text(),
        default_request("http://origin.test:8080/", "origin.test:8080", &[])
    );
}

// ---------------------------------------------------------------------------------------
// --proxy-check
// ---------------------------------------------------------------------------------------

#[test]
fn proxy_check_records_describe_the_proxy() {
    let origin = origin_server();
    let http = HttpProxy::default().start();
    let http_auth = HttpProxy {
        auth: Some(basic("bob", "pw1")),
        ..HttpProxy::default()
    }
    .start();
    let socks = Socks5::default().start();
    let socks_auth = Socks5 {
        auth: Some(("carol".into(), "pw2".into())),
        ..Socks5::default()
    }
    .start();
    let url = format!("http://origin.test:{}/check?q=1", origin.port());
    let tokens = [
        http.hostport(),
        http_auth.url_with("http", "bob", "pw1"),
        socks.url("socks5"),
        socks_auth.url_with("socks5", "carol", "pw2"),
    ];
    let out = headprobe()
        .args(["--format", "json", "--ordered", "--proxy-check", &url])
        .args(&tokens)
        .run();
    out.expect_code(0);
    let records = out.json();
    assert_eq!(records.len(), 4, "{out:?}");

    let expect = [
        (&http, http.hostport(), "http", true),
        (
            &http_auth,
            format!("http://bob:***@{}", http_auth.addr()),
            "http",
            true,
        ),
        (&socks, socks.url("socks5"), "socks5", false),
        (
            &socks_auth,
            format!("socks5://carol:***@{}", socks_auth.addr()),
            "socks5",
            false,
        ),
    ];
    for (r, (peer, target, scheme, absolute)) in records.iter().zip(expect) {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["target"], target, "{r}");
        assert_eq!(r["scheme"], scheme, "the proxy's scheme: {r}");
        assert_eq!(r["host"], "127.0.0.1", "{r}");
        assert_eq!(r["port"], peer.port(), "{r}");
        assert_eq!(r["addr"], peer.hostport(), "{r}");
        assert_eq!(r["url"], url.as_str(), "{r}");
        assert_eq!(r["proxy"], peer.url(scheme), "{r}");
        assert_eq!(r["tunnel"], Value::Null, "{r}");
        let path = if absolute { url.as_str() } else { "/check?q=1" };
        assert_eq!(r["path"], path, "request target as sent: {r}");
        assert_eq!(
            r["timing_ms"]["proxy"].is_null(),
            absolute,
            "timing_ms.proxy only with a tunnel: {r}"
        );
        let seen = peer.seen();
        if absolute {
            assert!(
                seen.text().starts_with(&format!("GET {url} HTTP/1.0\r\n")),
                "{seen:?}"
            );
        } else {
            assert!(
                seen.bytes
                    .ends_with(&socks_name_request("origin.test", origin.port())),
                "{seen:?}"
            );
        }
    }
    assert_eq!(origin.requests(4).len(), 4);
}

#[test]
fn proxy_check_of_an_https_url_tunnels_through_each_kind() {
    let origin = tls_origin();
    let http = HttpProxy::default().start();
    let socks = Socks5::default().start();
    let url = format!("https://probe.test:{}/", origin.port());
    let ca = cacert();
    let out = headprobe()
        .args(["--format", "json", "--ordered", "--cacert", &ca])
        .args([
            "--proxy-check",
            &url,
            &http.url("http"),
            &socks.url("socks5"),
        ])
        .run();
    out.expect_code(0);
    let records = out.json();
    assert_eq!(records.len(), 2, "{out:?}");
    let (h, s) = (&records[0], &records[1]);
    for r in [h, s] {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["tls"]["verified"], true, "{r}");
        assert_eq!(r["path"], "/", "{r}");
        assert_eq!(r["url"], url.as_str(), "{r}");
        assert!(
            ms(&r["timing_ms"]["proxy"]) <= ms(&r["timing_ms"]["tls"]),
            "{r}"
        );
    }
    assert_eq!(h["scheme"], "http");
    assert_eq!(h["tunnel"]["status"], 200, "{h}");
    assert_eq!(s["scheme"], "socks5");
    assert_eq!(s["tunnel"], Value::Null, "{s}");
    let authority = format!("probe.test:{}", origin.port());
    assert_eq!(
        http.seen().text(),
        format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n")
    );
    let mut want = vec![5, 1, 0];
    want.extend(socks_name_request("probe.test", origin.port()));
    assert_eq!(socks.seen().bytes, want);
    for _ in 0..2 {
        assert_eq!(origin.seen().sni.as_deref(), Some("probe.test"));
    }
}

#[test]
fn proxy_check_tokens_without_a_port_use_1080() {
    let out = headprobe()
        .args(["--format", "json", "--ordered", "--connect-timeout", "1s"])
        .args(["-t", "2s", "--proxy-check", "http://origin.test/"])
        .args(["127.0.0.1", "socks5://127.0.0.1", "http://127.0.0.1"])
        .run();
    let records = out.json();
    assert_eq!(records.len(), 3, "{out:?}");
    // Nothing listens there: the bare token's protocol stays unknown (null).
    for (r, scheme) in records.iter().zip([None, Some("socks5"), Some("http")]) {
        assert_eq!(r["port"], 1080, "{r}");
        assert_eq!(r["addr"], "127.0.0.1:1080", "{r}");
        assert_eq!(r["scheme"].as_str(), scheme, "{r}");
        let proxy = scheme.map(|s| format!("{s}://127.0.0.1:1080"));
        assert_eq!(r["proxy"].as_str(), proxy.as_deref(), "{r}");
        assert_eq!(r["detected"], scheme.is_none(), "{r}");
    }
}

/// The expected outcome of one proxy in a pool.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    GoodHttp,
    GoodHttpScheme,
    GoodHttpAuth,
    GoodSocks,
    GoodSocksAuth,
    SocksRefuses(u8),
    HttpAuthMissing,
    Http403,
    Dead,
    StalledHttp,
    StalledSocks,
}

impl Role {
    /// The CODE_OR_KIND column.
    fn expected(self) -> &'static str {
        match self {
            Role::GoodHttp
            | Role::GoodHttpScheme
            | Role::GoodHttpAuth
            | Role::GoodSocks
            | Role::GoodSocksAuth => "200",
            Role::SocksRefuses(_) | Role::HttpAuthMissing => "proxy",
            Role::Http403 => "403",
            Role::Dead => "refused",
            Role::StalledHttp | Role::StalledSocks => "timeout",
        }
    }
}

const POOL_PASSWORD: &str = "Zq7xPoolPw";

/// One proxy of a pool: the token to give, the target to expect back, and what keeps
/// it alive.
struct PoolProxy {
    role: Role,
    token: String,
    shown: String,
    addr: SocketAddr,
    peer: Option<Peer>,
    _dead: Option<Dead>,
}

fn pool_proxy(role: Role, index: usize) -> PoolProxy {
    let auth_http = || HttpProxy {
        auth: Some(basic("pool", POOL_PASSWORD)),
        ..HttpProxy::default()
    };
    let (peer, dead) = match role {
        Role::GoodHttp | Role::GoodHttpScheme => (Some(HttpProxy::default().start()), None),
        Role::GoodHttpAuth | Role::HttpAuthMissing => (Some(auth_http().start()), None),
        Role::GoodSocks => (Some(Socks5::default().start()), None),
        Role::GoodSocksAuth => (
            Some(
                Socks5 {
                    auth: Some(("pool".into(), POOL_PASSWORD.into())),
                    ..Socks5::default()
                }
                .start(),
            ),
            None,
        ),
        Role::SocksRefuses(code) => (
            Some(
                Socks5 {
                    reply: code,
                    ..Socks5::default()
                }
                .start(),
            ),
            None,
        ),
        Role::Http403 => (
            Some(
                HttpProxy {
                    answer: Some(refusal(403, "Forbidden")),
                    ..HttpProxy::default()
                }
                .start(),
            ),
            None,
        ),
        Role::Dead => (None, Some(dead())),
        Role::StalledHttp | Role::StalledSocks => (Some(stalling()), None),
    };
    let addr = match (&peer, &dead) {
        (Some(p), _) => p.addr(),
        (None, Some(d)) => d.addr,
        (None, None) => unreachable!(),
    };
    let (token, shown) = match role {
        Role::GoodHttp | Role::Http403 | Role::StalledHttp => (addr.to_string(), None),
        Role::GoodHttpScheme | Role::HttpAuthMissing => (format!("http://{addr}"), None),
        Role::GoodHttpAuth => (
            format!("http://pool:{POOL_PASSWORD}@{addr}"),
            Some(format!("http://pool:***@{addr}")),
        ),
        Role::GoodSocks | Role::SocksRefuses(_) | Role::StalledSocks => {
            (format!("socks5://{addr}"), None)
        }
        Role::GoodSocksAuth => (
            format!("socks5://pool:{POOL_PASSWORD}@{addr}"),
            Some(format!("socks5://pool:***@{addr}")),
        ),
        Role::Dead if index.is_multiple_of(2) => (addr.to_string(), None),
        Role::Dead => (format!("socks5://{addr}"), None),
    };
    let shown = shown.unwrap_or_else(|| token.clone());
    PoolProxy {
        role,
        token,
        shown,
        addr,
        peer,
        _dead: dead,
    }
}

/// The pool's roles, interleaved by a fixed shuffle.
fn pool_roles() -> Vec<Role> {
    let mut roles = Vec::new();
    let mut add = |role: Role, n: usize| roles.resize(roles.len() + n, role);
    add(Role::GoodHttp, 30);
    add(Role::GoodHttpScheme, 20);
    add(Role::GoodHttpAuth, 10);
    add(Role::GoodSocks, 50);
    add(Role::GoodSocksAuth, 10);
    add(Role::HttpAuthMissing, 10);
    add(Role::Http403, 14);
    add(Role::Dead, 20);
    add(Role::StalledHttp, 10);
    add(Role::StalledSocks, 10);
    for code in 1..=8 {
        add(Role::SocksRefuses(code), 2);
    }
    // Fisher-Yates with a fixed LCG: the same interleaving every run.
    let mut state: u64 = 0x5eed_1234_abcd_ef01;
    for i in (1..roles.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = (state >> 33) as usize % (i + 1);
        roles.swap(i, j);
    }
    roles
}

#[test]
fn pool_check_of_200_proxies_gives_200_correct_records_in_time() {
    let _ = rlimit::increase_nofile_limit(4096);
    let origin = origin_server();
    let roles = pool_roles();
    assert_eq!(roles.len(), 200);
    let pool: Vec<PoolProxy> = roles
        .iter()
        .enumerate()
        .map(|(i, &role)| pool_proxy(role, i))
        .collect();
    let list: String = pool.iter().map(|p| format!("{}\n", p.token)).collect();
    let file = temp_file("proxies.txt", list.as_bytes());
    let url = format!("http://origin.test:{}/pool", origin.port());

    let started = Instant::now();
    let out = headprobe()
        .args(["--proxy-check", &url, "-f"])
        .arg(&file)
        .args(["-c", "100", "--connect-timeout", "1s", "-t", "2s"])
        .args(["--format", "status"])
        .run();
    let took = started.elapsed();
    out.expect_code(1);

    // -t 2s bounds every probe; 200 probes at -c 100 are at most two waves of them.
    let bound = Duration::from_secs(2 * 2);
    let margin = Duration::from_secs(2);
    assert!(
        took < bound + margin,
        "took {took:?}, bound {bound:?} + {margin:?}"
    );

    let rows = out.status_rows();
    assert_eq!(rows.len(), 200, "one record per proxy\n{out:?}");
    let mut by_target = std::collections::HashMap::new();
    for row in &rows {
        assert_eq!(row.len(), 5, "{row:?}");
        assert!(
            by_target.insert(row[0].clone(), row.clone()).is_none(),
            "target {} twice",
            row[0]
        );
    }
    let mut counts = std::collections::BTreeMap::new();
    for p in &pool {
        let row = by_target
            .get(&p.shown)
            .unwrap_or_else(|| panic!("no record for {} ({:?})\n{out:?}", p.shown, p.role));
        assert_eq!(row[1], p.role.expected(), "{:?}: {row:?}", p.role);
        assert_eq!(row[3], p.addr.to_string(), "{:?}: {row:?}", p.role);
        *counts.entry(row[1].clone()).or_insert(0) += 1;
        let total: u64 = row[2].parse().expect("TOTAL_MS");
        match p.role {
            Role::StalledSocks => assert!(
                (990..1900).contains(&total),
                "stalled SOCKS5 is bounded by --connect-timeout 1s: {row:?}"
            ),
            Role::StalledHttp => assert!(
                (300..1900).contains(&total),
                "a port silent to every protocol is bounded by --connect-timeout 1s: {row:?}"
            ),
            Role::SocksRefuses(code) => assert!(
                row[4].contains(&format!("(reply {code})")),
                "{:?}: {row:?}",
                p.role
            ),
            Role::GoodHttp
            | Role::GoodHttpScheme
            | Role::GoodHttpAuth
            | Role::GoodSocks
            | Role::GoodSocksAuth => assert_eq!(row[4], "OK", "{row:?}"),
            _ => {}
        }
        if let (Some(peer), Role::GoodHttp | Role::GoodHttpScheme | Role::GoodHttpAuth) =
            (&p.peer, p.role)
        {
            let seen = peer.seen();
            assert!(
                seen.text().starts_with(&format!("GET {url} HTTP/1.0\r\n")),
                "{seen:?}"
            );
        }
        if let (Some(peer), Role::GoodSocks | Role::GoodSocksAuth) = (&p.peer, p.role) {
            let seen = peer.seen();
            assert!(
                seen.bytes
                    .ends_with(&socks_name_request("origin.test", origin.port())),
                "{seen:?}"
            );
        }
    }
    assert_eq!(
        counts,
        [
            ("200", 120),
            ("403", 14),
            ("proxy", 26),
            ("refused", 20),
            ("timeout", 20)
        ]
        .map(|(k, v)| (k.to_string(), v))
        .into_iter()
        .collect(),
    );
    assert!(
        !out.out().contains(POOL_PASSWORD) && !out.err().contains(POOL_PASSWORD),
        "{out:?}"
    );
}

#[test]
fn ordered_status_lists_the_pool_in_input_order_for_awk() {
    let origin = origin_server();
    let stalled = stalling();
    let good_http = HttpProxy::default().start();
    let dead = dead();
    let good_socks = Socks5::default().start();
    let refusing = Socks5 {
        reply: 2,
        ..Socks5::default()
    }
    .start();
    let auth = HttpProxy {
        auth: Some(basic("x", "y")),
        ..HttpProxy::default()
    }
    .start();
    let good_http2 = HttpProxy::default().start();
    // The stalled one first: it finishes last, so completion order differs.
    let tokens = [
        stalled.url("socks5"),
        good_http.hostport(),
        dead.addr.to_string(),
        good_socks.url("socks5"),
        refusing.url("socks5"),
        auth.url("http"),
        good_http2.url("http"),
    ];
    let kinds = ["timeout", "200", "refused", "200", "proxy", "proxy", "200"];
    let url = format!("http://origin.test:{}/", origin.port());
    let run = |ordered: bool| {
        let mut cmd = headprobe()
            .args(["--proxy-check", &url, "--format", "status"])
            .args(["--connect-timeout", "1s", "-t", "3s"]);
        if ordered {
            cmd = cmd.arg("--ordered");
        }
        let out = cmd.args(&tokens).run();
        out.expect_code(1);
        out
    };

    let out = run(true);
    let rows = out.status_rows();
    let got: Vec<(&str, &str)> = rows.iter().map(|r| (&r[0][..], &r[1][..])).collect();
    let want: Vec<(&str, &str)> = tokens.iter().map(|t| &t[..]).zip(kinds).collect();
    assert_eq!(got, want, "--ordered: input order\n{out:?}");

    let mut awk = Command::new("awk")
        .arg("$2==200")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run awk");
    awk.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let awk = awk.wait_with_output().expect("awk output");
    let working: Vec<String> = String::from_utf8_lossy(&awk.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    assert_eq!(
        working,
        [
            good_http.hostport(),
            good_socks.url("socks5"),
            good_http2.url("http")
        ],
        "awk '$2==200' lists exactly the working proxies, in input order"
    );

    // Without --ordered, as completed: the stalled proxy comes last.
    let out = run(false);
    let rows = out.status_rows();
    assert_eq!(rows.len(), tokens.len(), "{out:?}");
    assert_eq!(rows.last().unwrap()[0], tokens[0], "as completed\n{out:?}");
}

// ---------------------------------------------------------------------------------------
// Credential redaction
// ---------------------------------------------------------------------------------------

#[test]
fn credentials_never_appear_in_any_output() {
    // Every password below contains this; the percent-encoded one too.
    const SECRET: &str = "Zq7x";
    let user = "alice";
    let pw = "Zq7xRight";
    let wrong = "Zq7xWrong";

    let origin = origin_server();
    let tls = tls_origin();
    let http = HttpProxy {
        auth: Some(basic(user, pw)),
        ..HttpProxy::default()
    }
    .start();
    let refusing = HttpProxy {
        auth: Some(basic(user, pw)),
        refuse_connect: Some(refusal(403, "Forbidden")),
        ..HttpProxy::default()
    }
    .start();
    let socks = Socks5 {
        auth: Some((user.into(), pw.into())),
        ..Socks5::default()
    }
    .start();
    let stalled = stalling();
    let dead = dead();
    let ca = cacert();
    let plain = format!("http://127.0.0.1:{}/", origin.port());
    let secure = format!("https://probe.test:{}/", tls.port());

    // Things that must not be printed: the passwords as given and decoded, and the
    // Basic credentials headprobe computes.
    let mut forbidden = vec![SECRET.to_string()];
    for p in [pw, wrong, "Zq7x@Enc"] {
        let basic = basic(user, p);
        forbidden.push(basic.trim_start_matches("Basic ").to_string());
    }

    let url_with = |peer: &Peer, scheme: &str, p: &str| peer.url_with(scheme, user, p);
    let dead_with = |scheme: &str| format!("{scheme}://{user}:{pw}@{}", dead.addr);
    // (--proxy URL, targets)
    let mut runs: Vec<Vec<String>> = Vec::new();
    for proxy in [
        url_with(&http, "http", pw),
        url_with(&http, "http", wrong),
        url_with(&http, "http", "Zq7x%40Enc"),
        url_with(&refusing, "http", pw),
        url_with(&socks, "socks5", pw),
        url_with(&socks, "socks5", wrong),
        url_with(&stalled, "http", pw),
        url_with(&stalled, "socks5", pw),
        dead_with("http"),
        dead_with("socks5"),
    ] {
        runs.push(vec!["--proxy".into(), proxy, plain.clone(), secure.clone()]);
    }
    // --proxy-check with credentials in the tokens, valid and not.
    runs.push(vec![
        "--proxy-check".into(),
        plain.clone(),
        url_with(&http, "http", pw),
        url_with(&http, "http", wrong),
        format!("{user}:{pw}@{}", http.addr()),
        url_with(&socks, "socks5", pw),
        url_with(&socks, "socks5", wrong),
        url_with(&stalled, "socks5", pw),
        dead_with("http"),
        dead_with("socks5"),
        format!("http://{user}:{pw}@127.0.0.1:0"),
        format!("ftp://{user}:{pw}@127.0.0.1:1"),
        format!("socks5://{user}:{pw}@127.0.0.1:1/path"),
        format!("http://{user}:{pw}@bad host:1"),
        format!("http://{user}:Zq7x%zz@127.0.0.1:1"),
    ]);
    runs.push(vec![
        "--proxy-check".into(),
        secure.clone(),
        url_with(&http, "http", pw),
        url_with(&refusing, "http", pw),
        url_with(&socks, "socks5", pw),
    ]);

    let check = |out: &Outcome, what: &str| {
        for bad in &forbidden {
            assert!(
                !out.out().contains(bad.as_str()) && !out.err().contains(bad.as_str()),
                "{bad:?} printed by {what}\n{out:?}"
            );
        }
    };
    for args in &runs {
        for format in ["text", "status", "json"] {
            let out = headprobe()
                .args(["--format", format, "--progress", "--cacert", &ca])
                .args(["--connect-timeout", "1s", "-t", "2s"])
                .args(args)
                .run();
            let what = format!("--format {format} {args:?}");
            assert!(
                out.code == Some(0) || out.code == Some(1),
                "{what}\n{out:?}"
            );
            assert!(!out.stdout.is_empty(), "{what}: no output\n{out:?}");
            check(&out, &what);
            if format == "json" && args[0] == "--proxy-check" {
                for r in out.json() {
                    let target = r["target"].as_str().unwrap();
                    if target.contains('@') {
                        assert!(target.contains(&format!("{user}:***@")), "{r}");
                    }
                }
            }
        }
    }

    // Usage errors that carry credentials.
    for args in [
        vec![
            "--proxy".to_string(),
            format!("http://{user}:{pw}@127.0.0.1:0"),
            plain.clone(),
        ],
        vec![
            "--proxy".to_string(),
            format!("ftp://{user}:{pw}@127.0.0.1:1"),
            plain.clone(),
        ],
        vec![
            "--proxy".to_string(),
            format!("socks5://{user}:{pw}@127.0.0.1:1/x"),
            plain.clone(),
        ],
        vec![
            "--proxy".to_string(),
            format!("http://{user}:{pw}%g@127.0.0.1:1"),
            plain.clone(),
        ],
        vec![
            "--proxy".to_string(),
            format!("http://{user}:{pw}@127.0.0.1:1"),
            "--proxy-check".to_string(),
            plain.clone(),
            "127.0.0.1:1".to_string(),
        ],
    ] {
        let out = headprobe().args(&args).run();
        out.expect_code(2);
        check(&out, &format!("{args:?}"));
    }
}

/// The contract: "Credentials never appear in any output: where a target token itself
/// carries `user:pass@`, its echo in `target` shows `user:***@`." That holds for the
/// probed targets too, not only for the proxies of `--proxy-check`.
#[test]
fn credentials_in_target_tokens_are_redacted_in_their_echo() {
    let proxy = HttpProxy::default().start();
    let proxy_url = proxy.url("http");
    let tokens = [
        "http://alice:Zq7xTarget@127.0.0.1:9/",
        "https://alice:Zq7xTarget@127.0.0.1:9/",
        "alice:Zq7xTarget@127.0.0.1:9",
    ];
    for with_proxy in [true, false] {
        for format in ["text", "status", "json"] {
            let mut cmd = headprobe().args(["--format", format]);
            if with_proxy {
                cmd = cmd.args(["--proxy", &proxy_url]);
            }
            let out = cmd.args(tokens).run();
            let what = format!("--format {format}, --proxy: {with_proxy}");
            assert_eq!(out.lines().len(), tokens.len(), "{what}\n{out:?}");
            assert!(
                !out.out().contains("Zq7x") && !out.err().contains("Zq7x"),
                "{what}: a password in a target token was echoed\n{out:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// A real peer: tinyproxy
// ---------------------------------------------------------------------------------------

/// tinyproxy on a loopback port, killed on drop.
struct Tinyproxy {
    child: std::process::Child,
    port: u16,
    _config: PathBuf,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tinyproxy_binary() -> Option<PathBuf> {
    ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Starts tinyproxy in the foreground, waiting for it to say it accepts connections.
fn start_tinyproxy(binary: &PathBuf) -> Tinyproxy {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        l.local_addr().unwrap().port()
    };
    // No LogFile, no Syslog: in the foreground tinyproxy logs to standard output.
    let config = temp_file(
        "tinyproxy.conf",
        format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 10\nAllow 127.0.0.1\nMaxClients 20\n\
             LogLevel Info\nDisableViaHeader Yes\n"
        )
        .as_bytes(),
    );
    let mut child = Command::new(binary)
        .arg("-d")
        .arg("-c")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tinyproxy");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let proxy = Tinyproxy {
        child,
        port,
        _config: config,
    };
    let deadline = Instant::now() + WAIT;
    let mut log = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let ready = line.contains("Accepting connections");
                log.push(line);
                if ready {
                    return proxy;
                }
            }
            Err(_) => panic!("tinyproxy did not start:\n{}", log.join("\n")),
        }
    }
}

#[test]
fn tinyproxy_as_a_real_peer() {
    let Some(binary) = tinyproxy_binary() else {
        eprintln!("skipped: tinyproxy is not installed (apt-get install tinyproxy)");
        return;
    };
    let origin = origin_server();
    let tls = tls_origin();
    let proxy = start_tinyproxy(&binary);
    let plain = format!("http://127.0.0.1:{}/tiny", origin.port());
    let secure = format!("https://127.0.0.1:{}/", tls.port());
    let ca = cacert();
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    let out = headprobe()
        .args(["--format", "json", "--ordered", "--cacert", &ca])
        .args(["--proxy", &proxy_url, &plain, &secure])
        .run();
    out.expect_code(0);
    let records = out.json();
    assert_eq!(records.len(), 2, "{out:?}");
    let (p, s) = (&records[0], &records[1]);
    assert_eq!(p["ok"], true, "{p}");
    assert_eq!(p["status"], 200, "{p}");
    assert!(
        p["headers"]
            .as_array()
            .unwrap()
            .contains(&json!(["X-Origin", "yes"])),
        "{p}"
    );
    assert_eq!(p["path"], plain.as_str());
    assert_eq!(p["tunnel"], Value::Null);
    assert!(
        origin.request_text().starts_with("GET /tiny HTTP/1.0\r\n"),
        "tinyproxy forwarded in origin form"
    );

    assert_eq!(s["ok"], true, "{s}");
    assert_eq!(s["tls"]["verified"], true, "{s}");
    assert_eq!(s["tunnel"]["status"], 200, "{s}");
    assert!(!s["timing_ms"]["proxy"].is_null(), "{s}");
    assert!(tls.seen().bytes.starts_with(b"GET / HTTP/1.0\r\n"));
}

// ---------------------------------------------------------------------------------------
// More proxies (issue 14): SOCKS4 and 4a, socks5h, protocol detection of bare tokens
// ---------------------------------------------------------------------------------------

/// A SOCKS4/4a proxy (CONNECT only), as real ones are: it dispatches on the version byte
/// and closes on anything but 4. Names (4a) are mapped to 127.0.0.1 without DNS.
#[derive(Clone)]
struct Socks4 {
    /// Answer every CONNECT with this code (0x5a: connect and relay).
    reply: u8,
    /// The reply's version byte: 0 per the protocol; some servers send 4.
    vn: u8,
    /// Answer a request that is not SOCKS4 with a rejection (0x5b) instead of closing.
    reject_others: bool,
}

impl Default for Socks4 {
    fn default() -> Self {
        Socks4 {
            reply: 0x5a,
            vn: 0,
            reject_others: false,
        }
    }
}

/// Reads up to and including a NUL (at most 256 bytes), keeping the bytes in `seen`.
fn take_until_nul(c: &mut TcpStream, seen: &mut Seen) -> Option<Vec<u8>> {
    let mut field = Vec::new();
    loop {
        let b = take(c, seen, 1)?[0];
        if b == 0 {
            return Some(field);
        }
        field.push(b);
        if field.len() > 256 {
            return None;
        }
    }
}

impl ScriptedProxy for Socks4 {
    fn handshake(&self, c: &mut TcpStream, seen: &mut Seen) -> Option<TcpStream> {
        if take(c, seen, 1)?[0] != 4 {
            if self.reject_others {
                let _ = c.write_all(&[0, 0x5b, 0, 0, 0, 0, 0, 0]);
            }
            return None;
        }
        let head = take(c, seen, 7)?;
        let port = u16::from_be_bytes([head[1], head[2]]);
        let ip = Ipv4Addr::new(head[3], head[4], head[5], head[6]);
        let _user = take_until_nul(c, seen)?;
        let host = match ip.octets() {
            [0, 0, 0, x] if x != 0 => {
                String::from_utf8_lossy(&take_until_nul(c, seen)?).into_owned()
            }
            _ => ip.to_string(),
        };
        let answer = |code: u8| {
            [
                self.vn, code, head[1], head[2], head[3], head[4], head[5], head[6],
            ]
        };
        if head[0] != 1 {
            let _ = c.write_all(&answer(0x5b));
            return None;
        }
        if self.reply != 0x5a {
            let _ = c.write_all(&answer(self.reply));
            return None;
        }
        let Ok(upstream) = TcpStream::connect_timeout(&origin_for(&host, port, None), WAIT) else {
            let _ = c.write_all(&answer(0x5b));
            return None;
        };
        c.write_all(&answer(0x5a)).ok()?;
        Some(upstream)
    }
}

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

/// The SOCKS4 request headprobe must send.
fn socks4_request(port: u16, ip: [u8; 4], user: &str, name: Option<&str>) -> Vec<u8> {
    let mut req = vec![4, 1];
    req.extend_from_slice(&port.to_be_bytes());
    req.extend_from_slice(&ip);
    req.extend_from_slice(user.as_bytes());
    req.push(0);
    if let Some(name) = name {
        req.extend_from_slice(name.as_bytes());
        req.push(0);
    }
    req
}

#[test]
fn socks4_sends_the_ipv4_address_resolved_here_and_the_user_id() {
    let origin = origin_server();
    for vn in [0, 4] {
        let socks = Socks4 {
            vn,
            ..Socks4::default()
        }
        .start();
        let url = format!("http://origin.test:{}/four", origin.port());
        let proxy = format!("socks4://bob@{}", socks.addr());
        let (out, r) = json_run(&[
            "--proxy",
            &proxy,
            "--resolve",
            &format!("origin.test:{}:127.0.0.1", origin.port()),
            &url,
        ]);
        out.expect_code(0);
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["proxy"], socks.url("socks4"), "{r}");
        assert_eq!(r["detected"], Value::Null, "only pool checks detect: {r}");
        assert!(!r["timing_ms"]["proxy"].is_null(), "{r}");
        let seen = socks.seen();
        assert_eq!(
            seen.bytes,
            socks4_request(origin.port(), [127, 0, 0, 1], "bob", None),
            "the name is resolved here (--resolve), the user id sent"
        );
        assert!(origin
            .request_text()
            .starts_with("GET /four HTTP/1.0\r\nHost: origin.test:"));
    }
}

#[test]
fn socks4a_sends_names_for_the_proxy_to_resolve() {
    let origin = origin_server();
    let socks = Socks4::default().start();
    let url = format!("http://origin.test:{}/", origin.port());
    let (out, r) = json_run(&["--proxy", &socks.url("socks4a"), &url]);
    out.expect_code(0);
    assert_eq!(r["proxy"], socks.url("socks4a"), "{r}");
    assert_eq!(
        socks.seen().bytes,
        socks4_request(origin.port(), [0, 0, 0, 1], "", Some("origin.test"))
    );
    // An IPv4 literal goes as an address even with socks4a.
    let url = format!("http://127.0.0.1:{}/", origin.port());
    let (out, _) = json_run(&["--proxy", &socks.url("socks4a"), &url]);
    out.expect_code(0);
    assert_eq!(
        socks.seen().bytes,
        socks4_request(origin.port(), [127, 0, 0, 1], "", None)
    );
}

#[test]
fn socks4_carries_https_with_the_name_in_sni() {
    let tls = tls_origin();
    let socks = Socks4::default().start();
    let ca = cacert();
    let mut args = vec![
        "--cacert".to_string(),
        ca,
        "--proxy".into(),
        socks.url("socks4"),
    ];
    args.extend(tls.resolve("probe.test"));
    args.push(tls.https_url("probe.test"));
    let (out, r) = json_run(&args);
    out.expect_code(0);
    assert_eq!(r["tls"]["verified"], true, "{r}");
    assert_eq!(tls.seen().sni.as_deref(), Some("probe.test"));
}

#[test]
fn socks4_cannot_carry_ipv6_targets() {
    let socks = Socks4::default().start();
    let proxy = socks.url("socks4");
    for (target, resolve) in [
        ("http://[::1]:9/", None),
        ("http://v6only.test:9/", Some("v6only.test:9:[::1]")),
    ] {
        let mut args = vec!["--proxy", &proxy, target];
        if let Some(entry) = resolve {
            args.extend(["--resolve", entry]);
        }
        let r = failing(&args, "proxy");
        let m = message(&r);
        assert!(
            m.contains("IPv4") && m.contains("IPv6") && m.contains("socks4a://"),
            "{m}"
        );
    }
    // socks4a cannot either, for an IPv6 literal; SOCKS5 can.
    let r = failing(
        &["--proxy", &socks.url("socks4a"), "http://[::1]:9/"],
        "proxy",
    );
    assert!(message(&r).contains("socks5://"), "{r}");
}

#[test]
fn socks4_error_replies_are_kind_proxy_with_their_meaning() {
    let cases = [
        (0x5b, "rejected or failed"),
        (0x5c, "identd"),
        (0x5d, "different user id"),
    ];
    for (code, words) in cases {
        let socks = Socks4 {
            reply: code,
            ..Socks4::default()
        }
        .start();
        let r = failing(
            &["--proxy", &socks.url("socks4"), "http://127.0.0.1:9/"],
            "proxy",
        );
        let m = message(&r);
        assert!(m.contains(words), "{code:#x}: {m}");
        assert!(m.contains(&format!("0x{code:02x}")), "{m}");
        assert!(
            m.contains(&socks.url("socks4")) && m.contains("127.0.0.1:9"),
            "{m}"
        );
    }
}

#[test]
fn socks4_proxy_answering_garbage_is_described_in_escapes() {
    // A TLS server's alert where a SOCKS4 reply belongs.
    let server = Server::start(Behaviour::Banner(b"\x15\x03\x01\x00\x02\x02\x28".to_vec()));
    let r = failing(
        &[
            "--proxy",
            &format!("socks4://{}", server.target()),
            "http://127.0.0.1:9/",
        ],
        "proxy",
    );
    let m = message(&r);
    assert!(m.contains(r#""\x15\x03\x01\x00\x02\x02("#), "{m}");
    assert!(!m.contains("\\u{"), "{m}");
}

#[test]
fn connect_answered_with_non_http_is_described_in_escapes() {
    let server = Server::start(Behaviour::Banner(b"\x16\x03\x01\x00\xff\xfeSSH".to_vec()));
    let r = failing(
        &[
            "--proxy",
            &format!("http://{}", server.target()),
            "https://127.0.0.1:9/",
        ],
        "proxy",
    );
    let m = message(&r);
    assert!(m.contains(r#""\x16\x03\x01\x00\xff\xfeSSH""#), "{m}");
    assert!(!m.contains("\\u{") && !m.contains('\u{fffd}'), "{m}");
}

#[test]
fn socks5h_is_socks5() {
    let origin = origin_server();
    let socks = Socks5::default().start();
    let url = format!("http://origin.test:{}/", origin.port());
    let (out, r) = json_run(&["--proxy", &socks.url("socks5h"), &url]);
    out.expect_code(0);
    assert_eq!(r["proxy"], socks.url("socks5"), "{r}");
    assert!(socks
        .seen()
        .bytes
        .ends_with(&socks_name_request("origin.test", origin.port())));
}

/// One proxy of a detection run: what headprobe must find.
fn check_detected(r: &Value, proxy: Option<String>, kind: Option<&str>) {
    assert_eq!(r["detected"], true, "{r}");
    assert_eq!(r["proxy"].as_str(), proxy.as_deref(), "{r}");
    let scheme = proxy
        .as_deref()
        .and_then(|p| p.split_once("://"))
        .map(|(s, _)| s);
    assert_eq!(r["scheme"].as_str(), scheme, "{r}");
    assert_eq!(r["error"]["kind"].as_str(), kind, "{r}");
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

// ---------------------------------------------------------------------------------------
// A real SOCKS5 peer: microsocks
// ---------------------------------------------------------------------------------------

/// microsocks on a loopback port, killed on drop.
struct Microsocks {
    child: std::process::Child,
    port: u16,
}

impl Microsocks {
    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Microsocks {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn microsocks_binary() -> Option<PathBuf> {
    ["/usr/bin/microsocks", "/usr/local/bin/microsocks"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Starts microsocks (with `user:pass` when given) and waits until it accepts.
fn start_microsocks(binary: &PathBuf, auth: Option<(&str, &str)>) -> Microsocks {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        l.local_addr().unwrap().port()
    };
    let mut cmd = Command::new(binary);
    cmd.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
    if let Some((user, pass)) = auth {
        cmd.args(["-u", user, "-P", pass]);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn microsocks");
    let socks = Microsocks { child, port };
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(socks.addr()).is_err() {
        assert!(
            Instant::now() < deadline,
            "microsocks did not start listening"
        );
        thread::sleep(Duration::from_millis(10));
    }
    socks
}

#[test]
fn microsocks_as_a_real_peer_with_and_without_auth() {
    let Some(binary) = microsocks_binary() else {
        eprintln!("skipped: microsocks is not installed (apt-get install microsocks)");
        return;
    };
    let origin = origin_server();
    let tls = tls_origin();
    let ca = cacert();
    let open = start_microsocks(&binary, None);
    let locked = start_microsocks(&binary, Some(("mu", "Zq7xMicro")));
    // IP literals only: microsocks resolves names with the system resolver.
    let plain = format!("http://127.0.0.1:{}/micro", origin.port());
    let secure = format!("https://127.0.0.1:{}/", tls.port());
    let good = [
        format!("socks5://{}", open.addr()),
        format!("socks5h://mu:Zq7xMicro@{}", locked.addr()),
    ];
    for proxy in &good {
        let out = headprobe()
            .args([
                "--format",
                "json",
                "--ordered",
                "--cacert",
                &ca,
                "--proxy",
                proxy,
            ])
            .args([&plain, &secure])
            .run();
        out.expect_code(0);
        let records = out.json();
        assert_eq!(records[0]["status"], 200, "{}", records[0]);
        assert_eq!(records[1]["tls"]["verified"], true, "{}", records[1]);
        assert!(!out.out().contains("Zq7x"), "{out:?}");
    }
    // Wrong or missing credentials: kind proxy. Detection finds it either way.
    for proxy in [
        format!("socks5://mu:Zq7xWrong@{}", locked.addr()),
        format!("socks5://{}", locked.addr()),
    ] {
        let r = failing(&["--proxy", &proxy, &plain], "proxy");
        assert!(!message(&r).contains("Zq7x"), "{r}");
    }
    let out = headprobe()
        .args(["--format", "json", "--ordered", "--proxy-check", &plain])
        .args([
            open.addr().to_string(),
            format!("mu:Zq7xMicro@{}", locked.addr()),
        ])
        .run();
    out.expect_code(0);
    let records = out.json();
    check_detected(&records[0], Some(format!("socks5://{}", open.addr())), None);
    check_detected(
        &records[1],
        Some(format!("socks5://{}", locked.addr())),
        None,
    );
}

// ---------------------------------------------------------------------------------------
// --expect-header, in every mode
// ---------------------------------------------------------------------------------------

fn header_server() -> Server {
    Server::start(Behaviour::Respond(response(
        "HTTP/1.1 200 OK",
        &[
            "Server: nginx/1.22.1",
            "Set-Cookie: a=1",
            "Set-Cookie: session=xyz",
            "X-Evil: \x1b[2Jgone",
        ],
    )))
}

#[test]
fn expect_header_hits() {
    let server = header_server();
    for expect in [
        vec!["Server: nginx"],
        vec!["server: ^nginx/1\\.22"],
        vec!["SET-COOKIE: ^session="],
        vec!["Server: nginx", "Set-Cookie: a=1"],
        vec!["Server:"],
    ] {
        let mut args = vec![server.target()];
        for e in &expect {
            args.extend(["--expect-header".to_string(), e.to_string()]);
        }
        let (out, r) = json_run(&args);
        out.expect_code(0);
        assert_eq!(r["ok"], true, "{expect:?}: {r}");
    }
}

#[test]
fn expect_header_misses_and_missing_headers_are_header_mismatch() {
    let server = header_server();
    let target = server.target();
    let r = failing(
        &[&target, "--expect-header", "Server: ^apache"],
        "header_mismatch",
    );
    assert_eq!(
        message(&r),
        "Server is \"nginx/1.22.1\", which does not match '^apache' \
         (--expect-header 'Server: ^apache')"
    );
    assert_eq!(r["status"], 200, "the response is kept: {r}");
    let r = failing(
        &[&target, "--expect-header", "Via: proxy"],
        "header_mismatch",
    );
    assert!(message(&r).contains("no Via header"), "{r}");
    // All must hold: the second one fails.
    let r = failing(
        &[
            &target,
            "--expect-header",
            "Server: nginx",
            "--expect-header",
            "Set-Cookie: ^b=",
        ],
        "header_mismatch",
    );
    let m = message(&r);
    assert!(
        m.contains(r#"Set-Cookie is "a=1", "session=xyz""#) && m.contains("'^b='"),
        "{m}"
    );
    // Peer bytes in the message are escaped, in every format.
    let r = failing(
        &[&target, "--expect-header", "X-Evil: fine"],
        "header_mismatch",
    );
    assert!(message(&r).contains(r#""\x1b[2Jgone""#), "{r}");
    for format in ["text", "status"] {
        let out = headprobe()
            .args([
                "--format",
                format,
                "--expect-header",
                "X-Evil: fine",
                &target,
            ])
            .run();
        out.expect_code(1);
        assert!(out.out().contains("header_mismatch"), "{out:?}");
        assert_terminal_safe(&out.stdout);
    }
    // --expect-status is judged first.
    let r = failing(
        &[
            &target,
            "--expect-status",
            "204",
            "--expect-header",
            "Via: x",
        ],
        "status_mismatch",
    );
    assert!(message(&r).contains("204"), "{r}");
}

#[test]
fn a_bad_expect_header_is_a_usage_error_naming_it() {
    for (arg, named) in [
        ("Server: ngin(x", "ngin(x"),
        ("Server: [z-a]", "[z-a]"),
        ("no colon here", "no colon here"),
        ("Bad Name: x", "Bad Name"),
    ] {
        let out = headprobe()
            .args(["--expect-header", arg, "127.0.0.1:9"])
            .run();
        out.expect_code(2);
        assert!(out.stdout.is_empty(), "nothing probed: {out:?}");
        let err = out.err();
        assert!(
            err.contains("--expect-header") && err.contains(named),
            "{arg}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn expect_header_applies_through_proxies_too() {
    let origin = origin_server();
    let socks = Socks5::default().start();
    let url = format!("http://127.0.0.1:{}/", origin.port());
    let (out, _) = json_run(&[
        "--proxy",
        &socks.url("socks5"),
        "--expect-header",
        "X-Origin: yes",
        &url,
    ]);
    out.expect_code(0);
    let r = failing(
        &[
            "--proxy",
            &socks.url("socks5"),
            "--expect-header",
            "X-Origin: no",
            &url,
        ],
        "header_mismatch",
    );
    assert!(message(&r).contains("X-Origin is \"yes\""), "{r}");
}
