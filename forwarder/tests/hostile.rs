//! Hostile input (issue 7): each reproducer of the adversarial review as a regression test, and a property
//! test that builds envelopes with wrong types in any field and checks that exactly the bad parts are lost,
//! each counted where it belongs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{assert_every_event_counted, b64, gzip};
use proptest::prelude::*;
use serde_json::{json, Value};
use tracehose_forwarder::limits::Limits;
use tracehose_forwarder::output::ndjson::NdjsonSink;
use tracehose_forwarder::pipeline::Pipeline;
use tracehose_forwarder::process::process_bytes;
use tracehose_forwarder::summary::Summary;

struct Run {
    lines: Vec<Value>,
    errors: Vec<String>,
    summary: Summary,
}

fn run_with(bytes: &[u8], limits: Limits) -> Run {
    let mut pipeline = Pipeline::new(limits);
    let mut sink = NdjsonSink::new(Vec::new());
    let mut summary = Summary::default();
    let mut errors = Vec::new();
    process_bytes(bytes, "in", &mut pipeline, &mut sink, &mut summary, &mut |e| {
        errors.push(e)
    })
    .unwrap();
    let out = String::from_utf8(sink.into_inner()).unwrap();
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len() as u64, summary.delivered);
    assert_every_event_counted(&summary, "hostile");
    Run {
        lines,
        errors,
        summary,
    }
}

fn run(bytes: &[u8]) -> Run {
    run_with(bytes, Limits::default())
}

fn event(id: usize, message: &str) -> Value {
    json!({"id": id.to_string(), "timestamp": 1, "message": message})
}

