//! The figures every encoder derives from an [`Invocation`] the same way: its estimated cost, and the
//! Datadog enhanced metrics with the names, units and rules of the Datadog Forwarder
//! (`enhanced_lambda_metrics.py`) and docs/formats.md section 9.

use super::{Architecture, Invocation, Outcome};

/// Price of one request, USD.
pub const PRICE_PER_REQUEST_USD: f64 = 0.000_000_2;
/// Price of a GB-second on x86_64, USD (the Datadog Forwarder's only price).
pub const PRICE_PER_GB_SECOND_X86_64_USD: f64 = 0.000_016_666_7;
/// Price of a GB-second on arm64 (Graviton), USD.
pub const PRICE_PER_GB_SECOND_ARM64_USD: f64 = 0.000_013_333_4;

/// The Datadog enhanced metrics' namespace.
pub const DATADOG_PREFIX: &str = "aws.lambda.enhanced.";

/// What one invocation cost, USD: the request plus its billed GB-seconds (billed seconds x memory MB / 1024)
/// at the architecture's price. `None` without a billed duration or a memory size: Lambda Managed Instances
/// bill no invocation, and a REPORT missing either cannot be priced.
pub fn estimated_cost_usd(invocation: &Invocation) -> Option<f64> {
    if invocation.managed_instances {
        return None;
    }
    let billed_ms = invocation.billed_duration_ms?;
    let memory_mb = invocation.memory_size_mb? as f64;
    let gb_seconds = (billed_ms / 1000.0) * (memory_mb / 1024.0);
    let price = match invocation.architecture {
        Architecture::X86_64 => PRICE_PER_GB_SECOND_X86_64_USD,
        Architecture::Arm64 => PRICE_PER_GB_SECOND_ARM64_USD,
    };
    Some(PRICE_PER_REQUEST_USD + gb_seconds * price).filter(|cost| cost.is_finite())
}

/// Whether the invocation counts as an error: its status was error, timeout or failure, or it timed out.
pub fn is_error(invocation: &Invocation) -> bool {
    invocation.outcome != Outcome::Success || invocation.timed_out
}

/// Datadog's `cold_start` tag: the REPORT has a non-zero `Init Duration`, as the Datadog Forwarder decides it.
/// Narrower than [`Invocation::cold_start`], which counts a SnapStart restore too.
pub fn datadog_cold_start(invocation: &Invocation) -> bool {
    invocation.init_duration_ms.is_some_and(|ms| ms > 0.0)
}

/// One Datadog enhanced metric point of an invocation: its full name and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DatadogMetric {
    pub name: &'static str,
    pub value: f64,
}

