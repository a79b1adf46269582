//! `--to destinations`: each object's records decoded, correlated and shipped through the configured
//! destinations exactly as live data. An object is read in segments, each one call of the delivery stage:
//! its ledger says which lines (records) were delivered, so the checkpoint advances over confirmed lines
//! only, and a large object resumes from inside.
//!
//! Every worker shares the run's one pipeline, taken for the length of a segment, as `process` and a warm
//! Lambda keep one: correlation state is bounded once (not once per worker), and lines of one invocation
//! backed up in two objects still join. Workers overlap fetching and waiting for ledgers, not parsing.
//!
//! Each object has one decompression budget (`TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES`) for its own gzip and
//! its records' together, checked before each line, and each segment the delivery stage's deadline. The
//! shared pipeline's per-input budget ([`Pipeline::begin_input`]) is not used: workers take the pipeline in
//! turn, segment by segment, so it would mix objects. An object stopped by its budget or deadline is not
//! done: the line it stopped at is not confirmed, so a re-run with a larger budget resumes there.

use std::collections::BTreeSet;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use crate::deliver::{DeliveryError, DeliverySetup, DeliverySink, Ledger};
use crate::input::{split_input, Budget, Clock, Shape, Stop};
use crate::pipeline::{count_input_error, Pipeline, UnitOutcome, UnitWork};
use crate::summary::Summary;

use super::checkpoint::Identity;
use super::position::Standing;
use super::progress::Stats;
use super::read::{Chunk, ChunkError, ObjectReader};
use super::{Body, Ctx, ObjectEnd, Pass, ReplayError};

/// Records per segment (`TRACEHOSE_REPLAY_SEGMENT_RECORDS`): a ledger (and a checkpoint step) at least this
/// often, and one round trip's pause per segment, small against the time the segment takes.
pub const SEGMENT_RECORDS: usize = 20_000;
/// Inflated bytes per segment, for objects of few, large records.
const SEGMENT_BYTES: usize = 64 << 20;
/// Lines per segment, whatever they hold: lines with no record in them (blank, duplicates, unreadable) end
/// a segment too, so that a checkpoint step comes at least this often and a segment's time is bounded.
pub const SEGMENT_LINES: u64 = 1 << 20;

/// What the pipeline's thread keeps from one segment to the next.
struct Reading {
    body: Option<Body>,
    reader: Option<ObjectReader<std::io::BufReader<Body>>>,
    chunk: Vec<u8>,
    /// The reader reached the object's end, or stopped.
    ended: bool,
    /// Lines read past because an earlier run had confirmed them.
    resumed: u64,
}

#[derive(Debug, Default)]
struct Segment {
    /// The line of each unit handed to the sink, in order (the ledger's units).
    unit_lines: Vec<u64>,
    /// Lines this segment handled, as runs of consecutive lines (those read past as confirmed break them).
    handled: Vec<(u64, u64)>,
    /// Handled lines that could not be read whole (each reported where it was met).
    unreadable: u64,
    summary: Summary,
    /// The line a destination or the object itself stopped at.
    stopped: Option<(u64, String)>,
    /// The object's last line, when the segment read to its end.
    last_line: Option<u64>,
}

impl Segment {
    fn handle(&mut self, line: u64, readable: bool) {
        self.handle_run(line, line);
        if !readable {
            self.unreadable += 1;
        }
    }

    fn handle_run(&mut self, first: u64, last: u64) {
        match self.handled.last_mut() {
            Some((_, end)) if *end + 1 == first => *end = last,
            _ => self.handled.push((first, last)),
        }
    }
}

/// Replays one object: a pass from its start, and a second one if the checkpoint proved not to fit it.
pub(super) async fn replay_object(
    ctx: &Arc<Ctx>,
    setup: &DeliverySetup,
    key: &str,
    summary: &mut Summary,
    ledger_total: &mut Ledger,
) -> Result<ObjectEnd, ReplayError> {
    let (mut body, object, mut standing) = ctx.begin(key).await?;
    let mut complete = true;
    loop {
        let pass = replay_pass(
            ctx,
            setup,
            key,
            &object,
            body,
            &mut standing,
            summary,
            ledger_total,
        )
        .await?;
        complete &= pass.complete;
        if !ctx.restart_past_end(key, &object, &mut standing, &pass)? {
            break;
        }
        body = ctx.reopen(key, &object, &standing).await?;
    }
    Ok(ObjectEnd {
        complete,
        resumed: standing.resumed(),
        object,
    })
}

