//! The `headprobe` command: parse arguments, run, map the outcome to an exit status.

use std::io::{self, Write};

use headprobe::cli::{self, Parsed};
use headprobe::exit;
use headprobe::report::warn;

fn main() {
    std::process::exit(real_main());
}

fn real_main() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let args = match cli::parse_os(&args) {
        Parsed::Args(args) => args,
        Parsed::Help(text) => return print(&text),
        Parsed::Error(text) => {
            warn(&format!("headprobe: {}", text.trim_end()));
            warn("Run 'headprobe --help' for usage.");
            return exit::USAGE;
        }
    };
    if args.version {
        return print(&format!("headprobe {}", env!("CARGO_PKG_VERSION")));
    }
    let outcome = cli::from_args(*args).and_then(headprobe::run);
    match outcome {
        Ok(outcome) => outcome.exit_code(),
        Err(usage) => {
            warn(&format!("headprobe: {usage}"));
            exit::USAGE
        }
    }
}

/// Writes `--help` or `--version` text. A closed stdout (`headprobe --help | head -1`)
/// is a normal end, as for results: exit 0, quietly.
fn print(text: &str) -> i32 {
    let mut out = io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            let why = headprobe::report::error::os_text(&e);
            warn(&format!("headprobe: writing to standard output: {why}"));
            exit::NOT_OK
        }
    }
}
