//! Reading a backend's successful answer for what it refused anyway: OTLP's `partial_success` and the Dynatrace
//! log ingest API's 200. An answer is outside data: whatever it holds, reading it neither fails nor panics,
//! and a count it gives is never taken beyond the entries sent.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use serde_json::Value;
use tracehose_export::Delivered;

use super::Refused;

/// Longest backend message kept for the report.
const MAX_MESSAGE: usize = 512;

/// What an OTLP partial success says: how many items it refused, and its message.
struct Partial {
    rejected: i64,
    message: String,
}

/// The OTLP signal an answer is for: its response type and the name of its refused count.
struct Signal {
    /// The count's proto3 JSON name and its proto field name.
    json_names: (&'static str, &'static str),
    decode: fn(&[u8]) -> Option<Partial>,
}

const LOGS: Signal = Signal {
    json_names: ("rejectedLogRecords", "rejected_log_records"),
    decode: |body| {
        let partial = ExportLogsServiceResponse::decode(body).ok()?.partial_success?;
        Some(Partial {
            rejected: partial.rejected_log_records,
            message: partial.error_message,
        })
    },
};

const METRICS: Signal = Signal {
    json_names: ("rejectedDataPoints", "rejected_data_points"),
    decode: |body| {
        let partial = ExportMetricsServiceResponse::decode(body).ok()?.partial_success?;
        Some(Partial {
            rejected: partial.rejected_data_points,
            message: partial.error_message,
        })
    },
};

const TRACES: Signal = Signal {
    json_names: ("rejectedSpans", "rejected_spans"),
    decode: |body| {
        let partial = ExportTraceServiceResponse::decode(body).ok()?.partial_success?;
        Some(Partial {
            rejected: partial.rejected_spans,
            message: partial.error_message,
        })
    },
};

/// An OTLP/HTTP logs answer: `ExportLogsServiceResponse` in protobuf, or in JSON when its `Content-Type` says
/// so. `rejected_log_records` is the count refused; an answer that does not decode, or is empty, refuses
/// nothing (a 2xx is the protocol's success, and most backends send an empty body).
pub fn otlp_logs(answer: &Delivered, entries: usize) -> Refused {
    otlp(&LOGS, answer, entries)
}

/// An OTLP/HTTP metrics answer, read as [`otlp_logs`] reads a logs answer. It counts data points, and an
/// entry is one invocation's several points: which invocations they were is not said, so each refused point
/// counts one invocation refused (at most every invocation sent), an undercount of what arrived, never an
/// overcount.
pub fn otlp_metrics(answer: &Delivered, entries: usize) -> Refused {
    otlp(&METRICS, answer, entries)
}

/// An OTLP/HTTP traces answer, read as [`otlp_metrics`]: each refused span counts one invocation refused.
pub fn otlp_traces(answer: &Delivered, entries: usize) -> Refused {
    otlp(&TRACES, answer, entries)
}

fn otlp(signal: &Signal, answer: &Delivered, entries: usize) -> Refused {
    let json = answer.content_type.as_deref().is_some_and(|t| {
        t.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json")
    });
    let partial = if json {
        partial_from_json(&answer.body, signal.json_names)
    } else {
        (signal.decode)(&answer.body)
    };
    let Some(partial) = partial else {
        return Refused::default();
    };
    let count = usize::try_from(partial.rejected.max(0))
        .unwrap_or(usize::MAX)
        .min(entries);
    Refused {
        count,
        message: message(&partial.message),
    }
}

/// The JSON form of the same message (proto3 JSON: `partialSuccess.<count>`, an int64 written as a string or
/// a number; the proto field names are accepted too).
fn partial_from_json(body: &[u8], (json_name, proto_name): (&str, &str)) -> Option<Partial> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let partial = field(&value, "partialSuccess", "partial_success")?;
    let rejected = match field(partial, json_name, proto_name) {
        // Beyond i64, serde_json holds a float: `as` saturates it.
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let message = field(partial, "errorMessage", "error_message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Some(Partial {
        rejected: rejected.unwrap_or(0),
        message: message.to_owned(),
    })
}

fn field<'v>(value: &'v Value, json_name: &str, proto_name: &str) -> Option<&'v Value> {
    value.get(json_name).or_else(|| value.get(proto_name))
}

/// A Dynatrace log ingest answer. 204 takes everything; 200 is documented as "only a part of input events
/// were ingested", with a body (`{"details": {"code", "message"}}`) that says neither how many nor which. No
/// line of such a request can be shown delivered, so all of them count as refused: an undercount of what
/// arrived, never an overcount. Other 2xx take everything.
pub fn dynatrace(answer: &Delivered, entries: usize) -> Refused {
    if answer.status != 200 {
        return Refused::default();
    }
    let value: Option<Value> = serde_json::from_slice(&answer.body).ok();
    let said = value.as_ref().and_then(|v| {
        let details = v.get("details").unwrap_or(v);
        details.get("message").and_then(Value::as_str)
    });
    let message = said.map_or_else(
        || "HTTP 200: a part of the request was not ingested (the answer does not say which)".to_owned(),
        |m| format!("HTTP 200: {m} (the answer does not say which lines)"),
    );
    Refused {
        count: entries,
        message: Some(cut(&message)),
    }
}

fn message(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| cut(text))
}

