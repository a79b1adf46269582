//! `tracehose process`: files or stdin through the pipeline to NDJSON on stdout, a summary on stderr.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::input::{split_input, InputError, Unit};
use crate::limits::Limits;
use crate::output::ndjson::NdjsonSink;
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

/// Runs every input (`-` is stdin) through one pipeline, so that state crosses files as it crosses
/// deliveries of a warm Lambda. Errors are reported through `report` as they happen; the rest goes on.
/// Returns the summary, with the write error to stdout that ended the run early, if one did (a closed pipe
/// ends the run): the summary is worth printing either way.
pub fn run(
    inputs: &[PathBuf],
    limits: Limits,
    report: &mut dyn FnMut(String),
) -> (Summary, Option<io::Error>) {
    let stdout = io::stdout();
    let mut sink = NdjsonSink::new(BufWriter::with_capacity(1 << 16, stdout.lock()));
    let mut pipeline = Pipeline::new(limits);
    let mut summary = Summary::default();
    let mut flushed = summary;
    let default_inputs = [PathBuf::from("-")];
    let inputs = if inputs.is_empty() {
        &default_inputs[..]
    } else {
        inputs
    };
    for path in inputs {
        let name = path.display().to_string();
        let bytes = match read_input(path, limits.max_input_bytes) {
            Ok(bytes) => bytes,
            Err(err) => {
                summary.failed_records += 1;
                report(format!("{name}: {err}"));
                continue;
            }
        };
        // Records count as delivered only once they left the buffer: after a write error, everything since
        // the last successful flush is taken back as failed.
        let written = process_bytes(&bytes, &name, &mut pipeline, &mut sink, &mut summary, report);
        if let Err(err) = written.and_then(|()| sink.flush()) {
            summary.undeliver_since(&flushed);
            return (summary, Some(err));
        }
        flushed = summary;
    }
    (summary, None)
}

fn read_input(path: &Path, limit: usize) -> Result<Vec<u8>, ReadError> {
    if path.as_os_str() == "-" {
        read_capped(io::stdin().lock(), limit)
    } else {
        read_capped(File::open(path)?, limit)
    }
}

/// One input's bytes through the pipeline. Decoding problems are reported and counted; a sink error is
/// returned, since no later record could be written either.
pub fn process_bytes<S: Sink>(
    bytes: &[u8],
    name: &str,
    pipeline: &mut Pipeline,
    sink: &mut S,
    summary: &mut Summary,
    report: &mut dyn FnMut(String),
) -> Result<(), S::Error> {
    let limits = *pipeline.limits();
    let mut sink_error = None;
    split_input(bytes, &limits, |item| {
        if sink_error.is_none() {
            sink_error = process_item(item, name, pipeline, sink, summary, report).err();
        }
    });
    sink_error.map_or(Ok(()), Err)
}

/// One item of [`split_input`] through the pipeline: a unit is processed, a detection error reported and
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
    writeln!(out, "tracehose: summary {summary}")
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
