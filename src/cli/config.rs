//! Validated settings: argh's strings turned into typed values, with errors naming the flag.
//!
//! Nothing below this module sees argh types.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::Args;
use crate::net::resolve::Resolver;
use crate::net::tls::TlsSettings;
use crate::proto::http;
use crate::proto::proxy::{Detection, Proxy, DEFAULT_PROXY_PORT};
use crate::proto::request::{self, HttpVersion, RequestTemplate};
use crate::proto::target::{self, Defaults, Scheme, Target};
use crate::report::printer::Format;

/// A usage error: printed on stderr, exit status 2, nothing probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Everything a run needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Positional targets, probed first.
    pub targets: Vec<String>,
    /// `--file` paths in order; `-` is standard input.
    pub files: Vec<String>,
    pub concurrency: usize,
    pub defaults: Defaults,
    pub request: RequestTemplate,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_header_bytes: usize,
    pub format: Format,
    pub ordered: bool,
    pub quiet: bool,
    pub resolve: Resolve,
    /// The run's stub resolver: `--resolver`, `-4`/`-6`, its cache and queries in flight.
    pub resolver: Arc<Resolver>,
    pub expect_status: Option<StatusSet>,
    /// `--expect-header`: every one must hold.
    pub expect_header: Vec<HeaderExpectation>,
    /// `--expect-cert-days N`: a certificate with fewer whole days left fails.
    pub expect_cert_days: Option<i64>,
    /// New connections per second; 0 is no limit.
    pub rate: f64,
    /// `--shard K/N` as (K-1, N).
    pub shard: Option<(u64, u64)>,
    /// `--resume FILE`: an earlier run's JSON Lines output.
    pub resume: Option<String>,
    /// `Some` when forced on or off; `None` decides from the terminals.
    pub progress: Option<bool>,
    /// Client settings for https targets.
    pub tls: TlsSettings,
    /// `--proxy`: every probe goes through it.
    pub proxy: Option<Proxy>,
    /// `--proxy-check URL`: targets are proxies, and this is requested through each.
    pub proxy_check: Option<ProxyCheck>,
    /// `-L`: follow redirects, at most `max_redirs` of them.
    pub follow: bool,
    pub max_redirs: usize,
    /// `--retry N`: further attempts after a transient failure.
    pub retry: u32,
    /// `--retry-delay`: the wait before the first retry; it doubles up to `RETRY_DELAY_CAP`.
    pub retry_delay: Duration,
}

/// `--proxy-check`: the URL as given, parsed.
#[derive(Debug, Clone)]
pub struct ProxyCheck {
    pub url: String,
    pub target: Target,
    /// Port for proxies that name none.
    pub default_port: u16,
}

/// Every default, defined once. The `--help` text repeats them in words; a test keeps
/// the two in step.
pub mod defaults {
    use std::time::Duration;

    pub const CONCURRENCY: usize = 256;
    pub const METHOD: &str = "GET";
    pub const PATH: &str = "/";
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    pub const TIMEOUT: Duration = Duration::from_secs(10);
    pub const MAX_HEADER_BYTES: usize = 65536;
    /// New connections per second; 0 is no limit.
    pub const RATE: f64 = 0.0;
    pub const MAX_REDIRS: usize = 10;
    pub const RETRY: u32 = 0;
    pub const RETRY_DELAY: Duration = Duration::from_secs(1);
    /// The longest wait between retries, `Retry-After` included.
    pub const RETRY_DELAY_CAP: Duration = Duration::from_secs(30);
}

impl Config {
    /// A config with the contract's defaults and the given targets (for tests and benches).
    pub fn with_targets(targets: &[&str]) -> Config {
        let args = Args {
            targets: targets.iter().map(|s| s.to_string()).collect(),
            ..Args::default()
        };
        Config::from_args(args).expect("the defaults are valid")
    }

