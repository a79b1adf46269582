//! Encoded payloads waiting for each destination, bounded in bytes, with a per-destination circuit breaker:
//! after a failure the destination is left alone for a growing while, so that an outage costs an invocation
//! at most one flush budget now and then instead of on every invocation.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use tracehose_export::{encode, send, Destination, ExportError, Payload, RetryPolicy};

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
}

impl Outbox {
    pub fn new(destinations: Vec<Destination>, max_bytes: usize) -> Self {
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
        Self { queues, max_bytes }
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
        let mut futures: Vec<Pin<Box<dyn Future<Output = Outcome> + Send + '_>>> = self
            .queues
            .iter_mut()
            .map(|q| {
                Box::pin(q.send(client, deadline, force, policy))
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
    ) -> Outcome {
        let mut outcome = Outcome::default();
        if !force && self.blocked_until.is_some_and(|until| Instant::now() < until) {
            return outcome;
        }
        while let Some(entry) = self.entries.front() {
            match send(client, &self.destination, &entry.payload, deadline, &policy).await {
                Ok(()) => {
                    outcome.delivered += entry.items;
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
