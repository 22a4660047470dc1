//! The target grammar: one input token to a `Target`, or a reason it is not one.
//!
//! Pure: no sockets, no DNS, no clock. Driven by unit tests, benches and fuzzers.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The protocol spoken to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Where to connect: a DNS name to resolve, or an address literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Host {
    /// The host as written in the `Host` header and URLs: IPv6 in brackets.
    pub fn authority_form(&self) -> Cow<'_, str> {
        match self {
            Host::Name(name) => Cow::Borrowed(name),
            Host::Ip(IpAddr::V4(ip)) => Cow::Owned(ip.to_string()),
            Host::Ip(IpAddr::V6(ip)) => Cow::Owned(format!("[{ip}]")),
        }
    }
}

impl fmt::Display for Host {
    /// The bare host (no brackets), as in JSON's `host` field.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A parsed target: what to connect to and what to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scheme: Scheme,
    pub host: Host,
    pub port: u16,
    /// The request target as sent: path and query.
    pub path: String,
}

impl Target {
    /// The `Host` header value: the port only when it is not the scheme's default.
    pub fn host_header(&self) -> String {
        let host = self.host.authority_form();
        if self.port == self.scheme.default_port() {
            host.into_owned()
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// What a token without a scheme (or without a path) gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// Scheme for tokens without one (`--tls` makes it https).
    pub scheme: Scheme,
    /// Port for tokens that name none and have no scheme (`--port`).
    pub port: u16,
    /// Request target for tokens that give no path (`--path`).
    pub path: String,
    /// Whether `https://` targets are accepted (TLS support compiled in).
    pub https: bool,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            scheme: Scheme::Http,
            port: 80,
            path: "/".to_string(),
            https: false,
        }
    }
}

/// Why a token is not a target; the text is the `invalid_target` message.
pub type Invalid = String;

/// Parses one token (already trimmed) as the contract's target grammar.
pub fn parse(token: &str, defaults: &Defaults) -> Result<Target, Invalid> {
    if token.is_empty() {
        return Err("empty target".into());
    }
    if let Some((at, c)) = token
        .char_indices()
        .find(|(_, c)| c.is_whitespace() || c.is_control())
    {
        // One wording for all of them: a space, a TAB, a CR, a NUL.
        let mut shown = String::new();
        let mut buf = [0u8; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            shown.push_str(&format!("\\x{b:02x}"));
        }
        return Err(format!(
            "a target cannot contain spaces or control characters (found {shown} at byte {})",
            at + 1
        ));
    }

    if let Some((scheme, rest)) = special_url(token) {
        return parse_url(scheme, rest, defaults);
    }
    match token.find("://") {
        Some(i) => parse_url(&token[..i], &token[i + 3..], defaults),
        // `//host/path`, and `host/path`, `host?query`, `host#x`: URLs without a scheme,
        // as curl reads them, in the scheme bare targets get (https with --tls).
        None => match token.strip_prefix("//") {
            Some(rest) => parse_url_in(defaults.scheme, rest, defaults, None),
            None if token.contains(['/', '?', '#']) => {
                parse_url_in(defaults.scheme, token, defaults, Some(defaults.port))
            }
            None => parse_bare(token, defaults),
        },
    }
}

/// A host name as `--resolve` and lookups compare it: ASCII (IDNA), lower case, no
/// trailing dot. The same checks as a target's host apply.
pub fn normalize_name(name: &str) -> Result<String, Invalid> {
    match parse_host(name, false)? {
        Host::Name(n) => Ok(n.trim_end_matches('.').to_ascii_lowercase()),
        Host::Ip(ip) => Ok(ip.to_string()),
    }
}

/// `http:` or `https:` and what follows the slashes, read as the WHATWG URL Standard
/// reads a special scheme's URL (and curl, for one slash or three): any run of `/` and
/// `\` after the colon is skipped ("special authority ignore slashes state"), so
/// `https:/h:8090/`, `https:h:8090` and `http:\\h` all name host `h`. `http:8080` stays
/// the grammar's `HOST:PORT` (a host named `http`), as curl reads it.
fn special_url(token: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = token.split_once(':')?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    let port = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((scheme, rest.trim_start_matches(['/', '\\'])))
}

