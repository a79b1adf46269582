//! Datadog logs intake v2 (docs/formats.md section 7): a JSON array of objects with `message`, `ddsource`,
//! `service`, `hostname`, `status`, `ddtags` and attributes. Attributes are flat dotted keys, as Datadog's
//! own OpenTelemetry exporter sends `dd.trace_id`; Datadog searches them as `@dd.trace_id` either way.

use super::json::{push_message_within, push_str, push_value, Members, OwnMembers};
use super::{
    non_empty, Encoded, Encoder, JsonMessage, PerKind, PerSource, RequestLimits, SettingsError, Wire,
};
use crate::parse::Severity;
use crate::record::{AttrValue, LogRecord, Source};

/// The intake's documented limits (uncompressed), read as powers of ten to keep within either reading.
pub const DATADOG_LIMITS: RequestLimits = RequestLimits {
    max_body_bytes: 5_000_000,
    max_entries: 1_000,
};

/// Largest entry the intake takes whole; Datadog cuts longer ones itself, without saying so.
pub const MAX_ENTRY_BYTES: usize = 1_000_000;

/// Encoder settings from the Datadog agent's own variables: `DD_ENV`, `DD_SERVICE`, `DD_VERSION` and
/// `DD_TAGS` (tags separated by spaces or commas).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatadogSettings {
    pub env: Option<String>,
    pub service: Option<String>,
    pub version: Option<String>,
    pub tags: Vec<String>,
}

impl DatadogSettings {
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        // A comma would split a tag in two: `ddtags` is comma-separated.
        let tag_value = |var: &'static str| match non_empty(lookup, var) {
            Some(v) if v.contains(',') => Err(SettingsError::invalid(var, "must not contain a comma")),
            v => Ok(v),
        };
        let tags = lookup("DD_TAGS")
            .unwrap_or_default()
            .split([' ', ','])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Self {
            env: tag_value("DD_ENV")?,
            service: non_empty(lookup, "DD_SERVICE"),
            version: tag_value("DD_VERSION")?,
            tags,
        })
    }
}

#[derive(Debug)]
pub struct DatadogEncoder {
    settings: DatadogSettings,
    limits: RequestLimits,
    sources: PerSource<(Vec<u8>, usize)>,
    own: PerKind<OwnMembers>,
}

impl DatadogEncoder {
    pub fn new(settings: DatadogSettings) -> Self {
        Self {
            settings,
            limits: DATADOG_LIMITS,
            sources: PerSource::default(),
            own: PerKind::default(),
        }
    }

    /// Largest entry: what the intake takes whole, and what fits a request alone with its brackets.
    fn max_entry_bytes(&self) -> usize {
        MAX_ENTRY_BYTES.min(self.limits.max_body_bytes.saturating_sub(3))
    }

    /// `ddtags`: the configured tags, then what the source says.
    fn ddtags(&self, source: &Source) -> String {
        let s = &self.settings;
        let mut tags: Vec<String> = Vec::new();
        for (key, value) in [("env", &s.env), ("version", &s.version)] {
            if let Some(value) = value {
                tags.push(format!("{key}:{value}"));
            }
        }
        tags.extend(s.tags.iter().cloned());
        for (key, value) in [
            ("functionname", &source.function_name),
            ("aws_account", &source.account_id),
            ("region", &source.region),
        ] {
            if let Some(value) = value {
                // A payload's fields are not ours to trust: a comma would forge a tag.
                tags.push(format!("{key}:{}", value.replace(',', "_")));
            }
        }
        tags.push("forwardername:tracehose".to_owned());
        tags.join(",")
    }

    /// Everything a source's records share, encoded once as members, and how many.
    fn source_members(&self, source: &Source) -> (Vec<u8>, usize) {
        let host = source.function_name.as_deref().unwrap_or(&source.log_group);
        let service = self.settings.service.as_deref().unwrap_or(host);
        // A sixteenth of an entry per value: enough for any real one, and the message keeps its room.
        let max = self.max_entry_bytes() / 16;
        let mut out = Vec::new();
        let mut m = Members::new(&mut out, usize::MAX, usize::MAX);
        let text = |m: &mut Members<'_>, key: &str, value: &str| {
            m.member(key, |o| push_value(o, AttrValue::Str(value), max));
        };
        text(&mut m, "ddsource", "lambda");
        text(&mut m, "service", service);
        text(&mut m, "hostname", host);
        text(&mut m, "ddtags", &self.ddtags(source));
        text(&mut m, "aws.awslogs.logGroup", &source.log_group);
        text(&mut m, "aws.awslogs.logStream", &source.log_stream);
        if let Some(account) = &source.account_id {
            text(&mut m, "aws.awslogs.owner", account);
        }
        source.visit_delivery_attributes(&mut |key, value| m.member(key, |o| push_value(o, value, max)));
        let count = m.count();
        (out, count)
    }
}

