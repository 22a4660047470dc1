//! TLS for https targets: client settings, the handshake, and what it tells us.
//!
//! rustls with the ring provider (`provider` below), Mozilla roots from webpki-roots (plus `--cacert`).
//! Runtime-agnostic: futures-rustls speaks futures-io, as async-std's sockets do.
//! `trust` decides whom to believe, `cert` reads certificates, `sniff` keeps the server's
//! first bytes, `explain` puts failures into words.

mod cert;
mod explain;
mod provider;
mod quic;
mod sniff;
mod trust;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use futures_rustls::rustls::pki_types::{IpAddr as PkiIpAddr, ServerName};
use futures_rustls::rustls::{self, ClientConfig};
use futures_rustls::TlsConnector;

pub use cert::CertInfo;
pub use explain::{after_handshake, Peer};
pub use quic::{noting, QuicTls, ALPN_H3};
pub use sniff::Sniff;

use crate::proto::target::Host;
use crate::report::error::{ErrorKind, ProbeError};

// What a handshake establishes is report data: it lives with the record.
pub use crate::report::record::TlsInfo;
use crate::report::record::{ChainCert as CertChainEntry, TlsVersion};

/// Client settings shared by every https probe of a run.
#[derive(Clone)]
pub struct TlsSettings {
    connector: TlsConnector,
    verify: bool,
    /// The verifier and the configuration QUIC connections start from (`quic`).
    verifier: Arc<dyn rustls::client::danger::ServerCertVerifier>,
    quic: Arc<ClientConfig>,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("verify", &self.verify)
            .finish()
    }
}

