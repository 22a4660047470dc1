//! The `json` format: one object per record, fields in the contract's order.

use std::borrow::Cow;
use std::time::Duration;

use serde::Serialize;

use crate::proto::http::{Block, HeadParser};
use crate::proto::proxy::{Detection, Proxy};
use crate::report::record::{Record, TlsVersion};

#[derive(Serialize)]
struct JsonRecord<'a> {
    target: Cow<'a, str>,
    index: u64,
    scheme: Option<&'static str>,
    host: Option<String>,
    port: Option<u16>,
    path: Option<&'a str>,
    addr: Option<String>,
    resolved: Option<Vec<String>>,
    /// `--all-addresses` only (absent without it): the address of the name this record
    /// is about, and how many the name has; null when the target came to no address.
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    of_addresses: Option<Option<u32>>,
    ok: bool,
    status: Option<u16>,
    version: Option<String>,
    reason: Option<Cow<'a, str>>,
    headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    interim: Vec<Interim<'a>>,
    banner: Option<Cow<'a, str>>,
    error: Option<JsonError<'a>>,
    tls: Option<JsonTls<'a>>,
    proxy: Option<String>,
    detected: Option<bool>,
    url: Option<&'a str>,
    tunnel: Option<Interim<'a>>,
    redirects: Vec<JsonHop<'a>>,
    final_url: Option<&'a str>,
    attempts: u32,
    timing_ms: TimingMs,
}

#[derive(Serialize)]
struct JsonHop<'a> {
    url: &'a str,
    status: u16,
    location: &'a str,
}

#[derive(Serialize)]
struct JsonTls<'a> {
    version: String,
    cipher: &'a str,
    verified: bool,
    /// The protocol the server chose in ALPN, or null.
    alpn: Option<&'a str>,
    cert: Option<JsonCert<'a>>,
    /// Every certificate the server sent, leaf first.
    chain: Vec<JsonChainCert<'a>>,
}

#[derive(Serialize)]
struct JsonChainCert<'a> {
    subject: &'a str,
    issuer: &'a str,
    not_after: String,
    sha256: &'a str,
}

#[derive(Serialize)]
struct JsonCert<'a> {
    subject: &'a str,
    issuer: &'a str,
    not_before: String,
    not_after: String,
    san: &'a [String],
    sha256: &'a str,
    days_left: i64,
}

#[derive(Serialize)]
struct Interim<'a> {
    status: u16,
    /// null over HTTP/2.
    reason: Option<Cow<'a, str>>,
    headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

#[derive(Serialize)]
struct JsonError<'a> {
    kind: &'static str,
    message: &'a str,
}

#[derive(Serialize)]
struct TimingMs {
    dns: Option<f64>,
    connect: Option<f64>,
    tls: Option<f64>,
    proxy: Option<f64>,
    first_byte: Option<f64>,
    headers: Option<f64>,
    total: f64,
}

