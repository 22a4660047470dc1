//! The run: input thread → dispatcher (bounded concurrency) → probes → printer → writer thread.
//!
//! Concurrency, ordering and cancellation live here. A slot (a semaphore permit) is taken
//! before a target is read and given back only once its record is written, so probes in
//! flight never exceed `--concurrency`, and `--ordered` never buffers more than that.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use async_executor::LocalExecutor;
use async_lock::{Semaphore, SemaphoreGuardArc};
use futures_lite::future;

use crate::cli::Config;
use crate::report::error::{ErrorKind, ProbeError};
pub mod input;
mod verdict;

use crate::net::probe;
use crate::proto::Job;
use crate::report::printer::{Format, Printer};
use crate::report::progress::Counters;
use crate::report::record::Record;
use input::{Input, InputReport, Item};

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

/// A run-wide stop signal: futures wait on it, threads and signal handlers trigger it.
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
}

/// What probes tell the printer.
enum Event {
    /// What a probe streamed as it happened (`text`, unordered).
    Streamed {
        token: Vec<u8>,
        what: probe::Streamed,
    },
    /// A finished target, with the slot it held.
    Done(Box<Record>, Option<SemaphoreGuardArc>),
}

/// Counts of what a run produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub total: u64,
    pub ok: u64,
    pub failed: BTreeMap<ErrorKind, u64>,
}

impl Tally {
    fn count(&mut self, rec: &Record) {
        self.total += 1;
        match rec.error_kind() {
            None => self.ok += 1,
            Some(kind) => *self.failed.entry(kind).or_default() += 1,
        }
    }

    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }
}

/// How a run ended.
#[derive(Debug, Default)]
pub struct Outcome {
    pub tally: Tally,
    pub stopped: Option<StopReason>,
    /// Problems to report on stderr (an input file that failed mid-way, stdout errors).
    pub problems: Vec<String>,
}

/// Probes every target of `input`, writing results to `out`.
pub fn run<W: Write + Send + 'static>(
    cfg: Arc<Config>,
    input: Input,
    out: W,
    cancel: Arc<Cancel>,
    counters: Option<Arc<Counters>>,
) -> Outcome {
    let (items_tx, items_rx) = async_channel::bounded::<Vec<Item>>(4);
    let (chunks_tx, chunks_rx) = async_channel::bounded::<Vec<u8>>(16);

    let input_thread = std::thread::Builder::new()
        .name("headprobe-input".into())
        .spawn(move || input.run(items_tx))
        .expect("spawning the input thread");
    let writer_thread = {
        let cancel = Arc::clone(&cancel);
        std::thread::Builder::new()
            .name("headprobe-output".into())
            .spawn(move || write_chunks(out, chunks_rx, &cancel))
            .expect("spawning the output thread")
    };

    // Probes run on a few threads, each with its own executor, and each thread drives
    // the reactor while idle: a probe never hops threads, and costs little beyond its
    // syscalls. The printer runs on this thread; only finished output crosses to the
    // writer thread, a chunk per tick.
    let (events_tx, events_rx) = async_channel::unbounded::<Event>();
    let shared = Arc::new(Shared {
        cfg: Arc::clone(&cfg),
        slots: Arc::new(Semaphore::new(cfg.concurrency)),
        items: items_rx,
        events: events_tx,
        cancel: Arc::clone(&cancel),
        pace: Pace::new(cfg.rate),
    });
    // Closed when every dispatcher is done, then when every record is written.
    let (dispatching_tx, dispatching_rx) = async_channel::bounded::<()>(1);
    let (finished_tx, finished_rx) = async_channel::bounded::<()>(1);
    let helpers: Vec<_> = (1..probe_threads(cfg.concurrency))
        .map(|i| {
            let shared = Arc::clone(&shared);
            let dispatching = dispatching_tx.clone();
            let finished = finished_rx.clone();
            std::thread::Builder::new()
                .name(format!("headprobe-probes-{i}"))
                .spawn(move || {
                    let executor = LocalExecutor::new();
                    async_io::block_on(executor.run(async {
                        dispatch(&executor, &shared).await;
                        drop(dispatching);
                        // Keep this thread's probes running until every record is out.
                        let _ = finished.recv().await;
                    }));
                })
                .expect("spawning a probe thread")
        })
        .collect();

    let executor = LocalExecutor::new();
    let printer = Printer::new(Vec::with_capacity(64 * 1024), cfg.format);
    let printing = executor.spawn(print_events(
        Arc::clone(&cfg),
        printer,
        events_rx,
        chunks_tx,
        Arc::clone(&cancel),
        counters,
    ));
    let tally = async_io::block_on(executor.run(async {
        dispatch(&executor, &shared).await;
        drop(dispatching_tx);
        let _ = dispatching_rx.recv().await;
        // Every slot back means every record written: only then may the others stop.
        let mut all = Vec::with_capacity(cfg.concurrency);
        for _ in 0..cfg.concurrency {
            all.push(shared.slots.acquire().await);
        }
        finished_tx.close();
        shared.events.close();
        printing.await
    }));
    for helper in helpers {
        let _ = helper.join();
    }

    let output_problem = writer_thread.join().unwrap_or_default();
    let mut outcome = Outcome {
        tally,
        stopped: cancel.reason(),
        problems: output_problem.into_iter().collect(),
    };
    // After a stop the input thread may be blocked reading a terminal or a pipe: leave it.
    if outcome.stopped.is_none() {
        if let Ok(InputReport { error: Some(e), .. }) = input_thread.join() {
            outcome.problems.push(e);
        }
    }
    outcome
}