/// The severity in lower case: Datadog's status remapper reads `trace` as debug, `warn` as warning and
/// `fatal` as emergency. None when unknown, so that Datadog applies its own default.
fn status(severity: Severity) -> Option<&'static str> {
    Some(match severity {
        Severity::Unspecified => return None,
        Severity::Trace => "trace",
        Severity::Debug => "debug",
        Severity::Info => "info",
        Severity::Warn => "warn",
        Severity::Error => "error",
        Severity::Fatal => "fatal",
    })
}

impl Wire for DatadogEncoder {
    fn name(&self) -> &'static str {
        "datadog"
    }

    fn content_type(&self) -> &'static str {
        "application/json"
    }

    fn limits(&self) -> RequestLimits {
        self.limits
    }
}

impl Encoder for DatadogEncoder {
    fn encode(&self, record: &LogRecord, message: &JsonMessage<'_>, out: &mut Vec<u8>) -> Encoded {
        let start = out.len();
        let max_entry = self.max_entry_bytes();
        let shared = self.sources.get(&record.source, |s| self.source_members(s));
        out.push(b'{');
        // Attributes may fill half an entry at most, so the message always keeps the other half.
        let mut m = Members::new(out, usize::MAX, max_entry / 2);
        m.encoded(&shared.0, shared.1);
        m.member("timestamp", |o| {
            o.extend_from_slice(itoa::Buffer::new().format(record.timestamp_ms).as_bytes());
            false
        });
        if let Some(status) = status(record.severity) {
            m.member("status", |o| push_value(o, AttrValue::Str(status), usize::MAX));
        }
        let max_value = max_entry / 16;
        if let Some(request_id) = &record.request_id {
            m.member("lambda.request_id", |o| {
                push_value(o, AttrValue::Str(request_id), max_value)
            });
        }
        // Decimal strings, as Datadog's tracers write them into logs.
        if let Some(trace_id) = record.trace_id {
            m.member("dd.trace_id", |o| {
                push_str(o, itoa::Buffer::new().format(trace_id.low_u64()));
                false
            });
        }
        if let Some(span_id) = record.span_id {
            m.member("dd.span_id", |o| {
                push_str(o, itoa::Buffer::new().format(span_id.to_u64()));
                false
            });
        }
        let own = self.own.get(record, |r| OwnMembers::of(r, max_value));
        m.own_attributes(record, own.as_deref(), max_value);
        let mut truncated = m.truncated;
        if !m.is_first() {
            out.push(b',');
        }
        out.extend_from_slice(b"\"message\":");
        let room = max_entry.saturating_sub(out.len() - start + 1);
        truncated |= push_message_within(out, message, usize::MAX, room);
        out.push(b'}');
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
    use std::sync::Arc;

    use serde_json::{json, Value};
    use tracehose_tracecontext::{SpanId, TraceId};

    use super::*;
    use crate::deliver::encode::testing::{body, entries, lambda_source, line, report, SPAN, TRACE};
    use crate::deliver::encode::TRUNCATED;

    fn settings(pairs: &[(&str, &str)]) -> Result<DatadogSettings, SettingsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        DatadogSettings::from_lookup(&move |k| map.get(k).cloned())
    }

    fn decode(encoder: &DatadogEncoder, records: &[LogRecord]) -> (Vec<Value>, bool) {
        let (entries, truncated) = entries(encoder, records);
        let body = body(encoder, &entries);
        assert!(body.len() <= encoder.limits().max_body_bytes);
        (serde_json::from_slice(&body).unwrap(), truncated)
    }

