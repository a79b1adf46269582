//! Platform telemetry through the delivery stage (docs/formats.md section 9): hand-built invocations and log
//! lines written into `DeliverySink`, every lane against the local intake, which decodes metrics and spans
//! with the real protobuf types and checks Datadog's distribution contract. Each telemetry lane is its own
//! ledger row counting invocations; whatever becomes of them never touches the lines' counts, so a failing
//! metrics intake cannot make the source send its logs again.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tracehose_forwarder::deliver::{DeliverySetup, DestinationLedger, Ledger, Settings};
use tracehose_forwarder::limits::Limits;
use tracehose_forwarder::output::Sink;
use tracehose_forwarder::parse::Severity;
use tracehose_forwarder::pipeline::Pipeline;
use tracehose_forwarder::process::process_bytes;
use tracehose_forwarder::record::{LogRecord, Source};
use tracehose_forwarder::summary::Summary;
use tracehose_forwarder::telemetry::{Architecture, Invocation, Outcome, SpanIds};
use tracehose_tracecontext::{SpanId, TraceId};

use super::intake::{Answer, Intake, IntakeConfig, Vendor};
use super::{DD_KEY, DT_TOKEN};

/// Every destination at the intake, Dynatrace with the connection token its metrics and traces need.
fn setup(intake: &Intake, extra: &[(&str, &str)]) -> DeliverySetup {
    let base = intake.base_url();
    let mut vars: Vec<(String, String)> = [
        ("DT_CONNECTION_BASE_URL", base.as_str()),
        ("DT_CONNECTION_AUTH_TOKEN", DT_TOKEN),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", base.as_str()),
        ("DD_API_KEY", DD_KEY),
        ("DD_LOGS_CONFIG_LOGS_DD_URL", base.as_str()),
        ("DD_DD_URL", base.as_str()),
        ("DD_ENV", "test"),
        ("TRACEHOSE_INVOCATION_SPANS", "all"),
        ("TRACEHOSE_STDOUT", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    DeliverySetup::from_settings(&Settings::from_pairs(vars)).unwrap()
}

fn source() -> Arc<Source> {
    Arc::new(Source {
        log_group: "/aws/lambda/checkout".to_owned(),
        log_stream: "2026/11/21/[42]0123456789abcdef".to_owned(),
        account_id: Some("123456789012".to_owned()),
        region: Some("eu-west-1".to_owned()),
        function_name: Some("checkout".to_owned()),
        ..Source::default()
    })
}

fn line(source: &Arc<Source>, i: i64) -> LogRecord<'static> {
    LogRecord {
        timestamp_ms: 1_795_255_200_000 + i,
        message: Cow::Owned(format!("line {i}")),
        severity: Severity::Info,
        trace_id: None,
        span_id: None,
        request_id: None,
        join: None,
        source: Arc::clone(source),
        platform: None,
        details: None,
        cold_start: None,
    }
}

const TRACE: &str = "5d8bba5adc2932496a65bab91d2d42d4";

/// Three invocations: a warm one with X-Ray ids, a cold timeout with derived ids, one without span ids.
fn invocations(source: &Arc<Source>) -> Vec<Invocation> {
    let warm = Invocation {
        source: Arc::clone(source),
        request_id: Arc::from("req-warm"),
        report_ms: 1_795_255_201_000,
        start_ms: 1_795_255_200_500.0,
        duration_ms: 480.5,
        billed_duration_ms: Some(481.0),
        init_duration_ms: None,
        restore_duration_ms: None,
        memory_size_mb: Some(1024),
        max_memory_used_mb: Some(90),
        outcome: Outcome::Success,
        error_type: None,
        cold_start: false,
        timed_out: false,
        out_of_memory: false,
        managed_instances: false,
        version: Some("42".to_owned()),
        architecture: Architecture::Arm64,
        span: Some(SpanIds {
            trace_id: TraceId::from_hex(TRACE).unwrap(),
            span_id: SpanId::from_hex("5ff79d2a06b82ad6").unwrap(),
            parent_span_id: SpanId::from_hex("00f067aa0ba902b7"),
            derived: false,
        }),
    };
    let cold = Invocation {
        request_id: Arc::from("req-cold"),
        init_duration_ms: Some(250.0),
        cold_start: true,
        outcome: Outcome::Timeout,
        timed_out: true,
        error_type: Some("Sandbox.Timedout".to_owned()),
        span: Some(SpanIds {
            trace_id: TraceId::from_hex("11111111111111112222222222222222").unwrap(),
            span_id: SpanId::from_hex("3333333333333333").unwrap(),
            parent_span_id: None,
            derived: true,
        }),
        ..warm.clone()
    };
    let untraced = Invocation {
        request_id: Arc::from("req-plain"),
        span: None,
        ..warm.clone()
    };
    vec![warm, cold, untraced]
}

/// Writes `lines` log lines and the invocations, in one unit, through the stage.
async fn run(
    setup: &DeliverySetup,
    lines: i64,
    invocations: Vec<Invocation>,
) -> (Ledger, Summary, Vec<String>) {
    let errors = Mutex::new(Vec::new());
    let source = source();
    let (written, ledger) = setup
        .destinations
        .deliver(
            &setup.client,
            Instant::now() + Duration::from_secs(30),
            |error| errors.lock().unwrap().push(error),
            move |sink| {
                sink.begin_unit();
                for i in 0..lines {
                    sink.write(line(&source, i)).unwrap();
                    if let Some(invocation) = invocations.get(i as usize) {
                        sink.invocation(invocation).unwrap();
                    }
                }
                sink.flush().unwrap();
                lines as u64
            },
        )
        .await
        .unwrap();
    let mut summary = Summary {
        events_in: written,
        delivered: written,
        ..Summary::default()
    };
    summary.apply_ledger(&ledger);
    (ledger, summary, errors.into_inner().unwrap())
}

fn row<'a>(ledger: &'a Ledger, name: &str) -> &'a DestinationLedger {
    ledger
        .destinations
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no row {name}: {ledger}"))
}