#[allow(clippy::too_many_arguments)]
async fn replay_pass(
    ctx: &Arc<Ctx>,
    setup: &DeliverySetup,
    key: &str,
    object: &Identity,
    body: Body,
    standing: &mut Standing,
    summary: &mut Summary,
    ledger_total: &mut Ledger,
) -> Result<Pass, ReplayError> {
    let mut complete = true;
    let mut reading = Reading {
        body: Some(body),
        reader: None,
        chunk: Vec::new(),
        ended: false,
        resumed: 0,
    };
    loop {
        let deadline = Instant::now() + setup.timeout;
        let worker = Arc::clone(ctx);
        let object_key = key.to_owned();
        let skip = standing.clone();
        let report = |message: String| ctx.report(&format!("{}: {message}", ctx.name(key)));
        let delivered = setup
            .destinations
            .deliver(&setup.client, deadline, report, move |sink| {
                let clock = Clock::new(Some(deadline));
                let segment = produce_segment(&worker, &object_key, &mut reading, &skip, clock, sink);
                (reading, segment)
            })
            .await;
        let ((back, mut segment), ledger) = match delivered {
            Ok(delivered) => delivered,
            Err(err) => return Err(stage_error(ctx, key, standing, err)),
        };
        reading = back;
        segment.summary.apply_ledger(&ledger);
        super::add_summary(summary, &segment.summary);
        super::add_ledger(ledger_total, &ledger);
        let judged = judge(&segment, &ledger, standing);
        complete &= judged.complete;
        Stats::add(&ctx.stats.records, segment.unit_lines.len() as u64);
        ctx.progress.update(&ctx.stats);
        ctx.record_position(key, object, standing)?;
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
        if let Some(last_line) = segment.last_line {
            return Ok(Pass {
                complete,
                last_line,
                resumed: reading.resumed,
            });
        }
        if reading.ended {
            // Ended without reaching the object's end or stopping: cannot happen, but never call it done.
            return Err(ReplayError::NotDone {
                object: ctx.name(key),
                line: standing.next(),
                detail: "reading ended before the object's end".to_owned(),
            });
        }
    }
}

fn stage_error(ctx: &Ctx, key: &str, standing: &Standing, err: io::Error) -> ReplayError {
    ReplayError::NotDone {
        object: ctx.name(key),
        line: standing.next(),
        detail: format!("the delivery stage failed: {err}"),
    }
}

struct Judged {
    complete: bool,
    /// The first line a destination failed transiently.
    transient_line: Option<u64>,
}

/// Confirms every line of the segment that no destination failed transiently: delivered, without a record
/// (blank, duplicates), or refused for good or unreadable (both reported and counted; such lines make the
/// object incomplete, so it is kept). Costs one step per unit and per run of lines, not per line.
fn judge(segment: &Segment, ledger: &Ledger, standing: &mut Standing) -> Judged {
    let mut transient = BTreeSet::new();
    let mut refused = false;
    for (i, &line) in segment.unit_lines.iter().enumerate() {
        let Some(&start) = ledger.unit_starts.get(i) else {
            continue;
        };
        let end = ledger.unit_starts.get(i + 1).copied().unwrap_or(ledger.lines);
        if ledger.failed.intersects(&(start..end)) {
            transient.insert(line);
        } else if ledger.rejected.intersects(&(start..end)) {
            refused = true;
        }
    }
    let stopped_at = segment.stopped.as_ref().map(|(line, _)| *line);
    for &(first, last) in &segment.handled {
        let last = match stopped_at {
            Some(stop) if stop <= first => continue,
            Some(stop) => last.min(stop - 1),
            None => last,
        };
        let mut from = first;
        for &line in transient.range(first..=last) {
            if line > from {
                standing.confirm_range(from, line - 1);
            }
            from = line + 1;
        }
        if from <= last {
            standing.confirm_range(from, last);
        }
    }
    Judged {
        complete: segment.unreadable == 0 && !refused && transient.is_empty() && stopped_at.is_none(),
        transient_line: transient.first().copied(),
    }
}