/// At most [`MAX_MESSAGE`] bytes, cut on a character boundary, without control characters: the message goes
/// into a log line.
fn cut(text: &str) -> String {
    let mut end = text.len().min(MAX_MESSAGE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess;

    fn answer(status: u16, content_type: Option<&str>, body: impl Into<bytes::Bytes>) -> Delivered {
        Delivered {
            attempts: 1,
            status,
            content_type: content_type.map(str::to_owned),
            body: body.into(),
        }
    }

    fn protobuf(rejected: i64, message: &str) -> Vec<u8> {
        ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message: message.to_owned(),
            }),
        }
        .encode_to_vec()
    }

    #[test]
    fn otlp_protobuf_partial_success_counts_the_rejected_records() {
        let refused = otlp_logs(
            &answer(200, Some("application/x-protobuf"), protobuf(5, "too old")),
            1000,
        );
        assert_eq!(refused.count, 5);
        assert_eq!(refused.message.as_deref(), Some("too old"));
    }

    #[test]
    fn otlp_json_partial_success_is_read_with_either_int64_form() {
        for body in [
            r#"{"partialSuccess":{"rejectedLogRecords":"7","errorMessage":"bad"}}"#,
            r#"{"partialSuccess":{"rejectedLogRecords":7,"errorMessage":"bad"}}"#,
            r#"{"partial_success":{"rejected_log_records":7,"error_message":"bad"}}"#,
        ] {
            let refused = otlp_logs(&answer(200, Some("application/json; charset=utf-8"), body), 10);
            assert_eq!(
                (refused.count, refused.message.as_deref()),
                (7, Some("bad")),
                "{body}"
            );
        }
    }

    #[test]
    fn otlp_answers_that_refuse_nothing() {
        let none = Refused::default();
        assert_eq!(otlp_logs(&answer(200, None, Vec::new()), 10), none);
        let full = ExportLogsServiceResponse::default().encode_to_vec();
        assert_eq!(
            otlp_logs(&answer(200, Some("application/x-protobuf"), full), 10),
            none
        );
        assert_eq!(otlp_logs(&answer(200, Some("application/json"), "{}"), 10), none);
        assert_eq!(
            otlp_logs(&answer(200, Some("application/x-protobuf"), "<html>"), 10),
            none
        );
        // A warning: nothing rejected, a message.
        let warned = otlp_logs(&answer(200, None, protobuf(0, "deprecated")), 10);
        assert_eq!(warned.count, 0);
    }

    #[test]
    fn otlp_counts_stay_within_what_was_sent() {
        assert_eq!(otlp_logs(&answer(200, None, protobuf(i64::MAX, "")), 3).count, 3);
        assert_eq!(otlp_logs(&answer(200, None, protobuf(-4, "")), 3).count, 0);
        let huge = r#"{"partialSuccess":{"rejectedLogRecords":99999999999999999999999}}"#;
        assert_eq!(
            otlp_logs(&answer(200, Some("application/json"), huge), 3).count,
            3
        );
    }

    #[test]
    fn metrics_and_traces_partial_successes_count_their_own_fields() {
        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess;
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;
        let metrics = ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: 3,
                error_message: "cumulative".to_owned(),
            }),
        }
        .encode_to_vec();
        let refused = otlp_metrics(&answer(200, None, metrics.clone()), 10);
        assert_eq!(
            (refused.count, refused.message.as_deref()),
            (3, Some("cumulative"))
        );
        assert_eq!(
            otlp_metrics(&answer(200, None, metrics), 2).count,
            2,
            "at most every entry"
        );
        let traces = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: i64::MAX,
                error_message: String::new(),
            }),
        }
        .encode_to_vec();
        assert_eq!(otlp_traces(&answer(200, None, traces), 4).count, 4);
        let json = r#"{"partialSuccess":{"rejectedDataPoints":"2","rejectedSpans":5}}"#;
        assert_eq!(
            otlp_metrics(&answer(200, Some("application/json"), json), 10).count,
            2
        );
        assert_eq!(
            otlp_traces(&answer(200, Some("application/json"), json), 10).count,
            5
        );
        // A logs answer's field means nothing to a metrics answer.
        let logs = r#"{"partialSuccess":{"rejectedLogRecords":9}}"#;
        assert_eq!(
            otlp_metrics(&answer(200, Some("application/json"), logs), 10).count,
            0
        );
    }

    #[test]
    fn dynatrace_200_refuses_the_request_and_keeps_its_message() {
        let body = r#"{"details":{"code":200,"message":"Only a part of input events were ingested"}}"#;
        let refused = dynatrace(&answer(200, Some("application/json"), body), 1000);
        assert_eq!(refused.count, 1000);
        assert!(refused
            .message
            .unwrap()
            .contains("Only a part of input events were ingested"));
        let unreadable = dynatrace(&answer(200, None, "\u{1}garbage"), 4);
        assert_eq!(unreadable.count, 4);
        assert!(unreadable.message.is_some());
        assert_eq!(dynatrace(&answer(204, None, Vec::new()), 4), Refused::default());
    }

    #[test]
    fn messages_are_cut_and_kept_on_one_line() {
        let long = format!("{}é\nnext", "x".repeat(MAX_MESSAGE - 1));
        let kept = cut(&long);
        assert!(kept.len() <= MAX_MESSAGE && !kept.contains('\n'), "{kept}");
    }
}
