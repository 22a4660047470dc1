//! Admitted targets to the probe threads: each batch goes to the thread with the fewest
//! probes in flight.
//!
//! With one channel shared by all, the admitting thread took most of the work: its own
//! receiver is polled in the same executor tick as the send, while the other threads
//! have to wake first. Measured on 2 cores: the admitting thread busy 0.95 CPUs, the
//! other 0.21.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use async_channel::{Receiver, Sender};

/// The sending side, held by admission. Dropping it ends every inbox once drained.
pub struct Dispatch<T> {
    lanes: Vec<(Sender<Vec<T>>, Arc<AtomicUsize>)>,
}

/// One probe thread's side.
pub struct Inbox<T> {
    jobs: Receiver<Vec<T>>,
    load: Arc<AtomicUsize>,
}

/// A dispatcher over `threads` inboxes (at least one). Inbox 0 is the admitting
/// thread's: it also admits and prints, so ties go to the others.
pub fn dispatch<T>(threads: usize) -> (Dispatch<T>, Vec<Inbox<T>>) {
    let (lanes, inboxes) = (0..threads.max(1))
        .map(|_| {
            // Admitted targets hold slots, so at most `--concurrency` are ever queued.
            let (tx, rx) = async_channel::unbounded();
            let load = Arc::new(AtomicUsize::new(0));
            let inbox = Inbox {
                jobs: rx,
                load: Arc::clone(&load),
            };
            ((tx, load), inbox)
        })
        .unzip();
    (Dispatch { lanes }, inboxes)
}

impl<T> Dispatch<T> {
    /// Hands `batch` to the least loaded thread (never waits: the channels are
    /// unbounded).
    pub fn send(&self, batch: Vec<T>) {
        let Some((tx, load)) = self
            .lanes
            .iter()
            .rev()
            .min_by_key(|(_, load)| load.load(Relaxed))
        else {
            return;
        };
        load.fetch_add(batch.len(), Relaxed);
        if let Err(lost) = tx.try_send(batch) {
            // Only a closed inbox refuses, and inboxes outlive admission.
            load.fetch_sub(lost.into_inner().len(), Relaxed);
        }
    }
}

impl<T> Inbox<T> {
    /// The next batch; `None` once admission is over and this inbox is drained.
    pub async fn recv(&self) -> Option<Vec<T>> {
        self.jobs.recv().await.ok()
    }

    /// One of this thread's probes is done.
    pub fn done(&self) {
        self.load.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_goes_to_the_least_loaded_thread_ties_away_from_the_admitting_one() {
        let (dispatch, inboxes) = dispatch::<u8>(3);
        let queued =
            |inboxes: &[Inbox<u8>]| inboxes.iter().map(|i| i.jobs.len()).collect::<Vec<_>>();
        // All idle: not inbox 0, the admitting thread's.
        dispatch.send(Vec::new());
        assert_eq!(queued(&inboxes), [0, 0, 1]);
        for (inbox, load) in inboxes.iter().zip([3, 2, 5]) {
            inbox.load.store(load, Relaxed);
        }
        dispatch.send(Vec::new());
        assert_eq!(queued(&inboxes), [0, 1, 1]);
        inboxes[1].done();
        assert_eq!(inboxes[1].load.load(Relaxed), 1);
        inboxes[0].load.store(1, Relaxed);
        dispatch.send(Vec::new());
        assert_eq!(queued(&inboxes), [0, 2, 1]);
    }
}