/// `(received, delivered, failed, rejected)` of a row.
fn counts(ledger: &Ledger, name: &str) -> (u64, u64, u64, u64) {
    let d = row(ledger, name);
    (d.received, d.delivered, d.failed, d.rejected)
}

#[tokio::test]
async fn every_lane_gets_its_invocations_in_its_own_idiom() {
    let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    let setup = setup(&intake, &[]);
    let (ledger, summary, errors) = run(&setup, 3, invocations(&source())).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(intake.violations().is_empty(), "{:#?}", intake.violations());
    let names: Vec<&str> = ledger.destinations.iter().map(|d| d.name).collect();
    assert_eq!(
        names,
        [
            "dynatrace",
            "otlp",
            "datadog",
            "otlp-metrics",
            "dynatrace-metrics",
            "otlp-traces",
            "dynatrace-traces",
            "datadog-metrics"
        ]
    );
    for logs in ["dynatrace", "otlp", "datadog"] {
        assert_eq!(counts(&ledger, logs), (3, 3, 0, 0), "{ledger}");
    }
    for metrics in ["otlp-metrics", "dynatrace-metrics", "datadog-metrics"] {
        assert_eq!(counts(&ledger, metrics), (3, 3, 0, 0), "{metrics}: {ledger}");
        assert_eq!(row(&ledger, metrics).requests, 1, "{metrics}");
    }
    for traces in ["otlp-traces", "dynatrace-traces"] {
        assert_eq!(
            counts(&ledger, traces),
            (2, 2, 0, 0),
            "only invocations with span ids: {ledger}"
        );
    }
    assert_eq!((ledger.lines, summary.delivered), (3, 3));
    assert!(ledger.unit_complete(0));

    // OTLP and Dynatrace metrics: FaaS names, every point delta, one invocation counted once each.
    for vendor in [Vendor::OtlpMetrics, Vendor::DynatraceOtlpMetrics] {
        let points = intake.accepted_entries(vendor);
        let sum = |name: &str| -> f64 {
            points
                .iter()
                .filter(|p| p["metric"] == name)
                .map(|p| p["value"].as_f64().unwrap())
                .sum()
        };
        assert_eq!(sum("faas.invocations"), 3.0, "{vendor:?}");
        assert_eq!(sum("faas.errors"), 1.0);
        assert_eq!(sum("faas.timeouts"), 1.0);
        assert_eq!(sum("faas.coldstarts"), 1.0);
        assert!(points.iter().all(|p| p["temporality"] == "delta"));
        let init: Vec<&Value> = points
            .iter()
            .filter(|p| p["metric"] == "faas.init_duration")
            .collect();
        assert_eq!(init.len(), 1);
        assert_eq!(init[0]["value"], 0.25);
        assert_eq!(init[0]["unit"], "s");
        let resource = &points[0]["resource"];
        assert_eq!(resource["faas.name"], "checkout");
        assert_eq!(resource["faas.version"], "42");
        assert_eq!(resource["faas.max_memory"], 1_073_741_824_i64);
        assert_eq!(resource["cloud.account.id"], "123456789012");
    }

    // Spans: two invocations' SERVER spans, the cold one's init span and its derived ids marked.
    for vendor in [Vendor::OtlpTraces, Vendor::DynatraceOtlpTraces] {
        let spans = intake.accepted_entries(vendor);
        assert_eq!(spans.len(), 3, "{vendor:?}: {spans:#?}");
        let warm = spans.iter().find(|s| s["trace_id"] == TRACE).unwrap();
        assert_eq!(
            (warm["name"].as_str(), warm["kind"].as_i64()),
            (Some("checkout"), Some(2))
        );
        assert_eq!(warm["parent_span_id"], "00f067aa0ba902b7");
        assert_eq!(warm["attributes"]["faas.invocation_id"], "req-warm");
        let init = spans.iter().find(|s| s["name"] == "init").unwrap();
        assert_eq!(init["parent_span_id"], "3333333333333333");
        let cold = spans.iter().find(|s| s["span_id"] == "3333333333333333").unwrap();
        assert_eq!(cold["status_code"], 2);
        assert_eq!(cold["status_message"], "Sandbox.Timedout");
        assert_eq!(cold["attributes"]["tracehose.derived_ids"], true);
        assert_eq!(init["end_time_unix_nano"], cold["start_time_unix_nano"]);
    }

    // Datadog: the distribution API's contract, the enhanced names and the Forwarder's tags.
    let requests: Vec<_> = intake
        .requests()
        .into_iter()
        .filter(|r| r.vendor == Some(Vendor::DatadogMetrics))
        .collect();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].headers["dd-api-key"], DD_KEY);
    assert_eq!(requests[0].headers["content-encoding"], "gzip");
    assert_eq!(requests[0].path, "/api/v1/distribution_points");
    let series = intake.accepted_entries(Vendor::DatadogMetrics);
    let invocations = series
        .iter()
        .filter(|s| s["metric"] == "aws.lambda.enhanced.invocations")
        .count();
    assert_eq!(invocations, 3);
    let cold: Vec<&Value> = series
        .iter()
        .filter(|s| s["metric"] == "aws.lambda.enhanced.timeouts")
        .collect();
    assert_eq!(cold.len(), 1);
    let tags: Vec<&str> = cold[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for tag in [
        "functionname:checkout",
        "aws_account:123456789012",
        "region:eu-west-1",
        "memorysize:1024",
        "cold_start:true",
        "executedversion:42",
        "env:test",
    ] {
        assert!(tags.contains(&tag), "{tag} in {tags:?}");
    }
    assert_eq!(cold[0]["points"][0][0], 1_795_255_201_i64);
    intake.shutdown().await;
}

