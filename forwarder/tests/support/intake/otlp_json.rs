//! OTLP log records as flat JSON objects, so tests can compare what reached an OTLP backend with what
//! reached the JSON vendors using the same assertions. The proto itself stays available on `Recorded::otlp`.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use serde_json::{json, Map, Value};

/// One object per log record: `body`, `time_unix_nano`, `observed_time_unix_nano`, `severity_number`,
/// `severity_text`, `trace_id` and `span_id` as lowercase hex (omitted when empty), `flags`, `attributes`,
/// `resource` (the resource's attributes) and `scope` (name). Numbers stay numbers; bytes become hex.
pub fn otlp_entries(request: &ExportLogsServiceRequest) -> Vec<Value> {
    let mut entries = Vec::new();
    for resource_logs in &request.resource_logs {
        let resource = resource_logs
            .resource
            .as_ref()
            .map_or_else(Map::new, |r| attributes(&r.attributes));
        for scope_logs in &resource_logs.scope_logs {
            let scope = scope_logs.scope.as_ref().map_or("", |s| s.name.as_str());
            for record in &scope_logs.log_records {
                let mut entry = json!({
                    "body": record.body.as_ref().map_or(Value::Null, any_value),
                    "time_unix_nano": record.time_unix_nano,
                    "observed_time_unix_nano": record.observed_time_unix_nano,
                    "severity_number": record.severity_number,
                    "severity_text": record.severity_text,
                    "flags": record.flags,
                    "attributes": attributes(&record.attributes),
                    "resource": resource,
                    "scope": scope,
                });
                if let Some(fields) = entry.as_object_mut() {
                    if !record.trace_id.is_empty() {
                        fields.insert("trace_id".into(), hex(&record.trace_id).into());
                    }
                    if !record.span_id.is_empty() {
                        fields.insert("span_id".into(), hex(&record.span_id).into());
                    }
                }
                entries.push(entry);
            }
        }
    }
    entries
}

fn attributes(list: &[KeyValue]) -> Map<String, Value> {
    list.iter()
        .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, any_value)))
        .collect()
}

fn any_value(value: &AnyValue) -> Value {
    match &value.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => s.clone().into(),
        Some(any_value::Value::BoolValue(b)) => (*b).into(),
        Some(any_value::Value::IntValue(i)) => (*i).into(),
        Some(any_value::Value::DoubleValue(d)) => (*d).into(),
        Some(any_value::Value::BytesValue(b)) => hex(b).into(),
        Some(any_value::Value::ArrayValue(a)) => a.values.iter().map(any_value).collect(),
        Some(any_value::Value::KvlistValue(kv)) => Value::Object(attributes(&kv.values)),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
