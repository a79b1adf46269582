//! Trace context printed inside a line, in every form of FORMATS.md section 3. Each candidate is validated
//! (length, hex, not all zero); a form that merely looks similar yields nothing.

use std::sync::LazyLock;

use memchr::memmem::Finder;
use tracehose_tracecontext::{DynatraceMarker, SpanId, TraceId, TraceParent};

use super::TraceContext;

/// The line's own trace context. When a line carries several forms, the most explicit wins: the Dynatrace
/// marker, then a W3C traceparent, then `trace_id`-style keys, then an X-Ray id, then Datadog's decimal ids.
pub fn find_trace_context(text: &str) -> Option<TraceContext> {
    // Every form contains one of these; most lines contain none, so this keeps the common case to a few
    // vectorised scans with searchers built once.
    static TRACE_WORD: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("race"));
    static MARKER_OPEN: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("[!"));
    static XRAY_ROOT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("Root=1-"));
    let bytes = text.as_bytes();
    let has_trace_word = TRACE_WORD.find(bytes).is_some();
    let has_marker = MARKER_OPEN.find(bytes).is_some();
    let has_xray_root = XRAY_ROOT.find(bytes).is_some();
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
    // "raceparent" matches both capitalisations.
    static KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("raceparent"));
    for at in KEY.find_iter(text.as_bytes()) {
        if at == 0 || !matches!(text.as_bytes()[at - 1], b't' | b'T') {
            continue;
        }
        let value = value_after(text, at + "raceparent".len());
        if let Some(tp) = value.get(..55).and_then(TraceParent::parse) {
            return Some(TraceContext {
                trace_id: tp.trace_id,
                span_id: Some(tp.span_id),
            });
        }
    }
    None
}

/// Searchers for the keys of the keyed forms, built once.
struct Keys {
    trace: [Finder<'static>; 3],
    span: [Finder<'static>; 3],
    dd_trace: Finder<'static>,
    dd_span: Finder<'static>,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys {
    trace: [
        Finder::new("trace_id"),
        Finder::new("traceId"),
        Finder::new("dt.trace_id"),
    ],
    span: [
        Finder::new("span_id"),
        Finder::new("spanId"),
        Finder::new("dt.span_id"),
    ],
    dd_trace: Finder::new("dd.trace_id"),
    dd_span: Finder::new("dd.span_id"),
});

/// `trace_id=..`, `"traceId": ".."`, `dt.trace_id: ..` with a hex (or X-Ray) value, and the matching span key.
fn keyed_hex(text: &str) -> Option<TraceContext> {
    let keys = &*KEYS;
    let trace_id = keys
        .trace
        .iter()
        .flat_map(|key| keyed_values(text, key))
        .find_map(|v| TraceId::from_hex(v).or_else(|| TraceId::from_xray(v)))?;
    let span_id = keys
        .span
        .iter()
        .flat_map(|key| keyed_values(text, key))
        .find_map(SpanId::from_hex);
    Some(TraceContext { trace_id, span_id })
}

/// `dd.trace_id=4887065908816661012 dd.span_id=...`: decimal, the low 64 bits of the trace.
fn datadog(text: &str) -> Option<TraceContext> {
    let keys = &*KEYS;
    let trace_id = keyed_values(text, &keys.dd_trace).find_map(|v| TraceId::from_u64(v.parse().ok()?))?;
    let span_id = keyed_values(text, &keys.dd_span).find_map(|v| SpanId::from_u64(v.parse().ok()?));
    Some(TraceContext { trace_id, span_id })
}

/// `Root=1-5f35ae12-...` (an X-Amzn-Trace-Id header) or `TraceId: 1-...` / `TraceId=1-...`.
fn xray(text: &str) -> Option<TraceContext> {
    static XRAY_KEYS: LazyLock<[Finder<'static>; 3]> = LazyLock::new(|| {
        [
            Finder::new("Root="),
            Finder::new("TraceId: "),
            Finder::new("TraceId="),
        ]
    });
    for finder in XRAY_KEYS.iter() {
        let key = std::str::from_utf8(finder.needle()).unwrap_or_default();
        for at in finder.find_iter(text.as_bytes()) {
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
fn keyed_values<'a>(text: &'a str, key: &'a Finder<'static>) -> impl Iterator<Item = &'a str> + 'a {
    let bytes = text.as_bytes();
    let key_len = key.needle().len();
    key.find_iter(bytes).filter_map(move |at| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.') {
            return None;
        }
        let rest = text[at + key_len..]
            .strip_prefix('"')
            .unwrap_or(&text[at + key_len..]);
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
