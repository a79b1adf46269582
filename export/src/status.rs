//! What an OTLP/HTTP (or Dynatrace, or Datadog) response status means for the data that was sent, and when the
//! server asked to be tried again.

use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// The backend took the request; its body may still report lines it refused (a partial success), which
    /// only the caller, who knows the backend, can read.
    Delivered,
    /// A 3xx: the data did not reach the backend. Never followed: a client that follows re-sends a POST as a
    /// bodiless GET (301/302/303), or takes the request and its secret headers to whatever host the answer
    /// names (307/308).
    Redirected,
    /// Worth sending again later; `retry_after` when the server said when.
    Retryable { retry_after: Option<Duration> },
    /// Sending the same bytes again cannot succeed (malformed, unauthorised, too large, misconfigured).
    Permanent,
}

/// Retry-After longer than this is treated as "not soon": the caller keeps the data for a later flush.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// 2xx delivered, 3xx redirected; 408, 429 and 5xx other than 501 are transient; every other status is
/// permanent. `retry_after` is the `Retry-After` header as received, read as of now.
pub fn classify(status: u16, retry_after: Option<&str>) -> Class {
    classify_at(status, retry_after, SystemTime::now())
}

/// [`classify`] with the clock given, so that the HTTP-date form of `Retry-After` can be tested.
pub fn classify_at(status: u16, retry_after: Option<&str>, now: SystemTime) -> Class {
    match status {
        200..=299 => Class::Delivered,
        300..=399 => Class::Redirected,
        408 | 429 | 500 | 502..=599 => Class::Retryable {
            retry_after: retry_after.and_then(|value| parse_retry_after(value, now)),
        },
        _ => Class::Permanent,
    }
}

/// `Retry-After` in either form RFC 9110 allows: delay-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2026 07:28:00 GMT`, and the two obsolete date formats), capped at [`MAX_RETRY_AFTER`]. A date
/// already past means "now". `None` for anything else: the caller's own backoff applies.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if value.bytes().all(|b| b.is_ascii_digit()) {
        // A number too long for u64 is still a number: far beyond the cap.
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    (!value.is_empty()).then_some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_documented_statuses() {
        assert_eq!(classify(200, None), Class::Delivered);
        assert_eq!(classify(202, None), Class::Delivered);
        assert_eq!(classify(204, None), Class::Delivered);
        for redirect in [301, 302, 303, 307, 308] {
            assert_eq!(classify(redirect, None), Class::Redirected, "{redirect}");
        }
        assert_eq!(classify(400, Some("5")), Class::Permanent);
        assert_eq!(classify(401, None), Class::Permanent);
        assert_eq!(classify(413, None), Class::Permanent);
        assert_eq!(classify(501, None), Class::Permanent);
        assert_eq!(
            classify(429, Some(" 3 ")),
            Class::Retryable {
                retry_after: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(
            classify(502, Some("99999")),
            Class::Retryable {
                retry_after: Some(MAX_RETRY_AFTER)
            }
        );
        assert_eq!(classify(504, None), Class::Retryable { retry_after: None });
        assert_eq!(
            classify(503, Some("soon")),
            Class::Retryable { retry_after: None }
        );
    }

    #[test]
    fn retry_after_in_seconds() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
    }

    #[test]
    fn retry_after_as_an_http_date() {
        // Wed, 21 Oct 2026 07:28:00 GMT
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_792_567_680);
        let date = "Wed, 21 Oct 2026 07:28:00 GMT";
        assert_eq!(
            parse_retry_after(date, at - Duration::from_secs(42)),
            Some(Duration::from_secs(42))
        );
        assert_eq!(
            classify_at(503, Some(date), at - Duration::from_secs(7)),
            Class::Retryable {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        // The obsolete forms RFC 9110 still asks recipients to accept.
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-26 07:28:00 GMT", at - Duration::from_secs(5)),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:28:00 2026", at - Duration::from_secs(5)),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after(date, at + Duration::from_secs(60)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after(date, at - Duration::from_secs(86_400)),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after("Wed, 32 Oct 2026 07:28:00 GMT", at), None);
    }
}
