//! The sending side of the delivery stage: takes sealed batches off the channel and POSTs them with bounded
//! concurrency per destination, through `export`'s retry (exponential backoff with jitter, `Retry-After`,
//! within the caller's deadline). A batch refused with 413 is split in halves and each half sent again, down
//! to a floor (`split_depth` halvings), below which its lines are rejected; a backend's partial success counts
//! the lines it refused; a redirect is never followed and its lines are failed. Every line ends delivered,
//! failed or rejected in the ledger, and "delivered" only when the backend said so.
//!
//! Telemetry lanes (invocations: metrics, spans) are sent and counted by the same rules, in their own rows;
//! their failures are reported but never enter the ledger's failed or rejected lines: an invocation is not a
//! line of the source, and a metric that failed must not make the source send its logs again.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tracehose_export::{compress, send_for_response, Destination, ExportError, RetryPolicy};

use super::batch::Sealed;
use super::encode::{Encoder, InvocationEncoder, Wire};
use super::ledger::{DestinationLedger, Ledger, LineSet};
use super::sink::{Message, SinkReport};

/// What a destination carries, and how it encodes it.
#[derive(Debug, Clone)]
pub enum LaneEncoder {
    /// Log records: its failures are the source's lines' failures.
    Lines(Arc<dyn Encoder>),
    /// Finished invocations (platform metrics, invocation spans): counted in its own row only.
    Invocations(Arc<dyn InvocationEncoder>),
}

/// One HTTP destination: how to encode and where to send.
#[derive(Debug, Clone)]
pub struct HttpDestination {
    pub encoder: LaneEncoder,
    pub destination: Destination,
}

impl LaneEncoder {
    /// How its requests are framed and its answers read.
    pub fn wire(&self) -> &dyn Wire {
        match self {
            LaneEncoder::Lines(encoder) => &**encoder,
            LaneEncoder::Invocations(encoder) => &**encoder,
        }
    }
}

impl HttpDestination {
    /// How its requests are framed and its answers read.
    pub fn wire(&self) -> &dyn Wire {
        self.encoder.wire()
    }

    /// Whether it carries the source's lines (not invocations).
    pub fn carries_lines(&self) -> bool {
        matches!(self.encoder, LaneEncoder::Lines(_))
    }
}

/// How the sender behaves, the same for every destination.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Requests in flight per destination.
    pub max_in_flight: usize,
    pub retry: RetryPolicy,
    /// No request starts, and no retry waits, past this instant.
    pub deadline: Instant,
    /// How many times a batch refused with 413 may be halved before its lines are rejected.
    pub split_depth: u32,
}

/// What one batch's requests came to, for one destination.
#[derive(Debug, Default)]
struct BatchOutcome {
    lane: usize,
    delivered: u64,
    retried: u64,
    requests: u64,
    truncated: u64,
    failed: LineSet,
    rejected: LineSet,
    errors: Vec<String>,
}

/// Runs until the producing side finishes (or goes away) and every request has ended; returns the ledger.
/// `report` hears one line per distinct failure reason, never a secret (URLs and headers are not in them).
pub(super) async fn run(
    mut rx: mpsc::Receiver<Message>,
    destinations: Arc<[HttpDestination]>,
    client: reqwest::Client,
    options: SendOptions,
    report: impl Fn(String),
) -> Ledger {
    let permits: Vec<Arc<Semaphore>> = destinations
        .iter()
        .map(|_| Arc::new(Semaphore::new(options.max_in_flight.max(1))))
        .collect();
    let mut tally = Tally::new(&destinations, report);
    let mut in_flight = JoinSet::new();
    let mut sink_report = None;
    while let Some(message) = rx.recv().await {
        let sealed = match message {
            Message::Batch(sealed) => sealed,
            Message::Report(r) => {
                sink_report = Some(r);
                continue;
            }
        };
        while let Some(done) = in_flight.try_join_next_with_id() {
            tally.add(done);
        }
        // Waiting for a permit stops reading the channel, which stops the producer: the backpressure.
        let Ok(permit) = Arc::clone(&permits[sealed.lane]).acquire_owned().await else {
            continue;
        };
        let target = destinations[sealed.lane].clone();
        let (client, options) = (client.clone(), options.clone());
        let (lane, lines) = (sealed.lane, sealed.lines.clone());
        let task = in_flight.spawn(async move {
            let outcome = send_batch(&client, &target, sealed, &options).await;
            drop(permit);
            outcome
        });
        tally.pending.insert(task.id(), (lane, lines));
    }
    while let Some(done) = in_flight.join_next_with_id().await {
        tally.add(done);
    }
    tally.finish(sink_report.unwrap_or_default())
}

