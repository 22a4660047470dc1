//! The in-process stub resolver: names to addresses on the project's runtime, with no
//! blocking call per name and no thread pool of its own.
//!
//! Order of precedence: `--resolve` (handled by the caller), `/etc/hosts`, then DNS to
//! the `--resolver` servers or resolv.conf's. Each name is asked about (A and AAAA, or
//! the one family `-4`/`-6` allows) at most once at a time across the run: concurrent
//! lookups of one name wait for the first, and its answers are kept for the shortest of
//! their TTLs (negative answers briefly; a failure not at all). Lookups in
//! flight are bounded (`MAX_IN_FLIGHT`), so a list of a million names never bursts past
//! what a resolver takes. Everything is bounded by the probe's connect deadline.
//!
//! The parts: `exchange` is one lookup's questions, retransmissions and rotation over
//! the servers, as a state machine with no I/O; `engine` is each probe thread's
//! sockets and timer, shared by its lookups; `slots` bounds the lookups in flight.

mod answer;
mod engine;
mod exchange;
mod pins;
mod slots;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::future;

use crate::proto::dns::conf::{Hosts, ResolvConf};
use crate::proto::dns::message::{rcode, QType};
use crate::report::error::{ErrorKind, ProbeError};
use answer::{Answer, Failure};
use slots::Slots;

pub use exchange::MAX_SERVERS;
pub use pins::Pins;

/// Lookups in flight at once, across the run, unless the open-file limit says less. A
/// lookup asks A and AAAA at most, so at most 200 queries wait at a resolver: what a
/// Linux socket's default receive buffer (212,992 bytes, about 1 KiB a small datagram)
/// holds. At 256 lookups (512 queries) dnsmasq dropped 400 queries of a
/// 20,000-name run of bench/names, each costing its probe a 300 ms retransmission; at
/// 100, none at the same rate (a handful only in the first burst, before dnsmasq has
/// warmed up).
pub const MAX_IN_FLIGHT: usize = 100;
/// Answers kept; past this, expired ones go first, then arbitrary ones.
const CACHE_CAP: usize = 16_384;
/// Longest reuse of a positive answer, whatever its TTL.
const MAX_TTL: u32 = 3600;
/// Reuse of a negative answer: its SOA's negative TTL up to this, or this without one.
const NEGATIVE_TTL: u32 = 30;

/// Which address families to resolve and connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    #[default]
    Any,
    /// `-4`
    V4,
    /// `-6`
    V6,
}

impl Family {
    pub(crate) fn allows(self, ip: &IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }

    pub(crate) fn flag(self) -> &'static str {
        match self {
            Family::Any => "",
            Family::V4 => "-4 (--ipv4)",
            Family::V6 => "-6 (--ipv6)",
        }
    }
}

/// How the resolver is set up; from the command line, and for tests the file paths.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--resolver` servers; empty means resolv.conf's.
    pub servers: Vec<SocketAddr>,
    pub family: Family,
    pub resolv_conf: PathBuf,
    pub hosts: PathBuf,
    /// The local address the resolver's sockets bind to (`--interface ADDR`); `None`
    /// leaves it to the system.
    pub source: Option<std::net::IpAddr>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            servers: Vec::new(),
            family: Family::Any,
            resolv_conf: "/etc/resolv.conf".into(),
            hosts: "/etc/hosts".into(),
            source: None,
        }
    }
}

/// What the system files say, read once per run, on the first lookup of a name.
struct Files {
    conf: ResolvConf,
    hosts: Hosts,
    servers: Arc<[SocketAddr]>,
}

/// A name being asked about: the first asker settles it with the answers, or with none
/// when it gave up early; the others wait for that. A lock and the waiters' wakers: an
/// async channel here cost six allocations a lookup, in the common case of no waiter.
struct Pending(Mutex<PendingState>);

#[derive(Default)]
struct PendingState {
    /// `Some` once settled; `Some(None)` when the asker gave up.
    settled: Option<Option<Answers>>,
    waiters: Vec<std::task::Waker>,
}

impl Pending {
    fn new() -> Pending {
        Pending(Mutex::new(PendingState::default()))
    }

