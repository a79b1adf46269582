//! The Lambda Extensions API and the Telemetry API subscription, spoken directly over HTTP.
//!
//! Why not the `lambda-extension` crate: it deserializes each telemetry batch into its own typed records as a
//! whole, with `function` records as strings only (the JSON log format sends objects), so one record it does
//! not know costs the entire batch; and this extension must decide exactly when to call `next` (after
//! `runtimeDone` and a bounded flush, or at once in periodic mode) and bound every body itself. The raw API is
//! three small calls, and skipping the crate keeps its tower layers out of a binary that must stay small.

use std::time::Duration;

use serde_json::{json, Value};

const NAME_HEADER: &str = "Lambda-Extension-Name";
const ID_HEADER: &str = "Lambda-Extension-Identifier";
const ERROR_TYPE_HEADER: &str = "Lambda-Extension-Function-Error-Type";
/// API answers are small JSON documents; anything bigger is not the Lambda API speaking.
const MAX_API_BODY: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextEvent {
    Invoke {
        request_id: String,
        deadline_ms: Option<u64>,
        function_arn: Option<String>,
        tracing: Option<String>,
    },
    Shutdown {
        reason: String,
        deadline_ms: Option<u64>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("AWS_LAMBDA_RUNTIME_API is not set: not running as a Lambda extension")]
    NoRuntimeApi,
    #[error("{call}: {source}")]
    Transport {
        call: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("{call}: HTTP {status}")]
    Status { call: &'static str, status: u16 },
    #[error("{call}: response body larger than {MAX_API_BODY} bytes")]
    TooLarge { call: &'static str },
    #[error("{call}: unexpected response: {detail}")]
    Invalid { call: &'static str, detail: String },
}

#[derive(Debug, Clone)]
pub struct ExtensionsApi {
    client: reqwest::Client,
    base: String,
    id: String,
}

impl ExtensionsApi {
    /// Registers for INVOKE and SHUTDOWN. `runtime_api` may carry a path prefix, as under `cargo lambda`.
    pub async fn register(client: reqwest::Client, runtime_api: &str, name: &str) -> Result<Self, ApiError> {
        const CALL: &str = "register";
        if runtime_api.is_empty() {
            return Err(ApiError::NoRuntimeApi);
        }
        let base = if runtime_api.starts_with("http://") || runtime_api.starts_with("https://") {
            runtime_api.trim_end_matches('/').to_owned()
        } else {
            format!("http://{}", runtime_api.trim_end_matches('/'))
        };
        let response = client
            .post(format!("{base}/2020-01-01/extension/register"))
            .header(NAME_HEADER, name)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(json!({ "events": ["INVOKE", "SHUTDOWN"] }).to_string())
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|source| ApiError::Transport { call: CALL, source })?;
        check_status(CALL, response.status().as_u16())?;
        let id = response
            .headers()
            .get(ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::Invalid {
                call: CALL,
                detail: format!("no {ID_HEADER} header"),
            })?
            .to_owned();
        read_limited(CALL, response).await?;
        Ok(Self { client, base, id })
    }

    /// Subscribes the listener at `uri` to `types` with the smallest buffering delay Lambda allows, so that
    /// `runtimeDone` reaches the extension as soon as possible.
    pub async fn subscribe_telemetry(&self, uri: &str, types: &[&str]) -> Result<(), ApiError> {
        const CALL: &str = "telemetry subscription";
        let body = json!({
            "schemaVersion": "2022-12-13",
            "types": types,
            "buffering": { "maxItems": 1000, "maxBytes": 262_144, "timeoutMs": 25 },
            "destination": { "protocol": "HTTP", "URI": uri },
        });
        let response = self
            .client
            .put(format!("{}/2022-07-01/telemetry", self.base))
            .header(ID_HEADER, &self.id)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|source| ApiError::Transport { call: CALL, source })?;
        check_status(CALL, response.status().as_u16())?;
        read_limited(CALL, response).await?;
        Ok(())
    }

    /// Blocks until the next event; deliberately without a timeout, as the API requires.
    pub async fn next(&self) -> Result<NextEvent, ApiError> {
        const CALL: &str = "next event";
        let response = self
            .client
            .get(format!("{}/2020-01-01/extension/event/next", self.base))
            .header(ID_HEADER, &self.id)
            .send()
            .await
            .map_err(|source| ApiError::Transport { call: CALL, source })?;
        check_status(CALL, response.status().as_u16())?;
        let body = read_limited(CALL, response).await?;
        parse_event(&body).ok_or_else(|| ApiError::Invalid {
            call: CALL,
            detail: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        })
    }

    /// Tells Lambda the extension cannot go on (`init/error` before the first `next`, else `exit/error`).
    pub async fn report_error(&self, during_init: bool, error_type: &str) {
        let path = if during_init { "init/error" } else { "exit/error" };
        let _ = self
            .client
            .post(format!("{}/2020-01-01/extension/{path}", self.base))
            .header(ID_HEADER, &self.id)
            .header(ERROR_TYPE_HEADER, error_type)
            .timeout(Duration::from_secs(1))
            .send()
            .await;
    }
}

fn check_status(call: &'static str, status: u16) -> Result<(), ApiError> {
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(ApiError::Status { call, status })
    }
}

