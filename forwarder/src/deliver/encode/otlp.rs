//! OTLP/HTTP logs in protobuf (docs/formats.md section 7): each entry is one encoded `LogRecord`; a body
//! frames each run of one source as a `ResourceLogs` with the source's semantic-convention resource
//! attributes and one `ScopeLogs` of scope `tracehose`, without decoding the entries again.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use prost::Message;

use super::cut_text;
use super::proto::{attribute, bytes_field, fixed64, frame, framed, string_field, Scalar};
use super::{
    non_empty, Encoded, Encoder, Entries, JsonMessage, PerKind, PerSource, Refused, RequestLimits,
    SettingsError, Wire,
};
use crate::parse::Severity;
use crate::record::{AttrValue, LogRecord, Source};

/// Any OpenTelemetry backend or collector: the body size the shared export crate uses. OTLP sets no limit
/// on the records of a request; this one only keeps a batch's bookkeeping small.
pub const OTLP_LIMITS: RequestLimits = RequestLimits {
    max_body_bytes: 4 * 1024 * 1024,
    max_entries: 100_000,
};

/// Dynatrace's OTLP logs endpoint: 2 MB per request, read as a power of ten to keep within either reading.
pub const DYNATRACE_OTLP_LIMITS: RequestLimits = RequestLimits {
    max_body_bytes: 2_000_000,
    ..OTLP_LIMITS
};

const SCOPE_NAME: &str = "tracehose";

/// The OpenTelemetry SDK variables: `OTEL_SERVICE_NAME`, and `OTEL_RESOURCE_ATTRIBUTES` (`k=v,k2=v2`, values
/// percent-encoded).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct OtlpSettings {
    pub service_name: Option<String>,
    /// In the order given; `service.name` among them yields to `OTEL_SERVICE_NAME`.
    pub resource_attributes: Vec<(String, String)>,
}

impl OtlpSettings {
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        const VAR: &str = "OTEL_RESOURCE_ATTRIBUTES";
        let mut resource_attributes = Vec::new();
        for (n, pair) in lookup(VAR).unwrap_or_default().split(',').enumerate() {
            if pair.trim().is_empty() {
                continue;
            }
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| SettingsError::invalid(VAR, format!("pair {} has no '='", n + 1)))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(SettingsError::invalid(
                    VAR,
                    format!("pair {} has an empty key", n + 1),
                ));
            }
            let value = percent_decode(value.trim()).ok_or_else(|| {
                SettingsError::invalid(
                    VAR,
                    format!("the value of {key} is not valid percent-encoded UTF-8"),
                )
            })?;
            resource_attributes.push((key.to_owned(), value));
        }
        Ok(Self {
            service_name: non_empty(lookup, "OTEL_SERVICE_NAME"),
            resource_attributes,
        })
    }
}

/// `%XX` escapes decoded; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[derive(Debug)]
pub struct OtlpEncoder {
    settings: OtlpSettings,
    limits: RequestLimits,
    /// Each source's `Resource`, encoded.
    resources: PerSource<Vec<u8>>,
    /// The `InstrumentationScope`, encoded.
    scope: Vec<u8>,
    /// A kind of record's own attributes, encoded, and whether a value was cut.
    own: PerKind<(Vec<u8>, bool)>,
}

impl OtlpEncoder {
    /// `limits`: [`OTLP_LIMITS`], [`DYNATRACE_OTLP_LIMITS`], or what a backend documents.
    pub fn new(settings: OtlpSettings, limits: RequestLimits) -> Self {
        let scope = InstrumentationScope {
            name: SCOPE_NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Default::default()
        };
        Self {
            settings,
            limits,
            resources: PerSource::default(),
            scope: scope.encode_to_vec(),
            own: PerKind::default(),
        }
    }

    /// Longest body text: half a request, so that a record with its resource always fits one.
    fn max_text_bytes(&self) -> usize {
        self.limits.max_body_bytes / 2
    }

    /// Longest string attribute: a sixteenth of a request, far beyond any real request id or status.
    fn max_attribute_bytes(&self) -> usize {
        self.limits.max_body_bytes / 16
    }

    fn resource(&self, source: &Arc<Source>) -> Arc<Vec<u8>> {
        self.resources.get(source, |s| self.encode_resource(s))
    }

