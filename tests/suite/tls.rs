//! HTTPS (issue: TLS): `https://` targets, `--tls`, `--cacert`, `-k`, the `tls` JSON
//! object, the text `tls >` line, and every handshake failure, against loopback TLS
//! servers built here on rustls with certificates made by rcgen at test time.
//!
//! Names never reach DNS: they go through `--resolve NAME:PORT:127.0.0.1`.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use futures_rustls::rustls::{
    self, ProtocolVersion, ServerConfig, ServerConnection, StreamOwned, SupportedProtocolVersion,
};
use rcgen::{
    date_time_ymd, BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::Value;

use crate::util::*;

// ---------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------

const CA_CN: &str = "headprobe test CA";
const LEAF_CN: &str = "probe.test";

/// A certificate with its key, ready for a server.
struct Leaf {
    der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Leaf {
    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// Lowercase hex SHA-256 of the DER, as `tls.cert.sha256` should show it.
    fn sha256(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.der.as_ref());
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Everything the tests serve, made once per test binary.
struct Pki {
    /// The local CA, PEM, written to a file for `--cacert`.
    ca_file: std::path::PathBuf,
    /// Signed by the CA for localhost, probe.test and 127.0.0.1; valid
    /// 2021-03-04T05:06:07Z .. 2090-01-02T03:04:05Z.
    good: Leaf,
    /// Signed by the CA, same names, valid 2000 .. 2001.
    expired: Leaf,
    /// Signed by the CA, same names, valid 2090 .. 2091.
    not_yet_valid: Leaf,
    /// Signed by the CA, valid now, for wrong.test only.
    wrong_name: Leaf,
    /// Self-signed, not a CA, for probe.test and 127.0.0.1.
    self_signed: Leaf,
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

const NAMES: [&str; 3] = ["localhost", "probe.test", "127.0.0.1"];

fn pki() -> &'static Pki {
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

fn cacert() -> String {
    pki().ca_file.to_str().expect("UTF-8 temp path").to_string()
}

// ---------------------------------------------------------------------------------------
// Loopback peers
// ---------------------------------------------------------------------------------------

/// What a peer saw on one connection, sent to the test when the connection ends.
#[derive(Debug, Default)]
struct Seen {
    /// The SNI the client sent (TLS peers only).
    sni: Option<String>,
    /// The negotiated version, when the handshake completed.
    version: Option<ProtocolVersion>,
    /// The request head (decrypted for TLS peers; raw bytes for the others).
    request: Vec<u8>,
    /// Why the handshake failed on the server's side, if it did.
    error: Option<String>,
}

type Handler = Arc<dyn Fn(TcpStream) -> Seen + Send + Sync>;

/// A loopback listener running `handler` on a thread per connection.
struct Peer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    seen: Receiver<Seen>,
}

/// No peer thread waits on its client longer than this.
const PEER_PATIENCE: Duration = Duration::from_secs(15);

impl Peer {
    fn start(handler: Handler) -> Peer {
        Peer::start_on("127.0.0.1:0", handler).expect("bind 127.0.0.1:0")
    }

    fn start_on(addr: &str, handler: Handler) -> std::io::Result<Peer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, seen) = mpsc::channel::<Seen>();
        let accept_stop = Arc::clone(&stop);
        thread::spawn(move || accept_loop(listener, accept_stop, handler, tx));
        Ok(Peer { addr, stop, seen })
    }

    /// A TLS peer with this certificate, TLS 1.2 and 1.3.
    fn tls(leaf: &Leaf) -> Peer {
        Peer::start(tls_handler(server_config(leaf, rustls::ALL_VERSIONS)))
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:PORT`.
    fn hostport(&self) -> String {
        self.addr.to_string()
    }

    /// `https://NAME:PORT/`.
    fn url(&self, name: &str) -> String {
        format!("https://{name}:{}/", self.port())
    }

    /// `--resolve NAME:PORT:127.0.0.1`.
    fn resolve(&self, name: &str) -> [String; 2] {
        [
            "--resolve".to_string(),
            format!("{name}:{}:127.0.0.1", self.port()),
        ]
    }

    /// What the next connection saw; panics if no connection ends within `WAIT`.
    fn seen(&self) -> Seen {
        self.seen
            .recv_timeout(WAIT)
            .expect("the peer saw no connection end in time")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn accept_loop(listener: TcpListener, stop: Arc<AtomicBool>, handler: Handler, tx: Sender<Seen>) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else { continue };
        let _ = stream.set_read_timeout(Some(PEER_PATIENCE));
        let _ = stream.set_write_timeout(Some(PEER_PATIENCE));
        let handler = Arc::clone(&handler);
        let tx = tx.clone();
        thread::spawn(move || {
            let _ = tx.send(handler(stream));
        });
    }
}

fn server_config(leaf: &Leaf, versions: &[&'static SupportedProtocolVersion]) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der.clone()], leaf.key())
        .expect("server certificate");
    Arc::new(config)
}

/// The answer every TLS peer gives.
fn tls_response() -> Vec<u8> {
    response(
        "HTTP/1.0 200 OK",
        &["Server: tls-loopback", "Content-Length: 0"],
    )
}

/// Handshake, record SNI and version, read the request head, answer, close_notify,
/// then wait for the client to close.
fn tls_handler(config: Arc<ServerConfig>) -> Handler {
    Arc::new(move |mut tcp: TcpStream| {
        let mut seen = Seen::default();
        let mut conn = ServerConnection::new(Arc::clone(&config)).expect("server connection");
        while conn.is_handshaking() {
            let failed = match conn.complete_io(&mut tcp) {
                Ok((0, 0)) => Some("the client closed during the handshake".to_string()),
                Ok(_) => None,
                Err(e) => Some(e.to_string()),
            };
            if let Some(why) = failed {
                seen.sni = conn.server_name().map(str::to_string);
                seen.error = Some(why);
                close_and_drain(&mut tcp);
                return seen;
            }
        }
        seen.sni = conn.server_name().map(str::to_string);
        seen.version = conn.protocol_version();
        let mut tls = StreamOwned::new(conn, tcp);
        seen.request = read_head(&mut tls);
        let _ = tls.write_all(&tls_response());
        tls.conn.send_close_notify();
        let _ = tls.flush();
        close_and_drain(&mut tls.sock);
        seen
    })
}

/// Reads up to and including the first CRLF CRLF (at most 64 KiB), or to EOF / error.
fn read_head(r: &mut impl Read) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while buf.len() < 64 * 1024 && !buf.ends_with(b"\r\n\r\n") {
        match r.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => buf.push(byte[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    buf
}

/// Reads one TLS record (the ClientHello): the 5-byte header and its payload.
fn read_record(s: &mut TcpStream) -> Vec<u8> {
    let mut header = [0u8; 5];
    if s.read_exact(&mut header).is_err() {
        return Vec::new();
    }
    let len = u16::from_be_bytes([header[3], header[4]]) as usize;
    let mut body = vec![0u8; len];
    let _ = s.read_exact(&mut body);
    let mut all = header.to_vec();
    all.extend_from_slice(&body);
    all
}

/// Sends FIN, then reads until the client closes, so that our close is never an RST.
fn close_and_drain(s: &mut TcpStream) {
    let _ = s.shutdown(Shutdown::Write);
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Reads the ClientHello, writes `bytes`, closes.
fn raw_answer(bytes: Vec<u8>) -> Handler {
    Arc::new(move |mut tcp: TcpStream| {
        let hello = read_record(&mut tcp);
        let _ = tcp.write_all(&bytes);
        close_and_drain(&mut tcp);
        Seen {
            request: hello,
            ..Seen::default()
        }
    })
}

/// A plaintext TLS alert record (level fatal).
fn alert(description: u8) -> Vec<u8> {
    vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description]
}

// ---------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------

/// Runs headprobe in json format; returns the outcome and its only record.
fn json_run<S: AsRef<str>>(args: &[S]) -> (Outcome, Value) {
    let out = headprobe()
        .args(["--format", "json"])
        .args(args.iter().map(|s| s.as_ref()))
        .run();
    let r = out.only_json();
    (out, r)
}

/// A probe that must fail with `kind`; returns the record.
#[track_caller]
fn failing<S: AsRef<str>>(args: &[S], kind: &str) -> Value {
    let (out, r) = json_run(args);
    out.expect_code(1);
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"]["kind"], kind, "{r}");
    r
}

/// The error message of a record.
fn message(r: &Value) -> String {
    r["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `https://probe.test:PORT/` through `--resolve`, with `extra` options.
fn probe_name(peer: &Peer, name: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    args.extend(peer.resolve(name));
    args.push(peer.url(name));
    args
}

fn ms(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("not a number of milliseconds: {v}"))
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn is_utc_seconds(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

const TLS13_SUITES: [&str; 3] = [
    "TLS13_AES_256_GCM_SHA384",
    "TLS13_AES_128_GCM_SHA256",
    "TLS13_CHACHA20_POLY1305_SHA256",
];

// ---------------------------------------------------------------------------------------
// Success
// ---------------------------------------------------------------------------------------

#[test]
fn verified_with_cacert_records_the_handshake_and_the_certificate() {
    let pki = pki();
    let peer = Peer::tls(&pki.good);
    let ca = cacert();
    let (out, r) = json_run(&probe_name(&peer, "probe.test", &["--cacert", &ca]));
    out.expect_code(0);
    let seen = peer.seen();
    assert_eq!(seen.error, None, "server side: {seen:?}");

    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["scheme"], "https", "{r}");
    assert_eq!(r["host"], "probe.test", "{r}");
    assert_eq!(r["port"], peer.port(), "{r}");
    assert_eq!(r["addr"], peer.hostport(), "{r}");
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["reason"], "OK", "{r}");
    assert_eq!(r["error"], Value::Null, "{r}");
    assert_eq!(
        r["headers"],
        serde_json::json!([["Server", "tls-loopback"], ["Content-Length", "0"]]),
        "{r}"
    );

    let tls = &r["tls"];
    assert_eq!(tls["verified"], true, "{r}");
    assert_eq!(tls["version"], "TLSv1.3", "{r}");
    let cipher = tls["cipher"].as_str().unwrap_or_default();
    assert!(TLS13_SUITES.contains(&cipher), "cipher {cipher:?}: {r}");

    let cert = &tls["cert"];
    let subject = cert["subject"].as_str().unwrap_or_default();
    assert!(subject.contains("CN=probe.test"), "subject: {r}");
    let issuer = cert["issuer"].as_str().unwrap_or_default();
    assert!(issuer.contains(&format!("CN={CA_CN}")), "issuer: {r}");
    for field in ["not_before", "not_after"] {
        let t = cert[field].as_str().unwrap_or_default();
        assert!(
            is_utc_seconds(t),
            "{field} {t:?} is not YYYY-MM-DDTHH:MM:SSZ: {r}"
        );
    }
    assert_eq!(cert["not_before"], "2021-03-04T05:06:07Z", "{r}");
    assert_eq!(cert["not_after"], "2090-01-02T03:04:05Z", "{r}");
    let san: Vec<&str> = cert["san"]
        .as_array()
        .unwrap_or_else(|| panic!("san is not an array: {r}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_else(|| panic!("san entry {v}: {r}")))
        .collect();
    for name in NAMES {
        assert!(san.contains(&name), "san lacks {name}: {r}");
    }
    assert_eq!(san.len(), NAMES.len(), "{r}");
    let sha = cert["sha256"].as_str().unwrap_or_default();
    assert_eq!(sha.len(), 64, "{r}");
    assert_eq!(sha, pki.good.sha256(), "sha256 of the leaf DER: {r}");

    let t = &r["timing_ms"];
    let (dns, connect, tls_ms) = (ms(&t["dns"]), ms(&t["connect"]), ms(&t["tls"]));
    let (first, headers, total) = (ms(&t["first_byte"]), ms(&t["headers"]), ms(&t["total"]));
    assert!(dns <= connect, "{t}");
    assert!(connect <= tls_ms, "tls before connect: {t}");
    assert!(tls_ms <= first, "tls after first_byte: {t}");
    assert!(first <= headers && headers <= total, "{t}");
}

#[test]
fn json_tls_object_has_the_contract_keys_in_order() {
    let pki = pki();
    let peer = Peer::tls(&pki.good);
    let ca = cacert();
    let (out, _) = json_run(&probe_name(&peer, "probe.test", &["--cacert", &ca]));
    out.expect_code(0);
    let line = out.lines().pop().unwrap_or_default();
    let keys = key_order(&line);
    let tls = keys
        .iter()
        .find(|(k, _)| k == "tls")
        .unwrap_or_else(|| panic!("no tls key: {line}"));
    assert_eq!(tls.1, ["version", "cipher", "verified", "cert"], "{line}");
    let timing = &keys.iter().find(|(k, _)| k == "timing_ms").unwrap().1;
    let at = |k: &str| timing.iter().position(|x| x == k);
    assert!(at("tls").is_some(), "timing_ms has no tls: {line}");
    assert!(
        at("connect") < at("tls") && at("tls") < at("first_byte"),
        "{line}"
    );
    // The cert object's own keys, read off the text from where it starts.
    let from = line.find("\"cert\":").expect("cert key") + "\"cert\":".len();
    let cert_keys: Vec<String> = key_order(&line[from..])
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        cert_keys,
        [
            "subject",
            "issuer",
            "not_before",
            "not_after",
            "san",
            "sha256"
        ],
        "{line}"
    );
    let _ = peer.seen();
}

#[test]
fn plain_http_records_tls_null() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let (out, r) = json_run(&[server.target()]);
    out.expect_code(0);
    assert_eq!(r.get("tls"), Some(&Value::Null), "{r}");
    assert_eq!(r["timing_ms"].get("tls"), Some(&Value::Null), "{r}");
}

#[test]
fn insecure_accepts_a_self_signed_certificate_and_still_records_it() {
    let pki = pki();
    let peer = Peer::tls(&pki.self_signed);
    let (out, r) = json_run(&probe_name(&peer, "probe.test", &["-k"]));
    out.expect_code(0);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["tls"]["verified"], false, "{r}");
    assert_eq!(r["tls"]["version"], "TLSv1.3", "{r}");
    let cert = &r["tls"]["cert"];
    assert!(cert.is_object(), "certificate not recorded: {r}");
    let subject = cert["subject"].as_str().unwrap_or_default();
    assert!(subject.contains("CN=probe.test"), "{r}");
    assert_eq!(cert["issuer"], cert["subject"], "self-signed: {r}");
    assert_eq!(cert["sha256"], pki.self_signed.sha256().as_str(), "{r}");
    let _ = peer.seen();

    // The text line says so.
    let out = headprobe()
        .arg("-k")
        .args(peer.resolve("probe.test"))
        .arg(peer.url("probe.test"))
        .run();
    out.expect_code(0);
    let first = out.lines().first().cloned().unwrap_or_default();
    assert!(first.ends_with(" CN=probe.test (unverified)"), "{out:?}");
    let _ = peer.seen();

    // -k skips every check, expiry included.
    let expired = Peer::tls(&pki.expired);
    let (out, r) = json_run(&probe_name(&expired, "probe.test", &["-k"]));
    out.expect_code(0);
    assert_eq!(r["tls"]["verified"], false, "{r}");
    assert_eq!(r["tls"]["cert"]["not_after"], "2001-01-01T00:00:00Z", "{r}");
}

// ---------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------

/// A `tls` failure against `leaf` whose message contains `words`.
#[track_caller]
fn cert_failure(leaf: &Leaf, name: &str, extra: &[&str], words: &str) -> Value {
    let peer = Peer::tls(leaf);
    let r = failing(&probe_name(&peer, name, extra), "tls");
    let m = message(&r);
    assert!(m.contains(words), "message {m:?} lacks {words:?}: {r}");
    assert_eq!(r["status"], Value::Null, "{r}");
    assert!(r["timing_ms"]["connect"].is_number(), "{r}");
    assert_eq!(r["timing_ms"]["tls"], Value::Null, "{r}");
    let seen = peer.seen();
    assert!(
        seen.error.is_some(),
        "the server finished a handshake: {seen:?}"
    );
    assert!(seen.request.is_empty(), "a request was sent: {seen:?}");
    r
}

#[test]
fn unknown_issuer_without_cacert() {
    cert_failure(
        &pki().good,
        "probe.test",
        &[],
        "certificate signed by an unknown issuer",
    );
}

#[test]
fn expired_certificate() {
    let ca = cacert();
    cert_failure(
        &pki().expired,
        "probe.test",
        &["--cacert", &ca],
        "certificate expired",
    );
}

#[test]
fn not_yet_valid_certificate() {
    let ca = cacert();
    cert_failure(
        &pki().not_yet_valid,
        "probe.test",
        &["--cacert", &ca],
        "certificate not yet valid",
    );
}

#[test]
fn name_mismatch() {
    let ca = cacert();
    // A good certificate asked for a name it does not carry...
    cert_failure(
        &pki().good,
        "other.test",
        &["--cacert", &ca],
        "certificate name mismatch",
    );
    // ...and a certificate for another name.
    cert_failure(
        &pki().wrong_name,
        "probe.test",
        &["--cacert", &ca],
        "certificate name mismatch",
    );
}

#[test]
fn self_signed_certificate() {
    cert_failure(&pki().self_signed, "probe.test", &[], "self-signed");
}

#[test]
fn failure_in_text_and_status_formats() {
    let peer = Peer::tls(&pki().expired);
    let ca = cacert();
    let t = peer.url("probe.test");
    let out = headprobe()
        .args(["--cacert", &ca])
        .args(peer.resolve("probe.test"))
        .arg(&t)
        .run();
    out.expect_code(1);
    assert_eq!(
        out.lines(),
        [format!("{t} error > tls: certificate expired")],
        "{out:?}"
    );
    let _ = peer.seen();

    let out = headprobe()
        .args(["--format", "status", "--cacert", &ca])
        .args(peer.resolve("probe.test"))
        .arg(&t)
        .run();
    out.expect_code(1);
    let rows = out.status_rows();
    assert_eq!(rows.len(), 1, "{out:?}");
    let row = &rows[0];
    assert_eq!(row.len(), 5, "{out:?}");
    assert_eq!(row[0], t);
    assert_eq!(row[1], "tls");
    assert_eq!(row[3], peer.hostport());
    assert_eq!(row[4], "certificate expired");
}

#[test]
fn plain_http_peer_on_a_tls_probe() {
    let peer = Peer::start(raw_answer(response(
        "HTTP/1.0 200 OK",
        &["Server: plain", "Content-Length: 0"],
    )));
    let r = failing(&[format!("https://{}/", peer.hostport())], "tls");
    let m = message(&r);
    assert!(m.contains("plain HTTP"), "message {m:?}: {r}");
    assert_eq!(r["status"], Value::Null, "{r}");
    assert_eq!(r["tls"], Value::Null, "{r}");
    let seen = peer.seen();
    assert_eq!(
        seen.request.first(),
        Some(&0x16),
        "no ClientHello: {seen:?}"
    );
}

#[test]
fn protocol_version_alert() {
    // What a server that speaks only older TLS answers to our ClientHello.
    let peer = Peer::start(raw_answer(alert(70)));
    let r = failing(&[format!("https://{}/", peer.hostport())], "tls");
    let m = message(&r);
    assert!(m.starts_with("protocol version"), "message {m:?}: {r}");
    let _ = peer.seen();
}

#[test]
fn handshake_failure_alert() {
    let peer = Peer::start(raw_answer(alert(40)));
    let r = failing(&[format!("https://{}/", peer.hostport())], "tls");
    let m = message(&r);
    assert!(m.starts_with("handshake failure"), "message {m:?}: {r}");
    let _ = peer.seen();
}

#[test]
fn peer_closing_during_the_handshake() {
    let peer = Peer::start(raw_answer(Vec::new()));
    let r = failing(&[format!("https://{}/", peer.hostport())], "tls");
    let m = message(&r);
    assert!(m.starts_with("handshake failure"), "message {m:?}: {r}");
    let _ = peer.seen();
}

#[test]
fn stalled_handshake_is_a_timeout_within_connect_timeout() {
    // Accepts, reads the ClientHello, never answers.
    let server = Server::start(Behaviour::Silent);
    let t = format!("https://{}/", server.target());
    let started = Instant::now();
    let r = failing(&["--connect-timeout", "500ms", &t], "timeout");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(450), "gave up after {took:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}: {r}");
    assert!(r["timing_ms"]["connect"].is_number(), "{r}");
    assert_eq!(r["timing_ms"]["tls"], Value::Null, "{r}");
    assert_eq!(r["tls"], Value::Null, "{r}");
    let total = ms(&r["timing_ms"]["total"]);
    assert!((450.0..3000.0).contains(&total), "total {total}: {r}");
    // The server did get a ClientHello, not an HTTP request.
    let hello = server.next_request();
    assert_eq!(hello.first(), Some(&0x16), "{hello:?}");
    assert!(
        server.next_closed_within(WAIT),
        "headprobe kept the connection"
    );
}

#[test]
fn unreadable_cacert_is_a_usage_error() {
    let peer = Peer::tls(&pki().good);
    let missing = temp_file("gone.pem", b"");
    std::fs::remove_file(&missing).unwrap();
    let not_pem = temp_file("not.pem", b"hello\n");
    for path in [&missing, &not_pem] {
        let out = headprobe()
            .arg("--cacert")
            .arg(path)
            .arg(format!("https://{}/", peer.hostport()))
            .run();
        out.expect_code(2);
        assert!(out.stdout.is_empty(), "{out:?}");
        assert!(out.err().contains("--cacert"), "{out:?}");
    }
    assert!(
        peer.seen.recv_timeout(Duration::from_millis(200)).is_err(),
        "a probe was made"
    );
}

// ---------------------------------------------------------------------------------------
// SNI, versions, --tls, text, request bytes
// ---------------------------------------------------------------------------------------

#[test]
fn sni_carries_the_name_and_is_absent_for_ip_literals() {
    let pki = pki();
    let peer = Peer::tls(&pki.good);
    let ca = cacert();

    let (out, _) = json_run(&probe_name(&peer, "probe.test", &["--cacert", &ca]));
    out.expect_code(0);
    assert_eq!(peer.seen().sni.as_deref(), Some("probe.test"));

    // The IP literal verifies against the certificate's IP SAN, and sends no SNI.
    let (out, r) = json_run(&["--cacert", &ca, &format!("https://{}/", peer.hostport())]);
    out.expect_code(0);
    assert_eq!(r["tls"]["verified"], true, "{r}");
    assert_eq!(peer.seen().sni, None);

    // Nor for an IPv6 literal, when this machine has ::1.
    if let Ok(v6) = Peer::start_on(
        "[::1]:0",
        tls_handler(server_config(&pki.good, rustls::ALL_VERSIONS)),
    ) {
        let (out, r) = json_run(&["-k", &format!("https://{}/", v6.addr)]);
        out.expect_code(0);
        assert_eq!(r["tls"]["version"], "TLSv1.3", "{r}");
        assert_eq!(v6.seen().sni, None);
    }
}

#[test]
fn tls12_and_tls13_peers() {
    let pki = pki();
    let ca = cacert();
    for (version, name, prefix) in [
        (&rustls::version::TLS12, "TLSv1.2", "TLS_ECDHE_"),
        (&rustls::version::TLS13, "TLSv1.3", "TLS13_"),
    ] {
        let peer = Peer::start(tls_handler(server_config(&pki.good, &[version])));
        let (out, r) = json_run(&probe_name(&peer, "probe.test", &["--cacert", &ca]));
        out.expect_code(0);
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["tls"]["version"], name, "{r}");
        assert_eq!(r["tls"]["verified"], true, "{r}");
        let cipher = r["tls"]["cipher"].as_str().unwrap_or_default();
        assert!(cipher.starts_with(prefix), "{name} cipher {cipher:?}: {r}");
        let seen = peer.seen();
        assert_eq!(seen.version, Some(version.version), "{seen:?}");
    }
}

#[test]
fn tls_flag_with_bare_targets() {
    let peer = Peer::tls(&pki().good);
    let ca = cacert();
    let port = peer.port().to_string();
    let hostport = format!("127.0.0.1:{port}");
    let runs = [
        vec!["--tls", "--cacert", &ca, &hostport],
        vec!["--tls", "--cacert", &ca, "-p", &port, "127.0.0.1"],
    ];
    for args in runs {
        let (out, r) = json_run(&args);
        out.expect_code(0);
        assert_eq!(r["scheme"], "https", "{args:?}: {r}");
        assert_eq!(r["port"], peer.port(), "{args:?}: {r}");
        assert_eq!(r["tls"]["version"], "TLSv1.3", "{args:?}: {r}");
        assert_eq!(r["status"], 200, "{args:?}: {r}");
        let seen = peer.seen();
        assert_eq!(seen.error, None, "{seen:?}");
        let request = String::from_utf8_lossy(&seen.request).into_owned();
        assert!(
            request.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")),
            "{args:?}: {request:?}"
        );
    }
}

#[test]
fn tls_flag_defaults_to_port_443_and_leaves_http_urls_alone() {
    // Whatever answers (or not) on 127.0.0.1:443, the record says where it went.
    let out = headprobe()
        .args([
            "--format",
            "json",
            "--tls",
            "--connect-timeout",
            "1s",
            "-t",
            "2s",
        ])
        .arg("127.0.0.1")
        .run();
    let r = out.only_json();
    assert_eq!(r["scheme"], "https", "{r}");
    assert_eq!(r["port"], 443, "{r}");
    assert_eq!(r["addr"], "127.0.0.1:443", "{r}");

    // An explicit http:// keeps its scheme under --tls.
    let server = Server::start(Behaviour::Respond(ok_response()));
    let (out, r) = json_run(&["--tls".to_string(), format!("http://{}/", server.target())]);
    out.expect_code(0);
    assert_eq!(r["scheme"], "http", "{r}");
    assert_eq!(r["tls"], Value::Null, "{r}");
    assert!(server.next_request().starts_with(b"GET / HTTP/1.0\r\n"));
}

#[test]
fn text_format_prints_the_tls_line_first() {
    let peer = Peer::tls(&pki().good);
    let ca = cacert();
    let t = peer.url("probe.test");
    let out = headprobe()
        .args(["--cacert", &ca])
        .args(peer.resolve("probe.test"))
        .arg(&t)
        .run();
    out.expect_code(0);
    let lines = out.lines();
    assert_eq!(lines.len(), 4, "{out:?}");
    let prefix = format!("{t} tls > TLSv1.3 ");
    let rest = lines[0]
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("first line is not the tls line: {out:?}"));
    let (cipher, rest) = rest.split_once(' ').unwrap_or_default();
    assert!(TLS13_SUITES.contains(&cipher), "cipher {cipher:?}: {out:?}");
    assert_eq!(rest, "CN=probe.test (verified)", "{out:?}");
    assert_eq!(
        lines[1..],
        [
            format!("{t} header > HTTP/1.0 200 OK"),
            format!("{t} header > Server: tls-loopback"),
            format!("{t} header > Content-Length: 0"),
        ],
        "{out:?}"
    );
    let _ = peer.seen();
}

#[test]
fn status_format_is_unchanged_for_https() {
    let peer = Peer::tls(&pki().good);
    let ca = cacert();
    let t = peer.url("probe.test");
    let out = headprobe()
        .args(["--format", "status", "--cacert", &ca])
        .args(peer.resolve("probe.test"))
        .arg(&t)
        .run();
    out.expect_code(0);
    let rows = out.status_rows();
    assert_eq!(rows.len(), 1, "{out:?}");
    let row = &rows[0];
    assert_eq!(row.len(), 5, "{out:?}");
    assert_eq!(row[0], t);
    assert_eq!(row[1], "200");
    assert!(row[2].parse::<u64>().is_ok(), "total ms {:?}", row[2]);
    assert_eq!(row[3], peer.hostport());
    assert_eq!(row[4], "OK");
    let _ = peer.seen();
}

#[test]
fn request_bytes_over_tls_are_the_plain_http_ones() {
    let peer = Peer::tls(&pki().good);
    let plain = Server::start(Behaviour::Respond(ok_response()));
    let ca = cacert();
    let extra = ["-H", "X-Probe: 1"];

    let out = headprobe()
        .args(extra)
        .args([
            "--resolve",
            &format!("probe.test:{}:127.0.0.1", plain.port()),
        ])
        .arg(format!("http://probe.test:{}/a/b?c=d", plain.port()))
        .run();
    out.expect_code(0);
    let plain_request = plain.request_text();

    let out = headprobe()
        .args(extra)
        .args(["--cacert", &ca])
        .args(peer.resolve("probe.test"))
        .arg(format!("https://probe.test:{}/a/b?c=d", peer.port()))
        .run();
    out.expect_code(0);
    let tls_request = String::from_utf8_lossy(&peer.seen().request).into_owned();

    let expected = format!(
        "GET /a/b?c=d HTTP/1.0\r\nHost: probe.test:{}\r\nUser-Agent: headprobe/{VERSION}\r\n\
         Accept: */*\r\nX-Probe: 1\r\n\r\n",
        peer.port()
    );
    assert_eq!(tls_request, expected);
    assert_eq!(
        tls_request,
        plain_request.replace(
            &format!("probe.test:{}", plain.port()),
            &format!("probe.test:{}", peer.port())
        ),
        "differs from the plain-HTTP request"
    );

    // The bare default request too.
    let (out, _) = json_run(&["--cacert", &ca, &format!("https://{}/", peer.hostport())]);
    out.expect_code(0);
    let request = String::from_utf8_lossy(&peer.seen().request).into_owned();
    assert_eq!(
        request,
        format!(
            "GET / HTTP/1.0\r\nHost: {}\r\nUser-Agent: headprobe/{VERSION}\r\nAccept: */*\r\n\r\n",
            peer.hostport()
        )
    );
}
