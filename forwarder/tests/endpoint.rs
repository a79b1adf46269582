//! `tracehose serve` over real HTTP, with requests built to the Firehose HTTP endpoint spec (docs/formats.md
//! section 5) and the local vendor intake (tests/support/intake.rs) as the destinations: gzip and plain,
//! keys, common attributes, size and format errors, de-duplication of retries, a destination that fails
//! then recovers, and graceful shutdown with requests in flight. What a hostile caller can cost is in
//! tests/endpoint_hostile.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/endpoint.rs"]
mod harness;
#[path = "support/intake.rs"]
mod intake;

use std::time::Duration;

use harness::*;
use intake::Answer;
use serde_json::Value;
use tracehose_forwarder::endpoint::serve::ServeOptions;

#[tokio::test]
async fn plain_and_gzip_requests_are_delivered_correlated_with_the_stream_and_common_attributes() {
    let h = start(&[], ServeOptions::default()).await;
    let common = r#"{"commonAttributes":{"team":"payments","env":"prod"}}"#;
    let (status, body) = h
        .post(Send {
            common: Some(common),
            ..Send::new("plain-1")
        })
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_spec_body(&body, "plain-1", false);
    let (status, body) = h
        .post(Send {
            gzip: true,
            ..Send::new("gzip-1")
        })
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_spec_body(&body, "gzip-1", false);

    let dynatrace = h.intake.accepted_entries(Vendor::Dynatrace);
    assert_eq!(dynatrace.len(), 2 * SAMPLE_LINES);
    assert_eq!(h.intake.accepted_entries(Vendor::Datadog).len(), 2 * SAMPLE_LINES);
    for entry in &dynatrace {
        assert_eq!(entry["aws.firehose.arn"], ARN, "{entry}");
        assert_eq!(entry["aws.region"], "eu-west-1", "{entry}");
    }
    let (with, without): (Vec<&Value>, Vec<&Value>) = dynatrace.iter().partition(|e| e.get("team").is_some());
    assert_eq!(with.len(), SAMPLE_LINES);
    assert!(with.iter().all(|e| e["team"] == "payments" && e["env"] == "prod"));
    // Every line of the first request joined as `tracehose process` joins the same body (the second one
    // repeats an invocation the forwarder has already seen, which joins differently).
    let correlated = with.iter().filter(|e| e.get("dt.trace_id").is_some());
    assert_eq!(correlated.count(), SAMPLE_LINES - 1);
    assert!(without.iter().all(|e| e.get("env").is_none()));
    h.stop().await;
}

#[tokio::test]
async fn wrong_or_missing_keys_get_401_and_nothing_is_processed() {
    let h = start(&[], ServeOptions::default()).await;
    for key in [Some("wrong"), Some(""), None, Some("firehose-access-key-")] {
        let (status, body) = h
            .post(Send {
                key,
                gzip: true,
                ..Send::new("k-1")
            })
            .await
            .unwrap();
        assert_eq!(status, 401, "{key:?}: {body}");
        assert_spec_body(&body, "k-1", true);
    }
    // Checked before the body is read: not even a body that is not JSON changes the answer.
    let send = Send {
        key: Some("wrong"),
        body: Some(b"\x1f\x8bnot gzip".to_vec()),
        ..Send::new("k-2")
    };
    assert_eq!(h.post(send).await.unwrap().0, 401);
    assert!(h.intake.requests().is_empty());
    // The old key of a rotation still works.
    assert_eq!(
        h.post(Send {
            key: Some("old-key"),
            ..Send::new("k-1")
        })
        .await
        .unwrap()
        .0,
        200
    );
    h.stop().await;
}

