//! A probe through a proxy: the tunnel its protocol needs, then the request. A bare
//! `HOST:PORT` in a `--proxy-check` pool is tried as HTTP, then SOCKS5, then SOCKS4, each
//! on a fresh connection, and the first protocol the peer speaks (even to refuse)
//! decides; the attempt that spoke is the probe.
//!
//! Detection stays cheap: an HTTP proxy costs one connection, a SOCKS5 proxy two, a
//! SOCKS4 proxy three (two when it answers the HTTP request with a SOCKS4 rejection,
//! which skips SOCKS5); a dead port one connect (a connection failure ends the probe);
//! every attempt shares the probe's connect deadline and `--timeout`. While detecting,
//! each protocol left gets an equal share of what is left of the connect budget, so a
//! port silent to HTTP is still greeted in SOCKS5 and SOCKS4; silent to all of them (or
//! to some, answering the others in no protocol), it is a `timeout` whose message says
//! what each attempt saw, naming no protocol. The share only bounds the wait for the
//! peer's first answer in the protocol (a SOCKS5 method choice, a tunnel opened): once
//! it has answered, the protocol is decided, and a proxy slow to reach the check URL
//! times out as that protocol on the connect budget and `--timeout`. A proxy
//! given with its scheme that answers in another protocol is `proxy`, saying which and
//! the scheme that would work.

use std::cell::Cell;
use std::future::{pending, Future};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::net::rt::{timeout, Elapsed};

use crate::net::connect::{self, open};
use crate::net::conversation::converse;
use crate::net::hop::{Clock, Gathered, Visit};
use crate::net::options::ProbeOptions;
use crate::net::tunnel::{http_connect, socks4_connect, socks5_connect, Answer, TunnelError};
use crate::proto::proxy::{parse_socks4_reply, Detection, Proxy, ProxyKind};
use crate::proto::request::{self, RequestTemplate};
use crate::proto::target::{Host, Scheme, Target};
use crate::report::error::{ErrorKind, ProbeError};

/// How one attempt at a protocol ended.
enum Attempt {
    /// The peer spoke the protocol: this is the probe's outcome.
    Spoken(Result<(), ProbeError>),
    /// The attempt failed before the peer could say anything (no connection, silence):
    /// this is the probe's outcome, and the protocol stays unknown.
    Failed(ProbeError),
    /// The peer does not speak it.
    Unspoken(ProbeError, Answer),
}

/// Requests `target` through `proxy`, reached at `addrs`; finds the protocol first when
/// the token gave none.
pub(crate) async fn through(
    visit: Visit<'_>,
    template: &RequestTemplate,
    proxy: &Proxy,
    addrs: &[SocketAddr],
    got: &mut Gathered,
) -> Result<(), ProbeError> {
    let clock = visit.clock;
    let kinds: &[ProxyKind] = match proxy.detection {
        Detection::Unknown => &ProxyKind::DETECTION_ORDER,
        Detection::Given | Detection::Found => std::slice::from_ref(&proxy.kind),
    };
    let mut addrs = addrs.to_vec();
    let mut unspoken: Vec<(ProxyKind, Answer)> = Vec::with_capacity(kinds.len());
    for (i, &kind) in kinds.iter().enumerate() {
        if kind == ProxyKind::Socks5 && answered_as_socks4(&unspoken) {
            // It rejected the HTTP request in SOCKS4: a SOCKS5 greeting would be wasted.
            continue;
        }
        if i > 0 {
            // The port answered: try the next protocol there, within what is left.
            if let Some(addr) = got.addr {
                addrs = vec![addr];
            }
            if Instant::now() >= clock.connect_deadline {
                return Err(out_of_time(proxy, kind, &unspoken, clock));
            }
            forget_attempt(got);
        }
        let attempt = proxy.as_kind(kind);
        // Set once the peer has answered in this protocol: it is then decided.
        let heard = Cell::new(false);
        let outcome = if kinds.len() == 1 {
            attempt_as(visit, template, &attempt, &addrs, got, &heard).await
        } else {
            // Detecting: each protocol left gets a share of what is left of the connect
            // budget (finding the protocol is part of connecting), so a port that stays
            // silent to one cannot starve the others. Once the peer has answered in it,
            // the protocol is decided and the share no longer applies: what follows has
            // the connect budget and --timeout, as with its scheme given.
            let left = clock
                .connect_deadline
                .saturating_duration_since(Instant::now());
            let share = left / (kinds.len() - i) as u32;
            let trying = attempt_as(visit, template, &attempt, &addrs, got, &heard);
            match until_heard(share, &heard, trying).await {
                // It answered, then failed or ran out of time: that is the outcome.
                Ok(Attempt::Failed(e)) if heard.get() => Attempt::Spoken(Err(e)),
                Ok(Attempt::Failed(e)) if e.kind == ErrorKind::Timeout && !spoke(got) => {
                    Attempt::Unspoken(e, Answer::Silent(share))
                }
                // SOCKS4 needs the target's address resolved here; without it, that
                // protocol cannot be tried, which says nothing of the port.
                Ok(Attempt::Failed(e)) if kind == ProxyKind::Socks4 && got.addr.is_some() => {
                    let why = e.message.clone();
                    Attempt::Unspoken(e, Answer::NotSent(why))
                }
                Ok(outcome) => outcome,
                Err(_) if spoke(got) => Attempt::Spoken(Err(ProbeError::new(
                    ErrorKind::Timeout,
                    format!(
                        "{attempt} did not finish answering within its share of --timeout \
                         ({}) while its protocol was being found",
                        crate::report::duration::human(share)
                    ),
                ))),
                Err(_) => Attempt::Unspoken(
                    ProbeError::new(ErrorKind::Timeout, "silent"),
                    Answer::Silent(share),
                ),
            }
        };
        match outcome {
            Attempt::Spoken(result) => {
                got.spoken = Some(kind);
                return result;
            }
            Attempt::Failed(e) => return Err(e),
            Attempt::Unspoken(err, answer) if kinds.len() == 1 => {
                return Err(other_protocol(&attempt, &answer).unwrap_or(err))
            }
            Attempt::Unspoken(_, answer) => unspoken.push((kind, answer)),
        }
    }
    Err(none_spoken(proxy, &unspoken))
}