fn payload(group: &str, events: Vec<Value>) -> Value {
    json!({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": group, "logStream": "s", "logEvents": events})
}

fn messages(run: &Run) -> Vec<&str> {
    run.lines.iter().map(|l| l["message"].as_str().unwrap()).collect()
}

#[test]
fn objects_back_to_back_after_a_bad_one_all_come_out() {
    // Issue 7 item 2: `}{` concatenation, the third object with a wrong type.
    let p = |ev: Vec<Value>| payload("g", ev).to_string();
    let input = p(vec![event(1, "m1"), event(2, "m2")])
        + &p(vec![json!({"id": "3", "timestamp": "oops", "message": "x"})])
        + &p(vec![event(4, "m4"), event(5, "m5")])
        + &p(vec![event(6, "m6"), event(7, "m7")]);
    let run = run(input.as_bytes());
    assert_eq!(messages(&run), ["m1", "m2", "m4", "m5", "m6", "m7"]);
    assert_eq!(run.summary.invalid_events, 1);
    assert!(
        run.errors[0].contains("object 2")
            && run.errors[0].contains("logEvents[0] (id 3): timestamp is a string"),
        "{:?}",
        run.errors
    );
}

#[test]
fn a_syntax_error_skips_only_to_the_next_object() {
    let p = |ev: Vec<Value>| payload("g", ev).to_string();
    let broken = p(vec![event(2, "m2")]).replace("\"timestamp\":1", "\"timestamp\":1x");
    let input =
        p(vec![event(1, "m1")]) + &broken + &p(vec![event(3, "m3")]) + "\n" + &p(vec![event(4, "m4")]);
    let run = run(input.as_bytes());
    assert_eq!(messages(&run), ["m1", "m3", "m4"]);
    assert_eq!(run.summary.failed_records, 1);
    assert!(run.errors[0].contains("object 2 (bytes"), "{:?}", run.errors);
    // Garbage between objects costs only itself.
    let input = p(vec![event(1, "m1")]) + "garbage" + &p(vec![event(2, "m2")]);
    assert_eq!(messages(&run_of(&input)), ["m1", "m2"]);
}

fn run_of(text: &str) -> Run {
    run(text.as_bytes())
}

fn gz_payload(events: Vec<Value>) -> String {
    b64(&gzip(payload("g", events).to_string().as_bytes()))
}

#[test]
fn one_malformed_firehose_record_fails_alone() {
    // Issue 7 item 3.
    let good = gz_payload(vec![event(1, "ok")]);
    for bad in [json!(null), json!(5), json!({"x": 1})] {
        let event = json!({"invocationId": "i", "deliveryStreamArn": "arn:aws:firehose:eu-west-1:1:deliverystream/x",
            "records": [{"recordId": "a", "data": good}, {"recordId": "b", "data": bad}, {"recordId": "c", "data": good}]});
        let run = run_of(&event.to_string());
        assert_eq!(messages(&run), ["ok", "ok"]);
        assert_eq!(run.summary.failed_records, 1);
        assert!(
            run.errors[0].contains("records[1] (recordId b): data is"),
            "{:?}",
            run.errors
        );
    }
    let missing = json!({"invocationId": "i", "records": [{"recordId": "a"}, {"data": good}, 7]});
    let run = run_of(&missing.to_string());
    assert_eq!(run.summary.failed_records, 3);
    assert!(
        run.errors[0].contains("records[0] (recordId a): data is missing"),
        "{:?}",
        run.errors
    );
    assert!(
        run.errors[1].contains("records[1]: recordId is missing"),
        "{:?}",
        run.errors
    );
    assert!(
        run.errors[2].contains("records[2]: the record is a number"),
        "{:?}",
        run.errors
    );
}

#[test]
fn a_corrupt_gzip_member_costs_only_itself_and_what_follows() {
    // Issue 7 item 4: an S3 object of gzip members, the second truncated.
    let member = |i: usize| {
        gzip(
            payload("g", vec![event(i, &format!("m{i}"))])
                .to_string()
                .as_bytes(),
        )
    };
    let mut object = member(1);
    let mut broken = member(2);
    broken.truncate(broken.len() / 2);
    object.extend(&broken);
    object.extend(member(3));
    let run = self::run(&object);
    assert_eq!(messages(&run), ["m1"]);
    assert!(run.summary.failed_records >= 1, "{:?}", run.errors);
    let gzip_error = run.errors.iter().find(|e| e.contains("gzip")).unwrap();
    assert!(gzip_error.contains("member 2 at byte"), "{gzip_error}");
}

#[test]
fn names_beyond_cloudwatch_limits_are_refused_and_counted() {
    // Issue 7 item 6: a 64 KiB log group with 20,000 START lines.
    let group = format!("/aws/lambda/{}", "g".repeat(64 << 10));
    let events: Vec<Value> = (0..20_000)
        .map(|i| {
            event(
                i,
                &format!(
                    "START RequestId: {:08x}-1a2b-4697-b07a-ac58fc914c95 Version: $LATEST",
                    i
                ),
            )
        })
        .collect();
    let run = run_of(&payload(&group, events).to_string());
    assert_eq!(run.summary.delivered, 0);
    assert_eq!(run.summary.invalid_events, 20_000);
    assert!(
        run.errors[0].contains("logGroup is 65548 bytes long"),
        "{:?}",
        run.errors
    );
}

#[test]
fn direct_subscription_text_is_not_a_payload() {
    // Issue 7 item 9.
    let event = json!({"awslogs": {"data": b64(&gzip(b"hello world"))}});
    let run = run_of(&event.to_string());
    assert_eq!(run.summary.failed_records, 1);
    assert_eq!(run.summary.delivered, 0);
    assert!(
        run.errors[0].contains("is text, not a CloudWatch Logs subscription payload"),
        "{:?}",
        run.errors
    );
    // The same text in a backup record is a fair reading of Firehose's own decompression.
    let backup = json!({"rawData": b64(b"hello world"), "arrivalTimestamp": 7});
    assert_eq!(messages(&run_of(&backup.to_string())), ["hello world"]);
}

#[test]
fn oversize_messages_are_cut_marked_and_counted() {
    // Issue 7 item 10.
    let limits = Limits {
        max_message_bytes: 1 << 20,
        ..Limits::default()
    };
    let huge = "x".repeat(3 << 20);
    let run = run_with(
        payload("g", vec![event(1, &huge), event(2, "small")])
            .to_string()
            .as_bytes(),
        limits,
    );
    let first = run.lines[0]["message"].as_str().unwrap();
    assert!(first.len() <= 1 << 20);
    assert!(first.ends_with("[tracehose: truncated]"));
    assert_eq!(run.lines[1]["message"], "small");
    assert_eq!(run.summary.truncated, 1);
}

#[test]
fn clearer_errors_for_what_is_almost_right() {
    let inner = payload("g", vec![event(1, "twice")]).to_string();
    let double = json!({"rawData": b64(&gzip(&gzip(inner.as_bytes())))});
    assert_eq!(messages(&run_of(&double.to_string())), ["twice"]);

    for (input, want) in [
        (json!({"rawData": null}), "rawData is null"),
        (json!({"records": null}), "records is null"),
        (json!({"awslogs": {"data": 3}}), "awslogs.data is a number"),
        (json!({"awslogs": null}), "awslogs is null"),
    ] {
        let run = run_of(&input.to_string());
        assert!(run.errors[0].contains(want), "{input}: {:?}", run.errors);
        assert_eq!(run.summary.failed_records, 1);
    }

    let wrapped: String = gz_payload(vec![event(1, "wrapped")])
        .as_bytes()
        .chunks(76)
        .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
        .collect();
    let run = run_of(&json!({"awslogs": {"data": wrapped}}).to_string());
    assert_eq!(messages(&run), ["wrapped"]);

    let mut trailing = gzip(inner.as_bytes());
    trailing.extend(b"trailer!");
    let run = self::run(&trailing);
    assert_eq!(messages(&run), ["twice"]);
    assert!(
        run.errors[0].contains("8 bytes after the last gzip member"),
        "{:?}",
        run.errors
    );

    let run = run_of("  \n");
    assert_eq!(run.errors, ["in: input is empty"]);
    assert_eq!(run.summary.failed_records, 1);
}

// The property test: envelopes built from good and bad parts, where the expected outcome of each part is
// known, in every shape that carries payloads.

#[derive(Debug, Clone)]
enum Ev {
    Good,
    /// A field of the wrong type, or missing, or not an object at all.
    Bad(Value),
}

#[derive(Debug, Clone)]
struct Part {
    events: Vec<Ev>,
    /// A payload-level defect: every event of it is lost.
    bad_envelope: Option<(&'static str, Value)>,
    /// A record-level defect (its `data` is not a string): the record fails, its events uncounted.
    bad_record: Option<Value>,
}

fn wrong_value() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!(null),
        json!(1.5),
        json!("text"),
        json!([1, 2]),
        json!({"a": {"b": [null]}}),
        json!(true),
    ])
}

