//! `--to destinations`: each object's records decoded, correlated and shipped through the configured
//! destinations exactly as live data. An object is read in segments, each one call of the delivery stage:
//! its ledger says which lines (records) were delivered, so the checkpoint advances over confirmed lines
//! only, and a large object resumes from inside.
//!
//! Every worker shares the run's one pipeline, taken for the length of a segment, as `process` and a warm
//! Lambda keep one: correlation state is bounded once (not once per worker), and lines of one invocation
//! backed up in two objects still join. Workers overlap fetching and waiting for ledgers, not parsing.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use crate::deliver::{DeliveryError, DeliverySetup, DeliverySink, Ledger};
use crate::input::{split_input, Shape};
use crate::pipeline::{count_input_error, Pipeline, UnitOutcome};
use crate::summary::Summary;

use super::checkpoint::Position;
use super::progress::Stats;
use super::read::{ChunkError, ObjectReader};
use super::{Body, Ctx, ObjectEnd, ReplayError};

/// Records per segment (`TRACEHOSE_REPLAY_SEGMENT_RECORDS`): a ledger (and a checkpoint step) at least this
/// often, and one round trip's pause per segment, small against the time the segment takes.
pub const SEGMENT_RECORDS: usize = 20_000;
/// Inflated bytes per segment, for objects of few, large records.
const SEGMENT_BYTES: usize = 64 << 20;

/// What the pipeline's thread keeps from one segment to the next.
struct Reading {
    body: Option<Body>,
    reader: Option<ObjectReader<std::io::BufReader<super::read::ChannelReader>>>,
    chunk: Vec<u8>,
    ended: bool,
}

#[derive(Debug, Default)]
struct Segment {
    /// The line of each unit handed to the sink, in order (the ledger's units).
    unit_lines: Vec<u64>,
    /// Lines read in this segment, and whether each could be read whole.
    lines: Vec<(u64, bool)>,
    summary: Summary,
    /// The line a destination or the object itself stopped at.
    stopped: Option<(u64, String)>,
}

/// Replays one object.
pub(super) async fn replay_object(
    ctx: &Arc<Ctx>,
    setup: &DeliverySetup,
    key: &str,
    summary: &mut Summary,
    ledger_total: &mut Ledger,
) -> Result<ObjectEnd, ReplayError> {
    let body = super::open_object(ctx, key).await?;
    let mut position = ctx.position(key);
    let mut complete = true;
    let mut reading = Reading {
        body: Some(body),
        reader: None,
        chunk: Vec::new(),
        ended: false,
    };
    loop {
        let deadline = Instant::now() + setup.timeout;
        let worker = Arc::clone(ctx);
        let object_key = key.to_owned();
        let skip = position.clone();
        let report = |message: String| ctx.report(&format!("{}: {message}", ctx.name(key)));
        let delivered = setup
            .destinations
            .deliver(&setup.client, deadline, report, move |sink| {
                let segment = produce_segment(&worker, &object_key, &mut reading, &skip, sink);
                (reading, segment)
            })
            .await;
        let ((back, mut segment), ledger) = match delivered {
            Ok(delivered) => delivered,
            Err(err) => return Err(stage_error(key, &position, err)),
        };
        reading = back;
        segment.summary.apply_ledger(&ledger);
        super::add_summary(summary, &segment.summary);
        super::add_ledger(ledger_total, &ledger);
        let judged = judge(&segment, &ledger, &mut position);
        complete &= judged.complete;
        Stats::add(&ctx.stats.records, segment.unit_lines.len() as u64);
        ctx.progress.update(&ctx.stats);
        ctx.record_position(key, &position)?;
        let transient = judged
            .transient_line
            .map(|line| (line, "a destination did not confirm it".to_owned()));
        if let Some((line, detail)) = segment.stopped.or(transient) {
            return Err(ReplayError::NotDone {
                object: ctx.name(key),
                line,
                detail,
            });
        }
        if reading.ended {
            return Ok(ObjectEnd { complete });
        }
    }
}

fn stage_error(key: &str, position: &Position, err: io::Error) -> ReplayError {
    ReplayError::NotDone {
        object: key.to_owned(),
        line: position.next,
        detail: format!("the delivery stage failed: {err}"),
    }
}

struct Judged {
    complete: bool,
    /// The first line a destination failed transiently.
    transient_line: Option<u64>,
}

/// Confirms every line of the segment that no destination failed transiently: delivered, or refused for
/// good or unreadable (both reported and counted; such lines make the object incomplete, so it is kept).
fn judge(segment: &Segment, ledger: &Ledger, position: &mut Position) -> Judged {
    let mut transient = std::collections::BTreeSet::new();
    let mut refused = std::collections::BTreeSet::new();
    for (i, &line) in segment.unit_lines.iter().enumerate() {
        let Some(&start) = ledger.unit_starts.get(i) else {
            continue;
        };
        let end = ledger.unit_starts.get(i + 1).copied().unwrap_or(ledger.lines);
        if ledger.failed.intersects(&(start..end)) {
            transient.insert(line);
        } else if ledger.rejected.intersects(&(start..end)) {
            refused.insert(line);
        }
    }
    let stopped_at = segment.stopped.as_ref().map(|(line, _)| *line);
    let mut complete = true;
    for &(line, readable) in &segment.lines {
        if transient.contains(&line) || stopped_at.is_some_and(|s| line >= s) {
            continue;
        }
        complete &= readable && !refused.contains(&line);
        position.confirm(line);
    }
    Judged {
        complete: complete && transient.is_empty() && stopped_at.is_none(),
        transient_line: transient.first().copied(),
    }
}

