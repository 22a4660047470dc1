//! Failed handshakes in words: every TLS alert, certificate problem and protocol error
//! becomes a `tls` error whose message a person can act on, never a Rust enum name.

use std::fmt;

use futures_rustls::rustls::{self, CertificateError};

use super::sniff::{FirstBytes, ServerHello};
use crate::proto::target::Host;
use crate::report::error::{ErrorKind, ProbeError};
use crate::report::record::TlsVersion;
use crate::report::sanitize::quote_peer;

/// Who the handshake was with, for the messages.
pub struct Peer<'a> {
    /// The name (or address) asked for and checked against the certificate.
    pub host: &'a Host,
    /// The address connected to, `ip:port`.
    pub addr: &'a dyn fmt::Display,
}

/// A TLS error met after the handshake (a TLS 1.3 server checks the client's
/// certificate then, and says so with an alert): `None` for plain I/O errors.
pub fn after_handshake(e: &std::io::Error) -> Option<ProbeError> {
    let err = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    let message = match err {
        rustls::Error::AlertReceived(alert) => alert_received(u8::from(*alert), None),
        rustls::Error::DecryptError => "a record from the server could not be decrypted".into(),
        other => format!("the TLS session failed: {}", words(&format!("{other:?}"))),
    };
    Some(ProbeError::new(ErrorKind::Tls, message))
}

/// Turns a failed handshake into a `tls` error (or a `reset`, when the peer reset it).
pub fn handshake_error(e: &std::io::Error, peer: &Peer<'_>, first: &FirstBytes) -> ProbeError {
    let tls = |m: String| ProbeError::new(ErrorKind::Tls, m);
    let Some(err) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof => tls(match first.bytes() {
                [] => format!(
                    "handshake failure: {} closed the connection without answering the TLS \
                     ClientHello",
                    peer.addr
                ),
                _ => format!(
                    "handshake failure: {} closed the connection during the TLS handshake",
                    peer.addr
                ),
            }),
            _ => {
                let mut p = ProbeError::from_io(e, "doing the TLS handshake with", peer.addr);
                if p.kind == ErrorKind::Io {
                    p.kind = ErrorKind::Tls;
                }
                p
            }
        };
    };
    tls(match err {
        rustls::Error::InvalidCertificate(cert) => certificate_problem(cert, peer.host),
        rustls::Error::AlertReceived(alert) => alert_received(u8::from(*alert), Some(peer.host)),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. }
            if first.server_hello().is_none() =>
        {
            not_tls(first.bytes(), peer)
        }
        rustls::Error::NoCertificatesPresented => {
            "handshake failure: the server presented no certificate".into()
        }
        rustls::Error::PeerIncompatible(why) => format!(
            "handshake failure: the server is incompatible: {}",
            words(&format!("{why:?}"))
        ),
        rustls::Error::PeerMisbehaved(why) => format!(
            "handshake failure: the server broke the TLS protocol: {}",
            words(&format!("{why:?}"))
        ),
        rustls::Error::InvalidMessage(why) => format!(
            "handshake failure: the server sent a malformed TLS message: {}",
            words(&format!("{why:?}"))
        ),
        rustls::Error::DecryptError => {
            "handshake failure: a record from the server could not be decrypted".into()
        }
        rustls::Error::PeerSentOversizedRecord => {
            "handshake failure: the server sent a TLS record larger than allowed".into()
        }
        other => format!("handshake failure: {other}"),
    })
}

/// A peer that did not answer the ClientHello in TLS. The usual case is an http:// port
/// given as https://, which answers with an HTTP error.
fn not_tls(bytes: &[u8], peer: &Peer<'_>) -> String {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let quoted = quote_peer(line, 80);
    if bytes.starts_with(b"HTTP/") {
        format!(
            "handshake failure: {} answered in plain HTTP, not TLS ({quoted}): is it \
             an http:// port?",
            peer.addr
        )
    } else {
        format!(
            "handshake failure: {} did not answer in TLS; it sent {quoted}",
            peer.addr
        )
    }
}

/// A fatal alert from the server, by its number (RFC 8446 section 6, RFC 5246 7.2).
fn alert_received(code: u8, host: Option<&Host>) -> String {
    let what = match code {
        40 => {
            return "handshake failure: the server refused the handshake (no cipher suite, \
                    key exchange group or signature scheme in common, or a client certificate \
                    it wants)"
                .into()
        }
        70 => {
            return "protocol version not supported: the server accepts no TLS version we \
                    offer (1.2, 1.3)"
                .into()
        }
        116 => return "the server requires a client certificate".into(),
        112 => {
            return match host {
                Some(Host::Name(name)) => format!("the server does not know the name {name}"),
                Some(Host::Ip(ip)) => format!(
                    "the server does not know the address {ip} (no name is sent for an IP \
                     address)"
                ),
                None => "the server does not know the name it was asked for".into(),
            }
        }
        0 => "close notify (it closed the connection)",
        10 => "unexpected message",
        20 => "bad record MAC",
        21 => "decryption failed",
        22 => "record overflow",
        30 => "decompression failure",
        41 => "no certificate",
        42 => "bad certificate",
        43 => "unsupported certificate",
        44 => "certificate revoked",
        45 => "certificate expired",
        46 => "certificate unknown",
        47 => "illegal parameter",
        48 => "unknown CA",
        49 => "access denied",
        50 => "decode error",
        51 => "decrypt error",
        60 => "export restriction",
        71 => "insufficient security (it wants stronger ciphers)",
        80 => "internal error",
        86 => "inappropriate fallback",
        90 => "user canceled",
        100 => "no renegotiation",
        109 => "missing extension",
        110 => "unsupported extension",
        111 => "certificate unobtainable",
        113 => "bad certificate status response",
        114 => "bad certificate hash value",
        115 => "unknown PSK identity",
        120 => "no application protocol",
        121 => "encrypted client hello required",
        _ => "of an unknown kind",
    };
    format!("handshake failure: the server sent the TLS alert {what} ({code})")
}

