//! Errors of the subscribe module, each naming what it was doing and on which log group.

use thiserror::Error;

/// A setting that is missing or invalid; `source_name` is the flag or environment variable to fix.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{source_name} is required")]
    Missing { source_name: &'static str },
    #[error("{source_name}: {problem}")]
    Invalid {
        source_name: &'static str,
        problem: String,
    },
}

/// A failure talking to CloudWatch Logs. `detail` is the SDK's full error chain, rendered once here because the
/// SDK error types are generic per operation and callers only report them.
#[derive(Debug, Error)]
pub enum SubscribeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Region(#[from] crate::aws::NoRegion),
    #[error("listing log groups with prefix {prefix:?}: {detail}")]
    ListLogGroups { prefix: String, detail: String },
    #[error("log group {log_group:?} does not exist")]
    LogGroupNotFound { log_group: String },
    #[error("reading the subscription filters of {log_group:?}: {detail}")]
    DescribeFilters { log_group: String, detail: String },
    #[error("putting subscription filter {filter_name:?} on {log_group:?}: {detail}")]
    PutFilter {
        log_group: String,
        filter_name: String,
        detail: String,
    },
}
