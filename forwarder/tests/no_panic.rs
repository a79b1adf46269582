//! Property tests: no input, however hostile, makes the decoders or parsers panic, and every event that
//! gets in is accounted for. Inputs are arbitrary bytes, and arbitrary bytes wrapped in each layer a real
//! input has (gzip, base64, the JSON envelopes), so the fuzzing reaches past the outer checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{assert_every_event_counted, b64, gzip};
use proptest::prelude::*;
use tracehose_forwarder::limits::Limits;
use tracehose_forwarder::output::ndjson::NdjsonSink;
use tracehose_forwarder::parse::{find_trace_context, parse_line};
use tracehose_forwarder::pipeline::Pipeline;
use tracehose_forwarder::process::process_bytes;
use tracehose_forwarder::summary::Summary;
use tracehose_tracecontext::{parse_invocation_marker, DynatraceMarker, TraceParent, XrayHeader};

fn run(bytes: &[u8]) -> Summary {
    let limits = Limits {
        max_decompressed_bytes: 1 << 20,
        ..Limits::default()
    };
    let mut pipeline = Pipeline::new(limits);
    let mut sink = NdjsonSink::new(Vec::new());
    let mut summary = Summary::default();
    process_bytes(bytes, "prop", &mut pipeline, &mut sink, &mut summary, &mut |_| {}).unwrap();
    let written = String::from_utf8(sink.into_inner()).unwrap();
    assert_eq!(written.lines().count() as u64, summary.delivered);
    for line in written.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("every output line is JSON");
    }
    assert_every_event_counted(&summary, "no_panic");
    summary
}

/// Log lines made of the pieces real lines are made of, so that parsers see near-misses, not just noise.
fn line_strategy() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "START RequestId: ",
        "END RequestId: ",
        "REPORT RequestId: ",
        "INIT_START ",
        "XRAY TraceId: 1-",
        "8f507cfc-1a2b-4697-b07a-ac58fc914c95",
        "\t",
        "\n",
        " ",
        "[!dt dt.trace_id=",
        ",dt.span_id=",
        "]",
        "0af7651916cd43dd8448eb211c80319c",
        "00f067aa0ba902b7",
        "traceparent: 00-",
        "-01",
        "Root=1-5f35ae12-",
        "dd.trace_id=",
        "18446744073709551616",
        "{\"level\":",
        "\"requestId\":\"",
        "\"}",
        "{",
        "}",
        "[INFO]",
        "2026-11-21T10:00:00.000Z",
        "Duration: ",
        " ms",
        "é",
        "\u{0}",
        "Task timed out after ",
        "trace_id=",
        "{\"type\":\"platform.start\",\"record\":{\"tracing\":{\"value\":\"Root=1-",
        "RequestId: ",
    ]);
    prop::collection::vec(pieces, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        run(&bytes);
        run(&gzip(&bytes));
    }

    #[test]
    fn arbitrary_record_data(bytes in prop::collection::vec(any::<u8>(), 0..2048), gz in any::<bool>()) {
        let data = b64(&if gz { gzip(&bytes) } else { bytes.clone() });
        run(format!(r#"{{"awslogs":{{"data":"{data}"}}}}"#).as_bytes());
        run(format!(r#"{{"requestId":"r","records":[{{"data":"{data}"}},{{"data":"{data}"}}]}}"#).as_bytes());
        run(format!(r#"{{"rawData":"{data}"}}"#).as_bytes());
    }

    #[test]
    fn arbitrary_lines_in_a_real_payload(lines in prop::collection::vec(line_strategy(), 0..40)) {
        let events: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, m)| format!(r#"{{"id":"{i}","timestamp":{i},"message":{}}}"#, serde_json::to_string(m).unwrap()))
            .collect();
        let payload = format!(
            r#"{{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/lambda/f","logStream":"s","logEvents":[{}]}}"#,
            events.join(",")
        );
        let summary = run(format!(r#"{{"awslogs":{{"data":"{}"}}}}"#, b64(&gzip(payload.as_bytes()))).as_bytes());
        prop_assert_eq!(summary.delivered, lines.len() as u64);
    }

    #[test]
    fn parsers_take_any_text(text in "\\PC{0,300}", near in line_strategy()) {
        for s in [&text, &near] {
            let _ = parse_line(s);
            let _ = find_trace_context(s);
            let _ = DynatraceMarker::find(s);
            let _ = parse_invocation_marker(s);
            let _ = TraceParent::parse(s);
            let _ = XrayHeader::parse(s);
        }
    }
}
