//! What probes and admission tell the printer, and the record of a target that was
//! read but never started.

use async_lock::SemaphoreGuardArc;

use crate::net::probe;
use crate::proto::Job;
use crate::report::error::{ErrorKind, ProbeError};
use crate::report::record::{Record, Streamed};
use crate::run::options::RunOptions;

/// What probes and admission tell the printer.
pub enum Event {
    /// What a probe streamed as it happened (`text`, unordered).
    Streamed {
        seq: crate::report::printer::Probe,
        token: Vec<u8>,
        what: Streamed,
    },
    /// A finished target, with the slot it held.
    Done(Box<Record>, Option<SemaphoreGuardArc>),
    /// `--all-addresses`: one of the records a target makes (the last to finish carries
    /// the target's slot), or none when `--resume` left it nothing to probe.
    Part {
        rec: Option<Box<Record>>,
        seq: u64,
        slot: Option<SemaphoreGuardArc>,
        part: Part,
    },
}

/// `--all-addresses`: a record's place among those its target makes in this run, in
/// the order `--ordered` writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub j: u32,
    pub count: u32,
}

/// The `cancelled` record of a job that was read but never started.
pub(crate) fn unstarted(
    cfg: &RunOptions,
    seq: u64,
    index: u64,
    token: Vec<u8>,
    job: Job,
) -> Record {
    let err = ProbeError::new(
        ErrorKind::Cancelled,
        "the run was interrupted before this probe started",
    );
    let (target, via) = probe::plan(&cfg.probe, job);
    let mut rec = Record::failed(seq, index, token, Some(target), err);
    rec.via = via;
    rec
}
