//! The Lambda face of `tracehose`: started with no arguments inside Lambda, it serves every event shape it
//! can route, keeping one pipeline (and so the correlation state) warm across invocations.
//!
//! What the source is told follows docs/architecture.md's failure table, from the delivery ledger: a direct
//! subscription gets an error (so Lambda retries, then uses the failure destination) only when lines failed
//! for a reason that may pass, while what can never be delivered is counted and reported; a Firehose
//! transformation gets a result per record ([`firehose`]), in `transform` or `forward` mode; a
//! `CreateLogGroup` event subscribes the new log group (`crate::subscribe`); a function URL or API Gateway
//! event is a Firehose HTTP endpoint request, answered by `crate::endpoint` with the status and body the spec
//! requires.

mod firehose;
mod report;
mod route;

use std::env;
use std::io;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use thiserror::Error;
use tokio::sync::Mutex;

use self::firehose::FirehoseMode;
pub use self::report::Tally;
use self::route::Routed;
use crate::aws::Aws;
use crate::deliver::{DeliverySetup, Settings};
use crate::endpoint::{function_url, AccessKeys, Endpoint, EndpointConfig, EndpointError, Reply};
use crate::input::Clock;
use crate::limits::Limits;
use crate::pipeline::Pipeline;
use crate::replay::lambda::S3Hook;
use crate::subscribe::{self, Subscriber};
use crate::summary::Summary;

