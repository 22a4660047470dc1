//! What counts as ok beyond the wire: the user's expectations (`--expect-status`),
//! applied to a finished record. The probe reports what happened; this judges it.

use crate::cli::Config;
use crate::report::error::{ErrorKind, ProbeError};
use crate::report::record::Record;

/// Marks an otherwise ok record as failed when it misses an expectation.
pub fn judge(cfg: &Config, rec: &mut Record) {
    if rec.error.is_some() {
        return;
    }
    if let (Some(set), Some(code)) = (&cfg.expect_status, rec.status()) {
        if !set.contains(code) {
            rec.error = Some(ProbeError::new(
                ErrorKind::StatusMismatch,
                format!("status {code} is not in --expect-status {set}"),
            ));
        }
    }
}
