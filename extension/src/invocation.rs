//! What is known about each invocation, gathered from the Extensions API (`INVOKE`) and the Telemetry API
//! (`platform.start`, `platform.runtimeDone`, `platform.report`), which arrive in any order. An invocation is
//! complete once its report is in; until then it stays open, in bounded number.

use std::collections::VecDeque;

use tracehose_tracecontext::{invocation_marker_line, SpanId, TraceId, XrayHeader};

use crate::ids;
use crate::telemetry::{Event, PlatformSpan, ReportMetrics, Status};

/// Open invocations kept at most; only a platform that stops sending reports could fill this.
const MAX_OPEN: usize = 64;
/// Completed request ids remembered, so that a late `INVOKE` or duplicate event does not open them again.
const MAX_DONE: usize = 64;

#[derive(Debug, Clone)]
pub struct Ending {
    pub time: Option<u64>,
    pub status: Status,
    pub error_type: Option<String>,
    pub duration_ms: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub trace_id: Option<TraceId>,
    pub span_id: SpanId,
    /// The caller's span, from the X-Ray header's `Parent`.
    pub parent_id: Option<SpanId>,
    pub coldstart: bool,
    pub invoked_at: Option<u64>,
    pub function_arn: Option<String>,
    pub start: Option<u64>,
    pub runtime_done: Option<Ending>,
    pub report: Option<Ending>,
    pub metrics: ReportMetrics,
    pub platform_spans: Vec<PlatformSpan>,
    /// Latest end time of the function's own spans linked to this invocation: the only end time known
    /// when the Telemetry API is unavailable.
    pub last_child_end: u64,
    marker_printed: bool,
}

/// The init phase of this execution environment, shown as a child span of the cold-start invocation.
#[derive(Debug, Clone, Default)]
pub struct Init {
    pub start: Option<u64>,
    pub end: Option<u64>,
    pub duration_ms: Option<f64>,
    pub status: Option<Status>,
    pub error_type: Option<String>,
}

#[derive(Debug)]
pub struct Tracker {
    open: VecDeque<Invocation>,
    done: VecDeque<String>,
    pub init: Init,
    seen_any: bool,
    /// Whether telemetry has been seen to arrive. Without it nothing completes an invocation but the next one
    /// starting.
    telemetry: bool,
}

/// What the caller must do after feeding the tracker: print these marker lines.
pub type Markers = Vec<String>;

impl Tracker {
    pub fn new(telemetry: bool) -> Self {
        Self {
            open: VecDeque::new(),
            done: VecDeque::new(),
            init: Init::default(),
            seen_any: false,
            telemetry,
        }
    }

    pub fn set_telemetry(&mut self, on: bool) {
        self.telemetry = on;
    }

    pub fn telemetry(&self) -> bool {
        self.telemetry
    }

    /// An `INVOKE` event: the trace is now known (from its X-Ray header, or a new one), so its marker is due.
    pub fn on_invoke(
        &mut self,
        request_id: &str,
        tracing: Option<&str>,
        function_arn: Option<String>,
        now: u64,
    ) -> Markers {
        if self.is_done(request_id) {
            // All of its telemetry came first, newest first: it is complete and its marker printed.
            return Vec::new();
        }
        if !self.telemetry {
            // One environment runs one invocation at a time: a new one means the previous ones are over.
            for inv in self.open.iter_mut().filter(|i| i.request_id != request_id) {
                inv.report.get_or_insert(Ending {
                    time: None,
                    status: Status::Other("unknown".into()),
                    error_type: None,
                    duration_ms: None,
                });
            }
        }
        let inv = self.entry(request_id);
        inv.invoked_at.get_or_insert(now);
        if function_arn.is_some() {
            inv.function_arn = function_arn;
        }
        adopt_tracing(inv, tracing);
        if inv.trace_id.is_none() {
            inv.trace_id = Some(ids::trace_id());
        }
        marker(inv).into_iter().collect()
    }

    /// A Telemetry API event; returns the markers that became due.
    pub fn on_event(&mut self, event: Event) -> Markers {
        let mut markers = Vec::new();
        let late = match &event {
            Event::Start { request_id, .. }
            | Event::RuntimeDone { request_id, .. }
            | Event::Report { request_id, .. } => self.is_done(request_id),
            _ => false,
        };
        if late {
            return markers;
        }
        match event {
            Event::InitStart { time } => self.init.start = self.init.start.or(time),
            Event::InitEnd {
                time,
                duration_ms,
                status,
                error_type,
            } => {
                self.init.end = time.or(self.init.end);
                self.init.duration_ms = duration_ms.or(self.init.duration_ms);
                self.init.status = status.or(self.init.status.take());
                self.init.error_type = error_type.or(self.init.error_type.take());
            }
            Event::Start {
                time,
                request_id,
                tracing,
            } => {
                let inv = self.entry(&request_id);
                inv.start = time.or(inv.start);
                if inv.trace_id.is_none() && adopt_tracing(inv, tracing.as_deref()) {
                    markers.extend(marker(inv));
                }
            }
            Event::RuntimeDone {
                time,
                request_id,
                status,
                error_type,
                duration_ms,
                spans,
            } => {
                let inv = self.entry(&request_id);
                merge_spans(&mut inv.platform_spans, spans);
                inv.runtime_done = Some(Ending {
                    time,
                    status,
                    error_type,
                    duration_ms,
                });
            }
            Event::Report {
                time,
                request_id,
                status,
                error_type,
                metrics,
                spans,
            } => {
                let inv = self.entry(&request_id);
                merge_spans(&mut inv.platform_spans, spans);
                inv.metrics = metrics;
                inv.report = Some(Ending {
                    time,
                    status,
                    error_type,
                    duration_ms: inv.metrics.duration_ms,
                });
            }
            Event::LogsDropped { .. } | Event::Function(_) => {}
        }
        markers
    }

