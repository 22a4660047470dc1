//! Validated settings: argh's strings turned into typed values, with errors naming the flag.
//!
//! Nothing below this module sees argh types.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use crate::cli::args::Args;
use crate::net::resolve::Pins;
use crate::net::tls::TlsSettings;
use crate::net::{ConnectTo, Http2, Http3, ProbeOptions, ProxyCheck, Source};
use crate::proto::http;
use crate::proto::proxy::{Detection, Proxy, DEFAULT_PROXY_PORT};
use crate::proto::request::{self, HttpVersion, RequestTemplate};
use crate::proto::target::{self, Defaults, Scheme};
use crate::report::duration::MAX_DURATION;
use crate::report::printer::Format;
use crate::run::verdict::{Expectations, HeaderExpectation, StatusSet};
use crate::run::{RunOptions, UsageError};

pub use crate::report::duration::parse as parse_duration;

/// Every default, in one list. Each is defined by the layer that owns its option; the
/// `--help` text repeats them in words, and a test keeps the two in step.
pub mod defaults {
    pub use crate::net::options::defaults::*;
    pub use crate::run::options::defaults::*;

    pub const METHOD: &str = "GET";
    pub const PATH: &str = "/";
}

/// The options for the given targets, everything else at its default (tests, benches).
pub fn with_targets(targets: &[&str]) -> RunOptions {
    let args = Args {
        targets: targets.iter().map(|s| s.to_string()).collect(),
        ..Args::default()
    };
    from_args(args).expect("the defaults are valid")
}

/// Validates argh's strings into the run's and the probes' options.
pub fn from_args(a: Args) -> Result<RunOptions, UsageError> {
    let defaults = target_defaults(&a)?;
    let proxy = proxy(&a)?;
    let proxy_check = proxy_check(&a, &proxy, defaults.port)?;
    let source = a
        .interface
        .as_deref()
        .map(|text| Source::check(text).map_err(|why| usage("--interface", &why)))
        .transpose()?;
    let connect_to = connect_to(&a)?;
    let resolver_source = match &source {
        Some(Source::Addr(ip)) => Some(*ip),
        _ => None,
    };
    let probe = ProbeOptions {
        request: request(&a)?,
        connect_timeout: duration_flag(
            "--connect-timeout",
            a.connect_timeout.as_deref(),
            defaults::CONNECT_TIMEOUT,
        )?,
        timeout: duration_flag("--timeout", a.timeout.as_deref(), defaults::TIMEOUT)?,
        max_header_bytes: match &a.max_header_bytes {
            Some(n) => number("--max-header-bytes", n, 1, 256 << 20)?,
            None => defaults::MAX_HEADER_BYTES,
        },
        pins: pins(&a.resolve)?,
        resolver: Arc::new(super::names::resolver(
            &a.resolver,
            a.ipv4,
            a.ipv6,
            resolver_source,
        )?),
        tls: tls(&a)?,
        proxy,
        proxy_check,
        follow: a.location,
        max_redirs: match &a.max_redirs {
            Some(n) => number("--max-redirs", n, 0, 1000)?,
            None => defaults::MAX_REDIRS,
        },
        http2: http2(&a),
        http3: http3(&a)?,
        source,
        connect_to,
    };
    if a.all_addresses && (a.proxy.is_some() || a.proxy_check.is_some()) {
        return Err(UsageError(
            "invalid --all-addresses with a proxy: the proxy connects to the target, so \
             its addresses are not ours to try one by one"
                .into(),
        ));
    }
    Ok(RunOptions {
        all_addresses: a.all_addresses,
        concurrency: match &a.concurrency {
            Some(c) => number("--concurrency", c, 1, 1_000_000)?,
            None => defaults::CONCURRENCY,
        },
        format: format(&a)?,
        ordered: a.ordered,
        // -q is about standard output: a file named by -o still gets the results.
        quiet: a.quiet && to_stdout(&a),
        only_failed: a.only_failed,
        expect: expectations(&a)?,
        rate: rate(&a)?,
        shard: a.shard.as_deref().map(parse_shard).transpose()?,
        resume: a.resume.clone(),
        output: a.output.clone().filter(|_| !to_stdout(&a)),
        progress: progress(&a)?,
        retry: match &a.retry {
            Some(n) => number("--retry", n, 0, 100)?,
            None => defaults::RETRY,
        },
        retry_delay: duration_flag(
            "--retry-delay",
            a.retry_delay.as_deref(),
            defaults::RETRY_DELAY,
        )?,
        defaults,
        targets: a.targets,
        files: a.file,
        probe,
    })
}

