//! The terminal sanitiser on arbitrary bytes: valid UTF-8 out, no control character but
//! an allowed TAB, printable ASCII untouched, and reversible when there is no backslash.
//! Same check as `check_sanitize` in tests/properties.rs (keep them in step).
#![no_main]

use headprobe::output::sanitize::{escape, escape_into};
use libfuzzer_sys::fuzz_target;

fn unescape(text: &str) -> Vec<u8> {
    let (bytes, mut out, mut i) = (text.as_bytes(), Vec::new(), 0);
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let hex = bytes.get(i..i + 4).filter(|e| e.starts_with(b"\\x"));
            let hex = hex.unwrap_or_else(|| panic!("a bare backslash in {text:?}"));
            out.push(u8::from_str_radix(std::str::from_utf8(&hex[2..]).unwrap(), 16).unwrap());
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    for escape_tab in [false, true] {
        let mut out = b"kept>".to_vec();
        escape_into(&mut out, data, escape_tab);
        let text = std::str::from_utf8(&out).expect("escaped output is UTF-8");
        let text = text
            .strip_prefix("kept>")
            .expect("escape_into keeps what was there");
        assert_eq!(escape(data, escape_tab), text);
        let unsafe_char = |c: char| {
            (c.is_control() && (c != '\t' || escape_tab)) || ('\u{80}'..='\u{9f}').contains(&c)
        };
        assert!(
            !text.chars().any(unsafe_char),
            "{data:?} (escape_tab {escape_tab}) → {text:?}"
        );
        if data.iter().all(|b| (0x20..0x7f).contains(b)) {
            assert_eq!(text.as_bytes(), data, "printable ASCII was changed");
        }
        if !data.contains(&b'\\') {
            assert_eq!(unescape(text), data, "escaping lost information: {text:?}");
        }
    }
});
