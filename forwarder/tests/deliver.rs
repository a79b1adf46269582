//! The delivery stage against the local vendor intake (tests/support/intake.rs), which checks each vendor's
//! documented contract and injects faults: every destination gets every line in its own conventions, OTLP
//! decoded with the real protobuf types; transient failures are retried, 413 splits, permanent refusals are
//! not retried; a fault run of 100,000 lines loses nothing; the deadline bounds it all. The modules under
//! deliver/ hold the cases where the answer itself could mislead: redirects, partial successes, a 413 for
//! everything, `Retry-After` in both forms, and random mixes of them all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/intake.rs"]
mod intake;

// What the stage reports is only what happened: redirects, partial successes, 413 floors, Retry-After.
#[path = "deliver/honest.rs"]
mod honest;
// The same, over random mixes of backend answers.
#[path = "deliver/truth.rs"]
mod truth;
// Platform telemetry: invocations to every backend's metrics and spans, in rows of their own.
#[path = "deliver/telemetry.rs"]
mod telemetry;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use intake::{Answer, Intake, IntakeConfig, RandomFaults, Vendor};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use serde_json::{json, Value};
use tracehose_forwarder::deliver::{DeliverySetup, Ledger, Settings};
use tracehose_forwarder::limits::Limits;
use tracehose_forwarder::pipeline::Pipeline;
use tracehose_forwarder::process::process_bytes;
use tracehose_forwarder::summary::Summary;

const DT_TOKEN: &str = "dt0c01.test-token";
const DD_KEY: &str = "dd-test-key";
/// The ledger rows of the log destinations (the telemetry lanes have their own).
const LOG_ROWS: [&str; 3] = ["dynatrace", "otlp", "datadog"];

fn setup(intake: &Intake, extra: &[(&str, &str)]) -> DeliverySetup {
    let base = intake.base_url();
    let mut vars: BTreeMap<String, String> = [
        ("DT_CONNECTION_BASE_URL", base.clone()),
        ("DT_LOG_COLLECTION_AUTH_TOKEN", DT_TOKEN.into()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", base.clone()),
        ("DD_API_KEY", DD_KEY.into()),
        // The Datadog Agent's form, as users copy it: scheme, host and port, no path.
        ("DD_LOGS_CONFIG_LOGS_DD_URL", base.clone()),
        // Its metrics host, for the platform metrics (never the real Datadog from a test).
        ("DD_DD_URL", base.clone()),
        ("TRACEHOSE_STDOUT", "false".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    DeliverySetup::from_settings(&Settings::from_pairs(vars)).unwrap()
}

/// Runs `inputs` through one pipeline into the stage, as `tracehose process` does.
async fn ship(setup: &DeliverySetup, inputs: Vec<Vec<u8>>, within: Duration) -> (Summary, Ledger) {
    let (summary, ledger, _) = ship_noting(setup, inputs, within).await;
    (summary, ledger)
}

/// [`ship`], with the distinct errors the stage reported.
async fn ship_noting(
    setup: &DeliverySetup,
    inputs: Vec<Vec<u8>>,
    within: Duration,
) -> (Summary, Ledger, Vec<String>) {
    let deadline = Instant::now() + within;
    let errors = Mutex::new(Vec::new());
    let (mut summary, ledger) = setup
        .destinations
        .deliver(
            &setup.client,
            deadline,
            |error| errors.lock().unwrap().push(error),
            move |sink| {
                let mut pipeline = Pipeline::new(Limits::default());
                let mut summary = Summary::default();
                for bytes in &inputs {
                    process_bytes(bytes, "test", &mut pipeline, sink, &mut summary, &mut |_| {}).unwrap();
                }
                summary
            },
        )
        .await
        .unwrap();
    summary.apply_ledger(&ledger);
    (summary, ledger, errors.into_inner().unwrap())
}

fn destination<'a>(ledger: &'a Ledger, name: &str) -> &'a tracehose_forwarder::deliver::DestinationLedger {
    ledger.destinations.iter().find(|d| d.name == name).unwrap()
}

fn samples() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/events");
    let mut paths: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths.into_iter().map(|p| fs::read(p).unwrap()).collect()
}

