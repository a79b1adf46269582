#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::*;

fn sample(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::read_to_string(root.join(path)).unwrap()
}

/// Long enough for any test; the deadline logic has its own tests.
const LEFT: Duration = Duration::from_secs(60);

fn handler() -> Handler {
    handler_with(&[])
}

fn handler_with(vars: &[(&str, &str)]) -> Handler {
    let settings = crate::deliver::Settings::from_pairs(vars.iter().copied());
    let delivery = DeliverySetup::from_settings(&settings).unwrap();
    let mode = FirehoseMode::from_lookup(&|name| settings.get(name)).unwrap();
    Handler::new(Limits::default(), Some("eu-west-1".into()), None, delivery, mode)
}

fn records(response: &Value) -> Vec<(String, String, Vec<u8>)> {
    response["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let data = crate::input::decode::base64_decode(r["data"].as_str().unwrap()).unwrap();
            (
                r["recordId"].as_str().unwrap().to_owned(),
                r["result"].as_str().unwrap().to_owned(),
                data,
            )
        })
        .collect()
}

fn gunzip(data: &[u8]) -> String {
    let mut out = String::new();
    MultiGzDecoder::new(data).read_to_string(&mut out).unwrap();
    out
}

#[tokio::test]
async fn transformation_answers_every_record_once() {
    let event = sample("samples/events/firehose-transformation-streams.json");
    let response = handler().handle(event.clone(), LEFT).await.unwrap();
    let records = records(&response);
    let parsed: Value = serde_json::from_str(&event).unwrap();
    let sent: Vec<&str> = parsed["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["recordId"].as_str().unwrap())
        .collect();
    let answered: Vec<&str> = records.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(answered, sent);
    let results: Vec<&str> = records.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(results, ["Ok", "Ok", "Dropped", "Ok"]);
    let first = gunzip(&records[0].2);
    let lines: Vec<Value> = first.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 6);
    assert!(
        lines
            .iter()
            .all(|l| l["trace_id"] == "5f35ae120c0fec141ab77a00bc047aa2"),
        "{first}"
    );
    assert_eq!(lines[0]["attributes"]["cloud.region"], "eu-west-1");
}

/// What a transformation answers goes on to a destination: the user's filter and scrub rules apply to it as
/// to every other output, and the lines they drop are counted filtered.
#[tokio::test]
async fn a_transformation_answers_with_filtered_and_scrubbed_records() {
    let event = sample("samples/events/firehose-transformation-streams.json");
    let mut handler = handler_with(&[
        ("TRACEHOSE_EXCLUDE_PATTERN", "basket|no marker"),
        (
            "TRACEHOSE_REPLACE",
            r#"[{"pattern":"\\d+\\.\\d+ EUR","replacement":"<price>"}]"#,
        ),
    ]);
    let (result, tally) = handler.handle_tallied(event, LEFT).await;
    let records = records(&result.unwrap());
    let results: Vec<&str> = records.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(results, ["Ok", "Ok", "Dropped", "Ok"]);
    let first = gunzip(&records[0].2);
    assert!(!first.contains("basket"), "{first}");
    assert!(first.contains("price computed: <price>"), "{first}");
    assert!(!gunzip(&records[1].2).contains("no marker"));
    assert_eq!(tally.summary.filtered, 2, "{}", tally.summary);
    let all = [&records[0].2, &records[1].2, &records[3].2]
        .iter()
        .map(|data| gunzip(data).lines().count() as u64)
        .sum::<u64>();
    assert_eq!(tally.summary.delivered, all, "{}", tally.summary);
}

