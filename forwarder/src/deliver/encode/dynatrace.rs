//! Dynatrace Log Ingest API v2 (docs/formats.md section 7): a JSON array of flat objects, `content`,
//! `timestamp`, `loglevel`, `dt.trace_id`, `dt.span_id` and attributes, cut to the tenant's limits, which
//! differ between the current platform and Logs Classic.

use super::json::{push_message_within, push_str, push_value, Members, OwnMembers};
use super::{
    positive, Encoded, Encoder, JsonMessage, PerKind, PerSource, Refused, RequestLimits, SettingsError, Wire,
};
use crate::parse::Severity;
use crate::record::{AttrValue, LogRecord, Source};

/// Longest attribute key the API takes; a longer one (only a common attribute can be) is left out.
const MAX_KEY_BYTES: usize = 100;

/// Smallest limits the settings accept: below them a record's ids and a readable start of its content no
/// longer fit.
const MIN_REQUEST_BYTES: usize = 4096;
const MIN_FIELD_BYTES: usize = 64;

/// What one tenant accepts. Sizes are bytes of UTF-8; "MB" and "kB" of the documentation are read as powers
/// of ten, which keeps within the limits under either reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynatraceLimits {
    pub max_request_bytes: usize,
    pub max_records: usize,
    /// Longest `content`; a longer message is cut and ends with [`TRUNCATED`](super::TRUNCATED).
    pub max_content_bytes: usize,
    /// Longest attribute value; a longer one is cut the same way.
    pub max_attribute_bytes: usize,
    /// Most attributes of one record, `loglevel` and the ids included, `content` and `timestamp` not.
    pub max_attributes: usize,
}

impl DynatraceLimits {
    /// The current platform (Log Management and Analytics default limits).
    pub const CURRENT: Self = Self {
        max_request_bytes: 10_000_000,
        max_records: 50_000,
        max_content_bytes: 10_000_000,
        max_attribute_bytes: 32_000,
        max_attributes: 500,
    };

    /// Logs Classic tenants: their documented content and attribute limits, and the request size and record
    /// count Dynatrace's own AWS log forwarder used with them.
    pub const CLASSIC: Self = Self {
        max_request_bytes: 1_000_000,
        max_records: 5_000,
        max_content_bytes: 8_000,
        max_attribute_bytes: 250,
        max_attributes: 50,
    };
}

impl Default for DynatraceLimits {
    fn default() -> Self {
        Self::CURRENT
    }
}

/// Encoder settings: `TRACEHOSE_DT_LIMITS` (`current`, the default, or `classic`) picks the preset and
/// `TRACEHOSE_DT_MAX_REQUEST_BYTES`, `TRACEHOSE_DT_MAX_RECORDS`, `TRACEHOSE_DT_MAX_CONTENT_BYTES`,
/// `TRACEHOSE_DT_MAX_ATTRIBUTE_BYTES` and `TRACEHOSE_DT_MAX_ATTRIBUTES` override one limit each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynatraceSettings {
    pub limits: DynatraceLimits,
}

impl DynatraceSettings {
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let mut limits = match lookup("TRACEHOSE_DT_LIMITS").as_deref().map(str::trim) {
            None | Some("") => DynatraceLimits::CURRENT,
            Some(p) if p.eq_ignore_ascii_case("current") => DynatraceLimits::CURRENT,
            Some(p) if p.eq_ignore_ascii_case("classic") => DynatraceLimits::CLASSIC,
            Some(_) => {
                return Err(SettingsError::invalid(
                    "TRACEHOSE_DT_LIMITS",
                    "expected current or classic",
                ))
            }
        };
        let overrides: [(&'static str, &mut usize, usize); 5] = [
            (
                "TRACEHOSE_DT_MAX_REQUEST_BYTES",
                &mut limits.max_request_bytes,
                MIN_REQUEST_BYTES,
            ),
            ("TRACEHOSE_DT_MAX_RECORDS", &mut limits.max_records, 1),
            (
                "TRACEHOSE_DT_MAX_CONTENT_BYTES",
                &mut limits.max_content_bytes,
                MIN_FIELD_BYTES,
            ),
            (
                "TRACEHOSE_DT_MAX_ATTRIBUTE_BYTES",
                &mut limits.max_attribute_bytes,
                MIN_FIELD_BYTES,
            ),
            ("TRACEHOSE_DT_MAX_ATTRIBUTES", &mut limits.max_attributes, 1),
        ];
        for (var, limit, min) in overrides {
            if let Some(n) = positive(lookup, var)? {
                if n < min {
                    return Err(SettingsError::invalid(var, format!("must be at least {min}")));
                }
                *limit = n;
            }
        }
        Ok(Self { limits })
    }
}

