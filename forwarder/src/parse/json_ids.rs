//! Trace context under the keys JSON loggers print, at the top level of a line or one object down, read in
//! the same serde pass as the rest of the line (docs/formats.md section 3):
//!
//! - `trace_id`/`span_id`, `traceId`/`spanId`, `dt.trace_id`: OpenTelemetry appenders, Dynatrace, pino...
//! - `otelTraceID`/`otelSpanID`: OpenTelemetry's Python logging instrumentation;
//! - `TraceId`/`SpanId`: .NET `ILogger` scopes (`TraceId` may also hold an X-Ray id);
//! - `xray_trace_id`: Powertools for AWS Lambda, an X-Ray id;
//! - `trace.id`/`span.id`, or `{"trace":{"id":..}}`: Elastic Common Schema;
//! - `dd.trace_id`/`dd.span_id`, or `{"dd":{"trace_id":..}}`: Datadog, unsigned 64-bit decimals (strings or
//!   numbers), the low half of the trace id.
//!
//! Every value is validated (length, hex, not all zero); a wrong join is worse than none.

use std::borrow::Cow;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;
use tracehose_tracecontext::{SpanId, TraceId};

use super::TraceContext;

/// What a key holds, with its rank among the keys of its kind (lower wins when a line has several).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IdKey {
    HexTrace(u8),
    HexSpan(u8),
    DecimalTrace(u8),
    DecimalSpan(u8),
}

/// The object a nested key sits in, which decides how its keys read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Parent {
    /// Any object: the same keys as the top level.
    Any,
    /// `"dd": {"trace_id": .., "span_id": ..}`, decimal.
    Datadog,
    /// ECS `"trace": {"id": ..}`.
    EcsTrace,
    /// ECS `"span": {"id": ..}`.
    EcsSpan,
}

impl Parent {
    pub(super) fn of(key: &str) -> Self {
        match key {
            "dd" => Parent::Datadog,
            "trace" => Parent::EcsTrace,
            "span" => Parent::EcsSpan,
            _ => Parent::Any,
        }
    }

    fn id_key(self, key: &str) -> Option<IdKey> {
        match (self, key) {
            (Parent::Any, _) => id_key(key),
            (Parent::Datadog, "trace_id") => Some(IdKey::DecimalTrace(1)),
            (Parent::Datadog, "span_id") => Some(IdKey::DecimalSpan(1)),
            (Parent::EcsTrace, "id") => Some(IdKey::HexTrace(0)),
            (Parent::EcsSpan, "id") => Some(IdKey::HexSpan(0)),
            _ => None,
        }
    }
}

/// The flat keys, at the top level or in any nested object.
pub(super) fn id_key(key: &str) -> Option<IdKey> {
    Some(match key {
        "trace_id" => IdKey::HexTrace(0),
        "traceId" => IdKey::HexTrace(1),
        "dt.trace_id" => IdKey::HexTrace(2),
        "xray_trace_id" => IdKey::HexTrace(3),
        "TraceId" => IdKey::HexTrace(4),
        "otelTraceID" => IdKey::HexTrace(5),
        "trace.id" => IdKey::HexTrace(6),
        "span_id" => IdKey::HexSpan(0),
        "spanId" => IdKey::HexSpan(1),
        "dt.span_id" => IdKey::HexSpan(2),
        "SpanId" => IdKey::HexSpan(3),
        "otelSpanID" => IdKey::HexSpan(4),
        "span.id" => IdKey::HexSpan(5),
        "dd.trace_id" => IdKey::DecimalTrace(0),
        "dd.span_id" => IdKey::DecimalSpan(0),
        _ => return None,
    })
}

/// The best-ranked valid id of each kind in one object.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct ObjectIds {
    hex_trace: Option<(u8, TraceId)>,
    hex_span: Option<(u8, SpanId)>,
    decimal_trace: Option<(u8, TraceId)>,
    decimal_span: Option<(u8, SpanId)>,
}

fn offer<T>(slot: &mut Option<(u8, T)>, rank: u8, id: Option<T>) {
    if let Some(id) = id {
        if slot.as_ref().is_none_or(|(held, _)| rank < *held) {
            *slot = Some((rank, id));
        }
    }
}

impl ObjectIds {
    /// Reads the value of `key` into the slot it names.
    pub(super) fn read<'de, A: MapAccess<'de>>(&mut self, key: IdKey, map: &mut A) -> Result<(), A::Error> {
        let value = map.next_value::<IdValue<'de>>()?;
        match key {
            IdKey::HexTrace(rank) => offer(&mut self.hex_trace, rank, value.hex_trace()),
            IdKey::HexSpan(rank) => offer(&mut self.hex_span, rank, value.text().and_then(SpanId::from_hex)),
            IdKey::DecimalTrace(rank) => offer(
                &mut self.decimal_trace,
                rank,
                value.decimal().and_then(TraceId::from_u64),
            ),
            IdKey::DecimalSpan(rank) => offer(
                &mut self.decimal_span,
                rank,
                value.decimal().and_then(SpanId::from_u64),
            ),
        }
        Ok(())
    }

    fn hex(&self) -> Option<TraceContext> {
        let (_, trace_id) = self.hex_trace?;
        Some(TraceContext {
            trace_id,
            span_id: self.hex_span.map(|(_, s)| s),
        })
    }
}

