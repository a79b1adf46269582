//! What the three invocation encoders compute alike from an [`Invocation`]'s figures: seconds from
//! milliseconds, the estimated cost, and the guard that keeps a figure no backend can read (NaN, infinite,
//! negative) out of every request (docs/formats.md, section 9).

use crate::telemetry::Invocation;

pub(super) use crate::telemetry::figures::sane;

/// Milliseconds as seconds, when sane.
pub(super) fn seconds(ms: f64) -> Option<f64> {
    sane(ms / 1000.0)
}

/// The estimated cost of one invocation in USD (`telemetry::figures`), when a backend can take it.
pub(super) fn estimated_cost_usd(invocation: &Invocation) -> Option<f64> {
    crate::telemetry::figures::estimated_cost_usd(invocation).and_then(sane)
}

/// Bytes in `mb` MiB (Lambda's "MB" are binary), when they fit an `i64` (OTLP's integers).
pub(super) fn mib_to_bytes(mb: u64) -> Option<i64> {
    mb.checked_mul(1 << 20).and_then(|b| i64::try_from(b).ok())
}

/// Epoch (or elapsed) milliseconds as OTLP nanoseconds; zero (OTLP's "unknown") before 1970 or past 2554.
/// Whole milliseconds and their fraction are converted apart: an epoch in nanoseconds is past what an `f64`
/// holds exactly, its milliseconds are not.
pub(super) fn nanos_of_ms(ms: f64) -> u64 {
    if !(ms.is_finite() && ms >= 0.0) {
        return 0;
    }
    let whole = ms.trunc();
    let fraction = ((ms - whole) * 1_000_000.0).round() as u64;
    if whole >= (u64::MAX / 1_000_000) as f64 {
        return 0;
    }
    (whole as u64 * 1_000_000).saturating_add(fraction)
}

/// Invocations as the tracker makes them, for the encoders' tests.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod testing {
    use std::sync::Arc;

    use tracehose_tracecontext::{SpanId, TraceId};

    use super::super::testing::lambda_source;
    use crate::telemetry::{Architecture, Invocation, Outcome, SpanIds};

    pub const REQUEST: &str = "8f5b1c2e-1111-2222-3333-444455556666";

    /// A warm, successful invocation of `checkout` with every REPORT figure, X-Ray ids and a parent.
    pub fn invocation() -> Invocation {
        Invocation {
            source: lambda_source("checkout"),
            request_id: Arc::from(REQUEST),
            report_ms: 1_700_000_001_000,
            start_ms: 1_700_000_000_500.0,
            duration_ms: 480.5,
            billed_duration_ms: Some(481.0),
            init_duration_ms: None,
            restore_duration_ms: None,
            memory_size_mb: Some(1024),
            max_memory_used_mb: Some(90),
            outcome: Outcome::Success,
            error_type: None,
            cold_start: false,
            timed_out: false,
            out_of_memory: false,
            managed_instances: false,
            version: Some("42".to_owned()),
            architecture: Architecture::X86_64,
            span: Some(SpanIds {
                trace_id: TraceId::from_hex("5d8bba5adc2932496a65bab91d2d42d4").unwrap(),
                span_id: SpanId::from_hex("5ff79d2a06b82ad6").unwrap(),
                parent_span_id: SpanId::from_hex("00f067aa0ba902b7"),
                derived: false,
            }),
        }
    }

    /// Kinds of invocation: each of the ten low bits of `bits` turns one figure or flag on (duration, init,
    /// memory size, memory used, billed duration, managed instances, cold start, timed out, out of memory,
    /// arm64), so that `0..1 << COMBINATION_BITS` covers every combination.
    pub fn combination(bits: u32, outcome: Outcome) -> Invocation {
        let on = |bit: u32| bits & (1 << bit) != 0;
        Invocation {
            duration_ms: if on(0) { 480.5 } else { f64::NAN },
            init_duration_ms: on(1).then_some(250.25),
            memory_size_mb: on(2).then_some(1024),
            max_memory_used_mb: on(3).then_some(90),
            billed_duration_ms: on(4).then_some(481.0),
            managed_instances: on(5),
            cold_start: on(6),
            timed_out: on(7),
            out_of_memory: on(8),
            architecture: if on(9) {
                Architecture::Arm64
            } else {
                Architecture::X86_64
            },
            outcome,
            ..invocation()
        }
    }

    /// How many bits [`combination`] reads.
    pub const COMBINATION_BITS: u32 = 10;

    /// A cold start that timed out, with its init duration.
    pub fn cold_timeout() -> Invocation {
        Invocation {
            init_duration_ms: Some(250.25),
            cold_start: true,
            outcome: Outcome::Timeout,
            timed_out: true,
            error_type: Some("Sandbox.Timedout".to_owned()),
            ..invocation()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::borrow::Cow;

    use super::testing::invocation;
    use super::*;
    use crate::deliver::encode::{cut_text, TRUNCATED};

    #[test]
    fn figures_no_backend_can_read_are_left_out() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0] {
            assert_eq!(seconds(bad), None, "{bad}");
        }
        let mut i = invocation();
        i.billed_duration_ms = Some(f64::MAX);
        i.memory_size_mb = Some(u64::MAX);
        assert_eq!(estimated_cost_usd(&i), None, "an infinite cost is never sent");
        assert_eq!(mib_to_bytes(u64::MAX), None);
        assert_eq!(mib_to_bytes(128), Some(134_217_728));
        assert_eq!(nanos_of_ms(-5.0), 0);
        assert_eq!(nanos_of_ms(f64::NAN), 0);
        assert_eq!(nanos_of_ms(1e300), 0);
        assert_eq!(nanos_of_ms(1.5), 1_500_000);
        assert_eq!(nanos_of_ms(1_700_000_000_980.5), 1_700_000_000_980_500_000);
    }

    #[test]
    fn text_is_cut_on_a_character_boundary_with_the_marker() {
        let long = "é".repeat(100);
        let (kept, cut) = cut_text(&long, 50);
        assert!(cut && kept.len() <= 50 && kept.ends_with(TRUNCATED), "{kept}");
        assert_eq!(cut_text("short", 50), (Cow::Borrowed("short"), false));
    }
}
