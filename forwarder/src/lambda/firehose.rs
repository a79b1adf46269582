//! Firehose data transformation: one result per record, every record id exactly once (docs/formats.md section
//! 4). A record becomes its correlated NDJSON, gzipped so that the response stays within Firehose's 6 MB
//! as the input did; control messages are `Dropped`; a record that cannot be decoded, or that holds anything
//! that cannot be delivered, is `ProcessingFailed`, which Firehose backs up to S3 under `processing-failed/`.
//!
//! Every byte of the response counts against the cap, failed records' echoed data and the JSON around each
//! record included: a response over it is refused whole by Firehose.

use std::borrow::Cow;
use std::io::{self, Write};

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::firehose::{KinesisFirehoseResponse, KinesisFirehoseResponseRecord};
use flate2::write::GzEncoder;
use flate2::Compression;

use super::route::Forwarded;
use crate::deliver::{DeliverySink, Filter, Filtered, Ledger};
use crate::input::{InputError, Unit, UnitData};
use crate::output::ndjson::NdjsonSink;
use crate::output::Sink;
use crate::pipeline::{count_input_error, Pipeline, UnitOutcome};
use crate::record::LogRecord;
use crate::summary::Summary;
use crate::telemetry::Invocation;

/// Firehose refuses a response over 6 MB; this stays under it however "MB" is counted.
const MAX_RESPONSE_BYTES: usize = 6_000_000;
/// `{"records":[` and `]}`.
const RESPONSE_FRAME_BYTES: usize = 16;
/// `{"recordId":"","result":"ProcessingFailed","data":""},` around a record's id and data, rounded up.
const RECORD_FRAME_BYTES: usize = 64;

/// What a transformation does with the records (`TRACEHOSE_FIREHOSE_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FirehoseMode {
    /// Correlated NDJSON goes back to Firehose, which delivers it to its own destination.
    #[default]
    Transform,
    /// Records are shipped to tracehose's destinations here; each is answered `Ok` with its original data
    /// once every line of it was delivered (so Firehose's destination keeps an archive), `ProcessingFailed`
    /// otherwise (Firehose retries, then backs it up to S3).
    Forward,
}

impl FirehoseMode {
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        match lookup("TRACEHOSE_FIREHOSE_MODE").as_deref().map(str::trim) {
            None | Some("") | Some("transform") => Ok(Self::Transform),
            Some("forward") => Ok(Self::Forward),
            Some(other) => Err(format!(
                "TRACEHOSE_FIREHOSE_MODE={other:?} is not valid: expected transform or forward"
            )),
        }
    }
}

/// Answers a transformation shipped in `forward` mode, from what the ledger says of each record.
pub(super) fn answer_forwarded(records: &[Forwarded], ledger: &Ledger) -> KinesisFirehoseResponse {
    let frames: usize = records
        .iter()
        .map(|r| RECORD_FRAME_BYTES + r.record_id.as_deref().map_or(0, json_len))
        .sum();
    let mut budget = MAX_RESPONSE_BYTES.saturating_sub(RESPONSE_FRAME_BYTES + frames);
    let mut response = KinesisFirehoseResponse::default();
    response.records = records
        .iter()
        .map(|r| {
            let delivered = r.readable && ledger.unit_complete(r.unit);
            if delivered && r.only_control {
                return response_record(r.record_id.clone(), DROPPED, Vec::new());
            }
            if delivered && r.original.len() <= budget {
                let data = crate::input::decode::base64_decode(&r.original).unwrap_or_default();
                budget -= base64_len(data.len());
                return response_record(r.record_id.clone(), OK, data);
            }
            // Not delivered, or (never in practice: the answer echoes what came in) no room to echo it.
            response_record(r.record_id.clone(), FAILED, Vec::new())
        })
        .collect();
    response
}

/// A transformed record's sink: its lines go back to Firehose as NDJSON, its invocations' telemetry to the
/// delivery stage's lanes (which count what becomes of it in their own ledger rows).
struct WithTelemetry<'t, S> {
    records: S,
    telemetry: &'t mut DeliverySink,
    /// The delivery stage stopped taking invocations.
    telemetry_stopped: bool,
}