/// What every probe thread shares.
struct Shared {
    cfg: Arc<Config>,
    slots: Arc<Semaphore>,
    items: Receiver<Vec<Item>>,
    events: Sender<Event>,
    cancel: Arc<Cancel>,
    pace: Pace,
}

/// How many threads run probes: one per core, at most four (beyond that the shared
/// reactor, not the cores, is the limit), and never more than the probes in flight.
fn probe_threads(concurrency: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.clamp(1, 4).min(concurrency)
}

/// Takes a slot, then a target, and starts its probe on this thread's executor; after
/// the input ends or a stop, every target already read still gets its record.
async fn dispatch(executor: &LocalExecutor<'_>, shared: &Shared) {
    let Shared {
        cfg,
        slots,
        items,
        events,
        cancel,
        pace,
    } = shared;
    let stream_lines = cfg.format == Format::Text && !cfg.ordered && !cfg.quiet;
    let mut queue = std::collections::VecDeque::new();
    loop {
        let slot = future::or(async { Some(slots.acquire_arc().await) }, async {
            cancel.wait().await;
            None
        })
        .await;
        let Some(slot) = slot else { break };
        if queue.is_empty() {
            let batch = future::or(async { items.recv().await.ok() }, async {
                cancel.wait().await;
                None
            })
            .await;
            let Some(batch) = batch else { break };
            queue.extend(batch);
        }
        let Some(Item { seq, token, target }) = queue.pop_front() else {
            continue;
        };
        let target = match target {
            Ok(target) => target,
            Err(why) => {
                let err = ProbeError::new(ErrorKind::InvalidTarget, why);
                let rec = Record::failed(seq, token, None, err);
                let _ = events.try_send(Event::Done(Box::new(rec), Some(slot)));
                continue;
            }
        };
        if !pace.wait(cancel).await {
            let rec = unstarted(cfg, seq, token, target);
            let _ = events.try_send(Event::Done(Box::new(rec), Some(slot)));
            break;
        }
        let cfg = Arc::clone(cfg);
        let events = events.clone();
        let cancel = Arc::clone(cancel);
        executor
            .spawn(async move {
                let sink_token = token.clone();
                let sink = |what: probe::Streamed| {
                    let _ = events.try_send(Event::Streamed {
                        token: sink_token.clone(),
                        what,
                    });
                };
                let lines = stream_lines.then_some(&sink as probe::LineSink);
                let mut rec = probe::probe(&cfg, seq, token, target, lines, cancel.wait()).await;
                verdict::judge(&cfg, &mut rec);
                let _ = events.try_send(Event::Done(Box::new(rec), Some(slot)));
            })
            .detach();
    }

    // Whatever was read but not started: reading stops, each gets its record.
    items.close();
    let leftovers = queue
        .into_iter()
        .chain(std::iter::from_fn(|| items.try_recv().ok()).flatten());
    for Item { seq, token, target } in leftovers {
        let rec = match target {
            Err(why) => Record::failed(
                seq,
                token,
                None,
                ProbeError::new(ErrorKind::InvalidTarget, why),
            ),
            Ok(job) => unstarted(cfg, seq, token, job),
        };
        let _ = events.try_send(Event::Done(Box::new(rec), None));
    }
}

