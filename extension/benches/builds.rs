//! Two builds of the extension side by side in the sandbox emulator, for what a change of build (linker, libc,
//! profile) costs: start-up to registered and subscribed, time added to an invocation after `runtimeDone`
//! (healthy local backend, a function span per invocation, as in `benches/sandbox.rs`) and peak RSS. Rounds
//! alternate the two binaries, and which one goes first, so that load from other work falls on both alike;
//! every figure of the candidate comes with its ratio to the baseline of the same run.
//!
//! ```sh
//! TRACEHOSE_BENCH_BASELINE=old/tracehose-extension TRACEHOSE_BENCH_CANDIDATE=new/tracehose-extension \
//!   cargo bench -p tracehose-extension --bench builds
//! ```
//!
//! Without both variables it says so and measures nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/emulator/mod.rs"]
mod emulator;

use std::time::{Duration, Instant};

use emulator::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::json;

const ROUNDS: usize = 20;
const INVOCATIONS_PER_ROUND: usize = 100;
const STARTS_PER_ROUND: usize = 3;

#[derive(Default)]
struct Figures {
    startup: Vec<Duration>,
    added: Vec<Duration>,
    peak_rss_kib: Vec<u64>,
}

fn percentile<T: Copy + Ord>(samples: &[T], p: f64) -> T {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
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

async fn start(binary: &str, backend: &Backend, receiver: u16) -> Sandbox {
    let sb = Sandbox::start_binary(
        binary,
        backend.clone(),
        Options {
            env: vec![
                ("TRACEHOSE_FLUSH_STRATEGY".into(), "end".into()),
                ("TRACEHOSE_OTLP_RECEIVER_PORT".into(), receiver.to_string()),
            ],
            refuse_telemetry: false,
        },
    )
    .await;
    sb.ready().await;
    sb
}

async fn shutdown(mut sb: Sandbox) {
    sb.shutdown("spindown", Duration::from_millis(2000));
    sb.wait_exit(Duration::from_secs(5)).await.expect("exit");
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn round(binary: &str, backend: &Backend, figures: &mut Figures) {
    for _ in 0..STARTS_PER_ROUND {
        let sb = start(binary, backend, free_port()).await;
        figures.startup.push(sb.subscribed_at().unwrap() - sb.started);
        shutdown(sb).await;
    }
    let receiver = free_port();
    let sb = start(binary, backend, receiver).await;
    for i in 0..INVOCATIONS_PER_ROUND {
        let id = format!("builds-{i}");
        let start_ms = epoch_ms();
        sb.invoke(&id, None, Duration::from_secs(3));
        sb.telemetry(json!([platform_start(&id, start_ms, None)])).await;
        sb.function_spans(receiver, function_body(i), "application/x-protobuf")
            .await;
        let sent = Instant::now();
        sb.telemetry(json!([runtime_done(&id, start_ms, 20, "success", None)]))
            .await;
        let next = sb
            .wait_next_call(2 + i, Duration::from_secs(10))
            .await
            .expect("next");
        figures.added.push(next.saturating_duration_since(sent));
        sb.telemetry(json!([report(&id, start_ms, 20, "success", None)]))
            .await;
    }
    figures.peak_rss_kib.push(peak_rss_kib(sb.pid()));
    shutdown(sb).await;
}

fn row(label: &str, baseline: f64, candidate: f64, unit: &str) {
    println!(
        "{label:<40} {baseline:>10.3} {unit:<3} {candidate:>10.3} {unit:<3} {:>7.2}x",
        candidate / baseline
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (Ok(baseline), Ok(candidate)) = (
        std::env::var("TRACEHOSE_BENCH_BASELINE"),
        std::env::var("TRACEHOSE_BENCH_CANDIDATE"),
    ) else {
        println!(
            "builds: set TRACEHOSE_BENCH_BASELINE and TRACEHOSE_BENCH_CANDIDATE to two builds of \
             tracehose-extension to compare them; nothing measured"
        );
        return;
    };
    let size = |path: &str| std::fs::metadata(path).expect(path).len() as f64 / 1e6;

    let backend = Backend::start().await;
    let (mut base, mut cand) = (Figures::default(), Figures::default());
    for r in 0..ROUNDS {
        if r % 2 == 0 {
            round(&baseline, &backend, &mut base).await;
            round(&candidate, &backend, &mut cand).await;
        } else {
            round(&candidate, &backend, &mut cand).await;
            round(&baseline, &backend, &mut base).await;
        }
    }

    println!("baseline:  {baseline}");
    println!("candidate: {candidate}");
    println!(
        "{ROUNDS} alternating rounds; per build {} starts and {} invocations with a function span each",
        base.startup.len(),
        base.added.len()
    );
    println!("{:<40} {:>14} {:>14} {:>8}", "", "baseline", "candidate", "ratio");
    row("binary size", size(&baseline), size(&candidate), "MB");
    for (label, p) in [("start-up, median", 0.5), ("start-up, p90", 0.9)] {
        row(
            label,
            ms(percentile(&base.startup, p)),
            ms(percentile(&cand.startup, p)),
            "ms",
        );
    }
    for (label, p) in [
        ("added after runtimeDone, median", 0.5),
        ("added after runtimeDone, p99", 0.99),
    ] {
        row(
            label,
            ms(percentile(&base.added, p)),
            ms(percentile(&cand.added, p)),
            "ms",
        );
    }
    row(
        "peak RSS after 100 invocations, median",
        percentile(&base.peak_rss_kib, 0.5) as f64 / 1024.0,
        percentile(&cand.peak_rss_kib, 0.5) as f64 / 1024.0,
        "MiB",
    );
    println!("spans received by the backend: {}", backend.spans().len());
}