#[derive(Debug)]
pub struct DynatraceEncoder {
    limits: DynatraceLimits,
    sources: PerSource<SourceMembers>,
    own: PerKind<OwnMembers>,
}

/// A source's attributes, encoded once as `"key":value` members.
#[derive(Debug, Default)]
struct SourceMembers {
    /// Log group, stream, account, region, provider, function: before the record's attributes.
    fixed: Vec<Member>,
    /// Firehose ARN and common attributes: after them, first to go when a record has too many.
    delivery: Vec<Member>,
}

#[derive(Debug)]
struct Member {
    bytes: Vec<u8>,
    cut: bool,
}

impl DynatraceEncoder {
    pub fn new(settings: DynatraceSettings) -> Self {
        Self {
            limits: settings.limits,
            sources: PerSource::default(),
            own: PerKind::default(),
        }
    }

    /// Largest entry that fits a request alone: `[` entry `]`, and a comma to spare.
    fn max_entry_bytes(&self) -> usize {
        self.limits.max_request_bytes.saturating_sub(3)
    }

    fn source_members(&self, source: &Source) -> SourceMembers {
        let max = self.limits.max_attribute_bytes;
        let member = |key: &str, value: AttrValue<'_>| {
            let mut bytes = Vec::new();
            push_str(&mut bytes, key);
            bytes.push(b':');
            let cut = push_value(&mut bytes, value, max);
            Member { bytes, cut }
        };
        let mut fixed = vec![
            member("aws.log_group", AttrValue::Str(&source.log_group)),
            member("aws.log_stream", AttrValue::Str(&source.log_stream)),
        ];
        for (key, value) in [
            ("aws.account.id", &source.account_id),
            ("aws.region", &source.region),
            ("cloud.provider", &Some("aws".to_owned())),
            ("faas.name", &source.function_name),
        ] {
            if let Some(value) = value {
                fixed.push(member(key, AttrValue::Str(value)));
            }
        }
        let mut delivery = Vec::new();
        source.visit_delivery_attributes(&mut |key, value| {
            delivery.push(if key.len() <= MAX_KEY_BYTES {
                member(key, value)
            } else {
                // Left out: an empty member only marks the record truncated.
                Member {
                    bytes: Vec::new(),
                    cut: true,
                }
            });
        });
        SourceMembers { fixed, delivery }
    }
}

impl Wire for DynatraceEncoder {
    fn name(&self) -> &'static str {
        "dynatrace"
    }

    fn content_type(&self) -> &'static str {
        "application/json; charset=utf-8"
    }

    fn limits(&self) -> RequestLimits {
        RequestLimits {
            max_body_bytes: self.limits.max_request_bytes,
            max_entries: self.limits.max_records,
        }
    }

    fn refused(&self, answer: &tracehose_export::Delivered, entries: usize) -> Refused {
        super::answer::dynatrace(answer, entries)
    }
}

/// `ascii` (with nothing to escape) as a JSON string; never cut.
fn quoted(out: &mut Vec<u8>, ascii: &[u8]) -> bool {
    out.push(b'"');
    out.extend_from_slice(ascii);
    out.push(b'"');
    false
}

