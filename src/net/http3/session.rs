//! quinn's TLS session for one probe's connection, wrapped to learn the cipher suite the
//! handshake chose, which quinn does not report: each call that can make packet keys
//! runs inside `tls::noting`, and the suite of the last keys made is kept for the probe.

use std::any::Any;
use std::sync::{Arc, Mutex};

use quinn::crypto::rustls::QuicClientConfig;
use quinn_proto::crypto::{
    self, ExportKeyingMaterialError, HeaderKey, KeyPair, Keys, PacketKey, Session,
};
use quinn_proto::transport_parameters::TransportParameters;
use quinn_proto::{ConnectError, ConnectionId, Side, TransportError};

use crate::net::tls::noting;

/// The suite a connection's handshake chose, once it made its keys.
pub(crate) type Chosen = Arc<Mutex<Option<String>>>;

/// rustls' QUIC client configuration, starting sessions that note their suite.
pub(crate) struct Noting {
    inner: Arc<QuicClientConfig>,
    chosen: Chosen,
}

impl Noting {
    pub(crate) fn new(inner: QuicClientConfig) -> (Noting, Chosen) {
        let chosen = Chosen::default();
        let noting = Noting {
            inner: Arc::new(inner),
            chosen: Arc::clone(&chosen),
        };
        (noting, chosen)
    }
}

impl crypto::ClientConfig for Noting {
    fn start_session(
        self: Arc<Self>,
        version: u32,
        server_name: &str,
        params: &TransportParameters,
    ) -> Result<Box<dyn Session>, ConnectError> {
        let inner = Arc::clone(&self.inner).start_session(version, server_name, params)?;
        Ok(Box::new(NotingSession {
            inner,
            chosen: Arc::clone(&self.chosen),
        }))
    }
}

struct NotingSession {
    inner: Box<dyn Session>,
    chosen: Chosen,
}

impl NotingSession {
    fn note<T>(&mut self, f: impl FnOnce(&mut dyn Session) -> T) -> T {
        let (out, made) = noting(|| f(&mut *self.inner));
        if made.is_some() {
            *self.chosen.lock().unwrap_or_else(|p| p.into_inner()) = made;
        }
        out
    }
}

impl Session for NotingSession {
    fn initial_keys(&self, dst_cid: &ConnectionId, side: Side) -> Keys {
        self.inner.initial_keys(dst_cid, side)
    }

    fn handshake_data(&self) -> Option<Box<dyn Any>> {
        self.inner.handshake_data()
    }

    fn peer_identity(&self) -> Option<Box<dyn Any>> {
        self.inner.peer_identity()
    }

    fn early_crypto(&self) -> Option<(Box<dyn HeaderKey>, Box<dyn PacketKey>)> {
        self.inner.early_crypto()
    }

    fn early_data_accepted(&self) -> Option<bool> {
        self.inner.early_data_accepted()
    }

    fn is_handshaking(&self) -> bool {
        self.inner.is_handshaking()
    }

    fn read_handshake(&mut self, buf: &[u8]) -> Result<bool, TransportError> {
        self.note(|s| s.read_handshake(buf))
    }

    fn transport_parameters(&self) -> Result<Option<TransportParameters>, TransportError> {
        self.inner.transport_parameters()
    }

    fn write_handshake(&mut self, buf: &mut Vec<u8>) -> Option<Keys> {
        self.note(|s| s.write_handshake(buf))
    }

    fn next_1rtt_keys(&mut self) -> Option<KeyPair<Box<dyn PacketKey>>> {
        self.note(|s| s.next_1rtt_keys())
    }

    fn is_valid_retry(&self, orig_dst_cid: &ConnectionId, header: &[u8], payload: &[u8]) -> bool {
        self.inner.is_valid_retry(orig_dst_cid, header, payload)
    }

    fn export_keying_material(
        &self,
        output: &mut [u8],
        label: &[u8],
        context: &[u8],
    ) -> Result<(), ExportKeyingMaterialError> {
        self.inner.export_keying_material(output, label, context)
    }
}
