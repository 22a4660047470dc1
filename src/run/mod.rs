//! The run: input thread → admission (one point, input order) → probe threads →
//! printer → writer thread.
//!
//! Concurrency, ordering and cancellation live here; the sockets live in `net`. Every
//! thread ends when the senders feeding it are dropped: input, then admission, then each
//! probe thread once its probes are done, then the printer, then the writer.

mod admit;
mod cancel;
mod dispatch;
mod event;
pub mod input;
mod lines;
pub mod options;
mod outcome;
pub mod output;
mod pace;
mod print;
pub mod resume;
mod retry;
pub mod signals;
mod usage;
pub mod verdict;
mod watch;

use std::io::Write;
use std::sync::Arc;

use async_channel::Sender;
use async_lock::Semaphore;

use crate::net::{probe, rt};
use crate::report::error::{ErrorKind, ProbeError};
use crate::report::progress::{Counters, Screen};
use crate::report::record::{OneOf, Record, Streamed};
use admit::Admitted;
use event::unstarted;
use input::{Input, InputReport, Item};
use pace::Pace;

pub use cancel::{Cancel, Signal, StopReason};
pub use event::Event;
pub use options::RunOptions;
pub use outcome::{exit, Outcome};
pub use usage::UsageError;

/// What every probe needs, shared by the probe threads.
struct Ctx {
    cfg: Arc<RunOptions>,
    events: Sender<Event>,
    cancel: Arc<Cancel>,
    pace: Arc<Pace>,
    /// With `--retry`, a target waiting to try again keeps its place (a window slot) but
    /// not its connection: attempts take one of these `--concurrency` permits each.
    connections: Option<Arc<Semaphore>>,
}

/// What the run knows of the terminals it reports to.
#[derive(Default)]
pub struct Terminal {
    /// The progress line's counts, when it is shown.
    pub counters: Option<Arc<Counters>>,
    /// The progress bar, when it shares the terminal with the results.
    pub screen: Option<Screen>,
    /// Results go to a terminal: after Ctrl-C they start on a fresh line.
    pub stdout_is_terminal: bool,
    /// Results go to standard output: when it is a pipe or socket whose reader goes
    /// away, the run ends then, not at its next write.
    pub watch_stdout: bool,
    /// Where results go, for messages: `standard output`, `-o FILE`.
    pub destination: String,
}

