//! The command line: argh's arguments (their doc comments are `--help`), then the
//! validated options that the layers below read (`run::RunOptions`, with
//! `net::ProbeOptions` inside). Nothing below sees argh types.

mod args;
mod config;
mod names;

pub use args::{parse, parse_os, Args, Parsed};
pub use config::*;
