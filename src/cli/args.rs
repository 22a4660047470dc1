//! The command-line arguments as argh sees them. Their doc comments are `--help`.
//!
//! Nothing here is validated beyond argh's own parsing: `config` does that.

use argh::FromArgs;

#[derive(FromArgs, Debug, Default, PartialEq)]
#[argh(
    description = "Probe many HTTP servers at once: send one request to each and print the \
status line and header lines of the answer (never the body).",
    example = "{command_name} example.com\n\
{command_name} -f hosts.txt --format status\n\
cat hosts.txt | {command_name} -c 1000 -t 5s --format json | jq -r 'select(.ok) | .target'\n\
{command_name} -q -L --retry 2 --expect-status 200-299 -f sites.txt && echo all up\n\
{command_name} --proxy-check https://example.com/ -f proxies.txt --format status\n\
{command_name} --resolve example.com:80:127.0.0.1 http://example.com/health",
    note = "TARGET is HOST, HOST:PORT, [IPV6], [IPV6]:PORT, a bare IPv6 address, \
http://HOST[:PORT][/PATH][?QUERY] or https://..., or a URL without its scheme \
(HOST[:PORT]/PATH, HOST?QUERY, //HOST/PATH: http, https with --tls). Unicode names are \
sent in punycode (IDNA). With no TARGET and no --file, targets are read from \
standard input; a TARGET of '-' is standard input too. In files and standard input: one target \
per line, at most 65536 bytes; '#' at the start of a line or after a space starts a comment.\n\n\
DUR is 250ms, 5s, 1m, or a number of seconds such as 2.5.\n\n\
Output: text (TARGET header > LINE, streamed), status (TARGET, code or error kind, \
milliseconds, address, reason or message; tab-separated) or json (one object per line).",
    error_code(0, "every target was probed and is ok (or there were none)"),
    error_code(1, "at least one target is not ok"),
    error_code(
        2,
        "usage error: bad option or value, unreadable --file; nothing was probed"
    ),
    error_code(
        3,
        "some results could not be written (disk full, an I/O error on stdout or -o); \
takes precedence over 1"
    ),
    error_code(
        130,
        "interrupted (Ctrl-C); unfinished targets are reported as cancelled"
    )
)]
#[argh(help_triggers("-h", "--help"))]
pub struct Args {
    /// targets to probe (see below); read from standard input when none are given
    #[argh(positional, arg_name = "TARGET")]
    pub targets: Vec<String>,

    /// read targets from PATH, one per line; '-' is standard input; repeatable
    #[argh(option, short = 'f', arg_name = "PATH")]
    pub file: Vec<String>,

    /// probes in flight at once (default 256; lowered to fit the open-file limit)
    #[argh(option, short = 'c', arg_name = "N")]
    pub concurrency: Option<String>,

    /// port for targets that name none (default 80)
    #[argh(option, short = 'p', arg_name = "N")]
    pub port: Option<String>,

    /// request method (default GET; HEAD is common)
    #[argh(option, short = 'X', arg_name = "M")]
    pub method: Option<String>,

    /// request target for targets that give no path (default /)
    #[argh(option, arg_name = "P")]
    pub path: Option<String>,

    /// extra request header 'Name: value'; replaces a default header of that name;
    /// 'Name:' removes it; repeatable
    #[argh(option, short = 'H', arg_name = "'N: V'")]
    pub header: Vec<String>,

    /// HTTP version to send: 1.0 (default) or 1.1 (adds Connection: close)
    #[argh(option, arg_name = "V")]
    pub http_version: Option<String>,

    /// over TLS, offer HTTP/2 in ALPN (h2, http/1.1) and, when the server picks it,
    /// read the head as one HTTP/2 stream (HTTP/2 200, lower-case names); plain http
    /// stays HTTP/1.x
    #[argh(switch)]
    pub http2: bool,

    /// speak HTTP/2 to plain http targets too, without asking first (no Upgrade), as to
    /// a server known to speak it; over TLS as --http2
    #[argh(switch)]
    pub http2_prior_knowledge: bool,

    /// https targets over HTTP/3 (QUIC, UDP) raced with TCP, as curl does: TCP starts
    /// 200ms later unless QUIC has answered; whichever brings the head first is used
    #[argh(switch)]
    pub http3: bool,

