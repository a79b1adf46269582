//! A minimal HTTP/1 server for the two local endpoints (Telemetry API listener, OTLP receiver): every
//! request body is read under a size cap, and slow clients cannot hold a connection forever.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

pub type Reply = Response<Full<Bytes>>;

/// Serves `listener` forever, one task per connection.
pub async fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    loop {
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
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    #[error("reading the request body: {0}")]
    Read(String),
}

/// The whole body, or `TooLarge` once it passes `limit` bytes. The rest of an oversize body is still read
/// (and discarded, up to `drain` bytes in total) so that the client gets an answer rather than a reset
/// connection: for the Telemetry API a reset means redelivery.
pub async fn read_body(mut body: Incoming, limit: usize, drain: usize) -> Result<Bytes, BodyError> {
    let mut buffer = BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total <= limit {
            buffer.extend_from_slice(&data);
        } else if total > drain {
            break;
        }
    }
    if total > limit {
        Err(BodyError::TooLarge(limit))
    } else {
        Ok(buffer.freeze())
    }
}

pub fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if !content_type.is_empty() {
        if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
            response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
        }
    }
    response
}
