//! `--to firehose:STREAM`: the original records, back into a Firehose stream with `PutRecordBatch`, in
//! batches of at most 500 records and 4 MiB (a record over 1,000 KiB can never be sent: it is reported).
//! After a partial failure only the failed entries are sent again, with backoff; several calls are in
//! flight, so that the endpoint, not the replay, sets the pace. [`batch`](super::batch) says which lines
//! the accepted records confirm.
//!
//! A backup line's `rawData` is sent as it was received, never inflated. What is inflated is the object's
//! own gzip and, on the Lambda face, each record whose replays are counted in it ([`mark_attempt`]): both
//! draw on the object's one budget (`TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES`), checked before each line;
//! once it is spent the object stops, not done, at the line that spent it.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_firehose::error::DisplayErrorContext;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use flate2::write::GzEncoder;
use flate2::Compression;
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::input::decode::{base64_decode, gunzip_within, is_gzip};
use crate::input::{split_input, Budget, Clock, Shape, Stop, UnitData};

use super::batch::{Batch, Tracker};
use super::checkpoint::Identity;
use super::destinations::SEGMENT_LINES;
use super::position::Standing;
use super::progress::Stats;
use super::read::{Chunk, ChunkError, ObjectReader};
use super::{Body, Ctx, ObjectEnd, Pass, ReplayError};

pub use super::batch::{MAX_BATCH_BYTES, MAX_BATCH_RECORDS};

pub const MAX_RECORD_BYTES: usize = 1000 << 10;
/// Attempts per entry, the first included.
const MAX_ATTEMPTS: u32 = 6;
/// The field the Lambda face adds to a record it sends back, counting its replays (see [`mark_attempt`]).
pub const ATTEMPTS_FIELD: &str = "tracehoseReplayAttempts";

