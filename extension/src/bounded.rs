//! OTLP trace requests decoded within a budget of spans and of memory.
//!
//! The wire size of a body says little about what decoding it costs: an empty span is two bytes on the wire
//! and a few hundred in memory, so 1 MiB of them is half a million spans and hundreds of megabytes. The
//! protobuf path therefore walks the wire format itself down to single spans, prices each one (struct sizes
//! plus the bytes of its strings) before `prost` allocates anything for it, and decodes only what fits; what
//! does not fit is counted, never decoded. Containers left without spans are not kept. The JSON path cannot be
//! walked as cheaply, so it is priced as a whole by counting its objects, each of which decodes to at most one
//! struct.

use std::mem::size_of;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

/// Deeper nesting than this is no real attribute value (prost itself stops at 100).
const MAX_DEPTH: usize = 64;
/// Heap header of a string or bytes field, on top of its bytes.
const STRING_OVERHEAD: usize = 2 * size_of::<String>();

#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub max_spans: usize,
    /// Estimated memory of everything decoded and kept, in bytes.
    pub max_memory: usize,
}

/// What a bounded decode kept, and how many spans it refused for the budget.
#[derive(Debug, Default, PartialEq)]
pub struct Decoded {
    pub request: ExportTraceServiceRequest,
    pub accepted: usize,
    pub rejected: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("truncated at byte {0}")]
    Truncated(usize),
    #[error("malformed varint at byte {0}")]
    Varint(usize),
    #[error("field number 0 at byte {0}")]
    FieldZero(usize),
    #[error("wire type {kind} at byte {at} is not used by OTLP")]
    WireType { kind: u8, at: usize },
    #[error("field {field} of {message} at byte {at} is not length-delimited")]
    Mismatch {
        message: &'static str,
        field: u32,
        at: usize,
    },
    #[error("messages nested deeper than {MAX_DEPTH} at byte {0}")]
    TooDeep(usize),
    #[error("schema_url at byte {0} is not UTF-8")]
    Utf8(usize),
    #[error("{message} at byte {at}: {source}")]
    Prost {
        message: &'static str,
        at: usize,
        #[source]
        source: prost::DecodeError,
    },
}

enum Field<'a> {
    Scalar,
    /// Contents and the absolute offset where they start.
    Len(&'a [u8], usize),
}

/// The fields of one message, in wire order. `base` is the message's offset in the whole body, so that
/// errors name an absolute position.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

fn fields(buf: &[u8], base: usize) -> Fields<'_> {
    Fields { buf, pos: 0, base }
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, WireError> {
        let start = self.base + self.pos;
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(WireError::Truncated(start));
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(WireError::Varint(start));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::Varint(start))
    }

    fn skip(&mut self, n: u64, at: usize) -> Result<&'a [u8], WireError> {
        let n = usize::try_from(n).map_err(|_| WireError::Truncated(at))?;
        let end = self.pos.checked_add(n).filter(|end| *end <= self.buf.len());
        let end = end.ok_or(WireError::Truncated(at))?;
        let slice = &self.buf[self.pos..end];
        self.pos = end;
        Ok(slice)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Field<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        Some(self.field())
    }
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> Result<(u32, Field<'a>), WireError> {
        let at = self.base + self.pos;
        let tag = self.varint()?;
        let number = u32::try_from(tag >> 3).map_err(|_| WireError::Varint(at))?;
        if number == 0 {
            return Err(WireError::FieldZero(at));
        }
        let field = match tag & 7 {
            0 => {
                self.varint()?;
                Field::Scalar
            }
            1 => {
                self.skip(8, at)?;
                Field::Scalar
            }
            2 => {
                let len = self.varint()?;
                let start = self.base + self.pos;
                Field::Len(self.skip(len, at)?, start)
            }
            5 => {
                self.skip(4, at)?;
                Field::Scalar
            }
            kind => return Err(WireError::WireType { kind: kind as u8, at }),
        };
        Ok((number, field))
    }
}

/// The message types of a trace request below the span level, for pricing.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Resource,
    Scope,
    Span,
    Event,
    Link,
    Status,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
    EntityRef,
}

