//! The Lambda face of replay: an S3 `ObjectCreated` notification for a backup object replays that object,
//! through the destinations or, with `TRACEHOSE_REPLAY_TO=firehose:STREAM`, back into a stream.
//!
//! Loop guard: a record sent back into Firehose that fails again comes back in a new backup object, which
//! notifies this function again. Each record sent back carries its replay count (`tracehoseReplayAttempts`,
//! see [`mark_attempt`](super::to_firehose::mark_attempt)) and is not sent once it reached
//! `TRACEHOSE_REPLAY_MAX_ATTEMPTS`; and every object carries its own count in the tag
//! `tracehose-replay-attempts`, so that the same object notified or retried again stops there too.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::types::{Tag, Tagging};
use serde_json::{json, Value};
use thiserror::Error;
use tokio::sync::OnceCell;

use crate::aws::Aws;
use crate::deliver::{DeliverySetup, Ledger};
use crate::limits::Limits;
use crate::pipeline::Pipeline;
use crate::summary::Summary;

use super::args::{parse_target, Target};
use super::checkpoint::Checkpoint;
use super::progress::{Progress, Stats};
use super::{destinations, list, to_firehose, Ctx, ObjectEnd, ReplayError};

pub const ATTEMPTS_TAG: &str = "tracehose-replay-attempts";
const DEFAULT_MAX_ATTEMPTS: u32 = 3;

#[derive(Debug, Error)]
pub enum LambdaError {
    #[error("{var}={value:?}: {reason}")]
    Config {
        var: &'static str,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::SettingsError),
    #[error("s3://{bucket}/{key}: the replay-attempt tag cannot be read or written: {detail}")]
    Tagging {
        bucket: String,
        key: String,
        detail: String,
    },
}

/// `TRACEHOSE_REPLAY_*`, read on every notification (a few variables; the clients are what is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaSettings {
    pub target: Target,
    pub max_attempts: u32,
    pub delete_after: bool,
}

impl LambdaSettings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, LambdaError> {
        let get = |var| lookup(var).filter(|v| !v.trim().is_empty());
        let target = match get("TRACEHOSE_REPLAY_TO") {
            Some(to) => parse_target(to.trim()).map_err(|err| LambdaError::Config {
                var: "TRACEHOSE_REPLAY_TO",
                value: to.clone(),
                reason: err.to_string(),
            })?,
            None => Target::Destinations,
        };
        let max_attempts = match get("TRACEHOSE_REPLAY_MAX_ATTEMPTS") {
            Some(v) => v
                .trim()
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or(LambdaError::Config {
                    var: "TRACEHOSE_REPLAY_MAX_ATTEMPTS",
                    value: v.clone(),
                    reason: "expected a whole number of at least 1".into(),
                })?,
            None => DEFAULT_MAX_ATTEMPTS,
        };
        let delete_after = match get("TRACEHOSE_REPLAY_DELETE_AFTER").as_deref().map(str::trim) {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(other) => {
                return Err(LambdaError::Config {
                    var: "TRACEHOSE_REPLAY_DELETE_AFTER",
                    value: other.to_owned(),
                    reason: "expected true or false".into(),
                })
            }
        };
        Ok(Self {
            target,
            max_attempts,
            delete_after,
        })
    }
}

/// The objects an S3 `ObjectCreated` notification names: `None` when the event is not one.
pub fn created_objects(event: &Value) -> Option<Vec<(String, String)>> {
    let records = event.get("Records")?.as_array()?;
    let objects: Vec<(String, String)> = records
        .iter()
        .filter(|r| r["eventSource"] == "aws:s3")
        .filter(|r| {
            r["eventName"]
                .as_str()
                .is_some_and(|n| n.starts_with("ObjectCreated"))
        })
        .filter_map(|r| {
            let bucket = r["s3"]["bucket"]["name"].as_str()?;
            let key = r["s3"]["object"]["key"].as_str()?;
            Some((bucket.to_owned(), url_decode(key)))
        })
        .collect();
    (!objects.is_empty()).then_some(objects)
}

/// Keys in S3 notifications are URL-encoded, with `+` for a space.
fn url_decode(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug)]
struct Clients {
    s3: aws_sdk_s3::Client,
    firehose: aws_sdk_firehose::Client,
}