/// Reads up to a segment's worth of lines into the sink, on the pipeline's thread, until `clock` stops.
fn produce_segment(
    ctx: &Ctx,
    key: &str,
    reading: &mut Reading,
    skip: &Standing,
    clock: Clock,
    sink: &mut DeliverySink,
) -> Segment {
    let mut segment = Segment::default();
    let name = ctx.name(key);
    let mut report = |message: String| ctx.report(&format!("{name} {message}"));
    let reader = match (&mut reading.reader, reading.body.take()) {
        (Some(reader), _) => reader,
        (None, Some(body)) => match ObjectReader::from_channel(
            body,
            ctx.limits.max_decompressed_bytes,
            Budget::for_input(&ctx.limits, Clock::default()),
        ) {
            Ok(reader) => reading.reader.insert(reader),
            Err(err) => {
                reading.ended = true;
                segment.stopped = Some((skip.next(), format!("reading the object failed: {err}")));
                return segment;
            }
        },
        (None, None) => {
            reading.ended = true;
            return segment;
        }
    };
    reader.budget_mut().set_clock(clock);
    let mut pipeline = ctx
        .pipeline
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut bytes = 0;
    let mut lines = 0;
    // Past the last line a checkpoint confirmed, runs of empty lines are taken whole.
    let skip_ends = skip.last_line();
    while segment.unit_lines.len() < ctx.segment_records && bytes < SEGMENT_BYTES && lines < SEGMENT_LINES {
        if let Err(stop) = reader.budget_mut().check() {
            segment.stopped = Some((reader.lines_read() + 1, over_budget(ctx, stop)));
            reading.ended = true;
            break;
        }
        let max_empty = if reader.lines_read() >= skip_ends {
            SEGMENT_LINES - lines
        } else {
            0
        };
        let (line, failure) = match reader.next_run(&mut reading.chunk, max_empty) {
            None => {
                reading.ended = true;
                segment.last_line = Some(reader.lines_read());
                break;
            }
            Some(Ok(Chunk::Line(line))) => (line, None),
            // Blank lines carry nothing: counted and confirmed with their neighbours, nothing kept per line.
            Some(Ok(Chunk::Empty { first, last })) => {
                lines += last - first + 1;
                Stats::add(&ctx.stats.blank_lines, last - first + 1);
                segment.handle_run(first, last);
                continue;
            }
            Some(Err(err)) => match err.line() {
                Some(line) => (line, Some(err)),
                None => {
                    // S3 stopped sending, or the object's budget or deadline ran out while it was inflated:
                    // nothing is wrong with the data, a later run reads it again.
                    let detail = match err {
                        ChunkError::Stopped(stop) => over_budget(ctx, stop),
                        err => err.to_string(),
                    };
                    segment.stopped = Some((reader.lines_read() + 1, detail));
                    reading.ended = true;
                    break;
                }
            },
        };
        lines += 1;
        if skip.skips(line) {
            if skip.resumes(line) {
                reading.resumed += 1;
                Stats::add(&ctx.stats.records_resumed, 1);
            }
            continue;
        }
        if let Some(err) = failure {
            report(format!("line {line}: {err}"));
            segment.summary.failed_records += 1;
            Stats::add(&ctx.stats.failed_records, 1);
            segment.handle(line, false);
            continue;
        }
        if reading.chunk.iter().all(u8::is_ascii_whitespace) {
            Stats::add(&ctx.stats.blank_lines, 1);
            segment.handle(line, true);
            continue;
        }
        bytes += reading.chunk.len();
        let readable = process_line(
            ctx,
            &reading.chunk,
            line,
            &mut pipeline,
            reader.budget_mut(),
            sink,
            &mut segment,
            &mut report,
        );
        // A line whose records spent the budget, or that ended past the deadline (its last windows not
        // sent), is not confirmed: a re-run reads it again whole, at worst sending some of it twice.
        if let Err(stop) = reader.budget_mut().check() {
            segment.stopped = Some((line, over_budget(ctx, stop)));
            reading.ended = true;
            break;
        }
        match readable {
            Ok(readable) => segment.handle(line, readable),
            Err(err) => {
                segment.stopped = Some((line, err.to_string()));
                break;
            }
        }
    }
    segment
}