/// Everything a line's keys said about its trace.
#[derive(Debug, Default)]
pub(super) struct LineIds {
    pub top: ObjectIds,
    /// The first nested object that holds a valid hex trace id, with its own span id.
    nested_hex: Option<TraceContext>,
    /// The first valid hex span id of any nested object, for a trace whose object has none (ECS prints
    /// `"trace":{"id":..}` and `"span":{"id":..}` apart).
    nested_span: Option<SpanId>,
    /// Datadog's ids from wherever they were (flattened keys rank before the nested `dd` object).
    decimal: ObjectIds,
}

impl LineIds {
    /// Reads a nested value (an object, or an array of objects) for the keys of `parent`, skipping anything
    /// deeper; scalars are skipped too.
    pub(super) fn read_nested<'de, A: MapAccess<'de>>(
        &mut self,
        parent: Parent,
        map: &mut A,
    ) -> Result<(), A::Error> {
        let object = map.next_value_seed(Nested {
            parent,
            in_array: false,
        })?;
        if self.nested_hex.is_none() {
            self.nested_hex = object.hex();
        }
        if self.nested_span.is_none() {
            self.nested_span = object.hex_span.map(|(_, s)| s);
        }
        self.take_decimal(&object);
        Ok(())
    }

    fn take_decimal(&mut self, object: &ObjectIds) {
        if let Some((rank, id)) = object.decimal_trace {
            offer(&mut self.decimal.decimal_trace, rank, Some(id));
        }
        if let Some((rank, id)) = object.decimal_span {
            offer(&mut self.decimal.decimal_span, rank, Some(id));
        }
    }

    /// The line's own context: top-level hex keys, then a nested object's, then Datadog's decimal ids.
    pub(super) fn context(mut self) -> Option<TraceContext> {
        if let Some(ctx) = self.top.hex() {
            return Some(ctx);
        }
        if let Some(mut ctx) = self.nested_hex {
            ctx.span_id = ctx.span_id.or(self.nested_span);
            return Some(ctx);
        }
        let top = self.top;
        self.take_decimal(&top);
        let (_, trace_id) = self.decimal.decimal_trace?;
        Some(TraceContext {
            trace_id,
            span_id: self.decimal.decimal_span.map(|(_, s)| s),
        })
    }
}

/// A nested object's ids; in an array, the first object's that holds a trace id. Not deeper: a nested value
/// of a nested object is skipped.
struct Nested {
    parent: Parent,
    in_array: bool,
}

impl<'de> DeserializeSeed<'de> for Nested {
    type Value = ObjectIds;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ObjectIds, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Nested {
    type Value = ObjectIds;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ObjectIds, A::Error> {
        let mut ids = ObjectIds::default();
        let parent = self.parent;
        while let Some(key) = map.next_key_seed(KeySeed(|k: &str| parent.id_key(k)))? {
            match key {
                Some(id_key) => ids.read(id_key, &mut map)?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(ids)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ObjectIds, A::Error> {
        let mut first = ObjectIds::default();
        if self.in_array {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(first);
        }
        let parent = self.parent;
        while let Some(ids) = seq.next_element_seed(Nested {
            parent,
            in_array: true,
        })? {
            if first.hex_trace.is_none() && first.decimal_trace.is_none() {
                first = ids;
            }
        }
        Ok(first)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<ObjectIds, E> {
        Ok(ObjectIds::default())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<ObjectIds, E> {
        Ok(ObjectIds::default())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<ObjectIds, E> {
        Ok(ObjectIds::default())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<ObjectIds, E> {
        Ok(ObjectIds::default())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<ObjectIds, E> {
        Ok(ObjectIds::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<ObjectIds, E> {
        Ok(ObjectIds::default())
    }
}

/// Reads a map key straight into what it means, so that keys are neither allocated nor kept: an escaped
/// key arrives as a transient `&str`, which serde's `Cow<str>` would copy.
pub(super) struct KeySeed<F>(pub F);

impl<'de, T, F: FnOnce(&str) -> T> DeserializeSeed<'de> for KeySeed<F> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, T, F: FnOnce(&str) -> T> Visitor<'de> for KeySeed<F> {
    type Value = T;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Ok((self.0)(v))
    }
}

/// An id as printed: a string (borrowed when it has no escapes) or an unsigned integer; anything else is
/// skipped without failing the line.
pub(super) enum IdValue<'a> {
    Text(Cow<'a, str>),
    Unsigned(u64),
    Other,
}

impl IdValue<'_> {
    fn text(&self) -> Option<&str> {
        match self {
            IdValue::Text(s) => Some(s),
            _ => None,
        }
    }

    fn hex_trace(&self) -> Option<TraceId> {
        let s = self.text()?;
        TraceId::from_hex(s).or_else(|| TraceId::from_xray(s))
    }

    fn decimal(&self) -> Option<u64> {
        match self {
            IdValue::Text(s) => s.parse().ok(),
            IdValue::Unsigned(n) => Some(*n),
            IdValue::Other => None,
        }
    }
}

impl<'de> de::Deserialize<'de> for IdValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IdValue<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(IdValue::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                // Only escaped strings get here; no id needs more than 64 bytes.
                Ok(if v.len() <= 64 {
                    IdValue::Text(Cow::Owned(v.to_owned()))
                } else {
                    IdValue::Other
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(IdValue::Unsigned(v))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(IdValue::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(IdValue::Other)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(IdValue::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(IdValue::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(IdValue::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(IdValue::Other)
            }
        }
        d.deserialize_any(V)
    }
}
