//! The one internal log record every input is turned into and every destination maps from (DESIGN.md).

use std::sync::Arc;

use tracehose_tracecontext::{SpanId, TraceId};

use crate::parse::{PlatformDetails, PlatformEvent, Severity};

/// Where a batch of log events came from; shared by every record of one subscription payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    pub log_group: String,
    pub log_stream: String,
    /// The AWS account that owns the log group (`owner` of the payload).
    pub account_id: Option<String>,
    pub region: Option<String>,
    /// The Lambda function, from a `/aws/lambda/<name>` log group.
    pub function_name: Option<String>,
    /// The delivery stream the data came through, when it came through Firehose.
    pub firehose_arn: Option<String>,
    /// Firehose HTTP endpoint common attributes, in the order they were configured.
    pub common_attributes: Vec<(String, String)>,
}

/// How a record got its trace id: which rule of the correlation contract applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// The line carries its own trace context.
    Line,
    /// Through the line's invocation, whose trace the extension's marker line announced.
    Marker,
    /// Through the line's invocation, whose trace another line of that invocation carried.
    Invocation,
    /// Through the line's invocation, from the X-Ray id of its REPORT line or `platform.start` record.
    Xray,
}

impl Join {
    pub fn as_str(self) -> &'static str {
        match self {
            Join::Line => "line",
            Join::Marker => "marker",
            Join::Invocation => "invocation",
            Join::Xray => "xray",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// Epoch milliseconds, from the CloudWatch log event.
    pub timestamp_ms: i64,
    pub message: String,
    pub severity: Severity,
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
    pub request_id: Option<Arc<str>>,
    pub join: Option<Join>,
    pub source: Arc<Source>,
    /// Set for Lambda platform lines (START, REPORT, ...).
    pub platform: Option<PlatformEvent>,
    /// What a platform line reports: REPORT metrics, status, error type, versions.
    pub details: Option<Box<PlatformDetails>>,
    /// Whether the line's invocation was a cold start, when known.
    pub cold_start: Option<bool>,
}
