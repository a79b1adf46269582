//! The OTLP metrics of an invocation built as the generated prost types: how the encoder made them before
//! it wrote them directly (`otlp_metrics_wire.rs`), kept only to check that the direct bytes are the bytes
//! prost writes, for every combination of figures and their edge values.

use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};

use super::figures::{estimated_cost_usd, mib_to_bytes, sane, seconds};
use super::otlp::OtlpSettings;
use super::otlp_invocation::{resource, scope};
use super::otlp_metrics_wire::{interval, BYTES_BOUNDS, SECONDS_BOUNDS};
use crate::telemetry::{Invocation, Outcome};

fn count(name: &str, unit: &str, value: bool, (start, time): (u64, u64)) -> Metric {
    sum(
        name,
        unit,
        number_data_point::Value::AsInt(i64::from(value)),
        (start, time),
    )
}

fn sum(name: &str, unit: &str, value: number_data_point::Value, (start, time): (u64, u64)) -> Metric {
    Metric {
        name: name.to_owned(),
        unit: unit.to_owned(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                start_time_unix_nano: start,
                time_unix_nano: time,
                value: Some(value),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Delta as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

/// A histogram of the one observation `value`, in `bounds`' buckets.
fn histogram(name: &str, unit: &str, value: f64, bounds: &[f64], (start, time): (u64, u64)) -> Metric {
    let mut bucket_counts = vec![0; bounds.len() + 1];
    // Bucket i holds (bounds[i-1], bounds[i]]; the last one everything above.
    bucket_counts[bounds.partition_point(|&b| b < value)] = 1;
    Metric {
        name: name.to_owned(),
        unit: unit.to_owned(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                start_time_unix_nano: start,
                time_unix_nano: time,
                count: 1,
                sum: Some(value),
                bucket_counts,
                explicit_bounds: bounds.to_vec(),
                min: Some(value),
                max: Some(value),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Delta as i32,
        })),
        ..Default::default()
    }
}

/// The invocation's metrics. A figure the REPORT did not give, or that is not a finite non-negative number,
/// is left out; a Lambda Managed Instance has neither a billed duration nor a cost.
pub(super) fn metrics(invocation: &Invocation) -> Vec<Metric> {
    let at = interval(invocation);
    let mut metrics = vec![
        count("faas.invocations", "{invocation}", true, at),
        count(
            "faas.errors",
            "{error}",
            invocation.outcome != Outcome::Success,
            at,
        ),
        count("faas.timeouts", "{timeout}", invocation.timed_out, at),
        count("faas.coldstarts", "{coldstart}", invocation.cold_start, at),
        count(
            "aws.lambda.out_of_memory",
            "{invocation}",
            invocation.out_of_memory,
            at,
        ),
    ];
    if let Some(duration) = seconds(invocation.duration_ms) {
        metrics.push(histogram(
            "faas.invoke_duration",
            "s",
            duration,
            SECONDS_BOUNDS,
            at,
        ));
    }
    if let Some(init) = invocation.init_duration_ms.and_then(seconds) {
        metrics.push(histogram("faas.init_duration", "s", init, SECONDS_BOUNDS, at));
    }
    let used = invocation.max_memory_used_mb.and_then(mib_to_bytes);
    if let Some(used) = used.and_then(|b| sane(b as f64)) {
        metrics.push(histogram("faas.mem_usage", "By", used, BYTES_BOUNDS, at));
    }
    if !invocation.managed_instances {
        if let Some(billed) = invocation.billed_duration_ms.and_then(seconds) {
            metrics.push(histogram(
                "aws.lambda.billed_duration",
                "s",
                billed,
                SECONDS_BOUNDS,
                at,
            ));
        }
    }
    if let Some(cost) = estimated_cost_usd(invocation) {
        let value = number_data_point::Value::AsDouble(cost);
        metrics.push(sum("aws.lambda.estimated_cost", "USD", value, at));
    }
    metrics
}

/// What prost writes for the whole entry, built as the generated types: the old path, kept to check the new.
pub(super) fn as_prost(settings: &OtlpSettings, invocation: &Invocation) -> Vec<u8> {
    let mut truncated = false;
    let whole = ResourceMetrics {
        resource: Some(resource(settings, invocation, &mut truncated)),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(scope()),
            metrics: metrics(invocation),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut out = Vec::new();
    prost::encoding::message::encode(1, &whole, &mut out);
    out
}

#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::deliver::encode::figures::testing::{combination, invocation, COMBINATION_BITS};
    use crate::deliver::encode::otlp_metrics::OtlpMetricsEncoder;
    use crate::deliver::encode::InvocationEncoder;
    use crate::telemetry::Architecture;

    fn encoder() -> (OtlpSettings, OtlpMetricsEncoder) {
        let settings = OtlpSettings {
            service_name: None,
            resource_attributes: vec![("deployment.environment".into(), "prod".into())],
        };
        let encoder = OtlpMetricsEncoder::new("otlp-metrics", settings.clone(), 1 << 20);
        (settings, encoder)
    }

    fn assert_same(settings: &OtlpSettings, encoder: &OtlpMetricsEncoder, invocation: &Invocation) {
        let mut out = vec![0xAB];
        let encoded = encoder.encode(invocation, &mut out);
        assert_eq!(out[0], 0xAB, "appends, never overwrites");
        assert_eq!(encoded.bytes, out.len() - 1);
        assert_eq!(&out[1..], as_prost(settings, invocation), "{invocation:?}");
    }

    /// Every combination of the optional figures present or absent, and of the flags and outcomes.
    #[test]
    fn every_combination_of_figures_is_the_bytes_prost_writes() {
        let (settings, encoder) = encoder();
        let outcomes = [
            Outcome::Success,
            Outcome::Error,
            Outcome::Timeout,
            Outcome::Failure,
        ];
        let mut seen = std::collections::BTreeSet::new();
        for bits in 0u32..1 << COMBINATION_BITS {
            for outcome in outcomes {
                let invocation = combination(bits, outcome);
                assert_same(&settings, &encoder, &invocation);
                seen.insert(metrics(&invocation).len());
            }
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), [5, 6, 7, 8, 9, 10]);
    }

    /// Milliseconds on every edge: zero, each bucket bound exactly, just past it, above the last bound, and
    /// the figures the encoders leave out.
    fn edge_ms() -> Vec<f64> {
        let mut edges = vec![
            0.0,
            -0.0,
            0.001,
            900_000.1,
            1e12,
            f64::MAX,
            f64::MIN_POSITIVE,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for bound in SECONDS_BOUNDS {
            let ms = bound * 1000.0;
            edges.extend([ms, ms.next_up(), ms.next_down()]);
        }
        edges
    }

    #[test]
    fn edge_values_are_the_bytes_prost_writes() {
        let (settings, encoder) = encoder();
        for ms in edge_ms() {
            assert_same(
                &settings,
                &encoder,
                &Invocation {
                    duration_ms: ms,
                    init_duration_ms: Some(ms),
                    billed_duration_ms: Some(ms),
                    ..invocation()
                },
            );
        }
        let mut mib: Vec<u64> = vec![0, 1, 10_241, 1 << 43, (1 << 43) - 1, u64::MAX];
        for bound in BYTES_BOUNDS {
            let exact = *bound as u64 >> 20;
            mib.extend([exact - 1, exact, exact + 1]);
        }
        for mb in mib {
            for memory in [None, Some(mb)] {
                assert_same(
                    &settings,
                    &encoder,
                    &Invocation {
                        max_memory_used_mb: Some(mb),
                        memory_size_mb: memory,
                        ..invocation()
                    },
                );
            }
        }
        // Times out of range, or a start after the REPORT: zero timestamps are left out.
        for (report_ms, start_ms) in [
            (0, 0.0),
            (-1, 5.0),
            (i64::MIN, f64::NAN),
            (i64::MAX, f64::MAX),
            (1_700_000_001_000, 1_700_000_002_000.5),
            (1_700_000_001_000, -0.0),
            (1_700_000_001_000, f64::NEG_INFINITY),
        ] {
            assert_same(
                &settings,
                &encoder,
                &Invocation {
                    report_ms,
                    start_ms,
                    ..invocation()
                },
            );
        }
    }

    fn any_ms() -> impl Strategy<Value = f64> {
        prop_oneof![
            proptest::sample::select(edge_ms()),
            0.0..1_000_000.0f64,
            any::<f64>(),
        ]
    }

    proptest! {
        #[test]
        fn any_invocation_is_the_bytes_prost_writes(
            duration_ms in any_ms(),
            init in proptest::option::of(any_ms()),
            billed in proptest::option::of(any_ms()),
            memory in proptest::option::of(prop_oneof![0u64..20_000, any::<u64>()]),
            used in proptest::option::of(prop_oneof![0u64..20_000, any::<u64>()]),
            flags in any::<[bool; 5]>(),
            outcome in 0usize..4,
            report_ms in prop_oneof![1_600_000_000_000i64..1_800_000_000_000, any::<i64>()],
            start_back in prop_oneof![0.0..1_000_000.0f64, any::<f64>()],
            version in proptest::option::of("[0-9$A-Z]{0,8}"),
        ) {
            let (settings, encoder) = encoder();
            let [managed, cold, timed_out, oom, arm] = flags;
            let invocation = Invocation {
                duration_ms,
                init_duration_ms: init,
                billed_duration_ms: billed,
                memory_size_mb: memory,
                max_memory_used_mb: used,
                managed_instances: managed,
                cold_start: cold,
                timed_out,
                out_of_memory: oom,
                architecture: if arm { Architecture::Arm64 } else { Architecture::X86_64 },
                outcome: [Outcome::Success, Outcome::Error, Outcome::Timeout, Outcome::Failure][outcome],
                report_ms,
                start_ms: report_ms as f64 - start_back,
                version,
                ..invocation()
            };
            let mut out = Vec::new();
            encoder.encode(&invocation, &mut out);
            prop_assert_eq!(out, as_prost(&settings, &invocation));
        }
    }
}