    /// https targets over HTTP/3 (QUIC, UDP) only: no answer within --connect-timeout
    /// is connect_timeout, an ICMP port unreachable refused
    #[argh(switch)]
    pub http3_only: bool,

    /// time allowed per probe (per redirect hop) for name resolution, TCP connect (a
    /// name's addresses race, the next 250ms after the last), a proxy tunnel and the
    /// TLS handshake (default 5s)
    #[argh(option, arg_name = "DUR")]
    pub connect_timeout: Option<String>,

    /// time allowed per probe, from start to the end of the header block (default 10s)
    #[argh(option, short = 't', arg_name = "DUR")]
    pub timeout: Option<String>,

    /// cap on the header block in bytes, interim responses included (default 65536)
    #[argh(option, arg_name = "N")]
    pub max_header_bytes: Option<String>,

    /// output format: text (default), status, json, or prometheus (the text exposition
    /// format with blackbox_exporter's metric names, written whole at the end; for
    /// node_exporter's textfile collector, with -o)
    #[argh(option, arg_name = "F")]
    pub format: Option<String>,

    /// write results to FILE instead of standard output: to a temporary file beside it,
    /// renamed over FILE when the run ends, so readers never see half a file (a stopped
    /// run leaves FILE as it was; JSON results so far go to FILE.partial). A symlink is
    /// followed; a device, FIFO or socket is written in place; '-' is standard output
    #[argh(option, short = 'o', arg_name = "FILE")]
    pub output: Option<String>,

    /// print only the records of targets that are not ok, in every format (the exit
    /// status is unchanged); text output then comes a target at a time, not streamed
    #[argh(switch)]
    pub only_failed: bool,

    /// write results in input order (memory stays bounded by --concurrency)
    #[argh(switch)]
    pub ordered: bool,

    /// use ADDR for HOST:PORT instead of DNS, as curl does (ADDR may be a
    /// comma-separated list); repeatable
    #[argh(option, arg_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<String>,

    /// DNS server to ask instead of /etc/resolv.conf's: ADDR[:PORT] (port 53 unless
    /// given; IPv6 in brackets, e.g. [::1]:53); repeatable (up to 64), queries rotate
    /// over them
    #[argh(option, arg_name = "ADDR[:PORT]")]
    pub resolver: Vec<String>,

    /// resolve names to IPv4 addresses only, and connect over IPv4 only
    #[argh(switch, short = '4')]
    pub ipv4: bool,

    /// resolve names to IPv6 addresses only, and connect over IPv6 only
    #[argh(switch, short = '6')]
    pub ipv6: bool,

    /// probe every address of a name on its own connection, one record each (JSON
    /// "address" and "of_addresses", a Prometheus label address="IP:PORT"), instead of
    /// racing them for one; -c then counts connections; e.g. a dead backend behind a
    /// round-robin name:
    /// --all-addresses --format status www.example.com
    #[argh(switch)]
    pub all_addresses: bool,

    /// connect from this local address, or through this network interface, as curl
    /// does; the resolver's queries go from the address too; e.g. a probe from a second
    /// uplink: --interface 192.0.2.7, or --interface eth1
    #[argh(option, arg_name = "ADDR|NAME")]
    pub interface: Option<String>,

    /// a probe for HOST1:PORT1 connects to HOST2:PORT2 instead, as curl does; Host,
    /// SNI and the certificate check stay HOST1's; an empty HOST1 or PORT1 matches any,
    /// an empty HOST2 or PORT2 keeps the original; redirects are matched too;
    /// repeatable, the first match wins; e.g. an origin behind a CDN:
    /// --connect-to www.example.com:443:origin1.example.net:443
    #[argh(option, arg_name = "HOST1:PORT1:HOST2:PORT2")]
    pub connect_to: Vec<String>,

    /// statuses that count as ok, e.g. 200,300-399; others are status_mismatch
    #[argh(option, arg_name = "LIST")]
    pub expect_status: Option<String>,

    /// a response header NAME (any case) must have a value matching REGEX (unanchored,
    /// e.g. 'Server: ^nginx'); else header_mismatch; repeatable, all must hold
    #[argh(option, arg_name = "'NAME: REGEX'")]
    pub expect_header: Vec<String>,

    /// use TLS for targets without a scheme (port 443 unless --port)
    #[argh(switch)]
    pub tls: bool,

