//! headprobe: probe many HTTP servers at once and stream back their status and header
//! lines, never the body.
//!
//! The layers, top to bottom (each uses only the ones below it, and no file uses one
//! that uses it back; `tests/suite/architecture.rs` checks both over the source):
//! - `cli`: arguments (the `--help` text), validated into the options of the layers below;
//! - `run`: `RunOptions`; input streamed in, admission in input order, ordering,
//!   cancellation, pacing, retries, expectations;
//! - `net`: `ProbeOptions`; the only runtime users: resolve, connect, TLS, tunnels, the
//!   conversation (HTTP/1), redirects, one probe;
//! - `report`: the record, error kinds, tally and progress, the printer that owns stdout;
//! - `proto`: sans-IO target grammar, request bytes, response-head parser, proxy messages.

pub mod cli;
pub mod net;
pub mod proto;
pub mod report;
pub mod run;

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use run::output::{Ending, Output};
pub use run::{exit, Cancel, Outcome, Signal, StopReason};
pub use run::{RunOptions, UsageError};

/// Descriptors kept free for everything that is not a probe's socket (stdio, the
/// reactor, input files).
const RESERVED_FDS: u64 = 16;

/// Runs `cfg` to the end, writing results to stdout (or `-o`) and warnings to stderr.
/// Watches SIGINT, SIGTERM and SIGHUP. Returns a usage error before probing anything.
pub fn run(mut cfg: RunOptions) -> Result<Outcome, UsageError> {
    run::output::refuse_input_files(&cfg)?;
    let cancel = Arc::new(Cancel::default());
    // Before any file is made, so that a signal finds it to tidy.
    let signals = run::signals::watch(Arc::clone(&cancel));
    let json = cfg.format == report::printer::Format::Json;
    let output = cfg.output.as_deref().map(Output::open).transpose()?;
    if let Some(out) = &output {
        signals.on_exit(out.tidy(json));
    }
    // Held to the end: a second run appending to the same --resume file stops at once.
    let resume_lock = match (&output, &cfg.resume) {
        (None, Some(path)) => run::output::lock_resume_if_appending(path)?,
        _ => None,
    };
    if let Some(lock) = &resume_lock {
        signals.on_exit(lock.tidy());
    }
    let mut keep =
        match &output {
            Some(out) if cfg.resume.is_some() => Some(out.writer().map_err(|e| {
                UsageError(format!("cannot write -o: {}", report::error::os_text(&e)))
            })?),
            _ => None,
        };
    let input = run::input::Input::open(&cfg, keep.as_mut().map(|w| w as &mut dyn Write))?;
    drop(keep);
    if let Some(problems) = input.resume_problems() {
        report::warn(&format!("headprobe: {problems}"));
    }
    let input_end = input.end_notes();
    fit_concurrency_to_fd_limit(&mut cfg);

    let stderr_tty = std::io::stderr().is_terminal();
    // With -o, standard output carries nothing.
    let stdout_tty = output.is_none() && std::io::stdout().is_terminal();
    let show_progress = cfg.progress.unwrap_or(stderr_tty && !stdout_tty);
    let progress =
        show_progress.then(|| report::progress::Progress::start(input.known_total, stderr_tty));
    if let (Some(progress), None, Some(count)) = (&progress, input.known_total, input.counting()) {
        let counters = Arc::clone(&progress.counters);
        let _ = std::thread::Builder::new()
            .name("headprobe-count".into())
            .spawn(move || {
                if let Some(total) = count() {
                    counters.set_total(total);
                }
            });
    }
    let terminal = run::Terminal {
        counters: progress.as_ref().map(|p| Arc::clone(&p.counters)),
        // Results and the bar share a screen only when both go to a terminal.
        screen: progress
            .as_ref()
            .and_then(|p| p.screen())
            .filter(|_| stdout_tty),
        stdout_is_terminal: stdout_tty,
        watch_stdout: output.is_none(),
        destination: match &output {
            Some(out) => format!("-o {}", out.path().display()),
            None => "standard output".into(),
        },
    };
    let sink: Box<dyn Write + Send> = match &output {
        Some(out) => out
            .writer()
            .map_err(|e| UsageError(format!("cannot write -o: {}", report::error::os_text(&e))))?,
        None => Box::new(std::io::stdout()),
    };
    signals.started();
    let mut outcome = run::run(Arc::new(cfg), input, sink, cancel, terminal);
    if let Some(out) = output {
        let ending = match outcome.stopped {
            Some(StopReason::OutputError) => Ending::WriteFailed,
            Some(StopReason::Signal(signal)) => Ending::Stopped {
                how: signal.ended(),
                keep_partial: json,
            },
            _ => Ending::Complete,
        };
        match out.finish(ending) {
            Ok(note) => outcome.problems.extend(note),
            Err(problem) => {
                outcome.problems.push(problem);
                outcome.output_lost = true;
            }
        }
    }
    if let Some(progress) = progress {
        let stopped = outcome.stopped.map(|reason| match reason {
            StopReason::Signal(signal) => signal.ended(),
            StopReason::BrokenPipe => "the output was closed",
            StopReason::OutputError => "writing the results failed",
        });
        progress.finish(&outcome.tally, stopped);
    }
    for problem in &outcome.problems {
        report::warn(&format!("headprobe: {problem}"));
    }
    // Notes about the input as a whole, once it was read to its end.
    let notes = input_end.lock().map(|end| end.clone()).unwrap_or_default();
    for note in notes.iter().flat_map(|end| &end.notes) {
        report::warn(&format!("headprobe: {note}"));
    }
    Ok(outcome)
}

/// Raises the soft open-file limit toward the hard one; lowers `--concurrency`, with one
/// warning, if it still does not fit.
fn fit_concurrency_to_fd_limit(cfg: &mut RunOptions) {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(_) => match rlimit::getrlimit(rlimit::Resource::NOFILE) {
            Ok((soft, _)) => soft,
            Err(_) => return,
        },
    };
    let reserved = RESERVED_FDS + cfg.files.len() as u64;
    let room = limit.saturating_sub(reserved).max(1);
    // DNS holds a UDP socket per server and probe thread, and each lookup in flight
    // briefly a TCP one when an answer comes back truncated: keep room for them (a
    // third of what is left when the limit is tight).
    let dns = (room / 6).clamp(1, net::resolve::MAX_IN_FLIGHT as u64);
    cfg.probe.resolver.limit_in_flight(dns as usize);
    let room = room.saturating_sub(2 * dns).max(1);
    if (cfg.concurrency as u64) > room {
        report::warn(&format!(
            "headprobe: warning: --concurrency {} lowered to {room}: the open-file limit is {limit} \
             (raise it with 'ulimit -n')",
            cfg.concurrency
        ));
        cfg.concurrency = room as usize;
    }
}
