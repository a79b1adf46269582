//! The local OTLP/HTTP receiver for the function's own spans (protobuf or JSON, optionally gzip). Received
//! spans are attached to the invocation they belong to and buffered for export with the invocation span.

use std::io::Read;
use std::sync::Arc;

use flate2::read::GzDecoder;
use hyper::body::Incoming;
use hyper::{header, Method, Request, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{span::Link, Span};
use prost::Message;
use tracehose_tracecontext::{SpanId, TraceId};

use crate::invocation::Tracker;
use crate::otlp::{find_str, str_attr};
use crate::server::{read_body, reply, BodyError, Reply};
use crate::state::{count_spans, Shared, Stats};

/// Compressed and decompressed request size caps: far above what one function sends per export, far below
/// what would hurt a 128 MB function.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
pub const MAX_DECODED_BYTES: usize = 8 * 1024 * 1024;
/// Links added to one span at most: a span that already carries many does not need ours to be found.
const MAX_LINKS: usize = 128;
/// Attributes the function may use to name its invocation.
const INVOCATION_KEYS: [&str; 3] = ["faas.invocation_id", "faas.execution", "aws.lambda.request_id"];

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unsupported content type {0:?}")]
    ContentType(String),
    #[error("unsupported content encoding {0:?}")]
    Encoding(String),
    #[error("gzip body invalid or larger than {MAX_DECODED_BYTES} bytes once inflated")]
    Gzip,
    #[error("invalid OTLP protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("invalid OTLP JSON: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

pub async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Reply {
    if request.uri().path() != "/v1/traces" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "only /v1/traces is served here\n",
        );
    }
    if request.method() != Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "POST only\n");
    }
    let header_str = |name: header::HeaderName| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let content_type = header_str(header::CONTENT_TYPE);
    let encoding = header_str(header::CONTENT_ENCODING);
    let format = match content_type.split(';').next().map(str::trim).unwrap_or("") {
        "application/json" => Format::Json,
        _ => Format::Protobuf,
    };
    let body = match read_body(request.into_body(), MAX_BODY_BYTES, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(error @ BodyError::TooLarge(_)) => {
            Stats::add(&shared.stats.spans_rejected, 1);
            return reply(StatusCode::PAYLOAD_TOO_LARGE, "text/plain", format!("{error}\n"));
        }
        Err(error) => return reply(StatusCode::BAD_REQUEST, "text/plain", format!("{error}\n")),
    };
    let decoded = decode(&body, &content_type, &encoding, format);
    let request = match decoded {
        Ok(request) => request,
        Err(error) => {
            Stats::add(&shared.stats.spans_rejected, 1);
            return reply(StatusCode::BAD_REQUEST, "text/plain", format!("{error}\n"));
        }
    };
    accept(&shared, request);
    // An empty ExportTraceServiceResponse: full success.
    match format {
        Format::Protobuf => reply(StatusCode::OK, "application/x-protobuf", ""),
        Format::Json => reply(StatusCode::OK, "application/json", "{}"),
    }
}

fn decode(
    body: &[u8],
    content_type: &str,
    encoding: &str,
    format: Format,
) -> Result<ExportTraceServiceRequest, DecodeError> {
    let mime = content_type.split(';').next().map(str::trim).unwrap_or("");
    if !matches!(
        mime,
        "" | "application/x-protobuf" | "application/protobuf" | "application/json"
    ) {
        return Err(DecodeError::ContentType(mime.chars().take(64).collect()));
    }
    let inflated;
    let raw = match encoding.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => body,
        "gzip" => {
            let mut out = Vec::new();
            GzDecoder::new(body)
                .take(MAX_DECODED_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|_| DecodeError::Gzip)?;
            if out.len() > MAX_DECODED_BYTES {
                return Err(DecodeError::Gzip);
            }
            inflated = out;
            &inflated
        }
        other => return Err(DecodeError::Encoding(other.chars().take(32).collect())),
    };
    Ok(match format {
        Format::Protobuf => ExportTraceServiceRequest::decode(raw)?,
        Format::Json => serde_json::from_slice(raw)?,
    })
}

/// Links every span to its invocation and buffers the lot.
pub fn accept(shared: &Shared, request: ExportTraceServiceRequest) {
    let mut state = shared.lock();
    let mut batches = Vec::with_capacity(request.resource_spans.len());
    for mut rs in request.resource_spans {
        for scope in &mut rs.scope_spans {
            for span in &mut scope.spans {
                link(span, &mut state.tracker);
            }
        }
        batches.push(rs);
    }
    drop(state);
    for rs in batches {
        let count = count_spans(&rs);
        Stats::add(&shared.stats.spans_received, count);
        shared.push_function_spans(rs, count);
    }
}

