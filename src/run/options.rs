//! What a run is asked to do, as the command line built it: where targets come from,
//! how many at once, what counts as ok, how results are written, and the options of
//! each probe (`net::ProbeOptions`). `run` reads only this.

use std::time::Duration;

use crate::net::ProbeOptions;
use crate::proto::target::Defaults;
use crate::report::printer::Format;
use crate::run::verdict::Expectations;

/// The contract's defaults for the options this layer owns (`--help` repeats them).
pub mod defaults {
    use std::time::Duration;

    pub const CONCURRENCY: usize = 256;
    /// New connections per second; 0 is no limit.
    pub const RATE: f64 = 0.0;
    pub const RETRY: u32 = 0;
    pub const RETRY_DELAY: Duration = Duration::from_secs(1);
    /// The longest wait between retries, `Retry-After` included.
    pub const RETRY_DELAY_CAP: Duration = Duration::from_secs(30);
}

/// Everything a run needs, validated.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Positional targets, probed first.
    pub targets: Vec<String>,
    /// `--file` paths in order; `-` is standard input.
    pub files: Vec<String>,
    pub concurrency: usize,
    /// What a token without a scheme, port or path gets.
    pub defaults: Defaults,
    pub format: Format,
    pub ordered: bool,
    /// `--all-addresses`: each address of a name is probed, and recorded, on its own.
    pub all_addresses: bool,
    pub quiet: bool,
    /// `--only-failed`: records of ok targets are counted, not printed.
    pub only_failed: bool,
    /// `--expect-status`, `--expect-header`, `--expect-cert-days`.
    pub expect: Expectations,
    /// New connections per second; 0 is no limit.
    pub rate: f64,
    /// `--shard K/N` as (K-1, N).
    pub shard: Option<(u64, u64)>,
    /// `--resume FILE`: an earlier run's JSON Lines output.
    pub resume: Option<String>,
    /// `-o FILE`: results go to FILE instead of stdout (`run::output` says how); never
    /// `-`, which is stdout.
    pub output: Option<String>,
    /// `Some` when forced on or off; `None` decides from the terminals.
    pub progress: Option<bool>,
    /// `--retry N`: further attempts after a transient failure.
    pub retry: u32,
    /// `--retry-delay`: the wait before the first retry; it doubles up to `RETRY_DELAY_CAP`.
    pub retry_delay: Duration,
    /// What each probe is allowed and asked to do.
    pub probe: ProbeOptions,
}

impl Default for RunOptions {
    /// The contract's defaults, with no targets.
    fn default() -> Self {
        RunOptions {
            targets: Vec::new(),
            files: Vec::new(),
            concurrency: defaults::CONCURRENCY,
            defaults: Defaults {
                https: true,
                ..Defaults::default()
            },
            format: Format::Text,
            ordered: false,
            all_addresses: false,
            quiet: false,
            only_failed: false,
            expect: Expectations::default(),
            rate: defaults::RATE,
            shard: None,
            resume: None,
            output: None,
            progress: None,
            retry: defaults::RETRY,
            retry_delay: defaults::RETRY_DELAY,
            probe: ProbeOptions::default(),
        }
    }
}

impl RunOptions {
    /// The defaults with the given targets (for tests and benches).
    pub fn with_targets(targets: &[&str]) -> RunOptions {
        RunOptions {
            targets: targets.iter().map(|s| s.to_string()).collect(),
            ..RunOptions::default()
        }
    }
}
