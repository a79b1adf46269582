//! A small Lambda function instrumented with OpenTelemetry, written to run beside the tracehose extension:
//!
//! - its spans go over OTLP/HTTP (protobuf) to the extension's local receiver, which exports them together
//!   with the invocation span and makes the function's root span a child of it;
//! - it continues the trace of the invocation's X-Ray header, so function spans and invocation span share a
//!   trace, and names its invocation (`faas.invocation_id`) so the extension links even spans of other traces;
//! - every log line carries the Dynatrace `[!dt ...]` marker of the current span, so the forwarder joins each
//!   line to its exact span.
//!
//! The handler sums `items` (numbers) of the event; `{"fail": true}` makes it fail with an error span.

use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt, TraceFlags, TraceState, Tracer,
    TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use serde_json::{json, Value};
use tracehose_tracecontext::{DynatraceMarker, SpanId, TraceId, XrayHeader};

/// The extension's receiver. Set explicitly rather than through `OTEL_EXPORTER_OTLP_ENDPOINT`, which the
/// extension reads for the backend it exports to: the function must talk to the extension, not past it.
const DEFAULT_RECEIVER: &str = "http://127.0.0.1:4318";

fn main() -> Result<(), Error> {
    let receiver = std::env::var("TRACEHOSE_RECEIVER_ENDPOINT").unwrap_or_else(|_| DEFAULT_RECEIVER.into());
    // Built before the async runtime: the blocking HTTP client must not be created inside it.
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", receiver.trim_end_matches('/')))
        .with_timeout(Duration::from_millis(500))
        .build()?;
    let service =
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "tracehose-sample-function".into());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handler_provider = provider.clone();
    let result = runtime.block_on(lambda_runtime::run(service_fn(move |event| {
        let provider = handler_provider.clone();
        async move { handle(event, &provider) }
    })));
    let _ = provider.shutdown();
    result
}

fn handle(event: LambdaEvent<Value>, provider: &SdkTracerProvider) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    let tracer = provider.tracer("tracehose-sample-function");
    let parent = context
        .xray_trace_id
        .as_deref()
        .and_then(remote_parent)
        .unwrap_or_default();
    let span = tracer
        .span_builder("handle order")
        .with_kind(SpanKind::Internal)
        .with_attributes([KeyValue::new("faas.invocation_id", context.request_id.clone())])
        .start_with_context(&tracer, &parent);
    let cx = parent.with_span(span);

    let items: Vec<f64> = payload
        .get("items")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    log(&cx, &format!("received order with {} items", items.len()));
    let total = {
        let mut work = tracer.start_with_context("compute total", &cx);
        work.set_attribute(KeyValue::new("order.items", items.len() as i64));
        let total: f64 = items.iter().sum();
        work.end();
        total
    };
    let failed = payload.get("fail").and_then(Value::as_bool).unwrap_or(false);
    if failed {
        cx.span().set_status(Status::error("the event asked to fail"));
        log(&cx, "failing as asked");
    } else {
        log(&cx, &format!("order total {total}"));
    }
    let trace_id = cx.span().span_context().trace_id().to_string();
    cx.span().end();
    // The sandbox may freeze right after the response: hand the spans to the extension now.
    let _ = provider.force_flush();
    if failed {
        return Err("the event asked to fail".into());
    }
    Ok(json!({ "requestId": context.request_id, "traceId": trace_id, "total": total }))
}

/// The X-Ray header's trace and parent as the remote parent of the function's spans.
fn remote_parent(header: &str) -> Option<Context> {
    let xray = XrayHeader::parse(header)?;
    let parent = xray.parent_id?;
    let flags = if xray.sampled == Some(false) {
        TraceFlags::default()
    } else {
        TraceFlags::SAMPLED
    };
    let span_context = SpanContext::new(
        opentelemetry::trace::TraceId::from_bytes(xray.trace_id.to_bytes()),
        opentelemetry::trace::SpanId::from_bytes(parent.to_bytes()),
        flags,
        true,
        TraceState::default(),
    );
    Some(Context::new().with_remote_span_context(span_context))
}

/// One log line with the marker of the current span.
fn log(cx: &Context, message: &str) {
    let span = cx.span();
    let sc = span.span_context();
    let marker = TraceId::from_bytes(sc.trace_id().to_bytes()).map(|trace_id| DynatraceMarker {
        trace_id,
        span_id: SpanId::from_bytes(sc.span_id().to_bytes()),
    });
    match marker {
        Some(marker) => println!("{marker} {message}"),
        None => println!("{message}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn continues_the_xray_trace() {
        let cx = remote_parent("Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1")
            .unwrap();
        let span = cx.span();
        let sc = span.span_context();
        assert_eq!(sc.trace_id().to_string(), "5f35ae120c0fec141ab77a00bc047aa2");
        assert_eq!(sc.span_id().to_string(), "2be948a625588e32");
        assert!(sc.is_sampled() && sc.is_remote());
        assert!(remote_parent("Root=1-5f35ae12-0c0fec141ab77a00bc047aa2").is_none());
        assert!(remote_parent("garbage").is_none());
    }
}
