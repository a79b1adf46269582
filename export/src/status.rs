//! What an OTLP/HTTP (or Dynatrace) response status means for the data that was sent.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    Delivered,
    /// Worth sending again later; `retry_after` when the server said when.
    Retryable {
        retry_after: Option<Duration>,
    },
    /// Sending the same bytes again cannot succeed (malformed, unauthorised, too large, misconfigured).
    Permanent,
}

/// Retry-After longer than this is treated as "not soon": the caller keeps the data for a later flush.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// 2xx delivered (a 200 body may still report partial success, which the caller cannot act on anyway);
/// 408, 429 and 5xx other than 501 are transient; every other status is permanent. `Retry-After` is read in
/// its delay-seconds form; the HTTP-date form is ignored and the caller's own backoff applies.
pub fn classify(status: u16, retry_after: Option<&str>) -> Class {
    match status {
        200..=299 => Class::Delivered,
        408 | 429 | 500 | 502..=599 => Class::Retryable {
            retry_after: retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
                .map(|d| d.min(MAX_RETRY_AFTER)),
        },
        _ => Class::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_documented_statuses() {
        assert_eq!(classify(200, None), Class::Delivered);
        assert_eq!(classify(204, None), Class::Delivered);
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
            classify(503, Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            Class::Retryable { retry_after: None }
        );
        assert_eq!(
            classify(502, Some("99999")),
            Class::Retryable {
                retry_after: Some(MAX_RETRY_AFTER)
            }
        );
        assert_eq!(classify(504, None), Class::Retryable { retry_after: None });
    }
}
