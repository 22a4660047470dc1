//! A first-come, first-served limit on DNS lookups in flight.
//!
//! async-lock's semaphore lets a newcomer take a freed permit before a waiter that was
//! woken for it, so under sustained load (1,000 probes sharing 256 slots) a few
//! lookups starved for the whole connect budget and failed with no query sent. Here a
//! freed slot is handed straight to the longest waiter.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

pub struct Slots {
    state: Mutex<State>,
}

struct State {
    free: usize,
    queue: VecDeque<Arc<Waiter>>,
}

struct Waiter {
    granted: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

/// A slot held; given back (to the next waiter, if any) on drop.
pub struct Slot<'a> {
    slots: &'a Slots,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.slots.release();
    }
}

impl Slots {
    pub fn new(n: usize) -> Slots {
        Slots {
            state: Mutex::new(State {
                free: n,
                queue: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot, in arrival order.
    pub fn acquire(&self) -> Acquire<'_> {
        Acquire {
            slots: self,
            waiter: None,
            done: false,
        }
    }

    fn release(&self) {
        let mut state = self.lock();
        match state.queue.pop_front() {
            Some(next) => {
                next.granted.store(true, Ordering::SeqCst);
                drop(state);
                let waker = next.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
            None => state.free += 1,
        }
    }
}

pub struct Acquire<'a> {
    slots: &'a Slots,
    waiter: Option<Arc<Waiter>>,
    done: bool,
}

impl<'a> Future for Acquire<'a> {
    type Output = Slot<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Slot<'a>> {
        let slots = self.slots;
        match &self.waiter {
            None => {
                let mut state = slots.lock();
                if state.queue.is_empty() && state.free > 0 {
                    state.free -= 1;
                    drop(state);
                    self.done = true;
                    return Poll::Ready(Slot { slots });
                }
                let waiter = Arc::new(Waiter {
                    granted: AtomicBool::new(false),
                    waker: Mutex::new(Some(cx.waker().clone())),
                });
                state.queue.push_back(Arc::clone(&waiter));
                drop(state);
                self.waiter = Some(waiter);
                Poll::Pending
            }
            Some(waiter) => {
                // The waker is stored before `granted` is read: a release in between
                // either sees this waker or is seen here.
                *waiter.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
                if waiter.granted.load(Ordering::SeqCst) {
                    self.done = true;
                    Poll::Ready(Slot { slots })
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        let Some(waiter) = self.waiter.take() else {
            return;
        };
        if self.done {
            return;
        }
        let mut state = self.slots.lock();
        if waiter.granted.load(Ordering::SeqCst) {
            // Handed a slot it will never use: pass it on.
            drop(state);
            self.slots.release();
        } else {
            state.queue.retain(|w| !Arc::ptr_eq(w, &waiter));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_go_to_waiters_in_arrival_order() {
        use futures_lite::future::{block_on, poll_once};
        let slots = Slots::new(1);
        let held = block_on(slots.acquire());
        let mut first = Box::pin(slots.acquire());
        let mut second = Box::pin(slots.acquire());
        assert!(block_on(poll_once(&mut first)).is_none());
        assert!(block_on(poll_once(&mut second)).is_none());
        // A newcomer does not jump the queue.
        let mut late = Box::pin(slots.acquire());
        drop(held);
        assert!(block_on(poll_once(&mut late)).is_none());
        assert!(block_on(poll_once(&mut second)).is_none());
        let Some(slot) = block_on(poll_once(&mut first)) else {
            panic!("the first waiter was passed over");
        };
        // A granted waiter that goes away passes its slot on.
        drop(slot);
        drop(second);
        assert!(block_on(poll_once(&mut late)).is_some());
    }
}