/// Whether results go to standard output: no `-o`, or `-o -`.
fn to_stdout(a: &Args) -> bool {
    a.output.as_deref().is_none_or(|o| o == "-")
}

/// `--expect-status`, `--expect-header`, `--expect-cert-days`.
fn expectations(a: &Args) -> Result<Expectations, UsageError> {
    Ok(Expectations {
        status: a
            .expect_status
            .as_deref()
            .map(StatusSet::parse)
            .transpose()
            .map_err(|e| usage("--expect-status", &e))?,
        header: a
            .expect_header
            .iter()
            .map(|e| HeaderExpectation::parse(e).map_err(|why| usage("--expect-header", &why)))
            .collect::<Result<_, _>>()?,
        cert_days: a
            .expect_cert_days
            .as_deref()
            .map(|n| number("--expect-cert-days", n, 0, 36_500))
            .transpose()?,
    })
}

/// What a token without a scheme, port or path gets: `--tls`, `--port`, `--path`.
fn target_defaults(a: &Args) -> Result<Defaults, UsageError> {
    let scheme = if a.tls { Scheme::Https } else { Scheme::Http };
    let port = match &a.port {
        Some(p) => number::<u16>("--port", p, 1, 65535)?,
        None => scheme.default_port(),
    };
    let path = a.path.clone().unwrap_or_else(|| defaults::PATH.into());
    if !(path.starts_with('/') || path == "*")
        || path.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(usage(
            "--path",
            &format!("'{path}' must start with '/' and contain no spaces or control characters"),
        ));
    }
    Ok(Defaults {
        scheme,
        port,
        path,
        https: true,
    })
}

