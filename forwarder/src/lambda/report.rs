//! What every invocation prints, whatever its event: the summary and the delivery ledger on stderr, and the
//! same ledger as one line of CloudWatch Embedded Metric Format on stdout (where Lambda's own log group
//! turns it into metrics). Every face adds its counts to one [`Tally`]; the handler prints it once, after
//! the face is done, so no face can forget it and an invocation that delivered nothing still says so.

use std::io::{self, Write};

use crate::deliver::Ledger;
use crate::replay::{add_ledger, add_summary};
use crate::summary::Summary;

/// The counts of one invocation, over every delivery call it made (an S3 notification may name several
/// objects; a function URL request is one call).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub summary: Summary,
    pub ledger: Ledger,
}

impl Tally {
    /// Adds one delivery call's counts: `summary` with that call's ledger already applied to it.
    pub fn add(&mut self, summary: &Summary, ledger: &Ledger) {
        add_summary(&mut self.summary, summary);
        add_ledger(&mut self.ledger, ledger);
    }

    /// The summary and ledger lines to `err`, then the EMF line to `out` when `emf` is on.
    pub fn print(
        &self,
        emf: bool,
        now_ms: i64,
        err: &mut impl Write,
        out: &mut impl Write,
    ) -> io::Result<()> {
        crate::process::print_summary(err, &self.summary)?;
        crate::process::write_line(err, format_args!("tracehose: delivery {}", self.ledger))?;
        err.flush()?;
        if emf {
            writeln!(out, "{}", self.ledger.emf_line(now_ms))?;
            out.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::deliver::DestinationLedger;

    fn call(delivered: u64, failed: u64) -> (Summary, Ledger) {
        let summary = Summary {
            events_in: delivered + failed,
            delivered,
            failed_events: failed,
            ..Summary::default()
        };
        let ledger = Ledger {
            lines: delivered + failed,
            destinations: vec![DestinationLedger {
                name: "otlp",
                received: delivered + failed,
                delivered,
                failed,
                requests: 1,
                ..DestinationLedger::default()
            }],
            ..Ledger::default()
        };
        (summary, ledger)
    }

    #[test]
    fn calls_add_up_and_print_three_lines() {
        let mut tally = Tally::default();
        for (delivered, failed) in [(3, 1), (5, 0)] {
            let (summary, ledger) = call(delivered, failed);
            tally.add(&summary, &ledger);
        }
        let (mut err, mut out) = (Vec::new(), Vec::new());
        tally.print(true, 7, &mut err, &mut out).unwrap();
        let err = String::from_utf8(err).unwrap();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(
            lines[0].starts_with("tracehose: summary events_in=9 delivered=8 "),
            "{err}"
        );
        assert!(
            lines[1].starts_with("tracehose: delivery lines=9 filtered=0 | otlp: received=9 delivered=8"),
            "{err}"
        );
        let emf: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            (emf["Delivered.otlp"].as_u64(), emf["Failed.otlp"].as_u64()),
            (Some(8), Some(1))
        );
        assert_eq!(emf["_aws"]["Timestamp"], 7);
    }

    #[test]
    fn nothing_delivered_is_still_said_and_emf_can_be_off() {
        let (mut err, mut out) = (Vec::new(), Vec::new());
        Tally::default().print(false, 0, &mut err, &mut out).unwrap();
        let err = String::from_utf8(err).unwrap();
        assert!(err.contains("tracehose: summary events_in=0 "), "{err}");
        assert!(err.contains("tracehose: delivery lines=0 filtered=0\n"), "{err}");
        assert!(out.is_empty());
    }
}
