//! Lines of the JSON log format: Lambda's own platform records and application lines from JSON loggers
//! (Lambda's JSON format, Powertools, pino, structlog, OpenTelemetry and Datadog log injection).

use std::borrow::Cow;

use serde::de::{self, DeserializeSeed, IgnoredAny};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use tracehose_tracecontext::{SpanId, XrayHeader};

use super::json_ids::{self, IdKey, KeySeed, LineIds, Parent};
use super::platform::{PlatformDetails, PlatformEvent};
use super::{
    find_trace_context, plausible_request_id, shared_request_id, ParsedLine, Severity, TraceContext,
};

/// The keys tracehose reads from a line, gathered in one pass; every other value is skipped without being
/// materialised, except objects, whose own keys are read for trace context (`json_ids`).
#[derive(Default)]
struct JsonLine<'a> {
    kind: Field<'a>,
    record: Option<&'a RawValue>,
    /// The recognised level of the best-ranked key: `level`, `severity`, `levelname`, `log.level`.
    severity: Option<(u8, Severity)>,
    /// The plausible id of the best-ranked key: `requestId`, `AWSRequestId`, `awsRequestId`,
    /// `aws_request_id`, `lambda.request_id`, `function_request_id`.
    request_id: Option<(u8, Cow<'a, str>)>,
    ids: LineIds,
}

/// What a top-level key is to tracehose.
enum TopKey {
    Type,
    Record,
    Level(u8),
    RequestId(u8),
    Id(IdKey),
    /// Known to hold no trace context (the message is usually the largest value): skipped.
    Skip,
    /// Anything else: an object or array there is read one level down for trace context.
    Other(Parent),
}

fn top_key(key: &str) -> TopKey {
    match key {
        "type" => TopKey::Type,
        "record" => TopKey::Record,
        "level" => TopKey::Level(0),
        "severity" => TopKey::Level(1),
        "levelname" => TopKey::Level(2),
        "log.level" => TopKey::Level(3),
        "requestId" => TopKey::RequestId(0),
        "AWSRequestId" => TopKey::RequestId(1),
        "awsRequestId" => TopKey::RequestId(2),
        "aws_request_id" => TopKey::RequestId(3),
        "lambda.request_id" => TopKey::RequestId(4),
        "function_request_id" => TopKey::RequestId(5),
        "message" | "msg" | "timestamp" | "time" | "@timestamp" => TopKey::Skip,
        _ => match json_ids::id_key(key) {
            Some(id) => TopKey::Id(id),
            None => TopKey::Other(Parent::of(key)),
        },
    }
}

/// Fills a [`JsonLine`] in place: the line's state is large enough that returning it by value showed up
/// as copies in profiles.
struct LineSeed<'a, 'de>(&'a mut JsonLine<'de>);

impl<'de> DeserializeSeed<'de> for LineSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> de::Visitor<'de> for LineSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let line = self.0;
        while let Some(key) = map.next_key_seed(KeySeed(top_key))? {
            match key {
                TopKey::Type => line.kind = map.next_value::<Lenient<'de>>()?.0,
                TopKey::Record => line.record = Some(map.next_value()?),
                TopKey::Level(rank) => {
                    let level = map.next_value::<Lenient<'de>>()?.0;
                    if let Some(severity) = level.as_deref().and_then(Severity::from_word) {
                        if line.severity.is_none_or(|(held, _)| rank < held) {
                            line.severity = Some((rank, severity));
                        }
                    }
                }
                TopKey::RequestId(rank) => {
                    let id = map.next_value::<Lenient<'de>>()?.0;
                    if let Some(id) = id.filter(|id| plausible_request_id(id)) {
                        if line.request_id.as_ref().is_none_or(|(held, _)| rank < *held) {
                            line.request_id = Some((rank, id));
                        }
                    }
                }
                TopKey::Id(id) => line.ids.top.read(id, &mut map)?,
                TopKey::Skip => {
                    map.next_value::<IgnoredAny>()?;
                }
                TopKey::Other(parent) => line.ids.read_nested(parent, &mut map)?,
            }
        }
        Ok(())
    }
}

/// A scalar read by [`lenient`].
struct Lenient<'a>(Field<'a>);

impl<'de> Deserialize<'de> for Lenient<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient(d).map(Lenient)
    }
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
    let line = read(text, Trailing::Refused)?;
    if let Some(kind) = line.kind.as_deref().filter(|k| k.starts_with("platform.")) {
        return Some(platform_line(kind, line.record));
    }
    Some(application_line(line, text))
}

/// The JSON object an application printed after a runtime prefix (`print(json.dumps(..))` in Python,
/// `console.log(JSON.stringify(..))` in Node.js): read for the same keys as a whole JSON line, but never as a
/// platform record, which only Lambda writes, as whole lines. Text may follow the object (a stack trace on
/// the next lines). `None` when the body does not start with a JSON object.
pub(super) fn parse_body(body: &str) -> Option<ParsedLine> {
    let line = read(body, Trailing::Allowed)?;
    Some(application_line(line, body))
}

