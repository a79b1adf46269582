//! The Dynatrace log marker `[!dt dt.trace_id=<32hex>,dt.span_id=<16hex>]` and the extension's invocation marker
//! line built on it, which is how the forwarder learns an invocation's trace (docs/architecture.md,
//! Correlation).

use std::fmt;

use crate::{SpanId, TraceId};

const OPEN: &str = "[!dt ";
const INVOCATION_TEXT: &str = " tracehose invocation RequestId: ";
/// Longest marker body accepted: both ids with their keys take 72 bytes; the rest leaves room for spacing
/// and fields Dynatrace may add. Bounding it is what keeps the search linear.
const MAX_BODY: usize = 256;

enum Candidate {
    Marker(DynatraceMarker, usize),
    /// Not a valid marker: where to look for the next `[`.
    Next(usize),
}

/// A `[!dt ...]` marker found in, or to be written into, a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynatraceMarker {
    pub trace_id: TraceId,
    pub span_id: Option<SpanId>,
}

impl DynatraceMarker {
    /// The first valid marker in `line`. Dynatrace's own examples print uppercase hex and some loggers add
    /// spaces after the comma, so keys and hex are matched case-insensitively and whitespace is tolerated.
    /// A marker whose trace id is invalid is skipped, never half-used.
    pub fn find(line: &str) -> Option<Self> {
        Self::find_with_end(line).map(|(marker, _)| marker)
    }

    /// Like [`find`](Self::find), also returning the byte offset just past the marker's closing bracket.
    pub fn find_with_end(line: &str) -> Option<(Self, usize)> {
        let mut from = 0;
        while let Some(rel) = line.get(from..)?.find('[') {
            match Self::at(line, from + rel) {
                Candidate::Marker(marker, end) => return Some((marker, end)),
                Candidate::Next(next) => from = next,
            }
        }
        None
    }

    /// The candidate whose `[` is at `open`. A body is short and cannot contain `[`, so the search for its
    /// `]` stops at the next `[` or after [`MAX_BODY`] bytes: every byte of the line is looked at by at most
    /// one candidate, which keeps a line of nothing but `[!dt ` linear.
    fn at(line: &str, open: usize) -> Candidate {
        let bytes = line.as_bytes();
        let body_start = open + OPEN.len();
        let is_open = bytes
            .get(open..body_start)
            .is_some_and(|b| b.eq_ignore_ascii_case(OPEN.as_bytes()));
        if !is_open {
            return Candidate::Next(open + 1);
        }
        let window = &bytes[body_start..bytes.len().min(body_start + MAX_BODY + 1)];
        match window.iter().position(|&c| c == b']' || c == b'[') {
            Some(close) if window[close] == b']' => {
                // Both ends are ASCII, so these are character boundaries.
                let body = line.get(body_start..body_start + close).unwrap_or_default();
                match Self::parse_body(body) {
                    Some(marker) => Candidate::Marker(marker, body_start + close + 1),
                    None => Candidate::Next(body_start + close + 1),
                }
            }
            Some(next_open) => Candidate::Next(body_start + next_open),
            None => Candidate::Next(body_start + window.len()),
        }
    }

    fn parse_body(body: &str) -> Option<Self> {
        let mut trace_id = None;
        let mut span_id = None;
        // Fields end at ASCII separators, so each is a slice on character boundaries: found byte by byte,
        // which costs less than `split` on a set of chars decoding every char.
        let ends = body
            .bytes()
            .enumerate()
            .filter(|&(_, c)| matches!(c, b',' | b' ' | b'\t'))
            .map(|(at, _)| at)
            .chain([body.len()]);
        let mut start = 0;
        for end in ends {
            let field = body.get(start..end).unwrap_or_default();
            start = end + 1;
            if field.is_empty() {
                continue;
            }
            let (key, value) = field.split_once('=')?;
            if key.eq_ignore_ascii_case("dt.trace_id") {
                trace_id = Some(TraceId::from_hex(value)?);
            } else if key.eq_ignore_ascii_case("dt.span_id") {
                span_id = Some(SpanId::from_hex(value)?);
            }
        }
        Some(Self {
            trace_id: trace_id?,
            span_id,
        })
    }
}

impl fmt::Display for DynatraceMarker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[!dt dt.trace_id={}", self.trace_id)?;
        if let Some(span) = self.span_id {
            write!(f, ",dt.span_id={span}")?;
        }
        f.write_str("]")
    }
}

/// What the extension's marker line says: this invocation runs in this trace, under this span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationMarker<'a> {
    pub trace_id: TraceId,
    pub span_id: Option<SpanId>,
    pub request_id: &'a str,
}

/// The one line the extension prints per invocation:
/// `[!dt dt.trace_id=<32hex>,dt.span_id=<16hex>] tracehose invocation RequestId: <id>`.
pub fn invocation_marker_line(trace_id: TraceId, span_id: SpanId, request_id: &str) -> String {
    let marker = DynatraceMarker {
        trace_id,
        span_id: Some(span_id),
    };
    format!("{marker}{INVOCATION_TEXT}{request_id}")
}

