//! The printer task and the writer thread: records formatted (in input order when
//! asked), slots given back once written, finished output handed to the one owner of
//! stdout a chunk at a time.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Arc;

use async_channel::{Receiver, Sender};
use async_lock::SemaphoreGuardArc;

use super::cancel::{Cancel, Signal, StopReason};
use super::event::Event;
use crate::report::printer::Printer;
use crate::report::progress::{Counters, Screen};
use crate::report::prometheus::RunFacts;
use crate::report::record::Record;
use crate::report::record::Streamed;
use crate::report::tally::Tally;
use crate::run::options::RunOptions;

/// Formats events until every sender is gone; returns the tally.
pub async fn print_events(
    cfg: Arc<RunOptions>,
    events: Receiver<Event>,
    chunks: Sender<Vec<u8>>,
    cancel: Arc<Cancel>,
    counters: Option<Arc<Counters>>,
) -> Tally {
    let started = std::time::Instant::now();
    let mut sink = Sink {
        printer: Printer::new(Vec::with_capacity(64 * 1024), cfg.format),
        counters,
        tally: Tally::default(),
        quiet: cfg.quiet,
        only_failed: cfg.only_failed,
        cancel: &cancel,
    };
    // `--ordered`: records that finished before an earlier one, each with its slot.
    let mut pending: BTreeMap<u64, (Box<Record>, Option<SemaphoreGuardArc>)> = BTreeMap::new();
    let mut next_seq = 0u64;

    while let Ok(first) = events.recv().await {
        // Take everything that is ready, then hand it on as one chunk.
        let ready = std::iter::once(first).chain(std::iter::from_fn(|| events.try_recv().ok()));
        for event in ready {
            match event {
                Event::Streamed { seq, token, what } => sink.streamed(seq, &token, what),
                Event::Done(rec, slot) if cfg.ordered => {
                    pending.insert(rec.seq, (rec, slot));
                    while let Some((rec, _slot)) = pending.remove(&next_seq) {
                        next_seq += 1;
                        sink.record(&rec);
                    }
                }
                Event::Done(rec, _slot) => sink.record(&rec),
            }
        }
        let chunk = sink.printer.take_output();
        if !chunk.is_empty() && chunks.send(chunk).await.is_err() {
            sink.quiet = true;
        }
    }
    // Only after a stop can a gap remain (a record lost to no one): write the rest.
    for (_, (rec, _slot)) in std::mem::take(&mut pending) {
        sink.record(&rec);
    }
    let chunk = sink.printer.take_output();
    if !chunk.is_empty() {
        let _ = chunks.send(chunk).await;
    }
    if sink.writing() {
        let run = RunFacts {
            duration: started.elapsed(),
            finished_at: std::time::SystemTime::now(),
            probe_timeout: cfg.probe.timeout,
        };
        // Every probe is done: nothing else runs on this thread, so blocking on the
        // writer's channel holds nothing up.
        let mut out = Chunked {
            buf: Vec::with_capacity(CHUNK),
            chunks: &chunks,
        };
        if sink.printer.finish(&run, &mut out).is_ok() {
            let _ = out.flush();
        }
    }
    let chunk = sink.printer.take_output();
    if !chunk.is_empty() {
        let _ = chunks.send(chunk).await;
    }
    sink.tally
}

/// How much end-of-run output (`prometheus`) is handed to the writer at a time.
const CHUNK: usize = 256 * 1024;

/// End-of-run output, handed to the writer thread in chunks as it is formatted.
struct Chunked<'a> {
    buf: Vec<u8>,
    chunks: &'a Sender<Vec<u8>>,
}

impl Write for Chunked<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.chunks
            .send_blocking(full)
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

/// The printer with its bookkeeping: counts every record; formats nothing once output
/// has failed (a closed stdout ends the run quietly).
struct Sink<'a> {
    printer: Printer<Vec<u8>>,
    counters: Option<Arc<Counters>>,
    tally: Tally,
    quiet: bool,
    /// `--only-failed`.
    only_failed: bool,
    cancel: &'a Cancel,
}

impl Sink<'_> {
    fn writing(&self) -> bool {
        !self.quiet
            && !matches!(
                self.cancel.reason(),
                Some(StopReason::BrokenPipe | StopReason::OutputError)
            )
    }

    fn record(&mut self, rec: &Record) {
        self.tally.count(rec);
        if let Some(c) = &self.counters {
            c.record(rec.ok());
        }
        if self.writing() && !(self.only_failed && rec.ok()) {
            // Formatting into memory: nothing to fail but JSON encoding, which cannot here.
            let _ = self.printer.record(rec);
        } else {
            self.printer.forget(rec.seq);
            // Run-wide counts (prometheus) still cover it.
            self.printer.count_hidden(rec);
        }
    }

    fn streamed(&mut self, seq: u64, token: &[u8], what: Streamed) {
        if self.writing() {
            let _ = self.printer.streamed(seq, token, what);
        }
    }
}

/// The writer thread: the one owner of stdout. Stops writing at the first error (a
/// closed pipe ends the run quietly; anything else is reported) but keeps draining.
/// Clears the progress bar around each write when it shares the terminal, and after
/// Ctrl-C starts on a fresh line (the terminal echoed `^C` where the cursor was).
/// When the run must end at once (`Cancel::hurry`), writes what it has been handed and
/// stops.
pub fn write_chunks<W: Write>(
    mut out: W,
    chunks: Receiver<Vec<u8>>,
    cancel: &Cancel,
    screen: Option<Screen>,
    to_terminal: bool,
    destination: &str,
) -> Option<String> {
    let mut problem = None;
    let mut failed = false;
    let mut after_interrupt = to_terminal;
    // A queued chunk is taken before a hurry is noticed: `or` polls in order.
    let next = || {
        futures_lite::future::block_on(futures_lite::future::or(
            async { chunks.recv().await.ok() },
            async {
                cancel.wait_hurry().await;
                chunks.try_recv().ok()
            },
        ))
    };
    while let Some(chunk) = next() {
        if failed {
            continue;
        }
        let mut write = || {
            if after_interrupt && cancel.reason() == Some(StopReason::Signal(Signal::Interrupt)) {
                after_interrupt = false;
                out.write_all(b"\n")?;
            }
            out.write_all(&chunk).and_then(|()| out.flush())
        };
        let written = match &screen {
            Some(screen) => screen.around(write),
            None => write(),
        };
        if let Err(e) = written {
            failed = true;
            if e.kind() == io::ErrorKind::BrokenPipe {
                cancel.cancel(StopReason::BrokenPipe);
            } else {
                problem = Some(format!(
                    "writing the results to {destination}: {}",
                    crate::report::error::os_text(&e)
                ));
                cancel.cancel(StopReason::OutputError);
            }
        }
    }
    cancel.writer_finished();
    problem
}