/// The `cancelled` record of a job that was read but never started.
fn unstarted(cfg: &Config, seq: u64, token: Vec<u8>, job: Job) -> Record {
    let err = ProbeError::new(
        ErrorKind::Cancelled,
        "the run was interrupted before this probe started",
    );
    let (target, via) = probe::plan(cfg, job);
    let mut rec = Record::failed(seq, token, Some(target), err);
    rec.via = via;
    rec
}

/// `--rate`: new connections are spaced 1/N s apart, across all probe threads. Time
/// lost waiting for a slot is not made up with a burst, so the rate is never exceeded.
struct Pace {
    interval: Option<Duration>,
    next: std::sync::Mutex<Instant>,
}

impl Pace {
    fn new(rate: f64) -> Pace {
        Pace {
            interval: (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate)),
            next: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// Waits for this connection's start time; false when the run was cancelled.
    async fn wait(&self, cancel: &Cancel) -> bool {
        let Some(interval) = self.interval else {
            return true;
        };
        let start = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let start = (*next).max(Instant::now());
            *next = start + interval;
            start
        };
        let now = Instant::now();
        if start <= now {
            return true;
        }
        let sleep = async {
            async_std::task::sleep(start - now).await;
            true
        };
        future::or(sleep, async {
            cancel.wait().await;
            false
        })
        .await
    }
}

/// The printer task: formats records, restores input order when asked, gives slots
/// back, and hands finished output to the writer thread once per batch of events.
async fn print_events(
    cfg: Arc<Config>,
    printer: Printer<Vec<u8>>,
    events: Receiver<Event>,
    chunks: Sender<Vec<u8>>,
    cancel: Arc<Cancel>,
    counters: Option<Arc<Counters>>,
) -> Tally {
    let mut sink = Sink {
        printer,
        counters,
        tally: Tally::default(),
        quiet: cfg.quiet,
        cancel: &cancel,
    };
    let mut pending: BTreeMap<u64, (Box<Record>, Option<SemaphoreGuardArc>)> = BTreeMap::new();
    let mut next_seq = 0u64;

    while let Ok(first) = events.recv().await {
        // Take everything that is ready, then hand it on as one chunk.
        let ready = std::iter::once(first).chain(std::iter::from_fn(|| events.try_recv().ok()));
        for event in ready {
            match event {
                Event::Streamed { token, what } => sink.streamed(&token, what),
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
    // Records still waiting for an earlier one (not expected): write them all the same.
    for (_, (rec, _slot)) in std::mem::take(&mut pending) {
        sink.record(&rec);
    }
    let chunk = sink.printer.take_output();
    if !chunk.is_empty() {
        let _ = chunks.send(chunk).await;
    }
    sink.tally
}

/// The printer with its bookkeeping: counts every record; formats nothing once output
/// has failed (a closed stdout ends the run quietly).
struct Sink<'a> {
    printer: Printer<Vec<u8>>,
    counters: Option<Arc<Counters>>,
    tally: Tally,
    quiet: bool,
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
        if self.writing() {
            // Formatting into memory: nothing to fail but JSON encoding, which cannot here.
            let _ = self.printer.record(rec);
        }
    }

    fn streamed(&mut self, token: &[u8], what: probe::Streamed) {
        if self.writing() {
            let _ = match what {
                probe::Streamed::Lines(lines) => self.printer.lines(token, &lines),
                probe::Streamed::Tls(summary) => self.printer.tls_line(token, &summary),
            };
        }
    }
}

/// The writer thread: the one owner of stdout. Stops writing at the first error (a
/// closed pipe ends the run quietly; anything else is reported) but keeps draining.
fn write_chunks<W: Write>(
    mut out: W,
    chunks: Receiver<Vec<u8>>,
    cancel: &Cancel,
) -> Option<String> {
    let mut problem = None;
    let mut failed = false;
    while let Ok(chunk) = chunks.recv_blocking() {
        if failed {
            continue;
        }
        if let Err(e) = out.write_all(&chunk).and_then(|()| out.flush()) {
            failed = true;
            if e.kind() == io::ErrorKind::BrokenPipe {
                cancel.cancel(StopReason::BrokenPipe);
            } else {
                problem = Some(format!(
                    "writing the results: {}",
                    crate::report::error::os_text(&e)
                ));
                cancel.cancel(StopReason::OutputError);
            }
        }
    }
    problem
}
