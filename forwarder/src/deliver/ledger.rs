//! The ledger: what became of every line handed to the delivery stage, per destination, and which lines
//! failed in at least one destination, so that each face can tell its source exactly what it needs
//! (docs/architecture.md, failure table).
//!
//! Lines are numbered in the order they reach the stage, and every batch holds a contiguous run of them, so
//! failures are kept as ranges: exact per line, and small whatever the input's size.
//!
//! A telemetry lane (`datadog-metrics`, `otlp-metrics`, `otlp-traces`, `dynatrace-metrics`,
//! `dynatrace-traces`) has its own row, which counts invocations instead of lines, by the same rules. Its
//! failures stay in its row (and the errors reported): they never enter [`Ledger::failed`] or
//! [`Ledger::rejected`], so they never make a unit incomplete, never make the source send its logs again,
//! and never change a count of lines.

use std::fmt::Write as _;
use std::ops::Range;

/// Counts of one destination: of lines, or of invocations for a telemetry lane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationLedger {
    pub name: &'static str,
    /// Lines offered to this destination (after filtering); for a telemetry lane, the invocations it takes.
    pub received: u64,
    /// Lines the backend accepted.
    pub delivered: u64,
    /// Lines with a field cut to the backend's limits (and delivered or not).
    pub truncated: u64,
    /// Lines in requests that needed more than one attempt: where duplicates may come from, after an
    /// ambiguous failure (a timeout or a reset after the request was sent).
    pub retried: u64,
    /// Lines not delivered for a reason that may pass (unavailable, throttled, deadline reached).
    pub failed: u64,
    /// Lines refused for good (400/401/403, partial success, too large alone).
    pub rejected: u64,
    /// HTTP requests that ended (delivered or not), each retry included.
    pub requests: u64,
}

/// Sorted, disjoint ranges of line numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineSet {
    ranges: Vec<Range<u64>>,
}

impl LineSet {
    pub fn insert(&mut self, range: Range<u64>) {
        if range.is_empty() {
            return;
        }
        let at = self.ranges.partition_point(|r| r.end < range.start);
        let mut merged = range;
        while let Some(next) = self.ranges.get(at) {
            if next.start > merged.end {
                break;
            }
            merged = merged.start.min(next.start)..merged.end.max(next.end);
            self.ranges.remove(at);
        }
        self.ranges.insert(at, merged);
    }

    pub fn union(&mut self, other: &LineSet) {
        for range in &other.ranges {
            self.insert(range.clone());
        }
    }

    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|r| r.end - r.start).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether any line of `range` is in the set.
    pub fn intersects(&self, range: &Range<u64>) -> bool {
        let at = self.ranges.partition_point(|r| r.end <= range.start);
        self.ranges.get(at).is_some_and(|r| r.start < range.end)
    }
}

/// Everything the delivery stage did for one call.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub destinations: Vec<DestinationLedger>,
    /// Lines handed to the stage.
    pub lines: u64,
    /// Lines dropped by a filter the user configured, before any destination.
    pub filtered: u64,
    /// Lines that failed transiently in at least one log destination: a retry by the source may deliver them.
    pub failed: LineSet,
    /// Lines refused for good by at least one log destination.
    pub rejected: LineSet,
    /// Where each unit (a Firehose record, a request...) starts in the line numbering, in order.
    pub unit_starts: Vec<u64>,
    /// A local destination's reader went away (`tracehose process | head`): its lines were not delivered,
    /// but nobody is left to want them.
    pub reader_gone: bool,
}

impl Ledger {
    /// Whether every line of unit `index` reached every destination.
    pub fn unit_complete(&self, index: usize) -> bool {
        let Some(&start) = self.unit_starts.get(index) else {
            return true;
        };
        let end = self.unit_starts.get(index + 1).copied().unwrap_or(self.lines);
        let range = start..end;
        !self.failed.intersects(&range) && !self.rejected.intersects(&range)
    }

