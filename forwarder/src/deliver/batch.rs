//! Batching: records encoded for one destination accumulate in a batch until the next one would break that
//! destination's limits (body bytes before compression, entry count); the batch is then sealed and handed to
//! the sender. A batch holds a contiguous run of line numbers, which is how the ledger knows exactly which
//! lines a failed request carried.

use std::ops::Range;
use std::sync::Arc;

use super::encode::{Encoder, Entries, JsonMessage};
use crate::record::LogRecord;

/// A batch's buffer is allocated at most this large up front; a larger one grows as it fills.
const MAX_PREALLOCATED: usize = 4 << 20;

/// A batch ready to send.
#[derive(Debug)]
pub struct Sealed {
    /// Which destination it is for (an index into the stage's destinations).
    pub lane: usize,
    pub entries: Entries,
    /// The line numbers of its entries, in order: entry `i` is line `lines.start + i`.
    pub lines: Range<u64>,
    /// Entries whose content was cut to the destination's limits.
    pub truncated: u64,
}

/// One destination's open batch.
#[derive(Debug)]
pub struct Batcher {
    lane: usize,
    encoder: Arc<dyn Encoder>,
    max_body_bytes: usize,
    max_entries: usize,
    entries: Entries,
    /// The body size of the entries so far, framing included.
    body_bytes: usize,
    first_line: u64,
    truncated: u64,
}

/// What adding a record did.
#[derive(Debug)]
pub struct Added {
    /// A batch that had to be sealed (to make room, or before a record too large to send).
    pub sealed: Option<Sealed>,
    /// The record is too large for this destination even alone: it is not batched.
    pub too_large: bool,
}

impl Batcher {
    /// `max_body_bytes` may be lower than the encoder's own limit (a memory budget), never higher.
    pub fn new(lane: usize, encoder: Arc<dyn Encoder>, max_body_bytes: usize) -> Self {
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
        }
    }

    /// Adds `record`, which is line number `line`; line numbers only grow.
    pub fn add(&mut self, record: &LogRecord, message: &JsonMessage<'_>, line: u64) -> Added {
        if self.entries.data.capacity() == 0 {
            // One allocation per batch instead of a doubling series: the batch fills up to its limit anyway.
            self.entries
                .data
                .reserve(self.max_body_bytes.min(MAX_PREALLOCATED));
        }
        // Encoded in place; moved to a new batch only in the rare case it does not fit this one.
        let start = self.entries.data.len();
        let encoded = self.encoder.encode(record, message, &mut self.entries.data);
        let entry_len = self.entries.data.len() - start;
        let run_cost = self.encoder.run_overhead(&record.source);
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
            .is_some_and(|(_, source)| Arc::ptr_eq(source, &record.source));
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
                .push((self.entries.len(), Arc::clone(&record.source)));
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
