//! Moving buffered spans and log records into the per-destination outboxes and sending them, within a
//! deadline, without ever running two flushes at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tokio::sync::Mutex;

use crate::outbox::{Outbox, Outcome};
use crate::state::{Shared, Stats};

#[derive(Debug)]
struct Outboxes {
    traces: Outbox,
    logs: Outbox,
}

#[derive(Debug)]
pub struct Exporter {
    client: reqwest::Client,
    shared: Arc<Shared>,
    outboxes: Mutex<Outboxes>,
    reported_lost: AtomicU64,
}

impl Exporter {
    pub fn new(client: reqwest::Client, shared: Arc<Shared>, traces: Outbox, logs: Outbox) -> Self {
        Self {
            client,
            shared,
            outboxes: Mutex::new(Outboxes { traces, logs }),
            reported_lost: AtomicU64::new(0),
        }
    }

    /// Flushes until `deadline`. With `wait`, waits (until the deadline) for a flush already running;
    /// without, leaves it to that flush and returns at once. `force` ignores the circuit breakers.
    pub async fn flush(&self, deadline: Instant, force: bool, wait: bool) {
        let guard = if wait {
            tokio::time::timeout_at(deadline.into(), self.outboxes.lock())
                .await
                .ok()
        } else {
            self.outboxes.try_lock().ok()
        };
        let Some(mut outboxes) = guard else {
            return;
        };
        let stats = &self.shared.stats;
        let (resource_spans, span_count, resource_logs, log_count) = self.shared.take_buffers();
        let mut errors = Vec::new();
        if span_count > 0 {
            if outboxes.traces.is_empty() {
                // Announced once at start; not a loss to report on every flush.
                Stats::add(&stats.spans_unexported, span_count);
            } else {
                let request = ExportTraceServiceRequest { resource_spans };
                let pushed = outboxes.traces.push(&request, span_count);
                Stats::add(&stats.spans_dropped, pushed.dropped);
                Stats::add(&stats.spans_failed, pushed.failed);
                errors.extend(pushed.errors);
            }
        }
        if log_count > 0 {
            if outboxes.logs.is_empty() {
                Stats::add(&stats.logs_unexported, log_count);
            } else {
                let request = ExportLogsServiceRequest { resource_logs };
                let pushed = outboxes.logs.push(&request, log_count);
                Stats::add(&stats.logs_dropped, pushed.dropped);
                Stats::add(&stats.logs_failed, pushed.failed);
                errors.extend(pushed.errors);
            }
        }
        let Outboxes { traces, logs } = &mut *outboxes;
        let (span_outcome, log_outcome): (Outcome, Outcome) = tokio::join!(
            traces.send_all(&self.client, deadline, force),
            logs.send_all(&self.client, deadline, force)
        );
        Stats::add(&stats.spans_exported, span_outcome.delivered);
        Stats::add(&stats.spans_failed, span_outcome.failed);
        Stats::add(&stats.logs_exported, log_outcome.delivered);
        Stats::add(&stats.logs_failed, log_outcome.failed);
        errors.extend(span_outcome.errors);
        errors.extend(log_outcome.errors);
        drop(outboxes);
        self.report(&errors);
    }

    /// Losses are reported when they grow, and export errors when they happen, on stderr (which lands in the
    /// function's log stream): dropped data must never go unnoticed.
    fn report(&self, errors: &[String]) {
        let mut seen: Vec<&String> = Vec::new();
        for error in errors {
            if !seen.contains(&error) {
                crate::diag!("export: {error}");
                seen.push(error);
            }
        }
        let lost = self.shared.stats.lost();
        if lost > self.reported_lost.swap(lost, Ordering::Relaxed) {
            crate::diag!("data lost so far: {}", self.shared.stats.summary());
        }
    }

    pub async fn pending(&self) -> usize {
        let outboxes = self.outboxes.lock().await;
        outboxes.traces.pending() + outboxes.logs.pending()
    }
}
