//! The I/O of a probe thread's lookups: one UDP socket per server (and local address),
//! shared by all of them, and one retransmission timer, owned by one driver task.
//!
//! This is the shape of h2's connection task and hickory's exchange background: the
//! driver (`drive`, spawned on the thread's executor by the first lookup, ending when
//! the last one is over) reads every reply and handles every try that is up; a lookup
//! only registers its questions and waits for the driver to complete it. Each lookup's
//! logic stays in its `Exchange` (no I/O there).
//!
//! A socket per lookup cost, per name, a socket taken from a pool and put back, a
//! readiness registration, a reactor event and a wake-up for each reply, and a timer
//! inserted into the reactor and removed again. Here the replies of many lookups are
//! read in one go after one event, and one timer serves every retransmission.
//!
//! A reply goes to a query only if its ID, its source address and (in `Exchange::reply`)
//! its question are the query's. Anything else (a late copy of an answer already taken,
//! or a datagram from someone else) is dropped and counted (`dropped_replies`), never
//! charged to a lookup in flight.
//!
//! The source port is chosen at random once per socket, not per lookup, as c-ares does;
//! each query's 16-bit ID is random and never shared by two queries in flight.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use futures_lite::future;

use super::answer::Answer;
use super::exchange::{over_tcp, Exchange, Next};
use crate::net::rt;
use crate::proto::dns::message::QType;

/// Big enough for any UDP reply to a query without EDNS (512 bytes by RFC 1035) and for
/// servers that send more anyway.
const UDP_BUFFER: usize = 1500;
/// The receive buffer asked for each socket: 200 replies (two per lookup in flight)
/// of up to 4 KiB of kernel memory each.
const RECEIVE_BUFFER: usize = 800 * 1024;
/// Datagrams read from one socket before the driver looks at the others and the timer.
const READS_PER_TURN: usize = 256;

thread_local! {
    static ENGINE: Engine = Engine::default();
}

/// Datagrams dropped in this process because they matched no query in flight.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// How many DNS datagrams the resolver dropped so far because they matched no query in
/// flight (ID, question and source address): late copies of answers already taken, or
/// someone else's.
pub fn dropped_replies() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

fn dropped() {
    DROPPED.fetch_add(1, Ordering::Relaxed);
}

/// Asks `questions` about `name` of `servers` (starting at index `first`), from the
/// local address `source` (None: any), until each has an answer or `deadline`. Answers
/// come back in the order asked. Polled under `rt::block_on`, whose executor runs the
/// driver.
pub async fn ask(
    servers: Arc<[SocketAddr]>,
    first: usize,
    name: &str,
    questions: &[QType],
    source: Option<IpAddr>,
    seed: impl FnOnce() -> u64,
    deadline: Instant,
) -> Arc<[Answer]> {
    let token = ENGINE.with(|e| e.start(name, questions, servers, first, source, seed, deadline));
    let withdraw = Withdraw(token, std::marker::PhantomData);
    loop {
        match future::poll_fn(|cx| ENGINE.with(|e| e.poll(token, cx))).await {
            Step::Over(answers) => {
                std::mem::forget(withdraw);
                return answers;
            }
            Step::Tcp(index, q) => {
                // Boxed: rare, and its state would otherwise enlarge every lookup.
                let tcp = over_tcp(q.server, source, &q.query, q.id, name, q.qtype, deadline);
                let answer = Box::pin(tcp).await;
                ENGINE.with(|e| e.answered_over_tcp(token, index, answer));
            }
        }
    }
}

/// A lookup dropped before its answer (its probe was cancelled or timed out) leaves.
///
/// Its token is known only to this thread's engine, so the lookup must not move to
/// another thread: the marker makes it `!Send`, and the compiler refuses the move.
struct Withdraw(u64, std::marker::PhantomData<*const ()>);

impl Drop for Withdraw {
    fn drop(&mut self) {
        let _ = ENGINE.try_with(|e| e.withdraw(self.0));
    }
}

enum Step {
    Over(Arc<[Answer]>),
    Tcp(usize, super::exchange::TcpQuestion),
}

#[derive(Default)]
struct Engine {
    state: RefCell<State>,
}