/// Counts an object stopped by its budget or deadline, and says why, naming the variable to raise.
fn over_budget(ctx: &Ctx, stop: Stop) -> String {
    Stats::add(&ctx.stats.objects_over_budget, 1);
    stop.to_string()
}

/// One line's units through the pipeline, their inflation drawn from `budget`; `Ok(false)` when part of it
/// could not be read (reported).
#[allow(clippy::too_many_arguments)]
fn process_line(
    ctx: &Ctx,
    chunk: &[u8],
    line: u64,
    pipeline: &mut Pipeline,
    budget: &mut Budget,
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
        let work = UnitWork::decode(unit, Arc::default(), &limits, budget);
        match work.run(&mut *pipeline, sink, &mut segment.summary, &mut at_line) {
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
    use crate::replay::position::Position;

    #[test]
    fn only_lines_no_destination_failed_transiently_are_confirmed() {
        // Lines 1-4; line 2 holds units 1 and 2; line 4 could not be read.
        let segment = Segment {
            unit_lines: vec![1, 2, 2, 3],
            handled: vec![(1, 4)],
            unreadable: 1,
            ..Segment::default()
        };
        let mut ledger = Ledger {
            lines: 8,
            unit_starts: vec![0, 2, 4, 6],
            ..Ledger::default()
        };
        ledger.failed.insert(5..6);
        let mut standing = Standing::default();
        let judged = judge(&segment, &ledger, &mut standing);
        assert_eq!(judged.transient_line, Some(2));
        assert!(!judged.complete);
        assert_eq!(standing.next(), 2);
        assert!(standing.skips(3) && standing.skips(4) && !standing.skips(2));

        // Refused for good: confirmed (reported), but the object is not complete, so it is kept.
        let mut ledger = Ledger {
            lines: 8,
            unit_starts: vec![0, 2, 4, 6],
            ..Ledger::default()
        };
        ledger.rejected.insert(7..8);
        let segment = Segment {
            handled: vec![(1, 3)],
            unreadable: 0,
            ..segment
        };
        let mut standing = Standing::default();
        let judged = judge(&segment, &ledger, &mut standing);
        assert_eq!(
            (judged.transient_line, judged.complete, standing.next()),
            (None, false, 4)
        );
    }

    #[test]
    fn a_segment_of_blank_lines_holds_one_run_and_confirms_it_whole() {
        // A million blank lines between two records, a failed unit on the first record: the segment holds
        // one run, and what is confirmed after the failed line is one range, not a million lines.
        let mut segment = Segment::default();
        segment.unit_lines.push(1);
        for line in 1..=1_000_002 {
            segment.handle(line, true);
        }
        segment.unit_lines.push(1_000_002);
        assert_eq!(segment.handled, [(1, 1_000_002)]);
        let mut ledger = Ledger {
            lines: 2,
            unit_starts: vec![0, 1],
            ..Ledger::default()
        };
        ledger.failed.insert(0..1);
        let mut standing = Standing::default();
        let judged = judge(&segment, &ledger, &mut standing);
        assert_eq!(judged.transient_line, Some(1));
        let position = standing.position();
        assert_eq!(
            (position.next, position.gaps(), position.last_line()),
            (1, 1, 1_000_002)
        );
    }

    #[test]
    fn lines_read_past_as_confirmed_break_runs_and_are_not_confirmed_again() {
        let mut earlier = Position::default();
        earlier.confirm(3);
        let mut segment = Segment::default();
        for line in [1, 2, 4, 5] {
            segment.handle(line, true);
        }
        assert_eq!(segment.handled, [(1, 2), (4, 5)]);
        let mut standing = Standing::new(earlier);
        judge(&segment, &Ledger::default(), &mut standing);
        // Dropping the earlier run's line leaves exactly what this run confirmed.
        standing.forget_earlier();
        assert!(standing.skips(2) && !standing.skips(3) && standing.skips(4));
    }
}