impl Encoder for DynatraceEncoder {
    fn encode(&self, record: &LogRecord, message: &JsonMessage<'_>, out: &mut Vec<u8>) -> Encoded {
        let start = out.len();
        let max_entry = self.max_entry_bytes();
        let max_attribute = self.limits.max_attribute_bytes;
        let source = self.sources.get(&record.source, |s| self.source_members(s));
        out.push(b'{');
        // Attributes may fill half an entry at most, so the content always keeps the other half.
        let mut m = Members::new(out, self.limits.max_attributes.saturating_add(1), max_entry / 2);
        m.member("timestamp", |o| {
            o.push(b'"');
            o.extend_from_slice(itoa::Buffer::new().format(record.timestamp_ms).as_bytes());
            o.push(b'"');
            false
        });
        if record.severity != Severity::Unspecified {
            m.member("loglevel", |o| {
                push_value(o, AttrValue::Str(record.severity.as_str()), max_attribute)
            });
        }
        // Hex digits need no escaping.
        if let Some(trace_id) = record.trace_id {
            m.member("dt.trace_id", |o| quoted(o, &trace_id.hex()));
        }
        if let Some(span_id) = record.span_id {
            m.member("dt.span_id", |o| quoted(o, &span_id.hex()));
        }
        if let Some(request_id) = &record.request_id {
            m.member("faas.invocation_id", |o| {
                push_value(o, AttrValue::Str(request_id), max_attribute)
            });
        }
        let encoded = |m: &mut Members<'_>, member: &Member| {
            if member.bytes.is_empty() {
                m.truncated = true;
            } else if m.encoded(&member.bytes, 1) {
                m.truncated |= member.cut;
            }
        };
        for member in &source.fixed {
            encoded(&mut m, member);
        }
        let own = self.own.get(record, |r| OwnMembers::of(r, max_attribute));
        m.own_attributes(record, own.as_deref(), max_attribute);
        for member in &source.delivery {
            encoded(&mut m, member);
        }
        let mut truncated = m.truncated;
        let first = m.is_first();
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(b"\"content\":");
        let room = max_entry.saturating_sub(out.len() - start + 1);
        truncated |= push_message_within(out, message, self.limits.max_content_bytes, room);
        out.push(b'}');
        Encoded {
            bytes: out.len() - start,
            truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;
    use std::sync::Arc;

    use serde_json::{json, Value};

    use super::*;
    use crate::deliver::encode::testing::{body, entries, lambda_source, line, report, SPAN, TRACE};
    use crate::deliver::encode::TRUNCATED;

    fn encoder(limits: DynatraceLimits) -> DynatraceEncoder {
        DynatraceEncoder::new(DynatraceSettings { limits })
    }

    fn decode(encoder: &DynatraceEncoder, records: &[LogRecord]) -> (Vec<Value>, bool) {
        let (entries, truncated) = entries(encoder, records);
        let body = body(encoder, &entries);
        assert!(body.len() <= encoder.limits().max_body_bytes);
        (serde_json::from_slice(&body).unwrap(), truncated)
    }

    #[test]
    fn maps_a_line_to_flat_dynatrace_attributes() {
        let source = lambda_source("checkout");
        let (objects, truncated) = decode(
            &encoder(DynatraceLimits::CURRENT),
            &[line(&source, "paid \"€5\"")],
        );
        assert!(!truncated);
        assert_eq!(
            objects[0],
            json!({
                "content": "paid \"€5\"",
                "timestamp": "1700000000123",
                "loglevel": "WARN",
                "dt.trace_id": TRACE,
                "dt.span_id": SPAN,
                "faas.invocation_id": "8f5b1c2e-1111-2222-3333-444455556666",
                "aws.log_group": "/aws/lambda/checkout",
                "aws.log_stream": "2024/01/01/[$LATEST]abc",
                "aws.account.id": "123456789012",
                "aws.region": "eu-west-1",
                "cloud.provider": "aws",
                "faas.name": "checkout",
                "faas.coldstart": true,
                "tracehose.join": "line",
                "aws.firehose.arn": "arn:aws:firehose:eu-west-1:123456789012:deliverystream/logs",
                "team": "payments",
            })
        );
    }

    #[test]
    fn report_metrics_are_typed_and_unknowns_absent() {
        let source = lambda_source("checkout");
        let (objects, _) = decode(&encoder(DynatraceLimits::CURRENT), &[report(&source)]);
        let o = objects[0].as_object().unwrap();
        assert_eq!(o["aws.lambda.duration_ms"], json!(12.5));
        assert_eq!(o["aws.lambda.memory_size_mb"], json!(128));
        assert_eq!(o["aws.lambda.status"], json!("timeout"));
        assert_eq!(o["aws.lambda.platform_event"], json!("report"));
        for absent in ["dt.trace_id", "dt.span_id", "loglevel", "faas.coldstart"] {
            assert!(!o.contains_key(absent), "{absent}");
        }
    }

    #[test]
    fn a_run_of_two_sources_keeps_each_records_source() {
        let (a, b) = (lambda_source("a"), lambda_source("b"));
        let records = [line(&a, "1"), line(&a, "2"), line(&b, "3"), line(&a, "4")];
        let (objects, _) = decode(&encoder(DynatraceLimits::CURRENT), &records);
        let names: Vec<_> = objects
            .iter()
            .map(|o| (o["content"].clone(), o["faas.name"].clone()))
            .collect();
        assert_eq!(
            names,
            [("1", "a"), ("2", "a"), ("3", "b"), ("4", "a")].map(|(c, n)| (json!(c), json!(n)))
        );
    }

    #[test]
    fn classic_limits_cut_content_and_values_with_the_marker() {
        let mut source = (*lambda_source("checkout")).clone();
        source.common_attributes = (0..80).map(|i| (format!("k{i}"), "v".repeat(300))).collect();
        source
            .common_attributes
            .push(("x".repeat(101), "long key".to_owned()));
        let source = Arc::new(source);
        let message = "ü".repeat(10_000);
        let limits = DynatraceLimits::CLASSIC;
        let (objects, truncated) = decode(&encoder(limits), &[line(&source, &message)]);
        assert!(truncated);
        let o = objects[0].as_object().unwrap();
        let content = o["content"].as_str().unwrap();
        assert!(content.ends_with(TRUNCATED) && content.len() <= limits.max_content_bytes);
        assert!(content.len() > limits.max_content_bytes - 30);
        assert_eq!(o.len() - 2, limits.max_attributes);
        let team = o["k0"].as_str().unwrap();
        assert!(team.ends_with(TRUNCATED) && team.len() <= limits.max_attribute_bytes);
        assert!(o.keys().all(|k| k.len() <= MAX_KEY_BYTES));
        // The fixed attributes go before the common ones.
        assert_eq!(o["faas.name"], json!("checkout"));
        assert_eq!(o["tracehose.join"], json!("line"));
    }

    #[test]
    fn an_entry_always_fits_a_request_alone() {
        let limits = DynatraceLimits {
            max_request_bytes: MIN_REQUEST_BYTES,
            ..DynatraceLimits::CURRENT
        };
        let source = lambda_source("checkout");
        for message in ["\u{1}".repeat(10_000), "\"".repeat(10_000), "é".repeat(10_000)] {
            let (objects, truncated) = decode(&encoder(limits), &[line(&source, &message)]);
            assert!(truncated);
            assert!(objects[0]["content"].as_str().unwrap().ends_with(TRUNCATED));
            assert_eq!(objects[0]["dt.trace_id"], json!(TRACE));
        }
    }

    #[test]
    fn settings_pick_a_preset_and_overrides() {
        let env = |pairs: &[(&str, &str)]| {
            let map: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            DynatraceSettings::from_lookup(&move |k| map.get(k).cloned())
        };
        assert_eq!(env(&[]).unwrap().limits, DynatraceLimits::CURRENT);
        assert_eq!(
            env(&[("TRACEHOSE_DT_LIMITS", "Classic")]).unwrap().limits,
            DynatraceLimits::CLASSIC
        );
        let s = env(&[
            ("TRACEHOSE_DT_LIMITS", "classic"),
            ("TRACEHOSE_DT_MAX_CONTENT_BYTES", "65536"),
        ]);
        assert_eq!(s.unwrap().limits.max_content_bytes, 65_536);
        for (var, value) in [
            ("TRACEHOSE_DT_LIMITS", "newest"),
            ("TRACEHOSE_DT_MAX_RECORDS", "0"),
            ("TRACEHOSE_DT_MAX_ATTRIBUTES", "many"),
            ("TRACEHOSE_DT_MAX_REQUEST_BYTES", "100"),
        ] {
            let err = env(&[(var, value)]).unwrap_err();
            assert_eq!(err.var(), var);
            assert!(err.to_string().starts_with(var) && !err.to_string().contains(value));
        }
    }

    #[test]
    fn describes_its_requests() {
        let e = encoder(DynatraceLimits::CLASSIC);
        assert_eq!(e.content_type(), "application/json; charset=utf-8");
        assert_eq!(
            e.limits(),
            RequestLimits {
                max_body_bytes: 1_000_000,
                max_entries: 5_000
            }
        );
        let (entries, _) = entries(&e, &[]);
        assert_eq!(e.body(&entries, 0..0), b"[]");
    }
}
