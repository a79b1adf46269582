//! Parse: what one Lambda or CloudWatch log line says about itself (docs/formats.md sections 2 and 3).
//!
//! A line is parsed on its own, without state: its severity, its request id if it names one, its own trace
//! context, and for platform lines the event and its details. Joining lines to invocations is `correlate`'s job.

mod context;
mod json_ids;
mod json_line;
mod platform;
mod runtime;
mod severity;

use std::cell::Cell;
use std::sync::Arc;

use tracehose_tracecontext::{parse_invocation_marker, SpanId, TraceId};

pub use context::find_trace_context;
pub use platform::{PlatformDetails, PlatformEvent, ReportMetrics};
pub use severity::Severity;

/// A trace id and, when the form carries one, a span id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: TraceId,
    pub span_id: Option<SpanId>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedLine {
    pub severity: Severity,
    /// The request id the line itself names (platform line, runtime prefix, JSON key, marker line).
    pub request_id: Option<Arc<str>>,
    /// Trace context printed in the line itself: rule 1 of the correlation contract.
    pub context: Option<TraceContext>,
    /// The line is the extension's marker announcing the trace of `request_id`.
    pub invocation_marker: bool,
    pub platform: Option<PlatformEvent>,
    pub details: Option<Box<PlatformDetails>>,
    /// The X-Ray trace of the invocation, from a REPORT line or a `platform.start` record: only a fallback
    /// for the whole invocation (rule 3), never the line's own context.
    pub xray: Option<TraceContext>,
}

/// Parses one log event's message.
pub fn parse_line(message: &str) -> ParsedLine {
    let text = message.trim_end_matches(['\n', '\r']);
    if text.starts_with('{') {
        if let Some(parsed) = json_line::parse(text) {
            return parsed;
        }
    }
    if let Some(parsed) = platform::parse(text) {
        return parsed;
    }
    if let Some(marker) = parse_invocation_marker(text) {
        return ParsedLine {
            severity: Severity::Info,
            request_id: Some(shared_request_id(marker.request_id)),
            context: Some(TraceContext {
                trace_id: marker.trace_id,
                span_id: marker.span_id,
            }),
            invocation_marker: true,
            ..ParsedLine::default()
        };
    }
    let prefix = runtime::parse_prefix(text);
    // Behind a runtime prefix, a JSON object is read as a JSON line is: nested keys such as Datadog's
    // `"dd": {"trace_id": ..}` are found only that way. Only the body holds it; the prefix has no trace.
    let body = prefix.body.map(str::trim_start).and_then(json_line::parse_body);
    let body_severity = body
        .as_ref()
        .map(|b| b.severity)
        .filter(|s| *s != Severity::Unspecified);
    let (body_request_id, body_context) = body.map(|b| (b.request_id, b.context)).unzip();
    ParsedLine {
        severity: prefix
            .severity
            .or(body_severity)
            .unwrap_or_else(|| severity::guess(text)),
        request_id: prefix
            .request_id
            .map(shared_request_id)
            .or(body_request_id.flatten()),
        context: match body_context {
            Some(context) => context,
            None => find_trace_context(text),
        },
        ..ParsedLine::default()
    }
}

/// The request id as the shared string records hold. Consecutive lines of an invocation name the same id,
/// so the last one made on this thread is handed out again instead of allocating one per line.
pub(crate) fn shared_request_id(id: &str) -> Arc<str> {
    thread_local! {
        static LAST: Cell<Option<Arc<str>>> = const { Cell::new(None) };
    }
    LAST.with(|last| {
        let shared = match last.take() {
            Some(held) if *held == *id => held,
            _ => Arc::from(id),
        };
        last.set(Some(Arc::clone(&shared)));
        shared
    })
}

