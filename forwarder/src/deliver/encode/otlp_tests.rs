//! The OTLP logs encoder's tests: the bytes written field by field against prost's, limits and cuts.

#![allow(clippy::unwrap_used)]
use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord as OtlpRecord, ResourceLogs};
use tracehose_tracecontext::{SpanId, TraceId};

use super::*;
use crate::deliver::encode::testing::{body, entries, lambda_source, line, report, SPAN, TRACE};
use crate::deliver::encode::TRUNCATED;

fn settings(pairs: &[(&str, &str)]) -> Result<OtlpSettings, SettingsError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    OtlpSettings::from_lookup(&move |k| map.get(k).cloned())
}

fn decode(encoder: &OtlpEncoder, records: &[LogRecord]) -> (ExportLogsServiceRequest, Entries, bool) {
    let (entries, truncated) = entries(encoder, records);
    let body = body(encoder, &entries);
    assert!(body.len() <= encoder.limits().max_body_bytes);
    (
        ExportLogsServiceRequest::decode(body.as_slice()).unwrap(),
        entries,
        truncated,
    )
}

fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    let kv = attributes.iter().find(|kv| kv.key == key)?;
    kv.value.as_ref()?.value.as_ref()
}

fn text<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attributes, key)? {
        any_value::Value::StringValue(s) => Some(s),
        other => panic!("{key}: {other:?}"),
    }
}

fn resource_attributes(resource_logs: &ResourceLogs) -> &[KeyValue] {
    &resource_logs.resource.as_ref().unwrap().attributes
}

#[test]
fn the_body_holds_exactly_the_encoded_records() {
    let encoder = OtlpEncoder::new(OtlpSettings::default(), OTLP_LIMITS);
    let (a, b) = (lambda_source("a"), lambda_source("b"));
    let records = [line(&a, "1"), report(&a), line(&b, "3"), line(&a, "4")];
    let (request, entries, truncated) = decode(&encoder, &records);
    assert!(!truncated);
    let runs: Vec<_> = request
        .resource_logs
        .iter()
        .map(|r| text(resource_attributes(r), "faas.name"))
        .collect();
    assert_eq!(runs, [Some("a"), Some("b"), Some("a")]);
    let decoded: Vec<OtlpRecord> = request
        .resource_logs
        .iter()
        .flat_map(|r| {
            assert_eq!(r.scope_logs.len(), 1);
            assert_eq!(r.scope_logs[0].scope.as_ref().unwrap().name, "tracehose");
            r.scope_logs[0].log_records.clone()
        })
        .collect();
    let encoded: Vec<OtlpRecord> = (0..entries.len())
        .map(|i| OtlpRecord::decode(entries.entry(i)).unwrap())
        .collect();
    assert_eq!(decoded, encoded);
    assert_eq!(decoded.len(), records.len());
}