/// `--method`, `--http-version`, `--header`.
fn request(a: &Args) -> Result<RequestTemplate, UsageError> {
    let method = a.method.as_deref().unwrap_or(defaults::METHOD);
    if !http::is_token(method) {
        return Err(usage(
            "--method",
            &format!("'{method}' is not a valid method name"),
        ));
    }
    let version = match a.http_version.as_deref() {
        None | Some("1.0") => HttpVersion::Http10,
        Some("1.1") => HttpVersion::Http11,
        Some(v) => return Err(usage("--http-version", &format!("'{v}' is not 1.0 or 1.1"))),
    };
    let headers = a
        .header
        .iter()
        .map(|h| request::parse_header_arg(h).map_err(|e| usage("--header", &e)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RequestTemplate::new(method, version, &headers))
}

/// `--http2`, `--http2-prior-knowledge` (the stronger wins, as in curl).
fn http2(a: &Args) -> Http2 {
    if a.http2_prior_knowledge {
        Http2::PriorKnowledge
    } else if a.http2 {
        Http2::Alpn
    } else {
        Http2::Off
    }
}

/// `--http3`, `--http3-only` (the stronger wins, as in curl). QUIC is not carried by
/// the proxies headprobe speaks (HTTP CONNECT and SOCKS over TCP).
fn http3(a: &Args) -> Result<Http3, UsageError> {
    let (flag, http3) = match (a.http3_only, a.http3) {
        (true, _) => ("--http3-only", Http3::Only),
        (false, true) => ("--http3", Http3::Race),
        (false, false) => return Ok(Http3::Off),
    };
    for (given, proxy) in [
        (a.proxy.is_some(), "--proxy"),
        (a.proxy_check.is_some(), "--proxy-check"),
    ] {
        if given {
            return Err(usage(
                flag,
                &format!("{flag} cannot be combined with {proxy}: proxies do not carry QUIC"),
            ));
        }
    }
    Ok(http3)
}

/// `--cacert`, `--insecure`, and ALPN (`--http2`).
fn tls(a: &Args) -> Result<TlsSettings, UsageError> {
    let cacert = a
        .cacert
        .as_deref()
        .map(|path| {
            std::fs::read(path).map_err(|e| {
                usage(
                    "--cacert",
                    &format!("cannot read {path}: {}", crate::report::error::os_text(&e)),
                )
            })
        })
        .transpose()?;
    TlsSettings::new(cacert.as_deref(), a.insecure, http2(a) != Http2::Off).map_err(|e| {
        usage(
            "--cacert",
            &format!("{}: {e}", a.cacert.as_deref().unwrap_or("")),
        )
    })
}

fn format(a: &Args) -> Result<Format, UsageError> {
    match a.format.as_deref() {
        None => Ok(Format::Text),
        Some(f) => Format::parse(f).ok_or_else(|| {
            usage(
                "--format",
                &format!("'{f}' is not one of text, status, json, prometheus"),
            )
        }),
    }
}

/// `--rate`: 0 (no limit), or at least one connection per `MAX_DURATION`. A smaller
/// rate means a wait between connections longer than any other wait headprobe accepts
/// (and, below about 1e-19, one no clock can hold), so it is refused, not clamped.
fn rate(a: &Args) -> Result<f64, UsageError> {
    let Some(text) = &a.rate else {
        return Ok(defaults::RATE);
    };
    let min = 1.0 / MAX_DURATION.as_secs_f64();
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && (v == 0.0 || v >= min) => Ok(v),
        Ok(v) if v.is_finite() && v > 0.0 => Err(usage(
            "--rate",
            &format!(
                "'{text}' is less than one connection per 7 days ({min:.7}); \
                 0 means no limit"
            ),
        )),
        _ => Err(usage(
            "--rate",
            &format!("'{text}' is not a number of connections per second"),
        )),
    }
}

/// `--progress` / `--no-progress`: `Some` when forced, `None` to decide from the terminals.
fn progress(a: &Args) -> Result<Option<bool>, UsageError> {
    match (a.progress, a.no_progress) {
        (true, true) => Err(usage("--progress and --no-progress", "choose one")),
        (true, false) => Ok(Some(true)),
        (false, true) => Ok(Some(false)),
        (false, false) => Ok(None),
    }
}

/// `--proxy URL`; a bare `HOST:PORT` is an HTTP proxy, as with curl (only `--proxy-check`
/// detects the protocol).
fn proxy(a: &Args) -> Result<Option<Proxy>, UsageError> {
    let Some(token) = a.proxy.as_deref() else {
        return Ok(None);
    };
    let mut proxy = Proxy::parse(token, DEFAULT_PROXY_PORT).map_err(|e| usage("--proxy", &e))?;
    proxy.detection = Detection::Given;
    Ok(Some(proxy))
}

/// `--proxy-check URL`; proxies that name no port get `--port`, else 1080 as curl does.
fn proxy_check(
    a: &Args,
    proxy: &Option<Proxy>,
    port: u16,
) -> Result<Option<ProxyCheck>, UsageError> {
    let Some(url) = a.proxy_check.as_deref() else {
        return Ok(None);
    };
    if proxy.is_some() {
        return Err(usage("--proxy-check", "it cannot be combined with --proxy"));
    }
    if !url.contains("://") {
        return Err(usage(
            "--proxy-check",
            &format!("'{url}' is not an http:// or https:// URL"),
        ));
    }
    let defaults = Defaults {
        https: true,
        ..Defaults::default()
    };
    let target = target::parse(url, &defaults).map_err(|e| usage("--proxy-check", &e))?;
    Ok(Some(ProxyCheck {
        url: url.to_string(),
        target,
        default_port: match a.port {
            Some(_) => port,
            None => DEFAULT_PROXY_PORT,
        },
    }))
}

