//! What the intake writes back: the vendor's status and body (a partial success in its documented shape),
//! and the headers an injected answer asks for (`Retry-After` in either form, `Location`).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use hyper::{Response, StatusCode};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceResponse};
use prost::Message;
use serde_json::json;

use super::faults::{Answer, RetryAfter};
use super::{Reply, Vendor};

/// How long a hung request waits before its connection is closed, if neither side ended it first: longer
/// than any client here waits.
pub const HANG: Duration = Duration::from_secs(600);

pub fn reply(
    vendor: Option<Vendor>,
    code: u16,
    violations: &[String],
    injected: Option<&Answer>,
    refused: usize,
) -> Reply {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let otlp = matches!(vendor, Some(Vendor::Otlp | Vendor::DynatraceOtlp));
    let partial = matches!(injected, Some(Answer::Partial { .. }));
    let (content_type, body) = if status == StatusCode::NO_CONTENT || status.is_redirection() {
        (None, Bytes::new())
    } else if otlp && status.is_success() {
        let mut answer = ExportLogsServiceResponse::default();
        if partial {
            answer.partial_success = Some(ExportLogsPartialSuccess {
                rejected_log_records: i64::try_from(refused).unwrap_or(i64::MAX),
                error_message: format!(
                    "{refused} log records refused by the intake's injected partial success"
                ),
            });
        }
        (
            Some("application/x-protobuf"),
            Bytes::from(answer.encode_to_vec()),
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