struct Request {
    ex: Exchange,
    source: Option<IpAddr>,
    /// The lookup's waker, woken by the driver when it is over or must go to TCP.
    waker: Option<Waker>,
    /// Questions whose answers came back truncated, and the server that sent each: for
    /// the lookup to ask over TCP, one after the other.
    tcp: Vec<(usize, SocketAddr)>,
}

struct Socket {
    server: SocketAddr,
    source: Option<IpAddr>,
    /// async-std's socket, which the driver reads.
    io: Rc<rt::UdpSocket>,
    /// The same socket (a duplicate handle), for sends that never wait: a datagram
    /// that finds the send buffer full is lost, as the network would lose it.
    send: std::net::UdpSocket,
}

#[derive(Default)]
struct State {
    sockets: Vec<Socket>,
    requests: HashMap<u64, Request, Fast>,
    /// Query IDs in flight, to their lookup's token.
    ids: HashMap<u16, u64, Fast>,
    next_token: u64,
    /// The query ID stream (SplitMix64), seeded by the first lookup.
    id_state: Option<u64>,
    /// When the earliest try is up.
    timer_at: Option<Instant>,
    /// A driver task is running (spawned, and not yet ended).
    driving: bool,
    /// The driver's waker: new sockets and earlier tries wake it.
    driver: Option<Waker>,
}

/// The driver's own state: a read in flight per socket and the timer.
struct Driver {
    reads: Vec<Read>,
    timer: rt::Timer,
}

/// One socket's pending read; it hands back its buffer with the outcome.
type Read = Pin<Box<dyn Future<Output = (io::Result<usize>, Vec<u8>)>>>;

fn read(io: Rc<rt::UdpSocket>, mut buf: Vec<u8>) -> Read {
    Box::pin(async move {
        let got = io.recv(&mut buf).await;
        (got, buf)
    })
}