fn usage(flag: &str, problem: &str) -> UsageError {
    UsageError(format!("invalid {flag}: {problem}"))
}

fn number<T>(flag: &str, text: &str, min: T, max: T) -> Result<T, UsageError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    match text.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(usage(
            flag,
            &format!("'{text}' is not a whole number from {min} to {max}"),
        )),
    }
}

fn duration_flag(
    flag: &str,
    text: Option<&str>,
    default: Duration,
) -> Result<Duration, UsageError> {
    match text {
        None => Ok(default),
        Some(t) => parse_duration(t).map_err(|e| usage(flag, &e)),
    }
}

fn parse_shard(text: &str) -> Result<(u64, u64), UsageError> {
    let bad = || usage("--shard", &format!("'{text}' is not K/N with 1 <= K <= N"));
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n) = (
        k.parse::<u64>().map_err(|_| bad())?,
        n.parse::<u64>().map_err(|_| bad())?,
    );
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k - 1, n))
}

/// `--connect-to HOST1:PORT1:HOST2:PORT2` rules, as curl reads them: any field may be
/// empty, IPv6 addresses in brackets, names as targets are read (IDNA, any case).
fn connect_to(a: &Args) -> Result<Vec<ConnectTo>, UsageError> {
    if !a.connect_to.is_empty() && (a.proxy.is_some() || a.proxy_check.is_some()) {
        return Err(UsageError(
            "invalid --connect-to with a proxy: the proxy makes the connection to the target"
                .into(),
        ));
    }
    a.connect_to
        .iter()
        .map(|entry| {
            parse_connect_to(entry)
                .map_err(|why| usage("--connect-to", &format!("'{entry}': {why}")))
        })
        .collect()
}

fn parse_connect_to(entry: &str) -> Result<ConnectTo, String> {
    let mut rest = entry;
    let mut fields = Vec::with_capacity(4);
    for i in 0..4 {
        let end = if rest.starts_with('[') {
            rest.find(']')
                .map(|j| j + 1)
                .ok_or("an IPv6 address misses its ']'")?
        } else {
            rest.find(':').unwrap_or(rest.len())
        };
        let (field, after) = rest.split_at(end);
        fields.push(field);
        rest = match (i, after.strip_prefix(':')) {
            (3, _) if after.is_empty() => "",
            (0..=2, Some(next)) => next,
            _ => return Err("expected HOST1:PORT1:HOST2:PORT2 (IPv6 in brackets)".into()),
        };
    }
    let host = |text: &str| -> Result<Option<target::Host>, String> {
        if text.is_empty() {
            return Ok(None);
        }
        if let Some(v6) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            return match v6.parse::<Ipv6Addr>() {
                Ok(ip) => Ok(Some(target::Host::Ip(IpAddr::V6(ip)))),
                Err(_) => Err(format!("'{text}' is not an IPv6 address")),
            };
        }
        let name = target::normalize_name(text)?;
        Ok(Some(match name.parse::<IpAddr>() {
            Ok(ip) => target::Host::Ip(ip),
            Err(_) => target::Host::Name(name),
        }))
    };
    let port = |text: &str| -> Result<Option<u16>, String> {
        match text {
            "" => Ok(None),
            _ => match text.parse::<u16>() {
                Ok(p) if p > 0 => Ok(Some(p)),
                _ => Err(format!("port '{text}' is not a number from 1 to 65535")),
            },
        }
    };
    Ok(ConnectTo {
        host: host(fields[0])?,
        port: port(fields[1])?,
        to_host: host(fields[2])?,
        to_port: port(fields[3])?,
    })
}

