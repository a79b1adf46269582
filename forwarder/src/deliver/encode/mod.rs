//! Encoders: one per destination, each mapping [`LogRecord`]s to its backend's conventions
//! (docs/architecture.md, record model) over the one shared batching and retry core of [`crate::deliver`].
//!
//! An encoder turns one record into one self-contained *entry* (a JSON object, an OTLP `LogRecord`), cut to
//! the destination's per-entry limits, and joins a run of entries into a request body. Keeping entries apart
//! until a request is built is what lets a batch refused with 413 be split in halves and sent again.
//!
//! Finished invocations ([`Invocation`]) go the same way through an [`InvocationEncoder`]: one invocation is
//! one entry (its Datadog distribution series, its OTLP metrics, its spans), batched, split and counted by
//! the same core (docs/formats.md, section 9).

mod answer;
pub mod datadog;
pub mod dd_metrics;
#[cfg(test)]
mod dd_metrics_oracle;
pub mod dynatrace;
pub(crate) mod figures;
mod json;
pub mod otlp;
mod otlp_invocation;
pub mod otlp_metrics;
#[cfg(test)]
mod otlp_metrics_oracle;
mod otlp_metrics_wire;
pub mod otlp_spans;
mod proto;

use std::sync::{Arc, Mutex};

pub use crate::output::json_message::JsonMessage;
use crate::record::{AttributeKind, LogRecord, Source};
use crate::telemetry::Invocation;

/// Ends a field cut to a destination's limit, so that a reader sees it was cut.
pub const TRUNCATED: &str = " [tracehose: truncated]";

/// `text` within `max` bytes: cut on a character boundary and ended with [`TRUNCATED`] (as much of it as fits)
/// when longer. Shared by every encoder that cuts a string without escaping it.
fn cut_text(text: &str, max: usize) -> (std::borrow::Cow<'_, str>, bool) {
    if text.len() <= max {
        return (std::borrow::Cow::Borrowed(text), false);
    }
    let mut end = max.saturating_sub(TRUNCATED.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let marker = &TRUNCATED[..TRUNCATED.len().min(max - end)];
    (std::borrow::Cow::Owned([&text[..end], marker].concat()), true)
}

/// A destination setting read from the environment is invalid. Names the variable, never repeats its value.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{var}: {reason}")]
    Invalid { var: &'static str, reason: String },
}

impl SettingsError {
    /// The variable at fault.
    pub fn var(&self) -> &'static str {
        match self {
            Self::Invalid { var, .. } => var,
        }
    }

    fn invalid(var: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            var,
            reason: reason.into(),
        }
    }
}

/// Reads a positive integer variable, `None` when unset or empty.
fn positive(
    lookup: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<usize>, SettingsError> {
    match lookup(var).as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(SettingsError::invalid(var, "expected a positive integer")),
        },
    }
}

