#![allow(dead_code)] // Shared by the bench and the bench_event example; each uses a part.
//! Generates realistic mixed Lambda logs for benchmarks: several runtimes, platform lines, the extension's
//! marker, JSON log lines and trace contexts, with varying ids and numbers so gzip compresses them about as
//! well as real CloudWatch data. Deterministic: a fixed-seed generator, no dependency.

use std::fmt::Write as _;
use std::io::Write as _;

use base64::Engine as _;
use flate2::write::GzEncoder;
use flate2::Compression;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    fn hex(&mut self, digits: usize) -> String {
        let mut s = String::with_capacity(digits);
        while s.len() < digits {
            let _ = write!(s, "{:016x}", self.next());
        }
        s.truncate(digits);
        s
    }
    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }
}

/// One subscription payload of one log stream whose gzipped form is about `target_gz_bytes`; returns the
/// payload JSON and its number of log events.
pub fn mixed_payload(seed: u64, stream: usize, target_gz_bytes: usize) -> (Vec<u8>, usize) {
    let mut rng = Lcg(seed);
    let mut events = Vec::new();
    let mut ts: u64 = 1_795_255_200_000;
    let mut message = |rng: &mut Lcg, events: &mut Vec<String>, text: String| {
        ts += rng.next() % 40;
        let id = format!(
            "3676510739856745728359237509218343292939839584629{:07}",
            events.len()
        );
        events.push(format!(
            r#"{{"id":"{id}","timestamp":{ts},"message":{}}}"#,
            serde_json::to_string(&text).unwrap_or_default()
        ));
    };
    // Stop adding invocations once the raw JSON is large enough to compress to about the target.
    let raw_target = target_gz_bytes * 9;
    let mut raw_len = 0;
    let mut invocation = 0u64;
    while raw_len < raw_target {
        invocation += 1;
        let id = rng.uuid();
        let trace = rng.hex(32);
        let span = rng.hex(16);
        let before = events.len();
        if invocation % 50 == 1 {
            {
                let text = "INIT_START Runtime Version: python:3.12.v27\tRuntime Version ARN: arn:aws:lambda:eu-west-1::runtime:0cdcfbdefbc5e7d3\n".into();
                message(&mut rng, &mut events, text);
            };
        }
        {
            let text = format!("START RequestId: {id} Version: $LATEST\n");
            message(&mut rng, &mut events, text);
        };
        if invocation.is_multiple_of(2) {
            {
                let text = format!(
                    "[!dt dt.trace_id={trace},dt.span_id={span}] tracehose invocation RequestId: {id}\n"
                );
                message(&mut rng, &mut events, text);
            };
        }
        for line in 0..(3 + rng.next() % 8) {
            let n = rng.next() % 100_000;
            let text = match (invocation + line) % 6 {
                0 => format!("[INFO]\t2026-11-21T10:00:00.{:03}Z\t{id}\tprocessing order {n} for customer c-{}\n", n % 1000, rng.next() % 5000),
                1 => format!("2026-11-21T10:00:00.{:03}Z\t{id}\tWARN\tinventory low for sku A-{n} ({} left)\n", n % 1000, n % 7),
                2 => format!(r#"{{"timestamp":"2026-11-21T10:00:00.{:03}Z","level":"INFO","requestId":"{id}","message":"cache lookup","key":"user:{n}","hit":{}}}"#, n % 1000, n.is_multiple_of(2)),
                3 => format!("2026/11/21 10:00:00 fetched {n} rows from table events in {} ms\n", n % 300),
                4 => format!("[DEBUG]\t2026-11-21T10:00:00.{:03}Z\t{id}\tcalling downstream traceparent=00-{}-{}-01\n", n % 1000, rng.hex(32), rng.hex(16)),
                _ => format!("[ERROR]\t2026-11-21T10:00:00.{:03}Z\t{id}\tpayment provider returned {}\nTraceback (most recent call last):\n  File \"/var/task/app.py\", line {}, in handler\n", n % 1000, 500 + n % 4, n % 200),
            };
            message(&mut rng, &mut events, text);
        }
        {
            let text = format!("END RequestId: {id}\n");
            message(&mut rng, &mut events, text);
        };
        let init = if invocation % 50 == 1 {
            format!(
                "\tInit Duration: {}.{:02} ms",
                100 + rng.next() % 400,
                rng.next() % 100
            )
        } else {
            String::new()
        };
        let xray = rng.hex(24);
        {
            let text = format!(
            "REPORT RequestId: {id}\tDuration: {}.{:02} ms\tBilled Duration: {} ms\tMemory Size: 256 MB\tMax Memory Used: {} MB{init}\t\nXRAY TraceId: 1-{}-{xray}\tSegmentId: {}\tSampled: true\t\n",
            rng.next() % 900, rng.next() % 100, 1 + rng.next() % 900, 60 + rng.next() % 100, &trace[..8], rng.hex(16)
        );
            message(&mut rng, &mut events, text);
        };
        raw_len += events[before..].iter().map(String::len).sum::<usize>();
    }
    let count = events.len();
    let payload = format!(
        r#"{{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/lambda/bench-{stream}","logStream":"2026/11/21/[$LATEST]{}","subscriptionFilters":["tracehose"],"logEvents":[{}]}}"#,
        Lcg(seed ^ 0xabc).hex(32),
        events.join(",")
    );
    (payload.into_bytes(), count)
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

pub fn base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// A direct subscription event around one payload.
pub fn direct_event(payload_gz: &[u8]) -> Vec<u8> {
    format!(r#"{{"awslogs":{{"data":"{}"}}}}"#, base64(payload_gz)).into_bytes()
}

/// A Firehose transformation event of about `target_bytes`, with records of several streams.
pub fn firehose_event(target_bytes: usize) -> Vec<u8> {
    let mut records = Vec::new();
    let mut size = 0;
    let mut i = 0u64;
    while size < target_bytes {
        let (payload, _) = mixed_payload(1000 + i, (i % 7) as usize, 64 * 1024);
        let data = base64(&gzip(&payload));
        size += data.len() + 120;
        records.push(format!(
            r#"{{"recordId":"4954698668313554428650745793632162567570019247115678{i:04}","approximateArrivalTimestamp":1795255260000,"data":"{data}"}}"#
        ));
        i += 1;
    }
    format!(
        r#"{{"invocationId":"bench","deliveryStreamArn":"arn:aws:firehose:eu-west-1:123456789012:deliverystream/bench","region":"eu-west-1","records":[{}]}}"#,
        records.join(",")
    )
    .into_bytes()
}

/// The payload as a plain serde derive reads it, every string owned: the same floor as every earlier run of
/// the benchmarks, so that ratios stay comparable.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct FloorPayload {
    message_type: String,
    owner: String,
    log_group: String,
    log_stream: String,
    subscription_filters: Vec<String>,
    log_events: Vec<FloorEvent>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct FloorEvent {
    id: String,
    timestamp: i64,
    message: String,
}

/// The unavoidable work, what any forwarder must do before it can look at a single line: base64 decode,
/// gunzip and JSON parse of a direct subscription event. Returns the number of log events.
#[allow(dead_code)]
pub fn floor(event: &[u8], limits: &tracehose_forwarder::limits::Limits) -> usize {
    use tracehose_forwarder::input::decode::{base64_decode, gunzip_capped};
    #[derive(serde::Deserialize)]
    struct Direct {
        awslogs: Data,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        data: String,
    }
    let direct: Direct = serde_json::from_slice(event).unwrap_or_else(|e| panic!("bench input: {e}"));
    let gz = base64_decode(&direct.awslogs.data).unwrap_or_else(|e| panic!("bench input: {e}"));
    let json =
        gunzip_capped(&gz, limits.max_decompressed_bytes).unwrap_or_else(|e| panic!("bench input: {e}"));
    let payload: FloorPayload = serde_json::from_slice(&json).unwrap_or_else(|e| panic!("bench input: {e}"));
    payload.log_events.len()
}