/// Replays the backup objects S3 notifies; kept by the Lambda handler while the function is warm, with its
/// S3 and Firehose clients built at the first notification from the function's shared AWS configuration.
#[derive(Debug, Default)]
pub struct S3Hook {
    aws: Aws,
    clients: OnceCell<Clients>,
}

impl S3Hook {
    pub fn new(aws: Aws) -> Self {
        Self {
            aws,
            clients: OnceCell::new(),
        }
    }

    /// Replays every object an S3 `ObjectCreated` notification names; `None` when `raw` is not such an
    /// event, so the caller goes on with its own routing. An `Err` (an object not done) makes Lambda retry
    /// the event. What was delivered, an object that failed midway included, is added to `summary` and
    /// `ledger`.
    pub async fn handle(
        &self,
        raw: &str,
        limits: Limits,
        delivery: &DeliverySetup,
        summary: &mut Summary,
        ledger: &mut Ledger,
    ) -> Option<Result<Value, LambdaError>> {
        let event: Value = serde_json::from_str(raw).ok()?;
        let objects = created_objects(&event)?;
        Some(self.replay(objects, limits, delivery, summary, ledger).await)
    }

    async fn clients(&self) -> Result<&Clients, ReplayError> {
        self.clients
            .get_or_try_init(|| async {
                let config = self.aws.regional().await?;
                Ok(Clients {
                    s3: list::s3_client(config),
                    firehose: aws_sdk_firehose::Client::new(config),
                })
            })
            .await
    }

    async fn replay(
        &self,
        objects: Vec<(String, String)>,
        limits: Limits,
        delivery: &DeliverySetup,
        summary: &mut Summary,
        ledger: &mut Ledger,
    ) -> Result<Value, LambdaError> {
        let settings = LambdaSettings::from_lookup(|v| std::env::var(v).ok())?;
        let clients = self.clients().await?;
        replay_objects(clients, &settings, objects, limits, delivery, summary, ledger).await
    }
}

async fn replay_objects(
    clients: &Clients,
    settings: &LambdaSettings,
    objects: Vec<(String, String)>,
    limits: Limits,
    delivery: &DeliverySetup,
    total_summary: &mut Summary,
    total_ledger: &mut Ledger,
) -> Result<Value, LambdaError> {
    // The function's own setup makes telemetry for live logs; a backup read again makes it only when asked.
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let telemetry = crate::telemetry::Settings::from_lookup(
        &env,
        !delivery.destinations.http.is_empty(),
        crate::telemetry::Origin::Reprocessed,
    )?;
    let mut answers = Vec::new();
    for (bucket, key) in objects {
        let ctx = Arc::new(Ctx {
            s3: clients.s3.clone(),
            bucket: bucket.clone(),
            limits,
            checkpoint: Mutex::new(Checkpoint::default()),
            dedup: Default::default(),
            stats: Stats::default(),
            progress: Progress::hidden(),
            pipeline: Mutex::new(
                Pipeline::new(limits)
                    .with_default_region(std::env::var("AWS_REGION").ok())
                    .with_telemetry(telemetry),
            ),
            delete_after: settings.delete_after,
            segment_records: destinations::SEGMENT_RECORDS,
            stop: Default::default(),
        });
        let attempts = bump_attempts(&ctx, &key).await?;
        if attempts > settings.max_attempts {
            ctx.report(&format!(
                "{}: not replayed: already tried {} times ({ATTEMPTS_TAG}, TRACEHOSE_REPLAY_MAX_ATTEMPTS={})",
                ctx.name(&key),
                attempts - 1,
                settings.max_attempts
            ));
            answers.push(json!({ "object": ctx.name(&key), "skipped": "too many attempts" }));
            continue;
        }
        let mut summary = Summary::default();
        let mut ledger = Ledger::default();
        let ended = match &settings.target {
            Target::Destinations => {
                destinations::replay_object(&ctx, delivery, &key, &mut summary, &mut ledger).await
            }
            Target::Firehose(stream) => {
                let mark = Some(settings.max_attempts);
                to_firehose::replay_object(&ctx, &clients.firehose, stream, &key, 4, mark).await
            }
        };
        let ended: Result<ObjectEnd, ReplayError> = ended;
        super::add_summary(total_summary, &summary);
        super::add_ledger(total_ledger, &ledger);
        eprintln!("tracehose: replay {} {}", ctx.name(&key), ctx.stats);
        let end = ended?;
        ctx.finish_object(&key, &end).await?;
        answers.push(json!({
            "object": ctx.name(&key),
            "records": ctx.stats.records.load(Ordering::Relaxed),
            "failed_records": ctx.stats.failed_records.load(Ordering::Relaxed),
            "complete": end.complete,
            "deleted": ctx.stats.objects_deleted.load(Ordering::Relaxed) > 0,
        }));
    }
    Ok(json!({ "replayed": answers }))
}

