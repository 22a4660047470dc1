//! A usage error: printed on stderr, exit status 2, nothing probed. The command line
//! raises most; the run raises those it finds opening its input (files, `--resume`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}
