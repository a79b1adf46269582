//! The NDJSON contract of DESIGN.md: one object per record with `timestamp`, `message`, `severity`,
//! `trace_id`, `span_id`, `request_id` (the last three absent when unknown), `log_group`, `log_stream` and
//! `attributes`. Users pipe it into `jq` and tests compare it byte for byte: keep it stable.

use std::io::{self, Write};

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::Sink;
use crate::record::LogRecord;

/// Writes one JSON object per line to any writer (stdout, a file, a buffer).
#[derive(Debug)]
pub struct NdjsonSink<W: Write> {
    out: W,
}

impl<W: Write> NdjsonSink<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> Sink for NdjsonSink<W> {
    type Error = io::Error;

    fn write(&mut self, record: LogRecord) -> io::Result<()> {
        write_record(&mut self.out, &record)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

pub fn write_record(out: &mut impl Write, record: &LogRecord) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &Line(record))?;
    out.write_all(b"\n")
}

struct Line<'a>(&'a LogRecord);

impl Serialize for Line<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("timestamp", &r.timestamp_ms)?;
        map.serialize_entry("message", &r.message)?;
        map.serialize_entry("severity", r.severity.as_str())?;
        if let Some(trace_id) = &r.trace_id {
            map.serialize_entry("trace_id", &AsDisplay(trace_id))?;
        }
        if let Some(span_id) = &r.span_id {
            map.serialize_entry("span_id", &AsDisplay(span_id))?;
        }
        if let Some(request_id) = &r.request_id {
            map.serialize_entry("request_id", request_id)?;
        }
        map.serialize_entry("log_group", &r.source.log_group)?;
        map.serialize_entry("log_stream", &r.source.log_stream)?;
        map.serialize_entry("attributes", &Attributes(r))?;
        map.end()
    }
}

/// Serialises through `Display` straight into the output, without an intermediate `String`.
struct AsDisplay<'a, T>(&'a T);

impl<T: std::fmt::Display> Serialize for AsDisplay<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

/// Everything else, flat, with OpenTelemetry names where one exists and `aws.lambda.*` otherwise.
struct Attributes<'a>(&'a LogRecord);

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let src = &r.source;
        let mut map = s.serialize_map(None)?;
        if let Some(v) = &src.account_id {
            map.serialize_entry("cloud.account.id", v)?;
        }
        if let Some(v) = &src.region {
            map.serialize_entry("cloud.region", v)?;
        }
        if let Some(v) = &src.function_name {
            map.serialize_entry("faas.name", v)?;
        }
        if let Some(v) = &src.firehose_arn {
            map.serialize_entry("aws.firehose.arn", v)?;
        }
        for (key, value) in &src.common_attributes {
            map.serialize_entry(key, value)?;
        }
        if let Some(cold) = r.cold_start {
            map.serialize_entry("faas.coldstart", &cold)?;
        }
        if let Some(event) = r.platform {
            map.serialize_entry("aws.lambda.platform_event", event.as_str())?;
        }
        if let Some(d) = &r.details {
            let m = &d.metrics;
            let numbers = [
                ("aws.lambda.duration_ms", m.duration_ms),
                ("aws.lambda.billed_duration_ms", m.billed_duration_ms),
                ("aws.lambda.init_duration_ms", m.init_duration_ms),
                ("aws.lambda.restore_duration_ms", m.restore_duration_ms),
                (
                    "aws.lambda.billed_restore_duration_ms",
                    m.billed_restore_duration_ms,
                ),
            ];
            for (key, value) in numbers {
                if let Some(v) = value {
                    map.serialize_entry(key, &v)?;
                }
            }
            if let Some(v) = m.memory_size_mb {
                map.serialize_entry("aws.lambda.memory_size_mb", &v)?;
            }
            if let Some(v) = m.max_memory_used_mb {
                map.serialize_entry("aws.lambda.max_memory_used_mb", &v)?;
            }
            let texts = [
                ("aws.lambda.status", &d.status),
                ("aws.lambda.error_type", &d.error_type),
                ("aws.lambda.phase", &d.phase),
                ("faas.version", &d.version),
                ("aws.lambda.runtime_version", &d.runtime_version),
            ];
            for (key, value) in texts {
                if let Some(v) = value {
                    map.serialize_entry(key, v)?;
                }
            }
        }
        if let Some(join) = r.join {
            map.serialize_entry("tracehose.join", join.as_str())?;
        }
        map.end()
    }
}
