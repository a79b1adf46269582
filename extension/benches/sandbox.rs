//! The figures behind the limits, measured on the real binary in the sandbox emulator:
//! start-up to registered and subscribed, time added to an invocation after `runtimeDone` (healthy backend,
//! no backend, hanging backend), and resident memory over 1,000 invocations. Each figure comes with a baseline
//! measured in the same run. Run with `cargo bench -p tracehose-extension --bench sandbox`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/emulator/mod.rs"]
mod emulator;

use std::time::{Duration, Instant};

use emulator::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn summary(label: &str, mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let (median, p99, max) = (
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        *samples.last().unwrap(),
    );
    println!(
        "{label:<58} n={:<5} median={:>9.3} ms  p99={:>9.3} ms  max={:>9.3} ms",
        samples.len(),
        median.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
    (median, p99)
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn function_body(i: usize) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![7; 16],
                    span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                    name: "handler".into(),
                    start_time_unix_nano: 1,
                    end_time_unix_nano: 2,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// Runs `count` invocations; returns the time added after each runtimeDone and the RSS samples.
async fn invocations(
    sb: &Sandbox,
    receiver: Option<u16>,
    count: usize,
    first_next: usize,
) -> (Vec<Duration>, Vec<u64>) {
    let mut added = Vec::with_capacity(count);
    let mut rss = Vec::new();
    for i in 0..count {
        let id = format!("bench-{first_next}-{i}");
        let start_ms = epoch_ms();
        sb.invoke(&id, None, Duration::from_secs(3));
        sb.telemetry(json!([platform_start(&id, start_ms, None)])).await;
        if let Some(port) = receiver {
            sb.function_spans(port, function_body(i), "application/x-protobuf")
                .await;
        }
        let sent = Instant::now();
        sb.telemetry(json!([runtime_done(&id, start_ms, 20, "success", None)]))
            .await;
        let next = sb
            .wait_next_call(first_next + i, Duration::from_secs(10))
            .await
            .expect("next");
        added.push(next.saturating_duration_since(sent));
        sb.telemetry(json!([report(&id, start_ms, 20, "success", None)]))
            .await;
        if (i + 1) % 100 == 0 {
            rss.push(rss_kib(sb.pid(), "VmRSS:"));
        }
    }
    (added, rss)
}

async fn start(backend: &Backend, env: &[(&str, String)]) -> Sandbox {
    let mut all = vec![("TRACEHOSE_FLUSH_STRATEGY".to_owned(), "end".to_owned())];
    all.extend(env.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let sb = Sandbox::start(
        backend.clone(),
        Options {
            env: all,
            refuse_telemetry: false,
        },
    )
    .await;
    sb.ready().await;
    sb
}

async fn shutdown(mut sb: Sandbox) -> Duration {
    sb.shutdown("spindown", Duration::from_millis(2000));
    sb.wait_exit(Duration::from_secs(5)).await.expect("exit").1
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let size = std::fs::metadata(BINARY).map(|m| m.len()).unwrap_or(0);
    println!(
        "binary (bench profile, not stripped): {BINARY} {:.2} MB",
        size as f64 / 1e6
    );

    // Start-up: process start to the subscription request, against spawning a trivial process.
    let backend = Backend::start().await;
    let mut startup = Vec::new();
    for _ in 0..30 {
        let sb = start(
            &backend,
            &[("TRACEHOSE_OTLP_RECEIVER_PORT", free_port().to_string())],
        )
        .await;
        startup.push(sb.subscribed_at().unwrap() - sb.started);
        shutdown(sb).await;
    }
    let mut spawn = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        std::process::Command::new("true").status().unwrap();
        spawn.push(t.elapsed());
    }
    let (startup_median, _) = summary("start -> registered and subscribed", startup);
    let (spawn_median, _) = summary("baseline: spawn and reap `true`", spawn);
    println!(
        "  ratio start-up / spawn baseline: {:.1}x",
        startup_median.as_secs_f64() / spawn_median.as_secs_f64()
    );

    // Added time and memory, healthy local backend, 1,000 invocations with a function span each.
    let receiver = free_port();
    let sb = start(
        &backend,
        &[("TRACEHOSE_OTLP_RECEIVER_PORT", receiver.to_string())],
    )
    .await;
    let rss_start = rss_kib(sb.pid(), "VmRSS:");
    let (added, rss) = invocations(&sb, Some(receiver), 1000, 2).await;
    let peak = rss_kib(sb.pid(), "VmHWM:");
    let (healthy_median, _) = summary("added after runtimeDone, healthy backend", added);
    println!(
        "  RSS after start {rss_start} KiB; every 100 invocations (KiB): {rss:?}; peak (VmHWM) {peak} KiB"
    );
    shutdown(sb).await;
    println!("  spans received by the backend: {}", backend.spans().len());

    // Baseline: same invocations, nothing to export.
    let quiet = Backend::start().await;
    let sb = Sandbox::start(
        quiet.clone(),
        Options {
            env: vec![
                ("TRACEHOSE_FLUSH_STRATEGY".into(), "end".into()),
                ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), String::new()),
                ("TRACEHOSE_OTLP_RECEIVER_DISABLED".into(), "true".into()),
            ],
            refuse_telemetry: false,
        },
    )
    .await;
    sb.ready().await;
    let (added, _) = invocations(&sb, None, 1000, 2).await;
    let (quiet_median, _) = summary("baseline: added after runtimeDone, no destination", added);
    println!(
        "  ratio healthy / no-destination: {:.2}x",
        healthy_median.as_secs_f64() / quiet_median.as_secs_f64()
    );
    shutdown(sb).await;

    // Hanging backend: the flush budget (80 ms) and the circuit breaker bound what an outage costs.
    let hanging = Backend::start().await;
    hanging.set_mode(HANGING);
    let sb = start(&hanging, &[("TRACEHOSE_OTLP_RECEIVER_DISABLED", "true".into())]).await;
    let (added, _) = invocations(&sb, None, 200, 2).await;
    summary("added after runtimeDone, hanging backend", added);
    let took = shutdown(sb).await;
    println!(
        "  shutdown with hanging backend took {:.1} ms (deadline 2000 ms)",
        took.as_secs_f64() * 1e3
    );
}
