//! Platform telemetry: what a Lambda function's own platform lines (`START`, `REPORT`, `Task timed out`,
//! out-of-memory messages) say about each invocation, turned into one [`Invocation`] per request id. The
//! delivery stage encodes it for each backend in its own idiom: Datadog enhanced metrics, OTLP metrics with
//! the FaaS conventions, and one invocation span (docs/formats.md, section 9).
//!
//! The pipeline observes every line before the user's filter (a REPORT line excluded from the logs still
//! counts) and hands each finished invocation to its sink ([`crate::output::Sink::invocation`]); sinks that
//! carry no telemetry (NDJSON) ignore it.

pub mod figures;
pub mod ids;
pub mod signals;
pub mod tracker;

use std::sync::Arc;

use tracehose_tracecontext::{SpanId, TraceId};

use crate::record::Source;

/// What the function runs on: the price of a GB-second depends on it, and no log line says it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Architecture {
    #[default]
    X86_64,
    Arm64,
}

/// How an invocation ended, from its REPORT's status (text `Status:` or JSON `status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Outcome {
    #[default]
    Success,
    Error,
    Timeout,
    /// The platform's own failure (`failure`, or any status this version does not know).
    Failure,
}

/// The ids of an invocation's span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanIds {
    pub trace_id: TraceId,
    /// The invocation span's own id: the X-Ray segment id, or one derived from the request id.
    pub span_id: SpanId,
    /// `Parent=` of the X-Ray header, when the invocation was called from a traced caller.
    pub parent_span_id: Option<SpanId>,
    /// The ids were derived from the request id (`TRACEHOSE_INVOCATION_SPANS=all`), not given by X-Ray.
    pub derived: bool,
}

/// One finished invocation, as its platform lines describe it: made once per request id, at its REPORT.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub source: Arc<Source>,
    pub request_id: Arc<str>,
    /// The REPORT's event timestamp, epoch milliseconds: the metrics' timestamp.
    pub report_ms: i64,
    /// When the invocation started, epoch milliseconds: its START's timestamp when seen, else the REPORT's
    /// timestamp less its duration.
    pub start_ms: f64,
    pub duration_ms: f64,
    pub billed_duration_ms: Option<f64>,
    /// Present on cold starts only.
    pub init_duration_ms: Option<f64>,
    pub restore_duration_ms: Option<f64>,
    pub memory_size_mb: Option<u64>,
    pub max_memory_used_mb: Option<u64>,
    pub outcome: Outcome,
    pub error_type: Option<String>,
    /// A new execution environment: an `Init Duration` or a `Restore Duration` (SnapStart), or an `INIT_START`
    /// before its START. Datadog's tag is narrower ([`figures::datadog_cold_start`]).
    pub cold_start: bool,
    /// Timed out: `Status: timeout`, JSON `"status":"timeout"`, or a `Task timed out after` line.
    pub timed_out: bool,
    /// Ran out of memory: `Runtime.OutOfMemory`, a runtime's out-of-memory message, or all memory used.
    pub out_of_memory: bool,
    /// Lambda Managed Instances report only a duration: nothing is billed per invocation, so no cost.
    pub managed_instances: bool,
    /// The function version its START named (`$LATEST`, `42`), when seen.
    pub version: Option<String>,
    pub architecture: Architecture,
    /// Set when an invocation span is to be made for it (`TRACEHOSE_INVOCATION_SPANS`).
    pub span: Option<SpanIds>,
}

/// Which invocations get a span made from their platform lines (`TRACEHOSE_INVOCATION_SPANS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SpanMode {
    Off,
    /// Only invocations whose platform lines carry X-Ray ids (active tracing): every id is the platform's own.
    #[default]
    Xray,
    /// Every invocation: with no X-Ray ids, ids derived from the request id, and marked as derived.
    All,
}

/// Where the logs a face reads come from, which decides what telemetry it makes when no setting says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Delivered now, once: the Lambda face (subscriptions, Firehose) and `serve`.
    Live,
    /// Read again from a file or an S3 backup (`process`, `replay`). Its invocations' metrics may well have
    /// been sent when the logs first went by, and a counter sent twice is silently wrong, so telemetry is
    /// made only when a setting asks for it.
    Reprocessed,
}

/// What platform telemetry to make, read once at start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// `TRACEHOSE_LAMBDA_METRICS`: on by default for live logs when a destination that takes metrics is
    /// configured.
    pub metrics: bool,
    pub spans: SpanMode,
    /// `TRACEHOSE_LAMBDA_ARCHITECTURE`, for the estimated cost.
    pub architecture: Architecture,
}

/// A telemetry setting is invalid: names the variable and what it accepts.
#[derive(Debug, thiserror::Error)]
#[error("{var}: expected {expected}")]
pub struct SettingsError {
    pub var: &'static str,
    pub expected: &'static str,
}

impl Settings {
    /// Reads the settings; `metrics_capable` says whether a configured destination takes metrics, `origin`
    /// where the logs come from (for the defaults).
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
        metrics_capable: bool,
        origin: Origin,
    ) -> Result<Self, SettingsError> {
        let live = origin == Origin::Live;
        let read = |var: &'static str, expected: &'static str| {
            let value = lookup(var).map(|v| v.trim().to_ascii_lowercase());
            (value.filter(|v| !v.is_empty()), SettingsError { var, expected })
        };
        let metrics = match read("TRACEHOSE_LAMBDA_METRICS", "on or off") {
            (None, _) => live && metrics_capable,
            (Some(v), err) => match v.as_str() {
                "on" | "true" | "1" | "yes" => true,
                "off" | "false" | "0" | "no" => false,
                _ => return Err(err),
            },
        };
        let spans = match read("TRACEHOSE_INVOCATION_SPANS", "off, xray or all") {
            (None, _) if live => SpanMode::default(),
            (None, _) => SpanMode::Off,
            (Some(v), err) => match v.as_str() {
                "off" => SpanMode::Off,
                "xray" => SpanMode::Xray,
                "all" => SpanMode::All,
                _ => return Err(err),
            },
        };
        let architecture = match read("TRACEHOSE_LAMBDA_ARCHITECTURE", "x86_64 or arm64") {
            (None, _) => Architecture::default(),
            (Some(v), err) => match v.as_str() {
                "x86_64" | "x86-64" | "amd64" => Architecture::X86_64,
                "arm64" | "aarch64" => Architecture::Arm64,
                _ => return Err(err),
            },
        };
        Ok(Self {
            metrics,
            spans,
            architecture,
        })
    }
}
