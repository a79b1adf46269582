//! The producing side of the delivery stage: a [`Sink`] the pipeline writes records into, on its own thread.
//! Each message is filtered and scrubbed once, whole, then its record encoded into every HTTP destination's
//! open batch and written to the local NDJSON destinations (stdout, a file). Sealed batches go to the sender
//! over a bounded channel: when the sender is behind, the pipeline waits, so memory is bounded by the batch
//! limits and the number of batches in flight, never by the input's size.
//!
//! Finished invocations ([`Sink::invocation`]) go to the telemetry lanes the same way, numbered per lane.

use std::borrow::Cow;
use std::io::{self, BufWriter, Write};
use std::sync::Arc;

use thiserror::Error;
use tokio::sync::mpsc;

use super::batch::{Batcher, Sealed, SharedEntry};
use super::encode::InvocationEncoder;
use super::filter::Filter;
use super::ledger::{DestinationLedger, LineSet};
use crate::output::json_message::JsonMessage;
use crate::output::ndjson::NdjsonSink;
use crate::output::Sink;
use crate::record::LogRecord;
use crate::telemetry::Invocation;

/// What travels from the pipeline's thread to the sender.
#[derive(Debug)]
pub(super) enum Message {
    Batch(Sealed),
    /// The producing side's own counts, sent once when it finishes.
    Report(SinkReport),
}

/// Counts only the producing side knows.
#[derive(Debug, Default)]
pub(super) struct SinkReport {
    pub lines: u64,
    pub filtered: u64,
    pub unit_starts: Vec<u64>,
    /// Per HTTP destination: items offered (lines, or invocations for a telemetry lane), and those too large
    /// to send even alone.
    pub offered: Vec<u64>,
    pub too_large: Vec<LineSet>,
    /// The local destinations, complete, with the write error that ended each, if one did.
    pub local: Vec<(DestinationLedger, LineSet, Option<io::Error>)>,
}

#[derive(Debug, Error)]
pub enum DeliveryError {
    #[error("the delivery stage stopped before every batch was handed over")]
    SenderGone,
    #[error("every destination failed; the last: {0}")]
    AllFailed(io::Error),
}

/// A local NDJSON destination (stdout or a file). A write error ends it: its later lines count as failed.
pub struct LocalDestination {
    pub name: &'static str,
    sink: NdjsonSink<BufWriter<Box<dyn Write + Send>>>,
    ledger: DestinationLedger,
    failed: LineSet,
    /// The first line not yet known to be written out.
    unflushed_from: u64,
    error: Option<io::Error>,
}

impl std::fmt::Debug for LocalDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalDestination")
            .field("name", &self.name)
            .finish()
    }
}

impl LocalDestination {
    pub fn new(name: &'static str, out: Box<dyn Write + Send>) -> Self {
        Self {
            name,
            sink: NdjsonSink::new(BufWriter::with_capacity(1 << 16, out)),
            ledger: DestinationLedger {
                name,
                ..DestinationLedger::default()
            },
            failed: LineSet::default(),
            unflushed_from: 0,
            error: None,
        }
    }

    fn write(&mut self, record: &LogRecord<'_>, message: &JsonMessage<'_>, line: u64) {
        self.ledger.received += 1;
        if self.error.is_none() {
            if let Err(err) = self.sink.write_shared(record, message) {
                self.fail(err, line + 1);
            }
        } else {
            self.failed.insert(line..line + 1);
        }
    }

    /// Makes everything written so far durable; `next_line` is the first line not yet written.
    fn flush(&mut self, next_line: u64) {
        if self.error.is_some() {
            return;
        }
        match self.sink.flush() {
            Ok(()) => self.unflushed_from = next_line,
            Err(err) => self.fail(err, next_line),
        }
    }

    /// Lines since the last successful flush may or may not have been written: they count as failed.
    fn fail(&mut self, err: io::Error, next_line: u64) {
        self.failed.insert(self.unflushed_from..next_line);
        self.error = Some(err);
    }

    fn finish(mut self, lines: u64) -> (DestinationLedger, LineSet, Option<io::Error>) {
        self.flush(lines);
        self.ledger.failed = self.failed.len();
        self.ledger.delivered = self.ledger.received - self.ledger.failed;
        (self.ledger, self.failed, self.error)
    }
}

/// The sink the pipeline writes into. Call [`finish`](Self::finish) when done; dropping it unfinished loses
/// the producing side's counts, and the sender reports every line it did not see as failed.
#[derive(Debug)]
pub struct DeliverySink {
    filter: Arc<Filter>,
    batchers: Vec<Batcher>,
    /// The telemetry lanes, each numbering its own invocations.
    telemetry: Vec<Batcher<dyn InvocationEncoder>>,
    local: Vec<LocalDestination>,
    tx: mpsc::Sender<Message>,
    report: SinkReport,
}

impl DeliverySink {
    /// The user's filter and scrub rules, for a face that writes some records itself.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// [`filter`](Self::filter), shared, for a face that writes records itself while still handing the sink
    /// its invocations.
    pub fn shared_filter(&self) -> Arc<Filter> {
        Arc::clone(&self.filter)
    }

