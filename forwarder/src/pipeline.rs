//! The pipeline: decode -> parse -> correlate -> write, for one unit of input at a time, counting every
//! outcome. The same pipeline serves the CLI, the Lambda handler and the HTTP endpoint; it holds the
//! correlation state, so keeping one pipeline alive keeps joins working across deliveries.
//!
//! Each input (a request, an event, a file) draws on one [`Budget`]: its decompressions together are
//! capped, and its deadline is checked between records, between payloads and between correlation windows,
//! so an input that is too costly or too late stops within a bounded amount of further work, its remaining
//! records refused and counted.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};

use crate::correlate::{Correlator, Line};
use crate::input::{
    decode_unit, Budget, Clock, Decoded, InputError, LogEvent, Shape, Stop, SubscriptionPayload, Unit,
};
use crate::limits::Limits;
use crate::output::Sink;
use crate::parse::{parse_line, ParsedLine};
use crate::record::{LogRecord, Source};
use crate::summary::Summary;
use crate::telemetry::tracker::{Counts, Observed, Tracker};
use crate::telemetry::{Settings, SpanMode};

/// Whether everything a unit held was delivered or skipped. `Incomplete` means something in it could never
/// be delivered (it was reported and counted): a Firehose transformation answers such a record
/// `ProcessingFailed`, the other faces go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitOutcome {
    Complete,
    Incomplete,
}

/// Lines correlated together in one pass. A payload is read whole, but its lines are parsed, correlated and
/// written this many at a time, so the per-line state costs a bounded amount whatever the payload holds.
/// Lines of one invocation in two windows still join through the correlation state, as they do across two
/// deliveries; only a marker or REPORT that comes after a line *and* in a later window no longer reaches it.
const CORRELATION_WINDOW: usize = 16_384;

/// Appended to a message cut to the size limit, so that nobody mistakes it for the whole.
const TRUNCATION_MARKER: &str = " [tracehose: truncated]";

/// What the unit's payloads share, taken from its envelope.
#[derive(Debug, Clone, Default)]
pub struct UnitContext {
    pub firehose_arn: Option<Arc<str>>,
    pub region: Option<Arc<str>>,
    /// Firehose HTTP endpoint common attributes (a request header, not part of any envelope), in order.
    pub common_attributes: Arc<[(String, String)]>,
}

#[derive(Debug)]
pub struct Pipeline {
    limits: Limits,
    correlator: Correlator,
    default_region: Option<Arc<str>>,
    /// The current input's budget ([`begin_input`](Self::begin_input)); until one begins, each
    /// decompression is capped on its own and nothing else is.
    budget: Budget,
    /// Units refused since the current input stopped: only the first is reported line by line.
    refused: u64,
    /// Platform telemetry, when asked for ([`with_telemetry`](Self::with_telemetry)).
    tracker: Option<Tracker>,
}

impl Pipeline {
    pub fn new(limits: Limits) -> Self {
        Self {
            correlator: Correlator::new(&limits),
            limits,
            default_region: None,
            budget: Budget::default(),
            refused: 0,
            tracker: None,
        }
    }

    /// Makes platform telemetry as `settings` ask (docs/formats.md section 9): each invocation finished in
    /// the lines that go through is handed to the sink ([`Sink::invocation`]), and with
    /// `TRACEHOSE_INVOCATION_SPANS=all` the lines of invocations with no trace are joined to their derived
    /// span. Its state takes a quarter of the state bytes. To be called before any input.
    pub fn with_telemetry(mut self, settings: Settings) -> Self {
        // `TRACEHOSE_MAX_STATE_BYTES` bounds all the state together: the correlator keeps the rest.
        let telemetry_bytes = self.limits.max_state_bytes / 4;
        self.tracker = Tracker::new(settings, self.limits.max_tracked_invocations, telemetry_bytes);
        let correlation_bytes = match self.tracker {
            Some(_) => self.limits.max_state_bytes - telemetry_bytes,
            None => self.limits.max_state_bytes,
        };
        self.correlator = Correlator::with_state_bytes(&self.limits, correlation_bytes)
            .with_derived_joins(settings.spans == SpanMode::All);
        self
    }

    /// What the platform telemetry did, when it is on.
    pub fn telemetry_counts(&self) -> Option<Counts> {
        self.tracker.as_ref().map(Tracker::counts)
    }

    /// Starts a new input: its units share one decompression budget
    /// (`TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES`) and stop at `clock`'s deadline.
    pub fn begin_input(&mut self, clock: Clock) {
        self.budget = Budget::for_input(&self.limits, clock);
        self.refused = 0;
    }

