//! Hostile peers on loopback, each with the record it must produce: slow, silent, rude,
//! oversized, binary and deaf servers, control bytes aimed at the user's terminal, and the
//! same mix at scale.
//!
//! Each single hostile peer is probed in `json`, `text` and `status` format; the three
//! runs go at once, so a case that waits for a deadline costs one deadline, not three.
//! Servers that `util::Server` cannot script are `Peer`s below (socket2 only for the
//! listener options std lacks: backlog, SO_RCVBUF, TCP_MAXSEG, SO_LINGER).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use socket2::{Domain, SockRef, Socket, Type};

use crate::util::*;

/// How much later than its deadline a run may end. A bound for a loaded shared machine,
/// not a speed claim: a probe that waits for the peer instead of its deadline misses it
/// by far more.
const MARGIN: Duration = Duration::from_millis(2500);

/// A connection of a `Peer` never waits for its client longer than this, so no server
/// thread outlives its test by much.
const PATIENCE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// A loopback server of our own, for what `util::Server` cannot do: a deep accept queue for
// a thousand concurrent clients, a small receive buffer and segment size, a reset after
// data, and a count of live connection threads.

#[derive(Default)]
struct Live {
    n: Mutex<usize>,
    cv: Condvar,
}

/// Uncounts a connection thread when it ends, however it ends.
struct LiveGuard(Arc<Live>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        *self.0.n.lock().unwrap() -= 1;
        self.0.cv.notify_all();
    }
}

/// An accept thread and one thread per connection, each running the handler with the
/// accepted stream (read and write timeouts set to `PATIENCE`) and its accept index.
struct Peer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    live: Arc<Live>,
    accept: Option<JoinHandle<()>>,
}

type Handler = Arc<dyn Fn(TcpStream, usize) + Send + Sync>;

impl Peer {
    fn start(handler: impl Fn(TcpStream, usize) + Send + Sync + 'static) -> Peer {
        Peer::start_with(None, None, handler)
    }

    /// With `recv_buffer` and `mss` set on the listener, so accepted connections inherit
    /// them from the handshake on.
    fn start_with(
        recv_buffer: Option<usize>,
        mss: Option<u32>,
        handler: impl Fn(TcpStream, usize) + Send + Sync + 'static,
    ) -> Peer {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        if let Some(n) = recv_buffer {
            socket.set_recv_buffer_size(n).expect("SO_RCVBUF");
        }
        if let Some(n) = mss {
            socket.set_mss(n).expect("TCP_MAXSEG");
        }
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket.bind(&any.into()).expect("bind 127.0.0.1:0");
        socket.listen(4096).expect("listen");
        let listener: TcpListener = socket.into();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let live = Arc::new(Live::default());
        let handler: Handler = Arc::new(handler);
        let accept = {
            let (stop, live) = (Arc::clone(&stop), Arc::clone(&live));
            thread::spawn(move || accept_loop(listener, &stop, &live, &handler))
        };
        Peer {
            addr,
            stop,
            live,
            accept: Some(accept),
        }
    }

    fn target(&self) -> String {
        self.addr.to_string()
    }

    /// Waits until every connection thread has ended; false if some still run after
    /// `within`.
    fn wait_idle(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut n = self.live.n.lock().unwrap();
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            n = self.live.cv.wait_timeout(n, left).unwrap().0;
        }
        true
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept thread so that it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(listener: TcpListener, stop: &AtomicBool, live: &Arc<Live>, handler: &Handler) {
    for (i, conn) in listener.incoming().enumerate() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else { continue };
        *live.n.lock().unwrap() += 1;
        let guard = LiveGuard(Arc::clone(live));
        let handler = Arc::clone(handler);
        // A small stack: at scale a thousand of these run at once.
        let spawned = thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let _guard = guard;
                let _ = stream.set_read_timeout(Some(PATIENCE));
                let _ = stream.set_write_timeout(Some(PATIENCE));
                handler(stream, i);
            });
        // On failure the closure, guard and stream included, is dropped: the client sees
        // a close and the test a wrong record.
        drop(spawned);
    }
}

