//! The run-wide stop signal: futures wait on it; the signal watcher and the writer
//! thread trigger it.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use async_channel::{Receiver, Sender};

/// The signals that end a run, each with its own exit status (`exit::signalled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C): exit status 130.
    Interrupt,
    /// SIGTERM (systemd, Kubernetes, `kill`): 143.
    Terminate,
    /// SIGHUP (the terminal closed): 129.
    HangUp,
}

impl Signal {
    /// How messages say the run ended: `interrupted`, `stopped by SIGTERM`.
    pub fn ended(self) -> &'static str {
        match self {
            Signal::Interrupt => "interrupted",
            Signal::Terminate => "stopped by SIGTERM",
            Signal::HangUp => "stopped by SIGHUP",
        }
    }
}

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT, SIGTERM or SIGHUP.
    Signal(Signal),
    /// Standard output was closed.
    BrokenPipe,
    /// Standard output failed otherwise.
    OutputError,
}

impl StopReason {
    /// The reason as kept in an atomic byte (0 is none).
    fn code(self) -> u8 {
        match self {
            StopReason::BrokenPipe => 1,
            StopReason::OutputError => 2,
            StopReason::Signal(Signal::Interrupt) => 3,
            StopReason::Signal(Signal::Terminate) => 4,
            StopReason::Signal(Signal::HangUp) => 5,
        }
    }

    fn from_code(code: u8) -> Option<StopReason> {
        Some(match code {
            1 => StopReason::BrokenPipe,
            2 => StopReason::OutputError,
            3 => StopReason::Signal(Signal::Interrupt),
            4 => StopReason::Signal(Signal::Terminate),
            5 => StopReason::Signal(Signal::HangUp),
            _ => return None,
        })
    }
}

/// Whether the writer thread has anything left to write, for an exit that cannot wait
/// for the run to end but still writes what is already formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    NotStarted,
    Writing,
    Done,
}

/// Closed (never sent on) to wake every waiter at once.
pub struct Cancel {
    tx: Sender<()>,
    rx: Receiver<()>,
    reason: AtomicU8,
    /// Closed when the run must end now (a second interrupt): the writer writes what is
    /// queued and stops.
    hurry_tx: Sender<()>,
    hurry_rx: Receiver<()>,
    writer: Mutex<Writer>,
    writer_done: Condvar,
}

impl Default for Cancel {
    fn default() -> Self {
        let (tx, rx) = async_channel::bounded(1);
        let (hurry_tx, hurry_rx) = async_channel::bounded(1);
        Cancel {
            tx,
            rx,
            reason: AtomicU8::new(0),
            hurry_tx,
            hurry_rx,
            writer: Mutex::new(Writer::NotStarted),
            writer_done: Condvar::new(),
        }
    }
}

impl Cancel {
    /// Stops the run; the first reason given is the one kept.
    pub fn cancel(&self, reason: StopReason) {
        let _ = self
            .reason
            .compare_exchange(0, reason.code(), Ordering::SeqCst, Ordering::SeqCst);
        self.tx.close();
    }

    pub fn reason(&self) -> Option<StopReason> {
        StopReason::from_code(self.reason.load(Ordering::SeqCst))
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

    /// The run must end now: the writer writes what it has been handed and stops.
    pub fn hurry(&self) {
        self.hurry_tx.close();
    }

    /// Resolves once `hurry` is called.
    pub async fn wait_hurry(&self) {
        let _ = self.hurry_rx.recv().await;
    }

    /// The writer thread is about to start.
    pub fn writer_started(&self) {
        if let Ok(mut writer) = self.writer.lock() {
            *writer = Writer::Writing;
        }
    }

    /// The writer thread has written everything it will write.
    pub fn writer_finished(&self) {
        if let Ok(mut writer) = self.writer.lock() {
            *writer = Writer::Done;
        }
        self.writer_done.notify_all();
    }

    /// Waits, at most `limit`, for a started writer to finish.
    pub fn wait_writer(&self, limit: Duration) {
        let Ok(writer) = self.writer.lock() else {
            return;
        };
        let _ = self
            .writer_done
            .wait_timeout_while(writer, limit, |w| *w == Writer::Writing);
    }
}
