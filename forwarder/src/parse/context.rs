//! Trace context printed inside a line, in every form of docs/formats.md section 3. Each candidate is
//! validated (length, hex, not all zero); a form that merely looks similar yields nothing.
//!
//! Every search here visits each occurrence of a fixed anchor once and looks at most [`WINDOW`] bytes past it,
//! so the time is linear in the line whatever it holds (docs/architecture.md, bounds on everything from
//! outside).

use std::sync::LazyLock;

use memchr::memmem::Finder;
use tracehose_tracecontext::{DynatraceMarker, SpanId, TraceId, TraceParent};

use super::TraceContext;

/// How far past a key its separator and value are looked for: quotes, `=`/`:`, some spacing and the longest
/// form (a 55-byte traceparent) fit.
const WINDOW: usize = 96;

/// The line's own trace context. When a line carries several forms, the most explicit wins: the Dynatrace
/// marker, then a W3C traceparent, then `trace_id`-style keys, then an X-Ray `Root=`, then Datadog's decimal
/// ids; within one form, the first valid one in the line.
pub fn find_trace_context(text: &str) -> Option<TraceContext> {
    // Every form contains one of these; most lines contain none, so this keeps the common case to a few
    // vectorised scans with searchers built once. The keyed forms are then found from the first "race" on.
    static TRACE_WORD: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("race"));
    static MARKER_OPEN: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("[!"));
    static XRAY_ROOT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("Root=1-"));
    let bytes = text.as_bytes();
    let first_trace_word = TRACE_WORD.find(bytes);
    let first_marker = MARKER_OPEN.find(bytes);
    let first_root = XRAY_ROOT.find(bytes);
    if first_trace_word.is_none() && first_marker.is_none() && first_root.is_none() {
        return None;
    }
    if let Some(at) = first_marker {
        if let Some(m) = DynatraceMarker::find(&text[at..]) {
            return Some(TraceContext {
                trace_id: m.trace_id,
                span_id: m.span_id,
            });
        }
    }
    let keyed = first_trace_word
        .map(|at| keyed_traces(text, at))
        .unwrap_or_default();
    if let Some(ctx) = keyed.traceparent {
        return Some(ctx);
    }
    if let Some(trace_id) = keyed.hex {
        let span_id = keyed_spans(text).hex;
        return Some(TraceContext { trace_id, span_id });
    }
    if let Some(trace_id) = first_root.and_then(|at| xray_root(text, at)) {
        return Some(TraceContext {
            trace_id,
            span_id: None,
        });
    }
    let trace_id = keyed.decimal?;
    let span_id = keyed_spans(text).decimal;
    Some(TraceContext { trace_id, span_id })
}

/// The first valid trace id of each keyed form.
#[derive(Default)]
struct KeyedTraces {
    traceparent: Option<TraceContext>,
    /// `trace_id`, `traceId`, `TraceId`, `dt.trace_id`, `otelTraceID`, `xray_trace_id`: hex, or an X-Ray id.
    hex: Option<TraceId>,
    /// `dd.trace_id`: the decimal low 64 bits.
    decimal: Option<TraceId>,
}

/// One pass over the occurrences of "race" from `from`: each names its key by the bytes around it.
fn keyed_traces(text: &str, from: usize) -> KeyedTraces {
    static RACE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("race"));
    let bytes = text.as_bytes();
    let mut found = KeyedTraces::default();
    for at in RACE.find_iter(&bytes[from..]).map(|at| from + at) {
        // The key starts with its 't' or 'T', one byte before the anchor.
        let Some(t) = at.checked_sub(1).filter(|&t| matches!(bytes[t], b't' | b'T')) else {
            continue;
        };
        let after = at + "race".len();
        let tail = &bytes[after..bytes.len().min(after + "parent".len())];
        if tail == b"parent" {
            if found.traceparent.is_none() {
                found.traceparent = traceparent_after(text, after + "parent".len());
            }
            continue;
        }
        let Some(suffix) = id_suffix(tail) else {
            continue;
        };
        let Some(prefix) = key_prefix(bytes, t) else {
            continue;
        };
        let Some(value) = value_after(bytes, after + suffix) else {
            continue;
        };
        match prefix {
            Prefix::Datadog if suffix == "_id".len() => {
                if found.decimal.is_none() {
                    found.decimal = decimal(value).and_then(TraceId::from_u64);
                }
            }
            Prefix::Datadog => {}
            Prefix::None | Prefix::Dynatrace | Prefix::Otel | Prefix::Xray => {
                if found.hex.is_none() {
                    found.hex = TraceId::from_hex(value).or_else(|| TraceId::from_xray(value));
                }
            }
        }
        if found.traceparent.is_some() {
            break;
        }
    }
    found
}

