//! Each vendor's documented request contract (docs/formats.md section 7), checked on one request. A check
//! reports every problem it finds, not just the first, so a failing test names all of them at once.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::{MultiGzDecoder, ZlibDecoder};
use hyper::header::{HeaderMap, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{IntakeConfig, Vendor};

/// One broken rule and the status the vendor would answer for it.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub status: u16,
    pub message: String,
}

pub(crate) fn problem(status: u16, message: impl Into<String>) -> Problem {
    Problem {
        status,
        message: message.into(),
    }
}

/// What a request carried, as far as it could be decoded, and what was wrong with it.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// JSON vendors: the entries as sent. OTLP: one flat object per log record (see `otlp_entries`).
    pub entries: Vec<Value>,
    pub otlp: Option<ExportLogsServiceRequest>,
    pub metrics: Option<ExportMetricsServiceRequest>,
    pub traces: Option<ExportTraceServiceRequest>,
    /// Entries or log records in the request, also when `entries` is not kept.
    pub count: usize,
    pub decoded_bytes: usize,
    pub problems: Vec<Problem>,
}

/// A request per vendor, per record: past this many problems only a count is kept, so one bad batch of
/// 50,000 records does not produce 50,000 messages.
const MAX_RECORD_PROBLEMS: usize = 5;

/// Checks one request. `minimal` (the throughput mode) checks only auth and that the body decodes, and keeps
/// no entries.
pub(crate) fn check(
    vendor: Vendor,
    config: &IntakeConfig,
    headers: &HeaderMap,
    wire: &[u8],
    minimal: bool,
) -> Checked {
    let mut out = Checked::default();
    check_auth(vendor, config, headers, &mut out.problems);
    if !minimal {
        check_content_type(vendor, headers, &mut out.problems);
    }
    if vendor == Vendor::DynatraceOtlp && wire.len() > config.dynatrace_otlp_max_bytes {
        let limit = config.dynatrace_otlp_max_bytes;
        out.problems.push(problem(
            413,
            format!("{} bytes, over the {limit}-byte OTLP logs limit", wire.len()),
        ));
    }
    let body = match decode(headers, wire, config.body_cap) {
        Ok(body) => body,
        Err(p) => {
            out.problems.push(p);
            return out;
        }
    };
    out.decoded_bytes = body.len();
    match vendor {
        Vendor::Dynatrace => dynatrace(config, &body, minimal, &mut out),
        Vendor::Datadog => datadog(config, &body, minimal, &mut out),
        Vendor::Otlp | Vendor::DynatraceOtlp => otlp(&body, minimal, &mut out),
        Vendor::OtlpMetrics => super::telemetry::metrics(&body, false, minimal, &mut out),
        Vendor::DynatraceOtlpMetrics => super::telemetry::metrics(&body, true, minimal, &mut out),
        Vendor::OtlpTraces | Vendor::DynatraceOtlpTraces => {
            super::telemetry::traces(&body, minimal, &mut out)
        }
        Vendor::DatadogMetrics => super::telemetry::distributions(&body, minimal, &mut out),
    }
    out
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn check_auth(vendor: Vendor, config: &IntakeConfig, headers: &HeaderMap, problems: &mut Vec<Problem>) {
    match vendor {
        v if v.is_dynatrace() => {
            let token = header(headers, AUTHORIZATION.as_str()).and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("Api-Token").then_some(token)
            });
            if token != Some(config.dynatrace_token.as_str()) {
                problems.push(problem(
                    401,
                    "Authorization is not `Api-Token <configured token>`",
                ));
            }
        }
        Vendor::Datadog | Vendor::DatadogMetrics => {
            if header(headers, "dd-api-key") != Some(config.datadog_key.as_str()) {
                problems.push(problem(403, "DD-API-KEY missing or not the configured key"));
            }
        }
        _ => {
            if let Some((name, value)) = &config.otlp_header {
                if header(headers, name) != Some(value.as_str()) {
                    problems.push(problem(
                        401,
                        format!("header {name} missing or not the configured value"),
                    ));
                }
            }
        }
    }
}

/// `type/subtype` and its parameters, lowercased except the values' case is kept for the caller to judge.
fn media_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            )
        })
        .collect();
    (essence, params)
}

fn check_content_type(vendor: Vendor, headers: &HeaderMap, problems: &mut Vec<Problem>) {
    let raw = header(headers, CONTENT_TYPE.as_str()).unwrap_or("");
    let (essence, params) = media_type(raw);
    let charset_ok = params
        .iter()
        .all(|(k, v)| k == "charset" && v.eq_ignore_ascii_case("utf-8"));
    let otlp = vendor.is_otlp();
    let ok = if otlp {
        essence == "application/x-protobuf" && params.is_empty()
    } else {
        essence == "application/json" && charset_ok
    };
    if !ok {
        let expected = match vendor {
            Vendor::Dynatrace => "application/json; charset=utf-8",
            // OTLP/JSON is valid for generic backends, but this project only sends protobuf, and Dynatrace
            // accepts nothing else: a JSON request here means something changed.
            _ if otlp => "application/x-protobuf",
            _ => "application/json",
        };
        problems.push(problem(400, format!("Content-Type {raw:?}, expected {expected}")));
    }
}

