//! `tracehose replay s3://BUCKET/PREFIX`: Firehose's S3 failed-data backups (docs/formats.md section 6) and
//! plain CloudWatch-to-S3 objects, back through the destinations or into a Firehose stream
//! (docs/architecture.md, Replay). [`list`] pages through the objects, [`read`] streams each one as records,
//! [`destinations`] and [`to_firehose`] (with `batch`) send them and say which were confirmed, [`position`]
//! holds which lines of an object are, [`checkpoint`] remembers that across runs and [`lock`] keeps one run
//! per checkpoint, [`dedup`] drops `dataId`s already sent in the run, [`lambda`] replays the object an S3
//! notification names.
//!
//! Failure table: a record that cannot be read is reported (object key and line) and counted, and the rest
//! goes on; a transient failure is retried (by the delivery stage, or here for PutRecordBatch) and then stops
//! the run with the object not done, its checkpoint at the first line not confirmed.
//!
//! A checkpoint entry is used only for the object it was written for (size and ETag) and only while it fits
//! the object (no line past its end); otherwise it is reported, counted and the object replayed from its
//! start. `--delete-after` deletes an object only when this run confirmed every line of it, and only if it
//! is still the object that was read.

pub mod args;
mod batch;
pub mod body;
pub mod checkpoint;
pub mod dedup;
mod destinations;
pub mod lambda;
pub mod list;
pub mod lock;
pub mod position;
pub mod progress;
pub mod read;
mod run;
pub mod to_firehose;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_s3::error::DisplayErrorContext;
use thiserror::Error;

use crate::deliver::{DestinationLedger, Ledger};
use crate::limits::Limits;
use crate::summary::Summary;

pub use self::args::ReplayArgs;
pub use self::run::main;

use self::checkpoint::{Checkpoint, CheckpointError, Identity};
use self::dedup::Dedup;
use self::position::Standing;
use self::progress::{Progress, Stats};

pub(crate) use self::body::Body;

/// Bytes of an object read ahead of the reading thread: enough for reading to overlap processing, and the
/// same whatever the object's size, so that a few large objects in flight cost what as many small ones do
/// (at 1 MiB, four 30 MB objects in flight peaked 10-13% above four 0.6 MB ones; at 512 KiB, within 3%).
const BODY_AHEAD_BYTES: u32 = 512 << 10;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectEnd {
    /// Every record in it was delivered.
    pub complete: bool,
    /// Some of its lines were confirmed by an earlier run, not this one: it is not deleted.
    pub resumed: bool,
    /// The object read, as S3 described it.
    pub object: Identity,
}

