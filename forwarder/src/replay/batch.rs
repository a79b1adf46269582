//! What `--to firehose:STREAM` tracks: batches for `PutRecordBatch` (at most 500 records and 4 MiB), each
//! with the lines that closed while it was filled, and which lines wait for their records to be accepted. A
//! line is confirmed once every record it holds was accepted; lines without a record (blank, duplicates,
//! unreadable) join the line before them, so that what is tracked grows with records, never with lines.

use std::collections::{BTreeMap, HashMap};

use super::position::Standing;

pub const MAX_BATCH_RECORDS: usize = 500;
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// Lines `first..=last`, all of whose records (those of `first`; the others have none) are in batches sent
/// so far: when all are accepted, the lines are confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LineMeta {
    first: u64,
    last: u64,
    records: u32,
    /// Nothing in them was unreadable or too large.
    readable: bool,
}

/// One batch for `PutRecordBatch`, with the lines that closed while it was filled.
#[derive(Debug, Default)]
pub struct Batch {
    pub(super) entries: Vec<(u64, Vec<u8>)>,
    pub(super) bytes: usize,
    pub(super) closed: Vec<LineMeta>,
    /// Lines closed in it: a batch is handed over after
    /// [`SEGMENT_LINES`](super::destinations::SEGMENT_LINES) even without records, so that the
    /// checkpoint moves through a long run of lines without any.
    pub(super) lines: u64,
}

impl Batch {
    pub(super) fn fits(&self, len: usize) -> bool {
        self.entries.len() < MAX_BATCH_RECORDS && self.bytes + len <= MAX_BATCH_BYTES
    }

    /// Closes a line: one with records starts an entry of its own, one without joins the line before it when
    /// that is in this batch, so that a batch holds at most one entry more than it has records.
    pub(super) fn close(&mut self, line: u64, records: u32, readable: bool) {
        if records == 0 {
            self.close_run(line, line, readable);
            return;
        }
        self.lines += 1;
        self.closed.push(LineMeta {
            first: line,
            last: line,
            records,
            readable,
        });
    }

    /// Closes lines `first..=last`, none with a record.
    pub(super) fn close_run(&mut self, first: u64, last: u64, readable: bool) {
        self.lines += last - first + 1;
        if let Some(prev) = self.closed.last_mut().filter(|p| p.last + 1 == first) {
            prev.last = last;
            prev.readable &= readable;
            return;
        }
        self.closed.push(LineMeta {
            first,
            last,
            records: 0,
            readable,
        });
    }
}

/// Which lines wait for their records, keyed by their first line; each step looks only at the lines it
/// touches, so that the work is linear in the records.
#[derive(Debug)]
pub(super) struct Tracker {
    expected: HashMap<u64, LineMeta>,
    accepted: HashMap<u64, u32>,
    /// Lines with a record PutRecordBatch did not accept, and why.
    pub(super) failed: BTreeMap<u64, String>,
    /// Every line confirmed so far was readable whole.
    pub(super) complete: bool,
}

impl Default for Tracker {
    fn default() -> Self {
        Self {
            expected: HashMap::new(),
            accepted: HashMap::new(),
            failed: BTreeMap::new(),
            complete: true,
        }
    }
}

impl Tracker {
    /// Lines closed in a batch; those whose records were all accepted already (or that have none) are
    /// confirmed at once.
    pub(super) fn expect(&mut self, closed: Vec<LineMeta>, standing: &mut Standing) {
        for meta in closed {
            if self.ready(&meta) {
                self.confirm(meta, standing);
            } else {
                self.expected.insert(meta.first, meta);
            }
        }
    }

