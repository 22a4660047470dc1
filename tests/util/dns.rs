//! A scripted DNS server on 127.0.0.1 for the resolver tests: it answers from a zone,
//! or fails, drops, garbles or truncates as a test's script says, and counts every
//! question it is asked.
//!
//! Packets are built by hand (RFC 1035), independently of the code under test, so a
//! shared misreading of the format cannot hide.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;

/// A question as the server saw it.
#[derive(Debug, Clone)]
pub struct Question {
    pub id: u16,
    /// Lower-cased, without the final dot.
    pub name: String,
    pub qtype: u16,
    /// How many times this (name, type) has been asked, this one included.
    pub nth: usize,
}

/// What to do with a question.
#[derive(Debug, Clone)]
pub enum Action {
    /// Answer from the zone: addresses of the asked family, NODATA when the name has
    /// none of it, NXDOMAIN when the zone lacks the name.
    Zone,
    /// Reply with this response code and no records.
    Rcode(u8),
    /// Send nothing.
    Drop,
    /// Send these bytes as they are.
    Raw(Vec<u8>),
    /// The query's ID and a response's flags, then garbage: a malformed answer to
    /// this very query.
    Junk,
    /// Before the zone's answer, datagrams that answer no query in flight: three with
    /// another ID and no response bit (as a stray query would be), two responses with
    /// another ID, a runt too short for a header, and a response with the query's ID
    /// but another question.
    Noisy,
    /// The zone's answer, cut to this many bytes.
    Cut(usize),
    /// An empty reply with the TC bit set (the TCP side, if started, answers in full).
    Truncate,
    /// The zone's answer, held back with every other held one until `hold` of them are
    /// waiting or no query has come for 50 ms; then all are sent. `max_held` tells how
    /// many queries a client had waiting at once.
    Hold,
}

type Script = dyn Fn(&Question) -> Action + Send + Sync;

struct State {
    zone: HashMap<String, Vec<IpAddr>>,
    script: Box<Script>,
    counts: Mutex<HashMap<(String, u16), usize>>,
    log: Mutex<Vec<Question>>,
    /// Where each UDP query came from, in arrival order.
    senders: Mutex<Vec<SocketAddr>>,
    ttl: u32,
    stop: AtomicBool,
    /// `Action::Hold`: how many held answers release them all.
    hold: usize,
    max_held: AtomicUsize,
}

/// The server: a UDP thread, and a TCP thread when asked for.
pub struct DnsServer {
    addr: SocketAddr,
    state: Arc<State>,
    tcp: bool,
}

impl DnsServer {
    /// A server answering every question from `zone` (name, addresses).
    pub fn zone(zone: &[(&str, &[&str])]) -> DnsServer {
        DnsServer::scripted(zone, |_| Action::Zone)
    }

    /// A server that asks `script` what to do with each question.
    pub fn scripted(
        zone: &[(&str, &[&str])],
        script: impl Fn(&Question) -> Action + Send + Sync + 'static,
    ) -> DnsServer {
        DnsServer::start(zone, Box::new(script), false, usize::MAX)
    }

    /// A server that holds its answers (`Action::Hold`) until `hold` queries are waiting
    /// or no query has come for 50 ms.
    pub fn holding(zone: &[(&str, &[&str])], hold: usize) -> DnsServer {
        DnsServer::start(zone, Box::new(|_| Action::Hold), false, hold)
    }

    /// The most queries waiting for a held answer at once.
    pub fn max_held(&self) -> usize {
        self.state.max_held.load(Ordering::SeqCst)
    }

    /// Also answers over TCP, on the same port, always from the zone.
    pub fn scripted_with_tcp(
        zone: &[(&str, &[&str])],
        script: impl Fn(&Question) -> Action + Send + Sync + 'static,
    ) -> DnsServer {
        DnsServer::start(zone, Box::new(script), true, usize::MAX)
    }

