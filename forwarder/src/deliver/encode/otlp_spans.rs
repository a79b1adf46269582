//! Invocation spans over OTLP/HTTP (docs/formats.md, section 9): one SERVER span per invocation that has
//! span ids, named after the function, from its start to its start plus its duration, child of the X-Ray
//! `Parent` when there is one; a cold start adds an `init` span of the init duration that ends where the
//! invocation starts, its child, with an id derived from the invocation span's (the same invocation always
//! makes the same two spans, so a duplicated REPORT duplicates nothing a backend cannot merge).
//!
//! Status error for an error, a timeout or a platform failure, with the error type; attributes
//! `faas.invocation_id`, `faas.coldstart`, `faas.name`, `cloud.*`, every REPORT figure, and
//! `tracehose.derived_ids=true` when the ids were derived from the request id rather than given by X-Ray.
//! One entry is one invocation's `ResourceSpans` (see `otlp_invocation.rs`).

use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Span, Status};
use tracehose_tracecontext::SpanId;

use super::cut_text;
use super::figures::{nanos_of_ms, sane};
use super::otlp::OtlpSettings;
use super::otlp_invocation::{
    body, entry_key, key_value, limits, push_entry, scope, text, ResourceCache, MAX_ATTRIBUTE_BYTES,
};
use super::{Encoded, Entries, InvocationEncoder, Refused, RequestLimits, Wire};
use crate::telemetry::{Invocation, Outcome, SpanIds};

/// The W3C sampled flag, in the span's flags: a span sent is a span recorded.
const SAMPLED: u32 = 0x01;

#[derive(Debug)]
pub struct OtlpSpansEncoder {
    name: &'static str,
    settings: OtlpSettings,
    limits: RequestLimits,
    resources: ResourceCache,
}

impl OtlpSpansEncoder {
    /// `name`: the ledger row (`otlp-traces`, `dynatrace-traces`); `max_body_bytes`: the destination's limit.
    pub fn new(name: &'static str, settings: OtlpSettings, max_body_bytes: usize) -> Self {
        Self {
            name,
            settings,
            limits: limits(max_body_bytes),
            resources: ResourceCache::default(),
        }
    }
}

/// The `init` span's id: a fixed mix of the invocation span's, never zero and never the same.
fn init_span_id(span: SpanId) -> SpanId {
    // splitmix64's finaliser: every bit of the input moves about half the output's.
    let mut x = span.to_u64() ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    if x == span.to_u64() {
        x = !x;
    }
    SpanId::from_u64(x)
        .or_else(|| SpanId::from_u64(!span.to_u64()))
        .unwrap_or(span)
}

fn outcome_text(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "success",
        Outcome::Error => "error",
        Outcome::Timeout => "timeout",
        Outcome::Failure => "failure",
    }
}

impl OtlpSpansEncoder {
    /// The invocation span's attributes; sets `truncated` when a string was cut.
    fn attributes(&self, invocation: &Invocation, ids: &SpanIds, truncated: &mut bool) -> Vec<KeyValue> {
        let source = &invocation.source;
        let mut attributes = vec![
            text("faas.invocation_id", &invocation.request_id, truncated),
            key_value("faas.coldstart", Any::BoolValue(invocation.cold_start)),
            key_value("cloud.provider", Any::StringValue("aws".into())),
        ];
        for (key, value) in [
            ("faas.name", &source.function_name),
            ("cloud.region", &source.region),
            ("cloud.account.id", &source.account_id),
        ] {
            if let Some(value) = value {
                attributes.push(text(key, value, truncated));
            }
        }
        let figures = [
            ("aws.lambda.duration_ms", Some(invocation.duration_ms)),
            ("aws.lambda.billed_duration_ms", invocation.billed_duration_ms),
            ("aws.lambda.init_duration_ms", invocation.init_duration_ms),
            ("aws.lambda.restore_duration_ms", invocation.restore_duration_ms),
        ];
        for (key, value) in figures {
            if let Some(value) = value.and_then(sane) {
                attributes.push(key_value(key, Any::DoubleValue(value)));
            }
        }
        for (key, value) in [
            ("aws.lambda.memory_size_mb", invocation.memory_size_mb),
            ("aws.lambda.max_memory_used_mb", invocation.max_memory_used_mb),
        ] {
            if let Some(value) = value.and_then(|v| i64::try_from(v).ok()) {
                attributes.push(key_value(key, Any::IntValue(value)));
            }
        }
        attributes.push(key_value(
            "aws.lambda.status",
            Any::StringValue(outcome_text(invocation.outcome).into()),
        ));
        if let Some(error_type) = &invocation.error_type {
            attributes.push(text("error.type", error_type, truncated));
        }
        for (key, set) in [
            ("aws.lambda.timed_out", invocation.timed_out),
            ("aws.lambda.out_of_memory", invocation.out_of_memory),
            ("aws.lambda.managed_instances", invocation.managed_instances),
            ("tracehose.derived_ids", ids.derived),
        ] {
            if set {
                attributes.push(key_value(key, Any::BoolValue(true)));
            }
        }
        attributes
    }