enum Trailing {
    Refused,
    Allowed,
}

fn read(text: &str, trailing: Trailing) -> Option<JsonLine<'_>> {
    // serde would also accept an array for a struct.
    if !text.starts_with('{') {
        return None;
    }
    let mut line = JsonLine::default();
    let mut de = serde_json::Deserializer::from_str(text);
    LineSeed(&mut line).deserialize(&mut de).ok()?;
    if matches!(trailing, Trailing::Refused) {
        de.end().ok()?;
    }
    Some(line)
}

fn application_line(line: JsonLine<'_>, text: &str) -> ParsedLine {
    let severity = line.severity.map(|(_, s)| s).unwrap_or_default();
    let request_id = line.request_id.map(|(_, id)| shared_request_id(&id));
    // A marker or traceparent inside the message, or keys nested deeper than one level.
    let context = line.ids.context().or_else(|| find_trace_context(text));
    ParsedLine {
        severity,
        request_id,
        context,
        ..ParsedLine::default()
    }
}

fn platform_line(kind: &str, record: Option<&RawValue>) -> ParsedLine {
    let event = PlatformEvent::from_json_type(kind);
    // A record of an unexpected shape still leaves a usable platform line.
    let record: PlatformRecord = record
        .and_then(|r| serde_json::from_str(r.get()).ok())
        .unwrap_or_default();
    let metrics = record.metrics.unwrap_or_default();
    let header = record
        .tracing
        .as_ref()
        .and_then(|t| XrayHeader::parse(t.value.as_deref()?));
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
        xray_parent: header.and_then(|h| h.parent_id),
    };
    let xray = header.map(|header| TraceContext {
        trace_id: header.trace_id,
        span_id: record
            .tracing
            .as_ref()
            .and_then(|t| t.span_id.as_deref())
            .and_then(SpanId::from_hex),
    });
    ParsedLine {
        severity: details.severity(),
        request_id: record
            .request_id
            .filter(|id| plausible_request_id(id))
            .map(|id| shared_request_id(&id)),
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
        let details = start.details.unwrap();
        assert_eq!(details.xray_parent.unwrap().to_string(), "2be948a625588e32");
        assert_eq!(details.version.as_deref(), Some("$LATEST"));
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
        // The .NET Lambda runtime's JSON log format.
        let p = parse(r#"{"timestamp":"2026-11-21T10:00:00.000Z","level":"Information","requestId":"r","message":"hi"}"#).unwrap();
        assert_eq!(p.severity, Severity::Info);
    }

    fn ctx(line: &str) -> Option<(String, Option<String>)> {
        let c = parse(line).unwrap().context?;
        Some((c.trace_id.to_string(), c.span_id.map(|s| s.to_string())))
    }

    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const SPAN: &str = "00f067aa0ba902b7";
    const XRAY: &str = "1-5f35ae12-0c0fec141ab77a00bc047aa2";
    const XRAY_AS_W3C: &str = "5f35ae120c0fec141ab77a00bc047aa2";

    /// The forms real loggers inject (issue 7: 11% of traced lines came out without their trace).
    #[test]
    fn trace_context_real_loggers_print() {
        let both = Some((TRACE.to_owned(), Some(SPAN.to_owned())));
        // Datadog: a nested object of decimal ids, as strings or numbers.
        assert_eq!(
            ctx(r#"{"message":"hi","dd":{"trace_id":"4887065908816661012","span_id":"1"}}"#),
            Some((
                "000000000000000043d2588d20f04a14".into(),
                Some("0000000000000001".into())
            ))
        );
        assert_eq!(
            ctx(r#"{"dd":{"service":"a","trace_id":4887065908816661012,"span_id":2},"message":"hi"}"#),
            Some((
                "000000000000000043d2588d20f04a14".into(),
                Some("0000000000000002".into())
            ))
        );
        // OpenTelemetry Python logging instrumentation.
        assert_eq!(
            ctx(&format!(
                r#"{{"otelTraceID":"{TRACE}","otelSpanID":"{SPAN}","otelServiceName":"x"}}"#
            )),
            both
        );
        // .NET ILogger scopes: top level, in a nested object, in an array of scopes, and as an X-Ray id.
        assert_eq!(
            ctx(&format!(r#"{{"TraceId":"{TRACE}","SpanId":"{SPAN}"}}"#)),
            both
        );
        assert_eq!(
            ctx(&format!(
                r#"{{"State":{{"SpanId":"{SPAN}","TraceId":"{TRACE}"}}}}"#
            )),
            both
        );
        assert_eq!(
            ctx(&format!(
                r#"{{"Scopes":["req",{{"SpanId":"{SPAN}","TraceId":"{TRACE}","ParentId":"0000000000000000"}}]}}"#
            )),
            both
        );
        assert_eq!(
            ctx(&format!(r#"{{"TraceId":"{XRAY}"}}"#)),
            Some((XRAY_AS_W3C.into(), None))
        );
        // Powertools for AWS Lambda.
        assert_eq!(
            ctx(&format!(
                r#"{{"level":"INFO","message":"x","service":"s","xray_trace_id":"{XRAY}"}}"#
            )),
            Some((XRAY_AS_W3C.into(), None))
        );
        // One level down under any key, and Elastic Common Schema.
        assert_eq!(
            ctx(&format!(
                r#"{{"context":{{"trace_id":"{TRACE}","span_id":"{SPAN}"}}}}"#
            )),
            both
        );
        assert_eq!(
            ctx(&format!(
                r#"{{"trace":{{"id":"{TRACE}"}},"span":{{"id":"{SPAN}"}}}}"#
            )),
            both
        );
        assert_eq!(
            ctx(&format!(r#"{{"trace.id":"{TRACE}","span.id":"{SPAN}"}}"#)),
            both
        );
        // Escaped keys and values read the same.
        assert_eq!(
            ctx(&format!(r#"{{"\u0074race_id":"{}\u0063"}}"#, &TRACE[..31])),
            Some((TRACE.into(), None))
        );
    }

    #[test]
    fn nested_ids_are_validated_and_ranked() {
        for line in [
            format!(r#"{{"ctx":{{"trace_id":"{}"}}}}"#, "0".repeat(32)),
            format!(r#"{{"ctx":{{"trace_id":"{}"}}}}"#, &TRACE[..30]),
            r#"{"dd":{"trace_id":"0","span_id":"1"}}"#.to_owned(),
            r#"{"dd":{"trace_id":-5}}"#.to_owned(),
            r#"{"dd":{"trace_id":"99999999999999999999999"}}"#.to_owned(),
            r#"{"dd":{"trace_id":1.5}}"#.to_owned(),
            r#"{"dd":"4887065908816661012"}"#.to_owned(),
            format!(r#"{{"otelTraceID":"{TRACE}x"}}"#),
            r#"{"otelTraceID":"0","otelSpanID":"0"}"#.to_owned(),
            r#"{"xray_trace_id":"1-5f35ae12-0c0fec141ab77a00bc047aa"}"#.to_owned(),
        ] {
            assert_eq!(ctx(&line), None, "{line}");
        }
        // The top level beats a nested object, which beats Datadog's decimals; a bad span keeps the trace.
        let other = "1af7651916cd43dd8448eb211c80319c";
        assert_eq!(
            ctx(&format!(
                r#"{{"ctx":{{"trace_id":"{other}"}},"traceId":"{TRACE}","spanId":"nope"}}"#
            )),
            Some((TRACE.into(), None))
        );
        assert_eq!(
            ctx(&format!(
                r#"{{"dd":{{"trace_id":"7"}},"ctx":{{"trace_id":"{other}","span_id":"{SPAN}"}}}}"#
            )),
            Some((other.into(), Some(SPAN.into())))
        );
        assert_eq!(
            ctx(r#"{"dd.trace_id":"5","dd":{"trace_id":"7"}}"#).unwrap().0,
            "00000000000000000000000000000005"
        );
        // Deeper than one level, nothing else in the line, the text search still finds a plain key.
        assert_eq!(
            ctx(&format!(r#"{{"a":{{"b":{{"trace_id":"{TRACE}"}}}}}}"#)),
            Some((TRACE.into(), None))
        );
    }

    /// Issue 7: JSON lines of a mebibyte, built on what the JSON and text searches key on.
    #[test]
    fn hostile_json_lines() {
        const MIB: usize = 1 << 20;
        let many_keys = format!(
            r#"{{{}"trace_id":"{TRACE}"}}"#,
            r#""trace_id":"x","#.repeat(MIB / 15)
        );
        assert_eq!(ctx(&many_keys), Some((TRACE.into(), None)));
        let many_objects = format!(
            r#"{{{}"dd":{{"trace_id":5}}}}"#,
            r#""a":{"b":1},"#.repeat(MIB / 12)
        );
        assert!(ctx(&many_objects).is_some());
        let markers = format!(r#"{{"message":"{}]"}}"#, "[!dt ".repeat(MIB / 5));
        assert_eq!(ctx(&markers), None);
        let deep = format!("{}{}", "[".repeat(MIB), "]".repeat(MIB));
        assert_eq!(ctx(&format!(r#"{{"a":{deep}}}"#)), None);
    }

    #[test]
    fn rejects_invalid_ids_and_non_objects() {
        let p = parse(r#"{"trace_id":"00000000000000000000000000000000","requestId":"has space"}"#).unwrap();
        assert!(p.context.is_none() && p.request_id.is_none());
        assert!(parse("{not json").is_none());
        assert!(parse("[1,2]").is_none());
    }
}
