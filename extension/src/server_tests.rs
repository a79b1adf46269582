#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

const LIMITS: BodyLimits = BodyLimits {
    max: 1024,
    drain: 64 * 1024,
    deadline: Duration::from_millis(300),
};

/// A server whose handler answers 200 with the body's length, or the body error; `active` counts the
/// handlers running at once and `peak` the most there ever were.
async fn start(max_connections: usize) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (a, p) = (active.clone(), peak.clone());
    tokio::spawn(serve(
        listener,
        max_connections,
        move |request: Request<Incoming>| {
            let (a, p) = (a.clone(), p.clone());
            async move {
                let now = a.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                let (parts, body) = request.into_parts();
                let answer = match read_body(&parts.headers, body, LIMITS).await {
                    Ok(body) => reply(StatusCode::OK, "text/plain", body.len().to_string()),
                    Err(error) => body_error_reply(&error),
                };
                a.fetch_sub(1, Ordering::SeqCst);
                answer
            }
        },
    ));
    (port, peak)
}

/// Sends `head` (and whatever body bytes it carries), then reads the answer's status line.
async fn raw_status(port: u16, head: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(head).await.unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 512];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed without an answer");
        answer.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_body_declared_too_large_is_refused_before_it_is_sent() {
    let (port, _) = start(4).await;
    // 100 MiB declared, not a byte sent: the answer must come anyway, and from the declaration alone.
    let head = b"POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-length: 104857600\r\n\r\n";
    assert!(raw_status(port, head).await.starts_with("HTTP/1.1 413"));
    let expect = b"POST / HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 2048\r\n\r\n";
    assert!(raw_status(port, expect).await.starts_with("HTTP/1.1 413"));
}

#[tokio::test]
async fn an_oversize_streamed_body_gets_413_not_a_reset() {
    let (port, _) = start(4).await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");
    // Declared: drained, then answered.
    let response = client.post(&url).body(vec![7u8; 8 * 1024]).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 413);
    // Chunked, so the size is known only once it passes the cap.
    let mut chunked = b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..16 {
        chunked.extend_from_slice(b"200\r\n");
        chunked.extend_from_slice(&[1u8; 512]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert!(raw_status(port, &chunked).await.starts_with("HTTP/1.1 413"));
    // And a body within the cap still goes through.
    let response = client.post(&url).body(vec![1u8; 1000]).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.unwrap(), "1000");
}

#[tokio::test]
async fn a_body_that_never_finishes_is_answered_at_the_deadline() {
    let (port, _) = start(4).await;
    let head = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\nonly the start";
    assert!(raw_status(port, head).await.starts_with("HTTP/1.1 408"));
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let (port, peak) = start(2).await;
    let clients: Vec<_> = (0..6)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                // Half a body, a pause, then the rest: each client holds its slot for a while.
                stream
                    .write_all(
                        b"POST / HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 10\r\n\r\nhello",
                    )
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(30)).await;
                stream.write_all(b"world").await.unwrap();
                let mut answer = String::new();
                stream.read_to_string(&mut answer).await.unwrap();
                answer
            })
        })
        .collect();
    for client in clients {
        let answer = client.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("10"), "{answer}");
    }
    assert!(
        peak.load(Ordering::SeqCst) <= 2,
        "{}",
        peak.load(Ordering::SeqCst)
    );
}
