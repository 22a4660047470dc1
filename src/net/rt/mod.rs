//! The runtime, named once: blocking on a future with the reactor, timers, the
//! deadlines of probes, and their TCP connections. Moving from async-std/async-io to
//! another runtime starts here.
//!
//! A thread that blocks here runs its own epoll (`reactor`) for its probes' TCP
//! connections, registered once and edge-triggered; everything else (timers, the
//! resolver's sockets, channels) stays on async-io's reactor, driven by its own thread.
//!
//! Deadlines (`timeout`) do not take a reactor timer each. async-io wakes the thread in
//! the reactor (an eventfd write and read, another epoll wait) for every timer inserted,
//! which is twice per probe. Instead each thread that blocks here keeps its deadlines in
//! a queue, and the earliest is the timeout of its next epoll wait. (On a thread where
//! the own reactor cannot run, one async-io timer serves the queue, armed at the
//! earliest.)

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{AsyncRead, AsyncWrite};

mod reactor;

use reactor::Way;

/// Runs `future` to completion on this thread: with a reactor of its own for the
/// thread's TCP connections (`reactor`), whose waits are timed by the thread's deadlines;
/// on async-io's reactor if that cannot be (nested, or no epoll).
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    // Served from the start: the deadlines of the future's first poll queue too.
    let _served = Served::new();
    match reactor::block_on(future, serve_due) {
        Ok(out) => out,
        Err(future) => async_io::block_on(futures_lite::future::or(future, serve_deadlines())),
    }
}

/// Waits `duration`.
pub async fn sleep(duration: Duration) {
    Timer::after(duration).await;
}

/// A probe's TCP connection: registered with the thread's reactor where `block_on` runs
/// one, otherwise async-io's.
pub struct TcpStream {
    io: Io,
}

enum Io {
    Own {
        stream: std::net::TcpStream,
        registration: reactor::Registration,
    },
    /// async-io's, which reads only once the socket is readable after it has written:
    /// an answer cannot be there the moment the request (or a TLS hello) is sent, and
    /// the read that would find nothing costs a system call.
    Async {
        io: Async<std::net::TcpStream>,
        /// Written since the last read found the socket readable.
        sent: bool,
    },
}

