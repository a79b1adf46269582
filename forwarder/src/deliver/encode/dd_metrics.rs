//! Datadog enhanced Lambda metrics (docs/formats.md, section 9): each finished invocation becomes the
//! distribution series the Datadog Forwarder makes of a REPORT line, under the same names
//! (`aws.lambda.enhanced.*`), units (seconds, MB, USD) and tags (`functionname`, `aws_account`, `region`,
//! `memorysize`, `cold_start`, `executedversion` for a published version), posted to the public distribution API:
//! `{"series":[{"metric":...,"points":[[unix_s,[value]]],"tags":[...],"type":"distribution"}]}`.
//!
//! One entry is one invocation's series, comma-joined; a body wraps a run of entries in `{"series":[`...`]}`.

use std::io;
use std::ops::Range;

use serde_json::ser::{CompactFormatter, Formatter};

use super::datadog::DatadogSettings;
use super::{cut_text, Encoded, Entries, InvocationEncoder, PerSource, RequestLimits, Wire};
use crate::output::json_text::{push_escaped, push_str};
use crate::record::Source;
#[cfg(test)]
use crate::telemetry::figures::DATADOG_PREFIX;
use crate::telemetry::figures::{datadog_cold_start, datadog_metrics, DatadogMetric};
use crate::telemetry::Invocation;

/// Datadog's metrics intake takes at most 3.2 MB per request (read before compression here, the stricter
/// reading); the entry count only keeps a batch's bookkeeping small (about ten series an invocation).
pub const DD_METRICS_LIMITS: RequestLimits = RequestLimits {
    max_body_bytes: 3_200_000,
    max_entries: 1_000,
};

/// Datadog keeps at most 200 characters of a tag; a longer one is cut here, visibly, rather than there.
pub(super) const MAX_TAG_BYTES: usize = 200;

const OPEN: &[u8] = b"{\"series\":[";
const CLOSE: &[u8] = b"]}";

/// The series are written straight to JSON, as serde_json writes them (`dd_metrics_oracle.rs` checks it),
/// from tags made once: the configured ones when the encoder is made, the source's once per source, and
/// within an invocation once for all its series.
#[derive(Debug)]
pub struct DatadogMetricsEncoder {
    /// `env:`, `service:`, `version:` and `DD_TAGS`, as the logs encoder applies them: each a JSON string led
    /// by a comma.
    configured: Vec<u8>,
    /// One of them was cut.
    configured_cut: bool,
    sources: PerSource<SourceTags>,
}

/// `region`, `aws_account` and `functionname` of one source, each a JSON string led by a comma; and whether
/// one was cut.
#[derive(Debug)]
struct SourceTags {
    json: Vec<u8>,
    cut: bool,
}

impl SourceTags {
    fn new(source: &Source) -> Self {
        let mut json = Vec::new();
        let cut = push_present_tags(
            &mut json,
            [
                ("region", &source.region),
                ("aws_account", &source.account_id),
                ("functionname", &source.function_name),
            ],
        );
        Self { json, cut }
    }
}

/// The prefix of the one tag of an invocation that can be cut: its version.
const EXECUTED_VERSION: &str = "executedversion";

/// Appends the tag `key:value` as a JSON string, cut to [`MAX_TAG_BYTES`]; returns whether it was cut.
fn push_tag(out: &mut Vec<u8>, key: &str, value: &str) -> bool {
    if tag_len(key, value) <= MAX_TAG_BYTES {
        out.push(b'"');
        push_escaped(out, key.as_bytes());
        out.push(b':');
        push_escaped(out, value.as_bytes());
        out.push(b'"');
        return false;
    }
    push_whole_tag(out, &format!("{key}:{value}"))
}

/// Appends `key:value` for each value present, each a JSON string led by a comma; returns whether one was cut.
fn push_present_tags<const N: usize>(out: &mut Vec<u8>, tags: [(&str, &Option<String>); N]) -> bool {
    let mut cut = false;
    for (key, value) in tags {
        if let Some(value) = value {
            out.push(b',');
            cut |= push_tag(out, key, value);
        }
    }
    cut
}

fn tag_len(key: &str, value: &str) -> usize {
    key.len() + 1 + value.len()
}