#[tokio::test]
async fn failing_telemetry_is_counted_in_its_rows_and_never_fails_a_line() {
    let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    // Refused for good, unavailable past every retry, partly refused, and too large once (split in two).
    intake.script(Vendor::OtlpMetrics, vec![Answer::status(400)]);
    intake.script(Vendor::DatadogMetrics, vec![Answer::status(503); 4]);
    intake.script(Vendor::DynatraceOtlpTraces, vec![Answer::partial(1)]);
    intake.script(Vendor::DynatraceOtlpMetrics, vec![Answer::status(413)]);
    intake.script(
        Vendor::OtlpTraces,
        vec![Answer::redirect(307, "http://127.0.0.1:9/v1/traces")],
    );
    let setup = setup(&intake, &[("TRACEHOSE_MAX_ATTEMPTS", "2")]);
    let (ledger, summary, errors) = run(&setup, 3, invocations(&source())).await;
    assert!(intake.violations().is_empty(), "{:#?}", intake.violations());

    for logs in ["dynatrace", "otlp", "datadog"] {
        assert_eq!(counts(&ledger, logs), (3, 3, 0, 0), "{ledger}");
    }
    assert!(ledger.failed.is_empty() && ledger.rejected.is_empty(), "{ledger}");
    assert!(ledger.unit_complete(0), "the unit's lines all went out");
    assert_eq!(ledger.failed_lines(), 0);
    assert_eq!(
        (summary.delivered, summary.failed_events, summary.rejected_events),
        (3, 0, 0)
    );

    assert_eq!(counts(&ledger, "otlp-metrics"), (3, 0, 0, 3), "{ledger}");
    assert_eq!(counts(&ledger, "datadog-metrics"), (3, 0, 3, 0), "{ledger}");
    assert_eq!(row(&ledger, "datadog-metrics").requests, 2);
    assert_eq!(counts(&ledger, "dynatrace-traces"), (2, 1, 0, 1), "{ledger}");
    assert_eq!(counts(&ledger, "dynatrace-metrics"), (3, 3, 0, 0), "{ledger}");
    assert_eq!(
        row(&ledger, "dynatrace-metrics").requests,
        3,
        "refused whole, then its two halves"
    );
    assert_eq!(
        counts(&ledger, "otlp-traces"),
        (2, 0, 2, 0),
        "a redirect is never delivered"
    );

    // Reported, named by their rows, and in the text ledger and EMF line.
    for name in [
        "otlp-metrics",
        "datadog-metrics",
        "dynatrace-traces",
        "otlp-traces",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(name) || e.contains(name)),
            "{name}: {errors:?}"
        );
    }
    let text = ledger.to_string();
    assert!(
        text.contains("| datadog-metrics: received=3 delivered=0 "),
        "{text}"
    );
    let emf: Value = serde_json::from_str(&ledger.emf_line(0)).unwrap();
    assert_eq!(emf["Failed.datadog-metrics"], 3);
    assert_eq!(emf["Rejected.otlp-metrics"], 3);
    assert_eq!(emf["Lines"], 3);
    intake.shutdown().await;
}

