//! The crypto provider, chosen in one place (bench/https measures the candidates).

use futures_rustls::rustls::crypto::CryptoProvider;
use futures_rustls::rustls::{CipherSuite, NamedGroup};

/// ring by default: against aws-lc-rs (`--features aws-lc-rs`) in bench/https it
/// used less CPU per probe and memory; their handshake crypto costs the same within
/// a few percent, and most of a probe's CPU is the kernel's and the runtime's.
///
/// The provider's defaults, reordered for the cheapest handshake a server accepts:
/// X25519 first (one key share, no HelloRetryRequest with common servers), then the
/// NIST curves; no post-quantum hybrids, whose shares cost more than a probe of
/// headers is worth protecting. AES-128-GCM with SHA-256 first, as browsers order
/// them: the key schedule then hashes with SHA-256 instead of SHA-384. Every suite
/// stays offered.
pub fn tuned() -> CryptoProvider {
    #[cfg(not(feature = "aws-lc-rs"))]
    let mut provider = futures_rustls::rustls::crypto::ring::default_provider();
    #[cfg(feature = "aws-lc-rs")]
    let mut provider = futures_rustls::rustls::crypto::aws_lc_rs::default_provider();
    let rank = |g: NamedGroup| match g {
        NamedGroup::X25519 => Some(0),
        NamedGroup::secp256r1 => Some(1),
        NamedGroup::secp384r1 => Some(2),
        _ => None,
    };
    provider.kx_groups.retain(|g| rank(g.name()).is_some());
    provider.kx_groups.sort_by_key(|g| rank(g.name()));
    provider.cipher_suites.sort_by_key(|s| match s.suite() {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
        CipherSuite::TLS13_AES_256_GCM_SHA384 => 1,
        _ => 2,
    });
    provider
}

pub fn sha256(der: &[u8]) -> impl AsRef<[u8]> {
    ring::digest::digest(&ring::digest::SHA256, der)
}
