//! The test harness: a scripted loopback server that can be slow, silent, rude or
//! malformed, and a runner for the real `headprobe` binary with a fixed environment.
//!
//! Everything here talks to 127.0.0.1 or ::1 only. Waits are bounded waits on events
//! (a channel's `recv_timeout`), never sleeps standing in for synchronisation.

#![allow(dead_code)]

pub mod dns;
pub mod h2;
pub mod peer;
pub mod pki;
pub mod proxy;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a test waits for something that should happen promptly before calling it a
/// failure. Generous, because it only matters when the test is failing anyway.
pub const WAIT: Duration = Duration::from_secs(10);

/// How long a spawned `headprobe` may run before the harness kills it.
pub const WATCHDOG: Duration = Duration::from_secs(30);

/// The most request bytes a server connection records.
const REQUEST_CAP: usize = 64 * 1024;

/// A server connection never waits longer than this for its peer, so no thread outlives
/// a misbehaving client by much.
const PEER_PATIENCE: Duration = Duration::from_secs(30);

/// The status line `Behaviour::Oversized` starts with.
pub const OVERSIZED_STATUS: &str = "HTTP/1.1 200 OK\r\n";

/// Header line number `i` of `Behaviour::Oversized`: always exactly 20 bytes with CRLF.
pub fn fill_line(i: usize) -> String {
    format!("X-Fill-{:04}: aaaaa\r\n", i % 10_000)
}

/// One step of a `Behaviour::Script`, run after the request has been read.
#[derive(Clone, Debug)]
pub enum Step {
    Write(Vec<u8>),
    Sleep(Duration),
    /// Wait until the test calls `Server::release`.
    WaitRelease,
}

/// What the server does with each connection it accepts.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Read the request, write these bytes, close.
    Respond(Vec<u8>),
    /// Read the request, write each chunk with `delay` before it, close.
    RespondSlowly(Vec<Vec<u8>>, Duration),
    /// Read the request and never answer; end when the client closes.
    Silent,
    /// Read the request, write these bytes (meant to be a cut-off head), close.
    HalfThenClose(Vec<u8>),
    /// Read the request, then close with SO_LINGER 0 so the peer gets an RST.
    Reset,
    /// Write these bytes on accept without waiting for a request, keep the connection
    /// open until the client closes.
    Banner(Vec<u8>),
    /// Close without sending a byte. The request is read first so that the close is a
    /// FIN: closing with unread data would make the kernel send an RST instead.
    CloseImmediately,
    /// `OVERSIZED_STATUS`, then `fill_line`s adding up to at least n bytes, then the
    /// blank line.
    Oversized(usize),
    /// Read the request, wait for `Server::release`, then answer these bytes and close.
    /// The connection stops counting as open just before the answer is written, so
    /// `max_open` never counts a connection whose client may already have moved on.
    Hold(Vec<u8>),
    /// Write these bytes, then stay silent until the client closes.
    Stall(Vec<u8>),
    /// Run these steps, then close.
    Script(Vec<Step>),
    /// Connection n (from 0) behaves as entry n; the last entry serves the rest.
    Sequence(Vec<Behaviour>),
    /// Read the request, write the bytes of the first entry whose path is the request
    /// target, or a 404 when none is; close.
    ByPath(Vec<(String, Vec<u8>)>),
    /// Read the request; the first request for each request target gets the first
    /// bytes, every later one the second; close. Stops counting as open, as `Hold` does,
    /// just before answering.
    FirstThen(Vec<u8>, Vec<u8>),
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    accepted: AtomicUsize,
    open: AtomicUsize,
    max_open: AtomicUsize,
    permits: Mutex<usize>,
    permit_cv: Condvar,
    /// Request targets seen (`FirstThen`).
    seen_paths: Mutex<std::collections::HashSet<String>>,
}

impl Shared {
    fn wait_permit(&self) {
        let mut permits = self.permits.lock().unwrap();
        let deadline = Instant::now() + PEER_PATIENCE;
        while *permits == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            permits = self.permit_cv.wait_timeout(permits, left).unwrap().0;
        }
        *permits -= 1;
    }
}

