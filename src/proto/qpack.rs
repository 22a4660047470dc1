//! QPACK (RFC 9204) for one request and its response head, without IO.
//!
//! A probe advertises a dynamic table capacity of 0 (and no blocked streams), so a
//! server may use only the static table and literals: every field section decodes on
//! its own, and the encoder and decoder streams carry nothing. A reference to the
//! dynamic table is an error (`QpackError::Dynamic`), as RFC 9204 section 2.2.3 says.
//! Huffman strings share HPACK's decoder (`proto::hpack`): the code is the same.
//!
//! The request is encoded with the static table where a name or a whole field is in it,
//! and literals otherwise, never Huffman-coded (a request of a few fields gains little).

use crate::proto::hpack::{encode_int, huffman_decode};

/// The static table (RFC 9204 Appendix A), by index.
pub const STATIC: [(&str, &str); 99] = [
    (":authority", ""),
    (":path", "/"),
    ("age", "0"),
    ("content-disposition", ""),
    ("content-length", "0"),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("referer", ""),
    ("set-cookie", ""),
    (":method", "CONNECT"),
    (":method", "DELETE"),
    (":method", "GET"),
    (":method", "HEAD"),
    (":method", "OPTIONS"),
    (":method", "POST"),
    (":method", "PUT"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "103"),
    (":status", "200"),
    (":status", "304"),
    (":status", "404"),
    (":status", "503"),
    ("accept", "*/*"),
    ("accept", "application/dns-message"),
    ("accept-encoding", "gzip, deflate, br"),
    ("accept-ranges", "bytes"),
    ("access-control-allow-headers", "cache-control"),
    ("access-control-allow-headers", "content-type"),
    ("access-control-allow-origin", "*"),
    ("cache-control", "max-age=0"),
    ("cache-control", "max-age=2592000"),
    ("cache-control", "max-age=604800"),
    ("cache-control", "no-cache"),
    ("cache-control", "no-store"),
    ("cache-control", "public, max-age=31536000"),
    ("content-encoding", "br"),
    ("content-encoding", "gzip"),
    ("content-type", "application/dns-message"),
    ("content-type", "application/javascript"),
    ("content-type", "application/json"),
    ("content-type", "application/x-www-form-urlencoded"),
    ("content-type", "image/gif"),
    ("content-type", "image/jpeg"),
    ("content-type", "image/png"),
    ("content-type", "text/css"),
    ("content-type", "text/html; charset=utf-8"),
    ("content-type", "text/plain"),
    ("content-type", "text/plain;charset=utf-8"),
    ("range", "bytes=0-"),
    ("strict-transport-security", "max-age=31536000"),
    (
        "strict-transport-security",
        "max-age=31536000; includesubdomains",
    ),
    (
        "strict-transport-security",
        "max-age=31536000; includesubdomains; preload",
    ),
    ("vary", "accept-encoding"),
    ("vary", "origin"),
    ("x-content-type-options", "nosniff"),
    ("x-xss-protection", "1; mode=block"),
    (":status", "100"),
    (":status", "204"),
    (":status", "206"),
    (":status", "302"),
    (":status", "400"),
    (":status", "403"),
    (":status", "421"),
    (":status", "425"),
    (":status", "500"),
    ("accept-language", ""),
    ("access-control-allow-credentials", "FALSE"),
    ("access-control-allow-credentials", "TRUE"),
    ("access-control-allow-headers", "*"),
    ("access-control-allow-methods", "get"),
    ("access-control-allow-methods", "get, post, options"),
    ("access-control-allow-methods", "options"),
    ("access-control-expose-headers", "content-length"),
    ("access-control-request-headers", "content-type"),
    ("access-control-request-method", "get"),
    ("access-control-request-method", "post"),
    ("alt-svc", "clear"),
    ("authorization", ""),
    (
        "content-security-policy",
        "script-src 'none'; object-src 'none'; base-uri 'none'",
    ),
    ("early-data", "1"),
    ("expect-ct", ""),
    ("forwarded", ""),
    ("if-range", ""),
    ("origin", ""),
    ("purpose", "prefetch"),
    ("server", ""),
    ("timing-allow-origin", "*"),
    ("upgrade-insecure-requests", "1"),
    ("user-agent", ""),
    ("x-forwarded-for", ""),
    ("x-frame-options", "deny"),
    ("x-frame-options", "sameorigin"),
];

/// Why a field section cannot be decoded: each is a QPACK_DECOMPRESSION_FAILED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QpackError {
    /// A reference to the dynamic table (or a Required Insert Count above 0), which a
    /// capacity of 0 rules out.
    Dynamic,
    /// A static index past the table's 99 entries.
    Index(u64),
    /// An integer cut short, or too large to be a length or an index.
    Integer,
    /// A string longer than what is left of the section.
    Truncated,
    /// A Huffman string with EOS in it, or padding that is not up to 7 one-bits.
    Huffman,
}

