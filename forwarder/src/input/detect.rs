use std::sync::Arc;

use thiserror::Error;

use super::decode::{base64_decode, maybe_gunzip, DecodeError};
use super::model::{Envelope, LogEvent, SubscriptionPayload};
use crate::limits::Limits;

/// The input shapes of FORMATS.md, as told apart by their keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"awslogs":{"data":...}}`: a Lambda subscription filter invoking tracehose directly.
    DirectSubscription,
    /// `{"invocationId","deliveryStreamArn","records":[...]}`: Firehose data transformation.
    FirehoseTransformation,
    /// `{"requestId","timestamp","records":[...]}`: a Firehose HTTP endpoint delivery body.
    FirehoseHttpEndpoint,
    /// `{"messageType","logEvents",...}`: a subscription payload itself (an S3 object holds many).
    SubscriptionPayload,
    /// `{"rawData",...}`: a line of a Firehose failed-data backup object.
    BackupRecord,
}

impl Shape {
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::DirectSubscription => "direct subscription",
            Shape::FirehoseTransformation => "Firehose transformation",
            Shape::FirehoseHttpEndpoint => "Firehose HTTP endpoint delivery",
            Shape::SubscriptionPayload => "subscription payload",
            Shape::BackupRecord => "Firehose backup record",
        }
    }
}

/// One independently decodable piece of input.
#[derive(Debug)]
pub struct Unit {
    /// Where it is in the input, for error messages: `object 1: records[3] (recordId 4960...)`.
    pub location: String,
    pub shape: Shape,
    /// The Firehose record id, which a transformation response must echo.
    pub record_id: Option<String>,
    pub data: UnitData,
    pub firehose_arn: Option<Arc<str>>,
    pub region: Option<Arc<str>>,
    /// When Firehose received it: the only timestamp bare-text records have.
    pub arrival_ms: Option<i64>,
}

#[derive(Debug)]
pub enum UnitData {
    /// base64 of a (usually gzipped) subscription payload.
    Encoded(String),
    Decoded(SubscriptionPayload),
}

#[derive(Debug, Error)]
pub enum InputError {
    #[error("{location}: {source}")]
    Decode { location: String, source: DecodeError },
    #[error("{location}: invalid JSON: {source}")]
    Json {
        location: String,
        source: serde_json::Error,
    },
    #[error("{location}: not a recognised input: expected one of awslogs, records, logEvents or rawData")]
    Unrecognised { location: String },
    #[error("{location}: decoded record is not a CloudWatch Logs subscription payload (no messageType or logEvents)")]
    NotAPayload { location: String },
    #[error("{location}: decoded record is neither gzip, JSON nor UTF-8 text")]
    Binary { location: String },
    #[error("input is neither gzip nor JSON (it starts with {start:?})")]
    NotJson { start: String },
}

/// Splits a whole input (a file, a Lambda event, a request body) into units, in order. A gzipped input is
/// inflated first, within the cap. JSON objects may follow each other with or without separators; after a
/// syntax error the reader resumes at the next line, so one broken backup line costs only itself.
pub fn split_input(bytes: &[u8], limits: &Limits, mut emit: impl FnMut(Result<Unit, InputError>)) {
    let inflated;
    let text: &[u8] = if super::decode::is_gzip(bytes) {
        match super::decode::gunzip_capped(bytes, limits.max_decompressed_bytes) {
            Ok(data) => {
                inflated = data;
                &inflated
            }
            Err(source) => {
                return emit(Err(InputError::Decode {
                    location: "input".into(),
                    source,
                }))
            }
        }
    } else {
        bytes
    };
    let first = text.iter().position(|b| !b.is_ascii_whitespace());
    if let Some(first) = first.filter(|&i| text[i] != b'{') {
        let start = String::from_utf8_lossy(&text[first..text.len().min(first + 16)]).into_owned();
        return emit(Err(InputError::NotJson { start }));
    }
    let mut offset = 0;
    let mut object = 0usize;
    while offset < text.len() {
        let mut stream = serde_json::Deserializer::from_slice(&text[offset..]).into_iter::<Envelope>();
        let mut failed = false;
        for next in stream.by_ref() {
            object += 1;
            let location = format!("object {object}");
            match next {
                Ok(envelope) => classify(envelope, &location, &mut emit),
                Err(source) => {
                    emit(Err(InputError::Json { location, source }));
                    failed = true;
                    break;
                }
            }
        }
        if !failed {
            break;
        }
        offset = next_object_line(text, offset + stream.byte_offset());
    }
}

/// Where reading resumes after a broken object: the next line that starts with `{` in its first column, as
/// every line of a JSON-lines file does, or the end of the input.
fn next_object_line(text: &[u8], failed_at: usize) -> usize {
    let mut from = failed_at;
    while let Some(nl) = memchr::memchr(b'\n', &text[from..]) {
        from += nl + 1;
        if text.get(from) == Some(&b'{') {
            return from;
        }
    }
    text.len()
}

