//! Bounds on everything that comes from outside (docs/architecture.md): each is configurable, each has a safe
//! default.

use std::env;

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest output of any one decompression (a record, an object, a request body): the gzip-bomb cap.
    pub max_decompressed_bytes: usize,
    /// Largest output of all decompressions of one input together (a request, an event, a file, an object):
    /// bounds the time a small input of many bombs can cost, as the cap above bounds memory.
    pub max_decompressed_total_bytes: usize,
    /// Largest input file or request body read before decompression.
    pub max_input_bytes: usize,
    /// Longest log message forwarded; a longer one is cut, marked and counted. CloudWatch's own maximum
    /// event size is 1 MiB, so only a forged payload gets near it.
    pub max_message_bytes: usize,
    /// Invocations whose trace and cold-start state are remembered across payloads.
    pub max_tracked_invocations: usize,
    /// Log streams whose open invocation is remembered across payloads.
    pub max_tracked_streams: usize,
    /// Bytes the correlation state (and the platform telemetry's, when on) may hold, whatever the length of the
    /// names and ids it keys on.
    pub max_state_bytes: usize,
}

/// The decompression cap when nothing else bounds it.
const DEFAULT_MAX_DECOMPRESSED: usize = 64 << 20;
/// Peak memory is at most 3x the largest decompressed payload plus a fixed 32 MiB (README, measured); the
/// default cap inside Lambda keeps that, plus headroom, within the function's memory.
const PEAK_PER_DECOMPRESSED_BYTE: usize = 3;
const FIXED_PEAK_BYTES: usize = 48 << 20;
const MIN_MAX_DECOMPRESSED: usize = 4 << 20;
/// The default total for one input, in decompression caps: a full Firehose request (64 MiB of records)
/// whose records inflate 16x on average still fits, and at the inflation speed measured for the README
/// (about 0.6 GB/s on one core) the default 1 GiB costs under 2 s of CPU.
const DEFAULT_TOTAL_IN_CAPS: usize = 16;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED,
            max_decompressed_total_bytes: DEFAULT_MAX_DECOMPRESSED * DEFAULT_TOTAL_IN_CAPS,
            max_input_bytes: 256 << 20,
            max_message_bytes: 1 << 20,
            max_tracked_invocations: 20_000,
            max_tracked_streams: 5_000,
            max_state_bytes: 32 << 20,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("{variable}={value:?} is not valid: {reason}")]
pub struct LimitError {
    pub variable: &'static str,
    pub value: String,
    pub reason: &'static str,
}

impl Limits {
    /// Defaults overridden by `TRACEHOSE_MAX_*` variables; an invalid value is an error naming the variable.
    pub fn from_env() -> Result<Self, LimitError> {
        Self::from_lookup(|name| env::var(name).ok())
    }