/// `value` when a backend can take it: finite and not negative. A REPORT's figures never are otherwise; a
/// hostile or broken line may be, and such a figure is left out rather than sent.
pub fn sane(value: f64) -> Option<f64> {
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// The Datadog enhanced metrics of one invocation, in this order: `duration`, `billed_duration`,
/// `init_duration` (cold starts with an `Init Duration` only), `max_memory_used` (MB), `estimated_cost`,
/// `invocations`, then `errors`, `timeouts` and `out_of_memory` only when they happened, as the Datadog
/// Forwarder sends `timeouts` and `out_of_memory` (a distribution's count of points would otherwise count
/// every invocation). Durations in seconds. A Managed Instances invocation reports only a duration and gets
/// only `duration` (docs/formats.md section 9). A figure that is not finite and non-negative is left out.
pub fn datadog_metrics(invocation: &Invocation) -> Vec<DatadogMetric> {
    const SECONDS_PER_MS: f64 = 0.001;
    let mut out = Vec::with_capacity(9);
    let mut push = |name, value: Option<f64>| {
        if let Some(value) = value.and_then(sane) {
            out.push(DatadogMetric { name, value });
        }
    };
    push(
        "aws.lambda.enhanced.duration",
        Some(invocation.duration_ms * SECONDS_PER_MS),
    );
    if invocation.managed_instances {
        return out;
    }
    push(
        "aws.lambda.enhanced.billed_duration",
        invocation.billed_duration_ms.map(|ms| ms * SECONDS_PER_MS),
    );
    // The Datadog Forwarder sends it only when the REPORT has a (non-zero) Init Duration.
    push(
        "aws.lambda.enhanced.init_duration",
        invocation
            .init_duration_ms
            .filter(|_| datadog_cold_start(invocation))
            .map(|ms| ms * SECONDS_PER_MS),
    );
    push(
        "aws.lambda.enhanced.max_memory_used",
        invocation.max_memory_used_mb.map(|mb| mb as f64),
    );
    push(
        "aws.lambda.enhanced.estimated_cost",
        estimated_cost_usd(invocation),
    );
    push("aws.lambda.enhanced.invocations", Some(1.0));
    for (name, happened) in [
        ("aws.lambda.enhanced.errors", is_error(invocation)),
        ("aws.lambda.enhanced.timeouts", invocation.timed_out),
        ("aws.lambda.enhanced.out_of_memory", invocation.out_of_memory),
    ] {
        if happened {
            push(name, Some(1.0));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;

    pub(crate) fn invocation() -> Invocation {
        Invocation {
            source: Arc::default(),
            request_id: Arc::from("r-1"),
            report_ms: 1_000_000,
            start_ms: 998_000.0,
            duration_ms: 1711.87,
            billed_duration_ms: Some(1800.0),
            init_duration_ms: None,
            restore_duration_ms: None,
            memory_size_mb: Some(128),
            max_memory_used_mb: Some(98),
            outcome: Outcome::Success,
            error_type: None,
            cold_start: false,
            timed_out: false,
            out_of_memory: false,
            managed_instances: false,
            version: None,
            architecture: Architecture::X86_64,
            span: None,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-15 + 1e-12 * b.abs()
    }

    /// The Datadog Forwarder's `calculate_estimated_cost(1800, 128)`, as its Python computes it:
    /// 0.0000002 + (1800 / 1000.0) * (128 / 1024.0) * 0.0000166667 = 3.9500075e-06.
    #[test]
    fn cost_as_the_datadog_forwarder_computes_it() {
        let cost = estimated_cost_usd(&invocation()).unwrap();
        assert!(close(cost, 3.950_007_5e-6), "{cost}");
        let arm = Invocation {
            architecture: Architecture::Arm64,
            ..invocation()
        };
        let cost = estimated_cost_usd(&arm).unwrap();
        assert!(close(cost, 0.000_000_2 + 0.225 * 0.000_013_333_4), "{cost}");
        for none in [
            Invocation {
                managed_instances: true,
                ..invocation()
            },
            Invocation {
                billed_duration_ms: None,
                ..invocation()
            },
            Invocation {
                memory_size_mb: None,
                ..invocation()
            },
            Invocation {
                billed_duration_ms: Some(f64::MAX),
                memory_size_mb: Some(u64::MAX),
                ..invocation()
            },
        ] {
            assert_eq!(estimated_cost_usd(&none), None, "{none:?}");
        }
    }

    fn names_and_values(invocation: &Invocation) -> Vec<(&'static str, f64)> {
        datadog_metrics(invocation)
            .into_iter()
            .map(|m| (m.name, m.value))
            .collect()
    }

    /// The Datadog Forwarder's docstring REPORT: `Duration: 1711.87 ms Billed Duration: 1800 ms Memory Size:
    /// 128 MB Max Memory Used: 98 MB`.
    #[test]
    fn the_enhanced_metrics_of_a_warm_invocation() {
        let got = names_and_values(&invocation());
        let want = [
            ("aws.lambda.enhanced.duration", 1.71187),
            ("aws.lambda.enhanced.billed_duration", 1.8),
            ("aws.lambda.enhanced.max_memory_used", 98.0),
            ("aws.lambda.enhanced.estimated_cost", 3.950_007_5e-6),
            ("aws.lambda.enhanced.invocations", 1.0),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for ((name, value), (want_name, want_value)) in got.iter().zip(want) {
            assert_eq!(*name, want_name);
            assert!(close(*value, want_value), "{name}: {value} != {want_value}");
        }
        assert!(got.iter().all(|(name, _)| name.starts_with(DATADOG_PREFIX)));
    }

    #[test]
    fn cold_timed_out_out_of_memory_and_managed_instances() {
        let cold = Invocation {
            init_duration_ms: Some(130.49),
            cold_start: true,
            outcome: Outcome::Timeout,
            timed_out: true,
            out_of_memory: true,
            ..invocation()
        };
        let got = names_and_values(&cold);
        let value = |name: &str| got.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        assert!(close(
            value("aws.lambda.enhanced.init_duration").unwrap(),
            0.13049
        ));
        for count in ["errors", "timeouts", "out_of_memory", "invocations"] {
            assert_eq!(
                value(&format!("aws.lambda.enhanced.{count}")),
                Some(1.0),
                "{count}"
            );
        }
        // A zero Init Duration is no cold start to Datadog: no point.
        let zero = Invocation {
            init_duration_ms: Some(0.0),
            duration_ms: f64::NAN,
            ..invocation()
        };
        assert!(
            !names_and_values(&zero)
                .iter()
                .any(|(n, _)| *n == "aws.lambda.enhanced.duration"),
            "a figure no backend can read is left out"
        );
        assert!(!names_and_values(&zero)
            .iter()
            .any(|(n, _)| *n == "aws.lambda.enhanced.init_duration"));
        let managed = Invocation {
            managed_instances: true,
            billed_duration_ms: None,
            memory_size_mb: None,
            max_memory_used_mb: None,
            ..invocation()
        };
        assert_eq!(
            names_and_values(&managed),
            [("aws.lambda.enhanced.duration", 1.71187)]
        );
    }
}