fn parse_url(scheme: &str, rest: &str, defaults: &Defaults) -> Result<Target, Invalid> {
    let scheme = scheme_of(scheme, defaults)?;
    parse_url_in(scheme, rest, defaults, None)
}

fn scheme_of(scheme: &str, defaults: &Defaults) -> Result<Scheme, Invalid> {
    Ok(if scheme.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else if scheme.eq_ignore_ascii_case("https") {
        if !defaults.https {
            return Err("https:// targets are not supported by this build".into());
        }
        Scheme::Https
    } else {
        return Err(format!(
            "unknown scheme '{scheme}' (use http:// or https://)"
        ));
    })
}

/// The part of a URL after `scheme://` (or of one without a scheme: `port` is then the
/// port when it names none, `--port`'s). Read as the WHATWG URL Standard reads hosts
/// and ports: an empty port is the default one, IPv4 in its numeric forms (`127.1`,
/// `0x7f000001`), Unicode names through IDNA.
fn parse_url_in(
    scheme: Scheme,
    rest: &str,
    defaults: &Defaults,
    port: Option<u16>,
) -> Result<Target, Invalid> {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err("credentials (user@) in a target URL are not supported".into());
    }
    // `http://host:/` is the default port, as in RFC 3986 and browsers.
    let authority = authority.strip_suffix(':').unwrap_or(authority);
    let (host, given) = split_authority(authority, false, true)?;
    let port = given.or(port).unwrap_or(scheme.default_port());

    // The fragment never goes on the wire. A URL that gives no path gets `--path`, as a
    // bare host does, its query kept (`http://h?x=1` with `--path /f` asks `/f?x=1`).
    let tail = tail.split('#').next().unwrap_or("");
    let path = if tail.is_empty() {
        defaults.path.clone()
    } else if tail.starts_with('?') {
        format!("{}{tail}", defaults.path)
    } else {
        tail.to_string()
    };
    Ok(Target {
        scheme,
        host,
        port,
        path,
    })
}

fn parse_bare(token: &str, defaults: &Defaults) -> Result<Target, Invalid> {
    if token.contains(['/', '?', '#', '@']) {
        return Err("not a host, host:port or http:// URL".into());
    }
    let (host, port) = split_authority(token, true, false)?;
    Ok(Target {
        scheme: defaults.scheme,
        host,
        port: port.unwrap_or(defaults.port),
        path: defaults.path.clone(),
    })
}

/// Splits `host[:port]`, `[v6][:port]` and (when `bare_v6`) an unbracketed IPv6 literal;
/// `url` reads IPv4 as a URL's host (its numeric forms too).
fn split_authority(
    authority: &str,
    bare_v6: bool,
    url: bool,
) -> Result<(Host, Option<u16>), Invalid> {
    if authority.is_empty() {
        return Err("empty host".into());
    }
    if let Some(inner) = authority.strip_prefix('[') {
        let close = inner
            .find(']')
            .ok_or_else(|| "unclosed '[' in IPv6 address".to_string())?;
        let ip: Ipv6Addr = inner[..close]
            .parse()
            .map_err(|_| format!("'{}' is not an IPv6 address", &inner[..close]))?;
        let after = &inner[close + 1..];
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(parse_port(p)?),
                None => return Err(format!("unexpected '{after}' after ']'")),
            },
        };
        return Ok((Host::Ip(IpAddr::V6(ip)), port));
    }

    match authority.matches(':').count() {
        0 => Ok((parse_host(authority, url)?, None)),
        1 => {
            let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
            Ok((parse_host(host, url)?, Some(parse_port(port)?)))
        }
        _ => match authority.parse::<Ipv6Addr>() {
            Ok(ip) if bare_v6 => Ok((Host::Ip(IpAddr::V6(ip)), None)),
            Ok(_) => Err("an IPv6 address in a URL must be in brackets".into()),
            Err(_) => Err(format!("'{authority}' is not a host:port or IPv6 address")),
        },
    }
}

