//! What scrubbing costs (issue 15): the whole pipeline to NDJSON on a generated payload of mixed Lambda logs,
//! without scrubbing and with `TRACEHOSE_REDACT=email,secrets,ipv4`, in the same run; then the scrubbing
//! alone on a mebibyte of normal text against a mebibyte of each shape built to slow its patterns down, which
//! must stay within a small factor of it (linear), never orders of magnitude below.
//!
//! `cargo bench -p tracehose-forwarder --bench scrub`. Compare rows within one run.

mod support;

use std::borrow::Cow;
use std::hint::black_box;
use std::io;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tracehose_forwarder::deliver::Filter;
use tracehose_forwarder::limits::Limits;
use tracehose_forwarder::output::ndjson::NdjsonSink;
use tracehose_forwarder::output::Sink;
use tracehose_forwarder::pipeline::Pipeline;
use tracehose_forwarder::process::process_bytes;
use tracehose_forwarder::record::LogRecord;
use tracehose_forwarder::summary::Summary;

const MIB: usize = 1 << 20;

/// NDJSON to nowhere, through a filter as the delivery stage applies it.
struct Filtered<'f> {
    filter: &'f Filter,
    out: NdjsonSink<io::Sink>,
}

impl Sink for Filtered<'_> {
    type Error = io::Error;
    fn admit<'a>(&mut self, message: Cow<'a, str>) -> Option<Cow<'a, str>> {
        self.filter.admit(message)
    }
    fn write(&mut self, record: LogRecord<'_>) -> io::Result<()> {
        self.out.write(record)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn redacting(presets: &str) -> Filter {
    Filter::from_lookup(&|name| (name == "TRACEHOSE_REDACT").then(|| presets.to_owned()))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn to_ndjson(event: &[u8], pipeline: &mut Pipeline, filter: &Filter) -> u64 {
    let mut sink = Filtered {
        filter,
        out: NdjsonSink::new(io::sink()),
    };
    let mut summary = Summary::default();
    process_bytes(event, "bench", pipeline, &mut sink, &mut summary, &mut |m| {
        panic!("{m}")
    })
    .unwrap_or_else(|e| panic!("sink: {e}"));
    summary.delivered
}

/// `unit` repeated to about a mebibyte, then a secret that must still be found.
fn fill(unit: &str) -> String {
    format!("{} password=hunter2", unit.repeat(MIB / unit.len()))
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let (payload, lines) = support::mixed_payload(42, 0, 1_000_000);
    let event = support::direct_event(&support::gzip(&payload));
    let none = Filter::default();
    let all = redacting("email,secrets,ipv4");
    eprintln!("bench input: {lines} lines, {} bytes uncompressed", payload.len());

    let mut group = c.benchmark_group("pipeline");
    group
        .throughput(Throughput::Elements(lines as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    let mut warm = Pipeline::new(limits);
    group.bench_function("to_ndjson", |b| {
        b.iter(|| to_ndjson(black_box(&event), &mut warm, &none))
    });
    let mut warm = Pipeline::new(limits);
    group.bench_function("to_ndjson_redact_email_secrets_ipv4", |b| {
        b.iter(|| to_ndjson(black_box(&event), &mut warm, &all))
    });
    group.finish();

    let mut group = c.benchmark_group("scrub_mebibyte");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, unit) in [
        ("normal_text", "the quick brown fox jumps over the lazy dog "),
        ("key_eq", "password="),
        ("key_open_quote", "password=\""),
        ("key_open_escaped_quote", "password=\\\""),
        ("open_quote_then_pair", "password=\" token=x "),
        ("escaped_open_then_pair", "password=\\\"token=x "),
        ("authorization_bearer", "Authorization: Bearer "),
        ("cookie", "Cookie:"),
        ("url_userinfo", "https://u:"),
        ("jwt_header", "eyJabcdefghij."),
        ("akia", "AKIA"),
        ("private_key_begin", "-----BEGIN PRIVATE KEY-----"),
        ("email_at", "a@b."),
        ("ipv4_dots", "1.1.1."),
        ("backslashes", "\\"),
        ("non_ascii", "é"),
    ] {
        let line = fill(unit);
        group.throughput(Throughput::Bytes(line.len() as u64));
        group.bench_function(name, |b| b.iter(|| all.scrub(black_box(&line)).len()));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