/// Why the presented certificate was not accepted.
fn certificate_problem(err: &CertificateError, host: &Host) -> String {
    match err {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate not yet valid".into()
        }
        CertificateError::UnknownIssuer => {
            "certificate signed by an unknown issuer (not a built-in root, nor in --cacert)".into()
        }
        CertificateError::NotValidForNameContext { presented, .. } if !presented.is_empty() => {
            let names: Vec<&str> = presented.iter().map(|s| presented_name(s)).collect();
            format!(
                "certificate name mismatch: it is not valid for {host} (it names {})",
                names.join(", ")
            )
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("certificate name mismatch: it is not valid for {host}")
        }
        CertificateError::BadEncoding => "the certificate cannot be parsed (bad encoding)".into(),
        CertificateError::BadSignature => "certificate has a bad signature".into(),
        CertificateError::Revoked => "certificate revoked".into(),
        CertificateError::UnsupportedSignatureAlgorithmContext { .. } => {
            "certificate signed with an unsupported algorithm".into()
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "certificate is not for TLS servers (extended key usage)".into()
        }
        CertificateError::Other(other) => format!("certificate {other}"),
        other => format!(
            "certificate rejected: {}",
            words(&format!("{other:?}").replace(['{', '}', '(', ')', ','], " "))
        ),
    }
}

/// A name as rustls presents it (`DnsName("good.test")`, `IpAddress(127.0.0.1)`, or a
/// quoted name), as a person writes it: `good.test`, `127.0.0.1`.
fn presented_name(text: &str) -> &str {
    let inner = match (text.find('('), text.strip_suffix(')')) {
        (Some(open), Some(body))
            if open > 0 && text[..open].chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            &body[open + 1..]
        }
        _ => text,
    };
    inner.trim_matches('"')
}

/// `NoCipherSuitesInCommon` → `no cipher suites in common`: enum names read as words.
fn words(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let chars: Vec<char> = name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .collect();
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        let boundary = match prev {
            None => false,
            Some(p) if c.is_uppercase() => {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(char::is_lowercase))
            }
            Some(p) => c.is_ascii_digit() && p.is_alphabetic(),
        };
        if boundary && !out.ends_with(' ') {
            out.push(' ');
        }
        out.push(c);
    }
    // Keep acronyms (TLS, ECH, MAC) as written, lower the rest.
    out.split(' ')
        .map(|w| {
            if w.len() > 1 && w.chars().all(|c| c.is_uppercase() || c.is_ascii_digit()) {
                w.to_string()
            } else {
                w.to_lowercase()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the server had said before the failure, for the record's `tls` object.
pub fn negotiated(hello: Option<ServerHello>) -> (Option<TlsVersion>, Option<String>) {
    match hello {
        Some(h) => (Some(h.version()), Some(h.suite_name())),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_read_as_written() {
        assert_eq!(presented_name("DnsName(\"good.test\")"), "good.test");
        assert_eq!(presented_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(presented_name("\"probe.test\""), "probe.test");
        assert_eq!(presented_name("plain.test"), "plain.test");
    }

    #[test]
    fn enum_names_become_words() {
        assert_eq!(
            words("NoCipherSuitesInCommon"),
            "no cipher suites in common"
        );
        assert_eq!(
            words("ServerDoesNotSupportTls12Or13"),
            "server does not support tls 12 or 13"
        );
        assert_eq!(
            words("IllegalTlsInnerPlaintext"),
            "illegal tls inner plaintext"
        );
        assert_eq!(words("MissingKeyShare"), "missing key share");
        assert_eq!(words("UnsupportedECHVersion"), "unsupported ECH version");
    }

    #[test]
    fn every_alert_is_named_in_words() {
        let host = &Host::Name("probe.test".into());
        for code in 0..=255u8 {
            let m = alert_received(code, Some(host));
            let camel = m.split(' ').any(|w| {
                let lower = w.find(char::is_lowercase);
                lower.is_some_and(|i| w[i..].contains(char::is_uppercase))
            });
            assert!(!camel, "{code}: {m}");
        }
        assert_eq!(
            alert_received(116, Some(host)),
            "the server requires a client certificate"
        );
        assert_eq!(
            alert_received(112, Some(host)),
            "the server does not know the name probe.test"
        );
        assert!(alert_received(70, Some(host)).starts_with("protocol version not supported"));
        assert!(alert_received(40, Some(host)).starts_with("handshake failure"));
    }
}
