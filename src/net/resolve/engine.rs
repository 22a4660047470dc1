//! The I/O of a probe thread's lookups: one UDP socket per server, shared by all of
//! them, and one timer.
//!
//! A socket per lookup cost, per name, a socket taken from a pool and put back, a
//! readiness registration (an `epoll_ctl`), a reactor event and a wake-up for each
//! reply, and a timer inserted into the reactor and removed again. Here the replies of
//! many lookups are read in one go after one event, and one timer serves every
//! retransmission. Each lookup's logic stays in its `Exchange` (no I/O there).
//!
//! Nothing runs in the background: every lookup, when polled, first drives the engine
//! (reads what has arrived, handles tries that are up). The sockets and the timer wake
//! one waiting lookup (the "candidate"), which drives the engine for all.
//!
//! The source port is chosen at random once per socket, not per lookup, as c-ares does;
//! each query's 16-bit ID is random and never shared by two queries in flight.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use async_io::Timer;
use futures_lite::future;

use super::answer::Answer;
use super::exchange::{is_stray_response, over_tcp, Exchange, Next};
use crate::net::rt;
use crate::proto::dns::message::QType;

/// Big enough for any UDP reply to a query without EDNS (512 bytes by RFC 1035) and for
/// servers that send more anyway.
const UDP_BUFFER: usize = 1500;
/// The receive buffer asked for each socket: 200 replies (two per lookup in flight)
/// of up to 4 KiB of kernel memory each.
const RECEIVE_BUFFER: usize = 800 * 1024;

thread_local! {
    static ENGINE: Engine = Engine::new();
}

/// Asks `questions` about `name` of `servers` (starting at index `first`), until each
/// has an answer or `deadline`. Answers come back in the order asked.
pub async fn ask(
    servers: Arc<[SocketAddr]>,
    first: usize,
    name: &str,
    questions: &[QType],
    seed: impl FnOnce() -> u64,
    deadline: Instant,
) -> Arc<[Answer]> {
    let token = ENGINE.with(|e| e.start(name, questions, servers, first, seed, deadline));
    let withdraw = Withdraw(token);
    loop {
        match future::poll_fn(|cx| ENGINE.with(|e| e.poll(token, cx))).await {
            Step::Over(answers) => {
                std::mem::forget(withdraw);
                return answers;
            }
            Step::Tcp(index, q) => {
                // Boxed: rare, and its state would otherwise enlarge every lookup.
                let tcp = over_tcp(q.server, &q.query, q.id, name, q.qtype, deadline);
                let answer = Box::pin(tcp).await;
                ENGINE.with(|e| e.answered_over_tcp(token, index, answer));
            }
        }
    }
}

/// A lookup dropped before its answer (its probe was cancelled or timed out) leaves.
struct Withdraw(u64);

impl Drop for Withdraw {
    fn drop(&mut self) {
        let _ = ENGINE.try_with(|e| e.withdraw(self.0));
    }
}

enum Step {
    Over(Arc<[Answer]>),
    Tcp(usize, super::exchange::TcpQuestion),
}

/// What the sockets and the timer wake: the waker of one waiting lookup.
#[derive(Default)]
struct Signal {
    candidate: Mutex<Option<Waker>>,
    /// Set on each wake-up: a lookup that finishes while one came hands it on.
    fired: AtomicBool,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::SeqCst);
        let waker = self
            .candidate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// `Settings::source`, set by the first resolver that has one.
pub(super) static SOURCE: std::sync::OnceLock<IpAddr> = std::sync::OnceLock::new();

struct Engine {
    signal: Arc<Signal>,
    state: RefCell<State>,
}

struct Request {
    ex: Exchange,
    waker: Option<Waker>,
    /// Questions whose answers came back truncated, and the server that sent each: for
    /// the lookup to ask over TCP, one after the other.
    tcp: Vec<(usize, SocketAddr)>,
}

struct Socket {
    server: SocketAddr,
    io: rt::UdpSocket,
}