#[derive(Debug, Error)]
pub enum HandlerError {
    #[error(
        "{failed} log events could not be delivered; returning an error so that Lambda retries the batch"
    )]
    Undelivered { failed: u64 },
    #[error("delivery stopped: {0}")]
    Delivery(#[from] crate::deliver::DeliveryError),
    #[error("the event was not read to its end: {0}; returning an error so that Lambda retries it")]
    Late(crate::input::Stop),
    #[error("the delivery stage failed: {0}")]
    Stage(#[from] io::Error),
    #[error("invalid CreateLogGroup event: {0}")]
    Event(#[from] subscribe::EventError),
    #[error("subscribing log group {log_group} failed: {detail}")]
    Subscribe { log_group: String, detail: String },
    #[error("not a recognised event: {what}; expected a CloudWatch Logs subscription (awslogs), a Firehose transformation or HTTP endpoint request (records, or a function URL event), a backup record (rawData), an S3 ObjectCreated notification of a Firehose backup, or a CloudTrail CreateLogGroup event")]
    Unrecognised { what: String },
    #[error(transparent)]
    Replay(#[from] crate::replay::lambda::LambdaError),
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(err: HandlerError) -> Self {
        let error_type = match &err {
            HandlerError::Undelivered { .. } => "tracehose.Undelivered",
            HandlerError::Late(_) => "tracehose.Deadline",
            HandlerError::Delivery(_) | HandlerError::Stage(_) => "tracehose.Delivery",
            HandlerError::Event(_) => "tracehose.InvalidEvent",
            HandlerError::Subscribe { .. } => "tracehose.Subscribe",
            HandlerError::Unrecognised { .. } => "tracehose.UnrecognisedEvent",
            HandlerError::Replay(_) => "tracehose.Replay",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: err.to_string(),
        }
    }
}

/// The state a warm forwarder keeps between invocations.
#[derive(Debug)]
pub struct Handler {
    /// Out only while an invocation runs it on the pipeline's thread.
    pipeline: Option<Pipeline>,
    limits: Limits,
    default_region: Option<String>,
    subscriber: Option<Subscriber>,
    delivery: DeliverySetup,
    firehose_mode: FirehoseMode,
    /// The Firehose HTTP endpoint, for function URL and API Gateway events.
    endpoint: Option<Arc<Endpoint>>,
    /// Replays the Firehose backup objects S3 notifies.
    s3_hook: S3Hook,
}

/// Time kept back from the invocation's deadline to answer after delivery gave up: a late answer is a
/// timeout, which Lambda retries whole.
fn margin(left: Duration) -> Duration {
    (left / 10).clamp(Duration::from_millis(200), Duration::from_secs(5))
}

impl Handler {
    pub fn new(
        limits: Limits,
        default_region: Option<String>,
        subscriber: Option<Subscriber>,
        delivery: DeliverySetup,
        firehose_mode: FirehoseMode,
    ) -> Self {
        Self {
            pipeline: Some(
                Pipeline::new(limits)
                    .with_default_region(default_region.clone())
                    .with_telemetry(delivery.destinations.telemetry),
            ),
            limits,
            default_region,
            subscriber,
            delivery,
            firehose_mode,
            endpoint: None,
            s3_hook: S3Hook::default(),
        }
    }

    /// Shares the function's AWS configuration with the clients the handler builds later (the replay hook's).
    pub fn with_aws(mut self, aws: Aws) -> Self {
        self.s3_hook = S3Hook::new(aws);
        self
    }

    /// Answers function URL and API Gateway events as a Firehose HTTP endpoint.
    pub fn with_endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = Some(Arc::new(endpoint));
        self
    }

    /// Handles one invocation's raw event and returns the response Lambda passes back to the caller, with
    /// `left` until the invocation's deadline. Whatever the event, the invocation's summary and ledger are
    /// printed (see [`report`]).
    pub async fn handle(&mut self, raw: String, left: Duration) -> Result<Value, HandlerError> {
        let (result, tally) = self.handle_tallied(raw, left).await;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        // Nothing useful is left to do if the function's own output is gone.
        let _ = tally.print(
            self.delivery.emf,
            now_ms,
            &mut io::stderr().lock(),
            &mut io::stdout().lock(),
        );
        result
    }

    /// [`handle`](Self::handle) without the printing: the response and the invocation's counts, from
    /// whichever face the event took.
    pub async fn handle_tallied(
        &mut self,
        raw: String,
        left: Duration,
    ) -> (Result<Value, HandlerError>, Tally) {
        let mut tally = Tally::default();
        let result = self.route(raw, left, &mut tally).await;
        (result, tally)
    }

    async fn route(&mut self, raw: String, left: Duration, tally: &mut Tally) -> Result<Value, HandlerError> {
        let deadline = Instant::now() + left.saturating_sub(margin(left));
        if let Some(event) = function_url::parse(&raw) {
            return Ok(function_url::response(
                &self.answer_http(event, deadline, tally).await,
            ));
        }
        let mut pipeline = self.pipeline.take().unwrap_or_else(|| {
            // A panic on the pipeline's thread lost the warm state: start again rather than fail forever.
            Pipeline::new(self.limits)
                .with_default_region(self.default_region.clone())
                .with_telemetry(self.delivery.destinations.telemetry)
        });
        let mode = self.firehose_mode;
        let report = |message: String| eprintln!("tracehose: error: {message}");
        let event = Arc::<str>::from(raw);
        let for_pipeline = Arc::clone(&event);
        let delivered = self
            .delivery
            .destinations
            .deliver(&self.delivery.client, deadline, report, move |sink| {
                let clock = Clock::new(Some(deadline));
                let routed = route::route(&mut pipeline, &for_pipeline, mode, clock, sink);
                (pipeline, routed)
            })
            .await?;
        let ((pipeline, routed), ledger) = delivered;
        self.pipeline = Some(pipeline);
        match routed {
            Routed::Transformed { response, summary } => {
                tally.add(&summary, &ledger);
                Ok(serde_json::to_value(response).unwrap_or(Value::Null))
            }
            Routed::Forwarded { records, mut summary } => {
                summary.apply_ledger(&ledger);
                tally.add(&summary, &ledger);
                let response = firehose::answer_forwarded(&records, &ledger);
                Ok(serde_json::to_value(response).unwrap_or(Value::Null))
            }
            Routed::Shipped {
                mut summary,
                stopped,
                late,
            } => {
                summary.apply_ledger(&ledger);
                tally.add(&summary, &ledger);
                if let Some(err) = stopped {
                    return Err(HandlerError::Delivery(err));
                }
                if let Some(stop) = late {
                    return Err(HandlerError::Late(stop));
                }
                // Only lines that failed for a reason that may pass are worth a retry of the whole batch.
                if ledger.retryable_lines() > 0 {
                    return Err(HandlerError::Undelivered {
                        failed: ledger.retryable_lines(),
                    });
                }
                Ok(json!({ "summary": summary_json(&summary) }))
            }
            Routed::Unrecognised => {
                // Nothing was handed to the stage, but its (empty) ledger names every destination.
                tally.add(&Summary::default(), &ledger);
                // An S3 ObjectCreated notification for a Firehose backup object: replay that object.
                let (summary, ledger) = (&mut tally.summary, &mut tally.ledger);
                let replayed = self
                    .s3_hook
                    .handle(&event, self.limits, &self.delivery, summary, ledger)
                    .await;
                if let Some(replayed) = replayed {
                    return Ok(replayed?);
                }
                if let Some(response) = self.route_event_bridge(&event).await? {
                    return Ok(response);
                }
                tally.summary.failed_records += 1;
                Err(unrecognised(&event))
            }
        }
    }

    /// A Firehose HTTP endpoint request through a function URL or API Gateway: the handler's answer, within
    /// the invocation's deadline and the endpoint's own.
    async fn answer_http(
        &self,
        mut event: function_url::HttpEvent,
        deadline: Instant,
        tally: &mut Tally,
    ) -> Reply {
        let headers = event.headers();
        let Some(endpoint) = &self.endpoint else {
            return Reply::new(
                500,
                "",
                Some("the Firehose HTTP endpoint is not set up in this handler"),
            );
        };
        if event.method() != "POST" {
            return endpoint.refuse(
                &headers,
                &EndpointError::Method(event.method().chars().take(16).collect()),
            );
        }
        // Before the body is decoded: a caller without the key costs nothing more.
        if let Err(err) = endpoint.admit(&headers) {
            return endpoint.refuse(&headers, &err);
        }
        let body = match event.take_body() {
            Ok(body) => body,
            Err(err) => return endpoint.refuse(&headers, &err),
        };
        let deadline = deadline.min(Instant::now() + endpoint.config().deadline);
        let (reply, summary, ledger) = endpoint.handle_counted(headers, body, deadline).await;
        tally.add(&summary, &ledger);
        reply
    }

    /// A CloudTrail `CreateLogGroup` event: subscribe the new group. `None` when the event is some other
    /// EventBridge event, which then goes through the normal path and is reported as unrecognised.
    async fn route_event_bridge(&mut self, raw: &str) -> Result<Option<Value>, HandlerError> {
        let event: Value = match serde_json::from_str(raw) {
            Ok(event) => event,
            Err(_) => return Ok(None),
        };
        if !subscribe::is_create_log_group_event(&event) {
            return Ok(None);
        }
        let Some(subscriber) = &self.subscriber else {
            eprintln!("tracehose: CreateLogGroup event ignored: automatic subscription is off (TRACEHOSE_SUBSCRIBE_PREFIXES is not set)");
            return Ok(Some(json!({ "ignored": "automatic subscription is off" })));
        };
        let report = subscribe::handle_create_log_group_event(&event, subscriber).await?;
        eprintln!("tracehose: {report}");
        // Only a failed API call can succeed on a retry; a group at the filter limit stays there, so it is
        // reported (above) and acknowledged rather than retried into the failure destination.
        if matches!(report.action, subscribe::Action::Failed { .. }) {
            return Err(HandlerError::Subscribe {
                log_group: report.log_group.clone(),
                detail: report.to_string(),
            });
        }
        Ok(Some(json!({ "subscription": report.to_string() })))
    }
}

/// An event no route took, named by its keys so that whoever wired it up can tell what arrived.
fn unrecognised(raw: &str) -> HandlerError {
    let event: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
    let what = match &event {
        Value::Object(map) => {
            let mut keys: Vec<&str> = map.keys().map(String::as_str).take(12).collect();
            if map.len() > keys.len() {
                keys.push("...");
            }
            let source = map
                .get("source")
                .and_then(Value::as_str)
                .map(|s| format!(" from {s}"));
            format!(
                "an object with keys {}{}",
                keys.join(", "),
                source.unwrap_or_default()
            )
        }
        Value::Null if !raw.trim().starts_with("null") => "something that is not JSON".to_owned(),
        other => format!("a JSON {}", json_kind(other)),
    };
    HandlerError::Unrecognised { what }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn summary_json(s: &Summary) -> Value {
    json!({
        "events_in": s.events_in, "delivered": s.delivered, "control_messages": s.control_messages,
        "failed_events": s.failed_events, "rejected_events": s.rejected_events,
        "invalid_events": s.invalid_events,
        "failed_records": s.failed_records, "truncated": s.truncated, "own_trace": s.own_trace,
        "joined": s.joined(), "no_trace": s.no_trace,
    })
}

/// Runs the Lambda runtime loop until the runtime API goes away.
pub fn main() -> ExitCode {
    crate::cli::block_on(async {
        match run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("tracehose: {err}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Configuration is read and validated once, at cold start: a bad variable fails the init with its name.
async fn run() -> Result<(), lambda_runtime::Error> {
    let limits = Limits::from_env()?;
    // Loaded at its first use, then shared by every AWS client of the function.
    let aws = Aws::default();
    let subscriber = Subscriber::from_env(&aws).await?;
    // Secrets once, for the destinations and the endpoint's access keys alike.
    let settings = Settings::from_env().resolve_secrets(&aws).await?;
    let delivery = DeliverySetup::from_settings(&settings)?;
    // No key is not an error here (most deployments are not behind a function URL): every function URL
    // request is then refused with a 500 that says so, and Firehose keeps the data.
    let keys = AccessKeys::from_settings(&settings, false)?;
    let endpoint_config = EndpointConfig::from_settings(&settings)?;
    let firehose_mode = FirehoseMode::from_lookup(&|name| env::var(name).ok())?;
    eprintln!(
        "tracehose: destinations: {}; Firehose transformations: {:?}",
        delivery.destinations.names().join(", "),
        firehose_mode
    );
    let endpoint = Endpoint::new(
        keys,
        delivery.clone(),
        limits,
        env::var("AWS_REGION").ok(),
        endpoint_config,
    );
    let handler = Handler::new(
        limits,
        env::var("AWS_REGION").ok(),
        subscriber,
        delivery,
        firehose_mode,
    )
    .with_endpoint(endpoint)
    .with_aws(aws);
    let handler = Arc::new(Mutex::new(handler));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let handler = Arc::clone(&handler);
        let left = time_left(event.context.deadline);
        async move {
            handler
                .lock()
                .await
                .handle(event.payload.get().to_owned(), left)
                .await
        }
    }))
    .await
}

/// Time until the invocation's deadline (epoch milliseconds); a deadline already past (emulators send such
/// values) is taken as the longest invocation Lambda allows.
fn time_left(deadline_ms: u64) -> Duration {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    match deadline_ms.checked_sub(now_ms) {
        Some(left) if left > 0 => Duration::from_millis(left),
        _ => Duration::from_secs(15 * 60),
    }
}

#[cfg(test)]
mod tests;