/// Reads the request up to its blank line (or EOF, an error, or 1 MiB).
fn read_head(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 1 << 20 {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    buf
}

/// Reads and discards until the client closes; returns the byte count.
fn drain(s: &mut TcpStream) -> usize {
    let mut total = 0;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return total,
        }
    }
}

/// Closes with FIN after everything sent.
fn close(s: TcpStream) {
    let _ = s.shutdown(Shutdown::Write);
}

/// Closes with RST (SO_LINGER 0).
fn reset(s: TcpStream) {
    let _ = SockRef::from(&s).set_linger(Some(Duration::ZERO));
    drop(s);
}

/// A gate connection threads wait at until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }

    fn wait(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let mut open = self.open.lock().unwrap();
        while !*open {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            open = self.cv.wait_timeout(open, left).unwrap().0;
        }
    }
}

/// Xorshift64: seeded random bytes without another crate.
fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// A slowloris script for `util::Server`: a status line and one header at once (so that
/// something is kept when the deadline cuts in), then one byte every 500 ms of header
/// lines that never end, for far longer than any deadline here.
fn slowloris_steps() -> Vec<Step> {
    let mut steps = vec![Step::Write(
        b"HTTP/1.1 200 OK\r\nServer: slowloris\r\n".to_vec(),
    )];
    let drip: Vec<u8> = (0..10)
        .flat_map(|i| format!("X-Drip-{i}: a\r\n").into_bytes())
        .take(60)
        .collect();
    for b in drip {
        steps.push(Step::Sleep(Duration::from_millis(500)));
        steps.push(Step::Write(vec![b]));
    }
    steps
}

// ---------------------------------------------------------------------------------------
// Running the binary in the three formats.

/// The json, text and status runs of one probe.
struct Runs {
    target: String,
    json: Value,
    json_out: Outcome,
    text: Outcome,
    status: Outcome,
    /// Until the last of the three had exited.
    took: Duration,
}

/// Probes `target` with `extra` options in json, text and status format at once; checks
/// what every hostile probe must satisfy: the exit code, one record per format, and
/// output that cannot drive a terminal.
#[track_caller]
fn probe_all_formats(target: &str, extra: &[&str], code: i32) -> Runs {
    let started = Instant::now();
    let spawn = |format: &str| {
        headprobe()
            .args(["--format", format])
            .args(extra)
            .arg(target)
            .spawn()
    };
    let running = [spawn("json"), spawn("text"), spawn("status")];
    let [json_out, text, status] = running.map(|r| r.finish());
    let took = started.elapsed();
    for out in [&json_out, &text, &status] {
        assert_eq!(out.code, Some(code), "unexpected exit\n{}", show(out));
    }
    assert_json_clean(&json_out.stdout);
    assert_terminal_safe(&text.stdout);
    assert_terminal_safe(&status.stdout);
    let rows = status.status_rows();
    assert_eq!(rows.len(), 1, "one status row expected\n{}", show(&status));
    assert_eq!(
        rows[0].len(),
        5,
        "a status field was split\n{}",
        show(&status)
    );
    Runs {
        target: target.to_string(),
        json: json_out.only_json(),
        json_out,
        text,
        status,
        took,
    }
}

impl Runs {
    /// The probe failed with `kind` in every format.
    #[track_caller]
    fn failed(&self, kind: &str) -> &Self {
        let r = &self.json;
        assert_eq!(r["ok"], false, "{}", brief(r));
        assert_eq!(r["error"]["kind"], kind, "{}", brief(r));
        let message = r["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "no message: {}", brief(r));
        let last = self.text.lines().pop().unwrap_or_default();
        let prefix = format!("{} error > {kind}: ", self.target);
        assert!(last.starts_with(&prefix), "{}", show(&self.text));
        let row = &self.status.status_rows()[0];
        assert_eq!(row[0], self.target, "{}", show(&self.status));
        assert_eq!(row[1], kind, "{}", show(&self.status));
        self
    }

    /// The whole run ended within `deadline` + `MARGIN`, and not before `deadline`
    /// (less a little) when `at_least` is set.
    #[track_caller]
    fn took_about(&self, deadline: Duration, at_least: bool) -> &Self {
        let took = self.took;
        assert!(
            took < deadline + MARGIN,
            "took {took:?}\n{}",
            show(&self.text)
        );
        if at_least {
            let early = deadline.saturating_sub(Duration::from_millis(100));
            assert!(took >= early, "gave up after only {took:?}");
        }
        self
    }

    /// The text lines before the error line, without the `TARGET header > ` prefix.
    #[track_caller]
    fn text_headers(&self) -> Vec<String> {
        let prefix = format!("{} header > ", self.target);
        let mut lines = self.text.lines();
        lines.pop();
        lines
            .iter()
            .map(|l| {
                l.strip_prefix(&prefix)
                    .unwrap_or_else(|| panic!("not a header line: {l:?}\n{}", show(&self.text)))
                    .to_string()
            })
            .collect()
    }
}

/// At most about 3,000 characters of `text`, for failure messages about big outputs.
fn clip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 3000 {
        return text.to_string();
    }
    let head: String = chars[..2000].iter().collect();
    let tail: String = chars[chars.len() - 1000..].iter().collect();
    format!(
        "{head}\n[... {} characters left out ...]\n{tail}",
        chars.len() - 3000
    )
}

