//! One probe end to end: plan (the target, or a proxy and what to ask through it),
//! resolve, connect, converse, and follow redirects with `-L`, racing the whole against
//! the run's cancellation. The rooms it walks through: `resolve`, `connect`,
//! `conversation` (TLS, then `http1`), `detect` (proxies), `redirect`.
//!
//! Every await here is bounded by the connect deadline or the probe deadline.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::net::connect::{self, open};
use crate::net::conversation::converse;
use crate::net::detect;
use crate::net::hop::{Clock, Gathered, LineSink, Visit};
use crate::net::options::{ConnectTo, Http3, ProbeOptions};
use crate::net::redirect::{self, url_of, Next};
use crate::proto::proxy::Proxy;
use crate::proto::request::RequestTemplate;
use crate::proto::target::{Host, Scheme, Target};
use crate::proto::Job;
use crate::report::error::{ErrorKind, ProbeError};
use crate::report::record::{Hop, Record, Streamed, Via};

/// `--all-addresses`: the one address of a name that a probe is about. Every hop to that
/// host (after `--connect-to`) connects to it, so a redirect chain stays on the address.
#[derive(Debug, Clone)]
pub struct OneAddress {
    /// The host connected to, whose every hop goes to `ip`.
    pub host: Host,
    pub ip: IpAddr,
    /// What the name resolved to, in order.
    pub resolved: Vec<IpAddr>,
    /// How long the lookup took: the probe's clock starts that long before it connects.
    pub dns: Duration,
}

/// `--all-addresses`: what a job's first hop connects to.
pub enum Addresses {
    /// One address (an address literal, given or by `--connect-to`): probed as usual.
    One(SocketAddr),
    /// Through a proxy, which connects to the target: probed as usual.
    Proxied,
    /// A name and what it resolved to, each address to be probed on its own.
    Each {
        host: Host,
        port: u16,
        ips: Vec<IpAddr>,
        dns: Duration,
    },
}

/// Resolves the host that `job`'s first hop connects to (`--connect-to` and `--resolve`
/// apply), within the connect budget, for `--all-addresses`.
pub async fn addresses(cfg: &ProbeOptions, job: &Job) -> Result<Addresses, ProbeError> {
    let target = match job {
        Job::Target(target) if cfg.proxy.is_none() => target,
        _ => return Ok(Addresses::Proxied),
    };
    let (host, port) = ConnectTo::apply(&cfg.connect_to, &target.host, target.port)
        .unwrap_or((&target.host, target.port));
    if let Host::Ip(ip) = host {
        return Ok(Addresses::One(SocketAddr::new(*ip, port)));
    }
    let start = Instant::now();
    let clock = Clock::new(cfg, start);
    let resolved = connect::addresses(
        cfg,
        host,
        port,
        clock.connect_deadline,
        &clock.connect_limit,
    )
    .await?;
    Ok(Addresses::Each {
        host: host.clone(),
        port,
        ips: resolved.ips.unwrap_or_default(),
        dns: start.elapsed(),
    })
}

/// Probes what `job` asks for, racing the whole probe against `cancelled`; with `one`,
/// at that address only (`--all-addresses`).
#[allow(clippy::too_many_arguments)]
pub async fn probe<C>(
    cfg: &ProbeOptions,
    seq: u64,
    index: u64,
    token: Vec<u8>,
    job: Job,
    lines: Option<LineSink<'_>>,
    cancelled: C,
    one: Option<&OneAddress>,
) -> Record
where
    C: std::future::Future<Output = ()>,
{
    let (target, mut via) = plan(cfg, job);
    let now = Instant::now();
    // As if the lookup had just been made for this probe.
    let start = one.and_then(|o| now.checked_sub(o.dns)).unwrap_or(now);
    let mut cancelled = std::pin::pin!(cancelled);
    let mut redirects: Vec<Hop> = Vec::new();
    // `-L`: the hop being probed, when it is not the target itself.
    let mut hop: Option<(Target, String)> = None;
    let mut request = Cow::Borrowed(&cfg.request);
    loop {
        let mut got = Gathered::default();
        let current = hop.as_ref().map_or(&target, |(t, _)| t);
        let proxy = via.as_ref().map(|v| &v.proxy);
        let clock = Clock::new(cfg, start);
        let visit = Visit {
            cfg,
            target: current,
            clock: &clock,
            lines,
        };
        // Boxed: the exchange is most of a probe's state; the loop around it stays small.
        let work = Box::pin(exchange(visit, &request, proxy, one, &mut got));
        let cancel = async {
            cancelled.as_mut().await;
            Err(ProbeError::new(
                ErrorKind::Cancelled,
                "the run was interrupted before this probe finished",
            ))
        };
        let mut result = futures_lite::future::or(work, cancel).await;
        if let (Some(via), Some(kind)) = (&mut via, got.spoken) {
            // Found by detection: later hops go straight to it.
            via.proxy = via.proxy.as_kind(kind);
        }
        if result.is_ok() && cfg.follow {
            match redirect::next(cfg, current, &mut got, redirects.len()) {
                Next::Follow {
                    url,
                    target,
                    hop: h,
                } => {
                    if let Some(sink) = lines {
                        sink(Streamed::Redirect(url.clone()));
                    }
                    // 303 asks for a GET; HEAD stays HEAD, anything else keeps its method.
                    if h.status == 303 && !matches!(request.method(), "GET" | "HEAD") {
                        request = Cow::Owned(request.with_method("GET"));
                    }
                    redirects.push(*h);
                    hop = Some((target, url));
                    continue;
                }
                Next::TooMany(e) => result = Err(e),
                Next::Stop => {}
            }
        }
        if let (Some((_, url)), Err(e)) = (&hop, &mut result) {
            if e.kind == ErrorKind::Tls {
                // Whose certificate or handshake: not the target's, after -L.
                let n = redirects.len();
                let s = if n == 1 { "" } else { "s" };
                e.message
                    .push_str(&format!(" (at {url}, after {n} redirect{s})"));
            }
        }
        got.timing.total = start.elapsed();
        if let Some(via) = &mut via {
            via.request_target = got.request_target;
            via.tunnel = got.tunnel;
            // Through --proxy the proxy resolves the target: what we resolved is the
            // proxy's name, which the record does not describe (--proxy-check's does).
            if via.check_url.is_none() {
                got.resolved = None;
            }
        }
        // With -L, where the chain ended; with --proxy-check, the URL asked for through
        // the proxy (the last one after -L).
        let final_url = (cfg.follow || cfg.proxy_check.is_some()).then(|| match hop {
            Some((_, url)) => url,
            None => url_of(&target),
        });
        return Record {
            seq,
            index,
            token,
            target: Some(target),
            addr: got.addr,
            resolved: got.resolved,
            head: got.head,
            tls: got.tls,
            via,
            error: result.err(),
            timing: got.timing,
            redirects,
            final_url,
            attempts: 1,
            one_of: None,
        };
    }
}

