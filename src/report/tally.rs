//! Counts of what a run produced: the summary line and the exit status come from here.

use std::collections::BTreeMap;

use super::error::ErrorKind;
use super::record::Record;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub total: u64,
    pub ok: u64,
    /// By kind, `cancelled` included.
    pub failed: BTreeMap<ErrorKind, u64>,
    /// Of the `cancelled`, those never started (read, but the run stopped first).
    pub not_started: u64,
}

impl Tally {
    pub fn count(&mut self, rec: &Record) {
        self.total += 1;
        match rec.error_kind() {
            None => self.ok += 1,
            Some(kind) => {
                *self.failed.entry(kind).or_default() += 1;
                if kind == ErrorKind::Cancelled && rec.attempts == 0 {
                    self.not_started += 1;
                }
            }
        }
    }

    /// Records of probes stopped by the run's end: (cancelled in flight, not started).
    pub fn cancelled(&self) -> (u64, u64) {
        let all = self.failed.get(&ErrorKind::Cancelled).copied().unwrap_or(0);
        (all.saturating_sub(self.not_started), self.not_started)
    }

    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }
}