/// Counts this attempt in the object's tags (keeping the others) and returns the new count.
async fn bump_attempts(ctx: &Ctx, key: &str) -> Result<u32, LambdaError> {
    let tagging_error = |detail: String| LambdaError::Tagging {
        bucket: ctx.bucket.clone(),
        key: key.to_owned(),
        detail,
    };
    let current = ctx
        .s3
        .get_object_tagging()
        .bucket(&ctx.bucket)
        .key(key)
        .send()
        .await
        .map_err(|err| tagging_error(DisplayErrorContext(&err).to_string()))?;
    let mut tags: Vec<Tag> = current.tag_set().to_vec();
    let attempts = tags
        .iter()
        .find(|t| t.key() == ATTEMPTS_TAG)
        .and_then(|t| t.value().parse::<u32>().ok())
        .unwrap_or(0)
        .saturating_add(1);
    tags.retain(|t| t.key() != ATTEMPTS_TAG);
    let tag = Tag::builder()
        .key(ATTEMPTS_TAG)
        .value(attempts.to_string())
        .build()
        .map_err(|err| tagging_error(err.to_string()))?;
    tags.push(tag);
    let tagging = Tagging::builder()
        .set_tag_set(Some(tags))
        .build()
        .map_err(|err| tagging_error(err.to_string()))?;
    ctx.s3
        .put_object_tagging()
        .bucket(&ctx.bucket)
        .key(key)
        .tagging(tagging)
        .send()
        .await
        .map_err(|err| tagging_error(DisplayErrorContext(&err).to_string()))?;
    Ok(attempts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn notifications_name_their_objects_decoded() {
        let event = json!({"Records": [
            {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
             "s3": {"bucket": {"name": "b"}, "object": {"key": "errors/http-endpoint-failed/2026/a+b%3Dc%2"}}},
            {"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete",
             "s3": {"bucket": {"name": "b"}, "object": {"key": "gone"}}}
        ]});
        assert_eq!(
            created_objects(&event).unwrap(),
            [(
                "b".to_owned(),
                "errors/http-endpoint-failed/2026/a b=c%2".to_owned()
            )]
        );
        assert!(created_objects(&json!({"records": []})).is_none());
        assert!(created_objects(&json!({"Records": [{"eventSource": "aws:sqs"}]})).is_none());
    }

    #[test]
    fn settings_name_the_bad_variable() {
        let none = LambdaSettings::from_lookup(|_| None).unwrap();
        assert_eq!(
            (none.target, none.max_attempts, none.delete_after),
            (Target::Destinations, 3, false)
        );
        let set = |var: &'static str, value: &'static str| {
            move |name: &str| (name == var).then(|| value.to_owned())
        };
        let fh = LambdaSettings::from_lookup(set("TRACEHOSE_REPLAY_TO", "firehose:s")).unwrap();
        assert_eq!(fh.target, Target::Firehose("s".into()));
        let err = LambdaSettings::from_lookup(set("TRACEHOSE_REPLAY_MAX_ATTEMPTS", "0")).unwrap_err();
        assert!(
            err.to_string().starts_with("TRACEHOSE_REPLAY_MAX_ATTEMPTS=\"0\""),
            "{err}"
        );
        assert!(LambdaSettings::from_lookup(set("TRACEHOSE_REPLAY_DELETE_AFTER", "yes")).is_err());
    }
}
