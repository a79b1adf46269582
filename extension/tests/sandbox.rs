//! The real extension binary in the emulated sandbox: a cold start, invocations with and without X-Ray
//! context, function spans (protobuf and JSON), an error, a timeout, hostile telemetry, telemetry in any order,
//! both destinations and a shutdown; exported spans are decoded with the OTLP protobuf types and checked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod emulator;

use std::time::Duration;

use emulator::hex;
use emulator::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};
use prost::Message;
use serde_json::json;
use tracehose_tracecontext::parse_invocation_marker;

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
        "otlp_requests_rejected=1",
        "spans_received=3",
    ] {
        assert!(stderr.contains(counted), "{counted}: {stderr}");
    }
}

#[tokio::test]
async fn telemetry_in_any_order_and_both_destinations() {
    let backend = Backend::start().await;
    let url = backend.url.clone();
    let mut sb = Sandbox::start(
        backend.clone(),
        options(&[
            ("TRACEHOSE_OTLP_RECEIVER_DISABLED", "1"),
            ("TRACEHOSE_FLUSH_STRATEGY", "end"),
            ("DT_CONNECTION_BASE_URL", &url),
            ("DT_CONNECTION_AUTH_TOKEN", "dt0c01.sample-token"),
        ]),
    )
    .await;
    sb.ready().await;
    let start_ms = epoch_ms();
    // Everything about the invocation arrives before its INVOKE is even handled, newest first.
    sb.telemetry(json!([
        report("late", start_ms, 20, "failure", None),
        runtime_done("late", start_ms, 20, "failure", Some("Runtime.ExitError")),
        platform_start("late", start_ms, Some(XRAY)),
    ]))
    .await;
    sb.invoke("late", Some(XRAY), Duration::from_secs(3));
    sb.wait_next_call(2, Duration::from_secs(5)).await.expect("next");
    sb.shutdown("spindown", Duration::from_millis(2000));
    assert!(sb
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("exits")
        .0
        .success());

    let markers: Vec<String> = sb.stdout();
    assert_eq!(markers.len(), 1, "{markers:?}");
    assert!(markers[0].starts_with(&format!("[!dt dt.trace_id={XRAY_TRACE},")));

    let dynatrace = backend.recorded("/api/v2/otlp/v1/traces");
    assert!(!dynatrace.is_empty(), "nothing sent to the Dynatrace OTLP path");
    for request in &dynatrace {
        assert_eq!(
            request.headers.get("authorization").map(String::as_str),
            Some("Api-Token dt0c01.sample-token")
        );
        assert_eq!(
            request.headers.get("content-type").map(String::as_str),
            Some("application/x-protobuf")
        );
    }
    let otlp = backend.spans();
    let server = otlp
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .expect("server span");
    assert_eq!(hex(&server.trace_id), XRAY_TRACE);
    assert_eq!(server.start_time_unix_nano, start_ms * 1_000_000);
    assert_eq!(server.end_time_unix_nano, (start_ms + 20) * 1_000_000);
    assert_eq!(
        str_attr(server, "error.type").as_deref(),
        Some("Runtime.ExitError")
    );
    assert!(
        !sb.stderr().join("\n").contains("sample-token"),
        "the token must never be printed"
    );
}

#[tokio::test]
async fn the_dynatrace_token_comes_from_secrets_manager_with_a_signed_request() {
    let backend = Backend::start().await;
    let secrets = SecretsManager::start("dt0c01.from-the-secret").await;
    let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tracehose/dt-token-AbCdEf";
    let url = backend.url.clone();
    let mut sb = Sandbox::start(
        backend.clone(),
        options(&[
            ("TRACEHOSE_OTLP_RECEIVER_DISABLED", "1"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
            ("DT_CONNECTION_BASE_URL", &url),
            ("DT_CONNECTION_AUTH_TOKEN_SECRET_ARN", arn),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &secrets.url),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            (
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            ),
            ("AWS_SESSION_TOKEN", "session-token"),
        ]),
    )
    .await;
    sb.ready().await;
    invocation(&sb, 2, "with-secret", None, "success", None, None, None).await;
    sb.shutdown("spindown", Duration::from_millis(2000));
    assert!(sb
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("exits")
        .0
        .success());

    let asked = secrets.recorded();
    assert_eq!(asked.len(), 1, "read once at start");
    let request = &asked[0];
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&request.body).unwrap(),
        json!({ "SecretId": arn })
    );
    let header = |name: &str| request.headers.get(name).cloned().unwrap_or_default();
    assert_eq!(header("x-amz-target"), "secretsmanager.GetSecretValue");
    assert_eq!(header("x-amz-security-token"), "session-token");
    // Verify the signature as the service would: from the headers that actually arrived.
    let signed_names = [
        "content-type",
        "host",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-target",
    ];
    let received: Vec<(String, String)> = signed_names.iter().map(|n| (n.to_string(), header(n))).collect();
    let (canonical, signed) = tracehose_extension::sigv4::canonical_request(
        "POST",
        "/",
        "",
        &received,
        &tracehose_extension::sigv4::sha256_hex(&request.body),
    );
    let credentials = tracehose_extension::sigv4::Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    };
    let expected = tracehose_extension::sigv4::authorization(
        &credentials,
        &header("x-amz-date"),
        "eu-west-1",
        "secretsmanager",
        &canonical,
        &signed,
    );
    assert_eq!(header("authorization"), expected);

    let exports = backend.recorded("/api/v2/otlp/v1/traces");
    assert!(!exports.is_empty());
    assert!(exports
        .iter()
        .all(|r| r.headers.get("authorization").map(String::as_str)
            == Some("Api-Token dt0c01.from-the-secret")));
    let output = format!("{:?}{:?}", sb.stdout(), sb.stderr());
    assert!(!output.contains("from-the-secret"), "secrets never printed");
}
