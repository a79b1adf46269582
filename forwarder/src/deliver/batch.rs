//! Batching: items encoded for one destination accumulate in a batch until the next one would break that
//! destination's limits (body bytes before compression, entry count); the batch is then sealed and handed to
//! the sender. A batch holds a contiguous run of item numbers, which is how the ledger knows exactly which
//! lines a failed request carried.
//!
//! One core serves every kind of item: a log lane's items are records ([`Batcher::add`]), a telemetry lane's
//! are finished invocations ([`Batcher::add_invocation`]), numbered apart from the lines.

use std::ops::Range;
use std::sync::Arc;

use super::encode::{Encoded, Encoder, Entries, InvocationEncoder, JsonMessage, Wire};
use crate::record::{LogRecord, Source};
use crate::telemetry::Invocation;

/// An invocation's entry as the first of the lanes sharing it encoded it, with what encoding it did.
pub type SharedEntry = Option<(Vec<u8>, Encoded)>;

/// A batch's buffer is allocated at most this large up front; a larger one grows as it fills.
const MAX_PREALLOCATED: usize = 4 << 20;

/// A batch ready to send.
#[derive(Debug)]
pub struct Sealed {
    /// Which destination it is for (an index into the stage's destinations).
    pub lane: usize,
    pub entries: Entries,
    /// The item numbers of its entries, in order: entry `i` is item `lines.start + i` (a line of the log lanes,
    /// an invocation of the telemetry lanes).
    pub lines: Range<u64>,
    /// Entries whose content was cut to the destination's limits.
    pub truncated: u64,
}

/// One destination's open batch; `E` is what encodes its items (a log [`Encoder`] by default).
#[derive(Debug)]
pub struct Batcher<E: ?Sized = dyn Encoder> {
    lane: usize,
    encoder: Arc<E>,
    max_body_bytes: usize,
    max_entries: usize,
    entries: Entries,
    /// The body size of the entries so far, framing included.
    body_bytes: usize,
    first_line: u64,
    truncated: u64,
    /// The framing cost of a run of the last source seen: the same for all of a payload's records, and
    /// dear to work out for OTLP (its resource, encoded).
    last_run: Option<(Arc<Source>, usize)>,
}

/// What adding an item did.
#[derive(Debug)]
pub struct Added {
    /// A batch that had to be sealed (to make room, or before an item too large to send).
    pub sealed: Option<Sealed>,
    /// The item is too large for this destination even alone: it is not batched.
    pub too_large: bool,
}

impl Batcher<dyn Encoder> {
    /// Adds `record`, whose message `message` holds (escaped once for every JSON writer), which is line
    /// number `line`; line numbers only grow.
    pub fn add(&mut self, record: &LogRecord, message: &JsonMessage<'_>, line: u64) -> Added {
        self.push(&record.source, line, |encoder, out| {
            encoder.encode(record, message, out)
        })
    }
}

impl Batcher<dyn InvocationEncoder> {
    /// Adds `invocation`, which is item number `number` of this lane; numbers only grow.
    pub fn add_invocation(&mut self, invocation: &Invocation, number: u64) -> Added {
        self.push(&invocation.source, number, |encoder, out| {
            encoder.encode(invocation, out)
        })
    }

    /// [`add_invocation`](Self::add_invocation), with the entry shared by the lanes whose encoders write the
    /// same bytes ([`InvocationEncoder::entry_key`]): the first such lane encodes it into `shared`, the others
    /// copy it from there.
    pub fn add_shared_invocation(
        &mut self,
        invocation: &Invocation,
        number: u64,
        shared: &mut SharedEntry,
    ) -> Added {
        self.push(&invocation.source, number, |encoder, out| {
            if let Some((entry, encoded)) = shared.as_ref() {
                out.extend_from_slice(entry);
                return *encoded;
            }
            let start = out.len();
            let encoded = encoder.encode(invocation, out);
            *shared = Some((out[start..].to_vec(), encoded));
            encoded
        })
    }

    pub fn encoder(&self) -> &dyn InvocationEncoder {
        &*self.encoder
    }
}

impl<E: Wire + ?Sized> Batcher<E> {
    /// `max_body_bytes` may be lower than the encoder's own limit (a memory budget), never higher.
    pub fn new(lane: usize, encoder: Arc<E>, max_body_bytes: usize) -> Self {
        let limits = encoder.limits();
        Self {
            lane,
            max_body_bytes: max_body_bytes.min(limits.max_body_bytes),
            max_entries: limits.max_entries.max(1),
            body_bytes: encoder.body_overhead(),
            encoder,
            entries: Entries::default(),
            first_line: 0,
            truncated: 0,
            last_run: None,
        }
    }