impl Kind {
    /// The message type of field `number`, if it holds a message.
    fn child(self, number: u32) -> Option<Kind> {
        use Kind::*;
        match (self, number) {
            (Resource, 1) | (Scope, 3) | (Span, 9) | (Event, 3) | (Link, 4) | (KeyValueList, 1) => {
                Some(KeyValue)
            }
            (Resource, 3) => Some(EntityRef),
            (Span, 11) => Some(Event),
            (Span, 13) => Some(Link),
            (Span, 15) => Some(Status),
            (KeyValue, 2) | (ArrayValue, 1) => Some(AnyValue),
            (AnyValue, 5) => Some(ArrayValue),
            (AnyValue, 6) => Some(KeyValueList),
            _ => None,
        }
    }

    /// Twice the struct: a repeated field's vector may have doubled its capacity just before.
    fn memory(self) -> usize {
        2 * match self {
            Kind::Resource => size_of::<Resource>(),
            Kind::Scope => size_of::<InstrumentationScope>(),
            Kind::Span => size_of::<Span>(),
            Kind::Event => size_of::<Event>(),
            Kind::Link => size_of::<Link>(),
            Kind::Status => size_of::<Status>(),
            Kind::KeyValue => size_of::<KeyValue>(),
            Kind::AnyValue => size_of::<AnyValue>(),
            Kind::ArrayValue => size_of::<ArrayValue>(),
            Kind::KeyValueList => size_of::<KeyValueList>(),
            Kind::EntityRef => size_of::<EntityRef>(),
        }
    }
}

/// Estimated memory of decoding `buf` as a `kind`, without allocating. Unknown fields are priced as if kept
/// (prost skips them): an overestimate, never an underestimate.
fn price(kind: Kind, buf: &[u8], base: usize, depth: usize) -> Result<usize, WireError> {
    if depth > MAX_DEPTH {
        return Err(WireError::TooDeep(base));
    }
    let mut total = kind.memory();
    for field in fields(buf, base) {
        let (number, field) = field?;
        if let Field::Len(bytes, at) = field {
            let cost = match kind.child(number) {
                Some(child) => price(child, bytes, at, depth + 1)?,
                None => bytes.len() + STRING_OVERHEAD,
            };
            total = total.saturating_add(cost);
        }
    }
    Ok(total)
}

fn utf8(bytes: &[u8], at: usize) -> Result<String, WireError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| WireError::Utf8(at))
}

fn merge<M: Message>(into: &mut M, message: &'static str, bytes: &[u8], at: usize) -> Result<(), WireError> {
    into.merge(bytes)
        .map_err(|source| WireError::Prost { message, at, source })
}

fn expect_len<'a>(
    field: Field<'a>,
    message: &'static str,
    number: u32,
    at: usize,
) -> Result<(&'a [u8], usize), WireError> {
    match field {
        Field::Len(bytes, start) => Ok((bytes, start)),
        Field::Scalar => Err(WireError::Mismatch {
            message,
            field: number,
            at,
        }),
    }
}

/// Decodes an `ExportTraceServiceRequest` protobuf, keeping spans in wire order while they fit `budget`.
pub fn decode(raw: &[u8], budget: Budget) -> Result<Decoded, WireError> {
    let mut decoder = Decoder {
        budget,
        spent: 0,
        out: Decoded::default(),
    };
    for field in fields(raw, 0) {
        let (number, field) = field?;
        if number == 1 {
            let (bytes, at) = expect_len(field, "ExportTraceServiceRequest", 1, 0)?;
            if let Some(rs) = decoder.resource_spans(bytes, at)? {
                decoder.out.request.resource_spans.push(rs);
            }
        }
    }
    Ok(decoder.out)
}

struct Decoder {
    budget: Budget,
    spent: usize,
    out: Decoded,
}

impl Decoder {
    fn charge(&mut self, cost: usize) -> bool {
        match self.spent.checked_add(cost) {
            Some(total) if total <= self.budget.max_memory => {
                self.spent = total;
                true
            }
            _ => false,
        }
    }