/// Appends `tag` as a JSON string, cut to [`MAX_TAG_BYTES`]; returns whether it was cut.
fn push_whole_tag(out: &mut Vec<u8>, tag: &str) -> bool {
    let (tag, cut) = cut_text(tag, MAX_TAG_BYTES);
    push_str(out, &tag);
    cut
}

/// A published version only, as Datadog's Lambda libraries tag it: `$LATEST` is no version.
fn executed_version(invocation: &Invocation) -> Option<&str> {
    invocation.version.as_deref().filter(|v| *v != "$LATEST")
}

impl DatadogMetricsEncoder {
    pub fn new(settings: &DatadogSettings) -> Self {
        let mut configured = Vec::new();
        let mut configured_cut = push_present_tags(
            &mut configured,
            [
                ("env", &settings.env),
                ("service", &settings.service),
                ("version", &settings.version),
            ],
        );
        for tag in &settings.tags {
            configured.push(b',');
            configured_cut |= push_whole_tag(&mut configured, tag);
        }
        Self {
            configured,
            configured_cut,
            sources: PerSource::default(),
        }
    }

    /// Appends the invocation's tags, a JSON array: `memorysize`, `cold_start`, the source's, its version,
    /// then the configured ones.
    fn push_tags(&self, invocation: &Invocation, source: &SourceTags, out: &mut Vec<u8>) {
        out.push(b'[');
        if let Some(memory) = invocation.memory_size_mb {
            out.extend_from_slice(b"\"memorysize:");
            out.extend_from_slice(itoa::Buffer::new().format(memory).as_bytes());
            out.extend_from_slice(b"\",");
        }
        out.extend_from_slice(if datadog_cold_start(invocation) {
            b"\"cold_start:true\""
        } else {
            b"\"cold_start:false\""
        });
        out.extend_from_slice(&source.json);
        if let Some(version) = executed_version(invocation) {
            out.push(b',');
            push_tag(out, EXECUTED_VERSION, version);
        }
        out.extend_from_slice(&self.configured);
        out.push(b']');
    }

    /// Appends one series at `seconds` (the REPORT's time, whole seconds since the epoch, as text); `tags`,
    /// where this invocation's tags were written already, else `None` and set. Writing a number to a `Vec`
    /// never fails; should it, the caller leaves the series out, and since the one fallible write comes before
    /// the tags, `tags` never names bytes taken back.
    fn push_series(
        &self,
        (invocation, source): (&Invocation, &SourceTags),
        DatadogMetric { name, value }: DatadogMetric,
        seconds: &str,
        tags: &mut Option<Range<usize>>,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        // The names are this crate's own `aws.lambda.enhanced.*` constants: nothing in them to escape.
        out.extend_from_slice(b"{\"metric\":\"");
        out.extend_from_slice(name.as_bytes());
        // `[[unix seconds, [value]]]`
        out.extend_from_slice(b"\",\"points\":[[");
        out.extend_from_slice(seconds.as_bytes());
        out.extend_from_slice(b",[");
        // As serde_json writes an f64: `null` when not finite (which `datadog_metrics` never gives).
        if value.is_finite() {
            CompactFormatter.write_f64(out, value)?;
        } else {
            out.extend_from_slice(b"null");
        }
        out.extend_from_slice(b"]]],\"tags\":");
        match tags {
            Some(written) => out.extend_from_within(written.clone()),
            None => {
                let start = out.len();
                self.push_tags(invocation, source, out);
                *tags = Some(start..out.len());
            }
        }
        out.extend_from_slice(b",\"type\":\"distribution\"}");
        Ok(())
    }
}

impl Wire for DatadogMetricsEncoder {
    fn name(&self) -> &'static str {
        "datadog-metrics"
    }

    fn content_type(&self) -> &'static str {
        "application/json"
    }

    fn limits(&self) -> RequestLimits {
        DD_METRICS_LIMITS
    }

    fn body_overhead(&self) -> usize {
        OPEN.len() + CLOSE.len()
    }

    fn body(&self, entries: &Entries, range: std::ops::Range<usize>) -> Vec<u8> {
        let range = range.start.min(entries.len())..range.end.min(entries.len());
        let len: usize = range.clone().map(|i| entries.entry(i).len() + 1).sum();
        let mut out = Vec::with_capacity(OPEN.len() + len + CLOSE.len());
        out.extend_from_slice(OPEN);
        for (n, i) in range.enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(entries.entry(i));
        }
        out.extend_from_slice(CLOSE);
        out
    }
}