/// An invocation whose entry cannot fit a request even alone is rejected in its row, reported, and kept out
/// of the lines.
#[tokio::test]
async fn an_invocation_too_large_alone_is_rejected_in_its_row_only() {
    let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    // Requests of 1 KiB at most: a log line fits, an invocation naming a 3,000-byte version does not.
    let setup = DeliverySetup::from_settings(&Settings::from_pairs([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", intake.base_url()),
        ("TRACEHOSE_INVOCATION_SPANS", "off".to_owned()),
        ("TRACEHOSE_BATCH_MAX_BYTES", "1024".to_owned()),
    ]))
    .unwrap();
    let mut invocations = invocations(&source());
    for invocation in &mut invocations {
        invocation.version = Some("9".repeat(3000));
    }
    let (ledger, summary, errors) = run(&setup, 2, invocations).await;
    assert_eq!(counts(&ledger, "otlp-metrics"), (2, 0, 0, 2), "{ledger}");
    assert!(ledger.rejected.is_empty() && ledger.unit_complete(0));
    assert_eq!(counts(&ledger, "otlp"), (2, 2, 0, 0), "{ledger}");
    assert_eq!(summary.rejected_events, 0);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("otlp-metrics") && e.contains("too large")),
        "{errors:?}"
    );
    assert!(intake.accepted_metrics(Vendor::OtlpMetrics).is_empty());
    intake.shutdown().await;
}

/// The sample events at `names`, as `tracehose process` reads them.
fn sample_events(names: &[&str]) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/events");
    names
        .iter()
        .map(|n| std::fs::read(dir.join(n)).unwrap())
        .collect()
}

/// Runs `inputs` through one pipeline with the destinations' telemetry settings, as every face builds it.
async fn ship_samples(setup: &DeliverySetup, inputs: Vec<Vec<u8>>) -> (Ledger, Summary) {
    let telemetry = setup.destinations.telemetry;
    let (mut summary, ledger) = setup
        .destinations
        .deliver(
            &setup.client,
            Instant::now() + Duration::from_secs(30),
            |error| panic!("delivery error: {error}"),
            move |sink| {
                let mut pipeline = Pipeline::new(Limits::default()).with_telemetry(telemetry);
                let mut summary = Summary::default();
                for bytes in &inputs {
                    process_bytes(bytes, "sample", &mut pipeline, sink, &mut summary, &mut |r| {
                        panic!("input error: {r}")
                    })
                    .unwrap();
                }
                summary
            },
        )
        .await
        .unwrap();
    summary.apply_ledger(&ledger);
    (ledger, summary)
}

/// The OTLP log records the intake kept for `request_id`'s lines (by `faas.invocation_id`).
fn otlp_lines_of<'a>(entries: &'a [Value], request_id: &str) -> Vec<&'a Value> {
    entries
        .iter()
        .filter(|e| e["attributes"]["faas.invocation_id"] == request_id)
        .collect()
}

