//! Helpers shared by the sandbox tests: driving one invocation as Lambda does, finding markers, reading
//! attributes of decoded spans.

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use serde_json::json;
use tracehose_tracecontext::parse_invocation_marker;

use super::*;

pub const XRAY: &str = "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1";
pub const XRAY_TRACE: &str = "5f35ae120c0fec141ab77a00bc047aa2";

/// A backend answering in `mode`, and a sandbox running the extension with `env`, registered and subscribed.
pub async fn start_ready(mode: u8, env: &[(&str, &str)]) -> (Backend, Sandbox) {
    let backend = Backend::start().await;
    backend.set_mode(mode);
    let sb = Sandbox::start(backend.clone(), options(env)).await;
    sb.ready().await;
    (backend, sb)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a AnyValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

pub fn str_attr(span: &Span, key: &str) -> Option<String> {
    match attr(span, key)? {
        AnyValue::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

pub fn int_attr(span: &Span, key: &str) -> Option<i64> {
    match attr(span, key)? {
        AnyValue::IntValue(v) => Some(*v),
        _ => None,
    }
}

pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
            value: Some(AnyValue::StringValue(value.into())),
        }),
    }
}

pub fn options(env: &[(&str, &str)]) -> Options {
    Options {
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        refuse_telemetry: false,
    }
}

pub async fn wait_marker(sb: &Sandbox, request_id: &str) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for line in sb.stdout() {
            if let Some(m) = parse_invocation_marker(&line) {
                if m.request_id == request_id {
                    return (m.trace_id.to_string(), m.span_id.unwrap().to_string());
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no marker for {request_id}; stdout {:?}",
            sb.stdout()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One invocation as Lambda runs it; returns the time the extension added after `runtimeDone`.
#[allow(clippy::too_many_arguments)]
pub async fn invocation(
    sb: &Sandbox,
    next_index: usize,
    request_id: &str,
    tracing: Option<&str>,
    status: &str,
    error_type: Option<&str>,
    init_ms: Option<f64>,
    function: Option<(u16, Vec<u8>, &str)>,
) -> Duration {
    let start_ms = epoch_ms();
    sb.invoke(request_id, tracing, Duration::from_secs(3));
    sb.telemetry(json!([platform_start(request_id, start_ms, tracing)]))
        .await;
    wait_marker(sb, request_id).await;
    if let Some((port, body, content_type)) = function {
        assert_eq!(sb.function_spans(port, body, content_type).await, 200);
    }
    let sent = Instant::now();
    sb.telemetry(json!([runtime_done(
        request_id, start_ms, 20, status, error_type
    )]))
    .await;
    let next = sb
        .wait_next_call(next_index, Duration::from_secs(10))
        .await
        .expect("extension called next");
    sb.telemetry(json!([report(request_id, start_ms, 20, status, init_ms)]))
        .await;
    next.saturating_duration_since(sent)
}

pub fn function_request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                attributes: vec![kv("service.name", "orders-fn")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub mod hex {
    pub fn decode(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