/// The first valid span id of each keyed form: `span_id`, `spanId`, `SpanId`, `dt.span_id`, `otelSpanID` in
/// hex, `dd.span_id` in decimal. Only looked for once a keyed trace id was found.
#[derive(Default)]
struct KeyedSpans {
    hex: Option<SpanId>,
    decimal: Option<SpanId>,
}

fn keyed_spans(text: &str) -> KeyedSpans {
    static PAN: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("pan"));
    let bytes = text.as_bytes();
    let mut found = KeyedSpans::default();
    for at in PAN.find_iter(bytes) {
        let Some(s) = at.checked_sub(1).filter(|&s| matches!(bytes[s], b's' | b'S')) else {
            continue;
        };
        let after = at + "pan".len();
        let Some(suffix) = id_suffix(&bytes[after..bytes.len().min(after + 3)]) else {
            continue;
        };
        let Some(prefix) = key_prefix(bytes, s) else {
            continue;
        };
        let Some(value) = value_after(bytes, after + suffix) else {
            continue;
        };
        match prefix {
            Prefix::Datadog if suffix == "_id".len() => {
                if found.decimal.is_none() {
                    found.decimal = decimal(value).and_then(SpanId::from_u64);
                }
            }
            Prefix::Datadog | Prefix::Xray => {}
            Prefix::None | Prefix::Dynatrace | Prefix::Otel => {
                if found.hex.is_none() {
                    found.hex = SpanId::from_hex(value);
                }
            }
        }
        if found.hex.is_some() && found.decimal.is_some() {
            break;
        }
    }
    found
}

/// What comes after "trace"/"span" in a key: `_id`, `Id` or `ID`; the length of that suffix.
fn id_suffix(tail: &[u8]) -> Option<usize> {
    if tail.starts_with(b"_id") {
        Some(3)
    } else if tail.starts_with(b"Id") || tail.starts_with(b"ID") {
        Some(2)
    } else {
        None
    }
}

enum Prefix {
    None,
    /// `dt.`
    Dynatrace,
    /// `dd.`: decimal ids.
    Datadog,
    /// `otel` (OpenTelemetry's Python logging instrumentation).
    Otel,
    /// `xray_` (Powertools).
    Xray,
}

/// The namespace before a key whose "trace"/"span" word starts at `word`. `None` when the key is glued to a
/// longer word (`mytrace_id`, `foo.trace_id`), which is not the key.
fn key_prefix(bytes: &[u8], word: usize) -> Option<Prefix> {
    let before = &bytes[word.saturating_sub(5)..word];
    let (prefix, start) = if before.ends_with(b"dt.") {
        (Prefix::Dynatrace, word - 3)
    } else if before.ends_with(b"dd.") {
        (Prefix::Datadog, word - 3)
    } else if before.ends_with(b"otel") && bytes[word].is_ascii_uppercase() {
        (Prefix::Otel, word - 4)
    } else if before.ends_with(b"xray_") {
        (Prefix::Xray, word - 5)
    } else {
        (Prefix::None, word)
    };
    let glued = start
        .checked_sub(1)
        .is_some_and(|i| bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.');
    (!glued).then_some(prefix)
}

/// The value after a key: past an optional closing quote, `=` or `:`, spacing and an opening quote, a run
/// of letters, digits and dashes. `None` when there is no separator or the run is longer than any id.
fn value_after(bytes: &[u8], from: usize) -> Option<&str> {
    let window = bytes.get(from..bytes.len().min(from + WINDOW))?;
    let mut i = usize::from(window.first() == Some(&b'"'));
    i += spacing(&window[i..]);
    if !matches!(window.get(i), Some(b'=' | b':')) {
        return None;
    }
    i += 1;
    i += spacing(&window[i..]);
    i += usize::from(window.get(i) == Some(&b'"'));
    let start = i;
    let len = window[start..]
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'-'))
        .unwrap_or(window.len() - start);
    let cut_by_window = start + len == window.len() && from + window.len() < bytes.len();
    if cut_by_window {
        return None;
    }
    // Letters, digits and dashes only: always UTF-8.
    std::str::from_utf8(&window[start..start + len]).ok()
}

fn spacing(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t'))
        .unwrap_or(bytes.len())
}

