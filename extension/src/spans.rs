//! A completed invocation as OTLP spans: the SERVER span, and children for the cold start and for the
//! platform's own phases.

use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span, Status};
use tracehose_tracecontext::TraceId;

use crate::clock::{ms_to_nanos, now_nanos};
use crate::invocation::{Init, Invocation};
use crate::otlp::{bool_attr, double_attr, int_attr, str_attr};

/// What the spans need from the configuration.
#[derive(Debug, Clone, Default)]
pub struct FunctionInfo {
    pub name: String,
    pub version: String,
    pub region: String,
    pub memory_mb: Option<u64>,
}

/// The invocation's spans; the first is the SERVER span. `trace_id` must be set (the tracker guarantees it
/// for completed invocations); an invocation without one yields no spans.
pub fn invocation_spans(inv: &Invocation, init: &Init, function: &FunctionInfo) -> Vec<Span> {
    let Some(trace_id) = inv.trace_id else {
        return Vec::new();
    };
    let now = now_nanos();
    let start = inv
        .start
        .or(inv.invoked_at)
        .or_else(|| inv.runtime_done.as_ref().and_then(|e| e.time))
        .unwrap_or(now);
    let end = end_time(inv, start);

    let mut attributes = vec![
        str_attr("faas.invocation_id", &inv.request_id),
        bool_attr("faas.coldstart", inv.coldstart),
        str_attr("faas.trigger", "other"),
        str_attr("cloud.provider", "aws"),
        str_attr("cloud.platform", "aws_lambda"),
    ];
    if !function.name.is_empty() {
        attributes.push(str_attr("faas.name", &function.name));
    }
    if !function.version.is_empty() {
        attributes.push(str_attr("faas.version", &function.version));
    }
    if !function.region.is_empty() {
        attributes.push(str_attr("cloud.region", &function.region));
    }
    if let Some(arn) = &inv.function_arn {
        attributes.push(str_attr("cloud.resource_id", arn));
        if let Some(account) = arn.split(':').nth(4).filter(|a| !a.is_empty()) {
            attributes.push(str_attr("cloud.account.id", account));
        }
    }
    let m = &inv.metrics;
    if let Some(v) = m
        .duration_ms
        .or_else(|| inv.runtime_done.as_ref().and_then(|e| e.duration_ms))
    {
        attributes.push(double_attr("aws.lambda.duration_ms", v));
    }
    if let Some(v) = m.billed_duration_ms {
        attributes.push(int_attr("aws.lambda.billed_duration_ms", v));
    }
    if let Some(v) = m.memory_size_mb.or(function.memory_mb) {
        attributes.push(int_attr("aws.lambda.memory_size_mb", v));
    }
    if let Some(v) = m.max_memory_used_mb {
        attributes.push(int_attr("aws.lambda.max_memory_used_mb", v));
    }
    let init_ms = m
        .init_duration_ms
        .or(if inv.coldstart { init.duration_ms } else { None });
    if let Some(v) = init_ms {
        attributes.push(double_attr("aws.lambda.init_duration_ms", v));
    }

    // runtimeDone says how the function ended; the report can add a timeout the runtime never saw.
    let ending = [inv.runtime_done.as_ref(), inv.report.as_ref()]
        .into_iter()
        .flatten()
        .find(|e| e.status.is_failure())
        .or(inv.runtime_done.as_ref())
        .or(inv.report.as_ref());
    let mut status = Status::default();
    if let Some(ending) = ending {
        attributes.push(str_attr("aws.lambda.status", ending.status.as_str()));
        if ending.status.is_failure() {
            let error_type = ending
                .error_type
                .clone()
                .unwrap_or_else(|| format!("Lambda.{}", ending.status.as_str()));
            attributes.push(str_attr("error.type", &error_type));
            status = Status {
                code: StatusCode::Error as i32,
                message: error_type,
            };
        }
    }
    if inv.runtime_done.is_none() && inv.report.as_ref().is_none_or(|r| r.time.is_none()) {
        // No Telemetry API data: the end is where the function's own spans ended, not the platform's word.
        attributes.push(bool_attr("tracehose.end_estimated", true));
    }

    let name = if function.name.is_empty() {
        "lambda invocation".to_owned()
    } else {
        function.name.clone()
    };
    let mut spans = vec![Span {
        trace_id: trace_id.to_bytes().to_vec(),
        span_id: inv.span_id.to_bytes().to_vec(),
        parent_span_id: inv.parent_id.map(|p| p.to_bytes().to_vec()).unwrap_or_default(),
        name,
        kind: SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        status: Some(status),
        ..Default::default()
    }];

    if inv.coldstart {
        if let Some(span) = init_span(trace_id, inv, init, init_ms, start) {
            spans.push(span);
        }
    }
    for platform in &inv.platform_spans {
        spans.push(child(
            trace_id,
            inv,
            &platform.name,
            platform.start,
            platform.start.saturating_add(platform.duration),
            Vec::new(),
        ));
    }
    spans
}

