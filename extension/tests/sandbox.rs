//! The real extension binary in the emulated sandbox: a cold start, several invocations (with and without
//! X-Ray context, with function spans, an error and a timeout), hostile telemetry, a backend outage, logs
//! shipping, a sandbox without the Telemetry API, and shutdowns; exported spans are decoded with the OTLP
//! protobuf types and checked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod emulator;

use std::time::{Duration, Instant};

use emulator::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{
    span::SpanKind, status::StatusCode, ResourceSpans, ScopeSpans, Span,
};
use prost::Message;
use serde_json::json;
use tracehose_tracecontext::parse_invocation_marker;

const XRAY: &str = "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1";
const XRAY_TRACE: &str = "5f35ae120c0fec141ab77a00bc047aa2";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a AnyValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn str_attr(span: &Span, key: &str) -> Option<String> {
    match attr(span, key)? {
        AnyValue::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn int_attr(span: &Span, key: &str) -> Option<i64> {
    match attr(span, key)? {
        AnyValue::IntValue(v) => Some(*v),
        _ => None,
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
            value: Some(AnyValue::StringValue(value.into())),
        }),
    }
}

fn options(env: &[(&str, &str)]) -> Options {
    Options {
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        refuse_telemetry: false,
    }
}

async fn wait_marker(sb: &Sandbox, request_id: &str) -> (String, String) {
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
async fn invocation(
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

fn function_request(spans: Vec<Span>) -> ExportTraceServiceRequest {
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

#[tokio::test]
async fn cold_start_invocations_function_spans_and_shutdown() {
    let backend = Backend::start().await;
    let receiver = free_port();
    let port = receiver.to_string();
    let mut sb = Sandbox::start(
        backend.clone(),
        options(&[
            ("TRACEHOSE_OTLP_RECEIVER_PORT", &port),
            ("TRACEHOSE_FLUSH_STRATEGY", "end"),
        ]),
    )
    .await;
    sb.ready().await;

    let (name, events) = sb.registration();
    assert_eq!(name, "tracehose-extension");
    assert_eq!(events, json!({"events": ["INVOKE", "SHUTDOWN"]}));
    let sub = sb.subscription();
    assert_eq!(sub["types"], json!(["platform"]));
    assert_eq!(sub["schemaVersion"], "2022-12-13");
    assert_eq!(sub["buffering"]["timeoutMs"], 25);
    assert!(sub["destination"]["URI"]
        .as_str()
        .unwrap()
        .starts_with("http://sandbox.localdomain:"));

    // Init telemetry, plus batches the listener must swallow with a 200.
    let init_start = epoch_ms() - 300;
    sb.telemetry(json!([
        {"time": rfc3339(init_start), "type": "platform.initStart", "record": {"initializationType": "on-demand", "phase": "init"}},
        {"time": rfc3339(init_start + 250), "type": "platform.initRuntimeDone", "record": {"initializationType": "on-demand", "phase": "init", "status": "success"}},
        {"time": rfc3339(init_start + 251), "type": "platform.brandNewThing", "record": {"x": 1}},
        {"time": rfc3339(init_start + 251), "type": "function", "record": "a log line nobody subscribed to"}
    ]))
    .await;
    assert_eq!(sb.post_telemetry_raw("{not json").await, 200);
    assert_eq!(sb.post_telemetry_raw(vec![b'['; 3 * 1024 * 1024]).await, 200);
    assert_eq!(
        sb.post_telemetry_raw("[{\"type\":\"platform.start\",\"record\":{\"requestId\":7}}]")
            .await,
        200
    );

    // 1: cold start with X-Ray context and function spans in protobuf, one of them the function's root.
    let trace = hex::decode(XRAY_TRACE);
    let root = Span {
        trace_id: trace.clone(),
        span_id: vec![0x11; 8],
        parent_span_id: hex::decode("2be948a625588e32"),
        name: "handler".into(),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: 1,
        end_time_unix_nano: 2,
        ..Default::default()
    };
    let inner = Span {
        span_id: vec![0x22; 8],
        parent_span_id: vec![0x11; 8],
        name: "db".into(),
        ..root.clone()
    };
    let body = function_request(vec![root, inner]).encode_to_vec();
    invocation(
        &sb,
        2,
        "r-1",
        Some(XRAY),
        "success",
        None,
        Some(251.5),
        Some((receiver, body, "application/x-protobuf")),
    )
    .await;

    // 2: no X-Ray context, an error, and a JSON span of another trace naming the invocation.
    let json_body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "00f067aa0ba902b7", "name": "json-span",
        "kind": 1, "startTimeUnixNano": "1", "endTimeUnixNano": "2",
        "attributes": [{"key": "faas.invocation_id", "value": {"stringValue": "r-2"}}]}]}]}]});
    invocation(
        &sb,
        3,
        "r-2",
        None,
        "error",
        Some("Runtime.Handled"),
        None,
        Some((receiver, json_body.to_string().into_bytes(), "application/json")),
    )
    .await;
    // 3: a timeout.
    invocation(&sb, 4, "r-3", None, "timeout", None, None, None).await;
    // The receiver refuses what it cannot decode, and stays up.
    assert_eq!(
        sb.function_spans(receiver, b"\xff\xff".to_vec(), "application/x-protobuf")
            .await,
        400
    );

    sb.shutdown("spindown", Duration::from_millis(2000));
    let (status, took) = sb
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("exits at shutdown");
    assert!(status.success(), "stderr: {:?}", sb.stderr());
    assert!(took < Duration::from_millis(2000), "{took:?}");

    // Markers: exactly one per invocation, and they name the exported server spans.
    let markers: Vec<_> = sb
        .stdout()
        .iter()
        .filter_map(|l| {
            parse_invocation_marker(l).map(|m| {
                (
                    m.request_id.to_owned(),
                    m.trace_id.to_string(),
                    m.span_id.unwrap().to_string(),
                )
            })
        })
        .collect();
    assert_eq!(markers.len(), 3, "{:?}", sb.stdout());
    assert_eq!(sb.stdout().len(), 3, "stdout carries only marker lines");

    let spans = backend.spans();
    let server = |id: &str| {
        spans
            .iter()
            .find(|s| {
                s.kind == SpanKind::Server as i32 && str_attr(s, "faas.invocation_id").as_deref() == Some(id)
            })
            .unwrap_or_else(|| panic!("no server span for {id}: {spans:#?}"))
    };
    for (id, trace, span) in &markers {
        let s = server(id);
        assert_eq!(&hex(&s.trace_id), trace);
        assert_eq!(&hex(&s.span_id), span);
    }

    let s1 = server("r-1");
    assert_eq!(hex(&s1.trace_id), XRAY_TRACE);
    assert_eq!(hex(&s1.parent_span_id), "2be948a625588e32");
    assert_eq!(attr(s1, "faas.coldstart"), Some(&AnyValue::BoolValue(true)));
    assert_eq!(str_attr(s1, "faas.name").as_deref(), Some("orders"));
    assert_eq!(str_attr(s1, "faas.version").as_deref(), Some("$LATEST"));
    assert_eq!(str_attr(s1, "cloud.region").as_deref(), Some("eu-west-1"));
    assert_eq!(str_attr(s1, "cloud.account.id").as_deref(), Some("123456789012"));
    assert_eq!(int_attr(s1, "aws.lambda.billed_duration_ms"), Some(21));
    assert_eq!(int_attr(s1, "aws.lambda.max_memory_used_mb"), Some(31));
    assert_eq!(int_attr(s1, "aws.lambda.memory_size_mb"), Some(128));
    assert_eq!(
        attr(s1, "aws.lambda.init_duration_ms"),
        Some(&AnyValue::DoubleValue(251.5))
    );
    assert_eq!(s1.end_time_unix_nano - s1.start_time_unix_nano, 20_000_000);
    assert_eq!(
        s1.status.as_ref().map(|s| s.code).unwrap_or(0),
        StatusCode::Unset as i32
    );
    let children: Vec<&Span> = spans.iter().filter(|s| s.parent_span_id == s1.span_id).collect();
    let names: Vec<&str> = children.iter().map(|s| s.name.as_str()).collect();
    for expected in [
        "init",
        "responseLatency",
        "responseDuration",
        "extensionOverhead",
        "handler",
    ] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    let init = children.iter().find(|s| s.name == "init").unwrap();
    assert_eq!(init.start_time_unix_nano, init_start * 1_000_000);
    assert_eq!(init.end_time_unix_nano - init.start_time_unix_nano, 251_500_000);
    assert!(init.end_time_unix_nano <= s1.start_time_unix_nano);
    let db = spans.iter().find(|s| s.name == "db").unwrap();
    assert_eq!(
        db.parent_span_id,
        vec![0x11; 8],
        "inner function spans keep their parent"
    );

    let s2 = server("r-2");
    assert_eq!(attr(s2, "faas.coldstart"), Some(&AnyValue::BoolValue(false)));
    assert_ne!(hex(&s2.trace_id), XRAY_TRACE);
    assert!(s2.parent_span_id.is_empty());
    let status = s2.status.as_ref().unwrap();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.message, "Runtime.Handled");
    assert_eq!(str_attr(s2, "error.type").as_deref(), Some("Runtime.Handled"));
    let json_span = spans.iter().find(|s| s.name == "json-span").unwrap();
    assert_eq!(json_span.links.len(), 1);
    assert_eq!(json_span.links[0].span_id, s2.span_id);
    assert_eq!(json_span.links[0].trace_id, s2.trace_id);

    let s3 = server("r-3");
    assert_eq!(s3.status.as_ref().unwrap().code, StatusCode::Error as i32);
    assert_eq!(str_attr(s3, "aws.lambda.status").as_deref(), Some("timeout"));
    assert_eq!(str_attr(s3, "error.type").as_deref(), Some("Lambda.timeout"));

    // Resources: ours carries the function's identity, the function's own resource is kept as sent.
    let requests = backend.trace_requests();
    let resources: Vec<_> = requests
        .iter()
        .flat_map(|r| r.resource_spans.iter())
        .filter_map(|rs| rs.resource.as_ref())
        .collect();
    assert!(resources
        .iter()
        .any(|r| r.attributes.contains(&kv("service.name", "orders"))
            && r.attributes.contains(&kv("cloud.platform", "aws_lambda"))));
    assert!(resources
        .iter()
        .any(|r| r.attributes.contains(&kv("service.name", "orders-fn"))));
    let recorded = backend.recorded("/v1/traces");
    assert!(recorded
        .iter()
        .all(|r| r.headers.get("content-encoding").map(String::as_str) == Some("gzip")));
    let stderr = sb.stderr().join("\n");
    for counted in [
        "telemetry_unparseable=1",
        "telemetry_oversize=1",
        "telemetry_items_unusable=1",
        "spans_rejected=1",
        "spans_received=3",
    ] {
        assert!(stderr.contains(counted), "{counted}: {stderr}");
    }
}