/// The driver task: runs until no lookup is left.
async fn drive() {
    let mut driver = Driver {
        reads: Vec::new(),
        timer: rt::Timer::never(),
    };
    future::poll_fn(|cx| ENGINE.with(|e| e.drive(&mut driver, cx))).await;
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    fn start(
        &self,
        name: &str,
        questions: &[QType],
        servers: Arc<[SocketAddr]>,
        first: usize,
        source: Option<IpAddr>,
        seed: impl FnOnce() -> u64,
        deadline: Instant,
    ) -> u64 {
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        let token = st.next_token;
        st.next_token += 1;
        let id_state = st.id_state.get_or_insert_with(seed);
        // Each question's ID: one that no query in flight on this thread has.
        let n = questions.len().min(2);
        let mut asked = [(QType::A, 0u16); 2];
        for i in 0..n {
            let id = loop {
                let id = split_mix(id_state);
                if !st.ids.contains_key(&id) && asked[..i].iter().all(|&(_, a)| a != id) {
                    break id;
                }
            };
            asked[i] = (questions[i], id);
        }
        let ex = Exchange::new(name, &asked[..n], servers, first, deadline);
        for id in ex.ids() {
            st.ids.insert(id, token);
        }
        st.requests.insert(
            token,
            Request {
                ex,
                source,
                waker: None,
                tcp: Vec::new(),
            },
        );
        st.try_next(token, Instant::now());
        if !st.driving {
            st.driving = true;
            drop(rt::spawn_local(drive()));
        }
        token
    }

    fn poll(&self, token: u64, cx: &mut Context<'_>) -> Poll<Step> {
        let mut st = self.state.borrow_mut();
        let Some(r) = st.requests.get_mut(&token) else {
            // Not expected: a lookup leaves only by being over or dropped.
            return Poll::Ready(Step::Over(Arc::from([])));
        };
        if let Some((index, server)) = r.tcp.pop() {
            let question = r.ex.tcp_question(index, server);
            r.waker = None;
            return Poll::Ready(Step::Tcp(index, question));
        }
        if r.ex.is_over() {
            let r = st.remove(token);
            return Poll::Ready(Step::Over(r.ex.finish()));
        }
        match &mut r.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    fn answered_over_tcp(&self, token: u64, index: usize, answer: Answer) {
        let mut st = self.state.borrow_mut();
        if let Some(r) = st.requests.get_mut(&token) {
            r.ex.answered_over_tcp(index, answer, Instant::now());
            if !r.ex.is_over() {
                st.try_next_if_idle(token, Instant::now());
            }
        }
    }

    fn withdraw(&self, token: u64) {
        let Ok(mut st) = self.state.try_borrow_mut() else {
            return;
        };
        if st.requests.contains_key(&token) {
            st.remove(token);
        }
    }

    /// One turn of the driver: reads what has arrived on every socket and handles the
    /// tries that are up; `Ready` once no lookup is left.
    fn drive(&self, driver: &mut Driver, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        match &mut st.driver {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        loop {
            while driver.reads.len() < st.sockets.len() {
                let io = Rc::clone(&st.sockets[driver.reads.len()].io);
                driver.reads.push(read(io, vec![0u8; UDP_BUFFER]));
            }
            for i in 0..driver.reads.len() {
                for _ in 0..READS_PER_TURN {
                    let Poll::Ready((got, buf)) = driver.reads[i].as_mut().poll(cx) else {
                        break;
                    };
                    let now = Instant::now();
                    match got {
                        Ok(len) => st.datagram(i, &buf[..len], now),
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                            st.port_closed(i, now);
                        }
                        Err(e) => {
                            // Another error from the network (host unreachable, ...): the
                            // server is out for the lookups that asked it.
                            let server = st.sockets[i].server;
                            st.each_asking(server, now, |ex, index| {
                                ex.unsendable(index, &e);
                                Next::TryNow
                            });
                        }
                    }
                    driver.reads[i] = read(Rc::clone(&st.sockets[i].io), buf);
                }
            }
            let now = Instant::now();
            if st.timer_at.is_some_and(|t| now >= t) {
                st.timer_at = None;
                let up: Vec<u64> = (st.requests.iter())
                    .filter(|(_, r)| r.ex.try_is_up(now))
                    .map(|(&t, _)| t)
                    .collect();
                for token in up {
                    st.try_next(token, now);
                }
                st.timer_at = st.requests.values().filter_map(|r| r.ex.due()).min();
            }
            if st.requests.is_empty() {
                // The reads in flight go with the driver; the sockets stay for the next.
                st.driving = false;
                st.driver = None;
                return Poll::Ready(());
            }
            // A socket opened by a try above is read before the driver sleeps.
            if driver.reads.len() < st.sockets.len() {
                continue;
            }
            match st.timer_at {
                Some(at) => driver.timer.set_at(at),
                None => driver.timer = rt::Timer::never(),
            }
            if Pin::new(&mut driver.timer).poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl State {
    fn remove(&mut self, token: u64) -> Request {
        let r = self.requests.remove(&token).expect("a request in flight");
        for id in r.ex.ids() {
            self.ids.remove(&id);
        }
        r
    }

    /// The socket for `server` from `source`, opened on first use.
    fn socket(&mut self, server: SocketAddr, source: Option<IpAddr>) -> io::Result<usize> {
        if let Some(i) =
            (self.sockets.iter()).position(|s| s.server == server && s.source == source)
        {
            return Ok(i);
        }
        let any: IpAddr = match server.is_ipv4() {
            true => Ipv4Addr::UNSPECIFIED.into(),
            false => Ipv6Addr::UNSPECIFIED.into(),
        };
        // `--interface ADDR`: queries go from it, to servers of its family (a socket bound
        // to an IPv4 address cannot reach an IPv6 server).
        let from = source.filter(|ip| ip.is_ipv4() == server.is_ipv4());
        let std = std::net::UdpSocket::bind(SocketAddr::new(from.unwrap_or(any), 0))?;
        // Connected, as glibc's resolver does: the kernel then reports a closed port
        // (ICMP port unreachable) as an error instead of leaving the lookup to time
        // out, keeps datagrams from any other address away (the source half of
        // matching a reply), and skips a route lookup per query.
        std.connect(server)?;
        // Replies of up to MAX_IN_FLIGHT lookups may wait here at once: room for them
        // (the kernel caps the size at net.core.rmem_max; the default is kept if not).
        let _ = socket2::SockRef::from(&std).set_recv_buffer_size(RECEIVE_BUFFER);
        let send = std.try_clone()?;
        // Non-blocking from here (async-std sets it on the shared file description).
        let io = Rc::new(rt::UdpSocket::from(std));
        self.sockets.push(Socket {
            server,
            source,
            io,
            send,
        });
        // The driver starts reading it.
        if let Some(driver) = &self.driver {
            driver.wake_by_ref();
        }
        Ok(self.sockets.len() - 1)
    }

    /// Starts the request's next try (sending its queries), or finishes it; wakes its
    /// lookup when it is over.
    fn try_next(&mut self, token: u64, now: Instant) {
        // Each failed send rules a server out, so this ends within one round of them.
        loop {
            let Some(r) = self.requests.get_mut(&token) else {
                return;
            };
            let Some(index) = r.ex.start_try(now) else {
                break;
            };
            let (server, source) = (r.ex.servers()[index], r.source);
            let socket = match self.socket(server, source) {
                Ok(i) => i,
                Err(e) => {
                    if let Some(r) = self.requests.get_mut(&token) {
                        r.ex.no_socket(&e);
                    }
                    break;
                }
            };
            let Some(r) = self.requests.get_mut(&token) else {
                return;
            };
            let io = &self.sockets[socket].send;
            let error = r.ex.queries_for(index).find_map(|q| io.send(q).err());
            match error {
                // A full send buffer loses the datagram, as the network would.
                None => {}
                Some(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Some(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    // An earlier query's ICMP error: the port is closed for every lookup
                    // that asked it, this one included (which then tries the next).
                    r.ex.sent(index, now);
                    self.port_closed(socket, now);
                    return;
                }
                Some(e) => {
                    r.ex.unsendable(index, &e);
                    continue;
                }
            }
            r.ex.sent(index, now);
            let due = r.ex.due();
            self.timer_by(due);
            return;
        }
        self.wake(token);
    }

    /// After a TCP answer: another try if the other question still waits on nothing.
    fn try_next_if_idle(&mut self, token: u64, now: Instant) {
        if let Some(r) = self.requests.get(&token) {
            if r.ex.due().is_none() {
                self.try_next(token, now);
            }
        }
    }

    /// Makes the driver's timer go off by `due`, if it would not.
    fn timer_by(&mut self, due: Option<Instant>) {
        if let Some(due) = due {
            if self.timer_at.is_none_or(|t| due < t) {
                self.timer_at = Some(due);
                if let Some(driver) = &self.driver {
                    driver.wake_by_ref();
                }
            }
        }
    }

    fn wake(&mut self, token: u64) {
        if let Some(w) = self.requests.get_mut(&token).and_then(|r| r.waker.take()) {
            w.wake();
        }
    }

    /// A datagram on socket `i` (so from its server: the socket is connected). It goes
    /// to the lookup whose query has its ID and asked that server; `Exchange::reply`
    /// checks the question. Anything else is dropped and counted.
    fn datagram(&mut self, i: usize, msg: &[u8], now: Instant) {
        let (server, source) = (self.sockets[i].server, self.sockets[i].source);
        let id = msg.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        let token = id.and_then(|id| self.ids.get(&id).copied());
        let asked = token.and_then(|token| {
            let r = self.requests.get_mut(&token)?;
            let index = r.ex.asked(server).filter(|_| r.source == source)?;
            Some((token, r, index))
        });
        let Some((token, r, index)) = asked else {
            dropped();
            return;
        };
        match r.ex.reply(index, msg, now) {
            Next::Tcp(question) => {
                r.tcp.push((question, server));
                self.wake(token);
            }
            Next::Dropped => dropped(),
            next => self.after(token, next, now),
        }
    }

    fn after(&mut self, token: u64, next: Next, now: Instant) {
        match next {
            Next::Wait | Next::Dropped => {
                // The grace for the other family may have moved the try's end closer.
                let due = self.requests.get(&token).and_then(|r| r.ex.due());
                self.timer_by(due);
            }
            Next::TryNow => self.try_next(token, now),
            // Only a reply asks for TCP, and `datagram` handles that.
            Next::Tcp(_) => self.wake(token),
            Next::Over => self.wake(token),
        }
    }

    fn port_closed(&mut self, i: usize, now: Instant) {
        let server = self.sockets[i].server;
        self.each_asking(server, now, |ex, index| ex.port_closed(index));
    }

    /// Applies `f` to every lookup in flight that asked `server`, then acts on its
    /// outcome.
    fn each_asking(
        &mut self,
        server: SocketAddr,
        now: Instant,
        mut f: impl FnMut(&mut Exchange, usize) -> Next,
    ) {
        let mut outcomes = Vec::new();
        for (&token, r) in self.requests.iter_mut() {
            if r.ex.is_over() {
                continue;
            }
            if let Some(index) = r.ex.asked(server) {
                outcomes.push((token, f(&mut r.ex, index)));
            }
        }
        for (token, next) in outcomes {
            self.after(token, next, now);
        }
    }
}

/// The engine's maps: keys from a counter and from a random stream, hashed in a few
/// instructions (foldhash, seeded per process) rather than SipHash's dozens.
type Fast = foldhash::fast::RandomState;

/// The step of a SplitMix64 stream's state.
pub(super) const SPLIT_MIX_STEP: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output for a state: well-mixed bits, no system call.
pub(super) fn split_mix_output(state: u64) -> u64 {
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The next query ID from the thread's stream.
fn split_mix(state: &mut u64) -> u16 {
    *state = state.wrapping_add(SPLIT_MIX_STEP);
    split_mix_output(*state) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A DNS server on 127.0.0.1 that answers A queries with 127.0.0.9, holding each
    /// name's reply until the test releases that name.
    struct Held {
        addr: SocketAddr,
        release: mpsc::Sender<&'static str>,
    }

    /// The name asked in a query (dotted, lower case as sent).
    fn qname(query: &[u8]) -> String {
        let (mut pos, mut labels) = (12, Vec::new());
        while let Some(&len) = query.get(pos) {
            if len == 0 {
                break;
            }
            let label = query
                .get(pos + 1..pos + 1 + len as usize)
                .unwrap_or_default();
            labels.push(String::from_utf8_lossy(label).into_owned());
            pos += 1 + len as usize;
        }
        labels.join(".")
    }

    /// The reply to `query`: one A record, 127.0.0.9.
    fn answer(query: &[u8]) -> Vec<u8> {
        let mut reply = query.to_vec();
        reply[2] |= 0x80; // QR
        reply[7] = 1; // ANCOUNT
        reply.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 9]);
        reply
    }

    impl Held {
        fn start() -> Held {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(5)))
                .unwrap();
            let addr = socket.local_addr().unwrap();
            let (release, released) = mpsc::channel::<&'static str>();
            std::thread::spawn(move || {
                let mut held: Vec<(String, Vec<u8>, SocketAddr)> = Vec::new();
                let mut free: Vec<&str> = Vec::new();
                let mut buf = [0u8; 512];
                // Ends when the test drops its sender (bounded: 2,000 rounds of 5 ms).
                for _ in 0..2000 {
                    match released.try_recv() {
                        Ok(name) => free.push(name),
                        Err(mpsc::TryRecvError::Disconnected) => return,
                        Err(mpsc::TryRecvError::Empty) => {}
                    }
                    if let Ok((len, from)) = socket.recv_from(&mut buf) {
                        held.push((qname(&buf[..len]), buf[..len].to_vec(), from));
                    }
                    held.retain(|(name, query, from)| {
                        let go = free.contains(&name.as_str());
                        if go {
                            let _ = socket.send_to(&answer(query), from);
                        }
                        !go
                    });
                }
            });
            Held { addr, release }
        }
    }

    fn lookup(held: &Held, name: &'static str) -> impl Future<Output = Arc<[Answer]>> {
        let servers: Arc<[SocketAddr]> = Arc::from([held.addr]);
        let deadline = Instant::now() + Duration::from_secs(5);
        async move { ask(servers, 0, name, &[QType::A], None, || 7, deadline).await }
    }

    fn has_address(answers: &[Answer]) -> bool {
        matches!(&answers[0], Answer::Addrs(ips, _) if ips[0] == IpAddr::from([127, 0, 0, 9]))
    }

    /// Waits for `task`, failing the test if it takes a second: its reply was sent, so
    /// only a lost wake-up would delay it.
    async fn promptly(task: rt::JoinHandle<Arc<[Answer]>>) -> Arc<[Answer]> {
        let late = async {
            rt::sleep(Duration::from_secs(1)).await;
            panic!("a lookup whose reply had come was not woken");
        };
        future::or(task, late).await
    }

    async fn let_run() {
        for _ in 0..4 {
            future::yield_now().await;
        }
    }

    /// Replies are read by the driver, whichever lookup finished before: a reply that
    /// comes after another lookup is done is still read.
    #[test]
    fn a_reply_after_another_lookup_is_done_is_still_read() {
        let held = Held::start();
        rt::block_on(async {
            let first = rt::spawn_local(lookup(&held, "first.test"));
            let last = rt::spawn_local(lookup(&held, "last.test"));
            let_run().await;
            held.release.send("last.test").unwrap();
            assert!(has_address(&promptly(last).await));
            held.release.send("first.test").unwrap();
            assert!(has_address(&promptly(first).await));
        });
    }

    /// The same when a lookup is cancelled (its probe stopped): it leaves, and the
    /// others are still answered.
    #[test]
    fn a_cancelled_lookup_leaves_and_the_others_are_answered() {
        let held = Held::start();
        rt::block_on(async {
            let kept = rt::spawn_local(lookup(&held, "kept.test"));
            let dropped = rt::spawn_local(lookup(&held, "dropped.test"));
            let_run().await;
            assert!(dropped.cancel().await.is_none());
            ENGINE.with(|e| assert_eq!(e.state.borrow().requests.len(), 1));
            held.release.send("kept.test").unwrap();
            assert!(has_address(&promptly(kept).await));
        });
    }

    /// A server that never answers: the engine's one timer retransmits and then ends
    /// the lookup at its deadline, with the tries counted.
    #[test]
    fn a_silent_server_ends_the_lookup_at_its_deadline() {
        let held = Held::start();
        let servers: Arc<[SocketAddr]> = Arc::from([held.addr]);
        let started = Instant::now();
        let deadline = started + Duration::from_millis(1000);
        let answers = rt::block_on(ask(
            servers,
            0,
            "silent.test",
            &[QType::A],
            None,
            || 7,
            deadline,
        ));
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1000) && took < Duration::from_secs(3),
            "{took:?}"
        );
        assert!(
            matches!(
                &answers[0],
                Answer::Failed(super::super::answer::Failure::NoAnswer { tries, .. }) if *tries >= 2
            ),
            "retransmitted after 300 ms (and 900 ms), then the deadline: {answers:?}"
        );
        ENGINE.with(|e| assert!(e.state.borrow().requests.is_empty()));
    }

    /// A server first asked on a retransmission gets its socket then, from the timer:
    /// that socket is watched at once, so its answer is read when it comes, not at the
    /// next retransmission (900 ms).
    #[test]
    fn a_socket_opened_by_a_retransmission_is_read_at_once() {
        let silent = Held::start();
        let good = Held::start();
        good.release.send("late.test").unwrap();
        let servers: Arc<[SocketAddr]> = Arc::from([silent.addr, good.addr]);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(5);
        let answers = rt::block_on(ask(
            servers,
            0,
            "late.test",
            &[QType::A],
            None,
            || 7,
            deadline,
        ));
        let took = started.elapsed();
        assert!(has_address(&answers), "{answers:?}");
        assert!(
            took < Duration::from_millis(800),
            "answered after the retransmission at 300 ms, read at {took:?}"
        );
    }

    /// The engine knows each lookup in flight by its query IDs, and forgets both once
    /// the lookup is answered.
    #[test]
    fn lookups_are_forgotten_once_answered() {
        let held = Held::start();
        rt::block_on(async {
            let names = ["a.test", "b.test", "c.test", "d.test", "e.test", "f.test"];
            let tasks: Vec<_> = (names.iter())
                .map(|&n| rt::spawn_local(lookup(&held, n)))
                .collect();
            let_run().await;
            ENGINE.with(|e| {
                let st = e.state.borrow();
                assert_eq!(st.ids.len(), names.len());
                assert_eq!(st.requests.len(), names.len());
            });
            for (name, task) in names.iter().zip(tasks) {
                held.release.send(name).unwrap();
                assert!(has_address(&promptly(task).await));
            }
            ENGINE.with(|e| assert!(e.state.borrow().ids.is_empty()));
        });
    }
}
