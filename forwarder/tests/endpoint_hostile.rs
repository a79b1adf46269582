//! What a hostile caller can cost the Firehose HTTP endpoint (issue 15, items 5, 9 and 10), each case as the
//! review reproduced it: requests of gzip bombs against the request's decompression budget and deadline,
//! beside a small request that must not wait for them; the same through the function URL face; idle
//! sockets holding every connection against `/healthz`; a flood of wrong keys against the log; SIGTERM
//! during a request of bombs. What is asserted is what cannot flake: answers, records refused, bytes
//! inflated, log lines; times are measured by scripts/bench-bombs.sh instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/endpoint.rs"]
mod harness;
#[path = "support/intake.rs"]
mod intake;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use flate2::write::GzEncoder;
use harness::*;
use serde_json::Value;
use tracehose_forwarder::endpoint::function_url;
use tracehose_forwarder::endpoint::serve::ServeOptions;

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A record as a producer that compresses what Firehose compresses again would send it: gzip(gzip(zeros)),
/// each level as small as gzip makes it.
fn bomb_record(inflated: usize) -> String {
    let best = |bytes: &[u8]| {
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    };
    b64(&best(&best(&vec![0u8; inflated])))
}

/// The sample's one record (SAMPLE_LINES lines), then `bombs` copies of `bomb`.
fn bombs_body(id: &str, bomb: &str, bombs: usize) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&sample_body(id)).unwrap();
    let records = body["records"].as_array_mut().unwrap();
    records.extend((0..bombs).map(|_| serde_json::json!({ "data": bomb })));
    serde_json::to_vec(&body).unwrap()
}

async fn until(mut ready: impl FnMut() -> bool) {
    while !ready() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_request_of_bombs_stops_at_its_decompression_budget_and_goes_back_to_firehose() {
    // Each bomb inflates (inner level) to the 1 MiB cap; the request may inflate 4 MiB in all.
    let h = start(
        &[
            ("TRACEHOSE_MAX_DECOMPRESSED_BYTES", "1048576"),
            ("TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES", "4194304"),
        ],
        ServeOptions::default(),
    )
    .await;
    let body = bombs_body("bombs-1", &bomb_record(2 << 20), 100);
    let send = || Send {
        body: Some(body.clone()),
        gzip: true,
        ..Send::new("bombs-1")
    };
    let (status, reply) = h.post(send()).await.unwrap();
    // Not 413: Firehose would drop the batch without a backup. 500, so that it backs it up to S3.
    assert_eq!(status, 500, "{reply}");
    assert_spec_body(&reply, "bombs-1", true);
    let message = reply["errorMessage"].as_str().unwrap();
    // Three bombs each cost the 1 MiB cap (and are unreadable); the fourth spends the budget.
    assert!(
        message.starts_with("97 of 101 records, from records[4] on, were not read")
            && message.contains("4194304 bytes (TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES)"),
        "{message}"
    );
    let counts = h.endpoint.counts();
    assert_eq!(counts.records_not_read, 97);
    // The body's own inflation counts too; one byte past the budget proves it spent.
    assert_eq!(counts.inflated_bytes, (4 << 20) + 1);
    // The readable record before the bombs was delivered.
    assert_eq!(h.intake.accepted_entries(Vendor::Dynatrace).len(), SAMPLE_LINES);

    // Settled: Firehose's retries get the same answer, and nothing is inflated or shipped again.
    let requests = h.intake.requests().len();
    let (again, reply) = h.post(send()).await.unwrap();
    assert_eq!(again, 500, "{reply}");
    assert_eq!(reply["errorMessage"].as_str().unwrap(), message);
    assert_eq!(h.endpoint.counts().inflated_bytes, counts.inflated_bytes);
    assert_eq!(h.intake.requests().len(), requests);
    h.stop().await;
}

#[tokio::test]
async fn a_request_past_its_deadline_gets_503_and_a_small_request_beside_it_is_not_held_up() {
    // No total to speak of: only the deadline can stop this request, of 20,000 records that each cost
    // the 4 MiB cap (hours of inflation in a debug build).
    let h = start(
        &[
            ("TRACEHOSE_MAX_DECOMPRESSED_BYTES", "4194304"),
            ("TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES", "1099511627776"),
            ("TRACEHOSE_ENDPOINT_DEADLINE_MS", "15000"),
        ],
        ServeOptions::default(),
    )
    .await;
    let body = bombs_body("slow-bombs", &bomb_record(8 << 20), 20_000);
    let bombs = tokio::spawn({
        let client = h.client.clone();
        let url = format!("http://{}/", h.addr);
        async move {
            let response = client
                .post(url)
                .header("X-Amz-Firehose-Protocol-Version", "1.0")
                .header("X-Amz-Firehose-Request-Id", "slow-bombs")
                .header("X-Amz-Firehose-Access-Key", KEY)
                .header("Content-Encoding", "gzip")
                .body(gzip(&body))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            (status, body)
        }
    });
    // The bombs are being inflated.
    until(|| h.endpoint.counts().inflated_bytes > 8 << 20).await;
    let (status, body) = h.post(Send::new("small-1")).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(h.intake.accepted_entries(Vendor::Dynatrace).len() >= SAMPLE_LINES);
    assert!(
        !bombs.is_finished(),
        "the small request was answered while the bombs were still being inflated"
    );

    let (status, body) = bombs.await.unwrap();
    assert_eq!(status, 503, "{body}");
    let message = body["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("deadline passed before all of it was read") && message.contains("records not read"),
        "{message}"
    );
    let counts = h.endpoint.counts();
    assert!(counts.records_not_read > 0, "{counts:?}");
    assert_eq!(counts.in_progress, 0);
    h.stop().await;
}

#[tokio::test]
async fn idle_sockets_holding_every_connection_keep_out_neither_healthz_nor_firehose() {
    let options = ServeOptions {
        max_connections: 4,
        // Nothing closes an idle socket on its own within the test.
        header_timeout: Duration::from_secs(3600),
        ..ServeOptions::default()
    };
    let h = start(&[], options).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(tokio::net::TcpStream::connect(h.addr).await.unwrap());
    }
    // A hang here is the failure; the bound only turns it into a message.
    let health = tokio::time::timeout(
        Duration::from_secs(60),
        h.client.get(format!("http://{}/healthz", h.addr)).send(),
    )
    .await
    .expect("/healthz got no connection while idle sockets held them all")
    .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let health: Value = serde_json::from_slice(&health.bytes().await.unwrap()).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["counts"]["idle_connections_closed"], 1, "{health}");
    // The socket idle the longest was closed: it reads the end of the stream.
    let mut first = idle.remove(0);
    let mut byte = [0u8; 1];
    let read = tokio::io::AsyncReadExt::read(&mut first, &mut byte).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let (status, body) = h.post(Send::new("after-idle")).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(h.intake.accepted_entries(Vendor::Dynatrace).len(), SAMPLE_LINES);
    h.stop().await;
}