impl InvocationEncoder for DatadogMetricsEncoder {
    fn encode(&self, invocation: &Invocation, out: &mut Vec<u8>) -> Encoded {
        let start = out.len();
        let source = self.sources.get(&invocation.source, SourceTags::new);
        // Cut or not whether or not a series is written: the version is the one tag cut per invocation.
        let version_cut =
            executed_version(invocation).is_some_and(|v| tag_len(EXECUTED_VERSION, v) > MAX_TAG_BYTES);
        let truncated = self.configured_cut || source.cut || version_cut;
        // The REPORT event's time, in whole seconds, as the Forwarder submits it.
        let mut seconds = itoa::Buffer::new();
        let seconds = seconds.format(invocation.report_ms.div_euclid(1000));
        let mut tags = None;
        let mut written = 0;
        for metric in datadog_metrics(invocation) {
            let before = out.len();
            if written > 0 {
                out.push(b',');
            }
            // A series that could not be written is left out whole (with its comma) rather than sent broken.
            if self
                .push_series((invocation, &source), metric, seconds, &mut tags, out)
                .is_err()
            {
                out.truncate(before);
                continue;
            }
            written += 1;
        }
        Encoded {
            bytes: out.len() - start,
            truncated,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Arc;

    use serde_json::{json, Value};

    use super::*;
    use crate::deliver::encode::figures::testing::{cold_timeout, invocation};
    use crate::record::Source;

    fn settings(pairs: &[(&str, &str)]) -> DatadogSettings {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        DatadogSettings::from_lookup(&move |k| map.get(k).cloned()).unwrap()
    }

    /// The request body of `invocations` as the batching core builds it, decoded.
    fn decode(encoder: &DatadogMetricsEncoder, invocations: &[Invocation]) -> (Value, bool) {
        let mut entries = Entries::default();
        let mut truncated = false;
        for invocation in invocations {
            entries
                .sources
                .push((entries.len(), Arc::clone(&invocation.source)));
            let encoded = encoder.encode(invocation, &mut entries.data);
            truncated |= encoded.truncated;
            entries.ends.push(entries.data.len());
            assert_eq!(entries.entry(entries.len() - 1).len(), encoded.bytes);
        }
        let body = encoder.body(&entries, 0..entries.len());
        let framing: usize = (0..entries.len())
            .map(|i| encoder.entry_overhead(entries.entry(i).len()))
            .sum();
        assert!(body.len() <= encoder.body_overhead() + framing + entries.data.len());
        (serde_json::from_slice(&body).unwrap(), truncated)
    }

    /// `metric -> (value, tags)` of one invocation's series.
    fn series(body: &Value) -> BTreeMap<String, (f64, Vec<String>)> {
        body["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                assert_eq!(s["type"], "distribution");
                let point = &s["points"][0];
                assert_eq!(point[0], json!(1_700_000_001));
                let tags = s["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_owned());
                (
                    s["metric"].as_str().unwrap().to_owned(),
                    (point[1][0].as_f64().unwrap(), tags.collect()),
                )
            })
            .collect()
    }

    #[test]
    fn a_warm_invocation_makes_the_forwarders_series_and_tags() {
        let encoder = DatadogMetricsEncoder::new(&settings(&[
            ("DD_ENV", "prod"),
            ("DD_SERVICE", "shop"),
            ("DD_TAGS", "team:pay tier:1"),
        ]));
        let (body, truncated) = decode(&encoder, &[invocation()]);
        assert!(!truncated);
        let got = series(&body);
        let names: Vec<&str> = got.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "aws.lambda.enhanced.billed_duration",
                "aws.lambda.enhanced.duration",
                "aws.lambda.enhanced.estimated_cost",
                "aws.lambda.enhanced.invocations",
                "aws.lambda.enhanced.max_memory_used",
            ]
        );
        assert_eq!(got["aws.lambda.enhanced.duration"].0, 0.4805);
        assert_eq!(got["aws.lambda.enhanced.billed_duration"].0, 0.481);
        assert_eq!(got["aws.lambda.enhanced.max_memory_used"].0, 90.0);
        let cost = got["aws.lambda.enhanced.estimated_cost"].0;
        let want = 0.000_000_2 + 0.481 * 1.0 * 0.000_016_666_7;
        assert!((cost - want).abs() < 1e-15, "{cost} {want}");
        assert_eq!(
            got["aws.lambda.enhanced.duration"].1,
            [
                "memorysize:1024",
                "cold_start:false",
                "region:eu-west-1",
                "aws_account:123456789012",
                "functionname:checkout",
                "executedversion:42",
                "env:prod",
                "service:shop",
                "team:pay",
                "tier:1",
            ]
        );
    }

