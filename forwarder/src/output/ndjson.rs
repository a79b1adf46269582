//! The NDJSON contract of docs/architecture.md: one object per record with `timestamp`, `message`,
//! `severity`, `trace_id`, `span_id`, `request_id` (the last three absent when unknown), `log_group`,
//! `log_stream` and `attributes`. Users pipe it into `jq` and tests compare it byte for byte: keep it stable.

use std::io::{self, Write};

use std::sync::Arc;

use super::json_message::JsonMessage;
use super::Sink;
use crate::record::{AttrValue, AttributeKind, LogRecord, Source};
use tracehose_tracecontext::TraceId;

/// Writes one JSON object per line to any writer (stdout, a file, a buffer).
#[derive(Debug)]
pub struct NdjsonSink<W: Write> {
    out: W,
    /// The fields every record of one payload shares, escaped once: records of a payload share one
    /// `Arc<Source>`, and escaping the log group and stream again for every line cost a tenth of the pipeline.
    shared: Option<(Arc<Source>, SharedFields)>,
    /// One line is assembled here, then written with one call.
    line: Vec<u8>,
    /// The record attributes of recent lines without platform details, written once each.
    record_attributes: RecordAttributes,
    /// The ids of the line before, written: consecutive lines mostly share them.
    last_ids: LastIds,
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
            record_attributes: RecordAttributes::default(),
            last_ids: LastIds::default(),
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
        write_line(
            &mut self.line,
            record,
            message,
            shared,
            &mut self.record_attributes,
            &mut self.last_ids,
        )?;
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
    record_attributes: &mut RecordAttributes,
    last_ids: &mut LastIds,
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
        line.extend_from_slice(last_ids.trace_hex(*trace_id));
        line.push(b'"');
    }
    if let Some(span_id) = &r.span_id {
        line.extend_from_slice(b",\"span_id\":\"");
        line.extend_from_slice(&span_id.hex());
        line.push(b'"');
    }
    if let Some(request_id) = &r.request_id {
        line.extend_from_slice(b",\"request_id\":");
        line.extend_from_slice(last_ids.request_id_json(request_id));
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
    let own = record_attributes.of(r)?;
    if !own.is_empty() {
        if !shared.attributes.is_empty() {
            line.push(b',');
        }
        line.extend_from_slice(own);
    }
    line.extend_from_slice(b"}}\n");
    Ok(())
}

/// The trace id and request id of the line before, as written: the lines of an invocation share both.
#[derive(Debug, Default)]
struct LastIds {
    trace: Option<(TraceId, [u8; 32])>,
    /// The request id and its JSON string, quotes included.
    request_id: Option<(Arc<str>, Vec<u8>)>,
}

impl LastIds {
    fn trace_hex(&mut self, id: TraceId) -> &[u8; 32] {
        if !matches!(self.trace, Some((last, _)) if last == id) {
            self.trace = None;
        }
        &self.trace.get_or_insert_with(|| (id, id.hex())).1
    }

    fn request_id_json(&mut self, id: &Arc<str>) -> &[u8] {
        if !matches!(&self.request_id, Some((last, _)) if Arc::ptr_eq(last, id) || **last == **id) {
            self.request_id = None;
        }
        let (_, json) = self.request_id.get_or_insert_with(|| {
            let mut json = Vec::with_capacity(id.len() + 2);
            super::json_text::push_str(&mut json, id);
            (Arc::clone(id), json)
        });
        json
    }
}

/// The record attributes of the last few kinds of line, written once each: without platform details they
/// follow from three small values, which nearly every line of a payload shares with the line before, and
/// writing them pair by pair cost a tenth of a line.
#[derive(Debug, Default)]
struct RecordAttributes {
    /// Most recently made last; the bytes are the pairs, comma-separated, without braces.
    recent: Vec<(AttributeKind, Vec<u8>)>,
    /// For a record with details: its attributes, written afresh.
    scratch: Vec<u8>,
}

impl RecordAttributes {
    /// Kinds remembered; there are at most a few hundred, and a payload shows a handful.
    const KEPT: usize = 16;

    fn of(&mut self, r: &LogRecord) -> io::Result<&[u8]> {
        let Some(key) = r.attribute_kind() else {
            self.scratch.clear();
            write_record_attributes(&mut self.scratch, r)?;
            return Ok(&self.scratch);
        };
        let found = match self.recent.iter().rposition(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                if self.recent.len() >= Self::KEPT {
                    self.recent.remove(0);
                }
                let mut bytes = Vec::new();
                write_record_attributes(&mut bytes, r)?;
                self.recent.push((key, bytes));
                self.recent.len() - 1
            }
        };
        Ok(self
            .recent
            .get(found)
            .map_or(&[][..], |(_, bytes)| bytes.as_slice()))
    }
}

fn write_record_attributes(out: &mut Vec<u8>, r: &LogRecord) -> io::Result<()> {
    let mut attributes = Attributes { out, first: true };
    record_attributes(&mut attributes, r)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::parse::{PlatformEvent, Severity};
    use crate::record::Join;

    fn record(
        cold_start: Option<bool>,
        platform: Option<PlatformEvent>,
        join: Option<Join>,
    ) -> LogRecord<'static> {
        LogRecord {
            timestamp_ms: 1,
            message: Cow::Borrowed("m"),
            severity: Severity::Info,
            trace_id: None,
            span_id: None,
            request_id: None,
            join,
            source: Arc::default(),
            platform,
            details: None,
            cold_start,
        }
    }

    #[test]
    fn remembered_record_attributes_are_what_a_fresh_visit_writes() {
        let mut records = Vec::new();
        for cold in [None, Some(true), Some(false)] {
            for platform in [None, Some(PlatformEvent::Start), Some(PlatformEvent::Report)] {
                for join in [
                    None,
                    Some(Join::Line),
                    Some(Join::Invocation),
                    Some(Join::Derived),
                ] {
                    records.push(record(cold, platform, join));
                }
            }
        }
        let mut with_details = record(Some(true), Some(PlatformEvent::Report), Some(Join::Xray));
        with_details.details = Some(Box::default());
        records.push(with_details);
        // Twice over, more kinds than are kept: some found, some forgotten and made again.
        let mut cache = RecordAttributes::default();
        for r in records.iter().chain(&records).chain(records.iter().rev()) {
            let mut fresh = Vec::new();
            write_record_attributes(&mut fresh, r).unwrap();
            assert_eq!(cache.of(r).unwrap(), &fresh[..], "{r:?}");
            assert!(cache.recent.len() <= RecordAttributes::KEPT);
        }
    }
}
