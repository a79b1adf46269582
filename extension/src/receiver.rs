//! The local OTLP/HTTP receiver for the function's own spans (protobuf or JSON, optionally gzip). Received
//! spans are attached to the invocation they belong to and buffered for export with the invocation span.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use flate2::read::GzDecoder;
use hyper::body::Incoming;
use hyper::{header, Method, Request, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::{span::Link, Span};
use prost::Message;
use tracehose_tracecontext::{SpanId, TraceId};

use crate::bounded::{self, Budget, WireError};
use crate::invocation::Tracker;
use crate::otlp::{find_str, str_attr};
use crate::server::{body_error_reply, read_body, reply, BodyLimits, Reply};
use crate::state::{count_spans, Shared, Stats};

/// Compressed and decompressed request size caps: far above what one function sends per export, far below
/// what would hurt a 128 MB function.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
pub const MAX_DECODED_BYTES: usize = 8 * 1024 * 1024;
/// What decoding one request may cost: SDKs export 512 spans per batch by default, and a decoded span
/// costs a few hundred bytes before its attributes.
pub const BUDGET: Budget = Budget {
    max_spans: 4096,
    max_memory: 16 * 1024 * 1024,
};
/// How the receiver reads bodies: the function sends from the same sandbox, so a body that takes seconds is
/// stuck, and an oversize one is discarded up to four times the cap so that the SDK reads the 413.
pub const LIMITS: BodyLimits = BodyLimits {
    max: MAX_BODY_BYTES,
    drain: 4 * MAX_BODY_BYTES,
    deadline: Duration::from_secs(5),
};
/// Connections served at once: an SDK exports over one or two; each may hold a body of up to the cap.
pub const MAX_CONNECTIONS: usize = 8;
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
    #[error("invalid gzip body")]
    Gzip,
    #[error("gzip body larger than {MAX_DECODED_BYTES} bytes once inflated")]
    GzipTooLarge,
    #[error("invalid OTLP protobuf: {0}")]
    Protobuf(#[from] WireError),
    #[error("invalid OTLP JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "OTLP/JSON body of {objects} objects would take more than {} bytes to decode; send smaller batches",
        BUDGET.max_memory
    )]
    JsonTooLarge { objects: usize },
}

