//! The runtime, named once: blocking on a future with the reactor, timers, the
//! deadlines of probes, and their TCP connections. Moving from async-std/async-io to another runtime starts here.
//!
//! Deadlines (`timeout`) do not take a reactor timer each. async-io wakes the thread in
//! the reactor (an eventfd write and read, another epoll wait) for every timer inserted,
//! which is twice per probe. Instead each thread that blocks here keeps its deadlines in
//! a queue served by one timer, armed at the earliest. Probes' deadlines come later and
//! later, so inserting one rarely moves the timer; one that ends early just leaves the
//! queue, and the timer, when it fires, moves on to the earliest left.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{AsyncRead, AsyncWrite};

/// Runs `future` to completion on this thread, driving the I/O reactor while idle and
/// serving this thread's deadlines.
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    // Served from the start: the deadlines of the future's first poll queue too.
    let _served = Served::new();
    async_io::block_on(futures_lite::future::or(future, serve_deadlines()))
}

/// Waits `duration`.
pub async fn sleep(duration: Duration) {
    Timer::after(duration).await;
}

/// A probe's TCP connection (async-io's), which reads only once the socket is readable
/// after it has written: an answer cannot be there the moment the request (or a TLS
/// hello) is sent, and the read that would find nothing costs a system call.
pub struct TcpStream {
    io: Async<std::net::TcpStream>,
    /// Written since the last read found the socket readable.
    sent: bool,
}

impl TcpStream {
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let io = Async::<std::net::TcpStream>::connect(addr).await?;
        Ok(TcpStream { io, sent: false })
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(on)
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.sent {
            futures_lite::ready!(self.io.poll_readable(cx))?;
            self.sent = false;
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = futures_lite::ready!(Pin::new(&mut self.io).poll_write(cx, buf))?;
        self.sent = true;
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
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

/// Serves this thread's deadlines, forever: wakes those that passed and keeps one
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
}
