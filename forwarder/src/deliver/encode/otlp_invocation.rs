//! What the OTLP metrics and span encoders share: an invocation's resource, the scope, and the framing.
//!
//! Each entry is a whole `ResourceMetrics` / `ResourceSpans`, framed as field 1 of the export request, so a
//! body is its entries back to back. Unlike log records, which share a resource per run of one log stream,
//! each invocation carries its own resource: `faas.version` and `faas.max_memory` are resource attributes in
//! the semantic conventions and belong to the invocation (a stream may change version between two of them).
//! The repetition costs nothing on the wire once gzip has seen it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::cut_text;
use super::figures::mib_to_bytes;
use super::otlp::{OtlpSettings, OTLP_LIMITS};
use super::{Entries, RequestLimits};
use crate::record::Source;
use crate::telemetry::Invocation;

/// The scope every invocation's metrics and spans are sent under, as the logs are.
const SCOPE_NAME: &str = "tracehose";

/// Longest string attribute an invocation's entry carries: far beyond any real function name, version, error
/// type or request id, and small enough that an entry always fits a request.
pub(super) const MAX_ATTRIBUTE_BYTES: usize = 4096;

/// The limits of an OTLP telemetry destination: `max_body_bytes` is the destination's own (2 MB for Dynatrace
/// metrics), never more than OTLP's default.
pub(super) fn limits(max_body_bytes: usize) -> RequestLimits {
    RequestLimits {
        max_body_bytes: max_body_bytes.min(OTLP_LIMITS.max_body_bytes),
        ..OTLP_LIMITS
    }
}

pub(super) fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: SCOPE_NAME.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..Default::default()
    }
}

pub(super) fn key_value(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
    }
}

/// A string attribute cut to [`MAX_ATTRIBUTE_BYTES`]; sets `truncated` when cut.
pub(super) fn text(key: &str, value: &str, truncated: &mut bool) -> KeyValue {
    let (value, cut) = cut_text(value, MAX_ATTRIBUTE_BYTES);
    *truncated |= cut;
    key_value(key, any_value::Value::StringValue(value.into_owned()))
}

/// The invocation's resource: `cloud.provider`, `cloud.platform`, `service.name` (as for the logs:
/// `OTEL_SERVICE_NAME`, else the user's `service.name`, else the function, else the log group),
/// `cloud.region`, `cloud.account.id`, `faas.name`, `faas.version`, `faas.max_memory` (bytes), the log group
/// and stream (as the logs' resource names them, so a backend links the two), the delivery attributes, then
/// the rest of `OTEL_RESOURCE_ATTRIBUTES`; the first of a key wins.
pub(super) fn resource(settings: &OtlpSettings, invocation: &Invocation, truncated: &mut bool) -> Resource {
    let source = &invocation.source;
    let mut attributes = vec![key_value(
        "cloud.provider",
        any_value::Value::StringValue("aws".into()),
    )];
    if source.function_name.is_some() {
        attributes.push(key_value(
            "cloud.platform",
            any_value::Value::StringValue("aws_lambda".into()),
        ));
    }
    let user_service = settings
        .resource_attributes
        .iter()
        .find(|(k, _)| k == "service.name")
        .map(|(_, v)| v.as_str());
    let service = settings
        .service_name
        .as_deref()
        .or(user_service)
        .or(source.function_name.as_deref())
        .unwrap_or(&source.log_group);
    attributes.push(text("service.name", service, truncated));
    for (key, value) in [
        ("cloud.region", &source.region),
        ("cloud.account.id", &source.account_id),
        ("faas.name", &source.function_name),
        ("faas.version", &invocation.version),
    ] {
        if let Some(value) = value {
            attributes.push(text(key, value, truncated));
        }
    }
    if let Some(bytes) = invocation.memory_size_mb.and_then(mib_to_bytes) {
        attributes.push(key_value("faas.max_memory", any_value::Value::IntValue(bytes)));
    }
    for (key, value) in [
        ("aws.log.group.names", &source.log_group),
        ("aws.log.stream.names", &source.log_stream),
    ] {
        let (value, cut) = cut_text(value, MAX_ATTRIBUTE_BYTES);
        *truncated |= cut;
        let values = vec![AnyValue {
            value: Some(any_value::Value::StringValue(value.into_owned())),
        }];
        attributes.push(key_value(
            key,
            any_value::Value::ArrayValue(ArrayValue { values }),
        ));
    }
    let mut seen: HashSet<String> = attributes.iter().map(|a| a.key.clone()).collect();
    source.visit_delivery_attributes(&mut |key, value| {
        if let (crate::record::AttrValue::Str(value), true) = (value, seen.insert(key.to_owned())) {
            attributes.push(text(key, value, truncated));
        }
    });
    for (key, value) in &settings.resource_attributes {
        if seen.insert(key.clone()) {
            attributes.push(text(key, value, truncated));
        }
    }
    Resource {
        attributes,
        ..Default::default()
    }
}

