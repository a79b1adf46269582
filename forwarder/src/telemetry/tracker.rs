//! Follows each invocation of a Lambda log stream through its platform lines and makes one [`Invocation`] at
//! its REPORT (docs/formats.md section 9). It lives in the pipeline beside the correlator, so what it learnt
//! from a START, a `Task timed out` line or an out-of-memory message in one delivery still counts when the
//! REPORT comes in a later one, on a warm forwarder.
//!
//! Its state is one bounded map keyed by log group and request id, holding what the lines before the REPORT
//! said and, once the REPORT was seen, only that it was: a REPORT delivered twice makes one invocation, as
//! long as the first is remembered. An application line costs one search for "emory" (see
//! [`signals`](super::signals)) and no lookup unless it says something.

use std::sync::Arc;

use tracehose_tracecontext::{SpanId, TraceId};

use super::{ids, signals, Invocation, Outcome, Settings, SpanIds, SpanMode};
use crate::correlate::cache::{BoundedMap, Weigh};
use crate::correlate::Resolution;
use crate::parse::{ParsedLine, PlatformDetails, PlatformEvent};
use crate::record::{Join, Source};

/// The longest function version kept: real ones are `$LATEST` or a number.
const MAX_VERSION_BYTES: usize = 64;

/// One line of a Lambda log stream, as the pipeline has it before any filter.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub timestamp_ms: i64,
    /// The message as parsed (cut to the message limit).
    pub message: &'a str,
    pub parsed: &'a ParsedLine,
    pub resolution: &'a Resolution,
}

/// What the tracker did, for tests and diagnostics: every REPORT ends in exactly one of these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Invocations made from a REPORT (handed to the sink or not: see [`Tracker::observe`]).
    pub invocations: u64,
    /// REPORTs of an invocation already made (a replayed or duplicated delivery).
    pub duplicates: u64,
    /// REPORTs that name no request id, or give no usable duration: nothing can be made of them.
    pub unreadable: u64,
}

/// What is known of one invocation before its REPORT, and after it only that it was reported.
#[derive(Debug, Default)]
struct Seen {
    start_ms: Option<i64>,
    version: Option<Box<str>>,
    timed_out: bool,
    out_of_memory: bool,
    /// The X-Ray ids of `platform.start`: its trace, span and the header's `Parent=`.
    xray: Option<Xray>,
    reported: bool,
}

#[derive(Debug, Clone, Copy)]
struct Xray {
    trace_id: TraceId,
    span_id: Option<SpanId>,
    parent_id: Option<SpanId>,
}

impl Weigh for Seen {
    fn weight(&self) -> usize {
        std::mem::size_of::<Self>() + self.version.as_deref().map_or(0, str::len)
    }
}

#[derive(Debug)]
pub struct Tracker {
    settings: Settings,
    seen: BoundedMap<String, Seen>,
    /// The key being looked up, built in place.
    key: String,
    counts: Counts,
}

