//! TLS for https targets: client settings, the handshake, and what it tells us.
//!
//! rustls with the ring provider, Mozilla roots from webpki-roots (plus `--cacert`).
//! Runtime-agnostic: futures-rustls speaks futures-io, as async-std's sockets do.

use std::fmt;
use std::sync::Arc;

use futures_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use futures_rustls::rustls::client::WebPkiServerVerifier;
use futures_rustls::rustls::crypto::{ring as provider, CryptoProvider};
use futures_rustls::rustls::pki_types::{
    CertificateDer, IpAddr as PkiIpAddr, ServerName, UnixTime,
};
use futures_rustls::rustls::{
    self, AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, ProtocolVersion,
    RootCertStore, SignatureScheme,
};
use futures_rustls::TlsConnector;

use crate::proto::target::Host;
use crate::report::error::{ErrorKind, ProbeError};

/// What the handshake established, for the `tls` JSON object and the text `tls >` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
    pub verified: bool,
    pub cert: Option<CertInfo>,
}

/// The leaf certificate's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    pub san: Vec<String>,
    pub sha256: String,
}

impl TlsInfo {
    /// `TLSv1.3 TLS13_AES_128_GCM_SHA256 CN=example.com (verified)`
    pub fn summary(&self) -> String {
        let subject = self.cert.as_ref().map_or("-", |c| c.subject.as_str());
        let verified = if self.verified {
            "verified"
        } else {
            "unverified"
        };
        format!("{} {} {subject} ({verified})", self.version, self.cipher)
    }
}

/// Client settings shared by every https probe of a run.
#[derive(Clone)]
pub struct TlsSettings {
    connector: TlsConnector,
    verify: bool,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("verify", &self.verify)
            .finish()
    }
}

impl TlsSettings {
    /// `extra_roots_pem`: the contents of `--cacert`; `insecure`: `-k`.
    pub fn new(extra_roots_pem: Option<&[u8]>, insecure: bool) -> Result<TlsSettings, String> {
        // AES-128-GCM with SHA-256 first, as browsers order them: the handshake's key
        // schedule then hashes with SHA-256 instead of SHA-384, a measurable share of
        // a probe's CPU (see bench/https). Every suite stays offered.
        let mut provider = provider::default_provider();
        provider.cipher_suites.sort_by_key(|s| match s.suite() {
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
            rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => 1,
            _ => 2,
        });
        let provider = Arc::new(provider);
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let verifier: Arc<dyn ServerCertVerifier> = if insecure {
            Arc::new(AcceptAny(provider))
        } else {
            let mut roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            if let Some(pem) = extra_roots_pem {
                let mut added = 0;
                for cert in rustls_pemfile::certs(&mut &pem[..]) {
                    let cert = cert.map_err(|e| format!("not a PEM file: {e}"))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("a certificate cannot be used as a root: {e}"))?;
                    added += 1;
                }
                if added == 0 {
                    return Err("no PEM certificate found".into());
                }
            }
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| e.to_string())?;
            Arc::new(Explain(inner))
        };
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(TlsSettings {
            connector: TlsConnector::from(Arc::new(config)),
            verify: !insecure,
        })
    }

    /// Runs the handshake over `io`. SNI carries `host` when it is a name.
    pub async fn handshake<IO>(
        &self,
        host: &Host,
        io: IO,
    ) -> Result<(futures_rustls::client::TlsStream<IO>, TlsInfo), ProbeError>
    where
        IO: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
    {
        let name = match host {
            Host::Ip(ip) => ServerName::IpAddress(PkiIpAddr::from(*ip)),
            Host::Name(name) => {
                let name = name.strip_suffix('.').unwrap_or(name);
                ServerName::try_from(name.to_string()).map_err(|_| {
                    ProbeError::new(
                        ErrorKind::Tls,
                        format!("'{name}' cannot be used as a TLS server name"),
                    )
                })?
            }
        };
        let stream = self
            .connector
            .connect(name, io)
            .await
            .map_err(|e| handshake_error(&e))?;
        let (_, conn) = stream.get_ref();
        let info = TlsInfo {
            version: match conn.protocol_version() {
                Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".into(),
                Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
                Some(v) => format!("{v:?}"),
                None => "-".into(),
            },
            cipher: conn
                .negotiated_cipher_suite()
                .map_or_else(|| "-".into(), |s| format!("{:?}", s.suite())),
            verified: self.verify,
            cert: conn
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| cert_info(leaf.as_ref())),
        };
        Ok((stream, info))
    }
}

