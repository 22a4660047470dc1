//! The progress line and end-of-run summary on stderr (never stdout).
//!
//! The printer bumps two counters; a thread turns them into a line. On a terminal the
//! line is an indicatif bar fitted to the terminal's width, which the stdout writer
//! clears around each write (`Screen`) so results never run into it. When stderr is a
//! file, a plain line is appended now and then, with no escape sequences. When progress
//! is off none of this exists, so it costs nothing.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::error::ErrorKind;
use crate::report::tally::Tally;

/// Shared counts, written by the printer; the total, when known, by whoever learns it
/// (the arguments at the start, a count of the input files a little later).
#[derive(Debug)]
pub struct Counters {
    pub done: AtomicU64,
    pub ok: AtomicU64,
    /// `UNKNOWN` until known.
    total: AtomicU64,
}

const UNKNOWN: u64 = u64::MAX;

impl Default for Counters {
    fn default() -> Self {
        Counters {
            done: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            total: AtomicU64::new(UNKNOWN),
        }
    }
}

impl Counters {
    /// How many targets the run will probe, once known.
    pub fn set_total(&self, total: u64) {
        self.total.store(total.min(UNKNOWN - 1), Relaxed);
    }

    pub fn total(&self) -> Option<u64> {
        Some(self.total.load(Relaxed)).filter(|&t| t != UNKNOWN)
    }

    pub fn record(&self, ok: bool) {
        self.done.fetch_add(1, Relaxed);
        if ok {
            self.ok.fetch_add(1, Relaxed);
        }
    }
}

/// A running progress line; `finish` clears it and prints the summary.
pub struct Progress {
    pub counters: Arc<Counters>,
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
    start: Instant,
    bar: Option<ProgressBar>,
}

/// How often the line is redrawn on a terminal, and appended to a log.
const TERMINAL_TICK: Duration = Duration::from_millis(250);
const LOG_TICK: Duration = Duration::from_secs(3);

/// The terminal's progress bar, as the stdout writer sees it: output written through
/// `around` never shares a line with the bar.
#[derive(Clone)]
pub struct Screen(ProgressBar);

impl Screen {
    /// Clears the bar, runs `write`, draws the bar again.
    pub fn around<T>(&self, write: impl FnOnce() -> T) -> T {
        self.0.suspend(write)
    }
}

impl Progress {
    /// Starts the line: a bar when stderr is a terminal, plain lines otherwise.
    pub fn start(total: Option<u64>, on_terminal: bool) -> Progress {
        let counters = Arc::new(Counters::default());
        if let Some(total) = total {
            counters.set_total(total);
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let start = Instant::now();
        let bar = on_terminal.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(ProgressStyle::with_template("{wide_msg}").expect("a valid template"));
            bar
        });
        let shared = Arc::clone(&counters);
        let drawn = bar.clone();
        let tick = if on_terminal { TERMINAL_TICK } else { LOG_TICK };
        let thread = std::thread::Builder::new()
            .name("headprobe-progress".into())
            .spawn(move || loop {
                match stopped.recv_timeout(tick) {
                    Err(RecvTimeoutError::Timeout) => {
                        let line = progress_line(&shared, shared.total(), start.elapsed());
                        match &drawn {
                            Some(bar) => bar.set_message(line),
                            None => crate::report::warn(&format!("progress: {line}")),
                        }
                    }
                    _ => return,
                }
            })
            .expect("spawning the progress thread");
        Progress {
            counters,
            stop,
            thread,
            start,
            bar,
        }
    }

    /// What the stdout writer needs when stdout is the same terminal.
    pub fn screen(&self) -> Option<Screen> {
        self.bar.clone().map(Screen)
    }

    /// Clears the line and prints the summary; `stopped` says why the run stopped early
    /// (`interrupted`, `the output was closed`), if it did.
    pub fn finish(self, tally: &Tally, stopped: Option<&str>) {
        drop(self.stop);
        let _ = self.thread.join();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        crate::report::warn(&summary(tally, self.start.elapsed(), stopped));
    }
}

