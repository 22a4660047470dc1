//! HPACK decoding against the reference: `headprobe`'s decoder and `loona-hpack`'s agree
//! on every block of one connection (the same fields, or both refuse), and neither
//! panics. Input: a byte that sets the table size (times 32, at most 4096), then blocks,
//! each a length byte and its bytes. The check is `check_hpack` in `fuzz/checks.rs`,
//! shared with `cargo test`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_hpack(data));
