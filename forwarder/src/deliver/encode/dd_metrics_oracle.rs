//! The Datadog series of an invocation serialised by serde from owned tags: how the encoder made them before
//! it wrote them directly (`dd_metrics.rs`), kept only to check that the direct bytes are serde_json's, for
//! every combination of figures and tags that need escaping, cutting or hold non-ASCII text.

use serde::Serialize;

use super::cut_text;
use super::datadog::DatadogSettings;
use super::dd_metrics::MAX_TAG_BYTES;
use crate::telemetry::figures::{datadog_cold_start, datadog_metrics, DatadogMetric};
use crate::telemetry::Invocation;

/// One series of the distribution API.
#[derive(Serialize)]
struct Series<'a> {
    metric: &'a str,
    /// `[[unix seconds, [value]]]`.
    points: [(i64, [f64; 1]); 1],
    tags: &'a [String],
    #[serde(rename = "type")]
    kind: &'static str,
}

/// `env:`, `service:`, `version:` and `DD_TAGS`, as the logs encoder applies them.
fn configured_tags(settings: &DatadogSettings) -> Vec<String> {
    let mut configured_tags = Vec::new();
    for (key, value) in [
        ("env", &settings.env),
        ("service", &settings.service),
        ("version", &settings.version),
    ] {
        if let Some(value) = value {
            configured_tags.push(format!("{key}:{value}"));
        }
    }
    configured_tags.extend(settings.tags.iter().cloned());
    configured_tags
}

/// The invocation's tags, each cut to Datadog's limit; and whether one was cut.
fn tags(configured_tags: &[String], invocation: &Invocation) -> (Vec<String>, bool) {
    let source = &invocation.source;
    let mut tags: Vec<String> = Vec::with_capacity(configured_tags.len() + 6);
    if let Some(memory) = invocation.memory_size_mb {
        tags.push(format!("memorysize:{memory}"));
    }
    tags.push(format!("cold_start:{}", datadog_cold_start(invocation)));
    let version = invocation.version.as_ref().filter(|v| v.as_str() != "$LATEST");
    for (key, value) in [
        ("region", source.region.as_ref()),
        ("aws_account", source.account_id.as_ref()),
        ("functionname", source.function_name.as_ref()),
        ("executedversion", version),
    ] {
        if let Some(value) = value {
            tags.push(format!("{key}:{value}"));
        }
    }
    tags.extend(configured_tags.iter().cloned());
    let mut truncated = false;
    for tag in &mut tags {
        if let (std::borrow::Cow::Owned(cut), true) = cut_text(tag, MAX_TAG_BYTES) {
            *tag = cut;
            truncated = true;
        }
    }
    (tags, truncated)
}

/// The invocation's entry as serde_json writes it, and whether a tag was cut.
pub(super) fn encode(settings: &DatadogSettings, invocation: &Invocation) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let (tags, truncated) = tags(&configured_tags(settings), invocation);
    let timestamp = invocation.report_ms.div_euclid(1000);
    for (n, DatadogMetric { name, value }) in datadog_metrics(invocation).into_iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let series = Series {
            metric: name,
            points: [(timestamp, [value])],
            tags: &tags,
            kind: "distribution",
        };
        #[allow(clippy::unwrap_used)]
        serde_json::to_writer(&mut out, &series).unwrap();
    }
    (out, truncated)
}

