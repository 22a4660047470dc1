//! HTTP dates (RFC 9110 5.6.7), as Go's `http.ParseTime` reads them: the preferred
//! IMF-fixdate and the two obsolete forms a recipient must accept. blackbox_exporter's
//! `probe_http_last_modified_timestamp_seconds` exists only when `Last-Modified` reads
//! as one of these, so headprobe reads the same ones. Tokens are read here; the calendar
//! is the `time` crate's.

use time::{Date, Month, PrimitiveDateTime, Time};

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Unix seconds of an HTTP date, or `None` when `value` is none of the three forms (or
/// names a day that does not exist). The weekday must be a weekday's name but, as in Go,
/// is not checked against the date.
///
/// - `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate)
/// - `Sunday, 06-Nov-94 08:49:37 GMT` (RFC 850; years 69-99 are 19xx, the rest 20xx)
/// - `Sun Nov  6 08:49:37 1994` (asctime)
pub fn parse(value: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(value).ok()?;
    imf_fixdate(s).or_else(|| rfc850(s)).or_else(|| asctime(s))
}

fn imf_fixdate(s: &str) -> Option<i64> {
    let (day, rest) = s.split_once(", ")?;
    one_of(&DAYS, day)?;
    let mut parts = rest.split(' ');
    let d = digits(parts.next()?, 2)?;
    let m = one_of(&MONTHS, parts.next()?)?;
    let y = digits(parts.next()?, 4)?;
    let t = clock(parts.next()?)?;
    (parts.next()? == "GMT" && parts.next().is_none()).then_some(())?;
    unix(y, m, d, t)
}

fn rfc850(s: &str) -> Option<i64> {
    let (day, rest) = s.split_once(", ")?;
    one_of(&LONG_DAYS, day)?;
    let mut parts = rest.split(' ');
    let mut date = parts.next()?.split('-');
    let d = digits(date.next()?, 2)?;
    let m = one_of(&MONTHS, date.next()?)?;
    let yy = digits(date.next()?, 2)?;
    date.next().is_none().then_some(())?;
    let y = if yy >= 69 { 1900 + yy } else { 2000 + yy };
    let t = clock(parts.next()?)?;
    // Go takes any zone abbreviation here, and reads an unknown one as UTC.
    let zone = parts.next()?;
    (!zone.is_empty() && zone.bytes().all(|b| b.is_ascii_uppercase())).then_some(())?;
    parts.next().is_none().then_some(())?;
    unix(y, m, d, t)
}

fn asctime(s: &str) -> Option<i64> {
    let day = s.get(..3)?;
    one_of(&DAYS, day)?;
    let rest = s.get(3..)?.strip_prefix(' ')?;
    let m = one_of(&MONTHS, rest.get(..3)?)?;
    let rest = rest.get(3..)?.strip_prefix(' ')?;
    // The day is space-padded (`_2`): ` 6` or `16`.
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let (d, rest) = rest.split_once(' ')?;
    let d = match d.len() {
        1 | 2 => digits(d, d.len())?,
        _ => return None,
    };
    let (t, y) = rest.split_once(' ')?;
    unix(digits(y, 4)?, m, d, clock(t)?)
}

/// `HH:MM:SS` (Go takes a one-digit hour too).
fn clock(s: &str) -> Option<(u32, u32, u32)> {
    let mut parts = s.split(':');
    let h = parts.next()?;
    let h = digits(h, h.len().clamp(1, 2))?;
    let m = digits(parts.next()?, 2)?;
    let sec = digits(parts.next()?, 2)?;
    parts.next().is_none().then_some((h, m, sec))
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The 1-based position of `s` in `names`, ignoring ASCII case (as Go does).
fn one_of(names: &[&str], s: &str) -> Option<u32> {
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .map(|i| i as u32 + 1)
}

fn unix(y: u32, m: u32, d: u32, (h, min, s): (u32, u32, u32)) -> Option<i64> {
    let month = Month::try_from(u8::try_from(m).ok()?).ok()?;
    let date = Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?);
    let time = Time::from_hms(u8::try_from(h).ok()?, min as u8, s as u8);
    Some(
        PrimitiveDateTime::new(date.ok()?, time.ok()?)
            .assume_utc()
            .unix_timestamp(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_and_what_is_not_a_date() {
        let cases: &[(&str, Option<i64>)] = &[
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(784_111_777)),
            ("Sunday, 06-Nov-94 08:49:37 GMT", Some(784_111_777)),
            ("Sun Nov  6 08:49:37 1994", Some(784_111_777)),
            ("Sun Nov 16 08:49:37 1994", Some(784_975_777)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
            ("Wed, 29 Feb 2012 23:59:59 GMT", Some(1_330_559_999)),
            // Two-digit years: 69 and later are 19xx.
            ("Tuesday, 01-Jan-30 00:00:00 GMT", Some(1_893_456_000)),
            ("Thursday, 01-Jan-70 00:00:00 GMT", Some(0)),
            // The weekday is a name, not checked against the date (as Go).
            ("Mon, 06 Nov 1994 08:49:37 GMT", Some(784_111_777)),
            ("sun, 06 NOV 1994 8:49:37 GMT", Some(784_111_777)),
            ("Xyz, 06 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 123:49:37 GMT", None),
            ("Sun, 06 Nov 1994 08:49:37 UTC", None),
            ("Sun, 6 Nov 1994 08:49:37 GMT", None),
            ("Sun, 31 Nov 1994 08:49:37 GMT", None),
            ("Fri, 29 Feb 2013 00:00:00 GMT", None),
            ("Sun, 06 Nov 1994 24:00:00 GMT", None),
            ("Sun, 06 Nov 1994 08:60:00 GMT", None),
            ("Sun, 06 Nov 1994 08:49:37 GMT extra", None),
            ("1994-11-06T08:49:37Z", None),
            ("784111777", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text.as_bytes()), *want, "{text}");
        }
        assert_eq!(parse(b"\xff, 06 Nov 1994 08:49:37 GMT"), None);
    }
}
