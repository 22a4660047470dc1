//! The target grammar on arbitrary text: never panics, and what it accepts is safe to put
//! on the wire and on a terminal, and parses back from its canonical URL.
//! The check itself is `check_target_grammar` in `fuzz/checks.rs`, shared with `cargo test`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_target_grammar(data));
