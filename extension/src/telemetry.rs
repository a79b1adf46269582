//! Telemetry API batches to typed events, tolerantly: the platform adds event types and fields over time,
//! records may be strings or objects, and a malformed item must not cost the rest of its batch.

use serde_json::Value;

use crate::clock::{ms_to_nanos, parse_rfc3339};

/// How an invocation (or the init phase) ended, as `platform.runtimeDone`/`platform.report` say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Success,
    Error,
    Failure,
    Timeout,
    Other(String),
}

impl Status {
    fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "success" => Status::Success,
            "error" => Status::Error,
            "failure" => Status::Failure,
            "timeout" => Status::Timeout,
            other => Status::Other(other.chars().take(64).collect()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Failure => "failure",
            Status::Timeout => "timeout",
            Status::Other(s) => s,
        }
    }

    pub fn is_failure(&self) -> bool {
        matches!(self, Status::Error | Status::Failure | Status::Timeout)
    }
}

/// One of the platform's own spans (`responseLatency`, `responseDuration`, `extensionOverhead`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformSpan {
    pub name: String,
    pub start: u64,
    pub duration: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportMetrics {
    pub duration_ms: Option<f64>,
    pub billed_duration_ms: Option<u64>,
    pub memory_size_mb: Option<u64>,
    pub max_memory_used_mb: Option<u64>,
    pub init_duration_ms: Option<f64>,
}

/// A log line of the function, as the Telemetry API delivers it.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionLog {
    pub time: Option<u64>,
    pub message: String,
    pub level: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    InitStart {
        time: Option<u64>,
    },
    InitEnd {
        time: Option<u64>,
        duration_ms: Option<f64>,
        status: Option<Status>,
        error_type: Option<String>,
    },
    Start {
        time: Option<u64>,
        request_id: String,
        tracing: Option<String>,
    },
    RuntimeDone {
        time: Option<u64>,
        request_id: String,
        status: Status,
        error_type: Option<String>,
        duration_ms: Option<f64>,
        spans: Vec<PlatformSpan>,
    },
    Report {
        time: Option<u64>,
        request_id: String,
        status: Status,
        error_type: Option<String>,
        metrics: ReportMetrics,
        spans: Vec<PlatformSpan>,
    },
    LogsDropped {
        reason: String,
    },
    Function(FunctionLog),
}

/// Lambda truncates a function's log record at 256 KiB; an item twice that size is not from the platform.
const MAX_ITEM_BYTES: usize = 512 * 1024;

/// Parses one POSTed batch. `Err` only when the body is not a JSON array at all; items that cannot be used
/// are counted in the second value.
///
/// Items are parsed one at a time from their raw text, so that a batch never exists as one tree of JSON
/// values: those take up to 32 times the bytes of their text (`[0,0,0,...]`), which a 2 MiB batch would turn
/// into tens of megabytes.
pub fn parse_batch(body: &[u8]) -> Result<(Vec<Event>, usize), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = serde::Deserializer::deserialize_seq(&mut deserializer, ItemsVisitor)?;
    deserializer.end()?;
    Ok(parsed)
}

struct ItemsVisitor;

impl<'de> serde::de::Visitor<'de> for ItemsVisitor {
    type Value = (Vec<Event>, usize);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of telemetry events")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut events = Vec::new();
        let mut unusable = 0;
        while let Some(raw) = seq.next_element::<&'de serde_json::value::RawValue>()? {
            let item = (raw.get().len() <= MAX_ITEM_BYTES)
                .then(|| serde_json::from_str::<Value>(raw.get()).ok())
                .flatten();
            match item.as_ref().and_then(parse_item) {
                Some(Some(event)) => events.push(event),
                Some(None) => {}
                None => unusable += 1,
            }
        }
        Ok((events, unusable))
    }
}