/// The body as sent, inflated per `Content-Encoding`, never past `cap` bytes.
fn decode<'a>(headers: &HeaderMap, wire: &'a [u8], cap: usize) -> Result<Cow<'a, [u8]>, Problem> {
    let encoding = header(headers, CONTENT_ENCODING.as_str()).map(|v| v.trim().to_ascii_lowercase());
    let reader: Box<dyn Read + '_> = match encoding.as_deref() {
        None | Some("identity") => return Ok(Cow::Borrowed(wire)),
        Some("gzip") => Box::new(MultiGzDecoder::new(wire)),
        Some("deflate") => Box::new(ZlibDecoder::new(wire)),
        Some(other) => return Err(problem(400, format!("unsupported Content-Encoding {other:?}"))),
    };
    let mut body = Vec::new();
    reader
        .take(cap as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| problem(400, format!("body does not inflate: {e}")))?;
    if body.len() > cap {
        return Err(problem(
            413,
            format!("body inflates past the intake's {cap}-byte cap"),
        ));
    }
    Ok(Cow::Owned(body))
}

/// Collects per-record problems with a cap, then one summary line for the rest.
struct RecordProblems {
    found: Vec<Problem>,
    more: usize,
}

impl RecordProblems {
    fn new() -> Self {
        RecordProblems {
            found: Vec::new(),
            more: 0,
        }
    }

    fn push(&mut self, status: u16, message: String) {
        if self.found.len() < MAX_RECORD_PROBLEMS {
            self.found.push(problem(status, message));
        } else {
            self.more += 1;
        }
    }

    fn finish(mut self, into: &mut Vec<Problem>) {
        if self.more > 0 {
            let status = self.found.first().map_or(400, |p| p.status);
            self.found.push(problem(
                status,
                format!("... and {} more record problems", self.more),
            ));
        }
        into.append(&mut self.found);
    }
}

fn dynatrace(config: &IntakeConfig, body: &[u8], minimal: bool, out: &mut Checked) {
    let limits = &config.dynatrace_limits;
    if body.len() > limits.request_bytes {
        let limit = limits.request_bytes;
        out.problems.push(problem(
            413,
            format!("{} bytes uncompressed, over {limit}", body.len()),
        ));
    }
    if minimal {
        // Counting without building values keeps the throughput mode cheap.
        match serde_json::from_slice::<Vec<IgnoredAny>>(body) {
            Ok(records) => out.count = records.len(),
            Err(e) => out
                .problems
                .push(problem(400, format!("body is not a JSON array: {e}"))),
        }
        return;
    }
    let records: Vec<Value> = match serde_json::from_slice(body) {
        Ok(records) => records,
        Err(e) => {
            return out
                .problems
                .push(problem(400, format!("body is not a JSON array: {e}")))
        }
    };
    out.count = records.len();
    if records.len() > limits.records {
        let limit = limits.records;
        out.problems
            .push(problem(413, format!("{} records, over {limit}", records.len())));
    }
    let mut problems = RecordProblems::new();
    for (i, record) in records.iter().enumerate() {
        let Some(fields) = record.as_object() else {
            problems.push(400, format!("record {i} is not an object"));
            continue;
        };
        dynatrace_record(i, fields, limits, &mut problems);
    }
    problems.finish(&mut out.problems);
    out.entries = records;
}

fn dynatrace_record(
    i: usize,
    fields: &Map<String, Value>,
    limits: &DynatraceLimits,
    problems: &mut RecordProblems,
) {
    match fields.get("content") {
        Some(Value::String(content)) if content.len() > limits.content_bytes => {
            problems.push(400, format!("record {i}: content of {} bytes", content.len()))
        }
        Some(Value::String(_)) => {}
        _ => problems.push(400, format!("record {i}: no string `content`")),
    }
    match fields.get("timestamp") {
        Some(Value::String(s)) if !s.is_empty() => {}
        Some(Value::Number(_)) => {}
        _ => problems.push(400, format!("record {i}: no string or number `timestamp`")),
    }
    if fields.len() > limits.attributes {
        problems.push(
            400,
            format!(
                "record {i}: {} attributes, over {}",
                fields.len(),
                limits.attributes
            ),
        );
    }
    for (key, value) in fields {
        match value {
            Value::Object(_) | Value::Array(_) => {
                problems.push(400, format!("record {i}: attribute {key:?} is nested, not flat"))
            }
            Value::String(s) if key != "content" && s.len() > limits.attribute_value_bytes => problems.push(
                400,
                format!("record {i}: attribute {key:?} value of {} bytes", s.len()),
            ),
            _ => {}
        }
    }
}

