//! A minimal HTTP/1 server for the two local endpoints (Telemetry API listener, OTLP receiver). Everything a
//! client controls is bounded: connections at once, the body's size and the time it takes to arrive, so a
//! client that sends slowly, never finishes, or opens many connections costs a fixed amount of memory.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONNECTION, CONTENT_LENGTH, EXPECT};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub type Reply = Response<Full<Bytes>>;

/// Also closes idle keep-alive connections, which would otherwise hold a connection slot forever.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What one endpoint accepts from a client.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest body kept.
    pub max: usize,
    /// An oversize body is read and discarded up to this many bytes in total, so that the client gets its
    /// answer instead of a reset connection; past this the connection is closed.
    pub drain: usize,
    /// The whole body must arrive within this long after the handler starts reading it.
    pub deadline: Duration,
}

/// Serves `listener` forever, one task per connection and at most `max_connections` at once: further
/// clients wait in the listen backlog until a connection ends (every connection ends within the header and
/// body deadlines unless it is actively being answered).
pub async fn serve<F, Fut>(listener: TcpListener, max_connections: usize, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors or similar: back off briefly instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(request).await) }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    #[error("request body not complete within {0:?}")]
    Timeout(Duration),
    #[error("reading the request body: {0}")]
    Read(String),
}

impl BodyError {
    /// The status OTLP/HTTP clients understand for each failure; none of them is worth a retry as is.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::Read(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// The whole body, within `limits`. A body declared larger than the cap is refused before reading a byte
/// when the client waits for `100 Continue` or declares more than `limits.drain`; otherwise an oversize
/// body is read to its end and discarded (never buffered) so that the client reads the answer.
pub async fn read_body(headers: &HeaderMap, body: Incoming, limits: BodyLimits) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let oversize_declared = declared.is_some_and(|n| n > limits.max as u64);
    if oversize_declared {
        let waits_for_continue = headers
            .get(EXPECT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        if waits_for_continue || declared.is_some_and(|n| n > limits.drain as u64) {
            return Err(BodyError::TooLarge(limits.max));
        }
    }
    // The declared length is only a hint for the first allocation: the cap is enforced on what arrives.
    let capacity = declared.map_or(0, |n| n.min(limits.max as u64) as usize);
    let read = collect(body, limits, oversize_declared, capacity);
    match tokio::time::timeout(limits.deadline, read).await {
        Ok(result) => result,
        Err(_) => Err(BodyError::Timeout(limits.deadline)),
    }
}

async fn collect(
    mut body: Incoming,
    limits: BodyLimits,
    mut discarding: bool,
    capacity: usize,
) -> Result<Bytes, BodyError> {
    let mut buffer = if discarding {
        BytesMut::new()
    } else {
        BytesMut::with_capacity(capacity)
    };
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total > limits.max && !discarding {
            discarding = true;
            buffer = BytesMut::new();
        }
        if discarding {
            if total > limits.drain {
                break;
            }
        } else {
            buffer.extend_from_slice(&data);
        }
    }
    if discarding {
        Err(BodyError::TooLarge(limits.max))
    } else {
        Ok(buffer.freeze())
    }
}

pub fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if !content_type.is_empty() {
        if let Ok(value) = HeaderValue::from_str(content_type) {
            response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
        }
    }
    response
}

/// The answer to a body that could not be read: the connection is closed after it, since the client may
/// still be sending the rest of a body nobody will read.
pub fn body_error_reply(error: &BodyError) -> Reply {
    let mut response = reply(error.status(), "text/plain", format!("{error}\n"));
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