/// How one pass over an object ended, when it read the object to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pass {
    /// Every line the pass handled was delivered, or had nothing to deliver.
    pub complete: bool,
    /// The object's last line.
    pub last_line: u64,
    /// Lines read past because an earlier run had confirmed them.
    pub resumed: u64,
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

    /// Opens the object and what an earlier run confirmed of it, if the checkpoint's entry was written for
    /// this very object; an entry for other content is reported, counted and dropped.
    pub async fn begin(self: &Arc<Self>, key: &str) -> Result<(Body, Identity, Standing), ReplayError> {
        let (body, object) = open_object(self, key).await?;
        let recorded = self.lock_checkpoint().position(key).cloned();
        let earlier = match recorded {
            Some((recorded, position)) if recorded == object => position,
            Some((recorded, position)) => {
                self.mismatch(
                    key,
                    &format!(
                        "the checkpoint's position (line {}) was recorded for other content ({recorded}) than the \
                         object now holds ({object})",
                        position.next
                    ),
                );
                Default::default()
            }
            None => Default::default(),
        };
        Ok((body, object, Standing::new(earlier)))
    }

    /// After a pass that read the object to its end: whether the checkpoint claimed lines past that end.
    /// Then it was not written for this object: what it said is dropped (what this run confirmed is kept),
    /// and the caller reads the object again.
    pub fn restart_past_end(
        &self,
        key: &str,
        object: &Identity,
        standing: &mut Standing,
        pass: &Pass,
    ) -> Result<bool, ReplayError> {
        if !standing.past_end(pass.last_line) {
            return Ok(false);
        }
        self.mismatch(
            key,
            &format!(
                "the checkpoint confirms lines past the object's end (line {})",
                pass.last_line
            ),
        );
        // Those lines were not confirmed after all: they are sent in the next pass and counted there.
        self.stats
            .records_resumed
            .fetch_sub(pass.resumed, Ordering::Relaxed);
        standing.forget_earlier();
        self.record_position(key, object, standing)?;
        Ok(true)
    }

    /// Opens the object again for a second pass, which must read the same object as the first.
    pub async fn reopen(
        self: &Arc<Self>,
        key: &str,
        object: &Identity,
        standing: &Standing,
    ) -> Result<Body, ReplayError> {
        let (body, now) = open_object(self, key).await?;
        if &now != object {
            return Err(ReplayError::NotDone {
                object: self.name(key),
                line: standing.next(),
                detail: format!("it changed while it was replayed ({object}, now {now})"),
            });
        }
        Ok(body)
    }

    fn mismatch(&self, key: &str, what: &str) {
        Stats::add(&self.stats.checkpoint_mismatches, 1);
        self.report(&format!(
            "{}: {what}; it is replayed from its start",
            self.name(key)
        ));
    }

    pub fn record_position(
        &self,
        key: &str,
        object: &Identity,
        standing: &Standing,
    ) -> Result<(), ReplayError> {
        Ok(self
            .lock_checkpoint()
            .record_position(key, object, &standing.position())?)
    }

    pub fn lock_checkpoint(&self) -> std::sync::MutexGuard<'_, Checkpoint> {
        self.checkpoint
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Marks the object done (before any deletion, so that a crash in between leaves it done), then deletes
    /// it when asked, when every record in it was delivered and this run confirmed every one of them.
    pub async fn finish_object(&self, key: &str, end: &ObjectEnd) -> Result<(), ReplayError> {
        self.lock_checkpoint()
            .record_done(key, end.complete, &end.object)?;
        Stats::add(&self.stats.objects_done, 1);
        if !end.complete {
            Stats::add(&self.stats.objects_incomplete, 1);
        }
        if !(end.complete && self.delete_after) {
            return Ok(());
        }
        if end.resumed {
            self.keep(
                key,
                "some of its records were confirmed by an earlier run, not this one",
            );
            return Ok(());
        }
        self.delete(key, &end.object).await
    }

    /// A finished object --delete-after leaves in place, reported and counted.
    pub fn keep(&self, key: &str, why: &str) {
        Stats::add(&self.stats.objects_kept, 1);
        self.report(&format!("{}: not deleted: {why}", self.name(key)));
    }

    /// Deletes the object if it is still the one that was read (`If-Match` on its ETag).
    async fn delete(&self, key: &str, object: &Identity) -> Result<(), ReplayError> {
        let deleted = self
            .s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .set_if_match(object.etag.as_ref().map(|e| format!("\"{e}\"")))
            .send()
            .await;
        match deleted {
            Ok(_) => {
                Stats::add(&self.stats.objects_deleted, 1);
                Ok(())
            }
            Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
                self.keep(key, "it changed since it was read");
                Ok(())
            }
            Err(err) => Err(ReplayError::Delete {
                object: self.name(key),
                detail: DisplayErrorContext(&err).to_string(),
            }),
        }
    }
}

/// Starts reading an object: its pieces arrive through a [`body::channel`], filled by a task of its own.
async fn open_object(ctx: &Arc<Ctx>, key: &str) -> Result<(Body, Identity), ReplayError> {
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
    let size = object
        .content_length()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    let identity = Identity::new(size, object.e_tag());
    let (tx, rx) = body::channel(BODY_AHEAD_BYTES);
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
    Ok((rx, identity))
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
    total.joined_derived += s.joined_derived;
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
