//! The NDJSON contract of docs/architecture.md: one object per record with `timestamp`, `message`,
//! `severity`, `trace_id`, `span_id`, `request_id` (the last three absent when unknown), `log_group`,
//! `log_stream` and `attributes`. Users pipe it into `jq` and tests compare it byte for byte: keep it stable.

use std::io::{self, Write};

use std::sync::Arc;

use super::json_message::JsonMessage;
use super::Sink;
use crate::record::{AttrValue, LogRecord, Source};

/// Writes one JSON object per line to any writer (stdout, a file, a buffer).
#[derive(Debug)]
pub struct NdjsonSink<W: Write> {
    out: W,
    /// The fields every record of one payload shares, escaped once: records of a payload share one
    /// `Arc<Source>`, and escaping the log group and stream again for every line cost a tenth of the pipeline.
    shared: Option<(Arc<Source>, SharedFields)>,
    /// One line is assembled here, then written with one call.
    line: Vec<u8>,
}

#[derive(Debug, Default)]
struct SharedFields {
    /// `"log_group":"...","log_stream":"..."`
    head: Vec<u8>,
    /// The source's attributes, comma-separated, without braces; empty when it has none.
    attributes: Vec<u8>,
}

impl<W: Write> NdjsonSink<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            shared: None,
            line: Vec::new(),
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// Writes one record whose message (`record.message`) other destinations may write too: escaped once
    /// for all of them.
    pub fn write_shared(&mut self, record: &LogRecord, message: &JsonMessage<'_>) -> io::Result<()> {
        let fresh = !matches!(&self.shared, Some((source, _)) if Arc::ptr_eq(source, &record.source));
        if fresh {
            self.shared = Some((Arc::clone(&record.source), SharedFields::of(&record.source)?));
        }
        let shared = self.shared.as_ref().map(|(_, fields)| fields);
        self.line.clear();
        write_line(&mut self.line, record, message, shared)?;
        self.out.write_all(&self.line)
    }
}

impl<W: Write> Sink for NdjsonSink<W> {
    type Error = io::Error;

    fn write(&mut self, record: LogRecord) -> io::Result<()> {
        self.write_shared(&record, &JsonMessage::new(&record.message, false))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn write_line(
    line: &mut Vec<u8>,
    r: &LogRecord,
    message: &JsonMessage<'_>,
    shared: Option<&SharedFields>,
) -> io::Result<()> {
    line.extend_from_slice(b"{\"timestamp\":");
    line.extend_from_slice(itoa::Buffer::new().format(r.timestamp_ms).as_bytes());
    line.extend_from_slice(b",\"message\":");
    message.push(line);
    line.extend_from_slice(b",\"severity\":\"");
    line.extend_from_slice(r.severity.as_str().as_bytes());
    line.push(b'"');
    if let Some(trace_id) = &r.trace_id {
        line.extend_from_slice(b",\"trace_id\":\"");
        line.extend_from_slice(&trace_id.hex());
        line.push(b'"');
    }
    if let Some(span_id) = &r.span_id {
        line.extend_from_slice(b",\"span_id\":\"");
        line.extend_from_slice(&span_id.hex());
        line.push(b'"');
    }
    if let Some(request_id) = &r.request_id {
        line.extend_from_slice(b",\"request_id\":");
        string(line, request_id)?;
    }
    line.push(b',');
    let computed;
    let shared = match shared {
        Some(shared) => shared,
        None => {
            computed = SharedFields::of(&r.source)?;
            &computed
        }
    };
    line.extend_from_slice(&shared.head);
    line.extend_from_slice(b",\"attributes\":{");
    line.extend_from_slice(&shared.attributes);
    let mut attributes = Attributes {
        out: line,
        first: shared.attributes.is_empty(),
    };
    record_attributes(&mut attributes, r)?;
    line.extend_from_slice(b"}}\n");
    Ok(())
}

impl SharedFields {
    fn of(src: &Source) -> io::Result<Self> {
        let mut head = Vec::with_capacity(src.log_group.len() + src.log_stream.len() + 32);
        head.extend_from_slice(b"\"log_group\":");
        string(&mut head, &src.log_group)?;
        head.extend_from_slice(b",\"log_stream\":");
        string(&mut head, &src.log_stream)?;
        let mut attributes = Vec::new();
        let mut a = Attributes {
            out: &mut attributes,
            first: true,
        };
        let mut result = Ok(());
        src.visit_attributes(&mut |key, value| a.pair(key, value, &mut result));
        result?;
        Ok(Self { head, attributes })
    }
}

/// Everything else, flat, with OpenTelemetry names where one exists and `aws.lambda.*` otherwise.
fn record_attributes(a: &mut Attributes<'_>, r: &LogRecord) -> io::Result<()> {
    let mut result = Ok(());
    r.visit_attributes(&mut |key, value| a.pair(key, value, &mut result));
    result
}

/// Writes `"key":` pairs into an object, managing the commas.
struct Attributes<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl Attributes<'_> {
    fn key(&mut self, key: &str) -> io::Result<()> {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        string(self.out, key)?;
        self.out.push(b':');
        Ok(())
    }

    /// One attribute; after the first error, nothing more (the visitors cannot stop early).
    fn pair(&mut self, key: &str, value: AttrValue<'_>, result: &mut io::Result<()>) {
        if result.is_ok() {
            *result = self.try_pair(key, value);
        }
    }

    fn try_pair(&mut self, key: &str, value: AttrValue<'_>) -> io::Result<()> {
        self.key(key)?;
        match value {
            AttrValue::Str(s) => string(self.out, s)?,
            AttrValue::UInt(n) => self
                .out
                .extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
            AttrValue::Float(x) => serde_json::to_writer(&mut *self.out, &x)?,
            AttrValue::Bool(b) => self.out.extend_from_slice(if b { b"true" } else { b"false" }),
        }
        Ok(())
    }
}

/// A JSON string, escaped as serde_json escapes it.
fn string(out: &mut Vec<u8>, value: &str) -> io::Result<()> {
    super::json_text::push_str(out, value);
    Ok(())
}
