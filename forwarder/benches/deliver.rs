//! Throughput through each HTTP destination alone and all three at once (Dynatrace, OTLP, Datadog; gzip on),
//! to local receivers that accept everything without decoding it, next to the pipeline to NDJSON and the
//! floor no forwarder can avoid (base64 + gunzip + JSON parse) on the same input in the same run.
//!
//! `cargo bench -p tracehose-forwarder --bench deliver`. Groups report lines/s; the README has the figures.

mod support;

use std::convert::Infallible;
use std::hint::black_box;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tracehose_forwarder::deliver::{DeliverySetup, Settings};
use tracehose_forwarder::limits::Limits;
use tracehose_forwarder::output::ndjson::NdjsonSink;
use tracehose_forwarder::pipeline::Pipeline;
use tracehose_forwarder::process::process_bytes;
use tracehose_forwarder::summary::Summary;

/// Reads each request's body and answers with the status the vendor uses for success: the cost of a backend
/// is not what this measures.
async fn accept_everything(listener: tokio::net::TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let service = service_fn(|request: Request<Incoming>| async move {
                let status = match request.uri().path() {
                    "/api/v2/logs/ingest" => StatusCode::NO_CONTENT,
                    "/api/v2/logs" => StatusCode::ACCEPTED,
                    _ => StatusCode::OK,
                };
                let _ = request.into_body().collect().await;
                Ok::<_, Infallible>(
                    Response::builder()
                        .status(status)
                        .body(Full::new(Bytes::new()))
                        .unwrap_or_default(),
                )
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn to_ndjson(event: &[u8], pipeline: &mut Pipeline) -> u64 {
    let mut sink = NdjsonSink::new(io::sink());
    let mut summary = Summary::default();
    process_bytes(event, "bench", pipeline, &mut sink, &mut summary, &mut |m| {
        panic!("{m}")
    })
    .unwrap_or_else(|e| panic!("sink: {e}"));
    summary.delivered
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let (payload, lines) = support::mixed_payload(42, 0, 1_000_000);
    let event = Arc::new(support::direct_event(&support::gzip(&payload)));
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
    runtime.spawn(accept_everything(listener));
    let destinations = |pairs: &[(&str, String)]| {
        let mut pairs = pairs.to_vec();
        pairs.push(("TRACEHOSE_STDOUT", "false".into()));
        let settings = Settings::from_pairs(pairs);
        DeliverySetup::from_settings(&settings).unwrap_or_else(|e| panic!("setup: {e}"))
    };
    let dynatrace = [
        ("DT_CONNECTION_BASE_URL", base.clone()),
        ("DT_LOG_COLLECTION_AUTH_TOKEN", "t".into()),
    ];
    let otlp = [("OTEL_EXPORTER_OTLP_ENDPOINT", base.clone())];
    let datadog = [
        ("DD_API_KEY", "k".into()),
        ("DD_LOGS_CONFIG_LOGS_DD_URL", format!("{base}/api/v2/logs")),
    ];
    let all: Vec<_> = [&dynatrace[..], &otlp, &datadog].concat();
    let setups = [
        ("pipeline_to_dynatrace_gzip", destinations(&dynatrace)),
        ("pipeline_to_otlp_gzip", destinations(&otlp)),
        ("pipeline_to_datadog_gzip", destinations(&datadog)),
        ("pipeline_to_dynatrace_otlp_datadog_gzip", destinations(&all)),
    ];
    let ship = |setup: &DeliverySetup, event: Arc<Vec<u8>>| {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (delivered, ledger) = runtime
            .block_on(setup.destinations.deliver(
                &setup.client,
                deadline,
                |m| panic!("{m}"),
                move |sink| {
                    let mut pipeline = Pipeline::new(limits);
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
        delivered
    };
    assert_eq!(support::floor(&event, &limits), lines);
    for (_, setup) in &setups {
        assert_eq!(ship(setup, Arc::clone(&event)), lines as u64);
    }
    eprintln!("bench input: {lines} lines, {} bytes of event", event.len());

    let mut group = c.benchmark_group("lines");
    group
        .throughput(Throughput::Elements(lines as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("floor_b64_gunzip_json", |b| {
        b.iter(|| support::floor(black_box(&event), &limits))
    });
    let mut warm = Pipeline::new(limits);
    group.bench_function("pipeline_to_ndjson", |b| {
        b.iter(|| to_ndjson(black_box(&event), &mut warm))
    });
    for (name, setup) in &setups {
        group.bench_function(*name, |b| b.iter(|| ship(setup, Arc::clone(&event))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