/// `Some(None)` for a well-formed item of a type this extension has no use for.
fn parse_item(item: &Value) -> Option<Option<Event>> {
    let kind = item.get("type")?.as_str()?;
    let time = item.get("time").and_then(Value::as_str).and_then(parse_rfc3339);
    let record = item.get("record").unwrap_or(&Value::Null);
    let request_id = || str_field(record, "requestId").filter(|id| valid_request_id(id));
    let event = match kind {
        "platform.initStart" => Event::InitStart { time },
        "platform.initRuntimeDone" | "platform.initReport" => Event::InitEnd {
            time,
            duration_ms: record
                .get("metrics")
                .and_then(|m| m.get("durationMs"))
                .and_then(Value::as_f64),
            status: str_field(record, "status").map(|s| Status::parse(&s)),
            error_type: str_field(record, "errorType"),
        },
        "platform.start" => Event::Start {
            time,
            request_id: request_id()?,
            tracing: tracing_value(record),
        },
        "platform.runtimeDone" => Event::RuntimeDone {
            time,
            request_id: request_id()?,
            status: Status::parse(&str_field(record, "status").unwrap_or_default()),
            error_type: str_field(record, "errorType"),
            duration_ms: record
                .get("metrics")
                .and_then(|m| m.get("durationMs"))
                .and_then(Value::as_f64),
            spans: platform_spans(record),
        },
        "platform.report" => Event::Report {
            time,
            request_id: request_id()?,
            status: Status::parse(&str_field(record, "status").unwrap_or_default()),
            error_type: str_field(record, "errorType"),
            metrics: report_metrics(record.get("metrics").unwrap_or(&Value::Null)),
            spans: platform_spans(record),
        },
        "platform.logsDropped" => Event::LogsDropped {
            reason: str_field(record, "reason").unwrap_or_default(),
        },
        "function" => Event::Function(function_log(time, record)?),
        _ => return Some(None),
    };
    Some(Some(event))
}

/// Request ids become span attributes and marker lines: only plausible ones are kept, so a hostile record
/// cannot inject text into the function's log stream.
fn valid_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

fn str_field(record: &Value, key: &str) -> Option<String> {
    record.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn tracing_value(record: &Value) -> Option<String> {
    let tracing = record.get("tracing")?;
    tracing.get("value").and_then(Value::as_str).map(str::to_owned)
}

fn platform_spans(record: &Value) -> Vec<PlatformSpan> {
    let Some(spans) = record.get("spans").and_then(Value::as_array) else {
        return Vec::new();
    };
    spans
        .iter()
        .take(16)
        .filter_map(|span| {
            Some(PlatformSpan {
                name: span.get("name")?.as_str()?.chars().take(64).collect(),
                start: parse_rfc3339(span.get("start")?.as_str()?)?,
                duration: ms_to_nanos(span.get("durationMs")?.as_f64()?),
            })
        })
        .collect()
}

fn report_metrics(metrics: &Value) -> ReportMetrics {
    let f = |key: &str| metrics.get(key).and_then(Value::as_f64);
    let u = |key: &str| {
        f(key)
            .filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e15)
            .map(|v| v.round() as u64)
    };
    ReportMetrics {
        duration_ms: f("durationMs"),
        billed_duration_ms: u("billedDurationMs"),
        memory_size_mb: u("memorySizeMB"),
        max_memory_used_mb: u("maxMemoryUsedMB"),
        init_duration_ms: f("initDurationMs"),
    }
}

