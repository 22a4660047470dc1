//! Each probe thread's own epoll: a socket is registered once, edge-triggered, for
//! reading and writing, and never re-armed or removed (closing it removes it). A wait
//! is one `epoll_wait`, its timeout the thread's earliest deadline.
//!
//! async-io's reactor (which async-std runs on) registers a socket one-shot, so every
//! wait for it is another `epoll_ctl`, and each reactor wait is five system calls (a
//! timerfd set and re-armed, the wait, its notifier read and re-armed): on a probe,
//! about nine calls that move nothing. Everything that is not a probe's TCP connection
//! (timers, the resolver's sockets, channels from other threads) stays on async-io,
//! whose own thread drives it and wakes this one through an eventfd.
//!
//! Safe code over `rustix`, the system-call layer under `polling` and async-io.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use rustix::event::{epoll, eventfd, EventfdFlags};

/// The event data of the notifier; sources use `generation << 32 | slot`.
const NOTIFY: u64 = u64::MAX;

/// Events taken per wait.
const EVENTS: usize = 256;

thread_local! {
    /// This thread's reactor, while a `block_on` runs here.
    static REACTOR: RefCell<Option<Reactor>> = const { RefCell::new(None) };
}

struct Reactor {
    /// Which reactor this is: a registration made on an earlier one (a socket that
    /// outlived its `block_on`) must not touch this one's slots.
    id: u64,
    epoll: OwnedFd,
    notifier: Arc<Notifier>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    events: Vec<epoll::Event>,
}

#[derive(Default)]
struct Slot {
    generation: u32,
    ready: Ready,
}

/// What the edges said of a socket since it was last found blocked, and who waits.
#[derive(Default)]
struct Ready {
    readable: bool,
    writable: bool,
    /// EPOLLERR or EPOLLHUP came: the socket's error (if any) is the answer.
    failed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// Reading or writing.
#[derive(Clone, Copy)]
pub(super) enum Way {
    Read,
    Write,
}

impl Ready {
    fn way(&mut self, way: Way) -> (&mut bool, &mut Option<Waker>) {
        match way {
            Way::Read => (&mut self.readable, &mut self.reader),
            Way::Write => (&mut self.writable, &mut self.writer),
        }
    }
}

/// The waker of the future `block_on` runs: wakes from this thread only set a flag;
/// from another, while the thread waits, they also write the eventfd.
struct Notifier {
    woken: AtomicBool,
    waiting: AtomicBool,
    eventfd: OwnedFd,
}

impl Wake for Notifier {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, SeqCst) && self.waiting.load(SeqCst) {
            let _ = rustix::io::write(&self.eventfd, &1u64.to_ne_bytes());
        }
    }
}

/// Whether a reactor runs on this thread.
pub(super) fn here() -> bool {
    REACTOR.with(|r| r.borrow().is_some())
}

/// Runs `future` on this thread with its own reactor; `None` (the future untouched)
/// when a reactor cannot be made, or one already runs here.
pub(super) fn block_on<F: std::future::Future>(
    future: F,
    mut due: impl FnMut(Instant) -> Option<Instant>,
) -> Result<F::Output, F> {
    let installed = REACTOR.with(|r| {
        let mut r = r.borrow_mut();
        if r.is_some() {
            return None;
        }
        let reactor = Reactor::new().ok()?;
        let notifier = Arc::clone(&reactor.notifier);
        *r = Some(reactor);
        Some(notifier)
    });
    let Some(notifier) = installed else {
        return Err(future);
    };
    let _uninstall = Uninstall;
    let waker = Waker::from(Arc::clone(&notifier));
    // The wakers of each wait, kept for the next.
    let mut woken = Vec::new();
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        notifier.woken.store(false, SeqCst);
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return Ok(out);
        }
        // `due` wakes the deadlines that passed and says when the next one is.
        let next = due(Instant::now());
        turn(&notifier, next, &mut woken);
    }
}

/// Takes the reactor out of the thread when `block_on` ends (or unwinds); sockets still
/// registered then find no reactor and answer errors.
struct Uninstall;

