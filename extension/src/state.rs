//! State shared by the event loop, the Telemetry API listener and the OTLP receiver: the invocation tracker
//! and the bounded buffers of spans and log records waiting for the next flush. One mutex, held only for
//! short, non-blocking work; `changed` wakes the event loop when telemetry arrives.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use tokio::sync::Notify;

use crate::invocation::{Markers, Tracker};
use crate::spans::{invocation_spans, FunctionInfo};

/// Buffered items at most, whatever their size: the byte bound alone would let tiny items pile up.
pub const MAX_BUFFERED_SPANS: usize = 16 * 1024;
pub const MAX_BUFFERED_LOGS: usize = 16 * 1024;
/// What an item costs in memory beyond its encoded size: an empty span is 2 bytes on the wire.
const SPAN_OVERHEAD: usize = std::mem::size_of::<Span>();
const LOG_OVERHEAD: usize = std::mem::size_of::<LogRecord>();

/// Everything counted for the summary line: what went out and, above all, what was lost and why.
#[derive(Debug, Default)]
pub struct Stats {
    pub telemetry_batches: AtomicU64,
    pub telemetry_unparseable: AtomicU64,
    pub telemetry_oversize: AtomicU64,
    pub telemetry_items_unusable: AtomicU64,
    pub platform_logs_dropped: AtomicU64,
    pub spans_received: AtomicU64,
    /// Spans a request carried beyond the receiver's per-request budget (answered with partial success).
    pub spans_rejected: AtomicU64,
    /// Receiver requests refused whole (too large, too slow, undecodable): their spans were never counted.
    pub otlp_requests_rejected: AtomicU64,
    pub spans_dropped: AtomicU64,
    pub spans_exported: AtomicU64,
    pub spans_failed: AtomicU64,
    /// Spans with no destination configured to send them to.
    pub spans_unexported: AtomicU64,
    pub logs_dropped: AtomicU64,
    pub logs_exported: AtomicU64,
    pub logs_failed: AtomicU64,
    pub logs_unexported: AtomicU64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Lost items so far: when this grows the extension says so on stderr.
    pub fn lost(&self) -> u64 {
        [
            &self.telemetry_unparseable,
            &self.telemetry_oversize,
            &self.spans_rejected,
            &self.otlp_requests_rejected,
            &self.spans_dropped,
            &self.spans_failed,
            &self.logs_dropped,
            &self.logs_failed,
            &self.platform_logs_dropped,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }

    pub fn summary(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "spans_exported={} spans_received={} spans_dropped_buffer_full={} spans_failed={} spans_rejected={} \
             otlp_requests_rejected={} spans_no_destination={} logs_exported={} logs_dropped_buffer_full={} logs_failed={} \
             logs_no_destination={} telemetry_batches={} \
             telemetry_unparseable={} telemetry_oversize={} telemetry_items_unusable={} platform_logs_dropped={}",
            g(&self.spans_exported),
            g(&self.spans_received),
            g(&self.spans_dropped),
            g(&self.spans_failed),
            g(&self.spans_rejected),
            g(&self.otlp_requests_rejected),
            g(&self.spans_unexported),
            g(&self.logs_exported),
            g(&self.logs_dropped),
            g(&self.logs_failed),
            g(&self.logs_unexported),
            g(&self.telemetry_batches),
            g(&self.telemetry_unparseable),
            g(&self.telemetry_oversize),
            g(&self.telemetry_items_unusable),
            g(&self.platform_logs_dropped),
        )
    }
}

#[derive(Debug)]
pub struct State {
    pub tracker: Tracker,
    own_spans: Vec<Span>,
    function_spans: Vec<ResourceSpans>,
    span_count: usize,
    span_bytes: usize,
    logs: Vec<LogRecord>,
    log_bytes: usize,
}

#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
    pub changed: Notify,
    pub stats: Stats,
    pub function: FunctionInfo,
    pub resource: Vec<KeyValue>,
    pub buffer_bytes: usize,
    pub ship_logs: bool,
    pub verbose: bool,
}

