//! One lookup's questions, asked over UDP with retransmission and rotation over the
//! servers, as a state machine with no I/O of its own: the engine (`engine.rs`) sends
//! what it says, feeds it the replies and the time, and asks the answers of it once it
//! is over. The TCP fallback for a truncated answer is here too (`over_tcp`).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::{future, AsyncReadExt, AsyncWriteExt};

use super::answer::{Answer, Failure};
use crate::net::rt;
use crate::proto::dns::message::{
    parse_reply, query_len, rcode, write_query, Malformed, QType, Reply,
};

/// Once one family's addresses are in, how long the other may still take (RFC 8305's
/// resolution delay).
const OTHER_FAMILY_GRACE: Duration = Duration::from_millis(50);

/// The first retransmission: well under a second, so one lost datagram costs a probe
/// little of its budget, yet above a loaded resolver's usual reply time on a LAN.
const FIRST_RETRY: Duration = Duration::from_millis(300);
/// Retransmission intervals double up to this.
const MAX_RETRY: Duration = Duration::from_secs(2);
/// Malformed replies to one question before it is given up on.
const MAX_MALFORMED: u32 = 3;
/// Servers a lookup can rotate over (`--resolver` given more often is a usage error;
/// glibc reads three from resolv.conf).
pub const MAX_SERVERS: usize = 64;

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
    query: Range<usize>,
    answer: Option<Answer>,
    /// Truncated over UDP: being asked over TCP by the lookup, not to be sent again.
    over_tcp: bool,
    /// Servers that failed this question (an error code, or could not be sent to).
    out: ServerSet,
    /// Malformed replies to this question so far.
    malformed: u32,
    failure: Option<Failure>,
}

impl Question {
    fn open(&self, server: usize) -> bool {
        self.answer.is_none() && !self.over_tcp && !self.out.has(server)
    }
}

/// Servers by their index in the list (at most `MAX_SERVERS`).
#[derive(Clone, Copy, Default)]
struct ServerSet(u64);

impl ServerSet {
    fn has(self, index: usize) -> bool {
        self.0 & (1 << index) != 0
    }

    fn add(&mut self, index: usize) {
        self.0 |= 1 << index;
    }

    /// Every one of the first `n` servers is in.
    fn all(self, n: usize) -> bool {
        let mask = match n {
            64.. => u64::MAX,
            n => (1 << n) - 1,
        };
        self.0 & mask == mask
    }
}

/// What the engine does next for an exchange, after a reply or a failure.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Keep listening until the try's time is up.
    Wait,
    /// Start the next try now (a server failed the question, or sent garbage).
    TryNow,
    /// Ask question `.0` over TCP: its answer was truncated.
    Tcp(usize),
    /// Every question is answered, or the exchange gave up.
    Over,
    /// The datagram answers none of the questions asked (a late copy, or another
    /// question): dropped, and nothing changes.
    Dropped,
}

/// A truncated question, for the lookup to ask over TCP.
pub struct TcpQuestion {
    pub server: SocketAddr,
    pub query: Vec<u8>,
    pub id: u16,
    pub qtype: QType,
}

/// The questions (A and AAAA, or one of them) about one name, asked of `servers`
/// starting at index `first` and rotating on each retransmission, until each has an
/// answer or the deadline. Once one question has addresses, the others get
/// `OTHER_FAMILY_GRACE` more (RFC 8305's resolution delay).
pub struct Exchange {
    name: Box<str>,
    servers: Arc<[SocketAddr]>,
    /// Every query in one buffer: one allocation for the exchange, not one per question.
    queries: Vec<u8>,
    qs: Vec<Question>,
    /// The server the next try goes to (before skipping those with nothing to ask).
    next: usize,
    /// Servers sent to at least once: their answers count whenever they come.
    asked: ServerSet,
    tries: u32,
    wait: Duration,
    /// When the current try is up (`None` before the first).
    try_ends: Option<Instant>,
    grace_ends: Option<Instant>,
    deadline: Instant,
    /// Given up: no more tries.
    over: bool,
}