impl std::fmt::Display for QpackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QpackError::Dynamic => f.write_str(
                "it refers to the dynamic table, though the client set its capacity to 0",
            ),
            QpackError::Index(i) => write!(f, "static table index {i} does not exist (0 to 98)"),
            QpackError::Integer => f.write_str("an integer is cut short or too large"),
            QpackError::Truncated => f.write_str("a string runs past the end of the section"),
            QpackError::Huffman => f.write_str("a Huffman-coded string is invalid"),
        }
    }
}

/// Encodes a request's field section: the prefix (no dynamic table), then each field.
pub fn encode<F: AsRef<[u8]>>(fields: &[(F, F)]) -> Vec<u8> {
    // Required Insert Count 0, Delta Base 0.
    let mut out = vec![0, 0];
    for (name, value) in fields {
        let (name, value) = (name.as_ref(), value.as_ref());
        let whole = STATIC
            .iter()
            .position(|(n, v)| n.as_bytes() == name && v.as_bytes() == value);
        if let Some(i) = whole {
            // Indexed field line, static: 1 T=1 index(6).
            encode_int(&mut out, 0b1100_0000, 6, i as u64);
            continue;
        }
        match STATIC.iter().position(|(n, _)| n.as_bytes() == name) {
            // Literal with name reference, static, N=0: 01 N T=1 index(4).
            Some(i) => encode_int(&mut out, 0b0101_0000, 4, i as u64),
            // Literal with literal name, N=0, H=0: 001 N H length(3).
            None => {
                encode_int(&mut out, 0b0010_0000, 3, name.len() as u64);
                out.extend_from_slice(name);
            }
        }
        encode_int(&mut out, 0, 7, value.len() as u64);
        out.extend_from_slice(value);
    }
    out
}

/// Reads a prefixed integer of `bits` bits from the start of `input`: the value and the
/// bytes used. Values above 2^62 are errors (nothing in a section can be that large).
fn decode_int(input: &[u8], bits: u32) -> Result<(u64, usize), QpackError> {
    let max = (1u64 << bits) - 1;
    let first = *input.first().ok_or(QpackError::Integer)?;
    let mut value = u64::from(first) & max;
    if value < max {
        return Ok((value, 1));
    }
    let mut shift = 0u32;
    for (i, &b) in input.iter().enumerate().skip(1) {
        if shift > 56 {
            return Err(QpackError::Integer);
        }
        value += u64::from(b & 0x7f) << shift;
        if value > 1 << 62 {
            return Err(QpackError::Integer);
        }
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
        shift += 7;
    }
    Err(QpackError::Integer)
}

/// A string literal whose length prefix has `bits` bits and whose Huffman flag is the
/// bit just above them. Returns the string (decoded into `scratch` if Huffman-coded)
/// and the bytes used.
fn decode_str<'a>(
    input: &'a [u8],
    bits: u32,
    scratch: &'a mut Vec<u8>,
) -> Result<(&'a [u8], usize), QpackError> {
    let huffman = input.first().is_some_and(|b| b & (1 << bits) != 0);
    let (len, used) = decode_int(input, bits)?;
    let end = usize::try_from(len)
        .ok()
        .and_then(|len| used.checked_add(len))
        .filter(|&end| end <= input.len())
        .ok_or(QpackError::Truncated)?;
    let raw = &input[used..end];
    if !huffman {
        return Ok((raw, end));
    }
    scratch.clear();
    huffman_decode(raw, scratch).map_err(|_| QpackError::Huffman)?;
    Ok((scratch.as_slice(), end))
}

fn static_entry(index: u64) -> Result<(&'static str, &'static str), QpackError> {
    usize::try_from(index)
        .ok()
        .and_then(|i| STATIC.get(i))
        .copied()
        .ok_or(QpackError::Index(index))
}

