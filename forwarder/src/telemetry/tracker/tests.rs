//! The tracker through the whole pipeline, on every REPORT form of samples/ and docs/formats.md section 9.

#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use tracehose_tracecontext::{SpanId, TraceId};

use super::*;
use crate::input::{LogEvent, SubscriptionPayload};
use crate::limits::Limits;
use crate::output::Sink;
use crate::pipeline::{Pipeline, UnitContext};
use crate::record::LogRecord;
use crate::summary::Summary;
use crate::telemetry::{figures, Architecture};

const ID: &str = "8f507cfc-1a2b-4697-b07a-ac58fc914c95";
const GROUP: &str = "/aws/lambda/orders";
const STREAM: &str = "2026/11/21/[7]0123456789abcdef0123456789abcdef";
const T0: i64 = 1_795_255_200_000;

/// A line as a destination received it: its message and how it was joined.
#[derive(Debug, Clone, PartialEq)]
struct Written {
    message: String,
    join: Option<Join>,
    trace_id: Option<TraceId>,
    span_id: Option<SpanId>,
}

/// Records what reaches it; drops lines containing `exclude`, as a user's filter would.
#[derive(Debug, Default)]
struct Recording {
    invocations: Vec<Invocation>,
    lines: Vec<Written>,
    exclude: Option<&'static str>,
}

impl Sink for Recording {
    type Error = std::io::Error;