/// What the encoder wrote before it wrote fields itself: the generated type, built and encoded by prost.
fn encoded_by_prost(encoder: &OtlpEncoder, record: &LogRecord, observed: u64) -> Vec<u8> {
    let max_attribute = encoder.max_attribute_bytes();
    let mut attributes = Vec::new();
    if let Some(request_id) = &record.request_id {
        let value = value_of(AttrValue::Str(request_id), max_attribute).0;
        attributes.push(key_value("faas.invocation_id", value));
    }
    record.visit_attributes(&mut |key, value| {
        attributes.push(key_value(key, value_of(value, max_attribute).0));
    });
    let (body, _) = cut_text(&record.message, encoder.max_text_bytes());
    OtlpRecord {
        time_unix_nano: unix_nanos_of_ms(record.timestamp_ms),
        observed_time_unix_nano: observed,
        severity_number: severity_number(record.severity),
        severity_text: match record.severity {
            Severity::Unspecified => String::new(),
            s => s.as_str().to_owned(),
        },
        body: Some(AnyValue {
            value: Some(string(&body)),
        }),
        attributes,
        flags: if record.trace_id.is_some() { SAMPLED } else { 0 },
        trace_id: record.trace_id.map(|t| t.to_bytes().to_vec()).unwrap_or_default(),
        span_id: record.span_id.map(|s| s.to_bytes().to_vec()).unwrap_or_default(),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn writes_the_bytes_prost_writes_for_the_generated_type() {
    let source = lambda_source("checkout");
    let mut odd = report(&source);
    odd.timestamp_ms = -5;
    odd.severity = Severity::Fatal;
    odd.cold_start = Some(false);
    odd.request_id = Some(Arc::from(""));
    if let Some(details) = odd.details.as_mut() {
        details.metrics.memory_size_mb = Some(u64::MAX);
        details.metrics.max_memory_used_mb = Some(0);
        details.metrics.billed_duration_ms = Some(f64::NAN);
        details.metrics.init_duration_ms = Some(-0.0);
        details.error_type = Some("ß".repeat(OTLP_LIMITS.max_body_bytes / 16));
    }
    let mut no_trace = line(&source, "");
    no_trace.trace_id = None;
    no_trace.timestamp_ms = 0;
    no_trace.request_id = None;
    no_trace.join = None;
    no_trace.cold_start = None;
    let records = [
        line(&source, "paid"),
        report(&source),
        odd,
        no_trace,
        line(&source, &"é\n\"\u{1}".repeat(1000)),
        line(&source, &"ß".repeat(OTLP_LIMITS.max_body_bytes)),
    ];
    let encoder = OtlpEncoder::new(OtlpSettings::default(), OTLP_LIMITS);
    for record in &records {
        for observed in [0, 1_700_000_000_999_000_001] {
            let mut ours = vec![7];
            let encoded = encoder.encode_at(record, observed, &mut ours);
            assert_eq!(ours.remove(0), 7);
            assert_eq!(encoded.bytes, ours.len());
            let theirs = encoded_by_prost(&encoder, record, observed);
            assert!(ours == theirs, "{:?}", record.message.get(..20));
            // And it reads back as the generated type.
            let decoded = OtlpRecord::decode(ours.as_slice()).unwrap();
            assert_eq!(decoded.observed_time_unix_nano, observed);
        }
    }
    let mut cut = Vec::new();
    assert!(encoder.encode_at(&records[5], 0, &mut cut).truncated);
    assert!(encoder.encode_at(&records[2], 0, &mut cut).truncated);
    assert!(!encoder.encode_at(&records[4], 0, &mut cut).truncated);
}

#[test]
fn a_record_carries_time_severity_ids_and_attributes() {
    let encoder = OtlpEncoder::new(OtlpSettings::default(), OTLP_LIMITS);
    let source = lambda_source("checkout");
    let (request, _, _) = decode(&encoder, &[line(&source, "paid"), report(&source)]);
    let records = &request.resource_logs[0].scope_logs[0].log_records;
    let r = &records[0];
    assert_eq!(r.time_unix_nano, 1_700_000_000_123_000_000);
    assert!(r.observed_time_unix_nano > r.time_unix_nano);
    assert_eq!((r.severity_number, r.severity_text.as_str()), (13, "WARN"));
    assert_eq!(r.body.as_ref().unwrap().value, Some(string("paid")));
    assert_eq!(r.trace_id, TraceId::from_hex(TRACE).unwrap().to_bytes());
    assert_eq!(r.span_id, SpanId::from_hex(SPAN).unwrap().to_bytes());
    assert_eq!(r.flags, SAMPLED);
    assert_eq!(
        text(&r.attributes, "faas.invocation_id"),
        Some("8f5b1c2e-1111-2222-3333-444455556666")
    );
    assert_eq!(
        attr(&r.attributes, "faas.coldstart"),
        Some(&any_value::Value::BoolValue(true))
    );
    let report = &records[1];
    assert_eq!((report.severity_number, report.severity_text.as_str()), (0, ""));
    assert!(report.trace_id.is_empty() && report.span_id.is_empty() && report.flags == 0);
    let metric = attr(&report.attributes, "aws.lambda.duration_ms");
    assert_eq!(metric, Some(&any_value::Value::DoubleValue(12.5)));
    let memory = attr(&report.attributes, "aws.lambda.memory_size_mb");
    assert_eq!(memory, Some(&any_value::Value::IntValue(128)));
    assert_eq!(text(&report.attributes, "aws.lambda.status"), Some("timeout"));
}

#[test]
fn the_resource_follows_the_semantic_conventions() {
    let s = settings(&[
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            " deployment.environment=prod%2Ceu , cloud.region=us-east-1,note=a%3Db,",
        ),
        ("OTEL_SERVICE_NAME", "shop"),
    ]);
    let encoder = OtlpEncoder::new(s.unwrap(), DYNATRACE_OTLP_LIMITS);
    let (request, _, _) = decode(&encoder, &[line(&lambda_source("checkout"), "x")]);
    let attributes = resource_attributes(&request.resource_logs[0]);
    for (key, value) in [
        ("cloud.provider", "aws"),
        ("cloud.platform", "aws_lambda"),
        ("cloud.region", "eu-west-1"),
        ("cloud.account.id", "123456789012"),
        ("faas.name", "checkout"),
        ("service.name", "shop"),
        ("deployment.environment", "prod,eu"),
        ("note", "a=b"),
        ("team", "payments"),
    ] {
        assert_eq!(text(attributes, key), Some(value), "{key}");
    }
    let group = attr(attributes, "aws.log.group.names");
    let Some(any_value::Value::ArrayValue(names)) = group else {
        panic!("{group:?}")
    };
    assert_eq!(
        names.values,
        [AnyValue {
            value: Some(string("/aws/lambda/checkout"))
        }]
    );
    assert!(attr(attributes, "aws.log.stream.names").is_some());
    assert_eq!(attributes.iter().filter(|kv| kv.key == "cloud.region").count(), 1);
}

#[test]
fn service_name_falls_back_to_the_users_then_the_function_then_the_group() {
    let service = |pairs: &[(&str, &str)], source: Arc<Source>| {
        let encoder = OtlpEncoder::new(settings(pairs).unwrap(), OTLP_LIMITS);
        let (request, _, _) = decode(&encoder, &[line(&source, "x")]);
        text(resource_attributes(&request.resource_logs[0]), "service.name").map(str::to_owned)
    };
    let user = [("OTEL_RESOURCE_ATTRIBUTES", "service.name=orders")];
    assert_eq!(
        service(&user, lambda_source("checkout")).as_deref(),
        Some("orders")
    );
    assert_eq!(
        service(&[], lambda_source("checkout")).as_deref(),
        Some("checkout")
    );
    let plain = Arc::new(Source {
        log_group: "app/orders".to_owned(),
        ..Default::default()
    });
    assert_eq!(service(&[], plain).as_deref(), Some("app/orders"));
}

#[test]
fn a_huge_message_is_cut_with_the_marker() {
    let encoder = OtlpEncoder::new(OtlpSettings::default(), DYNATRACE_OTLP_LIMITS);
    let message = "ß".repeat(DYNATRACE_OTLP_LIMITS.max_body_bytes);
    let (request, _, truncated) = decode(&encoder, &[line(&lambda_source("checkout"), &message)]);
    assert!(truncated);
    let r = &request.resource_logs[0].scope_logs[0].log_records[0];
    let Some(any_value::Value::StringValue(body)) = &r.body.as_ref().unwrap().value else {
        panic!()
    };
    assert!(body.ends_with(TRUNCATED) && body.len() <= DYNATRACE_OTLP_LIMITS.max_body_bytes / 2);
    for max in 0..30 {
        let (cut, was_cut) = cut_text("ßßßßßßßßßßßßßßßß", max);
        assert!(was_cut && cut.len() <= max);
    }
}

#[test]
fn settings_name_the_variable() {
    for value in ["a", "=b", "k=%zz", "k=%ff", "k=%4"] {
        let err = settings(&[("OTEL_RESOURCE_ATTRIBUTES", value)]).unwrap_err();
        assert_eq!(err.var(), "OTEL_RESOURCE_ATTRIBUTES");
    }
    assert_eq!(
        settings(&[("OTEL_SERVICE_NAME", "  ")]).unwrap().service_name,
        None
    );
}

#[test]
fn describes_its_requests() {
    let encoder = OtlpEncoder::new(OtlpSettings::default(), OTLP_LIMITS);
    assert_eq!(encoder.content_type(), "application/x-protobuf");
    assert_eq!(encoder.limits().max_body_bytes, 4 * 1024 * 1024);
    let (entries, _) = entries(&encoder, &[]);
    assert!(encoder.body(&entries, 0..0).is_empty());
}
