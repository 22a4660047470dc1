//! `--retry`: which failures are worth another attempt, and how long to wait first.

use std::time::Duration;

use crate::report::error::ErrorKind;
use crate::report::record::Record;
use crate::run::options::defaults::RETRY_DELAY_CAP;
use crate::run::options::RunOptions;

/// Statuses that say "not now" rather than "no" (as curl's `--retry` reads them).
const TRANSIENT_STATUSES: [u16; 6] = [408, 429, 500, 502, 503, 504];

/// Whether the record's failure may pass: timeouts, resets, closed or cut-off answers, a
/// DNS failure other than a definite "no such name" or "no address", or a "not now"
/// status. Refused, invalid, TLS and 404 are answers, not accidents.
pub fn is_transient(rec: &Record) -> bool {
    let Some(error) = rec.error.as_ref() else {
        return transient_status(rec);
    };
    match error.kind {
        ErrorKind::StatusMismatch => transient_status(rec),
        ErrorKind::ConnectTimeout
        | ErrorKind::Timeout
        | ErrorKind::Reset
        | ErrorKind::Empty
        | ErrorKind::Incomplete => true,
        ErrorKind::Dns => !error.definite,
        _ => false,
    }
}

fn transient_status(rec: &Record) -> bool {
    rec.status()
        .is_some_and(|code| TRANSIENT_STATUSES.contains(&code))
}

/// The wait before attempt `next` (2 or more): `--retry-delay` doubling from the first
/// retry, or the server's `Retry-After` in seconds; never more than 30 s.
pub fn delay(cfg: &RunOptions, next: u32, rec: &Record) -> Duration {
    if let Some(secs) = retry_after(rec) {
        return Duration::from_secs(secs).min(RETRY_DELAY_CAP);
    }
    let doublings = next.saturating_sub(2).min(31);
    cfg.retry_delay
        .saturating_mul(1u32 << doublings)
        .min(RETRY_DELAY_CAP)
}

/// `Retry-After: N` (delay-seconds) on the final response. An HTTP-date is ignored.
fn retry_after(rec: &Record) -> Option<u64> {
    let head = rec.head.as_ref()?;
    let block = head.final_block()?;
    head.headers(block)
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(b"retry-after"))
        .and_then(|(_, value)| std::str::from_utf8(&value).ok()?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http::HeadParser;
    use crate::report::error::ProbeError;

    fn answered(response: &[u8]) -> Record {
        let mut rec = Record::failed(0, 0, vec![], None, ProbeError::new(ErrorKind::Io, ""));
        rec.error = None;
        let mut head = HeadParser::new(65536);
        let _ = head.feed(response);
        rec.head = Some(head);
        rec
    }

    fn failed(kind: ErrorKind, message: &str) -> Record {
        Record::failed(0, 0, vec![], None, ProbeError::new(kind, message))
    }

    #[test]
    fn what_is_transient() {
        for code in TRANSIENT_STATUSES {
            let rec = answered(format!("HTTP/1.1 {code} X\r\n\r\n").as_bytes());
            assert!(is_transient(&rec), "{code}");
        }
        for code in [200, 301, 404, 501] {
            let rec = answered(format!("HTTP/1.1 {code} X\r\n\r\n").as_bytes());
            assert!(!is_transient(&rec), "{code}");
        }
        for kind in [
            ErrorKind::ConnectTimeout,
            ErrorKind::Timeout,
            ErrorKind::Reset,
            ErrorKind::Empty,
            ErrorKind::Incomplete,
        ] {
            assert!(is_transient(&failed(kind, "")), "{kind}");
        }
        for kind in [
            ErrorKind::Refused,
            ErrorKind::InvalidTarget,
            ErrorKind::Tls,
            ErrorKind::NotHttp,
            ErrorKind::Cancelled,
        ] {
            assert!(!is_transient(&failed(kind, "")), "{kind}");
        }
        assert!(is_transient(&failed(
            ErrorKind::Dns,
            "cannot resolve a.test: server failure (SERVFAIL) from 127.0.0.1:53"
        )));
        // What the message says does not matter (a name may read "NXDOMAIN"); only
        // whether the resolver marked its answer definite.
        assert!(is_transient(&failed(
            ErrorKind::Dns,
            "cannot resolve NXDOMAIN.no-address.test: server failure (SERVFAIL) from 127.0.0.1:53"
        )));
        let mut nx = failed(
            ErrorKind::Dns,
            "cannot resolve a.test: no such name (NXDOMAIN)",
        );
        nx.error = nx.error.map(ProbeError::definite);
        assert!(!is_transient(&nx));
    }

    #[test]
    fn delays_double_to_the_cap_and_follow_retry_after() {
        let cfg = RunOptions::with_targets(&[]);
        let rec = answered(b"HTTP/1.1 503 X\r\n\r\n");
        let secs: Vec<u64> = (2..=8).map(|n| delay(&cfg, n, &rec).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(delay(&cfg, 200, &rec), RETRY_DELAY_CAP);
        let told = answered(b"HTTP/1.1 503 X\r\nRetry-After: 3\r\n\r\n");
        assert_eq!(delay(&cfg, 2, &told), Duration::from_secs(3));
        let greedy = answered(b"HTTP/1.1 429 X\r\nRetry-After: 86400\r\n\r\n");
        assert_eq!(delay(&cfg, 2, &greedy), RETRY_DELAY_CAP);
        let dated =
            answered(b"HTTP/1.1 503 X\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n");
        assert_eq!(delay(&cfg, 2, &dated), Duration::from_secs(1));
    }
}
