//! Golden tests: every sample under samples/events and samples/broken is processed and its NDJSON and
//! stderr (errors and summary) compared with samples/expected/. Files named `<case>.<n>.<ext>` are parts of
//! one case, processed in order by one pipeline (an invocation split across deliveries).
//!
//! An intended output change is a conscious update: `UPDATE_GOLDEN=1 cargo test --test golden`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

mod common;

use common::assert_every_event_counted;
use tracehose_forwarder::input::{split_input, Shape};
use tracehose_forwarder::limits::Limits;
use tracehose_forwarder::output::ndjson::NdjsonSink;
use tracehose_forwarder::pipeline::Pipeline;
use tracehose_forwarder::process::{print_summary, process_bytes};
use tracehose_forwarder::summary::Summary;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Case name -> its input files, in order.
fn cases() -> BTreeMap<String, Vec<PathBuf>> {
    let mut cases: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for dir in ["samples/events", "samples/broken"] {
        for entry in fs::read_dir(repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let case = name.split('.').next().unwrap().to_owned();
            cases.entry(case).or_default().push(path);
        }
    }
    for files in cases.values_mut() {
        files.sort();
    }
    cases
}

fn run_case(files: &[PathBuf]) -> (String, String, Summary) {
    let mut pipeline = Pipeline::new(Limits::default());
    let mut sink = NdjsonSink::new(Vec::new());
    let mut summary = Summary::default();
    let mut stderr = String::new();
    for file in files {
        let name = file.strip_prefix(repo()).unwrap_or(file).display().to_string();
        let bytes = fs::read(file).unwrap();
        let mut report = |message: String| stderr.push_str(&format!("tracehose: error: {message}\n"));
        process_bytes(&bytes, &name, &mut pipeline, &mut sink, &mut summary, &mut report).unwrap();
    }
    let mut summary_line = Vec::new();
    print_summary(&mut summary_line, &summary).unwrap();
    stderr.push_str(std::str::from_utf8(&summary_line).unwrap());
    (String::from_utf8(sink.into_inner()).unwrap(), stderr, summary)
}

#[test]
fn samples_match_their_expected_output() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let expected_dir = repo().join("samples/expected");
    let mut mismatches = Vec::new();
    let mut expected_files = BTreeSet::new();
    for (case, files) in cases() {
        let (ndjson, stderr, summary) = run_case(&files);
        assert_every_event_counted(&summary, &case);
        for (ext, actual) in [("ndjson", &ndjson), ("stderr", &stderr)] {
            let path = expected_dir.join(format!("{case}.{ext}"));
            expected_files.insert(path.clone());
            if update {
                fs::write(&path, actual).unwrap();
            } else if fs::read_to_string(&path).ok().as_deref() != Some(actual.as_str()) {
                mismatches.push(path.display().to_string());
            }
        }
    }
    for entry in fs::read_dir(&expected_dir).unwrap() {
        let path = entry.unwrap().path();
        assert!(
            expected_files.contains(&path),
            "{} has no sample: remove it",
            path.display()
        );
    }
    assert!(
        mismatches.is_empty(),
        "output differs from (or lacks) {mismatches:#?}; if intended: UPDATE_GOLDEN=1"
    );
}

#[test]
fn every_input_shape_has_a_sample() {
    let mut shapes = BTreeSet::new();
    for path in cases().values().flatten() {
        split_input(&fs::read(path).unwrap(), &Limits::default(), |unit| {
            if let Ok(unit) = unit {
                shapes.insert(format!("{:?}", unit.shape));
            }
        });
    }
    let all = [
        Shape::DirectSubscription,
        Shape::FirehoseTransformation,
        Shape::FirehoseHttpEndpoint,
        Shape::SubscriptionPayload,
        Shape::BackupRecord,
    ];
    for shape in all {
        assert!(
            shapes.contains(&format!("{shape:?}")),
            "no sample of {}",
            shape.as_str()
        );
    }
}

#[test]
fn broken_samples_fail_loudly_but_deliver_the_rest() {
    let (ndjson, stderr, summary) = run_case(&cases()["firehose-batch-hostile"]);
    assert_eq!(summary.failed_records, 5, "{stderr}");
    assert_eq!(ndjson.lines().count(), 4, "the one good record still goes out");
    for expected in [
        "invalid base64",
        "gzip bomb",
        "invalid gzip",
        "not a CloudWatch Logs subscription payload",
        "neither gzip, JSON nor UTF-8",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in {stderr}");
    }
    assert!(
        stderr.contains("recordId 49546986683135544286507457936321625675700192471156785001"),
        "names the record"
    );
}

/// The example events shipped in the `aws_lambda_events` crate are what AWS documents: they must decode.
#[test]
fn aws_lambda_events_fixtures_decode() {
    let fixtures = aws_lambda_events_fixtures();
    let (ndjson, stderr, summary) = run_case(&[fixtures.join("example-cloudwatch_logs-event.json")]);
    assert!(!summary.has_failures(), "{stderr}");
    assert!(
        summary.delivered >= 1 && ndjson.contains("\"log_group\":\"testLogGroup\""),
        "{ndjson}"
    );
    // A Firehose event whose records are plain text ("Hello World"): the bare-text path.
    let (ndjson, stderr, summary) = run_case(&[fixtures.join("example-firehose-event.json")]);
    assert!(!summary.has_failures(), "{stderr}");
    assert!(ndjson.contains("\"message\":\"Hello World\""), "{ndjson}");
}

fn aws_lambda_events_fixtures() -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cargo"));
    let registry = cargo_home.join("registry/src");
    for index in fs::read_dir(&registry).expect("cargo registry sources") {
        let index = index.unwrap().path();
        for krate in fs::read_dir(&index).unwrap() {
            let path = krate.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("aws_lambda_events-1.") && path.join("src/fixtures").is_dir() {
                return path.join("src/fixtures");
            }
        }
    }
    panic!("aws_lambda_events sources not found under {}", registry.display());
}
