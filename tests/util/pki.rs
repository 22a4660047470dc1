//! Certificates for the loopback TLS peers, made by rcgen at test time (once per test
//! binary), and the rustls server configuration that serves them.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use futures_rustls::rustls::{self, ServerConfig, SupportedProtocolVersion};
use rcgen::{
    date_time_ymd, BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    IsCa, KeyPair, KeyUsagePurpose,
};

use super::temp_file;

/// The common name of the local CA.
pub const CA_CN: &str = "headprobe test CA";
/// The common name of every leaf but `wrong_name`.
pub const LEAF_CN: &str = "probe.test";
/// The names (DNS and IP SANs) of `good`, `expired` and `not_yet_valid`.
pub const NAMES: [&str; 3] = ["localhost", "probe.test", "127.0.0.1"];

/// A certificate with its key, ready for a server.
pub struct Leaf {
    pub der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Leaf {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// Lowercase hex SHA-256 of the DER, as `tls.cert.sha256` should show it.
    pub fn sha256(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.der.as_ref());
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Everything the tests serve, made once per test binary.
pub struct Pki {
    /// The local CA, PEM, written to a file for `--cacert`.
    pub ca_file: std::path::PathBuf,
    /// Signed by the CA for `NAMES` (localhost, probe.test and 127.0.0.1); valid
    /// 2021-03-04T05:06:07Z .. 2090-01-02T03:04:05Z.
    pub good: Leaf,
    /// Signed by the CA, same names, valid 2000 .. 2001.
    pub expired: Leaf,
    /// Signed by the CA, same names, valid 2090 .. 2091.
    pub not_yet_valid: Leaf,
    /// Signed by the CA, valid now, for wrong.test only.
    pub wrong_name: Leaf,
    /// Self-signed, not a CA, for probe.test and 127.0.0.1.
    pub self_signed: Leaf,
}

fn secs(h: u64, m: u64, s: u64) -> Duration {
    Duration::from_secs(h * 3600 + m * 60 + s)
}

fn params(cn: &str, sans: &[&str]) -> CertificateParams {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(sans).expect("certificate parameters");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.not_before = date_time_ymd(2021, 3, 4) + secs(5, 6, 7);
    p.not_after = date_time_ymd(2090, 1, 2) + secs(3, 4, 5);
    p
}

fn signed(p: CertificateParams, ca: &Certificate, ca_key: &KeyPair) -> Leaf {
    let key = KeyPair::generate().expect("key pair");
    let cert = p.signed_by(&key, ca, ca_key).expect("sign leaf");
    Leaf {
        der: cert.der().clone(),
        key_der: key.serialize_der(),
    }
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca_key = KeyPair::generate().expect("CA key pair");
        let mut ca_params = params(CA_CN, &[]);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.not_before = date_time_ymd(1999, 1, 1);
        ca_params.not_after = date_time_ymd(2099, 1, 1);
        let ca = ca_params.self_signed(&ca_key).expect("self-sign CA");
        let ca_file = temp_file("ca.pem", ca.pem().as_bytes());

        let good = signed(params(LEAF_CN, &NAMES), &ca, &ca_key);

        let mut p = params(LEAF_CN, &NAMES);
        p.not_before = date_time_ymd(2000, 1, 1);
        p.not_after = date_time_ymd(2001, 1, 1);
        let expired = signed(p, &ca, &ca_key);

        let mut p = params(LEAF_CN, &NAMES);
        p.not_before = date_time_ymd(2090, 1, 1);
        p.not_after = date_time_ymd(2091, 1, 1);
        let not_yet_valid = signed(p, &ca, &ca_key);

        let wrong_name = signed(params("wrong.test", &["wrong.test"]), &ca, &ca_key);

        let key = KeyPair::generate().expect("key pair");
        let cert = params(LEAF_CN, &["probe.test", "127.0.0.1"])
            .self_signed(&key)
            .expect("self-sign leaf");
        let self_signed = Leaf {
            der: cert.der().clone(),
            key_der: key.serialize_der(),
        };

        Pki {
            ca_file,
            good,
            expired,
            not_yet_valid,
            wrong_name,
            self_signed,
        }
    })
}

/// The CA file's path, for `--cacert`.
pub fn cacert() -> String {
    pki().ca_file.to_str().expect("UTF-8 temp path").to_string()
}

/// A server configuration serving `leaf` with these protocol versions.
pub fn server_config(
    leaf: &Leaf,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der.clone()], leaf.key())
        .expect("server certificate");
    Arc::new(config)
}
