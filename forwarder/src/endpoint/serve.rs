//! `tracehose serve`: the endpoint as a standalone HTTP/1.1 server, for containers behind a load balancer
//! and local use. `POST /` takes Firehose deliveries, `GET /healthz` answers liveness.
//!
//! Bounded in every dimension a client controls: open connections (idle ones give their slot to a new
//! connection, so holding sockets keeps nobody out: [`slots`](super::slots)), requests being delivered (one
//! more is answered 503 at once, which Firehose retries), time to send the headers and the body, the
//! body's size as sent and inflated, and the work of one request (its decompression budget and deadline).
//! On SIGTERM or SIGINT the listener closes (new connections are refused), requests that arrive on open
//! connections get 503, requests in flight finish within the shutdown deadline, and what is still running
//! then is stopped and dropped unanswered: Firehose retries it, and nothing was answered 200 whose lines
//! did not go out.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::errors::EndpointError;
use super::models::{Reply, RequestHeaders};
use super::slots::{Slots, Taken};
use super::Endpoint;

/// The server's own bounds (the body's size is the endpoint's, `TRACEHOSE_ENDPOINT_MAX_BODY_BYTES`).
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Requests being read or delivered at once; one more is answered 503.
    pub max_concurrent_requests: usize,
    /// Open connections; a new one takes the slot of the connection idle the longest, and waits in the
    /// listen backlog only while every open connection has a request in progress.
    pub max_connections: usize,
    /// Time for a client to send a request's headers, and to keep an idle connection.
    pub header_timeout: Duration,
    /// Time for a client to send a whole body.
    pub body_timeout: Duration,
    /// Time requests in flight get to finish after SIGTERM.
    pub shutdown_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_concurrent_requests: 4,
            max_connections: 256,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(25),
        }
    }
}

#[derive(Debug)]
struct Server {
    endpoint: Arc<Endpoint>,
    options: ServeOptions,
    requests: Arc<Semaphore>,
    stopping: AtomicBool,
}

/// Serves on `listener` until `shutdown` completes, then drains as described above.
pub async fn run(
    endpoint: Arc<Endpoint>,
    listener: TcpListener,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let server = Arc::new(Server {
        endpoint,
        requests: Arc::new(Semaphore::new(options.max_concurrent_requests.max(1))),
        options,
        stopping: AtomicBool::new(false),
    });
    let slots = Slots::new(server.options.max_connections);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors or similar: back off instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        // A slot only once a connection is there, so that nothing is closed for one that never comes;
        // while every connection is busy this one waits, the rest in the listen backlog.
        let (slot, taken) = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.acquire() => slot,
        };
        if taken == Taken::Evicted {
            server.endpoint.counters.idle_closed();
        }
        let _ = stream.set_nodelay(true);
        let server = Arc::clone(&server);
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            let slot = Arc::new(slot);
            let timeout = server.options.header_timeout;
            let for_service = Arc::clone(&slot);
            // The request is marked in progress when hyper has read its headers, before any of it runs:
            // from then on its connection keeps its slot.
            let service = service_fn(move |request| {
                let in_progress = for_service.request();
                let server = Arc::clone(&server);
                async move {
                    let response = respond(server, request).await;
                    drop(in_progress);
                    response
                }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let finish = tokio::select! {
                _ = connection.as_mut() => false,
                stopping = stop.wait_for(|stopping| *stopping) => stopping.is_ok(),
                // Idle, its slot given away: closed at once, unless a request arrived meanwhile.
                () = slot.evicted() => slot.busy(),
            };
            if finish {
                // Finishes the request in progress, if any, then closes.
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        });
    }
    drop(listener);
    server.stopping.store(true, Ordering::SeqCst);
    let _ = stop_tx.send(true);
    let open = tasks.len();
    eprintln!("tracehose: serve: stopping; the listener is closed, {open} connections draining");
    let drained = tokio::time::timeout(server.options.shutdown_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        eprintln!(
            "tracehose: serve: {} connections still busy after {:?} are dropped unanswered (Firehose retries them)",
            tasks.len(),
            server.options.shutdown_timeout
        );
        // Their pipeline threads stop within one chunk of work, so the process exits now rather than when
        // their inflation would have ended.
        server.endpoint.cancel_work();
        tasks.shutdown().await;
    }
    server.endpoint.flush_refusal_log();
    eprintln!("tracehose: serve: stopped");
    Ok(())
}

type HttpResponse = Response<Full<Bytes>>;

async fn respond(server: Arc<Server>, request: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    let path = request.uri().path();
    if path == "/healthz" {
        let (status, state) = if server.stopping.load(Ordering::SeqCst) {
            (503, "stopping")
        } else {
            (200, "ok")
        };
        let body = serde_json::json!({"status": state, "counts": server.endpoint.counts()});
        return Ok(json_response(status, Bytes::from(body.to_string())));
    }
    let headers =
        RequestHeaders::from_lookup(|name| request.headers().get(name).and_then(|v| v.to_str().ok()));
    let refuse = |err: EndpointError| Ok(to_response(server.endpoint.refuse(&headers, &err)));
    if path != "/" {
        return refuse(EndpointError::NotFound(path.chars().take(128).collect()));
    }
    if request.method() != Method::POST {
        return refuse(EndpointError::Method(request.method().to_string()));
    }
    if server.stopping.load(Ordering::SeqCst) {
        return refuse(EndpointError::ShuttingDown);
    }
    if let Err(err) = server.endpoint.admit(&headers) {
        return refuse(err);
    }
    let limit = server.endpoint.config().max_body_bytes;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return refuse(EndpointError::TooLarge { limit });
    }
    let Ok(permit) = Arc::clone(&server.requests).try_acquire_owned() else {
        return refuse(EndpointError::Busy(server.options.max_concurrent_requests));
    };
    let body_timeout = server.options.body_timeout;
    let read = Limited::new(request.into_body(), limit).collect();
    let body = match tokio::time::timeout(body_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => {
            return refuse(EndpointError::TooLarge { limit })
        }
        Ok(Err(err)) => return refuse(EndpointError::Read(err.to_string())),
        Err(_) => return refuse(EndpointError::ReadTimeout(body_timeout)),
    };
    let deadline = Instant::now() + server.endpoint.config().deadline;
    // Its own task: a client that hangs up (Firehose timing out, then retrying) does not cut a delivery
    // short; the retry finds it in progress, then delivered.
    let endpoint = Arc::clone(&server.endpoint);
    let task = tokio::spawn(async move {
        let _permit = permit;
        endpoint.handle(headers, body, deadline).await
    });
    let reply = match task.await {
        Ok(reply) => reply,
        Err(err) => Reply::new(500, "", Some(&format!("internal error: {err}"))),
    };
    Ok(to_response(reply))
}

fn to_response(reply: Reply) -> HttpResponse {
    json_response(reply.status, Bytes::from(reply.body))
}

fn json_response(status: u16, body: Bytes) -> HttpResponse {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Binds `addr`; the bound address (with the port the OS chose for port 0) is returned with it.
pub async fn bind(addr: &str) -> io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
