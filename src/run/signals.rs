//! SIGINT, SIGTERM and SIGHUP (Ctrl-C alone where there are no such signals): the first
//! stops the run, which then ends as a stopped run does (every target read gets its
//! record, output flushed and tidied); its exit status names the signal.
//!
//! Signals that come together count as one: GNU `timeout -s INT` signals the child and
//! then its process group, so the child gets two SIGINTs microseconds apart. Only a
//! signal `FORCE_AFTER` or more after the first ends the process at once, and even then
//! what is already formatted is written and the output's files are tidied. A signal
//! before the run has started (while the output is opened or `--resume` read) ends the
//! process at once: nothing is read or written yet.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cancel::{Cancel, Signal, StopReason};
use super::outcome::exit;
use crate::report;

/// How long after the first signal another one is taken as "stop now, whatever it
/// costs" rather than as the same stop delivered twice.
pub const FORCE_AFTER: Duration = Duration::from_secs(1);

/// How long an exit that cannot wait still gives the writer to write what is queued.
const WRITE_GRACE: Duration = Duration::from_secs(2);

/// What tidies a file that only lives while the run does (`-o`'s temporary file, a
/// lock file) on an exit that cannot wait; it may return a note for stderr.
pub type Tidy = Box<dyn FnOnce() -> Option<String> + Send>;

/// The signals being watched, for as long as this lives.
pub struct Watcher {
    shared: Arc<Shared>,
    #[cfg(unix)]
    handle: Option<signal_hook::iterator::Handle>,
    #[cfg(not(unix))]
    _installed: bool,
}

struct Shared {
    cancel: Arc<Cancel>,
    /// Whether the run has started (before that, a signal ends the process at once).
    started: AtomicBool,
    /// The first signal and when it came.
    first: Mutex<Option<(Instant, Signal)>>,
    tidy: Mutex<Vec<Tidy>>,
}

/// Starts watching for the stop signals; they stop `cancel`.
pub fn watch(cancel: Arc<Cancel>) -> Watcher {
    let shared = Arc::new(Shared {
        cancel,
        started: AtomicBool::new(false),
        first: Mutex::new(None),
        tidy: Mutex::new(Vec::new()),
    });
    Watcher {
        #[cfg(unix)]
        handle: unix::watch(Arc::clone(&shared)),
        #[cfg(not(unix))]
        _installed: portable::watch(Arc::clone(&shared)),
        shared,
    }
}

impl Watcher {
    /// `tidy` runs if the process must end before the run does.
    pub fn on_exit(&self, tidy: Tidy) {
        if let Ok(mut list) = self.shared.tidy.lock() {
            list.push(tidy);
        }
    }

    /// The run has started: from now on a signal stops it rather than the process.
    pub fn started(&self) {
        self.shared.started.store(true, Ordering::SeqCst);
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(handle) = &self.handle {
            handle.close();
        }
    }
}

impl Shared {
    fn received(&self, signal: Signal) {
        let now = Instant::now();
        let earlier = {
            let Ok(mut first) = self.first.lock() else {
                return;
            };
            let earlier = *first;
            first.get_or_insert((now, signal));
            earlier
        };
        let Some((at, first_signal)) = earlier else {
            if self.started.load(Ordering::SeqCst) {
                self.cancel.cancel(StopReason::Signal(signal));
            } else {
                self.exit_now(signal);
            }
            return;
        };
        // One that came with the first is the same stop, already under way.
        if now.duration_since(at) >= FORCE_AFTER {
            self.exit_now(first_signal);
        }
    }

    /// Ends the process without waiting for the run: what is formatted is written
    /// (for `WRITE_GRACE` at most), the output's files are tidied.
    fn exit_now(&self, signal: Signal) -> ! {
        self.cancel.cancel(StopReason::Signal(signal));
        let started = self.started.load(Ordering::SeqCst);
        if started {
            // Said first: the write that follows may take a moment.
            report::warn(
                "headprobe: signalled again: ending now, without the records of the probes \
                 still in flight (what is already formatted is written first)",
            );
            self.cancel.hurry();
            self.cancel.wait_writer(WRITE_GRACE);
        }
        let tidy = self
            .tidy
            .lock()
            .map(|mut list| std::mem::take(&mut *list))
            .unwrap_or_default();
        for tidy in tidy {
            if let Some(note) = tidy() {
                report::warn(&format!("headprobe: {note}"));
            }
        }
        std::process::exit(exit::signalled(signal));
    }
}

#[cfg(unix)]
mod unix {
    use std::sync::Arc;

    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::iterator::{Handle, Signals};

    use super::{Shared, Signal};

    /// The signals are read on a thread of their own (signal-hook's self-pipe), where
    /// anything may be done, exiting included.
    pub(super) fn watch(shared: Arc<Shared>) -> Option<Handle> {
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP]).ok()?;
        let handle = signals.handle();
        std::thread::Builder::new()
            .name("headprobe-signals".into())
            .spawn(move || {
                for raw in signals.forever() {
                    let signal = match raw {
                        SIGTERM => Signal::Terminate,
                        SIGHUP => Signal::HangUp,
                        _ => Signal::Interrupt,
                    };
                    shared.received(signal);
                }
            })
            .ok()?;
        Some(handle)
    }
}

#[cfg(not(unix))]
mod portable {
    use std::sync::Arc;

    use super::{Shared, Signal};

    /// Ctrl-C only; ctrlc runs the handler on a thread of its own.
    pub(super) fn watch(shared: Arc<Shared>) -> bool {
        ctrlc::set_handler(move || shared.received(Signal::Interrupt)).is_ok()
    }
}
