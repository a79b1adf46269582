//! Encoded payloads waiting for each destination, bounded in bytes, with a per-destination circuit breaker:
//! after a failure the destination is left alone for a growing while, so that an outage costs an invocation
//! at most one flush budget now and then instead of on every invocation.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tracehose_export::{
    encode, send_for_response, Delivered, Destination, ExportError, Payload, RetryPolicy, Signal,
};

const MAX_BREAK: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Entry {
    payload: Payload,
    items: usize,
}

#[derive(Debug)]
struct Queue {
    destination: Destination,
    entries: VecDeque<Entry>,
    bytes: usize,
    blocked_until: Option<Instant>,
    failures: u32,
}

/// What one `send_all` achieved, in items (spans or log records), plus messages worth printing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub delivered: usize,
    pub failed: usize,
    pub dropped: usize,
    pub errors: Vec<String>,
}

#[derive(Debug)]
pub struct Outbox {
    queues: Vec<Queue>,
    max_bytes: usize,
    signal: Signal,
}

impl Outbox {
    /// `signal` is the OTLP service every destination of this outbox receives: its answers are read with
    /// that service's response type.
    pub fn new(destinations: Vec<Destination>, max_bytes: usize, signal: Signal) -> Self {
        let queues = destinations
            .into_iter()
            .map(|destination| Queue {
                destination,
                entries: VecDeque::new(),
                bytes: 0,
                blocked_until: None,
                failures: 0,
            })
            .collect();
        Self {
            queues,
            max_bytes,
            signal,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    pub fn pending(&self) -> usize {
        self.queues.iter().map(|q| q.entries.len()).sum()
    }

    /// Encodes `message` once per compression in use and queues it for every destination. Returns the items
    /// dropped to make room (oldest first: fresh data is worth more than stale).
    pub fn push<M: prost::Message>(&mut self, message: &M, items: usize) -> Outcome {
        let mut outcome = Outcome::default();
        let mut cache: Vec<Payload> = Vec::with_capacity(2);
        for queue in &mut self.queues {
            let compression = queue.destination.compression;
            let payload = match cache.iter().find(|p| p.compression == compression) {
                Some(p) => p.clone(),
                None => match encode(message, compression) {
                    Ok(p) => {
                        cache.push(p.clone());
                        p
                    }
                    Err(error) => {
                        outcome.failed += items;
                        outcome.errors.push(error.to_string());
                        continue;
                    }
                },
            };
            queue.bytes += payload.body.len();
            queue.entries.push_back(Entry { payload, items });
            while queue.bytes > self.max_bytes && queue.entries.len() > 1 {
                if let Some(old) = queue.entries.pop_front() {
                    queue.bytes -= old.payload.body.len();
                    outcome.dropped += old.items;
                }
            }
        }
        outcome
    }

    /// Sends what is queued, every destination concurrently, until `deadline`. `force` ignores the circuit
    /// breaker (the shutdown flush is the last chance).
    pub async fn send_all(&mut self, client: &reqwest::Client, deadline: Instant, force: bool) -> Outcome {
        let policy = RetryPolicy::default();
        let signal = self.signal;
        let mut futures: Vec<Pin<Box<dyn Future<Output = Outcome> + Send + '_>>> = self
            .queues
            .iter_mut()
            .map(|q| {
                Box::pin(q.send(client, deadline, force, policy, signal))
                    as Pin<Box<dyn Future<Output = Outcome> + Send + '_>>
            })
            .collect();
        let mut results: Vec<Option<Outcome>> = futures.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (future, result) in futures.iter_mut().zip(results.iter_mut()) {
                if result.is_none() {
                    match future.as_mut().poll(cx) {
                        Poll::Ready(outcome) => *result = Some(outcome),
                        Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        drop(futures);
        let mut total = Outcome::default();
        for outcome in results.into_iter().flatten() {
            total.delivered += outcome.delivered;
            total.failed += outcome.failed;
            total.dropped += outcome.dropped;
            total.errors.extend(outcome.errors);
        }
        total
    }
}

impl Queue {
    async fn send(
        &mut self,
        client: &reqwest::Client,
        deadline: Instant,
        force: bool,
        policy: RetryPolicy,
        signal: Signal,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        if !force && self.blocked_until.is_some_and(|until| Instant::now() < until) {
            return outcome;
        }
        while let Some(entry) = self.entries.front() {
            match send_for_response(client, &self.destination, &entry.payload, deadline, &policy).await {
                Ok(answer) => {
                    let (refused, message) = refused(signal, &answer, entry.items);
                    outcome.delivered += entry.items - refused;
                    if refused > 0 {
                        outcome.failed += refused;
                        outcome.errors.push(format!(
                            "{}: refused {refused} of {} in a partial success: {message}",
                            self.destination.name, entry.items
                        ));
                    }
                    self.failures = 0;
                    self.blocked_until = None;
                }
                Err(error) if error.is_retryable() => {
                    self.failures = self.failures.saturating_add(1);
                    let pause = error.retry_after().unwrap_or_else(|| {
                        Duration::from_secs(1)
                            .saturating_mul(1 << self.failures.min(6))
                            .min(MAX_BREAK)
                    });
                    self.blocked_until = Some(Instant::now() + pause);
                    outcome.errors.push(error.to_string());
                    return outcome;
                }
                Err(
                    error @ (ExportError::Rejected { .. }
                    | ExportError::TooLarge { .. }
                    | ExportError::Redirected { .. }
                    | ExportError::Unavailable { .. }),
                ) => {
                    outcome.failed += entry.items;
                    outcome.errors.push(error.to_string());
                }
            }
            if let Some(done) = self.entries.pop_front() {
                self.bytes -= done.payload.body.len();
            }
        }
        outcome
    }
}

/// What an OTLP answer says it refused of the `items` sent (OTLP/HTTP's `partial_success`), never more than
/// were sent, with the backend's message cut to one short line. An answer that does not decode refuses
/// nothing: a 2xx is the protocol's success and most backends send an empty body.
fn refused(signal: Signal, answer: &Delivered, items: usize) -> (usize, String) {
    let (rejected, message) = match signal {
        Signal::Traces => ExportTraceServiceResponse::decode(&answer.body[..])
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_spans, p.error_message)),
        Signal::Logs => ExportLogsServiceResponse::decode(&answer.body[..])
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_log_records, p.error_message)),
        Signal::Metrics => ExportMetricsServiceResponse::decode(&answer.body[..])
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_data_points, p.error_message)),
    }
    .unwrap_or_default();
    let count = usize::try_from(rejected.max(0)).unwrap_or(usize::MAX).min(items);
    let message: String = message
        .chars()
        .take(256)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    (count, message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess;
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceRequest,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn answer(body: Vec<u8>) -> Delivered {
        Delivered {
            attempts: 1,
            status: 200,
            content_type: Some("application/x-protobuf".to_owned()),
            body: body.into(),
        }
    }

    fn traces_partial(rejected: i64, message: &str) -> Vec<u8> {
        ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: message.to_owned(),
            }),
        }
        .encode_to_vec()
    }

    #[test]
    fn a_partial_success_refuses_what_it_names_and_never_more_than_was_sent() {
        assert_eq!(
            refused(Signal::Traces, &answer(traces_partial(3, "too old")), 10).0,
            3
        );
        assert_eq!(
            refused(Signal::Traces, &answer(traces_partial(i64::MAX, "")), 10).0,
            10
        );
        assert_eq!(refused(Signal::Traces, &answer(traces_partial(-5, "")), 10).0, 0);
        let logs = ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: 2,
                error_message: "bad\nline".to_owned(),
            }),
        }
        .encode_to_vec();
        assert_eq!(
            refused(Signal::Logs, &answer(logs), 4),
            (2, "bad line".to_owned())
        );
        // Empty and unreadable answers are the protocol's plain success.
        assert_eq!(refused(Signal::Traces, &answer(Vec::new()), 4).0, 0);
        assert_eq!(refused(Signal::Logs, &answer(b"<html>".to_vec()), 4).0, 0);
    }

    /// One HTTP/1.1 exchange: reads a request with a `Content-Length` body, answers 200 with `body`.
    async fn answer_once(listener: tokio::net::TcpListener, body: Vec<u8>) {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = socket.read(&mut chunk).await.unwrap();
            seen.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if seen.len() >= end + 4 + length || n == 0 {
                    break;
                }
            }
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(&body).await.unwrap();
    }

    #[tokio::test]
    async fn spans_a_backend_refused_in_a_partial_success_count_failed_not_delivered() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let server = tokio::spawn(answer_once(listener, traces_partial(3, "spans too old")));
        let destination = Destination {
            name: "otlp",
            url,
            headers: reqwest::header::HeaderMap::new(),
            compression: tracehose_export::Compression::None,
            timeout: Duration::from_secs(5),
            max_body_bytes: 1 << 20,
        };
        let mut outbox = Outbox::new(vec![destination], 1 << 20, Signal::Traces);
        let pushed = outbox.push(&ExportTraceServiceRequest::default(), 10);
        assert_eq!(pushed, Outcome::default());
        let client = tracehose_export::http_client().unwrap();
        let outcome = outbox
            .send_all(&client, Instant::now() + Duration::from_secs(10), true)
            .await;
        server.await.unwrap();
        assert_eq!((outcome.delivered, outcome.failed, outcome.dropped), (7, 3, 0));
        assert_eq!(
            outcome.errors,
            vec!["otlp: refused 3 of 10 in a partial success: spans too old".to_owned()]
        );
        assert_eq!(outbox.pending(), 0);
    }
}
