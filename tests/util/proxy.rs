//! Loopback proxies and origins shared by the proxy suites (`proxy_http`, `proxy_socks`,
//! `proxy_pool`, `proxy_detect`, `proxy_redaction`, and `expect_header` through a proxy):
//! an HTTP forward proxy (absolute form and CONNECT), SOCKS5 (RFC 1928, RFC 1929) and
//! SOCKS4/4a proxies built here on std::net threads as `util::peer::Peer`s, a stalling
//! proxy, an address where nothing listens, the TLS origin, and the real peers tinyproxy
//! and microsocks when they are installed.
//!
//! Names never reach DNS: the test proxies map every name they are asked for to
//! 127.0.0.1 themselves (or to a fixed route), and the origins are `util::Server`s or
//! `tls_origin` (a `util::peer` TLS peer with the `util::pki` certificates).

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
use serde_json::Value;

use super::peer::{tls_handler, Peer, Seen, PEER_PATIENCE};
use super::pki::{pki, server_config};
use super::{close_and_drain, read_head, response, temp_file, Behaviour, Server, VERSION, WAIT};

// ---------------------------------------------------------------------------------------
// Loopback peers (proxies are `util::peer::Peer`s with the handlers below)
// ---------------------------------------------------------------------------------------

/// An address on 127.0.0.1 where nothing listens, held for the test's lifetime: the
/// socket is bound but never listens, so connecting is refused and no other listener can
/// take the port meanwhile.
pub struct Dead {
    _socket: socket2::Socket,
    pub addr: SocketAddr,
}

pub fn dead() -> Dead {
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
pub trait ScriptedProxy: Send + Sync + Sized + 'static {
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
pub fn basic(user: &str, pass: &str) -> String {
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
pub fn refusal(code: u16, reason: &str) -> Vec<u8> {
    response(
        &format!("HTTP/1.1 {code} {reason}"),
        &["X-Refused-By: headprobe-test", "Content-Length: 0"],
    )
}

/// An HTTP forward proxy: absolute-form requests are forwarded in origin form (without
/// `Proxy-Authorization`) and the answer relayed; CONNECT gets `CONNECT_OK` and a
/// byte-for-byte tunnel. The options make it refuse.
#[derive(Clone, Default)]
pub struct HttpProxy {
    /// The `Proxy-Authorization` value required; without it or with another: 407.
    pub auth: Option<String>,
    /// The answer to every CONNECT, instead of opening the tunnel.
    pub refuse_connect: Option<Vec<u8>>,
    /// The answer to every absolute-form request, instead of forwarding it.
    pub answer: Option<Vec<u8>>,
    /// Connect here whatever the request names.
    pub route: Option<SocketAddr>,
}

impl HttpProxy {
    pub fn start(self) -> Peer {
        let proxy = Arc::new(self);
        Peer::start(Arc::new(move |s, tx| proxy.serve(s, tx)))
    }

    pub fn serve(&self, mut client: TcpStream, tx: &Sender<Seen>) {
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

/// A SOCKS5 proxy (CONNECT only). Names are mapped to 127.0.0.1 without DNS.
#[derive(Clone, Default)]
pub struct Socks5 {
    /// Require RFC 1929 username/password authentication with these.
    pub auth: Option<(String, String)>,
    /// Answer every CONNECT with this reply code (0: connect and relay).
    pub reply: u8,
    /// Connect here whatever the request names.
    pub route: Option<SocketAddr>,
    /// Give the bound address of a successful reply as a name (address type 3).
    pub bound_as_name: bool,
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
pub fn socks_name_request(name: &str, port: u16) -> Vec<u8> {
    let mut req = vec![5, 1, 0, 3, name.len() as u8];
    req.extend_from_slice(name.as_bytes());
    req.extend_from_slice(&port.to_be_bytes());
    req
}

/// A proxy that accepts, reads whatever comes and never answers.
pub fn stalling() -> Peer {
    Peer::start(Arc::new(|mut client: TcpStream, tx: &Sender<Seen>| {
        let mut seen = Seen::default();
        drain_into(&mut client, &mut seen.bytes);
        let _ = tx.send(seen);
    }))
}

// ---------------------------------------------------------------------------------------
// The SOCKS4 and 4a proxy
// ---------------------------------------------------------------------------------------

/// A SOCKS4/4a proxy (CONNECT only), as real ones are: it dispatches on the version byte
/// and closes on anything but 4. Names (4a) are mapped to 127.0.0.1 without DNS.
#[derive(Clone)]
pub struct Socks4 {
    /// Answer every CONNECT with this code (0x5a: connect and relay).
    pub reply: u8,
    /// The reply's version byte: 0 per the protocol; some servers send 4.
    pub vn: u8,
    /// Answer a request that is not SOCKS4 with a rejection (0x5b) instead of closing.
    pub reject_others: bool,
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

/// The SOCKS4 request headprobe must send.
pub fn socks4_request(port: u16, ip: [u8; 4], user: &str, name: Option<&str>) -> Vec<u8> {
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

// ---------------------------------------------------------------------------------------
// The TLS origin
// ---------------------------------------------------------------------------------------

/// A TLS origin: handshake, read the request head, answer 200, close_notify, close.
pub fn tls_origin() -> Peer {
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
pub fn default_request(request_target: &str, host: &str, extra: &[&str]) -> String {
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

pub fn origin_server() -> Server {
    Server::start(Behaviour::Respond(response(
        "HTTP/1.0 200 OK",
        &["Server: origin", "X-Origin: yes", "Content-Length: 0"],
    )))
}

// ---------------------------------------------------------------------------------------
// Proxy pools
// ---------------------------------------------------------------------------------------

pub const POOL_PASSWORD: &str = "Zq7xPoolPw";

/// One proxy of a detection run: what headprobe must find.
pub fn check_detected(r: &Value, proxy: Option<String>, kind: Option<&str>) {
    assert_eq!(r["detected"], true, "{r}");
    assert_eq!(r["proxy"].as_str(), proxy.as_deref(), "{r}");
    let scheme = proxy
        .as_deref()
        .and_then(|p| p.split_once("://"))
        .map(|(s, _)| s);
    assert_eq!(r["scheme"].as_str(), scheme, "{r}");
    assert_eq!(r["error"]["kind"].as_str(), kind, "{r}");
}

// ---------------------------------------------------------------------------------------
// Real peers: tinyproxy and microsocks
// ---------------------------------------------------------------------------------------

/// tinyproxy on a loopback port, killed on drop.
pub struct Tinyproxy {
    child: std::process::Child,
    pub port: u16,
    _config: PathBuf,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn tinyproxy_binary() -> Option<PathBuf> {
    ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Starts tinyproxy in the foreground, waiting for it to say it accepts connections.
pub fn start_tinyproxy(binary: &PathBuf) -> Tinyproxy {
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

/// microsocks on a loopback port, killed on drop.
pub struct Microsocks {
    child: std::process::Child,
    port: u16,
}

impl Microsocks {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Microsocks {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn microsocks_binary() -> Option<PathBuf> {
    ["/usr/bin/microsocks", "/usr/local/bin/microsocks"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Starts microsocks (with `user:pass` when given) and waits until it accepts.
pub fn start_microsocks(binary: &PathBuf, auth: Option<(&str, &str)>) -> Microsocks {
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
