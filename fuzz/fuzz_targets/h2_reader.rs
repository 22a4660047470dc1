//! The HTTP/2 frame reader fed in chunks must end as it does fed whole (result, head
//! lines, status codes, SETTINGS and GOAWAY state, the answers it owes the server); it
//! never panics, its answers are well-formed frames, the decoded header list stays
//! within the cap, a finished head stays finished, and its errors hold no control
//! character.
//!
//! Input: when the first byte is 0xf0 or more, its low 3 bits are how many chunk-length
//! bytes follow (none: byte by byte), and bit 3 says one more byte sets a small cap
//! (16 + 8·b); the rest is the server's bytes. Otherwise the whole input is the server's
//! bytes, fed in chunks of 1, 8, 2, 9, 13, 3, 64, 1, 4096, 5 bytes (cycling), capped at
//! 65536. The check itself is `check_h2_reader` in `fuzz/checks.rs`, shared with
//! `cargo test`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_h2_reader(data));