impl DecodeError {
    fn status(&self) -> StatusCode {
        match self {
            DecodeError::GzipTooLarge | DecodeError::JsonTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            DecodeError::ContentType(_) | DecodeError::Encoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
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
    let (parts, body) = request.into_parts();
    let header_str = |name: header::HeaderName| {
        parts
            .headers
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
    let body = match read_body(&parts.headers, body, LIMITS).await {
        Ok(body) => body,
        Err(error) => {
            Stats::add(&shared.stats.otlp_requests_rejected, 1);
            return body_error_reply(&error);
        }
    };
    let decoded = match decode(&body, &content_type, &encoding, format) {
        Ok(decoded) => decoded,
        Err(error) => {
            Stats::add(&shared.stats.otlp_requests_rejected, 1);
            return reply(error.status(), "text/plain", format!("{error}\n"));
        }
    };
    drop(body);
    Stats::add(&shared.stats.spans_rejected, decoded.rejected);
    accept(&shared, decoded.request);
    // OTLP/HTTP: 200 with partial success when some spans were refused, so that the SDK reports it rather
    // than retrying what would be refused again.
    let partial_success = (decoded.rejected > 0).then(|| ExportTracePartialSuccess {
        rejected_spans: i64::try_from(decoded.rejected).unwrap_or(i64::MAX),
        error_message: format!(
            "the tracehose extension takes at most {} spans and {} bytes of decoded spans per request; send \
             smaller batches",
            BUDGET.max_spans, BUDGET.max_memory
        ),
    });
    let response = ExportTraceServiceResponse { partial_success };
    match format {
        Format::Protobuf => reply(StatusCode::OK, "application/x-protobuf", response.encode_to_vec()),
        Format::Json => reply(
            StatusCode::OK,
            "application/json",
            serde_json::to_vec(&response).unwrap_or_else(|_| b"{}".to_vec()),
        ),
    }
}

fn decode(
    body: &[u8],
    content_type: &str,
    encoding: &str,
    format: Format,
) -> Result<bounded::Decoded, DecodeError> {
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
                return Err(DecodeError::GzipTooLarge);
            }
            inflated = out;
            &inflated
        }
        other => return Err(DecodeError::Encoding(other.chars().take(32).collect())),
    };
    match format {
        Format::Protobuf => Ok(bounded::decode(raw, BUDGET)?),
        Format::Json => {
            // Priced before parsing: serde allocates as it goes and cannot be stopped half way.
            let objects = bounded::json_objects(raw);
            let cost = objects
                .saturating_mul(bounded::JSON_OBJECT_MEMORY)
                .saturating_add(raw.len());
            if cost > BUDGET.max_memory {
                return Err(DecodeError::JsonTooLarge { objects });
            }
            let mut request: ExportTraceServiceRequest = serde_json::from_slice(raw)?;
            let rejected = bounded::cap_spans(&mut request, BUDGET.max_spans);
            let accepted = request.resource_spans.iter().map(count_spans).sum();
            Ok(bounded::Decoded {
                request,
                accepted,
                rejected,
            })
        }
    }
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
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

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
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span(&[1; 16], &[])],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let raw = request.encode_to_vec();
        let plain = decode(&raw, "application/x-protobuf", "", Format::Protobuf).unwrap();
        assert_eq!(plain.request, request);
        let gz = tracehose_export::encode(&request, tracehose_export::Compression::Gzip).unwrap();
        assert_eq!(
            decode(&gz.body, "application/x-protobuf", "gzip", Format::Protobuf)
                .unwrap()
                .request,
            request
        );
        let json = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5f35ae120c0fec141ab77a00bc047aa2","spanId":"2be948a625588e32","name":"work","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;
        let parsed = decode(json, "application/json", "", Format::Json)
            .unwrap()
            .request;
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
            Err(DecodeError::GzipTooLarge)
        ));
    }

    fn flood(spans: usize) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span::default(); spans],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    /// The issue's 1 MiB of empty spans, plain and gzip-inflated: the decode stops at the span budget.
    #[test]
    fn a_protobuf_flood_of_empty_spans_is_cut_at_the_budget() {
        let body = flood(512 * 1024).encode_to_vec();
        let decoded = decode(&body, "application/x-protobuf", "", Format::Protobuf).unwrap();
        assert_eq!(decoded.accepted, BUDGET.max_spans);
        assert_eq!(decoded.rejected, 512 * 1024 - BUDGET.max_spans);
        let gz =
            tracehose_export::encode(&flood(2 * 1024 * 1024), tracehose_export::Compression::Gzip).unwrap();
        assert!(gz.body.len() < MAX_BODY_BYTES);
        let decoded = decode(&gz.body, "application/x-protobuf", "gzip", Format::Protobuf).unwrap();
        assert_eq!(decoded.accepted, BUDGET.max_spans);
        assert_eq!(decoded.rejected, 2 * 1024 * 1024 - BUDGET.max_spans);
    }

    /// The same flood as OTLP/JSON is refused before serde allocates anything; a JSON batch over the span
    /// budget but within the memory one is cut like the protobuf one.
    #[test]
    fn a_json_flood_is_refused_before_parsing_and_large_batches_are_cut() {
        let spans = vec!["{}"; 512 * 1024].join(",");
        let body = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{spans}]}}]}}]}}"#).into_bytes();
        assert!(body.len() < MAX_BODY_BYTES);
        let error = decode(&body, "application/json", "", Format::Json).unwrap_err();
        assert!(matches!(error, DecodeError::JsonTooLarge { .. }), "{error}");
        assert_eq!(error.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let over = BUDGET.max_spans + 10;
        let body = serde_json::to_vec(&flood(over)).unwrap();
        let decoded = decode(&body, "application/json", "", Format::Json).unwrap();
        assert_eq!((decoded.accepted, decoded.rejected), (BUDGET.max_spans, 10));
    }
}