    /// The default decompression cap for a function with `memory_mb` of memory: never more than its memory
    /// allows, given the measured peak of 3x the decompressed size plus a fixed part.
    pub fn decompression_cap_for_memory(memory_mb: usize) -> usize {
        let memory = memory_mb.saturating_mul(1 << 20);
        (memory.saturating_sub(FIXED_PEAK_BYTES) / PEAK_PER_DECOMPRESSED_BYTE)
            .clamp(MIN_MAX_DECOMPRESSED, DEFAULT_MAX_DECOMPRESSED)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, LimitError> {
        let mut limits = Self::default();
        // Inside Lambda the function's memory bounds the default; an explicit variable below still wins.
        if let Some(memory) = lookup("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") {
            let memory_mb = parse_positive("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", &memory)?;
            limits.max_decompressed_bytes = Self::decompression_cap_for_memory(memory_mb);
        }
        let fields: [(&'static str, &mut usize); 6] = [
            (
                "TRACEHOSE_MAX_DECOMPRESSED_BYTES",
                &mut limits.max_decompressed_bytes,
            ),
            ("TRACEHOSE_MAX_INPUT_BYTES", &mut limits.max_input_bytes),
            ("TRACEHOSE_MAX_MESSAGE_BYTES", &mut limits.max_message_bytes),
            (
                "TRACEHOSE_MAX_TRACKED_INVOCATIONS",
                &mut limits.max_tracked_invocations,
            ),
            ("TRACEHOSE_MAX_TRACKED_STREAMS", &mut limits.max_tracked_streams),
            ("TRACEHOSE_MAX_STATE_BYTES", &mut limits.max_state_bytes),
        ];
        for (variable, field) in fields {
            if let Some(value) = lookup(variable) {
                *field = parse_positive(variable, &value)?;
            }
        }
        // The total follows the cap (and so the function's memory) unless it is set itself.
        const TOTAL: &str = "TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES";
        limits.max_decompressed_total_bytes = match lookup(TOTAL) {
            Some(value) => parse_positive(TOTAL, &value)?,
            None => Self::default_total(limits.max_decompressed_bytes),
        };
        Ok(limits)
    }

    /// Sets the decompression cap after the environment was read (`process --max-decompressed-bytes`).
    /// The total per input follows it as it follows the variable, unless the total was set itself (read
    /// from `lookup`, the same environment `from_lookup` read).
    pub fn set_max_decompressed_bytes(&mut self, cap: usize, lookup: impl Fn(&str) -> Option<String>) {
        self.max_decompressed_bytes = cap;
        if lookup("TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES").is_none() {
            self.max_decompressed_total_bytes = Self::default_total(cap);
        }
    }

    fn default_total(cap: usize) -> usize {
        cap.saturating_mul(DEFAULT_TOTAL_IN_CAPS)
    }
}

fn parse_positive(variable: &'static str, value: &str) -> Result<usize, LimitError> {
    let err = |reason| LimitError {
        variable,
        value: value.to_owned(),
        reason,
    };
    let n: usize = value.trim().parse().map_err(|_| err("expected a whole number"))?;
    if n == 0 {
        return Err(err("must be greater than zero"));
    }
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_overrides_and_names_the_bad_variable() {
        let limits =
            Limits::from_lookup(|n| (n == "TRACEHOSE_MAX_DECOMPRESSED_BYTES").then(|| "1024".into()));
        assert_eq!(limits.unwrap().max_decompressed_bytes, 1024);
        let err =
            Limits::from_lookup(|n| (n == "TRACEHOSE_MAX_INPUT_BYTES").then(|| "lots".into())).unwrap_err();
        assert!(
            err.to_string().starts_with("TRACEHOSE_MAX_INPUT_BYTES=\"lots\""),
            "{err}"
        );
        assert!(Limits::from_lookup(|n| (n == "TRACEHOSE_MAX_TRACKED_STREAMS").then(|| "0".into())).is_err());
        let too_big = Limits::from_lookup(|n| {
            (n == "TRACEHOSE_MAX_DECOMPRESSED_BYTES").then(|| "18446744073709551616".into())
        });
        assert!(too_big.is_err(), "a value past usize is refused, not wrapped");
    }

    #[test]
    fn extreme_values_are_honoured() {
        let max = u64::MAX.to_string();
        let limits = Limits::from_lookup(|n| n.starts_with("TRACEHOSE_MAX_").then(|| max.clone())).unwrap();
        assert_eq!(limits.max_decompressed_bytes, usize::MAX);
        assert_eq!(limits.max_input_bytes, usize::MAX);
    }

    #[test]
    fn the_default_cap_follows_the_function_memory() {
        let at = |mb: &str| {
            let mb = mb.to_owned();
            Limits::from_lookup(move |n| (n == "AWS_LAMBDA_FUNCTION_MEMORY_SIZE").then(|| mb.clone()))
                .unwrap()
                .max_decompressed_bytes
        };
        assert_eq!(at("128"), (80 << 20) / 3);
        assert_eq!(at("256"), 64 << 20);
        assert_eq!(at("10240"), 64 << 20);
        // 3x the cap plus the fixed part fits in the function's memory.
        assert!(3 * at("128") + (32 << 20) <= 128 << 20);
        let explicit = Limits::from_lookup(|n| match n {
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => Some("128".into()),
            "TRACEHOSE_MAX_DECOMPRESSED_BYTES" => Some("1000".into()),
            _ => None,
        });
        assert_eq!(explicit.unwrap().max_decompressed_bytes, 1000);
    }

    #[test]
    fn the_total_per_input_follows_the_cap_unless_set() {
        let at = |pairs: &'static [(&'static str, &'static str)]| {
            Limits::from_lookup(|n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned()))
        };
        assert_eq!(at(&[]).unwrap().max_decompressed_total_bytes, 1 << 30);
        let small = at(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")]).unwrap();
        assert_eq!(
            small.max_decompressed_total_bytes,
            16 * small.max_decompressed_bytes
        );
        let set = at(&[("TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES", "5000")]).unwrap();
        assert_eq!(set.max_decompressed_total_bytes, 5000);
        let err = at(&[("TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES", "0")]).unwrap_err();
        assert_eq!(err.variable, "TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES");
    }

    #[test]
    fn a_cap_set_after_the_environment_carries_the_total_unless_the_total_was_set() {
        let mut limits = Limits::from_lookup(|_| None).unwrap();
        limits.set_max_decompressed_bytes(1 << 20, |_| None);
        assert_eq!(
            (limits.max_decompressed_bytes, limits.max_decompressed_total_bytes),
            (1 << 20, 16 << 20)
        );
        let set = |n: &str| (n == "TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES").then(|| "5000".to_owned());
        let mut limits = Limits::from_lookup(set).unwrap();
        limits.set_max_decompressed_bytes(1 << 20, set);
        assert_eq!(
            (limits.max_decompressed_bytes, limits.max_decompressed_total_bytes),
            (1 << 20, 5000)
        );
    }
}