/// Reads a variable, `None` when unset or blank.
fn non_empty(lookup: &dyn Fn(&str) -> Option<String>, var: &str) -> Option<String> {
    lookup(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// What an encoder derives from a source once, kept for the records that follow: records of one payload share
/// one `Arc<Source>` and come in runs, so one slot is enough.
#[derive(Debug)]
struct PerSource<T> {
    last: Mutex<Option<(Arc<Source>, Arc<T>)>>,
}

impl<T> Default for PerSource<T> {
    fn default() -> Self {
        Self {
            last: Mutex::new(None),
        }
    }
}

impl<T> PerSource<T> {
    fn get(&self, source: &Arc<Source>, make: impl FnOnce(&Source) -> T) -> Arc<T> {
        // Never waits: another thread holding the slot, or a poisoned one, costs only a recomputation.
        let Ok(mut last) = self.last.try_lock() else {
            return Arc::new(make(source));
        };
        if let Some((cached, value)) = last.as_ref() {
            if Arc::ptr_eq(cached, source) {
                return Arc::clone(value);
            }
        }
        let value = Arc::new(make(source));
        *last = Some((Arc::clone(source), Arc::clone(&value)));
        value
    }

    /// What was kept for this very source (the same allocation, not an equal one), if anything.
    fn peek(&self, source: &Source) -> Option<Arc<T>> {
        let last = self.last.try_lock().ok()?;
        let (cached, value) = last.as_ref()?;
        std::ptr::eq(Arc::as_ptr(cached), source).then(|| Arc::clone(value))
    }
}

/// What an encoder makes of a record's own attributes, kept per kind of record
/// ([`LogRecord::attribute_kind`]): the lines of a payload are of a handful of kinds, so most lines copy bytes
/// made once instead of writing every key and value again.
#[derive(Debug)]
struct PerKind<T> {
    /// Most recently made last.
    recent: Mutex<Vec<(AttributeKind, Arc<T>)>>,
}

impl<T> Default for PerKind<T> {
    fn default() -> Self {
        Self {
            recent: Mutex::new(Vec::new()),
        }
    }
}

impl<T> PerKind<T> {
    /// Kinds remembered; there are at most a few hundred, and a payload shows a handful.
    const KEPT: usize = 16;

    /// `None` for a record whose attributes are its own (a platform line's details): write those afresh.
    fn get(&self, record: &LogRecord, make: impl FnOnce(&LogRecord) -> T) -> Option<Arc<T>> {
        let kind = record.attribute_kind()?;
        // Never waits, as in `PerSource`.
        let Ok(mut recent) = self.recent.try_lock() else {
            return Some(Arc::new(make(record)));
        };
        if let Some((_, value)) = recent.iter().rev().find(|(k, _)| *k == kind) {
            return Some(Arc::clone(value));
        }
        let value = Arc::new(make(record));
        if recent.len() == Self::KEPT {
            recent.remove(0);
        }
        recent.push((kind, Arc::clone(&value)));
        Some(value)
    }
}

/// The encoded entries of one batch, in order, in one buffer.
#[derive(Debug, Default)]
pub struct Entries {
    /// Every entry's bytes, back to back.
    pub data: Vec<u8>,
    /// Where each entry ends in `data`.
    pub ends: Vec<usize>,
    /// The source each run of entries shares: `(index of the run's first entry, source)`, in order. Records of
    /// one payload share one `Arc<Source>`, so a run is usually a whole payload.
    pub sources: Vec<(usize, Arc<Source>)>,
}

impl Entries {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of entry `i`.
    pub fn entry(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }

    /// The runs of one source among entries `range`, in order: `(entries, source)`. Neighbouring runs of equal
    /// sources are one (two payloads of one log stream). Entries before any recorded source get a default one.
    pub fn runs(&self, range: std::ops::Range<usize>) -> Vec<(std::ops::Range<usize>, Arc<Source>)> {
        let range = range.start.min(self.len())..range.end.min(self.len());
        let mut runs: Vec<(std::ops::Range<usize>, Arc<Source>)> = Vec::new();
        let mut i = range.start;
        while i < range.end {
            let run = self.sources.partition_point(|(first, _)| *first <= i);
            let (source, end) = match run.checked_sub(1).and_then(|r| self.sources.get(r)) {
                Some((_, source)) => (
                    Arc::clone(source),
                    self.sources.get(run).map_or(range.end, |n| n.0),
                ),
                None => (Arc::default(), self.sources.first().map_or(range.end, |n| n.0)),
            };
            let end = end.clamp(i + 1, range.end);
            match runs.last_mut() {
                Some((last, prev)) if Arc::ptr_eq(prev, &source) || **prev == *source => last.end = end,
                _ => runs.push((i..end, source)),
            }
            i = end;
        }
        runs
    }

    /// The source of entry `i`.
    pub fn source_of(&self, i: usize) -> &Arc<Source> {
        let run = self.sources.partition_point(|(first, _)| *first <= i);
        &self.sources[run.saturating_sub(1)].1
    }
}

/// What encoding one record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    /// Bytes appended to the entry buffer.
    pub bytes: usize,
    /// Whether a field (the message, an attribute) was cut to the destination's limits.
    pub truncated: bool,
}

/// What a successful answer says the backend refused anyway (an OTLP or Dynatrace partial success).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refused {
    /// Entries refused, of those sent.
    pub count: usize,
    /// The backend's own words, for the report.
    pub message: Option<String>,
}

