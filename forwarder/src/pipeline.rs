//! The pipeline: decode -> parse -> correlate -> write, for one unit of input at a time, counting every
//! outcome. The same pipeline serves the CLI, the Lambda handler and the HTTP endpoint; it holds the
//! correlation state, so keeping one pipeline alive keeps joins working across deliveries.

use std::sync::Arc;

use thiserror::Error;

use crate::correlate::{Correlator, Line};
use crate::input::{decode_unit, InputError, SubscriptionPayload, Unit};
use crate::limits::Limits;
use crate::output::Sink;
use crate::parse::{parse_line, ParsedLine};
use crate::record::{LogRecord, Source};
use crate::summary::Summary;

#[derive(Debug, Error)]
pub enum UnitError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{location}: destination failed: {source}")]
    Sink { location: String, source: E },
}

/// What the unit's payloads share, taken from its envelope.
#[derive(Debug, Clone, Default)]
pub struct UnitContext {
    pub firehose_arn: Option<Arc<str>>,
    pub region: Option<Arc<str>>,
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

    /// Decodes one unit and writes its records. A unit that cannot be decoded counts as one failed record;
    /// a destination failure counts the events not written as failed.
    pub fn process_unit<S: Sink>(
        &mut self,
        unit: Unit,
        sink: &mut S,
        summary: &mut Summary,
    ) -> Result<(), UnitError<S::Error>> {
        let Unit {
            location,
            data,
            firehose_arn,
            region,
            arrival_ms,
            ..
        } = unit;
        let payloads = match decode_unit(data, &location, arrival_ms, &self.limits) {
            Ok(payloads) => payloads,
            Err(err) => {
                summary.failed_records += 1;
                return Err(err.into());
            }
        };
        let context = UnitContext { firehose_arn, region };
        let mut payloads = payloads.into_iter();
        while let Some(payload) = payloads.next() {
            if let Err(source) = self.process_payload(payload, &context, sink, summary) {
                // The unit's later payloads were never attempted: they fail with it.
                for rest in payloads {
                    summary.events_in += rest.log_events.len() as u64;
                    summary.failed_events += rest.log_events.len() as u64;
                }
                return Err(UnitError::Sink { location, source });
            }
        }
        Ok(())
    }

    pub fn process_payload<S: Sink>(
        &mut self,
        payload: SubscriptionPayload,
        context: &UnitContext,
        sink: &mut S,
        summary: &mut Summary,
    ) -> Result<(), S::Error> {
        let total = payload.log_events.len() as u64;
        summary.events_in += total;
        if payload.is_control_message() {
            summary.control_messages += total;
            return Ok(());
        }
        let lambda_stream = is_lambda_stream(&payload.log_group, &payload.log_stream);
        let source = Arc::new(Source {
            function_name: payload.log_group.strip_prefix("/aws/lambda/").map(str::to_owned),
            account_id: payload.owner,
            region: context
                .region
                .as_deref()
                .or(self.default_region.as_deref())
                .map(str::to_owned),
            firehose_arn: context.firehose_arn.as_deref().map(str::to_owned),
            // Only a Firehose HTTP endpoint request carries them, in a header no input here has.
            common_attributes: Vec::new(),
            log_group: payload.log_group,
            log_stream: payload.log_stream,
        });
        let parsed: Vec<ParsedLine> = payload
            .log_events
            .iter()
            .map(|e| parse_line(&e.message))
            .collect();
        let lines: Vec<Line<'_>> = payload
            .log_events
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

        let rows = payload.log_events.into_iter().zip(parsed).zip(resolutions);
        for (written, ((event, parsed), resolution)) in rows.enumerate() {
            let mut message = event.message;
            message.truncate(message.trim_end().len());
            let join = resolution.join;
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
                summary.failed_events += total - written as u64;
                return Err(err);
            }
            summary.delivered += 1;
            summary.count_join(join);
        }
        Ok(())
    }
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
