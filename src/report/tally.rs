//! Counts of what a run produced: the summary line and the exit status come from here.

use std::collections::BTreeMap;

use super::error::ErrorKind;
use super::record::Record;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub total: u64,
    pub ok: u64,
    pub failed: BTreeMap<ErrorKind, u64>,
}

impl Tally {
    pub fn count(&mut self, rec: &Record) {
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