/// Uncounts an open connection at `done` or drop, whichever comes first.
struct OpenGuard<'a> {
    shared: &'a Shared,
    done: bool,
}

impl OpenGuard<'_> {
    fn done(&mut self) {
        if !self.done {
            self.done = true;
            self.shared.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.done();
    }
}

/// A scripted loopback server: an accept thread plus one thread per connection.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    requests: Mutex<Receiver<Vec<u8>>>,
    closed: Mutex<Receiver<()>>,
}

impl Server {
    /// A server on 127.0.0.1, on a port of the kernel's choosing.
    pub fn start(behaviour: Behaviour) -> Server {
        Server::start_on("127.0.0.1:0", behaviour).expect("bind 127.0.0.1:0")
    }

    /// A server on [::1], or None when this machine has no IPv6 loopback.
    pub fn start_v6(behaviour: Behaviour) -> Option<Server> {
        Server::start_on("[::1]:0", behaviour).ok()
    }

    pub fn start_on(addr: &str, behaviour: Behaviour) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let (req_tx, req_rx) = mpsc::channel();
        let (closed_tx, closed_rx) = mpsc::channel();
        let accept_shared = Arc::clone(&shared);
        thread::spawn(move || accept_loop(listener, accept_shared, behaviour, req_tx, closed_tx));
        Ok(Server {
            addr,
            shared,
            requests: Mutex::new(req_rx),
            closed: Mutex::new(closed_rx),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:PORT` or `[::1]:PORT`: the target token and the `addr` headprobe reports.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// The next recorded request (every connection records exactly one, possibly empty
    /// when the client sent nothing), or None if none arrives within `timeout`.
    pub fn next_request_within(&self, timeout: Duration) -> Option<Vec<u8>> {
        match self.requests.lock().unwrap().recv_timeout(timeout) {
            Ok(r) => Some(r),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// The next recorded request; panics if none arrives within `WAIT`.
    pub fn next_request(&self) -> Vec<u8> {
        self.next_request_within(WAIT)
            .expect("the server saw no request in time")
    }

    /// The next request as text.
    pub fn request_text(&self) -> String {
        String::from_utf8_lossy(&self.next_request()).into_owned()
    }

    /// Waits for `n` requests; panics if they do not all arrive in time.
    pub fn requests(&self, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                self.next_request_within(WAIT)
                    .unwrap_or_else(|| panic!("the server saw only {i} of {n} requests"))
            })
            .collect()
    }

    /// Waits for the next connection to end (the client closed it, or the server did).
    pub fn next_closed_within(&self, timeout: Duration) -> bool {
        self.closed.lock().unwrap().recv_timeout(timeout).is_ok()
    }

    /// Lets `n` held connections (`Hold`, `Step::WaitRelease`) go on.
    pub fn release(&self, n: usize) {
        let mut permits = self.shared.permits.lock().unwrap();
        *permits = permits.saturating_add(n);
        self.shared.permit_cv.notify_all();
    }

    /// Lets every held connection, present and future, go on.
    pub fn release_all(&self) {
        self.release(usize::MAX / 2);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// The most connections that were open at once.
    pub fn max_open(&self) -> usize {
        self.shared.max_open.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.release_all();
        // Wake the accept thread so it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    behaviour: Behaviour,
    req_tx: Sender<Vec<u8>>,
    closed_tx: Sender<()>,
) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else { continue };
        let nth = shared.accepted.fetch_add(1, Ordering::SeqCst);
        let shared = Arc::clone(&shared);
        let behaviour = match &behaviour {
            Behaviour::Sequence(list) if !list.is_empty() => list[nth.min(list.len() - 1)].clone(),
            other => other.clone(),
        };
        let req_tx = req_tx.clone();
        let closed_tx = closed_tx.clone();
        // Counted open here, in the accept thread, so that the count never lags
        // behind what the client sees; the connection thread's guard uncounts it.
        let now = shared.open.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_open.fetch_max(now, Ordering::SeqCst);
        thread::spawn(move || {
            let mut guard = OpenGuard {
                shared: &shared,
                done: false,
            };
            serve(stream, &behaviour, &shared, &mut guard, &req_tx);
            guard.done();
            let _ = closed_tx.send(());
        });
    }
}

fn serve(
    mut s: TcpStream,
    behaviour: &Behaviour,
    shared: &Shared,
    guard: &mut OpenGuard<'_>,
    req_tx: &Sender<Vec<u8>>,
) {
    let _ = s.set_read_timeout(Some(PEER_PATIENCE));
    let _ = s.set_write_timeout(Some(PEER_PATIENCE));
    if let Behaviour::Banner(bytes) = behaviour {
        let _ = s.write_all(bytes);
        let _ = req_tx.send(read_head(&mut s));
        drain(&mut s);
        return;
    }
    let request = read_head(&mut s);
    let _ = req_tx.send(request.clone());
    match behaviour {
        Behaviour::ByPath(routes) => {
            let line = String::from_utf8_lossy(&request);
            let path = line.split(' ').nth(1).unwrap_or_default();
            let not_found = response("HTTP/1.1 404 Not Found", &[]);
            let bytes = routes
                .iter()
                .find(|(p, _)| p == path)
                .map_or(&not_found, |(_, bytes)| bytes);
            let _ = s.write_all(bytes);
            close(s);
        }
        Behaviour::Sequence(_) => close(s),
        Behaviour::FirstThen(first, then) => {
            let line = String::from_utf8_lossy(&request);
            let path = line.split(' ').nth(1).unwrap_or_default().to_string();
            let fresh = shared.seen_paths.lock().unwrap().insert(path);
            // As for `Hold`: not open once answering, so `max_open` never counts a
            // connection whose client may already have moved on.
            guard.done();
            let _ = s.write_all(if fresh { first } else { then });
            close(s);
        }
        Behaviour::Respond(bytes) | Behaviour::HalfThenClose(bytes) => {
            let _ = s.write_all(bytes);
            close(s);
        }
        Behaviour::RespondSlowly(chunks, delay) => {
            for chunk in chunks {
                thread::sleep(*delay);
                if s.write_all(chunk).is_err() {
                    break;
                }
            }
            close(s);
        }
        Behaviour::Silent => drain(&mut s),
        Behaviour::Reset => {
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
            drop(s);
        }
        Behaviour::CloseImmediately => close(s),
        Behaviour::Oversized(n) => {
            let mut head = OVERSIZED_STATUS.as_bytes().to_vec();
            let mut i = 0;
            while head.len() - OVERSIZED_STATUS.len() < *n {
                head.extend_from_slice(fill_line(i).as_bytes());
                i += 1;
            }
            head.extend_from_slice(b"\r\n");
            let _ = s.write_all(&head);
            close(s);
        }
        Behaviour::Hold(bytes) => {
            shared.wait_permit();
            guard.done();
            let _ = s.write_all(bytes);
            close(s);
        }
        Behaviour::Stall(bytes) => {
            let _ = s.write_all(bytes);
            drain(&mut s);
        }
        Behaviour::Script(steps) => {
            for step in steps {
                match step {
                    Step::Write(bytes) => {
                        if s.write_all(bytes).is_err() {
                            break;
                        }
                    }
                    Step::Sleep(d) => thread::sleep(*d),
                    Step::WaitRelease => shared.wait_permit(),
                }
            }
            close(s);
        }
        Behaviour::Banner(_) => unreachable!("handled above"),
    }
}

/// Reads up to and including the first blank line (CRLF CRLF), at most `REQUEST_CAP`
/// bytes; stops early at EOF or on an error. A byte at a time, so nothing past the
/// blank line is consumed.
pub fn read_head(r: &mut impl Read) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while buf.len() < REQUEST_CAP && !buf.ends_with(b"\r\n\r\n") {
        match r.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => buf.push(byte[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    buf
}

/// Reads and discards until the peer closes (or errors, or `PEER_PATIENCE` runs out).
fn drain(s: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn close(s: TcpStream) {
    let _ = s.shutdown(Shutdown::Write);
    drop(s);
}

/// Sends FIN, then reads until the client closes, so that our close is never an RST.
pub fn close_and_drain(s: &mut TcpStream) {
    let _ = s.shutdown(Shutdown::Write);
    drain(s);
}

/// An address on 127.0.0.1 where nothing listens: connecting is refused.
pub fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

/// A listener that never accepts, with its accept queue full, so that the kernel drops
/// further SYNs and a connect to it hangs until the client gives up.
pub struct Blackhole {
    _listener: socket2::Socket,
    _fillers: Vec<TcpStream>,
    addr: SocketAddr,
}

impl Blackhole {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn target(&self) -> String {
        self.addr.to_string()
    }
}

/// See `Blackhole`. Panics if the queue cannot be made to drop connects.
pub fn blackhole_listener() -> Blackhole {
    blackhole_on("127.0.0.1:0".parse().unwrap()).expect("bind 127.0.0.1:0")
}

/// A `Blackhole` on `bind` (another loopback address, a given port); `None` if it
/// cannot bind there.
pub fn blackhole_on(bind: SocketAddr) -> Option<Blackhole> {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    listener.bind(&bind.into()).ok()?;
    listener.listen(0).expect("listen");
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    // Fill the queue until a connect hangs: that one proves further SYNs are dropped.
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(_) => {
                return Some(Blackhole {
                    _listener: listener,
                    _fillers: fillers,
                    addr,
                })
            }
        }
    }
    panic!("connects to a full backlog-0 listener do not hang on this machine");
}

/// A `headprobe` invocation being built. See `headprobe()`.
pub struct Headprobe {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    stdin_stdio: Option<Stdio>,
}

/// The real binary, with a fixed environment and standard input null unless
/// `stdin` is given.
pub fn headprobe() -> Headprobe {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_headprobe"));
    cmd.env_clear()
        .env("LC_ALL", "C")
        .env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1");
    Headprobe {
        cmd,
        stdin: None,
        stdin_stdio: None,
    }
}

impl Headprobe {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable (the rest of the environment stays fixed).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Bytes for standard input. `run` writes them and closes stdin; `spawn` writes them
    /// and keeps stdin open until `Running::close_stdin` or `finish`.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Standard input from this handle instead (a pty, say).
    pub fn stdin_from(mut self, stdio: Stdio) -> Self {
        self.stdin_stdio = Some(stdio);
        self
    }

    /// The bare command, for tests that need their own plumbing.
    pub fn command(self) -> Command {
        self.cmd
    }

    /// Runs to the end and captures everything.
    pub fn run(self) -> Outcome {
        let input = self.stdin.clone();
        let mut running = self.spawn_inner(input.is_some());
        if let (Some(bytes), Some(mut stdin)) = (input, running.stdin.take()) {
            // A writer thread, so a large input cannot deadlock against a full stdout.
            thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            });
        }
        running.finish()
    }

    /// Starts the binary with stdout read line by line in the background.
    pub fn spawn(self) -> Running {
        let input = self.stdin.clone();
        let mut running = self.spawn_inner(input.is_some());
        if let (Some(bytes), Some(stdin)) = (input, running.stdin.as_mut()) {
            let _ = stdin.write_all(&bytes);
            let _ = stdin.flush();
        }
        running
    }

    fn spawn_inner(mut self, piped_stdin: bool) -> Running {
        let stdin = match self.stdin_stdio.take() {
            Some(stdio) => stdio,
            None if piped_stdin => Stdio::piped(),
            None => Stdio::null(),
        };
        self.cmd
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("spawn headprobe");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf);
            buf
        });
        Running {
            child: Some(child),
            stdin,
            lines: rx,
            stdout: Vec::new(),
            stderr: Some(stderr),
        }
    }
}

/// A running `headprobe`. Dropping it kills the process.
pub struct Running {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Receiver<Vec<u8>>,
    stdout: Vec<u8>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Running {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Writes more standard input (only when `stdin` was given to the builder).
    pub fn write_stdin(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is not piped");
        stdin.write_all(bytes).expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next stdout line (without its newline), or None at EOF or after `timeout`.
    pub fn next_line_within(&mut self, timeout: Duration) -> Option<String> {
        let line = self.lines.recv_timeout(timeout).ok()?;
        self.stdout.extend_from_slice(&line);
        let text = String::from_utf8_lossy(&line);
        Some(text.strip_suffix('\n').unwrap_or(&text).to_string())
    }

    /// The next stdout line; panics if none comes within `WAIT`.
    pub fn next_line(&mut self) -> String {
        self.next_line_within(WAIT)
            .expect("headprobe printed no further line in time")
    }

    /// Sends SIGINT, as Ctrl-C would.
    pub fn interrupt(&self) {
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        let rc = unsafe { libc::kill(self.pid(), libc::SIGINT) };
        assert_eq!(rc, 0, "kill(SIGINT) failed");
    }

    /// Closes stdin, waits for the exit (killing the process after `WATCHDOG`), and
    /// returns everything it printed, including lines already taken with `next_line`.
    pub fn finish(mut self) -> Outcome {
        self.stdin = None;
        self.wait()
    }

    /// Like `finish`, but standard input stays open until the process has exited.
    pub fn finish_with_stdin_open(mut self) -> Outcome {
        let stdin = self.stdin.take();
        let outcome = self.wait();
        drop(stdin);
        outcome
    }

    fn wait(&mut self) -> Outcome {
        let mut child = self.child.take().unwrap();
        let pid = child.id() as i32;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let (status, killed) = match rx.recv_timeout(WATCHDOG) {
            Ok(status) => (status.expect("wait"), false),
            Err(_) => {
                // SAFETY: kill(2) on our own child, which has not been reaped yet.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                (rx.recv().unwrap().expect("wait"), true)
            }
        };
        while let Ok(line) = self.lines.recv_timeout(WAIT) {
            self.stdout.extend_from_slice(&line);
        }
        let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
        use std::os::unix::process::ExitStatusExt;
        let outcome = Outcome {
            code: status.code(),
            signal: status.signal(),
            stdout: std::mem::take(&mut self.stdout),
            stderr,
        };
        assert!(
            !killed,
            "headprobe still running after {WATCHDOG:?}, killed it\n{outcome:?}"
        );
        outcome
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a finished `headprobe` did.
pub struct Outcome {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {:?}, signal {:?}\n--- stdout ---\n{}--- stderr ---\n{}--- end ---",
            self.code,
            self.signal,
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }
}

impl Outcome {
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Stdout lines without their newlines.
    pub fn lines(&self) -> Vec<String> {
        self.out().lines().map(str::to_string).collect()
    }

    /// Stdout parsed as JSON Lines, with each record's top-level keys in order.
    pub fn json(&self) -> Vec<Value> {
        parse_json_lines(&self.out())
    }

    /// The only JSON record printed; panics if there is not exactly one.
    #[track_caller]
    pub fn only_json(&self) -> Value {
        let mut records = self.json();
        assert_eq!(records.len(), 1, "expected one record\n{self:?}");
        records.remove(0)
    }

    /// Stdout in `status` format, split into its tab-separated fields.
    pub fn status_rows(&self) -> Vec<Vec<String>> {
        self.lines()
            .iter()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    /// Asserts the exit code, showing everything printed when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit\n{self:?}");
        self
    }
}

/// Runs headprobe in json format; returns the outcome and its only record.
pub fn json_run<S: AsRef<str>>(args: &[S]) -> (Outcome, Value) {
    let out = headprobe()
        .args(["--format", "json"])
        .args(args.iter().map(|s| s.as_ref()))
        .run();
    let r = out.only_json();
    (out, r)
}

/// A probe that must fail with `kind`; returns the record.
#[track_caller]
pub fn failing<S: AsRef<str>>(args: &[S], kind: &str) -> Value {
    let (out, r) = json_run(args);
    out.expect_code(1);
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"]["kind"], kind, "{r}");
    r
}

/// The error message of a record.
pub fn message(r: &Value) -> String {
    r["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A `timing_ms` value; panics if it is not a number.
pub fn ms(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("not a number of milliseconds: {v}"))
}

/// Parses JSON Lines; panics naming the line that is not a JSON object.
pub fn parse_json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}"));
            assert!(v.is_object(), "not a JSON object: {l:?}");
            v
        })
        .collect()
}

/// The keys of a JSON object in the order written, each with the keys (in order) of its
/// value when that value is an object itself. `serde_json::Value` sorts keys, so the
/// order has to be read off the text.
pub fn key_order(line: &str) -> Vec<(String, Vec<String>)> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    struct Top;
    impl<'de> Visitor<'de> for Top {
        type Value = Vec<(String, Vec<String>)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(k) = m.next_key::<String>()? {
                let inner: Inner = m.next_value()?;
                out.push((k, inner.0));
            }
            Ok(out)
        }
    }

    struct Inner(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Inner {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(InnerVisitor)
        }
    }
    struct InnerVisitor;
    impl<'de> Visitor<'de> for InnerVisitor {
        type Value = Inner;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Inner, A::Error> {
            let mut keys = Vec::new();
            while let Some(k) = m.next_key::<String>()? {
                m.next_value::<IgnoredAny>()?;
                keys.push(k);
            }
            Ok(Inner(keys))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Inner, A::Error> {
            while s.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Inner(Vec::new()))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Inner, E> {
            Ok(Inner(Vec::new()))
        }
        fn visit_i64<E>(self, _: i64) -> Result<Inner, E> {
            Ok(Inner(Vec::new()))
        }
        fn visit_u64<E>(self, _: u64) -> Result<Inner, E> {
            Ok(Inner(Vec::new()))
        }
        fn visit_f64<E>(self, _: f64) -> Result<Inner, E> {
            Ok(Inner(Vec::new()))
        }
        fn visit_str<E>(self, _: &str) -> Result<Inner, E> {
            Ok(Inner(Vec::new()))
        }
        fn visit_unit<E>(self) -> Result<Inner, E> {
            Ok(Inner(Vec::new()))
        }
    }

    let mut de = serde_json::Deserializer::from_str(line);
    de.deserialize_map(Top)
        .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line:?}"))
}

/// Asserts that output bytes cannot drive a terminal: valid UTF-8, and no control
/// character but TAB and the line-ending LF.
#[track_caller]
pub fn assert_terminal_safe(bytes: &[u8]) {
    let text = std::str::from_utf8(bytes)
        .unwrap_or_else(|e| panic!("output is not valid UTF-8 ({e}): {bytes:?}"));
    for c in text.chars() {
        assert!(
            c == '\n' || c == '\t' || !(c.is_control()),
            "raw control character {c:?} in output: {text:?}"
        );
    }
}

/// `HTTP/1.0 200 OK` with the given header lines, CRLF line endings and the blank line.
pub fn response(status_line: &str, headers: &[&str]) -> Vec<u8> {
    let mut r = format!("{status_line}\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// The smallest good answer.
pub fn ok_response() -> Vec<u8> {
    response(
        "HTTP/1.0 200 OK",
        &["Server: loopback", "Content-Length: 0"],
    )
}

/// Writes `content` to a fresh file under the test target's scratch directory.
pub fn temp_file(name: &str, content: &[u8]) -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!(
        "headprobe-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::write(&path, content).expect("write temp file");
    path
}

/// The path of a real tool a test runs, or None after printing why the test skips.
pub fn tool(path: &str, package: &str) -> Option<std::path::PathBuf> {
    let p = std::path::PathBuf::from(path);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipped: {path} is not installed (apt-get install {package})");
        None
    }
}

/// A loopback port that was free a moment ago, for a server the test starts itself.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// The version the binary should report, from the manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The names of the files in `dir`, sorted: what a run left behind (temporary files,
/// locks, `.partial`).
pub fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