struct State {
    sockets: Vec<Socket>,
    requests: HashMap<u64, Request, Fast>,
    /// Query IDs in flight, to their lookup's token.
    ids: HashMap<u16, u64, Fast>,
    next_token: u64,
    /// The query ID stream (SplitMix64), seeded by the first lookup.
    id_state: Option<u64>,
    timer: Timer,
    timer_at: Option<Instant>,
    /// The signal's waker, which the sockets and the timer wake.
    waker: Waker,
    buf: Vec<u8>,
}

impl Engine {
    fn new() -> Engine {
        let signal = Arc::new(Signal::default());
        let waker = Waker::from(Arc::clone(&signal));
        Engine {
            signal,
            state: RefCell::new(State {
                sockets: Vec::new(),
                requests: HashMap::default(),
                ids: HashMap::default(),
                next_token: 0,
                id_state: None,
                timer: Timer::never(),
                timer_at: None,
                waker,
                buf: vec![0u8; UDP_BUFFER],
            }),
        }
    }

    fn start(
        &self,
        name: &str,
        questions: &[QType],
        servers: Arc<[SocketAddr]>,
        first: usize,
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
                waker: None,
                tcp: Vec::new(),
            },
        );
        st.try_next(token, Instant::now());
        token
    }

    fn poll(&self, token: u64, cx: &mut Context<'_>) -> Poll<Step> {
        let mut st = self.state.borrow_mut();
        // Before driving: a wake-up while the sockets are read must reach a lookup.
        self.choose_candidate(cx.waker());
        self.signal.fired.store(false, Ordering::SeqCst);
        st.drive();
        let Some(r) = st.requests.get_mut(&token) else {
            // Not expected: a lookup leaves only by being over or dropped.
            return Poll::Ready(Step::Over(Arc::from([])));
        };
        if let Some((index, server)) = r.tcp.pop() {
            // Off to TCP, and not polled here until back: the others take the wake-ups.
            let question = r.ex.tcp_question(index, server);
            r.waker = None;
            self.hand_on(&st, false);
            return Poll::Ready(Step::Tcp(index, question));
        }
        if r.ex.is_over() {
            let r = st.remove(token);
            self.hand_on(&st, false);
            return Poll::Ready(Step::Over(r.ex.finish()));
        }
        if !r.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            r.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Points the wake-ups at another waiting lookup, as the current one leaves; wakes
    /// it if the leaving one may have taken a wake-up meant for all: `missed`, or one
    /// that came during this poll.
    fn hand_on(&self, st: &State, missed: bool) {
        let next = st.requests.values().find_map(|r| r.waker.clone());
        let mut candidate = self.candidate();
        candidate.clone_from(&next);
        drop(candidate);
        // After the hand-over: a wake-up from now on reaches `next` itself.
        let missed = missed || self.signal.fired.load(Ordering::SeqCst);
        if let (true, Some(waker)) = (missed, next) {
            waker.wake();
        }
    }

    /// Points the sockets' and timer's wake-ups at `current`, the lookup being polled.
    fn choose_candidate(&self, current: &Waker) {
        let mut candidate = self.candidate();
        if !candidate.as_ref().is_some_and(|c| c.will_wake(current)) {
            *candidate = Some(current.clone());
        }
    }

    fn candidate(&self) -> std::sync::MutexGuard<'_, Option<Waker>> {
        self.signal
            .candidate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
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
            let r = st.remove(token);
            // It may have been woken for the others, and will not be polled again.
            let was_candidate = {
                let candidate = self.candidate();
                matches!((&*candidate, &r.waker), (Some(c), Some(w)) if c.will_wake(w))
            };
            self.hand_on(&st, was_candidate);
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

    /// The socket for `server`, opened on first use.
    fn socket(&mut self, server: SocketAddr) -> io::Result<usize> {
        if let Some(i) = self.sockets.iter().position(|s| s.server == server) {
            return Ok(i);
        }
        let any: IpAddr = match server.is_ipv4() {
            true => Ipv4Addr::UNSPECIFIED.into(),
            false => Ipv6Addr::UNSPECIFIED.into(),
        };
        // `--interface ADDR`: queries go from it, to servers of its family.
        let from = SOURCE
            .get()
            .copied()
            .filter(|ip| ip.is_ipv4() == server.is_ipv4());
        let io = rt::UdpSocket::bind(SocketAddr::new(from.unwrap_or(any), 0))?;
        // Connected, as glibc's resolver does: the kernel then reports a closed port
        // (ICMP port unreachable) as an error instead of leaving the lookup to time
        // out, keeps datagrams from any other address away, and skips a route lookup
        // per query.
        io.get_ref().connect(server)?;
        // Replies of up to MAX_IN_FLIGHT lookups may wait here at once: room for them
        // (the kernel caps the size at net.core.rmem_max; the default is kept if not).
        let _ = socket2::SockRef::from(io.get_ref()).set_recv_buffer_size(RECEIVE_BUFFER);
        // Watched from now on: a socket opened while the engine is driven (by a
        // retransmission, or a move to the next server) would otherwise go unread
        // until the next drive, which may be the next retransmission.
        let _ = io.poll_readable(&mut Context::from_waker(&self.waker));
        self.sockets.push(Socket { server, io });
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
            let server = r.ex.servers()[index];
            let socket = match self.socket(server) {
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
            let io = self.sockets[socket].io.get_ref();
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

    /// Makes the timer go off by `due`, if it would not.
    fn timer_by(&mut self, due: Option<Instant>) {
        if let Some(due) = due {
            if self.timer_at.is_none_or(|t| due < t) {
                self.timer.set_at(due);
                self.timer_at = Some(due);
                // Registers it with the reactor (a no-op once registered with this waker).
                let mut cx = Context::from_waker(&self.waker);
                if Pin::new(&mut self.timer).poll(&mut cx).is_ready() {
                    // Due already (time passed since it was computed): it will not go off,
                    // so have the engine driven again now.
                    self.waker.wake_by_ref();
                }
            }
        }
    }

    fn wake(&mut self, token: u64) {
        if let Some(w) = self.requests.get_mut(&token).and_then(|r| r.waker.take()) {
            w.wake();
        }
    }

    /// Reads what has arrived on every socket and handles the tries that are up.
    fn drive(&mut self) {
        let waker = self.waker.clone();
        let mut cx = Context::from_waker(&waker);
        let now = Instant::now();
        for i in 0..self.sockets.len() {
            while let Poll::Ready(Ok(())) = self.sockets[i].io.poll_readable(&mut cx) {
                self.drain(i, now);
            }
        }
        if self.timer_at.is_some_and(|t| now >= t) {
            self.timer_at = None;
            let up: Vec<u64> = self
                .requests
                .iter()
                .filter(|(_, r)| r.ex.try_is_up(now))
                .map(|(&t, _)| t)
                .collect();
            for token in up {
                self.try_next(token, now);
            }
            let next = self.requests.values().filter_map(|r| r.ex.due()).min();
            self.timer_by(next);
        }
    }

    /// Reads socket `i` until it has nothing more.
    fn drain(&mut self, i: usize, now: Instant) {
        // Bounded: a flood of datagrams still lets other work run between reads.
        for _ in 0..256 {
            match self.sockets[i].io.recv(&mut self.buf) {
                Ok(len) => self.datagram(i, len, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    self.port_closed(i, now);
                }
                Err(e) => {
                    // Another error from the network (host unreachable, ...): the server
                    // is out for the lookups that asked it.
                    let server = self.sockets[i].server;
                    self.each_asking(server, now, |ex, index| {
                        ex.unsendable(index, &e);
                        Next::TryNow
                    });
                }
            }
        }
    }

    fn datagram(&mut self, i: usize, len: usize, now: Instant) {
        let server = self.sockets[i].server;
        let msg = &self.buf[..len];
        let id = msg.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        let token = id.and_then(|id| self.ids.get(&id).copied());
        let Some(token) = token else {
            if !is_stray_response(msg) {
                // Garbage: counted against every lookup waiting on this server.
                self.each_asking(server, now, |ex, index| ex.garbage(index));
            }
            return;
        };
        let Some(r) = self.requests.get_mut(&token) else {
            return;
        };
        let Some(index) = r.ex.asked(server) else {
            return;
        };
        match r.ex.reply(index, &self.buf[..len], now) {
            Next::Tcp(question) => {
                r.tcp.push((question, server));
                self.wake(token);
            }
            next => self.after(token, next, now),
        }
    }

    fn after(&mut self, token: u64, next: Next, now: Instant) {
        match next {
            Next::Wait => {
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
        async move { ask(servers, 0, name, &[QType::A], || 7, deadline).await }
    }

    fn has_address(answers: &[Answer]) -> bool {
        matches!(&answers[0], Answer::Addrs(ips, _) if ips[0] == IpAddr::from([127, 0, 0, 9]))
    }

    /// Waits for `task`, failing the test if it takes a second: its reply was sent, so
    /// only a lost wake-up (no lookup left to drive the engine) would delay it.
    async fn promptly(task: async_executor::Task<Arc<[Answer]>>) -> Arc<[Answer]> {
        let late = async {
            Timer::after(Duration::from_secs(1)).await;
            panic!("a lookup whose reply had come was not woken");
        };
        future::or(task, late).await
    }

    async fn let_run() {
        for _ in 0..4 {
            future::yield_now().await;
        }
    }

    /// The lookup polled last is the one the sockets wake. When it finishes, another
    /// waiting lookup takes its place, so a reply that comes after is still read.
    #[test]
    fn a_reply_after_the_woken_lookup_is_done_is_still_read() {
        let held = Held::start();
        let ex = async_executor::LocalExecutor::new();
        crate::net::rt::block_on(ex.run(async {
            let first = ex.spawn(lookup(&held, "first.test"));
            let last = ex.spawn(lookup(&held, "last.test"));
            let_run().await;
            held.release.send("last.test").unwrap();
            assert!(has_address(&promptly(last).await));
            held.release.send("first.test").unwrap();
            assert!(has_address(&promptly(first).await));
        }));
    }

    /// The same when the lookup the sockets wake is dropped (its probe cancelled).
    #[test]
    fn a_dropped_lookup_hands_the_wake_ups_on() {
        let held = Held::start();
        let ex = async_executor::LocalExecutor::new();
        crate::net::rt::block_on(ex.run(async {
            let kept = ex.spawn(lookup(&held, "kept.test"));
            let dropped = ex.spawn(lookup(&held, "dropped.test"));
            let_run().await;
            drop(dropped);
            held.release.send("kept.test").unwrap();
            assert!(has_address(&promptly(kept).await));
        }));
    }

    /// A server that never answers: the engine's one timer retransmits and then ends
    /// the lookup at its deadline, with the tries counted.
    #[test]
    fn a_silent_server_ends_the_lookup_at_its_deadline() {
        let held = Held::start();
        let servers: Arc<[SocketAddr]> = Arc::from([held.addr]);
        let started = Instant::now();
        let deadline = started + Duration::from_millis(1000);
        let answers =
            crate::net::rt::block_on(ask(servers, 0, "silent.test", &[QType::A], || 7, deadline));
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
        let answers =
            crate::net::rt::block_on(ask(servers, 0, "late.test", &[QType::A], || 7, deadline));
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
        let ex = async_executor::LocalExecutor::new();
        crate::net::rt::block_on(ex.run(async {
            let names = ["a.test", "b.test", "c.test", "d.test", "e.test", "f.test"];
            let tasks: Vec<_> = names.iter().map(|&n| ex.spawn(lookup(&held, n))).collect();
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
        }));
    }
}