#[tokio::test]
async fn requests_cut_by_the_shutdown_deadline_stop_their_work() {
    let options = ServeOptions {
        shutdown_timeout: Duration::ZERO,
        ..ServeOptions::default()
    };
    let mut h = start(
        &[
            ("TRACEHOSE_MAX_DECOMPRESSED_BYTES", "4194304"),
            ("TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES", "1099511627776"),
            ("TRACEHOSE_ENDPOINT_DEADLINE_MS", "900000"),
        ],
        options,
    )
    .await;
    let body = bombs_body("cut-bombs", &bomb_record(8 << 20), 20_000);
    let stop = h.stop.take();
    let in_flight = h.post(Send {
        body: Some(body),
        gzip: true,
        ..Send::new("cut-bombs")
    });
    let endpoint = Arc::clone(&h.endpoint);
    let signal = async {
        until(|| endpoint.counts().inflated_bytes > 8 << 20).await;
        drop(stop);
    };
    let (answer, ()) = tokio::join!(in_flight, signal);
    assert!(answer.is_err(), "dropped unanswered, not 200: {answer:?}");
    h.server.await.unwrap().unwrap();
    // The pipeline thread stops within one chunk of work, long before its 20,000 records.
    until(|| h.endpoint.counts().in_progress == 0).await;
    let counts = h.endpoint.counts();
    assert!(counts.records_not_read > 10_000, "{counts:?}");
    assert_eq!(counts.delivered, 0);
}

/// `tracehose serve` as its own process, its stderr read line by line.
struct Process {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    addr: String,
}

fn serve_process(intake: &Intake, extra: &[(&str, &str)], args: &[&str]) -> Process {
    use std::io::BufRead;
    let base = intake.base_url();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tracehose"));
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_clear()
        .env("DT_CONNECTION_BASE_URL", &base)
        .env("DT_LOG_COLLECTION_AUTH_TOKEN", DT_TOKEN)
        .env("TRACEHOSE_STDOUT", "false")
        .env("TRACEHOSE_ACCESS_KEYS", KEY)
        .envs(extra.iter().copied())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr = loop {
        let line = lines.recv().expect("serve exited before listening");
        if let Some(addr) = line.strip_prefix("tracehose: serve: listening on http://") {
            break addr.to_owned();
        }
    };
    Process { child, lines, addr }
}

impl Process {
    async fn counts(&self, client: &reqwest::Client) -> Value {
        let health = client
            .get(format!("http://{}/healthz", self.addr))
            .send()
            .await
            .unwrap();
        let health: Value = serde_json::from_slice(&health.bytes().await.unwrap()).unwrap();
        health["counts"].clone()
    }

    /// Peak resident memory so far (`VmHWM`), in bytes.
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib * 1024
    }

    /// SIGTERM, then every line it wrote until it exited.
    fn terminate(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}");
        self.lines.iter().collect()
    }
}