fn ev_strategy() -> impl Strategy<Value = Ev> {
    prop_oneof![
        3 => Just(Ev::Good),
        1 => (prop::sample::select(vec!["timestamp", "message", "whole"]), wrong_value()).prop_map(|(field, v)| {
            Ev::Bad(match field {
                "whole" => v,
                "timestamp" => json!({"id": "9", "timestamp": if v.is_number() { json!("s") } else { v }, "message": "x"}),
                _ => json!({"id": "9", "timestamp": 1, "message": if v.is_string() { json!(2) } else { v }}),
            })
        }),
        1 => Just(Ev::Bad(json!({"timestamp": 1}))),
    ]
}

fn part_strategy() -> impl Strategy<Value = Part> {
    (
        prop::collection::vec(ev_strategy(), 0..6),
        prop::option::weighted(
            0.2,
            (
                prop::sample::select(vec!["logGroup", "logStream", "messageType", "logEvents"]),
                wrong_value(),
            ),
        ),
        prop::option::weighted(0.15, wrong_value()),
    )
        .prop_map(|(events, bad_envelope, bad_record)| Part {
            events,
            // A wrong `logEvents` of a type `null` means "no events": keep it a real defect.
            bad_envelope: bad_envelope
                .filter(|(k, v)| !(*k == "logEvents" && v.is_null()))
                .map(|(k, v)| {
                    let wrong = if k == "logEvents" && v.is_array() {
                        json!("x")
                    } else {
                        v
                    };
                    // Any string is a fine name or message type: only another type is a defect there.
                    (
                        k,
                        if k != "logEvents" && (wrong.is_null() || wrong.is_string()) {
                            json!(3)
                        } else {
                            wrong
                        },
                    )
                }),
            bad_record,
        })
}

