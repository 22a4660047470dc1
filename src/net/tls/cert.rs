//! What a certificate says: the fields of `tls.cert` and `tls.chain`, and how long the
//! leaf has left.

use std::time::{SystemTime, UNIX_EPOCH};

use x509_parser::prelude::*;

pub use crate::report::record::{CertInfo, ChainCert};

const DAY: i64 = 86_400;

/// Parses a DER certificate's fields as of `now`; `None` if it does not parse.
pub fn cert_info(der: &[u8], now: SystemTime) -> Option<CertInfo> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut san = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => san.push(d.to_string()),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        san.push(std::net::Ipv4Addr::from(v4).to_string());
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        san.push(std::net::Ipv6Addr::from(v6).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let not_after = cert.validity().not_after.timestamp();
    // Go's `SerialNumber.Bytes()`: the magnitude, without the DER's leading zero bytes.
    let serial = cert.raw_serial();
    let serial = &serial[serial.iter().take_while(|&&b| b == 0).count()..];
    Some(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: cert.validity().not_before.timestamp(),
        not_after,
        san,
        sha256: hex(super::provider::sha256(der).as_ref()),
        days_left: days_left(not_after, unix(now)),
        expired: not_after < unix(now),
        serial: hex(serial),
        subject_rfc2253: rfc2253(cert.subject()),
        issuer_rfc2253: rfc2253(cert.issuer()),
    })
}

/// One certificate of the chain the server sent; `None` if it does not parse.
pub fn chain_cert(der: &[u8]) -> Option<ChainCert> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some(ChainCert {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_after: cert.validity().not_after.timestamp(),
        sha256: hex(super::provider::sha256(der).as_ref()),
    })
}

/// The attribute types Go's `pkix.Name` parses into fields, in the order
/// `ToRDNSequence` writes them, with the short names `RDNSequence.String` gives them.
const GO_NAME_FIELDS: [(&str, &str); 9] = [
    ("2.5.4.6", "C"),
    ("2.5.4.8", "ST"),
    ("2.5.4.7", "L"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.17", "POSTALCODE"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
];

/// A name as Go's `pkix.Name.String()` writes it, which is what blackbox_exporter puts in
/// its `subject` and `issuer` labels: the known attributes regrouped in Go's order (all
/// values of one type in one `+`-joined RDN; one CN, one serial number), any other
/// attribute before them as `OID=#hex-of-DER`, the whole read backwards and joined with
/// `,` (`CN=leaf,O=Org,C=US`), values escaped as RFC 2253 says.
fn rfc2253(name: &X509Name<'_>) -> String {
    let attrs: Vec<_> = name.iter_attributes().collect();
    let mut rdns: Vec<Vec<String>> = Vec::new();
    for a in &attrs {
        let oid = a.attr_type().to_id_string();
        if !GO_NAME_FIELDS.iter().any(|(o, _)| *o == oid) {
            rdns.push(vec![format!("{oid}=#{}", hex(&go_marshal(a)))]);
        }
    }
    for (oid, short) in GO_NAME_FIELDS {
        let mut values: Vec<String> = attrs
            .iter()
            .filter(|a| a.attr_type().to_id_string() == oid)
            .map(|a| {
                let text = a
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|_| String::from_utf8_lossy(a.as_slice()).into_owned());
                format!("{short}={}", escape_rdn(&text))
            })
            .collect();
        // Go keeps one CommonName and one SerialNumber: the last one read.
        if matches!(short, "CN" | "SERIALNUMBER") && values.len() > 1 {
            values.drain(..values.len() - 1);
        }
        if !values.is_empty() {
            rdns.push(values);
        }
    }
    rdns.iter()
        .rev()
        .map(|rdn| rdn.join("+"))
        .collect::<Vec<_>>()
        .join(",")
}

/// An attribute's value as Go's `asn1.Marshal` writes it back after parsing: a string
/// becomes a PrintableString when every character allows it, else a UTF8String; any
/// other value keeps its own DER.
fn go_marshal(a: &AttributeTypeAndValue<'_>) -> Vec<u8> {
    let value = a.attr_value();
    let (tag, content): (Vec<u8>, &[u8]) = match a.as_str() {
        Ok(text) => {
            let printable = text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b));
            (vec![if printable { 0x13 } else { 0x0c }], text.as_bytes())
        }
        Err(_) => match value.header.raw_tag() {
            Some(tag) => (tag.to_vec(), value.data),
            None => (
                vec![
                    (value.header.class() as u8) << 6
                        | u8::from(value.header.constructed()) << 5
                        | (value.header.tag().0 as u8 & 0x1f),
                ],
                value.data,
            ),
        },
    };
    let mut der = tag;
    let len = content.len();
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        der.push(0x80 | (bytes.len() - skip) as u8);
        der.extend_from_slice(&bytes[skip..]);
    }
    der.extend_from_slice(content);
    der
}

