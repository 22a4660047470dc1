//! Request bytes in every form headprobe sends: origin form (`GET /p`), absolute form
//! through an HTTP proxy (`GET http://h:p/p` with `Proxy-Authorization`), and CONNECT.
//!
//! One writer (`write_request`) lays out every request, so the forms cannot drift apart.

use crate::proto::http::is_token;
use crate::proto::target::Target;

/// `--http-version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    Http10,
    Http11,
}

impl HttpVersion {
    fn text(self) -> &'static str {
        match self {
            HttpVersion::Http10 => "HTTP/1.0",
            HttpVersion::Http11 => "HTTP/1.1",
        }
    }
}

/// One request header line as configured; `Host` is filled in per target.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Header {
    Host,
    Fixed(String, String),
}

impl Header {
    fn is_named(&self, name: &str) -> bool {
        match self {
            Header::Host => name.eq_ignore_ascii_case("Host"),
            Header::Fixed(n, _) => n.eq_ignore_ascii_case(name),
        }
    }
}

/// Everything about the request that does not depend on the target, prepared once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTemplate {
    method: String,
    version: HttpVersion,
    /// Each header with whether it is still one of headprobe's defaults.
    headers: Vec<(Header, bool)>,
}

impl RequestTemplate {
    /// The defaults (`Host`, `User-Agent`, `Accept`, and `Connection: close` for 1.1),
    /// then each `-H` in order, as curl does:
    /// - a `-H` naming a default (case-insensitively) replaces it in place;
    /// - any other `-H` is appended, so repeated names are all sent, in order;
    /// - `Name:` (empty value) removes the default and any earlier `-H` of that name.
    pub fn new(method: &str, version: HttpVersion, extra: &[(String, String)]) -> Self {
        let mut headers = vec![
            (Header::Host, true),
            (
                Header::Fixed(
                    "User-Agent".into(),
                    concat!("headprobe/", env!("CARGO_PKG_VERSION")).into(),
                ),
                true,
            ),
            (Header::Fixed("Accept".into(), "*/*".into()), true),
        ];
        if version == HttpVersion::Http11 {
            headers.push((Header::Fixed("Connection".into(), "close".into()), true));
        }
        for (name, value) in extra {
            if value.is_empty() {
                headers.retain(|(h, _)| !h.is_named(name));
                continue;
            }
            let user = (Header::Fixed(name.clone(), value.clone()), false);
            match headers
                .iter_mut()
                .find(|(h, default)| *default && h.is_named(name))
            {
                Some(slot) => *slot = user,
                None => headers.push(user),
            }
        }
        RequestTemplate {
            method: method.to_string(),
            version,
            headers,
        }
    }

    pub fn method(&self) -> &str {
        &self.method
    }

    /// The same request with another method (`-L` after a 303).
    pub fn with_method(&self, method: &str) -> RequestTemplate {
        RequestTemplate {
            method: method.to_string(),
            ..self.clone()
        }
    }

    /// Origin form, straight to the target (or through a tunnel): `GET /path`.
    pub fn render(&self, target: &Target) -> Vec<u8> {
        self.write(&target.path, target, None)
    }

    /// Absolute form, to an HTTP proxy: `GET http://host[:port]/path`, with the proxy's
    /// credentials last unless a `-H` already gives a `Proxy-Authorization`.
    pub fn render_absolute(&self, target: &Target, proxy_authorization: Option<&str>) -> Vec<u8> {
        let auth = proxy_authorization.filter(|_| {
            !self
                .headers
                .iter()
                .any(|(h, _)| h.is_named("Proxy-Authorization"))
        });
        let extra = auth.map(|a| ("Proxy-Authorization", a));
        self.write(&absolute_form(target), target, extra)
    }

