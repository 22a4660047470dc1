//! `Peer`: a loopback listener running a handler of the test's own on a thread per
//! connection, for what `Server` cannot script (TLS servers, proxies). Each connection
//! reports what it saw as a `Seen`.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use futures_rustls::rustls::{ProtocolVersion, ServerConfig, ServerConnection, StreamOwned};

use super::{close_and_drain, read_head, WAIT};

/// No peer thread waits on its client longer than this.
pub const PEER_PATIENCE: Duration = Duration::from_secs(15);

/// What a peer saw on one connection. Proxies send it once the handshake is over (before
/// relaying), the others when the connection ends.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// The bytes the client sent: the request head of an HTTP proxy, every handshake
    /// byte of a SOCKS5 proxy, everything sent to a stalling proxy, the decrypted
    /// request head of a TLS peer, the ClientHello of a raw one.
    pub bytes: Vec<u8>,
    /// Where the proxy connected on the client's behalf.
    pub upstream: Option<SocketAddr>,
    /// The SNI the client sent (TLS peers only).
    pub sni: Option<String>,
    /// The negotiated version, when the handshake completed (TLS peers only).
    pub version: Option<ProtocolVersion>,
    /// Why the handshake failed on the server's side, if it did (TLS peers only).
    pub error: Option<String>,
}

impl Seen {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Serves one connection; sends exactly one `Seen`.
pub type Handler = Arc<dyn Fn(TcpStream, &Sender<Seen>) + Send + Sync>;

/// A loopback listener running a handler on a thread per connection.
pub struct Peer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    seen: Receiver<Seen>,
}

impl Peer {
    pub fn start(handler: Handler) -> Peer {
        Peer::start_on("127.0.0.1:0", handler).expect("bind 127.0.0.1:0")
    }

    pub fn start_on(addr: &str, handler: Handler) -> std::io::Result<Peer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, seen) = mpsc::channel();
        let accept_stop = Arc::clone(&stop);
        thread::spawn(move || {
            for conn in listener.incoming() {
                if accept_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let _ = stream.set_read_timeout(Some(PEER_PATIENCE));
                let _ = stream.set_write_timeout(Some(PEER_PATIENCE));
                let handler = Arc::clone(&handler);
                let tx: Sender<Seen> = tx.clone();
                thread::spawn(move || handler(stream, &tx));
            }
        });
        Ok(Peer { addr, stop, seen })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:PORT`.
    pub fn hostport(&self) -> String {
        self.addr.to_string()
    }

    /// `SCHEME://127.0.0.1:PORT`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.addr)
    }

    /// `SCHEME://USER:PASS@127.0.0.1:PORT`.
    pub fn url_with(&self, scheme: &str, user: &str, pass: &str) -> String {
        format!("{scheme}://{user}:{pass}@{}", self.addr)
    }

    /// `https://NAME:PORT/`.
    pub fn https_url(&self, name: &str) -> String {
        format!("https://{name}:{}/", self.port())
    }

    /// `--resolve NAME:PORT:127.0.0.1`.
    pub fn resolve(&self, name: &str) -> [String; 2] {
        [
            "--resolve".to_string(),
            format!("{name}:{}:127.0.0.1", self.port()),
        ]
    }

    /// What the next connection saw; panics if none is reported within `WAIT`.
    #[track_caller]
    pub fn seen(&self) -> Seen {
        self.seen
            .recv_timeout(WAIT)
            .expect("the peer reported no connection in time")
    }

    /// What the next connection saw, or None if none is reported within `timeout`.
    pub fn seen_within(&self, timeout: Duration) -> Option<Seen> {
        self.seen.recv_timeout(timeout).ok()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept thread so it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// A TLS peer: handshake, record SNI and version, read the request head, write `answer`,
/// close_notify, then wait for the client to close. Reports when the connection ends,
/// with `error` set if the handshake failed.
pub fn tls_handler(config: Arc<ServerConfig>, answer: Vec<u8>) -> Handler {
    Arc::new(move |mut tcp: TcpStream, tx: &Sender<Seen>| {
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
                let _ = tx.send(seen);
                return;
            }
        }
        seen.sni = conn.server_name().map(str::to_string);
        seen.version = conn.protocol_version();
        let mut tls = StreamOwned::new(conn, tcp);
        seen.bytes = read_head(&mut tls);
        let _ = tls.write_all(&answer);
        tls.conn.send_close_notify();
        let _ = tls.flush();
        close_and_drain(&mut tls.sock);
        let _ = tx.send(seen);
    })
}
