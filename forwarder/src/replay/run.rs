//! One `replay` run: listing feeds a bounded queue of objects while `--concurrency` workers replay them,
//! each object through the chosen target; then the summary.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

use crate::aws::Aws;
use crate::deliver::{DeliverySetup, Ledger};
use crate::limits::Limits;
use crate::pipeline::Pipeline;
use crate::summary::Summary;
use crate::telemetry::Origin;

use super::args::{parse_source, parse_target, parse_window, ReplayArgs, Target};
use super::checkpoint::Checkpoint;
use super::list::{self, ObjectInfo, Window};
use super::progress::{Progress, Stats};
use super::{add_ledger, add_summary, destinations, to_firehose, Ctx, ReplayError};

/// Objects listed ahead of the workers.
const LISTED_AHEAD: usize = 1024;

/// What a run came to.
#[derive(Debug, Default)]
pub struct Outcome {
    pub summary: Summary,
    pub ledger: Ledger,
    /// The first error that stopped the run (an object not done, a listing that failed).
    pub stopped: Option<String>,
    /// Whether the delivery stage had HTTP destinations (then its ledger line is printed).
    pub http: bool,
}

pub fn main(args: ReplayArgs, limits: Limits) -> ExitCode {
    // Parsing runs on the delivery stage's blocking thread; what is async here (listing, fetching, sending)
    // is I/O, which one thread serves, and fewer threads leave less freed memory in allocator arenas.
    crate::cli::block_on(async move {
        let progress = Progress::new();
        let (ctx, outcome) = match run(args, limits, progress).await {
            Ok(done) => done,
            Err(err @ (ReplayError::Args(_) | ReplayError::Config(_))) => {
                eprintln!("tracehose: configuration error: {err}");
                return ExitCode::from(2);
            }
            // Another run holds the checkpoint, or it cannot be used: nothing was read or sent.
            Err(err @ ReplayError::Checkpoint(_)) => {
                eprintln!("tracehose: error: {err}");
                return ExitCode::from(2);
            }
            Err(err) => {
                eprintln!("tracehose: error: {err}");
                return ExitCode::FAILURE;
            }
        };
        ctx.progress.finish();
        let mut err = io::stderr().lock();
        if let Some(stopped) = &outcome.stopped {
            let _ = writeln!(err, "tracehose: error: {stopped}");
        }
        let _ = writeln!(
            err,
            "tracehose: replay {} seconds={:.1}",
            ctx.stats,
            ctx.progress.elapsed().as_secs_f64()
        );
        if outcome.http {
            let _ =
                crate::process::write_line(&mut err, format_args!("tracehose: delivery {}", outcome.ledger));
        }
        let _ = crate::process::print_summary(&mut err, &outcome.summary);
        let failed = ctx.stats.failed_records.load(Ordering::Relaxed) > 0;
        if outcome.stopped.is_some() || failed || outcome.summary.has_failures() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// Runs the whole replay; an `Err` is a setup problem, anything later is in the outcome.
pub async fn run(
    args: ReplayArgs,
    limits: Limits,
    progress: Progress,
) -> Result<(Arc<Ctx>, Outcome), ReplayError> {
    let (bucket, prefix) = parse_source(&args.source)?;
    let target = parse_target(&args.to)?;
    let (since, until) = parse_window(args.since.as_deref(), args.until.as_deref())?;
    let aws = Aws::default();
    let config = aws.regional().await?;
    let s3 = list::s3_client(config);
    let checkpoint = Checkpoint::open(
        args.checkpoint.as_deref(),
        &format!("s3://{bucket}/{prefix}"),
        args.dry_run,
    )?;
    let ctx = Arc::new(Ctx {
        s3: s3.clone(),
        bucket: bucket.clone(),
        limits,
        checkpoint: Mutex::new(checkpoint),
        dedup: Default::default(),
        stats: Stats::default(),
        progress,
        pipeline: Mutex::new(Pipeline::new(limits)),
        delete_after: args.delete_after && !args.dry_run,
        segment_records: segment_records(|v| std::env::var(v).ok())?,
        stop: Default::default(),
    });
    let (tx, rx) = mpsc::channel(LISTED_AHEAD);
    let window = Window { since, until };
    let lister = tokio::spawn(async move { list::list(&s3, &bucket, &prefix, window, tx).await });
    let mut outcome = Outcome::default();
    if args.dry_run {
        dry_run(&ctx, rx).await;
    } else {
        let target = match target {
            Target::Destinations => {
                let setup = DeliverySetup::from_env(&aws, Origin::Reprocessed)
                    .await
                    .map_err(|err| ReplayError::Config(err.to_string()))?;
                outcome.http = !setup.destinations.http.is_empty();
                // No worker has taken the pipeline yet: it starts again with the destinations' telemetry.
                *ctx.pipeline.lock().unwrap_or_else(PoisonError::into_inner) =
                    Pipeline::new(limits).with_telemetry(setup.destinations.telemetry);
                Worker::Destinations(Box::new(setup))
            }
            Target::Firehose(stream) => Worker::Firehose {
                client: aws_sdk_firehose::Client::new(config),
                stream,
                in_flight: usize::from(args.concurrency),
            },
        };
        let queue = Arc::new(tokio::sync::Mutex::new(rx));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..args.concurrency {
            let (ctx, queue, target) = (Arc::clone(&ctx), Arc::clone(&queue), target.clone());
            workers.spawn(async move { work(ctx, queue, target).await });
        }
        while let Some(done) = workers.join_next().await {
            match done {
                Ok(part) => {
                    add_summary(&mut outcome.summary, &part.summary);
                    add_ledger(&mut outcome.ledger, &part.ledger);
                    if outcome.stopped.is_none() {
                        outcome.stopped = part.stopped;
                    }
                }
                Err(err) => outcome.stopped = Some(format!("a replay worker failed: {err}")),
            }
        }
    }
    match lister.await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => outcome.stopped = Some(err.to_string()),
        Err(err) => outcome.stopped = Some(format!("listing failed: {err}")),
    }
    // Sent already: a checkpoint that cannot be made durable fails the run, it is no setup error.
    if let Err(err) = ctx.lock_checkpoint().sync() {
        outcome.stopped.get_or_insert(err.to_string());
    }
    Ok((ctx, outcome))
}

/// `TRACEHOSE_REPLAY_SEGMENT_RECORDS`: how many records an object's checkpoint may lag behind at most.
fn segment_records(lookup: impl Fn(&str) -> Option<String>) -> Result<usize, ReplayError> {
    const VAR: &str = "TRACEHOSE_REPLAY_SEGMENT_RECORDS";
    match lookup(VAR).filter(|v| !v.trim().is_empty()) {
        None => Ok(destinations::SEGMENT_RECORDS),
        Some(v) => v
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or_else(|| {
                ReplayError::Config(format!("{VAR}={v:?}: expected a whole number from 1 to 1000000"))
            }),
    }
}

#[derive(Debug, Clone)]
enum Worker {
    Destinations(Box<DeliverySetup>),
    Firehose {
        client: aws_sdk_firehose::Client,
        stream: String,
        in_flight: usize,
    },
}

async fn work(
    ctx: Arc<Ctx>,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<ObjectInfo>>>,
    target: Worker,
) -> Outcome {
    let mut outcome = Outcome::default();
    while !ctx.stopped() {
        let Some(object) = queue.lock().await.recv().await else {
            break;
        };
        Stats::add(&ctx.stats.objects_listed, 1);
        let earlier = ctx.lock_checkpoint().done(&object.key).cloned();
        if let Some(done) = earlier {
            if done.object == object.identity() {
                Stats::add(&ctx.stats.objects_skipped, 1);
                // Finished by an earlier run, which did not delete it: this run confirmed none of it.
                if done.complete && ctx.delete_after {
                    ctx.keep(
                        &object.key,
                        "an earlier run finished it; this run confirmed none of its records",
                    );
                }
                continue;
            }
            Stats::add(&ctx.stats.checkpoint_mismatches, 1);
            ctx.report(&format!(
                "{}: the checkpoint finished other content ({}) than the object now holds ({}); it is replayed \
                 from its start",
                ctx.name(&object.key),
                done.object,
                object.identity()
            ));
        }
        let ended = match &target {
            Worker::Destinations(setup) => {
                destinations::replay_object(
                    &ctx,
                    setup,
                    &object.key,
                    &mut outcome.summary,
                    &mut outcome.ledger,
                )
                .await
            }
            Worker::Firehose {
                client,
                stream,
                in_flight,
            } => to_firehose::replay_object(&ctx, client, stream, &object.key, *in_flight, None).await,
        };
        let finished = match ended {
            Ok(end) => ctx.finish_object(&object.key, &end).await,
            Err(err) => Err(err),
        };
        ctx.progress.update(&ctx.stats);
        if let Err(err) = finished {
            ctx.stop.store(true, Ordering::Relaxed);
            outcome.stopped = Some(err.to_string());
            break;
        }
    }
    outcome
}

/// Lists what a run would replay, and where a checkpoint would resume, on stdout; changes nothing.
async fn dry_run(ctx: &Ctx, mut rx: mpsc::Receiver<ObjectInfo>) {
    let mut out = io::stdout().lock();
    while let Some(object) = rx.recv().await {
        Stats::add(&ctx.stats.objects_listed, 1);
        let checkpoint = ctx.lock_checkpoint();
        let identity = object.identity();
        let state = match (checkpoint.done(&object.key), checkpoint.position(&object.key)) {
            (Some(done), _) if done.object == identity => {
                Stats::add(&ctx.stats.objects_skipped, 1);
                "done".to_owned()
            }
            (None, Some((recorded, position))) if recorded == &identity => {
                format!("resume at line {}", position.next)
            }
            (Some(_), _) | (None, Some(_)) => {
                Stats::add(&ctx.stats.checkpoint_mismatches, 1);
                "changed since checkpointed: from the start".to_owned()
            }
            (None, None) => "new".to_owned(),
        };
        let _ = writeln!(out, "{}\t{}\t{state}", ctx.name(&object.key), object.size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_size_is_read_and_checked() {
        assert_eq!(
            segment_records(|_| None).ok(),
            Some(destinations::SEGMENT_RECORDS)
        );
        assert_eq!(segment_records(|_| Some(" 7 ".into())).ok(), Some(7));
        let err = segment_records(|_| Some("0".into()))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("TRACEHOSE_REPLAY_SEGMENT_RECORDS=\"0\""), "{err}");
    }
}
