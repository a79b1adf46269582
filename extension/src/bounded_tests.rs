#![allow(clippy::unwrap_used)]

use opentelemetry_proto::tonic::common::v1::any_value;

use super::*;

const ROOMY: Budget = Budget {
    max_spans: 4096,
    max_memory: 16 * 1024 * 1024,
};

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
    }
}

fn one_scope(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn realistic() -> ExportTraceServiceRequest {
    let nested = AnyValue {
        value: Some(any_value::Value::ArrayValue(ArrayValue {
            values: vec![AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList {
                    values: vec![text("k", "v")],
                })),
            }],
        })),
    };
    let span = Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: "handler".into(),
        start_time_unix_nano: 5,
        end_time_unix_nano: 9,
        flags: 0x301,
        attributes: vec![
            text("http.route", "/orders"),
            KeyValue {
                key: "nested".into(),
                value: Some(nested),
            },
        ],
        events: vec![Event {
            name: "e".into(),
            attributes: vec![text("a", "b")],
            ..Default::default()
        }],
        links: vec![Link {
            trace_id: vec![3; 16],
            span_id: vec![4; 8],
            ..Default::default()
        }],
        status: Some(Status {
            message: "boom".into(),
            code: 2,
        }),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", "orders")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "lib".into(),
                    ..Default::default()
                }),
                spans: vec![span.clone(), span],
                schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
        }],
    }
}

#[test]
fn a_normal_request_decodes_exactly_as_prost_decodes_it() {
    let request = realistic();
    let decoded = decode(&request.encode_to_vec(), ROOMY).unwrap();
    assert_eq!(decoded.request, request);
    assert_eq!((decoded.accepted, decoded.rejected), (2, 0));
}

/// The issue's body: 1 MiB of two-byte empty spans (`12 00`), half a million of them.
#[test]
fn a_flood_of_empty_spans_is_cut_at_the_span_budget_and_counted() {
    let flood = one_scope(vec![Span::default(); 512 * 1024]).encode_to_vec();
    assert!(flood.len() > 1024 * 1024);
    let decoded = decode(&flood, ROOMY).unwrap();
    assert_eq!(decoded.accepted, 4096);
    assert_eq!(decoded.rejected, 512 * 1024 - 4096);
    assert_eq!(decoded.request.resource_spans[0].scope_spans[0].spans.len(), 4096);
}

#[test]
fn the_memory_budget_keeps_whole_spans_and_counts_the_rest() {
    let fat = Span {
        attributes: (0..1000).map(|i| text(&format!("k{i}"), "")).collect(),
        ..Default::default()
    };
    let request = one_scope(vec![fat; 50]);
    let budget = Budget {
        max_spans: 4096,
        max_memory: 1024 * 1024,
    };
    let decoded = decode(&request.encode_to_vec(), budget).unwrap();
    assert!(decoded.accepted > 0 && decoded.rejected > 0, "{decoded:?}");
    assert_eq!(decoded.accepted + decoded.rejected, 50);
    for span in &decoded.request.resource_spans[0].scope_spans[0].spans {
        assert_eq!(span.attributes.len(), 1000);
    }
}

#[test]
fn empty_containers_cost_nothing_and_are_not_kept() {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans::default(); 512 * 1024],
    };
    let decoded = decode(&request.encode_to_vec(), ROOMY).unwrap();
    assert_eq!(decoded, Decoded::default());
    let scopes = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans::default(); 512 * 1024],
            ..Default::default()
        }],
    };
    assert_eq!(
        decode(&scopes.encode_to_vec(), ROOMY).unwrap(),
        Decoded::default()
    );
}

#[test]
fn a_resource_over_budget_refuses_its_spans_not_the_next_ones() {
    let mut request = realistic();
    let mut heavy = request.resource_spans[0].clone();
    heavy.resource = Some(Resource {
        attributes: (0..5000).map(|i| text(&format!("k{i}"), "v")).collect(),
        ..Default::default()
    });
    request.resource_spans.insert(0, heavy);
    let budget = Budget {
        max_spans: 4096,
        max_memory: 256 * 1024,
    };
    let decoded = decode(&request.encode_to_vec(), budget).unwrap();
    assert_eq!((decoded.accepted, decoded.rejected), (2, 2));
    assert_eq!(decoded.request.resource_spans.len(), 1);
}

#[test]
fn malformed_wire_data_is_an_error_naming_where() {
    let errors = [
        (vec![0x0a, 0x05, 0x12], "truncated"),
        (vec![0x0b], "wire type 3"),
        (vec![0x08, 0x01], "not length-delimited"),
        (vec![0x0a, 0x02, 0x12, 0xff], "truncated"),
        (vec![0xff; 11], "varint"),
        (vec![0x00], "field number 0"),
    ];
    for (body, expected) in errors {
        let error = decode(&body, ROOMY).unwrap_err().to_string();
        assert!(error.contains(expected), "{body:02x?}: {error}");
    }
    // Array inside array, 200 deep: refused by depth, without exhausting the stack.
    let mut value = AnyValue::default();
    for _ in 0..200 {
        value = AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![value] })),
        };
    }
    let deep = one_scope(vec![Span {
        attributes: vec![KeyValue {
            key: "d".into(),
            value: Some(value),
        }],
        ..Default::default()
    }]);
    let error = decode(&deep.encode_to_vec(), ROOMY).unwrap_err().to_string();
    assert!(error.contains("nested deeper"), "{error}");
}

/// Every truncation and many byte substitutions of a valid body: an error or a decode, never a panic, and
/// whatever decodes stays within the budget.
#[test]
fn mutated_bodies_never_panic() {
    let valid = realistic().encode_to_vec();
    let budget = Budget {
        max_spans: 1,
        max_memory: 64 * 1024,
    };
    let check = |body: &[u8]| {
        if let Ok(decoded) = decode(body, budget) {
            assert!(decoded.accepted <= 1);
        }
    };
    for cut in 0..valid.len() {
        check(&valid[..cut]);
    }
    for i in 0..valid.len() {
        for replacement in [0x00, 0x01, 0x0a, 0x12, 0x7f, 0x80, 0xff] {
            let mut body = valid.clone();
            body[i] = replacement;
            check(&body);
        }
    }
}

#[test]
fn json_objects_are_counted_outside_strings_only() {
    assert_eq!(json_objects(br#"{"a":[{},{"b":"{\"{"}]}"#), 3);
    assert_eq!(json_objects(b"[]"), 0);
    let flood = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        vec!["{}"; 1000].join(",")
    );
    assert_eq!(json_objects(flood.as_bytes()), 1003);
}

#[test]
fn cap_spans_keeps_the_first_and_drops_empty_containers() {
    let mut request = realistic();
    request
        .resource_spans
        .push(one_scope(vec![Span::default(); 3]).resource_spans[0].clone());
    assert_eq!(cap_spans(&mut request, 3), 2);
    assert_eq!(request.resource_spans.len(), 2);
    assert_eq!(cap_spans(&mut request, 0), 3);
    assert!(request.resource_spans.is_empty());
}
