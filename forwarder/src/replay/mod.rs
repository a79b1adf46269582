//! `tracehose replay s3://BUCKET/PREFIX`: Firehose's S3 failed-data backups (FORMATS.md section 6) and
//! plain CloudWatch-to-S3 objects, back through the destinations or into a Firehose stream (DESIGN.md,
//! Replay). [`list`] pages through the objects, [`read`] streams each one as records, [`destinations`] and
//! [`to_firehose`] send them and say which were confirmed, [`checkpoint`] remembers that across runs,
//! [`dedup`] drops `dataId`s already sent in the run, [`lambda`] replays the object an S3 notification names.
//!
//! Failure table: a record that cannot be read is reported (object key and line) and counted, and the rest
//! goes on; a transient failure is retried (by the delivery stage, or here for PutRecordBatch) and then stops
//! the run with the object not done, its checkpoint at the first line not confirmed.

pub mod args;
pub mod checkpoint;
pub mod dedup;
mod destinations;
pub mod lambda;
pub mod list;
pub mod progress;
pub mod read;
mod run;
pub mod to_firehose;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_s3::error::DisplayErrorContext;
use bytes::Bytes;
use thiserror::Error;
use tokio::sync::mpsc;

use crate::deliver::{DestinationLedger, Ledger};
use crate::limits::Limits;
use crate::summary::Summary;

pub use self::args::ReplayArgs;
pub use self::run::main;

use self::checkpoint::{Checkpoint, CheckpointError, Position};
use self::dedup::Dedup;
use self::progress::{Progress, Stats};

/// The pieces of an object's body on their way to the reading thread.
pub(crate) type Body = mpsc::Receiver<io::Result<Bytes>>;

/// Pieces of an object read ahead of the reading thread: with S3's pieces of up to a few hundred KiB, a
/// few MiB, so that reading overlaps processing at bounded memory.
const BODY_AHEAD: usize = 16;

#[derive(Debug, Error)]
pub enum ReplayError {
    #[error(transparent)]
    Args(#[from] args::ArgError),
    #[error(transparent)]
    List(#[from] list::ListError),
    #[error(transparent)]
    Region(#[from] crate::aws::NoRegion),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{object}: cannot read the object: {detail}")]
    Get { object: String, detail: String },
    #[error("{object}: stopped at line {line}, the object is not done (a re-run resumes there): {detail}")]
    NotDone {
        object: String,
        line: u64,
        detail: String,
    },
    #[error("{object}: deleting the object failed: {detail}")]
    Delete { object: String, detail: String },
    #[error("configuration error: {0}")]
    Config(String),
}

/// How an object ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObjectEnd {
    /// Every record in it was delivered: it may be deleted.
    pub complete: bool,
}

/// What every worker of one run shares.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub limits: Limits,
    pub checkpoint: Mutex<Checkpoint>,
    pub dedup: Dedup,
    pub stats: Stats,
    pub progress: Progress,
    /// The run's one pipeline (and so its correlation state), each worker taking it for a segment.
    pub pipeline: Mutex<crate::pipeline::Pipeline>,
    pub delete_after: bool,
    /// Records per delivery-stage call (and checkpoint step) inside an object.
    pub segment_records: usize,
    /// Set when an object could not be finished: no worker starts another.
    pub stop: AtomicBool,
}

impl Ctx {
    pub fn name(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// An error line on stderr, above the progress bar when there is one.
    pub fn report(&self, message: &str) {
        self.progress.suspend(|| eprintln!("tracehose: error: {message}"));
    }

    pub fn position(&self, key: &str) -> Position {
        self.lock_checkpoint().position(key).cloned().unwrap_or_default()
    }

    pub fn record_position(&self, key: &str, position: &Position) -> Result<(), ReplayError> {
        Ok(self.lock_checkpoint().record_position(key, position)?)
    }

    pub fn lock_checkpoint(&self) -> std::sync::MutexGuard<'_, Checkpoint> {
        self.checkpoint
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Marks the object done (before any deletion, so that a crash in between leaves it done and a re-run
    /// deletes it), then deletes it when asked and when every record in it was delivered.
    pub async fn finish_object(&self, key: &str, end: ObjectEnd) -> Result<(), ReplayError> {
        self.lock_checkpoint().record_done(key, end.complete)?;
        Stats::add(&self.stats.objects_done, 1);
        if !end.complete {
            Stats::add(&self.stats.objects_incomplete, 1);
        }
        if end.complete && self.delete_after {
            self.delete(key).await?;
        }
        Ok(())
    }

    pub async fn delete(&self, key: &str) -> Result<(), ReplayError> {
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| ReplayError::Delete {
                object: self.name(key),
                detail: DisplayErrorContext(&err).to_string(),
            })?;
        Stats::add(&self.stats.objects_deleted, 1);
        Ok(())
    }
}

/// Starts reading an object: its pieces arrive through a bounded channel, filled by a task of its own.
pub(crate) async fn open_object(ctx: &Arc<Ctx>, key: &str) -> Result<Body, ReplayError> {
    let object = ctx
        .s3
        .get_object()
        .bucket(&ctx.bucket)
        .key(key)
        .send()
        .await
        .map_err(|err| ReplayError::Get {
            object: ctx.name(key),
            detail: DisplayErrorContext(&err).to_string(),
        })?;
    let (tx, rx) = mpsc::channel(BODY_AHEAD);
    let mut body = object.body;
    let worker = Arc::clone(ctx);
    tokio::spawn(async move {
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|err| io::Error::other(DisplayErrorContext(&err).to_string()));
            if let Ok(piece) = &piece {
                Stats::add(&worker.stats.bytes, piece.len() as u64);
            }
            let failed = piece.is_err();
            if tx.send(piece).await.is_err() || failed {
                break;
            }
        }
    });
    Ok(rx)
}

/// Adds one segment's counts to the run's.
pub(crate) fn add_summary(total: &mut Summary, s: &Summary) {
    total.events_in += s.events_in;
    total.delivered += s.delivered;
    total.filtered += s.filtered;
    total.control_messages += s.control_messages;
    total.failed_events += s.failed_events;
    total.rejected_events += s.rejected_events;
    total.invalid_events += s.invalid_events;
    total.failed_records += s.failed_records;
    total.truncated += s.truncated;
    total.own_trace += s.own_trace;
    total.joined_marker += s.joined_marker;
    total.joined_invocation += s.joined_invocation;
    total.joined_xray += s.joined_xray;
    total.no_trace += s.no_trace;
}

/// Adds one segment's ledger counts to the run's (the line sets stay per segment).
pub(crate) fn add_ledger(total: &mut Ledger, l: &Ledger) {
    total.lines += l.lines;
    total.filtered += l.filtered;
    for d in &l.destinations {
        let slot = match total.destinations.iter_mut().position(|t| t.name == d.name) {
            Some(i) => &mut total.destinations[i],
            None => {
                total.destinations.push(DestinationLedger {
                    name: d.name,
                    ..DestinationLedger::default()
                });
                let last = total.destinations.len() - 1;
                &mut total.destinations[last]
            }
        };
        slot.received += d.received;
        slot.delivered += d.delivered;
        slot.truncated += d.truncated;
        slot.retried += d.retried;
        slot.failed += d.failed;
        slot.rejected += d.rejected;
        slot.requests += d.requests;
    }
}