fn show(out: &Outcome) -> String {
    clip(&format!("{out:?}"))
}

fn brief(record: &Value) -> String {
    clip(&record.to_string())
}

/// JSON Lines output: valid UTF-8, and no raw control byte but the line ends (JSON
/// escapes the rest; DEL may stay raw in JSON, and is legal there).
#[track_caller]
fn assert_json_clean(bytes: &[u8]) {
    let text = std::str::from_utf8(bytes)
        .unwrap_or_else(|e| panic!("json output is not valid UTF-8 ({e}): {bytes:?}"));
    assert!(
        !text.bytes().any(|b| b < 0x20 && b != b'\n'),
        "raw control byte in json output: {text:?}"
    );
}

// ---------------------------------------------------------------------------------------
// One hostile peer at a time.

#[test]
fn slowloris_is_cut_at_the_deadline_keeping_complete_lines() {
    let server = Server::start(Behaviour::Script(slowloris_steps()));
    let runs = probe_all_formats(&server.target(), &["-t", "2s"], 1);
    runs.failed("timeout")
        .took_about(Duration::from_secs(2), true);
    let r = &runs.json;
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["version"], "HTTP/1.1", "{r}");
    assert_eq!(r["reason"], "OK", "{r}");
    // The dripped line is not complete: only the burst's header is kept.
    assert_eq!(r["headers"], json!([["Server", "slowloris"]]), "{r}");
    assert_eq!(r["timing_ms"]["headers"], Value::Null, "{r}");
    assert_eq!(
        runs.text_headers(),
        ["HTTP/1.1 200 OK", "Server: slowloris"]
    );
    assert_eq!(runs.status.status_rows()[0][3], runs.target);
}

#[test]
fn a_peer_that_never_sends_times_out() {
    let server = Server::start(Behaviour::Silent);
    let runs = probe_all_formats(&server.target(), &["-t", "500ms"], 1);
    runs.failed("timeout")
        .took_about(Duration::from_millis(500), true);
    let r = &runs.json;
    assert_eq!(r["status"], Value::Null, "{r}");
    assert_eq!(r["timing_ms"]["first_byte"], Value::Null, "{r}");
    assert_eq!(r["addr"], runs.target, "{r}");
    assert!(runs.text_headers().is_empty(), "{:?}", runs.text);
}

#[test]
fn a_reset_after_the_request_is_reset() {
    let server = Server::start(Behaviour::Reset);
    let runs = probe_all_formats(&server.target(), &["-t", "10s"], 1);
    runs.failed("reset").took_about(Duration::ZERO, false);
    assert_eq!(runs.json["status"], Value::Null, "{}", runs.json);
    assert_eq!(runs.json["addr"], runs.target, "{}", runs.json);
}

#[test]
fn a_reset_after_half_a_head_keeps_the_status() {
    let peer = Peer::start(|mut s, _| {
        read_head(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nServer: half\r\nX-Cut: ");
        reset(s);
    });
    let runs = probe_all_formats(&peer.target(), &["-t", "10s"], 1);
    runs.failed("reset").took_about(Duration::ZERO, false);
    let r = &runs.json;
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["headers"], json!([["Server", "half"]]), "{r}");
    assert_eq!(runs.text_headers(), ["HTTP/1.1 200 OK", "Server: half"]);
}