    /// Lines that failed in some destination, transiently or for good, each counted once.
    pub fn failed_lines(&self) -> u64 {
        let mut all = self.failed.clone();
        all.union(&self.rejected);
        all.len()
    }

    /// Lines that failed transiently in some destination, whether refused for good by another or not: what a
    /// retry of the source could still deliver somewhere.
    pub fn retryable_lines(&self) -> u64 {
        self.failed.len()
    }

    /// One line in CloudWatch Embedded Metric Format, so that the counts become CloudWatch metrics with no
    /// setup: namespace `tracehose`, one metric per outcome and destination (`Delivered.otlp`).
    pub fn emf_line(&self, timestamp_ms: i64) -> String {
        let mut names = Vec::new();
        let mut values = String::new();
        let mut metric = |name: String, value: u64| {
            let _ = write!(values, ",\"{name}\":{value}");
            names.push(name);
        };
        metric("Lines".into(), self.lines);
        metric("Filtered".into(), self.filtered);
        for d in &self.destinations {
            let counts = [
                ("Received", d.received),
                ("Delivered", d.delivered),
                ("Truncated", d.truncated),
                ("Retried", d.retried),
                ("Failed", d.failed),
                ("Rejected", d.rejected),
            ];
            for (outcome, value) in counts {
                metric(format!("{outcome}.{}", d.name), value);
            }
        }
        let definitions: Vec<String> = names
            .iter()
            .map(|n| format!("{{\"Name\":\"{n}\",\"Unit\":\"Count\"}}"))
            .collect();
        format!(
            "{{\"_aws\":{{\"Timestamp\":{timestamp_ms},\"CloudWatchMetrics\":[{{\"Namespace\":\"tracehose\",\
             \"Dimensions\":[[]],\"Metrics\":[{}]}}]}}{values}}}",
            definitions.join(",")
        )
    }
}

impl std::fmt::Display for Ledger {
    /// The human form of the same counts, one destination after the other.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lines={} filtered={}", self.lines, self.filtered)?;
        for d in &self.destinations {
            write!(
                f,
                " | {}: received={} delivered={} truncated={} retried={} failed={} rejected={} requests={}",
                d.name, d.received, d.delivered, d.truncated, d.retried, d.failed, d.rejected, d.requests
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn line_sets_merge_and_answer_intersections() {
        let mut set = LineSet::default();
        set.insert(10..20);
        set.insert(30..40);
        set.insert(15..32);
        set.insert(0..0);
        assert_eq!((set.ranges.len(), set.ranges[0].clone()), (1, 10..40));
        set.insert(40..45);
        set.insert(50..51);
        assert_eq!(set.ranges, [10..45, 50..51]);
        assert_eq!(set.len(), 36);
        assert!(set.intersects(&(44..50)));
        assert!(!set.intersects(&(45..50)));
        assert!(!set.intersects(&(0..10)));
        assert!(set.intersects(&(50..60)));
    }

    #[test]
    fn units_are_complete_only_when_no_line_of_theirs_failed_anywhere() {
        let mut ledger = Ledger {
            lines: 30,
            unit_starts: vec![0, 10, 20],
            ..Ledger::default()
        };
        ledger.failed.insert(12..13);
        ledger.rejected.insert(12..14);
        assert!(ledger.unit_complete(0));
        assert!(!ledger.unit_complete(1));
        assert!(ledger.unit_complete(2));
        assert_eq!(ledger.failed_lines(), 2);
        assert_eq!(ledger.retryable_lines(), 1);
    }

    #[test]
    fn emf_is_one_json_line_with_every_count() {
        let ledger = Ledger {
            destinations: vec![DestinationLedger {
                name: "otlp",
                received: 3,
                delivered: 2,
                failed: 1,
                ..DestinationLedger::default()
            }],
            lines: 3,
            ..Ledger::default()
        };
        let line = ledger.emf_line(5);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["Delivered.otlp"], 2);
        assert_eq!(v["Failed.otlp"], 1);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "tracehose");
        let names = v["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap();
        assert!(names.iter().all(|m| v.get(m["Name"].as_str().unwrap()).is_some()));
    }
}
