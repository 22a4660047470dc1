//! The SOCKS4/4a and SOCKS5 reply parsers driven a byte at a time as a handshake reads
//! them, and the request builders on arbitrary user ids, passwords and names.
//! The check itself is `check_socks_messages` in `fuzz/checks.rs`, shared with `cargo test`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_socks_messages(data));