    fn admit<'a>(&mut self, message: Cow<'a, str>) -> Option<Cow<'a, str>> {
        match self.exclude {
            Some(pattern) if message.contains(pattern) => None,
            _ => Some(message),
        }
    }

    fn write(&mut self, record: LogRecord<'_>) -> Result<(), Self::Error> {
        self.lines.push(Written {
            message: record.message.into_owned(),
            join: record.join,
            trace_id: record.trace_id,
            span_id: record.span_id,
        });
        Ok(())
    }

    fn invocation(&mut self, invocation: &Invocation) -> Result<(), Self::Error> {
        self.invocations.push(invocation.clone());
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

fn settings(metrics: bool, spans: SpanMode) -> Settings {
    Settings {
        metrics,
        spans,
        architecture: Architecture::Arm64,
    }
}

fn pipeline(settings: Settings) -> Pipeline {
    Pipeline::new(Limits::default()).with_telemetry(settings)
}

/// One delivery of `events` (offset from [`T0`] in ms, message) from [`GROUP`]/[`STREAM`].
fn deliver(pipeline: &mut Pipeline, sink: &mut Recording, events: &[(i64, &str)]) {
    deliver_from(pipeline, sink, GROUP, STREAM, events);
}

fn deliver_from(
    pipeline: &mut Pipeline,
    sink: &mut Recording,
    group: &str,
    stream: &str,
    events: &[(i64, &str)],
) {
    let payload = SubscriptionPayload {
        message_type: Cow::Borrowed("DATA_MESSAGE"),
        owner: Some(Cow::Borrowed("123456789012")),
        log_group: Cow::Owned(group.to_owned()),
        log_stream: Cow::Owned(stream.to_owned()),
        log_events: events
            .iter()
            .map(|(offset, message)| LogEvent {
                timestamp: T0 + offset,
                message: Cow::Owned((*message).to_owned()),
            })
            .collect(),
        ..Default::default()
    };
    let mut summary = Summary::default();
    pipeline
        .process_payload(payload, &UnitContext::default(), sink, &mut summary)
        .unwrap();
}

/// The invocations made from `events` in one delivery, all metrics on.
fn invocations(events: &[(i64, &str)]) -> Vec<Invocation> {
    let mut p = pipeline(settings(true, SpanMode::Xray));
    let mut sink = Recording::default();
    deliver(&mut p, &mut sink, events);
    sink.invocations
}

fn only(events: &[(i64, &str)]) -> Invocation {
    let mut all = invocations(events);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

fn start() -> String {
    format!("START RequestId: {ID} Version: 7\n")
}

/// samples/src/direct-python-cold-xray.json: a cold start with active tracing, fields separated by tabs.
#[test]
fn text_report_cold_with_xray() {
    let report = format!(
        "REPORT RequestId: {ID}\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 130.49 ms\t\nXRAY TraceId: 1-5f35ae12-0c0fec141ab77a00bc047aa2\tSegmentId: 2be948a625588e32\tSampled: true\t\n"
    );
    let inv = only(&[
        (
            0,
            "INIT_START Runtime Version: python:3.12.v30\tRuntime Version ARN: arn:x\n",
        ),
        (5, &start()),
        (10, &format!("[INFO]\t2026-11-21T10:00:00.010Z\t{ID}\tworking\n")),
        (22, &format!("END RequestId: {ID}\n")),
        (23, &report),
    ]);
    assert_eq!(&*inv.request_id, ID);
    assert_eq!((inv.report_ms, inv.start_ms), (T0 + 23, (T0 + 5) as f64));
    assert_eq!(inv.duration_ms, 15.74);
    assert_eq!(inv.billed_duration_ms, Some(16.0));
    assert_eq!(inv.init_duration_ms, Some(130.49));
    assert_eq!(
        (inv.memory_size_mb, inv.max_memory_used_mb),
        (Some(128), Some(56))
    );
    assert_eq!(inv.outcome, Outcome::Success);
    assert!(inv.cold_start && !inv.timed_out && !inv.out_of_memory && !inv.managed_instances);
    assert_eq!(inv.version.as_deref(), Some("7"));
    assert_eq!(inv.architecture, Architecture::Arm64);
    assert_eq!(inv.source.function_name.as_deref(), Some("orders"));
    let span = inv.span.unwrap();
    assert_eq!(span.trace_id.to_string(), "5f35ae120c0fec141ab77a00bc047aa2");
    assert_eq!(span.span_id.to_string(), "2be948a625588e32");
    assert_eq!((span.parent_span_id, span.derived), (None, false));
}

/// Log pipelines that rewrite tabs deliver the same REPORT with spaces; a warm one has no Init Duration.
#[test]
fn text_report_with_spaces_warm_without_xray() {
    let report = format!(
        "REPORT RequestId: {ID}  Duration: 1711.87 ms  Billed Duration: 1800 ms  Memory Size: 128 MB  Max Memory Used: 98 MB  "
    );
    let inv = only(&[(100, &report)]);
    assert_eq!(
        (
            inv.duration_ms,
            inv.billed_duration_ms,
            inv.memory_size_mb,
            inv.max_memory_used_mb
        ),
        (1711.87, Some(1800.0), Some(128), Some(98))
    );
    assert!(!inv.cold_start);
    // No START seen: the REPORT's own timestamp less its duration.
    assert_eq!(inv.start_ms, (T0 + 100) as f64 - 1711.87);
    // No X-Ray, no span in the default mode; the version from the stream's name.
    assert_eq!((inv.span, inv.version.as_deref()), (None, Some("7")));
    // The Datadog Forwarder's figures for the same line (its docstring example).
    let cost = figures::estimated_cost_usd(&Invocation {
        architecture: Architecture::X86_64,
        ..inv
    });
    assert!((cost.unwrap() - 3.950_007_5e-6).abs() < 1e-15);
}

fn json_start(parent: &str) -> String {
    format!(
        r#"{{"time":"2026-11-21T10:00:00.100Z","type":"platform.start","record":{{"requestId":"{ID}","version":"$LATEST","tracing":{{"spanId":"2be948a625588e32","type":"X-Amzn-Trace-Id","value":"Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent={parent};Sampled=1"}}}}}}"#
    )
}

const JSON_REPORT: &str = r#"{"time":"2026-11-21T10:00:00.140Z","type":"platform.report","record":{"requestId":"8f507cfc-1a2b-4697-b07a-ac58fc914c95","metrics":{"durationMs":329.2,"billedDurationMs":330,"memorySizeMB":1792,"maxMemoryUsedMB":125,"initDurationMs":503.1},"status":"success"}}"#;

/// samples/src/firehose-http-json-format.json, with the X-Ray caller's `Parent=` distinct from the segment.
#[test]
fn json_platform_report_with_xray_parent() {
    let inv = only(&[
        (100, &json_start("53995c3f42cd8ad8")),
        (
            110,
            &format!(r#"{{"level":"INFO","requestId":"{ID}","message":"profile loaded"}}"#),
        ),
        (140, JSON_REPORT),
    ]);
    assert_eq!(inv.start_ms, (T0 + 100) as f64);
    assert_eq!(
        (inv.duration_ms, inv.billed_duration_ms, inv.init_duration_ms),
        (329.2, Some(330.0), Some(503.1))
    );
    assert_eq!(
        (inv.memory_size_mb, inv.max_memory_used_mb),
        (Some(1792), Some(125))
    );
    assert!(inv.cold_start);
    assert_eq!(inv.version.as_deref(), Some("$LATEST"));
    let span = inv.span.unwrap();
    assert_eq!(span.trace_id.to_string(), "5f35ae120c0fec141ab77a00bc047aa2");
    assert_eq!(span.span_id.to_string(), "2be948a625588e32");
    assert_eq!(span.parent_span_id.unwrap().to_string(), "53995c3f42cd8ad8");
}

/// The sample as it is: `Parent=` equals the segment id, which cannot be its own parent; a Powertools line
/// printing the X-Ray trace (a join through the invocation) still gets the X-Ray span.
#[test]
fn json_sample_as_it_is() {
    let inv = only(&[
        (100, &json_start("2be948a625588e32")),
        (
            115,
            &format!(
                r#"{{"level":"ERROR","message":"avatar upload failed","function_request_id":"{ID}","xray_trace_id":"1-5f35ae12-0c0fec141ab77a00bc047aa2"}}"#
            ),
        ),
        (140, JSON_REPORT),
    ]);
    let span = inv.span.unwrap();
    assert_eq!(span.span_id.to_string(), "2be948a625588e32");
    assert_eq!(span.parent_span_id, None);
}

/// An application tracer's own trace (not X-Ray's) made the invocation's trace: it made its spans itself.
#[test]
fn no_span_for_an_application_tracer_or_the_extension() {
    let own = format!(
        r#"{{"level":"INFO","requestId":"{ID}","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"b7ad6b7169203331"}}"#
    );
    let inv = only(&[
        (100, &json_start("53995c3f42cd8ad8")),
        (110, &own),
        (140, JSON_REPORT),
    ]);
    assert_eq!(inv.span, None);
    let marker = format!(
        "[!dt dt.trace_id=9a0b1c2d3e4f50617283940a1b2c3d4e,dt.span_id=53995c3f42cd8ad8] tracehose invocation RequestId: {ID}\n"
    );
    let report = format!(
        "REPORT RequestId: {ID}\tDuration: 5.10 ms\tBilled Duration: 6 ms\tMemory Size: 128 MB\tMax Memory Used: 57 MB\t\nXRAY TraceId: 1-5f35ae13-0c0fec141ab77a00bc047aa3\tSegmentId: 3be948a625588e33\tSampled: true\t\n"
    );
    for spans in [SpanMode::Xray, SpanMode::All] {
        let mut p = pipeline(settings(true, spans));
        let mut sink = Recording::default();
        deliver(&mut p, &mut sink, &[(0, &start()), (1, &marker), (9, &report)]);
        assert_eq!(sink.invocations.len(), 1);
        assert_eq!(sink.invocations[0].span, None, "{spans:?}");
    }
}

/// samples/src/timeout-dotnet.json: `Task timed out` and `Status: timeout` are one timeout.
#[test]
fn a_timeout_counts_once() {
    let inv = only(&[
        (0, "START RequestId: 5b3e8a71-0d4c-4e2f-9a61-7c2d3e4f5a6b Version: $LATEST\n"),
        (3014, "2026-11-21T10:00:03.014Z 5b3e8a71-0d4c-4e2f-9a61-7c2d3e4f5a6b Task timed out after 3.00 seconds\n"),
        (3015, "END RequestId: 5b3e8a71-0d4c-4e2f-9a61-7c2d3e4f5a6b\n"),
        (3016, "REPORT RequestId: 5b3e8a71-0d4c-4e2f-9a61-7c2d3e4f5a6b\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\tStatus: timeout\n"),
    ]);
    assert_eq!((inv.outcome, inv.timed_out), (Outcome::Timeout, true));
    let metrics = figures::datadog_metrics(&inv);
    let timeouts: Vec<_> = metrics.iter().filter(|m| m.name.ends_with(".timeouts")).collect();
    assert_eq!(timeouts.len(), 1);
    assert_eq!(timeouts[0].value, 1.0);
}

/// A REPORT without a status (older runtimes): the `Task timed out` line, in an earlier delivery, says it.
#[test]
fn a_timeout_line_in_an_earlier_delivery() {
    let mut p = pipeline(settings(true, SpanMode::Xray));
    let mut sink = Recording::default();
    deliver(
        &mut p,
        &mut sink,
        &[
            (0, &start()),
            (
                3000,
                &format!("2026-11-21T10:00:03.014Z {ID} Task timed out after 3.00 seconds"),
            ),
        ],
    );
    assert!(sink.invocations.is_empty());
    deliver(
        &mut p,
        &mut sink,
        &[(3010, &format!("REPORT RequestId: {ID}\tDuration: 3003.10 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\t"))],
    );
    let inv = &sink.invocations[0];
    assert_eq!((inv.outcome, inv.timed_out), (Outcome::Timeout, true));
    // START in the earlier delivery still places the start.
    assert_eq!(inv.start_ms, T0 as f64);
    assert!(figures::is_error(inv));
}

#[test]
fn errors_and_out_of_memory() {
    let error = only(&[(9, &format!("REPORT RequestId: {ID}\tDuration: 12.00 ms\tBilled Duration: 12 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\tStatus: error\tError Type: Runtime.ExitError"))]);
    assert_eq!(
        (error.outcome, error.error_type.as_deref(), error.out_of_memory),
        (Outcome::Error, Some("Runtime.ExitError"), false)
    );
    let killed = only(&[(9, &format!("REPORT RequestId: {ID}\tDuration: 12.00 ms\tBilled Duration: 12 ms\tMemory Size: 128 MB\tMax Memory Used: 128 MB\tStatus: error\tError Type: Runtime.OutOfMemory"))]);
    assert!(killed.out_of_memory);
    // All memory used, whatever the status.
    let full = only(&[(9, &format!("REPORT RequestId: {ID}\tDuration: 12.00 ms\tBilled Duration: 12 ms\tMemory Size: 128 MB\tMax Memory Used: 128 MB"))]);
    assert!(full.out_of_memory && full.outcome == Outcome::Success);
    // A runtime's message, on a line of the invocation before its REPORT, however often.
    let python = format!("[ERROR] MemoryError\tRequestId: {ID}\n");
    let inv = only(&[
        (0, &start()),
        (5, &format!("[ERROR]\t2026-11-21T10:00:00.005Z\t{ID}\tMemoryError: out of memory")),
        (6, &python),
        (9, &format!("REPORT RequestId: {ID}\tDuration: 12.00 ms\tBilled Duration: 12 ms\tMemory Size: 128 MB\tMax Memory Used: 100 MB")),
    ]);
    assert!(inv.out_of_memory);
    let count: f64 = figures::datadog_metrics(&inv)
        .iter()
        .filter(|m| m.name.ends_with(".out_of_memory"))
        .map(|m| m.value)
        .sum();
    assert_eq!(count, 1.0);
    // Another invocation's message is not this one's.
    let other = only(&[
        (5, "[ERROR]\t2026-11-21T10:00:00.005Z\tc0ffee00-1234-4cde-8f00-abcdefabcdef\tMemoryError"),
        (9, &format!("REPORT RequestId: {ID}\tDuration: 12.00 ms\tBilled Duration: 12 ms\tMemory Size: 128 MB\tMax Memory Used: 100 MB")),
    ]);
    assert!(!other.out_of_memory);
}

/// SnapStart: a restore instead of an init, which is a cold start too.
#[test]
fn snapstart_restore() {
    let inv = only(&[
        (0, "RESTORE_START Runtime Version: java:21.v9\tRuntime Version ARN: arn:x\n"),
        (1, "START RequestId: 0d15ea5e-cafe-4bad-b0ba-123456789abc Version: 3\n"),
        (900, "REPORT RequestId: 0d15ea5e-cafe-4bad-b0ba-123456789abc\tDuration: 812.00 ms\tBilled Duration: 1000 ms\tMemory Size: 512 MB\tMax Memory Used: 201 MB\tRestore Duration: 220.51 ms\tBilled Restore Duration: 110 ms\t\n"),
    ]);
    assert_eq!(
        (inv.restore_duration_ms, inv.init_duration_ms),
        (Some(220.51), None)
    );
    assert!(inv.cold_start);
    assert_eq!(inv.version.as_deref(), Some("3"));
    // Datadog's init_duration is for Init Duration only.
    assert!(!figures::datadog_metrics(&inv)
        .iter()
        .any(|m| m.name.ends_with(".init_duration")));
}

/// Lambda Managed Instances report only a duration: no cost, only `duration` for Datadog.
#[test]
fn managed_instances() {
    let inv = only(&[(
        50,
        r#"{"time":"2026-11-21T10:00:00.050Z","type":"platform.report","record":{"requestId":"r-7","metrics":{"durationMs":42.5},"status":"success"}}"#,
    )]);
    assert!(inv.managed_instances);
    assert_eq!(figures::estimated_cost_usd(&inv), None);
    let names: Vec<_> = figures::datadog_metrics(&inv).iter().map(|m| m.name).collect();
    assert_eq!(names, ["aws.lambda.enhanced.duration"]);
}

/// A replayed or duplicated REPORT, in the same delivery or a later one, makes no second invocation.
#[test]
fn a_duplicated_report_makes_one_invocation() {
    let report = format!(
        "REPORT RequestId: {ID}\tDuration: 3.21 ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\t\n"
    );
    let mut p = pipeline(settings(true, SpanMode::Xray));
    let mut sink = Recording::default();
    deliver(&mut p, &mut sink, &[(0, &start()), (4, &report), (5, &report)]);
    deliver(&mut p, &mut sink, &[(0, &start()), (4, &report)]);
    assert_eq!(sink.invocations.len(), 1);
    assert_eq!(
        p.telemetry_counts(),
        Some(Counts {
            invocations: 1,
            duplicates: 2,
            unreadable: 0
        })
    );
    // Every line still goes to the logs.
    assert_eq!(sink.lines.len(), 5);
    // The same request id in another function is another invocation.
    deliver_from(&mut p, &mut sink, "/aws/lambda/other", STREAM, &[(4, &report)]);
    assert_eq!(sink.invocations.len(), 2);
}

/// Through the user's filter as the Firehose transformation face wraps its sink: the REPORT line kept out
/// of the logs, its invocation handed on.
#[test]
fn the_filtered_wrapper_hands_invocations_on() {
    let lookup = |name: &str| (name == "TRACEHOSE_EXCLUDE_PATTERN").then(|| "^REPORT".to_owned());
    let filter = crate::deliver::Filter::from_lookup(&lookup).unwrap();
    let mut sink = crate::deliver::Filtered::new(Recording::default(), &filter);
    let mut p = pipeline(settings(true, SpanMode::Xray));
    let payload = SubscriptionPayload {
        message_type: Cow::Borrowed("DATA_MESSAGE"),
        log_group: Cow::Borrowed(GROUP),
        log_stream: Cow::Borrowed(STREAM),
        log_events: vec![
            LogEvent {
                timestamp: T0,
                message: Cow::Owned(start()),
            },
            LogEvent {
                timestamp: T0 + 4,
                message: Cow::Owned(format!("REPORT RequestId: {ID}\tDuration: 3.21 ms")),
            },
        ],
        ..Default::default()
    };
    let mut summary = Summary::default();
    p.process_payload(payload, &UnitContext::default(), &mut sink, &mut summary)
        .unwrap();
    assert_eq!((sink.filtered, sink.inner.lines.len()), (1, 1));
    assert_eq!(sink.inner.invocations.len(), 1);
}

/// A sink that cannot take an invocation fails the payload as a failed write does: the events not yet
/// written count as failed.
#[test]
fn a_failing_invocation_fails_the_rest() {
    #[derive(Debug)]
    struct Refuses(usize);
    impl Sink for Refuses {
        type Error = std::io::Error;
        fn write(&mut self, _: LogRecord<'_>) -> Result<(), Self::Error> {
            self.0 += 1;
            Ok(())
        }
        fn invocation(&mut self, _: &Invocation) -> Result<(), Self::Error> {
            Err(std::io::Error::other("closed"))
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }
    let mut p = pipeline(settings(true, SpanMode::Xray));
    let report = format!("REPORT RequestId: {ID}\tDuration: 3.21 ms");
    let events: Vec<LogEvent<'_>> = [start(), "working".to_owned(), report, "after".to_owned()]
        .into_iter()
        .enumerate()
        .map(|(i, message)| LogEvent {
            timestamp: T0 + i as i64,
            message: Cow::Owned(message),
        })
        .collect();
    let payload = SubscriptionPayload {
        message_type: Cow::Borrowed("DATA_MESSAGE"),
        log_group: Cow::Borrowed(GROUP),
        log_stream: Cow::Borrowed(STREAM),
        log_events: events,
        ..Default::default()
    };
    let mut summary = Summary::default();
    let mut sink = Refuses(0);
    let result = p.process_payload(payload, &UnitContext::default(), &mut sink, &mut summary);
    assert_eq!(result.unwrap_err().to_string(), "closed");
    assert_eq!(sink.0, 2);
    assert_eq!(
        (summary.events_in, summary.delivered, summary.failed_events),
        (4, 2, 2)
    );
}

/// A REPORT line the user's filter keeps out of the logs still makes its invocation.
#[test]
fn a_filtered_report_still_counts() {
    let mut p = pipeline(settings(true, SpanMode::Xray));
    let mut sink = Recording {
        exclude: Some("REPORT"),
        ..Recording::default()
    };
    deliver(
        &mut p,
        &mut sink,
        &[
            (0, &start()),
            (4, &format!("REPORT RequestId: {ID}\tDuration: 3.21 ms")),
        ],
    );
    assert_eq!(sink.lines.len(), 1);
    assert_eq!(sink.invocations.len(), 1);
}

#[test]
fn hostile_figures() {
    let report = |fields: &str| format!("REPORT RequestId: {ID}\t{fields}");
    // Huge but finite numbers make an invocation without overflow; memory saturates.
    let inv = only(&[(
        0,
        &report("Duration: 1e308 ms\tBilled Duration: 1e308 ms\tMemory Size: 99999999999999999999999 MB\tMax Memory Used: 5 MB"),
    )]);
    assert_eq!(inv.memory_size_mb, Some(u64::MAX));
    assert!(inv.start_ms.is_finite());
    assert_eq!(
        figures::estimated_cost_usd(&inv),
        None,
        "an infinite cost is none"
    );
    // NaN, infinities, negative or missing durations make none, and are counted.
    let mut p = pipeline(settings(true, SpanMode::All));
    let mut sink = Recording::default();
    let ids = [
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
        "00000000-0000-4000-8000-000000000003",
        "00000000-0000-4000-8000-000000000004",
        "00000000-0000-4000-8000-000000000005",
    ];
    let lines: Vec<String> = [
        "Duration: NaN ms",
        "Duration: inf ms",
        "Duration: -5 ms",
        "Billed Duration: 5 ms",
        "Duration: ms",
    ]
    .iter()
    .zip(ids)
    .map(|(fields, id)| format!("REPORT RequestId: {id}\t{fields}\tMemory Size: 0 MB"))
    .collect();
    let events: Vec<(i64, &str)> = lines.iter().map(|l| (0, l.as_str())).collect();
    deliver(&mut p, &mut sink, &events);
    assert!(sink.invocations.is_empty(), "{:?}", sink.invocations);
    assert_eq!(p.telemetry_counts().unwrap().unreadable, 5);
    // A JSON report without a request id, in a stream with no open invocation, names no invocation.
    deliver(
        &mut p,
        &mut sink,
        &[(
            0,
            r#"{"type":"platform.report","record":{"metrics":{"durationMs":5}}}"#,
        )],
    );
    assert_eq!(p.telemetry_counts().unwrap().unreadable, 6);
    // A version too long to be one is not kept.
    let long = format!("START RequestId: {ID} Version: {}", "9".repeat(10_000));
    let inv = only(&[(0, &long), (4, &report("Duration: 1 ms"))]);
    assert_eq!(inv.version.as_deref(), Some("7"), "the stream's instead");
}

/// A million distinct request ids, each with a START (and a long log group), leave the state bounded.
#[test]
fn a_million_request_ids_stay_bounded() {
    let max_invocations = 1000;
    let max_bytes = 256 << 10;
    let mut tracker = Tracker::new(settings(true, SpanMode::All), max_invocations, max_bytes).unwrap();
    let source = Arc::new(Source {
        log_group: format!("/aws/lambda/{}", "g".repeat(200)),
        log_stream: STREAM.to_owned(),
        ..Source::default()
    });
    for i in 0..1_000_000u32 {
        let id: Arc<str> = Arc::from(format!("{i:08x}-0000-4000-8000-000000000000"));
        let parsed = ParsedLine {
            request_id: Some(Arc::clone(&id)),
            platform: Some(PlatformEvent::Start),
            ..ParsedLine::default()
        };
        let resolution = Resolution {
            request_id: Some(id),
            ..Resolution::default()
        };
        let line = Observed {
            timestamp_ms: i64::from(i),
            message: "",
            parsed: &parsed,
            resolution: &resolution,
        };
        assert!(tracker.observe(&source, line).is_none());
        if i % 4096 == 0 {
            assert!(tracker.seen.len() <= max_invocations);
            assert!(
                tracker.seen.bytes() <= max_bytes + 1024,
                "{}",
                tracker.seen.bytes()
            );
        }
    }
    assert!(tracker.seen.len() <= max_invocations);
}

#[test]
fn nothing_asked_nothing_tracked() {
    assert!(Tracker::new(settings(false, SpanMode::Off), 10, 1 << 20).is_none());
    let mut p = pipeline(settings(false, SpanMode::Off));
    let mut sink = Recording::default();
    deliver(
        &mut p,
        &mut sink,
        &[(0, &format!("REPORT RequestId: {ID}\tDuration: 3.21 ms"))],
    );
    assert!(sink.invocations.is_empty());
    assert_eq!(p.telemetry_counts(), None);
}

/// With metrics off only invocations that get a span are handed on; with spans off, none gets one.
#[test]
fn metrics_and_spans_apart() {
    let xray = format!(
        "REPORT RequestId: {ID}\tDuration: 5.10 ms\tBilled Duration: 6 ms\tMemory Size: 128 MB\tMax Memory Used: 57 MB\t\nXRAY TraceId: 1-5f35ae13-0c0fec141ab77a00bc047aa3\tSegmentId: 3be948a625588e33\tSampled: true\t\n"
    );
    let plain = "REPORT RequestId: c0ffee00-1234-4cde-8f00-abcdefabcdef\tDuration: 3.21 ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\t\n";
    let run = |settings: Settings| {
        let mut p = pipeline(settings);
        let mut sink = Recording::default();
        deliver(&mut p, &mut sink, &[(0, &xray), (1, plain)]);
        sink.invocations
            .iter()
            .map(|i| (i.request_id.to_string(), i.span.map(|s| s.derived)))
            .collect::<Vec<_>>()
    };
    let plain_id = "c0ffee00-1234-4cde-8f00-abcdefabcdef".to_owned();
    assert_eq!(
        run(settings(false, SpanMode::Xray)),
        [(ID.to_owned(), Some(false))]
    );
    assert_eq!(
        run(settings(true, SpanMode::Off)),
        [(ID.to_owned(), None), (plain_id.clone(), None)]
    );
    assert_eq!(
        run(settings(false, SpanMode::All)),
        [(ID.to_owned(), Some(false)), (plain_id, Some(true))]
    );
}

/// `all`: an invocation with no trace gets ids derived from its request id, and its lines are joined to
/// them; a line outside any invocation is not.
#[test]
fn all_mode_joins_lines_to_the_derived_span() {
    let events: Vec<(i64, String)> = vec![
        (0, start()),
        (1, format!("[INFO]\t2026-11-21T10:00:00.001Z\t{ID}\tworking")),
        (3, "no request id, but inside the bracket".to_owned()),
        (4, format!("END RequestId: {ID}")),
        (4, "no request id, after the END".to_owned()),
    ];
    let report = format!("REPORT RequestId: {ID}\tDuration: 3.21 ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB");
    let mut p = pipeline(settings(false, SpanMode::All));
    let mut sink = Recording::default();
    let first: Vec<(i64, &str)> = events.iter().map(|(t, m)| (*t, m.as_str())).collect();
    // The REPORT in a later delivery: the lines before it were joined to the same ids.
    deliver(&mut p, &mut sink, &first);
    deliver(&mut p, &mut sink, &[(5, &report)]);
    let span = sink.invocations[0].span.unwrap();
    assert!(span.derived);
    assert_eq!(span.trace_id.to_string(), "8f507cfc1a2b4697b07aac58fc914c95");
    assert_eq!(
        (span.trace_id, span.span_id),
        crate::telemetry::ids::derived(ID).unwrap()
    );
    let joins: Vec<_> = sink.lines.iter().map(|l| l.join).collect();
    assert_eq!(
        joins,
        [
            Some(Join::Derived),
            Some(Join::Derived),
            Some(Join::Derived),
            Some(Join::Derived),
            None,
            Some(Join::Derived)
        ]
    );
    for line in sink.lines.iter().filter(|l| l.join == Some(Join::Derived)) {
        assert_eq!(
            (line.trace_id, line.span_id),
            (Some(span.trace_id), Some(span.span_id))
        );
    }
    // The default mode joins nothing to derived ids and makes no span of it.
    let mut p = pipeline(settings(true, SpanMode::Xray));
    let mut sink = Recording::default();
    deliver(&mut p, &mut sink, &first);
    deliver(&mut p, &mut sink, &[(5, &report)]);
    assert!(sink.lines.iter().all(|l| l.join.is_none()));
    assert_eq!(sink.invocations[0].span, None);
    // A line with its own trace gives the invocation that trace (a tracer of its own): no derived ids.
    let own = format!(
        "[INFO]\t2026-11-21T10:00:00.002Z\t{ID}\ttraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"
    );
    let mut p = pipeline(settings(true, SpanMode::All));
    let mut sink = Recording::default();
    deliver(&mut p, &mut sink, &[(0, &start()), (2, &own), (5, &report)]);
    let joins: Vec<_> = sink.lines.iter().map(|l| l.join).collect();
    assert_eq!(
        joins,
        [Some(Join::Invocation), Some(Join::Line), Some(Join::Invocation)]
    );
    assert_eq!(sink.invocations[0].span, None);
}

/// Lines of another log group (not Lambda's) are never tracked.
#[test]
fn only_lambda_streams() {
    let mut p = pipeline(settings(true, SpanMode::All));
    let mut sink = Recording::default();
    deliver_from(
        &mut p,
        &mut sink,
        "/ecs/web",
        "web/web/0123",
        &[(0, &format!("REPORT RequestId: {ID}\tDuration: 3.21 ms"))],
    );
    assert!(sink.invocations.is_empty());
    assert!(sink.lines.iter().all(|l| l.join.is_none()));
}

/// The Datadog Forwarder's own figures for the REPORT lines of samples/, as its `enhanced_lambda_metrics.py`
/// computed them (`parse_metrics_from_report_log`, `parse_metrics_from_json_report_log`, printed with
/// `repr`): the same arithmetic in the same order, so the same doubles. Its cold start tag is the narrower
/// [`figures::datadog_cold_start`]. It sends no counts: those are ours (docs/formats.md section 9).
#[test]
fn the_datadog_forwarders_figures_for_the_same_lines() {
    type Want = &'static [(&'static str, f64)];
    let cases: [(&str, bool, Want); 6] = [
        (
            "REPORT RequestId: 8f507cfc-1a2b-4697-b07a-ac58fc914c95\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 130.49 ms\t\nXRAY TraceId: 1-5f35ae12-0c0fec141ab77a00bc047aa2\tSegmentId: 2be948a625588e32\tSampled: true\t\n",
            true,
            &[
                ("duration", 0.01574),
                ("billed_duration", 0.016),
                ("init_duration", 0.130_490_000_000_000_02),
                ("max_memory_used", 56.0),
                ("estimated_cost", 2.333_333_999_999_999_8e-7),
            ],
        ),
        (
            "REPORT RequestId: 7e57ab1e-0000-4000-8000-00000000c0de\tDuration: 2100.00 ms\tBilled Duration: 2234 ms\tMemory Size: 1024 MB\tMax Memory Used: 300 MB\tInit Duration: 133.20 ms\t\n",
            true,
            &[
                ("duration", 2.1),
                ("billed_duration", 2.234),
                ("init_duration", 0.133_199_999_999_999_99),
                ("max_memory_used", 300.0),
                ("estimated_cost", 3.743_340_78e-5),
            ],
        ),
        (
            "REPORT RequestId: 5b3e8a71-0d4c-4e2f-9a61-7c2d3e4f5a6b\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\tStatus: timeout\n",
            false,
            &[
                ("duration", 3.0),
                ("billed_duration", 3.0),
                ("max_memory_used", 60.0),
                ("estimated_cost", 6.450_012_5e-6),
            ],
        ),
        (
            "REPORT RequestId: 0d15ea5e-cafe-4bad-b0ba-123456789abc\tDuration: 812.00 ms\tBilled Duration: 1000 ms\tMemory Size: 512 MB\tMax Memory Used: 201 MB\tRestore Duration: 220.51 ms\tBilled Restore Duration: 110 ms\t\n",
            false,
            &[
                ("duration", 0.812),
                ("billed_duration", 1.0),
                ("max_memory_used", 201.0),
                ("estimated_cost", 8.533_35e-6),
            ],
        ),
        (
            JSON_REPORT,
            true,
            &[
                ("duration", 0.3292),
                ("billed_duration", 0.33),
                ("init_duration", 0.5031),
                ("max_memory_used", 125.0),
                ("estimated_cost", 9.825_019_250_000_001e-6),
            ],
        ),
        (
            r#"{"time":"x","type":"platform.report","record":{"requestId":"r-7","metrics":{"durationMs":42.5},"status":"success"}}"#,
            false,
            &[("duration", 0.0425)],
        ),
    ];
    for (line, cold, want) in cases {
        let mut p = Pipeline::new(Limits::default()).with_telemetry(Settings {
            metrics: true,
            spans: SpanMode::Off,
            architecture: Architecture::X86_64,
        });
        let mut sink = Recording::default();
        deliver(&mut p, &mut sink, &[(0, line)]);
        let inv = &sink.invocations[0];
        assert_eq!(figures::datadog_cold_start(inv), cold, "{line}");
        let got: Vec<(String, f64)> = figures::datadog_metrics(inv)
            .into_iter()
            .filter(|m| {
                !["invocations", "errors", "timeouts", "out_of_memory"]
                    .iter()
                    .any(|c| m.name.ends_with(c))
            })
            .map(|m| {
                (
                    m.name.trim_start_matches(figures::DATADOG_PREFIX).to_owned(),
                    m.value,
                )
            })
            .collect();
        let want: Vec<(String, f64)> = want.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect();
        assert_eq!(got, want, "{line}");
    }
}
