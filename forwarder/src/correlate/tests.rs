#![allow(clippy::unwrap_used)]

use super::*;
use crate::parse::parse_line;

const A: &str = "8f507cfc-1a2b-4697-b07a-ac58fc914c95";
const B: &str = "1c4dd3a0-52cd-4b84-9a5d-0c1b2b5a7e11";
const MARKER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const MARKER_SPAN: &str = "00f067aa0ba902b7";
const LINE_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The extension's marker line, built by the very function the extension prints it with.
fn marker(id: &str) -> String {
    let trace = tracehose_tracecontext::TraceId::from_hex(MARKER_TRACE).unwrap();
    let span = tracehose_tracecontext::SpanId::from_hex(MARKER_SPAN).unwrap();
    tracehose_tracecontext::invocation_marker_line(trace, span, id)
}

fn run(correlator: &mut Correlator, stream: &str, lambda: bool, messages: &[String]) -> Vec<Resolution> {
    let parsed: Vec<ParsedLine> = messages.iter().map(|m| parse_line(m)).collect();
    let lines: Vec<Line<'_>> = parsed
        .iter()
        .enumerate()
        .map(|(i, p)| Line {
            timestamp_ms: 1_000 + i as i64,
            parsed: p,
        })
        .collect();
    correlator.correlate("/aws/lambda/f", stream, lambda, &lines)
}

fn traces(resolutions: &[Resolution]) -> Vec<Option<(String, &'static str)>> {
    resolutions
        .iter()
        .map(|r| Some((r.trace_id?.to_string(), r.join?.as_str())))
        .collect()
}

fn new() -> Correlator {
    Correlator::new(&Limits::default())
}

#[test]
fn a_marker_later_in_the_payload_reaches_earlier_lines_of_the_bracket() {
    let out = run(
        &mut new(),
        "s",
        true,
        &[
            "early line before any START".into(),
            format!("START RequestId: {A} Version: $LATEST"),
            "go runtime prints no request id".into(),
            marker(A),
            format!("END RequestId: {A}"),
            format!("REPORT RequestId: {A}\tDuration: 1.00 ms"),
            "after the bracket".into(),
        ],
    );
    let t = |j| Some((MARKER_TRACE.to_owned(), j));
    assert_eq!(
        traces(&out),
        vec![
            None,
            t("marker"),
            t("marker"),
            t("line"),
            t("marker"),
            t("marker"),
            None
        ]
    );
    assert_eq!(out[2].request_id.as_deref(), Some(A));
    assert_eq!(out[2].span_id.unwrap().to_string(), MARKER_SPAN);
    assert_eq!(out[0].request_id, None);
    assert_eq!(out[6].request_id, None);
}

#[test]
fn an_invocation_split_over_two_payloads_is_joined() {
    let mut c = new();
    let first = run(
        &mut c,
        "s",
        true,
        &[
            format!("START RequestId: {A} Version: 1"),
            marker(A),
            "part one".into(),
        ],
    );
    assert_eq!(first[2].trace_id.unwrap().to_string(), MARKER_TRACE);
    let second = run(
        &mut c,
        "s",
        true,
        &["part two".into(), format!("END RequestId: {A}"), "outside".into()],
    );
    assert_eq!(second[0].trace_id.unwrap().to_string(), MARKER_TRACE);
    assert_eq!(second[0].request_id.as_deref(), Some(A));
    assert_eq!(second[2].trace_id, None);
    // Another stream does not inherit the bracket.
    let other = run(&mut c, "other", true, &["part two?".into()]);
    assert_eq!(other[0].trace_id, None);
    // Another log group does not share the invocation, even under the same request id.
    let parsed = parse_line(&format!("[INFO]\t2026-11-21T10:00:00.000Z\t{A}\tx"));
    let elsewhere = c.correlate(
        "/aws/lambda/g",
        "s",
        true,
        &[Line {
            timestamp_ms: 1,
            parsed: &parsed,
        }],
    );
    assert_eq!(elsewhere[0].trace_id, None);
}

