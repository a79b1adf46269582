//! Small constructors for OTLP attribute values, so span and log code reads as the attributes it sets.

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};

pub fn str_attr(key: &str, value: &str) -> KeyValue {
    attr(key, Value::StringValue(value.to_owned()))
}

pub fn int_attr(key: &str, value: u64) -> KeyValue {
    attr(key, Value::IntValue(i64::try_from(value).unwrap_or(i64::MAX)))
}

pub fn double_attr(key: &str, value: f64) -> KeyValue {
    attr(key, Value::DoubleValue(value))
}

pub fn bool_attr(key: &str, value: bool) -> KeyValue {
    attr(key, Value::BoolValue(value))
}

fn attr(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
    }
}

/// The string value of attribute `key`, if it has one.
pub fn find_str<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
}
