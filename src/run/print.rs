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
    // `--ordered`: records that finished before an earlier one, each with its slot, by
    // (seq, place among its target's records), and how many records that target makes.
    let mut pending: BTreeMap<(u64, u32), Waiting> = BTreeMap::new();
    let mut next = (0u64, 0u32);

    while let Ok(first) = events.recv().await {
        // Take everything that is ready, then hand it on as one chunk.
        let ready = std::iter::once(first).chain(std::iter::from_fn(|| events.try_recv().ok()));
        for event in ready {
            match event {
                Event::Streamed { seq, token, what } => sink.streamed(seq, &token, what),
                Event::Done(rec, slot) if cfg.ordered => {
                    let seq = rec.seq;
                    pending.insert((seq, 0), (Some(rec), slot, 1));
                    write_in_order(&mut pending, &mut next, &mut sink);
                }
                Event::Done(rec, _slot) => sink.record(&rec),
                Event::Part {
                    rec,
                    seq,
                    slot,
                    part,
                } if cfg.ordered => {
                    pending.insert((seq, part.j), (rec, slot, part.count));
                    write_in_order(&mut pending, &mut next, &mut sink);
                }
                Event::Part { rec, .. } => {
                    if let Some(rec) = rec {
                        sink.record(&rec);
                    }
                }
            }
        }
        let chunk = sink.printer.take_output();
        if !chunk.is_empty() && chunks.send(chunk).await.is_err() {
            sink.quiet = true;
        }
    }
    // Only after a stop can a gap remain (a record lost to no one): write the rest.
    for (_, (rec, _slot, _)) in std::mem::take(&mut pending) {
        if let Some(rec) = rec {
            sink.record(&rec);
        }
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

/// A record waiting for its turn (`--ordered`), with its slot and how many records its
/// target makes; `None` stands for a target that makes none.
type Waiting = (Option<Box<Record>>, Option<SemaphoreGuardArc>, u32);

/// Writes the records at the head of `pending`, in order, while they are there.
fn write_in_order(
    pending: &mut BTreeMap<(u64, u32), Waiting>,
    next: &mut (u64, u32),
    sink: &mut Sink<'_>,
) {
    while let Some((rec, _slot, count)) = pending.remove(next) {
        *next = match next.1 + 1 < count {
            true => (next.0, next.1 + 1),
            false => (next.0 + 1, 0),
        };
        if let Some(rec) = rec {
            sink.record(&rec);
        }
    }
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
            self.printer.forget(crate::report::printer::probe_of(rec));
            // Run-wide counts (prometheus) still cover it.
            self.printer.count_hidden(rec);
        }
    }

    fn streamed(&mut self, seq: crate::report::printer::Probe, token: &[u8], what: Streamed) {
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