fn classify(envelope: Envelope, location: &str, emit: &mut impl FnMut(Result<Unit, InputError>)) {
    let region = envelope.region.as_deref().map(Arc::from);
    let firehose_arn = envelope.delivery_stream_arn.as_deref().map(Arc::from);
    if let Some(awslogs) = envelope.awslogs {
        return emit(Ok(Unit {
            location: format!("{location}: awslogs.data"),
            shape: Shape::DirectSubscription,
            record_id: None,
            data: UnitData::Encoded(awslogs.data),
            firehose_arn: None,
            region: None,
            arrival_ms: None,
        }));
    }
    if let Some(records) = envelope.records {
        let shape = if envelope.invocation_id.is_some() || envelope.delivery_stream_arn.is_some() {
            Shape::FirehoseTransformation
        } else {
            Shape::FirehoseHttpEndpoint
        };
        let region = region.or_else(|| firehose_arn.as_deref().and_then(region_of_arn).map(Arc::from));
        for (i, record) in records.into_iter().enumerate() {
            let location = match &record.record_id {
                Some(id) => format!("{location}: records[{i}] (recordId {id})"),
                None => format!("{location}: records[{i}]"),
            };
            emit(Ok(Unit {
                location,
                shape,
                record_id: record.record_id,
                data: UnitData::Encoded(record.data),
                firehose_arn: firehose_arn.clone(),
                region: region.clone(),
                arrival_ms: record.approximate_arrival_timestamp,
            }));
        }
        return;
    }
    if envelope.log_events.is_some() || envelope.message_type.is_some() {
        let payload = SubscriptionPayload {
            message_type: envelope.message_type.unwrap_or_default(),
            owner: envelope.owner,
            log_group: envelope.log_group.unwrap_or_default(),
            log_stream: envelope.log_stream.unwrap_or_default(),
            subscription_filters: envelope.subscription_filters.unwrap_or_default(),
            log_events: envelope.log_events.unwrap_or_default(),
        };
        return emit(Ok(Unit {
            location: location.to_owned(),
            shape: Shape::SubscriptionPayload,
            record_id: None,
            data: UnitData::Decoded(payload),
            firehose_arn: None,
            region: None,
            arrival_ms: None,
        }));
    }
    if let Some(raw) = envelope.raw_data {
        let location = match (&envelope.data_id, &envelope.error_code) {
            (Some(id), _) => format!("{location}: rawData (dataId {id})"),
            (None, Some(code)) => format!("{location}: rawData ({code})"),
            (None, None) => format!("{location}: rawData"),
        };
        return emit(Ok(Unit {
            location,
            shape: Shape::BackupRecord,
            record_id: envelope.data_id,
            data: UnitData::Encoded(raw),
            firehose_arn: None,
            region: None,
            arrival_ms: envelope.arrival_timestamp,
        }));
    }
    emit(Err(InputError::Unrecognised {
        location: location.to_owned(),
    }))
}

/// `arn:aws:firehose:eu-west-1:123456789012:deliverystream/x` -> `eu-west-1`.
pub(crate) fn region_of_arn(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// Decodes one unit into the payloads it holds: normally one; several when records were concatenated; a
/// synthetic one when Firehose's own decompression and message extraction left bare text.
pub fn decode_unit(
    unit_data: UnitData,
    location: &str,
    arrival_ms: Option<i64>,
    limits: &Limits,
) -> Result<Vec<SubscriptionPayload>, InputError> {
    let encoded = match unit_data {
        UnitData::Decoded(payload) => return Ok(vec![payload]),
        UnitData::Encoded(text) => text,
    };
    let decode_err = |source| InputError::Decode {
        location: location.to_owned(),
        source,
    };
    let bytes = base64_decode(&encoded).map_err(decode_err)?;
    drop(encoded);
    let bytes = maybe_gunzip(bytes, limits.max_decompressed_bytes).map_err(decode_err)?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        let mut payloads = Vec::new();
        for next in serde_json::Deserializer::from_slice(&bytes).into_iter::<SubscriptionPayload>() {
            let payload = next.map_err(|source| InputError::Json {
                location: location.to_owned(),
                source,
            })?;
            if payload.message_type.is_empty() && payload.log_events.is_empty() {
                return Err(InputError::NotAPayload {
                    location: location.to_owned(),
                });
            }
            payloads.push(payload);
        }
        return Ok(payloads);
    }
    let text = String::from_utf8(bytes).map_err(|_| InputError::Binary {
        location: location.to_owned(),
    })?;
    Ok(vec![bare_text_payload(&text, arrival_ms.unwrap_or(0))])
}

fn bare_text_payload(text: &str, timestamp: i64) -> SubscriptionPayload {
    let log_events = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| LogEvent {
            id: None,
            timestamp,
            message: line.to_owned(),
        })
        .collect();
    SubscriptionPayload {
        message_type: "DATA_MESSAGE".into(),
        log_events,
        ..Default::default()
    }
}
