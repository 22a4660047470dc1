//! One DNS question asked over the network: UDP with retransmission and rotation over
//! the servers, TCP when the answer comes back truncated. Bounded by the deadline.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};

use super::{Answer, Failure, OTHER_FAMILY_GRACE};
use crate::proto::dns::message::{parse_reply, query_len, rcode, write_query, QType, Reply};

/// The first retransmission: well under a second, so one lost datagram costs a probe
/// little of its budget, yet above a loaded resolver's usual reply time on a LAN.
const FIRST_RETRY: Duration = Duration::from_millis(300);
/// Retransmission intervals double up to this.
const MAX_RETRY: Duration = Duration::from_secs(2);
/// Malformed replies in a row before a server's answers are given up on.
const MAX_MALFORMED: u32 = 3;
/// Big enough for any UDP reply to a query without EDNS (512 bytes by RFC 1035) and for
/// servers that send more anyway.
const UDP_BUFFER: usize = 1500;

/// Idle UDP sockets kept between exchanges: a socket costs six system calls to open,
/// register, deregister and close, a third of what a lookup costs. Each has its own
/// random source port, and an exchange takes whichever is free, so ports still vary.
pub struct Sockets {
    v4: std::sync::Mutex<Vec<Socket>>,
    v6: std::sync::Mutex<Vec<Socket>>,
    /// Receive buffers, kept too: a fresh zeroed one per exchange showed in profiles.
    buffers: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl Sockets {
    pub fn new() -> Sockets {
        Sockets {
            v4: std::sync::Mutex::new(Vec::new()),
            v6: std::sync::Mutex::new(Vec::new()),
            buffers: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn list(&self, v4: bool) -> std::sync::MutexGuard<'_, Vec<Socket>> {
        let list = if v4 { &self.v4 } else { &self.v6 };
        list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An idle socket of the family of `server`, or a new one.
    fn take(&self, server: SocketAddr) -> std::io::Result<Socket> {
        let v4 = server.is_ipv4();
        if let Some(socket) = self.list(v4).pop() {
            return Ok(socket);
        }
        let any: IpAddr = match v4 {
            true => Ipv4Addr::UNSPECIFIED.into(),
            false => Ipv6Addr::UNSPECIFIED.into(),
        };
        let io = Async::<UdpSocket>::bind(SocketAddr::new(any, 0))?;
        Ok(Socket { io, v4, peer: None })
    }

    fn take_buffer(&self) -> Vec<u8> {
        let idle = self.buffers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        idle.unwrap_or_else(|| vec![0u8; UDP_BUFFER])
    }

    fn put_buffer(&self, buffer: Vec<u8>, cap: usize) {
        let mut idle = self.buffers.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < cap {
            idle.push(buffer);
        }
    }

    /// Keeps `socket` for a later exchange, unless `cap` are idle already.
    fn put(&self, socket: Socket, cap: usize) {
        let mut list = self.list(socket.v4);
        if list.len() < cap {
            list.push(socket);
        }
    }
}

/// A UDP socket and its family, known without asking the kernel (a `getsockname` per
/// exchange showed in `strace -c`), and the server it is connected to.
///
/// Connected, as glibc's resolver does: the kernel then reports a closed port (ICMP
/// port unreachable) as an error instead of leaving the lookup to time out, keeps
/// datagrams from any other address away, and skips a route lookup per query.
struct Socket {
    io: Async<UdpSocket>,
    v4: bool,
    peer: Option<SocketAddr>,
}

impl Socket {
    /// Points the socket at `server` (a no-op when it already is).
    fn connect(&mut self, server: SocketAddr) -> std::io::Result<()> {
        if self.peer != Some(server) {
            self.peer = None;
            self.io.get_ref().connect(server)?;
            self.peer = Some(server);
        }
        Ok(())
    }
}

impl Default for Sockets {
    fn default() -> Self {
        Sockets::new()
    }
}

/// A datagram that is a DNS response, though to no question of this exchange: a late
/// copy of an earlier exchange's answer on a reused socket, to be ignored.
fn is_stray_response(msg: &[u8]) -> bool {
    msg.len() >= 12 && msg[2] & 0x80 != 0
}

/// What a reply from one server means for the question.
enum Verdict {
    /// The question is answered (addresses, or a negative answer).
    Done(Answer),
    /// This server failed it; another may not.
    ServerFailed(Failure),
}

fn judge(reply: &Reply, server: SocketAddr) -> Verdict {
    let negative_ttl = reply.ttl;
    match reply.rcode {
        rcode::NOERROR if !reply.addrs.is_empty() => {
            Verdict::Done(Answer::Addrs(Arc::from(reply.addrs.as_slice()), reply.ttl))
        }
        rcode::NOERROR => Verdict::Done(Answer::NoData(negative_ttl)),
        rcode::NXDOMAIN => Verdict::Done(Answer::NxDomain(negative_ttl)),
        code => Verdict::ServerFailed(Failure::Rcode { code, server }),
    }
}

/// One question of an exchange: where its query lies in the exchange's buffer, and its
/// answer once there is one.
struct Question {
    qtype: QType,
    id: u16,
    query: std::ops::Range<usize>,
    answer: Option<Answer>,
    /// Servers that failed this question (an error code, or could not be sent to).
    out: Vec<bool>,
    failure: Option<Failure>,
}

/// Asks `servers` (starting at index `first`, rotating on each retransmission) the
/// `questions` (type and query ID) about `name`, all on one socket, until each has an
/// answer or `deadline`. Once one question has addresses, the others get
/// `OTHER_FAMILY_GRACE` more (RFC 8305's resolution delay). Answers come back in the
/// order asked.
pub async fn ask(
    sockets: &Sockets,
    idle_cap: usize,
    servers: &[SocketAddr],
    first: usize,
    name: &str,
    questions: &[(QType, u16)],
    deadline: Instant,
) -> Arc<[Answer]> {
    let n = servers.len();
    // Every query in one buffer: one allocation for the exchange, not one per question.
    let mut queries = Vec::with_capacity(questions.len() * query_len(name));
    let mut qs: Vec<Question> = questions
        .iter()
        .map(|&(qtype, id)| {
            let start = queries.len();
            let built = write_query(&mut queries, id, name, qtype);
            let answer = match (built, n) {
                (Err(_), _) => Some(Answer::Failed(Failure::BadName)),
                (_, 0) => Some(Answer::Failed(Failure::NoServer)),
                _ => None,
            };
            Question {
                qtype,
                id,
                query: start..queries.len(),
                answer,
                out: vec![false; n],
                failure: None,
            }
        })
        .collect();
    let mut socket: Option<Socket> = None;
    let mut buf = sockets.take_buffer();
    let (mut tries, mut malformed) = (0u32, 0u32);
    let mut wait = FIRST_RETRY;
    let mut next = first % n.max(1);
    let mut grace_ends: Option<Instant> = None;
    'tries: loop {
        if qs.iter().all(|q| q.answer.is_some()) {
            break;
        }
        let ends = grace_ends.map_or(deadline, |g| g.min(deadline));
        if Instant::now() >= ends {
            break;
        }
        // Each try goes to the next server in turn that some open question may still use.
        let open = |q: &Question, i: usize| q.answer.is_none() && !q.out[i];
        let Some(index) = (0..n)
            .map(|i| (next + i) % n)
            .find(|&i| qs.iter().any(|q| open(q, i)))
        else {
            break;
        };
        next = index + 1;
        let server = servers[index];
        let family_fits = socket.as_ref().is_some_and(|s| s.v4 == server.is_ipv4());
        if !family_fits {
            // One socket per exchange at a time: a new family means another socket (late
            // answers to the old one are lost, which only costs another try).
            if let Some(old) = socket.take() {
                sockets.put(old, idle_cap);
            }
            match sockets.take(server) {
                Ok(s) => socket = Some(s),
                Err(e) => {
                    let error = crate::report::error::os_text(&e);
                    for q in qs.iter_mut().filter(|q| q.answer.is_none()) {
                        q.answer = Some(Answer::Failed(Failure::Socket {
                            error: error.clone(),
                        }));
                    }
                    break;
                }
            }
        }
        let Some(connected) = socket.as_mut() else {
            break;
        };
        let mut unsendable = connected.connect(server).err();
        let sock = &connected.io;
        for q in qs.iter().filter(|q| open(q, index)) {
            if unsendable.is_some() {
                break;
            }
            unsendable = sock.send(&queries[q.query.clone()]).await.err();
        }
        if let Some(e) = unsendable {
            // A refusal of an earlier query of this try comes back on the next send.
            let failure = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => Failure::PortClosed { server },
                _ => Failure::Unreachable {
                    server,
                    error: crate::report::error::os_text(&e),
                },
            };
            rule_out(&mut qs, index, &failure);
            socket = None;
            continue;
        }
        tries += 1;
        let mut try_ends = (Instant::now() + wait).min(ends);
        wait = (wait * 2).min(MAX_RETRY);
        // One timer for the try, armed once, not once per datagram awaited.
        let mut try_timer = Timer::at(try_ends);
        // Right after sending, an answer cannot be there yet: wait until the socket is
        // readable instead of asking the kernel first (a recvfrom per lookup saved).
        let mut just_sent = true;
        // Listen until this try's time is up. Answers to earlier tries count too when
        // they come from this server, or were queued before the socket moved to it: it
        // is connected to one server at a time.
        loop {
            let receive = async {
                if std::mem::take(&mut just_sent) {
                    sock.readable().await?;
                }
                sock.recv_from(&mut buf).await
            };
            let received = future::or(async { Some(receive.await) }, async {
                (&mut try_timer).await;
                None
            })
            .await;
            let (len, from) = match received {
                None => break,
                Some(Ok(got)) => got,
                // Nothing listens on the server's port: it is out for this lookup.
                Some(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    rule_out(&mut qs, index, &Failure::PortClosed { server });
                    // Its pending error is read, but the socket is not kept.
                    socket = None;
                    continue 'tries;
                }
                // Another error from the network for this server: next try.
                Some(Err(_)) => break,
            };
            // The connected server's, or (queued before a move to the next server) one
            // from an earlier try: its sender is named as it is.
            if !servers.contains(&from) {
                continue;
            }
            let msg = &buf[..len];
            let id = msg.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            let q = qs.iter_mut().find(|q| Some(q.id) == id);
            if matches!(&q, Some(q) if q.answer.is_some())
                || (q.is_none() && is_stray_response(msg))
            {
                // Another copy of an answer already taken (a retransmission's).
                continue;
            }
            let parsed = q.map(|q| (parse_reply(msg, q.id, name, q.qtype), q));
            let mut ask_next_now = false;
            match parsed {
                None | Some((Err(_), _)) => {
                    malformed += 1;
                    if malformed >= MAX_MALFORMED {
                        for q in qs.iter_mut().filter(|q| q.answer.is_none()) {
                            q.answer = Some(Answer::Failed(Failure::Malformed {
                                server: from,
                                replies: malformed,
                            }));
                        }
                        break 'tries;
                    }
                    // Ask again at once rather than wait out this try.
                    wait = FIRST_RETRY;
                    break;
                }
                Some((Ok(reply), q)) if reply.truncated => {
                    // Boxed: rare, and its state would otherwise enlarge every lookup.
                    let query = &queries[q.query.clone()];
                    let tcp = over_tcp(from, query, q.id, name, q.qtype, deadline);
                    q.answer = Some(Box::pin(tcp).await);
                }
                Some((Ok(reply), q)) => match judge(&reply, from) {
                    Verdict::Done(answer) => q.answer = Some(answer),
                    Verdict::ServerFailed(failure) => {
                        if let Some(i) = servers.iter().position(|s| *s == from) {
                            q.out[i] = true;
                        }
                        if q.out.iter().all(|&o| o) {
                            q.answer = Some(Answer::Failed(failure));
                        } else {
                            q.failure = Some(failure);
                            ask_next_now = true;
                        }
                    }
                },
            }
            if qs.iter().all(|q| q.answer.is_some()) {
                break 'tries;
            }
            let has_addrs = qs
                .iter()
                .any(|q| matches!(q.answer, Some(Answer::Addrs(..))));
            if has_addrs && grace_ends.is_none() {
                let g = Instant::now() + OTHER_FAMILY_GRACE;
                grace_ends = Some(g);
                if g < try_ends {
                    try_ends = g;
                    try_timer.set_at(g);
                }
            }
            if ask_next_now {
                break;
            }
        }
    }
    if let Some(socket) = socket {
        sockets.put(socket, idle_cap);
    }
    sockets.put_buffer(buf, idle_cap);
    qs.into_iter()
        .map(|q| match q.answer {
            Some(answer) => answer,
            None => Answer::Failed(match q.failure {
                Some(failure) if q.out.iter().all(|&o| o) => failure,
                Some(failure @ Failure::Rcode { .. }) => failure,
                _ => Failure::NoAnswer {
                    servers: servers.to_vec(),
                    tries,
                },
            }),
        })
        .collect()
}

/// Server `index` can do no more for any question of this lookup, for `failure`.
fn rule_out(qs: &mut [Question], index: usize, failure: &Failure) {
    for q in qs {
        q.out[index] = true;
        q.failure = Some(failure.clone());
    }
}

/// The same question over TCP (RFC 7766), for an answer too big for a datagram.
async fn over_tcp(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    name: &str,
    qtype: QType,
    deadline: Instant,
) -> Answer {
    let work = async {
        let mut stream = Async::<TcpStream>::connect(server)
            .await
            .map_err(|e| crate::report::error::os_text(&e))?;
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
        framed.extend_from_slice(query);
        stream
            .write_all(&framed)
            .await
            .map_err(|e| crate::report::error::os_text(&e))?;
        let mut len = [0u8; 2];
        stream
            .read_exact(&mut len)
            .await
            .map_err(|e| crate::report::error::os_text(&e))?;
        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
        stream
            .read_exact(&mut msg)
            .await
            .map_err(|e| crate::report::error::os_text(&e))?;
        Ok::<_, String>(msg)
    };
    let got = future::or(async { Some(work.await) }, async {
        Timer::at(deadline).await;
        None
    })
    .await;
    let failed = |error: String| Answer::Failed(Failure::Truncated { server, error });
    match got {
        None => failed("no answer over TCP in time".into()),
        Some(Err(error)) => failed(error),
        Some(Ok(msg)) => match parse_reply(&msg, id, name, qtype) {
            Err(_) => failed("the TCP answer was malformed".into()),
            Ok(reply) if reply.truncated => failed("the TCP answer was truncated too".into()),
            Ok(reply) => match judge(&reply, server) {
                Verdict::Done(answer) => answer,
                Verdict::ServerFailed(failure) => Answer::Failed(failure),
            },
        },
    }
}
