//! Trace context printed inside a line, in every form of FORMATS.md section 3. Each candidate is validated
//! (length, hex, not all zero); a form that merely looks similar yields nothing.

use memchr::memmem;
use tracehose_tracecontext::{DynatraceMarker, SpanId, TraceId, TraceParent};

use super::TraceContext;

/// The line's own trace context. When a line carries several forms, the most explicit wins: the Dynatrace
/// marker, then a W3C traceparent, then `trace_id`-style keys, then an X-Ray id, then Datadog's decimal ids.
pub fn find_trace_context(text: &str) -> Option<TraceContext> {
    let bytes = text.as_bytes();
    // Every form contains one of these; most lines contain none, so this keeps the common case to a few
    // vectorised scans.
    let has_trace_word = memmem::find(bytes, b"race").is_some();
    let has_marker = memchr::memchr(b'[', bytes).is_some() && memmem::find(bytes, b"[!").is_some();
    let has_xray_root = memmem::find(bytes, b"Root=1-").is_some();
    if !(has_trace_word || has_marker || has_xray_root) {
        return None;
    }
    if has_marker {
        if let Some(m) = DynatraceMarker::find(text) {
            return Some(TraceContext {
                trace_id: m.trace_id,
                span_id: m.span_id,
            });
        }
    }
    if has_trace_word {
        if let Some(ctx) = traceparent(text).or_else(|| keyed_hex(text)) {
            return Some(ctx);
        }
    }
    xray(text).or_else(|| if has_trace_word { datadog(text) } else { None })
}

fn traceparent(text: &str) -> Option<TraceContext> {
    for key in ["traceparent", "Traceparent"] {
        for at in memmem::find_iter(text.as_bytes(), key.as_bytes()) {
            let value = value_after(text, at + key.len());
            if let Some(tp) = value.get(..55).and_then(TraceParent::parse) {
                return Some(TraceContext {
                    trace_id: tp.trace_id,
                    span_id: Some(tp.span_id),
                });
            }
        }
    }
    None
}

/// `trace_id=..`, `"traceId": ".."`, `dt.trace_id: ..` with a hex (or X-Ray) value, and the matching span key.
fn keyed_hex(text: &str) -> Option<TraceContext> {
    let trace_id = ["trace_id", "traceId", "dt.trace_id"]
        .into_iter()
        .flat_map(|key| keyed_values(text, key))
        .find_map(|v| TraceId::from_hex(v).or_else(|| TraceId::from_xray(v)))?;
    let span_id = ["span_id", "spanId", "dt.span_id"]
        .into_iter()
        .flat_map(|key| keyed_values(text, key))
        .find_map(SpanId::from_hex);
    Some(TraceContext { trace_id, span_id })
}

/// `dd.trace_id=4887065908816661012 dd.span_id=...`: decimal, the low 64 bits of the trace.
fn datadog(text: &str) -> Option<TraceContext> {
    let trace_id = keyed_values(text, "dd.trace_id").find_map(|v| TraceId::from_u64(v.parse().ok()?))?;
    let span_id = keyed_values(text, "dd.span_id").find_map(|v| SpanId::from_u64(v.parse().ok()?));
    Some(TraceContext { trace_id, span_id })
}

/// `Root=1-5f35ae12-...` (an X-Amzn-Trace-Id header) or `TraceId: 1-...` / `TraceId=1-...`.
fn xray(text: &str) -> Option<TraceContext> {
    for key in ["Root=", "TraceId: ", "TraceId="] {
        for at in memmem::find_iter(text.as_bytes(), key.as_bytes()) {
            let Some(candidate) = text.get(at + key.len()..at + key.len() + 35) else {
                continue;
            };
            let ends_cleanly = !text[at + key.len() + 35..].starts_with(|c: char| c.is_ascii_alphanumeric());
            if let Some(trace_id) = TraceId::from_xray(candidate).filter(|_| ends_cleanly) {
                return Some(TraceContext {
                    trace_id,
                    span_id: None,
                });
            }
        }
    }
    None
}