#[tokio::test]
async fn a_backend_outage_never_holds_the_invocation_and_data_is_kept_for_later() {
    let backend = Backend::start().await;
    backend.set_mode(HANGING);
    let mut sb = Sandbox::start(
        backend.clone(),
        options(&[
            ("TRACEHOSE_OTLP_RECEIVER_DISABLED", "true"),
            ("TRACEHOSE_FLUSH_STRATEGY", "end"),
            ("TRACEHOSE_FLUSH_TIMEOUT_MS", "80"),
        ]),
    )
    .await;
    sb.ready().await;
    let mut worst = Duration::ZERO;
    for i in 0..6 {
        let added = invocation(&sb, i + 2, &format!("r-{i}"), None, "success", None, None, None).await;
        worst = worst.max(added);
    }
    // Functional bound only (the benchmark measures): the hang must never reach the invocation's timeout.
    assert!(worst < Duration::from_secs(1), "{worst:?}");
    assert!(backend.attempts.load(std::sync::atomic::Ordering::SeqCst) >= 1);

    backend.set_mode(HEALTHY);
    sb.shutdown("spindown", Duration::from_millis(2000));
    let (status, took) = sb
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("exits at shutdown");
    assert!(status.success());
    assert!(took < Duration::from_millis(2000), "{took:?}");
    let mut ids: Vec<String> = backend
        .spans()
        .iter()
        .filter_map(|s| str_attr(s, "faas.invocation_id"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids,
        (0..6).map(|i| format!("r-{i}")).collect::<Vec<_>>(),
        "queued spans delivered once the backend is back"
    );
    let stderr = sb.stderr().join("\n");
    assert!(stderr.contains("export: otlp: unavailable"), "{stderr}");
}

#[tokio::test]
async fn shutdown_with_a_hanging_backend_stays_within_the_deadline_and_reports_losses() {
    let backend = Backend::start().await;
    backend.set_mode(HANGING);
    let mut sb = Sandbox::start(
        backend.clone(),
        options(&[
            ("TRACEHOSE_OTLP_RECEIVER_DISABLED", "1"),
            ("TRACEHOSE_FLUSH_STRATEGY", "end"),
        ]),
    )
    .await;
    sb.ready().await;
    invocation(&sb, 2, "only", None, "success", None, None, None).await;
    sb.shutdown("timeout", Duration::from_millis(1000));
    let (status, took) = sb
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("exits at shutdown");
    assert!(status.success());
    assert!(took < Duration::from_millis(1000), "{took:?}");
    let stderr = sb.stderr().join("\n");
    assert!(stderr.contains("payloads_undelivered=1"), "{stderr}");
}

#[tokio::test]
async fn periodic_mode_calls_next_at_once_and_ships_logs_with_trace_ids() {
    let backend = Backend::start().await;
    let mut sb = Sandbox::start(
        backend.clone(),
        options(&[
            ("TRACEHOSE_OTLP_RECEIVER_DISABLED", "1"),
            ("TRACEHOSE_FLUSH_STRATEGY", "periodic"),
            ("TRACEHOSE_SHIP_LOGS", "true"),
        ]),
    )
    .await;
    sb.ready().await;
    assert_eq!(sb.subscription()["types"], json!(["platform", "function"]));

    let start_ms = epoch_ms();
    sb.invoke("p-1", Some(XRAY), Duration::from_secs(3));
    // Periodic mode: next is called again before the runtime is done.
    sb.wait_next_call(2, Duration::from_secs(5))
        .await
        .expect("next without waiting for runtimeDone");
    let marked =
        "[!dt dt.trace_id=0af7651916cd43dd8448eb211c80319c,dt.span_id=00f067aa0ba902b7] with its own marker";
    sb.telemetry(json!([
        platform_start("p-1", start_ms, Some(XRAY)),
        {"time": rfc3339(start_ms + 1), "type": "function", "record": "plain text line\n"},
        {"time": rfc3339(start_ms + 2), "type": "function", "record": {"timestamp": rfc3339(start_ms + 2), "level": "ERROR", "requestId": "p-1", "message": "json line"}},
        {"time": rfc3339(start_ms + 3), "type": "function", "record": marked},
        runtime_done("p-1", start_ms, 20, "success", None),
        report("p-1", start_ms, 20, "success", None),
    ]))
    .await;
    sb.shutdown("spindown", Duration::from_millis(2000));
    let (status, _) = sb.wait_exit(Duration::from_secs(5)).await.expect("exits");
    assert!(status.success());

    let (trace, span) = (XRAY_TRACE.to_owned(), wait_marker(&sb, "p-1").await.1);
    let logs = backend.logs();
    assert_eq!(logs.len(), 3, "{logs:#?}");
    let body = |l: &opentelemetry_proto::tonic::logs::v1::LogRecord| match l
        .body
        .as_ref()
        .and_then(|b| b.value.as_ref())
    {
        Some(AnyValue::StringValue(s)) => s.clone(),
        _ => String::new(),
    };
    let plain = logs.iter().find(|l| body(l) == "plain text line").unwrap();
    assert_eq!(
        (hex(&plain.trace_id), hex(&plain.span_id)),
        (trace.clone(), span.clone())
    );
    let json_line = logs.iter().find(|l| body(l) == "json line").unwrap();
    assert_eq!(json_line.severity_text, "ERROR");
    assert_eq!(hex(&json_line.trace_id), trace);
    let own = logs.iter().find(|l| body(l) == marked).unwrap();
    assert_eq!(hex(&own.trace_id), "0af7651916cd43dd8448eb211c80319c");
    assert!(backend
        .spans()
        .iter()
        .any(|s| str_attr(s, "faas.invocation_id").as_deref() == Some("p-1")));
}

#[tokio::test]
async fn without_the_telemetry_api_it_still_marks_links_and_exports() {
    let backend = Backend::start().await;
    let receiver = free_port();
    let port = receiver.to_string();
    let mut sb = Sandbox::start(
        backend.clone(),
        Options {
            env: vec![("TRACEHOSE_OTLP_RECEIVER_PORT".into(), port)],
            refuse_telemetry: true,
        },
    )
    .await;
    sb.ready().await;
    sb.invoke("n-1", Some(XRAY), Duration::from_secs(3));
    wait_marker(&sb, "n-1").await;
    let span = Span {
        trace_id: hex::decode(XRAY_TRACE),
        span_id: vec![0x33; 8],
        name: "work".into(),
        start_time_unix_nano: 10,
        end_time_unix_nano: 5_000_000_000,
        ..Default::default()
    };
    assert_eq!(
        sb.function_spans(
            receiver,
            function_request(vec![span]).encode_to_vec(),
            "application/x-protobuf"
        )
        .await,
        200
    );
    sb.wait_next_call(2, Duration::from_secs(5))
        .await
        .expect("next without telemetry");
    sb.shutdown("spindown", Duration::from_millis(2000));
    let (status, _) = sb.wait_exit(Duration::from_secs(5)).await.expect("exits");
    assert!(status.success());
    let spans = backend.spans();
    let server = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .expect("server span");
    assert_eq!(hex(&server.trace_id), XRAY_TRACE);
    assert_eq!(
        server.end_time_unix_nano,
        5_000_000_000.max(server.start_time_unix_nano)
    );
    assert_eq!(
        attr(server, "tracehose.end_estimated"),
        Some(&AnyValue::BoolValue(true))
    );
    let work = spans.iter().find(|s| s.name == "work").unwrap();
    assert_eq!(work.parent_span_id, server.span_id);
    assert!(sb.stderr().join("\n").contains("Telemetry API unavailable"));
}

mod hex {
    pub fn decode(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn a_subscription_that_never_delivers_does_not_hold_invocations_until_their_deadline() {
    let backend = Backend::start().await;
    let mut sb = Sandbox::start(
        backend.clone(),
        options(&[
            ("TRACEHOSE_OTLP_RECEIVER_DISABLED", "1"),
            ("TRACEHOSE_FLUSH_STRATEGY", "end"),
        ]),
    )
    .await;
    sb.ready().await;
    let sent = Instant::now();
    sb.invoke("silent-1", None, Duration::from_secs(30));
    let next = sb.wait_next_call(2, Duration::from_secs(10)).await;
    let next = next.unwrap_or_else(|| panic!("no next; stderr {:?} stdout {:?}", sb.stderr(), sb.stdout()));
    assert!(next - sent < Duration::from_secs(5), "held for {:?}", next - sent);
    sb.shutdown("spindown", Duration::from_millis(2000));
    assert!(sb
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("exits")
        .0
        .success());
    assert!(backend
        .spans()
        .iter()
        .any(|s| str_attr(s, "faas.invocation_id").as_deref() == Some("silent-1")));
}