    fn start(zone: &[(&str, &[&str])], script: Box<Script>, tcp: bool, hold: usize) -> DnsServer {
        let zone = zone
            .iter()
            .map(|(name, ips)| {
                let ips = ips
                    .iter()
                    .map(|ip| ip.parse().expect("zone address"))
                    .collect();
                (name.to_ascii_lowercase(), ips)
            })
            .collect();
        let state = Arc::new(State {
            zone,
            script,
            counts: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
            senders: Mutex::new(Vec::new()),
            ttl: 60,
            stop: AtomicBool::new(false),
            hold,
            max_held: AtomicUsize::new(0),
        });
        // The TCP side needs the UDP side's port: retry until both are free.
        for _ in 0..50 {
            let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp 127.0.0.1:0");
            let addr = udp.local_addr().expect("local addr");
            let listener = if tcp {
                match TcpListener::bind(addr) {
                    Ok(l) => Some(l),
                    Err(_) => continue,
                }
            } else {
                None
            };
            udp.set_read_timeout(Some(Duration::from_millis(50)))
                .expect("read timeout");
            let s = Arc::clone(&state);
            thread::spawn(move || serve_udp(udp, s));
            if let Some(listener) = listener {
                let s = Arc::clone(&state);
                thread::spawn(move || serve_tcp(listener, s));
            }
            return DnsServer { addr, state, tcp };
        }
        panic!("no port free for both UDP and TCP on 127.0.0.1");
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `--resolver` value for this server.
    pub fn arg(&self) -> String {
        self.addr.to_string()
    }

    /// Questions asked for (name, type) so far.
    pub fn asked(&self, name: &str, qtype: u16) -> usize {
        let counts = self.state.counts.lock().unwrap();
        counts
            .get(&(name.to_ascii_lowercase(), qtype))
            .copied()
            .unwrap_or(0)
    }

    /// Every question so far, in arrival order.
    pub fn log(&self) -> Vec<Question> {
        self.state.log.lock().unwrap().clone()
    }

    /// Where each UDP query came from, in arrival order.
    pub fn senders(&self) -> Vec<SocketAddr> {
        self.state.senders.lock().unwrap().clone()
    }

    pub fn total(&self) -> usize {
        self.state.log.lock().unwrap().len()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if self.tcp {
            // Wakes the accept loop so that it sees the flag.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        }
    }
}

fn serve_udp(sock: UdpSocket, state: Arc<State>) {
    let mut buf = [0u8; 1500];
    let mut held: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
    let release = |held: &mut Vec<(Vec<u8>, SocketAddr)>| {
        for (reply, to) in held.drain(..) {
            let _ = sock.send_to(&reply, to);
        }
    };
    while !state.stop.load(Ordering::SeqCst) {
        let Ok((len, from)) = sock.recv_from(&mut buf) else {
            // Quiet for the read timeout: whatever is held goes out.
            release(&mut held);
            continue;
        };
        state.senders.lock().unwrap().push(from);
        let Some(question) = parse_question(&buf[..len], &state) else {
            continue;
        };
        let reply = match (state.script)(&question) {
            Action::Zone => zone_reply(&buf[..len], &question, &state, false),
            Action::Rcode(code) => reply(&buf[..len], code, false, &[], state.ttl),
            Action::Drop => continue,
            Action::Raw(bytes) => bytes,
            Action::Junk => {
                let mut junk = buf[..2].to_vec();
                junk.extend_from_slice(b"\x81\x80garbage");
                junk
            }
            Action::Noisy => {
                for noise in noise(&buf[..len], &question, &state) {
                    let _ = sock.send_to(&noise, from);
                }
                zone_reply(&buf[..len], &question, &state, false)
            }
            Action::Cut(n) => {
                let mut r = zone_reply(&buf[..len], &question, &state, false);
                r.truncate(n);
                r
            }
            Action::Truncate => reply(&buf[..len], 0, true, &[], state.ttl),
            Action::Hold => {
                held.push((zone_reply(&buf[..len], &question, &state, false), from));
                state.max_held.fetch_max(held.len(), Ordering::SeqCst);
                if held.len() >= state.hold {
                    release(&mut held);
                }
                continue;
            }
        };
        let _ = sock.send_to(&reply, from);
    }
}

fn serve_tcp(listener: TcpListener, state: Arc<State>) {
    for conn in listener.incoming() {
        if state.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut conn) = conn else { continue };
        let state = Arc::clone(&state);
        thread::spawn(move || {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let mut len = [0u8; 2];
            if conn.read_exact(&mut len).is_err() {
                return;
            }
            let mut query = vec![0u8; u16::from_be_bytes(len) as usize];
            if conn.read_exact(&mut query).is_err() {
                return;
            }
            let Some(question) = parse_question(&query, &state) else {
                return;
            };
            let r = zone_reply(&query, &question, &state, true);
            let mut framed = (r.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&r);
            let _ = conn.write_all(&framed);
        });
    }
}

/// The question of a query (no compression in queries), counted and logged.
fn parse_question(q: &[u8], state: &State) -> Option<Question> {
    if q.len() < 12 {
        return None;
    }
    let id = u16::from_be_bytes([q[0], q[1]]);
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(pos)? as usize;
        if len == 0 {
            pos += 1;
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(pos + 1..pos + 1 + len)?).to_ascii_lowercase());
        pos += 1 + len;
    }
    let qtype = u16::from_be_bytes([*q.get(pos)?, *q.get(pos + 1)?]);
    let name = labels.join(".");
    let nth = {
        let mut counts = state.counts.lock().unwrap();
        let n = counts.entry((name.clone(), qtype)).or_default();
        *n += 1;
        *n
    };
    let question = Question {
        id,
        name,
        qtype,
        nth,
    };
    state.log.lock().unwrap().push(question.clone());
    Some(question)
}