fn parse_port(text: &str) -> Result<u16, Invalid> {
    if text.is_empty() {
        return Err("empty port".into());
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port '{text}' is not a number"));
    }
    match text.parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        _ => Err(format!("port {text} is outside 1-65535")),
    }
}

/// A DNS name (letters, digits, '-', '_'; labels of 1–63, not starting or ending with
/// '-'; at most 253; Unicode converted with IDNA) or an IPv4 literal (`url`: in any of
/// the WHATWG URL Standard's numeric forms).
fn parse_host(host: &str, url: bool) -> Result<Host, Invalid> {
    if host.is_empty() {
        return Err("empty host".into());
    }
    let ascii;
    let host = if host.is_ascii() {
        host
    } else {
        ascii = idna::domain_to_ascii(host)
            .map_err(|_| format!("'{host}' is not a valid international domain name"))?;
        if ascii.is_empty() {
            return Err("empty host".into());
        }
        ascii.as_str()
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    let last_label = name.rsplit('.').next().unwrap_or("");
    if url && ends_in_a_number(last_label) {
        return whatwg_ipv4(name)
            .map(|ip| Host::Ip(IpAddr::V4(ip)))
            .ok_or_else(|| format!("'{host}' is not a valid IPv4 address"));
    }
    if !last_label.is_empty() && last_label.bytes().all(|b| b.is_ascii_digit()) {
        // Looks numeric: it must be a whole IPv4 address, as browsers and curl read it.
        return host
            .parse::<Ipv4Addr>()
            .map(|ip| Host::Ip(IpAddr::V4(ip)))
            .map_err(|_| format!("'{host}' is not a valid IPv4 address"));
    }
    if name.len() > 253 {
        return Err("host name longer than 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("'{host}' has an empty label"));
        }
        if label.len() > 63 {
            return Err(format!("'{host}' has a label longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("'{c}' is not allowed in a host name"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "'{host}' is not a host name: a label cannot start or end with '-'"
            ));
        }
    }
    Ok(Host::Name(host.to_string()))
}

/// Whether a host's last label makes it an IPv4 address to the WHATWG URL Standard:
/// digits, or `0x` and hex digits.
fn ends_in_a_number(label: &str) -> bool {
    !label.is_empty()
        && (label.bytes().all(|b| b.is_ascii_digit())
            || label
                .strip_prefix("0x")
                .or_else(|| label.strip_prefix("0X"))
                .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())))
}

/// The WHATWG URL Standard's IPv4 parser: one to four parts, each decimal, `0x` hex or
/// `0` octal; the last fills the bytes the others leave (`127.1` is 127.0.0.1,
/// `0x7f000001` too). `None` when it is not an address.
fn whatwg_ipv4(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.len() > 4 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let numbers: Vec<u64> = parts
        .iter()
        .map(|p| {
            let (digits, radix) =
                if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
                    (h, 16)
                } else if p.len() > 1 && p.starts_with('0') {
                    (&p[1..], 8)
                } else {
                    (*p, 10)
                };
            if digits.is_empty() {
                return Some(0);
            }
            u64::from_str_radix(digits, radix)
                .ok()
                .filter(|&n| n <= u64::from(u32::MAX))
        })
        .collect::<Option<_>>()?;
    let (last, init) = numbers.split_last()?;
    if init.iter().any(|&n| n > 255) || *last >= 256u64.pow(5 - numbers.len() as u32) {
        return None;
    }
    let mut value = *last;
    for (i, n) in init.iter().enumerate() {
        value += n << (8 * (3 - i));
    }
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

