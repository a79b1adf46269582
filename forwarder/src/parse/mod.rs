//! Parse: what one Lambda or CloudWatch log line says about itself (FORMATS.md sections 2 and 3).
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
    ParsedLine {
        severity: prefix.severity.unwrap_or_else(|| severity::guess(text)),
        request_id: prefix.request_id.map(shared_request_id),
        context: find_trace_context(text),
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
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
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

    #[test]
    fn plain_lines_have_nothing() {
        let parsed = parse_line("hello world\n");
        assert_eq!(parsed, ParsedLine::default());
    }
}
