//! What the intake writes back: the vendor's status and body (a partial success in its documented shape),
//! and the headers an injected answer asks for (`Retry-After` in either form, `Location`).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use hyper::{Response, StatusCode};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use serde_json::json;

use super::faults::{Answer, RetryAfter};
use super::{Reply, Vendor};

/// How long a hung request waits before its connection is closed, if neither side ended it first: longer
/// than any client here waits.
pub const HANG: Duration = Duration::from_secs(600);

/// The export response of the vendor's signal, with a partial success refusing `refused` items if given.
fn otlp_answer(vendor: Option<Vendor>, refused: Option<usize>) -> Vec<u8> {
    let rejected = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let message =
        |n: usize, what: &str| format!("{n} {what} refused by the intake's injected partial success");
    match vendor {
        Some(Vendor::OtlpMetrics | Vendor::DynatraceOtlpMetrics) => ExportMetricsServiceResponse {
            partial_success: refused.map(|n| ExportMetricsPartialSuccess {
                rejected_data_points: rejected(n),
                error_message: message(n, "data points"),
            }),
        }
        .encode_to_vec(),
        Some(Vendor::OtlpTraces | Vendor::DynatraceOtlpTraces) => ExportTraceServiceResponse {
            partial_success: refused.map(|n| ExportTracePartialSuccess {
                rejected_spans: rejected(n),
                error_message: message(n, "spans"),
            }),
        }
        .encode_to_vec(),
        _ => ExportLogsServiceResponse {
            partial_success: refused.map(|n| ExportLogsPartialSuccess {
                rejected_log_records: rejected(n),
                error_message: message(n, "log records"),
            }),
        }
        .encode_to_vec(),
    }
}

pub fn reply(
    vendor: Option<Vendor>,
    code: u16,
    violations: &[String],
    injected: Option<&Answer>,
    refused: usize,
) -> Reply {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let otlp = vendor.is_some_and(Vendor::is_otlp);
    let partial = matches!(injected, Some(Answer::Partial { .. }));
    let (content_type, body) = if status == StatusCode::NO_CONTENT || status.is_redirection() {
        (None, Bytes::new())
    } else if otlp && status.is_success() {
        (
            Some("application/x-protobuf"),
            Bytes::from(otlp_answer(vendor, partial.then_some(refused))),
        )
    } else if partial && vendor == Some(Vendor::Dynatrace) {
        // The documented 200 of the log ingest API: a SuccessEnvelope with a message and no counts.
        let body = json!({"details": {"code": 200, "message": "Only a part of input events were ingested"}});
        (Some("application/json"), Bytes::from(body.to_string()))
    } else if status.is_success() {
        (Some("application/json"), Bytes::from_static(b"{}"))
    } else {
        let message = violations.join("; ");
        let body = json!({"error": {"code": code, "message": message}}).to_string();
        (Some("application/json"), Bytes::from(body))
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(content_type) = content_type {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    match injected {
        Some(Answer::Status {
            retry_after: Some(retry_after),
            ..
        }) => {
            let value = match *retry_after {
                RetryAfter::Seconds(seconds) => seconds.to_string(),
                RetryAfter::DateIn(seconds) => {
                    httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(seconds))
                }
            };
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(RETRY_AFTER, value);
            }
        }
        Some(Answer::Redirect { location, .. }) => {
            if let Ok(value) = HeaderValue::from_str(location) {
                headers.insert(LOCATION, value);
            }
        }
        _ => {}
    }
    response
}