    /// trust the PEM certificates in FILE besides the built-in roots: CAs, or a
    /// server's own certificate (trusted when presented as is, as curl does)
    #[argh(option, arg_name = "FILE")]
    pub cacert: Option<String>,

    /// do not verify certificates (they are still recorded)
    #[argh(switch, short = 'k')]
    pub insecure: bool,

    /// a certificate that expires within N days is cert_expiring (https only)
    #[argh(option, arg_name = "N")]
    pub expect_cert_days: Option<String>,

    /// send every probe through this proxy: http://[user:pass@]HOST:PORT (also a bare
    /// HOST:PORT), socks5:// or socks5h://[user:pass@]HOST:PORT (the proxy resolves),
    /// socks4://[user@]HOST:PORT (resolved here, IPv4 only) or socks4a:// (the proxy
    /// resolves)
    #[argh(option, arg_name = "URL")]
    pub proxy: Option<String>,

    /// check a proxy pool: every target is a proxy (a URL as for --proxy, or a bare
    /// HOST:PORT whose protocol is found by trying HTTP, then SOCKS5, then SOCKS4) and URL
    /// is requested through each; an https:// URL proves the answer came from the origin
    #[argh(option, arg_name = "URL")]
    pub proxy_check: Option<String>,

    /// follow redirects (301, 302, 303, 307, 308) to their Location, http or https, a new
    /// connection per hop; the record describes the last response
    #[argh(switch, short = 'L')]
    pub location: bool,

    /// with -L, more redirects than N is too_many_redirects (default 10)
    #[argh(option, arg_name = "N")]
    pub max_redirs: Option<String>,

    /// probe a target again, up to N times, after a transient failure (timeouts, resets,
    /// closed or cut-off answers, DNS server failures, status 408, 429, 500, 502, 503,
    /// 504); a waiting target holds no connection (default 0)
    #[argh(option, arg_name = "N")]
    pub retry: Option<String>,

    /// wait before the first retry, doubling each time up to 30s; a Retry-After in
    /// seconds is honoured up to the same cap (default 1s)
    #[argh(option, arg_name = "DUR")]
    pub retry_delay: Option<String>,

    /// print no results on standard output (-o FILE still gets them); the exit status
    /// says it all
    #[argh(switch, short = 'q')]
    pub quiet: bool,

    /// at most N new connections per second across the run (default 0: no limit)
    #[argh(option, arg_name = "N")]
    pub rate: Option<String>,

    /// probe only targets whose 0-based input index i has i % N == K-1
    #[argh(option, arg_name = "K/N")]
    pub shard: Option<String>,

    /// skip the targets that already have a record in FILE, the JSON output (--format
    /// json) of an earlier run over the same input; 'cancelled' ones are probed again.
    /// FILE is read whole first, so it may be appended to (>> FILE). It must come from
    /// the same input list (and --shard): another list cannot be detected in general
    #[argh(option, arg_name = "FILE")]
    pub resume: Option<String>,

    /// show a progress line on stderr (default: when stderr is a terminal and stdout is not)
    #[argh(switch)]
    pub progress: bool,

    /// never show the progress line
    #[argh(switch)]
    pub no_progress: bool,

    /// print the version and exit
    #[argh(switch, short = 'V')]
    pub version: bool,
}

/// What parsing the command line came to.
#[derive(Debug)]
pub enum Parsed {
    Args(Box<Args>),
    /// `--help`: print this on stdout, exit 0.
    Help(String),
    /// A usage error: print this on stderr, exit 2.
    Error(String),
}

/// What stands in for a positional `-` while argh parses (argh takes any `-...` for an
/// option). No target can contain a NUL, so it cannot be mistaken for one.
const STDIN_TARGET: &str = "\0-";

/// Short switches, which may be bundled (`-qL`), and short options, which may carry
/// their value (`-c5`) or end a bundle (`-qc 5`), as curl and getopt read them.
const SHORT_SWITCHES: &str = "46kLqVh";
const SHORT_OPTIONS: &str = "fcpXHto";