    /// Publishes the outcome and wakes every waiter.
    fn settle(&self, answers: Option<Answers>) {
        let waiters = {
            let mut state = lock(&self.0);
            state.settled = Some(answers);
            std::mem::take(&mut state.waiters)
        };
        for waker in waiters {
            waker.wake();
        }
    }

    /// The outcome, once the asker has settled it.
    async fn settled(&self) -> Option<Answers> {
        future::poll_fn(|cx| {
            let mut state = lock(&self.0);
            if let Some(outcome) = &state.settled {
                return Poll::Ready(outcome.clone());
            }
            if !state.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                state.waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

/// The answers to a name's questions (the run's: A and AAAA, or the one that `-4` or
/// `-6` allows), in the order of `Resolver::qtypes`.
type Answers = Arc<[Answer]>;

enum Entry {
    Ready(Answers, Instant),
    Asking(Arc<Pending>),
}

/// A name, lower-cased. One entry holds all its questions: they are always asked
/// together, so one claim, one lock and one hash serve both.
type Key = Arc<str>;

/// Names to their answers. foldhash is seeded per process, so no list of names can be
/// made to collide, and hashes a name in a fraction of SipHash's time.
type Table = HashMap<Key, Entry, foldhash::fast::RandomState>;

/// The run's resolver: shared by every probe thread.
pub struct Resolver {
    settings: Settings,
    files: OnceLock<Files>,
    in_flight_limit: AtomicUsize,
    slots: OnceLock<Slots>,
    table: Mutex<Table>,
    /// Where the next question starts in the server list, so load spreads over them.
    rotation: AtomicUsize,
    /// Seeds for the probe threads' query ID streams.
    ids: AtomicU64,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    pub fn new(settings: Settings) -> Resolver {
        if let Some(source) = settings.source {
            // The engine's sockets are the thread's, shared by every resolver: the source
            // is the process's (one command line, one --interface).
            let _ = engine::SOURCE.set(source);
        }
        Resolver {
            settings,
            files: OnceLock::new(),
            in_flight_limit: AtomicUsize::new(MAX_IN_FLIGHT),
            slots: OnceLock::new(),
            table: Mutex::new(HashMap::default()),
            rotation: AtomicUsize::new(0),
            ids: AtomicU64::new(random_seed()),
        }
    }

    pub fn family(&self) -> Family {
        self.settings.family
    }

    /// Lowers the lookups in flight (each may open a TCP socket, after a truncated
    /// answer) to fit the open-file limit. Takes effect only before the first lookup.
    pub fn limit_in_flight(&self, n: usize) {
        self.in_flight_limit.store(n.max(1), Ordering::Relaxed);
    }

    pub fn in_flight_limit(&self) -> usize {
        self.in_flight_limit.load(Ordering::Relaxed)
    }

    fn files(&self) -> &Files {
        self.files.get_or_init(|| {
            // A missing or unreadable file reads as empty, as in glibc.
            let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
            let conf = ResolvConf::parse(&read(&self.settings.resolv_conf));
            let hosts = Hosts::parse(&read(&self.settings.hosts));
            // glibc's default when resolv.conf names no server.
            let default = [SocketAddr::from(([127, 0, 0, 1], 53))];
            let chosen: &[SocketAddr] = if !self.settings.servers.is_empty() {
                &self.settings.servers
            } else if !conf.nameservers.is_empty() {
                &conf.nameservers
            } else {
                &default
            };
            // More servers than a lookup rotates over are not asked (the command line
            // allows no more; resolv.conf holds three that glibc reads).
            let servers = Arc::from(&chosen[..chosen.len().min(MAX_SERVERS)]);
            Files {
                conf,
                hosts,
                servers,
            }
        })
    }

    /// The addresses of `name`, in the order to try them: IPv4 and IPv6 interleaved,
    /// IPv4 first (a host without IPv6 routes then loses no connect time on it first).
    pub async fn lookup(
        &self,
        name: &str,
        deadline: Instant,
        limit: &dyn fmt::Display,
    ) -> Result<Vec<IpAddr>, ProbeError> {
        let family = self.settings.family;
        let files = self.files();
        if let Some(ips) = files.hosts.get(name) {
            let ips: Vec<IpAddr> = ips.into_iter().filter(|ip| family.allows(ip)).collect();
            if !ips.is_empty() {
                return Ok(interleave(ips));
            }
        }
        let candidates = files.conf.candidates(name);
        let mut no_data = false;
        for candidate in &candidates {
            let answers = self.answers(candidate, deadline).await;
            let mut ips = Vec::new();
            let mut failure = None;
            for answer in answers.iter() {
                match answer {
                    Answer::Addrs(found, _) => ips.extend_from_slice(found),
                    Answer::NoData(_) => no_data = true,
                    Answer::NxDomain(_) => {}
                    Answer::Failed(f) => {
                        failure.get_or_insert(f);
                    }
                }
            }
            if !ips.is_empty() {
                return Ok(interleave(ips));
            }
            if let Some(failure) = failure {
                return Err(self.failure_error(name, failure, limit));
            }
        }
        let tried = if candidates.len() > 1 {
            format!(" (asked for {})", candidates.join(", "))
        } else {
            String::new()
        };
        let what = if no_data {
            match family {
                Family::Any => "no address records".to_string(),
                Family::V4 => format!("no address records of type A {}", family.flag()),
                Family::V6 => format!("no address records of type AAAA {}", family.flag()),
            }
        } else {
            "no such name (NXDOMAIN)".to_string()
        };
        Err(dns_error(name, &format!("{what}{tried}")).definite())
    }

    /// The questions a lookup asks, from `-4` / `-6`.
    fn qtypes(&self) -> &'static [QType] {
        match self.settings.family {
            Family::Any => &[QType::A, QType::Aaaa],
            Family::V4 => &[QType::A],
            Family::V6 => &[QType::Aaaa],
        }
    }

    /// The same failure for every question of the run.
    fn all_failed(&self, failure: Failure) -> Answers {
        self.qtypes()
            .iter()
            .map(|_| Answer::Failed(failure.clone()))
            .collect()
    }

    /// The answers about `name`: kept from earlier, awaited from the lookup asking
    /// already, or asked now.
    async fn answers(&self, name: &str, deadline: Instant) -> Answers {
        loop {
            match self.claim(name) {
                Claim::Ready(answers) => return answers,
                Claim::Lead(mut asking) => {
                    let answers = self.ask(name, deadline).await;
                    asking.finish(&answers);
                    return answers;
                }
                Claim::Wait(theirs) => {
                    let settled = future::or(async { Some(theirs.settled().await) }, async {
                        Timer::at(deadline).await;
                        None
                    })
                    .await;
                    let Some(outcome) = settled else {
                        let servers = self.files().servers.to_vec();
                        return self.all_failed(Failure::NoAnswer { servers, tries: 0 });
                    };
                    if let Some(answers) = outcome {
                        return answers;
                    }
                    // The asker gave up before an answer (its probe was cancelled or
                    // moved on): claim it again.
                }
            }
        }
    }

    /// Where a name stands: answered, asked by another lookup, or ours to ask.
    fn claim(&self, name: &str) -> Claim<'_> {
        let lower = match name.bytes().any(|b| b.is_ascii_uppercase()) {
            true => std::borrow::Cow::Owned(name.to_ascii_lowercase()),
            false => std::borrow::Cow::Borrowed(name),
        };
        let mut table = lock(&self.table);
        match table.get(&*lower) {
            Some(Entry::Ready(answers, until)) if *until > Instant::now() => {
                Claim::Ready(Arc::clone(answers))
            }
            Some(Entry::Asking(pending)) => Claim::Wait(Arc::clone(pending)),
            _ => {
                let key: Key = Arc::from(&*lower);
                let pending = Arc::new(Pending::new());
                table.insert(Arc::clone(&key), Entry::Asking(Arc::clone(&pending)));
                Claim::Lead(Asking {
                    resolver: self,
                    key,
                    pending,
                    finished: false,
                })
            }
        }
    }

    /// Asks the network the run's questions about `name`, holding one of the in-flight
    /// slots.
    async fn ask(&self, name: &str, deadline: Instant) -> Answers {
        let qtypes = self.qtypes();
        let slots = self
            .slots
            .get_or_init(|| Slots::new(self.in_flight_limit()));
        let slot = future::or(async { Some(slots.acquire().await) }, async {
            Timer::at(deadline).await;
            None
        })
        .await;
        let Some(_slot) = slot else {
            return self.all_failed(Failure::NoSlot);
        };
        let servers = Arc::clone(&self.files().servers);
        let first = self.rotation.fetch_add(1, Ordering::Relaxed);
        engine::ask(servers, first, name, qtypes, || self.seed(), deadline).await
    }

    /// A seed for a probe thread's query ID stream (asked for by its first lookup): a
    /// SplitMix64 stream seeded from the system's random source.
    fn seed(&self) -> u64 {
        let step = engine::SPLIT_MIX_STEP;
        let x = self.ids.fetch_add(step, Ordering::Relaxed);
        engine::split_mix_output(x.wrapping_add(step))
    }

    fn failure_error(&self, name: &str, failure: &Failure, limit: &dyn fmt::Display) -> ProbeError {
        let text = match failure {
            Failure::Rcode {
                code: rcode::SERVFAIL,
                server,
            } => format!("server failure (SERVFAIL) from {server}"),
            Failure::Rcode {
                code: rcode::REFUSED,
                server,
            } => format!("refused by {server}"),
            Failure::Rcode { code, server } => {
                format!(
                    "{server} answered {} (response code {code})",
                    rcode::name(*code)
                )
            }
            Failure::NoAnswer { servers, tries } => {
                let from = list(servers);
                let tries = match tries {
                    0 => String::new(),
                    1 => " after 1 try".to_string(),
                    n => format!(" after {n} tries"),
                };
                format!("no answer from {from}{tries} within {limit}")
            }
            Failure::Malformed { server, replies } => {
                format!("{server} sent {replies} malformed replies in a row")
            }
            Failure::Unreachable { server, error } => {
                format!("cannot send a query to {server}: {error}")
            }
            Failure::PortClosed { server } => {
                format!("{server} refused the query: nothing listens on that port")
            }
            Failure::Truncated { server, error } => format!(
                "the answer from {server} was truncated, and asking again over TCP failed: {error}"
            ),
            Failure::Socket { error } => format!("cannot open a socket for the query: {error}"),
            Failure::NoSlot => format!(
                "no query could be sent within {limit}: {} lookups were already in flight",
                self.in_flight_limit()
            ),
            Failure::NoServer => "no DNS server to ask".to_string(),
            Failure::BadName => "the name is not a valid DNS name".to_string(),
        };
        dns_error(name, &text)
    }
}

/// The asker's duty: publish the answer (caching it when it may be), or on an early
/// drop, withdraw so that a waiter asks instead.
struct Asking<'a> {
    resolver: &'a Resolver,
    key: Key,
    pending: Arc<Pending>,
    finished: bool,
}

/// Where a name stands for one lookup.
enum Claim<'a> {
    Ready(Answers),
    /// Another lookup is asking it.
    Wait(Arc<Pending>),
    /// This lookup asks it, and publishes the answer (or withdraws when dropped).
    Lead(Asking<'a>),
}

fn random_seed() -> u64 {
    use ring::rand::SecureRandom;
    let mut seed = [0u8; 8];
    if ring::rand::SystemRandom::new().fill(&mut seed).is_err() {
        // Not expected; the time still varies from run to run.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        return now.map_or(0x5EED, |d| d.as_nanos() as u64) ^ u64::from(std::process::id());
    }
    u64::from_ne_bytes(seed)
}

impl Asking<'_> {
    fn finish(&mut self, answers: &Answers) {
        self.finished = true;
        // Kept as long as every answer may be: a failure is not kept at all.
        let keep = answers
            .iter()
            .map(|answer| match answer {
                Answer::Addrs(_, ttl) => ttl.unwrap_or(0).min(MAX_TTL),
                Answer::NxDomain(ttl) | Answer::NoData(ttl) => {
                    ttl.unwrap_or(NEGATIVE_TTL).min(NEGATIVE_TTL)
                }
                Answer::Failed(_) => 0,
            })
            .min()
            .unwrap_or(0);
        {
            let mut table = lock(&self.resolver.table);
            if keep > 0 {
                if table.len() >= CACHE_CAP {
                    make_room(&mut table);
                }
                let ready = Entry::Ready(
                    Arc::clone(answers),
                    Instant::now() + Duration::from_secs(keep.into()),
                );
                // Our `Asking` entry is there (make_room keeps those): replace it in place.
                match table.get_mut(&self.key) {
                    Some(entry) => *entry = ready,
                    None => {
                        table.insert(Arc::clone(&self.key), ready);
                    }
                }
            } else {
                table.remove(&self.key);
            }
        }
        self.pending.settle(Some(Arc::clone(answers)));
    }
}

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut table = lock(&self.resolver.table);
        if matches!(table.get(&self.key), Some(Entry::Asking(p)) if Arc::ptr_eq(p, &self.pending)) {
            table.remove(&self.key);
        }
        drop(table);
        self.pending.settle(None);
    }
}

