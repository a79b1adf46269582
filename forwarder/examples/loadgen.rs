//! Load for `tracehose serve`, from a second process: 1 MB gzipped Firehose HTTP endpoint requests of mixed
//! Lambda logs (benches/support), with the core pipeline's throughput on the same bodies measured in the same
//! run for comparison; and the Lambda face's start-up time to its first Runtime API poll. Never run in CI:
//! `scripts/bench-endpoint.sh` pins the processes and prints the figures the README quotes.
//!
//! `loadgen serve --url http://127.0.0.1:PORT/ --key KEY [--concurrency 4] [--requests 200] [--pid PID]`
//! `loadgen startup --binary target/release/tracehose [--runs 20]`
//!
//! The bodies are a small pool reused under distinct request ids, so the server must run with
//! `TRACEHOSE_ENDPOINT_DEDUP_BYTES=0` (the request id in the body is rewritten per request otherwise, which
//! would cost a gzip per request here).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../benches/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use tracehose_forwarder::limits::Limits;
use tracehose_forwarder::output::ndjson::NdjsonSink;
use tracehose_forwarder::pipeline::Pipeline;
use tracehose_forwarder::process::process_bytes;
use tracehose_forwarder::summary::Summary;

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    Serve {
        #[arg(long)]
        url: String,
        #[arg(long)]
        key: String,
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        #[arg(long, default_value_t = 200)]
        requests: usize,
        /// Gzipped size of each request body.
        #[arg(long, default_value_t = 1_000_000)]
        body_bytes: usize,
        /// Distinct bodies in the pool.
        #[arg(long, default_value_t = 8)]
        bodies: usize,
        /// The server's process id, for its peak RSS.
        #[arg(long)]
        pid: Option<u32>,
    },
    Startup {
        #[arg(long)]
        binary: String,
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
}

struct Body {
    id: String,
    gz: Vec<u8>,
    inflated: usize,
}

/// A Firehose HTTP endpoint request of records of several streams, gzipped to about `gz_target` bytes.
fn body(seed: u64, gz_target: usize) -> Body {
    let id = format!("bench-{seed:04}-0000-0000-000000000000");
    let mut records = Vec::new();
    let mut b64 = 0;
    let mut i = 0u64;
    // base64 of gzip compresses to about 76% of itself.
    while b64 * 76 / 100 < gz_target {
        let (payload, _) = support::mixed_payload(seed * 1000 + i, (i % 7) as usize, 64 * 1024);
        let data = support::base64(&support::gzip(&payload));
        b64 += data.len();
        records.push(format!(r#"{{"data":"{data}"}}"#));
        i += 1;
    }
    let json = format!(
        r#"{{"requestId":"{id}","timestamp":1795255260000,"records":[{}]}}"#,
        records.join(",")
    );
    Body {
        id,
        inflated: json.len(),
        gz: support::gzip(json.as_bytes()),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(at).copied().unwrap_or_default()
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

/// User and system CPU seconds the process has used so far.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The core pipeline, in this process, on the same bodies: detect, gunzip, base64, gunzip, JSON, parse,
/// correlate, NDJSON to nowhere. Returns gzipped MB/s.
fn pipeline_baseline(bodies: &[Body], rounds: usize) -> (f64, usize) {
    let mut pipeline = Pipeline::new(Limits::default());
    let mut sink = NdjsonSink::new(std::io::sink());
    let mut summary = Summary::default();
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..rounds {
        for body in bodies {
            process_bytes(
                &body.gz,
                "bench",
                &mut pipeline,
                &mut sink,
                &mut summary,
                &mut |_| {},
            )
            .unwrap();
            bytes += body.gz.len();
        }
    }
    (
        mb(bytes) / started.elapsed().as_secs_f64(),
        summary.delivered as usize,
    )
}

async fn serve_load(
    url: String,
    key: String,
    concurrency: usize,
    requests: usize,
    bodies: Arc<Vec<Body>>,
) -> (Duration, Vec<Duration>, usize) {
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next, bodies, url, key) = (
            client.clone(),
            Arc::clone(&next),
            Arc::clone(&bodies),
            url.clone(),
            key.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= requests {
                    return (latencies, failures);
                }
                let body = &bodies[n % bodies.len()];
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header("Content-Encoding", "gzip")
                    .header("X-Amz-Firehose-Protocol-Version", "1.0")
                    .header("X-Amz-Firehose-Request-Id", &body.id)
                    .header("X-Amz-Firehose-Access-Key", &key)
                    .header(
                        "X-Amz-Firehose-Source-Arn",
                        "arn:aws:firehose:eu-west-1:123456789012:deliverystream/bench",
                    )
                    .body(body.gz.clone())
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().as_u16() == 200 => {
                        let _ = r.bytes().await;
                        latencies.push(sent.elapsed());
                    }
                    Ok(r) => {
                        failures += 1;
                        eprintln!("loadgen: {}: {}", r.status(), r.text().await.unwrap_or_default());
                    }
                    Err(err) => {
                        failures += 1;
                        eprintln!("loadgen: {err}");
                    }
                }
            }
        }));
    }
    let mut all = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (latencies, failed) = task.await.unwrap();
        all.extend(latencies);
        failures += failed;
    }
    (started.elapsed(), all, failures)
}