    /// `batchers` and `telemetry` each fill one lane, an index into the stage's HTTP destinations.
    pub(super) fn new(
        filter: Arc<Filter>,
        batchers: Vec<Batcher>,
        telemetry: Vec<Batcher<dyn InvocationEncoder>>,
        local: Vec<LocalDestination>,
        tx: mpsc::Sender<Message>,
    ) -> Self {
        let lanes = (batchers.iter().map(Batcher::lane))
            .chain(telemetry.iter().map(Batcher::lane))
            .max()
            .map_or(0, |last| last + 1);
        let report = SinkReport {
            offered: vec![0; lanes],
            too_large: vec![LineSet::default(); lanes],
            ..SinkReport::default()
        };
        Self {
            filter,
            batchers,
            telemetry,
            local,
            tx,
            report,
        }
    }

    /// Marks where the next unit (a Firehose record, an HTTP endpoint request...) starts, so that the
    /// ledger can say whether each unit was delivered whole. Local destinations are flushed here, so that
    /// what they count as written is written.
    pub fn begin_unit(&mut self) {
        let line = self.report.lines;
        for local in &mut self.local {
            local.flush(line);
        }
        self.report.unit_starts.push(line);
    }

    /// Seals every open batch, hands the producing side's counts over, and closes the channel.
    pub fn finish(mut self) -> Result<(), DeliveryError> {
        let lines = self.report.lines;
        for i in 0..self.batchers.len() {
            if let Some(sealed) = self.batchers[i].seal() {
                self.send(Message::Batch(sealed))?;
            }
        }
        for i in 0..self.telemetry.len() {
            if let Some(sealed) = self.telemetry[i].seal() {
                self.send(Message::Batch(sealed))?;
            }
        }
        self.report.local = std::mem::take(&mut self.local)
            .into_iter()
            .map(|local| local.finish(lines))
            .collect();
        let report = std::mem::take(&mut self.report);
        self.send(Message::Report(report))
    }

    fn send(&self, message: Message) -> Result<(), DeliveryError> {
        // Trying first lets a sink on the runtime's own thread (`Destinations::deliver_alone`) hand over its
        // report, which always has room; only a full channel blocks, and only the pipeline's thread fills one.
        match self.tx.try_send(message) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(message)) => self
                .tx
                .blocking_send(message)
                .map_err(|_| DeliveryError::SenderGone),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(DeliveryError::SenderGone),
        }
    }

    fn all_local_failed(&self) -> bool {
        self.batchers.is_empty() && !self.local.is_empty() && self.local.iter().all(|l| l.error.is_some())
    }
}

impl Sink for DeliverySink {
    type Error = DeliveryError;

    fn admit<'a>(&mut self, message: Cow<'a, str>) -> Option<Cow<'a, str>> {
        let admitted = self.filter.admit(message);
        self.report.filtered += u64::from(admitted.is_none());
        admitted
    }

    /// Records arrive filtered and scrubbed ([`admit`](Self::admit)).
    fn write(&mut self, record: LogRecord<'_>) -> Result<(), DeliveryError> {
        let line = self.report.lines;
        self.report.lines += 1;
        // Escaped once for every destination that writes it as JSON, when there is more than one.
        let message = JsonMessage::new(&record.message, self.batchers.len() + self.local.len() > 1);
        for i in 0..self.batchers.len() {
            let lane = self.batchers[i].lane();
            self.report.offered[lane] += 1;
            let added = self.batchers[i].add(&record, &message, line);
            if added.too_large {
                self.report.too_large[lane].insert(line..line + 1);
            }
            if let Some(sealed) = added.sealed {
                self.send(Message::Batch(sealed))?;
            }
        }
        for local in &mut self.local {
            local.write(&record, &message, line);
        }
        if self.all_local_failed() {
            let err = self.local.iter_mut().rev().find_map(|l| l.error.take());
            return Err(DeliveryError::AllFailed(
                err.unwrap_or_else(|| io::Error::other("write failed")),
            ));
        }
        Ok(())
    }

    /// Each telemetry lane that takes the invocation (a span lane takes only those with span ids) numbers it
    /// and batches it; a lane's row counts it, and whatever becomes of it stays out of the lines' counts.
    fn invocation(&mut self, invocation: &Invocation) -> Result<(), DeliveryError> {
        // Entries several lanes share (the same OTLP metrics for OTLP and Dynatrace), by encoder key.
        let mut shared: Vec<(u64, SharedEntry)> = Vec::new();
        for i in 0..self.telemetry.len() {
            let batcher = &mut self.telemetry[i];
            if !batcher.encoder().accepts(invocation) {
                continue;
            }
            let lane = batcher.lane();
            let number = self.report.offered[lane];
            self.report.offered[lane] += 1;
            let added = match batcher.encoder().entry_key() {
                Some(key) => {
                    let slot = match shared.iter().position(|(k, _)| *k == key) {
                        Some(slot) => slot,
                        None => {
                            shared.push((key, None));
                            shared.len() - 1
                        }
                    };
                    batcher.add_shared_invocation(invocation, number, &mut shared[slot].1)
                }
                None => batcher.add_invocation(invocation, number),
            };
            if added.too_large {
                self.report.too_large[lane].insert(number..number + 1);
            }
            if let Some(sealed) = added.sealed {
                self.send(Message::Batch(sealed))?;
            }
        }
        Ok(())
    }

    /// Batches are sent as they fill; local destinations are flushed. Delivery itself is confirmed only by
    /// the ledger the stage returns.
    fn flush(&mut self) -> Result<(), DeliveryError> {
        let line = self.report.lines;
        for local in &mut self.local {
            local.flush(line);
        }
        Ok(())
    }
}