    fn spans(&self, invocation: &Invocation, ids: &SpanIds, truncated: &mut bool) -> Vec<Span> {
        let source = &invocation.source;
        let name = source.function_name.as_deref().unwrap_or(&source.log_group);
        let start = nanos_of_ms(invocation.start_ms);
        let duration = sane(invocation.duration_ms).unwrap_or(0.0);
        let end = match start {
            0 => 0,
            start => start.saturating_add(nanos_of_ms(duration)),
        };
        let status = match invocation.outcome {
            Outcome::Success => None,
            outcome => {
                let message = invocation.error_type.as_deref().unwrap_or(outcome_text(outcome));
                let (message, cut) = cut_text(message, MAX_ATTRIBUTE_BYTES);
                *truncated |= cut;
                Some(Status {
                    code: StatusCode::Error as i32,
                    message: message.into_owned(),
                })
            }
        };
        let (span_name, cut) = cut_text(name, MAX_ATTRIBUTE_BYTES);
        *truncated |= cut;
        let trace_id = ids.trace_id.to_bytes().to_vec();
        let invocation_span = Span {
            trace_id: trace_id.clone(),
            span_id: ids.span_id.to_bytes().to_vec(),
            parent_span_id: ids
                .parent_span_id
                .map(|p| p.to_bytes().to_vec())
                .unwrap_or_default(),
            flags: SAMPLED,
            name: span_name.into_owned(),
            kind: SpanKind::Server as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes: self.attributes(invocation, ids, truncated),
            status,
            ..Default::default()
        };
        let mut spans = vec![invocation_span];
        let init = invocation
            .init_duration_ms
            .and_then(sane)
            .filter(|_| invocation.cold_start);
        if let Some(init) = init {
            let mut attributes = vec![
                text("faas.invocation_id", &invocation.request_id, truncated),
                key_value("aws.lambda.init_duration_ms", Any::DoubleValue(init)),
            ];
            if ids.derived {
                attributes.push(key_value("tracehose.derived_ids", Any::BoolValue(true)));
            }
            spans.push(Span {
                trace_id,
                span_id: init_span_id(ids.span_id).to_bytes().to_vec(),
                parent_span_id: ids.span_id.to_bytes().to_vec(),
                flags: SAMPLED,
                name: "init".to_owned(),
                kind: SpanKind::Internal as i32,
                start_time_unix_nano: start.saturating_sub(nanos_of_ms(init)),
                end_time_unix_nano: start,
                attributes,
                ..Default::default()
            });
        }
        spans
    }
}

impl Wire for OtlpSpansEncoder {
    fn name(&self) -> &'static str {
        self.name
    }

    fn content_type(&self) -> &'static str {
        "application/x-protobuf"
    }

    fn limits(&self) -> RequestLimits {
        self.limits
    }

    fn body_overhead(&self) -> usize {
        0
    }

    fn entry_overhead(&self, _entry_len: usize) -> usize {
        0
    }

    fn body(&self, entries: &Entries, range: std::ops::Range<usize>) -> Vec<u8> {
        body(entries, range)
    }

    fn refused(&self, answer: &tracehose_export::Delivered, entries: usize) -> Refused {
        super::answer::otlp_traces(answer, entries)
    }
}

