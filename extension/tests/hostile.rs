//! The real extension binary in the emulated sandbox against hostile input on its local OTLP receiver: bodies
//! that cost far more to decode than their size, bodies too large, bodies that never finish, and extreme
//! configuration values. Each must be answered with a clear status, counted, and leave the extension working.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod emulator;

use std::time::Duration;

use emulator::*;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The receiver's per-request span budget (`receiver::BUDGET`).
const MAX_SPANS: usize = 4096;

fn empty_spans(n: usize) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span::default(); n],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn post(port: u16, body: Vec<u8>, content_type: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/traces"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("an answer, not a reset connection")
}

#[tokio::test]
async fn hostile_receiver_bodies_are_bounded_answered_and_counted() {
    let receiver = free_port();
    let (backend, mut sb) = start_ready(
        HEALTHY,
        &[
            ("TRACEHOSE_OTLP_RECEIVER_PORT", &receiver.to_string()),
            ("TRACEHOSE_FLUSH_STRATEGY", "end"),
            // Extreme values: refused by name, the defaults run instead.
            ("TRACEHOSE_BUFFER_BYTES", "0"),
            ("TRACEHOSE_FLUSH_INTERVAL_MS", "0"),
            ("TRACEHOSE_FLUSH_TIMEOUT_MS", "18446744073709551615"),
        ],
    )
    .await;

    // 1 MiB of two-byte empty spans: the first MAX_SPANS are taken, the rest refused with partial success.
    let flood = empty_spans(512 * 1024).encode_to_vec();
    assert!(flood.len() > 1024 * 1024);
    let response = post(receiver, flood, "application/x-protobuf").await;
    assert_eq!(response.status().as_u16(), 200);
    let answer = ExportTraceServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    let partial = answer.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, (512 * 1024 - MAX_SPANS) as i64);
    assert!(
        partial.error_message.contains("4096 spans"),
        "{}",
        partial.error_message
    );

    // The same flood as OTLP/JSON is refused whole before it is parsed.
    let spans = vec!["{}"; 512 * 1024].join(",");
    let json = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{spans}]}}]}}]}}"#);
    let response = post(receiver, json.into_bytes(), "application/json").await;
    assert_eq!(response.status().as_u16(), 413);

    // A body over the 4 MiB cap gets 413, read by the client, not a reset.
    let response = post(receiver, vec![0x0a; 5 * 1024 * 1024], "application/x-protobuf").await;
    assert_eq!(response.status().as_u16(), 413);

    // A body that never finishes is answered at the body deadline and its connection freed.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", receiver))
        .await
        .unwrap();
    stream
        .write_all(b"POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-length: 4194304\r\n\r\n\x0a\x00")
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // Still serving: an ordinary invocation with an ordinary function span goes through.
    let span = Span {
        trace_id: vec![7; 16],
        span_id: vec![8; 8],
        name: "after-the-storm".into(),
        start_time_unix_nano: 1,
        end_time_unix_nano: 2,
        ..Default::default()
    };
    let body = function_request(vec![span]).encode_to_vec();
    let function = Some((receiver, body, "application/x-protobuf"));
    invocation(&sb, 2, "r-1", None, "success", None, None, function).await;
    sb.shutdown("spindown", Duration::from_millis(2000));
    let (status, _) = sb.wait_exit(Duration::from_secs(5)).await.expect("exits");
    assert!(status.success(), "stderr: {:?}", sb.stderr());

    let spans = backend.spans();
    assert!(spans.iter().any(|s| s.name == "after-the-storm"));
    let stderr = sb.stderr().join("\n");
    for named in [
        "TRACEHOSE_BUFFER_BYTES",
        "TRACEHOSE_FLUSH_INTERVAL_MS",
        "TRACEHOSE_FLUSH_TIMEOUT_MS",
    ] {
        assert!(
            stderr.contains(&format!("configuration: {named}")),
            "{named}: {stderr}"
        );
    }
    for counted in [
        format!("spans_rejected={}", 512 * 1024 - MAX_SPANS),
        "otlp_requests_rejected=3".to_owned(),
    ] {
        assert!(stderr.contains(&counted), "{counted}: {stderr}");
    }
}