impl Shared {
    pub fn new(
        function: FunctionInfo,
        resource: Vec<KeyValue>,
        buffer_bytes: usize,
        ship_logs: bool,
        verbose: bool,
    ) -> Self {
        Self {
            state: Mutex::new(State {
                tracker: Tracker::new(false),
                own_spans: Vec::new(),
                function_spans: Vec::new(),
                span_count: 0,
                span_bytes: 0,
                logs: Vec::new(),
                log_bytes: 0,
            }),
            changed: Notify::new(),
            stats: Stats::default(),
            function,
            resource,
            buffer_bytes,
            ship_logs,
            verbose,
        }
    }

    /// A poisoned lock only means another task panicked mid-update; the data is still the best there is.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves completed invocations into the span buffer; returns markers that became due.
    pub fn collect_complete(&self, force: bool) -> Markers {
        let mut state = self.lock();
        let (done, markers) = state.tracker.take_complete(force);
        for inv in &done {
            let spans = invocation_spans(inv, &state.tracker.init, &self.function);
            for span in spans {
                let size = span.encoded_len() + SPAN_OVERHEAD;
                if !self.room_for_spans(&state, 1, size) {
                    Stats::add(&self.stats.spans_dropped, 1);
                    continue;
                }
                state.span_count += 1;
                state.span_bytes += size;
                state.own_spans.push(span);
            }
        }
        markers
    }

    /// Buffers a batch of the function's spans, whole or not at all; returns how many were dropped for lack
    /// of room.
    pub fn push_function_spans(&self, batch: ResourceSpans, count: usize) -> usize {
        let size = batch
            .encoded_len()
            .saturating_add(count.saturating_mul(SPAN_OVERHEAD));
        let mut state = self.lock();
        if !self.room_for_spans(&state, count, size) {
            Stats::add(&self.stats.spans_dropped, count);
            return count;
        }
        state.span_count += count;
        state.span_bytes += size;
        state.function_spans.push(batch);
        0
    }

    fn room_for_spans(&self, state: &State, count: usize, size: usize) -> bool {
        state.span_count.saturating_add(count) <= MAX_BUFFERED_SPANS
            && state.span_bytes.saturating_add(size) <= self.buffer_bytes
    }

    pub fn push_log(&self, state: &mut State, record: LogRecord) {
        let size = record.encoded_len() + LOG_OVERHEAD;
        if state.logs.len() >= MAX_BUFFERED_LOGS || state.log_bytes.saturating_add(size) > self.buffer_bytes {
            Stats::add(&self.stats.logs_dropped, 1);
            return;
        }
        state.log_bytes += size;
        state.logs.push(record);
    }

    /// Everything buffered, as export requests' contents: (resource spans, span count, resource logs, log count).
    pub fn take_buffers(&self) -> (Vec<ResourceSpans>, usize, Vec<ResourceLogs>, usize) {
        let mut state = self.lock();
        let own = std::mem::take(&mut state.own_spans);
        let function = std::mem::take(&mut state.function_spans);
        let logs = std::mem::take(&mut state.logs);
        state.span_count = 0;
        state.span_bytes = 0;
        state.log_bytes = 0;
        drop(state);

        let span_count = own.len() + function.iter().map(count_spans).sum::<usize>();
        let mut resource_spans = Vec::with_capacity(function.len() + 1);
        if !own.is_empty() {
            resource_spans.push(ResourceSpans {
                resource: Some(self.resource()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope()),
                    spans: own,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        resource_spans.extend(function);
        let log_count = logs.len();
        let resource_logs = if logs.is_empty() {
            Vec::new()
        } else {
            vec![ResourceLogs {
                resource: Some(self.resource()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(scope()),
                    log_records: logs,
                    ..Default::default()
                }],
                ..Default::default()
            }]
        };
        (resource_spans, span_count, resource_logs, log_count)
    }

    pub fn buffered_bytes(&self) -> usize {
        let state = self.lock();
        state.span_bytes + state.log_bytes
    }

    fn resource(&self) -> Resource {
        Resource {
            attributes: self.resource.clone(),
            ..Default::default()
        }
    }
}

pub fn count_spans(rs: &ResourceSpans) -> usize {
    rs.scope_spans.iter().map(|s| s.spans.len()).sum()
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "tracehose-extension".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}

/// Marker lines go to stdout, one write per line, so that they land in the function's log stream whole.
pub fn print_markers(markers: &[String]) {
    use std::io::Write;
    if markers.is_empty() {
        return;
    }
    let mut out = std::io::stdout().lock();
    for line in markers {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}
