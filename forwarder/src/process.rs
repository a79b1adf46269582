//! `tracehose process`: files or stdin through the pipeline to the configured destinations (NDJSON on stdout
//! when none is configured), a summary on stderr.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use thiserror::Error;

use crate::deliver::{DeliveryError, Destinations, Ledger};
use crate::input::{Clock, Input, InputError, Unit};
use crate::limits::Limits;
use crate::output::Sink;
use crate::pipeline::{count_input_error, Pipeline, UnitOutcome};
use crate::summary::Summary;

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("cannot read: {0}")]
    Io(#[from] io::Error),
    #[error("input is larger than {limit} bytes (TRACEHOSE_MAX_INPUT_BYTES)")]
    TooLarge { limit: usize },
}

/// Reads all of `reader`, refusing more than `limit` bytes.
pub fn read_capped(reader: impl Read, limit: usize) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    // One byte past the limit proves the input is larger than allowed.
    reader
        .take((limit as u64).saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

/// What a `process` run came to.
#[derive(Debug)]
pub struct Outcome {
    pub summary: Summary,
    pub ledger: Ledger,
    /// What stopped the run early, if anything did (every destination failed, a closed stdout).
    pub stopped: Option<DeliveryError>,
}

/// Runs every input (`-` is stdin) through one pipeline into the configured destinations, so that state
/// crosses files as it crosses deliveries of a warm Lambda. Errors are reported on stderr as they happen; the
/// rest goes on. The summary counts every event, with the ledger's outcome folded in.
pub async fn run(
    inputs: Vec<PathBuf>,
    limits: Limits,
    destinations: &Destinations,
    client: &reqwest::Client,
    deadline: Instant,
) -> io::Result<Outcome> {
    let inputs = if inputs.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        inputs
    };
    let report_delivery = |message: String| eprintln!("tracehose: error: {message}");
    let telemetry = destinations.telemetry;
    let ((mut summary, stopped), ledger) = destinations
        .deliver_alone(client, deadline, report_delivery, move |sink| {
            let mut report = |message: String| eprintln!("tracehose: error: {message}");
            let mut pipeline = Pipeline::new(limits).with_telemetry(telemetry);
            let mut summary = Summary::default();
            for path in &inputs {
                let name = path.display().to_string();
                let bytes = match read_input(path, limits.max_input_bytes) {
                    Ok(bytes) => bytes,
                    Err(err) => {
                        summary.failed_records += 1;
                        report(format!("{name}: {err}"));
                        continue;
                    }
                };
                if let Err(err) = process_bytes(&bytes, &name, &mut pipeline, sink, &mut summary, &mut report)
                {
                    return (summary, Some(err));
                }
            }
            (summary, None)
        })
        .await?;
    summary.apply_ledger(&ledger);
    Ok(Outcome {
        summary,
        ledger,
        stopped,
    })
}

fn read_input(path: &Path, limit: usize) -> Result<Vec<u8>, ReadError> {
    if path.as_os_str() == "-" {
        read_capped(io::stdin().lock(), limit)
    } else {
        read_capped(File::open(path)?, limit)
    }
}

/// One input's bytes through the pipeline, its records sharing one decompression budget. Decoding problems
/// are reported and counted; a sink error is returned, since no later record could be written either.
pub fn process_bytes<S: Sink>(
    bytes: &[u8],
    name: &str,
    pipeline: &mut Pipeline,
    sink: &mut S,
    summary: &mut Summary,
    report: &mut dyn FnMut(String),
) -> Result<(), S::Error> {
    let limits = *pipeline.limits();
    pipeline.begin_input(Clock::default());
    let mut input = Input::open_within(bytes, &limits, pipeline.budget_mut());
    // Reported after the units that did come out, as `split_input` does.
    let inflate_error = input.error.take();
    let mut sink_error = None;
    let mut each = |item| {
        if sink_error.is_none() {
            sink_error = process_item(item, name, pipeline, sink, summary, report).err();
        }
    };
    input.units(&mut each);
    if let Some(err) = inflate_error {
        each(Err(err));
    }
    sink_error.map_or(Ok(()), Err)
}

/// One item of an input's units through the pipeline: a unit is processed, a detection error reported and
/// counted. Only a sink error is returned.
pub fn process_item<S: Sink>(
    item: Result<Unit<'_>, InputError>,
    name: &str,
    pipeline: &mut Pipeline,
    sink: &mut S,
    summary: &mut Summary,
    report: &mut dyn FnMut(String),
) -> Result<UnitOutcome, S::Error> {
    let mut named = |message: String| report(format!("{name}: {message}"));
    match item {
        Ok(unit) => pipeline.process_unit(unit, sink, summary, &mut named),
        Err(err) => {
            count_input_error(&err, summary);
            named(err.to_string());
            Ok(UnitOutcome::Incomplete)
        }
    }
}

/// Writes the summary line the way every face of tracehose reports it.
pub fn print_summary(out: &mut impl Write, summary: &Summary) -> io::Result<()> {
    write_line(out, format_args!("tracehose: summary {summary}"))
}

/// Writes one line in one write: stderr is unbuffered, and a line written piece by piece costs a system call
/// per piece and may be interleaved with another writer's.
pub fn write_line(out: &mut impl Write, line: std::fmt::Arguments<'_>) -> io::Result<()> {
    let mut text = line.to_string();
    text.push('\n');
    out.write_all(text.as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn caps_reads() {
        assert_eq!(read_capped(&b"abc"[..], 3).unwrap(), b"abc");
        assert!(matches!(
            read_capped(&b"abcd"[..], 3),
            Err(ReadError::TooLarge { limit: 3 })
        ));
    }
}
