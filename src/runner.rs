//! The run: input thread → dispatcher (bounded concurrency) → probes → printer thread.
//!
//! Concurrency, ordering and cancellation live here. A slot (a semaphore permit) is taken
//! before a target is read and given back only once its record is written, so probes in
//! flight never exceed `--concurrency`, and `--ordered` never buffers more than that.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender, TryRecvError};
use async_lock::{Semaphore, SemaphoreGuardArc};
use futures_lite::future;

use crate::config::Config;
use crate::error::{ErrorKind, ProbeError};
use crate::input::{Input, InputReport, Item, Job};
use crate::output::{Format, Printer};
use crate::probe;
use crate::progress::Counters;
use crate::record::{Record, Via};

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
    let (items_tx, items_rx) = async_channel::bounded::<Item>(256);
    let (events_tx, events_rx) = async_channel::unbounded::<Event>();

    let input_thread = std::thread::Builder::new()
        .name("headprobe-input".into())
        .spawn(move || input.run(items_tx))
        .expect("spawning the input thread");

    let printer = Printer::new(out, cfg.format);
    let printer_thread = {
        let cfg = Arc::clone(&cfg);
        let cancel = Arc::clone(&cancel);
        std::thread::Builder::new()
            .name("headprobe-output".into())
            .spawn(move || print_events(&cfg, printer, events_rx, &cancel, counters))
            .expect("spawning the output thread")
    };

    async_std::task::block_on(dispatch(
        Arc::clone(&cfg),
        items_rx,
        events_tx,
        Arc::clone(&cancel),
    ));

    let (tally, output_problem) = printer_thread.join().unwrap_or_default();
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

