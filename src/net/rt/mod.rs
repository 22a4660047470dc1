//! The runtime, named once: async-std. Blocking on a future, spawning on the thread's
//! executor, timers, the deadlines of probes, and the TCP and UDP sockets all come from
//! here, so that a move to another runtime (smol, on the same async-io reactor) starts
//! and ends in this module.
//!
//! Sockets are async-std's, watched by its one reactor (async-io's, over whichever
//! readiness API the platform has): any thread may poll them, so a connection
//! that moves between threads is not an error to guard against.
//!
//! Deadlines (`timeout`) do not take a reactor timer each. Inserting a timer into
//! async-io's reactor wakes the thread blocked in it (a notification and another wait),
//! twice per probe. Instead each thread that blocks here keeps its deadlines in a
//! queue, served by one async-std timer armed at the earliest; a future polled on a
//! thread that does not serve one (outside `block_on`) takes a timer of its own.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWrite};

pub use async_std::task::JoinHandle;

/// Runs `future` to completion on this thread, with the tasks spawned on it
/// (`spawn_local`) and this thread's deadlines.
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    // Served from the start: the deadlines of the future's first poll queue too.
    let _served = Served::new();
    async_std::task::block_on(futures_lite::future::or(future, serve_deadlines()))
}

/// Runs `future` on this thread's executor, which runs while `block_on` does: the task
/// never changes thread, so it may hold what is not `Send`.
pub fn spawn_local<T: 'static>(future: impl Future<Output = T> + 'static) -> JoinHandle<T> {
    async_std::task::spawn_local(future)
}

/// Waits `duration`.
pub async fn sleep(duration: Duration) {
    async_std::task::sleep(duration).await;
}

/// Waits until `at`.
pub async fn sleep_until(at: Instant) {
    Timer::at(at).await;
}

/// A timer that can be moved (`set_at`), as a race of connection attempts needs: an
/// async-std timer, made anew only when its instant changes.
pub struct Timer {
    at: Option<Instant>,
    alarm: Option<Alarm>,
}

impl Timer {
    /// A timer that never goes off until `set_at`.
    pub fn never() -> Timer {
        Timer {
            at: None,
            alarm: None,
        }
    }

    pub fn at(at: Instant) -> Timer {
        Timer {
            at: Some(at),
            alarm: None,
        }
    }

    pub fn set_at(&mut self, at: Instant) {
        if self.at != Some(at) {
            self.at = Some(at);
            self.alarm = None;
        }
    }
}

impl Future for Timer {
    type Output = Instant;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Instant> {
        let Some(at) = self.at else {
            return Poll::Pending;
        };
        if Instant::now() >= at {
            return Poll::Ready(at);
        }
        let alarm = self.alarm.get_or_insert_with(|| alarm(at));
        match alarm.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(at),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A TCP connection: async-std's.
pub struct TcpStream {
    io: async_std::net::TcpStream,
}

impl TcpStream {
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let io = async_std::net::TcpStream::connect(addr).await?;
        Ok(TcpStream { io })
    }

    /// Connects `socket` (already created, and possibly bound to a local address or a
    /// device) to `addr`.
    ///
    /// async-std connects only sockets it creates itself, and offers no way to await
    /// the writability that ends a non-blocking connect: that wait is async-io's
    /// (`Async::writable`, the reactor async-std runs on); the connected socket is then
    /// handed to async-std, which registers it again: a deregistration and a
    /// registration more than `connect` costs, on this path only.
    pub async fn connect_bound(socket: socket2::Socket, addr: SocketAddr) -> io::Result<TcpStream> {
        socket.set_nonblocking(true)?;
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if in_progress(&e) => {}
            Err(e) => return Err(e),
        }
        let stream = async_io::Async::new(std::net::TcpStream::from(socket))?;
        stream.writable().await?;
        if let Some(e) = stream.get_ref().take_error()? {
            return Err(e);
        }
        // Writable without an error can still be a socket that never connected.
        stream.get_ref().peer_addr()?;
        let stream = stream.into_inner()?;
        Ok(TcpStream {
            io: async_std::net::TcpStream::from(stream),
        })
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.set_nodelay(on)
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }
}

