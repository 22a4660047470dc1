//! The response-head parser fed in chunks (through `read_buf`/`commit`, as the probe
//! reads) must end as it does fed whole; every accessor is called and checked.
//!
//! Input: when the first byte is below 0x10, its low 3 bits are how many chunk-length
//! bytes follow (none: byte by byte), and bit 3 says one more byte sets a small cap
//! (16 + 4·b); the rest is the response. Otherwise the whole input is the response, fed
//! in chunks of 1, 7, 2, 13, 3, 64, 1, 1, 5 bytes (cycling), capped at 65536.
//! The check itself is `check_head_parser` in `fuzz/checks.rs`, shared with `cargo test`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_head_parser(data));
