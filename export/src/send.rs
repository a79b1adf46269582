//! Sending one encoded payload to one destination, retrying transient failures with backoff, never past the
//! caller's deadline. The caller decides what to do with data that could not be delivered in time. A send
//! either reaches the configured URL and hears its answer, or ends in an [`ExportError`]: no redirect is
//! followed, so no request goes anywhere else, with or without its headers.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, LOCATION, RETRY_AFTER};

use crate::status::{classify, Class};
use crate::{Compression, Destination, Payload};

/// What is read of a response body: enough for any partial-success answer; a backend that sends more is not
/// trusted.
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
    /// `attempts` counts the earlier, transient failures too.
    #[error("{destination}: rejected with HTTP {status}; not retrying")]
    Rejected {
        destination: &'static str,
        status: u16,
        attempts: u32,
    },
    /// `location` is the host (and port) the answer pointed at, never its path or query, which may carry
    /// credentials.
    #[error(
        "{destination}: answered HTTP {status}, a redirect to {location}; redirects are never followed, \
         so nothing was delivered: configure the URL the redirect leads to"
    )]
    Redirected {
        destination: &'static str,
        status: u16,
        location: String,
        attempts: u32,
    },
    #[error("{destination}: unavailable after {attempts} attempt(s): {reason}")]
    Unavailable {
        destination: &'static str,
        attempts: u32,
        reason: String,
        retry_after: Option<Duration>,
    },
}

impl ExportError {
    /// Whether the same payload may succeed later. A redirect may: it names a configuration to fix (or a
    /// move in progress), not data the backend refused, so the data is worth keeping until it is fixed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ExportError::Unavailable { .. } | ExportError::Redirected { .. }
        )
    }

    /// The server's own idea of when to come back, if it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ExportError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// HTTP requests this outcome cost: what a caller counts as sent.
    pub fn requests(&self) -> u32 {
        match self {
            ExportError::TooLarge { .. } => 0,
            ExportError::Rejected { attempts, .. }
            | ExportError::Redirected { attempts, .. }
            | ExportError::Unavailable { attempts, .. } => *attempts,
        }
    }
}

/// A client suited to short-lived exports: rustls, bounded connect time, idle connections kept briefly so
/// that consecutive flushes of a warm sandbox reuse them. Redirects are never followed (see
/// [`Class::Redirected`]): an answer in 3xx is the answer.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
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
    /// The answer's `Content-Type`, which says how to read `body` (an OTLP answer is protobuf or JSON).
    pub content_type: Option<String>,
    /// At most 64 KiB of the response body.
    pub body: bytes::Bytes,
}

/// POSTs `payload` to `destination` until it is delivered, permanently rejected, redirected, `policy` runs
/// out of attempts or `deadline` would be passed.
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
            Answer::Status(response) => match response.class {
                Class::Delivered => {
                    return Ok(Delivered {
                        attempts,
                        status: response.status,
                        content_type: response.content_type,
                        body: response.body,
                    })
                }
                // The same URL answers the same way until someone changes it: not retried here.
                Class::Redirected => {
                    return Err(ExportError::Redirected {
                        destination: name,
                        status: response.status,
                        location: location_host(&destination.url, response.location.as_deref()),
                        attempts,
                    })
                }
                Class::Permanent => {
                    return Err(ExportError::Rejected {
                        destination: name,
                        status: response.status,
                        attempts,
                    });
                }
                Class::Retryable { retry_after } => (retry_after, format!("HTTP {}", response.status)),
            },
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

/// Where a redirect pointed, for the report: scheme, host and port of `location` resolved against `url`,
/// nothing of its path or query.
fn location_host(url: &str, location: Option<&str>) -> String {
    let Some(location) = location else {
        return "nowhere (no Location header)".into();
    };
    let resolved = reqwest::Url::parse(url).and_then(|base| base.join(location));
    match resolved {
        Ok(target) => match (target.host_str(), target.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", target.scheme()),
            (Some(host), None) => format!("{}://{host}", target.scheme()),
            (None, _) => "an address without a host".into(),
        },
        Err(_) => "an unreadable Location".into(),
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

/// An HTTP answer, read as far as a caller needs it.
struct Response {
    status: u16,
    class: Class,
    content_type: Option<String>,
    location: Option<String>,
    /// The start of the body.
    body: bytes::Bytes,
}

/// How one request ended.
enum Answer {
    Status(Response),
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
            let header = |name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let (retry_after, content_type, location) =
                (header(RETRY_AFTER), header(CONTENT_TYPE), header(LOCATION));
            let mut body = Vec::new();
            // A body cut short by the timeout is still the answer the status gave.
            while let Ok(Some(chunk)) = response.chunk().await {
                let room = MAX_RESPONSE_BYTES.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if room < chunk.len() {
                    break;
                }
            }
            Answer::Status(Response {
                status,
                class: classify(status, retry_after.as_deref()),
                content_type,
                location,
                body: body.into(),
            })
        }
        Err(error) => Answer::Transport(error.without_url().to_string()),
    }
}

#[cfg(test)]
#[path = "send_tests.rs"]
mod tests;
