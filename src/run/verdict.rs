//! What counts as ok beyond the wire: the user's expectations (`--expect-status`,
//! `--expect-header`, `--expect-cert-days`), applied to a finished record. The probe reports what happened;
//! this judges it.

use std::fmt;
use std::ops::RangeInclusive;

use crate::proto::http;
use crate::proto::http::HeadParser;
use crate::report::error::{ErrorKind, ProbeError};
use crate::report::json::rfc3339;
use crate::report::record::Record;
use crate::report::sanitize::escape;

/// What the user expects of every answer beyond a complete head.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// `--expect-status`: the final status must be in it.
    pub status: Option<StatusSet>,
    /// `--expect-header`: every one must hold.
    pub header: Vec<HeaderExpectation>,
    /// `--expect-cert-days N`: a certificate with fewer whole days left fails.
    pub cert_days: Option<i64>,
}

/// Marks an otherwise ok record as failed when it misses an expectation.
pub fn judge(cfg: &Expectations, rec: &mut Record) {
    if rec.error.is_some() {
        return;
    }
    if let (Some(set), Some(code)) = (&cfg.status, rec.status()) {
        if !set.contains(code) {
            rec.error = Some(ProbeError::new(
                ErrorKind::StatusMismatch,
                format!("status {code} is not in --expect-status {set}"),
            ));
            return;
        }
    }
    if let Some(head) = &rec.head {
        if let Some(why) = cfg.header.iter().find_map(|e| header_miss(e, head)) {
            rec.error = Some(ProbeError::new(ErrorKind::HeaderMismatch, why));
            return;
        }
    }
    let cert = rec.tls.as_ref().and_then(|t| t.cert.as_ref());
    if let (Some(days), Some(cert)) = (cfg.cert_days, cert) {
        if cert.days_left < days {
            let mut message =
                cert_expiring(&rfc3339(cert.not_after), cert.days_left, cert.expired, days);
            // After -L the certificate is the last hop's: say whose.
            if let (false, Some(url)) = (rec.redirects.is_empty(), &rec.final_url) {
                let host = host_of(url);
                message =
                    message.replacen("the certificate", &format!("the certificate of {host}"), 1);
            }
            rec.error = Some(ProbeError::new(ErrorKind::CertExpiring, message));
        }
    }
}

/// The host of a URL this run made (`https://b.test:8443/x` gives `b.test`).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    }
}

fn cert_expiring(not_after: &str, left: i64, expired: bool, limit: i64) -> String {
    let when = match left {
        0 if expired => "less than a day ago".to_string(),
        0 => "within a day".to_string(),
        1 => "in 1 day".to_string(),
        n if n > 0 => format!("in {n} days"),
        -1 => "1 day ago".to_string(),
        n => format!("{} days ago", -n),
    };
    let verb = if expired { "expired" } else { "expires" };
    format!("the certificate {verb} on {not_after}, {when} (--expect-cert-days {limit})")
}

/// How many of a header's values a message quotes, and how much of each.
const VALUES_SHOWN: usize = 3;
const VALUE_SHOWN_BYTES: usize = 120;

/// Why the final response misses `expect`, or `None` when one of its NAME headers matches.
fn header_miss(expect: &HeaderExpectation, head: &HeadParser) -> Option<String> {
    let block = head.final_block()?;
    let values: Vec<_> = head
        .headers(block)
        .into_iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(expect.name.as_bytes()))
        .map(|(_, value)| value)
        .collect();
    if values.iter().any(|v| expect.pattern.is_match(v)) {
        return None;
    }
    let option = format!("--expect-header '{expect}'");
    if values.is_empty() {
        return Some(format!(
            "the response has no {} header ({option})",
            expect.name
        ));
    }
    let quoted: Vec<String> = values
        .iter()
        .take(VALUES_SHOWN)
        .map(|v| {
            let cut = &v[..v.len().min(VALUE_SHOWN_BYTES)];
            let more = if cut.len() < v.len() { "..." } else { "" };
            format!("\"{}{more}\"", escape(cut, true))
        })
        .collect();
    let more = match values.len().saturating_sub(VALUES_SHOWN) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    Some(format!(
        "{} is {}{more}, which does not match '{}' ({option})",
        expect.name,
        quoted.join(", "),
        expect.pattern.as_str()
    ))
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

    fn miss(expect: &str, response: &[u8]) -> Option<String> {
        let expect = HeaderExpectation::parse(expect).unwrap();
        let mut head = HeadParser::new(65536);
        let _ = head.feed(response);
        header_miss(&expect, &head)
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(host_of("https://b.test:8443/x?y"), "b.test");
        assert_eq!(host_of("https://b.test/"), "b.test");
        assert_eq!(host_of("https://[::1]:8443/"), "::1");
        assert_eq!(host_of("http://127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn header_expectations() {
        let resp = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22\r\nX-A: one\r\nx-a: two\r\nBad: \x1b[2J\xff\r\n\r\n";
        assert_eq!(miss("Server: nginx", resp), None);
        assert_eq!(miss("server:^nginx/1\\.2", resp), None);
        assert_eq!(
            miss("X-A: two", resp),
            None,
            "any value of the name may match"
        );
        assert_eq!(
            miss("Via:", resp).as_deref(),
            Some("the response has no Via header (--expect-header 'Via: ')")
        );
        assert_eq!(
            miss("Server: ^apache", resp).as_deref(),
            Some("Server is \"nginx/1.22\", which does not match '^apache' (--expect-header 'Server: ^apache')")
        );
        let m = miss("Bad: ok", resp).unwrap();
        assert!(m.contains(r#""\x1b[2J\xff""#), "{m}");
        assert_eq!(miss("Bad: (?-u:\\xff)", resp), None, "bytes match bytes");
        // Interim blocks do not count, only the final response.
        let interim = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
        assert!(miss("Link: a", interim).is_some());
    }

    #[test]
    fn expiry_messages_say_when() {
        let m = |left| cert_expiring("2030-01-02T03:04:05Z", left, left < 0, 30);
        assert_eq!(
            m(4),
            "the certificate expires on 2030-01-02T03:04:05Z, in 4 days (--expect-cert-days 30)"
        );
        assert_eq!(
            m(0),
            "the certificate expires on 2030-01-02T03:04:05Z, within a day (--expect-cert-days 30)"
        );
        assert_eq!(
            m(-3),
            "the certificate expired on 2030-01-02T03:04:05Z, 3 days ago (--expect-cert-days 30)"
        );
        assert_eq!(
            cert_expiring("2030-01-02T03:04:05Z", 0, true, 30),
            "the certificate expired on 2030-01-02T03:04:05Z, less than a day ago \
             (--expect-cert-days 30)"
        );
    }
}
