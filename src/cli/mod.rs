//! The command line: argh's arguments (their doc comments are `--help`), then the
//! validated `Config` that everything below reads. Nothing below sees argh types.

mod args;
mod config;
mod names;

pub use args::{parse, Args, Parsed};
pub use config::*;