/// Text-format logs arrive as a string; JSON-format logs as an object with `message`, `level`, `requestId`.
fn function_log(time: Option<u64>, record: &Value) -> Option<FunctionLog> {
    match record {
        Value::String(text) => Some(FunctionLog {
            time,
            message: text.trim_end_matches(['\n', '\r']).to_owned(),
            level: None,
            request_id: None,
        }),
        Value::Object(map) => {
            let message = match map.get("message") {
                Some(Value::String(s)) => s.clone(),
                _ => record.to_string(),
            };
            let time = map
                .get("timestamp")
                .and_then(Value::as_str)
                .and_then(parse_rfc3339)
                .or(time);
            Some(FunctionLog {
                time,
                message,
                level: str_field(record, "level"),
                request_id: str_field(record, "requestId").filter(|id| valid_request_id(id)),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_platform_events() {
        let body = br#"[
          {"time":"2026-11-21T10:00:00.000Z","type":"platform.initStart","record":{"initializationType":"on-demand","phase":"init"}},
          {"time":"2026-11-21T10:00:00.100Z","type":"platform.start","record":{"requestId":"r-1","version":"$LATEST","tracing":{"spanId":"x","type":"X-Amzn-Trace-Id","value":"Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1"}}},
          {"time":"2026-11-21T10:00:00.200Z","type":"platform.runtimeDone","record":{"requestId":"r-1","status":"error","errorType":"Runtime.Handled","metrics":{"durationMs":99.5,"producedBytes":12},"spans":[{"name":"responseLatency","start":"2026-11-21T10:00:00.101Z","durationMs":98.0},{"bad":1}]}},
          {"time":"2026-11-21T10:00:00.300Z","type":"platform.report","record":{"requestId":"r-1","status":"success","metrics":{"durationMs":101.2,"billedDurationMs":102,"memorySizeMB":128,"maxMemoryUsedMB":30,"initDurationMs":50.5}}},
          {"time":"2026-11-21T10:00:00.150Z","type":"function","record":"hello\n"},
          {"time":"2026-11-21T10:00:00.150Z","type":"function","record":{"timestamp":"2026-11-21T10:00:00.151Z","level":"INFO","requestId":"r-1","message":"hi"}},
          {"time":"2026-11-21T10:00:00.150Z","type":"platform.somethingNew","record":{}},
          {"type":"platform.start","record":{"requestId":"bad id\n[!dt forged]"}},
          42
        ]"#;
        let (events, unusable) = parse_batch(body).unwrap();
        assert_eq!(unusable, 2);
        assert_eq!(events.len(), 6);
        match &events[1] {
            Event::Start {
                request_id, tracing, ..
            } => {
                assert_eq!(request_id, "r-1");
                assert!(tracing.as_deref().unwrap().starts_with("Root=1-5f35ae12"));
            }
            other => panic!("{other:?}"),
        }
        match &events[2] {
            Event::RuntimeDone {
                status,
                spans,
                error_type,
                ..
            } => {
                assert_eq!(*status, Status::Error);
                assert_eq!(error_type.as_deref(), Some("Runtime.Handled"));
                assert_eq!(spans.len(), 1);
                assert_eq!(spans[0].duration, 98_000_000);
            }
            other => panic!("{other:?}"),
        }
        match &events[3] {
            Event::Report { metrics, .. } => {
                assert_eq!(metrics.billed_duration_ms, Some(102));
                assert_eq!(metrics.init_duration_ms, Some(50.5));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&events[4], Event::Function(log) if log.message == "hello"));
        assert!(matches!(&events[5], Event::Function(log) if log.request_id.as_deref() == Some("r-1")));
    }

    /// Every truncation and many byte substitutions of a valid batch, through the parser, the tracker and the
    /// span builder: whatever the platform (or an attacker on the listener) sends, nothing panics.
    #[test]
    fn mutated_batches_never_panic() {
        use crate::invocation::Tracker;
        use crate::spans::{invocation_spans, FunctionInfo};
        let valid = br#"[{"time":"2026-11-21T10:00:00.100Z","type":"platform.start","record":{"requestId":"r-1","tracing":{"value":"Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32"}}},{"time":"2026-11-21T10:00:00.200Z","type":"platform.runtimeDone","record":{"requestId":"r-1","status":"timeout","metrics":{"durationMs":99.5},"spans":[{"name":"responseLatency","start":"2026-11-21T10:00:00.101Z","durationMs":98.0}]}},{"time":"2026-11-21T10:00:00.300Z","type":"platform.report","record":{"requestId":"r-1","status":"success","metrics":{"durationMs":-1,"billedDurationMs":1e300,"memorySizeMB":"x","initDurationMs":50.5}}}]"#;
        let replacements = [
            b'0', b'9', b'"', b'{', b'}', b'[', b']', b'-', b'e', b':', b',', 0xff,
        ];
        let mut tracker = Tracker::new(true);
        let mut check = |body: &[u8]| {
            if let Ok((events, _)) = parse_batch(body) {
                for event in events {
                    tracker.on_event(event);
                }
                let (done, _) = tracker.take_complete(true);
                for inv in &done {
                    let _ = invocation_spans(inv, &tracker.init, &FunctionInfo::default());
                }
            }
        };
        for cut in 0..valid.len() {
            check(&valid[..cut]);
        }
        for (i, replacement) in (0..valid.len()).flat_map(|i| replacements.iter().map(move |r| (i, *r))) {
            let mut body = valid.to_vec();
            body[i] = replacement;
            check(&body);
        }
    }

    /// A batch of tiny items costs no tree of values for the whole batch, and an item far larger than any
    /// the platform sends is counted, not parsed.
    #[test]
    fn items_are_parsed_one_at_a_time_and_oversize_ones_counted() {
        let mut body = b"[".to_vec();
        for _ in 0..100_000 {
            body.extend_from_slice(b"0,");
        }
        let huge = format!(
            r#"{{"type":"function","record":"{}"}}"#,
            "x".repeat(MAX_ITEM_BYTES)
        );
        body.extend_from_slice(huge.as_bytes());
        body.extend_from_slice(br#",{"type":"function","record":"kept"}]"#);
        let (events, unusable) = parse_batch(&body).unwrap();
        assert_eq!(unusable, 100_001);
        assert!(matches!(&events[..], [Event::Function(log)] if log.message == "kept"));
        assert!(parse_batch(b"[] trailing").is_err());
        assert!(parse_batch(b"[{\"type\":\"x\"},").is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_batch(b"{").is_err());
        assert!(parse_batch(b"{\"type\":\"x\"}").is_err());
        let (events, unusable) = parse_batch(b"[null, [], {\"type\":7}]").unwrap();
        assert!(events.is_empty());
        assert_eq!(unusable, 3);
    }
}
