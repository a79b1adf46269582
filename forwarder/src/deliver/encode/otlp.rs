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
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord as OtlpRecord, ResourceLogs};
    use tracehose_tracecontext::{SpanId, TraceId};

    use super::*;
    use crate::deliver::encode::testing::{body, entries, lambda_source, line, report, SPAN, TRACE};
    use crate::deliver::encode::TRUNCATED;

    fn settings(pairs: &[(&str, &str)]) -> Result<OtlpSettings, SettingsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        OtlpSettings::from_lookup(&move |k| map.get(k).cloned())
    }

    fn decode(encoder: &OtlpEncoder, records: &[LogRecord]) -> (ExportLogsServiceRequest, Entries, bool) {
        let (entries, truncated) = entries(encoder, records);
        let body = body(encoder, &entries);
        assert!(body.len() <= encoder.limits().max_body_bytes);
        (
            ExportLogsServiceRequest::decode(body.as_slice()).unwrap(),
            entries,
            truncated,
        )
    }

    fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
        let kv = attributes.iter().find(|kv| kv.key == key)?;
        kv.value.as_ref()?.value.as_ref()
    }

    fn text<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
        match attr(attributes, key)? {
            any_value::Value::StringValue(s) => Some(s),
            other => panic!("{key}: {other:?}"),
        }
    }

    fn resource_attributes(resource_logs: &ResourceLogs) -> &[KeyValue] {
        &resource_logs.resource.as_ref().unwrap().attributes
    }

    #[test]
    fn the_body_holds_exactly_the_encoded_records() {
        let encoder = OtlpEncoder::new(OtlpSettings::default(), OTLP_LIMITS);
        let (a, b) = (lambda_source("a"), lambda_source("b"));
        let records = [line(&a, "1"), report(&a), line(&b, "3"), line(&a, "4")];
        let (request, entries, truncated) = decode(&encoder, &records);
        assert!(!truncated);
        let runs: Vec<_> = request
            .resource_logs
            .iter()
            .map(|r| text(resource_attributes(r), "faas.name"))
            .collect();
        assert_eq!(runs, [Some("a"), Some("b"), Some("a")]);
        let decoded: Vec<OtlpRecord> = request
            .resource_logs
            .iter()
            .flat_map(|r| {
                assert_eq!(r.scope_logs.len(), 1);
                assert_eq!(r.scope_logs[0].scope.as_ref().unwrap().name, "tracehose");
                r.scope_logs[0].log_records.clone()
            })
            .collect();
        let encoded: Vec<OtlpRecord> = (0..entries.len())
            .map(|i| OtlpRecord::decode(entries.entry(i)).unwrap())
            .collect();
        assert_eq!(decoded, encoded);
        assert_eq!(decoded.len(), records.len());
    }

    /// What the encoder wrote before it wrote fields itself: the generated type, built and encoded by prost.
    fn encoded_by_prost(encoder: &OtlpEncoder, record: &LogRecord, observed: u64) -> Vec<u8> {
        let max_attribute = encoder.max_attribute_bytes();
        let mut attributes = Vec::new();
        if let Some(request_id) = &record.request_id {
            let value = value_of(AttrValue::Str(request_id), max_attribute).0;
            attributes.push(key_value("faas.invocation_id", value));
        }
        record.visit_attributes(&mut |key, value| {
            attributes.push(key_value(key, value_of(value, max_attribute).0));
        });
        let (body, _) = cut_text(&record.message, encoder.max_text_bytes());
        OtlpRecord {
            time_unix_nano: unix_nanos_of_ms(record.timestamp_ms),
            observed_time_unix_nano: observed,
            severity_number: severity_number(record.severity),
            severity_text: match record.severity {
                Severity::Unspecified => String::new(),
                s => s.as_str().to_owned(),
            },
            body: Some(AnyValue {
                value: Some(string(&body)),
            }),
            attributes,
            flags: if record.trace_id.is_some() { SAMPLED } else { 0 },
            trace_id: record.trace_id.map(|t| t.to_bytes().to_vec()).unwrap_or_default(),
            span_id: record.span_id.map(|s| s.to_bytes().to_vec()).unwrap_or_default(),
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn writes_the_bytes_prost_writes_for_the_generated_type() {
        let source = lambda_source("checkout");
        let mut odd = report(&source);
        odd.timestamp_ms = -5;
        odd.severity = Severity::Fatal;
        odd.cold_start = Some(false);
        odd.request_id = Some(Arc::from(""));
        if let Some(details) = odd.details.as_mut() {
            details.metrics.memory_size_mb = Some(u64::MAX);
            details.metrics.max_memory_used_mb = Some(0);
            details.metrics.billed_duration_ms = Some(f64::NAN);
            details.metrics.init_duration_ms = Some(-0.0);
            details.error_type = Some("ß".repeat(OTLP_LIMITS.max_body_bytes / 16));
        }
        let mut no_trace = line(&source, "");
        no_trace.trace_id = None;
        no_trace.timestamp_ms = 0;
        no_trace.request_id = None;
        no_trace.join = None;
        no_trace.cold_start = None;
        let records = [
            line(&source, "paid"),
            report(&source),
            odd,
            no_trace,
            line(&source, &"é\n\"\u{1}".repeat(1000)),
            line(&source, &"ß".repeat(OTLP_LIMITS.max_body_bytes)),
        ];
        let encoder = OtlpEncoder::new(OtlpSettings::default(), OTLP_LIMITS);
        for record in &records {
            for observed in [0, 1_700_000_000_999_000_001] {
                let mut ours = vec![7];
                let encoded = encoder.encode_at(record, observed, &mut ours);
                assert_eq!(ours.remove(0), 7);
                assert_eq!(encoded.bytes, ours.len());
                let theirs = encoded_by_prost(&encoder, record, observed);
                assert!(ours == theirs, "{:?}", record.message.get(..20));
                // And it reads back as the generated type.
                let decoded = OtlpRecord::decode(ours.as_slice()).unwrap();
                assert_eq!(decoded.observed_time_unix_nano, observed);
            }
        }
        let mut cut = Vec::new();
        assert!(encoder.encode_at(&records[5], 0, &mut cut).truncated);
        assert!(encoder.encode_at(&records[2], 0, &mut cut).truncated);
        assert!(!encoder.encode_at(&records[4], 0, &mut cut).truncated);
    }

    #[test]
    fn a_record_carries_time_severity_ids_and_attributes() {
        let encoder = OtlpEncoder::new(OtlpSettings::default(), OTLP_LIMITS);
        let source = lambda_source("checkout");
        let (request, _, _) = decode(&encoder, &[line(&source, "paid"), report(&source)]);
        let records = &request.resource_logs[0].scope_logs[0].log_records;
        let r = &records[0];
        assert_eq!(r.time_unix_nano, 1_700_000_000_123_000_000);
        assert!(r.observed_time_unix_nano > r.time_unix_nano);
        assert_eq!((r.severity_number, r.severity_text.as_str()), (13, "WARN"));
        assert_eq!(r.body.as_ref().unwrap().value, Some(string("paid")));
        assert_eq!(r.trace_id, TraceId::from_hex(TRACE).unwrap().to_bytes());
        assert_eq!(r.span_id, SpanId::from_hex(SPAN).unwrap().to_bytes());
        assert_eq!(r.flags, SAMPLED);
        assert_eq!(
            text(&r.attributes, "faas.invocation_id"),
            Some("8f5b1c2e-1111-2222-3333-444455556666")
        );
        assert_eq!(
            attr(&r.attributes, "faas.coldstart"),
            Some(&any_value::Value::BoolValue(true))
        );
        let report = &records[1];
        assert_eq!((report.severity_number, report.severity_text.as_str()), (0, ""));
        assert!(report.trace_id.is_empty() && report.span_id.is_empty() && report.flags == 0);
        let metric = attr(&report.attributes, "aws.lambda.duration_ms");
        assert_eq!(metric, Some(&any_value::Value::DoubleValue(12.5)));
        let memory = attr(&report.attributes, "aws.lambda.memory_size_mb");
        assert_eq!(memory, Some(&any_value::Value::IntValue(128)));
        assert_eq!(text(&report.attributes, "aws.lambda.status"), Some("timeout"));
    }

    #[test]
    fn the_resource_follows_the_semantic_conventions() {
        let s = settings(&[
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                " deployment.environment=prod%2Ceu , cloud.region=us-east-1,note=a%3Db,",
            ),
            ("OTEL_SERVICE_NAME", "shop"),
        ]);
        let encoder = OtlpEncoder::new(s.unwrap(), DYNATRACE_OTLP_LIMITS);
        let (request, _, _) = decode(&encoder, &[line(&lambda_source("checkout"), "x")]);
        let attributes = resource_attributes(&request.resource_logs[0]);
        for (key, value) in [
            ("cloud.provider", "aws"),
            ("cloud.platform", "aws_lambda"),
            ("cloud.region", "eu-west-1"),
            ("cloud.account.id", "123456789012"),
            ("faas.name", "checkout"),
            ("service.name", "shop"),
            ("deployment.environment", "prod,eu"),
            ("note", "a=b"),
            ("team", "payments"),
        ] {
            assert_eq!(text(attributes, key), Some(value), "{key}");
        }
        let group = attr(attributes, "aws.log.group.names");
        let Some(any_value::Value::ArrayValue(names)) = group else {
            panic!("{group:?}")
        };
        assert_eq!(
            names.values,
            [AnyValue {
                value: Some(string("/aws/lambda/checkout"))
            }]
        );
        assert!(attr(attributes, "aws.log.stream.names").is_some());
        assert_eq!(attributes.iter().filter(|kv| kv.key == "cloud.region").count(), 1);
    }

    #[test]
    fn service_name_falls_back_to_the_users_then_the_function_then_the_group() {
        let service = |pairs: &[(&str, &str)], source: Arc<Source>| {
            let encoder = OtlpEncoder::new(settings(pairs).unwrap(), OTLP_LIMITS);
            let (request, _, _) = decode(&encoder, &[line(&source, "x")]);
            text(resource_attributes(&request.resource_logs[0]), "service.name").map(str::to_owned)
        };
        let user = [("OTEL_RESOURCE_ATTRIBUTES", "service.name=orders")];
        assert_eq!(
            service(&user, lambda_source("checkout")).as_deref(),
            Some("orders")
        );
        assert_eq!(
            service(&[], lambda_source("checkout")).as_deref(),
            Some("checkout")
        );
        let plain = Arc::new(Source {
            log_group: "app/orders".to_owned(),
            ..Default::default()
        });
        assert_eq!(service(&[], plain).as_deref(), Some("app/orders"));
    }

    #[test]
    fn a_huge_message_is_cut_with_the_marker() {
        let encoder = OtlpEncoder::new(OtlpSettings::default(), DYNATRACE_OTLP_LIMITS);
        let message = "ß".repeat(DYNATRACE_OTLP_LIMITS.max_body_bytes);
        let (request, _, truncated) = decode(&encoder, &[line(&lambda_source("checkout"), &message)]);
        assert!(truncated);
        let r = &request.resource_logs[0].scope_logs[0].log_records[0];
        let Some(any_value::Value::StringValue(body)) = &r.body.as_ref().unwrap().value else {
            panic!()
        };
        assert!(body.ends_with(TRUNCATED) && body.len() <= DYNATRACE_OTLP_LIMITS.max_body_bytes / 2);
        for max in 0..30 {
            let (cut, was_cut) = cut_text("ßßßßßßßßßßßßßßßß", max);
            assert!(was_cut && cut.len() <= max);
        }
    }

    #[test]
    fn settings_name_the_variable() {
        for value in ["a", "=b", "k=%zz", "k=%ff", "k=%4"] {
            let err = settings(&[("OTEL_RESOURCE_ATTRIBUTES", value)]).unwrap_err();
            assert_eq!(err.var(), "OTEL_RESOURCE_ATTRIBUTES");
        }
        assert_eq!(
            settings(&[("OTEL_SERVICE_NAME", "  ")]).unwrap().service_name,
            None
        );
    }

    #[test]
    fn describes_its_requests() {
        let encoder = OtlpEncoder::new(OtlpSettings::default(), OTLP_LIMITS);
        assert_eq!(encoder.content_type(), "application/x-protobuf");
        assert_eq!(encoder.limits().max_body_bytes, 4 * 1024 * 1024);
        let (entries, _) = entries(&encoder, &[]);
        assert!(encoder.body(&entries, 0..0).is_empty());
    }
}