impl Exchange {
    /// `questions` are the types asked and their query IDs; `servers` holds at most
    /// `MAX_SERVERS`.
    pub fn new(
        name: &str,
        questions: &[(QType, u16)],
        servers: Arc<[SocketAddr]>,
        first: usize,
        deadline: Instant,
    ) -> Exchange {
        let n = servers.len();
        let mut queries = Vec::with_capacity(questions.len() * query_len(name));
        let qs = questions
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
                    over_tcp: false,
                    out: ServerSet::default(),
                    malformed: 0,
                    failure: None,
                }
            })
            .collect();
        Exchange {
            name: name.into(),
            servers,
            queries,
            qs,
            next: first % n.max(1),
            asked: ServerSet::default(),
            tries: 0,
            wait: FIRST_RETRY,
            try_ends: None,
            grace_ends: None,
            deadline,
            over: false,
        }
    }

    pub fn ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.qs.iter().map(|q| q.id)
    }

    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// Every question is answered, or the exchange gave up.
    pub fn is_over(&self) -> bool {
        self.over || self.qs.iter().all(|q| q.answer.is_some())
    }

    /// When the current try is up, and the engine must call `try_is_up`.
    pub fn due(&self) -> Option<Instant> {
        match self.is_over() {
            true => None,
            false => self.try_ends,
        }
    }

    fn ends(&self) -> Instant {
        self.grace_ends
            .map_or(self.deadline, |g| g.min(self.deadline))
    }

    /// The server the next try goes to, or `None` when there is none: then the exchange
    /// is over, unless a question is being asked over TCP.
    pub fn start_try(&mut self, now: Instant) -> Option<usize> {
        if self.is_over() {
            return None;
        }
        if now >= self.ends() {
            self.over = true;
            return None;
        }
        let n = self.servers.len();
        // Each try goes to the next server in turn that some open question may still use.
        let qs = &self.qs;
        let found = (0..n)
            .map(|i| (self.next + i) % n)
            .find(|&i| qs.iter().any(|q| q.open(i)));
        match found {
            Some(index) => {
                self.next = index + 1;
                Some(index)
            }
            None => {
                if !self.qs.iter().any(|q| q.over_tcp && q.answer.is_none()) {
                    self.over = true;
                }
                self.try_ends = None;
                None
            }
        }
    }

    /// The queries a try to server `index` sends: the questions still open for it.
    pub fn queries_for(&self, index: usize) -> impl Iterator<Item = &[u8]> + '_ {
        self.qs
            .iter()
            .filter(move |q| q.open(index))
            .map(|q| &self.queries[q.query.clone()])
    }

    /// The try to server `index` is sent.
    pub fn sent(&mut self, index: usize, now: Instant) {
        self.asked.add(index);
        self.tries += 1;
        self.try_ends = Some((now + self.wait).min(self.ends()));
        self.wait = (self.wait * 2).min(MAX_RETRY);
    }

    /// The try's queries could not be sent to server `index`: it is out for this lookup.
    pub fn unsendable(&mut self, index: usize, error: &io::Error) {
        let server = self.servers[index];
        let failure = match error.kind() {
            io::ErrorKind::ConnectionRefused => Failure::PortClosed { server },
            _ => Failure::Unreachable {
                server,
                error: crate::report::error::os_text(error),
            },
        };
        self.rule_out(index, &failure);
    }

    /// No socket could be opened for the queries: every open question fails.
    pub fn no_socket(&mut self, error: &io::Error) {
        let error = crate::report::error::os_text(error);
        for q in self.qs.iter_mut().filter(|q| q.answer.is_none()) {
            q.answer = Some(Answer::Failed(Failure::Socket {
                error: error.clone(),
            }));
        }
    }

    /// The index of `server` among this exchange's servers, if it asked it.
    pub fn asked(&self, server: SocketAddr) -> Option<usize> {
        let index = self.servers.iter().position(|s| *s == server)?;
        self.asked.has(index).then_some(index)
    }

    /// Nothing listens on server `index`'s port (ICMP port unreachable).
    pub fn port_closed(&mut self, index: usize) -> Next {
        if self.is_over() {
            return Next::Over;
        }
        let server = self.servers[index];
        self.rule_out(index, &Failure::PortClosed { server });
        Next::TryNow
    }

    /// The time is `now`: is the try up?
    pub fn try_is_up(&self, now: Instant) -> bool {
        self.due().is_some_and(|due| now >= due)
    }

    /// A malformed reply from `server` to question `qi`: that question fails once it
    /// has had `MAX_MALFORMED`, the others are not touched.
    fn malformed_from(&mut self, qi: usize, server: SocketAddr) -> Next {
        let q = &mut self.qs[qi];
        q.malformed += 1;
        if q.malformed >= MAX_MALFORMED {
            let replies = q.malformed;
            q.answer = Some(Answer::Failed(Failure::Malformed { server, replies }));
            if self.is_over() {
                return Next::Over;
            }
            return Next::Wait;
        }
        // Ask again at once rather than wait out this try.
        self.wait = FIRST_RETRY;
        Next::TryNow
    }

    /// A reply from server `index` (one this exchange asked), whose ID is one of ours.
    pub fn reply(&mut self, index: usize, msg: &[u8], now: Instant) -> Next {
        if self.is_over() {
            return Next::Dropped;
        }
        let from = self.servers[index];
        let id = msg.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        let Some(qi) = self.qs.iter().position(|q| Some(q.id) == id) else {
            return Next::Dropped;
        };
        let q = &mut self.qs[qi];
        if q.answer.is_some() || q.over_tcp {
            // Another copy of an answer already taken (a retransmission's).
            return Next::Dropped;
        }
        let mut next = Next::Wait;
        match parse_reply(msg, q.id, &self.name, q.qtype) {
            // Not a response, or one to another question (a late answer to an earlier
            // query that had the ID this one reuses, or someone else's datagram): it
            // answers nothing asked, so it is nobody's fault.
            Err(Malformed::NotOurs) => return Next::Dropped,
            // Our ID, our server, and garbled: a malformed answer to this question.
            Err(Malformed::Garbled) => return self.malformed_from(qi, from),
            Ok(reply) if reply.truncated => {
                q.over_tcp = true;
                return Next::Tcp(qi);
            }
            Ok(reply) => match judge(&reply, from) {
                Verdict::Done(answer) => q.answer = Some(answer),
                Verdict::ServerFailed(failure) => {
                    q.out.add(index);
                    if q.out.all(self.servers.len()) {
                        q.answer = Some(Answer::Failed(failure));
                    } else {
                        q.failure = Some(failure);
                        next = Next::TryNow;
                    }
                }
            },
        }
        if self.is_over() {
            return Next::Over;
        }
        self.start_grace(now);
        next
    }

    /// Once one question has addresses, the others have `OTHER_FAMILY_GRACE` more.
    fn start_grace(&mut self, now: Instant) {
        let has_addrs = self
            .qs
            .iter()
            .any(|q| matches!(q.answer, Some(Answer::Addrs(..))));
        if has_addrs && self.grace_ends.is_none() {
            let g = now + OTHER_FAMILY_GRACE;
            self.grace_ends = Some(g);
            self.try_ends = self.try_ends.map(|t| t.min(g));
        }
    }

    /// Question `index`, truncated over UDP, to be asked over TCP.
    pub fn tcp_question(&self, index: usize, server: SocketAddr) -> TcpQuestion {
        let q = &self.qs[index];
        TcpQuestion {
            server,
            query: self.queries[q.query.clone()].to_vec(),
            id: q.id,
            qtype: q.qtype,
        }
    }

    /// The TCP answer to question `index`.
    pub fn answered_over_tcp(&mut self, index: usize, answer: Answer, now: Instant) {
        let q = &mut self.qs[index];
        q.over_tcp = false;
        q.answer = Some(answer);
        if !self.is_over() {
            self.start_grace(now);
        }
    }

    /// Server `index` can do no more for any question of this lookup, for `failure`.
    fn rule_out(&mut self, index: usize, failure: &Failure) {
        for q in &mut self.qs {
            q.out.add(index);
            q.failure = Some(failure.clone());
        }
    }

    /// The answers, in the order asked.
    pub fn finish(self) -> Arc<[Answer]> {
        let (servers, tries) = (self.servers, self.tries);
        self.qs
            .into_iter()
            .map(|q| match q.answer {
                Some(answer) => answer,
                None => Answer::Failed(match q.failure {
                    Some(failure) if q.out.all(servers.len()) => failure,
                    Some(failure @ Failure::Rcode { .. }) => failure,
                    _ => Failure::NoAnswer {
                        servers: servers.to_vec(),
                        tries,
                    },
                }),
            })
            .collect()
    }
}