/// Parses a DER certificate's fields; `None` if it does not parse.
pub fn cert_info(der: &[u8]) -> Option<CertInfo> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let time = |t: ASN1Time| {
        let secs = t.timestamp();
        let when = if secs >= 0 {
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64)
        } else {
            std::time::UNIX_EPOCH - std::time::Duration::from_secs(secs.unsigned_abs())
        };
        humantime::format_rfc3339_seconds(when).to_string()
    };
    let mut san = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => san.push(d.to_string()),
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => san.push(
                        std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).ok()?).to_string(),
                    ),
                    16 => san.push(
                        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).ok()?).to_string(),
                    ),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    Some(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: time(cert.validity().not_before),
        not_after: time(cert.validity().not_after),
        san,
        sha256: digest.as_ref().iter().map(|b| format!("{b:02x}")).collect(),
    })
}

/// Turns a failed handshake into a `tls` error that says which failure it was.
fn handshake_error(e: &std::io::Error) -> ProbeError {
    let tls = |m: String| ProbeError::new(ErrorKind::Tls, m);
    let Some(err) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof => tls(
                "handshake failure: the peer closed the connection during the TLS handshake".into(),
            ),
            _ => {
                let mut p = ProbeError::from_io(e, "doing the TLS handshake with", "the peer");
                if p.kind == ErrorKind::Io {
                    p.kind = ErrorKind::Tls;
                }
                p
            }
        };
    };
    tls(match err {
        rustls::Error::InvalidCertificate(cert) => certificate_problem(cert),
        rustls::Error::AlertReceived(AlertDescription::ProtocolVersion) => {
            "protocol version: the peer supports no TLS version we offer (1.2, 1.3)".into()
        }
        rustls::Error::AlertReceived(AlertDescription::HandshakeFailure) => {
            "handshake failure: the peer rejected the handshake (no shared cipher suite or parameters)".into()
        }
        rustls::Error::AlertReceived(alert) => format!("handshake failure: the peer sent alert {alert:?}"),
        rustls::Error::InvalidMessage(_) => {
            "handshake failure: the peer did not answer in TLS (plain HTTP on a TLS port?)".into()
        }
        rustls::Error::PeerIncompatible(why) => format!("protocol version or parameters: the peer is incompatible ({why:?})"),
        other => format!("handshake failure: {other}"),
    })
}

fn certificate_problem(err: &CertificateError) -> String {
    match err {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate not yet valid".into()
        }
        CertificateError::UnknownIssuer => "certificate signed by an unknown issuer".into(),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "certificate name mismatch: it is not valid for this host".into()
        }
        CertificateError::BadSignature => "certificate has a bad signature".into(),
        CertificateError::Revoked => "certificate revoked".into(),
        CertificateError::Other(other) if other.0.is::<SelfSigned>() => {
            format!("certificate {other}")
        }
        CertificateError::Other(other) => format!("certificate rejected: {other}"),
        other => format!("certificate rejected: {other}"),
    }
}

/// Verifies as webpki does, but names a self-signed leaf as such instead of "unknown issuer".
#[derive(Debug)]
struct Explain(Arc<WebPkiServerVerifier>);

#[derive(Debug)]
struct SelfSigned;

impl fmt::Display for SelfSigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("is self-signed (not issued by a trusted authority)")
    }
}

impl std::error::Error for SelfSigned {}

impl ServerCertVerifier for Explain {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|err| match err {
                // webpki says "unknown issuer" (or, for a self-signed CA certificate,
                // "CA used as end entity"); a self-signed leaf deserves its own words.
                rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer | CertificateError::Other(_),
                ) if is_self_signed(end_entity) => rustls::Error::InvalidCertificate(
                    CertificateError::Other(rustls::OtherError(Arc::new(SelfSigned))),
                ),
                other => other,
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

fn is_self_signed(der: &[u8]) -> bool {
    use x509_parser::prelude::*;
    X509Certificate::from_der(der)
        .map(|(_, c)| c.subject().as_raw() == c.issuer().as_raw())
        .unwrap_or(false)
}

/// `-k`: accepts any certificate, but still checks handshake signatures so the session
/// is real, and the certificate is still recorded.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