    /// The source's facts first, then the user's attributes: on a shared key the source wins, except
    /// `service.name`, which is `OTEL_SERVICE_NAME`, else the user's, else the function, else the log group.
    fn encode_resource(&self, source: &Source) -> Vec<u8> {
        let mut attributes = Vec::new();
        let mut text = |key: &str, value: &str| attributes.push(key_value(key, string(value)));
        text("cloud.provider", "aws");
        if source.function_name.is_some() {
            text("cloud.platform", "aws_lambda");
        }
        let user_service = self
            .settings
            .resource_attributes
            .iter()
            .find(|(k, _)| k == "service.name");
        let service = self
            .settings
            .service_name
            .as_deref()
            .or(user_service.map(|(_, v)| v.as_str()))
            .or(source.function_name.as_deref())
            .unwrap_or(&source.log_group);
        text("service.name", service);
        for (key, value) in [
            ("aws.log.group.names", &source.log_group),
            ("aws.log.stream.names", &source.log_stream),
        ] {
            let values = vec![AnyValue {
                value: Some(string(value)),
            }];
            attributes.push(key_value(
                key,
                any_value::Value::ArrayValue(ArrayValue { values }),
            ));
        }
        let max = self.max_attribute_bytes();
        // A set, not a scan per key: the common attributes are as many as a Firehose header holds.
        let mut seen: HashSet<String> = attributes.iter().map(|a| a.key.clone()).collect();
        source.visit_attributes(&mut |key, value| {
            if seen.insert(key.to_owned()) {
                attributes.push(key_value(key, value_of(value, max).0));
            }
        });
        for (key, value) in &self.settings.resource_attributes {
            if seen.insert(key.clone()) {
                attributes.push(key_value(key, string(value)));
            }
        }
        Resource {
            attributes,
            ..Default::default()
        }
        .encode_to_vec()
    }

    /// Bytes of a `ResourceLogs` around `records_len` bytes of framed records, and of its parts.
    fn run_lengths(&self, resource_len: usize, records_len: usize) -> (usize, usize) {
        let scope_logs = framed(self.scope.len()) + records_len;
        (framed(resource_len) + framed(scope_logs), scope_logs)
    }
}

fn key_value(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
    }
}

fn string(value: &str) -> any_value::Value {
    any_value::Value::StringValue(value.to_owned())
}

/// The value, a string cut to `max` bytes with the marker; and whether it was cut.
fn value_of(value: AttrValue<'_>, max: usize) -> (any_value::Value, bool) {
    match value {
        AttrValue::Str(s) => {
            let (text, cut) = cut_text(s, max);
            (any_value::Value::StringValue(text.into_owned()), cut)
        }
        AttrValue::UInt(n) => (
            any_value::Value::IntValue(i64::try_from(n).unwrap_or(i64::MAX)),
            false,
        ),
        AttrValue::Float(x) => (any_value::Value::DoubleValue(x), false),
        AttrValue::Bool(b) => (any_value::Value::BoolValue(b), false),
    }
}

/// The OpenTelemetry severity number of the first level of each range.
fn severity_number(severity: Severity) -> i32 {
    match severity {
        Severity::Unspecified => 0,
        Severity::Trace => 1,
        Severity::Debug => 5,
        Severity::Info => 9,
        Severity::Warn => 13,
        Severity::Error => 17,
        Severity::Fatal => 21,
    }
}

fn unix_nanos_of_ms(ms: i64) -> u64 {
    // Zero means unknown to OTLP: what a time before 1970 or past 2554 becomes.
    u64::try_from(ms)
        .ok()
        .and_then(|ms| ms.checked_mul(1_000_000))
        .unwrap_or(0)
}

/// The W3C sampled flag: a line that carries a trace id belongs to a trace someone recorded.
const SAMPLED: u32 = 0x01;

