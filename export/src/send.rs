//! Sending one encoded payload to one destination, retrying transient failures with backoff, never past the
//! caller's deadline. The caller decides what to do with data that could not be delivered in time.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};

use crate::status::{classify, Class};
use crate::{Compression, Destination, Payload};

/// Response bodies are only read so the connection can be reused; a backend that sends more is not trusted.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in total, the first included.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with jitter in [50 %, 100 %], so many sandboxes recovering together spread out.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let jitter = RandomState::new().hash_one(Instant::now()) % 512;
        exp / 2 + exp / 2 * u32::try_from(jitter).unwrap_or(0) / 511
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{destination}: payload of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        destination: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("{destination}: rejected with HTTP {status}; not retrying")]
    Rejected { destination: &'static str, status: u16 },
    #[error("{destination}: unavailable after {attempts} attempt(s): {reason}")]
    Unavailable {
        destination: &'static str,
        attempts: u32,
        reason: String,
        retry_after: Option<Duration>,
    },
}

impl ExportError {
    /// Whether the same payload may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ExportError::Unavailable { .. })
    }

    /// The server's own idea of when to come back, if it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ExportError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A client suited to short-lived exports: rustls, bounded connect time, idle connections kept briefly so
/// that consecutive flushes of a warm sandbox reuse them.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(2)
        .build()
}

/// A delivered payload: how many attempts it took and the start of the backend's answer, which may report a
/// partial success.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub attempts: u32,
    pub status: u16,
    /// At most 64 KiB of the response body.
    pub body: bytes::Bytes,
}

/// POSTs `payload` to `destination` until it is delivered, permanently rejected, `policy` runs out of attempts
/// or `deadline` would be passed.
pub async fn send(
    client: &reqwest::Client,
    destination: &Destination,
    payload: &Payload,
    deadline: Instant,
    policy: &RetryPolicy,
) -> Result<(), ExportError> {
    send_for_response(client, destination, payload, deadline, policy)
        .await
        .map(|_| ())
}

/// Like [`send`], returning what the backend answered on success.
pub async fn send_for_response(
    client: &reqwest::Client,
    destination: &Destination,
    payload: &Payload,
    deadline: Instant,
    policy: &RetryPolicy,
) -> Result<Delivered, ExportError> {
    let name = destination.name;
    if payload.body.len() > destination.max_body_bytes {
        return Err(ExportError::TooLarge {
            destination: name,
            size: payload.body.len(),
            limit: destination.max_body_bytes,
        });
    }
    let mut attempts = 0;
    loop {
        let now = Instant::now();
        let Some(left) = deadline.checked_duration_since(now).filter(|d| !d.is_zero()) else {
            return Err(unavailable(name, attempts, "deadline reached".into(), None));
        };
        attempts += 1;
        let answer = attempt(client, destination, payload, destination.timeout.min(left)).await;
        let (retry_after, reason) = match answer {
            Answer::Status(status, Class::Delivered, body) => {
                return Ok(Delivered {
                    attempts,
                    status,
                    body,
                })
            }
            Answer::Status(status, Class::Permanent, _) => {
                return Err(ExportError::Rejected {
                    destination: name,
                    status,
                });
            }
            Answer::Status(status, Class::Retryable { retry_after }, _) => {
                (retry_after, format!("HTTP {status}"))
            }
            Answer::Transport(reason) => (None, reason),
        };
        if attempts >= policy.max_attempts {
            return Err(unavailable(name, attempts, reason, retry_after));
        }
        let wait = retry_after.unwrap_or_else(|| policy.backoff(attempts));
        if Instant::now() + wait >= deadline {
            return Err(unavailable(name, attempts, reason, retry_after));
        }
        tokio::time::sleep(wait).await;
    }
}

fn unavailable(
    destination: &'static str,
    attempts: u32,
    reason: String,
    retry_after: Option<Duration>,
) -> ExportError {
    ExportError::Unavailable {
        destination,
        attempts,
        reason,
        retry_after,
    }
}

/// How one request ended.
enum Answer {
    /// The status, what it means, and the start of the body.
    Status(u16, Class, bytes::Bytes),
    /// No HTTP answer: the transport error, without its URL (URLs may carry credentials in their query).
    Transport(String),
}

async fn attempt(
    client: &reqwest::Client,
    destination: &Destination,
    payload: &Payload,
    timeout: Duration,
) -> Answer {
    let mut request = client
        .post(&destination.url)
        .headers(destination.headers.clone())
        .header(CONTENT_TYPE, payload.content_type)
        .timeout(timeout)
        .body(payload.body.clone());
    if payload.compression == Compression::Gzip {
        request = request.header(CONTENT_ENCODING, "gzip");
    }
    match request.send().await {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut body = Vec::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                let room = MAX_RESPONSE_BYTES.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if room < chunk.len() {
                    break;
                }
            }
            Answer::Status(status, classify(status, retry_after.as_deref()), body.into())
        }
        Err(error) => Answer::Transport(error.without_url().to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A backend that answers the n-th request with `answers[n]` (the last one repeats) and records bodies.
    async fn backend(answers: Vec<&'static str>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let answer = answers[n.min(answers.len() - 1)];
                let mut buf = vec![0u8; 65536];
                let _ = socket.read(&mut buf).await;
                if answer == "hang" {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (url, count)
    }

    fn destination(url: String) -> Destination {
        Destination {
            name: "test",
            url,
            headers: HeaderMap::new(),
            compression: Compression::Gzip,
            timeout: Duration::from_secs(5),
            max_body_bytes: 1024,
        }
    }

    fn payload(len: usize) -> Payload {
        Payload {
            body: bytes::Bytes::from(vec![7u8; len]),
            compression: Compression::Gzip,
            content_type: "application/x-protobuf",
        }
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    const BUSY: &str = "HTTP/1.1 503 Service Unavailable\r\nretry-after: 0\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    const BAD: &str = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

    #[tokio::test]
    async fn retries_transient_then_delivers() {
        let (url, count) = backend(vec![BUSY, BUSY, OK]).await;
        let client = http_client().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        send(
            &client,
            &destination(url),
            &payload(10),
            deadline,
            &RetryPolicy::default(),
        )
        .await
        .unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn permanent_failure_is_not_retried() {
        let (url, count) = backend(vec![BAD]).await;
        let client = http_client().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let err = send(
            &client,
            &destination(url),
            &payload(10),
            deadline,
            &RetryPolicy::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ExportError::Rejected { status: 400, .. }), "{err}");
        assert!(!err.is_retryable());
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn attempts_are_bounded() {
        let (url, count) = backend(vec![BUSY]).await;
        let client = http_client().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let err = send(
            &client,
            &destination(url),
            &payload(10),
            deadline,
            &RetryPolicy::default(),
        )
        .await
        .unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_hanging_backend_cannot_pass_the_deadline() {
        let (url, _) = backend(vec!["hang"]).await;
        let client = http_client().unwrap();
        let started = Instant::now();
        let err = send(
            &client,
            &destination(url),
            &payload(10),
            started + Duration::from_millis(150),
            &RetryPolicy::default(),
        )
        .await
        .unwrap_err();
        assert!(err.is_retryable());
        assert!(
            started.elapsed() < Duration::from_millis(400),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn oversize_payload_is_refused_before_sending() {
        let client = http_client().unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        let err = send(
            &client,
            &destination("http://127.0.0.1:9/".into()),
            &payload(2048),
            deadline,
            &RetryPolicy::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ExportError::TooLarge { size: 2048, .. }));
    }
}