impl TcpStream {
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        use rustix::net::{AddressFamily, SocketFlags, SocketType};
        if !reactor::here() {
            let io = Async::<std::net::TcpStream>::connect(addr).await?;
            return Ok(TcpStream {
                io: Io::Async { io, sent: false },
            });
        }
        let family = match addr {
            SocketAddr::V4(_) => AddressFamily::INET,
            SocketAddr::V6(_) => AddressFamily::INET6,
        };
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        let fd = rustix::net::socket_with(family, SocketType::STREAM, flags, None)?;
        // Registered once connecting: an unconnected socket reads as hung up.
        match rustix::net::connect(&fd, &addr) {
            Ok(()) | Err(rustix::io::Errno::INPROGRESS) => {}
            Err(e) => return Err(e.into()),
        }
        TcpStream::connecting(fd).await
    }

    /// Connects `socket`, made and set up by the caller (bound to a local address or a
    /// device: `--interface`), to `addr`: a non-blocking connect, then its completion.
    pub async fn connect_bound(socket: socket2::Socket, addr: SocketAddr) -> io::Result<TcpStream> {
        socket.set_nonblocking(true)?;
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        let fd = std::os::fd::OwnedFd::from(socket);
        if reactor::here() {
            return TcpStream::connecting(fd).await;
        }
        let io = Async::new(std::net::TcpStream::from(fd))?;
        io.writable().await?;
        if let Some(e) = io.get_ref().take_error()? {
            return Err(e);
        }
        // Writable without an error can still be a socket that never connected.
        io.get_ref().peer_addr()?;
        Ok(TcpStream {
            io: Io::Async { io, sent: false },
        })
    }

    /// A socket whose connect is in progress, registered with this thread's reactor and
    /// waited on until it is connected or failed.
    async fn connecting(fd: std::os::fd::OwnedFd) -> io::Result<TcpStream> {
        let registration = match reactor::Registration::new(&fd) {
            Some(registration) => registration?,
            None => return Err(io::Error::other("no reactor on this thread")),
        };
        let stream = std::net::TcpStream::from(fd);
        futures_lite::future::poll_fn(|cx| registration.poll_ready(Way::Write, cx)).await?;
        // Only a failed connection needs its error read (SO_ERROR).
        if registration.failed() {
            if let Some(e) = stream.take_error()? {
                return Err(e);
            }
        }
        Ok(TcpStream {
            io: Io::Own {
                stream,
                registration,
            },
        })
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match &self.io {
            Io::Own { stream, .. } => stream.set_nodelay(on),
            Io::Async { io, .. } => io.get_ref().set_nodelay(on),
        }
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.io {
            Io::Own { stream, .. } => stream.as_fd(),
            Io::Async { io, .. } => io.as_fd(),
        }
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.io {
            Io::Own {
                stream,
                registration,
            } => registration.poll_io(Way::Read, cx, || (&*stream).read(buf)),
            Io::Async { io, sent } => {
                if *sent {
                    futures_lite::ready!(io.poll_readable(cx))?;
                    *sent = false;
                }
                Pin::new(io).poll_read(cx, buf)
            }
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.io {
            Io::Own {
                stream,
                registration,
            } => registration.poll_io(Way::Write, cx, || (&*stream).write(buf)),
            Io::Async { io, sent } => {
                let written = futures_lite::ready!(Pin::new(io).poll_write(cx, buf))?;
                *sent = true;
                Poll::Ready(Ok(written))
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Own { .. } => Poll::Ready(Ok(())),
            Io::Async { io, .. } => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Own { stream, .. } => Poll::Ready(stream.shutdown(std::net::Shutdown::Write)),
            Io::Async { io, .. } => Pin::new(io).poll_close(cx),
        }
    }
}

/// A UDP socket (the resolver's): watched by the thread's reactor where `block_on` runs
/// one (registered on first use, and again under a later `block_on`), otherwise by
/// async-io's.
pub struct UdpSocket {
    io: Async<std::net::UdpSocket>,
    own: std::cell::RefCell<Option<reactor::Registration>>,
}

impl UdpSocket {
    pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            io: Async::<std::net::UdpSocket>::bind(addr)?,
            own: std::cell::RefCell::new(None),
        })
    }

    pub fn get_ref(&self) -> &std::net::UdpSocket {
        self.io.get_ref()
    }

    /// Ready when a datagram may be there; after `recv` found none, once one comes.
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if reactor::here() {
            let mut own = self.own.borrow_mut();
            if !own.as_ref().is_some_and(reactor::Registration::is_current) {
                *own = None;
                if let Some(Ok(registration)) = reactor::Registration::new(self.io.get_ref()) {
                    *own = Some(registration);
                }
            }
            if let Some(registration) = own.as_ref() {
                return registration.poll_ready(Way::Read, cx);
            }
        }
        self.io.poll_readable(cx)
    }

    /// Reads one datagram (connected socket); `WouldBlock` when none is there.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.io.get_ref().recv(buf);
        if matches!(&read, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            if let Some(registration) = self.own.borrow().as_ref() {
                registration.blocked(Way::Read);
            }
        }
        read
    }
}

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
        fallback: Option<Box<Timer>>,
    }

    impl<F> PinnedDrop for Deadline<F> {
        fn drop(this: Pin<&mut Self>) {
            leave(this.project().key);
        }
    }
}

type Key = (Instant, u64);

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
            return match Pin::new(timer.as_mut()).poll(cx) {
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
        let mut timer = Box::new(Timer::at(at));
        let ready = Pin::new(timer.as_mut()).poll(cx).is_ready();
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

/// Wakes this thread's deadlines that passed by `now`; the earliest of the rest.
fn serve_due(now: Instant) -> Option<Instant> {
    let (due, earliest) = QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        let mut due = Vec::new();
        while let Some(entry) = q.waiting.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        (due, q.waiting.first_key_value().map(|(k, _)| k.0))
    });
    for waker in due {
        waker.wake();
    }
    earliest
}