/// Values following each whole-word occurrence of `key`, past an optional closing quote, `=` or `:`,
/// whitespace and an opening quote. A value is a run of letters, digits and dashes.
fn keyed_values<'a>(text: &'a str, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let bytes = text.as_bytes();
    memmem::find_iter(bytes, key.as_bytes()).filter_map(move |at| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.') {
            return None;
        }
        let rest = text[at + key.len()..]
            .strip_prefix('"')
            .unwrap_or(&text[at + key.len()..]);
        let rest = rest.trim_start();
        let rest = rest.strip_prefix(['=', ':'])?.trim_start();
        let rest = rest.strip_prefix('"').unwrap_or(rest);
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(rest.len());
        Some(&rest[..end])
    })
}

fn value_after(text: &str, from: usize) -> &str {
    text[from..].trim_start_matches(['"', '\'', ' ', '\t', ':', '='])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const SPAN: &str = "00f067aa0ba902b7";

    fn ids(text: &str) -> Option<(String, Option<String>)> {
        find_trace_context(text).map(|c| (c.trace_id.to_string(), c.span_id.map(|s| s.to_string())))
    }

    #[test]
    fn every_form() {
        let want = Some((TRACE.to_owned(), Some(SPAN.to_owned())));
        assert_eq!(
            ids(&format!(
                "x [!dt dt.trace_id={},dt.span_id={}] y",
                TRACE.to_uppercase(),
                SPAN.to_uppercase()
            )),
            want
        );
        assert_eq!(ids(&format!("traceparent: 00-{TRACE}-{SPAN}-01")), want);
        assert_eq!(ids(&format!(r#"{{"traceparent":"00-{TRACE}-{SPAN}-00"}}"#)), want);
        assert_eq!(ids(&format!("msg trace_id={TRACE} span_id={SPAN}")), want);
        assert_eq!(
            ids(&format!(
                r#"payload {{"traceId": "{TRACE}", "spanId": "{SPAN}"}}"#
            )),
            want
        );
        assert_eq!(ids(&format!("dt.trace_id={TRACE} dt.span_id={SPAN}")), want);
        assert_eq!(
            ids("forwarding X-Amzn-Trace-Id: Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32"),
            Some(("5f35ae120c0fec141ab77a00bc047aa2".into(), None))
        );
        assert_eq!(
            ids("dd.trace_id=4887065908816661012 dd.span_id=1"),
            Some((
                "000000000000000043d2588d20f04a14".into(),
                Some("0000000000000001".into())
            ))
        );
    }

    #[test]
    fn look_alikes_yield_nothing() {
        for text in [
            "a race condition".to_owned(),
            format!("trace_id={}", &TRACE[..31]),
            format!("trace_id={TRACE}0"),
            format!("trace_id={}", "0".repeat(32)),
            format!("mytrace_id={TRACE}"),
            format!("traceparent: 00-{TRACE}-{SPAN}"),
            "Root=1-5f35ae12-0c0fec141ab77a00bc047aa".to_owned(),
            "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2b".to_owned(),
            "dd.trace_id=0".to_owned(),
            "dd.trace_id=99999999999999999999999".to_owned(),
            "[!dt dt.trace_id=xyz]".to_owned(),
        ] {
            assert_eq!(ids(&text), None, "{text}");
        }
    }

    #[test]
    fn datadog_key_is_not_taken_for_a_hex_key() {
        // "dd.trace_id" contains "trace_id": the decimal must not be read as hex.
        assert_eq!(ids("dd.trace_id=12345678901234567890123456789012"), None);
    }

    #[test]
    fn invalid_span_keeps_the_trace() {
        assert_eq!(
            ids(&format!("trace_id={TRACE} span_id=nope")),
            Some((TRACE.to_owned(), None))
        );
    }
}