/// A TCP connection to `server`, from `source` when given.
async fn connect(server: SocketAddr, source: Option<IpAddr>) -> io::Result<rt::TcpStream> {
    let Some(source) = source else {
        return rt::TcpStream::connect(server).await;
    };
    let domain = socket2::Domain::for_address(server);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(source, 0).into())?;
    rt::TcpStream::connect_bound(socket, server).await
}

/// The same question over TCP (RFC 7766), for an answer too big for a datagram.
pub async fn over_tcp(
    server: SocketAddr,
    source: Option<IpAddr>,
    query: &[u8],
    id: u16,
    name: &str,
    qtype: QType,
    deadline: Instant,
) -> Answer {
    let work = async {
        let mut stream = connect(server, source)
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
        rt::sleep_until(deadline).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn servers(n: u16) -> Arc<[SocketAddr]> {
        (1..=n)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect()
    }

    /// A reply to `query` with `rcode` and, for an A query, one address.
    fn reply(query: &[u8], rcode: u8, addr: Option<[u8; 4]>) -> Vec<u8> {
        let mut msg = query.to_vec();
        msg[2] |= 0x80;
        msg[3] = rcode;
        if let Some(ip) = addr {
            msg[7] = 1;
            msg.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
            msg.extend_from_slice(&ip);
        }
        msg
    }

    fn exchange(qtypes: &[QType], n: u16) -> Exchange {
        let questions: Vec<(QType, u16)> = qtypes.iter().map(|&q| (q, 100 + q.code())).collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        Exchange::new("x.test", &questions, servers(n), 0, deadline)
    }

    fn query(ex: &Exchange, index: usize, nth: usize) -> Vec<u8> {
        ex.queries_for(index).nth(nth).unwrap().to_vec()
    }

    /// An answer to another question under one of ours IDs (a late answer to the query
    /// that had the ID before) is ignored: it costs no malformed count and no try.
    #[test]
    fn a_response_to_another_question_is_ignored() {
        let mut ex = exchange(&[QType::A], 1);
        let now = Instant::now();
        assert_eq!(ex.start_try(now), Some(0));
        let mine = query(&ex, 0, 0);
        ex.sent(0, now);
        let mut other = Exchange::new("y.test", &[(QType::A, 101)], servers(1), 0, now);
        other.start_try(now);
        let theirs = reply(&query(&other, 0, 0), 0, Some([127, 0, 0, 2]));
        for _ in 0..MAX_MALFORMED + 1 {
            assert_eq!(ex.reply(0, &theirs, now), Next::Dropped);
        }
        assert!(!ex.is_over());
        assert_eq!(
            ex.reply(0, &reply(&mine, 0, Some([127, 0, 0, 1])), now),
            Next::Over
        );
        let answers = ex.finish();
        assert!(
            matches!(&answers[0], Answer::Addrs(ips, _) if ips[0] == IpAddr::from([127, 0, 0, 1]))
        );
    }

    /// Garbage under a question's ID, though, counts against that question: three and
    /// it fails, naming the server.
    #[test]
    fn garbage_fails_the_question_on_the_third() {
        let mut ex = exchange(&[QType::A], 1);
        let now = Instant::now();
        ex.start_try(now);
        let cut = query(&ex, 0, 0)[..10].to_vec();
        ex.sent(0, now);
        assert_eq!(ex.reply(0, &cut, now), Next::TryNow);
        assert_eq!(ex.reply(0, &cut, now), Next::TryNow);
        assert_eq!(ex.reply(0, &cut, now), Next::Over);
        let answers = ex.finish();
        assert!(matches!(
            &answers[0],
            Answer::Failed(Failure::Malformed { replies: 3, .. })
        ));
    }

    /// A garbled answer to one question fails that question only: the other family's
    /// answer still comes through.
    #[test]
    fn garbage_to_one_question_leaves_the_other() {
        let mut ex = exchange(&[QType::A, QType::Aaaa], 1);
        let now = Instant::now();
        ex.start_try(now);
        let (a, aaaa) = (query(&ex, 0, 0), query(&ex, 0, 1));
        ex.sent(0, now);
        for _ in 0..MAX_MALFORMED {
            assert_ne!(ex.reply(0, &a[..10], now), Next::Over);
        }
        assert!(!ex.is_over());
        assert_eq!(ex.reply(0, &reply(&aaaa, 0, None), now), Next::Over);
        let answers = ex.finish();
        assert!(matches!(
            &answers[0],
            Answer::Failed(Failure::Malformed { .. })
        ));
        assert!(matches!(&answers[1], Answer::NoData(_)), "{answers:?}");
    }

    /// SERVFAIL from one server moves the question on to the next at once; when every
    /// server has failed it, the failure is the last server's.
    #[test]
    fn a_server_failure_moves_on_to_the_next_server() {
        let mut ex = exchange(&[QType::A], 2);
        let now = Instant::now();
        assert_eq!(ex.start_try(now), Some(0));
        let q = query(&ex, 0, 0);
        ex.sent(0, now);
        assert_eq!(
            ex.reply(0, &reply(&q, rcode::SERVFAIL, None), now),
            Next::TryNow
        );
        assert_eq!(ex.start_try(now), Some(1));
        ex.sent(1, now);
        assert_eq!(
            ex.reply(1, &reply(&q, rcode::SERVFAIL, None), now),
            Next::Over
        );
        let answers = ex.finish();
        let server = servers(2)[1];
        assert!(
            matches!(&answers[0], Answer::Failed(Failure::Rcode { code: rcode::SERVFAIL, server: s }) if *s == server),
            "{answers:?}"
        );
    }

    /// Once A has addresses, AAAA has OTHER_FAMILY_GRACE more, not the rest of the try.
    #[test]
    fn the_other_family_gets_a_grace_period() {
        let mut ex = exchange(&[QType::A, QType::Aaaa], 1);
        let now = Instant::now();
        ex.start_try(now);
        let a = query(&ex, 0, 0);
        ex.sent(0, now);
        assert_eq!(ex.due(), Some(now + FIRST_RETRY));
        assert_eq!(
            ex.reply(0, &reply(&a, 0, Some([127, 0, 0, 1])), now),
            Next::Wait
        );
        assert_eq!(ex.due(), Some(now + OTHER_FAMILY_GRACE));
        let later = now + OTHER_FAMILY_GRACE;
        assert!(ex.try_is_up(later));
        assert_eq!(ex.start_try(later), None);
        assert!(ex.is_over());
        let answers = ex.finish();
        assert!(matches!(&answers[0], Answer::Addrs(..)));
        assert!(matches!(
            &answers[1],
            Answer::Failed(Failure::NoAnswer { tries: 1, .. })
        ));
    }
}