/// `attempt`, or `Elapsed` once `share` has passed without the peer answering in the
/// protocol (`heard`); after an answer only the attempt's own deadlines end it.
async fn until_heard<T>(
    share: Duration,
    heard: &Cell<bool>,
    attempt: impl Future<Output = T>,
) -> Result<T, Elapsed> {
    let silent = async {
        let _ = timeout(share, pending::<()>()).await;
        if heard.get() {
            pending::<()>().await;
        }
        Err(Elapsed)
    };
    futures_lite::future::or(async { Ok(attempt.await) }, silent).await
}

/// Whether a peer answered an earlier attempt with a SOCKS4 reply (`\x00\x5b...`), as a
/// SOCKS4-only server may answer bytes it cannot read.
fn answered_as_socks4(unspoken: &[(ProxyKind, Answer)]) -> bool {
    unspoken.iter().any(|(_, answer)| match answer {
        Answer::Sent(bytes) if bytes.len() >= 2 => parse_socks4_reply(bytes).is_ok(),
        _ => false,
    })
}

/// What an attempt that did not speak left behind must not reach the record.
fn forget_attempt(got: &mut Gathered) {
    got.head = None;
    got.tunnel = None;
    got.request_target = None;
    got.streamed = 0;
    got.timing.first_byte = None;
    got.timing.headers = None;
    got.timing.proxy = None;
}

/// How each protocol's attempt is named in messages.
fn what_was_sent(kind: ProxyKind) -> &'static str {
    match kind {
        ProxyKind::Http => "an HTTP proxy request",
        ProxyKind::Socks5 => "a SOCKS5 greeting",
        ProxyKind::Socks4 | ProxyKind::Socks4a => "a SOCKS4 request",
    }
}

