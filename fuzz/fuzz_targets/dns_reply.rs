//! DNS replies (and the same bytes as resolv.conf and hosts text): never panic, and what
//! is accepted is consistent. The check is `check_dns_reply` in `fuzz/checks.rs`, shared
//! with `cargo test`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_dns_reply(data));