impl InvocationEncoder for OtlpSpansEncoder {
    fn entry_key(&self) -> Option<u64> {
        Some(entry_key("traces", &self.settings))
    }

    /// Only invocations with span ids have a span.
    fn accepts(&self, invocation: &Invocation) -> bool {
        invocation.span.is_some()
    }

    /// An invocation without span ids (never offered, see [`accepts`](Self::accepts)) makes no entry.
    fn encode(&self, invocation: &Invocation, out: &mut Vec<u8>) -> Encoded {
        let start = out.len();
        let mut truncated = false;
        if let Some(ids) = &invocation.span {
            let resource = self.resources.encoded(&self.settings, invocation, &mut truncated);
            let scope_spans = ScopeSpans {
                scope: Some(scope()),
                spans: self.spans(invocation, ids, &mut truncated),
                ..Default::default()
            };
            push_entry(&resource, &scope_spans, out);
        }
        Encoded {
            bytes: out.len() - start,
            truncated,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    use super::*;
    use crate::deliver::encode::figures::testing::{cold_timeout, invocation, REQUEST};
    use crate::deliver::encode::otlp::OTLP_LIMITS;
    use crate::record::Source;

    fn encoder() -> OtlpSpansEncoder {
        OtlpSpansEncoder::new("otlp-traces", OtlpSettings::default(), OTLP_LIMITS.max_body_bytes)
    }

    fn decode(invocations: &[Invocation]) -> (Vec<Span>, bool) {
        let encoder = encoder();
        let mut entries = Entries::default();
        let mut truncated = false;
        for invocation in invocations {
            assert!(encoder.accepts(invocation));
            entries
                .sources
                .push((entries.len(), Arc::clone(&invocation.source)));
            let encoded = encoder.encode(invocation, &mut entries.data);
            truncated |= encoded.truncated;
            entries.ends.push(entries.data.len());
        }
        let body = encoder.body(&entries, 0..entries.len());
        let request = ExportTraceServiceRequest::decode(&body[..]).unwrap();
        assert_eq!(request.resource_spans.len(), invocations.len());
        let spans = request
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect();
        (spans, truncated)
    }

    fn attrs(span: &Span) -> BTreeMap<String, Any> {
        span.attributes
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.clone().unwrap().value.unwrap()))
            .collect()
    }

    #[test]
    fn one_server_span_with_the_xray_ids_and_every_figure() {
        let (spans, truncated) = decode(&[invocation()]);
        assert!(!truncated);
        assert_eq!(spans.len(), 1);
        let span = &spans[0];
        assert_eq!(span.name, "checkout");
        assert_eq!(span.kind, SpanKind::Server as i32);
        assert_eq!(hex(&span.trace_id), "5d8bba5adc2932496a65bab91d2d42d4");
        assert_eq!(hex(&span.span_id), "5ff79d2a06b82ad6");
        assert_eq!(hex(&span.parent_span_id), "00f067aa0ba902b7");
        assert_eq!(span.start_time_unix_nano, 1_700_000_000_500_000_000);
        assert_eq!(span.end_time_unix_nano, 1_700_000_000_980_500_000);
        assert_eq!(span.status, None);
        let a = attrs(span);
        assert_eq!(a["faas.invocation_id"], Any::StringValue(REQUEST.into()));
        assert_eq!(a["faas.coldstart"], Any::BoolValue(false));
        assert_eq!(a["faas.name"], Any::StringValue("checkout".into()));
        assert_eq!(a["cloud.region"], Any::StringValue("eu-west-1".into()));
        assert_eq!(a["cloud.account.id"], Any::StringValue("123456789012".into()));
        assert_eq!(a["aws.lambda.duration_ms"], Any::DoubleValue(480.5));
        assert_eq!(a["aws.lambda.billed_duration_ms"], Any::DoubleValue(481.0));
        assert_eq!(a["aws.lambda.memory_size_mb"], Any::IntValue(1024));
        assert_eq!(a["aws.lambda.max_memory_used_mb"], Any::IntValue(90));
        assert!(!a.contains_key("tracehose.derived_ids"));
    }

