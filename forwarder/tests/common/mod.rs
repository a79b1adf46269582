//! Helpers the integration tests share: encoding inputs as AWS sends them, and the accounting invariant every
//! run must keep.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;

use base64::Engine as _;
use flate2::write::GzEncoder;
use flate2::Compression;
use tracehose_forwarder::summary::Summary;

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Every received event ends in exactly one outcome (docs/architecture.md: nothing is lost silently).
pub fn assert_every_event_counted(summary: &Summary, context: &str) {
    assert_eq!(
        summary.events_in,
        summary.delivered
            + summary.filtered
            + summary.control_messages
            + summary.failed_events
            + summary.rejected_events
            + summary.invalid_events,
        "{context}: every event ends in exactly one outcome: {summary}"
    );
}