/// Drops expired answers, then, if that is not enough, a quarter of the rest.
fn make_room(table: &mut Table) {
    let now = Instant::now();
    table.retain(|_, e| !matches!(e, Entry::Ready(_, until) if *until <= now));
    if table.len() >= CACHE_CAP {
        let mut drop_n = CACHE_CAP / 4;
        table.retain(|_, e| match e {
            Entry::Ready(..) if drop_n > 0 => {
                drop_n -= 1;
                false
            }
            _ => true,
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn list(servers: &[SocketAddr]) -> String {
    servers
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn dns_error(name: &str, what: &str) -> ProbeError {
    ProbeError::new(ErrorKind::Dns, format!("cannot resolve {name}: {what}"))
}

/// IPv4 first, then alternating families, each family in the order given; repeats go.
fn interleave(mut ips: Vec<IpAddr>) -> Vec<IpAddr> {
    // One family (the usual answer): the order stands, in place.
    if ips.iter().all(|ip| ip.is_ipv4() == ips[0].is_ipv4()) {
        let mut kept = 0;
        for i in 0..ips.len() {
            if !ips[..kept].contains(&ips[i]) {
                ips[kept] = ips[i];
                kept += 1;
            }
        }
        ips.truncate(kept);
        return ips;
    }
    let mut v4 = ips.iter().filter(|ip| ip.is_ipv4());
    let mut v6 = ips.iter().filter(|ip| ip.is_ipv6());
    let mut out: Vec<IpAddr> = Vec::with_capacity(ips.len());
    loop {
        let (a, b) = (v4.next(), v6.next());
        if a.is_none() && b.is_none() {
            break;
        }
        for ip in a.into_iter().chain(b) {
            if !out.contains(ip) {
                out.push(*ip);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaving_puts_ipv4_first() {
        let ips =
            |list: &[&str]| -> Vec<IpAddr> { list.iter().map(|s| s.parse().unwrap()).collect() };
        assert_eq!(
            interleave(ips(&[
                "::1",
                "::2",
                "127.0.0.1",
                "127.0.0.2",
                "127.0.0.3",
                "::1"
            ])),
            ips(&["127.0.0.1", "::1", "127.0.0.2", "::2", "127.0.0.3"])
        );
        assert_eq!(interleave(ips(&["::1"])), ips(&["::1"]));
        assert_eq!(
            interleave(ips(&[
                "127.0.0.2",
                "127.0.0.1",
                "127.0.0.2",
                "127.0.0.3",
                "127.0.0.1"
            ])),
            ips(&["127.0.0.2", "127.0.0.1", "127.0.0.3"])
        );
    }

    /// A lookup's future is allocated once per name probed: the rare path (TCP after
    /// truncation) is boxed, and the exchange's state lives in the engine, so that it
    /// stays small (752 bytes; 1,552 when each lookup held its socket and timer). Past
    /// 1 KiB, glibc serves it from its slower large-chunk path.
    #[test]
    fn a_lookup_in_flight_stays_small() {
        let resolver = Resolver::new(Settings::default());
        let lookup = resolver.lookup("a.test", Instant::now(), &"1s");
        let size = std::mem::size_of_val(&lookup);
        assert!(size <= 1000, "the lookup future grew to {size} bytes");
    }
}