/// Replays one object into `stream`, with up to `in_flight` calls at once. `mark`: the Lambda face's loop
/// guard, `Some(max)` to count replays in each record and refuse one replayed `max` times already.
pub(super) async fn replay_object(
    ctx: &Arc<Ctx>,
    client: &aws_sdk_firehose::Client,
    stream: &str,
    key: &str,
    in_flight: usize,
    mark: Option<u32>,
) -> Result<ObjectEnd, ReplayError> {
    let target = Target {
        client,
        stream,
        in_flight: in_flight.max(1),
        mark,
    };
    let (mut body, object, mut standing) = ctx.begin(key).await?;
    let mut complete = true;
    loop {
        let pass = replay_pass(ctx, &target, key, &object, body, &mut standing).await?;
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

struct Target<'a> {
    client: &'a aws_sdk_firehose::Client,
    stream: &'a str,
    in_flight: usize,
    mark: Option<u32>,
}

async fn replay_pass(
    ctx: &Arc<Ctx>,
    target: &Target<'_>,
    key: &str,
    object: &Identity,
    body: Body,
    standing: &mut Standing,
) -> Result<Pass, ReplayError> {
    let (tx, mut rx) = mpsc::channel(target.in_flight);
    let producer = {
        let (ctx, key, skip, mark) = (Arc::clone(ctx), key.to_owned(), standing.clone(), target.mark);
        tokio::task::spawn_blocking(move || produce(&ctx, &key, body, &skip, mark, &tx))
    };
    let mut tracker = Tracker::default();
    let mut sends = JoinSet::new();
    let mut open = true;
    while open || !sends.is_empty() {
        tokio::select! {
            batch = rx.recv(), if open && sends.len() < target.in_flight => match batch {
                Some(batch) => {
                    let Batch { entries, closed, .. } = batch;
                    tracker.expect(closed, standing);
                    if !entries.is_empty() {
                        let (client, stream) = (target.client.clone(), target.stream.to_owned());
                        sends.spawn(async move {
                            let (lines, records): (Vec<u64>, Vec<Vec<u8>>) = entries.into_iter().unzip();
                            (lines, put_all(&client, &stream, records).await)
                        });
                    }
                }
                None => open = false,
            },
            Some(done) = sends.join_next(), if !sends.is_empty() => {
                let (lines, results) = done.map_err(|err| ReplayError::NotDone {
                    object: ctx.name(key),
                    line: standing.next(),
                    detail: format!("a PutRecordBatch task failed: {err}"),
                })?;
                let accepted = results.iter().filter(|r| r.is_ok()).count();
                Stats::add(&ctx.stats.records, accepted as u64);
                tracker.apply(&lines, &results, standing);
            }
        }
        ctx.record_position(key, object, standing)?;
        ctx.progress.update(&ctx.stats);
    }
    let produced = producer.await.map_err(|err| ReplayError::NotDone {
        object: ctx.name(key),
        line: standing.next(),
        detail: format!("the reading thread failed: {err}"),
    })?;
    if let Some((line, detail)) = tracker.failed.first_key_value() {
        return Err(ReplayError::NotDone {
            object: ctx.name(key),
            line: *line,
            detail: format!("PutRecordBatch did not accept it after {MAX_ATTEMPTS} attempts: {detail}"),
        });
    }
    let (last_line, resumed) = produced?;
    Ok(Pass {
        complete: tracker.complete,
        last_line,
        resumed,
    })
}

/// Sends `records` in one batch, then only the entries that failed, with backoff; one result per record.
pub async fn put_all(
    client: &aws_sdk_firehose::Client,
    stream: &str,
    records: Vec<Vec<u8>>,
) -> Vec<Result<(), String>> {
    let mut results: Vec<Result<(), String>> = vec![Err("not sent".to_owned()); records.len()];
    let mut pending: Vec<usize> = (0..records.len()).collect();
    let mut last_error = String::new();
    for attempt in 0..MAX_ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt)).await;
        }
        let batch: Result<Vec<Record>, _> = pending
            .iter()
            .map(|&i| Record::builder().data(Blob::new(records[i].clone())).build())
            .collect();
        let batch = match batch {
            Ok(batch) => batch,
            Err(err) => {
                last_error = err.to_string();
                break;
            }
        };
        let sent = client
            .put_record_batch()
            .delivery_stream_name(stream)
            .set_records(Some(batch))
            .send()
            .await;
        let output = match sent {
            Ok(output) => output,
            Err(err) => {
                last_error = DisplayErrorContext(&err).to_string();
                continue;
            }
        };
        let responses = output.request_responses();
        let mut still = Vec::new();
        for (j, &i) in pending.iter().enumerate() {
            match responses.get(j) {
                Some(r) if r.error_code().is_none() => results[i] = Ok(()),
                Some(r) => {
                    last_error = format!(
                        "{}: {}",
                        r.error_code().unwrap_or_default(),
                        r.error_message().unwrap_or_default()
                    );
                    still.push(i);
                }
                None => still.push(i),
            }
        }
        pending = still;
    }
    for i in pending {
        results[i] = Err(last_error.clone());
    }
    results
}

/// 200 ms doubling, at most 6.4 s, with jitter so that the calls in flight do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let base = 200u64 << attempt.min(5);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    Duration::from_millis(base / 2 + nanos % (base / 2 + 1))
}

