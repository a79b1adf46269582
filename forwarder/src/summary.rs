//! Counts every outcome, so nothing is lost silently: each received log event ends delivered, skipped as a
//! control message, or failed (DESIGN.md).

use std::fmt;

use crate::record::Join;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Log events received in decodable payloads, control messages included.
    pub events_in: u64,
    pub delivered: u64,
    pub control_messages: u64,
    /// Events of decodable payloads that could not be delivered.
    pub failed_events: u64,
    /// Records (Firehose records, backup lines, objects) that could not be decoded: their event count is
    /// unknowable.
    pub failed_records: u64,
    pub own_trace: u64,
    pub joined_marker: u64,
    pub joined_invocation: u64,
    pub joined_xray: u64,
    pub no_trace: u64,
}

impl Summary {
    pub fn count_join(&mut self, join: Option<Join>) {
        match join {
            Some(Join::Line) => self.own_trace += 1,
            Some(Join::Marker) => self.joined_marker += 1,
            Some(Join::Invocation) => self.joined_invocation += 1,
            Some(Join::Xray) => self.joined_xray += 1,
            None => self.no_trace += 1,
        }
    }

    pub fn joined(&self) -> u64 {
        self.joined_marker + self.joined_invocation + self.joined_xray
    }

    pub fn has_failures(&self) -> bool {
        self.failed_events > 0 || self.failed_records > 0
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "events_in={} delivered={} control_messages={} failed_events={} failed_records={} \
             own_trace={} joined={} (marker={} invocation={} xray={}) no_trace={}",
            self.events_in,
            self.delivered,
            self.control_messages,
            self.failed_events,
            self.failed_records,
            self.own_trace,
            self.joined(),
            self.joined_marker,
            self.joined_invocation,
            self.joined_xray,
            self.no_trace
        )
    }
}