fn tried(unspoken: &[(ProxyKind, Answer)]) -> String {
    unspoken
        .iter()
        .map(|(kind, answer)| match answer {
            Answer::NotSent(_) => format!("{} {answer}", what_was_sent(*kind)),
            _ => format!("to {} it {answer}", what_was_sent(*kind)),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Nothing was detected: what each attempt saw, naming no protocol as the proxy's. A
/// port silent to every attempt is a `timeout`; so is one silent to some (a proxy slow
/// to reach the check URL is silent until it has): it may speak that protocol. Only a
/// port that answered every attempt otherwise is `proxy`: it speaks none of them.
fn none_spoken(proxy: &Proxy, unspoken: &[(ProxyKind, Answer)]) -> ProbeError {
    let all_silent = unspoken
        .iter()
        .all(|(_, a)| matches!(a, Answer::Silent(_) | Answer::NotSent(_)));
    let some_silent = unspoken.iter().any(|(_, a)| matches!(a, Answer::Silent(_)));
    let (kind, what) = if all_silent {
        (
            ErrorKind::Timeout,
            "answered none of HTTP, SOCKS5 and SOCKS4",
        )
    } else if some_silent {
        (
            ErrorKind::Timeout,
            "was not heard speaking HTTP, SOCKS5 or SOCKS4 in time",
        )
    } else {
        (ErrorKind::Proxy, "speaks none of HTTP, SOCKS5 and SOCKS4")
    };
    ProbeError::new(kind, format!("{proxy} {what}: {}", tried(unspoken)))
}

/// Whether the attempt under way has heard the peer speak its protocol: a tunnel
/// opened, or a response begun.
fn spoke(got: &Gathered) -> bool {
    got.timing.proxy.is_some()
        || got.tunnel.is_some()
        || got.head.as_ref().is_some_and(|h| !h.is_empty())
}

/// A proxy given with its scheme that answered in another proxy protocol: say which,
/// and which scheme would work.
fn other_protocol(proxy: &Proxy, answer: &Answer) -> Option<ProbeError> {
    let Answer::Sent(bytes) = answer else {
        return None;
    };
    let spoken = crate::proto::proxy::spoken_in(bytes)?;
    if spoken == proxy.kind
        || (matches!(spoken, ProxyKind::Socks4) && proxy.kind == ProxyKind::Socks4a)
    {
        return None;
    }
    let would = proxy.as_kind(spoken);
    Some(ProbeError::new(
        ErrorKind::Proxy,
        format!(
            "{proxy} answered in {}, not {} (it sent \"{}\"); try {would}",
            spoken.name().to_uppercase(),
            proxy.kind.name().to_uppercase(),
            crate::report::sanitize::quote_peer(bytes, 40).trim_matches('"')
        ),
    ))
}

fn out_of_time(
    proxy: &Proxy,
    next: ProxyKind,
    unspoken: &[(ProxyKind, Answer)],
    clock: &Clock,
) -> ProbeError {
    ProbeError::new(
        ErrorKind::Timeout,
        format!(
            "{proxy} did not speak a proxy protocol within {}, {} was not tried: {}",
            clock.connect_limit,
            next.name().to_uppercase(),
            tried(unspoken)
        ),
    )
}

/// One attempt: connect, open the tunnel `proxy.kind` needs, send the request, read.
/// `heard` is set once the peer has answered in the protocol (a SOCKS5 method choice, a
/// tunnel opened).
async fn attempt_as(
    visit: Visit<'_>,
    template: &RequestTemplate,
    proxy: &Proxy,
    addrs: &[SocketAddr],
    got: &mut Gathered,
    heard: &Cell<bool>,
) -> Attempt {
    let Visit {
        cfg, target, clock, ..
    } = visit;
    // SOCKS4 carries an IPv4 address: resolve the target before connecting.
    let socks4_ip = match (proxy.kind, &target.host) {
        (ProxyKind::Socks4, host) => match socks4_address(cfg, proxy, target, host, clock).await {
            Ok(ip) => Some(ip),
            Err(e) => return Attempt::Failed(e),
        },
        _ => None,
    };
    let mut stream = match open(addrs, cfg.source.as_ref(), clock, got).await {
        Ok(stream) => stream,
        Err(e) => return Attempt::Failed(e),
    };

    // Setting up the tunnel is part of connecting: it shares the connect budget.
    let left = clock
        .connect_deadline
        .saturating_duration_since(Instant::now());
    let tunnel = async {
        match (proxy.kind, target.scheme) {
            (ProxyKind::Http, Scheme::Http) => Ok(false),
            (ProxyKind::Http, Scheme::Https) => http_connect(
                &mut stream,
                proxy,
                target,
                cfg.max_header_bytes,
                &mut got.tunnel,
            )
            .await
            .map(|()| true),
            (ProxyKind::Socks5, _) => socks5_connect(&mut stream, proxy, target, heard)
                .await
                .map(|()| true),
            (ProxyKind::Socks4 | ProxyKind::Socks4a, _) => {
                socks4_connect(&mut stream, proxy, target, socks4_ip)
                    .await
                    .map(|()| true)
            }
        }
    };
    let request = match timeout(left, tunnel).await {
        Ok(Ok(true)) => {
            heard.set(true);
            got.timing.proxy = Some(clock.start.elapsed());
            template.render(target)
        }
        Ok(Ok(false)) => {
            // A plain-http target through an HTTP proxy: absolute form, no tunnel.
            let auth = proxy.authorization();
            got.request_target = Some(request::absolute_form(target));
            template.render_absolute(target, auth.as_deref())
        }
        Ok(Err(TunnelError::Unspoken(e, answer))) => return Attempt::Unspoken(e, answer),
        Ok(Err(TunnelError::Refused(e))) => return Attempt::Spoken(Err(e)),
        Ok(Err(TunnelError::Broken(e))) => return Attempt::Failed(e),
        Err(_) => {
            // After its first answer the proxy is slow to reach the target, most likely.
            let answered = if heard.get() {
                format!("answered {}, then ", what_was_sent(proxy.kind))
            } else {
                String::new()
            };
            return Attempt::Failed(ProbeError::new(
                ErrorKind::Timeout,
                format!(
                    "proxy {proxy} {answered}did not open the tunnel to {}:{} within {}",
                    target.host.authority_form(),
                    target.port,
                    clock.connect_limit
                ),
            ));
        }
    };

    let absolute_form = got.request_target.is_some();
    let result = converse(visit, template, &request, stream, got).await;
    if absolute_form {
        // The proxy's answer is the response itself: was it HTTP at all?
        if let Err(e) = &result {
            if let Some(answer) = http_unspoken(e, got) {
                return Attempt::Unspoken(e.clone(), answer);
            }
        }
        if got.head.as_ref().is_none_or(|h| h.is_empty()) {
            // Silence until --timeout: nothing was learnt.
            return match result {
                Ok(()) => Attempt::Spoken(Ok(())),
                Err(e) => Attempt::Failed(e),
            };
        }
    }
    if let (true, Some(407)) = (absolute_form, got.final_status()) {
        return Attempt::Spoken(Err(ProbeError::new(
            ErrorKind::Proxy,
            format!(
                "proxy {proxy} answered 407 Proxy Authentication Required ({})",
                if proxy.has_credentials() {
                    "credentials rejected"
                } else {
                    "credentials required"
                }
            ),
        )));
    }
    Attempt::Spoken(result)
}

/// An absolute-form request's failure that shows the peer does not speak HTTP: it
/// answered something else, closed or reset without a byte.
fn http_unspoken(e: &ProbeError, got: &Gathered) -> Option<Answer> {
    let head = got.head.as_ref();
    let nothing = head.is_none_or(|h| h.is_empty());
    match e.kind {
        ErrorKind::NotHttp => Some(Answer::Sent(
            head.map(|h| h.banner().to_vec()).unwrap_or_default(),
        )),
        ErrorKind::Empty => Some(Answer::Closed),
        ErrorKind::Reset if nothing => Some(Answer::Reset),
        _ => None,
    }
}

/// The IPv4 address a SOCKS4 CONNECT names: the target's own, or its name resolved here
/// (`--resolve` applies); IPv6 cannot be carried.
async fn socks4_address(
    cfg: &ProbeOptions,
    proxy: &Proxy,
    target: &Target,
    host: &Host,
    clock: &Clock,
) -> Result<Ipv4Addr, ProbeError> {
    let ips: Vec<IpAddr> = match host {
        Host::Ip(ip) => vec![*ip],
        // The one place a SOCKS4 probe resolves (`--resolve`, -4/-6 and the resolver apply).
        Host::Name(_) => connect::addresses(
            cfg,
            host,
            target.port,
            clock.connect_deadline,
            &clock.connect_limit,
        )
        .await?
        .addrs
        .into_iter()
        .map(|a| a.ip())
        .collect(),
    };
    ips.iter()
        .find_map(|ip| match ip {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
        .ok_or_else(|| {
            let shown: Vec<String> = ips.iter().map(ToString::to_string).collect();
            ProbeError::new(
                ErrorKind::Proxy,
                format!(
                    "SOCKS4 proxy {proxy} carries only IPv4 addresses, and {} has only IPv6 ({}); \
                     use socks4a:// or socks5:// to let the proxy resolve it",
                    target.host,
                    shown.join(", ")
                ),
            )
        })
}