/// Spawns the binary as the Lambda runtime would, against a fake Runtime API, and times the first poll.
fn startup(binary: &str, runs: usize) {
    let mut times = Vec::new();
    for _ in 0..runs {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let started = Instant::now();
        let mut child = Command::new(binary)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "tracehose")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/tracehose")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "stream")
            .env("AWS_REGION", "eu-west-1")
            .env("TRACEHOSE_ACCESS_KEYS", "k")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (stream, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        let elapsed = started.elapsed();
        assert!(line.contains("/runtime/invocation/next"), "{line}");
        times.push(elapsed);
        let _ = child.kill();
        let _ = child.wait();
    }
    times.sort();
    println!(
        "startup to first Runtime API poll: median {:.2} ms, max {:.2} ms ({runs} runs)",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
}

fn main() {
    match Cli::parse().mode {
        Mode::Startup { binary, runs } => startup(&binary, runs),
        Mode::Serve {
            url,
            key,
            concurrency,
            requests,
            body_bytes,
            bodies,
            pid,
        } => {
            let pool: Vec<Body> = (0..bodies as u64)
                .map(|seed| body(seed + 1, body_bytes))
                .collect();
            let gz: usize = pool.iter().map(|b| b.gz.len()).sum::<usize>() / pool.len();
            let inflated: usize = pool.iter().map(|b| b.inflated).sum::<usize>() / pool.len();
            println!(
                "bodies: {} of {:.2} MB gzipped, {:.2} MB inflated",
                pool.len(),
                mb(gz),
                mb(inflated)
            );
            let (baseline, lines) = pipeline_baseline(&pool, 3);
            println!("pipeline (this process, one thread): {baseline:.1} MB/s gzipped ({lines} lines)");
            let pool = Arc::new(pool);
            let cpu_before = pid.and_then(cpu_seconds);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let (elapsed, mut latencies, failures) =
                runtime.block_on(serve_load(url, key, concurrency, requests, Arc::clone(&pool)));
            latencies.sort();
            let ok = latencies.len();
            let rate = ok as f64 / elapsed.as_secs_f64();
            let throughput = rate * mb(gz);
            println!(
                "serve: {ok} requests ok, {failures} failed, concurrency {concurrency}: {rate:.1} req/s, \
                 {throughput:.1} MB/s gzipped ({:.1} MB/s inflated), p50 {:.1} ms, p99 {:.1} ms",
                rate * mb(inflated),
                percentile(&latencies, 0.5).as_secs_f64() * 1e3,
                percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            );
            println!("serve / pipeline: {:.2}", throughput / baseline);
            if let (Some(before), Some(after)) = (cpu_before, pid.and_then(cpu_seconds)) {
                // Below 1.0 the server waited on something else (the intake, the load generator).
                println!(
                    "serve CPU: {:.2} cores busy",
                    (after - before) / elapsed.as_secs_f64()
                );
            }
            if let Some(kb) = pid.and_then(peak_rss_kb) {
                println!("serve peak RSS: {:.1} MB", kb as f64 / 1024.0);
            }
        }
    }
}