impl TlsSettings {
    /// `cacert`: the contents of `--cacert`; `insecure`: `-k`; `h2`: `--http2` (ALPN
    /// offers `h2` before `http/1.1`). The one client configuration of the run
    /// (verifier, roots, provider, ALPN), shared by every probe.
    pub fn new(cacert: Option<&[u8]>, insecure: bool, h2: bool) -> Result<TlsSettings, String> {
        let cacert = cacert.map(trust::read_cacert).transpose()?;
        let provider = Arc::new(provider::tuned());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let verifier = if insecure {
            trust::accept_any(Arc::clone(&provider))
        } else {
            trust::verifier(Arc::clone(&provider), cacert.unwrap_or_default())?
        };
        let mut config = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(&verifier))
            .with_no_client_auth();
        let quic = quic::base(&provider, Arc::clone(&verifier))?;
        // Each target is probed once: tickets the servers send would only be stored,
        // behind a lock every probe thread takes, and never used (bench/https repeats
        // targets, where resumption would flatter the numbers).
        // Resumption would also skip the certificate: each probe is to see what the
        // server presents now (a rotated certificate, one backend of several).
        config.resumption = rustls::client::Resumption::disabled();
        // As curl: the protocols the probe can speak, so the record can say which the
        // server chose.
        config.alpn_protocols = if h2 {
            vec![ALPN_H2.to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Ok(TlsSettings {
            quic,
            connector: TlsConnector::from(Arc::new(config)),
            verify: !insecure,
            verifier,
        })
    }

    /// A client configuration for one QUIC connection (`--http3`): the run's roots,
    /// `--cacert`, `-k` and provider, TLS 1.3 and ALPN `h3`, with a verifier that keeps
    /// what it saw.
    pub fn for_quic(&self) -> QuicTls {
        quic::start(&self.quic, &self.verifier, self.verify)
    }

    /// Runs the handshake over `io`. SNI carries the host when it is a name. On failure
    /// the error comes with what was learnt: the negotiated version and suite, and the
    /// certificate the server presented, verified or not.
    ///
    /// `request`, when given, is queued before the handshake and goes out with the
    /// client's Finished, in the same write: one syscall and one segment fewer, and no
    /// small write left for Nagle to hold back. rustls sends nothing of it before the
    /// handshake (the certificate check included) has succeeded.
    pub async fn handshake<IO>(
        &self,
        peer: &Peer<'_>,
        io: IO,
        request: Option<&[u8]>,
    ) -> Result<(futures_rustls::client::TlsStream<Sniff<IO>>, TlsInfo), Failed>
    where
        IO: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
    {
        let name = match peer.host {
            Host::Ip(ip) => ServerName::IpAddress(PkiIpAddr::from(*ip)),
            Host::Name(name) => {
                let name = name.strip_suffix('.').unwrap_or(name);
                ServerName::try_from(name.to_string()).map_err(|_| Failed {
                    error: ProbeError::new(
                        ErrorKind::Tls,
                        format!("'{name}' cannot be used as a TLS server name"),
                    ),
                    info: None,
                })?
            }
        };
        let mut connect = self
            .connector
            .connect_with(name, Sniff::new(io), |conn| {
                if let Some(request) = request {
                    // Within the buffer limit (EARLY_REQUEST_MAX), so it is taken whole.
                    let _ = std::io::Write::write_all(&mut conn.writer(), request);
                }
            })
            .into_fallible();
        let mut presented = None;
        let done = futures_lite::future::poll_fn(|cx| {
            let (poll, seen) = trust::watching(|| Pin::new(&mut connect).poll(cx));
            if seen.is_some() {
                presented = seen;
            }
            poll
        })
        .await;
        let now = SystemTime::now();
        let leaf =
            |p: &Option<trust::Presented>| p.as_ref().and_then(|p| cert::cert_info(&p.der, now));
        // Every certificate the server sent, leaf first, as the verifier saw them.
        let chain = |p: &Option<trust::Presented>| -> Vec<CertChainEntry> {
            p.iter()
                .flat_map(|p| std::iter::once(&p.der).chain(&p.intermediates))
                .filter_map(|der| cert::chain_cert(der))
                .collect()
        };
        match done {
            Ok(mut stream) => {
                drop(stream.get_mut().0.finish());
                let (_, conn) = stream.get_ref();
                let (cert, chain) = match &presented {
                    Some(_) => (leaf(&presented), chain(&presented)),
                    None => {
                        let sent = conn.peer_certificates().unwrap_or_default();
                        (
                            sent.first()
                                .and_then(|der| cert::cert_info(der.as_ref(), now)),
                            sent.iter()
                                .filter_map(|der| cert::chain_cert(der.as_ref()))
                                .collect(),
                        )
                    }
                };
                let info = TlsInfo {
                    version: conn
                        .protocol_version()
                        .map(|v| TlsVersion::from_wire(u16::from(v))),
                    cipher: conn
                        .negotiated_cipher_suite()
                        .map(|s| sniff::cipher_name(u16::from(s.suite()))),
                    verified: self.verify,
                    alpn: conn
                        .alpn_protocol()
                        .map(|p| String::from_utf8_lossy(p).into_owned()),
                    cert,
                    chain,
                };
                Ok((stream, info))
            }
            Err((e, mut io)) => {
                let first = io.finish();
                let error = explain::handshake_error(&e, peer, &first);
                let hello = first.server_hello();
                let info = (presented.is_some() || hello.is_some()).then(|| {
                    let (version, cipher) = explain::negotiated(hello);
                    TlsInfo {
                        version,
                        cipher,
                        verified: presented.as_ref().is_some_and(|p| p.verified),
                        alpn: None,
                        cert: leaf(&presented),
                        chain: chain(&presented),
                    }
                });
                Err(Failed { error, info })
            }
        }
    }
}

/// Whether a plain-HTTP peer's answer is a TLS alert record (what a TLS server sends
/// back for a request that is not a ClientHello): the port speaks TLS.
pub fn looks_like_tls(bytes: &[u8]) -> bool {
    matches!(
        bytes,
        [0x15, 0x03, 0x00..=0x04, 0x00, 0x02, 0x01 | 0x02, ..]
    )
}

/// The ALPN name of HTTP/2 over TLS.
pub const ALPN_H2: &[u8] = b"h2";

/// The largest request `handshake` queues (rustls buffers 64 KiB before the handshake).
pub const EARLY_REQUEST_MAX: usize = 16 * 1024;

/// A failed handshake: why, and what it had established by then.
#[derive(Debug)]
pub struct Failed {
    pub error: ProbeError,
    pub info: Option<TlsInfo>,
}