/// `--resolve HOST:PORT:ADDR[,ADDR...]` entries.
fn pins(entries: &[String]) -> Result<Pins, UsageError> {
    let mut pins = Pins::default();
    for entry in entries {
        let bad = |why: &str| usage("--resolve", &format!("'{entry}': {why}"));
        let mut parts = entry.splitn(3, ':');
        let (host, port, addrs) = match (parts.next(), parts.next(), parts.next()) {
            (Some(h), Some(p), Some(a)) if !h.is_empty() => (h, p, a),
            _ => return Err(bad("expected HOST:PORT:ADDR")),
        };
        let port: u16 = match port.parse() {
            Ok(p) if p > 0 => p,
            _ => return Err(bad("the port is not a number from 1 to 65535")),
        };
        let mut ips = Vec::new();
        for addr in addrs.split(',') {
            let inner = addr.strip_prefix('[').and_then(|a| a.strip_suffix(']'));
            let ip = match inner {
                Some(v6) => v6.parse::<Ipv6Addr>().map(IpAddr::V6).ok(),
                None => addr.parse::<IpAddr>().ok(),
            };
            ips.push(ip.ok_or_else(|| bad(&format!("'{addr}' is not an IP address")))?);
        }
        // As targets are read: IDNA, any case, with or without a trailing dot.
        let host = target::normalize_name(host).map_err(|why| bad(&why))?;
        pins.insert(&host, port, ips);
    }
    Ok(pins)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(list: &[&str]) -> Result<RunOptions, UsageError> {
        let owned: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        match crate::cli::args::parse(&owned) {
            crate::cli::args::Parsed::Args(a) => from_args(*a),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn durations() {
        let ok = [
            ("250ms", 250),
            ("5s", 5000),
            ("1m", 60_000),
            ("2.5", 2500),
            ("10", 10_000),
            ("1s 500ms", 1500),
        ];
        for (text, millis) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
        for bad in [
            "",
            "0",
            "0s",
            "-1",
            "abc",
            "5 parsecs",
            "nan",
            "inf",
            "1e300",
            "30d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_are_the_contracts() {
        let c = config(&[]).unwrap();
        assert_eq!(c.concurrency, 256);
        assert_eq!(c.defaults.port, 80);
        assert_eq!(c.defaults.path, "/");
        assert_eq!(c.probe.connect_timeout, Duration::from_secs(5));
        assert_eq!(c.probe.timeout, Duration::from_secs(10));
        assert_eq!(c.probe.max_header_bytes, 65536);
        assert_eq!(c.format, Format::Text);
        assert_eq!(c.rate, 0.0);
        assert_eq!(c.progress, None);
    }

    /// The help text states the defaults in words; they must be the ones in `defaults`.
    #[test]
    fn help_states_the_defaults() {
        let help = match crate::cli::args::parse(&["--help".to_string()]) {
            crate::cli::args::Parsed::Help(text) => text,
            other => panic!("{other:?}"),
        };
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for said in [
            format!("(default {}; lowered", defaults::CONCURRENCY),
            format!("(default {})", Scheme::Http.default_port()),
            format!("(default {};", defaults::METHOD),
            format!("(default {})", defaults::PATH),
            format!(
                "(default {})",
                humantime::format_duration(defaults::CONNECT_TIMEOUT)
            ),
            format!(
                "(default {})",
                humantime::format_duration(defaults::TIMEOUT)
            ),
            format!("(default {})", defaults::MAX_HEADER_BYTES),
            format!("(default {}: no limit)", defaults::RATE),
            format!("(default {})", defaults::MAX_REDIRS),
            format!("(default {})", defaults::RETRY),
            format!(
                "(default {})",
                humantime::format_duration(defaults::RETRY_DELAY)
            ),
            format!(
                "up to {}",
                humantime::format_duration(defaults::RETRY_DELAY_CAP)
            ),
        ] {
            assert!(help.contains(&said), "--help does not say {said:?}");
        }
    }

    #[test]
    fn bad_values_name_their_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["-c", "0"], "--concurrency"),
            (&["-c", "many"], "--concurrency"),
            (&["-p", "0"], "--port"),
            (&["-p", "65536"], "--port"),
            (&["-X", "GE T"], "--method"),
            (&["--path", "nope"], "--path"),
            (&["--path", "/a b"], "--path"),
            (&["--http-version", "2"], "--http-version"),
            (&["-H", "nocolon"], "--header"),
            (&["-t", "soon"], "--timeout"),
            (&["--connect-timeout", "0"], "--connect-timeout"),
            (&["--max-header-bytes", "0"], "--max-header-bytes"),
            (&["--format", "xml"], "--format"),
            (&["--resolve", "a:80"], "--resolve"),
            (&["--resolve", "a:x:127.0.0.1"], "--resolve"),
            (&["--resolve", "a:80:nope"], "--resolve"),
            (&["--expect-status", "2xx"], "--expect-status"),
            (&["--expect-status", "300-200"], "--expect-status"),
            (&["--expect-header", "Server"], "--expect-header"),
            (&["--expect-header", "Ser ver: x"], "--expect-header"),
            (&["--expect-header", "Server: ngin(x"], "ngin(x"),
            (&["--rate", "-1"], "--rate"),
            (&["--rate", "1e-300"], "--rate"),
            (&["--rate", "1e-19"], "--rate"),
            (&["--rate", "0.000001"], "--rate"),
            (&["--shard", "0/3"], "--shard"),
            (&["--shard", "4/3"], "--shard"),
            (&["--progress", "--no-progress"], "--progress"),
        ];
        for (args, flag) in cases {
            let err = config(args).expect_err(&format!("{args:?}"));
            assert!(err.0.contains(flag), "{args:?}: {err}");
        }
    }

    #[test]
    fn connect_to_rules_read_as_curl_reads_them() {
        let show = |entry: &str| {
            parse_connect_to(entry).map(|r| {
                let h = |h: Option<target::Host>| h.map_or("*".into(), |h| h.to_string());
                let p = |p: Option<u16>| p.map_or("*".into(), |p| p.to_string());
                format!(
                    "{} {} {} {}",
                    h(r.host),
                    p(r.port),
                    h(r.to_host),
                    p(r.to_port)
                )
            })
        };
        let ok = [
            ("a.test:443:b.test:8443", "a.test 443 b.test 8443"),
            ("::b.test:", "* * b.test *"),
            (":::", "* * * *"),
            ("A.Test.:80:[::1]:81", "a.test 80 ::1 81"),
            ("[2001:db8::1]:80:10.0.0.1:80", "2001:db8::1 80 10.0.0.1 80"),
            (
                "bücher.test:80:x.test:80",
                "xn--bcher-kva.test 80 x.test 80",
            ),
        ];
        for (entry, want) in ok {
            assert_eq!(show(entry).as_deref(), Ok(want), "{entry}");
        }
        for bad in [
            "a:80:b",
            "a:80:b:80:c",
            "a:0:b:80",
            "a:80:b:65536",
            "[::1:80:b:80",
            "a b:80:c:80",
        ] {
            assert!(show(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolve_entries() {
        let r = pins(&[
            "Example.com:80:127.0.0.1".into(),
            "v6.test:8080:[::1],127.0.0.2".into(),
        ])
        .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(r.get("example.COM", 80), Some(&[ip("127.0.0.1")][..]));
        assert_eq!(r.get("example.com", 81), None);
        assert_eq!(
            r.get("v6.test", 8080),
            Some(&[ip("::1"), ip("127.0.0.2")][..])
        );
    }

    #[test]
    fn status_sets() {
        let s = StatusSet::parse("200,300-399").unwrap();
        assert!(s.contains(200) && s.contains(301) && s.contains(399));
        assert!(!s.contains(201) && !s.contains(404));
        assert_eq!(s.to_string(), "200,300-399");
    }

    #[test]
    fn shards() {
        assert_eq!(config(&["--shard", "2/3"]).unwrap().shard, Some((1, 3)));
    }
}