    pub fn from_args(a: Args) -> Result<Config, UsageError> {
        let defaults = target_defaults(&a)?;
        let proxy = proxy(&a)?;
        let proxy_check = proxy_check(&a, &proxy, defaults.port)?;
        Ok(Config {
            concurrency: match &a.concurrency {
                Some(c) => number("--concurrency", c, 1, 1_000_000)?,
                None => defaults::CONCURRENCY,
            },
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
            format: format(&a)?,
            ordered: a.ordered,
            quiet: a.quiet,
            resolve: Resolve::parse(&a.resolve)?,
            resolver: Arc::new(super::names::resolver(&a.resolver, a.ipv4, a.ipv6)?),
            expect_status: a
                .expect_status
                .as_deref()
                .map(StatusSet::parse)
                .transpose()
                .map_err(|e| usage("--expect-status", &e))?,
            expect_header: a
                .expect_header
                .iter()
                .map(|e| HeaderExpectation::parse(e).map_err(|why| usage("--expect-header", &why)))
                .collect::<Result<_, _>>()?,
            rate: rate(&a)?,
            shard: a.shard.as_deref().map(parse_shard).transpose()?,
            resume: a.resume.clone(),
            progress: progress(&a)?,
            expect_cert_days: a
                .expect_cert_days
                .as_deref()
                .map(|n| number("--expect-cert-days", n, 0, 36_500))
                .transpose()?,
            tls: tls(&a)?,
            proxy,
            proxy_check,
            follow: a.location,
            max_redirs: match &a.max_redirs {
                Some(n) => number("--max-redirs", n, 0, 1000)?,
                None => defaults::MAX_REDIRS,
            },
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
        })
    }
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

/// `--cacert`, `--insecure`.
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
    TlsSettings::new(cacert.as_deref(), a.insecure).map_err(|e| {
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
                &format!("'{f}' is not one of text, status, json"),
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

/// The longest duration accepted, so that deadlines never overflow.
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// `250ms`, `5s`, `1m`, or a bare number of seconds (`2.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("'{text}' is not a duration (try 250ms, 5s, 1m or 2.5)");
    let d = match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => {
            Duration::try_from_secs_f64(secs).map_err(|_| bad())?
        }
        Ok(_) => return Err(bad()),
        Err(_) => humantime::parse_duration(text).map_err(|_| bad())?,
    };
    if d.is_zero() {
        return Err(format!("'{text}' must be more than zero"));
    }
    if d > MAX_DURATION {
        return Err(format!("'{text}' is longer than 7 days"));
    }
    Ok(d)
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

/// `--resolve` entries: (lower-cased host, port) to addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolve(HashMap<(String, u16), Vec<IpAddr>>);

impl Resolve {
    pub fn parse(entries: &[String]) -> Result<Resolve, UsageError> {
        let mut map = HashMap::new();
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
            map.insert((host.to_ascii_lowercase(), port), ips);
        }
        Ok(Resolve(map))
    }

    /// The addresses given for `host:port`, if any.
    pub fn get(&self, host: &str, port: u16) -> Option<&[IpAddr]> {
        if self.0.is_empty() {
            return None;
        }
        self.0
            .get(&(host.to_ascii_lowercase(), port))
            .map(Vec::as_slice)
    }
}

/// `--expect-header 'NAME: REGEX'`: a header NAME (any case) whose value matches REGEX
/// somewhere (unanchored). Values are matched as bytes, so invalid UTF-8 still matches.
#[derive(Debug, Clone)]
pub struct HeaderExpectation {
    pub name: String,
    pub pattern: regex::bytes::Regex,
}

/// Patterns compile to at most this much memory, so a user's typo cannot exhaust it.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl HeaderExpectation {
    pub fn parse(text: &str) -> Result<HeaderExpectation, String> {
        let Some((name, pattern)) = text.split_once(':') else {
            return Err(format!("'{text}' is not 'NAME: REGEX'"));
        };
        let name = name.trim();
        if !http::is_token(name) {
            return Err(format!("'{text}': '{name}' is not a header name"));
        }
        let pattern = pattern.trim();
        let compiled = regex::bytes::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                // The regex crate's message is several lines with a caret diagram; keep
                // its last line, which says what is wrong.
                let text = e.to_string();
                let why = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                let why = why.trim().trim_start_matches("error: ");
                format!("'{pattern}' is not a valid regular expression: {why}")
            })?;
        Ok(HeaderExpectation {
            name: name.to_string(),
            pattern: compiled,
        })
    }
}

impl fmt::Display for HeaderExpectation {
    /// As the user gave it, normalised: `Server: nginx`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.pattern.as_str())
    }
}

/// `--expect-status`: a list of codes and ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet {
    ranges: Vec<RangeInclusive<u16>>,
    text: String,
}

impl StatusSet {
    pub fn parse(text: &str) -> Result<StatusSet, String> {
        let code = |s: &str| match s.trim().parse::<u16>() {
            Ok(c @ 100..=999) => Ok(c),
            _ => Err(format!("'{s}' is not a status code from 100 to 999")),
        };
        let mut ranges = Vec::new();
        for item in text.split(',') {
            let range = match item.split_once('-') {
                Some((lo, hi)) => code(lo)?..=code(hi)?,
                None => code(item)?..=code(item)?,
            };
            if range.is_empty() {
                return Err(format!("'{item}' is an empty range"));
            }
            ranges.push(range);
        }
        Ok(StatusSet {
            ranges,
            text: text.to_string(),
        })
    }

    pub fn contains(&self, code: u16) -> bool {
        self.ranges.iter().any(|r| r.contains(&code))
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(list: &[&str]) -> Result<Config, UsageError> {
        let owned: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        match crate::cli::parse(&owned) {
            crate::cli::Parsed::Args(a) => Config::from_args(*a),
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
        assert_eq!(c.connect_timeout, Duration::from_secs(5));
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.max_header_bytes, 65536);
        assert_eq!(c.format, Format::Text);
        assert_eq!(c.rate, 0.0);
        assert_eq!(c.progress, None);
    }

    /// The help text states the defaults in words; they must be the ones in `defaults`.
    #[test]
    fn help_states_the_defaults() {
        let help = match crate::cli::parse(&["--help".to_string()]) {
            crate::cli::Parsed::Help(text) => text,
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
    fn resolve_entries() {
        let r = Resolve::parse(&[
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