/// Writes `rec` as one JSON object (no newline).
pub fn write(out: &mut Vec<u8>, rec: &Record) -> serde_json::Result<()> {
    let target = rec.target.as_ref();
    let head = rec.head.as_ref();
    let last = head.and_then(|h| h.final_block().map(|b| (h, b)));
    let via = rec.via.as_ref();
    // With --proxy-check the record describes the proxy; the URL goes under `url`.
    let checked = via.filter(|v| v.check_url.is_some()).map(|v| &v.proxy);
    let json = JsonRecord {
        target: String::from_utf8_lossy(&rec.token),
        index: rec.index,
        scheme: match checked {
            Some(proxy) => known(proxy).map(|p| p.kind.name()),
            None => target.map(|t| t.scheme.name()),
        },
        host: match checked {
            Some(proxy) => Some(proxy.host.to_string()),
            None => target.map(|t| t.host.to_string()),
        },
        port: checked.map(|p| p.port).or(target.map(|t| t.port)),
        path: via
            .and_then(|v| v.request_target.as_deref())
            .or(target.map(|t| t.path.as_str())),
        addr: rec.addr.map(|a| a.to_string()),
        resolved: rec
            .resolved
            .as_ref()
            .map(|ips| ips.iter().map(|ip| ip.to_string()).collect()),
        address: rec.one_of.map(|o| o.address.map(|a| a.to_string())),
        of_addresses: rec.one_of.map(|o| o.of),
        ok: rec.ok(),
        status: last.map(|(_, b)| b.status.code),
        version: last.map(|(_, b)| b.status.version()),
        // HTTP/2 has no reason phrase: null, as against "" for an HTTP/1 line without one.
        reason: last
            .filter(|(_, b)| !b.status.is_h2())
            .map(|(h, b)| String::from_utf8_lossy(h.reason(b))),
        headers: last.map(|(h, b)| headers(h, b)).unwrap_or_default(),
        interim: head
            .map(|h| {
                h.interim_blocks()
                    .iter()
                    .map(|b| Interim {
                        status: b.status.code,
                        reason: (!b.status.is_h2()).then(|| String::from_utf8_lossy(h.reason(b))),
                        headers: headers(h, b),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        banner: rec.banner().map(String::from_utf8_lossy),
        error: rec.error.as_ref().map(|e| JsonError {
            kind: e.kind.name(),
            message: &e.message,
        }),
        tls: rec.tls.as_ref().map(|t| JsonTls {
            version: t.version.map_or_else(|| "-".into(), TlsVersion::name),
            cipher: t.cipher.as_deref().unwrap_or("-"),
            verified: t.verified,
            alpn: t.alpn.as_deref(),
            cert: t.cert.as_ref().map(|c| JsonCert {
                subject: &c.subject,
                issuer: &c.issuer,
                not_before: rfc3339(c.not_before),
                not_after: rfc3339(c.not_after),
                san: &c.san,
                sha256: &c.sha256,
                days_left: c.days_left,
            }),
            chain: t
                .chain
                .iter()
                .map(|c| JsonChainCert {
                    subject: &c.subject,
                    issuer: &c.issuer,
                    not_after: rfc3339(c.not_after),
                    sha256: &c.sha256,
                })
                .collect(),
        }),
        proxy: via.and_then(|v| known(&v.proxy)).map(|p| p.to_string()),
        // Only a pool check detects; with --proxy the protocol is always given.
        detected: checked.map(|p| p.detection != Detection::Given),
        url: via.and_then(|v| v.check_url.as_deref()),
        tunnel: via
            .and_then(|v| v.tunnel.as_ref())
            .and_then(|h| h.final_block().map(|b| (h, b)))
            .map(|(h, b)| Interim {
                status: b.status.code,
                reason: Some(String::from_utf8_lossy(h.reason(b))),
                headers: headers(h, b),
            }),
        redirects: rec
            .redirects
            .iter()
            .map(|hop| JsonHop {
                url: &hop.url,
                status: hop.status,
                location: &hop.location,
            })
            .collect(),
        final_url: rec.final_url.as_deref(),
        attempts: rec.attempts,
        timing_ms: TimingMs {
            dns: rec.timing.dns.map(ms),
            connect: rec.timing.connect.map(ms),
            tls: rec.timing.tls.map(ms),
            proxy: rec.timing.proxy.map(ms),
            first_byte: rec.timing.first_byte.map(ms),
            headers: rec.timing.headers.map(ms),
            total: ms(rec.timing.total),
        },
    };
    serde_json::to_writer(out, &json)
}

/// The proxy, unless its protocol is unknown (a bare `HOST:PORT` that spoke none, or
/// was never reached): then `proxy` and `scheme` are null.
fn known(proxy: &Proxy) -> Option<&Proxy> {
    (proxy.detection != Detection::Unknown).then_some(proxy)
}

fn headers<'a>(head: &'a HeadParser, block: &Block) -> Vec<(Cow<'a, str>, Cow<'a, str>)> {
    head.headers(block)
        .into_iter()
        .map(|(name, value)| (lossy(name), lossy(value)))
        .collect()
}

fn lossy(bytes: Cow<'_, [u8]>) -> Cow<'_, str> {
    match bytes {
        Cow::Borrowed(b) => String::from_utf8_lossy(b),
        Cow::Owned(b) => Cow::Owned(String::from_utf8_lossy(&b).into_owned()),
    }
}

/// Milliseconds to one decimal place.
/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC): how JSON and messages write certificate
/// times. Times a certificate can carry outside years 0-9999 are clamped to them.
pub fn rfc3339(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) if (0..=9999).contains(&t.year()) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        _ if secs < 0 => "0000-01-01T00:00:00Z".into(),
        _ => "9999-12-31T23:59:59Z".into(),
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_seconds_and_clamped() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_800), "2100-01-01T00:00:00Z");
        assert_eq!(rfc3339(-86_400), "1969-12-31T00:00:00Z");
        assert_eq!(rfc3339(3_787_009_445), "2090-01-02T03:04:05Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MIN), "0000-01-01T00:00:00Z");
    }
    use crate::proto::target;
    use crate::report::error::{ErrorKind, ProbeError};
    use crate::report::record::Timing;

    #[test]
    fn shape_and_order_follow_the_contract() {
        let mut head = HeadParser::new(65536);
        let _ = head.feed(
            b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.0 302 Moved Temporarily\r\nServer: nginx\r\nSet-Cookie: a\r\nSet-Cookie: b\r\nX: 1\r\n 2\r\nBare\r\nBad: \xff\r\n\r\n",
        );
        let rec = Record {
            seq: 0,
            index: 7,
            token: b"http://www.163.com/a?b=c".to_vec(),
            target: target::parse("http://www.163.com/a?b=c", &target::Defaults::default()).ok(),
            addr: Some("127.0.0.1:80".parse().unwrap()),
            resolved: Some(vec!["127.0.0.1".parse().unwrap()]),
            head: Some(head),
            tls: None,
            via: None,
            error: None,
            timing: Timing {
                dns: Some(Duration::from_micros(1949)),
                connect: Some(Duration::from_micros(12_100)),
                tls: None,
                proxy: None,
                first_byte: Some(Duration::from_micros(30_400)),
                headers: Some(Duration::from_micros(30_600)),
                total: Duration::from_micros(30_700),
            },
            redirects: Vec::new(),
            final_url: None,
            attempts: 1,
            one_of: None,
        };
        let mut out = Vec::new();
        write(&mut out, &rec).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"target":"http://www.163.com/a?b=c","index":7,"scheme":"http","host":"www.163.com","port":80,"path":"/a?b=c","#,
                r#""addr":"127.0.0.1:80","resolved":["127.0.0.1"],"ok":true,"status":302,"version":"HTTP/1.0","reason":"Moved Temporarily","#,
                r#""headers":[["Server","nginx"],["Set-Cookie","a"],["Set-Cookie","b"],["X","1 2"],["Bare",""],["Bad","�"]],"#,
                r#""interim":[{"status":103,"reason":"Early Hints","headers":[["Link","</a>"]]}],"#,
                r#""banner":null,"error":null,"tls":null,"proxy":null,"detected":null,"url":null,"tunnel":null,"#,
                r#""redirects":[],"final_url":null,"attempts":1,"#,
                r#""timing_ms":{"dns":1.9,"connect":12.1,"tls":null,"proxy":null,"first_byte":30.4,"headers":30.6,"total":30.7}}"#
            )
        );
    }

    #[test]
    fn invalid_target_has_nulls() {
        let rec = Record::failed(
            3,
            3,
            b"bad token".to_vec(),
            None,
            ProbeError::new(ErrorKind::InvalidTarget, "a target cannot contain spaces"),
        );
        let mut out = Vec::new();
        write(&mut out, &rec).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"target":"bad token","index":3,"scheme":null,"host":null,"port":null,"path":null,"addr":null,"resolved":null,"#,
                r#""ok":false,"status":null,"version":null,"reason":null,"headers":[],"interim":[],"#,
                r#""banner":null,"error":{"kind":"invalid_target","message":"a target cannot contain spaces"},"#,
                r#""tls":null,"proxy":null,"detected":null,"url":null,"tunnel":null,"#,
                r#""redirects":[],"final_url":null,"attempts":0,"#,
                r#""timing_ms":{"dns":null,"connect":null,"tls":null,"proxy":null,"first_byte":null,"headers":null,"total":0.0}}"#
            )
        );
    }
}