/// Takes a slot, then a target, and starts its probe; after the input ends or a stop,
/// every target already read still gets its record.
async fn dispatch(
    cfg: Arc<Config>,
    items: Receiver<Item>,
    events: Sender<Event>,
    cancel: Arc<Cancel>,
) {
    let slots = Arc::new(Semaphore::new(cfg.concurrency));
    let stream_lines = cfg.format == Format::Text && !cfg.ordered && !cfg.quiet;
    let mut pace = Pace::new(cfg.rate);
    loop {
        let slot = future::or(async { Some(slots.acquire_arc().await) }, async {
            cancel.wait().await;
            None
        })
        .await;
        let Some(slot) = slot else { break };
        let item = future::or(async { items.recv().await.ok() }, async {
            cancel.wait().await;
            None
        })
        .await;
        let Some(Item { seq, token, target }) = item else {
            break;
        };
        let target = match target {
            Ok(target) => target,
            Err(why) => {
                let err = ProbeError::new(ErrorKind::InvalidTarget, why);
                let _ = events.try_send(Event::Done(
                    Box::new(Record::failed(seq, token, None, err)),
                    Some(slot),
                ));
                continue;
            }
        };
        if !pace.wait(&cancel).await {
            let rec = unstarted(&cfg, seq, token, target);
            let _ = events.try_send(Event::Done(Box::new(rec), Some(slot)));
            break;
        }
        let cfg = Arc::clone(&cfg);
        let events = events.clone();
        let cancel = Arc::clone(&cancel);
        async_std::task::spawn(async move {
            let sink_token = token.clone();
            let sink = |what: probe::Streamed| {
                let _ = events.try_send(Event::Streamed {
                    token: sink_token.clone(),
                    what,
                });
            };
            let lines = stream_lines.then_some(&sink as probe::LineSink);
            let rec = probe::probe(&cfg, seq, token, target, lines, cancel.wait()).await;
            let _ = events.try_send(Event::Done(Box::new(rec), Some(slot)));
        });
    }

    // Whatever was read but not started: reading stops, each gets its record.
    items.close();
    while let Ok(Item { seq, token, target }) = items.try_recv() {
        let rec = match target {
            Err(why) => Record::failed(
                seq,
                token,
                None,
                ProbeError::new(ErrorKind::InvalidTarget, why),
            ),
            Ok(job) => unstarted(&cfg, seq, token, job),
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
    let (target, proxy, check_url) = match job {
        Job::Target(target) => (Some(target), cfg.proxy.clone(), None),
        Job::Proxy(proxy) => {
            let check = cfg.proxy_check.as_ref();
            (
                check.map(|c| c.target.clone()),
                Some(proxy),
                check.map(|c| c.url.clone()),
            )
        }
    };
    let mut rec = Record::failed(seq, token, target, err);
    rec.via = proxy.map(|proxy| Via {
        proxy,
        check_url,
        request_target: None,
        tunnel: None,
    });
    rec
}

/// `--rate`: new connections are spaced 1/N s apart. Time lost waiting for a slot is
/// not made up with a burst, so the rate is never exceeded.
struct Pace {
    interval: Option<Duration>,
    next: Instant,
}

impl Pace {
    fn new(rate: f64) -> Pace {
        Pace {
            interval: (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate)),
            next: Instant::now(),
        }
    }

    /// Waits for the next start time; false when the run was cancelled meanwhile.
    async fn wait(&mut self, cancel: &Cancel) -> bool {
        let Some(interval) = self.interval else {
            return true;
        };
        let now = Instant::now();
        if self.next > now {
            let sleep = async {
                async_std::task::sleep(self.next - now).await;
                true
            };
            if !future::or(sleep, async {
                cancel.wait().await;
                false
            })
            .await
            {
                return false;
            }
        }
        self.next = self.next.max(Instant::now()) + interval;
        true
    }
}

/// The printer thread: owns stdout, writes whole lines, restores input order when asked.
fn print_events<W: Write>(
    cfg: &Config,
    printer: Printer<W>,
    events: Receiver<Event>,
    cancel: &Cancel,
    counters: Option<Arc<Counters>>,
) -> (Tally, Option<String>) {
    let mut sink = Sink {
        printer,
        counters,
        tally: Tally::default(),
        writing: !cfg.quiet,
        problem: None,
        cancel,
    };
    let mut pending: BTreeMap<u64, (Box<Record>, Option<SemaphoreGuardArc>)> = BTreeMap::new();
    let mut next_seq = 0u64;

    loop {
        let event = match events.try_recv() {
            Ok(event) => event,
            Err(TryRecvError::Closed) => break,
            Err(TryRecvError::Empty) => {
                // Idle: show what we have, then wait.
                sink.flush();
                match events.recv_blocking() {
                    Ok(event) => event,
                    Err(_) => break,
                }
            }
        };
        match event {
            Event::Streamed { token, what } => {
                if sink.writing {
                    let result = match what {
                        probe::Streamed::Lines(lines) => sink.printer.lines(&token, &lines),
                        probe::Streamed::Tls(summary) => sink.printer.tls_line(&token, &summary),
                    };
                    sink.check(result);
                }
            }
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
    // Records still waiting for an earlier one (not expected): write them all the same.
    for (_, (rec, _slot)) in std::mem::take(&mut pending) {
        sink.record(&rec);
    }
    sink.flush();
    (sink.tally, sink.problem)
}

/// The printer with its bookkeeping: counts every record, stops writing at the first
/// output error (a closed stdout ends the run quietly).
struct Sink<'a, W: Write> {
    printer: Printer<W>,
    counters: Option<Arc<Counters>>,
    tally: Tally,
    writing: bool,
    problem: Option<String>,
    cancel: &'a Cancel,
}

impl<W: Write> Sink<'_, W> {
    fn record(&mut self, rec: &Record) {
        self.tally.count(rec);
        if let Some(c) = &self.counters {
            c.record(rec.ok());
        }
        if self.writing {
            let result = self.printer.record(rec);
            self.check(result);
        }
    }

    fn flush(&mut self) {
        if self.writing {
            let result = self.printer.flush();
            self.check(result);
        }
    }

    fn check(&mut self, result: io::Result<()>) {
        let Err(e) = result else { return };
        self.writing = false;
        if e.kind() == io::ErrorKind::BrokenPipe {
            self.cancel.cancel(StopReason::BrokenPipe);
        } else {
            self.problem = Some(format!(
                "writing the results: {}",
                crate::error::os_text(&e)
            ));
            self.cancel.cancel(StopReason::OutputError);
        }
    }
}