/// Parses `args` (without the program name). Accepts `--name=value`, bundled short
/// flags (`-qL`, `-c5`), which argh alone does not, and a positional `-` (standard
/// input), which argh alone rejects. argh's own error messages are reworded in the
/// project's style.
pub fn parse(args: &[String]) -> Parsed {
    let mut split: Vec<String> = Vec::with_capacity(args.len());
    let mut options_ended = false;
    for arg in args {
        if arg == "--" {
            options_ended = true;
        }
        let is_value = split.last().is_some_and(|o| takes_value(o));
        if !options_ended && !is_value {
            if let Some(expanded) = expand_short(arg) {
                split.extend(expanded);
                continue;
            }
        }
        match arg.split_once('=') {
            Some((name, value)) if !options_ended && name.starts_with("--") && name.len() > 2 => {
                split.push(name.to_string());
                split.push(value.to_string());
            }
            _ if !options_ended && arg == "-" && !split.last().is_some_and(|o| takes_value(o)) => {
                split.push(STDIN_TARGET.to_string());
            }
            _ => split.push(arg.clone()),
        }
    }
    let strs: Vec<&str> = split.iter().map(String::as_str).collect();
    match <Args as FromArgs>::from_args(&["headprobe"], &strs) {
        Ok(mut args) => {
            for target in &mut args.targets {
                if target == STDIN_TARGET {
                    *target = "-".to_string();
                }
            }
            Parsed::Args(Box::new(args))
        }
        Err(early) => match early.status {
            Ok(()) => Parsed::Help(early.output),
            Err(()) => Parsed::Error(reworded(&early.output)),
        },
    }
}

/// `-qL` as `-q -L`, `-c5` as `-c 5`, `-qc5` as `-q -c 5`; `None` for anything else
/// (a single flag, a long option, a letter that is no short flag: argh reports it).
fn expand_short(arg: &str) -> Option<Vec<String>> {
    let body = arg.strip_prefix('-')?;
    if body.starts_with('-') || body.chars().count() < 2 {
        return None;
    }
    let mut out = Vec::new();
    for (i, c) in body.char_indices() {
        if SHORT_SWITCHES.contains(c) {
            out.push(format!("-{c}"));
        } else if SHORT_OPTIONS.contains(c) {
            out.push(format!("-{c}"));
            let value = &body[i + 1..];
            if !value.is_empty() {
                out.push(value.to_string());
            }
            return Some(out);
        } else {
            return None;
        }
    }
    Some(out)
}

/// argh's messages in the words of every other usage error: the option named, what
/// was wrong, what to do.
fn reworded(output: &str) -> String {
    let text = output.trim_end();
    if let Some(arg) = text.strip_prefix("Unrecognized argument: ") {
        let arg = arg.trim_matches('"');
        return format!("unknown option {arg} (see --help for the options)");
    }
    if let Some(rest) = text.strip_prefix("No value provided for option '") {
        let option = rest.trim_end_matches("'.");
        return format!("invalid {option}: it needs a value");
    }
    if let Some(rest) = text.strip_prefix("Error parsing option '") {
        if let Some((option, rest)) = rest.split_once("' with value '") {
            if let Some((value, why)) = rest.split_once("': ") {
                if why == "duplicate values provided" {
                    return format!(
                        "invalid {option}: given twice (the second time as '{value}'); give it once"
                    );
                }
                return format!("invalid {option}: '{value}': {why}");
            }
        }
    }
    text.to_string()
}

/// Parses the arguments as the OS gave them. A target that is not UTF-8 is kept byte
/// for byte (it becomes an `invalid_target` record, echoed escaped, never altered and
/// probed); an option or option value that is not UTF-8 is a usage error.
pub fn parse_os(args: &[std::ffi::OsString]) -> Parsed {
    use std::os::unix::ffi::OsStrExt;
    let mut text: Vec<String> = Vec::with_capacity(args.len());
    let mut options_ended = false;
    for arg in args {
        let bytes = arg.as_bytes();
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                options_ended |= s == "--";
                text.push(s.to_string());
            }
            Err(_) => {
                let shown = crate::report::sanitize::escape(bytes, false);
                let option_value = text.last().filter(|o| takes_value(o));
                match option_value {
                    Some(option) if !options_ended => {
                        return Parsed::Error(format!(
                            "invalid {option}: '{shown}' is not valid UTF-8"
                        ))
                    }
                    _ if !options_ended && bytes.starts_with(b"-") => {
                        return Parsed::Error(format!(
                            "unknown option {shown} (see --help for the options)"
                        ))
                    }
                    _ => text.push(crate::run::input::raw_arg(bytes)),
                }
            }
        }
    }
    parse(&text)
}