/// Distinct errors reported in one run. A backend whose messages differ from request to request (a partial
/// success naming its records, a request id in every 5xx page) must not grow memory or stderr with the number
/// of batches: past this many, errors are only counted.
const MAX_DISTINCT_ERRORS: usize = 32;

/// The ledger as batches end, so that memory does not grow with the number of batches of a long run; each
/// distinct error is reported once, when first seen, up to [`MAX_DISTINCT_ERRORS`].
struct Tally<R: Fn(String)> {
    ledger: Ledger,
    /// Per lane: whether it carries lines, whose failures are the source's lines' failures.
    lines_lane: Vec<bool>,
    /// The lines of each batch still in flight: if its task dies, they are failed, not forgotten.
    pending: HashMap<tokio::task::Id, (usize, Range<u64>)>,
    seen_errors: BTreeSet<String>,
    /// Errors not reported because [`MAX_DISTINCT_ERRORS`] were already.
    unreported_errors: u64,
    report: R,
}

impl<R: Fn(String)> Tally<R> {
    fn new(destinations: &[HttpDestination], report: R) -> Self {
        let ledger = Ledger {
            destinations: destinations
                .iter()
                .map(|d| DestinationLedger {
                    name: d.wire().name(),
                    ..DestinationLedger::default()
                })
                .collect(),
            ..Ledger::default()
        };
        Self {
            ledger,
            lines_lane: destinations.iter().map(HttpDestination::carries_lines).collect(),
            pending: HashMap::new(),
            seen_errors: BTreeSet::new(),
            unreported_errors: 0,
            report,
        }
    }

    fn error(&mut self, error: String) {
        if self.seen_errors.contains(&error) {
            return;
        }
        if self.seen_errors.len() < MAX_DISTINCT_ERRORS {
            (self.report)(error.clone());
            self.seen_errors.insert(error);
        } else {
            self.unreported_errors += 1;
        }
    }

    fn add(&mut self, done: Result<(tokio::task::Id, BatchOutcome), JoinError>) {
        let outcome = match done {
            Ok((id, outcome)) => {
                self.pending.remove(&id);
                outcome
            }
            Err(err) => {
                if let Some((lane, lines)) = self.pending.remove(&err.id()) {
                    let name = self.ledger.destinations[lane].name;
                    self.ledger.destinations[lane].failed += lines.end - lines.start;
                    if self.lines_lane[lane] {
                        self.ledger.failed.insert(lines);
                    }
                    self.error(format!("{name}: a sending task failed: {err}"));
                }
                return;
            }
        };
        self.add_outcome(outcome);
    }

    /// Counts one batch's outcome in its row, and, for a lane of lines, in the lines' failures.
    fn add_outcome(&mut self, outcome: BatchOutcome) {
        let d = &mut self.ledger.destinations[outcome.lane];
        d.delivered += outcome.delivered;
        d.retried += outcome.retried;
        d.requests += outcome.requests;
        d.truncated += outcome.truncated;
        d.failed += outcome.failed.len();
        d.rejected += outcome.rejected.len();
        if self.lines_lane[outcome.lane] {
            self.ledger.failed.union(&outcome.failed);
            self.ledger.rejected.union(&outcome.rejected);
        }
        for error in outcome.errors {
            self.error(error);
        }
    }

