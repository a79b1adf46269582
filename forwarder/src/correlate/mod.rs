//! Correlate: joins each line to its invocation and each invocation to its trace, exactly by the rules of
//! docs/architecture.md, in order of strength:
//! 1. the line's own trace context;
//! 2. the line's invocation: its own request id, else the one START/END bracket of its log stream it falls in;
//! 3. that invocation's trace: the extension's marker line, else a trace id printed by another of its lines,
//!    else the X-Ray id of its REPORT line or `platform.start` record;
//! 4. with `TRACEHOSE_INVOCATION_SPANS=all` only, for an invocation with no trace at all: the ids derived from
//!    its request id, which its invocation span carries (docs/formats.md section 9).
//!
//! A payload is correlated in two passes so that a marker or REPORT arriving after a line of the same
//! invocation still reaches it. What crosses payloads (the open invocation of each stream, the trace and
//! cold start of each invocation) lives in bounded maps, so a warm forwarder joins an invocation split over
//! two deliveries. A wrong join is worse than none: when a stream shows overlapping invocations, lines without
//! their own request id get no invocation.

pub(crate) mod cache;

use std::collections::HashMap;

use std::sync::Arc;

use tracehose_tracecontext::{SpanId, TraceId};

use self::cache::{BoundedMap, Weigh};
use crate::limits::Limits;
use crate::parse::{ParsedLine, PlatformEvent, TraceContext};
use crate::record::Join;

/// Lambda's longest invocation is 15 minutes: an invocation open for longer lost its END line.
const MAX_INVOCATION_MS: i64 = 16 * 60 * 1000;
/// Open invocations remembered per stream; Lambda Managed Instances run a few at once, classic Lambda one.
const MAX_OPEN_PER_STREAM: usize = 64;

#[derive(Debug, Default)]
struct StreamState {
    open: Vec<OpenInvocation>,
    /// An INIT_START (or RESTORE_START) was seen and its START not yet: the next invocation is a cold start.
    cold_pending: bool,
}

#[derive(Debug)]
struct OpenInvocation {
    request_id: Arc<str>,
    started_ms: i64,
}

impl Weigh for StreamState {
    fn weight(&self) -> usize {
        // A request id shared with other state is counted here too: an over-estimate keeps the bound safe.
        let open: usize = self
            .open
            .iter()
            .map(|o| {
                std::mem::size_of::<OpenInvocation>() + 2 * std::mem::size_of::<usize>() + o.request_id.len()
            })
            .sum();
        std::mem::size_of::<Self>() + open
    }
}

impl Weigh for Invocation {
    fn weight(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Invocation {
    trace: Option<(Join, TraceContext)>,
    cold_start: Option<bool>,
}

impl Invocation {
    /// Keeps the strongest source; for equal strength, the first one seen.
    fn offer(&mut self, join: Join, context: TraceContext) {
        let stronger = match self.trace {
            None => true,
            Some((current, _)) => strength(join) > strength(current),
        };
        if stronger {
            self.trace = Some((join, context));
        }
    }
}

fn strength(join: Join) -> u8 {
    match join {
        Join::Line => 4,
        Join::Marker => 3,
        Join::Invocation => 2,
        Join::Xray => 1,
        // Never offered: derived ids stand in only where nothing was.
        Join::Derived => 0,
    }
}

/// What correlation decided for one line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
    pub join: Option<Join>,
    /// The line's request id, its own or its bracket's.
    pub request_id: Option<Arc<str>>,
    pub cold_start: Option<bool>,
}

/// A line to correlate: its event timestamp and what parsing found.
#[derive(Debug)]
pub struct Line<'a> {
    pub timestamp_ms: i64,
    pub parsed: &'a ParsedLine,
}

#[derive(Debug)]
pub struct Correlator {
    streams: BoundedMap<String, StreamState>,
    invocations: BoundedMap<String, Invocation>,
    /// Joins the lines of an invocation with no trace to the ids derived from its request id.
    derive: bool,
}

impl Correlator {
    pub fn new(limits: &Limits) -> Self {
        Self::with_state_bytes(limits, limits.max_state_bytes)
    }

