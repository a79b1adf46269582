//! The real extension binary in the emulated sandbox when things go wrong or run differently: a backend that
//! hangs, a shutdown that cannot deliver, periodic flushing with logs shipping, and sandboxes whose Telemetry API
//! is missing or silent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod emulator;

use std::time::{Duration, Instant};

use emulator::hex;
use emulator::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, Span};
use prost::Message;
use serde_json::json;

#[tokio::test]
async fn a_backend_outage_never_holds_the_invocation_and_data_is_kept_for_later() {
    let (backend, mut sb) = start_ready(
        HANGING,
        &[
            ("TRACEHOSE_OTLP_RECEIVER_DISABLED", "true"),
            ("TRACEHOSE_FLUSH_STRATEGY", "end"),
            ("TRACEHOSE_FLUSH_TIMEOUT_MS", "80"),
        ],
    )
    .await;
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
    let (_backend, mut sb) = start_ready(
        HANGING,
        &[
            ("TRACEHOSE_OTLP_RECEIVER_DISABLED", "1"),
            ("TRACEHOSE_FLUSH_STRATEGY", "end"),
        ],
    )
    .await;
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
    let (backend, mut sb) = start_ready(
        HEALTHY,
        &[
            ("TRACEHOSE_OTLP_RECEIVER_DISABLED", "1"),
            ("TRACEHOSE_FLUSH_STRATEGY", "periodic"),
            ("TRACEHOSE_SHIP_LOGS", "true"),
        ],
    )
    .await;
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

#[tokio::test]
async fn a_subscription_that_never_delivers_does_not_hold_invocations_until_their_deadline() {
    let (backend, mut sb) = start_ready(
        HEALTHY,
        &[
            ("TRACEHOSE_OTLP_RECEIVER_DISABLED", "1"),
            ("TRACEHOSE_FLUSH_STRATEGY", "end"),
        ],
    )
    .await;
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

#[tokio::test]
async fn auto_mode_switches_to_background_flushing_when_invocations_come_often() {
    let (backend, mut sb) = start_ready(
        HEALTHY,
        &[
            ("TRACEHOSE_OTLP_RECEIVER_DISABLED", "1"),
            ("TRACEHOSE_FLUSH_STRATEGY", "auto"),
        ],
    )
    .await;
    for i in 0..10 {
        invocation(
            &sb,
            i + 2,
            &format!("busy-{i}"),
            None,
            "success",
            None,
            None,
            None,
        )
        .await;
    }
    // The eleventh comes within the window: the extension no longer waits for runtimeDone.
    sb.invoke("busy-10", None, Duration::from_secs(30));
    sb.wait_next_call(12, Duration::from_secs(5))
        .await
        .expect("next called before runtimeDone in periodic mode");
    sb.shutdown("spindown", Duration::from_millis(2000));
    assert!(sb
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("exits")
        .0
        .success());
    let mut ids: Vec<String> = backend
        .spans()
        .iter()
        .filter_map(|s| str_attr(s, "faas.invocation_id"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 11, "{ids:?}");
}

#[tokio::test]
async fn the_flush_never_runs_past_the_invocation_deadline() {
    // A generous flush budget: only the invocation's deadline can cut this flush short.
    let (backend, mut sb) = start_ready(
        HANGING,
        &[
            ("TRACEHOSE_OTLP_RECEIVER_DISABLED", "1"),
            ("TRACEHOSE_FLUSH_STRATEGY", "end"),
            ("TRACEHOSE_FLUSH_TIMEOUT_MS", "3000"),
        ],
    )
    .await;
    // Before any export has failed: no back-off yet, the next flush really goes to the hanging backend.
    sb.telemetry(json!([report("previous", epoch_ms(), 20, "success", None)]))
        .await;

    let invoked = Instant::now();
    let start_ms = epoch_ms();
    sb.invoke("short", None, Duration::from_millis(600));
    sb.telemetry(json!([platform_start("short", start_ms, None)]))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    sb.telemetry(json!([runtime_done("short", start_ms, 300, "success", None)]))
        .await;
    let next = sb.wait_next_call(2, Duration::from_secs(10)).await.expect("next");
    assert!(
        next - invoked < Duration::from_millis(1500),
        "flush ran past the deadline: {:?}",
        next - invoked
    );
    assert!(
        backend.attempts.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the flush did try to send"
    );
    sb.shutdown("spindown", Duration::from_millis(500));
    assert!(sb
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("exits")
        .0
        .success());
}
