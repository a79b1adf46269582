//! Wall-clock time in Unix nanoseconds (OTLP's unit) and the RFC 3339 timestamps the Telemetry API uses.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Milliseconds (possibly fractional, as the platform reports them) to nanoseconds; negative or absurd values
/// become 0 rather than wrapping.
pub fn ms_to_nanos(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 && ms < 1e12 {
        (ms * 1_000_000.0) as u64
    } else {
        0
    }
}

/// `2026-11-21T10:00:00.123Z`, any number of fraction digits, `Z` or a `±hh:mm` offset. Lambda writes UTC with
/// milliseconds; anything that is not a valid timestamp yields `None` and the caller falls back to its own clock.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.trim().as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start).min(9)..9 {
            nanos *= 10;
        }
    }
    let offset_secs: i64 = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digit = |c: &u8| c.is_ascii_digit().then(|| i64::from(c - b'0'));
            let minutes = (digit(h1)? * 10 + digit(h2)?) * 60 + digit(m1)? * 10 + digit(m2)?;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::try_from(year).ok()?, month, day);
    let secs = days * 86_400 + i64::try_from(hour * 3600 + minute * 60 + second).ok()? - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u64, day: u64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::try_from(month).unwrap_or(1);
    let d = i64::try_from(day).unwrap_or(1);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lambda_timestamps() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2022-10-12T00:03:50.000Z"),
            Some(1_665_533_030_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("2022-10-12T00:03:50.123456789Z"),
            Some(1_665_533_030_123_456_789)
        );
        assert_eq!(
            parse_rfc3339("2022-10-12T02:03:50.5+02:00"),
            Some(1_665_533_030_500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00.000Z"),
            Some(1_709_208_000_000_000_000)
        );
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [
            "",
            "yesterday",
            "2022-13-12T00:03:50Z",
            "2022-10-12T00:03:50",
            "2022-10-12T00:03:50.Z",
            "2022-10-12T00:03:50.000+0200",
            "1969-12-31T23:59:59Z",
            "2022-10-12T00:03:50.000Zjunk",
            "２０２２-10-12T00:03:50Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(ms_to_nanos(-1.0), 0);
        assert_eq!(ms_to_nanos(f64::NAN), 0);
        assert_eq!(ms_to_nanos(1.5), 1_500_000);
    }
}