    #[test]
    fn a_cold_timeout_is_an_error_with_an_init_span_before_it() {
        let (spans, _) = decode(&[cold_timeout()]);
        assert_eq!(spans.len(), 2);
        let (main, init) = (&spans[0], &spans[1]);
        let status = main.status.as_ref().unwrap();
        assert_eq!(status.code, StatusCode::Error as i32);
        assert_eq!(status.message, "Sandbox.Timedout");
        assert_eq!(
            attrs(main)["error.type"],
            Any::StringValue("Sandbox.Timedout".into())
        );
        assert_eq!(attrs(main)["aws.lambda.timed_out"], Any::BoolValue(true));
        assert_eq!(init.name, "init");
        assert_eq!(init.trace_id, main.trace_id);
        assert_eq!(init.parent_span_id, main.span_id);
        assert_ne!(init.span_id, main.span_id);
        assert_eq!(init.end_time_unix_nano, main.start_time_unix_nano);
        assert_eq!(
            init.end_time_unix_nano - init.start_time_unix_nano,
            250_250_000,
            "the init duration"
        );
        // The same invocation always makes the same init span id.
        let (again, _) = decode(&[cold_timeout()]);
        assert_eq!(again[1].span_id, init.span_id);
    }

    #[test]
    fn derived_ids_are_marked_and_a_failure_without_a_type_says_its_outcome() {
        let mut derived = cold_timeout();
        derived.outcome = Outcome::Failure;
        derived.error_type = None;
        if let Some(ids) = derived.span.as_mut() {
            ids.derived = true;
            ids.parent_span_id = None;
        }
        let (spans, _) = decode(&[derived]);
        assert!(spans[0].parent_span_id.is_empty());
        assert_eq!(spans[0].status.as_ref().unwrap().message, "failure");
        for span in &spans {
            assert_eq!(
                attrs(span)["tracehose.derived_ids"],
                Any::BoolValue(true),
                "{}",
                span.name
            );
        }
    }

    #[test]
    fn no_span_ids_no_span() {
        let mut plain = invocation();
        plain.span = None;
        assert!(!encoder().accepts(&plain));
        let mut out = Vec::new();
        assert_eq!(encoder().encode(&plain, &mut out).bytes, 0);
        assert!(out.is_empty());
    }

    #[test]
    fn hostile_figures_make_a_readable_span() {
        let mut hostile = cold_timeout();
        hostile.duration_ms = f64::NAN;
        hostile.init_duration_ms = Some(f64::INFINITY);
        hostile.start_ms = -1e300;
        hostile.memory_size_mb = Some(u64::MAX);
        hostile.error_type = Some("E".repeat(1 << 20));
        hostile.source = Arc::new(Source {
            function_name: Some("f".repeat(1 << 20)),
            ..(*hostile.source).clone()
        });
        let (spans, truncated) = decode(&[hostile]);
        assert!(truncated);
        assert_eq!(spans.len(), 1, "no init span of an infinite duration");
        let span = &spans[0];
        assert!(span.name.len() <= 4096 && span.status.as_ref().unwrap().message.len() <= 4096);
        assert_eq!((span.start_time_unix_nano, span.end_time_unix_nano), (0, 0));
        let a = attrs(span);
        assert!(!a.contains_key("aws.lambda.duration_ms"));
        assert!(!a.contains_key("aws.lambda.memory_size_mb"));
        if let Any::StringValue(error) = &a["error.type"] {
            assert!(error.len() <= 4096);
        }
    }

    #[test]
    fn init_ids_are_never_zero_nor_the_invocations() {
        for id in [1u64, u64::MAX, 0x9e37_79b9_7f4a_7c15, 42] {
            let span = SpanId::from_u64(id).unwrap();
            let init = init_span_id(span);
            assert_ne!(init, span);
            assert_ne!(init.to_u64(), 0);
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