fn end_time(inv: &Invocation, start: u64) -> u64 {
    let from_duration = |ms: Option<f64>| ms.map(|ms| start.saturating_add(ms_to_nanos(ms)));
    let end = inv
        .runtime_done
        .as_ref()
        .and_then(|e| from_duration(e.duration_ms).or(e.time))
        .or_else(|| {
            inv.report
                .as_ref()
                .and_then(|e| from_duration(e.duration_ms).or(e.time))
        })
        .unwrap_or(inv.last_child_end);
    end.max(start)
}

fn init_span(
    trace_id: TraceId,
    inv: &Invocation,
    init: &Init,
    init_ms: Option<f64>,
    first_start: u64,
) -> Option<Span> {
    let duration = init_ms.map(ms_to_nanos);
    let (start, end) = match (init.start, init.end, duration) {
        (Some(s), _, Some(d)) => (s, s.saturating_add(d)),
        (Some(s), Some(e), None) => (s, e),
        (None, _, Some(d)) => (first_start.saturating_sub(d), first_start),
        _ => return None,
    };
    let mut attributes = Vec::new();
    if let Some(status) = &init.status {
        attributes.push(str_attr("aws.lambda.status", status.as_str()));
    }
    let mut span = child(trace_id, inv, "init", start, end.max(start), attributes);
    if let Some(status) = init.status.as_ref().filter(|s| s.is_failure()) {
        let message = init
            .error_type
            .clone()
            .unwrap_or_else(|| status.as_str().to_owned());
        span.attributes.push(str_attr("error.type", &message));
        span.status = Some(Status {
            code: StatusCode::Error as i32,
            message,
        });
    }
    Some(span)
}

fn child(
    trace_id: TraceId,
    inv: &Invocation,
    name: &str,
    start: u64,
    end: u64,
    attributes: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>,
) -> Span {
    Span {
        trace_id: trace_id.to_bytes().to_vec(),
        span_id: crate::ids::span_id().to_bytes().to_vec(),
        parent_span_id: inv.span_id.to_bytes().to_vec(),
        name: name.to_owned(),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        ..Default::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::invocation::Tracker;
    use crate::otlp::find_str;
    use crate::telemetry::{Event, PlatformSpan, ReportMetrics, Status as RunStatus};

    fn function() -> FunctionInfo {
        FunctionInfo {
            name: "orders".into(),
            version: "$LATEST".into(),
            region: "eu-west-1".into(),
            memory_mb: Some(128),
        }
    }

    #[test]
    fn cold_start_timeout_invocation() {
        let mut t = Tracker::new(true);
        t.on_event(Event::InitStart { time: Some(1_000) });
        t.on_invoke(
            "r1",
            Some("Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32"),
            Some("arn:aws:lambda:eu-west-1:123456789012:function:orders".into()),
            5_000,
        );
        t.on_event(Event::Start {
            time: Some(10_000_000),
            request_id: "r1".into(),
            tracing: None,
        });
        t.on_event(Event::RuntimeDone {
            time: Some(20_000_000),
            request_id: "r1".into(),
            status: RunStatus::Timeout,
            error_type: None,
            duration_ms: Some(3.0),
            spans: vec![PlatformSpan {
                name: "responseLatency".into(),
                start: 10_100_000,
                duration: 1_000_000,
            }],
        });
        t.on_event(Event::Report {
            time: Some(21_000_000),
            request_id: "r1".into(),
            status: RunStatus::Timeout,
            error_type: None,
            metrics: ReportMetrics {
                duration_ms: Some(3.5),
                billed_duration_ms: Some(4),
                memory_size_mb: Some(128),
                max_memory_used_mb: Some(20),
                init_duration_ms: Some(2.0),
            },
            spans: vec![],
        });
        let (done, _) = t.take_complete(false);
        let spans = invocation_spans(&done[0], &t.init, &function());
        assert_eq!(spans.len(), 3);
        let server = &spans[0];
        assert_eq!(server.kind, SpanKind::Server as i32);
        assert_eq!(server.start_time_unix_nano, 10_000_000);
        assert_eq!(server.end_time_unix_nano, 13_000_000);
        assert_eq!(hex(&server.parent_span_id), "2be948a625588e32");
        assert_eq!(hex(&server.trace_id), "5f35ae120c0fec141ab77a00bc047aa2");
        assert_eq!(server.status.as_ref().unwrap().code, StatusCode::Error as i32);
        assert_eq!(find_str(&server.attributes, "error.type"), Some("Lambda.timeout"));
        assert_eq!(
            find_str(&server.attributes, "cloud.account.id"),
            Some("123456789012")
        );
        let init = &spans[1];
        assert_eq!(init.name, "init");
        assert_eq!(
            (init.start_time_unix_nano, init.end_time_unix_nano),
            (1_000, 2_001_000)
        );
        assert_eq!(init.parent_span_id, server.span_id);
        assert_eq!(spans[2].name, "responseLatency");
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