/// The [`InvocationEncoder::entry_key`](super::InvocationEncoder::entry_key) of an OTLP encoder of `signal`:
/// its entries depend on nothing but the settings (never on a destination's limits).
pub(super) fn entry_key(signal: &str, settings: &OtlpSettings) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (signal, settings).hash(&mut hasher);
    hasher.finish()
}

/// The last invocation's resource, encoded, kept for the next. Invocations come in runs of one log stream
/// whose version and memory rarely change, and building and encoding the resource's attributes was most of
/// an entry's cost: one slot keyed by the source (the same allocation), the version and the memory size.
#[derive(Debug, Default)]
pub(super) struct ResourceCache {
    last: Mutex<Option<CachedResource>>,
}

#[derive(Debug)]
struct CachedResource {
    source: Arc<Source>,
    version: Option<String>,
    memory_size_mb: Option<u64>,
    encoded: Arc<[u8]>,
    truncated: bool,
}

impl ResourceCache {
    /// The encoded [`resource`] of `invocation`; sets `truncated` when an attribute was cut.
    pub(super) fn encoded(
        &self,
        settings: &OtlpSettings,
        invocation: &Invocation,
        truncated: &mut bool,
    ) -> Arc<[u8]> {
        let make = || {
            let mut cut = false;
            let encoded: Arc<[u8]> = resource(settings, invocation, &mut cut).encode_to_vec().into();
            (encoded, cut)
        };
        // Never waits: another thread holding the slot, or a poisoned one, costs only a re-encoding.
        let Ok(mut last) = self.last.try_lock() else {
            let (encoded, cut) = make();
            *truncated |= cut;
            return encoded;
        };
        if let Some(cached) = last.as_ref().filter(|c| {
            Arc::ptr_eq(&c.source, &invocation.source)
                && c.version == invocation.version
                && c.memory_size_mb == invocation.memory_size_mb
        }) {
            *truncated |= cached.truncated;
            return Arc::clone(&cached.encoded);
        }
        let (encoded, cut) = make();
        *truncated |= cut;
        *last = Some(CachedResource {
            source: Arc::clone(&invocation.source),
            version: invocation.version.clone(),
            memory_size_mb: invocation.memory_size_mb,
            encoded: Arc::clone(&encoded),
            truncated: cut,
        });
        encoded
    }
}

/// Appends one entry, field 1 of an export request (`resource_metrics`, `resource_spans`): a message whose
/// field 1 is the encoded `resource` and field 2 the `scope` message (`scope_metrics`, `scope_spans`), the
/// bytes prost writes for the whole message.
pub(super) fn push_entry(resource: &[u8], scope: &impl Message, out: &mut Vec<u8>) {
    use prost::encoding::{encoded_len_varint, key_len};
    let scope_len = scope.encoded_len();
    let scope_field = key_len(2) + encoded_len_varint(scope_len as u64) + scope_len;
    push_entry_with(resource, scope_field, out, |out| {
        prost::encoding::message::encode(2, scope, out);
    });
}

/// [`push_entry`] of a scope written by `write_scope`: exactly `scope_field` bytes, field 2 with its key and
/// length, for an encoder that writes its scope message without building it.
pub(super) fn push_entry_with(
    resource: &[u8],
    scope_field: usize,
    out: &mut Vec<u8>,
    write_scope: impl FnOnce(&mut Vec<u8>),
) {
    use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
    let resource_field = key_len(1) + encoded_len_varint(resource.len() as u64) + resource.len();
    let entry_len = resource_field + scope_field;
    out.reserve(key_len(1) + encoded_len_varint(entry_len as u64) + entry_len);
    encode_key(1, WireType::LengthDelimited, out);
    encode_varint(entry_len as u64, out);
    encode_key(1, WireType::LengthDelimited, out);
    encode_varint(resource.len() as u64, out);
    out.extend_from_slice(resource);
    write_scope(out);
}

/// The body of entries `range`: already framed, they go back to back.
pub(super) fn body(entries: &Entries, range: std::ops::Range<usize>) -> Vec<u8> {
    let range = range.start.min(entries.len())..range.end.min(entries.len());
    let len: usize = range.clone().map(|i| entries.entry(i).len()).sum();
    let mut out = Vec::with_capacity(len);
    for i in range {
        out.extend_from_slice(entries.entry(i));
    }
    out
}