/// Limits of one destination's requests, checked by the batching core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Largest request body before compression.
    pub max_body_bytes: usize,
    /// Most entries in one request.
    pub max_entries: usize,
}

/// How one destination frames and sends entries, whatever they encode (log records, invocations): the half of
/// an encoder the batching core and the sender need.
pub trait Wire: Send + Sync + std::fmt::Debug {
    /// Short name for the ledger and diagnostics (`dynatrace`, `otlp`, `datadog`); never a secret.
    fn name(&self) -> &'static str;

    /// `Content-Type` of the request bodies.
    fn content_type(&self) -> &'static str;

    fn limits(&self) -> RequestLimits;

    // The framing below defaults to a flat JSON array (`[` entries separated by `,` `]`), which is what the
    // JSON destinations send; OTLP frames its entries in protobuf messages instead.

    /// Bytes a body adds whatever it holds (`[]` of a JSON array).
    fn body_overhead(&self) -> usize {
        2
    }

    /// Bytes a body adds when a run of entries of a new source starts (an OTLP resource and scope; nothing
    /// for a flat JSON array). Must not be less than what [`body`](Self::body) spends.
    fn run_overhead(&self, _source: &Source) -> usize {
        0
    }

    /// Bytes a body adds around one entry of `entry_len` bytes (a comma; a field key and length).
    fn entry_overhead(&self, _entry_len: usize) -> usize {
        1
    }

    /// The request body (uncompressed) for entries `range` of `entries`.
    fn body(&self, entries: &Entries, range: std::ops::Range<usize>) -> Vec<u8> {
        json::json_array(entries, range)
    }

    /// What a successful answer says was refused of the `entries` sent (a partial success), never more than
    /// `entries`. Backends without partial success (Datadog answers 202 or fails) refuse nothing.
    fn refused(&self, _answer: &tracehose_export::Delivered, _entries: usize) -> Refused {
        Refused::default()
    }
}

/// A log destination's encoder: one [`LogRecord`] to one entry, framed by its [`Wire`].
pub trait Encoder: Wire {
    /// Appends one record's entry to `out`, cut to the destination's per-entry limits. `message` is
    /// `record.message`, escaped once for every destination that writes it as a JSON string.
    fn encode(&self, record: &LogRecord, message: &JsonMessage<'_>, out: &mut Vec<u8>) -> Encoded;
}

/// A telemetry destination's encoder: one finished [`Invocation`] to one entry, framed by its [`Wire`].
pub trait InvocationEncoder: Wire {
    /// Whether this destination takes `invocation` at all: a span lane takes only invocations with span ids.
    /// An invocation it does not take is never offered, so never counted in its ledger row.
    fn accepts(&self, _invocation: &Invocation) -> bool {
        true
    }

    /// Appends one invocation's entry to `out`, cut to the destination's per-entry limits.
    fn encode(&self, invocation: &Invocation, out: &mut Vec<u8>) -> Encoded;

    /// Encoders with the same key write the same entry for an invocation (OTLP and Dynatrace take the same
    /// OTLP metrics), so the sink encodes it once for all of them. `None`: this encoder's entries are its own.
    fn entry_key(&self) -> Option<u64> {
        None
    }
}

/// Records and batches as the pipeline and the batching core make them, for the encoders' tests.
#[cfg(test)]
mod testing {
    use std::sync::Arc;

    use tracehose_tracecontext::{SpanId, TraceId};

    use super::{Encoder, Entries, JsonMessage};
    use crate::parse::{PlatformDetails, PlatformEvent, ReportMetrics, Severity};
    use crate::record::{Join, LogRecord, Source};

    pub const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    pub const SPAN: &str = "00f067aa0ba902b7";

