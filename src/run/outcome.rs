//! How a run ended, and the exit status that says so.

use super::cancel::{Signal, StopReason};
use crate::report::tally::Tally;

/// Exit statuses, named once.
pub mod exit {
    use super::Signal;

    /// Every target was probed and is ok.
    pub const OK: i32 = 0;
    /// At least one target is not ok.
    pub const NOT_OK: i32 = 1;
    /// Bad option or value, unreadable `--file`: nothing was probed.
    pub const USAGE: i32 = 2;
    /// Some results could not be written (stdout or `-o`: disk full, I/O error).
    pub const WRITE_FAILED: i32 = 3;
    /// Stopped by SIGHUP (128 + 1).
    pub const HUNG_UP: i32 = 129;
    /// Interrupted by SIGINT (128 + 2).
    pub const INTERRUPTED: i32 = 130;
    /// Stopped by SIGTERM (128 + 15).
    pub const TERMINATED: i32 = 143;

    /// The status for a run ended by `signal`: 128 plus its number, as shells report it.
    pub fn signalled(signal: Signal) -> i32 {
        match signal {
            Signal::Interrupt => INTERRUPTED,
            Signal::Terminate => TERMINATED,
            Signal::HangUp => HUNG_UP,
        }
    }
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub tally: Tally,
    pub stopped: Option<StopReason>,
    /// Problems to report on stderr (an input file that failed mid-way, stdout errors).
    pub problems: Vec<String>,
    /// `-o FILE` could not be completed (flushed and renamed over FILE).
    pub output_lost: bool,
}

impl Outcome {
    pub fn exit_code(&self) -> i32 {
        match self.stopped {
            // A closed stdout is a normal end, as for ripgrep.
            Some(StopReason::BrokenPipe) => exit::OK,
            Some(StopReason::Signal(signal)) => exit::signalled(signal),
            Some(StopReason::OutputError) => exit::WRITE_FAILED,
            _ if self.output_lost => exit::WRITE_FAILED,
            None if self.tally.failed_total() > 0 || !self.problems.is_empty() => exit::NOT_OK,
            None => exit::OK,
        }
    }
}