impl Part {
    fn json(&self, index: usize) -> Value {
        let events: Vec<Value> = self
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| match e {
                Ev::Good => event(i, &format!("p{index}e{i} [!dt [!dt ]")),
                Ev::Bad(v) => v.clone(),
            })
            .collect();
        let mut p = payload("/aws/lambda/f", events);
        if let Some((key, value)) = &self.bad_envelope {
            p[*key] = value.clone();
        }
        p
    }

    fn good(&self) -> u64 {
        if self.bad_envelope.is_some() {
            return 0;
        }
        self.events.iter().filter(|e| matches!(e, Ev::Good)).count() as u64
    }

    fn invalid(&self) -> u64 {
        match &self.bad_envelope {
            Some((key, _)) if *key == "logEvents" => 0,
            Some(_) => self.events.len() as u64,
            None => self.events.len() as u64 - self.good(),
        }
    }

    /// A payload-level defect is one failed record when no event of it can be counted.
    fn failed_records(&self) -> u64 {
        u64::from(match &self.bad_envelope {
            Some((key, _)) => *key == "logEvents" || self.events.is_empty(),
            None => false,
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Concatenated,
    JsonLines,
    GzipMembers,
    Transformation,
    Backup,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn only_the_bad_parts_are_lost_and_each_is_counted(
        parts in prop::collection::vec(part_strategy(), 1..6),
        shape in prop::sample::select(vec![Shape::Concatenated, Shape::JsonLines, Shape::GzipMembers, Shape::Transformation, Shape::Backup]),
    ) {
        let records = matches!(shape, Shape::Transformation | Shape::Backup);
        let input: Vec<u8> = match shape {
            Shape::Concatenated => parts.iter().enumerate().map(|(i, p)| p.json(i).to_string()).collect::<String>().into_bytes(),
            Shape::JsonLines => parts.iter().enumerate().map(|(i, p)| p.json(i).to_string() + "\n").collect::<String>().into_bytes(),
            Shape::GzipMembers => parts.iter().enumerate().flat_map(|(i, p)| gzip(p.json(i).to_string().as_bytes())).collect(),
            Shape::Transformation => {
                let recs: Vec<Value> = parts.iter().enumerate().map(|(i, p)| {
                    let data = p.bad_record.clone().unwrap_or_else(|| json!(b64(&gzip(p.json(i).to_string().as_bytes()))));
                    json!({"recordId": i.to_string(), "data": data})
                }).collect();
                json!({"invocationId": "i", "records": recs}).to_string().into_bytes()
            }
            Shape::Backup => parts.iter().enumerate().map(|(i, p)| {
                let data = p.bad_record.clone().unwrap_or_else(|| json!(b64(&gzip(p.json(i).to_string().as_bytes()))));
                json!({"rawData": data, "dataId": i.to_string()}).to_string() + "\n"
            }).collect::<String>().into_bytes(),
        };
        let run = self::run(&input);
        let in_record = |p: &&Part| !records || p.bad_record.is_none();
        let good: u64 = parts.iter().filter(in_record).map(Part::good).sum();
        let invalid: u64 = parts.iter().filter(in_record).map(Part::invalid).sum();
        let failed: u64 = parts.iter().filter(in_record).map(Part::failed_records).sum::<u64>()
            + if records { parts.iter().filter(|p| p.bad_record.is_some()).count() as u64 } else { 0 };
        prop_assert_eq!(run.summary.delivered, good, "{:?}", run.errors);
        prop_assert_eq!(run.summary.invalid_events, invalid, "{:?}", run.errors);
        prop_assert_eq!(run.summary.failed_records, failed, "{:?}", run.errors);
        prop_assert_eq!(run.summary.failed_events, 0);
    }

    #[test]
    fn repeated_openers_and_nested_envelopes_never_panic(
        opener in prop::sample::select(vec!["[!dt ", "{\"awslogs\":", "{\"records\":[", "}{", "traceparent", "trace_id=", "Root=1-", "\"dd\":{"]),
        repeat in 1usize..2000,
        depth in 0usize..4,
    ) {
        let message = opener.repeat(repeat);
        let mut doc = payload("/aws/lambda/f", vec![event(1, &message)]);
        for _ in 0..depth {
            doc = json!({"awslogs": {"data": b64(&gzip(doc.to_string().as_bytes()))}});
        }
        let run = self::run(doc.to_string().as_bytes());
        // One level of wrapping is a direct subscription; deeper nesting is not a payload.
        prop_assert_eq!(run.summary.delivered, u64::from(depth <= 1));
        let mut raw = opener.repeat(repeat).into_bytes();
        raw.extend(gzip(&raw.clone()));
        let _ = run_with(&raw, Limits::default());
    }
}

#[test]
fn the_records_of_one_input_share_its_decompression_budget() {
    // Issue 15 item 5, through `process`: a transformation event of one good record and 50 records that
    // each inflate (inner level) past the 1 MiB cap; the event may inflate 4 MiB in all.
    let limits = Limits {
        max_decompressed_bytes: 1 << 20,
        max_decompressed_total_bytes: 4 << 20,
        ..Limits::default()
    };
    let bomb = b64(&gzip(&gzip(&vec![0u8; 2 << 20])));
    let mut records = vec![json!({"recordId": "good", "data": gz_payload(vec![event(1, "kept")])})];
    records.extend((0..50).map(|i| json!({"recordId": format!("bomb-{i}"), "data": bomb})));
    let input = json!({"invocationId": "i", "records": records}).to_string();

    let mut pipeline = Pipeline::new(limits);
    let mut sink = NdjsonSink::new(Vec::new());
    let mut summary = Summary::default();
    let mut errors = Vec::new();
    process_bytes(
        input.as_bytes(),
        "in",
        &mut pipeline,
        &mut sink,
        &mut summary,
        &mut |e| errors.push(e),
    )
    .unwrap();
    assert_eq!(summary.delivered, 1);
    assert_eq!(summary.failed_records, 50);
    assert_every_event_counted(&summary, "bombs");
    // One byte past the total proves it spent; nothing was inflated after that.
    assert_eq!(pipeline.budget().inflated(), (4 << 20) + 1);
    // Three bombs hit the cap, the fourth spent the budget, and the 46 after it cost one line in all.
    assert_eq!(errors.len(), 5, "{errors:#?}");
    assert!(
        errors[2].contains("records[3] (recordId bomb-2): decompressed data exceeds"),
        "{errors:#?}"
    );
    assert!(
        errors[3].contains("records[4] (recordId bomb-3): not decompressed: the input's decompression budget of 4194304 bytes"),
        "{errors:#?}"
    );
    assert!(
        errors[4].contains("records[5] (recordId bomb-4): not read:")
            && errors[4].contains("later records are refused the same way"),
        "{errors:#?}"
    );

    // The same event gzipped whole: its own inflation draws on the same total.
    let mut summary = Summary::default();
    let whole = gzip(input.as_bytes());
    process_bytes(&whole, "in", &mut pipeline, &mut sink, &mut summary, &mut |_| {}).unwrap();
    assert_eq!((summary.delivered, summary.failed_records), (1, 50));
    assert_eq!(pipeline.budget().inflated(), (4 << 20) + 1);

    // The next input starts with a budget of its own.
    let mut summary = Summary::default();
    let one = json!({"awslogs": {"data": gz_payload(vec![event(1, "next")])}}).to_string();
    process_bytes(
        one.as_bytes(),
        "in",
        &mut pipeline,
        &mut sink,
        &mut summary,
        &mut |e| errors.push(e),
    )
    .unwrap();
    assert_eq!(summary.delivered, 1);
    assert!(pipeline.budget().stopped().is_none());
}
