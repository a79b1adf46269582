//! The local vendor intake itself: it must accept what each vendor documents, refuse what it does not, and
//! play its faults as configured, or every delivery test built on it proves nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/intake.rs"]
mod intake;

use std::io::Write;
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use intake::{Answer, Intake, IntakeConfig, Outcome, RandomFaults, Vendor};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;
use serde_json::{json, Value};

const DT_TOKEN: &str = "dt0c01.TEST";
const DD_KEY: &str = "dd-test-key";

async fn start() -> Intake {
    Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Headers replace none of reqwest's (it appends), so each request states all of its own.
fn post(
    intake: &Intake,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> reqwest::RequestBuilder {
    let mut request = client().post(format!("{}{path}", intake.base_url())).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
}

const DT_AUTH: (&str, &str) = ("Authorization", "Api-Token dt0c01.TEST");
const DT_JSON: (&str, &str) = ("Content-Type", "application/json; charset=utf-8");
const DD_AUTH: (&str, &str) = ("DD-API-KEY", DD_KEY);
const JSON: (&str, &str) = ("Content-Type", "application/json");
const PROTOBUF: (&str, &str) = ("Content-Type", "application/x-protobuf");

fn dynatrace(intake: &Intake, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
    post(intake, "/api/v2/logs/ingest", &[DT_AUTH, DT_JSON], body)
}

fn datadog(intake: &Intake, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
    post(intake, "/api/v2/logs", &[DD_AUTH, JSON], body)
}

fn otlp(intake: &Intake, path: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
    post(intake, path, &[PROTOBUF], body)
}

fn logs_request(trace_id: Vec<u8>, span_id: Vec<u8>) -> ExportLogsServiceRequest {
    let record = LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000,
        severity_text: "INFO".into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue("hello".into())),
        }),
        trace_id,
        span_id,
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![record],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test]
async fn good_requests_of_each_vendor_are_accepted_and_recorded() {
    let intake = start().await;

    let records = json!([{"content": "hello", "timestamp": "2024-01-01T00:00:00Z", "dt.trace_id": "ab"}]);
    let response = dynatrace(&intake, gzip(records.to_string().as_bytes()))
        .header("Content-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    let entries = json!([{"message": "hi", "ddsource": "lambda", "service": "svc"}]);
    let response = datadog(&intake, entries.to_string()).send().await.unwrap();
    assert_eq!(response.status(), 202);

    let proto = logs_request(vec![1; 16], vec![2; 8]).encode_to_vec();
    let response = otlp(&intake, "/v1/logs", gzip(&proto))
        .header("Content-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let body = response.bytes().await.unwrap();
    assert_eq!(
        ExportLogsServiceResponse::decode(body).unwrap(),
        ExportLogsServiceResponse::default()
    );

    let body = logs_request(vec![], vec![]).encode_to_vec();
    let response = post(&intake, "/api/v2/otlp/v1/logs", &[DT_AUTH, PROTOBUF], body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    assert_eq!(intake.violations(), Vec::<String>::new());
    assert_eq!(
        intake.accepted_entries(Vendor::Dynatrace),
        records.as_array().unwrap().clone()
    );
    assert_eq!(
        intake.accepted_entries(Vendor::Datadog),
        entries.as_array().unwrap().clone()
    );
    let otlp_entries = intake.accepted_entries(Vendor::Otlp);
    assert_eq!(otlp_entries.len(), 1);
    assert_eq!(otlp_entries[0]["body"], "hello");
    assert_eq!(otlp_entries[0]["trace_id"], "01".repeat(16));
    assert_eq!(otlp_entries[0]["span_id"], "02".repeat(8));
    assert_eq!(
        intake.accepted_otlp(Vendor::DynatraceOtlp),
        vec![logs_request(vec![], vec![])]
    );

    let requests = intake.requests();
    let seqs: Vec<u64> = requests.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
    assert_eq!(requests[0].headers["content-encoding"], "gzip");
    assert_eq!(requests[1].headers["dd-api-key"], DD_KEY);
    assert!(requests.iter().all(|r| r.success() && r.injected.is_none()));
    assert_eq!(intake.summary()["requests"]["datadog"]["202"], 1);
    intake.shutdown().await;
}

/// Sends one request, expects `status`, and returns the violations it added.
async fn refused(intake: &Intake, request: reqwest::RequestBuilder, status: u16) -> Vec<String> {
    let before = intake.violations().len();
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), status);
    let violations = intake.violations()[before..].to_vec();
    assert!(!violations.is_empty(), "refused without a violation");
    violations
}

#[tokio::test]
async fn contract_violations_are_refused_and_recorded() {
    let intake = start().await;
    let good_dt = json!([{"content": "x", "timestamp": 1}]).to_string();

    let dt = "/api/v2/logs/ingest";
    let wrong_token = post(
        &intake,
        dt,
        &[("Authorization", "Api-Token no"), DT_JSON],
        good_dt.clone(),
    );
    let v = refused(&intake, wrong_token, 401).await;
    assert!(v[0].contains("Api-Token"), "{v:?}");
    let v = refused(
        &intake,
        post(&intake, "/api/v2/logs", &[("DD-API-KEY", "no"), JSON], "[]"),
        403,
    )
    .await;
    assert!(v[0].contains("DD-API-KEY"), "{v:?}");
    let text = ("Content-Type", "text/plain");
    let v = refused(&intake, post(&intake, dt, &[DT_AUTH, text], good_dt.clone()), 400).await;
    assert!(v[0].contains("Content-Type"), "{v:?}");
    let latin1 = ("Content-Type", "application/json; charset=latin1");
    let v = refused(
        &intake,
        post(&intake, dt, &[DT_AUTH, latin1], good_dt.clone()),
        400,
    )
    .await;
    assert!(v[0].contains("Content-Type"), "{v:?}");
    let v = refused(
        &intake,
        post(&intake, "/api/v2/logs", &[DD_AUTH, text], "[]"),
        400,
    )
    .await;
    assert!(v[0].contains("Content-Type"), "{v:?}");
    // Media types are case-insensitive and the charset is optional.
    let upper = ("content-type", "Application/JSON; Charset=UTF-8");
    let response = post(&intake, dt, &[DT_AUTH, upper], good_dt.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = post(&intake, dt, &[DT_AUTH, JSON], good_dt.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    let nested = json!([{"content": "x", "timestamp": 1, "aws": {"region": "eu-west-1"}}]).to_string();
    let v = refused(&intake, dynatrace(&intake, nested), 400).await;
    assert!(v[0].contains("nested"), "{v:?}");
    let no_content = json!([{"timestamp": 1}]).to_string();
    let v = refused(&intake, dynatrace(&intake, no_content), 400).await;
    assert!(v[0].contains("content"), "{v:?}");

    let too_many: Vec<Value> = (0..1_001).map(|i| json!({"message": format!("m{i}")})).collect();
    let v = refused(&intake, datadog(&intake, Value::from(too_many).to_string()), 413).await;
    assert!(v[0].contains("1001 entries"), "{v:?}");
    let bad_source = json!([{"message": "m", "ddsource": 7}]).to_string();
    let v = refused(&intake, datadog(&intake, bad_source), 400).await;
    assert!(v[0].contains("ddsource"), "{v:?}");

    let v = refused(
        &intake,
        otlp(&intake, "/v1/logs", b"\xff\xff\xff not protobuf".to_vec()),
        400,
    )
    .await;
    assert!(v[0].contains("ExportLogsServiceRequest"), "{v:?}");
    let short_trace = logs_request(vec![1; 8], vec![2; 8]).encode_to_vec();
    let v = refused(&intake, otlp(&intake, "/v1/logs", short_trace), 400).await;
    assert!(v[0].contains("trace_id of 8 bytes"), "{v:?}");
    let dt_otlp = otlp(
        &intake,
        "/api/v2/otlp/v1/logs",
        logs_request(vec![], vec![]).encode_to_vec(),
    );
    refused(&intake, dt_otlp, 401).await;

    let v = refused(&intake, post(&intake, "/v1/profiles", &[PROTOBUF], ""), 404).await;
    assert!(v[0].contains("POST /v1/profiles"), "{v:?}");

    let refused: Vec<_> = intake.requests().into_iter().filter(|r| !r.success()).collect();
    assert_eq!(refused.len(), 13);
    assert!(refused.iter().all(|r| !r.violations.is_empty()));
    assert_eq!(intake.accepted_entries(Vendor::Dynatrace).len(), 2);
    // Refused requests keep what they carried, for assertions on what the client sent.
    assert_eq!(refused[6].entries, vec![json!({"timestamp": 1})]);
}

#[tokio::test]
async fn otlp_auth_header_is_checked_when_configured() {
    let mut config = IntakeConfig::new(DT_TOKEN, DD_KEY);
    config.otlp_header = Some(("x-api-key".into(), "secret".into()));
    let intake = Intake::start(config).await;
    let body = logs_request(vec![], vec![]).encode_to_vec();
    refused(&intake, otlp(&intake, "/v1/logs", body.clone()), 401).await;
    let with_key = post(&intake, "/v1/logs", &[PROTOBUF, ("x-api-key", "secret")], body);
    let response = with_key.send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_script_is_played_in_order_then_normal_behaviour_resumes() {
    let intake = start().await;
    intake.script(
        Vendor::Datadog,
        vec![
            Answer::status(429).retry_after(3),
            Answer::status(503).delay(Duration::from_millis(20)),
            Answer::Reset,
            Answer::pass(),
        ],
    );
    let body = || json!([{"message": "m"}]).to_string();

    let response = datadog(&intake, body()).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    let response = datadog(&intake, body()).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_none());
    let error = datadog(&intake, body()).send().await.unwrap_err();
    assert!(!error.is_status(), "{error:?}");
    assert_eq!(datadog(&intake, body()).send().await.unwrap().status(), 202);
    assert_eq!(datadog(&intake, body()).send().await.unwrap().status(), 202);

    let outcomes: Vec<Outcome> = intake.requests().iter().map(|r| r.outcome).collect();
    let expected = [429, 503]
        .map(Outcome::Answered)
        .into_iter()
        .chain([Outcome::Reset]);
    let expected: Vec<Outcome> = expected.chain([Outcome::Answered(202); 2]).collect();
    assert_eq!(outcomes, expected);
    assert_eq!(intake.accepted_entries(Vendor::Datadog).len(), 2);
    assert_eq!(
        intake.unacknowledged_entries(Vendor::Datadog),
        vec![json!({"message": "m"})]
    );
    let injected = intake.injected(Vendor::Datadog);
    assert_eq!(
        (injected.failures(), injected.resets, injected.delayed),
        (3, 1, 1)
    );
    // Scripts are per vendor: Dynatrace was never scripted.
    let dt = json!([{"content": "x", "timestamp": 1}]).to_string();
    assert_eq!(dynatrace(&intake, dt).send().await.unwrap().status(), 204);
    assert!(intake.violations().is_empty());
}

#[tokio::test]
async fn random_faults_fail_about_the_configured_fraction() {
    let intake = start().await;
    let mut faults = RandomFaults::new(0.3, 7);
    faults.slow = Duration::from_millis(1);
    intake.random_faults(Vendor::Dynatrace, Some(faults));
    let body = json!([{"content": "x", "timestamp": 1}]).to_string();
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..400 {
        match dynatrace(&intake, body.clone()).send().await {
            Ok(response) if response.status() == 204 => ok += 1,
            _ => failed += 1,
        }
    }
    assert!((80..=160).contains(&failed), "{failed} of 400 failed");
    let injected = intake.injected(Vendor::Dynatrace);
    assert_eq!(injected.failures(), failed);
    for code in [429, 500, 503, 504] {
        assert!(
            injected.statuses.get(&code).is_some_and(|n| *n > 0),
            "{code} never injected: {injected:?}"
        );
    }
    assert!(injected.resets > 0);
    // Only bodies above the threshold can draw a 413.
    assert!(!injected.statuses.contains_key(&413));
    assert_eq!(intake.accepted_count(Vendor::Dynatrace), ok);
    assert!(intake.violations().is_empty());

    intake.random_faults(Vendor::Dynatrace, None);
    assert_eq!(dynatrace(&intake, body).send().await.unwrap().status(), 204);
}

#[tokio::test]
async fn limits_are_configurable_and_checked_after_inflating() {
    let mut config = IntakeConfig::new(DT_TOKEN, DD_KEY);
    config.dynatrace_limits.records = 2;
    config.dynatrace_limits.request_bytes = 1_000;
    config.body_cap = 100_000;
    let intake = Intake::start(config).await;
    let three = json!([{"content": "a", "timestamp": 1}, {"content": "b", "timestamp": 1}, {"content": "c", "timestamp": 1}]);
    let v = refused(&intake, dynatrace(&intake, three.to_string()), 413).await;
    assert!(v[0].contains("3 records, over 2"), "{v:?}");

    // Small on the wire, large once inflated: the limit is on the uncompressed body.
    let large = json!([{"content": "x".repeat(5_000), "timestamp": 1}]).to_string();
    let v = refused(
        &intake,
        dynatrace(&intake, gzip(large.as_bytes())).header("Content-Encoding", "gzip"),
        413,
    );
    assert!(v.await[0].contains("uncompressed, over 1000"));
    let bomb = gzip(&vec![b' '; 1_000_000]);
    let v = refused(
        &intake,
        dynatrace(&intake, bomb).header("Content-Encoding", "gzip"),
        413,
    )
    .await;
    assert!(v[0].contains("cap"), "{v:?}");
    let v = refused(
        &intake,
        dynatrace(&intake, b"not gzip".to_vec()).header("Content-Encoding", "gzip"),
        400,
    );
    assert!(v.await[0].contains("inflate"));
    let v = refused(
        &intake,
        dynatrace(&intake, "[]").header("Content-Encoding", "br"),
        400,
    )
    .await;
    assert!(v[0].contains("Content-Encoding"), "{v:?}");
}

#[tokio::test]
async fn minimal_mode_counts_entries_and_keeps_no_requests() {
    let mut config = IntakeConfig::new(DT_TOKEN, DD_KEY);
    config.minimal = true;
    let intake = Intake::start(config).await;
    let records = json!([{"content": "a", "timestamp": 1}, {"content": "b", "nested": {"ok": "here"}}]);
    assert_eq!(
        dynatrace(&intake, records.to_string())
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let entries = json!([{"message": "m"}, {"message": "n"}, {"message": "o"}]);
    assert_eq!(
        datadog(&intake, entries.to_string())
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    // Auth is still checked.
    let wrong = post(
        &intake,
        "/api/v2/logs",
        &[("DD-API-KEY", "no"), JSON],
        entries.to_string(),
    );
    assert_eq!(wrong.send().await.unwrap().status(), 403);
    assert_eq!(intake.accepted_count(Vendor::Dynatrace), 2);
    assert_eq!(intake.accepted_count(Vendor::Datadog), 3);
    assert!(intake.requests().is_empty());
    assert_eq!(intake.summary()["requests"]["datadog"]["403"], 1);
}

/// The answers that could mislead a client: a redirect with its Location, partial successes in each vendor's
/// documented shape, `Retry-After` as an HTTP-date, and a hang, recorded as received but unacknowledged.
#[tokio::test]
async fn redirects_partial_successes_dates_and_hangs_are_played_as_documented() {
    let intake = start().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    intake.script(
        Vendor::Datadog,
        vec![
            Answer::redirect(308, "http://elsewhere.example/api/v2/logs"),
            Answer::status(503).retry_after_date(120),
            Answer::partial(3),
        ],
    );
    let entries = || json!([{"message": "m"}]).to_string();
    let url = format!("{}/api/v2/logs", intake.base_url());
    let send = |body: String| {
        no_redirects
            .post(&url)
            .header(DD_AUTH.0, DD_AUTH.1)
            .header(JSON.0, JSON.1)
            .body(body)
            .send()
    };
    let response = send(entries()).await.unwrap();
    assert_eq!(response.status(), 308);
    assert_eq!(
        response.headers()["location"],
        "http://elsewhere.example/api/v2/logs"
    );
    let response = send(entries()).await.unwrap();
    assert_eq!(response.status(), 503);
    let date = response.headers()["retry-after"].to_str().unwrap().to_owned();
    let at = httpdate::parse_http_date(&date).unwrap();
    assert!(
        at > std::time::SystemTime::now() + Duration::from_secs(60),
        "{date}"
    );
    // Datadog has no partial success: its normal answer.
    assert_eq!(send(entries()).await.unwrap().status(), 202);
    assert_eq!(intake.kept_entries(Vendor::Datadog).len(), 1);

    // OTLP: 200 with partial_success, the refused count at most what the request held.
    intake.script(Vendor::Otlp, vec![Answer::partial(5)]);
    let proto = logs_request(vec![1; 16], vec![2; 8]).encode_to_vec();
    let response = otlp(&intake, "/v1/logs", proto).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer = ExportLogsServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(answer.partial_success.unwrap().rejected_log_records, 1);
    assert!(intake.kept_entries(Vendor::Otlp).is_empty());

    // Dynatrace: its documented 200, which says no count, so none of the request is kept.
    intake.script(Vendor::Dynatrace, vec![Answer::partial(0), Answer::Hang]);
    let records = || json!([{"content": "x", "timestamp": 1}, {"content": "y", "timestamp": 2}]).to_string();
    let response = dynatrace(&intake, records()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert!(body["details"]["message"].is_string(), "{body}");
    assert!(intake.kept_entries(Vendor::Dynatrace).is_empty());
    assert_eq!(intake.accepted_entries(Vendor::Dynatrace).len(), 2);

    let hung = dynatrace(&intake, records())
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(hung.is_timeout(), "{hung:?}");
    let last = intake.requests().pop().unwrap();
    assert_eq!(last.outcome, Outcome::Hung);
    assert!(last.unacknowledged());
    assert_eq!(intake.unacknowledged_entries(Vendor::Dynatrace).len(), 2);
    let injected = intake.injected(Vendor::Dynatrace);
    assert_eq!((injected.partial, injected.hangs), (1, 1));
    intake.shutdown().await;
}

/// The platform telemetry's endpoints: OTLP metrics and traces decoded with the real types, cumulative
/// metrics refused on Dynatrace's path only, Datadog's distribution contract checked.
#[tokio::test]
async fn telemetry_endpoints_check_their_contracts() {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use opentelemetry_proto::tonic::metrics::v1::{
        metric, number_data_point, AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics,
        ScopeMetrics, Sum,
    };
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    let intake = start().await;
    let metrics = |temporality: AggregationTemporality| {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "faas.invocations".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: vec![NumberDataPoint {
                                start_time_unix_nano: 1,
                                time_unix_nano: 2,
                                value: Some(number_data_point::Value::AsInt(1)),
                                ..Default::default()
                            }],
                            aggregation_temporality: temporality as i32,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    };
    let delta = metrics(AggregationTemporality::Delta);
    let cumulative = metrics(AggregationTemporality::Cumulative);
    let dt_metrics = "/api/v2/otlp/v1/metrics";
    for (path, auth) in [("/v1/metrics", None), (dt_metrics, Some(DT_AUTH))] {
        let headers: Vec<_> = [Some(PROTOBUF), auth].into_iter().flatten().collect();
        let response = post(&intake, path, &headers, gzip(&delta))
            .header("Content-Encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    assert_eq!(intake.accepted_metrics(Vendor::OtlpMetrics).len(), 1);
    assert_eq!(
        intake.accepted_entries(Vendor::DynatraceOtlpMetrics)[0]["temporality"],
        "delta"
    );
    let violations = refused(
        &intake,
        post(&intake, dt_metrics, &[PROTOBUF, DT_AUTH], cumulative.clone()),
        400,
    )
    .await;
    assert!(violations[0].contains("cumulative"), "{violations:?}");
    // A generic OTLP backend takes cumulative points.
    let response = post(&intake, "/v1/metrics", &[PROTOBUF], cumulative)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    refused(&intake, post(&intake, dt_metrics, &[PROTOBUF], delta), 401).await;

    let span = |span_id: Vec<u8>| {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![1; 16],
                        span_id,
                        name: "checkout".into(),
                        start_time_unix_nano: 1,
                        end_time_unix_nano: 2,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    };
    intake.script(Vendor::DynatraceOtlpTraces, vec![Answer::partial(1)]);
    let response = post(
        &intake,
        "/api/v2/otlp/v1/traces",
        &[PROTOBUF, DT_AUTH],
        span(vec![2; 8]),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let answer = ExportTraceServiceResponse::decode(&response.bytes().await.unwrap()[..]).unwrap();
    assert_eq!(answer.partial_success.unwrap().rejected_spans, 1);
    assert!(intake.kept_entries(Vendor::DynatraceOtlpTraces).is_empty());
    refused(&intake, otlp(&intake, "/v1/traces", span(vec![0; 8])), 400).await;
    let response = otlp(&intake, "/v1/traces", span(vec![3; 8]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        intake.accepted_entries(Vendor::OtlpTraces)[0]["span_id"],
        "0303030303030303"
    );

    let dd = "/api/v1/distribution_points";
    let series = |kind: &str, value: Value| {
        json!({"series": [{"metric": "aws.lambda.enhanced.duration", "points": [[1_700_000_000, [value]]],
                           "tags": ["functionname:f"], "type": kind}]})
        .to_string()
    };
    let response = post(
        &intake,
        dd,
        &[DD_AUTH, JSON],
        gzip(series("distribution", json!(0.5)).as_bytes()),
    )
    .header("Content-Encoding", "gzip")
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(intake.accepted_entries(Vendor::DatadogMetrics).len(), 1);
    refused(
        &intake,
        post(&intake, dd, &[DD_AUTH, JSON], series("gauge", json!(0.5))),
        400,
    )
    .await;
    refused(
        &intake,
        post(&intake, dd, &[DD_AUTH, JSON], series("distribution", json!("x"))),
        400,
    )
    .await;
    refused(&intake, post(&intake, dd, &[DD_AUTH, JSON], "[]"), 400).await;
    refused(
        &intake,
        post(&intake, dd, &[JSON], series("distribution", json!(1))),
        403,
    )
    .await;
    intake.shutdown().await;
}