/// `1234/20000 done, 1200 ok, 34 failed, 2345/s, ETA 7s` (no total: `1234 done, ...`).
pub fn progress_line(c: &Counters, total: Option<u64>, elapsed: Duration) -> String {
    let done = c.done.load(Relaxed);
    let ok = c.ok.load(Relaxed).min(done);
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-3);
    let mut line = match total {
        Some(t) => format!("{done}/{t} done"),
        None => format!("{done} done"),
    };
    line.push_str(&format!(", {ok} ok, {} failed, {rate:.0}/s", done - ok));
    if let Some(t) = total {
        if rate > 0.0 && t > done {
            let eta = Duration::from_secs(((t - done) as f64 / rate).ceil() as u64);
            line.push_str(&format!(", ETA {}", humantime::format_duration(eta)));
        }
    }
    line
}

/// `probed N targets in 12.3s: A ok, B failed (timeout 3, refused 2)`, and when the run
/// stopped early, why and what it left: `; interrupted: 12 cancelled in flight, 244
/// not started`. Probed counts the targets whose probe came to an end of its own.
pub fn summary(tally: &Tally, elapsed: Duration, stopped: Option<&str>) -> String {
    let (in_flight, not_started) = tally.cancelled();
    let probed = tally.total - in_flight - not_started;
    let mut line = format!(
        "probed {} {} in {:.1}s: {} ok, {} failed",
        probed,
        if probed == 1 { "target" } else { "targets" },
        elapsed.as_secs_f64(),
        tally.ok,
        tally.failed_total() - in_flight - not_started
    );
    let failed: Vec<(ErrorKind, u64)> = tally
        .failed
        .iter()
        .filter(|(k, _)| **k != ErrorKind::Cancelled)
        .map(|(k, n)| (*k, *n))
        .collect();
    if !failed.is_empty() {
        let mut kinds = failed;
        kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let parts: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        line.push_str(&format!(" ({})", parts.join(", ")));
    }
    if stopped.is_some() || in_flight + not_started > 0 {
        line.push_str(&format!(
            "; {}: {in_flight} cancelled in flight, {not_started} not started",
            stopped.unwrap_or("stopped")
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let c = Counters::default();
        for ok in [true, true, false, true] {
            c.record(ok);
        }
        assert_eq!(
            progress_line(&c, Some(8), Duration::from_secs(2)),
            "4/8 done, 3 ok, 1 failed, 2/s, ETA 2s"
        );
        assert_eq!(
            progress_line(&c, None, Duration::from_secs(1)),
            "4 done, 3 ok, 1 failed, 4/s"
        );
        let mut tally = Tally {
            total: 10,
            ok: 5,
            ..Tally::default()
        };
        tally.failed.insert(ErrorKind::Refused, 2);
        tally.failed.insert(ErrorKind::Timeout, 3);
        assert_eq!(
            summary(&tally, Duration::from_millis(12_345), None),
            "probed 10 targets in 12.3s: 5 ok, 5 failed (timeout 3, refused 2)"
        );
        let one = Tally {
            total: 1,
            ok: 1,
            ..Tally::default()
        };
        assert_eq!(
            summary(&one, Duration::from_millis(40), None),
            "probed 1 target in 0.0s: 1 ok, 0 failed"
        );
        // After `| head -1`: what was probed, and what the stop left.
        let mut cut = Tally {
            total: 320,
            ok: 2,
            not_started: 262,
            ..Tally::default()
        };
        cut.failed.insert(ErrorKind::Cancelled, 318);
        assert_eq!(
            summary(
                &cut,
                Duration::from_millis(40),
                Some("the output was closed")
            ),
            "probed 2 targets in 0.0s: 2 ok, 0 failed; the output was closed: 56 cancelled \
             in flight, 262 not started"
        );
    }
}