impl Wire for OtlpEncoder {
    fn name(&self) -> &'static str {
        "otlp"
    }

    fn content_type(&self) -> &'static str {
        "application/x-protobuf"
    }

    fn limits(&self) -> RequestLimits {
        self.limits
    }

    fn refused(&self, answer: &tracehose_export::Delivered, entries: usize) -> Refused {
        super::answer::otlp_logs(answer, entries)
    }

    fn body_overhead(&self) -> usize {
        0
    }

    fn run_overhead(&self, source: &Source) -> usize {
        let resource_len = match self.resources.peek(source) {
            Some(resource) => resource.len(),
            None => self.encode_resource(source).len(),
        };
        // The varints of a run's lengths grow with its records: count them at their widest.
        let widest = encoded_len_varint(u64::MAX);
        3 * (1 + widest) + resource_len + framed(self.scope.len())
    }

    fn entry_overhead(&self, entry_len: usize) -> usize {
        framed(entry_len) - entry_len
    }

    fn body(&self, entries: &Entries, range: std::ops::Range<usize>) -> Vec<u8> {
        let mut out = Vec::new();
        for (run, source) in entries.runs(range) {
            let resource = self.resource(&source);
            let records_len: usize = run.clone().map(|i| framed(entries.entry(i).len())).sum();
            let (resource_logs, scope_logs) = self.run_lengths(resource.len(), records_len);
            // ExportLogsServiceRequest.resource_logs = 1
            frame(&mut out, 1, resource_logs);
            // ResourceLogs.resource = 1, ResourceLogs.scope_logs = 2
            frame(&mut out, 1, resource.len());
            out.extend_from_slice(&resource);
            frame(&mut out, 2, scope_logs);
            // ScopeLogs.scope = 1, ScopeLogs.log_records = 2
            frame(&mut out, 1, self.scope.len());
            out.extend_from_slice(&self.scope);
            for i in run {
                let entry = entries.entry(i);
                frame(&mut out, 2, entry.len());
                out.extend_from_slice(entry);
            }
        }
        out
    }
}

impl Encoder for OtlpEncoder {
    fn encode(&self, record: &LogRecord, _message: &JsonMessage<'_>, out: &mut Vec<u8>) -> Encoded {
        let observed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0));
        self.encode_at(record, observed, out)
    }
}

impl OtlpEncoder {
    /// One `LogRecord` message written field by field, in tag order and with proto3's defaults left out, as
    /// prost writes the generated type: the same bytes without building owned values for every record.
    fn encode_at(&self, record: &LogRecord, observed_unix_nano: u64, out: &mut Vec<u8>) -> Encoded {
        let start = out.len();
        let max_attribute = self.max_attribute_bytes();
        let mut truncated = false;
        // LogRecord.time_unix_nano = 1 (fixed64)
        fixed64(out, 1, unix_nanos_of_ms(record.timestamp_ms));
        // LogRecord.severity_number = 2 (enum, never negative here)
        let severity = severity_number(record.severity);
        if severity != 0 {
            encode_key(2, WireType::Varint, out);
            encode_varint(severity as u64, out);
        }
        // LogRecord.severity_text = 3
        if record.severity != Severity::Unspecified {
            string_field(out, 3, record.severity.as_str());
        }
        // LogRecord.body = 5: an AnyValue, present even when empty
        let (body, cut) = cut_text(&record.message, self.max_text_bytes());
        truncated |= cut;
        let body = Scalar::Str(body);
        frame(out, 5, body.len());
        body.write(out);
        // LogRecord.attributes = 6
        if let Some(request_id) = &record.request_id {
            truncated |= attribute(
                out,
                "faas.invocation_id",
                AttrValue::Str(request_id),
                max_attribute,
            );
        }
        let own_attributes = |out: &mut Vec<u8>| {
            let mut cut = false;
            record.visit_attributes(&mut |key, value| cut |= attribute(out, key, value, max_attribute));
            cut
        };
        match self.own.get(record, |_| {
            let mut bytes = Vec::new();
            let cut = own_attributes(&mut bytes);
            (bytes, cut)
        }) {
            Some(own) => {
                out.extend_from_slice(&own.0);
                truncated |= own.1;
            }
            None => truncated |= own_attributes(out),
        }
        // LogRecord.flags = 8 (fixed32)
        if record.trace_id.is_some() {
            encode_key(8, WireType::ThirtyTwoBit, out);
            out.extend_from_slice(&SAMPLED.to_le_bytes());
        }
        // LogRecord.trace_id = 9, LogRecord.span_id = 10
        if let Some(trace_id) = record.trace_id {
            bytes_field(out, 9, &trace_id.to_bytes());
        }
        if let Some(span_id) = record.span_id {
            bytes_field(out, 10, &span_id.to_bytes());
        }
        // LogRecord.observed_time_unix_nano = 11 (fixed64)
        fixed64(out, 11, observed_unix_nano);
        Encoded {
            bytes: out.len() - start,
            truncated,
        }
    }
}

#[cfg(test)]
#[path = "otlp_tests.rs"]
mod tests;