    /// A correlator whose state holds about `state_bytes` bytes: its share of `TRACEHOSE_MAX_STATE_BYTES` when
    /// other state (the platform telemetry's) takes the rest.
    pub fn with_state_bytes(limits: &Limits, state_bytes: usize) -> Self {
        Self {
            streams: BoundedMap::new(limits.max_tracked_streams, state_bytes / 2),
            invocations: BoundedMap::new(limits.max_tracked_invocations, state_bytes / 2),
            derive: false,
        }
    }

    /// Joins the lines of invocations that have no trace to the ids derived from their request id
    /// ([`Join::Derived`]), as `TRACEHOSE_INVOCATION_SPANS=all` makes a span with those ids.
    pub fn with_derived_joins(mut self, derive: bool) -> Self {
        self.derive = derive;
        self
    }

    /// Correlates the lines of one payload of one log stream, in order. `lambda_stream` is false for log
    /// groups that are not a Lambda function's: their lines get only their own trace context.
    pub fn correlate(
        &mut self,
        log_group: &str,
        log_stream: &str,
        lambda_stream: bool,
        lines: &[Line<'_>],
    ) -> Vec<Resolution> {
        if !lambda_stream {
            return lines.iter().map(|line| own_only(line.parsed)).collect();
        }
        let stream_key = format!("{log_group}\n{log_stream}");
        let mut stream = self.streams.remove(&stream_key).unwrap_or_default();
        let mut scope = Scope {
            invocations: &mut self.invocations,
            log_group,
            key: String::new(),
        };
        // Distinct invocations of this payload, so each is looked up once.
        let mut local = Interner::default();
        let mut line_invocation: Vec<Option<usize>> = Vec::with_capacity(lines.len());
        for line in lines {
            let invocation = scope.observe(&mut stream, line);
            line_invocation.push(invocation.map(|id| local.intern(id)));
        }
        let local = local.ids;
        let known: Vec<Invocation> = local.iter().map(|id| scope.get(id)).collect();
        self.streams.insert(stream_key, stream);
        // Once per invocation of the payload, and only for those without a trace.
        let derived: Vec<Option<(TraceId, SpanId)>> = local
            .iter()
            .zip(&known)
            .map(|(id, known)| {
                (self.derive && known.trace.is_none())
                    .then(|| crate::telemetry::ids::derived(id))
                    .flatten()
            })
            .collect();

        lines
            .iter()
            .zip(line_invocation)
            .map(|(line, invocation)| {
                let mut resolution = own_only(line.parsed);
                if let Some(i) = invocation {
                    resolution.request_id = Some(Arc::clone(&local[i]));
                    resolution.cold_start = known[i].cold_start;
                    if resolution.trace_id.is_none() {
                        if let Some((join, context)) = known[i].trace {
                            resolution.trace_id = Some(context.trace_id);
                            // Only the invocation's own span (marker or X-Ray segment) describes this line;
                            // another line's span does not.
                            resolution.span_id = if join == Join::Invocation {
                                None
                            } else {
                                context.span_id
                            };
                            resolution.join = Some(join);
                        } else if let Some((trace_id, span_id)) = derived[i] {
                            resolution.trace_id = Some(trace_id);
                            resolution.span_id = Some(span_id);
                            resolution.join = Some(Join::Derived);
                        }
                    }
                }
                resolution
            })
            .collect()
    }
}

/// The invocations of one log group. Request ids are unique, but keying by group as well keeps one
/// function's lines from ever reaching another's state.
struct Scope<'a> {
    invocations: &'a mut BoundedMap<String, Invocation>,
    log_group: &'a str,
    /// The key being looked up, built in place: most lookups find an entry and need no allocation.
    key: String,
}

