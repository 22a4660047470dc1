//! TLS for QUIC (`--http3`): the run's verifier and provider with ALPN `h3`, and, for
//! each connection, what its handshake was shown.
//!
//! Over TCP a handshake is polled on the probe's thread, where `trust::watching` catches
//! the certificate the verifier saw. quinn runs the handshake in its connection driver,
//! on another task, so each QUIC connection gets a verifier of its own (`Capture`) that
//! keeps the leaf and the verdict for the probe to read.
//!
//! quinn does not tell which cipher suite a handshake chose either. The QUIC provider's
//! suites are the run's, each with its QUIC packet protection wrapped (`Tagged`) to note
//! its name when keys are made; the caller opens a note around the session's calls
//! (`noting`), as `trust::watching` does for the verifier. The last keys made are the
//! 1-RTT ones, of the negotiated suite (the Initial keys, always AES-128-GCM, come first).

use std::cell::Cell;

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use futures_rustls::rustls::crypto::{CipherSuiteCommon, CryptoProvider};
use futures_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use futures_rustls::rustls::quic::{Algorithm, HeaderProtectionKey, PacketKey};
use futures_rustls::rustls::{
    self, CipherSuite, ClientConfig, DigitallySignedStruct, SignatureScheme, SupportedCipherSuite,
    Tls13CipherSuite,
};

use super::cert;
use super::explain::{handshake_error, Peer};
use super::sniff::FirstBytes;
use super::trust::{watching, Presented};
use crate::report::error::ProbeError;
use crate::report::record::{ChainCert, TlsInfo, TlsVersion};

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

/// A client configuration for one QUIC connection, from the run's `base`: the run's
/// roots, `--cacert`, `-k` (`verify` off) and provider, with a verifier that keeps what
/// it saw.
pub(super) fn start(
    base: &ClientConfig,
    verifier: &Arc<dyn ServerCertVerifier>,
    verify: bool,
) -> QuicTls {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut config = base.clone();
    config
        .dangerous()
        .set_certificate_verifier(Arc::new(Capture {
            inner: Arc::clone(verifier),
            seen: Arc::clone(&seen),
        }));
    QuicTls {
        config: Arc::new(config),
        seen,
        verify,
    }
}

/// The base of `start`'s configurations, built once per run: TLS 1.3 (QUIC v1 has no
/// other), ALPN `h3`, the run's verifier and provider with its suites `Tagged`.
pub(super) fn base(
    provider: &CryptoProvider,
    verifier: Arc<dyn ServerCertVerifier>,
) -> Result<Arc<ClientConfig>, String> {
    let mut provider = provider.clone();
    provider.cipher_suites = provider
        .cipher_suites
        .iter()
        .filter_map(|s| match s {
            SupportedCipherSuite::Tls13(s) => Some(SupportedCipherSuite::Tls13(tagged(s))),
            SupportedCipherSuite::Tls12(_) => None,
        })
        .collect();
    let mut quic = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    quic.alpn_protocols = vec![ALPN_H3.to_vec()];
    // As over TCP: every probe sees the certificate the server presents now.
    quic.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(quic))
}

impl QuicTls {
    /// What a finished handshake established. QUIC v1 is TLS 1.3 only. `cipher` is
    /// the suite, when the caller could learn it.
    pub fn info(&self, alpn: Option<Vec<u8>>, cipher: Option<String>) -> TlsInfo {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        TlsInfo {
            version: Some(TlsVersion::Tls13),
            cipher,
            verified: self.verify,
            alpn: alpn.map(|p| String::from_utf8_lossy(&p).into_owned()),
            cert: leaf(&seen.presented),
            chain: chain(&seen.presented),
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
            version: Some(TlsVersion::Tls13),
            cipher: None,
            verified: false,
            alpn: None,
            cert: leaf(&seen.presented),
            chain: chain(&seen.presented),
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

/// A suite whose QUIC packet protection notes the suite's name; made once per suite for
/// the process (rustls takes suites as `'static`).
fn tagged(suite: &'static Tls13CipherSuite) -> &'static Tls13CipherSuite {
    static MADE: Mutex<Vec<(CipherSuite, &'static Tls13CipherSuite)>> = Mutex::new(Vec::new());
    let name = suite.common.suite;
    let mut made = MADE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, t)) = made.iter().find(|(n, _)| *n == name) {
        return t;
    }
    let quic = suite.quic.map(|inner| {
        let t: &'static dyn Algorithm = Box::leak(Box::new(Tagged { inner, name }));
        t
    });
    let t: &'static Tls13CipherSuite = Box::leak(Box::new(Tls13CipherSuite {
        common: CipherSuiteCommon {
            suite: name,
            hash_provider: suite.common.hash_provider,
            confidentiality_limit: suite.common.confidentiality_limit,
        },
        hkdf_provider: suite.hkdf_provider,
        aead_alg: suite.aead_alg,
        quic,
    }));
    made.push((name, t));
    t
}

/// A suite's QUIC packet protection, noting the suite when keys are made.
struct Tagged {
    inner: &'static dyn Algorithm,
    name: CipherSuite,
}

impl Algorithm for Tagged {
    fn packet_key(
        &self,
        key: rustls::crypto::cipher::AeadKey,
        iv: rustls::crypto::cipher::Iv,
    ) -> Box<dyn PacketKey> {
        NOTE.with(|n| {
            if n.get().is_some() {
                n.set(Some(Some(self.name)));
            }
        });
        self.inner.packet_key(key, iv)
    }

    fn header_protection_key(
        &self,
        key: rustls::crypto::cipher::AeadKey,
    ) -> Box<dyn HeaderProtectionKey> {
        self.inner.header_protection_key(key)
    }

    fn aead_key_len(&self) -> usize {
        self.inner.aead_key_len()
    }

    fn fips(&self) -> bool {
        self.inner.fips()
    }
}

thread_local! {
    /// `Some` while a note is open; then `Some(suite)` once keys were made.
    static NOTE: Cell<Option<Option<CipherSuite>>> = const { Cell::new(None) };
}

/// Runs `f` with a note open: its result, and the name of the suite whose packet keys
/// it made last, if it made any, by its IANA name (`TLS_AES_128_GCM_SHA256`).
pub fn noting<T>(f: impl FnOnce() -> T) -> (T, Option<String>) {
    NOTE.with(|n| n.set(Some(None)));
    let out = f();
    let made = NOTE.with(|n| n.take()).flatten();
    (out, made.map(|s| super::sniff::cipher_name(u16::from(s))))
}

fn leaf(presented: &Option<Presented>) -> Option<cert::CertInfo> {
    let p = presented.as_ref()?;
    cert::cert_info(&p.der, SystemTime::now())
}

/// Every certificate the server sent, leaf first, as over TCP.
fn chain(presented: &Option<Presented>) -> Vec<ChainCert> {
    presented
        .iter()
        .flat_map(|p| std::iter::once(&p.der).chain(&p.intermediates))
        .filter_map(|der| cert::chain_cert(der))
        .collect()
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