/// Decodes one field section, handing each `(name, value)` to `field` in order.
pub fn decode(section: &[u8], mut field: impl FnMut(&[u8], &[u8])) -> Result<(), QpackError> {
    let (insert_count, used) = decode_int(section, 8)?;
    if insert_count != 0 {
        return Err(QpackError::Dynamic);
    }
    // Sign and Delta Base: meaningless without the dynamic table, but must be whole.
    let (_, base) = decode_int(&section[used..], 7)?;
    let mut rest = &section[used + base..];
    let (mut names, mut values) = (Vec::new(), Vec::new());
    while let Some(&first) = rest.first() {
        let used = if first & 0x80 != 0 {
            // Indexed field line: 1 T index(6).
            if first & 0x40 == 0 {
                return Err(QpackError::Dynamic);
            }
            let (index, used) = decode_int(rest, 6)?;
            let (name, value) = static_entry(index)?;
            field(name.as_bytes(), value.as_bytes());
            used
        } else if first & 0x40 != 0 {
            // Literal with name reference: 01 N T index(4).
            if first & 0x10 == 0 {
                return Err(QpackError::Dynamic);
            }
            let (index, used) = decode_int(rest, 4)?;
            let (name, _) = static_entry(index)?;
            let (value, more) = decode_str(&rest[used..], 7, &mut values)?;
            field(name.as_bytes(), value);
            used + more
        } else if first & 0x20 != 0 {
            // Literal with literal name: 001 N H length(3).
            let (name, used) = decode_str(rest, 3, &mut names)?;
            let (value, more) = decode_str(&rest[used..], 7, &mut values)?;
            field(name, value);
            used + more
        } else {
            // Indexed post-base (0001) or literal with post-base name reference (0000):
            // both are dynamic.
            return Err(QpackError::Dynamic);
        };
        rest = &rest[used..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(section: &[u8]) -> Result<Vec<(String, String)>, QpackError> {
        let mut out = Vec::new();
        decode(section, |n, v| {
            out.push((
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ))
        })?;
        Ok(out)
    }

    #[test]
    fn the_static_table_is_rfc_9204s() {
        assert_eq!(STATIC[0], (":authority", ""));
        assert_eq!(STATIC[17], (":method", "GET"));
        assert_eq!(STATIC[25], (":status", "200"));
        assert_eq!(STATIC[63], (":status", "100"));
        assert_eq!(STATIC[92], ("server", ""));
        assert_eq!(STATIC[98], ("x-frame-options", "sameorigin"));
    }

    #[test]
    fn a_request_uses_the_static_table_where_it_can() {
        let fields: [(&[u8], &[u8]); 5] = [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", b"a.test"),
            (b":path", b"/x?y=1"),
            (b"x-custom", b"v"),
        ];
        let section = encode(&fields);
        assert_eq!(
            section,
            [
                &[0u8, 0, 0xc0 | 17, 0xc0 | 23, 0x50, 6][..],
                b"a.test",
                &[0x51, 6],
                b"/x?y=1",
                &[0x27, 1],
                b"x-custom",
                &[1],
                b"v",
            ]
            .concat()
        );
        let back = decoded(&section).unwrap();
        let strings: Vec<(String, String)> = fields
            .iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into(),
                    String::from_utf8_lossy(v).into(),
                )
            })
            .collect();
        assert_eq!(back, strings);
    }

    #[test]
    fn long_lengths_continue_past_the_prefix() {
        let value = vec![b'v'; 300];
        let section = encode(&[(&b"x-long"[..], &value[..])]);
        let back = decoded(&section).unwrap();
        assert_eq!(back[0].1.len(), 300);
    }

    #[test]
    fn huffman_strings_decode_as_in_hpack() {
        // RFC 7541 C.4.1's Huffman "www.example.com", as the value of :authority.
        let huff = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        let mut section = vec![0, 0, 0x50, 0x80 | huff.len() as u8];
        section.extend_from_slice(&huff);
        assert_eq!(
            decoded(&section).unwrap(),
            [(":authority".into(), "www.example.com".into())]
        );
    }

    #[test]
    fn a_response_head_decodes_in_order() {
        // :status 200 indexed, server literal with name reference, a literal name.
        let section = [
            &[0u8, 0, 0xc0 | 25, 0x5f, 92 - 15, 3][..],
            b"h3x",
            &[0x23, b'x', b'-', b'a', 2],
            b"hi",
        ]
        .concat();
        assert_eq!(
            decoded(&section).unwrap(),
            [
                (":status".into(), "200".into()),
                ("server".into(), "h3x".into()),
                ("x-a".into(), "hi".into())
            ]
        );
    }

    #[test]
    fn what_a_capacity_of_0_rules_out_is_an_error() {
        let cases: [(&[u8], QpackError); 9] = [
            (&[1, 0], QpackError::Dynamic),
            (&[0, 0, 0x80], QpackError::Dynamic),
            (&[0, 0, 0x40, 0], QpackError::Dynamic),
            (&[0, 0, 0x10], QpackError::Dynamic),
            (&[0, 0, 0x00, 0], QpackError::Dynamic),
            (&[0, 0, 0xff, 0x24], QpackError::Index(99)),
            (&[0, 0, 0x51, 5, b'a'], QpackError::Truncated),
            (&[0, 0, 0xff], QpackError::Integer),
            (&[0, 0, 0x51, 0x81, 0xff], QpackError::Huffman),
        ];
        for (section, want) in cases {
            assert_eq!(decoded(section), Err(want), "{section:x?}");
        }
        assert_eq!(decoded(&[]), Err(QpackError::Integer));
        assert_eq!(decoded(&[0, 0]), Ok(vec![]));
    }

    #[test]
    fn integers_round_trip_at_every_prefix() {
        for bits in 3..=8 {
            for value in [
                0,
                1,
                (1 << bits) - 2,
                (1 << bits) - 1,
                1 << bits,
                1337,
                1 << 40,
            ] {
                let mut out = Vec::new();
                encode_int(&mut out, 0, bits, value);
                assert_eq!(decode_int(&out, bits), Ok((value, out.len())));
            }
        }
    }
}
