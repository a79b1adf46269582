//! The one internal log record every input is turned into and every destination maps from
//! (docs/architecture.md).

use std::borrow::Cow;
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
    /// Through the line's invocation, which had no trace: the ids derived from its request id, which its
    /// invocation span carries (`TRACEHOSE_INVOCATION_SPANS=all`).
    Derived,
}

impl Join {
    pub fn as_str(self) -> &'static str {
        match self {
            Join::Line => "line",
            Join::Marker => "marker",
            Join::Invocation => "invocation",
            Join::Xray => "xray",
            Join::Derived => "derived",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord<'a> {
    /// Epoch milliseconds, from the CloudWatch log event.
    pub timestamp_ms: i64,
    /// Borrowed from the decoded input whenever it can be: destinations encode it where it lies.
    pub message: Cow<'a, str>,
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

/// One typed attribute value, borrowed from a record or its source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttrValue<'a> {
    Str(&'a str),
    /// Unsigned: every integer attribute is a size or a count, and a hostile REPORT line can saturate one.
    UInt(u64),
    Float(f64),
    Bool(bool),
}

impl Source {
    /// The source's attributes under OpenTelemetry names (`cloud.account.id`, `cloud.region`, `faas.name`),
    /// then [`visit_delivery_attributes`](Self::visit_delivery_attributes). Log group and stream are not
    /// among them: every destination has its own place for those.
    pub fn visit_attributes(&self, f: &mut dyn FnMut(&str, AttrValue<'_>)) {
        for (key, value) in [
            ("cloud.account.id", &self.account_id),
            ("cloud.region", &self.region),
            ("faas.name", &self.function_name),
        ] {
            if let Some(value) = value {
                f(key, AttrValue::Str(value));
            }
        }
        self.visit_delivery_attributes(f);
    }

    /// How the data was delivered: the Firehose ARN and the common attributes, in their configured order.
    /// Destinations that map account, region and function to their own names use only these.
    pub fn visit_delivery_attributes(&self, f: &mut dyn FnMut(&str, AttrValue<'_>)) {
        if let Some(arn) = &self.firehose_arn {
            f("aws.firehose.arn", AttrValue::Str(arn));
        }
        for (key, value) in &self.common_attributes {
            f(key, AttrValue::Str(value));
        }
    }
}

/// Every value a record's own attributes follow from, when they follow from small values alone.
pub type AttributeKind = (Option<bool>, Option<PlatformEvent>, Option<Join>);

impl LogRecord<'_> {
    /// What [`Self::visit_attributes`] writes depends on, when that is only small values (no platform
    /// details): two records of the same kind visit the same attributes, so a writer may reuse them.
    pub fn attribute_kind(&self) -> Option<AttributeKind> {
        match self.details {
            Some(_) => None,
            None => Some((self.cold_start, self.platform, self.join)),
        }
    }

    /// The record's own typed attributes (not its source's), flat, with OpenTelemetry names where one exists
    /// and `aws.lambda.*` otherwise: cold start, platform event, REPORT metrics and details, how it was joined.
    /// The request id and trace context are not among them: every destination has its own place for those.
    pub fn visit_attributes(&self, f: &mut dyn FnMut(&str, AttrValue<'_>)) {
        // Keep `attribute_kind` in step: it names every field read here.
        if let Some(cold) = self.cold_start {
            f("faas.coldstart", AttrValue::Bool(cold));
        }
        if let Some(event) = self.platform {
            f("aws.lambda.platform_event", AttrValue::Str(event.as_str()));
        }
        if let Some(d) = &self.details {
            let m = &d.metrics;
            for (key, value) in [
                ("aws.lambda.duration_ms", m.duration_ms),
                ("aws.lambda.billed_duration_ms", m.billed_duration_ms),
                ("aws.lambda.init_duration_ms", m.init_duration_ms),
                ("aws.lambda.restore_duration_ms", m.restore_duration_ms),
                (
                    "aws.lambda.billed_restore_duration_ms",
                    m.billed_restore_duration_ms,
                ),
            ] {
                if let Some(v) = value {
                    f(key, AttrValue::Float(v));
                }
            }
            for (key, value) in [
                ("aws.lambda.memory_size_mb", m.memory_size_mb),
                ("aws.lambda.max_memory_used_mb", m.max_memory_used_mb),
            ] {
                if let Some(v) = value {
                    f(key, AttrValue::UInt(v));
                }
            }
            for (key, value) in [
                ("aws.lambda.status", &d.status),
                ("aws.lambda.error_type", &d.error_type),
                ("aws.lambda.phase", &d.phase),
                ("faas.version", &d.version),
                ("aws.lambda.runtime_version", &d.runtime_version),
            ] {
                if let Some(v) = value {
                    f(key, AttrValue::Str(v));
                }
            }
        }
        if let Some(join) = self.join {
            f("tracehose.join", AttrValue::Str(join.as_str()));
        }
    }
}