#[tokio::test]
async fn a_flood_of_wrong_keys_costs_two_log_lines_and_sigterm_stops_a_request_of_bombs() {
    let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    let serve = serve_process(
        &intake,
        &[
            ("TRACEHOSE_MAX_DECOMPRESSED_BYTES", "4194304"),
            ("TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES", "1099511627776"),
            ("TRACEHOSE_ENDPOINT_DEADLINE_MS", "900000"),
        ],
        &["--shutdown-timeout", "0"],
    );
    let client = reqwest::Client::new();
    let url = format!("http://{}/", serve.addr);
    // Issue 15 item 10: 801 requests with a wrong key.
    for _ in 0..801 {
        let response = client
            .post(&url)
            .header("X-Amz-Firehose-Access-Key", "wrong")
            .header("X-Amz-Firehose-Request-Id", "flood")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
    }
    let counts = serve.counts(&client).await;
    assert_eq!(counts["refused"], 801, "{counts}");
    assert_eq!(counts["refusals_not_logged"], 800, "{counts}");

    // Issue 15 item 5: SIGTERM while a request of 20,000 bombs inflates, with --shutdown-timeout 0.
    let body = gzip(&bombs_body("term-bombs", &bomb_record(8 << 20), 20_000));
    let bombs = tokio::spawn(
        client
            .post(&url)
            .header("X-Amz-Firehose-Protocol-Version", "1.0")
            .header("X-Amz-Firehose-Request-Id", "term-bombs")
            .header("X-Amz-Firehose-Access-Key", KEY)
            .header("Content-Encoding", "gzip")
            .body(body)
            .send(),
    );
    while serve.counts(&client).await["inflated_bytes"].as_u64().unwrap() <= 8 << 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Records inflate one at a time, within the 4 MiB cap: memory stays far from what 20,000 of them hold.
    let peak = serve.peak_rss();
    assert!(peak < 512 << 20, "peak RSS {peak} bytes");
    let lines = tokio::task::spawn_blocking(move || serve.terminate())
        .await
        .unwrap();
    assert!(bombs.await.unwrap().is_err(), "dropped unanswered");

    let refusals: Vec<&String> = lines.iter().filter(|l| l.contains("401")).collect();
    assert_eq!(refusals.len(), 2, "{refusals:#?}");
    assert!(
        refusals[0].contains("wrong X-Amz-Firehose-Access-Key"),
        "{refusals:#?}"
    );
    assert!(
        refusals[1].contains("800 more requests answered 401"),
        "{refusals:#?}"
    );
    // The process exited with the request's work stopped, not done: most records were never read.
    let stopped = lines
        .iter()
        .find(|l| l.starts_with("tracehose: serve: counts:"))
        .unwrap();
    let not_read: u64 = stopped
        .split("records not read ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(not_read > 10_000, "{stopped}");
    assert!(
        stopped.contains("refused 801 (800 of them counted without a line each)"),
        "{stopped}"
    );
}

#[tokio::test]
async fn the_function_url_face_stops_a_small_event_of_bombs_at_its_budget() {
    // Issue 15 item 5, the Lambda face: a function URL event of about a kilobyte carrying 40 bombs. The
    // Lambda handler answers such an event with exactly these steps.
    let h = start(
        &[
            ("TRACEHOSE_MAX_DECOMPRESSED_BYTES", "4194304"),
            ("TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES", "16777216"),
        ],
        ServeOptions::default(),
    )
    .await;
    let body = gzip(&bombs_body("url-bombs", &bomb_record(64 << 20), 40));
    // What the issue sent was 1.1 KB.
    let event = serde_json::json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
        "headers": {
            "x-amz-firehose-protocol-version": "1.0", "x-amz-firehose-request-id": "url-bombs",
            "x-amz-firehose-access-key": KEY, "content-encoding": "gzip", "content-type": "application/json",
        },
        "requestContext": {"accountId": "123456789012", "http": {"method": "POST", "path": "/", "sourceIp": "10.0.0.1"},
            "requestId": "r", "timeEpoch": 1},
        "body": b64(&body), "isBase64Encoded": true,
    })
    .to_string();
    assert!(event.len() < 4096, "{} bytes", event.len());
    let mut http = function_url::parse(&event).unwrap();
    let headers = http.headers();
    h.endpoint.admit(&headers).unwrap();
    let body = http.take_body().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    let reply = h.endpoint.handle(headers, body, deadline).await;
    let response = function_url::response(&reply);
    assert_eq!(response["statusCode"], 500, "{response}");
    let answer: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    let message = answer["errorMessage"].as_str().unwrap();
    // Three bombs cost the 4 MiB cap each (plus their outer level); the fourth spends the 16 MiB.
    assert!(
        message.starts_with("37 of 41 records, from records[4] on"),
        "{message}"
    );
    let counts = h.endpoint.counts();
    assert_eq!(counts.inflated_bytes, (16 << 20) + 1);
    assert_eq!(counts.records_not_read, 37);
    h.stop().await;
}