#[test]
fn a_close_mid_line_is_incomplete() {
    let server = Server::start(Behaviour::HalfThenClose(
        b"HTTP/1.1 200 OK\r\nServ".to_vec(),
    ));
    let runs = probe_all_formats(&server.target(), &["-t", "10s"], 1);
    runs.failed("incomplete").took_about(Duration::ZERO, false);
    let r = &runs.json;
    assert_eq!(r["status"], 200, "{r}");
    // The cut line is not a header line: nothing of it is kept.
    assert_eq!(r["headers"], json!([]), "{r}");
    assert_eq!(runs.text_headers(), ["HTTP/1.1 200 OK"]);
}

/// 200 KB of header lines from a peer that then keeps the connection open: the probe
/// stops at the 65536-byte cap, long before its deadline, keeping the complete lines.
#[test]
fn two_hundred_kb_of_headers_are_cut_at_the_cap() {
    let mut head = OVERSIZED_STATUS.as_bytes().to_vec();
    let mut i = 0;
    while head.len() < 200 * 1024 {
        head.extend_from_slice(fill_line(i).as_bytes());
        i += 1;
    }
    head.extend_from_slice(b"\r\n");
    let server = Server::start(Behaviour::Stall(head));
    let runs = probe_all_formats(&server.target(), &["-t", "10s"], 1);
    // Ending at the deadline (or when the peer closes) would take 10 s.
    runs.failed("headers_too_large")
        .took_about(Duration::ZERO, false);

    // 17 bytes of status line, then 20-byte lines: 3275 of them end by byte 65536.
    let complete = (65536 - OVERSIZED_STATUS.len()) / 20;
    assert_eq!(complete, 3275);
    let expected: Vec<Value> = (0..complete)
        .map(|i| {
            let line = fill_line(i);
            let (name, value) = line.trim_end().split_once(": ").unwrap();
            json!([name, value])
        })
        .collect();
    let r = &runs.json;
    assert_eq!(r["status"], 200, "{}", r["status"]);
    let headers = r["headers"].as_array().expect("headers");
    assert_eq!(headers.len(), complete, "{}", r["error"]);
    assert!(*headers == expected, "the kept headers differ");

    let text = runs.text_headers();
    assert_eq!(text.len(), complete + 1);
    assert_eq!(text[0], "HTTP/1.1 200 OK");
    assert_eq!(text[complete], fill_line(complete - 1).trim_end());
}