/// What a job asks for: the URL to request and, when a proxy is involved, how. With
/// `--proxy-check` the proxy is the job and the URL comes from the options.
pub fn plan(cfg: &ProbeOptions, job: Job) -> (Target, Option<Via>) {
    let via = |proxy, check_url| Via {
        proxy,
        check_url,
        request_target: None,
        tunnel: None,
    };
    match job {
        Job::Target(target) => (target, cfg.proxy.clone().map(|p| via(p, None))),
        Job::Proxy(proxy) => {
            // Input makes proxy jobs only when --proxy-check is set.
            let check = cfg
                .proxy_check
                .as_ref()
                .expect("proxy jobs come with --proxy-check");
            (
                check.target.clone(),
                Some(via(proxy, Some(check.url.clone()))),
            )
        }
    }
}

/// One hop: resolve, connect (to the proxy, if any) and converse.
async fn exchange(
    visit: Visit<'_>,
    template: &RequestTemplate,
    via: Option<&Proxy>,
    one: Option<&OneAddress>,
    got: &mut Gathered,
) -> Result<(), ProbeError> {
    let Visit {
        cfg, target, clock, ..
    } = visit;
    let (host, port) = match via {
        Some(proxy) => (&proxy.host, proxy.port),
        // `--connect-to`: the connection goes elsewhere; Host, SNI and the certificate
        // check stay the target's.
        None => ConnectTo::apply(&cfg.connect_to, &target.host, target.port)
            .unwrap_or((&target.host, target.port)),
    };
    // `--all-addresses`: every hop to the host first connected goes to the one address
    // this record is about; other hosts (a redirect elsewhere) are resolved as usual.
    let addrs = match one.filter(|o| via.is_none() && o.host == *host) {
        Some(one) => {
            got.timing.dns = Some(one.dns);
            got.resolved = Some(one.resolved.clone());
            vec![SocketAddr::new(one.ip, port)]
        }
        None => {
            let resolved = connect::addresses(
                cfg,
                host,
                port,
                clock.connect_deadline,
                &clock.connect_limit,
            )
            .await?;
            if resolved.ips.is_some() {
                got.timing.dns = Some(clock.start.elapsed());
            }
            got.resolved = resolved.ips;
            resolved.addrs
        }
    };
    match via {
        // Boxed: only HTTP/3 probes carry QUIC's state.
        None if target.scheme == Scheme::Https && cfg.http3 == Http3::Only => {
            Box::pin(crate::net::http3::exchange(
                visit, template, &addrs, got, None,
            ))
            .await
        }
        None if target.scheme == Scheme::Https && cfg.http3 == Http3::Race => {
            Box::pin(crate::net::http3::race::race(visit, template, &addrs, got)).await
        }
        None => {
            let stream = open(&addrs, cfg.source.as_ref(), clock, got).await?;
            let request = template.render(target);
            converse(visit, template, &request, stream, got).await
        }
        // Boxed: only proxied probes carry the tunnel's state.
        Some(proxy) => Box::pin(detect::through(visit, template, proxy, &addrs, got)).await,
    }
}

#[cfg(test)]
mod tests {
    use crate::net::options::ProbeOptions;

    /// Each probe in flight is one task holding this future: at `-c 10000` its size is
    /// most of the memory. TLS and proxy state are boxed so plain probes stay small.
    #[test]
    fn a_probe_in_flight_stays_small() {
        let cfg = ProbeOptions::default();
        let defaults = crate::proto::target::Defaults::default();
        let t = crate::proto::target::parse("127.0.0.1:1", &defaults).unwrap();
        let job = crate::proto::Job::Target(t);
        let fut = super::probe(
            &cfg,
            0,
            0,
            vec![],
            job,
            None,
            std::future::pending::<()>(),
            None,
        );
        let size = std::mem::size_of_val(&fut);
        assert!(size <= 2048, "the probe future grew to {size} bytes");
    }
}