impl Scope<'_> {
    fn key(&mut self, request_id: &str) -> &str {
        self.key.clear();
        self.key.push_str(self.log_group);
        self.key.push('\n');
        self.key.push_str(request_id);
        &self.key
    }

    fn update(&mut self, request_id: &str, change: impl FnOnce(&mut Invocation)) {
        self.key(request_id);
        self.invocations.update(self.key.as_str(), change);
    }

    fn get(&mut self, request_id: &str) -> Invocation {
        self.key(request_id);
        self.invocations
            .get(self.key.as_str())
            .copied()
            .unwrap_or_default()
    }

    /// Pass one for a line: updates the stream's bracket and what is known of the line's invocation, and
    /// returns that invocation's request id.
    fn observe(&mut self, stream: &mut StreamState, line: &Line<'_>) -> Option<Arc<str>> {
        let parsed = line.parsed;
        match parsed.platform {
            Some(PlatformEvent::InitStart | PlatformEvent::RestoreStart) => stream.cold_pending = true,
            Some(PlatformEvent::Start) => {
                if let Some(id) = &parsed.request_id {
                    stream.open.retain(|o| {
                        line.timestamp_ms - o.started_ms <= MAX_INVOCATION_MS && o.request_id != *id
                    });
                    if stream.open.len() >= MAX_OPEN_PER_STREAM {
                        stream.open.remove(0);
                    }
                    stream.open.push(OpenInvocation {
                        request_id: Arc::clone(id),
                        started_ms: line.timestamp_ms,
                    });
                    let cold = std::mem::take(&mut stream.cold_pending);
                    self.update(id, |invocation| {
                        invocation.cold_start = Some(invocation.cold_start.unwrap_or(false) || cold);
                    });
                }
            }
            _ => {}
        }
        let request_id = match &parsed.request_id {
            Some(id) => Some(Arc::clone(id)),
            None => match stream.open.as_slice() {
                [only] => Some(Arc::clone(&only.request_id)),
                _ => None,
            },
        };
        if matches!(parsed.platform, Some(PlatformEvent::End | PlatformEvent::Report)) {
            if let Some(id) = &request_id {
                stream.open.retain(|o| o.request_id != *id);
            }
        }
        let id = request_id.as_deref()?;
        let learns = parsed.invocation_marker
            || parsed.context.is_some()
            || parsed.xray.is_some()
            || parsed
                .details
                .as_ref()
                .is_some_and(|d| d.metrics.init_duration_ms.is_some());
        if learns {
            self.update(id, |invocation| learn(invocation, parsed));
        }
        request_id
    }
}

/// What one line tells about its invocation's trace and cold start.
fn learn(invocation: &mut Invocation, parsed: &ParsedLine) {
    if let Some(context) = parsed.context {
        if parsed.invocation_marker {
            invocation.offer(Join::Marker, context);
        } else {
            invocation.offer(
                Join::Invocation,
                TraceContext {
                    span_id: None,
                    ..context
                },
            );
        }
    }
    if let Some(xray) = parsed.xray {
        invocation.offer(Join::Xray, xray);
    }
    if parsed.platform == Some(PlatformEvent::Report)
        && parsed
            .details
            .as_ref()
            .is_some_and(|d| d.metrics.init_duration_ms.is_some())
    {
        invocation.cold_start = Some(true);
    }
}

fn own_only(parsed: &ParsedLine) -> Resolution {
    Resolution {
        trace_id: parsed.context.map(|c| c.trace_id),
        span_id: parsed.context.and_then(|c| c.span_id),
        join: parsed.context.map(|_| Join::Line),
        request_id: parsed.request_id.clone(),
        cold_start: None,
    }
}

/// Numbers the distinct request ids of a payload. Lines of one invocation mostly follow each other, so the
/// last id is checked before the map.
#[derive(Default)]
struct Interner {
    ids: Vec<Arc<str>>,
    index: HashMap<Arc<str>, usize>,
}

impl Interner {
    fn intern(&mut self, id: Arc<str>) -> usize {
        if self.ids.last() == Some(&id) {
            return self.ids.len() - 1;
        }
        if let Some(&i) = self.index.get(&id) {
            return i;
        }
        self.ids.push(Arc::clone(&id));
        self.index.insert(id, self.ids.len() - 1);
        self.ids.len() - 1
    }
}

#[cfg(test)]
mod tests;
