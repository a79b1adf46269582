//! The pipeline: decode -> parse -> correlate -> write, for one unit of input at a time, counting every
//! outcome. The same pipeline serves the CLI, the Lambda handler and the HTTP endpoint; it holds the
//! correlation state, so keeping one pipeline alive keeps joins working across deliveries.

use std::sync::Arc;

use std::borrow::Cow;

use crate::correlate::{Correlator, Line};
use crate::input::{for_each_payload, InputError, LogEvent, SubscriptionPayload, Unit};
use crate::limits::Limits;
use crate::output::Sink;
use crate::parse::{parse_line, ParsedLine};
use crate::record::{LogRecord, Source};
use crate::summary::Summary;

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
}

impl Pipeline {
    pub fn new(limits: Limits) -> Self {
        Self {
            correlator: Correlator::new(&limits),
            limits,
            default_region: None,
        }
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
    /// than in it (the Firehose HTTP endpoint's `X-Amz-Firehose-Common-Attributes` header).
    pub fn process_unit_with<S: Sink>(
        &mut self,
        unit: Unit<'_>,
        common_attributes: Arc<[(String, String)]>,
        sink: &mut S,
        summary: &mut Summary,
        report: &mut dyn FnMut(String),
    ) -> Result<UnitOutcome, S::Error> {
        let Unit {
            location,
            shape,
            data,
            firehose_arn,
            region,
            arrival_ms,
            ..
        } = unit;
        let context = UnitContext {
            firehose_arn,
            region,
            common_attributes,
        };
        let mut outcome = UnitOutcome::Complete;
        let mut sink_error = None;
        let limits = self.limits;
        for_each_payload(data, shape, &location, arrival_ms, &limits, |payload| {
            let payload = match payload {
                Ok(payload) => payload,
                Err(err) => {
                    count_input_error(&err, summary);
                    report(err.to_string());
                    outcome = UnitOutcome::Incomplete;
                    return;
                }
            };
            if sink_error.is_some() {
                // Never attempted once the destination failed: these fail with it.
                summary.events_in += payload.event_count();
                summary.failed_events += payload.event_count();
                return;
            }
            if let Some(bad) = payload.describe_bad_events() {
                report(format!("{location}: {bad}"));
                outcome = UnitOutcome::Incomplete;
            }
            sink_error = self.process_payload(payload, &context, sink, summary).err();
        });
        sink_error.map_or(Ok(outcome), Err)
    }

    pub fn process_payload<S: Sink>(
        &mut self,
        payload: SubscriptionPayload<'_>,
        context: &UnitContext,
        sink: &mut S,
        summary: &mut Summary,
    ) -> Result<(), S::Error> {
        summary.events_in += payload.event_count();
        summary.invalid_events += payload.bad_events.len() as u64;
        if payload.is_control_message() {
            summary.control_messages += payload.log_events.len() as u64;
            return Ok(());
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
            let window: Vec<LogEvent<'_>> = events.by_ref().take(CORRELATION_WINDOW).collect();
            if window.is_empty() {
                return Ok(());
            }
            // Parsing sees at most the part of a message that is forwarded, so an oversize line costs no
            // more than a line at the limit.
            let parsed: Vec<ParsedLine> = window
                .iter()
                .map(|e| parse_line(&e.message[..floor_char_boundary(&e.message, max_message)]))
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

            for ((event, parsed), resolution) in window.into_iter().zip(parsed).zip(resolutions) {
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
mod tests {
    use super::*;

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
