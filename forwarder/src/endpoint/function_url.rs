//! The Lambda face: a function URL event (payload format 2.0) or an API Gateway proxy event (1.0 or 2.0)
//! carrying a Firehose request becomes the handler's headers and body, and the handler's answer becomes
//! the proxy response `{"statusCode","headers","body","isBase64Encoded":false}` (docs/formats.md section 5).

use std::collections::HashMap;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::EndpointError;
use super::models::{Reply, RequestHeaders};

/// An HTTP event, as much of it as the endpoint reads.
#[derive(Debug, Deserialize)]
pub struct HttpEvent {
    #[serde(rename = "requestContext")]
    request_context: RequestContext,
    /// 1.0 events may carry `null` values; 2.0 joins repeated headers with commas.
    #[serde(default)]
    headers: Option<HashMap<String, Option<String>>>,
    #[serde(default)]
    body: Option<String>,
    #[serde(rename = "isBase64Encoded", default)]
    is_base64_encoded: bool,
    /// Payload format 1.0.
    #[serde(rename = "httpMethod", default)]
    http_method: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RequestContext {
    /// Payload format 2.0.
    #[serde(default)]
    http: Option<HttpContext>,
}

#[derive(Debug, Default, Deserialize)]
struct HttpContext {
    #[serde(default)]
    method: Option<String>,
}

/// The event, if it is an HTTP event. A byte search decides first, so that every other event (some of
/// them megabytes of base64) costs a scan rather than a second parse; only an event that names
/// `requestContext` is parsed here, and one that does not parse as an HTTP event goes on to the others.
pub fn parse(raw: &str) -> Option<HttpEvent> {
    memchr::memmem::find(raw.as_bytes(), b"\"requestContext\"")?;
    serde_json::from_str::<HttpEvent>(raw).ok()
}

impl HttpEvent {
    pub fn method(&self) -> &str {
        let from_context = self
            .request_context
            .http
            .as_ref()
            .and_then(|h| h.method.as_deref());
        from_context.or(self.http_method.as_deref()).unwrap_or("")
    }

    /// Header names are matched without regard to case (API Gateway 1.0 keeps the client's case).
    pub fn headers(&self) -> RequestHeaders {
        let lowered: HashMap<String, &str> = self
            .headers
            .iter()
            .flatten()
            .filter_map(|(name, value)| Some((name.to_ascii_lowercase(), value.as_deref()?)))
            .collect();
        RequestHeaders::from_lookup(|name| lowered.get(name).copied())
    }

    /// The body as sent: base64-decoded when the event says so (a gzip body always is).
    pub fn take_body(&mut self) -> Result<Bytes, EndpointError> {
        let body = self.body.take().unwrap_or_default();
        if !self.is_base64_encoded {
            return Ok(Bytes::from(body.into_bytes()));
        }
        crate::input::decode::base64_decode(&body)
            .map(Bytes::from)
            .map_err(|err| EndpointError::EventBase64(err.to_string()))
    }
}

/// The proxy response Lambda turns into the HTTP answer.
pub fn response(reply: &Reply) -> Value {
    json!({
        "statusCode": reply.status,
        "headers": { "content-type": "application/json" },
        "body": reply.body,
        "isBase64Encoded": false,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn function_url_and_api_gateway_events_are_read_and_others_are_not() {
        let v2 = r#"{"version":"2.0","rawPath":"/","headers":{"x-amz-firehose-request-id":"r1",
            "content-encoding":"gzip"},"requestContext":{"http":{"method":"POST"}},"body":"H4sI","isBase64Encoded":true}"#;
        let mut event = parse(v2).unwrap();
        assert_eq!(event.method(), "POST");
        let headers = event.headers();
        assert_eq!(headers.request_id.as_deref(), Some("r1"));
        assert_eq!(event.take_body().unwrap().as_ref(), [0x1f, 0x8b, 0x08]);
        let v1 = r#"{"httpMethod":"POST","headers":{"X-Amz-Firehose-Request-Id":"r2","X-Null":null},
            "requestContext":{},"body":"{}","isBase64Encoded":false}"#;
        let mut event = parse(v1).unwrap();
        assert_eq!(
            (event.method(), event.headers().request_id.as_deref()),
            ("POST", Some("r2"))
        );
        assert_eq!(event.take_body().unwrap().as_ref(), b"{}");
        assert!(parse(r#"{"awslogs":{"data":"H4sI"}}"#).is_none());
        assert!(parse(r#"{"requestContext":"a string"}"#).is_none());
        let mut bad = parse(r#"{"requestContext":{},"body":"%%%","isBase64Encoded":true}"#).unwrap();
        assert!(matches!(bad.take_body(), Err(EndpointError::EventBase64(_))));
    }

    #[test]
    fn the_response_is_a_proxy_response() {
        let r = response(&Reply::new(401, "r", Some("wrong")));
        assert_eq!(r["statusCode"], 401);
        assert_eq!(r["headers"]["content-type"], "application/json");
        assert_eq!(r["isBase64Encoded"], false);
        let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["requestId"], "r");
    }
}