impl Drop for Uninstall {
    fn drop(&mut self) {
        // Dropped outside the borrow: the wakers it holds may be the last of theirs.
        let reactor = REACTOR.try_with(|r| r.borrow_mut().take());
        drop(reactor);
    }
}

/// One wait (none when the future was woken meanwhile), then the wakers of the sockets
/// that became ready.
fn turn(notifier: &Notifier, next_deadline: Option<Instant>, woken: &mut Vec<Waker>) {
    let mut timeout = next_deadline.map(|at| {
        // Whole milliseconds, rounded up: a wait that ends early only comes back.
        let left = at.saturating_duration_since(Instant::now());
        let ms = left
            .as_nanos()
            .div_ceil(1_000_000)
            .min(u128::from(u32::MAX >> 1));
        Duration::from_millis(ms as u64)
    });
    notifier.waiting.store(true, SeqCst);
    if notifier.woken.load(SeqCst) {
        timeout = Some(Duration::ZERO);
    }
    REACTOR.with(|r| {
        let mut r = r.borrow_mut();
        let Some(reactor) = r.as_mut() else { return };
        reactor.wait(timeout, woken);
    });
    notifier.waiting.store(false, SeqCst);
    for waker in woken.drain(..) {
        waker.wake();
    }
}

impl Reactor {
    fn new() -> io::Result<Reactor> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let eventfd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        epoll::add(
            &epoll,
            &eventfd,
            epoll::EventData::new_u64(NOTIFY),
            epoll::EventFlags::IN | epoll::EventFlags::ET,
        )?;
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Ok(Reactor {
            id: IDS.fetch_add(1, SeqCst),
            epoll,
            notifier: Arc::new(Notifier {
                woken: AtomicBool::new(false),
                waiting: AtomicBool::new(false),
                eventfd,
            }),
            slots: Vec::new(),
            free: Vec::new(),
            events: Vec::with_capacity(EVENTS),
        })
    }

    fn wait(&mut self, timeout: Option<Duration>, woken: &mut Vec<Waker>) {
        let timeout = timeout.map(|t| rustix::time::Timespec {
            tv_sec: t.as_secs() as _,
            tv_nsec: t.subsec_nanos() as _,
        });
        self.events.clear();
        let spare = rustix::buffer::spare_capacity(&mut self.events);
        // An interrupted or failed wait just comes back: the loop polls and waits again.
        if epoll::wait(&self.epoll, spare, timeout.as_ref()).is_err() {
            return;
        }
        for event in &self.events {
            let data = event.data.u64();
            if data == NOTIFY {
                let mut count = [0u8; 8];
                let _ = rustix::io::read(&self.notifier.eventfd, &mut count);
                continue;
            }
            let (generation, slot) = ((data >> 32) as u32, data as u32);
            let Some(slot) = self.slots.get_mut(slot as usize) else {
                continue;
            };
            // A socket closed since (its slot reused or free): not this one's event.
            if slot.generation != generation {
                continue;
            }
            let flags = event.flags;
            let ready = &mut slot.ready;
            let failed = flags.intersects(epoll::EventFlags::ERR | epoll::EventFlags::HUP);
            ready.failed |= failed;
            if failed || flags.intersects(epoll::EventFlags::IN | epoll::EventFlags::RDHUP) {
                ready.readable = true;
                woken.extend(ready.reader.take());
            }
            if failed || flags.contains(epoll::EventFlags::OUT) {
                ready.writable = true;
                woken.extend(ready.writer.take());
            }
        }
    }
}

/// A socket registered with this thread's reactor, for as long as it lives.
pub(super) struct Registration {
    key: u64,
    reactor: u64,
}

/// The reactor is gone (the socket outlived the `block_on` it was made in).
fn no_reactor() -> io::Error {
    io::Error::other("the socket outlived its thread's reactor")
}

