//! TLS for QUIC (`--http3`): the run's verifier and provider with ALPN `h3`, and, for
//! each connection, what its handshake was shown.
//!
//! Over TCP a handshake is polled on the probe's thread, where `trust::watching` catches
//! the certificate the verifier saw. quinn runs the handshake in its connection driver,
//! on another task, so each QUIC connection gets a verifier of its own (`Capture`) that
//! keeps the leaf and the verdict for the probe to read.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use futures_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use futures_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, SignatureScheme};

use super::explain::{handshake_error, Peer};
use super::sniff::FirstBytes;
use super::trust::{watching, Presented};
use super::{cert, TlsInfo, TlsSettings};
use crate::report::error::ProbeError;

/// The ALPN name of HTTP/3.
pub const ALPN_H3: &[u8] = b"h3";

/// One QUIC connection's TLS: its client configuration and what its verifier saw.
pub struct QuicTls {
    pub config: Arc<ClientConfig>,
    seen: Arc<Mutex<Seen>>,
    verify: bool,
}

#[derive(Debug, Default)]
struct Seen {
    presented: Option<Presented>,
    rejected: Option<rustls::Error>,
}

impl TlsSettings {
    /// A client configuration for one QUIC connection: the run's (roots, `--cacert`,
    /// `-k`, provider), TLS 1.3 and ALPN `h3`, with a verifier that keeps what it saw.
    pub fn for_quic(&self) -> QuicTls {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut config = (*self.quic).clone();
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(Capture {
                inner: Arc::clone(&self.verifier),
                seen: Arc::clone(&seen),
            }));
        QuicTls {
            config: Arc::new(config),
            seen,
            verify: self.verify,
        }
    }

    /// The base of `for_quic`'s configurations, built once per run.
    pub(super) fn quic_base(config: &ClientConfig) -> Arc<ClientConfig> {
        let mut quic = config.clone();
        quic.alpn_protocols = vec![ALPN_H3.to_vec()];
        // QUIC carries no early data of ours, and rustls' QUIC client requires it off.
        quic.enable_early_data = false;
        Arc::new(quic)
    }
}

impl QuicTls {
    /// What a finished handshake established. QUIC v1 is TLS 1.3 only. `cipher` is
    /// the suite, when the caller could learn it.
    pub fn info(&self, alpn: Option<Vec<u8>>, cipher: Option<String>) -> TlsInfo {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        TlsInfo {
            version: "TLSv1.3".into(),
            cipher: cipher.unwrap_or_else(|| "-".into()),
            verified: self.verify,
            alpn: alpn.map(|p| String::from_utf8_lossy(&p).into_owned()),
            cert: leaf(&seen.presented),
        }
    }

    /// A handshake that failed on our side (the certificate, most often): the words
    /// TCP's handshake would have, and what was learnt. `None` when the verifier
    /// rejected nothing: the failure is the peer's or the transport's.
    pub fn rejected(&self, peer: &Peer<'_>) -> Option<(ProbeError, TlsInfo)> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let err = seen.rejected.clone()?;
        let error = handshake_error(
            &std::io::Error::new(std::io::ErrorKind::InvalidData, err),
            peer,
            &FirstBytes::default(),
        );
        let info = TlsInfo {
            version: "TLSv1.3".into(),
            cipher: "-".into(),
            verified: false,
            alpn: None,
            cert: leaf(&seen.presented),
        };
        Some((error, info))
    }

    /// A TLS alert the server closed the handshake with (QUIC's CRYPTO_ERROR codes carry
    /// the alert number), in the words TCP's handshake would use.
    pub fn alert(&self, alert: u8, peer: &Peer<'_>) -> ProbeError {
        let err = rustls::Error::AlertReceived(rustls::AlertDescription::from(alert));
        handshake_error(
            &std::io::Error::new(std::io::ErrorKind::InvalidData, err),
            peer,
            &FirstBytes::default(),
        )
    }
}

fn leaf(presented: &Option<Presented>) -> Option<cert::CertInfo> {
    let p = presented.as_ref()?;
    cert::cert_info(&p.der, SystemTime::now())
}

/// The run's verifier, for one connection: it keeps the leaf and any rejection.
#[derive(Debug)]
struct Capture {
    inner: Arc<dyn ServerCertVerifier>,
    seen: Arc<Mutex<Seen>>,
}

impl ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let (verdict, presented) = watching(|| {
            self.inner.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            )
        });
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.presented = presented;
        seen.rejected = verdict.as_ref().err().cloned();
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