/// Serves this thread's deadlines on async-io's reactor, forever: wakes those that passed and keeps one
/// timer at the earliest of the rest.
async fn serve_deadlines<T>() -> T {
    let mut timer = Timer::never();
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
                timer.set_at(at);
            }
            match Pin::new(&mut timer).poll(cx) {
                Poll::Ready(_) => QUEUE.with(|q| q.borrow_mut().armed = None),
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
            let executor = async_executor::LocalExecutor::new();
            executor
                .run(async {
                    // A far deadline arms the timer; a nearer one must still fire on
                    // time; one that finishes early leaves the queue.
                    let far = executor.spawn(timeout(
                        Duration::from_secs(30),
                        sleep(Duration::from_secs(60)),
                    ));
                    let done = timeout(Duration::from_secs(20), async { 1 }).await;
                    assert_eq!(done, Ok(1));
                    let start = Instant::now();
                    let near = timeout(Duration::from_millis(20), sleep(Duration::from_secs(60)));
                    assert_eq!(near.await, Err(Elapsed));
                    assert!(start.elapsed() < Duration::from_secs(5));
                    QUEUE.with(|q| assert_eq!(q.borrow().waiting.len(), 1));
                    assert_eq!(far.cancel().await, None);
                    QUEUE.with(|q| assert!(q.borrow().waiting.is_empty()));
                })
                .await;
        });
    }

    #[test]
    fn without_a_server_a_deadline_takes_a_timer_of_its_own() {
        let out = async_io::block_on(timeout(
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

    /// Within 10 s on this thread's own deadlines, which need nothing from another
    /// thread: a lost wake-up fails the test rather than hanging it.
    fn soon<T>(future: impl Future<Output = T>) -> T {
        block_on(timeout(Duration::from_secs(10), future)).expect("finished within 10 s")
    }

    #[test]
    fn a_connection_reads_every_byte_one_at_a_time_on_the_own_reactor() {
        use futures_lite::AsyncReadExt;
        let addr = peer(|mut s| {
            // Two writes: the second edge comes while the first bytes are unread.
            s.write_all(&[7; 100]).unwrap();
            s.write_all(&[8; 100]).unwrap();
        });
        let got = soon(async {
            assert!(reactor::here(), "block_on runs the thread's own reactor");
            let mut stream = TcpStream::connect(addr).await.unwrap();
            assert!(matches!(stream.io, Io::Own { .. }));
            let mut got = Vec::new();
            let mut byte = [0u8; 1];
            // Edge-triggered: a read that leaves bytes behind must not wait for an edge.
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
    }

    #[test]
    fn a_wake_from_another_thread_ends_the_wait() {
        let (tx, rx) = async_channel::bounded::<u32>(1);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let sender = std::thread::spawn(move || {
            // Sent once the receiver is about to wait (it may be in epoll_wait, or not
            // yet: both must work).
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

    #[test]
    fn outside_block_on_a_connection_uses_async_io() {
        let addr = peer(|_| {});
        let stream = async_io::block_on(TcpStream::connect(addr)).unwrap();
        assert!(matches!(stream.io, Io::Async { .. }));
    }

    /// Waits for a datagram on `socket` and reads it.
    async fn next_datagram(socket: &UdpSocket) -> Vec<u8> {
        let mut buf = [0u8; 64];
        futures_lite::future::poll_fn(|cx| loop {
            futures_lite::ready!(socket.poll_readable(cx)).unwrap();
            match socket.recv(&mut buf) {
                Ok(n) => return Poll::Ready(buf[..n].to_vec()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        })
        .await
    }

    #[test]
    fn a_udp_socket_is_read_on_the_own_reactor_and_again_under_a_later_block_on() {
        let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .get_ref()
            .connect(peer.local_addr().unwrap())
            .unwrap();
        peer.connect(socket.get_ref().local_addr().unwrap())
            .unwrap();
        let sender = peer.try_clone().unwrap();
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let feeder = std::thread::spawn(move || {
            for i in 1..=3u8 {
                wait.recv().unwrap();
                sender.send(&[i]).unwrap();
            }
        });
        soon(async {
            go.send(()).unwrap();
            assert_eq!(next_datagram(&socket).await, [1]);
            assert!(socket.own.borrow().is_some(), "watched by the own reactor");
            // Nothing more there: the next read waits for the next datagram's edge.
            go.send(()).unwrap();
            assert_eq!(next_datagram(&socket).await, [2]);
        });
        // A later block_on on this thread has a new reactor: the socket registers again.
        soon(async {
            go.send(()).unwrap();
            assert_eq!(next_datagram(&socket).await, [3]);
        });
        feeder.join().unwrap();
    }
}