async fn read_limited(call: &'static str, mut response: reqwest::Response) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|source| ApiError::Transport { call, source })?
    {
        if body.len() + chunk.len() > MAX_API_BODY {
            return Err(ApiError::TooLarge { call });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Event types are compared case-insensitively; unknown fields are ignored.
pub fn parse_event(body: &[u8]) -> Option<NextEvent> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let kind = value.get("eventType")?.as_str()?.to_ascii_uppercase();
    let deadline_ms = value.get("deadlineMs").and_then(Value::as_u64);
    let string = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    match kind.as_str() {
        "INVOKE" => Some(NextEvent::Invoke {
            request_id: string("requestId").filter(|id| {
                !id.is_empty()
                    && id.len() <= 128
                    && id
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            })?,
            deadline_ms,
            function_arn: string("invokedFunctionArn"),
            tracing: value
                .get("tracing")
                .and_then(|t| t.get("value"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        }),
        "SHUTDOWN" => Some(NextEvent::Shutdown {
            reason: string("shutdownReason").unwrap_or_default().to_ascii_lowercase(),
            deadline_ms,
        }),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_in_any_case() {
        let invoke = br#"{"eventType":"INVOKE","deadlineMs":1700000003000,"requestId":"r-1","invokedFunctionArn":"arn:aws:lambda:eu-west-1:1:function:f","tracing":{"type":"X-Amzn-Trace-Id","value":"Root=1-5f35ae12-0c0fec141ab77a00bc047aa2"},"extra":1}"#;
        assert_eq!(
            parse_event(invoke).unwrap(),
            NextEvent::Invoke {
                request_id: "r-1".into(),
                deadline_ms: Some(1_700_000_003_000),
                function_arn: Some("arn:aws:lambda:eu-west-1:1:function:f".into()),
                tracing: Some("Root=1-5f35ae12-0c0fec141ab77a00bc047aa2".into()),
            }
        );
        let shutdown = br#"{"eventType":"shutdown","shutdownReason":"SPINDOWN","deadlineMs":5}"#;
        assert_eq!(
            parse_event(shutdown).unwrap(),
            NextEvent::Shutdown {
                reason: "spindown".into(),
                deadline_ms: Some(5)
            }
        );
        assert!(parse_event(br#"{"eventType":"INVOKE","requestId":"a b"}"#).is_none());
        assert!(parse_event(b"nonsense").is_none());
        assert!(parse_event(br#"{"eventType":"RESTORE"}"#).is_none());
    }
}
