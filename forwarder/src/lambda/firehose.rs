//! Firehose data transformation: one result per record, every record id exactly once (FORMATS.md section
//! 4). A record becomes its correlated NDJSON, gzipped so that the response stays within Firehose's 6 MB
//! as the input did; control messages are `Dropped`; a record that cannot be decoded is `ProcessingFailed`,
//! which Firehose backs up to S3 under `processing-failed/` for `tracehose replay`.

use std::io::Write;

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::firehose::{KinesisFirehoseResponse, KinesisFirehoseResponseRecord};
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::input::{InputError, Unit, UnitData};
use crate::output::ndjson::NdjsonSink;
use crate::pipeline::{Pipeline, UnitError};
use crate::process::print_summary;
use crate::summary::Summary;

/// Firehose refuses a response over 6 MB; keep a margin for the JSON around the data.
const MAX_RESPONSE_DATA_BYTES: usize = 5_800_000;

const OK: &str = "Ok";
const DROPPED: &str = "Dropped";
const FAILED: &str = "ProcessingFailed";

/// Answers a transformation event, already split into its records by `input::split_input`.
pub(super) fn transform(
    pipeline: &mut Pipeline,
    items: Vec<Result<Unit, InputError>>,
) -> KinesisFirehoseResponse {
    let mut summary = Summary::default();
    let mut records = Vec::new();
    let mut response_bytes = 0usize;
    for item in items {
        match item {
            Ok(unit) => records.push(transform_record(
                pipeline,
                unit,
                &mut summary,
                &mut response_bytes,
            )),
            Err(err) => {
                // Without a record id there is nothing to answer: Firehose will see the id missing and fail
                // the whole batch, which it retries.
                summary.failed_records += 1;
                eprintln!("tracehose: error: event: {err}");
            }
        }
    }
    let _ = print_summary(&mut std::io::stderr(), &summary);
    let mut response = KinesisFirehoseResponse::default();
    response.records = records;
    response
}

fn transform_record(
    pipeline: &mut Pipeline,
    unit: Unit,
    summary: &mut Summary,
    response_bytes: &mut usize,
) -> KinesisFirehoseResponseRecord {
    let record_id = unit.record_id.clone();
    let original = match &unit.data {
        UnitData::Encoded(text) => text.clone(),
        UnitData::Decoded(_) => String::new(),
    };
    let location = unit.location.clone();
    let failed = |reason: String| {
        eprintln!("tracehose: error: event: {reason}");
        response_record(record_id.clone(), FAILED, base64_decode_lossy(&original))
    };
    let before = *summary;
    let mut sink = NdjsonSink::new(Vec::new());
    match pipeline.process_unit(unit, &mut sink, summary) {
        Ok(()) => {}
        Err(UnitError::Input(err)) => return failed(err.to_string()),
        Err(UnitError::Sink { source, .. }) => return failed(format!("{location}: {source}")),
    }
    let ndjson = sink.into_inner();
    if ndjson.is_empty() {
        let only_control = summary.control_messages > before.control_messages;
        let result = if only_control { DROPPED } else { OK };
        return response_record(record_id, result, Vec::new());
    }
    let data = match gzip(&ndjson) {
        Ok(data) => data,
        Err(err) => return failed(format!("{location}: compressing output: {err}")),
    };
    // base64 grows the data by a third in the response.
    let encoded_len = data.len().div_ceil(3) * 4;
    if *response_bytes + encoded_len > MAX_RESPONSE_DATA_BYTES {
        summary.undeliver_since(&before);
        return failed(format!(
            "{location}: the response would exceed Firehose's 6 MB limit"
        ));
    }
    *response_bytes += encoded_len;
    response_record(record_id, OK, data)
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

/// The original record's bytes for a failed record; Firehose backs up what it sent, but echoing it keeps
/// the response meaningful to anyone reading it.
fn base64_decode_lossy(text: &str) -> Vec<u8> {
    crate::input::decode::base64_decode(text).unwrap_or_default()
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 4), Compression::fast());
    encoder.write_all(data)?;
    encoder.finish()
}
