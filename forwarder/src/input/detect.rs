//! Detection: splits a whole input (a file, a Lambda event, a request body) into [`Unit`]s by the keys of
//! each JSON object, and keeps going past anything broken. A broken object is skipped up to where the next
//! one starts, a corrupt gzip member costs only what follows it, and a record with a wrong field becomes a
//! malformed unit that still carries its record id, so that the source can be answered for it.

use std::borrow::Cow;
use std::sync::Arc;

use thiserror::Error;

use super::budget::Budget;
use super::decode::{gunzip_partial_within, is_gzip, DecodeError};
use super::lenient::Field;
use super::model::{BadPayload, Envelope, FirehoseRecord, SubscriptionPayload};
use crate::limits::Limits;

/// The input shapes of docs/formats.md, as told apart by their keys.
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

/// One independently decodable piece of input, borrowing from the input it came from.
#[derive(Debug)]
pub struct Unit<'a> {
    /// Where it is in the input, for error messages: `object 1: records[3] (recordId 4960...)`.
    pub location: String,
    pub shape: Shape,
    /// The Firehose record id (or a backup line's `dataId`), which a transformation response must echo.
    pub record_id: Option<String>,
    pub data: UnitData<'a>,
    pub firehose_arn: Option<Arc<str>>,
    pub region: Option<Arc<str>>,
    /// When Firehose received it: the only timestamp bare-text records have.
    pub arrival_ms: Option<i64>,
}

#[derive(Debug)]
pub enum UnitData<'a> {
    /// base64 of a (usually gzipped) subscription payload.
    Encoded(Cow<'a, str>),
    Decoded(SubscriptionPayload<'a>),
    /// A record whose envelope fields are unusable (`data: null`, a number...): it fails on its own.
    Malformed(BadPayload),
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
    #[error("{location}: {reason}")]
    Malformed {
        location: String,
        reason: String,
        /// Log events it held, lost with it (0 when there is no way to know).
        events: u64,
    },
    #[error("{location}: decoded record is not a CloudWatch Logs subscription payload (no messageType or logEvents)")]
    NotAPayload { location: String },
    #[error("{location}: decoded data is text, not a CloudWatch Logs subscription payload")]
    TextNotPayload { location: String },
    #[error("{location}: decoded record is neither gzip, JSON nor UTF-8 text")]
    Binary { location: String },
    #[error("input is neither gzip nor JSON (it starts with {start:?})")]
    NotJson { start: String },
    #[error("input is empty")]
    Empty,
}

impl InputError {
    /// Log events known to be lost with this error; 0 when their number cannot be known.
    pub fn lost_events(&self) -> u64 {
        match self {
            InputError::Malformed { events, .. } => *events,
            _ => 0,
        }
    }
}

/// A whole input, inflated when it is gzip (within the cap). Units borrow from it.
#[derive(Debug)]
pub struct Input<'a> {
    text: Cow<'a, [u8]>,
    /// Why inflating stopped early; what came out before it is still read.
    pub error: Option<InputError>,
}

impl<'a> Input<'a> {
    pub fn open(bytes: &'a [u8], limits: &Limits) -> Self {
        Self::open_within(bytes, limits, &mut Budget::default())
    }

    /// [`open`](Self::open), the input's own inflation drawing on its `budget` like its records'.
    pub fn open_within(bytes: &'a [u8], limits: &Limits, budget: &mut Budget) -> Self {
        if !is_gzip(bytes) {
            return Self {
                text: Cow::Borrowed(bytes),
                error: None,
            };
        }
        let (text, error) = gunzip_partial_within(bytes, limits.max_decompressed_bytes, budget);
        Self {
            text: Cow::Owned(text),
            error: error.map(|source| InputError::Decode {
                location: "input".into(),
                source,
            }),
        }
    }

    /// Every unit of the input, in order. JSON objects may follow each other with or without separators.
    pub fn units<'s>(&'s self, mut emit: impl FnMut(Result<Unit<'s>, InputError>)) {
        split_objects(&self.text, &mut emit);
    }
}

