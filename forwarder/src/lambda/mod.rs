//! The Lambda face of `tracehose`: started with no arguments inside Lambda, it serves every event shape it
//! can route, keeping one pipeline (and so the correlation state) warm across invocations.
//!
//! What the source is told follows DESIGN.md's failure table: a direct subscription gets an error (so Lambda
//! retries, then uses the failure destination) only when decodable events could not be delivered, while
//! records that can never be decoded are counted and reported; a Firehose transformation gets a result per
//! record ([`firehose`]); a `CreateLogGroup` event subscribes the new log group (`crate::subscribe`).

mod firehose;

use std::env;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use thiserror::Error;
use tokio::sync::Mutex;

use crate::input::{Input, InputError, Shape, Unit};
use crate::limits::Limits;
use crate::output::ndjson::NdjsonSink;
use crate::output::Sink;
use crate::pipeline::Pipeline;
use crate::process::{print_summary, process_item};
use crate::subscribe::{self, Subscriber};
use crate::summary::Summary;

#[derive(Debug, Error)]
pub enum HandlerError {
    #[error(
        "{failed} log events could not be delivered; returning an error so that Lambda retries the batch"
    )]
    Undelivered { failed: u64 },
    #[error("writing records to stdout failed: {0}")]
    Stdout(#[from] io::Error),
    #[error("invalid CreateLogGroup event: {0}")]
    Event(#[from] subscribe::EventError),
    #[error("subscribing log group {log_group} failed: {detail}")]
    Subscribe { log_group: String, detail: String },
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(err: HandlerError) -> Self {
        let error_type = match &err {
            HandlerError::Undelivered { .. } => "tracehose.Undelivered",
            HandlerError::Stdout(_) => "tracehose.Output",
            HandlerError::Event(_) => "tracehose.InvalidEvent",
            HandlerError::Subscribe { .. } => "tracehose.Subscribe",
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
    pipeline: Pipeline,
    subscriber: Option<Subscriber>,
}

impl Handler {
    pub fn new(pipeline: Pipeline, subscriber: Option<Subscriber>) -> Self {
        Self { pipeline, subscriber }
    }

    /// Handles one invocation's raw event and returns the response Lambda passes back to the caller.
    /// The event is split once, by the same detection `process` uses, and routed on the shapes found.
    pub async fn handle(&mut self, raw: &str) -> Result<Value, HandlerError> {
        let limits = *self.pipeline.limits();
        let mut input = Input::open(raw.as_bytes(), &limits);
        let inflate_error = input.error.take();
        let mut items = Vec::new();
        input.units(|item| items.push(item));
        items.extend(inflate_error.map(Err));
        let is = |shape| {
            items
                .iter()
                .any(|item| matches!(item, Ok(unit) if unit.shape == shape))
        };
        if is(Shape::FirehoseTransformation) {
            let response = firehose::transform(&mut self.pipeline, items);
            return Ok(serde_json::to_value(response).unwrap_or(Value::Null));
        }
        let unrecognised = !items.is_empty()
            && items
                .iter()
                .all(|item| matches!(item, Err(InputError::Unrecognised { .. })));
        if unrecognised {
            if let Some(response) = self.route_event_bridge(raw).await? {
                return Ok(response);
            }
        }
        self.forward(items)
    }

    /// Any shape but a transformation: records to stdout NDJSON (the embedded default destination).
    fn forward(&mut self, items: Vec<Result<Unit<'_>, InputError>>) -> Result<Value, HandlerError> {
        let stdout = io::stdout();
        let mut sink = NdjsonSink::new(io::BufWriter::new(stdout.lock()));
        let mut summary = Summary::default();
        let mut report = |message: String| eprintln!("tracehose: error: {message}");
        for item in items {
            process_item(
                item,
                "event",
                &mut self.pipeline,
                &mut sink,
                &mut summary,
                &mut report,
            )?;
        }
        sink.flush()?;
        drop(sink);
        report_summary(&summary);
        if summary.failed_events > 0 {
            return Err(HandlerError::Undelivered {
                failed: summary.failed_events,
            });
        }
        Ok(json!({ "summary": summary_json(&summary) }))
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

fn report_summary(summary: &Summary) {
    let _ = print_summary(&mut io::stderr(), summary);
    let _ = io::stderr().flush();
}

fn summary_json(s: &Summary) -> Value {
    json!({
        "events_in": s.events_in, "delivered": s.delivered, "control_messages": s.control_messages,
        "failed_events": s.failed_events, "invalid_events": s.invalid_events,
        "failed_records": s.failed_records, "truncated": s.truncated, "own_trace": s.own_trace,
        "joined": s.joined(), "no_trace": s.no_trace,
    })
}

/// Runs the Lambda runtime loop until the runtime API goes away.
pub fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tracehose: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tracehose: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Configuration is read and validated once, at cold start: a bad variable fails the init with its name.
async fn run() -> Result<(), lambda_runtime::Error> {
    let limits = Limits::from_env()?;
    let pipeline = Pipeline::new(limits).with_default_region(env::var("AWS_REGION").ok());
    let subscriber = Subscriber::from_env().await?;
    let handler = Arc::new(Mutex::new(Handler::new(pipeline, subscriber)));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let handler = Arc::clone(&handler);
        async move { handler.lock().await.handle(event.payload.get()).await }
    }))
    .await
}

#[cfg(test)]
mod tests;
