//! Lambda platform metrics over OTLP/HTTP (docs/formats.md, section 9), under the FaaS semantic conventions:
//! `faas.invocations`, `faas.errors`, `faas.timeouts`, `faas.coldstarts` (delta monotonic sums),
//! `faas.invoke_duration`, `faas.init_duration` (histograms, seconds), `faas.mem_usage` (histogram, bytes), and
//! what the conventions lack under `aws.lambda.*`: `aws.lambda.billed_duration` (histogram, seconds),
//! `aws.lambda.estimated_cost` (delta sum, USD), `aws.lambda.out_of_memory` (delta sum).
//!
//! Every point is DELTA: each invocation is an event, counted once, and Dynatrace refuses cumulative metrics.
//! Its start is the invocation's start and its time the REPORT's. One entry is one invocation's
//! `ResourceMetrics` (see `otlp_invocation.rs`).

use super::otlp::OtlpSettings;
use super::otlp_invocation::{body, entry_key, limits, ResourceCache};
use super::otlp_metrics_wire::MetricsWire;
use super::{Encoded, Entries, InvocationEncoder, Refused, RequestLimits, Wire};
use crate::telemetry::Invocation;

#[derive(Debug)]
pub struct OtlpMetricsEncoder {
    name: &'static str,
    settings: OtlpSettings,
    limits: RequestLimits,
    resources: ResourceCache,
    wire: MetricsWire,
}

impl OtlpMetricsEncoder {
    /// `name`: the ledger row (`otlp-metrics`, `dynatrace-metrics`); `max_body_bytes`: the destination's limit.
    pub fn new(name: &'static str, settings: OtlpSettings, max_body_bytes: usize) -> Self {
        Self {
            name,
            settings,
            limits: limits(max_body_bytes),
            resources: ResourceCache::default(),
            wire: MetricsWire::default(),
        }
    }
}

impl Wire for OtlpMetricsEncoder {
    fn name(&self) -> &'static str {
        self.name
    }

    fn content_type(&self) -> &'static str {
        "application/x-protobuf"
    }

    fn limits(&self) -> RequestLimits {
        self.limits
    }

    fn body_overhead(&self) -> usize {
        0
    }

    fn entry_overhead(&self, _entry_len: usize) -> usize {
        0
    }

    fn body(&self, entries: &Entries, range: std::ops::Range<usize>) -> Vec<u8> {
        body(entries, range)
    }

    fn refused(&self, answer: &tracehose_export::Delivered, entries: usize) -> Refused {
        super::answer::otlp_metrics(answer, entries)
    }
}

impl InvocationEncoder for OtlpMetricsEncoder {
    fn entry_key(&self) -> Option<u64> {
        Some(entry_key("metrics", &self.settings))
    }