/// What `Action::Noisy` sends before the answer to `query`.
fn noise(query: &[u8], question: &Question, state: &State) -> Vec<Vec<u8>> {
    let foreign = |m: &mut Vec<u8>, by: u16| {
        let id = u16::from_be_bytes([m[0], m[1]]).wrapping_add(by);
        m[..2].copy_from_slice(&id.to_be_bytes());
    };
    let mut noise = Vec::new();
    for by in 1..=3 {
        let mut stray_query = query.to_vec();
        foreign(&mut stray_query, by * 7919);
        noise.push(stray_query);
    }
    for by in 4..=5 {
        let mut response = zone_reply(query, question, state, false);
        foreign(&mut response, by * 7919);
        noise.push(response);
    }
    noise.push(vec![0xAB; 5]);
    // The query's ID, another name (one letter changed) in the question.
    let mut other = zone_reply(query, question, state, false);
    other[13] ^= 0x01;
    noise.push(other);
    noise
}

fn zone_reply(query: &[u8], question: &Question, state: &State, _tcp: bool) -> Vec<u8> {
    match state.zone.get(&question.name) {
        None => reply(query, 3, false, &[], state.ttl),
        Some(ips) => {
            let records: Vec<Vec<u8>> = ips
                .iter()
                .filter_map(|ip| match (ip, question.qtype) {
                    (IpAddr::V4(v4), TYPE_A) => Some(v4.octets().to_vec()),
                    (IpAddr::V6(v6), TYPE_AAAA) => Some(v6.octets().to_vec()),
                    _ => None,
                })
                .collect();
            reply(query, 0, false, &records, state.ttl)
        }
    }
}

/// A reply to `query`: its ID and question, the flags, and one answer per rdata (owner
/// a pointer to the question's name, type and class from the question).
pub fn reply(query: &[u8], rcode: u8, tc: bool, rdatas: &[Vec<u8>], ttl: u32) -> Vec<u8> {
    let question_end = {
        let mut pos = 12;
        while pos < query.len() && query[pos] != 0 {
            pos += 1 + query[pos] as usize;
        }
        (pos + 5).min(query.len())
    };
    let mut m = query[..2].to_vec();
    let flags: u16 = 0x8180 | if tc { 0x0200 } else { 0 } | rcode as u16;
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m.extend_from_slice(&(rdatas.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(&query[12..question_end]);
    let qtype = &query[question_end - 4..question_end - 2];
    for rdata in rdatas {
        m.extend_from_slice(&[0xC0, 12]);
        m.extend_from_slice(qtype);
        m.extend_from_slice(&[0, 1]);
        m.extend_from_slice(&ttl.to_be_bytes());
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(rdata);
    }
    m
}