    /// Resource and schema first (they may come after the spans on the wire), then the spans, which need both.
    fn resource_spans(&mut self, buf: &[u8], base: usize) -> Result<Option<ResourceSpans>, WireError> {
        const NAME: &str = "ResourceSpans";
        let mark = self.spent;
        let mut rs = ResourceSpans::default();
        let mut fits = self.charge(2 * size_of::<ResourceSpans>());
        for field in fields(buf, base) {
            match field? {
                (1, field) => {
                    let (bytes, at) = expect_len(field, NAME, 1, base)?;
                    if fits && self.charge(price(Kind::Resource, bytes, at, 1)?) {
                        merge(
                            rs.resource.get_or_insert_with(Resource::default),
                            "Resource",
                            bytes,
                            at,
                        )?;
                    } else {
                        fits = false;
                    }
                }
                (3, field) => {
                    let (bytes, at) = expect_len(field, NAME, 3, base)?;
                    rs.schema_url = utf8(bytes, at)?;
                }
                _ => {}
            }
        }
        for field in fields(buf, base) {
            if let (2, field) = field? {
                let (bytes, at) = expect_len(field, NAME, 2, base)?;
                if fits {
                    if let Some(ss) = self.scope_spans(bytes, at)? {
                        rs.scope_spans.push(ss);
                    }
                } else {
                    self.out.rejected += count_spans(bytes, at)?;
                }
            }
        }
        if rs.scope_spans.is_empty() {
            self.spent = mark;
            return Ok(None);
        }
        Ok(Some(rs))
    }

    fn scope_spans(&mut self, buf: &[u8], base: usize) -> Result<Option<ScopeSpans>, WireError> {
        const NAME: &str = "ScopeSpans";
        let mark = self.spent;
        let mut ss = ScopeSpans::default();
        let mut fits = self.charge(2 * size_of::<ScopeSpans>());
        for field in fields(buf, base) {
            match field? {
                (1, field) => {
                    let (bytes, at) = expect_len(field, NAME, 1, base)?;
                    if fits && self.charge(price(Kind::Scope, bytes, at, 2)?) {
                        let scope = ss.scope.get_or_insert_with(InstrumentationScope::default);
                        merge(scope, "InstrumentationScope", bytes, at)?;
                    } else {
                        fits = false;
                    }
                }
                (3, field) => {
                    let (bytes, at) = expect_len(field, NAME, 3, base)?;
                    ss.schema_url = utf8(bytes, at)?;
                }
                _ => {}
            }
        }
        for field in fields(buf, base) {
            if let (2, field) = field? {
                let (bytes, at) = expect_len(field, NAME, 2, base)?;
                let room = fits && self.out.accepted < self.budget.max_spans;
                if room && self.charge(price(Kind::Span, bytes, at, 3)?) {
                    let mut span = Span::default();
                    merge(&mut span, "Span", bytes, at)?;
                    ss.spans.push(span);
                    self.out.accepted += 1;
                } else {
                    self.out.rejected += 1;
                }
            }
        }
        if ss.spans.is_empty() {
            self.spent = mark;
            return Ok(None);
        }
        Ok(Some(ss))
    }
}

/// Spans in a `ResourceSpans`, counted without decoding: what a refused one would have cost the sender.
fn count_spans(buf: &[u8], base: usize) -> Result<usize, WireError> {
    let mut count = 0;
    for field in fields(buf, base) {
        if let (2, Field::Len(bytes, at)) = field? {
            for inner in fields(bytes, at) {
                if let (2, _) = inner? {
                    count += 1;
                }
            }
        }
    }
    Ok(count)
}

/// Objects in a JSON text, outside strings: each decodes to at most one OTLP struct, so their number bounds
/// what decoding it can cost. Linear, no allocation; malformed JSON is left to the parser to refuse.
pub fn json_objects(body: &[u8]) -> usize {
    let mut count = 0;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if byte == b'"' {
            in_string = true;
        } else if byte == b'{' {
            count += 1;
        }
    }
    count
}

/// The most one JSON object can cost once decoded: the largest struct it may become, twice (vector growth).
pub const JSON_OBJECT_MEMORY: usize = 2 * size_of::<Span>();

/// Keeps the first `max` spans of an already decoded request; returns how many it dropped.
pub fn cap_spans(request: &mut ExportTraceServiceRequest, max: usize) -> usize {
    let mut left = max;
    let mut dropped = 0;
    for rs in &mut request.resource_spans {
        for ss in &mut rs.scope_spans {
            let keep = ss.spans.len().min(left);
            dropped += ss.spans.len() - keep;
            ss.spans.truncate(keep);
            left -= keep;
        }
        rs.scope_spans.retain(|ss| !ss.spans.is_empty());
    }
    request.resource_spans.retain(|rs| !rs.scope_spans.is_empty());
    dropped
}

#[cfg(test)]
#[path = "bounded_tests.rs"]
mod tests;
