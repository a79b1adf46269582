//! Counts every outcome, so nothing is lost silently: each received log event ends delivered, filtered,
//! skipped as a control message, failed, refused for good by a destination, or invalid.

use std::fmt;

use crate::record::Join;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Log events received in decodable payloads, control messages included.
    pub events_in: u64,
    pub delivered: u64,
    /// Events dropped by a filter the user configured (`TRACEHOSE_INCLUDE_PATTERN`...).
    pub filtered: u64,
    pub control_messages: u64,
    /// Events of decodable payloads that could not be delivered (a destination failed): a retry may help.
    pub failed_events: u64,
    /// Events a destination refused for good (400, a partial success, 413 even after splitting) and that
    /// failed nowhere else: a retry cannot help.
    pub rejected_events: u64,
    /// Events that arrived but can never be delivered: unreadable (a wrong type, a missing field) or in a
    /// payload whose envelope is unusable. A retry cannot help.
    pub invalid_events: u64,
    /// Records (Firehose records, backup lines, objects) that could not be decoded: their event count is
    /// unknowable.
    pub failed_records: u64,
    /// Delivered events whose message was cut to the message size limit (marked in the message).
    pub truncated: u64,
    pub own_trace: u64,
    pub joined_marker: u64,
    pub joined_invocation: u64,
    pub joined_xray: u64,
    /// Joined to the ids derived from their invocation's request id (`TRACEHOSE_INVOCATION_SPANS=all`).
    pub joined_derived: u64,
    pub no_trace: u64,
}

impl Summary {
    pub fn count_join(&mut self, join: Option<Join>) {
        match join {
            Some(Join::Line) => self.own_trace += 1,
            Some(Join::Marker) => self.joined_marker += 1,
            Some(Join::Invocation) => self.joined_invocation += 1,
            Some(Join::Xray) => self.joined_xray += 1,
            Some(Join::Derived) => self.joined_derived += 1,
            None => self.no_trace += 1,
        }
    }

    pub fn joined(&self) -> u64 {
        self.joined_marker + self.joined_invocation + self.joined_xray + self.joined_derived
    }

    /// Turns everything delivered since `before` into failures: for records a sink accepted but that could
    /// not be handed on after all. Their trace joins no longer count either.
    pub fn undeliver_since(&mut self, before: &Summary) {
        let taken_back = self.delivered - before.delivered;
        self.delivered = before.delivered;
        self.failed_events += taken_back;
        self.truncated = before.truncated;
        self.own_trace = before.own_trace;
        self.joined_marker = before.joined_marker;
        self.joined_invocation = before.joined_invocation;
        self.joined_xray = before.joined_xray;
        self.joined_derived = before.joined_derived;
        self.no_trace = before.no_trace;
    }

    /// Folds what the delivery stage did into the counts: events it filtered or could not deliver were
    /// counted delivered when they left the pipeline. A line failed in one destination and refused in
    /// another counts failed, as the ledger's faces see it: a retry may still deliver it somewhere.
    pub fn apply_ledger(&mut self, ledger: &crate::deliver::Ledger) {
        let failed = ledger.retryable_lines();
        let rejected = ledger.failed_lines() - failed;
        let taken = (ledger.filtered + failed + rejected).min(self.delivered);
        self.delivered -= taken;
        let filtered = ledger.filtered.min(taken);
        let failed = failed.min(taken - filtered);
        self.filtered += filtered;
        self.failed_events += failed;
        self.rejected_events += taken - filtered - failed;
    }

    pub fn has_failures(&self) -> bool {
        self.failed_events > 0
            || self.rejected_events > 0
            || self.invalid_events > 0
            || self.failed_records > 0
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "events_in={} delivered={} filtered={} control_messages={} failed_events={} rejected_events={} \
             invalid_events={} failed_records={} \
             truncated={} own_trace={} joined={} (marker={} invocation={} xray={} derived={}) no_trace={}",
            self.events_in,
            self.delivered,
            self.filtered,
            self.control_messages,
            self.failed_events,
            self.rejected_events,
            self.invalid_events,
            self.failed_records,
            self.truncated,
            self.own_trace,
            self.joined(),
            self.joined_marker,
            self.joined_invocation,
            self.joined_xray,
            self.joined_derived,
            self.no_trace
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taking_back_deliveries_keeps_every_event_counted_once() {
        let before = Summary {
            events_in: 2,
            delivered: 2,
            own_trace: 1,
            no_trace: 1,
            ..Summary::default()
        };
        let mut after = before;
        after.events_in += 3;
        after.delivered += 3;
        after.count_join(Some(Join::Marker));
        after.count_join(Some(Join::Line));
        after.count_join(None);
        after.undeliver_since(&before);
        assert_eq!(after.delivered, 2);
        assert_eq!(after.failed_events, 3);
        assert_eq!(
            after.events_in,
            after.delivered + after.control_messages + after.failed_events + after.invalid_events
        );
        assert_eq!((after.own_trace, after.joined(), after.no_trace), (1, 0, 1));
    }

    #[test]
    fn the_ledger_splits_failed_from_rejected_as_its_faces_do() {
        use crate::deliver::Ledger;
        let mut ledger = Ledger {
            lines: 10,
            filtered: 1,
            ..Ledger::default()
        };
        ledger.failed.insert(0..2);
        ledger.rejected.insert(1..5);
        let mut summary = Summary {
            events_in: 11,
            delivered: 11,
            ..Summary::default()
        };
        summary.apply_ledger(&ledger);
        assert_eq!(
            (
                summary.delivered,
                summary.filtered,
                summary.failed_events,
                summary.rejected_events
            ),
            (5, 1, 2, 3)
        );
        assert_eq!(summary.failed_events, ledger.retryable_lines());
        assert!(summary.has_failures());
        assert!(
            summary
                .to_string()
                .contains(" failed_events=2 rejected_events=3 "),
            "{summary}"
        );
    }
}
