//! Lines of the JSON log format: Lambda's own platform records and application lines from JSON loggers
//! (Lambda's JSON format, Powertools, pino, structlog, OpenTelemetry and Datadog log injection).

use std::borrow::Cow;
use std::sync::Arc;

use serde::de::{self, IgnoredAny};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use tracehose_tracecontext::{SpanId, TraceId, XrayHeader};

use super::platform::{PlatformDetails, PlatformEvent};
use super::{find_trace_context, plausible_request_id, ParsedLine, Severity, TraceContext};

/// The keys tracehose reads; every other key is skipped without being materialised.
#[derive(Deserialize)]
struct JsonLine<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "lenient")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    record: Option<&'a RawValue>,

    #[serde(borrow, default, deserialize_with = "lenient")]
    level: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    severity: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    levelname: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "log.level", default, deserialize_with = "lenient")]
    log_level: Option<Cow<'a, str>>,

    #[serde(borrow, rename = "requestId", default, deserialize_with = "lenient")]
    request_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "AWSRequestId", default, deserialize_with = "lenient")]
    aws_request_id_upper: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "awsRequestId", default, deserialize_with = "lenient")]
    aws_request_id_camel: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "aws_request_id", default, deserialize_with = "lenient")]
    aws_request_id_snake: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "lambda.request_id", default, deserialize_with = "lenient")]
    lambda_request_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    function_request_id: Option<Cow<'a, str>>,

    #[serde(borrow, default, deserialize_with = "lenient")]
    trace_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "traceId", default, deserialize_with = "lenient")]
    trace_id_camel: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "dt.trace_id", default, deserialize_with = "lenient")]
    dt_trace_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    span_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "spanId", default, deserialize_with = "lenient")]
    span_id_camel: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "dt.span_id", default, deserialize_with = "lenient")]
    dt_span_id: Option<Cow<'a, str>>,
    /// Powertools prints the invocation's X-Ray id under this key.
    #[serde(borrow, default, deserialize_with = "lenient")]
    xray_trace_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "dd.trace_id", default, deserialize_with = "lenient")]
    dd_trace_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "dd.span_id", default, deserialize_with = "lenient")]
    dd_span_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    dd: Option<Datadog<'a>>,
}

#[derive(Deserialize)]
struct Datadog<'a> {
    #[serde(borrow, default, deserialize_with = "lenient")]
    trace_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient")]
    span_id: Option<Cow<'a, str>>,
}

