//! Certificates for the loopback TLS peers, made by rcgen at test time (once per test
//! binary), and the rustls server configuration that serves them.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use futures_rustls::rustls::server::WebPkiClientVerifier;
use futures_rustls::rustls::{self, RootCertStore, ServerConfig, SupportedProtocolVersion};
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

/// The common name of `early_intermediate`'s issuer.
pub const EARLY_CN: &str = "headprobe test intermediate (expires first)";
/// When that intermediate expires: 2080-06-01T00:00:00Z.
pub const EARLY_NOT_AFTER: i64 = 3_484_425_600;

/// A certificate with its key, ready for a server.
pub struct Leaf {
    pub der: CertificateDer<'static>,
    key_der: Vec<u8>,
    /// Certificates the server sends after the leaf (intermediates).
    pub chain: Vec<CertificateDer<'static>>,
}

impl Leaf {
    /// The certificate alone, PEM, written to a file for `--cacert`.
    pub fn pem_file(&self) -> String {
        let pem = pem_of(&self.der);
        let path = temp_file("leaf.pem", pem.as_bytes());
        path.to_str().expect("UTF-8 temp path").to_string()
    }

    /// The PKCS #8 key, PEM, written to a file for a real server (nginx, nghttpd).
    pub fn key_pem_file(&self) -> String {
        let pem = pem_labelled("PRIVATE KEY", &self.key_der);
        let path = temp_file("key.pem", pem.as_bytes());
        path.to_str().expect("UTF-8 temp path").to_string()
    }

    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// The same certificate and key, sent without intermediates.
    pub fn alone(&self) -> Leaf {
        Leaf {
            der: self.der.clone(),
            key_der: self.key_der.clone(),
            chain: Vec::new(),
        }
    }

    /// The leaf, then the certificates the server sends after it.
    pub fn full_chain(&self) -> Vec<CertificateDer<'static>> {
        let mut all = vec![self.der.clone()];
        all.extend(self.chain.iter().cloned());
        all
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
    /// Self-signed with CA:TRUE, CN=probe.test and no SAN: what `openssl req -x509
    /// -subj /CN=probe.test` makes.
    pub self_signed_ca: Leaf,
    /// Signed by an intermediate CA (itself signed by the CA), for `NAMES`; the server
    /// sends the intermediate after it.
    pub via_intermediate: Leaf,
    /// Signed by `EARLY_CN`, an intermediate CA (signed by the CA) that expires at
    /// `EARLY_NOT_AFTER`, before the leaf does (2090-01-02T03:04:05Z): the renewal gone
    /// wrong that `probe_ssl_earliest_cert_expiry` is to show. Subject
    /// `C=NL, O=Probe\, "Inc", CN=probe.test` (Go writes it `CN=probe.test,O=Probe\,
    /// \"Inc\",C=NL`), for `NAMES`; the server sends the intermediate after it.
    pub early_intermediate: Leaf,
    /// Signed by the CA, for `NAMES`, valid from a day ago to 5 days (minus a minute) from
    /// when the tests started.
    pub five_days: Leaf,
    /// Signed by the CA, for `NAMES`, expired 25 hours before the tests started.
    pub expired_yesterday: Leaf,
    /// The CA's own certificate and key, for servers that demand client certificates.
    pub ca_der: CertificateDer<'static>,
    /// Signed by the CA, for client authentication.
    pub client: Leaf,
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
        chain: Vec::new(),
    }
}

fn self_signed(p: CertificateParams) -> Leaf {
    let key = KeyPair::generate().expect("key pair");
    let cert = p.self_signed(&key).expect("self-sign");
    Leaf {
        der: cert.der().clone(),
        key_der: key.serialize_der(),
        chain: Vec::new(),
    }
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = params(cn, &[]);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = date_time_ymd(1999, 1, 1);
    p.not_after = date_time_ymd(2099, 1, 1);
    p
}

