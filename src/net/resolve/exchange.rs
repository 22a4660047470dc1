//! One DNS question asked over the network: UDP with retransmission and rotation over
//! the servers, TCP when the answer comes back truncated. Bounded by the deadline.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};

use super::{Answer, Failure};
use crate::proto::dns::message::{build_query, parse_reply, rcode, QType, Reply};

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

/// Asks `servers` (starting at index `first`, rotating on each retransmission) for
/// `qtype` records of `name` until an answer or `deadline`.
pub async fn ask(
    servers: &[SocketAddr],
    first: usize,
    name: &str,
    qtype: QType,
    id: u16,
    deadline: Instant,
) -> Answer {
    let Ok(query) = build_query(id, name, qtype) else {
        return Answer::Failed(Failure::BadName);
    };
    let n = servers.len();
    if n == 0 {
        return Answer::Failed(Failure::NoServer);
    }
    // Servers that could not be sent to, or that answered with an error code.
    let mut out = vec![false; n];
    let mut last_failure = None;
    let mut socket: Option<Async<UdpSocket>> = None;
    let mut buf = vec![0u8; UDP_BUFFER];
    let (mut tries, mut malformed) = (0u32, 0u32);
    let mut wait = FIRST_RETRY;
    let mut next = first % n;
    loop {
        if Instant::now() >= deadline {
            break;
        }
        // Each try goes to the next server in turn that has not failed this question.
        let Some(index) = (0..n).map(|i| (next + i) % n).find(|&i| !out[i]) else {
            // Every server refused or failed the question, or cannot be reached.
            return Answer::Failed(last_failure.unwrap_or(Failure::NoServer));
        };
        next = index + 1;
        let server = servers[index];
        let family_fits = match socket.as_ref().map(|s| s.get_ref().local_addr()) {
            Some(Ok(local)) => local.is_ipv4() == server.is_ipv4(),
            _ => false,
        };
        if !family_fits {
            // One socket per question at a time: a new family means a new socket (late
            // answers to the old one are lost, which only costs another try).
            drop(socket.take());
            let any: IpAddr = match server {
                SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
                SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
            };
            match Async::<UdpSocket>::bind(SocketAddr::new(any, 0)) {
                Ok(s) => socket = Some(s),
                Err(e) => {
                    return Answer::Failed(Failure::Socket {
                        error: crate::report::error::os_text(&e),
                    })
                }
            }
        }
        let Some(sock) = socket.as_ref() else {
            return Answer::Failed(Failure::NoServer);
        };
        if let Err(e) = sock.send_to(&query, server).await {
            out[index] = true;
            last_failure = Some(Failure::Unreachable {
                server,
                error: crate::report::error::os_text(&e),
            });
            continue;
        }
        tries += 1;
        let try_ends = (Instant::now() + wait).min(deadline);
        wait = (wait * 2).min(MAX_RETRY);
        // Listen until this try's time is up; answers to earlier tries count too.
        loop {
            let received = future::or(async { Some(sock.recv_from(&mut buf).await) }, async {
                Timer::at(try_ends).await;
                None
            })
            .await;
            let (len, from) = match received {
                None => break,
                Some(Ok(got)) => got,
                // An ICMP error for an earlier datagram (port unreachable): next try.
                Some(Err(_)) => break,
            };
            if !servers.contains(&from) {
                continue;
            }
            match parse_reply(&buf[..len], id, name, qtype) {
                Err(_) => {
                    malformed += 1;
                    if malformed >= MAX_MALFORMED {
                        return Answer::Failed(Failure::Malformed {
                            server: from,
                            replies: malformed,
                        });
                    }
                    // Ask again at once rather than wait out this try.
                    wait = FIRST_RETRY;
                    break;
                }
                Ok(reply) if reply.truncated => {
                    drop(socket);
                    return over_tcp(from, &query, id, name, qtype, deadline).await;
                }
                Ok(reply) => match judge(&reply, from) {
                    Verdict::Done(answer) => return answer,
                    Verdict::ServerFailed(failure) => {
                        if let Some(i) = servers.iter().position(|s| *s == from) {
                            out[i] = true;
                        }
                        last_failure = Some(failure);
                        break;
                    }
                },
            }
        }
    }
    match last_failure {
        Some(failure @ Failure::Rcode { .. }) => Answer::Failed(failure),
        _ => Answer::Failed(Failure::NoAnswer {
            servers: servers.to_vec(),
            tries,
        }),
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