    fn encode(&self, invocation: &Invocation, out: &mut Vec<u8>) -> Encoded {
        let start = out.len();
        let mut truncated = false;
        let resource = self.resources.encoded(&self.settings, invocation, &mut truncated);
        self.wire.push_entry(&resource, invocation, out);
        Encoded {
            bytes: out.len() - start,
            truncated,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, AggregationTemporality};
    use prost::Message;

    use super::*;
    use crate::deliver::encode::figures::testing::{cold_timeout, invocation};
    use crate::deliver::encode::otlp::OTLP_LIMITS;
    use crate::record::Source;

    fn encoder() -> OtlpMetricsEncoder {
        let settings = OtlpSettings {
            service_name: None,
            resource_attributes: vec![("deployment.environment".into(), "prod".into())],
        };
        OtlpMetricsEncoder::new("otlp-metrics", settings, OTLP_LIMITS.max_body_bytes)
    }

    fn decode(
        encoder: &OtlpMetricsEncoder,
        invocations: &[Invocation],
    ) -> (ExportMetricsServiceRequest, bool) {
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
        assert_eq!(body.len(), entries.data.len(), "entries are framed already");
        // Any split of a batch is a request too.
        if entries.len() > 1 {
            let half = encoder.body(&entries, 1..entries.len());
            let decoded = ExportMetricsServiceRequest::decode(&half[..]).unwrap();
            assert_eq!(decoded.resource_metrics.len(), entries.len() - 1);
        }
        (ExportMetricsServiceRequest::decode(&body[..]).unwrap(), truncated)
    }

    fn attrs(list: &[KeyValue]) -> BTreeMap<String, Any> {
        list.iter()
            .map(|kv| (kv.key.clone(), kv.value.clone().unwrap().value.unwrap()))
            .collect()
    }

    /// `name -> (unit, value)`: an int or double sum's value, a histogram's sum; every point checked DELTA,
    /// within the invocation's interval, and finite.
    fn points(request: &ExportMetricsServiceRequest, at: usize) -> BTreeMap<String, (String, f64)> {
        let resource_metrics = &request.resource_metrics[at];
        let scope_metrics = &resource_metrics.scope_metrics;
        assert_eq!(scope_metrics.len(), 1);
        assert_eq!(scope_metrics[0].scope.as_ref().unwrap().name, "tracehose");
        let delta = AggregationTemporality::Delta as i32;
        scope_metrics[0]
            .metrics
            .iter()
            .map(|m| {
                let value = match m.data.as_ref().unwrap() {
                    metric::Data::Sum(s) => {
                        assert_eq!((s.aggregation_temporality, s.is_monotonic), (delta, true));
                        let p = &s.data_points[0];
                        assert!(p.start_time_unix_nano <= p.time_unix_nano);
                        match p.value.unwrap() {
                            number_data_point::Value::AsInt(n) => n as f64,
                            number_data_point::Value::AsDouble(x) => x,
                        }
                    }
                    metric::Data::Histogram(h) => {
                        assert_eq!(h.aggregation_temporality, delta);
                        let p = &h.data_points[0];
                        assert_eq!(p.count, 1);
                        assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
                        assert_eq!(p.bucket_counts.iter().sum::<u64>(), 1);
                        assert_eq!((p.min, p.max), (p.sum, p.sum));
                        p.sum.unwrap()
                    }
                    other => panic!("{}: {other:?}", m.name),
                };
                assert!(value.is_finite() && value >= 0.0, "{}: {value}", m.name);
                (m.name.clone(), (m.unit.clone(), value))
            })
            .collect()
    }

    #[test]
    fn a_warm_invocation_under_the_faas_conventions() {
        let (request, truncated) = decode(&encoder(), &[invocation()]);
        assert!(!truncated);
        let resource = attrs(&request.resource_metrics[0].resource.as_ref().unwrap().attributes);
        for (key, want) in [
            ("cloud.provider", "aws"),
            ("cloud.platform", "aws_lambda"),
            ("cloud.region", "eu-west-1"),
            ("cloud.account.id", "123456789012"),
            ("faas.name", "checkout"),
            ("faas.version", "42"),
            ("service.name", "checkout"),
            ("deployment.environment", "prod"),
            ("team", "payments"),
        ] {
            assert_eq!(resource[key], Any::StringValue(want.into()), "{key}");
        }
        assert_eq!(resource["faas.max_memory"], Any::IntValue(1 << 30));
        let got = points(&request, 0);
        let want_cost = 0.000_000_2 + 0.481 * 0.000_016_666_7;
        let expected: [(&str, &str, f64); 9] = [
            ("faas.invocations", "{invocation}", 1.0),
            ("faas.errors", "{error}", 0.0),
            ("faas.timeouts", "{timeout}", 0.0),
            ("faas.coldstarts", "{coldstart}", 0.0),
            ("aws.lambda.out_of_memory", "{invocation}", 0.0),
            ("faas.invoke_duration", "s", 0.4805),
            ("faas.mem_usage", "By", 90.0 * 1024.0 * 1024.0),
            ("aws.lambda.billed_duration", "s", 0.481),
            ("aws.lambda.estimated_cost", "USD", want_cost),
        ];
        assert_eq!(got.len(), expected.len(), "{got:?}");
        for (name, unit, value) in expected {
            let (got_unit, got_value) = &got[name];
            assert_eq!(got_unit, unit, "{name}");
            assert!((got_value - value).abs() < 1e-12, "{name}: {got_value} {value}");
        }
        let data = &request.resource_metrics[0].scope_metrics[0].metrics[5].data;
        let Some(metric::Data::Histogram(h)) = data else {
            panic!("{data:?}")
        };
        // 0.4805 s falls in (0.25, 0.5].
        assert_eq!(h.data_points[0].bucket_counts[7], 1);
        assert_eq!(h.data_points[0].start_time_unix_nano, 1_700_000_000_500_000_000);
        assert_eq!(h.data_points[0].time_unix_nano, 1_700_000_001_000_000_000);
    }

    #[test]
    fn a_cold_timeout_counts_its_error_timeout_cold_start_and_init() {
        let (request, _) = decode(&encoder(), &[cold_timeout()]);
        let got = points(&request, 0);
        for (name, value) in [
            ("faas.errors", 1.0),
            ("faas.timeouts", 1.0),
            ("faas.coldstarts", 1.0),
            ("faas.init_duration", 0.25025),
        ] {
            assert_eq!(got[name].1, value, "{name}");
        }
    }

    #[test]
    fn managed_instances_report_a_duration_and_never_a_cost() {
        let mut managed = invocation();
        managed.managed_instances = true;
        managed.memory_size_mb = None;
        managed.max_memory_used_mb = None;
        let (request, _) = decode(&encoder(), &[managed]);
        let got = points(&request, 0);
        assert!(got.contains_key("faas.invoke_duration"));
        for absent in [
            "aws.lambda.estimated_cost",
            "aws.lambda.billed_duration",
            "faas.mem_usage",
        ] {
            assert!(!got.contains_key(absent), "{absent}");
        }
        let resource = attrs(&request.resource_metrics[0].resource.as_ref().unwrap().attributes);
        assert!(!resource.contains_key("faas.max_memory"));
    }

    #[test]
    fn hostile_figures_and_names_stay_readable_and_bounded() {
        let mut hostile = invocation();
        hostile.duration_ms = f64::NAN;
        hostile.billed_duration_ms = Some(f64::INFINITY);
        hostile.init_duration_ms = Some(f64::NEG_INFINITY);
        hostile.memory_size_mb = Some(u64::MAX);
        hostile.max_memory_used_mb = Some(u64::MAX);
        hostile.start_ms = f64::MAX;
        hostile.report_ms = i64::MIN;
        hostile.version = Some("9".repeat(100_000));
        hostile.source = Arc::new(Source {
            function_name: Some("é".repeat(100_000)),
            ..(*hostile.source).clone()
        });
        let (request, truncated) = decode(&encoder(), &[hostile]);
        assert!(truncated);
        let resource = attrs(&request.resource_metrics[0].resource.as_ref().unwrap().attributes);
        let Any::StringValue(name) = &resource["faas.name"] else {
            panic!()
        };
        assert!(name.len() <= 4096);
        assert!(
            !resource.contains_key("faas.max_memory"),
            "u64::MAX MiB is no byte count"
        );
        let got = points(&request, 0);
        let names: Vec<&str> = got.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "aws.lambda.out_of_memory",
                "faas.coldstarts",
                "faas.errors",
                "faas.invocations",
                "faas.timeouts"
            ]
        );
    }

    #[test]
    fn each_invocation_is_its_own_resource_so_versions_never_mix() {
        let mut other = invocation();
        other.version = Some("43".to_owned());
        other.memory_size_mb = Some(2048);
        let (request, _) = decode(&encoder(), &[invocation(), other, cold_timeout()]);
        assert_eq!(request.resource_metrics.len(), 3);
        let version = |i: usize| {
            attrs(&request.resource_metrics[i].resource.as_ref().unwrap().attributes)["faas.version"].clone()
        };
        assert_eq!(version(0), Any::StringValue("42".into()));
        assert_eq!(version(1), Any::StringValue("43".into()));
        assert_eq!(encoder().name(), "otlp-metrics");
        assert_eq!(encoder().content_type(), "application/x-protobuf");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod framing {
    use std::sync::Arc;

    use super::*;
    use crate::deliver::encode::figures::testing::{cold_timeout, invocation};
    use crate::deliver::encode::otlp_metrics_oracle::as_prost;
    use crate::record::Source;

    /// The kept resource is reused only for the same source, version and memory: every entry is the bytes the
    /// generated types give, whichever of them changes from one invocation to the next.
    #[test]
    fn entries_with_a_kept_resource_are_the_bytes_prost_writes() {
        let settings = OtlpSettings::default();
        let encoder = OtlpMetricsEncoder::new("otlp-metrics", settings.clone(), 1 << 20);
        let first = invocation();
        let other_source = Invocation {
            source: Arc::new(Source {
                function_name: Some("other".to_owned()),
                ..(*first.source).clone()
            }),
            ..invocation()
        };
        let sequence = [
            first.clone(),
            first.clone(),
            Invocation {
                version: Some("43".to_owned()),
                ..first.clone()
            },
            Invocation {
                memory_size_mb: Some(2048),
                ..first.clone()
            },
            other_source,
            cold_timeout(),
            first,
        ];
        for (i, invocation) in sequence.iter().enumerate() {
            let mut out = Vec::new();
            encoder.encode(invocation, &mut out);
            assert_eq!(out, as_prost(&settings, invocation), "entry {i}");
        }
    }
}