    /// The current input's budget: what it inflated, and why it stopped, if it did.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// For the input's own inflation (a gzip file or event), which draws on the same budget.
    pub fn budget_mut(&mut self) -> &mut Budget {
        &mut self.budget
    }

    /// The region of log groups whose payloads do not say it: inside Lambda, the function's own region,
    /// since subscriptions never cross regions.
    pub fn with_default_region(mut self, region: Option<String>) -> Self {
        self.default_region = region.map(Arc::from);
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decodes one unit and writes its records. What cannot be decoded or read is reported through `report`
    /// and counted, and the rest of the unit goes on; a destination failure is returned, with every event
    /// not written counted as failed.
    pub fn process_unit<S: Sink>(
        &mut self,
        unit: Unit<'_>,
        sink: &mut S,
        summary: &mut Summary,
        report: &mut dyn FnMut(String),
    ) -> Result<UnitOutcome, S::Error> {
        self.process_unit_with(unit, Arc::default(), sink, summary, report)
    }

    /// [`process_unit`](Self::process_unit), with common attributes that came beside the unit rather
    /// than in it (the Firehose HTTP endpoint's `X-Amz-Firehose-Common-Attributes` header). Once the input
    /// has stopped (its budget spent, its deadline passed), each further unit is refused unread and counted
    /// as a failed record; only the first is reported.
    pub fn process_unit_with<S: Sink>(
        &mut self,
        unit: Unit<'_>,
        common_attributes: Arc<[(String, String)]>,
        sink: &mut S,
        summary: &mut Summary,
        report: &mut dyn FnMut(String),
    ) -> Result<UnitOutcome, S::Error> {
        if let Err(stop) = self.budget.check() {
            summary.failed_records += 1;
            self.refused += 1;
            if self.refused == 1 {
                report(format!(
                    "{}: not read: {stop}; the input's later records are refused the same way, each counted \
                     as a failed record but not reported",
                    unit.location
                ));
            }
            return Ok(UnitOutcome::Incomplete);
        }
        let work = UnitWork::decode(unit, common_attributes, &self.limits, &mut self.budget);
        work.run(&mut *self, sink, summary, report)
    }

    pub fn process_payload<S: Sink>(
        &mut self,
        payload: SubscriptionPayload<'_>,
        context: &UnitContext,
        sink: &mut S,
        summary: &mut Summary,
    ) -> Result<(), S::Error> {
        self.process_payload_until(payload, context, &Clock::default(), sink, summary)
            .map(|_| ())
    }

    /// [`process_payload`](Self::process_payload), checking `clock` between correlation windows: the
    /// events of windows not started when it stops count as failed (a retry may deliver them), and the
    /// reason is returned.
    fn process_payload_until<S: Sink>(
        &mut self,
        payload: SubscriptionPayload<'_>,
        context: &UnitContext,
        clock: &Clock,
        sink: &mut S,
        summary: &mut Summary,
    ) -> Result<Option<(Stop, u64)>, S::Error> {
        summary.events_in += payload.event_count();
        summary.invalid_events += payload.bad_events.len() as u64;
        if payload.is_control_message() {
            summary.control_messages += payload.log_events.len() as u64;
            return Ok(None);
        }
        let lambda_stream = is_lambda_stream(&payload.log_group, &payload.log_stream);
        let source = Arc::new(Source {
            function_name: payload.log_group.strip_prefix("/aws/lambda/").map(str::to_owned),
            account_id: payload.owner.map(Cow::into_owned),
            region: context
                .region
                .as_deref()
                .or(self.default_region.as_deref())
                .map(str::to_owned),
            firehose_arn: context.firehose_arn.as_deref().map(str::to_owned),
            // Only a Firehose HTTP endpoint request carries them, in a header beside the body.
            common_attributes: context.common_attributes.to_vec(),
            log_group: payload.log_group.into_owned(),
            log_stream: payload.log_stream.into_owned(),
        });
        let max_message = self.limits.max_message_bytes;
        let mut remaining = payload.log_events.len() as u64;
        let mut events = payload.log_events.into_iter();
        loop {
            if remaining > 0 {
                if let Err(stop) = clock.check() {
                    summary.failed_events += remaining;
                    return Ok(Some((stop, remaining)));
                }
            }
            let window: Vec<LogEvent<'_>> = events.by_ref().take(CORRELATION_WINDOW).collect();
            if window.is_empty() {
                return Ok(None);
            }
            let parsed: Vec<ParsedLine> = window
                .iter()
                .map(|e| parse_line(parsed_part(&e.message, max_message)))
                .collect();
            let lines: Vec<Line<'_>> = window
                .iter()
                .zip(&parsed)
                .map(|(event, parsed)| Line {
                    timestamp_ms: event.timestamp,
                    parsed,
                })
                .collect();
            let resolutions =
                self.correlator
                    .correlate(&source.log_group, &source.log_stream, lambda_stream, &lines);
            drop(lines);

            // Only Lambda streams have platform lines.
            let mut tracker = self.tracker.as_mut().filter(|_| lambda_stream);
            for ((event, parsed), resolution) in window.into_iter().zip(parsed).zip(resolutions) {
                // Before the filter: a REPORT line kept out of the logs still makes its invocation.
                if let Some(tracker) = tracker.as_deref_mut() {
                    let line = Observed {
                        timestamp_ms: event.timestamp,
                        message: parsed_part(&event.message, max_message),
                        parsed: &parsed,
                        resolution: &resolution,
                    };
                    if let Some(invocation) = tracker.observe(&source, line) {
                        if let Err(err) = sink.invocation(&invocation) {
                            summary.failed_events += remaining;
                            return Err(err);
                        }
                    }
                }
                let join = resolution.join;
                // The sink filters and scrubs the whole message; only then is it cut. A line it filters out
                // counts as delivered here, and its ledger takes it back (`Summary::apply_ledger`).
                let Some(message) = sink.admit(trimmed(event.message)) else {
                    remaining -= 1;
                    summary.delivered += 1;
                    summary.count_join(join);
                    continue;
                };
                let (message, truncated) = forwarded_message(message, max_message);
                let record = LogRecord {
                    timestamp_ms: event.timestamp,
                    message,
                    severity: parsed.severity,
                    trace_id: resolution.trace_id,
                    span_id: resolution.span_id,
                    request_id: resolution.request_id,
                    join,
                    source: Arc::clone(&source),
                    platform: parsed.platform,
                    details: parsed.details,
                    cold_start: resolution.cold_start,
                };
                if let Err(err) = sink.write(record) {
                    summary.failed_events += remaining;
                    return Err(err);
                }
                remaining -= 1;
                summary.delivered += 1;
                summary.truncated += u64::from(truncated);
                summary.count_join(join);
            }
        }
    }
}

/// Access to a pipeline for one payload at a time: a pipeline owned outright, or one that concurrent
/// requests share behind a mutex, held only while a payload's lines are correlated and written.
pub trait Hold {
    fn hold<R>(&mut self, f: impl FnOnce(&mut Pipeline) -> R) -> R;
}

impl Hold for &mut Pipeline {
    fn hold<R>(&mut self, f: impl FnOnce(&mut Pipeline) -> R) -> R {
        f(self)
    }
}

impl Hold for &Mutex<Pipeline> {
    fn hold<R>(&mut self, f: impl FnOnce(&mut Pipeline) -> R) -> R {
        // A panic while it was held leaves correlation state that is at worst incomplete.
        f(&mut self.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// One unit, decoded (base64, every gzip level, within the input's budget) without the pipeline, then run
/// through it payload by payload: the costly, stateless half never holds a shared pipeline.
#[derive(Debug)]
pub struct UnitWork<'a> {
    location: String,
    shape: Shape,
    arrival_ms: Option<i64>,
    context: UnitContext,
    decoded: Decoded<'a>,
    clock: Clock,
}

impl<'a> UnitWork<'a> {
    pub fn decode(
        unit: Unit<'a>,
        common_attributes: Arc<[(String, String)]>,
        limits: &Limits,
        budget: &mut Budget,
    ) -> Self {
        let Unit {
            location,
            shape,
            data,
            firehose_arn,
            region,
            arrival_ms,
            ..
        } = unit;
        let decoded = decode_unit(data, &location, limits, budget);
        Self {
            location,
            shape,
            arrival_ms,
            context: UnitContext {
                firehose_arn,
                region,
                common_attributes,
            },
            decoded,
            clock: budget.clock().clone(),
        }
    }

    /// Parses the unit's payloads and writes their records through `pipeline`. What cannot be read is
    /// reported through `report` and counted, and the rest of the unit goes on; a destination failure is
    /// returned, with every event not written counted as failed. Past the clock's deadline the payloads
    /// left are not processed: their events count as failed.
    pub fn run<S: Sink>(
        self,
        mut pipeline: impl Hold,
        sink: &mut S,
        summary: &mut Summary,
        report: &mut dyn FnMut(String),
    ) -> Result<UnitOutcome, S::Error> {
        let UnitWork {
            location,
            shape,
            arrival_ms,
            context,
            decoded,
            clock,
        } = self;
        let mut outcome = UnitOutcome::Complete;
        let mut sink_error = None;
        let mut cut = None;
        decoded.for_each_payload(shape, &location, arrival_ms, |payload| {
            let payload = match payload {
                Ok(payload) => payload,
                Err(err) => {
                    count_input_error(&err, summary);
                    report(err.to_string());
                    outcome = UnitOutcome::Incomplete;
                    return;
                }
            };
            if sink_error.is_some() || cut.is_some() {
                // Never attempted once the destination failed or the clock stopped: these fail with it.
                summary.events_in += payload.event_count();
                summary.failed_events += payload.event_count();
                if let Some((_, events)) = &mut cut {
                    *events += payload.event_count();
                }
                return;
            }
            if let Some(bad) = payload.describe_bad_events() {
                report(format!("{location}: {bad}"));
                outcome = UnitOutcome::Incomplete;
            }
            match pipeline.hold(|p| p.process_payload_until(payload, &context, &clock, sink, summary)) {
                Ok(None) => {}
                Ok(Some(stopped)) => {
                    outcome = UnitOutcome::Incomplete;
                    cut = Some(stopped);
                }
                Err(err) => sink_error = Some(err),
            }
        });
        if let Some((stop, events)) = cut {
            report(format!("{location}: {events} log events not processed: {stop}"));
        }
        sink_error.map_or(Ok(outcome), Err)
    }
}

/// Counts an input error where it belongs: events it is known to have held are invalid; a record whose
/// events cannot be counted is one failed record.
pub fn count_input_error(err: &InputError, summary: &mut Summary) {
    match err.lost_events() {
        0 => summary.failed_records += 1,
        events => {
            summary.events_in += events;
            summary.invalid_events += events;
        }
    }
}

/// The message without its trailing whitespace (the newline most loggers end with).
fn trimmed(message: Cow<'_, str>) -> Cow<'_, str> {
    let text_len = message.trim_end().len();
    match message {
        Cow::Borrowed(text) => Cow::Borrowed(&text[..text_len]),
        Cow::Owned(mut text) => {
            text.truncate(text_len);
            Cow::Owned(text)
        }
    }
}

/// The message as forwarded: [`trimmed`], and cut to `max` bytes with a visible marker when longer. Returns
/// whether it was cut.
fn forwarded_message(message: Cow<'_, str>, max: usize) -> (Cow<'_, str>, bool) {
    let message = trimmed(message);
    if message.len() <= max {
        return (message, false);
    }
    let keep = floor_char_boundary(&message, max.saturating_sub(TRUNCATION_MARKER.len()));
    let mut cut = String::with_capacity(keep + TRUNCATION_MARKER.len());
    cut.push_str(&message[..keep]);
    cut.push_str(TRUNCATION_MARKER);
    (Cow::Owned(cut), true)
}

/// The part of a message parsing sees: at most the part that is forwarded, so that an oversize line costs no
/// more than a line at the limit.
fn parsed_part(message: &str, max: usize) -> &str {
    &message[..floor_char_boundary(message, max)]
}

/// The largest index not above `at` that is a char boundary of `text` (at most 3 steps back).
fn floor_char_boundary(text: &str, at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0)
}

/// Lambda functions log to `/aws/lambda/<name>` unless given a custom group; their streams are always named
/// `YYYY/MM/DD/[<version>]<32 hex>`, which identifies them in custom groups too.
pub fn is_lambda_stream(log_group: &str, log_stream: &str) -> bool {
    if log_group.starts_with("/aws/lambda/") {
        return true;
    }
    let Some((_, tail)) = log_stream.rsplit_once(']') else {
        return false;
    };
    let dated =
        log_stream.len() > 11 && log_stream.as_bytes()[4] == b'/' && log_stream.as_bytes()[10] == b'/';
    dated && tail.len() == 32 && tail.bytes().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::input::UnitData;
    use crate::output::ndjson::NdjsonSink;

    fn payload(events: usize) -> SubscriptionPayload<'static> {
        SubscriptionPayload {
            message_type: Cow::Borrowed("DATA_MESSAGE"),
            log_group: Cow::Borrowed("g"),
            log_stream: Cow::Borrowed("s"),
            log_events: (0..events)
                .map(|i| LogEvent {
                    timestamp: i as i64,
                    message: Cow::Owned(format!("line {i}")),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn unit(events: usize) -> Unit<'static> {
        Unit {
            location: "records[0]".into(),
            shape: Shape::SubscriptionPayload,
            record_id: None,
            data: UnitData::Decoded(payload(events)),
            firehose_arn: None,
            region: None,
            arrival_ms: None,
        }
    }

    /// Raises the stop flag as the first record is written: the clock stops inside the first window.
    struct StopsOnFirstWrite<'a> {
        inner: NdjsonSink<Vec<u8>>,
        stopping: &'a AtomicBool,
    }

    impl Sink for StopsOnFirstWrite<'_> {
        type Error = <NdjsonSink<Vec<u8>> as Sink>::Error;

        fn write(&mut self, record: LogRecord<'_>) -> Result<(), Self::Error> {
            self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
            self.inner.write(record)
        }

        fn flush(&mut self) -> Result<(), Self::Error> {
            self.inner.flush()
        }
    }

    #[test]
    fn a_clock_that_stops_within_a_window_leaves_the_later_windows_counted_as_failed() {
        let stopping = Arc::new(AtomicBool::new(false));
        let clock = Clock::new(None).with_cancel(Arc::clone(&stopping));
        let mut budget = Budget::new(usize::MAX, clock);
        let mut pipeline = Pipeline::new(Limits::default());
        let mut sink = StopsOnFirstWrite {
            inner: NdjsonSink::new(Vec::new()),
            stopping: &stopping,
        };
        let mut summary = Summary::default();
        let mut reports = Vec::new();
        let events = 2 * CORRELATION_WINDOW + 5;
        let work = UnitWork::decode(unit(events), Arc::default(), &Limits::default(), &mut budget);
        let outcome = work.run(&mut pipeline, &mut sink, &mut summary, &mut |r| reports.push(r));
        assert_eq!(outcome.unwrap(), UnitOutcome::Incomplete);
        // The window in progress is finished; the two after it are not started.
        let left = (events - CORRELATION_WINDOW) as u64;
        assert_eq!(summary.delivered, CORRELATION_WINDOW as u64);
        assert_eq!((summary.events_in, summary.failed_events), (events as u64, left));
        assert_eq!(
            reports,
            [format!(
                "records[0]: {left} log events not processed: the process is stopping"
            )]
        );
    }

    #[test]
    fn once_an_input_stops_its_later_units_are_refused_counted_and_reported_once() {
        let mut pipeline = Pipeline::new(Limits::default());
        let stopping = Arc::new(AtomicBool::new(true));
        pipeline.begin_input(Clock::new(None).with_cancel(stopping));
        let mut sink = NdjsonSink::new(Vec::new());
        let mut summary = Summary::default();
        let mut reports = Vec::new();
        for _ in 0..3 {
            let outcome = pipeline.process_unit(unit(2), &mut sink, &mut summary, &mut |r| reports.push(r));
            assert_eq!(outcome.unwrap(), UnitOutcome::Incomplete);
        }
        assert_eq!((summary.failed_records, summary.delivered), (3, 0));
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(
            reports[0].starts_with("records[0]: not read: the process is stopping"),
            "{reports:?}"
        );
        // A new input starts afresh.
        pipeline.begin_input(Clock::default());
        let outcome = pipeline.process_unit(unit(2), &mut sink, &mut summary, &mut |r| reports.push(r));
        assert_eq!(outcome.unwrap(), UnitOutcome::Complete);
        assert_eq!(summary.delivered, 2);
    }

    #[test]
    fn oversize_messages_are_cut_with_a_marker_on_a_char_boundary() {
        let (kept, cut) = forwarded_message(Cow::Borrowed("short\n"), 100);
        assert_eq!((kept.as_ref(), cut), ("short", false));
        let long = "é".repeat(100);
        let (kept, cut) = forwarded_message(Cow::Borrowed(&long), 64);
        assert!(cut);
        assert!(kept.len() <= 64, "{}", kept.len());
        assert!(kept.ends_with(TRUNCATION_MARKER));
        assert!(kept.starts_with("éé"));
    }

    #[test]
    fn recognises_lambda_streams() {
        assert!(is_lambda_stream("/aws/lambda/orders", "anything"));
        assert!(is_lambda_stream(
            "custom",
            "2026/11/21/[$LATEST]0123456789abcdef0123456789abcdef"
        ));
        assert!(!is_lambda_stream(
            "custom",
            "2026/11/21/[$LATEST]0123456789abcdef"
        ));
        assert!(!is_lambda_stream(
            "/ecs/web",
            "web/web/0123456789abcdef0123456789abcdef"
        ));
        assert!(!is_lambda_stream("x", "]"));
    }
}