    /// The same request as HTTP/2 fields (RFC 9113, section 8.3.1): `:method`,
    /// `:scheme`, `:authority` (the Host header's value, a `-H Host` included), `:path`,
    /// then the other headers with lower-case names, less those HTTP/2 forbids
    /// (`Connection` and the other connection-specific ones).
    pub fn h2_fields(&self, target: &Target) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut authority = target.host_header();
        let mut rest = Vec::with_capacity(self.headers.len());
        for (h, _) in &self.headers {
            match h {
                Header::Host => {}
                Header::Fixed(n, v) if n.eq_ignore_ascii_case("host") => authority = v.clone(),
                Header::Fixed(n, v) => {
                    let name = n.to_ascii_lowercase();
                    let forbidden = matches!(
                        name.as_str(),
                        "connection"
                            | "keep-alive"
                            | "proxy-connection"
                            | "transfer-encoding"
                            | "upgrade"
                    ) || (name == "te" && !v.eq_ignore_ascii_case("trailers"));
                    if !forbidden {
                        rest.push((name.into_bytes(), v.clone().into_bytes()));
                    }
                }
            }
        }
        let mut fields = vec![
            (b":method".to_vec(), self.method.clone().into_bytes()),
            (
                b":scheme".to_vec(),
                target.scheme.name().as_bytes().to_vec(),
            ),
            (b":authority".to_vec(), authority.into_bytes()),
            (b":path".to_vec(), target.path.clone().into_bytes()),
        ];
        fields.extend(rest);
        fields
    }

    fn write(&self, request_target: &str, target: &Target, extra: Option<(&str, &str)>) -> Vec<u8> {
        let host = target.host_header();
        let headers = self
            .headers
            .iter()
            .map(|(h, _)| match h {
                Header::Host => ("Host", host.as_str()),
                Header::Fixed(n, v) => (n.as_str(), v.as_str()),
            })
            .chain(extra);
        write_request(&self.method, request_target, self.version, headers)
    }
}

/// The request target of the absolute form: `http://host[:port]/path`.
pub fn absolute_form(target: &Target) -> String {
    format!(
        "{}://{}{}",
        target.scheme.name(),
        target.host_header(),
        target.path
    )
}

/// `CONNECT host:port HTTP/1.1` with `Host` and the proxy's credentials: the opening of
/// a tunnel through an HTTP proxy. `-H` headers are for the target, not the proxy.
pub fn connect(target: &Target, proxy_authorization: Option<&str>) -> Vec<u8> {
    let authority = connect_authority(target);
    let headers = std::iter::once(("Host", authority.as_str()))
        .chain(proxy_authorization.map(|a| ("Proxy-Authorization", a)));
    write_request("CONNECT", &authority, HttpVersion::Http11, headers)
}

/// `host:port` as CONNECT names it (IPv6 in brackets, the port always given).
pub fn connect_authority(target: &Target) -> String {
    format!("{}:{}", target.host.authority_form(), target.port)
}