/// Probes every target of `input`, writing results to `out`.
pub fn run<W: Write + Send + 'static>(
    cfg: Arc<RunOptions>,
    input: Input,
    out: W,
    cancel: Arc<Cancel>,
    terminal: Terminal,
) -> Outcome {
    let Terminal {
        counters,
        screen,
        stdout_is_terminal,
        watch_stdout,
        destination,
    } = terminal;
    let (items_tx, items_rx) = async_channel::bounded::<Vec<Item>>(4);
    let (chunks_tx, chunks_rx) = async_channel::bounded::<Vec<u8>>(16);
    let (dispatch, mut inboxes) = dispatch::dispatch(probe_threads(cfg.concurrency));
    let (events_tx, events_rx) = async_channel::unbounded::<Event>();

    let input_thread = std::thread::Builder::new()
        .name("headprobe-input".into())
        .spawn(move || input.run(items_tx))
        .expect("spawning the input thread");
    cancel.writer_started();
    let writer_thread = {
        let cancel = Arc::clone(&cancel);
        std::thread::Builder::new()
            .name("headprobe-output".into())
            .spawn(move || {
                print::write_chunks(
                    out,
                    chunks_rx,
                    &cancel,
                    screen,
                    stdout_is_terminal,
                    &destination,
                )
            })
            .expect("spawning the output thread")
    };

    // `| head -1`: a reader gone while nothing is written (silent targets) ends the run.
    let stdout_watch = watch_stdout.then(|| watch::stdout(&cancel)).flatten();

    // Probes run on a few threads, each blocking on async-std with the probes spawned on
    // it (`rt::spawn_local`): a probe never changes thread. This thread is one of them, and also runs
    // admission and the printer.
    let pace = Arc::new(Pace::new(cfg.rate));
    let ctx = Arc::new(Ctx {
        cfg: Arc::clone(&cfg),
        events: events_tx.clone(),
        cancel: Arc::clone(&cancel),
        pace: Arc::clone(&pace),
        // With --all-addresses too: a target may open a connection per address.
        connections: (cfg.retry > 0 || cfg.all_addresses)
            .then(|| Arc::new(Semaphore::new(cfg.concurrency))),
    });
    let own_inbox = inboxes.remove(0);
    let helpers: Vec<_> = (inboxes.into_iter().enumerate())
        .map(|(i, jobs)| {
            let ctx = Arc::clone(&ctx);
            let i = i + 1;
            std::thread::Builder::new()
                .name(format!("headprobe-probes-{i}"))
                .spawn(move || rt::block_on(work(jobs, ctx)))
                .expect("spawning a probe thread")
        })
        .collect();

    let printing = rt::spawn_local(print::print_events(
        Arc::clone(&cfg),
        events_rx,
        chunks_tx,
        Arc::clone(&cancel),
        counters,
    ));
    // A slot is a record's place from admission until it is written. With --retry,
    // targets waiting out their delay hold one too, so there are twice as many places
    // as connections: waiting targets never stop others from starting, and memory stays
    // bounded by --concurrency. With --all-addresses a slot is a target's (its records,
    // one per address, go out before the last of them gives it back) and connections
    // are counted apart, so a name's addresses wait for connections, never for slots.
    let window = match cfg.retry > 0 || cfg.all_addresses {
        false => cfg.concurrency,
        true => cfg.concurrency.saturating_mul(2),
    };
    let slots = Arc::new(Semaphore::new(window));
    let tally = rt::block_on(async {
        let admitting = admit::admit(&cfg, items_rx, slots, dispatch, events_tx, &cancel, &pace);
        futures_lite::future::zip(admitting, work(own_inbox, ctx)).await;
        printing.await
    });
    for helper in helpers {
        let _ = helper.join();
    }

    let dropped = crate::net::resolve::dropped_replies();
    if dropped > 0 {
        // Not a failure of any target (none was charged with them), but worth knowing:
        // a resolver answering twice, or someone sending to our DNS sockets.
        let replies = if dropped == 1 { "reply" } else { "replies" };
        crate::report::warn(&format!(
            "headprobe: note: dropped {dropped} DNS {replies} that matched no query in flight \
             (by ID, question and source address): late copies, or not from our servers"
        ));
    }
    let output_problem = writer_thread.join().unwrap_or_default();
    drop(stdout_watch);
    let mut outcome = Outcome {
        tally,
        stopped: cancel.reason(),
        problems: output_problem.into_iter().collect(),
        output_lost: false,
    };
    // After a stop the input thread may be blocked reading a terminal or a pipe: leave it.
    if outcome.stopped.is_none() {
        if let Ok(InputReport { error: Some(e), .. }) = input_thread.join() {
            outcome.problems.push(e);
        }
    }
    outcome
}

/// How many threads run probes: one per core, at most four (beyond that the shared
/// reactor, not the cores, is the limit), and never more than the probes in flight.
///
/// async-std has one reactor for the process: the thread blocked in it (a probe thread,
/// or async-io's helper thread) wakes the probe threads whose sockets are ready, a futex
/// wake and a wait per hand-over. Even so, on 2 cores two probe threads beat one when
/// the machine is otherwise quiet (bench/ab, 20,000 probes at -c 256, alternated 9 times:
/// 1.16x and 1.08x the rate at 0.98x and 0.90x the CPU per probe); only under heavy
/// outside load (load average 6 to 9 on 2 cores) did one thread win.
fn probe_threads(concurrency: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.clamp(1, 4).min(concurrency)
}

/// A probe thread: starts every admitted target it is handed, at once, and returns when
/// admission is over and its last probe is done. It never takes a slot or queues work.
async fn work(jobs: dispatch::Inbox<Admitted>, ctx: Arc<Ctx>) {
    let jobs = std::rc::Rc::new(jobs);
    // Each probe holds a clone; `recv` fails once the last one is dropped.
    let (running, all_done) = async_channel::bounded::<()>(1);
    while let Some(batch) = jobs.recv().await {
        for job in batch {
            let (ctx, running, inbox) = (Arc::clone(&ctx), running.clone(), jobs.clone());
            // Two kinds of task: a plain probe's stays as small as it was, without the
            // state of --all-addresses.
            if ctx.cfg.all_addresses {
                // Dropping the handle detaches the task.
                drop(rt::spawn_local(async move {
                    each_address(&ctx, job).await;
                    inbox.done();
                    drop(running);
                }));
                continue;
            }
            // One target, probed and judged (again after a transient failure, with
            // --retry); its record goes to the printer with its slot. Written out here,
            // not in a function of its own: that would hold the target twice.
            drop(rt::spawn_local(async move {
                let Admitted {
                    seq,
                    index,
                    token,
                    job,
                    slot,
                    ..
                } = job;
                let rec = attempts(&ctx, seq, index, token, job, None).await;
                let _ = ctx.events.try_send(Event::Done(Box::new(rec), Some(slot)));
                inbox.done();
                drop(running);
            }));
        }
    }
    drop((running, ctx));
    let _ = all_done.recv().await;
}