impl<S: Sink<Error = io::Error>> Sink for WithTelemetry<'_, S> {
    type Error = io::Error;

    fn admit<'a>(&mut self, message: Cow<'a, str>) -> Option<Cow<'a, str>> {
        self.records.admit(message)
    }

    fn write(&mut self, record: LogRecord<'_>) -> io::Result<()> {
        self.records.write(record)
    }

    /// A telemetry failure never fails the record: its lines go back to Firehose whatever becomes of the
    /// metrics. The only failure here is a delivery stage whose sender is gone: the invocations from then on
    /// are not sent, and that is reported once.
    fn invocation(&mut self, invocation: &Invocation) -> io::Result<()> {
        if !self.telemetry_stopped {
            if let Err(err) = self.telemetry.invocation(invocation) {
                eprintln!("tracehose: error: platform telemetry not sent: {err}");
                self.telemetry_stopped = true;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.records.flush()
    }
}

const OK: &str = "Ok";
const DROPPED: &str = "Dropped";
const FAILED: &str = "ProcessingFailed";

/// Answers a transformation event, already split into its records by `input::Input`, with the counts of
/// what it made of them. The records go back to Firehose; the platform telemetry of their invocations
/// (metrics, spans) has no place there, and goes to `telemetry`'s destinations instead.
pub(super) fn transform(
    pipeline: &mut Pipeline,
    items: Vec<Result<Unit<'_>, InputError>>,
    telemetry: &mut DeliverySink,
) -> (KinesisFirehoseResponse, Summary) {
    let filter = telemetry.shared_filter();
    let filter = filter.as_ref();
    let mut summary = Summary::default();
    // Every record is answered, so the frame of each is spent whatever happens: reserve it up front.
    let frames: usize = items
        .iter()
        .map(|item| match item {
            Ok(unit) => RECORD_FRAME_BYTES + unit.record_id.as_deref().map_or(0, json_len),
            Err(_) => 0,
        })
        .sum();
    let mut budget = MAX_RESPONSE_BYTES.saturating_sub(RESPONSE_FRAME_BYTES + frames);
    let mut records = Vec::new();
    for item in items {
        match item {
            Ok(unit) => records.push(transform_record(
                pipeline,
                unit,
                filter,
                telemetry,
                &mut summary,
                &mut budget,
            )),
            Err(err) => {
                // Without a record there is no id to answer: Firehose sees it missing and retries the batch.
                count_input_error(&err, &mut summary);
                eprintln!("tracehose: error: event: {err}");
            }
        }
    }
    let mut response = KinesisFirehoseResponse::default();
    response.records = records;
    (response, summary)
}

fn transform_record(
    pipeline: &mut Pipeline,
    unit: Unit<'_>,
    filter: &Filter,
    telemetry: &mut DeliverySink,
    summary: &mut Summary,
    budget: &mut usize,
) -> KinesisFirehoseResponseRecord {
    let record_id = unit.record_id.clone();
    let original: Cow<'_, str> = match &unit.data {
        UnitData::Encoded(text) => text.clone(),
        UnitData::Decoded(_) | UnitData::Malformed(_) => Cow::Borrowed(""),
    };
    let location = unit.location.clone();
    let before = *summary;
    let mut report = |message: String| eprintln!("tracehose: error: event: {message}");
    // NDJSON is compressed as it is written, into at most what is left of the response: a record of tiny
    // events inflates far beyond its size, and its output must never be held whole.
    let capped = CappedWriter {
        out: Vec::new(),
        cap: base64_decoded_len(*budget),
    };
    // What goes back to Firehose goes on to a destination: the same filter and scrub rules as every other.
    let mut sink = WithTelemetry {
        records: Filtered::new(
            NdjsonSink::new(GzEncoder::new(capped, Compression::fast())),
            filter,
        ),
        telemetry,
        telemetry_stopped: false,
    };
    let outcome = pipeline.process_unit(unit, &mut sink, summary, &mut report);
    let filtered = sink.records.filtered;
    let written = match outcome {
        Ok(UnitOutcome::Complete) => sink.records.inner.into_inner().finish().map(|capped| capped.out),
        Ok(UnitOutcome::Incomplete) => {
            summary.undeliver_since(&before);
            return failed(record_id, &original, budget);
        }
        Err(err) => Err(err),
    };
    let data = match written {
        Ok(data) => data,
        Err(err) => {
            summary.undeliver_since(&before);
            report(format!("{location}: {err}"));
            return failed(record_id, &original, budget);
        }
    };
    // The pipeline counts a filtered line delivered; the rules, not delivery, decided its fate.
    summary.delivered = summary.delivered.saturating_sub(filtered);
    summary.filtered += filtered;
    if summary.delivered == before.delivered {
        let dropped = summary.control_messages > before.control_messages || filtered > 0;
        return response_record(record_id, if dropped { DROPPED } else { OK }, Vec::new());
    }
    *budget -= base64_len(data.len());
    response_record(record_id, OK, data)
}

/// A failed record echoes its original data when the response has room for it, and carries none
/// otherwise: Firehose backs up what it sent, not what it gets back.
fn failed(record_id: Option<String>, original: &str, budget: &mut usize) -> KinesisFirehoseResponseRecord {
    let data = if original.len() <= *budget {
        crate::input::decode::base64_decode(original).unwrap_or_default()
    } else {
        Vec::new()
    };
    *budget -= base64_len(data.len());
    response_record(record_id, FAILED, data)
}

fn response_record(record_id: Option<String>, result: &str, data: Vec<u8>) -> KinesisFirehoseResponseRecord {
    let mut record = KinesisFirehoseResponseRecord::default();
    record.record_id = record_id;
    record.result = Some(result.to_owned());
    let mut encoded = Base64Data::default();
    *encoded = data;
    record.data = encoded;
    record
}

fn base64_len(bytes: usize) -> usize {
    bytes.div_ceil(3) * 4
}

/// The most bytes whose base64 fits in `encoded` bytes.
fn base64_decoded_len(encoded: usize) -> usize {
    encoded / 4 * 3
}

/// The length of a string as JSON, escapes included.
fn json_len(text: &str) -> usize {
    serde_json::to_string(text).map_or(text.len() * 6, |s| s.len())
}

/// A buffer that refuses to grow past its cap, so a response that would not fit fails early instead of
/// growing without bound.
struct CappedWriter {
    out: Vec<u8>,
    cap: usize,
}

impl Write for CappedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.out.len() + buf.len() > self.cap {
            return Err(io::Error::other(
                "the response would exceed Firehose's 6 MB limit",
            ));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
