//! Throughput of the whole pipeline (detect, base64, gunzip, JSON, parse, correlate, NDJSON) against the
//! floor no forwarder can avoid: base64 decode + gunzip + JSON parse of the same bytes.
//!
//! `cargo bench -p tracehose-forwarder --bench pipeline`. The input is a generated ~1 MB gzipped payload
//! of mixed Lambda logs in a direct subscription event; groups report MB/s of compressed input, MB/s of
//! uncompressed input, and lines/s.

mod support;

use std::hint::black_box;
use std::io;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tracehose_forwarder::limits::Limits;
use tracehose_forwarder::output::ndjson::NdjsonSink;
use tracehose_forwarder::pipeline::Pipeline;
use tracehose_forwarder::process::process_bytes;
use tracehose_forwarder::summary::Summary;
use tracehose_forwarder::telemetry::{Settings, SpanMode};

fn pipeline(event: &[u8], pipeline: &mut Pipeline) -> u64 {
    let mut sink = NdjsonSink::new(io::sink());
    let mut summary = Summary::default();
    let mut report = |message: String| panic!("bench input failed: {message}");
    process_bytes(event, "bench", pipeline, &mut sink, &mut summary, &mut report)
        .unwrap_or_else(|e| panic!("sink: {e}"));
    summary.delivered
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let (payload, lines) = support::mixed_payload(42, 0, 1_000_000);
    let gz = support::gzip(&payload);
    let event = support::direct_event(&gz);
    eprintln!(
        "bench input: {lines} lines, {} bytes gzipped ({} bytes of event), {} bytes uncompressed ({:.1}x)",
        gz.len(),
        event.len(),
        payload.len(),
        payload.len() as f64 / gz.len() as f64
    );
    assert_eq!(support::floor(&event, &limits), lines);
    assert_eq!(pipeline(&event, &mut Pipeline::new(limits)), lines as u64);

    let groups: [(&str, Throughput); 3] = [
        ("compressed", Throughput::Bytes(gz.len() as u64)),
        ("uncompressed", Throughput::Bytes(payload.len() as u64)),
        ("lines", Throughput::Elements(lines as u64)),
    ];
    for (name, throughput) in groups {
        let mut group = c.benchmark_group(name);
        group.throughput(throughput).sample_size(20);
        group.bench_function("baseline_b64_gunzip_json", |b| {
            b.iter(|| support::floor(black_box(&event), &limits))
        });
        let mut warm = Pipeline::new(limits);
        group.bench_function("pipeline_to_ndjson", |b| {
            b.iter(|| pipeline(black_box(&event), &mut warm))
        });
        // Platform telemetry: NDJSON ignores the invocations, so `metrics` (every invocation tracked, the
        // default span mode) is the tracker's own cost; `spans_all` adds the derived ids every line of an
        // untraced invocation is joined to, and so written with. Warm, the same event again is a replay:
        // its REPORTs are known and make no second invocation, as in production.
        for (name, spans) in [
            ("pipeline_to_ndjson_metrics", SpanMode::Xray),
            ("pipeline_to_ndjson_spans_all", SpanMode::All),
        ] {
            let telemetry = Settings {
                metrics: true,
                spans,
                ..Settings::default()
            };
            let mut warm = Pipeline::new(limits).with_telemetry(telemetry);
            group.bench_function(name, |b| b.iter(|| pipeline(black_box(&event), &mut warm)));
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