impl Registration {
    /// Registers `fd` on this thread's reactor; `None` when no reactor runs here.
    pub(super) fn new(fd: impl AsFd) -> Option<io::Result<Registration>> {
        REACTOR.with(|r| {
            let mut r = r.borrow_mut();
            let reactor = r.as_mut()?;
            let slot = match reactor.free.pop() {
                Some(slot) => slot,
                None => {
                    reactor.slots.push(Slot::default());
                    (reactor.slots.len() - 1) as u32
                }
            };
            let generation = reactor.slots[slot as usize].generation;
            let key = (u64::from(generation) << 32) | u64::from(slot);
            use epoll::EventFlags as E;
            let added = epoll::add(
                &reactor.epoll,
                fd,
                epoll::EventData::new_u64(key),
                E::IN | E::OUT | E::RDHUP | E::ET,
            );
            Some(match added {
                Ok(()) => Ok(Registration {
                    key,
                    reactor: reactor.id,
                }),
                Err(e) => {
                    // A fresh slot: nothing in it to drop.
                    let _ = release(reactor, reactor.id, key);
                    Err(e.into())
                }
            })
        })
    }

    /// Ready once an edge said the socket is ready for `way` (or failed) since an
    /// operation that way last found it blocked.
    pub(super) fn poll_ready(&self, way: Way, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|ready| {
            let (flag, waiter) = ready.way(way);
            if !*flag {
                store(waiter, cx);
            }
            *flag
        })
    }

    /// An operation `way` would block: the next `poll_ready` waits for an edge.
    pub(super) fn blocked(&self, way: Way) {
        let _ = self.with(|ready| {
            *ready.way(way).0 = false;
            true
        });
    }

    /// `op` (a read or a write on the socket), once the socket is ready for it, until
    /// it does not block.
    pub(super) fn poll_io<T>(
        &self,
        way: Way,
        cx: &mut Context<'_>,
        mut op: impl FnMut() -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        loop {
            futures_lite::ready!(self.poll_ready(way, cx))?;
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.blocked(way),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                done => return Poll::Ready(done),
            }
        }
    }

    /// Whether it is registered with the reactor running on this thread now.
    pub(super) fn is_current(&self) -> bool {
        REACTOR.with(|r| r.borrow().as_ref().is_some_and(|r| r.id == self.reactor))
    }

    /// Whether an EPOLLERR or EPOLLHUP came for it.
    pub(super) fn failed(&self) -> bool {
        REACTOR.with(|r| {
            r.borrow_mut()
                .as_mut()
                .and_then(|reactor| slot_of(reactor, self.reactor, self.key))
                .is_none_or(|slot| slot.ready.failed)
        })
    }

    fn with(&self, f: impl FnOnce(&mut Ready) -> bool) -> Poll<io::Result<()>> {
        REACTOR.with(|r| {
            let mut r = r.borrow_mut();
            let found = r
                .as_mut()
                .and_then(|reactor| slot_of(reactor, self.reactor, self.key));
            let Some(slot) = found else {
                return Poll::Ready(Err(no_reactor()));
            };
            if f(&mut slot.ready) {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let old = REACTOR.try_with(|r| {
            let mut r = r.borrow_mut();
            release(r.as_mut()?, self.reactor, self.key)
        });
        drop(old);
    }
}

fn slot_of(reactor: &mut Reactor, id: u64, key: u64) -> Option<&mut Slot> {
    if reactor.id != id {
        return None;
    }
    let slot = reactor.slots.get_mut(key as u32 as usize)?;
    (slot.generation == (key >> 32) as u32).then_some(slot)
}

/// Frees a slot: a new generation, so late events for the old socket are ignored. No
/// `epoll_ctl(DEL)`: closing the socket takes it out of the epoll set.
/// The old state comes back to be dropped once the reactor is no longer borrowed: the
/// wakers in it may be the last of theirs.
fn release(reactor: &mut Reactor, id: u64, key: u64) -> Option<Ready> {
    let slot = slot_of(reactor, id, key)?;
    slot.generation = slot.generation.wrapping_add(1);
    let old = std::mem::take(&mut slot.ready);
    reactor.free.push(key as u32);
    Some(old)
}

fn store(slot: &mut Option<Waker>, cx: &mut Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}