/// Whether `arg` is an option that takes a value (so a `-` after it is that value), as
/// argh itself sees it: alone, it lacks its value.
fn takes_value(arg: &str) -> bool {
    arg.starts_with('-')
        && arg.len() > 1
        && matches!(
            <Args as FromArgs>::from_args(&["headprobe"], &[arg]),
            Err(early) if early.status.is_err() && early.output.contains("No value provided")
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        let owned: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        match parse(&owned) {
            Parsed::Args(a) => *a,
            other => panic!("{list:?}: {other:?}"),
        }
    }

    #[test]
    fn parses_options_and_targets() {
        let a = args(&[
            "-c",
            "10",
            "--format=json",
            "-H",
            "X: 1",
            "-H",
            "Y:",
            "a",
            "--ordered",
            "b",
        ]);
        assert_eq!(a.targets, ["a", "b"]);
        assert_eq!(a.concurrency.as_deref(), Some("10"));
        assert_eq!(a.format.as_deref(), Some("json"));
        assert_eq!(a.header, ["X: 1", "Y:"]);
        assert!(a.ordered);
    }

    #[test]
    fn a_lone_dash_is_a_target_unless_it_is_a_value() {
        let a = args(&[
            "a",
            "-",
            "-f",
            "-",
            "--ordered",
            "-",
            "--file=-",
            "-H",
            "X: 1",
            "-",
        ]);
        assert_eq!(a.targets, ["a", "-", "-", "-"]);
        assert_eq!(a.file, ["-", "-"]);
        let a = args(&["--path", "-"]);
        assert_eq!(a.path.as_deref(), Some("-"));
        assert!(a.targets.is_empty());
        let a = args(&["--", "-"]);
        assert_eq!(a.targets, ["-"]);
    }

    #[test]
    fn short_flags_bundle_as_curl_users_type_them() {
        let a = args(&["-qL", "-c5", "-kqt", "2s", "x"]);
        assert!(a.quiet && a.location && a.insecure);
        assert_eq!(a.concurrency.as_deref(), Some("5"));
        assert_eq!(a.targets, ["x"]);
        assert_eq!(a.timeout.as_deref(), Some("2s"));
        let a = args(&["-c5", "-Hx: y", "--path", "-qL"]);
        assert_eq!(a.concurrency.as_deref(), Some("5"));
        assert_eq!(a.header, ["x: y"]);
        assert_eq!(a.path.as_deref(), Some("-qL"), "a value is never expanded");
        // The letters are argh's own: switches need no value, options do.
        for c in SHORT_SWITCHES.chars().filter(|&c| c != 'h') {
            assert!(!takes_value(&format!("-{c}")), "-{c}");
        }
        for c in SHORT_OPTIONS.chars() {
            assert!(takes_value(&format!("-{c}")), "-{c}");
        }
    }

    #[test]
    fn argh_errors_read_like_ours() {
        let error = |list: &[&str]| {
            let owned: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            match parse(&owned) {
                Parsed::Error(e) => e,
                other => panic!("{list:?}: {other:?}"),
            }
        };
        assert_eq!(
            error(&["-t", "1s", "-t", "2s"]),
            "invalid -t: given twice (the second time as '2s'); give it once"
        );
        assert_eq!(
            error(&["--bogus"]),
            "unknown option --bogus (see --help for the options)"
        );
        assert_eq!(error(&["--timeout"]), "invalid --timeout: it needs a value");
        assert_eq!(
            error(&["-qz"]),
            "unknown option -qz (see --help for the options)"
        );
    }

    #[test]
    fn double_dash_ends_options() {
        let a = args(&["--", "--format=json", "-x"]);
        assert_eq!(a.targets, ["--format=json", "-x"]);
        assert_eq!(a.format, None);
    }

    #[test]
    fn help_and_errors() {
        assert!(
            matches!(parse(&["--help".into()]), Parsed::Help(h) if h.contains("--connect-timeout"))
        );
        assert!(matches!(parse(&["--bogus".into()]), Parsed::Error(_)));
        assert!(matches!(parse(&["--timeout".into()]), Parsed::Error(_)));
    }
}
