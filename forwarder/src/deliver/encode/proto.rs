//! Protobuf written by hand for the OTLP encoder: the few field shapes a `LogRecord` uses, each written as
//! prost writes the generated types (one-byte keys, proto3 defaults left out), so that no owned message is
//! built per record.

use std::borrow::Cow;

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};

use super::cut_text;
use crate::record::AttrValue;

/// Bytes of a length-delimited field of a one-byte tag around `len` bytes.
pub(super) fn framed(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

pub(super) fn frame(out: &mut Vec<u8>, tag: u32, len: usize) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(len as u64, out);
}

/// An `AnyValue` of one scalar, a string already cut to its limit.
pub(super) enum Scalar<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Double(f64),
    Bool(bool),
}

impl<'a> Scalar<'a> {
    /// The value, a string cut to `max` bytes with the marker; and whether it was cut.
    pub(super) fn of(value: AttrValue<'a>, max: usize) -> (Self, bool) {
        match value {
            AttrValue::Str(s) => {
                let (text, cut) = cut_text(s, max);
                (Self::Str(text), cut)
            }
            AttrValue::UInt(n) => (Self::Int(i64::try_from(n).unwrap_or(i64::MAX)), false),
            AttrValue::Float(x) => (Self::Double(x), false),
            AttrValue::Bool(b) => (Self::Bool(b), false),
        }
    }

    /// Bytes of the `AnyValue` message: one field of its `value` oneof, written even when zero.
    pub(super) fn len(&self) -> usize {
        match self {
            Self::Str(s) => framed(s.len()),
            // A negative int64 takes ten bytes, as `encoded_len_varint` of its two's complement says.
            Self::Int(n) => 1 + encoded_len_varint(*n as u64),
            Self::Double(_) => 1 + 8,
            Self::Bool(_) => 1 + 1,
        }
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) {
        match self {
            // AnyValue.string_value = 1, bool_value = 2, int_value = 3, double_value = 4
            Self::Str(s) => string_field(out, 1, s),
            Self::Bool(b) => {
                encode_key(2, WireType::Varint, out);
                encode_varint(u64::from(*b), out);
            }
            Self::Int(n) => {
                encode_key(3, WireType::Varint, out);
                encode_varint(*n as u64, out);
            }
            Self::Double(x) => {
                encode_key(4, WireType::SixtyFourBit, out);
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
    }
}

/// Appends one `KeyValue` as field 6 of a `LogRecord`. Returns whether its value was cut.
pub(super) fn attribute(out: &mut Vec<u8>, key: &str, value: AttrValue<'_>, max: usize) -> bool {
    let (value, cut) = Scalar::of(value, max);
    // KeyValue.key = 1 (left out when empty, as proto3 leaves out every default), KeyValue.value = 2
    let key_len = if key.is_empty() { 0 } else { framed(key.len()) };
    frame(out, 6, key_len + framed(value.len()));
    if !key.is_empty() {
        string_field(out, 1, key);
    }
    frame(out, 2, value.len());
    value.write(out);
    cut
}

pub(super) fn string_field(out: &mut Vec<u8>, tag: u32, value: &str) {
    bytes_field(out, tag, value.as_bytes());
}

pub(super) fn bytes_field(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    frame(out, tag, value.len());
    out.extend_from_slice(value);
}

/// A fixed64 field, left out when zero.
pub(super) fn fixed64(out: &mut Vec<u8>, tag: u32, value: u64) {
    if value != 0 {
        encode_key(tag, WireType::SixtyFourBit, out);
        out.extend_from_slice(&value.to_le_bytes());
    }
}
