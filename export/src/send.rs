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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A backend that answers the n-th request with `answers[n]` (the last one repeats) and keeps the start
    /// of every request it received (request line and headers).
    async fn backend(answers: Vec<String>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let heads = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = vec![0u8; 65536];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                let index = {
                    let mut heads = heads.lock().unwrap();
                    heads.push(head);
                    heads.len() - 1
                };
                let answer = answers[index.min(answers.len() - 1)].clone();
                if answer == "hang" {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (url, seen)
    }

    fn answers(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    fn count(seen: &Arc<Mutex<Vec<String>>>) -> usize {
        seen.lock().unwrap().len()
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
        let (url, seen) = backend(answers(&[BUSY, BUSY, OK])).await;
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
        assert_eq!(count(&seen), 3);
    }

    #[tokio::test]
    async fn permanent_failure_is_not_retried() {
        let (url, seen) = backend(answers(&[BAD])).await;
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
        assert_eq!(count(&seen), 1);
    }

    #[tokio::test]
    async fn attempts_are_bounded() {
        let (url, seen) = backend(answers(&[BUSY])).await;
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
        assert_eq!(count(&seen), 3);
    }

    #[tokio::test]
    async fn a_hanging_backend_cannot_pass_the_deadline() {
        let (url, seen) = backend(answers(&["hang"])).await;
        let client = http_client().unwrap();
        let err = send(
            &client,
            &destination(url),
            &payload(10),
            Instant::now() + Duration::from_millis(150),
            &RetryPolicy::default(),
        )
        .await
        .unwrap_err();
        // The one attempt's timeout is what was left of the deadline; no second attempt starts after it.
        assert!(
            matches!(err, ExportError::Unavailable { attempts: 1, .. }),
            "{err}"
        );
        assert_eq!(count(&seen), 1);
    }

    fn redirect(status: u16, location: &str) -> String {
        format!(
            "HTTP/1.1 {status} Moved\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
    }

    /// 301/302/303 used to become a bodiless GET whose 200 counted as delivered; 307/308 took the request and
    /// its headers to the other host. Now every redirect is an error naming where it pointed, and the other
    /// host hears nothing.
    #[tokio::test]
    async fn a_redirect_is_never_followed_and_never_delivered() {
        let (elsewhere, elsewhere_seen) = backend(answers(&[OK])).await;
        let elsewhere_host = elsewhere.trim_end_matches("/v1/traces").to_owned();
        let client = http_client().unwrap();
        for status in [301, 302, 303, 307, 308] {
            let (url, seen) = backend(vec![redirect(status, &elsewhere)]).await;
            let mut target = destination(url);
            target.headers.insert("dd-api-key", "secret-key".parse().unwrap());
            let err = send(
                &client,
                &target,
                &payload(10),
                Instant::now() + Duration::from_secs(5),
                &RetryPolicy::default(),
            )
            .await
            .unwrap_err();
            match &err {
                ExportError::Redirected {
                    status: got,
                    location,
                    ..
                } => {
                    assert_eq!(*got, status);
                    assert_eq!(location, &elsewhere_host, "only scheme, host and port");
                }
                other => panic!("{status}: {other}"),
            }
            assert!(err.to_string().contains(&elsewhere_host), "{err}");
            assert!(err.is_retryable(), "the data is fine; the URL is not");
            assert_eq!((count(&seen), err.requests()), (1, 1), "not retried");
        }
        assert_eq!(count(&elsewhere_seen), 0, "the other host never heard of it");
    }

    /// A refusal after transient failures counts every request it cost.
    #[tokio::test]
    async fn a_refusal_counts_the_attempts_before_it() {
        for last in [BAD.to_owned(), redirect(308, "http://elsewhere.example/")] {
            let (url, seen) = backend(vec![BUSY.to_owned(), last]).await;
            let client = http_client().unwrap();
            let err = send(
                &client,
                &destination(url),
                &payload(10),
                Instant::now() + Duration::from_secs(5),
                &RetryPolicy::default(),
            )
            .await
            .unwrap_err();
            assert_eq!((err.requests(), count(&seen)), (2, 2), "{err}");
        }
    }

    #[tokio::test]
    async fn a_redirect_names_where_it_pointed_without_path_or_query() {
        let (url, _) = backend(vec![redirect(
            302,
            "https://user:pw@login.example:8443/sso?token=abc",
        )])
        .await;
        let client = http_client().unwrap();
        let err = send(
            &client,
            &destination(url),
            &payload(10),
            Instant::now() + Duration::from_secs(5),
            &RetryPolicy::default(),
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("https://login.example:8443"), "{text}");
        assert!(!text.contains("token") && !text.contains("pw"), "{text}");
    }

    /// The HTTP-date form is honoured: a date far past the deadline means "not before then", so the send
    /// gives up at once with the server's wait, instead of retrying on its own backoff.
    #[tokio::test]
    async fn retry_after_as_an_http_date_is_honoured() {
        let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(200));
        let busy = format!(
            "HTTP/1.1 503 Busy\r\nretry-after: {later}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        let (url, seen) = backend(vec![busy]).await;
        let client = http_client().unwrap();
        let err = send(
            &client,
            &destination(url),
            &payload(10),
            Instant::now() + Duration::from_secs(5),
            &RetryPolicy::default(),
        )
        .await
        .unwrap_err();
        let wait = err.retry_after().expect("the date was read");
        assert!(wait > Duration::from_secs(150), "{wait:?}");
        assert_eq!(count(&seen), 1);
    }

    /// The delay-seconds form, the same way.
    #[tokio::test]
    async fn retry_after_in_seconds_is_honoured() {
        let busy =
            "HTTP/1.1 429 Slow down\r\nretry-after: 120\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        let (url, seen) = backend(answers(&[busy])).await;
        let client = http_client().unwrap();
        let err = send(
            &client,
            &destination(url),
            &payload(10),
            Instant::now() + Duration::from_secs(5),
            &RetryPolicy::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
        assert_eq!(count(&seen), 1);
    }

    #[tokio::test]
    async fn a_delivered_answer_keeps_its_content_type_and_body() {
        let ok = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
        let (url, _) = backend(answers(&[ok])).await;
        let client = http_client().unwrap();
        let delivered = send_for_response(
            &client,
            &destination(url),
            &payload(10),
            Instant::now() + Duration::from_secs(5),
            &RetryPolicy::default(),
        )
        .await
        .unwrap();
        assert_eq!(delivered.content_type.as_deref(), Some("application/json"));
        assert_eq!(&delivered.body[..], b"{}");
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