    pub fn lambda_source(function: &str) -> Arc<Source> {
        Arc::new(Source {
            log_group: format!("/aws/lambda/{function}"),
            log_stream: "2024/01/01/[$LATEST]abc".to_owned(),
            account_id: Some("123456789012".to_owned()),
            region: Some("eu-west-1".to_owned()),
            function_name: Some(function.to_owned()),
            firehose_arn: Some("arn:aws:firehose:eu-west-1:123456789012:deliverystream/logs".to_owned()),
            common_attributes: vec![("team".to_owned(), "payments".to_owned())],
        })
    }

    /// An application line joined to its trace.
    pub fn line(source: &Arc<Source>, message: &str) -> LogRecord<'static> {
        LogRecord {
            timestamp_ms: 1_700_000_000_123,
            message: message.to_owned().into(),
            severity: Severity::Warn,
            trace_id: TraceId::from_hex(TRACE),
            span_id: SpanId::from_hex(SPAN),
            request_id: Some(Arc::from("8f5b1c2e-1111-2222-3333-444455556666")),
            join: Some(Join::Line),
            source: Arc::clone(source),
            platform: None,
            details: None,
            cold_start: Some(true),
        }
    }

    /// A REPORT line, without trace context.
    pub fn report(source: &Arc<Source>) -> LogRecord<'static> {
        LogRecord {
            message: "REPORT RequestId: 8f5b1c2e Duration: 12.50 ms".into(),
            severity: Severity::Unspecified,
            trace_id: None,
            span_id: None,
            join: None,
            cold_start: None,
            platform: Some(PlatformEvent::Report),
            details: Some(Box::new(PlatformDetails {
                metrics: ReportMetrics {
                    duration_ms: Some(12.5),
                    memory_size_mb: Some(128),
                    ..Default::default()
                },
                status: Some("timeout".to_owned()),
                ..Default::default()
            })),
            ..line(source, "")
        }
    }

    /// The entries of `records`, as the batching core collects them. Each record is encoded with its message
    /// shared and not: both must give the same bytes.
    pub fn entries(encoder: &dyn Encoder, records: &[LogRecord]) -> (Entries, bool) {
        let mut entries = Entries::default();
        let mut truncated = false;
        for record in records {
            if entries
                .sources
                .last()
                .is_none_or(|(_, s)| !Arc::ptr_eq(s, &record.source))
            {
                entries.sources.push((entries.len(), Arc::clone(&record.source)));
            }
            let mut alone = Vec::new();
            let alone_encoded = encoder.encode(record, &JsonMessage::new(&record.message, false), &mut alone);
            let shared = JsonMessage::new(&record.message, true);
            let start = entries.data.len();
            let encoded = encoder.encode(record, &shared, &mut entries.data);
            let mut again = Vec::new();
            encoder.encode(record, &shared, &mut again);
            let entry = &entries.data[start..];
            assert_eq!(
                (alone_encoded, alone.len(), again.len()),
                (encoded, entry.len(), entry.len())
            );
            // An OTLP record's observed time is the clock's: only the JSON entries are byte for byte equal.
            if encoder.name() != "otlp" {
                assert!(alone == entry && again == entry);
            }
            truncated |= encoded.truncated;
            entries.ends.push(entries.data.len());
            assert_eq!(entries.entry(entries.len() - 1).len(), encoded.bytes);
        }
        (entries, truncated)
    }

    /// The body of all `entries`, checked against what the encoder said it would spend.
    pub fn body(encoder: &dyn Encoder, entries: &Entries) -> Vec<u8> {
        let body = encoder.body(entries, 0..entries.len());
        let runs: usize = entries.sources.iter().map(|(_, s)| encoder.run_overhead(s)).sum();
        let framing: usize = (0..entries.len())
            .map(|i| encoder.entry_overhead(entries.entry(i).len()))
            .sum();
        assert!(body.len() <= encoder.body_overhead() + runs + framing + entries.data.len());
        body
    }
}
