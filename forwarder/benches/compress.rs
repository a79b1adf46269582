//! Which deflate, at which level, for the request bodies the three destinations really send: bytes on the wire
//! and CPU per body, for each candidate library and level, on the same bodies in the same run.
//!
//! The bodies are made by the real stage: a Firehose event of about 6 MB of mixed Lambda logs (or the file
//! named by `TRACEHOSE_BENCH_EVENT`) goes through the pipeline to Dynatrace, OTLP and Datadog, uncompressed
//! where a setting allows it, and a local receiver keeps every body (gunzipped if it came gzipped). Each body
//! is then compressed by every candidate: the compressed size table goes to stderr first (bytes per line, and
//! the ratio to the raw body), then criterion times each candidate over all of a destination's bodies.
//!
//! `cargo bench -p tracehose-forwarder --bench compress`; `-- --list` names the candidates,
//! `-- datadog/` times one destination.

mod support;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tracehose_export::Compression;
use tracehose_forwarder::deliver::{DeliverySetup, Settings};
use tracehose_forwarder::limits::Limits;
use tracehose_forwarder::pipeline::Pipeline;
use tracehose_forwarder::process::process_bytes;
use tracehose_forwarder::summary::Summary;

/// Bodies received, by request path, raw (after undoing any gzip).
type Received = Arc<Mutex<BTreeMap<String, Vec<Vec<u8>>>>>;