/// Reads the object and hands sealed batches over, on a blocking thread. Returns the object's last line and
/// the lines read past as confirmed by an earlier run, or what stopped the object when S3 did.
fn produce(
    ctx: &Ctx,
    key: &str,
    body: Body,
    skip: &Standing,
    mark: Option<u32>,
    tx: &mpsc::Sender<Batch>,
) -> Result<(u64, u64), ReplayError> {
    let name = ctx.name(key);
    let report = |line: u64, message: &str| ctx.report(&format!("{name} line {line}: {message}"));
    let not_done = |line: u64, err: &dyn std::fmt::Display| ReplayError::NotDone {
        object: name.clone(),
        line,
        detail: format!("reading the object failed: {err}"),
    };
    // Nobody waits on this thread with a deadline: PutRecordBatch has its own, per call.
    let budget = Budget::for_input(&ctx.limits, Clock::default());
    let mut reader = ObjectReader::from_channel(body, ctx.limits.max_decompressed_bytes, budget)
        .map_err(|err| not_done(skip.next(), &err))?;
    let over_budget = |line: u64, stop: Stop| {
        Stats::add(&ctx.stats.objects_over_budget, 1);
        ReplayError::NotDone {
            object: name.clone(),
            line,
            detail: stop.to_string(),
        }
    };
    let mut batch = Batch::default();
    let mut chunk = Vec::new();
    let mut resumed = 0;
    // The receiver is gone only when the object already failed: what is left of it does not matter.
    let gone = || not_done(skip.next(), &"the sending side stopped");
    // Past the last line a checkpoint confirmed, runs of empty lines are taken whole.
    let skip_ends = skip.last_line();
    loop {
        if batch.lines >= SEGMENT_LINES && tx.blocking_send(std::mem::take(&mut batch)).is_err() {
            return Err(gone());
        }
        if let Err(stop) = reader.budget_mut().check() {
            return Err(over_budget(reader.lines_read() + 1, stop));
        }
        let max_empty = if reader.lines_read() >= skip_ends {
            SEGMENT_LINES - batch.lines
        } else {
            0
        };
        let Some(next) = reader.next_run(&mut chunk, max_empty) else {
            break;
        };
        let (line, failure) = match next {
            Ok(Chunk::Line(line)) => (line, None),
            Ok(Chunk::Empty { first, last }) => {
                Stats::add(&ctx.stats.blank_lines, last - first + 1);
                batch.close_run(first, last, true);
                continue;
            }
            Err(ChunkError::Stopped(stop)) => return Err(over_budget(reader.lines_read() + 1, stop)),
            Err(err) => match err.line() {
                Some(line) => (line, Some(err)),
                None => return Err(not_done(reader.lines_read() + 1, &err)),
            },
        };
        if skip.skips(line) {
            if skip.resumes(line) {
                resumed += 1;
                Stats::add(&ctx.stats.records_resumed, 1);
            }
            continue;
        }
        if let Some(err) = failure {
            report(line, &err.to_string());
            Stats::add(&ctx.stats.failed_records, 1);
            batch.close(line, 0, false);
            continue;
        }
        if chunk.iter().all(u8::is_ascii_whitespace) {
            Stats::add(&ctx.stats.blank_lines, 1);
            batch.close(line, 0, true);
            continue;
        }
        let (records, mut readable) = records_of_line(ctx, &chunk, line, &report);
        let mut count = 0;
        for record in records {
            let record = match mark {
                Some(max) => {
                    match mark_attempt(&record, ctx.limits.max_decompressed_bytes, reader.budget_mut()) {
                        Ok((_, attempts)) if attempts > max => {
                            report(
                                line,
                                &format!("replayed {max} times already ({ATTEMPTS_FIELD}); not sent again"),
                            );
                            readable = false;
                            continue;
                        }
                        Ok((marked, _)) => marked,
                        Err(err) => {
                            report(line, &err.to_string());
                            readable = false;
                            continue;
                        }
                    }
                }
                None => record,
            };
            if record.len() > MAX_RECORD_BYTES {
                report(
                    line,
                    &format!(
                        "record of {} bytes is over Firehose's {MAX_RECORD_BYTES}-byte limit",
                        record.len()
                    ),
                );
                readable = false;
                continue;
            }
            if !batch.fits(record.len()) && tx.blocking_send(std::mem::take(&mut batch)).is_err() {
                return Err(gone());
            }
            batch.bytes += record.len();
            batch.entries.push((line, record));
            count += 1;
        }
        // Not closed, so not confirmed: a re-run with a larger budget sends the line again whole.
        if let Some(stop) = reader.budget_mut().stopped() {
            return Err(over_budget(line, stop));
        }
        if !readable {
            Stats::add(&ctx.stats.failed_records, 1);
        }
        batch.close(line, count, readable);
    }
    if (!batch.entries.is_empty() || !batch.closed.is_empty()) && tx.blocking_send(batch).is_err() {
        return Err(gone());
    }
    Ok((reader.lines_read(), resumed))
}

