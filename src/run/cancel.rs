//! The run-wide stop signal: futures wait on it; the signal handler and the writer
//! thread trigger it.

use std::sync::atomic::{AtomicU8, Ordering};

use async_channel::{Receiver, Sender};

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT.
    Interrupted = 1,
    /// Standard output was closed.
    BrokenPipe = 2,
    /// Standard output failed otherwise.
    OutputError = 3,
}

/// Closed (never sent on) to wake every waiter at once.
pub struct Cancel {
    tx: Sender<()>,
    rx: Receiver<()>,
    reason: AtomicU8,
}

impl Default for Cancel {
    fn default() -> Self {
        let (tx, rx) = async_channel::bounded(1);
        Cancel {
            tx,
            rx,
            reason: AtomicU8::new(0),
        }
    }
}

impl Cancel {
    /// Stops the run; the first reason given is the one kept.
    pub fn cancel(&self, reason: StopReason) {
        let _ = self
            .reason
            .compare_exchange(0, reason as u8, Ordering::SeqCst, Ordering::SeqCst);
        self.tx.close();
    }

    pub fn reason(&self) -> Option<StopReason> {
        match self.reason.load(Ordering::SeqCst) {
            1 => Some(StopReason::Interrupted),
            2 => Some(StopReason::BrokenPipe),
            3 => Some(StopReason::OutputError),
            _ => None,
        }
    }

    /// Resolves once the run is cancelled.
    pub async fn wait(&self) {
        // Nothing is ever sent: `recv` only returns when the channel is closed.
        let _ = self.rx.recv().await;
    }

    /// Runs `work` unless the run is cancelled first (then `None`).
    pub async fn guard<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        futures_lite::future::or(async { Some(work.await) }, async {
            self.wait().await;
            None
        })
        .await
    }
}