    #[test]
    fn maps_a_line_to_datadog_fields_and_tags() {
        let s = settings(&[
            ("DD_ENV", "prod"),
            ("DD_VERSION", "1.2"),
            ("DD_TAGS", "team:pay  tier:1,zone:a"),
        ]);
        let encoder = DatadogEncoder::new(s.unwrap());
        let source = lambda_source("checkout");
        let (objects, truncated) = decode(&encoder, &[line(&source, "paid")]);
        assert!(!truncated);
        let trace = TraceId::from_hex(TRACE).unwrap().low_u64().to_string();
        let span = SpanId::from_hex(SPAN).unwrap().to_u64().to_string();
        assert_eq!(trace, "9532127138774266268");
        assert_eq!(
            objects[0],
            json!({
                "message": "paid",
                "ddsource": "lambda",
                "service": "checkout",
                "hostname": "checkout",
                "ddtags": "env:prod,version:1.2,team:pay,tier:1,zone:a,functionname:checkout,\
                           aws_account:123456789012,region:eu-west-1,forwardername:tracehose",
                "timestamp": 1_700_000_000_123_i64,
                "status": "warn",
                "lambda.request_id": "8f5b1c2e-1111-2222-3333-444455556666",
                "dd.trace_id": trace,
                "dd.span_id": span,
                "aws.awslogs.logGroup": "/aws/lambda/checkout",
                "aws.awslogs.logStream": "2024/01/01/[$LATEST]abc",
                "aws.awslogs.owner": "123456789012",
                "aws.firehose.arn": "arn:aws:firehose:eu-west-1:123456789012:deliverystream/logs",
                "team": "payments",
                "faas.coldstart": true,
                "tracehose.join": "line",
            })
        );
    }

    #[test]
    fn service_falls_back_to_the_function_then_the_log_group() {
        let plain = Arc::new(Source {
            log_group: "app/orders".to_owned(),
            ..Default::default()
        });
        let encoder = DatadogEncoder::new(settings(&[]).unwrap());
        let (objects, _) = decode(&encoder, &[report(&plain)]);
        let o = &objects[0];
        assert_eq!(
            (&o["service"], &o["hostname"]),
            (&json!("app/orders"), &json!("app/orders"))
        );
        assert_eq!(o["ddtags"], json!("forwardername:tracehose"));
        assert_eq!(o["aws.lambda.duration_ms"], json!(12.5));
        assert!(o.get("status").is_none() && o.get("dd.trace_id").is_none());
        let encoder = DatadogEncoder::new(settings(&[("DD_SERVICE", "shop")]).unwrap());
        let (objects, _) = decode(&encoder, &[line(&lambda_source("checkout"), "x")]);
        assert_eq!(
            (&objects[0]["service"], &objects[0]["hostname"]),
            (&json!("shop"), &json!("checkout"))
        );
    }

    #[test]
    fn a_run_of_two_sources_keeps_each_records_tags() {
        let (a, b) = (lambda_source("a"), lambda_source("b"));
        let encoder = DatadogEncoder::new(settings(&[]).unwrap());
        let (objects, _) = decode(&encoder, &[line(&a, "1"), line(&b, "2"), line(&a, "3")]);
        let hosts: Vec<_> = objects.iter().map(|o| o["hostname"].as_str().unwrap()).collect();
        assert_eq!(hosts, ["a", "b", "a"]);
        assert!(objects[1]["ddtags"].as_str().unwrap().contains("functionname:b"));
    }

    #[test]
    fn a_huge_message_is_cut_so_the_entry_fits() {
        let encoder = DatadogEncoder::new(settings(&[]).unwrap());
        let source = lambda_source("checkout");
        for message in ["\n".repeat(900_000), "😀".repeat(400_000)] {
            let (entries, truncated) = entries(&encoder, &[line(&source, &message)]);
            assert!(truncated);
            let entry = entries.entry(0);
            assert!(entry.len() <= MAX_ENTRY_BYTES && entry.len() > MAX_ENTRY_BYTES - 16);
            let o: Value = serde_json::from_slice(entry).unwrap();
            assert!(o["message"].as_str().unwrap().ends_with(TRUNCATED));
            assert_eq!(o["service"], json!("checkout"));
        }
    }

    #[test]
    fn settings_refuse_a_comma_in_a_tag_value() {
        for var in ["DD_ENV", "DD_VERSION"] {
            let err = settings(&[(var, "a,b")]).unwrap_err();
            assert_eq!(err.var(), var);
        }
        assert_eq!(
            settings(&[("DD_TAGS", " , ")]).unwrap().tags,
            Vec::<String>::new()
        );
    }

    #[test]
    fn describes_its_requests() {
        let encoder = DatadogEncoder::new(DatadogSettings::default());
        assert_eq!(encoder.content_type(), "application/json");
        assert_eq!(encoder.limits(), DATADOG_LIMITS);
        assert_eq!(encoder.name(), "datadog");
    }
}