/// The original records a line holds: a backup line's `rawData`, decoded; a CloudWatch-to-S3 payload
/// (anything else), gzipped again as Firehose received it. Unreadable parts are reported.
fn records_of_line(ctx: &Ctx, chunk: &[u8], line: u64, report: &dyn Fn(u64, &str)) -> (Vec<Vec<u8>>, bool) {
    let mut records = Vec::new();
    let mut readable = true;
    let mut whole = false;
    split_input(chunk, &ctx.limits, |item| match item {
        Ok(unit) if unit.shape == Shape::BackupRecord => {
            if let Some(id) = &unit.record_id {
                if !ctx.dedup.first_time(id) {
                    Stats::add(&ctx.stats.duplicates, 1);
                    return;
                }
            }
            match unit.data {
                UnitData::Encoded(raw) => match base64_decode(&raw) {
                    Ok(bytes) => records.push(bytes),
                    Err(err) => {
                        report(line, &format!("{}: {err}", unit.location));
                        readable = false;
                    }
                },
                UnitData::Malformed(bad) => {
                    report(line, &format!("{}: {}", unit.location, bad.reason));
                    readable = false;
                }
                UnitData::Decoded(_) => whole = true,
            }
        }
        Ok(_) => whole = true,
        Err(err) => {
            report(line, &err.to_string());
            readable = false;
        }
    });
    if whole {
        records.push(gzip(chunk));
    }
    (records, readable)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 4), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MarkError {
    #[error("the record's gzip cannot be read: {0}")]
    Gzip(String),
}

/// Counts one more replay in a record (the Lambda face's loop guard): a subscription payload (a JSON object,
/// gzipped or not) gets `"tracehoseReplayAttempts":N` as its first key, which every reader of payloads
/// ignores as an unknown field. Returns the record to send and its new count; a record that is not a JSON
/// object is sent as it is, with a count of 1. Inflating it draws on the object's `budget`.
pub fn mark_attempt(record: &[u8], limit: usize, budget: &mut Budget) -> Result<(Vec<u8>, u32), MarkError> {
    let gzipped = is_gzip(record);
    let text = if gzipped {
        gunzip_within(record, limit, budget).map_err(|err| MarkError::Gzip(err.to_string()))?
    } else {
        record.to_vec()
    };
    let start = text.iter().take_while(|b| b.is_ascii_whitespace()).count();
    if text.get(start) != Some(&b'{') {
        return Ok((record.to_vec(), 1));
    }
    let body = &text[start + 1..];
    let prefix = format!("\"{ATTEMPTS_FIELD}\":");
    let (attempts, rest) = match body.strip_prefix(prefix.as_bytes()) {
        Some(after) => {
            let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
            let n: u32 = std::str::from_utf8(&after[..digits])
                .ok()
                .and_then(|d| d.parse().ok())
                .unwrap_or(0);
            let rest = &after[digits..];
            (n.saturating_add(1), rest.strip_prefix(b",").unwrap_or(rest))
        }
        None => (1, body),
    };
    let closes = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    let mut out = Vec::with_capacity(text.len() + 40);
    out.extend_from_slice(format!("{{{prefix}{attempts}").as_bytes());
    if !closes {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    Ok((if gzipped { gzip(&out) } else { out }, attempts))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::input::decode::gunzip_capped;

    #[test]
    fn attempts_are_counted_in_the_payload_gzipped_or_not() {
        let (once, n) = mark_attempt(
            br#"{"messageType":"DATA_MESSAGE"}"#,
            1 << 20,
            &mut Budget::default(),
        )
        .unwrap();
        assert_eq!(n, 1);
        assert_eq!(
            once,
            br#"{"tracehoseReplayAttempts":1,"messageType":"DATA_MESSAGE"}"#
        );
        let (twice, n) = mark_attempt(&gzip(&once), 1 << 20, &mut Budget::default()).unwrap();
        assert_eq!(n, 2);
        let text = gunzip_capped(&twice, 1 << 20).unwrap();
        assert_eq!(
            text,
            br#"{"tracehoseReplayAttempts":2,"messageType":"DATA_MESSAGE"}"#
        );
        assert_eq!(
            mark_attempt(b"{}", 100, &mut Budget::default()).unwrap().0,
            br#"{"tracehoseReplayAttempts":1}"#
        );
        assert_eq!(
            mark_attempt(b"bare text", 100, &mut Budget::default()).unwrap(),
            (b"bare text".to_vec(), 1)
        );
        let payload = crate::input::parse_payload(&once).unwrap();
        assert_eq!(payload.message_type, "DATA_MESSAGE");
    }
}