/// Lambda request ids are UUIDs; holding text-extracted ids to that shape keeps stray words from becoming ids.
pub(crate) fn is_request_id(s: &str) -> bool {
    // The dashes first, then the five hex groups: this runs on a token of nearly every line.
    let Ok(b) = <&[u8; 36]>::try_from(s.as_bytes()) else {
        return false;
    };
    [b[8], b[13], b[18], b[23]] == [b'-'; 4]
        && [&b[..8], &b[9..13], &b[14..18], &b[19..23], &b[24..]]
            .iter()
            .all(|group| group.iter().all(u8::is_ascii_hexdigit))
}

/// Request ids from JSON keys are taken as printed, within reason: no whitespace, bounded length.
pub(crate) fn plausible_request_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|c| c.is_ascii_graphic())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ID: &str = "8f507cfc-1a2b-4697-b07a-ac58fc914c95";

    #[test]
    fn request_id_shape() {
        assert!(is_request_id(ID));
        assert!(!is_request_id("8f507cfc-1a2b-4697-b07a-ac58fc914c9"));
        assert!(!is_request_id("8f507cfc_1a2b-4697-b07a-ac58fc914c95"));
        assert!(!is_request_id("8f507cfc-1a2b-4697-b07a-ac58fc914cZ5"));
    }

    #[test]
    fn marker_lines_name_their_invocation() {
        let line = format!(
            "[!dt dt.trace_id=0af7651916cd43dd8448eb211c80319c,dt.span_id=00f067aa0ba902b7] tracehose invocation RequestId: {ID}\n"
        );
        let parsed = parse_line(&line);
        assert!(parsed.invocation_marker);
        assert_eq!(parsed.request_id.as_deref(), Some(ID));
        assert_eq!(
            parsed.context.unwrap().trace_id.to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
    }

    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const SPAN: &str = "00f067aa0ba902b7";
    /// 6994014047844474773 and 1 as Datadog prints them, and as the hex ids they stand for.
    const DD_TRACE: &str = "0000000000000000610fbab87bdc9f95";
    const DD_SPAN: &str = "0000000000000001";
    const XRAY: &str = "1-5f35ae12-0c0fec141ab77a00bc047aa2";
    const XRAY_AS_W3C: &str = "5f35ae120c0fec141ab77a00bc047aa2";

    /// A trace id and maybe a span id, in hex.
    type Ids = (&'static str, Option<&'static str>);

    /// Every JSON form of trace context the parser reads, with the ids it stands for.
    fn json_forms() -> Vec<(&'static str, String, Ids)> {
        let hex = (TRACE, Some(SPAN));
        vec![
            (
                "flat snake",
                format!(r#"{{"trace_id":"{TRACE}","span_id":"{SPAN}"}}"#),
                hex,
            ),
            (
                "flat camel",
                format!(r#"{{"traceId":"{TRACE}","spanId":"{SPAN}"}}"#),
                hex,
            ),
            (
                "dynatrace keys",
                format!(r#"{{"dt.trace_id":"{TRACE}","dt.span_id":"{SPAN}"}}"#),
                hex,
            ),
            (
                ".NET scope",
                format!(r#"{{"TraceId":"{TRACE}","SpanId":"{SPAN}"}}"#),
                hex,
            ),
            (
                ".NET X-Ray",
                format!(r#"{{"TraceId":"{XRAY}"}}"#),
                (XRAY_AS_W3C, None),
            ),
            (
                "otel python",
                format!(r#"{{"otelTraceID":"{TRACE}","otelSpanID":"{SPAN}"}}"#),
                hex,
            ),
            (
                "ECS flat",
                format!(r#"{{"trace.id":"{TRACE}","span.id":"{SPAN}"}}"#),
                hex,
            ),
            (
                "ECS nested",
                format!(r#"{{"trace":{{"id":"{TRACE}"}},"span":{{"id":"{SPAN}"}}}}"#),
                hex,
            ),
            (
                "powertools",
                format!(r#"{{"level":"INFO","xray_trace_id":"{XRAY}"}}"#),
                (XRAY_AS_W3C, None),
            ),
            (
                "nested object",
                format!(r#"{{"ctx":{{"trace_id":"{TRACE}","span_id":"{SPAN}"}}}}"#),
                hex,
            ),
            (
                "array of scopes",
                format!(r#"{{"Scopes":["req",{{"SpanId":"{SPAN}","TraceId":"{TRACE}"}}]}}"#),
                hex,
            ),
            (
                "escaped key",
                format!(r#"{{"\u0074race_id":"{TRACE}"}}"#),
                (TRACE, None),
            ),
            (
                "datadog nested strings",
                r#"{"message": "charged", "dd": {"trace_id": "6994014047844474773", "span_id": "1"}}"#
                    .to_owned(),
                (DD_TRACE, Some(DD_SPAN)),
            ),
            (
                "datadog nested numbers",
                r#"{"dd":{"service":"a","trace_id":6994014047844474773,"span_id":1},"msg":"pino"}"#
                    .to_owned(),
                (DD_TRACE, Some(DD_SPAN)),
            ),
            (
                "datadog flat",
                r#"{"dd.trace_id":"6994014047844474773","dd.span_id":"1"}"#.to_owned(),
                (DD_TRACE, Some(DD_SPAN)),
            ),
            (
                "traceparent in the message",
                format!(r#"{{"message":"calling traceparent: 00-{TRACE}-{SPAN}-01"}}"#),
                hex,
            ),
            (
                "marker in the message",
                format!(r#"{{"message":"[!dt dt.trace_id={TRACE},dt.span_id={SPAN}] hi"}}"#),
                hex,
            ),
        ]
    }

    /// Every runtime prefix the parser knows, with the request id and level it gives.
    fn prefixes() -> Vec<(&'static str, String, Option<&'static str>, Severity)> {
        vec![
            ("whole line", String::new(), None, Severity::Unspecified),
            (
                "python",
                format!("[INFO]\t2026-11-21T10:00:00.123Z\t{ID}\t"),
                Some(ID),
                Severity::Info,
            ),
            (
                "node",
                format!("2026-11-21T10:00:00.123Z\t{ID}\tWARN\t"),
                Some(ID),
                Severity::Warn,
            ),
            (
                ".NET",
                format!("2026-11-21T10:00:00.123Z\t{ID}\terror\t"),
                Some(ID),
                Severity::Error,
            ),
            (
                "java",
                format!("2026-11-21 10:00:00 {ID} INFO  Handler - "),
                Some(ID),
                Severity::Info,
            ),
            (
                "go",
                "2026/11/21 10:00:00 ".to_owned(),
                None,
                Severity::Unspecified,
            ),
            (
                "rust tracing",
                "2026-11-21T10:00:00.123Z DEBUG ".to_owned(),
                None,
                Severity::Debug,
            ),
            (
                "ruby",
                "E, [2026-11-21T10:00:00.123456 #8] ERROR -- : ".to_owned(),
                None,
                Severity::Error,
            ),
        ]
    }

    /// Issue 14: every JSON form after every runtime prefix, as the line's own context.
    #[test]
    fn every_json_form_after_every_runtime_prefix() {
        for (prefix_name, prefix, request_id, severity) in prefixes() {
            for (form, json, (trace, span)) in json_forms() {
                let line = format!("{prefix}{json}\n");
                let parsed = parse_line(&line);
                let context = parsed
                    .context
                    .map(|c| (c.trace_id.to_string(), c.span_id.map(|s| s.to_string())));
                let want = (trace.to_owned(), span.map(str::to_owned));
                assert_eq!(context, Some(want), "{form} after {prefix_name}: {line}");
                assert_eq!(
                    parsed.request_id.as_deref(),
                    request_id,
                    "{form} after {prefix_name}"
                );
                let want_severity = match (prefix_name, form) {
                    ("whole line" | "go", "powertools") => Severity::Info,
                    _ => severity,
                };
                assert_eq!(parsed.severity, want_severity, "{form} after {prefix_name}");
            }
        }
    }

    #[test]
    fn the_issue_14_line_names_its_trace() {
        let line = format!(
            "[INFO]\t2026-11-21T10:00:00.123Z\t{ID}\t{{\"message\": \"order placed\", \"dd\": {{\"trace_id\": \"6994014047844474773\", \"span_id\": \"1\"}}}}\n"
        );
        let parsed = parse_line(&line);
        assert_eq!(parsed.context.unwrap().trace_id.to_string(), DD_TRACE);
        assert_eq!(parsed.request_id.as_deref(), Some(ID));
    }

    #[test]
    fn a_body_is_an_application_line_whatever_it_holds() {
        let python = format!("[INFO]\t2026-11-21T10:00:00.123Z\t{ID}\t");
        // A body that claims to be a platform record is still the application's line.
        let parsed = parse_line(&format!(
            r#"{python}{{"type":"platform.report","record":{{"requestId":"x"}}}}"#
        ));
        assert_eq!((parsed.platform, parsed.request_id.as_deref()), (None, Some(ID)));
        // Text after the object (a stack trace) does not hide it; a body that is not JSON is searched as text.
        let parsed = parse_line(&format!(
            "{python}{{\"dd\":{{\"trace_id\":\"5\"}}}}\nTraceback (most recent call last):"
        ));
        assert_eq!(parsed.context.unwrap().trace_id.low_u64(), 5);
        let parsed = parse_line(&format!("{python}{{not json trace_id={TRACE}"));
        assert_eq!(parsed.context.unwrap().trace_id.to_string(), TRACE);
        // The body's own request id and level count only where the prefix has none.
        let parsed = parse_line(r#"2026/11/21 10:00:00 {"level":"warn","requestId":"r-1","trace_id":"0"}"#);
        assert_eq!(
            (parsed.severity, parsed.request_id.as_deref(), parsed.context),
            (Severity::Warn, Some("r-1"), None)
        );
        let parsed = parse_line(&format!(r#"{python}{{"level":"error","requestId":"r-1"}}"#));
        assert_eq!(
            (parsed.severity, parsed.request_id.as_deref()),
            (Severity::Info, Some(ID))
        );
        for invalid in [
            r#"{"dd":{"trace_id":"0"}}"#,
            r#"{"dd":{"trace_id":"99999999999999999999999"}}"#,
        ] {
            assert_eq!(
                parse_line(&format!("{python}{invalid}")).context,
                None,
                "{invalid}"
            );
        }
    }

    /// A body of a mebibyte costs one read of it, whatever it holds.
    #[test]
    fn hostile_bodies_of_a_mebibyte() {
        const MIB: usize = 1 << 20;
        let python = format!("[INFO]\t2026-11-21T10:00:00.123Z\t{ID}\t");
        let deep = format!("{python}{{\"a\":{}", "[".repeat(MIB));
        assert_eq!(parse_line(&deep).context, None);
        let keys = format!(
            r#"{python}{{{}"dd":{{"trace_id":5}}}}"#,
            r#""a":{"b":1},"#.repeat(MIB / 12)
        );
        assert_eq!(parse_line(&keys).context.unwrap().trace_id.low_u64(), 5);
        let unclosed = format!(r#"{python}{{"message":"{} trace_id={TRACE}"#, "{".repeat(MIB));
        assert_eq!(parse_line(&unclosed).context.unwrap().trace_id.to_string(), TRACE);
        let java = format!("2026-11-21 10:00:00 {ID} INFO {}", " - ".repeat(MIB / 3));
        assert_eq!(parse_line(&java).request_id.as_deref(), Some(ID));
    }

    #[test]
    fn plain_lines_have_nothing() {
        let parsed = parse_line("hello world\n");
        assert_eq!(parsed, ParsedLine::default());
    }
}