    fn run_overhead(&mut self, source: &Arc<Source>) -> usize {
        if let Some((last, cost)) = &self.last_run {
            if Arc::ptr_eq(last, source) {
                return *cost;
            }
        }
        let cost = self.encoder.run_overhead(source);
        self.last_run = Some((Arc::clone(source), cost));
        cost
    }

    /// The lane (an index into the stage's destinations) this batcher fills.
    pub fn lane(&self) -> usize {
        self.lane
    }

    /// Adds the item `encode` appends, of `source`, which is item number `line`; numbers only grow.
    fn push(
        &mut self,
        source: &Arc<Source>,
        line: u64,
        encode: impl FnOnce(&E, &mut Vec<u8>) -> Encoded,
    ) -> Added {
        if self.entries.data.capacity() == 0 {
            // One allocation per batch instead of a doubling series: the batch fills up to its limit anyway.
            self.entries
                .data
                .reserve(self.max_body_bytes.min(MAX_PREALLOCATED));
        }
        // Encoded in place; moved to a new batch only in the rare case it does not fit this one.
        let start = self.entries.data.len();
        let encoded = encode(&self.encoder, &mut self.entries.data);
        let entry_len = self.entries.data.len() - start;
        let run_cost = self.run_overhead(source);
        let entry_cost = entry_len + self.encoder.entry_overhead(entry_len);
        if self.encoder.body_overhead() + run_cost + entry_cost > self.max_body_bytes {
            self.entries.data.truncate(start);
            // Sealing keeps each batch's lines contiguous: this line is the gap between two batches.
            return Added {
                sealed: self.seal(),
                too_large: true,
            };
        }
        let continues_run = self
            .entries
            .sources
            .last()
            .is_some_and(|(_, last)| Arc::ptr_eq(last, source));
        let mut cost = entry_cost + if continues_run { 0 } else { run_cost };
        let mut sealed = None;
        if self.entries.len() >= self.max_entries || self.body_bytes + cost > self.max_body_bytes {
            let entry = self.entries.data.split_off(start);
            sealed = self.seal();
            self.entries
                .data
                .reserve(self.max_body_bytes.min(MAX_PREALLOCATED));
            self.entries.data.extend_from_slice(&entry);
            cost = entry_cost + run_cost;
        }
        if self.entries.is_empty() {
            self.first_line = line;
        }
        if sealed.is_some() || !continues_run {
            self.entries
                .sources
                .push((self.entries.len(), Arc::clone(source)));
        }
        self.entries.ends.push(self.entries.data.len());
        self.body_bytes += cost;
        self.truncated += u64::from(encoded.truncated);
        Added {
            sealed,
            too_large: false,
        }
    }

    /// Seals the open batch, if it holds anything.
    pub fn seal(&mut self) -> Option<Sealed> {
        if self.entries.is_empty() {
            return None;
        }
        let entries = std::mem::take(&mut self.entries);
        let lines = self.first_line..self.first_line + entries.len() as u64;
        self.body_bytes = self.encoder.body_overhead();
        Some(Sealed {
            lane: self.lane,
            entries,
            lines,
            truncated: std::mem::take(&mut self.truncated),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::deliver::encode::datadog::DatadogSettings;
    use crate::deliver::encode::dd_metrics::DatadogMetricsEncoder;
    use crate::deliver::encode::figures::testing::invocation;

    #[test]
    fn invocations_batch_on_the_same_core_numbered_apart() {
        let encoder: Arc<dyn InvocationEncoder> =
            Arc::new(DatadogMetricsEncoder::new(&DatadogSettings::default()));
        let one = {
            let mut out = Vec::new();
            encoder.encode(&invocation(), &mut out);
            out.len()
        };
        // Room for two invocations a request, not three.
        let max = encoder.body_overhead() + 2 * (one + 1) + one / 2;
        let mut batcher = Batcher::new(7, Arc::clone(&encoder), max);
        let mut sealed = Vec::new();
        for number in 0..5 {
            let added = batcher.add_invocation(&invocation(), number);
            assert!(!added.too_large);
            sealed.extend(added.sealed);
        }
        sealed.extend(batcher.seal());
        let batches: Vec<(usize, Range<u64>)> = sealed.iter().map(|s| (s.lane, s.lines.clone())).collect();
        assert_eq!(batches, [(7, 0..2), (7, 2..4), (7, 4..5)]);
        for batch in &sealed {
            let body = encoder.body(&batch.entries, 0..batch.entries.len());
            assert!(body.len() <= max);
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let invocations = v["series"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["metric"] == "aws.lambda.enhanced.invocations")
                .count();
            assert_eq!(invocations, batch.entries.len());
        }
        // Too large even alone: not batched, and what was open is sealed first.
        let mut small = Batcher::new(0, encoder, one / 2);
        let added = small.add_invocation(&invocation(), 0);
        assert!(added.too_large && added.sealed.is_none());
    }
}