/// A span of the invocation's own trace whose parent is the invocation's caller (or none) becomes a child of
/// the invocation span, which is where it ran; any other span gets a link to it, so that nothing the function
/// built is rewritten beyond its root.
fn link(span: &mut Span, tracker: &mut Tracker) {
    let named = INVOCATION_KEYS
        .iter()
        .find_map(|key| find_str(&span.attributes, key))
        .map(str::to_owned);
    let trace = <[u8; 16]>::try_from(span.trace_id.as_slice())
        .ok()
        .and_then(TraceId::from_bytes);
    let Some(inv) = tracker.owner(named.as_deref(), trace) else {
        return;
    };
    inv.last_child_end = inv.last_child_end.max(span.end_time_unix_nano);
    let Some(inv_trace) = inv.trace_id else {
        return;
    };
    let inv_span = inv.span_id.to_bytes();
    if span.span_id == inv_span {
        return;
    }
    let parent = <[u8; 8]>::try_from(span.parent_span_id.as_slice())
        .ok()
        .and_then(SpanId::from_bytes);
    if trace == Some(inv_trace) {
        if parent.is_none() || parent == inv.parent_id {
            span.parent_span_id = inv_span.to_vec();
        }
    } else if span.links.len() < MAX_LINKS {
        span.links.push(Link {
            trace_id: inv_trace.to_bytes().to_vec(),
            span_id: inv_span.to_vec(),
            attributes: vec![str_attr("tracehose.link", "invocation")],
            ..Default::default()
        });
    }
    if named.is_none() {
        span.attributes
            .push(str_attr("faas.invocation_id", &inv.request_id));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const XRAY: &str = "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1";

    fn span(trace: &[u8], parent: &[u8]) -> Span {
        Span {
            trace_id: trace.to_vec(),
            span_id: vec![9; 8],
            parent_span_id: parent.to_vec(),
            end_time_unix_nano: 77,
            ..Default::default()
        }
    }

    #[test]
    fn same_trace_root_is_reparented_other_traces_are_linked() {
        let mut t = Tracker::new(true);
        t.on_invoke("r1", Some(XRAY), None, 1);
        let inv = t.find("r1").unwrap().clone();
        let trace = inv.trace_id.unwrap().to_bytes();
        let upstream = inv.parent_id.unwrap().to_bytes();

        let mut root = span(&trace, &upstream);
        link(&mut root, &mut t);
        assert_eq!(root.parent_span_id, inv.span_id.to_bytes());
        assert_eq!(find_str(&root.attributes, "faas.invocation_id"), Some("r1"));

        let mut inner = span(&trace, &[5; 8]);
        link(&mut inner, &mut t);
        assert_eq!(inner.parent_span_id, vec![5; 8]);

        let mut foreign = span(&[3; 16], &[]);
        link(&mut foreign, &mut t);
        assert!(foreign.parent_span_id.is_empty());
        assert_eq!(foreign.links[0].span_id, inv.span_id.to_bytes());
        assert_eq!(t.find("r1").unwrap().last_child_end, 77);
    }

    #[test]
    fn decodes_protobuf_gzip_and_json_and_rejects_garbage() {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![Default::default()],
        };
        let raw = request.encode_to_vec();
        assert_eq!(
            decode(&raw, "application/x-protobuf", "", Format::Protobuf).unwrap(),
            request
        );
        let gz = tracehose_export::encode(&request, tracehose_export::Compression::Gzip).unwrap();
        assert_eq!(
            decode(&gz.body, "application/x-protobuf", "gzip", Format::Protobuf).unwrap(),
            request
        );
        let json = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5f35ae120c0fec141ab77a00bc047aa2","spanId":"2be948a625588e32","name":"work","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;
        let parsed = decode(json, "application/json", "", Format::Json).unwrap();
        let s = &parsed.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(s.trace_id[0], 0x5f);
        assert_eq!(s.end_time_unix_nano, 2);
        assert!(decode(b"\xff\xff\xff", "application/x-protobuf", "", Format::Protobuf).is_err());
        assert!(decode(b"[1]", "application/json", "", Format::Json).is_err());
        assert!(decode(b"x", "text/html", "", Format::Protobuf).is_err());
        assert!(decode(b"x", "", "br", Format::Protobuf).is_err());
        assert!(decode(b"not gzip", "", "gzip", Format::Protobuf).is_err());
        // A gzip bomb stops at the cap.
        let zeros = vec![0u8; MAX_DECODED_BYTES + 10];
        let bomb = tracehose_export::encode(
            &opentelemetry_proto::tonic::common::v1::AnyValue {
                value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::BytesValue(zeros)),
            },
            tracehose_export::Compression::Gzip,
        )
        .unwrap();
        assert!(matches!(
            decode(&bomb.body, "", "gzip", Format::Protobuf),
            Err(DecodeError::Gzip)
        ));
    }
}