/// PEM text of one certificate.
pub fn pem_of(der: &[u8]) -> String {
    pem_labelled("CERTIFICATE", der)
}

/// PEM text of DER bytes under this label.
fn pem_labelled(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca_key = KeyPair::generate().expect("CA key pair");
        let ca = ca_params(CA_CN).self_signed(&ca_key).expect("self-sign CA");
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

        let self_signed = self::self_signed(params(LEAF_CN, &["probe.test", "127.0.0.1"]));

        // As `openssl req -x509 -subj /CN=probe.test` makes it: CA:TRUE, no SAN.
        let mut p = params(LEAF_CN, &[]);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let self_signed_ca = self::self_signed(p);

        let mid_key = KeyPair::generate().expect("intermediate key pair");
        let mid = ca_params("headprobe test intermediate")
            .signed_by(&mid_key, &ca, &ca_key)
            .expect("sign intermediate");
        let mut via_intermediate = signed(params(LEAF_CN, &NAMES), &mid, &mid_key);
        via_intermediate.chain = vec![mid.der().clone()];

        let mut p = ca_params(EARLY_CN);
        p.not_after = date_time_ymd(2080, 6, 1);
        let early_key = KeyPair::generate().expect("intermediate key pair");
        let early = p
            .signed_by(&early_key, &ca, &ca_key)
            .expect("sign intermediate");
        let mut p = params(LEAF_CN, &NAMES);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "NL");
        dn.push(DnType::OrganizationName, "Probe, \"Inc\"");
        dn.push(DnType::CommonName, LEAF_CN);
        p.distinguished_name = dn;
        let mut early_intermediate = signed(p, &early, &early_key);
        early_intermediate.chain = vec![early.der().clone()];

        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970");
        let mut p = params(LEAF_CN, &NAMES);
        p.not_before = date_time_ymd(1970, 1, 1) + (now - Duration::from_secs(86_400));
        p.not_after = date_time_ymd(1970, 1, 1) + (now + Duration::from_secs(5 * 86_400 - 60));
        let five_days = signed(p, &ca, &ca_key);

        let mut p = params(LEAF_CN, &NAMES);
        p.not_before = date_time_ymd(1970, 1, 1) + (now - Duration::from_secs(10 * 86_400));
        p.not_after = date_time_ymd(1970, 1, 1) + (now - Duration::from_secs(25 * 3600));
        let expired_yesterday = signed(p, &ca, &ca_key);

        let client = signed(params("headprobe client", &["client.test"]), &ca, &ca_key);

        Pki {
            ca_file,
            good,
            expired,
            not_yet_valid,
            wrong_name,
            self_signed,
            self_signed_ca,
            via_intermediate,
            early_intermediate,
            five_days,
            expired_yesterday,
            ca_der: ca.der().clone(),
            client,
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
        .with_single_cert(leaf.full_chain(), leaf.key())
        .expect("server certificate");
    Arc::new(config)
}

/// A server configuration serving `leaf` that demands a client certificate issued by
/// the CA.
pub fn client_auth_config(
    leaf: &Leaf,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(pki().ca_der.clone()).expect("CA as root");
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("client verifier");
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(leaf.full_chain(), leaf.key())
        .expect("server certificate");
    Arc::new(config)
}

/// A server configuration that presents `chain` (whatever bytes) signed by `leaf`'s key.
pub fn raw_chain_config(leaf: &Leaf, chain: Vec<CertificateDer<'static>>) -> Arc<ServerConfig> {
    #[derive(Debug)]
    struct Fixed(Arc<rustls::sign::CertifiedKey>);
    impl rustls::server::ResolvesServerCert for Fixed {
        fn resolve(
            &self,
            _: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(Arc::clone(&self.0))
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = provider
        .key_provider
        .load_private_key(leaf.key())
        .expect("signing key");
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .expect("protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(Arc::new(rustls::sign::CertifiedKey::new(
            chain, key,
        )))));
    Arc::new(config)
}
