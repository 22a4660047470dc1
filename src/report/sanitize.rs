//! Terminal-safe text: what a peer sends must never drive the user's terminal.
//!
//! Control characters (C0, DEL and C1) and bytes that are not UTF-8 become `\xNN`.

/// Appends `bytes` to `out`, escaping every control character except TAB (TAB too when
/// `escape_tab`, so tab-separated fields never split) and every byte that is not UTF-8.
pub fn escape_into(out: &mut Vec<u8>, bytes: &[u8], escape_tab: bool) {
    // Fast path: printable ASCII, the usual case for header lines.
    if bytes
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) || (b == b'\t' && !escape_tab))
    {
        out.extend_from_slice(bytes);
        return;
    }
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let unsafe_char =
                (escape_tab || c != '\t') && c.is_control() || ('\u{80}'..='\u{9f}').contains(&c);
            let mut utf8 = [0u8; 4];
            let encoded = c.encode_utf8(&mut utf8).as_bytes();
            if unsafe_char {
                encoded.iter().for_each(|&b| push_hex(out, b));
            } else {
                out.extend_from_slice(encoded);
            }
        }
        chunk.invalid().iter().for_each(|&b| push_hex(out, b));
    }
}

/// `escape_into` to a fresh `String` (always valid UTF-8).
pub fn escape(bytes: &[u8], escape_tab: bool) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    escape_into(&mut out, bytes, escape_tab);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Bytes a peer sent, for a message: the first `max` of them, quoted, in the output's
/// `\xNN` escaping (tabs included), then `...` when there were more.
pub fn quote_peer(bytes: &[u8], max: usize) -> String {
    let shown = escape(&bytes[..bytes.len().min(max)], true);
    let more = if bytes.len() > max { "..." } else { "" };
    format!("\"{shown}\"{more}")
}

fn push_hex(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(&[
        b'\\',
        b'x',
        HEX[usize::from(b >> 4)],
        HEX[usize::from(b & 15)],
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let cases: &[(&[u8], bool, &str)] = &[
            (b"Server: nginx", false, "Server: nginx"),
            (b"a\tb", false, "a\tb"),
            (b"a\tb", true, "a\\x09b"),
            (b"\x1b[31mred\x07\x00", false, "\\x1b[31mred\\x07\\x00"),
            (b"del\x7f", false, "del\\x7f"),
            (b"caf\xc3\xa9", false, "caf\u{e9}"),
            (b"bad\xff\xfe", false, "bad\\xff\\xfe"),
            (b"half\xc3", false, "half\\xc3"),
            (b"c1\xc2\x9b2J", false, "c1\\xc2\\x9b2J"),
            (b"cr\rlf\n", false, "cr\\x0dlf\\x0a"),
            ("\u{202e}rtl".as_bytes(), false, "\u{202e}rtl"),
        ];
        for (input, tab, want) in cases {
            assert_eq!(escape(input, *tab), *want, "{input:?}");
        }
    }

    #[test]
    fn every_byte_value_comes_out_safe() {
        let all: Vec<u8> = (0..=255).collect();
        for tab in [false, true] {
            let out = escape(&all, tab);
            assert!(out
                .chars()
                .all(|c| !(c.is_control() && (c != '\t' || tab))
                    && !('\u{80}'..='\u{9f}').contains(&c)));
        }
    }
}
