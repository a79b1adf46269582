//! Line parsing throughput on normal lines against lines built to defeat it (issue 7): every scanner must
//! stay linear in the line whatever it holds, so each hostile shape should run within a small factor of
//! the normal lines' MB/s, never orders of magnitude below.
//!
//! `cargo bench -p tracehose-forwarder --bench hostile_lines`. Each hostile line is about 1 MiB, the
//! largest message CloudWatch Logs delivers. The `normal_*` rows are the baseline to compare against.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tracehose_forwarder::parse::parse_line;

const MIB: usize = 1 << 20;
const ID: &str = "8f507cfc-1a2b-4697-b07a-ac58fc914c95";
const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const SPAN: &str = "00f067aa0ba902b7";

/// `unit` repeated to about a mebibyte, between `head` and `tail`.
fn fill(head: &str, unit: &str, tail: &str) -> String {
    format!("{head}{}{tail}", unit.repeat(MIB / unit.len()))
}

/// Everyday lines of the runtimes and loggers tracehose reads, about a mebibyte of them.
fn normal_lines() -> Vec<String> {
    let kinds = [
        format!("[INFO]\t2026-11-21T10:00:00.123Z\t{ID}\tprocessing order 4242 for customer c-17\n"),
        format!("2026-11-21T10:00:00.123Z\t{ID}\tWARN\tinventory low for sku A-99 (3 left)\n"),
        format!(r#"{{"timestamp":"2026-11-21T10:00:00.123Z","level":"INFO","requestId":"{ID}","message":"cache lookup","key":"user:1","hit":true}}"#),
        "2026/11/21 10:00:00 fetched 120 rows from table events in 35 ms\n".to_owned(),
        format!("[DEBUG]\t2026-11-21T10:00:00.123Z\t{ID}\tcalling downstream traceparent=00-{TRACE}-{SPAN}-01\n"),
        format!("[ERROR]\t2026-11-21T10:00:00.123Z\t{ID}\tpayment failed\nTraceback (most recent call last):\n  File \"/var/task/app.py\", line 12, in handler\n"),
        format!("REPORT RequestId: {ID}\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\t\nXRAY TraceId: 1-5e34a614-10bd4a8ff1fb44f07bc535a1\tSegmentId: 07f5a12b2d3e4f56\tSampled: true\t\n"),
        r#"{"level":"info","message":"charged","dd":{"trace_id":"4887065908816661012","span_id":"1"}}"#.to_owned(),
    ];
    kinds
        .iter()
        .cycle()
        .scan(0, |size, line| {
            *size += line.len();
            (*size <= MIB).then(|| line.clone())
        })
        .collect()
}

fn hostile_lines() -> Vec<(&'static str, String)> {
    let marker = format!("[!dt dt.trace_id={TRACE},dt.span_id={SPAN}]");
    vec![
        (
            "normal_long_text",
            fill("", "the quick brown fox jumps over the lazy dog ", ""),
        ),
        // The issue's reproducer: 20 s for one line before the fix.
        ("dt_openings_then_close", fill("", "[!dt ", "]")),
        ("dt_openings_then_marker", fill("", "[!dt ", &marker)),
        ("brackets", fill("", "[", "")),
        ("bang_brackets", fill("", "[!", "")),
        ("race", fill("", "race", "")),
        ("trace_id_eq", fill("", "trace_id=", "")),
        ("trace_id_spaces", fill("", "trace_id ", "")),
        ("traceparent_colon", fill("", "traceparent:", "")),
        ("dd_trace_id_eq", fill("", "dd.trace_id=", "")),
        (
            "span_id_after_trace",
            fill(&format!("trace_id={TRACE} "), "span_id=", ""),
        ),
        ("otel_trace_id", fill("", "otelTraceID=", "")),
        ("xray_root", fill("", "Root=1-", "")),
        ("xray_trace_id_colon", fill("", "TraceId: ", "")),
        (
            "report_durations",
            fill(&format!("REPORT RequestId: {ID} "), "Duration: ", ""),
        ),
        (
            "report_colons",
            fill(&format!("REPORT RequestId: {ID}\t"), ":", ""),
        ),
        (
            "report_spaces",
            fill(&format!("REPORT RequestId: {ID}"), " ", "Duration: 1 ms"),
        ),
        (
            "digits_then_timeout",
            fill("", "1", " Task timed out after 3.00 seconds"),
        ),
        (
            "spaces_after_timestamp",
            fill("2026-11-21T10:00:00.123Z", " ", "INFO x"),
        ),
        ("python_level_no_tab", fill("[", "I", "]")),
        ("json_trace_keys", fill("{", r#""trace_id":"x","#, r#""a":1}"#)),
        (
            "json_nested_objects",
            fill("{", r#""a":{"b":1},"#, r#""dd":{"trace_id":5}}"#),
        ),
        (
            "json_message_of_markers",
            fill(r#"{"message":""#, "[!dt ", r#"]"}"#),
        ),
        // A JSON body after a runtime prefix is read as a JSON line (issue 14).
        (
            "python_prefix_json_nested_objects",
            fill(
                &format!("[INFO]\t2026-11-21T10:00:00.123Z\t{ID}\t{{"),
                r#""a":{"b":1},"#,
                r#""dd":{"trace_id":5}}"#,
            ),
        ),
        (
            "python_prefix_json_unclosed",
            fill(
                &format!("[INFO]\t2026-11-21T10:00:00.123Z\t{ID}\t{{\"m\":\""),
                "{",
                "",
            ),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("hostile_lines");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    let normal = normal_lines();
    let normal_bytes: usize = normal.iter().map(String::len).sum();
    group.throughput(Throughput::Bytes(normal_bytes as u64));
    group.bench_function("normal_lines", |b| {
        b.iter(|| {
            normal
                .iter()
                .map(|l| parse_line(black_box(l)).severity as usize)
                .sum::<usize>()
        })
    });

    for (name, line) in hostile_lines() {
        group.throughput(Throughput::Bytes(line.len() as u64));
        group.bench_function(name, |b| b.iter(|| parse_line(black_box(&line))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
