//! The HTTP/3 request-stream reader (frames, QPACK with the static table only) fed in
//! chunks must end as it does fed whole (result, head lines, status codes); it never
//! panics, the decoded head stays within the cap, a finished head stays finished, its
//! errors hold no control character, and QPACK's encoder round-trips through its
//! decoder on the fields read.
//!
//! Input: as `h2_reader`'s. When the first byte is 0xf0 or more, its low 3 bits are how
//! many chunk-length bytes follow (none: byte by byte), and bit 3 says one more byte
//! sets a small cap (16 + 8·b); the rest is the request stream's bytes. Otherwise the
//! whole input is, fed in `H2_LENS` chunks, capped at 65536. The check itself is
//! `check_h3_reader` in `fuzz/checks.rs`, shared with `cargo test`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_h3_reader(data));
