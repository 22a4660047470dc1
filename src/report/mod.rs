//! What a run reports: the record of one probe, the error kinds, the tally and progress
//! line, and the printer that owns stdout (with its terminal sanitising).

pub mod duration;
pub mod error;
pub mod json;
pub mod printer;
pub mod progress;
pub mod prometheus;
pub mod record;
pub mod sanitize;
pub mod tally;

/// Writes one line to stderr. A closed or failing stderr is ignored: a message about
/// the run is never worth a panic.
pub fn warn(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