/// RFC 2253 value escaping as Go does it: `,+"\<>;` anywhere, a space first or last,
/// `#` first.
fn escape_rdn(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.len().saturating_sub(1);
    for (i, c) in value.char_indices() {
        let escape = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => i == 0 || i == last,
            '#' => i == 0,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether `now` lies outside the certificate's validity: `Some(true)` expired,
/// `Some(false)` not yet valid, `None` valid (or unparsable: webpki judges those).
pub fn outside_validity(der: &[u8], now: SystemTime) -> Option<bool> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let now = unix(now);
    let v = cert.validity();
    if now > v.not_after.timestamp() {
        Some(true)
    } else if now < v.not_before.timestamp() {
        Some(false)
    } else {
        None
    }
}

/// The subject's common name, for a certificate without a subjectAltName extension.
pub fn common_name_only(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    if cert.subject_alternative_name().ok()?.is_some() {
        return None;
    }
    let mut names = cert.subject().iter_common_name();
    let cn = names.next()?.as_str().ok()?.to_string();
    names.next().is_none().then_some(cn)
}

/// Whether the certificate names itself as its issuer.
pub fn is_self_signed(der: &[u8]) -> bool {
    X509Certificate::from_der(der)
        .map(|(_, c)| c.subject().as_raw() == c.issuer().as_raw())
        .unwrap_or(false)
}

/// Whole days from `now` to `not_after` (Unix seconds), counted toward zero, as a
/// person counts them: 25 hours ago is 1 day ago, not 2.
fn days_left(not_after: i64, now: i64) -> i64 {
    not_after.saturating_sub(now) / DAY
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_count_whole_days_toward_zero() {
        let now = 1_700_000_000;
        let at = |secs: i64| days_left(now + secs, now);
        assert_eq!(at(5 * DAY - 1), 4);
        assert_eq!(at(DAY), 1);
        assert_eq!(at(0), 0);
        assert_eq!(at(-1), 0);
        // 25 hours past notAfter: 1 day ago (it read 2).
        assert_eq!(at(-DAY - 3600), -1);
        assert_eq!(at(-2 * DAY), -2);
        assert_eq!(days_left(i64::MIN, i64::MAX), i64::MIN / DAY);
    }

    #[test]
    fn rdn_values_are_escaped_as_go_escapes_them() {
        let cases = [
            ("plain", "plain"),
            ("a,b+c", "a\\,b\\+c"),
            ("q\"<>;\\", "q\\\"\\<\\>\\;\\\\"),
            (" lead and trail ", "\\ lead and trail\\ "),
            ("#first #not", "\\#first #not"),
            ("caf\u{e9}", "caf\u{e9}"),
            ("", ""),
        ];
        for (value, want) in cases {
            assert_eq!(escape_rdn(value), want, "{value:?}");
        }
    }

    /// Go's order (C, ST, L, STREET, POSTALCODE, O, OU, CN, SERIALNUMBER) read backwards,
    /// whatever order the certificate has them in; one RDN per type; any other type
    /// first in the sequence, so last in the text, as `OID=#DER`.
    #[test]
    fn names_read_as_go_writes_them() {
        use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "leaf");
        dn.push(DnType::OrganizationalUnitName, "ops");
        dn.push(DnType::OrganizationName, "Probe, Inc.");
        dn.push(DnType::CountryName, "NL");
        dn.push(
            DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
            "example",
        );
        let mut p = CertificateParams::new(vec!["a.test".to_string()]).unwrap();
        p.distinguished_name = dn;
        p.serial_number = Some(vec![0x00, 0x0a, 0xff].into());
        let cert = p.self_signed(&KeyPair::generate().unwrap()).unwrap();
        let info = cert_info(cert.der(), SystemTime::now()).unwrap();
        assert_eq!(
            info.subject_rfc2253,
            "CN=leaf,OU=ops,O=Probe\\, Inc.,C=NL,0.9.2342.19200300.100.1.25=#13076578616d706c65"
        );
        assert_eq!(info.issuer_rfc2253, info.subject_rfc2253);
        // Go's `%x` of `SerialNumber.Bytes()`: no leading zero byte, lower case.
        assert_eq!(info.serial, "0aff");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let now = SystemTime::now();
        for der in [&b""[..], b"\x30", b"\x30\x82\xff\xff", b"hello"] {
            assert_eq!(cert_info(der, now), None);
            assert_eq!(outside_validity(der, now), None);
            assert!(!is_self_signed(der));
        }
    }
}