fn datadog(config: &IntakeConfig, body: &[u8], minimal: bool, out: &mut Checked) {
    let limits = &config.datadog_limits;
    if body.len() > limits.request_bytes {
        let limit = limits.request_bytes;
        out.problems.push(problem(
            413,
            format!("{} bytes uncompressed, over {limit}", body.len()),
        ));
    }
    // Raw entries first: the per-entry limit is on the entry as serialized by the client.
    let raw: Vec<&RawValue> = match serde_json::from_slice(body) {
        Ok(raw) => raw,
        Err(e) => {
            return out
                .problems
                .push(problem(400, format!("body is not a JSON array: {e}")))
        }
    };
    out.count = raw.len();
    if raw.len() > limits.entries {
        let limit = limits.entries;
        out.problems
            .push(problem(413, format!("{} entries, over {limit}", raw.len())));
    }
    if minimal {
        return;
    }
    let mut problems = RecordProblems::new();
    for (i, entry) in raw.iter().enumerate() {
        if entry.get().len() > limits.entry_bytes {
            // The real intake truncates such an entry and answers 202: silent loss that a test must see.
            problems.push(
                413,
                format!(
                    "entry {i}: {} bytes, over {}",
                    entry.get().len(),
                    limits.entry_bytes
                ),
            );
        }
        let value: Value = match serde_json::from_str(entry.get()) {
            Ok(value) => value,
            Err(e) => {
                problems.push(400, format!("entry {i}: {e}"));
                continue;
            }
        };
        match value.as_object() {
            Some(fields) => datadog_entry(i, fields, &mut problems),
            None => problems.push(400, format!("entry {i} is not an object")),
        }
        out.entries.push(value);
    }
    problems.finish(&mut out.problems);
}

fn datadog_entry(i: usize, fields: &Map<String, Value>, problems: &mut RecordProblems) {
    if !matches!(fields.get("message"), Some(Value::String(_))) {
        problems.push(400, format!("entry {i}: no string `message`"));
    }
    for key in ["ddsource", "ddtags", "hostname", "service", "status"] {
        if fields.get(key).is_some_and(|v| !v.is_string()) {
            problems.push(400, format!("entry {i}: `{key}` is not a string"));
        }
    }
}

fn otlp(body: &[u8], minimal: bool, out: &mut Checked) {
    let request = match ExportLogsServiceRequest::decode(body) {
        Ok(request) => request,
        Err(e) => {
            return out
                .problems
                .push(problem(400, format!("not an ExportLogsServiceRequest: {e}")))
        }
    };
    let records = request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records);
    let mut problems = RecordProblems::new();
    for (i, record) in records.enumerate() {
        out.count += 1;
        if minimal {
            continue;
        }
        if !matches!(record.trace_id.len(), 0 | 16) {
            problems.push(
                400,
                format!("log record {i}: trace_id of {} bytes", record.trace_id.len()),
            );
        }
        if !matches!(record.span_id.len(), 0 | 8) {
            problems.push(
                400,
                format!("log record {i}: span_id of {} bytes", record.span_id.len()),
            );
        }
    }
    problems.finish(&mut out.problems);
    if !minimal {
        out.entries = super::otlp_json::otlp_entries(&request);
        out.otlp = Some(request);
    }
}

/// Dynatrace Log Ingest v2 limits; the defaults are the current platform's (docs/formats.md section 7).
#[derive(Debug, Clone)]
pub struct DynatraceLimits {
    pub request_bytes: usize,
    pub records: usize,
    pub content_bytes: usize,
    pub attribute_value_bytes: usize,
    /// Fields per record, `content` and `timestamp` included.
    pub attributes: usize,
}

impl Default for DynatraceLimits {
    fn default() -> Self {
        DynatraceLimits {
            request_bytes: 10_000_000,
            records: 50_000,
            content_bytes: 10_000_000,
            attribute_value_bytes: 32_000,
            attributes: 500,
        }
    }
}

impl DynatraceLimits {
    /// Logs Classic tenants. The real service truncates oversize values there; this intake refuses them, so a
    /// forwarder configured for Classic proves it stays within them.
    pub fn classic() -> Self {
        DynatraceLimits {
            content_bytes: 8_000,
            attribute_value_bytes: 250,
            attributes: 50,
            ..Self::default()
        }
    }
}

/// Datadog logs intake v2 limits. Decimal megabytes: the stricter reading of the documented "5 MB".
#[derive(Debug, Clone)]
pub struct DatadogLimits {
    pub request_bytes: usize,
    pub entries: usize,
    pub entry_bytes: usize,
}

impl Default for DatadogLimits {
    fn default() -> Self {
        DatadogLimits {
            request_bytes: 5_000_000,
            entries: 1_000,
            entry_bytes: 1_000_000,
        }
    }
}
