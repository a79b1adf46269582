//! What the pipeline's thread does with one invocation's event: split it once, by the same detection
//! `process` uses, and route on the shapes found. Everything CPU-bound happens here; the async side then
//! turns the result and the delivery ledger into the response.

use crate::deliver::{DeliveryError, DeliverySink};
use crate::input::{Clock, Input, InputError, Shape, Stop, Unit, UnitData};
use crate::pipeline::{Pipeline, UnitOutcome};
use crate::process::process_item;
use crate::summary::Summary;

use super::firehose::{self, FirehoseMode};

/// A Firehose record shipped in `forward` mode, waiting for the ledger to say whether it was delivered.
#[derive(Debug)]
pub struct Forwarded {
    pub record_id: Option<String>,
    /// The record's data as it arrived (base64), echoed on `Ok` so that Firehose's own destination keeps it.
    pub original: String,
    /// The record's place in the delivery stage's units.
    pub unit: usize,
    /// Everything in it could be read (nothing invalid).
    pub readable: bool,
    /// It held only control messages: answered `Dropped`.
    pub only_control: bool,
}

#[derive(Debug)]
pub enum Routed {
    /// A transformation answered here (`transform` mode): the records go back to Firehose.
    Transformed {
        response: aws_lambda_events::firehose::KinesisFirehoseResponse,
        summary: Summary,
    },
    /// A transformation shipped to the destinations (`forward` mode).
    Forwarded {
        records: Vec<Forwarded>,
        summary: Summary,
    },
    /// Any other shape, shipped to the destinations.
    Shipped {
        summary: Summary,
        stopped: Option<DeliveryError>,
        /// The deadline passed before the whole event was read: a retry may read it.
        late: Option<Stop>,
    },
    /// Nothing here is a log input: maybe an EventBridge event for the async side.
    Unrecognised,
}

/// The event is one input: its records share one decompression budget and stop at `clock`'s deadline.
pub fn route(
    pipeline: &mut Pipeline,
    raw: &str,
    mode: FirehoseMode,
    clock: Clock,
    sink: &mut DeliverySink,
) -> Routed {
    let limits = *pipeline.limits();
    pipeline.begin_input(clock);
    let mut input = Input::open_within(raw.as_bytes(), &limits, pipeline.budget_mut());
    let inflate_error = input.error.take();
    let mut items = Vec::new();
    input.units(|item| items.push(item));
    items.extend(inflate_error.map(Err));
    let transformation = items
        .iter()
        .any(|item| matches!(item, Ok(unit) if unit.shape == Shape::FirehoseTransformation));
    if transformation {
        return match mode {
            FirehoseMode::Transform => {
                let (response, summary) = firehose::transform(pipeline, items, sink);
                Routed::Transformed { response, summary }
            }
            FirehoseMode::Forward => forward_records(pipeline, items, sink),
        };
    }
    let unrecognised = !items.is_empty()
        && items
            .iter()
            .all(|item| matches!(item, Err(InputError::Unrecognised { .. })));
    if unrecognised {
        return Routed::Unrecognised;
    }
    let mut summary = Summary::default();
    let mut report = |message: String| eprintln!("tracehose: error: {message}");
    for item in items {
        if let Err(err) = process_item(item, "event", pipeline, sink, &mut summary, &mut report) {
            return Routed::Shipped {
                summary,
                stopped: Some(err),
                late: None,
            };
        }
    }
    // A spent budget is for good (counted, reported); a deadline is not.
    let late = pipeline
        .budget()
        .stopped()
        .filter(|stop| !matches!(stop, Stop::Spent { .. }));
    Routed::Shipped {
        summary,
        stopped: None,
        late,
    }
}

fn forward_records(
    pipeline: &mut Pipeline,
    items: Vec<Result<Unit<'_>, InputError>>,
    sink: &mut DeliverySink,
) -> Routed {
    let mut summary = Summary::default();
    let mut records = Vec::new();
    let mut report = |message: String| eprintln!("tracehose: error: event: {message}");
    for item in items {
        let unit = match item {
            Ok(unit) => unit,
            Err(err) => {
                // No record id to answer: Firehose sees it missing and retries the batch.
                crate::pipeline::count_input_error(&err, &mut summary);
                report(err.to_string());
                continue;
            }
        };
        let original = match &unit.data {
            UnitData::Encoded(text) => text.clone().into_owned(),
            UnitData::Decoded(_) | UnitData::Malformed(_) => String::new(),
        };
        let record_id = unit.record_id.clone();
        let before = summary;
        sink.begin_unit();
        let outcome = pipeline.process_unit(unit, sink, &mut summary, &mut report);
        let readable = matches!(outcome, Ok(UnitOutcome::Complete));
        records.push(Forwarded {
            record_id,
            original,
            unit: records.len(),
            readable,
            only_control: summary.delivered == before.delivered
                && summary.control_messages > before.control_messages,
        });
    }
    Routed::Forwarded { records, summary }
}
