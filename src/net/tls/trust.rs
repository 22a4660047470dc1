//! Whom to trust: the built-in roots, `--cacert` (CAs and the servers' own certificates,
//! as curl does), or anyone (`-k`); and the leaf each handshake presented, kept even when
//! it is rejected.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use futures_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use futures_rustls::rustls::client::{verify_server_name, WebPkiServerVerifier};
use futures_rustls::rustls::crypto::{self, CryptoProvider};
use futures_rustls::rustls::pki_types::pem::{self, PemObject};
use futures_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use futures_rustls::rustls::server::ParsedCertificate;
use futures_rustls::rustls::{
    self, CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::cert::{common_name_only, is_self_signed, outside_validity};

/// The certificates of a `--cacert` file, or why it cannot be used.
pub fn read_cacert(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    if pem.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty".into());
    }
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem) {
        certs.push(cert.map_err(|e| match e {
            pem::Error::MissingSectionEnd { .. } => {
                "a PEM section has no END line (is the file cut short?)".to_string()
            }
            pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".into(),
            pem::Error::Base64Decode(_) => "a PEM section is not valid base64".into(),
            pem::Error::SectionTooLarge => "a PEM section is too large".into(),
            _ => "it cannot be read as PEM".into(),
        })?);
    }
    if certs.is_empty() {
        return Err(if memchr_begin(pem) {
            "it holds no certificate (no BEGIN CERTIFICATE section)".into()
        } else {
            "it is not a PEM file (no -----BEGIN CERTIFICATE----- line)".into()
        });
    }
    for (i, cert) in certs.iter().enumerate() {
        if ParsedCertificate::try_from(cert).is_err() {
            return Err(format!(
                "certificate {} of {} is not a valid X.509 certificate",
                i + 1,
                certs.len()
            ));
        }
    }
    Ok(certs)
}

fn memchr_begin(pem: &[u8]) -> bool {
    pem.windows(11).any(|w| w == b"-----BEGIN ")
}

/// The verifier for a run: `--cacert` certificates are roots, and a presented leaf
/// identical to one of them is trusted as is (its name and dates still checked).
pub fn verifier(
    provider: Arc<CryptoProvider>,
    cacert: Vec<CertificateDer<'static>>,
) -> Result<Arc<dyn ServerCertVerifier>, String> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in &cacert {
        // A leaf may not make a valid anchor; it is still trusted by identity below.
        let _ = roots.add(cert.clone());
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(Verify {
        webpki,
        pinned: cacert,
    }))
}

/// The `-k` verifier.
pub fn accept_any(provider: Arc<CryptoProvider>) -> Arc<dyn ServerCertVerifier> {
    Arc::new(AcceptAny(provider))
}

#[derive(Debug)]
struct Verify {
    webpki: Arc<WebPkiServerVerifier>,
    /// `--cacert` as given: a leaf identical to one of these is trusted.
    pinned: Vec<CertificateDer<'static>>,
}

#[derive(Debug)]
struct SelfSigned;

impl fmt::Display for SelfSigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("is self-signed (not issued by a trusted authority; trust it with --cacert)")
    }
}

impl std::error::Error for SelfSigned {}

impl Verify {
    fn pinned_leaf(
        &self,
        end_entity: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        if let Err(mismatch) = verify_server_name(&parsed, server_name) {
            // What `openssl req -x509 -subj /CN=NAME` makes has no SAN; curl (OpenSSL)
            // then matches the common name, and so does a certificate trusted by hand.
            let by_cn = match server_name {
                ServerName::DnsName(name) => common_name_only(end_entity.as_ref())
                    .is_some_and(|cn| cn.eq_ignore_ascii_case(name.as_ref())),
                _ => false,
            };
            if !by_cn {
                return Err(mismatch);
            }
        }
        let now = UNIX_EPOCH + Duration::from_secs(now.as_secs());
        match outside_validity(end_entity.as_ref(), now) {
            Some(true) => Err(CertificateError::Expired.into()),
            Some(false) => Err(CertificateError::NotValidYet.into()),
            None => Ok(ServerCertVerified::assertion()),
        }
    }
}

impl ServerCertVerifier for Verify {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            self.pinned_leaf(end_entity, server_name, now)
        } else {
            self.webpki
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
        };
        presented(end_entity, intermediates, verdict.is_ok());
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `-k`: accepts any certificate, but still checks handshake signatures so the session
/// is real, and the certificate is still recorded.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        presented(end_entity, intermediates, false);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
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
        crypto::verify_tls13_signature(
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

/// The certificates a server presented (leaf first), and whether they verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub der: Vec<u8>,
    /// The certificates sent after the leaf, in the order sent.
    pub intermediates: Vec<Vec<u8>>,
    pub verified: bool,
}

// The verifier is shared by every connection of the run, and rustls calls it from inside
// the poll of one handshake. A handshake opens this slot around each of its polls (probes
// never leave their thread, and a poll runs to its end before another starts), so what
// the verifier saw lands with the handshake it belongs to.
thread_local! {
    static SLOT: RefCell<Option<Option<Presented>>> = const { RefCell::new(None) };
}

fn presented(der: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>], verified: bool) {
    SLOT.with(|slot| {
        if let Some(seen) = slot.borrow_mut().as_mut() {
            *seen = Some(Presented {
                der: der.to_vec(),
                intermediates: intermediates.iter().map(|c| c.to_vec()).collect(),
                verified,
            });
        }
    });
}

/// Runs `poll` with the slot open; returns its result and what the verifier saw, if any.
pub fn watching<T>(poll: impl FnOnce() -> T) -> (T, Option<Presented>) {
    SLOT.with(|slot| *slot.borrow_mut() = Some(None));
    let out = poll();
    let seen = SLOT.with(|slot| slot.borrow_mut().take()).flatten();
    (out, seen)
}