    pub fn runtime_done(&self, request_id: &str) -> bool {
        self.is_done(request_id)
            || self
                .find(request_id)
                .is_some_and(|i| i.runtime_done.is_some() || i.report.is_some())
    }

    fn is_done(&self, request_id: &str) -> bool {
        self.done.iter().any(|id| id == request_id)
    }

    /// Whether every open invocation has its report, so nothing more is expected from the platform.
    pub fn all_reported(&self) -> bool {
        self.open.iter().all(|i| i.report.is_some())
    }

    pub fn find(&self, request_id: &str) -> Option<&Invocation> {
        self.open.iter().find(|i| i.request_id == request_id)
    }

    pub fn find_mut(&mut self, request_id: &str) -> Option<&mut Invocation> {
        self.open.iter_mut().find(|i| i.request_id == request_id)
    }

    /// The invocation a span or log line belongs to: the one it names, else the one of its trace, else the
    /// one in progress (the latest, while its report is not in).
    pub fn owner(&mut self, request_id: Option<&str>, trace_id: Option<TraceId>) -> Option<&mut Invocation> {
        let index = request_id
            .and_then(|id| self.open.iter().rposition(|i| i.request_id == id))
            .or_else(|| {
                let trace = trace_id?;
                self.open.iter().rposition(|i| i.trace_id == Some(trace))
            })
            .or_else(|| {
                let last = self.open.len().checked_sub(1)?;
                self.open[last].report.is_none().then_some(last)
            })?;
        self.open.get_mut(index)
    }

