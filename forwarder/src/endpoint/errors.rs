//! Every way a request can fail, and the one place each becomes an HTTP status (docs/formats.md section 5):
//! 401 for a bad key, 400 for a malformed request, 413 only for a body that can never be accepted (Firehose
//! does not back those up), 5xx for anything a retry may fix, so that Firehose retries and then backs the
//! batch up to S3.

use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum EndpointError {
    #[error("missing X-Amz-Firehose-Access-Key")]
    MissingKey,
    #[error("wrong X-Amz-Firehose-Access-Key")]
    WrongKey,
    #[error("no access key is configured on this endpoint (set TRACEHOSE_ACCESS_KEYS or TRACEHOSE_ACCESS_KEYS_SECRET_ARN, or TRACEHOSE_INSECURE_NO_ACCESS_KEY=true)")]
    NoKeyConfigured,
    #[error("X-Amz-Firehose-Protocol-Version: expected 1.0, got {0:?}")]
    Protocol(String),
    #[error("missing X-Amz-Firehose-Protocol-Version")]
    MissingProtocol,
    #[error("missing X-Amz-Firehose-Request-Id")]
    MissingRequestId,
    #[error("X-Amz-Firehose-Request-Id is longer than {0} bytes")]
    RequestIdTooLong(usize),
    #[error("X-Amz-Firehose-Request-Id {header:?} does not match the body's requestId {body:?}")]
    RequestIdMismatch { header: String, body: String },
    #[error("X-Amz-Firehose-Common-Attributes: {0}")]
    CommonAttributes(String),
    #[error("Content-Encoding {0:?} is not supported: expected gzip or none")]
    Encoding(String),
    #[error("the request body is larger than {limit} bytes (TRACEHOSE_ENDPOINT_MAX_BODY_BYTES)")]
    TooLarge { limit: usize },
    #[error("the gzip body decompresses to more than {limit} bytes (TRACEHOSE_ENDPOINT_MAX_BODY_BYTES)")]
    InflatesTooLarge { limit: usize },
    #[error("the gzip body is corrupt: {0}")]
    Gzip(String),
    #[error("the body is not a Firehose HTTP endpoint request: {0}")]
    Json(String),
    #[error("the body of the function URL event is not valid base64: {0}")]
    EventBase64(String),
    #[error(
        "{count} of {records} records could not be read, and go back to Firehose (its S3 backup): {first}"
    )]
    Unreadable {
        count: usize,
        records: usize,
        first: String,
    },
    #[error("{lines} lines were refused for good by a destination; the batch goes back to Firehose (its S3 backup)")]
    Rejected { lines: u64 },
    #[error("{lines} lines are not delivered yet (a destination is failing); retry")]
    Undelivered { lines: u64 },
    #[error("delivery stopped: {0}")]
    Stopped(String),
    #[error(
        "{not_read} of {records} records, from records[{first}] on, were not read: the request's \
         decompression budget of {limit} bytes (TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES) is spent; the batch \
         goes back to Firehose (its S3 backup)"
    )]
    OverBudget {
        limit: usize,
        first: usize,
        not_read: usize,
        records: usize,
    },
    #[error(
        "the gzip body decompresses to more than the request's decompression budget of {limit} bytes \
         (TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES); the batch goes back to Firehose (its S3 backup)"
    )]
    InflatesOverBudget { limit: usize },
    /// `read`: how far the request got, in words.
    #[error("the request's deadline passed before all of it was read ({read}); retry")]
    Deadline { read: String },
    #[error("the request body did not arrive within {0:?}")]
    ReadTimeout(Duration),
    #[error("reading the request body failed: {0}")]
    Read(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("too many requests in progress ({0}); retry")]
    Busy(usize),
    #[error("an earlier attempt of this request id is still being delivered; retry")]
    InProgress,
    #[error("method {0} not allowed: Firehose POSTs")]
    Method(String),
    #[error("no such path {0:?}: Firehose deliveries go to /")]
    NotFound(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A retry of a request that was refused for good: the same answer again.
    #[error("{message}")]
    Repeated { status: u16, message: String },
}

impl EndpointError {
    pub fn status(&self) -> u16 {
        use EndpointError::*;
        match self {
            MissingKey | WrongKey => 401,
            Protocol(_)
            | MissingProtocol
            | MissingRequestId
            | RequestIdTooLong(_)
            | RequestIdMismatch { .. }
            | CommonAttributes(_)
            | Encoding(_)
            | Gzip(_)
            | Json(_)
            | EventBase64(_)
            | Unreadable { .. } => 400,
            Method(_) => 405,
            NotFound(_) => 404,
            ReadTimeout(_) => 408,
            // The only refusal Firehose does not back up: for a body that could never be accepted.
            TooLarge { .. } | InflatesTooLarge { .. } => 413,
            // Not 413, although no retry of it can succeed here: Firehose drops a 413 without a backup,
            // and these records are fine for a server with a larger budget, or for `tracehose replay`
            // from the backup, where each object has a budget of its own.
            NoKeyConfigured
            | Rejected { .. }
            | OverBudget { .. }
            | InflatesOverBudget { .. }
            | Internal(_)
            | Read(_) => 500,
            Undelivered { .. } | Deadline { .. } | Stopped(_) | ShuttingDown | Busy(_) | InProgress => 503,
            Repeated { status, .. } => *status,
        }
    }

    /// Whether a retry of the same request can only come to the same end: that answer is remembered for its
    /// request id, so that retries are answered without shipping its lines again.
    pub fn is_settled(&self) -> bool {
        matches!(
            self,
            EndpointError::Unreadable { .. }
                | EndpointError::Rejected { .. }
                | EndpointError::OverBudget { .. }
                | EndpointError::InflatesOverBudget { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_size_is_413_and_transient_failures_are_5xx() {
        assert_eq!(EndpointError::TooLarge { limit: 1 }.status(), 413);
        assert_eq!(EndpointError::WrongKey.status(), 401);
        assert_eq!(EndpointError::Json("x".into()).status(), 400);
        assert_eq!(EndpointError::Undelivered { lines: 1 }.status(), 503);
        assert_eq!(EndpointError::Rejected { lines: 1 }.status(), 500);
        assert!(EndpointError::Rejected { lines: 1 }.is_settled());
        assert!(!EndpointError::Undelivered { lines: 1 }.is_settled());
        let over = EndpointError::OverBudget {
            limit: 1,
            first: 3,
            not_read: 2,
            records: 5,
        };
        assert_eq!((over.status(), over.is_settled()), (500, true));
        let late = EndpointError::Deadline {
            read: "2 of 5 records not read".into(),
        };
        assert_eq!((late.status(), late.is_settled()), (503, false));
    }
}
