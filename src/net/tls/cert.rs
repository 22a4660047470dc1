//! What a leaf certificate says: the fields of `tls.cert`, and how long it has left.

use std::time::{SystemTime, UNIX_EPOCH};

use x509_parser::prelude::*;

pub use crate::report::record::CertInfo;

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
    Some(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: rfc3339(cert.validity().not_before.timestamp()),
        not_after: rfc3339(not_after),
        san,
        sha256: hex(super::provider::sha256(der).as_ref()),
        days_left: days_left(not_after, unix(now)),
        expired: not_after < unix(now),
    })
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

/// `YYYY-MM-DDTHH:MM:SSZ`, for any time a certificate can carry (before 1970 too).
fn rfc3339(secs: i64) -> String {
    match ASN1Time::from_timestamp(secs) {
        Ok(t) => {
            let d = t.to_datetime();
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                d.year(),
                u8::from(d.month()),
                d.day(),
                d.hour(),
                d.minute(),
                d.second()
            )
        }
        Err(_) if secs < 0 => "0000-01-01T00:00:00Z".into(),
        Err(_) => "9999-12-31T23:59:59Z".into(),
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
    fn dates_are_utc_seconds_and_clamped() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_800), "2100-01-01T00:00:00Z");
        assert_eq!(rfc3339(-86_400), "1969-12-31T00:00:00Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MIN), "0000-01-01T00:00:00Z");
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