#[cfg(test)]
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            https: true,
            ..Defaults::default()
        }
    }

    fn ok(token: &str) -> (Scheme, String, u16, String) {
        let t = parse(token, &defaults()).unwrap_or_else(|e| panic!("{token:?}: {e}"));
        (t.scheme, t.host.to_string(), t.port, t.path)
    }

    #[test]
    fn accepted_forms() {
        use Scheme::*;
        let cases: &[(&str, (Scheme, &str, u16, &str))] = &[
            ("example.com", (Http, "example.com", 80, "/")),
            ("Example.COM.", (Http, "Example.COM.", 80, "/")),
            ("localhost", (Http, "localhost", 80, "/")),
            (
                "under_score.example",
                (Http, "under_score.example", 80, "/"),
            ),
            ("example.com:8080", (Http, "example.com", 8080, "/")),
            ("1.2.3.4", (Http, "1.2.3.4", 80, "/")),
            ("127.0.0.1:1", (Http, "127.0.0.1", 1, "/")),
            ("[::1]", (Http, "::1", 80, "/")),
            ("[::1]:8080", (Http, "::1", 8080, "/")),
            ("::1", (Http, "::1", 80, "/")),
            ("2001:db8::1", (Http, "2001:db8::1", 80, "/")),
            ("http://example.com", (Http, "example.com", 80, "/")),
            ("http://example.com/", (Http, "example.com", 80, "/")),
            (
                "HTTP://example.com:81/a/b?c=d",
                (Http, "example.com", 81, "/a/b?c=d"),
            ),
            ("http://example.com?q=1", (Http, "example.com", 80, "/?q=1")),
            ("http://example.com/x#frag", (Http, "example.com", 80, "/x")),
            ("http://[::1]:9/p", (Http, "::1", 9, "/p")),
            ("http://1.2.3.4:65535", (Http, "1.2.3.4", 65535, "/")),
            ("https://example.com", (Https, "example.com", 443, "/")),
            (
                "https://example.com:8443/x",
                (Https, "example.com", 8443, "/x"),
            ),
            // Targets as pasted: URLs without a scheme, as curl reads them.
            ("x.test:18001/path", (Http, "x.test", 18001, "/path")),
            ("x.test/path?q", (Http, "x.test", 80, "/path?q")),
            ("x.test:18001?q", (Http, "x.test", 18001, "/?q")),
            ("//x.test:9/p", (Http, "x.test", 9, "/p")),
            ("127.0.0.1:9/p", (Http, "127.0.0.1", 9, "/p")),
            // WHATWG URL reading: empty port, numeric IPv4, IDNA.
            ("http://x.test:/", (Http, "x.test", 80, "/")),
            ("https://x.test:/a", (Https, "x.test", 443, "/a")),
            ("http://127.1:18001/", (Http, "127.0.0.1", 18001, "/")),
            ("http://0x7f000001:18001/", (Http, "127.0.0.1", 18001, "/")),
            ("http://017700000001/", (Http, "127.0.0.1", 80, "/")),
            ("http://0x7f.1/", (Http, "127.0.0.1", 80, "/")),
            ("http://1.2.3/", (Http, "1.2.0.3", 80, "/")),
            ("bücher.test", (Http, "xn--bcher-kva.test", 80, "/")),
            ("http://BÜCHER.test/", (Http, "xn--bcher-kva.test", 80, "/")),
            ("bücher.test:81/x", (Http, "xn--bcher-kva.test", 81, "/x")),
            // A special scheme's slashes, missing, extra or backward, are ignored
            // (the URL Standard's "special authority ignore slashes state").
            ("https:/127.0.0.1:8090/", (Https, "127.0.0.1", 8090, "/")),
            ("https:127.0.0.1:8090", (Https, "127.0.0.1", 8090, "/")),
            ("http:///x.test/p", (Http, "x.test", 80, "/p")),
            ("HTTP:/x.test:81/p?q", (Http, "x.test", 81, "/p?q")),
            ("http:\\\\x.test/a?b", (Http, "x.test", 80, "/a?b")),
            ("http:/\\x.test", (Http, "x.test", 80, "/")),
            ("http:[::1]:9/", (Http, "::1", 9, "/")),
            // ... but `http:PORT` is the grammar's HOST:PORT, as curl reads it.
            ("http:8080", (Http, "http", 8080, "/")),
            ("https:8443/x", (Http, "https", 8443, "/x")),
        ];
        for (token, (scheme, host, port, path)) in cases {
            assert_eq!(
                ok(token),
                (*scheme, host.to_string(), *port, path.to_string()),
                "{token}"
            );
        }
    }

    #[test]
    fn rejected_forms() {
        let cases = [
            ("", "empty target"),
            ("exa mple.com", "spaces"),
            ("example.com\x1b[31m", "control"),
            ("ftp://example.com", "unknown scheme 'ftp'"),
            ("http://", "empty host"),
            ("http://:80", "empty host"),
            (":80", "empty host"),
            ("example.com:0", "outside 1-65535"),
            ("example.com:65536", "outside 1-65535"),
            ("example.com:99999999999", "outside 1-65535"),
            ("example.com:", "empty port"),
            ("example.com:http", "not a number"),
            ("example.com:+80", "not a number"),
            ("user@example.com", "not a host"),
            ("http://u:p@example.com/", "credentials"),
            ("[::1", "unclosed"),
            ("[nope]", "not an IPv6"),
            ("[::1]x", "unexpected"),
            ("http://::1/", "must be in brackets"),
            ("1:2:3", "not a host:port"),
            ("1.2.3.256", "not a valid IPv4"),
            ("1.2.3", "not a valid IPv4"),
            ("a..b", "empty label"),
            ("bad!host", "'!' is not allowed"),
            ("-a.test", "cannot start or end with '-'"),
            ("a-.test", "cannot start or end with '-'"),
            ("--format", "cannot start or end with '-'"),
            ("http://-x.test/", "cannot start or end with '-'"),
            (
                "a\tb",
                "spaces or control characters (found \\x09 at byte 2)",
            ),
            (
                "a\rb",
                "spaces or control characters (found \\x0d at byte 2)",
            ),
            (
                "a\0b",
                "spaces or control characters (found \\x00 at byte 2)",
            ),
            (
                "a b",
                "spaces or control characters (found \\x20 at byte 2)",
            ),
            ("http://1.2.3.4.5/", "not a valid IPv4"),
            ("http://0x100000000/", "not a valid IPv4"),
            ("http://256.1/", "not a valid IPv4"),
            ("http://08/", "not a valid IPv4"),
            ("u@x.test/p", "credentials"),
            ("http:/", "empty host"),
            ("https:///", "empty host"),
            ("http:/u@x.test/", "credentials"),
        ];
        for (token, needle) in cases {
            let err = parse(token, &defaults()).expect_err(token);
            assert!(err.contains(needle), "{token:?}: {err:?} lacks {needle:?}");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(parse(&long_label, &defaults()).is_err());
        let long_name = format!("{}com", "abcdefghi.".repeat(26));
        assert!(parse(&long_name, &defaults()).is_err());
    }

    #[test]
    fn defaults_apply_to_bare_tokens_only() {
        let d = Defaults {
            scheme: Scheme::Http,
            port: 8080,
            path: "/health".into(),
            https: false,
        };
        let t = parse("example.com", &d).unwrap();
        assert_eq!((t.port, t.path.as_str()), (8080, "/health"));
        // A URL that gives no path uses --path; its own path (even `/`) wins.
        let t = parse("http://example.com", &d).unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/health"));
        let t = parse("http://example.com:8080#top", &d).unwrap();
        assert_eq!((t.port, t.path.as_str()), (8080, "/health"));
        let t = parse("http://example.com/", &d).unwrap();
        assert_eq!(t.path, "/");
        let t = parse("http://example.com/x", &d).unwrap();
        assert_eq!(t.path, "/x");
        // A query without a path: --path, and the query (it was sent as `/?q=1`).
        let t = parse("http://example.com?q=1", &d).unwrap();
        assert_eq!(t.path, "/health?q=1");
        // Scheme-less URLs take --port when they name none.
        let t = parse("example.com/x", &d).unwrap();
        assert_eq!((t.port, t.path.as_str()), (8080, "/x"));
        assert!(parse("https://example.com", &d)
            .unwrap_err()
            .contains("not supported"));
    }

    #[test]
    fn host_header_carries_port_only_when_not_default() {
        let d = defaults();
        let cases = [
            ("example.com", "example.com"),
            ("example.com:80", "example.com"),
            ("example.com:8080", "example.com:8080"),
            ("::1", "[::1]"),
            ("[::1]:81", "[::1]:81"),
            ("https://example.com", "example.com"),
            ("https://example.com:80", "example.com:80"),
        ];
        for (token, header) in cases {
            assert_eq!(parse(token, &d).unwrap().host_header(), header, "{token}");
        }
    }
}