/// `traceparent: 00-...`, `"traceparent":"00-..."`, `traceparent=00-...`: the 55 bytes after the separators.
fn traceparent_after(text: &str, from: usize) -> Option<TraceContext> {
    let bytes = text.as_bytes();
    let window = bytes.get(from..bytes.len().min(from + WINDOW))?;
    let skip = window
        .iter()
        .position(|c| !matches!(c, b'"' | b'\'' | b' ' | b'\t' | b':' | b'='))?;
    let value = window.get(skip..skip + 55)?;
    let tp = TraceParent::parse(std::str::from_utf8(value).ok()?)?;
    Some(TraceContext {
        trace_id: tp.trace_id,
        span_id: Some(tp.span_id),
    })
}

/// `Root=1-5f35ae12-...` (an X-Amzn-Trace-Id header), from the first occurrence of `Root=1-` at `from`.
fn xray_root(text: &str, from: usize) -> Option<TraceId> {
    static ROOT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("Root="));
    let bytes = text.as_bytes();
    ROOT.find_iter(&bytes[from..]).find_map(|at| {
        let start = from + at + "Root=".len();
        let candidate = bytes.get(start..start + 35)?;
        let ends_cleanly = !bytes.get(start + 35).is_some_and(|c| c.is_ascii_alphanumeric());
        ends_cleanly.then_some(())?;
        TraceId::from_xray(std::str::from_utf8(candidate).ok()?)
    })
}

/// An unsigned 64-bit decimal; the value is already bounded by [`WINDOW`].
fn decimal(value: &str) -> Option<u64> {
    value.parse().ok()
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
    fn keys_other_loggers_print() {
        let want = Some((TRACE.to_owned(), Some(SPAN.to_owned())));
        // OpenTelemetry's Python logging instrumentation, and .NET's ILogger scope in the text console.
        assert_eq!(ids(&format!("otelTraceID={TRACE} otelSpanID={SPAN}")), want);
        assert_eq!(
            ids(&format!(
                "=> SpanId:{SPAN}, TraceId:{TRACE}, ParentId:0000000000000000"
            )),
            want
        );
        assert_eq!(
            ids("xray_trace_id=1-5f35ae12-0c0fec141ab77a00bc047aa2"),
            Some(("5f35ae120c0fec141ab77a00bc047aa2".into(), None))
        );
        assert_eq!(
            ids(&format!(
                r#"{{"a":{{"b":{{"otelTraceID":"{TRACE}","otelSpanID":"{SPAN}"}}}}}}"#
            )),
            want
        );
        assert_eq!(ids(&format!("otelTraceID={}", "0".repeat(32))), None);
        assert_eq!(ids(&format!("myotelTraceID={TRACE}")), None);
    }

    /// Issue 7: every search is linear in the line. Each shape is a mebibyte of one form's anchor, with the
    /// right answer after it; `benches/hostile_lines.rs` shows the throughput of the same shapes.
    #[test]
    fn hostile_lines_of_a_mebibyte() {
        const MIB: usize = 1 << 20;
        let valid = format!("trace_id={TRACE} span_id={SPAN}");
        let want = Some((TRACE.to_owned(), Some(SPAN.to_owned())));
        for anchor in [
            "[!dt ",
            "[!",
            "[",
            "race",
            "trace",
            "trace_id",
            "trace_id=",
            "trace_id ",
            "trace_id=\"",
            "traceparent",
            "traceparent:",
            "traceparent: 00-",
            "dd.trace_id=",
            "dt.trace_id=",
            "Root=",
            "Root=1-",
            "TraceId: ",
            "otelTraceID=",
            "span_id=",
            "pan",
            "\"traceId\": \"",
        ] {
            let filler = anchor.repeat(MIB / anchor.len());
            assert_eq!(ids(&format!("{filler} {valid}")), want, "{anchor}");
            assert_eq!(ids(&format!("{valid} {filler}")), want, "{anchor}");
        }
        assert_eq!(ids(&format!("trace_id={}", "a".repeat(MIB))), None);
        assert_eq!(ids(&format!("trace_id={} {valid}", "0".repeat(MIB))), want);
        assert_eq!(ids(&format!("trace_id={}{}", " ".repeat(MIB), TRACE)), None);
        assert_eq!(ids(&format!("traceparent{}", ":".repeat(MIB))), None);
        assert_eq!(ids(&"[!dt dt.trace_id=".repeat(MIB / 17)), None);
        let mut dt = "[!dt ".repeat(MIB / 5);
        dt.push(']');
        assert_eq!(ids(&dt), None);
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