/// A line that never ends: 100 KB without a newline (as a header line and as the status
/// line), and an endless one, from peers that keep the connection open. The cap ends
/// each probe at once; nothing waits for a newline or buffers without bound.
#[test]
fn a_line_without_a_newline_is_cut_at_the_cap() {
    let long = vec![b'a'; 100 * 1024];
    let header = [&b"HTTP/1.1 200 OK\r\nX-Long: "[..], &long].concat();
    let status = [&b"HTTP/1.1 200 "[..], &long].concat();
    for (bytes, status_code) in [(header, json!(200)), (status, Value::Null)] {
        let server = Server::start(Behaviour::Stall(bytes));
        let runs = probe_all_formats(&server.target(), &["-t", "10s"], 1);
        runs.failed("headers_too_large")
            .took_about(Duration::ZERO, false);
        assert_eq!(runs.json["status"], status_code, "{}", runs.json["error"]);
        assert_eq!(runs.json["headers"], json!([]), "{}", runs.json["error"]);
    }

    let endless = Peer::start(|mut s, _| {
        read_head(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nX-Endless: ");
        let chunk = vec![b'a'; 64 * 1024];
        // At most 256 MiB, so that the thread ends even if the client never closes.
        for _ in 0..4096 {
            if s.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let runs = probe_all_formats(&endless.target(), &["-t", "10s"], 1);
    runs.failed("headers_too_large")
        .took_about(Duration::ZERO, false);
    assert_eq!(runs.json["status"], 200, "{}", runs.json["error"]);
}

/// NUL, ESC, BEL, DEL and invalid UTF-8 in the status line, header names and values: ok,
/// escaped in text and status, U+FFFD and JSON escapes in json.
#[test]
fn control_bytes_and_invalid_utf8_in_a_good_head() {
    let head: &[u8] = b"HTTP/1.1 200 O\x00K\x07\x1b[2J\xff\r\n\
        X-\x00Nul: a\x00b\r\n\
        X-Esc: \x1b]0;pwned\x07\x7f\r\n\
        X-Bad-Utf8: \xc3\x28 \xe2\x82 \xff\xfe\r\n\
        X-Ok: caf\xc3\xa9\r\n\r\n";
    let server = Server::start(Behaviour::Respond(head.to_vec()));
    let runs = probe_all_formats(&server.target(), &["-t", "10s"], 0);
    let r = &runs.json;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["reason"], "O\u{0}K\u{7}\u{1b}[2J\u{fffd}", "{r}");
    assert_eq!(
        r["headers"],
        json!([
            ["X-\u{0}Nul", "a\u{0}b"],
            ["X-Esc", "\u{1b}]0;pwned\u{7}\u{7f}"],
            ["X-Bad-Utf8", "\u{fffd}( \u{fffd} \u{fffd}\u{fffd}"],
            ["X-Ok", "caf\u{e9}"]
        ]),
        "{r}"
    );
    // The escapes in the json text itself, not only their decoded values.
    let line = runs.json_out.out();
    for escaped in [r"\u0000", r"\u001b", r"\u0007"] {
        assert!(line.contains(escaped), "no {escaped} in {line}");
    }

    let mut text = vec![format!(
        "{} header > HTTP/1.1 200 O\\x00K\\x07\\x1b[2J\\xff",
        runs.target
    )];
    for h in [
        "X-\\x00Nul: a\\x00b",
        "X-Esc: \\x1b]0;pwned\\x07\\x7f",
        "X-Bad-Utf8: \\xc3( \\xe2\\x82 \\xff\\xfe",
        "X-Ok: caf\u{e9}",
    ] {
        text.push(format!("{} header > {h}", runs.target));
    }
    assert_eq!(runs.text.lines(), text);
    let row = &runs.status.status_rows()[0];
    assert_eq!(row[1], "200");
    assert_eq!(row[4], "O\\x00K\\x07\\x1b[2J\\xff");
}

/// The same bytes in a first line that is not HTTP: not_http, with the banner kept.
#[test]
fn control_bytes_and_invalid_utf8_in_a_banner() {
    let server = Server::start(Behaviour::Respond(
        b"\x00\x1b[2J\x07\xffSSH-2.0\x1b[0m\r\nmore\r\n".to_vec(),
    ));
    let runs = probe_all_formats(&server.target(), &["-t", "10s"], 1);
    runs.failed("not_http").took_about(Duration::ZERO, false);
    assert_eq!(
        runs.json["banner"], "\u{0}\u{1b}[2J\u{7}\u{fffd}SSH-2.0\u{1b}[0m",
        "{}",
        runs.json
    );
    assert_eq!(runs.json["status"], Value::Null, "{}", runs.json);
}

/// The first line of `bytes` (CR dropped), as the banner keeps it.
fn first_line(bytes: &[u8]) -> &[u8] {
    let line = match bytes.iter().position(|&b| b == b'\n') {
        Some(lf) => &bytes[..lf],
        None => bytes,
    };
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Random binary, from eight seeds: four whose first line is longer than the 512-byte
/// banner cap and four whose first line is shorter.
#[test]
fn random_binary_is_not_http_with_a_capped_banner() {
    let answer = |seed| {
        let mut bytes = random_bytes(seed, 4096);
        // 'H' could begin a status line; any other first byte cannot.
        if bytes[0] == b'H' {
            bytes[0] = 0;
        }
        bytes
    };
    let (mut long, mut short) = (Vec::new(), Vec::new());
    for seed in 1.. {
        let bytes = answer(seed);
        let wanted = if first_line(&bytes).len() > 512 {
            &mut long
        } else {
            &mut short
        };
        if wanted.len() < 4 {
            wanted.push(bytes);
        }
        if long.len() == 4 && short.len() == 4 {
            break;
        }
    }
    for bytes in long.into_iter().chain(short) {
        let line = first_line(&bytes).to_vec();
        let server = Server::start(Behaviour::Respond(bytes));
        let runs = probe_all_formats(&server.target(), &["-t", "10s"], 1);
        runs.failed("not_http").took_about(Duration::ZERO, false);
        let banner = runs.json["banner"].as_str().expect("a banner").to_string();
        if line.len() <= 512 {
            assert_eq!(banner, String::from_utf8_lossy(&line), "{}", runs.json);
        } else {
            // Cut at 512 bytes, or just before, at a character boundary.
            let cuts: Vec<String> = (509..=512)
                .map(|n| String::from_utf8_lossy(&line[..n]).into_owned())
                .collect();
            assert!(
                cuts.contains(&banner),
                "banner is not the first 512 bytes of the line: {banner:?}\nline {:?}",
                String::from_utf8_lossy(&line)
            );
        }
    }
}

#[test]
fn a_tls_alert_on_a_plain_port_is_not_http() {
    let server = Server::start(Behaviour::Respond(b"\x15\x03\x01\x00\x02\x02\x28".to_vec()));
    let runs = probe_all_formats(&server.target(), &["-t", "10s"], 1);
    runs.failed("not_http").took_about(Duration::ZERO, false);
    assert_eq!(
        runs.json["banner"], "\u{15}\u{3}\u{1}\u{0}\u{2}\u{2}(",
        "{}",
        runs.json
    );
}

/// A peer that accepts and never reads, with a small receive buffer and segment size (so
/// that the client's send buffer cannot grow to megabytes), and a request of about 1 MB:
/// the write blocks, and the deadline must still end the probe.
///
/// One argument may be at most 128 KiB on Linux, so a 200 KB `--path` cannot be passed;
/// a 120 KB path and eight 120 KB headers make the request instead.
#[test]
fn a_peer_that_never_reads_cannot_block_the_request_write() {
    let gate = Arc::new(Gate::default());
    let (counts_tx, counts_rx) = mpsc::channel();
    let peer = {
        let gate = Arc::clone(&gate);
        let counts_tx = Mutex::new(counts_tx);
        Peer::start_with(Some(4096), Some(536), move |mut s, _| {
            gate.wait(PATIENCE);
            // The probe is over: what arrives now is what the client's kernel took.
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let got = drain(&mut s);
            let _ = counts_tx.lock().unwrap().send(got);
        })
    };
    let big = 120_000;
    let path = format!("/{}", "p".repeat(big));
    let mut extra = vec!["-t", "1s", "--path", &path];
    let headers: Vec<String> = (0..8)
        .map(|i| format!("X-Pad-{i}: {}", "h".repeat(big)))
        .collect();
    for h in &headers {
        extra.extend(["-H", h]);
    }
    let request_len = 9 * big;

    let runs = probe_all_formats(&peer.target(), &extra, 1);
    gate.open();
    runs.failed("timeout")
        .took_about(Duration::from_secs(1), true);
    let r = &runs.json;
    assert_eq!(r["status"], Value::Null, "{}", r["error"]);
    assert_eq!(r["timing_ms"]["first_byte"], Value::Null, "{}", r["error"]);

    // Proof that the case was the one meant: the request never fitted in the buffers, so
    // the write was still blocked when the deadline ended it.
    for _ in 0..3 {
        let got = counts_rx
            .recv_timeout(WAIT)
            .expect("the server saw no connection end");
        assert!(
            got < request_len,
            "the whole request ({got} bytes) fitted in the socket buffers: this test \
             proves nothing here"
        );
    }
}

/// A control character in the target token is escaped where the token is echoed.
#[test]
fn a_target_token_with_control_bytes_is_echoed_escaped() {
    let input = b"a\x1b[31m\nb\x07\xff\x00c\n".to_vec();
    let text = headprobe().stdin(input.clone()).run();
    text.expect_code(1);
    assert_terminal_safe(&text.stdout);
    let mut lines = text.lines();
    lines.sort();
    assert_eq!(lines.len(), 2, "{text:?}");
    assert!(
        lines[0].starts_with("a\\x1b[31m error > invalid_target: "),
        "{text:?}"
    );
    assert!(
        lines[1].starts_with("b\\x07\\xff\\x00c error > invalid_target: "),
        "{text:?}"
    );

    let status = headprobe()
        .args(["--format", "status"])
        .stdin(input.clone())
        .run();
    status.expect_code(1);
    assert_terminal_safe(&status.stdout);
    let mut rows = status.status_rows();
    rows.sort();
    assert_eq!(rows.len(), 2, "{status:?}");
    for (row, token) in rows.iter().zip(["a\\x1b[31m", "b\\x07\\xff\\x00c"]) {
        assert_eq!(row.len(), 5, "{status:?}");
        assert_eq!(row[0], token, "{status:?}");
        assert_eq!(row[1], "invalid_target", "{status:?}");
        assert_eq!(row[3], "-", "{status:?}");
    }

    let json = headprobe()
        .args(["--format", "json", "--ordered"])
        .stdin(input)
        .run();
    json.expect_code(1);
    assert_json_clean(&json.stdout);
    let targets: Vec<Value> = json.json().iter().map(|r| r["target"].clone()).collect();
    assert_eq!(
        targets,
        [json!("a\u{1b}[31m"), json!("b\u{7}\u{fffd}\u{0}c")]
    );
}

// ---------------------------------------------------------------------------------------
// The same hostile mix at scale.

/// Raises this process's soft open-file limit to its hard limit, for a thousand server
/// connections; false when the hard limit is below `need`.
fn raise_fd_limit(need: u64) -> bool {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 || lim.rlim_max < need {
            return false;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0
    }
}

/// What a run under `/usr/bin/time` did: the outcome, the wall time and the peak RSS.
struct Timed {
    out: Outcome,
    took: Duration,
    max_rss_kb: Option<u64>,
}

/// Runs the binary with `args` and `input` on stdin, under `/usr/bin/time -f %M` when that
/// exists, with the harness's environment and a watchdog.
fn run_measured(args: &[&str], input: Vec<u8>) -> Timed {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let bin = env!("CARGO_BIN_EXE_headprobe");
    let time = Path::new("/usr/bin/time");
    let rss_file = temp_file("maxrss", b"");
    let mut cmd = if time.exists() {
        let mut cmd = Command::new(time);
        cmd.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(bin);
        cmd
    } else {
        Command::new(bin)
    };
    cmd.args(args)
        .env_clear()
        .env("LC_ALL", "C")
        .env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so the watchdog can kill `time` and headprobe together.
        .process_group(0);
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn headprobe");
    let pid = child.id() as i32;
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(WATCHDOG) {
        Ok(status) => status.expect("wait"),
        Err(_) => {
            // SAFETY: kill(2) on the process group of our own unreaped child.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let status = rx.recv().unwrap().expect("wait");
            panic!("headprobe still running after {WATCHDOG:?}, killed it ({status:?})");
        }
    };
    let took = started.elapsed();
    let out = Outcome {
        code: status.code(),
        signal: status.signal(),
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    };
    let max_rss_kb = if time.exists() {
        let text = std::fs::read_to_string(&rss_file).unwrap_or_default();
        Some(
            text.lines()
                .last()
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or_else(|| panic!("no %M from /usr/bin/time: {text:?}")),
        )
    } else {
        None
    };
    let _ = std::fs::remove_file(&rss_file);
    Timed {
        out,
        took,
        max_rss_kb,
    }
}

/// 5,000 probes at `-c 1000`, a third of them hostile (silent, reset, trickle, garbage,
/// oversized), over seven servers: every record is there and right, the run ends within
/// its 2 s deadline plus a margin, the peak RSS stays bounded, and every server thread
/// ends.
#[test]
fn hostile_mix_at_scale() {
    if !raise_fd_limit(2048) {
        eprintln!("skipped: the hard open-file limit (ulimit -Hn) is below 2048");
        return;
    }
    let ok = |mut s: TcpStream, _| {
        read_head(&mut s);
        let _ = s.write_all(&ok_response());
        close(s);
    };
    let silent = |mut s: TcpStream, _| {
        read_head(&mut s);
        drain(&mut s);
    };
    let rst = |mut s: TcpStream, _| {
        read_head(&mut s);
        reset(s);
    };
    let trickle = |mut s: TcpStream, _| {
        read_head(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nServer: trickle\r\n");
        // Ends at the first failed write once the client has gone, or after 20 s.
        for b in b"X-Trickle: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
            thread::sleep(Duration::from_millis(500));
            if s.write_all(&[*b]).is_err() {
                break;
            }
        }
    };
    let garbage = |mut s: TcpStream, i: usize| {
        read_head(&mut s);
        let mut bytes = random_bytes(i as u64 + 1, 1024);
        if bytes[0] == b'H' {
            bytes[0] = 0;
        }
        let _ = s.write_all(&bytes);
        close(s);
    };
    let oversized = |mut s: TcpStream, _| {
        read_head(&mut s);
        let mut head = OVERSIZED_STATUS.as_bytes().to_vec();
        let mut i = 0;
        // Past the 64 KiB cap, and not much more: at scale, every byte written costs.
        while head.len() < 80 * 1024 {
            head.extend_from_slice(fill_line(i).as_bytes());
            i += 1;
        }
        let _ = s.write_all(&head);
        close(s);
    };
    let good = [(Peer::start(ok), "200"), (Peer::start(ok), "200")];
    let hostile = [
        (Peer::start(silent), "timeout"),
        (Peer::start(rst), "reset"),
        (Peer::start(trickle), "timeout"),
        (Peer::start(garbage), "not_http"),
        (Peer::start(oversized), "headers_too_large"),
    ];

    const N: usize = 5000;
    let mut input = String::new();
    let mut wanted: HashMap<String, (usize, &str)> = HashMap::new();
    for i in 0..N {
        let (peer, kind) = if i % 3 == 2 {
            &hostile[(i / 3) % hostile.len()]
        } else {
            &good[(i / 3) % good.len()]
        };
        let t = peer.target();
        input.push_str(&t);
        input.push('\n');
        wanted.entry(t).or_insert((0, kind)).0 += 1;
    }

    let args = [
        "-c",
        "1000",
        "-t",
        "2s",
        "--connect-timeout",
        "2s",
        "--format",
        "status",
    ];
    let run = run_measured(&args, input.into_bytes());
    let out = &run.out;
    assert_eq!(out.code, Some(1), "unexpected exit\n{}", show(out));
    assert!(
        !out.err().contains("lowered"),
        "the concurrency was lowered: {}",
        out.err()
    );

    let rows = out.status_rows();
    assert_eq!(rows.len(), N, "not one record per target: {}", out.err());
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut wrong = Vec::new();
    for row in &rows {
        assert_eq!(row.len(), 5, "{row:?}");
        let Some((_, kind)) = wanted.get(&row[0]) else {
            panic!("a record for a target never given: {row:?}");
        };
        if row[1] != *kind || row[3] != row[0] {
            wrong.push(row.join("\t"));
        }
        *seen.entry(&row[0]).or_default() += 1;
    }
    assert!(
        wrong.is_empty(),
        "{} records are not what their server provokes, e.g.:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(10)].join("\n")
    );
    for (t, (n, kind)) in &wanted {
        assert_eq!(seen.get(t.as_str()), Some(n), "records for {t} ({kind})");
    }

    // A bound, not a speed claim: the 666 slow probes fit in one wave of 1000 slots, so
    // the run is one 2 s deadline plus the time to get through the 4,334 fast probes
    // (about 1.3 s of it on a loaded 2-core machine with a debug build).
    let bound = Duration::from_secs(2) + Duration::from_secs(5);
    assert!(run.took < bound, "5,000 probes took {:?}", run.took);

    match run.max_rss_kb {
        // A thousand probes in flight may each hold up to 64 KiB of head: about 64 MiB
        // at worst, plus the runtime. Buffering more than that per probe, or keeping
        // finished records, would pass 160 MiB.
        Some(kb) => assert!(kb < 160 * 1024, "peak RSS {kb} KiB"),
        None => eprintln!("peak RSS not checked: /usr/bin/time is not installed"),
    }

    for (peer, kind) in good.iter().chain(&hostile) {
        assert!(
            peer.wait_idle(Duration::from_secs(10)),
            "server threads ({kind}) still running 10 s after the run"
        );
    }
}