    fn finish(mut self, report: SinkReport) -> Ledger {
        let mut errors = Vec::new();
        let ledger = &mut self.ledger;
        ledger.lines = report.lines;
        ledger.filtered = report.filtered;
        ledger.unit_starts = report.unit_starts;
        for (i, d) in ledger.destinations.iter_mut().enumerate() {
            d.received = report.offered.get(i).copied().unwrap_or(0);
        }
        for (i, too_large) in report.too_large.iter().enumerate() {
            let Some(d) = ledger.destinations.get_mut(i) else {
                continue;
            };
            d.rejected += too_large.len();
            if self.lines_lane.get(i).copied().unwrap_or(true) {
                ledger.rejected.union(too_large);
            } else if !too_large.is_empty() {
                errors.push(format!(
                    "{}: {} invocation(s) too large to send even alone: counted rejected",
                    d.name,
                    too_large.len()
                ));
            }
        }
        // Lines a destination was offered but never heard of again (the producer stopped before sealing)
        // are failures too: nothing vanishes from the counts.
        for d in &mut ledger.destinations {
            let ended = d.delivered + d.failed + d.rejected;
            if d.received > ended {
                d.failed += d.received - ended;
            }
        }
        for (local, failed, error) in report.local {
            ledger.failed.union(&failed);
            match error {
                // A reader that stopped reading (`| head`) is not a failure worth a word.
                Some(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ledger.reader_gone = true,
                Some(err) => errors.push(format!("{}: writing output failed: {err}", local.name)),
                None => {}
            }
            ledger.destinations.push(local);
        }
        for error in errors {
            self.error(error);
        }
        if self.unreported_errors > 0 {
            (self.report)(format!(
                "{} more delivery errors not shown (the first {MAX_DISTINCT_ERRORS} distinct ones are)",
                self.unreported_errors
            ));
        }
        self.ledger
    }
}

async fn send_batch(
    client: &reqwest::Client,
    target: &HttpDestination,
    sealed: Sealed,
    options: &SendOptions,
) -> BatchOutcome {
    let mut outcome = BatchOutcome {
        lane: sealed.lane,
        truncated: sealed.truncated,
        ..BatchOutcome::default()
    };
    let encoder = target.wire();
    let line_of = |i: usize| sealed.lines.start + i as u64;
    // Pieces of the batch still to send, with the number of 413 halvings that made each.
    let mut pending: Vec<(Range<usize>, u32)> = vec![(0..sealed.entries.len(), 0)];
    while let Some((range, depth)) = pending.pop() {
        let lines = line_of(range.start)..line_of(range.end);
        let body = encoder.body(&sealed.entries, range.clone());
        let payload = match compress(body, target.destination.compression, encoder.content_type()) {
            Ok(payload) => payload,
            Err(err) => {
                outcome.errors.push(format!("{}: {err}", encoder.name()));
                outcome.failed.insert(lines);
                continue;
            }
        };
        let result = send_for_response(
            client,
            &target.destination,
            &payload,
            options.deadline,
            &options.retry,
        )
        .await;
        let mid = range.start + range.len() / 2;
        match result {
            Ok(delivered) => {
                outcome.requests += u64::from(delivered.attempts);
                let refused = encoder.refused(&delivered, range.len());
                let refused_count = refused.count.min(range.len());
                if let Some(message) = refused.message.filter(|_| refused_count > 0) {
                    outcome.errors.push(format!(
                        "{}: the backend accepted only part of a request: {message}",
                        encoder.name()
                    ));
                }
                // Which lines a partial success refused is not said: the last ones are counted, so that
                // every line is counted exactly once.
                let refused_from = lines.end - refused_count as u64;
                outcome.rejected.insert(refused_from..lines.end);
                outcome.delivered += (range.len() - refused_count) as u64;
                if delivered.attempts > 1 {
                    outcome.retried += range.len() as u64;
                }
            }
            Err(err) => {
                let requests = err.requests();
                outcome.requests += u64::from(requests);
                // A request that failed ambiguously (a reset, a timeout) before this answer may have arrived.
                if requests > 1 {
                    outcome.retried += range.len() as u64;
                }
                match &err {
                    // Over the destination's own limit: nothing was sent, so halving costs no request and
                    // needs no floor (a single entry too large alone never reaches a batch).
                    ExportError::TooLarge { .. } if range.len() > 1 => {
                        pending.extend([(mid..range.end, depth), (range.start..mid, depth)]);
                    }
                    // Refused as too large: the halves may pass, down to the floor. An intake that refuses
                    // everything so costs at most 2^(split_depth + 1) - 1 requests a batch, not one a line.
                    ExportError::Rejected { status: 413, .. }
                        if range.len() > 1 && depth < options.split_depth =>
                    {
                        pending.extend([(mid..range.end, depth + 1), (range.start..mid, depth + 1)]);
                    }
                    ExportError::Rejected { status: 413, .. } => {
                        outcome.errors.push(format!(
                            "{err}, after {depth} halving(s) of the batch (TRACEHOSE_SPLIT_DEPTH {}): its \
                             lines are counted rejected",
                            options.split_depth
                        ));
                        outcome.rejected.insert(lines);
                    }
                    ExportError::Rejected { .. } | ExportError::TooLarge { .. } => {
                        outcome.errors.push(err.to_string());
                        outcome.rejected.insert(lines);
                    }
                    // Worth a retry by the source: the backend was unavailable, or a redirect said the URL
                    // needs fixing (the data is fine, and reached nothing).
                    ExportError::Redirected { .. } | ExportError::Unavailable { .. } => {
                        outcome.errors.push(err.to_string());
                        outcome.failed.insert(lines);
                    }
                }
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    fn lanes() -> Vec<HttpDestination> {
        use crate::deliver::encode::datadog::{DatadogEncoder, DatadogSettings};
        use crate::deliver::encode::dd_metrics::DatadogMetricsEncoder;
        let destination = |name| Destination {
            name,
            url: "http://127.0.0.1:9".into(),
            headers: Default::default(),
            compression: tracehose_export::Compression::None,
            timeout: std::time::Duration::from_secs(1),
            max_body_bytes: 1 << 20,
        };
        vec![
            HttpDestination {
                encoder: LaneEncoder::Lines(Arc::new(DatadogEncoder::new(DatadogSettings::default()))),
                destination: destination("datadog"),
            },
            HttpDestination {
                encoder: LaneEncoder::Invocations(Arc::new(DatadogMetricsEncoder::new(
                    &DatadogSettings::default(),
                ))),
                destination: destination("datadog-metrics"),
            },
        ]
    }

    #[test]
    fn a_telemetry_lanes_failures_stay_in_its_row() {
        let reported = RefCell::new(Vec::new());
        let mut tally = Tally::new(&lanes(), |e| reported.borrow_mut().push(e));
        let outcome = |lane, delivered, failed: std::ops::Range<u64>, rejected: std::ops::Range<u64>| {
            let mut outcome = BatchOutcome {
                lane,
                delivered,
                requests: 2,
                ..BatchOutcome::default()
            };
            outcome.failed.insert(failed);
            outcome.rejected.insert(rejected);
            outcome
        };
        // Lines 0..3 (units 0..2 and 2..3) and invocations 0..4: the same numbers, counted apart.
        tally.add_outcome(outcome(0, 2, 1..2, 0..0));
        tally.add_outcome(outcome(1, 1, 2..3, 0..1));
        let mut too_large = LineSet::default();
        too_large.insert(3..4);
        let ledger = tally.finish(SinkReport {
            lines: 3,
            unit_starts: vec![0, 2],
            offered: vec![3, 4],
            too_large: vec![LineSet::default(), too_large],
            ..SinkReport::default()
        });
        let (lines, metrics) = (&ledger.destinations[0], &ledger.destinations[1]);
        assert_eq!(
            (lines.received, lines.delivered, lines.failed, lines.rejected),
            (3, 2, 1, 0)
        );
        assert_eq!(
            (
                metrics.received,
                metrics.delivered,
                metrics.failed,
                metrics.rejected
            ),
            (4, 1, 1, 2)
        );
        assert_eq!(
            (ledger.failed.len(), ledger.rejected.len()),
            (1, 0),
            "the lines' only"
        );
        assert!(!ledger.unit_complete(0), "line 1 failed in the log lane");
        assert!(
            ledger.unit_complete(1),
            "invocations 2 and 3 failing is no line's failure"
        );
        let reported = reported.into_inner();
        assert!(
            reported
                .iter()
                .any(|e| e.starts_with("datadog-metrics: 1 invocation(s) too large")),
            "{reported:?}"
        );
    }

    #[test]
    fn distinct_errors_are_reported_up_to_a_bound_and_the_rest_counted() {
        let reported = RefCell::new(Vec::new());
        let mut tally = Tally::new(&[], |e| reported.borrow_mut().push(e));
        for round in 0..3 {
            for i in 0..100 {
                tally.error(format!("otlp: partial success for request {i}"));
            }
            assert_eq!(reported.borrow().len(), MAX_DISTINCT_ERRORS, "round {round}");
        }
        assert_eq!(tally.seen_errors.len(), MAX_DISTINCT_ERRORS);
        tally.finish(SinkReport::default());
        let reported = reported.into_inner();
        assert_eq!(reported.len(), MAX_DISTINCT_ERRORS + 1);
        assert_eq!(
            reported.last().map(String::as_str),
            Some("204 more delivery errors not shown (the first 32 distinct ones are)")
        );
    }
}