// Socket options (socket2's `SockRef`) need the handle: async-std lends it with its
// `io_safety` feature.
#[cfg(unix)]
impl std::os::fd::AsFd for TcpStream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.io.as_fd()
    }
}

#[cfg(windows)]
impl std::os::windows::io::AsSocket for TcpStream {
    fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
        self.io.as_socket()
    }
}

/// A non-blocking connect under way: EINPROGRESS on Unix, WouldBlock on Windows.
fn in_progress(e: &io::Error) -> bool {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::EINPROGRESS) {
        return true;
    }
    e.kind() == io::ErrorKind::WouldBlock
}

impl AsyncRead for TcpStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}

/// A UDP socket (the resolver's): async-std's.
pub type UdpSocket = async_std::net::UdpSocket;

/// A deadline passed before the future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// `future`, unless `limit` passes first.
pub fn timeout<F: Future>(limit: Duration, future: F) -> Deadline<F> {
    Deadline {
        future,
        at: Instant::now().checked_add(limit),
        key: None,
        fallback: None,
    }
}

pin_project_lite::pin_project! {
    /// The future of `timeout`.
    pub struct Deadline<F> {
        #[pin]
        future: F,
        // None: too far to matter.
        at: Option<Instant>,
        // Its place in this thread's queue, once it waits.
        key: Option<Key>,
        // A timer of its own, on a thread that serves no deadlines.
        fallback: Option<Alarm>,
    }

    impl<F> PinnedDrop for Deadline<F> {
        fn drop(this: Pin<&mut Self>) {
            leave(this.project().key);
        }
    }
}

type Key = (Instant, u64);

/// An async-std timer going off at a given instant.
type Alarm = Pin<Box<dyn Future<Output = ()> + Send>>;

fn alarm(at: Instant) -> Alarm {
    Box::pin(async_std::task::sleep(
        at.saturating_duration_since(Instant::now()),
    ))
}

/// One thread's deadlines.
#[derive(Default)]
struct Queue {
    /// Whether a `serve_deadlines` runs on this thread.
    served: bool,
    waiting: BTreeMap<Key, Waker>,
    next_id: u64,
    /// When the server's timer fires; None when it is not armed.
    armed: Option<Instant>,
    /// The server's waker, to move the timer earlier.
    server: Option<Waker>,
}

thread_local! {
    static QUEUE: RefCell<Queue> = RefCell::new(Queue::default());
}

impl<F: Future> Future for Deadline<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.future.poll(cx) {
            leave(this.key);
            return Poll::Ready(Ok(out));
        }
        let Some(at) = *this.at else {
            return Poll::Pending;
        };
        if Instant::now() >= at {
            leave(this.key);
            return Poll::Ready(Err(Elapsed));
        }
        if let Some(timer) = this.fallback {
            return match timer.as_mut().poll(cx) {
                Poll::Ready(_) => Poll::Ready(Err(Elapsed)),
                Poll::Pending => Poll::Pending,
            };
        }
        let served = QUEUE.with(|q| {
            let mut q = q.borrow_mut();
            if !q.served {
                return false;
            }
            let key = match *this.key {
                Some(key) => key,
                None => {
                    let key = (at, q.next_id);
                    q.next_id += 1;
                    *this.key = Some(key);
                    key
                }
            };
            match q.waiting.get_mut(&key) {
                Some(w) if w.will_wake(cx.waker()) => {}
                Some(w) => w.clone_from(cx.waker()),
                None => {
                    q.waiting.insert(key, cx.waker().clone());
                }
            }
            if q.armed.is_none_or(|armed| at < armed) {
                if let Some(server) = &q.server {
                    server.wake_by_ref();
                }
            }
            true
        });
        if served {
            return Poll::Pending;
        }
        let mut timer = alarm(at);
        let ready = timer.as_mut().poll(cx).is_ready();
        *this.fallback = Some(timer);
        if ready {
            Poll::Ready(Err(Elapsed))
        } else {
            Poll::Pending
        }
    }
}