/// Recognises an invocation marker line (surrounding whitespace allowed, nothing else).
pub fn parse_invocation_marker(line: &str) -> Option<InvocationMarker<'_>> {
    let line = line.trim();
    if !line.starts_with(OPEN) {
        return None;
    }
    // The marker must be the one at the start, not a later one after an invalid first.
    let Candidate::Marker(marker, end) = DynatraceMarker::at(line, 0) else {
        return None;
    };
    let request_id = line[end..].strip_prefix(INVOCATION_TEXT)?.trim();
    let plausible = !request_id.is_empty()
        && request_id.len() <= 128
        && request_id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
    plausible.then_some(InvocationMarker {
        trace_id: marker.trace_id,
        span_id: marker.span_id,
        request_id,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const SPAN: &str = "00f067aa0ba902b7";

    #[test]
    fn finds_markers_in_any_case_and_position() {
        let line = format!(
            "2026-11-21 INFO [!dt dt.trace_id={},dt.span_id={}] order placed",
            TRACE.to_uppercase(),
            SPAN
        );
        let m = DynatraceMarker::find(&line).unwrap();
        assert_eq!(m.trace_id.to_string(), TRACE);
        assert_eq!(m.span_id.unwrap().to_string(), SPAN);
        let no_span = DynatraceMarker::find(&format!("[!dt dt.trace_id={TRACE}] x")).unwrap();
        assert!(no_span.span_id.is_none());
        let spaced = DynatraceMarker::find(&format!("[!DT dt.trace_id={TRACE}, dt.span_id={SPAN}]")).unwrap();
        assert!(spaced.span_id.is_some());
    }

    #[test]
    fn skips_invalid_markers_and_keeps_looking() {
        let line = format!("[!dt dt.trace_id=abc] then [!dt dt.trace_id={TRACE}]");
        assert_eq!(DynatraceMarker::find(&line).unwrap().trace_id.to_string(), TRACE);
        assert!(DynatraceMarker::find(&format!("[!dt dt.trace_id={}]", "0".repeat(32))).is_none());
        assert!(DynatraceMarker::find(&format!("[!dt dt.trace_id={TRACE}")).is_none());
        assert!(DynatraceMarker::find(&format!("[!dt dt.trace_id={TRACE},dt.span_id=xyz]")).is_none());
    }

    /// Issue 7: a line of repeated openings once cost quadratic time (20 s for 1 MiB). These answers come
    /// from a search that looks at each byte a bounded number of times; `benches/hostile_lines.rs` in the
    /// forwarder shows the throughput.
    #[test]
    fn hostile_lines_of_a_mebibyte() {
        const MIB: usize = 1 << 20;
        let valid = format!("[!dt dt.trace_id={TRACE},dt.span_id={SPAN}]");
        let openings = "[!dt ".repeat(MIB / 5);
        assert!(DynatraceMarker::find(&format!("{openings}]")).is_none());
        assert!(DynatraceMarker::find(&openings).is_none());
        let found = DynatraceMarker::find(&format!("{openings}]{valid}")).unwrap();
        assert_eq!(found.span_id.unwrap().to_string(), SPAN);
        assert!(DynatraceMarker::find(&format!("{openings}{valid}")).is_some());
        assert!(DynatraceMarker::find(&format!("{}{valid}", "[".repeat(MIB))).is_some());
        assert!(DynatraceMarker::find(&format!("{}{valid}", "[!".repeat(MIB / 2))).is_some());
        let unclosed = format!("[!dt dt.trace_id={TRACE}{}", " ".repeat(MIB));
        assert!(DynatraceMarker::find(&unclosed).is_none());
        let long_body = format!("[!dt dt.trace_id={TRACE},{}]", "x=y,".repeat(MIB / 4));
        assert!(DynatraceMarker::find(&long_body).is_none());
        assert!(DynatraceMarker::find(&format!("{long_body} {valid}")).is_some());
        let mut upper = "[!DT ".repeat(MIB / 5);
        upper.push_str(
            &valid
                .to_uppercase()
                .replace("[!DT DT.TRACE_ID", "[!dt dt.trace_id"),
        );
        assert!(DynatraceMarker::find(&upper).is_some());
    }

    #[test]
    fn a_bracket_inside_the_body_ends_the_candidate() {
        let line = format!("[!dt dt.trace_id=[!dt dt.trace_id={TRACE}]");
        assert_eq!(DynatraceMarker::find(&line).unwrap().trace_id.to_string(), TRACE);
        assert!(DynatraceMarker::find("[!dt").is_none());
        assert!(DynatraceMarker::find("é[!dt é]").is_none());
    }

    #[test]
    fn invocation_marker_round_trips() {
        let trace = TraceId::from_hex(TRACE).unwrap();
        let span = SpanId::from_hex(SPAN).unwrap();
        let line = invocation_marker_line(trace, span, "8f507cfc-1a2b-4697-b07a-ac58fc914c95");
        assert_eq!(
            line,
            format!("[!dt dt.trace_id={TRACE},dt.span_id={SPAN}] tracehose invocation RequestId: 8f507cfc-1a2b-4697-b07a-ac58fc914c95")
        );
        let with_newline = format!("{line}\n");
        let parsed = parse_invocation_marker(&with_newline).unwrap();
        assert_eq!(parsed.request_id, "8f507cfc-1a2b-4697-b07a-ac58fc914c95");
        assert_eq!(parsed.trace_id, trace);
        assert!(parse_invocation_marker(&format!("x {line}")).is_none());
        assert!(parse_invocation_marker(&format!("[!dt nonsense] {line}")).is_none());
        assert!(parse_invocation_marker(&format!(
            "[!dt dt.trace_id={TRACE}] tracehose invocation RequestId: a b"
        ))
        .is_none());
    }
}
