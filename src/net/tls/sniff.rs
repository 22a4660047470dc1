//! The server's first bytes, kept while the handshake runs: when it fails, they tell what
//! was negotiated (the ServerHello is plaintext) or what answered instead of TLS.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::rustls::CipherSuite;

use crate::report::record::TlsVersion;

/// How much of the server's first flight is kept: a ServerHello without post-quantum key
/// shares fits, and a plain-HTTP answer's status line.
const KEEP: usize = 512;

/// The first bytes received, at most `KEEP`.
#[derive(Debug, Default)]
pub struct FirstBytes(Vec<u8>);

impl FirstBytes {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn server_hello(&self) -> Option<ServerHello> {
        server_hello(&self.0)
    }
}

/// An IO that copies the first `KEEP` bytes it reads.
pub struct Sniff<IO> {
    io: IO,
    first: FirstBytes,
    /// Off once the handshake is over: reads then pass straight through.
    on: bool,
}

impl<IO> Sniff<IO> {
    pub fn new(io: IO) -> Self {
        Sniff {
            io,
            first: FirstBytes::default(),
            on: true,
        }
    }

    /// Stops keeping bytes and hands over what was kept.
    pub fn finish(&mut self) -> FirstBytes {
        self.on = false;
        std::mem::take(&mut self.first)
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Sniff<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if let (true, Poll::Ready(Ok(n))) = (this.on, &read) {
            let kept = &mut this.first.0;
            let take = (*n).min(KEEP - kept.len());
            kept.extend_from_slice(&buf[..take]);
            this.on = kept.len() < KEEP;
        }
        read
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Sniff<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}

/// What a ServerHello chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerHello {
    pub version: u16,
    pub suite: u16,
}

impl ServerHello {
    pub fn version(&self) -> TlsVersion {
        TlsVersion::from_wire(self.version)
    }

    pub fn suite_name(&self) -> String {
        cipher_name(self.suite)
    }
}

/// A cipher suite's IANA name (`TLS_AES_128_GCM_SHA256`,
/// `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`), as blackbox_exporter (Go's
/// `tls.CipherSuiteName`), curl and openssl print it; `0x1A2B` for a suite rustls does
/// not name. The one place that names suites: rustls spells the TLS 1.3 ones `TLS13_`.
pub fn cipher_name(suite: u16) -> String {
    let name = format!("{:?}", CipherSuite::from(suite));
    if name.contains(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        format!("0x{suite:04X}")
    } else if let Some(rest) = name.strip_prefix("TLS13_") {
        format!("TLS_{rest}")
    } else {
        name
    }
}

/// Reads the ServerHello at the start of `b` (RFC 8446 4.1.3): the suite, and the version
/// from `supported_versions` when present (TLS 1.3), else `legacy_version`. `None` when
/// `b` does not start with a whole ServerHello.
pub fn server_hello(b: &[u8]) -> Option<ServerHello> {
    let u16_at = |b: &[u8], i: usize| Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]));
    // Record header: handshake (22), version, length.
    if *b.first()? != 22 {
        return None;
    }
    // The record may go on past what was kept (a TLS 1.2 server may put its certificate
    // in the same record): the ServerHello, first in it, is all that is needed.
    let record_len = usize::from(u16_at(b, 3)?);
    let record = b.get(5..b.len().min(5 + record_len))?;
    // Handshake header: server_hello (2), 24-bit length.
    if *record.first()? != 2 {
        return None;
    }
    let len = usize::from(*record.get(1)?) << 16 | usize::from(u16_at(record, 2)?);
    let body = record.get(4..4 + len)?;
    let legacy_version = u16_at(body, 0)?;
    let sid_len = usize::from(*body.get(34)?);
    let mut at = 35 + sid_len;
    let suite = u16_at(body, at)?;
    at += 3; // suite, compression method
    let mut version = legacy_version;
    if let Some(ext_len) = u16_at(body, at) {
        let exts = body.get(at + 2..at + 2 + usize::from(ext_len))?;
        let mut i = 0;
        while i + 4 <= exts.len() {
            let kind = u16_at(exts, i)?;
            let len = usize::from(u16_at(exts, i + 2)?);
            let data = exts.get(i + 4..i + 4 + len)?;
            if kind == 0x002b && len == 2 {
                version = u16_at(data, 0)?;
            }
            i += 4 + len;
        }
    }
    Some(ServerHello { version, suite })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(legacy: u16, suite: u16, exts: &[u8]) -> Vec<u8> {
        let mut body = legacy.to_be_bytes().to_vec();
        body.extend_from_slice(&[7; 32]);
        body.push(32);
        body.extend_from_slice(&[9; 32]);
        body.extend_from_slice(&suite.to_be_bytes());
        body.push(0);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(exts);
        let mut hs = vec![2, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 3];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn reads_tls13_and_tls12_hellos() {
        // supported_versions = TLS 1.3 after a key_share.
        let exts = [0, 51, 0, 4, 0, 29, 0, 0, 0, 43, 0, 2, 3, 4];
        let h = server_hello(&hello(0x0303, 0x1301, &exts)).unwrap();
        assert_eq!(h.version(), TlsVersion::Tls13);
        assert_eq!(h.suite_name(), "TLS_AES_128_GCM_SHA256");
        let h = server_hello(&hello(0x0303, 0xc02b, &[])).unwrap();
        assert_eq!(h.version(), TlsVersion::Tls12);
        assert_eq!(h.suite_name(), "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
        assert_eq!(
            server_hello(&hello(0x0303, 0x1234, &[]))
                .unwrap()
                .suite_name(),
            "0x1234"
        );
        // A record holding more than the ServerHello, kept only in part.
        let mut long = hello(0x0303, 0xc02b, &[]);
        long[3..5].copy_from_slice(&4000u16.to_be_bytes());
        long.extend_from_slice(&[11, 0, 0x0f, 0xa0, 1, 2, 3]);
        assert_eq!(server_hello(&long).unwrap().suite, 0xc02b);
    }

    #[test]
    fn anything_else_is_none_and_never_panics() {
        let good = hello(0x0303, 0x1301, &[0, 43, 0, 2, 3, 4]);
        for cut in 0..good.len() {
            assert_eq!(server_hello(&good[..cut]), None, "cut at {cut}");
        }
        assert_eq!(server_hello(b"HTTP/1.1 400 Bad Request\r\n"), None);
        assert_eq!(server_hello(&[21, 3, 3, 0, 2, 2, 40]), None);
        // Lengths that point past the end, or inside out.
        for b in [
            &[22, 3, 3, 255, 255, 2][..],
            &[22, 3, 3, 0, 4, 2, 255, 255, 255],
            &[22, 3, 3, 0, 1, 2],
        ] {
            assert_eq!(server_hello(b), None);
        }
        let mut bytes = good.clone();
        for i in 0..bytes.len() {
            for v in [0u8, 1, 0x7f, 0xff] {
                let old = bytes[i];
                bytes[i] = v;
                let _ = server_hello(&bytes);
                bytes[i] = old;
            }
        }
    }
}