/// Splits a whole input into units, in order, then reports what stopped its decompression early, if
/// anything did.
pub fn split_input(bytes: &[u8], limits: &Limits, mut emit: impl FnMut(Result<Unit<'_>, InputError>)) {
    let mut input = Input::open(bytes, limits);
    let error = input.error.take();
    input.units(&mut emit);
    if let Some(error) = error {
        emit(Err(error));
    }
}

fn split_objects<'s>(text: &'s [u8], emit: &mut impl FnMut(Result<Unit<'s>, InputError>)) {
    let Some(first) = text.iter().position(|b| !b.is_ascii_whitespace()) else {
        return emit(Err(InputError::Empty));
    };
    if text[first] != b'{' {
        let start = String::from_utf8_lossy(&text[first..text.len().min(first + 16)]).into_owned();
        return emit(Err(InputError::NotJson { start }));
    }
    let mut offset = first;
    let mut object = 0usize;
    while offset < text.len() {
        let segment = &text[offset..];
        let mut stream = serde_json::Deserializer::from_slice(segment).into_iter::<Envelope<'s>>();
        let error = loop {
            match stream.next() {
                None => return,
                Some(Ok(envelope)) => {
                    object += 1;
                    classify(envelope, &format!("object {object}"), emit);
                }
                Some(Err(error)) => break error,
            }
        };
        object += 1;
        let parsed = stream.byte_offset();
        let start = offset + parsed + skip_whitespace(&segment[parsed..]);
        let failed_at = offset + error_offset(segment, &error).max(parsed + 1);
        let resume = resume_point(text, start, failed_at);
        emit(Err(InputError::Json {
            location: format!("object {object} (bytes {start}..{resume} skipped)"),
            source: error,
        }));
        offset = resume;
    }
}

fn skip_whitespace(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_whitespace()).count()
}

/// The byte offset of a serde_json error, from its line and column (serde_json counts columns in bytes
/// from the start of the line). Costs one scan of the text before the error, which is then skipped.
fn error_offset(segment: &[u8], error: &serde_json::Error) -> usize {
    let line_start = if error.line() <= 1 {
        0
    } else {
        memchr::memchr_iter(b'\n', segment)
            .nth(error.line() - 2)
            .map_or(segment.len(), |nl| nl + 1)
    };
    line_start.saturating_add(error.column()).min(segment.len())
}

/// Where reading resumes after a broken object that started at `start` and failed at `failed_at`: the next
/// `{` that opens an object as Firehose and JSON-lines files lay them out, right after a `}` (objects back
/// to back, `}{`) or first on its line. Searching from the failure point, never from the object's start,
/// keeps the whole input one pass even when every object is broken. Garbage between objects is skipped to
/// the next `{`.
fn resume_point(text: &[u8], start: usize, failed_at: usize) -> usize {
    let from = failed_at.min(text.len());
    if text.get(start) != Some(&b'{') {
        return memchr::memchr(b'{', &text[from..]).map_or(text.len(), |at| from + at);
    }
    for at in memchr::memchr_iter(b'{', &text[from..]) {
        let p = from + at;
        let before = &text[..p];
        let gap = before
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        let opens = match before.len().checked_sub(gap + 1) {
            None => true,
            Some(q) => before[q] == b'}' || before[q + 1..].contains(&b'\n'),
        };
        if opens {
            return p;
        }
    }
    text.len()
}