impl Tracker {
    /// A tracker holding at most `max_invocations` invocations and about `max_bytes` bytes, or `None` when
    /// the settings ask for neither metrics nor spans: then nothing is tracked and nothing costs.
    pub fn new(settings: Settings, max_invocations: usize, max_bytes: usize) -> Option<Self> {
        if !settings.metrics && settings.spans == SpanMode::Off {
            return None;
        }
        Some(Self {
            settings,
            seen: BoundedMap::new(max_invocations, max_bytes),
            key: String::new(),
            counts: Counts::default(),
        })
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Takes in one line of a Lambda log stream of `source`; at its invocation's first REPORT returns the
    /// finished invocation, when there is something to send of it: always with metrics on, else only when
    /// it gets a span.
    pub fn observe(&mut self, source: &Arc<Source>, line: Observed<'_>) -> Option<Invocation> {
        if line.parsed.platform == Some(PlatformEvent::Report) {
            return self.report(source, line);
        }
        // A line of no known invocation says nothing of one: not even searched.
        let request_id = line.resolution.request_id.as_deref()?;
        if line.parsed.platform == Some(PlatformEvent::Start) {
            self.start(&source.log_group, request_id, line);
            return None;
        }
        let signals = signals::of_line(line.message, line.parsed);
        if signals.any() {
            self.update(&source.log_group, request_id, |seen| {
                seen.timed_out |= signals.timed_out;
                seen.out_of_memory |= signals.out_of_memory;
            });
        }
        None
    }

    /// A START (text or `platform.start`): when the invocation began, its version and X-Ray header. The first
    /// one seen counts; a replayed START changes nothing.
    fn start(&mut self, log_group: &str, request_id: &str, line: Observed<'_>) {
        let details = line.parsed.details.as_deref();
        let xray = line.parsed.xray.map(|x| Xray {
            trace_id: x.trace_id,
            span_id: x.span_id,
            parent_id: details.and_then(|d| d.xray_parent),
        });
        self.update(log_group, request_id, |seen| {
            seen.start_ms.get_or_insert(line.timestamp_ms);
            if seen.version.is_none() {
                seen.version = details
                    .and_then(|d| d.version.as_deref())
                    .filter(|v| v.len() <= MAX_VERSION_BYTES)
                    .map(Box::from);
            }
            if seen.xray.is_none() {
                seen.xray = xray;
            }
        });
    }

    /// Applies `f` to what is known of an invocation not yet reported, in place when it is recent: one
    /// lookup, and no key allocated.
    fn update(&mut self, log_group: &str, request_id: &str, f: impl FnOnce(&mut Seen)) {
        self.set_key(log_group, request_id);
        self.seen.update(self.key.as_str(), |seen| {
            if !seen.reported {
                f(seen);
            }
        });
    }

    fn set_key(&mut self, log_group: &str, request_id: &str) {
        self.key.clear();
        self.key.push_str(log_group);
        self.key.push('\n');
        self.key.push_str(request_id);
    }

    fn report(&mut self, source: &Arc<Source>, line: Observed<'_>) -> Option<Invocation> {
        let Some(request_id) = line.resolution.request_id.clone() else {
            self.counts.unreadable += 1;
            return None;
        };
        self.set_key(&source.log_group, &request_id);
        // What the lines before said, taken out; only that it was reported is kept.
        let mut seen = Seen::default();
        self.seen.update(self.key.as_str(), |kept| {
            let reported = Seen {
                reported: true,
                ..Seen::default()
            };
            seen = std::mem::replace(kept, reported);
        });
        if seen.reported {
            self.counts.duplicates += 1;
            return None;
        }
        let details = line.parsed.details.as_deref();
        let Some(figures) = details.and_then(Figures::of) else {
            self.counts.unreadable += 1;
            return None;
        };
        self.counts.invocations += 1;
        let span = self.span_ids(&request_id, line, seen.xray);
        if !self.settings.metrics && span.is_none() {
            return None;
        }
        Some(self.invocation(source, request_id, line, seen, figures, span))
    }

    fn invocation(
        &self,
        source: &Arc<Source>,
        request_id: Arc<str>,
        line: Observed<'_>,
        seen: Seen,
        figures: Figures,
        span: Option<SpanIds>,
    ) -> Invocation {
        // The REPORT's own error type may say it ran out of memory.
        let signals = signals::of_line(line.message, line.parsed);
        let details = line.parsed.details.as_deref();
        let status = details.and_then(|d| d.status.as_deref());
        let reported_outcome = match status {
            None => Outcome::Success,
            Some(s) if s.eq_ignore_ascii_case("success") => Outcome::Success,
            Some(s) if s.eq_ignore_ascii_case("error") => Outcome::Error,
            Some(s) if s.eq_ignore_ascii_case("timeout") => Outcome::Timeout,
            Some(_) => Outcome::Failure,
        };
        let timed_out = reported_outcome == Outcome::Timeout || seen.timed_out;
        // A text REPORT of older runtimes has no status: the `Task timed out` line is all there is.
        let outcome = match reported_outcome {
            Outcome::Success if timed_out => Outcome::Timeout,
            other => other,
        };
        let all_memory_used = matches!(
            (figures.max_memory_used_mb, figures.memory_size_mb),
            (Some(used), Some(size)) if used >= size
        );
        let report_ms = line.timestamp_ms;
        // A START stamped after its REPORT is not believed: the REPORT's own figures place it instead.
        let start_ms = match seen.start_ms.filter(|start| *start <= report_ms) {
            Some(start) => start as f64,
            None => report_ms as f64 - figures.duration_ms,
        };
        Invocation {
            source: Arc::clone(source),
            request_id,
            report_ms,
            start_ms,
            duration_ms: figures.duration_ms,
            billed_duration_ms: figures.billed_duration_ms,
            init_duration_ms: figures.init_duration_ms,
            restore_duration_ms: figures.restore_duration_ms,
            memory_size_mb: figures.memory_size_mb,
            max_memory_used_mb: figures.max_memory_used_mb,
            outcome,
            error_type: details.and_then(|d| d.error_type.clone()),
            cold_start: figures.init_duration_ms.is_some()
                || figures.restore_duration_ms.is_some()
                || line.resolution.cold_start == Some(true),
            timed_out,
            out_of_memory: seen.out_of_memory || signals.out_of_memory || all_memory_used,
            managed_instances: figures.billed_duration_ms.is_none() && figures.memory_size_mb.is_none(),
            version: seen
                .version
                .map(String::from)
                .or_else(|| stream_version(&source.log_stream).map(str::to_owned)),
            architecture: self.settings.architecture,
            span,
        }
    }

    /// The span's ids per `TRACEHOSE_INVOCATION_SPANS`: X-Ray's own ids when the invocation's trace is X-Ray's,
    /// none when the extension's marker (which made a span already) or the application's own tracer gave the
    /// trace, and with `all` ids derived from the request id for an invocation with no trace at all, the same
    /// ids its lines were joined to ([`Join::Derived`]).
    fn span_ids(&self, request_id: &str, line: Observed<'_>, started: Option<Xray>) -> Option<SpanIds> {
        if self.settings.spans == SpanMode::Off {
            return None;
        }
        // The REPORT's own XRAY part (text format), else `platform.start`'s header (JSON format).
        let xray = line
            .parsed
            .xray
            .map(|x| Xray {
                trace_id: x.trace_id,
                span_id: x.span_id,
                parent_id: started
                    .filter(|s| s.trace_id == x.trace_id)
                    .and_then(|s| s.parent_id),
            })
            .or(started);
        let resolution = line.resolution;
        match resolution.join {
            Some(Join::Marker | Join::Line) => None,
            Some(Join::Xray) => {
                let trace_id = resolution.trace_id?;
                let xray = xray.filter(|x| x.trace_id == trace_id);
                xray_span(
                    request_id,
                    trace_id,
                    resolution.span_id,
                    xray.and_then(|x| x.parent_id),
                )
            }
            // The application printed the trace: a span only when it is the invocation's X-Ray trace (as
            // Powertools prints it), which another tracer did not already make.
            Some(Join::Invocation) => {
                let xray = xray.filter(|x| Some(x.trace_id) == resolution.trace_id)?;
                xray_span(request_id, xray.trace_id, xray.span_id, xray.parent_id)
            }
            Some(Join::Derived) => derived_span(request_id),
            None => match xray {
                Some(x) => xray_span(request_id, x.trace_id, x.span_id, x.parent_id),
                None if self.settings.spans == SpanMode::All => derived_span(request_id),
                None => None,
            },
        }
    }
}

/// An X-Ray invocation's span: its segment is the span. Without a segment id (a `platform.start` whose
/// tracing names none) the span id is derived from the request id, under X-Ray's trace.
fn xray_span(
    request_id: &str,
    trace_id: TraceId,
    span_id: Option<SpanId>,
    parent_id: Option<SpanId>,
) -> Option<SpanIds> {
    let span_id = span_id.or_else(|| ids::derived(request_id).map(|(_, span)| span))?;
    Some(SpanIds {
        trace_id,
        span_id,
        // A span is never its own parent, whatever a record says.
        parent_span_id: parent_id.filter(|p| *p != span_id),
        derived: false,
    })
}

fn derived_span(request_id: &str) -> Option<SpanIds> {
    let (trace_id, span_id) = ids::derived(request_id)?;
    Some(SpanIds {
        trace_id,
        span_id,
        parent_span_id: None,
        derived: true,
    })
}

/// A REPORT's figures, each checked: finite and not negative, and a memory size above zero. Without a
/// duration there is no invocation to speak of.
#[derive(Debug, Clone, Copy)]
struct Figures {
    duration_ms: f64,
    billed_duration_ms: Option<f64>,
    init_duration_ms: Option<f64>,
    restore_duration_ms: Option<f64>,
    memory_size_mb: Option<u64>,
    max_memory_used_mb: Option<u64>,
}

impl Figures {
    fn of(details: &PlatformDetails) -> Option<Self> {
        let m = &details.metrics;
        let ms = |v: Option<f64>| v.filter(|v| v.is_finite() && *v >= 0.0);
        Some(Self {
            duration_ms: ms(m.duration_ms)?,
            billed_duration_ms: ms(m.billed_duration_ms),
            init_duration_ms: ms(m.init_duration_ms),
            restore_duration_ms: ms(m.restore_duration_ms),
            memory_size_mb: m.memory_size_mb.filter(|mb| *mb > 0),
            max_memory_used_mb: m.max_memory_used_mb,
        })
    }
}

/// The version a Lambda log stream's name carries: `2026/11/21/[$LATEST]0123...` -> `$LATEST`.
fn stream_version(log_stream: &str) -> Option<&str> {
    let (_, rest) = log_stream.split_once('[')?;
    let (version, _) = rest.split_once(']')?;
    (!version.is_empty() && version.len() <= MAX_VERSION_BYTES).then_some(version)
}

#[cfg(test)]
mod tests;