async fn keep_bodies(listener: tokio::net::TcpListener, received: Received) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let received = Arc::clone(&received);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let received = Arc::clone(&received);
                async move {
                    let path = request.uri().path().to_owned();
                    let gzipped = request
                        .headers()
                        .get("content-encoding")
                        .is_some_and(|v| v.as_bytes() == b"gzip");
                    let body = request.into_body().collect().await.map(|b| b.to_bytes());
                    let body = body.unwrap_or_else(|e| panic!("reading a body: {e}"));
                    let raw = if gzipped {
                        let mut raw = Vec::new();
                        flate2::read::GzDecoder::new(&body[..])
                            .read_to_end(&mut raw)
                            .unwrap_or_else(|e| panic!("gunzip: {e}"));
                        raw
                    } else {
                        body.to_vec()
                    };
                    let status = match path.as_str() {
                        "/api/v2/logs/ingest" => StatusCode::NO_CONTENT,
                        "/api/v2/logs" => StatusCode::ACCEPTED,
                        _ => StatusCode::OK,
                    };
                    if let Ok(mut r) = received.lock() {
                        r.entry(path).or_default().push(raw);
                    }
                    Ok::<_, Infallible>(
                        Response::builder()
                            .status(status)
                            .body(Full::new(Bytes::new()))
                            .unwrap_or_default(),
                    )
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// One destination's name and the raw bodies it sent.
type Sent = (&'static str, Vec<Vec<u8>>);

/// Every destination's raw bodies for `event`, and its number of lines.
fn bodies(event: Arc<Vec<u8>>) -> (Vec<Sent>, u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap_or_else(|e| panic!("listen: {e}"));
    let base = format!(
        "http://{}",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let received = Received::default();
    runtime.spawn(keep_bodies(listener, Arc::clone(&received)));
    let settings = Settings::from_pairs([
        ("DT_CONNECTION_BASE_URL", base.clone()),
        ("DT_LOG_COLLECTION_AUTH_TOKEN", "t".into()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", base.clone()),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "none".into()),
        ("DD_API_KEY", "k".into()),
        ("DD_LOGS_CONFIG_LOGS_DD_URL", format!("{base}/api/v2/logs")),
        ("DD_LOGS_CONFIG_USE_COMPRESSION", "false".into()),
        ("TRACEHOSE_STDOUT", "false".into()),
    ]);
    let setup = DeliverySetup::from_settings(&settings).unwrap_or_else(|e| panic!("setup: {e}"));
    let deadline = Instant::now() + Duration::from_secs(120);
    let (lines, ledger) = runtime
        .block_on(setup.destinations.deliver(
            &setup.client,
            deadline,
            |m| panic!("{m}"),
            move |sink| {
                let mut pipeline = Pipeline::new(Limits::default());
                let mut summary = Summary::default();
                process_bytes(&event, "bench", &mut pipeline, sink, &mut summary, &mut |m| {
                    panic!("{m}")
                })
                .unwrap_or_else(|e| panic!("sink: {e}"));
                summary.delivered
            },
        ))
        .unwrap_or_else(|e| panic!("stage: {e}"));
    assert_eq!(ledger.failed_lines(), 0, "{ledger}");
    let mut received = received.lock().unwrap_or_else(|e| panic!("{e}"));
    let named = [
        ("dynatrace", "/api/v2/logs/ingest"),
        ("otlp", "/v1/logs"),
        ("datadog", "/api/v2/logs"),
    ];
    let bodies = named
        .iter()
        .map(|(name, path)| {
            let bodies = received.remove(*path).unwrap_or_default();
            assert!(!bodies.is_empty(), "no {name} body arrived");
            (*name, bodies)
        })
        .collect();
    (bodies, lines)
}

/// One way to gzip a whole body.
#[derive(Debug, Clone, Copy)]
enum Candidate {
    /// flate2 with the backend the forwarder builds it with (zlib-rs), streaming into a `GzEncoder`.
    Flate2(u32),
    /// libdeflate, whole buffer in, whole buffer out.
    Libdeflate(i32),
    /// What the destinations send: `tracehose_export::compress` at this setting.
    Export(Compression),
    /// Not gzip: one copy of the body, what building the body apart from compressing it costs at most (the
    /// sender joins a batch's entries into one body, then compresses that). Timed only.
    Copy,
}

impl Candidate {
    fn name(self) -> String {
        match self {
            Self::Flate2(level) => format!("flate2-zlib-rs-{level}"),
            Self::Libdeflate(level) => format!("libdeflate-{level}"),
            Self::Export(Compression::Gzip) => "export-default".into(),
            Self::Export(c) => format!("export-{c:?}"),
            Self::Copy => "copy".into(),
        }
    }

    fn gzip(self, raw: &[u8]) -> Vec<u8> {
        match self {
            Self::Flate2(level) => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(raw.len() / 4),
                    flate2::Compression::new(level),
                );
                encoder.write_all(raw).unwrap_or_else(|e| panic!("{e}"));
                encoder.finish().unwrap_or_else(|e| panic!("{e}"))
            }
            Self::Libdeflate(level) => {
                let level = libdeflater::CompressionLvl::new(level).unwrap_or_else(|e| panic!("{e:?}"));
                let mut compressor = libdeflater::Compressor::new(level);
                let mut out = vec![0; compressor.gzip_compress_bound(raw.len())];
                let n = compressor
                    .gzip_compress(raw, &mut out)
                    .unwrap_or_else(|e| panic!("{e}"));
                out.truncate(n);
                out
            }
            Self::Export(compression) => {
                tracehose_export::compress(raw.to_vec(), compression, "application/json")
                    .unwrap_or_else(|e| panic!("{e}"))
                    .body
                    .to_vec()
            }
            Self::Copy => raw.to_vec(),
        }
    }
}

/// Levels 4, 5, 7 and 8 sit between their neighbours in both bytes and time; libdeflate's levels past 9 take
/// minutes per destination.
fn candidates() -> Vec<Candidate> {
    let mut all: Vec<Candidate> = [1, 2, 3, 6, 9].into_iter().map(Candidate::Flate2).collect();
    all.extend([1, 2, 6, 9].into_iter().map(Candidate::Libdeflate));
    all.push(Candidate::Export(Compression::Gzip));
    all.push(Candidate::Copy);
    all
}

fn bench(c: &mut Criterion) {
    let event = match std::env::var_os("TRACEHOSE_BENCH_EVENT") {
        Some(path) => std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        None => support::firehose_event(6_000_000),
    };
    let (destinations, lines) = bodies(Arc::new(event));
    eprintln!("bench input: {lines} lines");
    eprintln!("| destination | candidate | bodies | raw bytes | gzip bytes | bytes/line | gzip/raw |");
    eprintln!("|---|---|---:|---:|---:|---:|---:|");
    for (name, bodies) in &destinations {
        let raw: usize = bodies.iter().map(Vec::len).sum();
        for candidate in candidates().into_iter().filter(|c| !matches!(c, Candidate::Copy)) {
            let mut gz = 0;
            for body in bodies {
                let packed = candidate.gzip(body);
                let mut back = Vec::new();
                flate2::read::GzDecoder::new(&packed[..])
                    .read_to_end(&mut back)
                    .unwrap_or_else(|e| panic!("{}: {e}", candidate.name()));
                assert!(back == *body, "{} does not round-trip", candidate.name());
                gz += packed.len();
            }
            eprintln!(
                "| {name} | {} | {} | {raw} | {gz} | {:.1} | {:.3} |",
                candidate.name(),
                bodies.len(),
                gz as f64 / lines as f64,
                gz as f64 / raw as f64
            );
        }
    }
    for (name, bodies) in &destinations {
        let raw: usize = bodies.iter().map(Vec::len).sum();
        let mut group = c.benchmark_group(*name);
        group
            .throughput(Throughput::Bytes(raw as u64))
            .sample_size(10)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_millis(500));
        for candidate in candidates() {
            group.bench_function(BenchmarkId::from_parameter(candidate.name()), |b| {
                b.iter(|| {
                    bodies
                        .iter()
                        .map(|body| candidate.gzip(black_box(body)).len())
                        .sum::<usize>()
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