#[test]
fn priority_marker_then_line_trace_then_xray() {
    let report_with_xray = |id: &str| {
        format!("REPORT RequestId: {id}\tDuration: 1.00 ms\t\nXRAY TraceId: 1-5e34a614-10bd4a8ff1fb44f07bc535a1\tSegmentId: 07f5a12b2d3e4f56\tSampled: true")
    };
    let mut c = new();
    // X-Ray only.
    let out = run(
        &mut c,
        "s",
        true,
        &[
            format!("START RequestId: {A} Version: 1"),
            "x".into(),
            report_with_xray(A),
        ],
    );
    assert_eq!(
        traces(&out)[1],
        Some(("5e34a61410bd4a8ff1fb44f07bc535a1".into(), "xray"))
    );
    assert_eq!(out[1].span_id.unwrap().to_string(), "07f5a12b2d3e4f56");
    // A trace printed by one line beats X-Ray, and lends no span to the others.
    let out = run(
        &mut c,
        "s",
        true,
        &[
            format!("START RequestId: {B} Version: 1"),
            "x".into(),
            format!("traceparent: 00-{LINE_TRACE}-{MARKER_SPAN}-01"),
            report_with_xray(B),
        ],
    );
    assert_eq!(traces(&out)[1], Some((LINE_TRACE.into(), "invocation")));
    assert_eq!(out[1].span_id, None);
    assert_eq!(traces(&out)[2], Some((LINE_TRACE.into(), "line")));
    assert_eq!(out[2].span_id.unwrap().to_string(), MARKER_SPAN);
    // The marker beats both, and a line's own context still wins for that line.
    let out = run(
        &mut c,
        "t",
        true,
        &[
            format!("START RequestId: {A} Version: 1"),
            format!("traceparent: 00-{LINE_TRACE}-{MARKER_SPAN}-01"),
            "plain".into(),
            report_with_xray(A),
            marker(A),
        ],
    );
    assert_eq!(traces(&out)[1], Some((LINE_TRACE.into(), "line")));
    assert_eq!(traces(&out)[2], Some((MARKER_TRACE.into(), "marker")));
}

#[test]
fn explicit_request_ids_beat_the_bracket() {
    let out = run(
        &mut new(),
        "s",
        true,
        &[
            marker(B),
            format!("START RequestId: {A} Version: 1"),
            format!("2026-11-21T10:00:00.000Z\t{B}\tINFO\tlate line of B"),
            "unlabelled line of A".into(),
        ],
    );
    assert_eq!(out[2].request_id.as_deref(), Some(B));
    assert_eq!(out[2].join, Some(Join::Marker));
    assert_eq!(out[3].request_id.as_deref(), Some(A));
    assert_eq!(out[3].trace_id, None, "A has no known trace");
}

#[test]
fn overlapping_invocations_make_unlabelled_lines_unjoinable() {
    let out = run(
        &mut new(),
        "s",
        true,
        &[
            marker(A),
            marker(B),
            format!("START RequestId: {A} Version: 1"),
            format!("START RequestId: {B} Version: 1"),
            "whose line is this?".into(),
            format!("END RequestId: {A}"),
            "now only B is open".into(),
        ],
    );
    assert_eq!(out[4].trace_id, None);
    assert_eq!(out[4].request_id, None);
    assert_eq!(out[6].request_id.as_deref(), Some(B));
}

#[test]
fn non_lambda_streams_only_use_the_lines_own_context() {
    let out = run(
        &mut new(),
        "s",
        false,
        &[
            format!("START RequestId: {A} Version: 1"),
            marker(A),
            "x".into(),
            format!("trace_id={LINE_TRACE}"),
        ],
    );
    assert_eq!(
        traces(&out),
        vec![
            None,
            Some((MARKER_TRACE.into(), "line")),
            None,
            Some((LINE_TRACE.into(), "line"))
        ]
    );
}

#[test]
fn cold_starts_come_from_init_start_or_init_duration() {
    let mut c = new();
    let out = run(
        &mut c,
        "s",
        true,
        &[
            "INIT_START Runtime Version: python:3.12.v27".into(),
            format!("START RequestId: {A} Version: 1"),
            "x".into(),
            format!("END RequestId: {A}"),
            format!("START RequestId: {B} Version: 1"),
            "y".into(),
        ],
    );
    assert_eq!(out[2].cold_start, Some(true));
    assert_eq!(out[5].cold_start, Some(false));
    let out = run(
        &mut new(),
        "s",
        true,
        &[
            "x".into(),
            format!("REPORT RequestId: {A}\tDuration: 1 ms\tInit Duration: 100.0 ms"),
        ],
    );
    assert_eq!(out[1].cold_start, Some(true));
    assert_eq!(out[0].cold_start, None, "not in a known invocation");
}

#[test]
fn state_stays_bounded() {
    let limits = Limits {
        max_tracked_invocations: 100,
        max_tracked_streams: 10,
        ..Limits::default()
    };
    let mut c = Correlator::new(&limits);
    for i in 0..1_000 {
        let id = format!("8f507cfc-1a2b-4697-b07a-{i:012}");
        run(
            &mut c,
            &format!("stream-{i}"),
            true,
            &[format!("START RequestId: {id} Version: 1"), marker(&id)],
        );
        assert!(c.invocations.len() <= 100);
        assert!(c.streams.len() <= 10);
    }
}