#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::deliver::encode::dd_metrics::DatadogMetricsEncoder;
    use crate::deliver::encode::figures::testing::{cold_timeout, combination, invocation, COMBINATION_BITS};
    use crate::deliver::encode::InvocationEncoder;
    use crate::record::Source;
    use crate::telemetry::Outcome;

    fn assert_same(settings: &DatadogSettings, encoder: &DatadogMetricsEncoder, invocation: &Invocation) {
        let mut out = b"prior".to_vec();
        let encoded = encoder.encode(invocation, &mut out);
        assert_eq!(&out[..5], b"prior", "appends, never overwrites");
        assert_eq!(encoded.bytes, out.len() - 5);
        let (want, truncated) = encode(settings, invocation);
        assert_eq!(
            String::from_utf8_lossy(&out[5..]),
            String::from_utf8_lossy(&want),
            "{invocation:?}"
        );
        assert_eq!(encoded.truncated, truncated, "{invocation:?}");
    }

    fn settings(env: Option<&str>, service: Option<&str>, tags: &[&str]) -> DatadogSettings {
        DatadogSettings {
            env: env.map(str::to_owned),
            service: service.map(str::to_owned),
            version: env.map(|e| format!("v-{e}")),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    /// Texts a tag can hold: plain, JSON specials, control characters, non-ASCII, and long enough to be cut
    /// (on a character boundary, a multi-byte character straddling the limit).
    fn texts() -> Vec<String> {
        vec![
            String::new(),
            "prod".to_owned(),
            "a\"b\\c/d".to_owned(),
            "line\nbreak\ttab\u{1}\u{1f}\u{7f}".to_owned(),
            "zürich-東京-🚀".to_owned(),
            "x".repeat(MAX_TAG_BYTES),
            "x".repeat(MAX_TAG_BYTES * 3),
            "é".repeat(MAX_TAG_BYTES),
            "\"".repeat(MAX_TAG_BYTES),
            format!("{}🚀🚀", "y".repeat(MAX_TAG_BYTES - 30)),
        ]
    }

    /// Every combination of the figures present or absent, flags, outcomes and versions.
    #[test]
    fn every_combination_of_figures_is_what_serde_writes() {
        let settings = settings(Some("prod"), Some("shop"), &["team:pay", "tier:1"]);
        let encoder = DatadogMetricsEncoder::new(&settings);
        let outcomes = [
            Outcome::Success,
            Outcome::Error,
            Outcome::Timeout,
            Outcome::Failure,
        ];
        let versions = [None, Some("$LATEST"), Some("42")];
        // One source for all: its tags are made once and reused.
        let source = invocation().source;
        let mut counts = std::collections::BTreeSet::new();
        for bits in 0u32..1 << COMBINATION_BITS {
            for (outcome, version) in outcomes.iter().zip(versions.iter().cycle()) {
                let invocation = Invocation {
                    version: version.map(str::to_owned),
                    source: Arc::clone(&source),
                    ..combination(bits, *outcome)
                };
                assert_same(&settings, &encoder, &invocation);
                counts.insert(datadog_metrics(&invocation).len());
            }
        }
        // No series at all (a Managed Instance without a duration) up to all nine.
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            (0..=9).collect::<Vec<_>>()
        );
    }

    #[test]
    fn tags_that_need_escaping_or_cutting_are_what_serde_writes() {
        for text in texts() {
            let configured = settings(Some(&text), Some(&text), &[&text, "team:pay"]);
            let plain = settings(None, None, &[]);
            for settings in [configured, plain] {
                let encoder = DatadogMetricsEncoder::new(&settings);
                let source = Arc::new(Source {
                    region: Some(text.clone()),
                    account_id: Some(format!("{text}{text}")),
                    function_name: Some(text.clone()),
                    ..Source::default()
                });
                for invocation in [
                    Invocation {
                        version: Some(text.clone()),
                        source: Arc::clone(&source),
                        ..invocation()
                    },
                    Invocation {
                        version: Some(text.clone()),
                        ..cold_timeout()
                    },
                    Invocation {
                        source: Arc::clone(&source),
                        ..cold_timeout()
                    },
                ] {
                    assert_same(&settings, &encoder, &invocation);
                }
            }
        }
    }

    #[test]
    fn edge_values_are_what_serde_writes() {
        let settings = settings(None, None, &[]);
        let encoder = DatadogMetricsEncoder::new(&settings);
        for ms in [
            0.0,
            -0.0,
            1e-300,
            f64::MIN_POSITIVE,
            0.1,
            1e15,
            1e21,
            f64::MAX,
            f64::NAN,
            f64::INFINITY,
            -1.0,
        ] {
            for report_ms in [0, -1, -999, -1000, i64::MIN, i64::MAX, 1_700_000_001_999] {
                assert_same(
                    &settings,
                    &encoder,
                    &Invocation {
                        duration_ms: ms,
                        billed_duration_ms: Some(ms),
                        init_duration_ms: Some(ms),
                        report_ms,
                        ..invocation()
                    },
                );
            }
        }
        for mb in [0, 1, u64::MAX, 1 << 53, (1 << 53) + 1] {
            assert_same(
                &settings,
                &encoder,
                &Invocation {
                    memory_size_mb: Some(mb),
                    max_memory_used_mb: Some(mb),
                    ..invocation()
                },
            );
        }
    }

    fn any_ms() -> impl Strategy<Value = f64> {
        prop_oneof![0.0..1_000_000.0f64, any::<f64>()]
    }

    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9_.$-]{0,12}",
            any::<String>(),
            proptest::sample::select(texts()),
        ]
    }

    proptest! {
        #[test]
        fn any_invocation_and_tags_are_what_serde_writes(
            duration_ms in any_ms(),
            init in proptest::option::of(any_ms()),
            billed in proptest::option::of(any_ms()),
            memory in proptest::option::of(any::<u64>()),
            used in proptest::option::of(any::<u64>()),
            flags in any::<[bool; 5]>(),
            report_ms in any::<i64>(),
            version in proptest::option::of(any_text()),
            region in proptest::option::of(any_text()),
            function in proptest::option::of(any_text()),
            env in proptest::option::of(any_text()),
            dd_tags in proptest::collection::vec(any_text(), 0..3),
        ) {
            let [managed, cold, timed_out, oom, error] = flags;
            let settings = DatadogSettings { env, tags: dd_tags, ..DatadogSettings::default() };
            let encoder = DatadogMetricsEncoder::new(&settings);
            let source = Arc::new(Source { region, function_name: function, ..Source::default() });
            let invocation = Invocation {
                source,
                duration_ms,
                init_duration_ms: init,
                billed_duration_ms: billed,
                memory_size_mb: memory,
                max_memory_used_mb: used,
                managed_instances: managed,
                cold_start: cold,
                timed_out,
                out_of_memory: oom,
                outcome: if error { Outcome::Error } else { Outcome::Success },
                report_ms,
                version,
                ..invocation()
            };
            let mut out = Vec::new();
            let encoded = encoder.encode(&invocation, &mut out);
            let (want, truncated) = encode(&settings, &invocation);
            prop_assert_eq!(out, want);
            prop_assert_eq!(encoded.truncated, truncated);
        }
    }
}