/// Takes a deadline out of this thread's queue, if it is in it.
fn leave(key: &mut Option<Key>) {
    if let Some(key) = key.take() {
        // At thread exit the queue may be gone; then there is nothing to leave.
        let _ = QUEUE.try_with(|q| q.borrow_mut().waiting.remove(&key));
    }
}

/// Serves this thread's deadlines, forever: wakes those that passed and keeps one timer
/// at the earliest of the rest.
async fn serve_deadlines<T>() -> T {
    let mut timer: Option<Alarm> = None;
    futures_lite::future::poll_fn(|cx| -> Poll<T> {
        loop {
            let (due, earliest) = QUEUE.with(|q| {
                let mut q = q.borrow_mut();
                q.server = Some(cx.waker().clone());
                let now = Instant::now();
                let mut due = Vec::new();
                while let Some(entry) = q.waiting.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    due.push(entry.remove());
                }
                let earliest = q.waiting.first_key_value().map(|(k, _)| k.0);
                // Only an earlier deadline moves the timer: one armed too early just
                // fires for nothing, and is moved on then.
                let rearm = match (q.armed, earliest) {
                    (_, None) => None,
                    (None, Some(at)) => Some(at),
                    (Some(armed), Some(at)) if at < armed || armed <= now => Some(at),
                    _ => None,
                };
                if let Some(at) = rearm {
                    q.armed = Some(at);
                }
                (due, rearm)
            });
            for waker in due {
                waker.wake();
            }
            if let Some(at) = earliest {
                timer = Some(alarm(at));
            }
            let Some(armed) = timer.as_mut() else {
                return Poll::Pending;
            };
            match armed.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    timer = None;
                    QUEUE.with(|q| q.borrow_mut().armed = None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}

/// Marks the thread as serving deadlines while it lives (`block_on` does not nest).
struct Served;

impl Served {
    fn new() -> Served {
        QUEUE.with(|q| q.borrow_mut().served = true);
        Served
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = QUEUE.try_with(|q| {
            let mut q = q.borrow_mut();
            q.served = false;
            q.server = None;
            q.armed = None;
            // Whatever still waits is woken, to find no server and take a timer.
            for (_, waker) in std::mem::take(&mut q.waiting) {
                waker.wake();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_deadline_passes_and_a_quick_future_wins() {
        block_on(async {
            let start = Instant::now();
            let slow = timeout(Duration::from_millis(30), sleep(Duration::from_secs(5)));
            assert_eq!(slow.await, Err(Elapsed));
            let waited = start.elapsed();
            assert!(waited >= Duration::from_millis(30), "{waited:?}");
            let quick = timeout(Duration::from_secs(5), async { 7 });
            assert_eq!(quick.await, Ok(7));
        });
        QUEUE.with(|q| assert!(q.borrow().waiting.is_empty()));
    }

    #[test]
    fn an_earlier_deadline_moves_the_timer_and_finished_ones_leave() {
        block_on(async {
            // A far deadline arms the timer; a nearer one must still fire on time; one
            // that finishes early leaves the queue.
            let far = spawn_local(timeout(
                Duration::from_secs(30),
                sleep(Duration::from_secs(60)),
            ));
            futures_lite::future::yield_now().await;
            let done = timeout(Duration::from_secs(20), async { 1 }).await;
            assert_eq!(done, Ok(1));
            let start = Instant::now();
            let near = timeout(Duration::from_millis(20), sleep(Duration::from_secs(60)));
            assert_eq!(near.await, Err(Elapsed));
            assert!(start.elapsed() < Duration::from_secs(5));
            QUEUE.with(|q| assert_eq!(q.borrow().waiting.len(), 1));
            assert_eq!(far.cancel().await, None);
            QUEUE.with(|q| assert!(q.borrow().waiting.is_empty()));
        });
    }

    #[test]
    fn without_a_server_a_deadline_takes_a_timer_of_its_own() {
        let out = futures_lite::future::block_on(timeout(
            Duration::from_millis(10),
            sleep(Duration::from_secs(5)),
        ));
        assert_eq!(out, Err(Elapsed));
    }

    /// A peer on 127.0.0.1 that runs `serve` on the one connection it accepts.
    fn peer(serve: impl FnOnce(std::net::TcpStream) + Send + 'static) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((stream, _)) = listener.accept() {
                serve(stream);
            }
        });
        addr
    }

    /// Within 10 s on this thread's own deadlines: a lost wake-up fails the test rather
    /// than hanging it.
    fn soon<T>(future: impl Future<Output = T>) -> T {
        block_on(timeout(Duration::from_secs(10), future)).expect("finished within 10 s")
    }

    #[test]
    fn a_connection_reads_every_byte_one_at_a_time() {
        use futures_lite::AsyncReadExt;
        let addr = peer(|mut s| {
            // Two writes: the second comes while the first bytes are unread.
            s.write_all(&[7; 100]).unwrap();
            s.write_all(&[8; 100]).unwrap();
        });
        let got = soon(async {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let mut got = Vec::new();
            let mut byte = [0u8; 1];
            while stream.read(&mut byte).await.unwrap() == 1 {
                got.push(byte[0]);
            }
            got
        });
        assert_eq!(got.len(), 200);
        assert!(got[..100].iter().all(|&b| b == 7) && got[100..].iter().all(|&b| b == 8));
    }

    #[test]
    fn a_write_larger_than_the_socket_buffers_waits_for_room() {
        use futures_lite::AsyncWriteExt;
        let (tx, rx) = std::sync::mpsc::channel();
        let addr = peer(move |mut s| {
            let mut all = Vec::new();
            s.read_to_end(&mut all).unwrap();
            tx.send(all.len()).unwrap();
        });
        const LEN: usize = 16 << 20;
        soon(async {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(&vec![1u8; LEN]).await.unwrap();
            stream.close().await.unwrap();
        });
        assert_eq!(rx.recv().unwrap(), LEN);
    }

    #[test]
    fn a_refused_connection_says_so() {
        // A port just closed: nothing listens there.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let e = soon(TcpStream::connect(addr)).err().expect("refused");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None);
        let e = soon(TcpStream::connect_bound(socket.unwrap(), addr)).err();
        assert_eq!(e.expect("refused").kind(), io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn a_bound_socket_connects_from_its_address() {
        use futures_lite::AsyncReadExt;
        let addr = peer(|mut s| s.write_all(b"hi").unwrap());
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let local: SocketAddr = "127.0.0.2:0".parse().unwrap();
        socket.bind(&local.into()).unwrap();
        let (from, got) = soon(async {
            let mut stream = TcpStream::connect_bound(socket, addr).await.unwrap();
            let mut got = Vec::new();
            stream.read_to_end(&mut got).await.unwrap();
            (stream.local_addr().unwrap(), got)
        });
        assert_eq!(from.ip(), local.ip());
        assert_eq!(got, b"hi");
    }

    #[test]
    fn a_wake_from_another_thread_ends_the_wait() {
        let (tx, rx) = async_channel::bounded::<u32>(1);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let sender = std::thread::spawn(move || {
            // Sent once the receiver is about to wait (it may be blocked in the reactor,
            // or not yet: both must work).
            ready_rx.recv().unwrap();
            tx.send_blocking(5).unwrap();
        });
        let got = soon(async {
            ready_tx.send(()).unwrap();
            rx.recv().await.unwrap()
        });
        assert_eq!(got, 5);
        sender.join().unwrap();
    }

    /// What the own reactor refused at run time ("the socket outlived its thread's
    /// reactor"): a connection opened under one thread's `block_on` is read under
    /// another's. The type says so too: it is `Send`.
    #[test]
    fn a_connection_opened_on_one_thread_is_read_on_another() {
        use futures_lite::AsyncReadExt;
        fn is_send<T: Send>(_: &T) {}
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let addr = peer(move |mut s| {
            go_rx.recv().unwrap();
            s.write_all(b"late").unwrap();
        });
        let stream = soon(TcpStream::connect(addr)).unwrap();
        is_send(&stream);
        let reader = std::thread::spawn(move || {
            let mut stream = stream;
            soon(async move {
                let mut got = Vec::new();
                stream.read_to_end(&mut got).await.unwrap();
                got
            })
        });
        go_tx.send(()).unwrap();
        assert_eq!(reader.join().unwrap(), b"late");
    }
}