/// The samples, end to end: the real parser and tracker make the invocations from the platform lines, and
/// every backend gets metrics, spans and log lines joined to those spans.
#[tokio::test]
async fn sample_streams_ship_metrics_spans_and_joined_lines_to_every_backend() {
    const COLD: &str = "8f507cfc-1a2b-4697-b07a-ac58fc914c95";
    // The cold Python invocation's REPORT: `XRAY TraceId: 1-5f35ae12-0c0fec141ab77a00bc047aa2 SegmentId: ...`.
    const XRAY_TRACE: &str = "5f35ae120c0fec141ab77a00bc047aa2";
    let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    // The default span mode (`xray`): a span only where X-Ray ids are in the platform lines.
    let setup = setup(&intake, &[("TRACEHOSE_INVOCATION_SPANS", "xray")]);
    let inputs = sample_events(&[
        "direct-python-cold-xray.json",
        "direct-node-extension-markers.json",
        "firehose-transformation-streams.json",
    ]);
    let (ledger, summary) = ship_samples(&setup, inputs).await;
    assert!(intake.violations().is_empty(), "{:#?}", intake.violations());
    // Five REPORT lines in the three samples: five invocations for every metrics lane.
    for metrics in ["otlp-metrics", "dynatrace-metrics", "datadog-metrics"] {
        assert_eq!(counts(&ledger, metrics), (5, 5, 0, 0), "{metrics}: {ledger}");
    }
    // Only the Python invocation has X-Ray ids; the Node ones carry the extension's marker (their span is
    // the extension's), the others no tracing.
    for traces in ["otlp-traces", "dynatrace-traces"] {
        assert_eq!(counts(&ledger, traces), (1, 1, 0, 0), "{traces}: {ledger}");
    }
    assert_eq!(summary.failed_events + summary.rejected_events, 0, "{summary:?}");

    // Datadog: the Forwarder's figures for `Duration: 15.74 ms Billed Duration: 16 ms Memory Size: 128 MB
    // Max Memory Used: 56 MB Init Duration: 130.49 ms`.
    let series = intake.accepted_entries(Vendor::DatadogMetrics);
    let of_cold = |metric: &str| -> Vec<&Value> {
        series
            .iter()
            .filter(|s| {
                s["metric"] == metric
                    && s["tags"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|t| t == "functionname:orders-python")
            })
            .collect()
    };
    let value = |metric: &str| of_cold(metric)[0]["points"][0][1][0].as_f64().unwrap();
    assert!((value("aws.lambda.enhanced.duration") - 0.01574).abs() < 1e-12);
    assert!((value("aws.lambda.enhanced.init_duration") - 0.13049).abs() < 1e-12);
    assert_eq!(value("aws.lambda.enhanced.max_memory_used"), 56.0);
    let cost = 0.000_000_2 + 0.016 * (128.0 / 1024.0) * 0.000_016_666_7;
    assert!((value("aws.lambda.enhanced.estimated_cost") - cost).abs() < 1e-15);
    let tags = of_cold("aws.lambda.enhanced.duration")[0]["tags"].clone();
    for tag in ["cold_start:true", "memorysize:128", "aws_account:123456789012"] {
        assert!(
            tags.as_array().unwrap().iter().any(|t| t == tag),
            "{tag} in {tags}"
        );
    }
    assert_eq!(
        series
            .iter()
            .filter(|s| s["metric"] == "aws.lambda.enhanced.invocations")
            .count(),
        5
    );

    // OTLP and Dynatrace: the invocation's SERVER span is X-Ray's segment, with its init span before it.
    for vendor in [Vendor::OtlpTraces, Vendor::DynatraceOtlpTraces] {
        let spans = intake.accepted_entries(vendor);
        assert_eq!(spans.len(), 2, "{vendor:?}: {spans:#?}");
        let invocation = spans.iter().find(|s| s["name"] == "orders-python").unwrap();
        assert_eq!(invocation["trace_id"], XRAY_TRACE);
        assert_eq!(invocation["kind"], 2);
        assert_eq!(invocation["attributes"]["faas.invocation_id"], COLD);
        assert_eq!(invocation["attributes"]["faas.coldstart"], true);
        let init = spans.iter().find(|s| s["name"] == "init").unwrap();
        assert_eq!(init["trace_id"], XRAY_TRACE);
        assert_eq!(init["end_time_unix_nano"], invocation["start_time_unix_nano"]);
        // The lines of the invocation are joined to that very span, in the logs of the same backend.
        let logs = intake.accepted_entries(Vendor::Otlp);
        let lines = otlp_lines_of(&logs, COLD);
        assert!(lines.len() >= 4, "{lines:#?}");
        for line in lines {
            assert_eq!(line["trace_id"], XRAY_TRACE, "{line}");
            assert_eq!(line["span_id"], invocation["span_id"], "{line}");
        }
    }
    for vendor in [Vendor::OtlpMetrics, Vendor::DynatraceOtlpMetrics] {
        let points = intake.accepted_entries(vendor);
        let sum = |name: &str| -> f64 {
            points
                .iter()
                .filter(|p| p["metric"] == name)
                .map(|p| p["value"].as_f64().unwrap())
                .sum()
        };
        assert_eq!(sum("faas.invocations"), 5.0, "{vendor:?}");
        assert!(points.iter().all(|p| p["temporality"] == "delta"));
    }
    intake.shutdown().await;
}

