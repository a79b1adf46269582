//! The function's log lines (from the Telemetry API) as OTLP log records with the trace they belong to, for
//! users who ship logs from the extension instead of through CloudWatch.

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use tracehose_tracecontext::DynatraceMarker;

use crate::clock::now_nanos;
use crate::invocation::Tracker;
use crate::otlp::str_attr;
use crate::telemetry::FunctionLog;

/// A single record's body is capped: Dynatrace rejects larger content and one line must not fill the buffer.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Correlation follows docs/architecture.md: the line's own `[!dt ...]` marker wins, else the invocation it
/// names or falls in.
pub fn log_record(log: FunctionLog, tracker: &mut Tracker) -> LogRecord {
    let now = now_nanos();
    let mut message = log.message;
    if message.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    let mut record = LogRecord {
        time_unix_nano: log.time.unwrap_or(now),
        observed_time_unix_nano: now,
        severity_number: severity(log.level.as_deref()) as i32,
        severity_text: log.level.unwrap_or_default(),
        ..Default::default()
    };
    let owner = tracker.owner(log.request_id.as_deref(), None);
    if let Some(inv) = &owner {
        record
            .attributes
            .push(str_attr("faas.invocation_id", &inv.request_id));
    }
    if let Some(marker) = DynatraceMarker::find(&message) {
        record.trace_id = marker.trace_id.to_bytes().to_vec();
        record.span_id = marker.span_id.map(|s| s.to_bytes().to_vec()).unwrap_or_default();
    } else if let Some(inv) = owner {
        if let Some(trace) = inv.trace_id {
            record.trace_id = trace.to_bytes().to_vec();
            record.span_id = inv.span_id.to_bytes().to_vec();
        }
    }
    record.body = Some(AnyValue {
        value: Some(Value::StringValue(message)),
    });
    record
}

fn severity(level: Option<&str>) -> SeverityNumber {
    match level.map(str::to_ascii_uppercase).as_deref() {
        Some("TRACE") => SeverityNumber::Trace,
        Some("DEBUG") => SeverityNumber::Debug,
        Some("INFO") => SeverityNumber::Info,
        Some("WARN" | "WARNING") => SeverityNumber::Warn,
        Some("ERROR") => SeverityNumber::Error,
        Some("FATAL" | "CRITICAL") => SeverityNumber::Fatal,
        _ => SeverityNumber::Unspecified,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn log(message: &str, request_id: Option<&str>) -> FunctionLog {
        FunctionLog {
            time: Some(5),
            message: message.into(),
            level: Some("warn".into()),
            request_id: request_id.map(Into::into),
        }
    }

    #[test]
    fn marker_wins_then_invocation() {
        let mut t = Tracker::new(true);
        t.on_invoke("r1", None, None, 1);
        let inv_trace = t.find("r1").unwrap().trace_id.unwrap().to_bytes().to_vec();
        let plain = log_record(log("hello", None), &mut t);
        assert_eq!(plain.trace_id, inv_trace);
        assert_eq!(plain.severity_number, SeverityNumber::Warn as i32);
        let marked = log_record(
            log(
                "[!dt dt.trace_id=0af7651916cd43dd8448eb211c80319c,dt.span_id=00f067aa0ba902b7] x",
                Some("r1"),
            ),
            &mut t,
        );
        assert_eq!(marked.trace_id[0], 0x0a);
        assert_eq!(marked.span_id.len(), 8);
        let big = log_record(log(&"é".repeat(MAX_MESSAGE_BYTES), None), &mut t);
        match big.body.unwrap().value.unwrap() {
            Value::StringValue(s) => assert!(s.len() <= MAX_MESSAGE_BYTES),
            other => panic!("{other:?}"),
        }
    }
}