#[tokio::test]
async fn hostile_records_fail_alone() {
    let event = sample("samples/broken/firehose-batch-hostile.json");
    let response = handler().handle(event.clone(), LEFT).await.unwrap();
    let results: Vec<String> = records(&response).into_iter().map(|r| r.1).collect();
    assert_eq!(
        results,
        ["ProcessingFailed"; 5]
            .into_iter()
            .chain(["Ok"])
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn warm_state_joins_an_invocation_split_across_invocations() {
    let mut warm = handler();
    warm.handle(sample("samples/events/split-delivery.1.json"), LEFT)
        .await
        .unwrap();
    // The second delivery's lines carry no request id: only state from the first invocation joins them.
    let second = sample("samples/events/split-delivery.2.json");
    let response = warm.handle(second.clone(), LEFT).await.unwrap();
    assert_eq!(response["summary"]["joined"], 4, "{response}");
    let cold = handler().handle(second.clone(), LEFT).await.unwrap();
    assert_eq!(
        cold["summary"]["joined"], 0,
        "a forwarder without the first delivery knows no trace for it"
    );
}

#[tokio::test]
async fn undecodable_direct_events_are_reported_not_retried() {
    let response = handler()
        .handle(sample("samples/broken/direct-bad-base64.json"), LEFT)
        .await
        .unwrap();
    assert_eq!(response["summary"]["failed_records"], 1);
}

#[tokio::test]
async fn create_log_group_without_subscription_settings_is_ignored_loudly() {
    let event = r#"{"version":"0","id":"1","detail-type":"AWS API Call via CloudTrail","source":"aws.logs","detail":{"eventSource":"logs.amazonaws.com","eventName":"CreateLogGroup","requestParameters":{"logGroupName":"/aws/lambda/new"}}}"#;
    let response = handler().handle(event.to_owned(), LEFT).await.unwrap();
    assert!(response.get("ignored").is_some(), "{response}");
}

fn transformation(records: Vec<Value>) -> String {
    json!({"invocationId": "i", "deliveryStreamArn": "arn:aws:firehose:eu-west-1:1:deliverystream/x",
        "region": "eu-west-1", "records": records})
    .to_string()
}

fn gz_b64(data: &[u8]) -> String {
    use base64::Engine as _;
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    base64::engine::general_purpose::STANDARD.encode(e.finish().unwrap())
}

fn payload_b64(message: &str) -> String {
    let payload = json!({"messageType": "DATA_MESSAGE", "logGroup": "g", "logStream": "s",
        "logEvents": [{"id": "1", "timestamp": 1, "message": message}]});
    gz_b64(payload.to_string().as_bytes())
}

#[tokio::test]
async fn a_malformed_record_is_answered_alone_by_its_id() {
    let good = payload_b64("ok");
    let event = transformation(vec![
        json!({"recordId": "a", "data": good}),
        json!({"recordId": "b", "data": null}),
        json!({"recordId": "c", "data": 5}),
        json!({"recordId": "d", "data": good}),
    ]);
    let response = handler().handle(event.clone(), LEFT).await.unwrap();
    let answered: Vec<(String, String)> = records(&response).into_iter().map(|r| (r.0, r.1)).collect();
    let want = [
        ("a", "Ok"),
        ("b", "ProcessingFailed"),
        ("c", "ProcessingFailed"),
        ("d", "Ok"),
    ];
    assert_eq!(
        answered,
        want.map(|(id, result)| (id.to_owned(), result.to_owned()))
    );
}

#[tokio::test]
async fn a_record_with_an_unreadable_event_fails_whole() {
    let payload = json!({"messageType": "DATA_MESSAGE", "logGroup": "g", "logStream": "s",
        "logEvents": [{"id": "1", "timestamp": 1, "message": "ok"}, {"id": "2", "timestamp": "x", "message": "bad"}]});
    let event = transformation(vec![
        json!({"recordId": "a", "data": gz_b64(payload.to_string().as_bytes())}),
    ]);
    let response = handler().handle(event.clone(), LEFT).await.unwrap();
    assert_eq!(records(&response)[0].1, "ProcessingFailed");
}

#[tokio::test]
async fn every_byte_of_the_response_counts_against_the_cap() {
    // Records that fail (bad gzip) echo their data; with 5.8 MB of them the response must still fit.
    use base64::Engine as _;
    let junk = base64::engine::general_purpose::STANDARD.encode([0x1f, 0x8b, 0, 0].repeat(25_000));
    let mut batch: Vec<Value> = (0..58)
        .map(|i| json!({"recordId": format!("failed-{i}"), "data": junk}))
        .collect();
    // And records whose output is large: incompressible messages.
    let noise: String = (0..700_000u32)
        .map(|i| char::from(b'a' + (i.wrapping_mul(2_654_435_761) >> 27) as u8 % 26))
        .collect();
    for i in 0..4 {
        batch.push(json!({"recordId": format!("big-{i}"), "data": payload_b64(&noise)}));
    }
    let event = transformation(batch);
    assert!(event.len() > 5_800_000, "{}", event.len());
    let response = handler().handle(event.clone(), LEFT).await.unwrap();
    let body = serde_json::to_string(&response).unwrap();
    assert!(body.len() <= 6_000_000, "response of {} bytes", body.len());
    assert_eq!(records(&response).len(), 62, "every record is answered");
}

fn endpoint_handler(ndjson: &Path) -> Handler {
    let vars = [
        ("TRACEHOSE_STDOUT", "false"),
        ("TRACEHOSE_FILE", ndjson.to_str().unwrap()),
        ("TRACEHOSE_ACCESS_KEYS", "the-key"),
    ];
    let settings = crate::deliver::Settings::from_pairs(vars);
    let delivery = DeliverySetup::from_settings(&settings).unwrap();
    let keys = AccessKeys::from_settings(&settings, false).unwrap();
    let endpoint = Endpoint::new(keys, delivery, Limits::default(), None, EndpointConfig::default());
    handler_with(&vars).with_endpoint(endpoint)
}

/// An API Gateway REST (payload 1.0) event: headers in the client's case, a plain body.
fn api_gateway_event(key: &str) -> String {
    let body = sample("samples/events/firehose-http-json-format.json");
    let request_id = serde_json::from_str::<Value>(&body).unwrap()["requestId"].clone();
    json!({
        "resource": "/", "path": "/", "httpMethod": "POST",
        "headers": {
            "X-Amz-Firehose-Protocol-Version": "1.0", "X-Amz-Firehose-Request-Id": request_id,
            "X-Amz-Firehose-Access-Key": key, "Content-Type": "application/json",
        },
        "requestContext": {"resourcePath": "/", "httpMethod": "POST", "stage": "prod"},
        "body": body, "isBase64Encoded": false,
    })
    .to_string()
}

#[tokio::test]
async fn api_gateway_and_function_url_events_are_answered_as_the_endpoint() {
    let dir = std::env::temp_dir().join(format!("tracehose-lambda-endpoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ndjson = dir.join("out.ndjson");
    let mut handler = endpoint_handler(&ndjson);
    let response = handler.handle(api_gateway_event("wrong"), LEFT).await.unwrap();
    assert_eq!(response["statusCode"], 401, "{response}");
    assert!(!ndjson.exists() || std::fs::read_to_string(&ndjson).unwrap().is_empty());
    let response = handler.handle(api_gateway_event("the-key"), LEFT).await.unwrap();
    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(response["headers"]["content-type"], "application/json");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["requestId"], "ed4d7aa6-8a5e-4a6a-8b1d-2f6d8f0b3c11");
    assert_eq!(std::fs::read_to_string(&ndjson).unwrap().lines().count(), 7);
    // Without the endpoint set up, a function URL request is refused, never processed.
    let response = handler_with(&[])
        .handle(api_gateway_event("the-key"), LEFT)
        .await
        .unwrap();
    assert_eq!(response["statusCode"], 500, "{response}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_unrecognised_event_is_an_error_naming_what_arrived() {
    let event = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}).to_string();
    let err = handler().handle(event, LEFT).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("detail-type") && message.contains("from aws.events"),
        "{message}"
    );
}

/// Every face adds its counts to the invocation's tally, which `handle` prints whatever the event.
#[tokio::test]
async fn every_face_counts_what_it_did() {
    let dir = std::env::temp_dir().join(format!("tracehose-lambda-tally-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ndjson = dir.join("out.ndjson");
    let file = ndjson.to_str().unwrap();

    // A direct subscription: 7 lines shipped.
    let mut direct = handler_with(&[("TRACEHOSE_STDOUT", "false"), ("TRACEHOSE_FILE", file)]);
    let (result, tally) = direct
        .handle_tallied(sample("samples/events/direct-python-cold-xray.json"), LEFT)
        .await;
    result.unwrap();
    assert_eq!((tally.summary.events_in, tally.summary.delivered), (7, 7));
    assert_eq!(tally.ledger.lines, 7);

    // A transformation in transform mode: counted, nothing handed to the delivery stage.
    let (result, tally) = handler()
        .handle_tallied(
            sample("samples/events/firehose-transformation-streams.json"),
            LEFT,
        )
        .await;
    result.unwrap();
    assert!(tally.summary.delivered > 0, "{}", tally.summary);
    assert_eq!(tally.ledger.lines, 0);

    // The same in forward mode: shipped, and the ledger says so.
    let mut forward = handler_with(&[
        ("TRACEHOSE_STDOUT", "false"),
        ("TRACEHOSE_FILE", file),
        ("TRACEHOSE_FIREHOSE_MODE", "forward"),
    ]);
    let (result, tally) = forward
        .handle_tallied(
            sample("samples/events/firehose-transformation-streams.json"),
            LEFT,
        )
        .await;
    result.unwrap();
    assert!(tally.summary.delivered > 0);
    assert_eq!(tally.ledger.lines, tally.summary.delivered, "{}", tally.ledger);

    // A function URL request: the endpoint's delivery; refused before delivery, nothing.
    let mut endpoint = endpoint_handler(&ndjson);
    let (result, tally) = endpoint.handle_tallied(api_gateway_event("the-key"), LEFT).await;
    assert_eq!(result.unwrap()["statusCode"], 200);
    assert_eq!((tally.summary.delivered, tally.ledger.lines), (7, 7));
    let (result, tally) = endpoint.handle_tallied(api_gateway_event("wrong"), LEFT).await;
    assert_eq!(result.unwrap()["statusCode"], 401);
    assert_eq!((tally.summary.events_in, tally.ledger.lines), (0, 0));

    // An EventBridge CreateLogGroup event: no lines, still a tally.
    let event = r#"{"version":"0","id":"1","detail-type":"AWS API Call via CloudTrail","source":"aws.logs","detail":{"eventSource":"logs.amazonaws.com","eventName":"CreateLogGroup","requestParameters":{"logGroupName":"/aws/lambda/new"}}}"#;
    let (result, tally) = handler().handle_tallied(event.to_owned(), LEFT).await;
    result.unwrap();
    assert_eq!((tally.summary.events_in, tally.ledger.lines), (0, 0));

    // Something unrecognised: one failed record.
    let (result, tally) = handler()
        .handle_tallied(json!({"what": 1}).to_string(), LEFT)
        .await;
    assert!(result.is_err());
    assert_eq!(tally.summary.failed_records, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_direct_subscription_not_read_by_its_deadline_is_an_error_so_that_lambda_retries_it() {
    let event = sample("samples/events/direct-python-cold-xray.json");
    // No time left but the margin: the deadline has passed before the first record.
    let err = handler().handle(event.clone(), Duration::ZERO).await.unwrap_err();
    assert!(
        matches!(err, HandlerError::Late(crate::input::Stop::Deadline)),
        "{err}"
    );
    // With time, the same event goes through, on the same warm handler's next input.
    let mut warm = handler();
    assert!(warm.handle(event.clone(), Duration::ZERO).await.is_err());
    assert!(warm.handle(event, LEFT).await.is_ok());
}

/// Transform mode sends the records back to Firehose, and the platform telemetry of their invocations to the
/// destinations, each in its own ledger row: a metrics backend that cannot be reached is counted there and
/// never fails a record.
#[tokio::test]
async fn a_transformation_ships_its_invocations_metrics_and_answers_its_records_whatever_they_become() {
    // Port 9 (discard) refuses the connection at once: every metrics request fails.
    let mut transform = handler_with(&[
        ("DD_API_KEY", "k"),
        ("DD_LOGS_CONFIG_LOGS_DD_URL", "http://127.0.0.1:9"),
        ("DD_DD_URL", "http://127.0.0.1:9"),
        ("TRACEHOSE_MAX_ATTEMPTS", "1"),
    ]);
    let (result, tally) = transform
        .handle_tallied(
            sample("samples/events/firehose-transformation-streams.json"),
            LEFT,
        )
        .await;
    let response = result.unwrap();
    let answered = records(&response);
    assert!(!answered.is_empty());
    let results: Vec<&str> = answered.iter().map(|(_, result, _)| result.as_str()).collect();
    assert!(!results.contains(&"ProcessingFailed"), "{results:?}");
    assert_eq!(tally.ledger.lines, 0, "the records' lines went back to Firehose");
    let metrics = tally
        .ledger
        .destinations
        .iter()
        .find(|d| d.name == "datadog-metrics")
        .unwrap_or_else(|| panic!("{}", tally.ledger));
    // Two REPORT lines in the sample: two invocations, each counted failed in the metrics row only.
    assert_eq!((metrics.received, metrics.failed), (2, 2), "{}", tally.ledger);
    assert!(tally.ledger.failed.is_empty() && tally.ledger.rejected.is_empty());
}