    #[test]
    fn a_cold_timeout_counts_its_error_timeout_and_init() {
        let mut cold = cold_timeout();
        cold.out_of_memory = true;
        cold.version = Some("$LATEST".to_owned());
        let encoder = DatadogMetricsEncoder::new(&DatadogSettings::default());
        let (body, _) = decode(&encoder, &[cold]);
        let got = series(&body);
        for (metric, value) in [
            ("errors", 1.0),
            ("timeouts", 1.0),
            ("out_of_memory", 1.0),
            ("init_duration", 0.25025),
        ] {
            let got = got[&format!("{DATADOG_PREFIX}{metric}")].0;
            assert!((got - value).abs() < 1e-12, "{metric}: {got} != {value}");
        }
        let tags = &got["aws.lambda.enhanced.invocations"].1;
        assert!(tags.contains(&"cold_start:true".to_owned()));
        assert!(!tags.iter().any(|t| t.starts_with("executedversion:")));
    }

    #[test]
    fn managed_instances_send_their_duration_and_never_a_cost() {
        let mut managed = invocation();
        managed.managed_instances = true;
        managed.billed_duration_ms = Some(481.0);
        managed.max_memory_used_mb = None;
        let encoder = DatadogMetricsEncoder::new(&DatadogSettings::default());
        let (body, _) = decode(&encoder, &[managed]);
        let got = series(&body);
        let names: Vec<&str> = got.keys().map(String::as_str).collect();
        assert_eq!(names, ["aws.lambda.enhanced.duration"]);
    }

    #[test]
    fn hostile_figures_never_reach_the_wire_and_long_tags_are_cut() {
        let mut hostile = invocation();
        hostile.duration_ms = f64::NAN;
        hostile.billed_duration_ms = Some(f64::INFINITY);
        hostile.init_duration_ms = Some(-3.0);
        hostile.memory_size_mb = Some(u64::MAX);
        hostile.max_memory_used_mb = Some(u64::MAX);
        hostile.report_ms = i64::MIN;
        hostile.version = Some("v\",\"x".repeat(100));
        hostile.source = Arc::new(Source {
            function_name: Some("f".repeat(10_000)),
            ..(*hostile.source).clone()
        });
        let encoder = DatadogMetricsEncoder::new(&DatadogSettings::default());
        let (body, truncated) = decode(&encoder, &[hostile]);
        assert!(truncated);
        for s in body["series"].as_array().unwrap() {
            let value = s["points"][0][1][0].as_f64().unwrap();
            assert!(value.is_finite() && value >= 0.0, "{s}");
            for tag in s["tags"].as_array().unwrap() {
                assert!(tag.as_str().unwrap().len() <= MAX_TAG_BYTES, "{tag}");
            }
        }
        let names: Vec<&str> = body["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["metric"].as_str().unwrap())
            .collect();
        // No duration, billed duration, init or cost: none of them was a number a backend can take.
        assert_eq!(
            names,
            [
                "aws.lambda.enhanced.max_memory_used",
                "aws.lambda.enhanced.invocations"
            ]
        );
    }

    #[test]
    fn a_body_holds_every_invocations_series() {
        let encoder = DatadogMetricsEncoder::new(&DatadogSettings::default());
        let (body, _) = decode(&encoder, &[invocation(), cold_timeout(), invocation()]);
        let invocations = body["series"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["metric"] == "aws.lambda.enhanced.invocations")
            .count();
        assert_eq!(invocations, 3);
        assert_eq!(encoder.name(), "datadog-metrics");
        assert_eq!(encoder.content_type(), "application/json");
    }
}
