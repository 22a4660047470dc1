//! The terminal sanitiser on arbitrary bytes: valid UTF-8 out, no control character but
//! an allowed TAB, printable ASCII untouched, and reversible when there is no backslash.
//! The check itself is `check_sanitize` in `fuzz/checks.rs`, shared with `cargo test`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_sanitize(data));
