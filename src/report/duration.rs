//! Durations in messages, written as a user would type them for `--timeout`:
//! `1.5s`, `500ms`, `2m`, never `1s 500ms`; and read back as a user types them.

use std::time::Duration;

/// The shortest of `2h`, `2m`, `1.5s`, `250ms` (or `0.5ms`) that says exactly `d`,
/// rounded to the microsecond. Each form is one `parse` accepts.
pub fn human(d: Duration) -> String {
    let micros = d.as_micros();
    const SEC: u128 = 1_000_000;
    if micros >= 3600 * SEC && micros.is_multiple_of(3600 * SEC) {
        format!("{}h", micros / (3600 * SEC))
    } else if micros >= 60 * SEC && micros.is_multiple_of(60 * SEC) {
        format!("{}m", micros / (60 * SEC))
    } else if micros >= SEC {
        format!("{}s", decimal(micros, SEC))
    } else {
        format!("{}ms", decimal(micros, 1000))
    }
}

/// The longest duration accepted, so that deadlines never overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// `250ms`, `5s`, `1m`, or a bare number of seconds (`2.5`).
pub fn parse(text: &str) -> Result<Duration, String> {
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

/// `n / unit` in decimal, without trailing zeros.
fn decimal(n: u128, unit: u128) -> String {
    let (whole, frac) = (n / unit, n % unit);
    if frac == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_a_user_writes_them() {
        let cases = [
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_secs(5), "5s"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_secs(3 * 3600 + 60), "181m"),
            (Duration::from_millis(2050), "2.05s"),
            (Duration::from_micros(250), "0.25ms"),
            (Duration::from_nanos(1), "0ms"),
            (Duration::from_millis(60_500), "60.5s"),
        ];
        for (d, want) in cases {
            assert_eq!(human(d), want, "{d:?}");
        }
    }

    /// What `human` writes reads back as the same duration.
    #[test]
    fn round_trips_through_the_parser() {
        for ms in [
            1, 250, 999, 1000, 1500, 59_999, 60_000, 61_000, 3_600_000, 86_400_000,
        ] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse(&human(d)), Ok(d), "{ms}");
        }
    }
}