fn classify<'s>(envelope: Envelope<'s>, location: &str, emit: &mut impl FnMut(Result<Unit<'s>, InputError>)) {
    let malformed = |reason: String, events: u64| InputError::Malformed {
        location: location.to_owned(),
        reason,
        events,
    };
    if envelope.awslogs.is_present() {
        let data = envelope
            .awslogs
            .require("awslogs")
            .and_then(|awslogs| awslogs.data.require("awslogs.data"));
        return emit(match data {
            Ok(data) => Ok(Unit {
                location: format!("{location}: awslogs.data"),
                shape: Shape::DirectSubscription,
                record_id: None,
                data: UnitData::Encoded(data),
                firehose_arn: None,
                region: None,
                arrival_ms: None,
            }),
            Err(reason) => Err(malformed(reason, 0)),
        });
    }
    if envelope.records.is_present() {
        let shape = if envelope.invocation_id.is_present() || envelope.delivery_stream_arn.is_present() {
            Shape::FirehoseTransformation
        } else {
            Shape::FirehoseHttpEndpoint
        };
        let records = match envelope.records.require("records") {
            Ok(records) => records,
            Err(reason) => return emit(Err(malformed(reason, 0))),
        };
        let firehose_arn = envelope
            .delivery_stream_arn
            .ok()
            .map(|arn| Arc::<str>::from(arn.as_ref()));
        let region = envelope
            .region
            .ok()
            .map(|r| Arc::<str>::from(r.as_ref()))
            .or_else(|| firehose_arn.as_deref().and_then(region_of_arn).map(Arc::from));
        for (i, record) in records.into_iter().enumerate() {
            let mut unit = firehose_record(record, shape, &format!("{location}: records[{i}]"));
            unit.firehose_arn = firehose_arn.clone();
            unit.region = region.clone();
            emit(Ok(unit));
        }
        return;
    }
    if envelope.is_payload() {
        return emit(match envelope.into_payload() {
            Ok(payload) => Ok(Unit {
                location: location.to_owned(),
                shape: Shape::SubscriptionPayload,
                record_id: None,
                data: UnitData::Decoded(payload),
                firehose_arn: None,
                region: None,
                arrival_ms: None,
            }),
            Err(bad) => Err(malformed(bad.reason, bad.events)),
        });
    }
    if envelope.raw_data.is_present() {
        let data_id = envelope.data_id.ok().map(Cow::into_owned);
        let location = match (&data_id, envelope.error_code.ok()) {
            (Some(id), _) => format!("{location}: rawData (dataId {id})"),
            (None, Some(code)) => format!("{location}: rawData ({code})"),
            (None, None) => format!("{location}: rawData"),
        };
        let data = match envelope.raw_data.require("rawData") {
            Ok(raw) => UnitData::Encoded(raw),
            Err(reason) => UnitData::Malformed(BadPayload { reason, events: 0 }),
        };
        return emit(Ok(Unit {
            location,
            shape: Shape::BackupRecord,
            record_id: data_id,
            data,
            firehose_arn: None,
            region: None,
            arrival_ms: envelope.arrival_timestamp.ok().map(|m| m.0),
        }));
    }
    emit(Err(InputError::Unrecognised {
        location: location.to_owned(),
    }))
}

/// One Firehose record as a unit. A record that is not an object, or whose `data` is not a string, is a
/// malformed unit; a transformation record also needs its `recordId`, without which no answer can name it.
fn firehose_record<'s>(record: Field<FirehoseRecord<'s>>, shape: Shape, location: &str) -> Unit<'s> {
    let mut unit = Unit {
        location: location.to_owned(),
        shape,
        record_id: None,
        data: UnitData::Malformed(BadPayload {
            reason: String::new(),
            events: 0,
        }),
        firehose_arn: None,
        region: None,
        arrival_ms: None,
    };
    let record = match record.require("the record") {
        Ok(record) => record,
        Err(reason) => {
            unit.data = UnitData::Malformed(BadPayload { reason, events: 0 });
            return unit;
        }
    };
    let record_id = record.record_id.require("recordId");
    if let Ok(id) = &record_id {
        unit.location = format!("{location} (recordId {id})");
    }
    unit.arrival_ms = record.approximate_arrival_timestamp.ok().map(|m| m.0);
    let data = match (shape, record_id) {
        (Shape::FirehoseTransformation, Err(reason)) => {
            Err(format!("{reason}: no result can name this record"))
        }
        (_, record_id) => {
            unit.record_id = record_id.ok().map(Cow::into_owned);
            record.data.require("data")
        }
    };
    unit.data = match data {
        Ok(data) => UnitData::Encoded(data),
        Err(reason) => UnitData::Malformed(BadPayload { reason, events: 0 }),
    };
    unit
}

/// `arn:aws:firehose:eu-west-1:123456789012:deliverystream/x` -> `eu-west-1`.
pub(crate) fn region_of_arn(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}
