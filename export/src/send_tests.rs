//! `send` against a scripted raw-TCP backend: retries, refusals, deadlines, redirects and `Retry-After`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
const BUSY: &str =
    "HTTP/1.1 503 Service Unavailable\r\nretry-after: 0\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
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
    let busy = "HTTP/1.1 429 Slow down\r\nretry-after: 120\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
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