/// The samples' expected NDJSON, which every destination must carry in its own conventions.
fn expected_lines() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/expected");
    let mut paths: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            let case = name.split('.').next().unwrap();
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../samples/events")
                .read_dir()
                .unwrap()
                .any(|e| {
                    e.unwrap()
                        .file_name()
                        .to_str()
                        .unwrap()
                        .starts_with(&format!("{case}."))
                })
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .flat_map(|p| {
            fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<Value>>()
        })
        .collect()
}

fn payload(group: &str, messages: impl IntoIterator<Item = String>) -> Vec<u8> {
    let events: Vec<Value> = messages
        .into_iter()
        .enumerate()
        .map(
            |(i, m)| json!({"id": i.to_string(), "timestamp": 1_795_255_200_000i64 + i as i64, "message": m}),
        )
        .collect();
    json!({"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": group,
           "logStream": "2026/11/21/[$LATEST]0123456789abcdef0123456789abcdef", "logEvents": events})
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn every_destination_gets_every_line_in_its_own_conventions() {
    let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    let setup = setup(&intake, &[("OTEL_SERVICE_NAME", "checkout"), ("DD_ENV", "test")]);
    let (summary, ledger) = ship(&setup, samples(), Duration::from_secs(30)).await;
    assert!(intake.violations().is_empty(), "{:#?}", intake.violations());
    let expected = expected_lines();
    assert_eq!(summary.delivered, expected.len() as u64, "{summary}");
    for d in ledger.destinations.iter().filter(|d| LOG_ROWS.contains(&d.name)) {
        assert_eq!(
            (d.delivered, d.failed, d.rejected),
            (expected.len() as u64, 0, 0),
            "{ledger}"
        );
    }

    let key = |timestamp: i64, message: &str| (timestamp, message.to_owned());
    let want: BTreeMap<(i64, String), &Value> = expected
        .iter()
        .map(|l| {
            (
                key(l["timestamp"].as_i64().unwrap(), l["message"].as_str().unwrap()),
                l,
            )
        })
        .collect();

    // Dynatrace: flat objects, hex ids, the record model's attribute names.
    let dynatrace = intake.accepted_entries(Vendor::Dynatrace);
    assert_eq!(dynatrace.len(), expected.len());
    for entry in &dynatrace {
        let ts = entry["timestamp"]
            .as_i64()
            .or_else(|| entry["timestamp"].as_str()?.parse().ok())
            .unwrap();
        let line = want[&key(ts, entry["content"].as_str().unwrap())];
        assert_eq!(entry.get("dt.trace_id"), line.get("trace_id"), "{entry}");
        assert_eq!(entry.get("dt.span_id"), line.get("span_id"), "{entry}");
        assert_eq!(entry.get("faas.invocation_id"), line.get("request_id"), "{entry}");
        assert_eq!(entry["aws.log_group"], line["log_group"]);
        assert_eq!(entry["cloud.provider"], "aws");
    }

    // Datadog: the client appended the intake path to the agent-style address.
    let datadog_paths: HashSet<String> = intake
        .requests()
        .into_iter()
        // The platform metrics go to their own path (tests/deliver/telemetry.rs).
        .filter(|r| r.headers.contains_key("dd-api-key") && r.path != Vendor::DatadogMetrics.path())
        .map(|r| r.path)
        .collect();
    assert_eq!(datadog_paths, HashSet::from(["/api/v2/logs".to_owned()]));
    // Datadog: decimal low 64 bits of the trace id, tags, the request id.
    let datadog = intake.accepted_entries(Vendor::Datadog);
    assert_eq!(datadog.len(), expected.len());
    let traced = datadog.iter().filter(|e| e.get("dd.trace_id").is_some()).count();
    assert_eq!(
        traced,
        expected.iter().filter(|l| l.get("trace_id").is_some()).count()
    );
    for entry in &datadog {
        assert_eq!(entry["ddsource"], "lambda");
        assert!(entry["ddtags"].as_str().unwrap().contains("env:test"), "{entry}");
        let ts = entry["timestamp"].as_i64().unwrap();
        let line = want[&key(ts, entry["message"].as_str().unwrap())];
        if let Some(trace) = line["trace_id"].as_str() {
            let low = u64::from_str_radix(&trace[16..], 16).unwrap();
            assert_eq!(
                entry["dd.trace_id"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| entry["dd.trace_id"].to_string()),
                low.to_string()
            );
        }
    }

    // OTLP, decoded with the real protobuf types: ids in the record fields, resource per stream.
    let requests = intake.accepted_otlp(Vendor::Otlp);
    let mut seen = 0;
    for request in &requests {
        for resource_logs in &request.resource_logs {
            let resource = resource_logs.resource.as_ref().unwrap();
            let attr = |k: &str| {
                resource
                    .attributes
                    .iter()
                    .find(|a| a.key == k)
                    .and_then(|a| a.value.clone())
            };
            assert!(attr("aws.log.group.names").is_some(), "{resource:?}");
            assert!(
                matches!(attr("service.name").and_then(|v| v.value), Some(AnyValue::StringValue(s)) if s == "checkout")
            );
            for scope in &resource_logs.scope_logs {
                for record in &scope.log_records {
                    seen += 1;
                    let Some(AnyValue::StringValue(body)) =
                        record.body.as_ref().and_then(|b| b.value.clone())
                    else {
                        panic!("body is a string: {record:?}");
                    };
                    let ts = (record.time_unix_nano / 1_000_000) as i64;
                    let line = want[&key(ts, &body)];
                    let hex: String = record.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                    assert_eq!(line["trace_id"].as_str().unwrap_or(""), hex, "{body}");
                    // OpenTelemetry leaves the text empty for an unspecified severity.
                    let severity = line["severity"].as_str().unwrap().replace("UNSPECIFIED", "");
                    assert_eq!(record.severity_text, severity);
                }
            }
        }
    }
    assert_eq!(seen, expected.len());
    intake.shutdown().await;
}

#[tokio::test]
async fn transient_failures_are_retried_and_a_413_splits_the_batch() {
    let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    intake.script(
        Vendor::Datadog,
        vec![
            Answer::status(503),
            Answer::Reset,
            Answer::status(429).retry_after(0),
        ],
    );
    intake.script(Vendor::Dynatrace, vec![Answer::status(413)]);
    let setup = setup(&intake, &[]);
    let lines: Vec<String> = (0..500).map(|i| format!("line {i}")).collect();
    let (summary, ledger) = ship(
        &setup,
        vec![payload("/aws/lambda/f", lines)],
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(summary.delivered, 500, "{ledger}");
    let dd = destination(&ledger, "datadog");
    assert_eq!((dd.delivered, dd.retried, dd.failed), (500, 500, 0), "{ledger}");
    assert_eq!(dd.requests, 4);
    let dt = destination(&ledger, "dynatrace");
    assert_eq!((dt.delivered, dt.failed), (500, 0), "{ledger}");
    assert_eq!(dt.requests, 3, "one refused whole, then its two halves");
    assert_eq!(intake.accepted_entries(Vendor::Dynatrace).len(), 500);
    intake.shutdown().await;
}

#[tokio::test]
async fn permanent_refusals_are_not_retried_and_tell_the_source_not_to_retry() {
    let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    intake.script(Vendor::Otlp, vec![Answer::status(400)]);
    let setup = setup(&intake, &[]);
    let (summary, ledger) = ship(
        &setup,
        vec![payload("/aws/lambda/f", ["a".into(), "b".into()])],
        Duration::from_secs(30),
    )
    .await;
    let otlp = destination(&ledger, "otlp");
    assert_eq!(
        (otlp.rejected, otlp.requests, otlp.delivered),
        (2, 1, 0),
        "{ledger}"
    );
    assert_eq!(ledger.retryable_lines(), 0, "a retry cannot fix a 400");
    assert_eq!((summary.failed_events, summary.rejected_events), (0, 2));
    assert_eq!(summary.delivered, 0);
    intake.shutdown().await;
}

#[tokio::test]
async fn wrong_credentials_are_refused_and_counted() {
    let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    let setup = setup(
        &intake,
        &[("DD_API_KEY", "wrong"), ("DT_LOG_COLLECTION_AUTH_TOKEN", "wrong")],
    );
    let (_, ledger) = ship(&setup, vec![payload("g", ["x".into()])], Duration::from_secs(30)).await;
    assert_eq!(destination(&ledger, "datadog").rejected, 1);
    assert_eq!(destination(&ledger, "dynatrace").rejected, 1);
    assert_eq!(destination(&ledger, "otlp").delivered, 1);
    intake.shutdown().await;
}

/// The agent's compression switches reach the wire: no `Content-Encoding` with compression off, gzip at the
/// level asked otherwise; the intake accepts both.
#[tokio::test]
async fn datadog_compression_follows_the_agents_variables() {
    for (vars, encoding) in [
        (&[("DD_LOGS_CONFIG_USE_COMPRESSION", "false")][..], None),
        (&[("DD_LOGS_CONFIG_COMPRESSION_LEVEL", "9")][..], Some("gzip")),
    ] {
        let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
        let setup = setup(&intake, vars);
        let lines: Vec<String> = (0..50).map(|i| format!("line {i}")).collect();
        let (_, ledger) = ship(&setup, vec![payload("g", lines)], Duration::from_secs(30)).await;
        assert_eq!(destination(&ledger, "datadog").delivered, 50, "{ledger}");
        let datadog: Vec<_> = intake
            .requests()
            .into_iter()
            .filter(|r| r.vendor == Some(Vendor::Datadog))
            .collect();
        assert!(!datadog.is_empty());
        for request in &datadog {
            assert_eq!(request.path, "/api/v2/logs");
            assert_eq!(
                request.headers.get("content-encoding").map(String::as_str),
                encoding,
                "{vars:?}"
            );
        }
        assert!(intake.violations().is_empty(), "{:?}", intake.violations());
        intake.shutdown().await;
    }
}

#[tokio::test]
async fn the_deadline_bounds_delivery() {
    let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    let slow = Answer::pass().delay(Duration::from_secs(3));
    for vendor in [Vendor::Dynatrace, Vendor::Otlp, Vendor::Datadog] {
        intake.script(vendor, vec![slow.clone(), slow.clone()]);
    }
    let setup = setup(&intake, &[]);
    let (summary, ledger) = ship(
        &setup,
        vec![payload("g", ["x".into(), "y".into()])],
        Duration::from_millis(800),
    )
    .await;
    assert_eq!(ledger.retryable_lines(), 2, "{ledger}");
    assert_eq!(summary.failed_events, 2);
    intake.shutdown().await;
}

#[tokio::test]
async fn filters_and_scrubbing_apply_before_anything_is_shipped() {
    let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    let setup = setup(
        &intake,
        &[
            ("TRACEHOSE_EXCLUDE_PATTERN", "healthcheck"),
            ("TRACEHOSE_REDACT", "email"),
        ],
    );
    let lines = [
        "GET /healthcheck 200".to_owned(),
        "mail to ann@example.com failed".to_owned(),
    ];
    let (summary, ledger) = ship(&setup, vec![payload("g", lines)], Duration::from_secs(30)).await;
    assert_eq!((summary.filtered, summary.delivered), (1, 1), "{summary}");
    assert_eq!(ledger.filtered, 1);
    let dd = intake.accepted_entries(Vendor::Datadog);
    assert_eq!(dd.len(), 1);
    assert_eq!(dd[0]["message"], "mail to [email] failed");
    intake.shutdown().await;
}

/// Issue 15: filtering and scrubbing see the whole message, before the size limit cuts it. A secret across
/// the cut, and patterns that only match past it, are decided on the whole message.
#[tokio::test]
async fn filters_and_scrubbing_see_the_whole_message_before_the_cut() {
    let out = std::env::temp_dir().join(format!("tracehose-cut-{}.ndjson", std::process::id()));
    let settings = Settings::from_pairs([
        ("TRACEHOSE_STDOUT", "false".to_owned()),
        ("TRACEHOSE_FILE", out.display().to_string()),
        ("TRACEHOSE_REDACT", "email,secrets,ipv4".to_owned()),
        ("TRACEHOSE_INCLUDE_PATTERN", "KEEP-ME$".to_owned()),
        ("TRACEHOSE_EXCLUDE_PATTERN", "DROP-ME".to_owned()),
    ]);
    let setup = DeliverySetup::from_settings(&settings).unwrap();
    let max = Limits::default().max_message_bytes;
    // The cut keeps `max` minus the marker's length: each secret starts a little before that and ends after.
    let around_the_cut = |secret: &str| format!("{}{secret} KEEP-ME", "x".repeat(max - 40));
    let lines = [
        around_the_cut("mail ann.lee@example.com"),
        around_the_cut("password=\"correct horse battery staple\""),
        format!("{} DROP-ME KEEP-ME", "x".repeat(max)),
        format!("{} KEEP-ME", "y".repeat(max)),
        "short line, not kept".to_owned(),
    ];
    let (summary, ledger) = ship(&setup, vec![payload("g", lines)], Duration::from_secs(60)).await;
    assert_eq!(
        (summary.delivered, summary.filtered, summary.truncated),
        (3, 2, 1),
        "{summary}"
    );
    assert_eq!(ledger.filtered, 2);
    let written = fs::read_to_string(&out).unwrap();
    let _ = fs::remove_file(&out);
    let messages: Vec<String> = written
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["message"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(messages.len(), 3);
    for leaked in ["ann", "lee", "example", "correct", "horse", "battery", "staple"] {
        assert!(!messages.iter().any(|m| m.contains(leaked)), "{leaked} went out");
    }
    assert!(messages[0].ends_with("mail [email] KEEP-ME"));
    assert!(messages[1].ends_with("password=\"[redacted]\" KEEP-ME"));
    assert!(messages[2].len() <= max && messages[2].ends_with("[tracehose: truncated]"));
}

/// 100,000 lines against intakes failing about 30% of requests in mixed ways (429 with Retry-After, 500,
/// 503, slow answers, resets, 413 above a size): every line ends delivered or counted failed, none missing,
/// and duplicates only come from retries after an ambiguous failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_run_loses_nothing() {
    let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    for (i, vendor) in [Vendor::Dynatrace, Vendor::Otlp, Vendor::Datadog]
        .into_iter()
        .enumerate()
    {
        let mut faults = RandomFaults::new(0.3, 7 + i as u64);
        faults.retry_after = 0;
        faults.too_large_above = 200_000;
        intake.random_faults(vendor, Some(faults));
    }
    let setup = setup(&intake, &[("TRACEHOSE_BATCH_MAX_BYTES", "400000")]);
    let inputs: Vec<Vec<u8>> = (0..100)
        .map(|p| {
            payload(
                &format!("/aws/lambda/f{}", p % 7),
                (0..1000).map(move |i| format!("p{p} line {i} {}", "x".repeat(i % 50))),
            )
        })
        .collect();
    let (summary, ledger) = ship(&setup, inputs, Duration::from_secs(120)).await;
    assert_eq!(summary.events_in, 100_000);
    assert_eq!(
        summary.events_in,
        summary.delivered + summary.failed_events + summary.filtered,
        "{summary}"
    );
    for (name, vendor) in [
        ("dynatrace", Vendor::Dynatrace),
        ("otlp", Vendor::Otlp),
        ("datadog", Vendor::Datadog),
    ] {
        let d = destination(&ledger, name);
        assert_eq!(d.received, 100_000, "{name}");
        assert_eq!(
            d.delivered + d.failed + d.rejected,
            d.received,
            "{name}: every line ends somewhere: {ledger}"
        );
        let messages: Vec<String> = match vendor {
            Vendor::Otlp => intake
                .accepted_otlp(vendor)
                .iter()
                .flat_map(|r| {
                    r.resource_logs
                        .iter()
                        .flat_map(|rl| rl.scope_logs.iter().flat_map(|s| s.log_records.iter()))
                })
                .map(|r| match r.body.as_ref().and_then(|b| b.value.clone()) {
                    Some(AnyValue::StringValue(s)) => s,
                    other => panic!("{other:?}"),
                })
                .collect(),
            Vendor::Dynatrace => intake
                .accepted_entries(vendor)
                .iter()
                .map(|e| e["content"].as_str().unwrap().to_owned())
                .collect(),
            _ => intake
                .accepted_entries(vendor)
                .iter()
                .map(|e| e["message"].as_str().unwrap().to_owned())
                .collect(),
        };
        let distinct: HashSet<&String> = messages.iter().collect();
        assert_eq!(
            distinct.len() as u64,
            d.delivered,
            "{name}: what the intake accepted is what the ledger says"
        );
        let duplicates = messages.len() as u64 - distinct.len() as u64;
        assert!(
            duplicates <= d.retried,
            "{name}: {duplicates} duplicates, {} lines retried",
            d.retried
        );
        assert!(
            intake.injected(vendor).failures() > 0,
            "{name}: faults were injected"
        );
        assert!(d.retried > 0, "{name}");
    }
    assert!(intake.violations().is_empty(), "{:?}", intake.violations());
    intake.shutdown().await;
}