/// A direct subscription event of `/aws/lambda/untraced` holding `lines` (timestamp, message).
fn subscription_event(lines: &[(i64, &str)]) -> Vec<u8> {
    use base64::Engine as _;
    use std::io::Write as _;
    let payload = serde_json::json!({
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/lambda/untraced",
        "logStream": "2026/11/21/[$LATEST]0123456789abcdef0123456789abcdef",
        "subscriptionFilters": ["tracehose"],
        "logEvents": lines
            .iter()
            .enumerate()
            .map(|(i, (timestamp, message))| {
                serde_json::json!({"id": i.to_string(), "timestamp": timestamp, "message": message})
            })
            .collect::<Vec<_>>(),
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(payload.to_string().as_bytes()).unwrap();
    let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    serde_json::json!({"awslogs": {"data": data}})
        .to_string()
        .into_bytes()
}

/// `TRACEHOSE_INVOCATION_SPANS=all`: an invocation with no tracing at all gets a span whose ids are derived
/// from its request id, even when its REPORT comes in a later delivery than its START; its lines are joined
/// to that span; and shipping the same deliveries again (a replay) makes the same span.
#[tokio::test]
async fn derived_spans_join_the_lines_and_are_the_same_on_a_replay() {
    const REQUEST: &str = "d0d0cafe-0000-4000-8000-000000000001";
    let first = subscription_event(&[
        (
            1_795_255_200_000,
            "START RequestId: d0d0cafe-0000-4000-8000-000000000001 Version: 7",
        ),
        (1_795_255_200_010, "loading the basket"),
        (1_795_255_200_020, "basket loaded"),
    ]);
    let second = subscription_event(&[
        (
            1_795_255_200_400,
            "END RequestId: d0d0cafe-0000-4000-8000-000000000001",
        ),
        (
            1_795_255_200_401,
            "REPORT RequestId: d0d0cafe-0000-4000-8000-000000000001\tDuration: 400.00 ms\tBilled Duration: \
             400 ms\tMemory Size: 256 MB\tMax Memory Used: 80 MB",
        ),
    ]);
    let mut span_ids = Vec::new();
    for _ in 0..2 {
        let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
        let setup = setup(&intake, &[("TRACEHOSE_INVOCATION_SPANS", "all")]);
        let (ledger, summary) = ship_samples(&setup, vec![first.clone(), second.clone()]).await;
        assert_eq!(counts(&ledger, "otlp-traces"), (1, 1, 0, 0), "{ledger}");
        assert_eq!(summary.joined_derived, 5, "{summary:?}");
        let spans = intake.accepted_entries(Vendor::OtlpTraces);
        assert_eq!(spans.len(), 1, "{spans:#?}");
        let span = &spans[0];
        assert_eq!(span["attributes"]["faas.invocation_id"], REQUEST);
        assert_eq!(span["attributes"]["tracehose.derived_ids"], true);
        assert_eq!(span["name"], "untraced");
        // The START was seen: the span starts there, and lasts the REPORT's duration.
        assert_eq!(span["start_time_unix_nano"], 1_795_255_200_000_000_000_u64);
        assert_eq!(span["end_time_unix_nano"], 1_795_255_200_400_000_000_u64);
        let logs = intake.accepted_entries(Vendor::Otlp);
        let lines = otlp_lines_of(&logs, REQUEST);
        assert_eq!(lines.len(), 5);
        for line in lines {
            assert_eq!(line["trace_id"], span["trace_id"], "{line}");
            assert_eq!(line["span_id"], span["span_id"], "{line}");
            assert_eq!(line["attributes"]["tracehose.join"], "derived", "{line}");
        }
        span_ids.push((span["trace_id"].clone(), span["span_id"].clone()));
        intake.shutdown().await;
    }
    assert_eq!(span_ids[0], span_ids[1], "a replayed REPORT makes the same span");
}