/// The one place request bytes are laid out.
fn write_request<'a>(
    method: &str,
    request_target: &str,
    version: HttpVersion,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
) -> Vec<u8> {
    let mut out = String::with_capacity(128);
    out.push_str(method);
    out.push(' ');
    out.push_str(request_target);
    out.push(' ');
    out.push_str(version.text());
    out.push_str("\r\n");
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Parses a `-H 'Name: value'` argument; an empty value means "remove".
pub fn parse_header_arg(arg: &str) -> Result<(String, String), String> {
    let (name, value) = arg
        .split_once(':')
        .ok_or_else(|| format!("'{arg}' is not of the form 'Name: value'"))?;
    if !is_token(name) {
        return Err(format!("'{name}' is not a valid header name"));
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(format!(
            "the value of '{name}' contains a control character"
        ));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

#[cfg(test)]
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;
    use crate::proto::target::{self, Defaults};

    fn target(token: &str) -> Target {
        target::parse(token, &Defaults::default()).unwrap()
    }

    fn template(version: HttpVersion, extra: &[(&str, &str)]) -> RequestTemplate {
        let extra: Vec<_> = extra
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        RequestTemplate::new("GET", version, &extra)
    }

    const UA: &str = concat!("User-Agent: headprobe/", env!("CARGO_PKG_VERSION"), "\r\n");

    /// Origin form: the header rules, over the exact bytes.
    #[test]
    fn origin_form() {
        use HttpVersion::*;
        let cases: &[(HttpVersion, &[(&str, &str)], &str, String)] = &[
            (
                Http10,
                &[],
                "example.com",
                format!("GET / HTTP/1.0\r\nHost: example.com\r\n{UA}Accept: */*\r\n\r\n"),
            ),
            (
                Http11,
                &[],
                "http://[::1]:8080/a?b",
                format!("GET /a?b HTTP/1.1\r\nHost: [::1]:8080\r\n{UA}Accept: */*\r\nConnection: close\r\n\r\n"),
            ),
            // A default is replaced in place; other names are appended in order.
            (
                Http10,
                &[("X-A", "1"), ("accept", "text/html"), ("X-A", "2")],
                "example.com",
                format!("GET / HTTP/1.0\r\nHost: example.com\r\n{UA}accept: text/html\r\nX-A: 1\r\nX-A: 2\r\n\r\n"),
            ),
            // Issue 11: a removal first must not lose repeated headers...
            (
                Http10,
                &[("User-Agent", ""), ("X-A", "1"), ("X-A", "2")],
                "example.com",
                "GET / HTTP/1.0\r\nHost: example.com\r\nAccept: */*\r\nX-A: 1\r\nX-A: 2\r\n\r\n".into(),
            ),
            // ...nor make a replacement an addition.
            (
                Http10,
                &[("User-Agent", ""), ("Accept", "text/html")],
                "example.com",
                "GET / HTTP/1.0\r\nHost: example.com\r\nAccept: text/html\r\n\r\n".into(),
            ),
            (
                Http11,
                &[("Accept", ""), ("Connection", "keep-alive")],
                "example.com",
                format!("GET / HTTP/1.1\r\nHost: example.com\r\n{UA}Connection: keep-alive\r\n\r\n"),
            ),
            // Repeating a default's name: the first replaces it, the next is appended.
            (
                Http10,
                &[("Accept", "a"), ("Accept", "b")],
                "example.com",
                format!("GET / HTTP/1.0\r\nHost: example.com\r\n{UA}Accept: a\r\nAccept: b\r\n\r\n"),
            ),
            (
                Http10,
                &[("user-agent", ""), ("HOST", "other")],
                "example.com",
                "GET / HTTP/1.0\r\nHOST: other\r\nAccept: */*\r\n\r\n".into(),
            ),
            // Removal takes earlier -H of that name too; a later one adds it back.
            (
                Http10,
                &[("X-A", "1"), ("x-a", ""), ("X-A", "3")],
                "example.com",
                format!("GET / HTTP/1.0\r\nHost: example.com\r\n{UA}Accept: */*\r\nX-A: 3\r\n\r\n"),
            ),
            (
                Http10,
                &[("Host", ""), ("User-Agent", ""), ("Accept", "")],
                "example.com:81",
                "GET / HTTP/1.0\r\n\r\n".into(),
            ),
        ];
        for (version, extra, token, want) in cases {
            let got = template(*version, extra).render(&target(token));
            assert_eq!(String::from_utf8(got).unwrap(), *want, "{extra:?}");
        }
    }

    #[test]
    fn absolute_form_carries_proxy_credentials_last() {
        use HttpVersion::*;
        let cases: &[(HttpVersion, &[(&str, &str)], &str, Option<&str>, String)] = &[
            (
                Http10,
                &[],
                "127.0.0.1:8080",
                None,
                format!("GET http://127.0.0.1:8080/ HTTP/1.0\r\nHost: 127.0.0.1:8080\r\n{UA}Accept: */*\r\n\r\n"),
            ),
            (
                Http11,
                &[("X-A", "1")],
                "http://example.com/p?q",
                Some("Basic dTpw"),
                format!("GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\n{UA}Accept: */*\r\nConnection: close\r\nX-A: 1\r\nProxy-Authorization: Basic dTpw\r\n\r\n"),
            ),
            // A -H Proxy-Authorization is the user's choice: not sent twice.
            (
                Http10,
                &[("Accept", ""), ("proxy-authorization", "Bearer x")],
                "http://[::1]:81/",
                Some("Basic dTpw"),
                format!("GET http://[::1]:81/ HTTP/1.0\r\nHost: [::1]:81\r\n{UA}proxy-authorization: Bearer x\r\n\r\n"),
            ),
        ];
        for (version, extra, token, auth, want) in cases {
            let t = target(token);
            let got = template(*version, extra).render_absolute(&t, *auth);
            assert_eq!(String::from_utf8(got).unwrap(), *want, "{token}");
        }
        assert_eq!(absolute_form(&target("h.test:81")), "http://h.test:81/");
    }

    #[test]
    fn connect_form() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            (
                "https://example.com",
                None,
                "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            ),
            (
                "https://[::1]:8443/x",
                Some("Basic dTpw"),
                "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\nProxy-Authorization: Basic dTpw\r\n\r\n",
            ),
        ];
        let defaults = Defaults {
            https: true,
            ..Defaults::default()
        };
        for (token, auth, want) in cases {
            let t = target::parse(token, &defaults).unwrap();
            assert_eq!(String::from_utf8(connect(&t, *auth)).unwrap(), *want);
        }
    }

    #[test]
    fn header_args() {
        assert_eq!(
            parse_header_arg("X-A:  b c ").unwrap(),
            ("X-A".into(), "b c".into())
        );
        assert_eq!(parse_header_arg("X-A:").unwrap(), ("X-A".into(), "".into()));
        assert!(parse_header_arg("no colon").is_err());
        assert!(parse_header_arg("Bad Name: x").is_err());
        assert!(parse_header_arg(": x").is_err());
        assert!(parse_header_arg("X: a\r\nInjected: 1").is_err());
    }
}