/// `record` of a `platform.*` line.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct PlatformRecord {
    #[serde(deserialize_with = "lenient_owned")]
    request_id: Option<String>,
    #[serde(deserialize_with = "lenient_owned")]
    version: Option<String>,
    #[serde(deserialize_with = "lenient_owned")]
    runtime_version: Option<String>,
    #[serde(deserialize_with = "lenient_owned")]
    status: Option<String>,
    #[serde(deserialize_with = "lenient_owned")]
    error_type: Option<String>,
    #[serde(deserialize_with = "lenient_owned")]
    phase: Option<String>,
    metrics: Option<Metrics>,
    tracing: Option<Tracing>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Metrics {
    duration_ms: Option<f64>,
    billed_duration_ms: Option<f64>,
    #[serde(rename = "memorySizeMB")]
    memory_size_mb: Option<f64>,
    #[serde(rename = "maxMemoryUsedMB")]
    max_memory_used_mb: Option<f64>,
    init_duration_ms: Option<f64>,
    restore_duration_ms: Option<f64>,
    billed_restore_duration_ms: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Tracing {
    #[serde(deserialize_with = "lenient_owned")]
    span_id: Option<String>,
    #[serde(deserialize_with = "lenient_owned")]
    value: Option<String>,
}

/// A scalar field of a line, borrowed from it when it has no escapes.
type Field<'a> = Option<Cow<'a, str>>;

/// `None` when the text is not a JSON object; the caller then treats it as text.
pub(super) fn parse(text: &str) -> Option<ParsedLine> {
    // serde would also accept an array for a struct.
    if !text.starts_with('{') {
        return None;
    }
    let line: JsonLine<'_> = serde_json::from_str(text).ok()?;
    if let Some(kind) = line.kind.as_deref().filter(|k| k.starts_with("platform.")) {
        return Some(platform_line(kind, line.record));
    }
    let severity = [&line.level, &line.severity, &line.levelname, &line.log_level]
        .into_iter()
        .flatten()
        .find_map(|word| Severity::from_word(word))
        .unwrap_or_default();
    let request_id = [
        line.request_id,
        line.aws_request_id_upper,
        line.aws_request_id_camel,
        line.aws_request_id_snake,
        line.lambda_request_id,
        line.function_request_id,
    ]
    .into_iter()
    .flatten()
    .find(|id| plausible_request_id(id))
    .map(|id| Arc::from(&*id));
    let context = own_context(
        [
            &line.trace_id,
            &line.trace_id_camel,
            &line.dt_trace_id,
            &line.xray_trace_id,
        ],
        [&line.span_id, &line.span_id_camel, &line.dt_span_id],
        [
            &line.dd_trace_id,
            &line.dd.as_ref().and_then(|d| d.trace_id.clone()),
        ],
        [
            &line.dd_span_id,
            &line.dd.as_ref().and_then(|d| d.span_id.clone()),
        ],
    )
    // A marker or traceparent inside the message, or keys nested deeper than the top level.
    .or_else(|| find_trace_context(text));
    Some(ParsedLine {
        severity,
        request_id,
        context,
        ..ParsedLine::default()
    })
}

fn own_context(
    hex_traces: [&Field<'_>; 4],
    hex_spans: [&Field<'_>; 3],
    dd_traces: [&Field<'_>; 2],
    dd_spans: [&Field<'_>; 2],
) -> Option<TraceContext> {
    let hex_trace = hex_traces
        .into_iter()
        .flatten()
        .find_map(|v| TraceId::from_hex(v).or_else(|| TraceId::from_xray(v)));
    if let Some(trace_id) = hex_trace {
        let span_id = hex_spans.into_iter().flatten().find_map(|v| SpanId::from_hex(v));
        return Some(TraceContext { trace_id, span_id });
    }
    let trace_id = dd_traces
        .into_iter()
        .flatten()
        .find_map(|v| TraceId::from_u64(v.parse().ok()?))?;
    let span_id = dd_spans
        .into_iter()
        .flatten()
        .find_map(|v| SpanId::from_u64(v.parse().ok()?));
    Some(TraceContext { trace_id, span_id })
}

fn platform_line(kind: &str, record: Option<&RawValue>) -> ParsedLine {
    let event = PlatformEvent::from_json_type(kind);
    // A record of an unexpected shape still leaves a usable platform line.
    let record: PlatformRecord = record
        .and_then(|r| serde_json::from_str(r.get()).ok())
        .unwrap_or_default();
    let metrics = record.metrics.unwrap_or_default();
    let details = PlatformDetails {
        metrics: super::ReportMetrics {
            duration_ms: metrics.duration_ms,
            billed_duration_ms: metrics.billed_duration_ms,
            memory_size_mb: metrics.memory_size_mb.map(|n| n as u64),
            max_memory_used_mb: metrics.max_memory_used_mb.map(|n| n as u64),
            init_duration_ms: metrics.init_duration_ms,
            restore_duration_ms: metrics.restore_duration_ms,
            billed_restore_duration_ms: metrics.billed_restore_duration_ms,
        },
        status: record.status.filter(|s| s != "success"),
        error_type: record.error_type,
        phase: record.phase,
        version: record.version,
        runtime_version: record.runtime_version,
    };
    let xray = record.tracing.and_then(|t| {
        let header = XrayHeader::parse(t.value.as_deref()?)?;
        let span_id = t.span_id.as_deref().and_then(SpanId::from_hex);
        Some(TraceContext {
            trace_id: header.trace_id,
            span_id,
        })
    });
    ParsedLine {
        severity: details.severity(),
        request_id: record
            .request_id
            .filter(|id| plausible_request_id(id))
            .map(Arc::from),
        platform: Some(event),
        details: details.boxed(),
        xray,
        ..ParsedLine::default()
    }
}

/// A string or a number as text; any other JSON type is skipped rather than failing the whole line. A
/// visitor rather than an untagged enum, which would buffer every value first; strings without escapes are
/// borrowed from the line.
fn lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct Scalar;
    impl<'de> de::Visitor<'de> for Scalar {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    d.deserialize_any(Scalar)
}

fn lenient_owned<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(lenient(d)?.map(Cow::into_owned))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ID: &str = "8f507cfc-1a2b-4697-b07a-ac58fc914c95";

    #[test]
    fn platform_start_and_report() {
        let start = parse(&format!(r#"{{"time":"2026-11-21T10:00:00.000Z","type":"platform.start","record":{{"requestId":"{ID}","version":"$LATEST","tracing":{{"spanId":"2be948a625588e32","type":"X-Amzn-Trace-Id","value":"Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1"}}}}}}"#)).unwrap();
        assert_eq!(start.platform, Some(PlatformEvent::Start));
        assert_eq!(start.request_id.as_deref(), Some(ID));
        assert_eq!(
            start.xray.unwrap().trace_id.to_string(),
            "5f35ae120c0fec141ab77a00bc047aa2"
        );
        assert!(start.context.is_none());
        let report = parse(&format!(r#"{{"time":"x","type":"platform.report","record":{{"requestId":"{ID}","metrics":{{"durationMs":329.2,"billedDurationMs":330,"memorySizeMB":1792,"maxMemoryUsedMB":125,"initDurationMs":503.1}},"status":"success"}}}}"#)).unwrap();
        let d = report.details.unwrap();
        assert_eq!(d.metrics.memory_size_mb, Some(1792));
        assert_eq!(d.metrics.init_duration_ms, Some(503.1));
        assert_eq!(d.status, None);
        let weird = parse(r#"{"type":"platform.report","record":"not an object"}"#).unwrap();
        assert_eq!(weird.platform, Some(PlatformEvent::Report));
    }

    #[test]
    fn application_lines() {
        let p = parse(&format!(
            r#"{{"timestamp":"x","level":"WARN","requestId":"{ID}","message":"hi"}}"#
        ))
        .unwrap();
        assert_eq!((p.severity, p.request_id.as_deref()), (Severity::Warn, Some(ID)));
        let p = parse(r#"{"levelname":"ERROR","aws_request_id":42,"trace_id":"0AF7651916CD43DD8448EB211C80319C","span_id":"00f067aa0ba902b7"}"#).unwrap();
        assert_eq!(p.request_id.as_deref(), Some("42"));
        assert_eq!(
            p.context.unwrap().span_id.unwrap().to_string(),
            "00f067aa0ba902b7"
        );
        let p = parse(r#"{"level":30,"dd":{"trace_id":"4887065908816661012","span_id":7},"msg":"pino"}"#)
            .unwrap();
        assert_eq!(p.context.unwrap().trace_id.low_u64(), 4887065908816661012);
        let p = parse(r#"{"xray_trace_id":"1-5759e988-bd862e3fe1be46a994272793","level":"INFO"}"#).unwrap();
        assert_eq!(
            p.context.unwrap().trace_id.to_string(),
            "5759e988bd862e3fe1be46a994272793"
        );
        let p = parse(r#"{"message":"[!dt dt.trace_id=0af7651916cd43dd8448eb211c80319c] in the text","level":{"nested":true}}"#).unwrap();
        assert!(p.context.is_some());
        assert_eq!(p.severity, Severity::Unspecified);
    }

    #[test]
    fn rejects_invalid_ids_and_non_objects() {
        let p = parse(r#"{"trace_id":"00000000000000000000000000000000","requestId":"has space"}"#).unwrap();
        assert!(p.context.is_none() && p.request_id.is_none());
        assert!(parse("{not json").is_none());
        assert!(parse("[1,2]").is_none());
    }
}