    /// The results of one call: `lines[i]` is the line of the record `results[i]` answers.
    pub(super) fn apply(&mut self, lines: &[u64], results: &[Result<(), String>], standing: &mut Standing) {
        for (line, result) in lines.iter().zip(results) {
            match result {
                Ok(()) => *self.accepted.entry(*line).or_default() += 1,
                Err(detail) => {
                    self.failed.entry(*line).or_insert_with(|| detail.clone());
                }
            }
        }
        let mut previous = None;
        for &line in lines {
            if previous == Some(line) {
                continue;
            }
            previous = Some(line);
            if let Some(meta) = self.expected.get(&line).copied() {
                if self.ready(&meta) {
                    self.expected.remove(&line);
                    self.confirm(meta, standing);
                }
            }
        }
    }

    fn ready(&self, meta: &LineMeta) -> bool {
        !self.failed.contains_key(&meta.first)
            && self.accepted.get(&meta.first).copied().unwrap_or(0) >= meta.records
    }

    fn confirm(&mut self, meta: LineMeta, standing: &mut Standing) {
        self.complete &= meta.readable;
        self.accepted.remove(&meta.first);
        standing.confirm_range(meta.first, meta.last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::destinations::SEGMENT_LINES;

    #[test]
    fn batches_respect_both_limits() {
        let mut b = Batch {
            entries: vec![(1, Vec::new()); MAX_BATCH_RECORDS - 1],
            ..Batch::default()
        };
        assert!(b.fits(10));
        b.entries.push((1, Vec::new()));
        assert!(!b.fits(0));
        let b = Batch {
            bytes: MAX_BATCH_BYTES - 10,
            ..Batch::default()
        };
        assert!(b.fits(10) && !b.fits(11));
    }

    #[test]
    fn lines_are_confirmed_only_when_every_record_was_accepted() {
        let mut t = Tracker::default();
        let mut s = Standing::default();
        let mut b = Batch::default();
        b.close(1, 2, true);
        b.close(2, 0, true);
        b.close(3, 1, true);
        // Line 2 has no record: it joins line 1.
        assert_eq!(b.closed.len(), 2);
        t.expect(b.closed, &mut s);
        t.apply(
            &[1, 3],
            &[Ok(()), Err("ServiceUnavailableException".into())],
            &mut s,
        );
        assert_eq!(s.next(), 1);
        assert!(!s.skips(2) && !s.skips(3));
        t.apply(&[1], &[Ok(())], &mut s);
        assert_eq!(s.next(), 3);
        assert_eq!(t.failed.keys().copied().collect::<Vec<_>>(), [3]);
        assert!(t.expected.contains_key(&3) && t.expected.len() == 1);
    }

    #[test]
    fn records_accepted_before_their_line_closes_still_confirm_it() {
        // A line whose records span two batches: the first call answers before the batch closing the line
        // is received.
        let mut t = Tracker::default();
        let mut s = Standing::default();
        t.apply(&[1, 1], &[Ok(()), Ok(())], &mut s);
        assert_eq!(s.next(), 1);
        let mut b = Batch::default();
        b.close(1, 2, true);
        t.expect(b.closed, &mut s);
        assert_eq!(s.next(), 2);
        assert!(t.accepted.is_empty() && t.expected.is_empty());
    }

    #[test]
    fn a_run_of_lines_without_records_is_one_entry_and_seals_a_batch_by_lines() {
        let mut b = Batch::default();
        for line in 1..=3_000_000 {
            b.close(line, 0, true);
        }
        assert_eq!(b.closed.len(), 1);
        assert_eq!(b.lines, 3_000_000);
        assert!(b.lines >= SEGMENT_LINES);
        // An unreadable line joins too, and makes the run incomplete.
        b.close(3_000_001, 0, false);
        assert_eq!(
            b.closed,
            [LineMeta {
                first: 1,
                last: 3_000_001,
                records: 0,
                readable: false
            }]
        );
        let mut t = Tracker::default();
        let mut s = Standing::default();
        t.expect(b.closed, &mut s);
        assert_eq!(s.next(), 3_000_002);
        assert!(!t.complete);
    }
}