/// Reads up to a segment's worth of lines into the sink, on the pipeline's thread.
fn produce_segment(
    ctx: &Ctx,
    key: &str,
    reading: &mut Reading,
    skip: &Position,
    sink: &mut DeliverySink,
) -> Segment {
    let mut segment = Segment::default();
    let name = ctx.name(key);
    let mut report = |message: String| ctx.report(&format!("{name} {message}"));
    let reader = match (&mut reading.reader, reading.body.take()) {
        (Some(reader), _) => reader,
        (None, Some(body)) => match ObjectReader::from_channel(body, ctx.limits.max_decompressed_bytes) {
            Ok(reader) => reading.reader.insert(reader),
            Err(err) => {
                reading.ended = true;
                segment.stopped = Some((1, format!("reading the object failed: {err}")));
                return segment;
            }
        },
        (None, None) => {
            reading.ended = true;
            return segment;
        }
    };
    let mut pipeline = ctx
        .pipeline
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut bytes = 0;
    while segment.unit_lines.len() < ctx.segment_records && bytes < SEGMENT_BYTES {
        let line = match reader.next_chunk(&mut reading.chunk) {
            None => {
                reading.ended = true;
                break;
            }
            Some(Ok(line)) => line,
            Some(Err(ChunkError::Io(err))) => {
                // S3 stopped sending: nothing is wrong with the data, a later run reads it again.
                let line = skip.next.max(segment.lines.last().map_or(0, |l| l.0 + 1));
                segment.stopped = Some((line, format!("reading the object failed: {err}")));
                reading.ended = true;
                break;
            }
            Some(Err(err)) => {
                let line = match &err {
                    ChunkError::TooLarge { line, .. } | ChunkError::Gzip { line, .. } => *line,
                    _ => segment.lines.last().map_or(1, |l| l.0 + 1),
                };
                report(format!("line {line}: {err}"));
                segment.summary.failed_records += 1;
                Stats::add(&ctx.stats.failed_records, 1);
                segment.lines.push((line, false));
                continue;
            }
        };
        if skip.is_confirmed(line) {
            Stats::add(&ctx.stats.records_resumed, 1);
            continue;
        }
        bytes += reading.chunk.len();
        if reading.chunk.iter().all(u8::is_ascii_whitespace) {
            segment.lines.push((line, true));
            continue;
        }
        let readable = process_line(
            ctx,
            &reading.chunk,
            line,
            &mut pipeline,
            sink,
            &mut segment,
            &mut report,
        );
        match readable {
            Ok(readable) => segment.lines.push((line, readable)),
            Err(err) => {
                segment.stopped = Some((line, err.to_string()));
                break;
            }
        }
    }
    segment
}

/// One line's units through the pipeline; `Ok(false)` when part of it could not be read (reported).
fn process_line(
    ctx: &Ctx,
    chunk: &[u8],
    line: u64,
    pipeline: &mut Pipeline,
    sink: &mut DeliverySink,
    segment: &mut Segment,
    report: &mut dyn FnMut(String),
) -> Result<bool, DeliveryError> {
    let limits = *pipeline.limits();
    let mut readable = true;
    let mut stopped = None;
    let mut at_line = |message: String| report(format!("line {line}: {message}"));
    split_input(chunk, &limits, |item| {
        if stopped.is_some() {
            return;
        }
        let unit = match item {
            Ok(unit) => unit,
            Err(err) => {
                count_input_error(&err, &mut segment.summary);
                Stats::add(&ctx.stats.failed_records, 1);
                at_line(err.to_string());
                readable = false;
                return;
            }
        };
        if unit.shape == Shape::BackupRecord {
            if let Some(id) = &unit.record_id {
                if !ctx.dedup.first_time(id) {
                    Stats::add(&ctx.stats.duplicates, 1);
                    return;
                }
            }
        }
        sink.begin_unit();
        segment.unit_lines.push(line);
        match pipeline.process_unit(unit, sink, &mut segment.summary, &mut at_line) {
            Ok(UnitOutcome::Complete) => {}
            Ok(UnitOutcome::Incomplete) => {
                Stats::add(&ctx.stats.failed_records, 1);
                readable = false;
            }
            Err(err) => stopped = Some(err),
        }
    });
    stopped.map_or(Ok(readable), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lines_no_destination_failed_transiently_are_confirmed() {
        // Lines 1-4; line 2 holds units 1 and 2; line 4 could not be read.
        let segment = Segment {
            unit_lines: vec![1, 2, 2, 3],
            lines: vec![(1, true), (2, true), (3, true), (4, false)],
            ..Segment::default()
        };
        let mut ledger = Ledger {
            lines: 8,
            unit_starts: vec![0, 2, 4, 6],
            ..Ledger::default()
        };
        ledger.failed.insert(5..6);
        let mut position = Position::default();
        let judged = judge(&segment, &ledger, &mut position);
        assert_eq!(judged.transient_line, Some(2));
        assert!(!judged.complete);
        assert_eq!(position.next, 2);
        assert!(position.is_confirmed(3) && position.is_confirmed(4) && !position.is_confirmed(2));

        // Refused for good: confirmed (reported), but the object is not complete, so it is kept.
        let mut ledger = Ledger {
            lines: 8,
            unit_starts: vec![0, 2, 4, 6],
            ..Ledger::default()
        };
        ledger.rejected.insert(7..8);
        let segment = Segment {
            lines: vec![(1, true), (2, true), (3, true)],
            ..segment
        };
        let mut position = Position::default();
        let judged = judge(&segment, &ledger, &mut position);
        assert_eq!(
            (judged.transient_line, judged.complete, position.next),
            (None, false, 4)
        );
    }
}