#[tokio::test]
async fn oversize_bodies_get_413_and_malformed_requests_400_with_nothing_shipped() {
    let h = start(
        &[("TRACEHOSE_ENDPOINT_MAX_BODY_BYTES", "20000")],
        ServeOptions::default(),
    )
    .await;
    // Over the cap as sent: refused from Content-Length, before the body is read.
    let mut big = sample_body("big-1");
    let padding = format!(",\"pad\":\"{}\"}}", "x".repeat(30_000));
    big.pop();
    big.extend_from_slice(padding.as_bytes());
    let (status, body) = h
        .post(Send {
            body: Some(big.clone()),
            ..Send::new("big-1")
        })
        .await
        .unwrap();
    assert_eq!(status, 413, "{body}");
    assert_spec_body(&body, "big-1", true);
    // Under the cap as sent, over it inflated.
    let (status, body) = h
        .post(Send {
            body: Some(big),
            gzip: true,
            ..Send::new("big-1")
        })
        .await
        .unwrap();
    assert_eq!(status, 413, "{body}");

    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "bad-json",
            b"{\"requestId\":\"bad-json\",\"records\":[".to_vec(),
            false,
        ),
        ("bad-gzip", b"\x1f\x8b\x08\x00garbage".to_vec(), true),
        (
            "no-records",
            br#"{"requestId":"no-records","timestamp":1}"#.to_vec(),
            false,
        ),
        ("mismatch", sample_body("another-id"), false),
    ];
    for (id, body, already_gzip) in cases {
        let mut send = Send {
            body: Some(body),
            ..Send::new(id)
        };
        if already_gzip {
            send.body = send.body.map(|b| b.to_vec());
        }
        let mut request = h
            .client
            .post(format!("http://{}/", h.addr))
            .header("X-Amz-Firehose-Protocol-Version", "1.0")
            .header("X-Amz-Firehose-Request-Id", id)
            .header("X-Amz-Firehose-Access-Key", KEY);
        if already_gzip {
            request = request.header("Content-Encoding", "gzip");
        }
        let response = request.body(send.body.unwrap()).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400, "{id}");
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_spec_body(&body, id, true);
    }
    // Headers the spec requires.
    let response = h
        .client
        .post(format!("http://{}/", h.addr))
        .header("X-Amz-Firehose-Request-Id", "no-version")
        .header("X-Amz-Firehose-Access-Key", KEY)
        .body(sample_body("no-version"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let common = Send {
        common: Some("{\"commonAttributes\":[1]}"),
        ..Send::new("bad-common")
    };
    assert_eq!(h.post(common).await.unwrap().0, 400);
    assert!(h.intake.requests().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn unreadable_records_go_back_to_firehose_and_retries_get_the_same_answer_without_shipping() {
    let h = start(&[], ServeOptions::default()).await;
    let mut body: Value = serde_json::from_slice(&sample_body("b64-1")).unwrap();
    body["records"]
        .as_array_mut()
        .unwrap()
        .insert(0, serde_json::json!({"data": "%%% not base64"}));
    let body = serde_json::to_vec(&body).unwrap();
    let (status, reply) = h
        .post(Send {
            body: Some(body.clone()),
            ..Send::new("b64-1")
        })
        .await
        .unwrap();
    assert_eq!(status, 400, "{reply}");
    assert_spec_body(&reply, "b64-1", true);
    let message = reply["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("records[0]") && message.contains("base64"),
        "{message}"
    );
    // The readable record was delivered once; the retry is answered the same and ships nothing.
    assert_eq!(h.intake.accepted_entries(Vendor::Dynatrace).len(), SAMPLE_LINES);
    let (again, _) = h
        .post(Send {
            body: Some(body),
            ..Send::new("b64-1")
        })
        .await
        .unwrap();
    assert_eq!(again, 400);
    assert_eq!(h.intake.accepted_entries(Vendor::Dynatrace).len(), SAMPLE_LINES);
    h.stop().await;
}

#[tokio::test]
async fn a_retried_delivered_request_is_answered_200_without_shipping_again() {
    let h = start(&[], ServeOptions::default()).await;
    assert_eq!(h.post(Send::new("dup-1")).await.unwrap().0, 200);
    let requests = h.intake.requests().len();
    let (status, body) = h
        .post(Send {
            gzip: true,
            ..Send::new("dup-1")
        })
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_spec_body(&body, "dup-1", false);
    assert_eq!(h.intake.requests().len(), requests);
    assert_eq!(h.intake.accepted_entries(Vendor::Dynatrace).len(), SAMPLE_LINES);
    h.stop().await;
}

#[tokio::test]
async fn a_failing_destination_gets_503_then_the_retry_delivers() {
    let h = start(&[("TRACEHOSE_MAX_ATTEMPTS", "1")], ServeOptions::default()).await;
    h.intake.script(Vendor::Dynatrace, vec![Answer::status(503)]);
    let (status, body) = h.post(Send::new("flaky-1")).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_spec_body(&body, "flaky-1", true);
    assert!(h.intake.accepted_entries(Vendor::Dynatrace).is_empty());
    let (status, body) = h.post(Send::new("flaky-1")).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(h.intake.accepted_entries(Vendor::Dynatrace).len(), SAMPLE_LINES);

    // Refused for good (400): answered 500 so that Firehose backs the batch up, and remembered.
    h.intake.script(Vendor::Datadog, vec![Answer::status(400)]);
    let (status, body) = h.post(Send::new("refused-1")).await.unwrap();
    assert_eq!(status, 500, "{body}");
    assert!(body["errorMessage"]
        .as_str()
        .unwrap()
        .contains("refused for good"));
    let requests = h.intake.requests().len();
    assert_eq!(h.post(Send::new("refused-1")).await.unwrap().0, 500);
    assert_eq!(h.intake.requests().len(), requests);
    h.stop().await;
}

/// A destination that redirects used to have its target's 200 counted delivered, so Firehose was told 200
/// and kept no backup. A redirect is never followed: Firehose hears 503, retries, then backs the batch up,
/// and the host the redirect names hears nothing.
#[tokio::test]
async fn a_redirecting_destination_is_never_answered_200() {
    let h = start(&[], ServeOptions::default()).await;
    let elsewhere = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    let location = format!("{}{}", elsewhere.base_url(), Vendor::Dynatrace.path());
    h.intake
        .script(Vendor::Dynatrace, vec![Answer::redirect(302, location)]);
    let (status, body) = h.post(Send::new("moved-1")).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_spec_body(&body, "moved-1", true);
    assert!(h.intake.accepted_entries(Vendor::Dynatrace).is_empty());
    assert!(elsewhere.requests().is_empty(), "{:?}", elsewhere.requests());
    elsewhere.shutdown().await;
    h.stop().await;
}

#[tokio::test]
async fn health_method_and_path() {
    let h = start(&[], ServeOptions::default()).await;
    let health = h
        .client
        .get(format!("http://{}/healthz", h.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let get = h.client.get(format!("http://{}/", h.addr)).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 405);
    let other = h
        .client
        .post(format!("http://{}/x", h.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 404);
    h.stop().await;
}

#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish_and_refuses_new_ones() {
    let mut h = start(&[], ServeOptions::default()).await;
    h.intake.script(
        Vendor::Dynatrace,
        vec![Answer::pass().delay(Duration::from_millis(500))],
    );
    let client = h.client.clone();
    let stop = h.stop.take();
    let in_flight = h.post(Send::new("flight-1"));
    let signal = async {
        // The request is in flight once its first batch reached the intake.
        while h.intake.requests().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(stop);
    };
    let (answer, ()) = tokio::join!(in_flight, signal);
    let (status, body) = answer.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(h.intake.accepted_entries(Vendor::Dynatrace).len(), SAMPLE_LINES);
    let addr = h.addr;
    h.server.await.unwrap().unwrap();
    let refused = client.get(format!("http://{addr}/healthz")).send().await;
    assert!(refused.is_err(), "the listener is closed");
}

#[tokio::test]
async fn requests_cut_at_the_shutdown_deadline_are_never_answered_200() {
    let options = ServeOptions {
        shutdown_timeout: Duration::ZERO,
        ..ServeOptions::default()
    };
    let mut h = start(&[], options).await;
    h.intake.script(
        Vendor::Dynatrace,
        vec![Answer::pass().delay(Duration::from_secs(60))],
    );
    let stop = h.stop.take();
    let in_flight = h.post(Send::new("cut-1"));
    let signal = async {
        while h.intake.requests().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(stop);
    };
    let (answer, ()) = tokio::join!(in_flight, signal);
    assert!(answer.is_err(), "dropped unanswered, not 200: {answer:?}");
}

#[tokio::test]
async fn a_retry_while_the_first_attempt_delivers_and_one_request_too_many_get_503() {
    let options = ServeOptions {
        max_concurrent_requests: 1,
        ..ServeOptions::default()
    };
    let h = start(&[], options).await;
    h.intake.script(
        Vendor::Dynatrace,
        vec![Answer::pass().delay(Duration::from_millis(500))],
    );
    let first = h.post(Send::new("slow-1"));
    let meanwhile = async {
        while h.intake.requests().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The only slot is taken by the first request, still delivering.
        let (status, body) = h.post(Send::new("other-1")).await.unwrap();
        assert_eq!(status, 503, "{body}");
        assert!(
            body["errorMessage"]
                .as_str()
                .unwrap()
                .contains("too many requests"),
            "{body}"
        );
    };
    let (answer, ()) = tokio::join!(first, meanwhile);
    let (status, body) = answer.unwrap();
    assert_eq!(status, 200, "{body}");
    h.stop().await;

    let h = start(&[], ServeOptions::default()).await;
    h.intake.script(
        Vendor::Dynatrace,
        vec![Answer::pass().delay(Duration::from_millis(500))],
    );
    let first = h.post(Send::new("slow-2"));
    let retry = async {
        while h.intake.requests().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Firehose gave up waiting and retried while the first attempt is still delivering.
        let (status, body) = h.post(Send::new("slow-2")).await.unwrap();
        assert_eq!(status, 503, "{body}");
        assert!(
            body["errorMessage"]
                .as_str()
                .unwrap()
                .contains("still being delivered"),
            "{body}"
        );
    };
    let (answer, ()) = tokio::join!(first, retry);
    assert_eq!(answer.unwrap().0, 200);
    assert_eq!(h.intake.accepted_entries(Vendor::Dynatrace).len(), SAMPLE_LINES);
    h.stop().await;
}