/// `--all-addresses`: resolves the name once, then probes each of its addresses (those
/// `--resume` has no record of) at once, each on its own connection (a `--concurrency`
/// permit each) with its own retries, and sends each record as it is done. The target's
/// slot goes with the last, so that its addresses never outlive it.
async fn each_address(ctx: &Ctx, job: Admitted) {
    let Admitted {
        seq,
        index,
        token,
        job,
        slot,
        done,
    } = job;
    let cfg = &ctx.cfg;
    let start = std::time::Instant::now();
    let whole = |rec: Record, of: Option<u32>, address: Option<std::net::SocketAddr>| {
        let mut rec = rec;
        rec.one_of = Some(OneOf {
            position: 0,
            of,
            address,
        });
        rec
    };
    // The lookup is the target's first step: --retry applies to it as to a probe.
    let mut attempt = 1;
    let looked_up = loop {
        let looked_up = ctx.cancel.guard(probe::addresses(&cfg.probe, &job)).await;
        let Some(Err(e)) = &looked_up else {
            break looked_up;
        };
        let failed = Record::failed(seq, index, Vec::new(), None, e.clone());
        if attempt > cfg.retry || !retry::is_transient(&failed) {
            break looked_up;
        }
        attempt += 1;
        let wait = retry::delay(cfg, attempt, &failed);
        if ctx.cancel.guard(rt::sleep(wait)).await.is_none() {
            break None;
        }
    };
    let (host, port, ips, dns) = match looked_up {
        None => {
            let rec = whole(unstarted(cfg, seq, index, token, job), None, None);
            let _ = ctx.events.try_send(Event::Done(Box::new(rec), Some(slot)));
            return;
        }
        Some(Err(e)) => {
            let (target, via) = probe::plan(&cfg.probe, job);
            let mut rec = Record::failed(seq, index, token, Some(target), e);
            rec.via = via;
            rec.attempts = attempt;
            rec.timing.total = start.elapsed();
            let rec = whole(rec, None, None);
            let _ = ctx.events.try_send(Event::Done(Box::new(rec), Some(slot)));
            return;
        }
        Some(Ok(probe::Addresses::Each {
            host,
            port,
            ips,
            dns,
        })) => (host, port, ips, dns),
        Some(Ok(one)) => {
            let address = match one {
                probe::Addresses::One(addr) => Some(addr),
                _ => None,
            };
            let rec = attempts(ctx, seq, index, token, job, None).await;
            let rec = whole(rec, address.map(|_| 1), address);
            let _ = ctx.events.try_send(Event::Done(Box::new(rec), Some(slot)));
            return;
        }
    };
    let of = u32::try_from(ips.len()).unwrap_or(u32::MAX);
    let todo: Vec<(u32, std::net::IpAddr)> = (0..of)
        .zip(ips.iter().copied())
        .filter(|&(_, ip)| !done.contains(&std::net::SocketAddr::new(ip, port)))
        .collect();
    let count = u32::try_from(todo.len()).unwrap_or(u32::MAX);
    if count == 0 {
        let _ = ctx.events.try_send(Event::Part {
            rec: None,
            seq,
            slot: Some(slot),
            part: event::Part { j: 0, count: 1 },
        });
        return;
    }
    let slot = std::cell::Cell::new(Some(slot));
    let left = std::cell::Cell::new(count);
    let (job, token, ips) = (&job, &token, &ips);
    let (host, slot, left) = (&host, &slot, &left);
    let probes = todo.into_iter().enumerate().map(|(j, (position, ip))| {
        let address = probe::OneAddress {
            host: host.clone(),
            ip,
            resolved: ips.clone(),
            dns,
        };
        let one_of = OneOf {
            position,
            of: Some(of),
            address: Some(std::net::SocketAddr::new(ip, port)),
        };
        let pinned = Pinned { address, one_of };
        Box::pin(async move {
            // --rate counts connections: the first address was paced at admission.
            let paced = j == 0 || !ctx.pace.is_paced() || ctx.pace.wait(&ctx.cancel).await;
            let rec = match paced {
                true => attempts(ctx, seq, index, token.clone(), job.clone(), Some(&pinned)).await,
                false => {
                    let mut rec = unstarted(cfg, seq, index, token.clone(), job.clone());
                    rec.one_of = Some(one_of);
                    rec
                }
            };
            left.set(left.get() - 1);
            let slot = if left.get() == 0 { slot.take() } else { None };
            let _ = ctx.events.try_send(Event::Part {
                rec: Some(Box::new(rec)),
                seq,
                slot,
                part: event::Part { j: j as u32, count },
            });
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>
    });
    join_all(probes.collect()).await;
}

/// Runs every future of `all` to its end, together.
async fn join_all(mut all: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>>) {
    futures_lite::future::poll_fn(|cx| {
        all.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        match all.is_empty() {
            true => std::task::Poll::Ready(()),
            false => std::task::Poll::Pending,
        }
    })
    .await
}

/// `--all-addresses`: the address one probe is about, and its record's description.
struct Pinned {
    address: probe::OneAddress,
    one_of: OneOf,
}

/// One target's attempts (with `one`, at one address of its name), each judged, until
/// one is not a transient failure or `--retry` is spent.
async fn attempts(
    ctx: &Ctx,
    seq: u64,
    index: u64,
    token: Vec<u8>,
    job: crate::proto::Job,
    one: Option<&Pinned>,
) -> Record {
    let cfg = &ctx.cfg;
    let position = one.map_or(0, |p| p.one_of.position);
    // Streamed as they arrive, unless output waits for the whole record anyway.
    let stream_lines = cfg.format == crate::report::printer::Format::Text
        && !cfg.ordered
        && !cfg.quiet
        && !cfg.only_failed;
    let sink_token = stream_lines.then(|| {
        // As the printer writes the record: `TARGET@ADDRESS` for each address of a name.
        let mut shown = Record::failed(
            seq,
            index,
            token.clone(),
            None,
            ProbeError::new(ErrorKind::Cancelled, ""),
        );
        if let (Some(pinned), crate::proto::Job::Target(t)) = (one, &job) {
            shown.target = Some(t.clone());
            shown.one_of = Some(pinned.one_of);
        }
        shown.text_token().into_owned()
    });
    let sink = |what: Streamed| {
        if let Some(token) = &sink_token {
            let _ = ctx.events.try_send(Event::Streamed {
                seq: (seq, position),
                token: token.clone(),
                what,
            });
        }
    };
    let lines = stream_lines.then_some(&sink as crate::net::LineSink);
    let mut attempt = 1;
    // The last attempt takes the job itself; only earlier ones copy it.
    let (mut job, mut token) = (Some(job), Some(token));
    loop {
        let (this, this_token) = match (&job, &token) {
            (Some(j), Some(t)) if attempt <= cfg.retry => (j.clone(), t.clone()),
            _ => match (job.take(), token.take()) {
                (Some(j), Some(t)) => (j, t),
                _ => unreachable!("only the last attempt takes the job"),
            },
        };
        let connection = match &ctx.connections {
            None => None,
            Some(connections) => match ctx.cancel.guard(connections.acquire_arc()).await {
                Some(permit) => Some(permit),
                None => {
                    let mut rec = unstarted(cfg, seq, index, this_token, this);
                    rec.one_of = one.map(|p| p.one_of);
                    return rec;
                }
            },
        };
        let mut rec = probe::probe(
            &cfg.probe,
            seq,
            index,
            this_token,
            this,
            lines,
            ctx.cancel.wait(),
            one.map(|p| &p.address),
        )
        .await;
        drop(connection);
        rec.one_of = one.map(|p| p.one_of);
        verdict::judge(&cfg.expect, &mut rec);
        rec.attempts = attempt;
        if attempt > cfg.retry || !retry::is_transient(&rec) {
            return rec;
        }
        attempt += 1;
        let wait = retry::delay(cfg, attempt, &rec);
        sink(Streamed::Retry(format!(
            "attempt {} of {} failed ({}); trying again in {}",
            attempt - 1,
            cfg.retry + 1,
            failure_of(&rec),
            crate::report::duration::human(wait)
        )));
        let waited =
            ctx.cancel.guard(rt::sleep(wait)).await.is_some() && ctx.pace.wait(&ctx.cancel).await;
        if !waited {
            let err = ProbeError::new(
                ErrorKind::Cancelled,
                format!(
                    "the run was interrupted while waiting to retry (attempt {} was {})",
                    attempt - 1,
                    failure_of(&rec)
                ),
            );
            rec.error = Some(err);
            return rec;
        }
    }
}

/// `503 Service Unavailable` or `timeout: no response within 1s (--timeout)`.
fn failure_of(rec: &Record) -> String {
    match (&rec.error, rec.head.as_ref()) {
        (Some(e), _) if e.kind != ErrorKind::StatusMismatch => e.to_string(),
        (_, Some(head)) => match head.final_block() {
            Some(block) => format!(
                "{} {}",
                block.status.code,
                crate::report::sanitize::escape(head.reason(block), false)
            )
            .trim_end()
            .to_string(),
            None => "no status".into(),
        },
        (Some(e), None) => e.to_string(),
        (None, None) => "no answer".into(),
    }
}
