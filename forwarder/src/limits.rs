//! Bounds on everything that comes from outside (DESIGN.md): each is configurable, each has a safe default.

use std::env;

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest output of any one decompression (a record, an object, a request body): the gzip-bomb cap.
    pub max_decompressed_bytes: usize,
    /// Largest input file or request body read before decompression.
    pub max_input_bytes: usize,
    /// Invocations whose trace and cold-start state are remembered across payloads.
    pub max_tracked_invocations: usize,
    /// Log streams whose open invocation is remembered across payloads.
    pub max_tracked_streams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_decompressed_bytes: 64 << 20,
            max_input_bytes: 256 << 20,
            max_tracked_invocations: 20_000,
            max_tracked_streams: 5_000,
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

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, LimitError> {
        let mut limits = Self::default();
        let fields: [(&'static str, &mut usize); 4] = [
            (
                "TRACEHOSE_MAX_DECOMPRESSED_BYTES",
                &mut limits.max_decompressed_bytes,
            ),
            ("TRACEHOSE_MAX_INPUT_BYTES", &mut limits.max_input_bytes),
            (
                "TRACEHOSE_MAX_TRACKED_INVOCATIONS",
                &mut limits.max_tracked_invocations,
            ),
            ("TRACEHOSE_MAX_TRACKED_STREAMS", &mut limits.max_tracked_streams),
        ];
        for (variable, field) in fields {
            if let Some(value) = lookup(variable) {
                *field = parse_positive(variable, &value)?;
            }
        }
        Ok(limits)
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
    }
}