    /// Removes and returns the complete invocations (all of them when `force`, at shutdown), with the
    /// markers of those whose trace was never known until now.
    pub fn take_complete(&mut self, force: bool) -> (Vec<Invocation>, Markers) {
        let mut done = Vec::new();
        let mut markers = Vec::new();
        let mut keep = VecDeque::with_capacity(self.open.len());
        for mut inv in self.open.drain(..) {
            if force || inv.report.is_some() {
                if inv.trace_id.is_none() {
                    inv.trace_id = Some(ids::trace_id());
                    markers.extend(marker(&mut inv));
                }
                if self.done.len() == MAX_DONE {
                    self.done.pop_front();
                }
                self.done.push_back(inv.request_id.clone());
                done.push(inv);
            } else {
                keep.push_back(inv);
            }
        }
        self.open = keep;
        (done, markers)
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    fn entry(&mut self, request_id: &str) -> &mut Invocation {
        if let Some(index) = self.open.iter().position(|i| i.request_id == request_id) {
            return &mut self.open[index];
        }
        if self.open.len() >= MAX_OPEN {
            // The oldest has waited for its report far too long; force it complete rather than lose it.
            if let Some(oldest) = self.open.iter_mut().find(|i| i.report.is_none()) {
                oldest.report = Some(Ending {
                    time: None,
                    status: Status::Other("unknown".into()),
                    error_type: None,
                    duration_ms: None,
                });
            }
        }
        let coldstart = !self.seen_any;
        self.seen_any = true;
        self.open.push_back(Invocation {
            request_id: request_id.to_owned(),
            trace_id: None,
            span_id: ids::span_id(),
            parent_id: None,
            coldstart,
            invoked_at: None,
            function_arn: None,
            start: None,
            runtime_done: None,
            report: None,
            metrics: ReportMetrics::default(),
            platform_spans: Vec::new(),
            last_child_end: 0,
            marker_printed: false,
        });
        let last = self.open.len() - 1;
        &mut self.open[last]
    }
}

/// Takes trace and parent from an X-Ray header; `true` if it set the trace.
fn adopt_tracing(inv: &mut Invocation, tracing: Option<&str>) -> bool {
    if inv.trace_id.is_some() {
        return false;
    }
    match tracing.and_then(XrayHeader::parse) {
        Some(header) => {
            inv.trace_id = Some(header.trace_id);
            inv.parent_id = header.parent_id;
            true
        }
        None => false,
    }
}

fn marker(inv: &mut Invocation) -> Option<String> {
    let trace = inv.trace_id?;
    if inv.marker_printed {
        return None;
    }
    inv.marker_printed = true;
    Some(invocation_marker_line(trace, inv.span_id, &inv.request_id))
}

/// The same platform span may be reported by more than one event: keep the first of each name.
fn merge_spans(into: &mut Vec<PlatformSpan>, spans: Vec<PlatformSpan>) {
    for span in spans {
        if into.len() < 16 && !into.iter().any(|s| s.name == span.name) {
            into.push(span);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const XRAY: &str = "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1";

    fn report(id: &str) -> Event {
        Event::Report {
            time: Some(3),
            request_id: id.into(),
            status: Status::Success,
            error_type: None,
            metrics: ReportMetrics::default(),
            spans: vec![],
        }
    }

    #[test]
    fn invoke_prints_one_marker_with_the_xray_trace() {
        let mut t = Tracker::new(true);
        let markers = t.on_invoke("r1", Some(XRAY), None, 1);
        assert_eq!(markers.len(), 1);
        assert!(markers[0].starts_with("[!dt dt.trace_id=5f35ae120c0fec141ab77a00bc047aa2,dt.span_id="));
        assert!(markers[0].ends_with("] tracehose invocation RequestId: r1"));
        let start = Event::Start {
            time: Some(2),
            request_id: "r1".into(),
            tracing: Some(XRAY.into()),
        };
        assert!(t.on_event(start).is_empty());
        assert!(t.on_invoke("r1", Some(XRAY), None, 1).is_empty());
        let inv = t.find("r1").unwrap();
        assert_eq!(inv.parent_id.unwrap().to_string(), "2be948a625588e32");
        assert!(inv.coldstart);
    }

    #[test]
    fn telemetry_before_invoke_and_completion_by_report() {
        let mut t = Tracker::new(true);
        let start = Event::Start {
            time: Some(2),
            request_id: "r1".into(),
            tracing: Some(XRAY.into()),
        };
        assert_eq!(t.on_event(start).len(), 1);
        assert!(t.on_invoke("r1", None, None, 1).is_empty());
        assert!(!t.runtime_done("r1"));
        assert!(t.take_complete(false).0.is_empty());
        t.on_event(report("r1"));
        assert!(t.runtime_done("r1"));
        let (done, markers) = t.take_complete(false);
        assert_eq!(done.len(), 1);
        assert!(markers.is_empty());
        assert_eq!(t.open_count(), 0);
        t.on_invoke("r2", None, None, 5);
        assert!(!t.find("r2").unwrap().coldstart);
    }

    #[test]
    fn a_late_invoke_does_not_reopen_a_completed_invocation() {
        let mut t = Tracker::new(true);
        let start = Event::Start {
            time: Some(2),
            request_id: "r1".into(),
            tracing: Some(XRAY.into()),
        };
        t.on_event(report("r1"));
        assert_eq!(t.on_event(start.clone()).len(), 1);
        assert_eq!(t.take_complete(false).0.len(), 1);
        assert!(t.on_invoke("r1", Some(XRAY), None, 5).is_empty());
        assert!(t.on_event(start).is_empty());
        assert!(t.on_event(report("r1")).is_empty());
        assert!(t.runtime_done("r1"));
        assert_eq!(t.open_count(), 0);
    }

    #[test]
    fn forced_completion_generates_a_trace_once() {
        let mut t = Tracker::new(true);
        t.on_event(report("lonely"));
        t.on_event(Event::Start {
            time: None,
            request_id: "open".into(),
            tracing: None,
        });
        let (done, markers) = t.take_complete(true);
        assert_eq!(done.len(), 2);
        assert_eq!(markers.len(), 2);
    }

    #[test]
    fn without_telemetry_the_next_invoke_completes_the_previous() {
        let mut t = Tracker::new(false);
        t.on_invoke("a", None, None, 1);
        assert!(t.take_complete(false).0.is_empty());
        t.on_invoke("b", None, None, 2);
        let (done, _) = t.take_complete(false);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].request_id, "a");
    }

    #[test]
    fn open_invocations_are_bounded() {
        let mut t = Tracker::new(true);
        for i in 0..(MAX_OPEN * 3) {
            t.on_invoke(&format!("r{i}"), None, None, 1);
            let _ = t.take_complete(false);
        }
        assert!(t.open_count() <= MAX_OPEN + 1);
    }

    #[test]
    fn owner_prefers_named_then_trace_then_current() {
        let mut t = Tracker::new(true);
        t.on_invoke("a", Some(XRAY), None, 1);
        t.on_event(report("a"));
        t.on_invoke("b", None, None, 2);
        assert_eq!(t.owner(Some("a"), None).unwrap().request_id, "a");
        let xray_trace = TraceId::from_hex("5f35ae120c0fec141ab77a00bc047aa2");
        assert_eq!(t.owner(None, xray_trace).unwrap().request_id, "a");
        assert_eq!(t.owner(None, None).unwrap().request_id, "b");
        t.on_event(report("b"));
        assert!(t.owner(Some("zzz"), None).is_none());
    }
}
